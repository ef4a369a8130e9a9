"""On a CUDA device the counter stream gives the CPU fast path's bits (skipped without a GPU).

A CUDA tensor is filled by the torch reference path (``backend="torch"``: Philox and the
transforms written op by op in float64, no fused operations), a CPU tensor by the numba kernels
(``backend="numba"``). docs/stream.md promises the same bits on every device, so every check here
compares bytes: every element-wise transform (uniform, normal, truncated normal with central,
one-sided, far and mirrored intervals) in every floating dtype, at sizes around the serial
threshold and the torch path's chunk, boxes of 1 to 4 dims (offsets not aligned to a Philox
block, flat indices past 2**32), ``index=`` slices, strided destinations, random access by
``Stream.values``, the sparse permutation, every registered scheme, and a whole model
materialized on the GPU.

Run by scripts/gpu_check.py on a machine with a GPU (``pytest -k cuda`` selects this file).
"""

from __future__ import annotations

import math

import pytest
import torch

from fanin.rng import stream as stream_mod
from fanin.rng.stream import Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(
        stream_mod._numba() is None, reason="the CPU side is the numba fast path: numba is not installed"
    ),
]

TRANSFORMS = [
    Uniform(-1.0, 1.0),
    Uniform(0.25, 3.0),
    Uniform(-0.1, 0.1),
    Normal(0.0, 1.0),
    Normal(-0.5, 0.02),
    TruncatedNormal(0.0, 1.0, -2.0, 2.0),
    TruncatedNormal(0.0, 0.02, -0.04, 0.04),
    TruncatedNormal(0.0, 1.0, 2.5, math.inf),  # one-sided, upper tail
    TruncatedNormal(1.0, 2.0, -40.0, -8.0),  # far lower tail: mirrored, both AS241 tails
    TruncatedNormal(0.0, 1.0, -math.inf, -6.0),
]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
CHUNK = stream_mod._CHUNK
SERIAL_MAX = stream_mod._numba().SERIAL_MAX if stream_mod._numba() is not None else 1 << 16
# 1 element, a partial Philox block, both sides of the serial threshold, and more than two of the
# torch path's chunks (also more than one bfloat16 scratch chunk of the fast path is not needed:
# tests/rng/test_stream.py covers that on the CPU).
SIZES = [1, 3, 4097, SERIAL_MAX, SERIAL_MAX + 1, 2 * CHUNK + 5]


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().contiguous().view(torch.uint8)


def _same_bits(gpu: torch.Tensor, cpu: torch.Tensor) -> bool:
    assert gpu.device.type == "cuda" and cpu.device.type == "cpu"
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    return torch.equal(_bits(gpu), _bits(cpu))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("transform", TRANSFORMS, ids=repr)
def test_every_transform_and_dtype_equals_the_cpu_fast_path(transform, dtype):
    s = Stream(21, "blocks.3.mlp.weight")
    for n in SIZES:
        cpu = s.fill_(torch.empty(n, dtype=dtype), transform, backend="numba")
        gpu = s.fill_(torch.empty(n, dtype=dtype, device="cuda"), transform)
        assert _same_bits(gpu, cpu), f"n={n}"


# (shape of the box, full shape, offsets)
BOXES = [
    ((5,), (1000,), (3,)),
    ((7, 5), (7, 5), (0, 0)),
    ((5, 7), (100, 700), (95, 693)),
    ((3, 1), (9, 4), (2, 3)),  # one column: runs of length 1
    ((2, 3, 5), (4, 6, 10), (1, 2, 5)),
    ((2, 1, 3, 3), (8, 4, 3, 3), (5, 2, 0, 0)),  # trailing dims whole: merged into longer runs
    ((300, 257), (1000, 1031), (11, 7)),  # more than SERIAL_MAX elements in short runs
    ((2, 6), (70_000, 70_000), (69_998, 69_990)),  # flat indices past 2**32: the counter's high word
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("shape", "full", "offsets"), BOXES, ids=str)
def test_boxes_equal_the_cpu_fast_path(shape, full, offsets, dtype):
    s = Stream(8, "layers.0.attn.qkv.weight")
    for transform in (TRANSFORMS[0], TRANSFORMS[4], TRANSFORMS[6], TRANSFORMS[8]):
        cpu = s.fill_(torch.empty(shape, dtype=dtype), transform, full_shape=full, offsets=offsets, backend="numba")
        gpu = s.fill_(torch.empty(shape, dtype=dtype, device="cuda"), transform, full_shape=full, offsets=offsets)
        assert _same_bits(gpu, cpu), transform
        index = tuple(slice(o, o + n) for o, n in zip(offsets, shape, strict=True))
        by_index = s.fill_(torch.empty(shape, dtype=dtype, device="cuda"), transform, full_shape=full, index=index)
        assert _same_bits(by_index, cpu), transform


