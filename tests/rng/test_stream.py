"""Stream: construction, determinism, independence, backends, threads, global RNG, fallbacks."""

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fanin.rng import stream as stream_mod
from fanin.rng.stream import STREAM_VERSION, Stream, canonical_name, streams_for
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

TRANSFORMS = [
    Uniform(-1.0, 1.0),
    Uniform(0.25, 3.0),
    Normal(0.0, 1.0),
    Normal(-0.5, 0.02),
    TruncatedNormal(0.0, 1.0, -2.0, 2.0),
    TruncatedNormal(0.0, 0.02, -0.04, 0.04),
    TruncatedNormal(0.0, 1.0, 2.5, math.inf),
    TruncatedNormal(1.0, 2.0, -40.0, -8.0),
]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
needs_numba = pytest.mark.skipif(stream_mod._numba() is None, reason="numba is not installed")


def test_version_is_an_int():
    assert STREAM_VERSION == 1


@pytest.mark.parametrize(
    ("seed", "name", "error", "text"),
    [
        (-1, "w", ValueError, "seed=-1"),
        (2**64, "w", ValueError, "seed=18446744073709551616"),
        (1.0, "w", TypeError, "seed=1.0"),
        (True, "w", TypeError, "seed=True"),
        (0, 3, TypeError, "name=3"),
    ],
)
def test_bad_seed_or_name_is_refused_with_the_value(seed, name, error, text):
    with pytest.raises(error, match=text):
        Stream(seed, name)


def test_numpy_integer_seeds_are_accepted_and_equal():
    assert Stream(np.uint64(2**64 - 1), "w") == Stream(2**64 - 1, "w")
    assert hash(Stream(3, "w")) == hash(Stream(3, "w"))
    assert repr(Stream(3, "w")) == "Stream(seed=3, name='w')"


def test_same_seed_and_name_give_the_same_bits_in_a_fresh_process():
    code = (
        "import torch, hashlib\n"
        "from fanin.rng.stream import Stream\n"
        "s = Stream(2024, 'blocks.0.mlp.weight')\n"
        "t = s.normal_(torch.empty(300, 70), 0.0, 0.02)\n"
        "print(hashlib.sha256(t.numpy().tobytes()).hexdigest())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    here = Stream(2024, "blocks.0.mlp.weight").normal_(torch.empty(300, 70), 0.0, 0.02)
    assert out.stdout.strip() == hashlib.sha256(here.numpy().tobytes()).hexdigest()


@pytest.mark.parametrize(
    ("a", "b"),
    [((0, "a.weight"), (0, "b.weight")), ((0, "a.weight"), (1, "a.weight")), ((7, "x"), (7, "x "))],
)
def test_different_names_or_seeds_are_uncorrelated(a, b):
    n = 1_000_000
    x = Stream(*a).normal_(torch.empty(n, dtype=torch.float64), 0.0, 1.0)
    y = Stream(*b).normal_(torch.empty(n, dtype=torch.float64), 0.0, 1.0)
    r = float(torch.corrcoef(torch.stack([x, y]))[0, 1])
    assert abs(r) < 5 / math.sqrt(n)  # 5 standard errors
    assert not torch.equal(x[:1000], y[:1000])


def test_neighbouring_elements_are_uncorrelated():
    n = 1_000_001
    x = Stream(0, "w").normal_(torch.empty(n, dtype=torch.float64), 0.0, 1.0)
    for lag in (1, 2, 3, 4, 5):
        r = float(torch.corrcoef(torch.stack([x[:-lag], x[lag:]]))[0, 1])
        assert abs(r) < 5 / math.sqrt(n), lag


@needs_numba
@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_torch_reference_equals_numba_kernel_bitwise(transform, dtype):
    n = 300_007 if dtype in (torch.float32, torch.bfloat16) else 100_003
    s = Stream(11, "enc.layers.1.weight")
    fast = s.fill_(torch.empty(n, dtype=dtype), transform, backend="numba")
    ref = s.fill_(torch.empty(n, dtype=dtype), transform, backend="torch")
    assert torch.equal(fast.view(torch.uint8), ref.view(torch.uint8))


@needs_numba
@pytest.mark.parametrize("transform", TRANSFORMS[::2], ids=repr)
def test_one_and_two_threads_give_the_same_bits(transform):
    s = Stream(5, "w")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = s.fill_(torch.empty(2_000_003), transform)
        torch.set_num_threads(2)
        two = s.fill_(torch.empty(2_000_003), transform)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.parametrize("transform", TRANSFORMS[::3], ids=repr)
def test_narrow_dtypes_are_the_float32_values_rounded_once(transform):
    s = Stream(9, "w")
    f64 = s.fill_(torch.empty(3, 1_000_003, dtype=torch.float64), transform)
    f32 = s.fill_(torch.empty(3, 1_000_003, dtype=torch.float32), transform)
    assert torch.equal(f32, f64.float())
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.equal(s.fill_(torch.empty(3, 1_000_003, dtype=dtype), transform), f32.to(dtype))


def test_the_global_torch_rng_is_neither_used_nor_disturbed():
    state = torch.random.get_rng_state()
    s = Stream(1, "w")
    outs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        state = torch.random.get_rng_state()
        t = torch.empty(40, 50)
        vals = [s.uniform_(t, -1, 1).clone(), s.normal_(t, 0, 1).clone(), s.truncated_normal_(t, 0, 1, -2, 2).clone()]
        vals.append(s.orthogonal_(torch.empty(8, 5)).clone())
        vals.append(s.sparse_mask((20, 4), 3).clone())
        assert torch.equal(torch.random.get_rng_state(), state)
        outs.append(vals)
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)


