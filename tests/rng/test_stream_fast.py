"""The fast path's plumbing: serial kernels for small fills, the on-disk JIT cache and its fallback.

Every case compares against the torch reference path (``backend="torch"``) bit for bit, or
checks which kernel ran.
"""

import os
import subprocess
import sys
import types

import pytest
import torch

from fanin.rng import stream as stream_mod
from fanin.rng.stream import Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

nk = stream_mod._numba()
pytestmark = pytest.mark.skipif(nk is None, reason="numba is not installed")

TRANSFORMS = [Uniform(-0.3, 0.7), Normal(0.0, 0.02), TruncatedNormal(0.0, 1.0, -2.0, 2.0)]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.uint8)


def _subprocess_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **extra)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_fills_around_the_serial_threshold_equal_the_reference(transform, delta):
    n = nk.SERIAL_MAX + delta  # serial kernel for delta <= 0, parallel for delta = 1
    s = Stream(3, "enc.norm.bias")
    fast = s.fill_(torch.empty(n), transform, backend="numba")
    ref = s.fill_(torch.empty(n), transform, backend="torch")
    assert torch.equal(_bits(fast), _bits(ref))


@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("rows", [95, 96])  # 95 x 689 = 65455 (serial), 96 x 683 = 65568 (parallel)
def test_boxes_around_the_serial_threshold_equal_the_reference(transform, rows):
    shape = (95, 689) if rows == 95 else (96, 683)
    s = Stream(4, "w")
    box = {"full_shape": (300, 1000), "offsets": (7, 11)}  # runs of one row: groups of short runs
    fast = s.fill_(torch.empty(shape, dtype=torch.float64), transform, backend="numba", **box)
    ref = s.fill_(torch.empty(shape, dtype=torch.float64), transform, backend="torch", **box)
    assert (shape[0] * shape[1] <= nk.SERIAL_MAX) == (rows == 95)
    assert torch.equal(_bits(fast), _bits(ref))


@pytest.mark.parametrize("delta", [0, 1])
def test_bfloat16_rounding_kernels_around_the_threshold_equal_the_reference(delta):
    n = nk.SERIAL_MAX + delta
    s = Stream(5, "w")
    fast = s.normal_(torch.empty(n, dtype=torch.bfloat16), 0.0, 1.0, backend="numba")
    ref = s.normal_(torch.empty(n, dtype=torch.bfloat16), 0.0, 1.0, backend="torch")
    assert torch.equal(_bits(fast), _bits(ref))


def test_small_fills_never_start_the_thread_pool_and_large_ones_do(monkeypatch):
    def refuse(*args):
        raise AssertionError("the parallel kernel ran")

    monkeypatch.setattr(nk, "KERNELS", dict.fromkeys(nk.KERNELS, refuse))
    monkeypatch.setattr(nk, "to_bfloat16", refuse)
    s = Stream(0, "b")
    for transform in TRANSFORMS:
        small = s.fill_(torch.empty(24), transform)
        assert torch.equal(small, s.fill_(torch.empty(24), transform, backend="torch"))
    s.fill_(torch.empty(nk.SERIAL_MAX, dtype=torch.bfloat16), TRANSFORMS[0])
    with pytest.raises(AssertionError, match="the parallel kernel ran"):
        s.fill_(torch.empty(nk.SERIAL_MAX + 1), TRANSFORMS[0])


def test_kernel_decorator_drops_the_disk_cache_only_when_numba_has_nowhere_to_write(monkeypatch):
    calls = []

    def fake_njit(**opts):
        calls.append(opts["cache"])
        if opts["cache"]:
            raise RuntimeError(message)
        return lambda fn: fn

    monkeypatch.setattr(nk, "nb", types.SimpleNamespace(njit=fake_njit))
    monkeypatch.setattr(nk, "CACHED", True)
    message = "cannot cache function 'f': no locator available for file 'f.py'"
    assert nk._kernel(parallel=True)(len) is len
    assert calls == [True, False] and nk.CACHED is False
    message = "some other numba failure"
    with pytest.raises(RuntimeError, match="some other numba failure"):
        nk._kernel()(len)


def test_compiled_kernels_load_from_the_cache_in_a_fresh_process():
    if not nk.CACHED:
        pytest.skip("numba has no writable cache directory here")
    s = Stream(1, "w")
    for n in (100, nk.SERIAL_MAX + 1):  # compile (or load) both forms here, so the cache is written
        for transform in TRANSFORMS:
            s.fill_(torch.empty(n), transform)
    code = (
        "import torch\n"
        "from fanin.rng import _numba_kernels as nk\n"
        "from fanin.rng.stream import Stream\n"
        "from fanin.rng.transforms import Normal, TruncatedNormal, Uniform\n"
        "s = Stream(1, 'w')\n"
        "for n in (100, nk.SERIAL_MAX + 1):\n"
        "    for t in (Uniform(-0.3, 0.7), Normal(0.0, 0.02), TruncatedNormal(0.0, 1.0, -2.0, 2.0)):\n"
        "        s.fill_(torch.empty(n), t)\n"
        "for k in list(nk.KERNELS.values()) + list(nk.SERIAL_KERNELS.values()):\n"
        "    print(k.__name__, sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env(), check=True
    )
    rows = [line.split() for line in out.stdout.strip().splitlines()]
    assert len(rows) == 6
    for name, hits, misses in rows:
        assert (int(hits), int(misses)) == (1, 0), name


def test_without_a_writable_cache_directory_the_fast_path_still_works():
    # NUMBA_CACHE_LOCATOR_CLASSES limited to the IPython locator: no locator accepts a .py file,
    # the situation of a read-only install with no writable user cache.
    code = (
        "import torch\n"
        "from fanin.rng import _numba_kernels as nk\n"
        "from fanin.rng.stream import Stream\n"
        "s = Stream(2, 'w')\n"
        "fast = s.uniform_(torch.empty(24), -1.0, 1.0, backend='numba')\n"
        "ref = s.uniform_(torch.empty(24), -1.0, 1.0, backend='torch')\n"
        "print(nk.CACHED, torch.equal(fast, ref))\n"
    )
    env = _subprocess_env(NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator")
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "True"]