def test_a_box_equals_the_same_slice_of_the_full_generation_on_the_gpu():
    s = Stream(9, "w")
    t = TRANSFORMS[5]
    full = s.fill_(torch.empty(64, 48, 3, device="cuda"), t)
    part = s.fill_(torch.empty(10, 20, 3, device="cuda"), t, full_shape=(64, 48, 3), offsets=(50, 13, 0))
    assert torch.equal(part, full[50:60, 13:33])
    assert _same_bits(full, s.fill_(torch.empty(64, 48, 3), t, backend="numba"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_strided_destinations_equal_the_cpu_fast_path(dtype):
    s = Stream(10, "enc.weight")
    t = TRANSFORMS[3]
    for make in (
        lambda dev: torch.empty(600, 700, dtype=dtype, device=dev).t(),  # 700 x 600, transposed
        lambda dev: torch.empty(300, 2 * CHUNK // 300 + 7, dtype=dtype, device=dev)[:, ::2],  # every other column
    ):
        cpu_base, gpu_base = make("cpu"), make("cuda")
        assert not gpu_base.is_contiguous()
        cpu = s.fill_(cpu_base, t, backend="numba")
        gpu = s.fill_(gpu_base, t)
        assert _same_bits(gpu, cpu)
        assert _same_bits(gpu, s.fill_(torch.empty(cpu.shape, dtype=dtype), t, backend="numba"))


def test_random_access_values_on_the_gpu_equal_the_cpu_fill():
    s = Stream(11, "head.weight")
    full = s.fill_(torch.empty(1 << 20), TRANSFORMS[7], backend="numba")
    index = torch.randint(0, 1 << 20, (5000,), generator=torch.Generator().manual_seed(0))
    got = s.values(TRANSFORMS[7], index.cuda())
    assert _same_bits(got, full[index])
    words_cpu = s.words(torch.tensor([0, 1, 2**33 + 5]))
    assert torch.equal(s.words(torch.tensor([0, 1, 2**33 + 5], device="cuda")).cpu(), words_cpu)


def test_sparse_mask_on_the_gpu_equals_the_cpu_one():
    s = Stream(12, "sparse.weight")
    cpu = s.sparse_mask((37, 19), 11, full_shape=(100, 40), offsets=(60, 21))
    gpu = s.sparse_mask((37, 19), 11, full_shape=(100, 40), offsets=(60, 21), device="cuda")
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.cpu(), cpu)
    full = s.sparse_mask((100, 40), 11, device="cuda")
    assert full.sum(dim=0).tolist() == [11] * 40


# Arguments the registry's schemes need (the same table as tests/rules/test_sharded.py).
_REQUIRED_ARGS = {
    "constant": {"val": 0.25},
    "jax.constant": {"value": 0.25},
    "sparse": {"sparsity": 0.3},
    "jax.variance_scaling": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"},
    "fanin.padded_normal": {"padding_idx": 1, "std": 0.02},
    "fanin.zeros_after_uniform": {"a": -0.5, "b": 0.5},
    "fanin.gate_constant": {"values": [0.0, 1.0, 0.0, 0.0]},
    "fanin.gate_uniform": {"bounds": [0.1, 0.1, 1.0]},
}
_SHAPES = [(24, 18), (6, 4, 3), (4, 6, 3, 3), (4, 8, 3, 3, 3), (8, 6)]


def _registry():
    from fanin.schemes import list_schemes

    return list_schemes()


@pytest.mark.parametrize("name", _registry())
def test_every_registered_scheme_with_a_stream_equals_its_cpu_result(name):
    import fanin

    scheme = fanin.get({"name": name, "args": _REQUIRED_ARGS.get(name, {})})
    for shape in _SHAPES:
        try:
            cpu = scheme(torch.empty(shape), generator=Stream(0, name))
        except (TypeError, ValueError):
            continue  # a shape this scheme does not take (e.g. dirac on 2 dims)
        break
    else:
        pytest.fail(f"no shape of {_SHAPES} works for {name!r} on the CPU: extend _SHAPES or _REQUIRED_ARGS")
    for dtype in (torch.float32, torch.bfloat16):
        cpu = scheme(torch.empty(shape, dtype=dtype), generator=Stream(0, name))
        gpu = scheme(torch.empty(shape, dtype=dtype, device="cuda"), generator=Stream(0, name))
        assert _same_bits(gpu, cpu), (shape, dtype)


def test_a_model_materialized_on_the_gpu_equals_the_cpu_one():
    import fanin
    from fanin.models import GPT

    def build():
        with torch.device("meta"):
            return GPT(512, 64, 2, 4, 64)

    cpu, gpu = build(), build()
    fanin.materialize(cpu, "gpt2(n_layer=2)", device="cpu", seed=3)
    fanin.materialize(gpu, "gpt2(n_layer=2)", device="cuda", seed=3)
    want = dict(cpu.named_parameters())
    for name, p in gpu.named_parameters():
        assert _same_bits(p, want[name]), name