def test_values_within_bounds_and_truncation_clamped():
    s = Stream(3, "w")
    u = s.uniform_(torch.empty(1_000_000), -0.125, 0.5)
    assert float(u.min()) >= -0.125 and float(u.max()) <= 0.5
    for lo, hi in [(-2.0, 2.0), (3.0, 3.5), (-0.04, 0.04), (-40.0, -38.0), (0.0, math.inf)]:
        t = s.truncated_normal_(torch.empty(200_000, dtype=torch.float64), 0.0, 1.0, lo, hi)
        assert float(t.min()) >= lo and float(t.max()) <= hi
        b = s.truncated_normal_(torch.empty(200_000, dtype=torch.bfloat16), 0.0, 1.0, lo, hi).float()
        lo_b = torch.tensor(lo).to(torch.bfloat16).float()
        hi_b = torch.tensor(hi).to(torch.bfloat16).float()
        assert float(b.min()) >= lo_b and float(b.max()) <= hi_b


def test_infinite_truncation_is_the_normal_bit_for_bit():
    s = Stream(4, "w")
    n = s.normal_(torch.empty(100_000, dtype=torch.float64), 0.5, 2.0)
    t = s.truncated_normal_(torch.empty(100_000, dtype=torch.float64), 0.5, 2.0, -math.inf, math.inf)
    assert torch.equal(n, t)


def test_meta_and_empty_tensors_are_returned_unchanged():
    s = Stream(0, "w")
    m = torch.empty(3, 4, device="meta")
    assert s.normal_(m, 0.0, 1.0) is m
    e = torch.empty(0, 4)
    assert s.uniform_(e, -1.0, 1.0) is e


def test_requires_grad_leaf_is_filled_without_history():
    p = torch.nn.Parameter(torch.empty(10, 10))
    Stream(0, "w").normal_(p, 0.0, 1.0)
    assert p.grad_fn is None and p.requires_grad and float(p.detach().abs().sum()) > 0


def test_non_tensor_and_integer_tensors_are_refused():
    s = Stream(0, "w")
    with pytest.raises(TypeError, match="tensor="):
        s.normal_([1.0], 0.0, 1.0)
    with pytest.raises(TypeError, match=r"dtype=torch\.int64"):
        s.normal_(torch.empty(3, dtype=torch.int64), 0.0, 1.0)
    with pytest.raises(TypeError, match="transform="):
        s.fill_(torch.empty(3), "normal")
    with pytest.raises(ValueError, match="backend='cuda'"):
        s.normal_(torch.empty(3), 0.0, 1.0, backend="cuda")


def test_without_numba_auto_falls_back_to_torch(monkeypatch):
    s = Stream(0, "w")
    expected = s.normal_(torch.empty(1000), 0.0, 1.0, backend="torch")
    monkeypatch.setattr(stream_mod, "_numba", lambda: None)
    assert torch.equal(s.normal_(torch.empty(1000), 0.0, 1.0), expected)
    with pytest.raises(ImportError, match="numba"):
        s.normal_(torch.empty(10), 0.0, 1.0, backend="numba")


def test_backend_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setenv("FANIN_STREAM_BACKEND", "torch")
    calls = []
    monkeypatch.setattr(stream_mod, "_numba_fill", lambda *a: calls.append(a))
    Stream(0, "w").normal_(torch.empty(100), 0.0, 1.0)
    assert calls == []


def test_standard_normal_and_values_random_access():
    s = Stream(8, "w")
    z = s.standard_normal((30, 40), dtype=torch.float64, device="cpu")
    assert z.shape == (30, 40) and z.dtype == torch.float64
    idx = torch.tensor([[0, 5], [1199, 600]])
    assert torch.equal(s.values(Normal(0.0, 1.0), idx, dtype=torch.float64), z.view(-1)[idx])
    assert s.words([0, 1, 2, 3]).tolist() == [int(w) for w in s.words([0, 1, 2, 3])]


def test_canonical_names_strip_wrappers():
    assert canonical_name("module.module.layer.weight") == "layer.weight"
    assert canonical_name("_orig_mod.layer._fsdp_wrapped_module.weight") == "layer.weight"
    assert canonical_name("layer.module.weight") == "layer.module.weight"
    assert Stream.for_parameter(0, "module._orig_mod.fc.weight") == Stream(0, "fc.weight")


def test_streams_for_a_model_follow_names_not_positions():
    a = torch.nn.Sequential()
    a.add_module("enc", torch.nn.Linear(3, 4))
    b = torch.nn.Sequential()
    b.add_module("pre", torch.nn.Linear(2, 3))
    b.add_module("enc", torch.nn.Linear(3, 4))
    sa, sb = streams_for(a, 1), streams_for(b, 1)
    assert sa["enc.weight"] == sb["enc.weight"]
    wa = sa["enc.weight"].normal_(torch.empty(4, 3), 0.0, 1.0)
    wb = sb["enc.weight"].normal_(torch.empty(4, 3), 0.0, 1.0)
    assert torch.equal(wa, wb)
    compiled_like = torch.nn.Module()
    compiled_like.add_module("_orig_mod", a)
    assert streams_for(compiled_like, 1) == sa


def test_tied_parameters_get_one_stream_and_clashes_are_errors():
    m = torch.nn.Module()
    m.a = torch.nn.Linear(2, 2)
    m.b = m.a
    assert sorted(streams_for(m, 0)) == ["a.bias", "a.weight"]
    clash = torch.nn.Module()
    clash.add_module("module", torch.nn.Linear(2, 2))
    clash.add_module("weight_holder", torch.nn.Module())
    clash.weight = torch.nn.Parameter(torch.empty(2, 2))
    with pytest.raises(ValueError, match="canonical name 'weight'"):
        streams_for(clash, 0)


def test_sparse_mask_has_exact_zero_counts_and_permutations():
    s = Stream(0, "w")
    for rows in (1, 2, 3, 5, 16, 17, 37, 1000):
        i = torch.arange(rows)
        for j in (0, 1, 2**32 - 1):
            perm = s.permutation_index(rows, i, torch.full_like(i, j))
            assert sorted(perm.tolist()) == list(range(rows))
    m = s.sparse_mask((37, 11), 12)
    assert m.sum(dim=0).tolist() == [12] * 11
    part = s.sparse_mask((10, 4), 12, full_shape=(37, 11), offsets=(10, 3))
    assert torch.equal(part, m[10:20, 3:7])
    assert not torch.equal(m[:, 0], m[:, 1])


def test_orthogonal_is_orthogonal_deterministic_and_shardable():
    s = Stream(0, "w")
    for shape in [(20, 7), (7, 20), (6, 3, 3)]:
        q = s.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=2.0)
        flat = q.reshape(shape[0], -1)
        gram = flat.T @ flat if shape[0] >= flat.shape[1] else flat @ flat.T
        assert torch.allclose(gram, 4.0 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-12)
    full = s.orthogonal_(torch.empty(12, 9))
    part = s.orthogonal_(torch.empty(5, 9), full_shape=(12, 9), offsets=(7, 0))
    assert torch.equal(part, full[7:])
    bf = s.orthogonal_(torch.empty(12, 9, dtype=torch.bfloat16))
    assert torch.equal(bf, full.to(torch.bfloat16))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = s.orthogonal_(torch.empty(64, 64))
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    torch.set_num_threads(1)
    try:
        one = s.orthogonal_(torch.empty(64, 64))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_reference_path_equals_cpu_bitwise(transform, dtype):
    s = Stream(13, "gpu.weight")
    cpu = s.fill_(torch.empty(70_001, dtype=dtype), transform)
    gpu = s.fill_(torch.empty(70_001, dtype=dtype, device="cuda"), transform)
    assert torch.equal(gpu.cpu().view(torch.uint8), cpu.view(torch.uint8))
    box = s.fill_(torch.empty(5, 7, dtype=dtype, device="cuda"), transform, full_shape=(100, 700), offsets=(95, 693))
    assert torch.equal(box.cpu(), cpu[:70_000].view(100, 700)[95:, 693:])


def test_bfloat16_larger_than_one_scratch_chunk():
    # 5M elements: the fast path fills bfloat16 through two float32 scratch chunks, the second
    # starting in the middle of the single run.
    s = Stream(10, "big.weight")
    t = Normal(0.0, 0.02)
    bf = s.fill_(torch.empty(2, 2_500_001, dtype=torch.bfloat16), t)
    assert torch.equal(bf, s.fill_(torch.empty(2, 2_500_001), t).to(torch.bfloat16))
    part = s.fill_(torch.empty(1, 2_400_000, dtype=torch.bfloat16), t, full_shape=(2, 2_500_001), offsets=(1, 7))
    assert torch.equal(part, bf[1:, 7:2_400_007])
