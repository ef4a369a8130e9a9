"""Any slice or box of a parameter, generated alone, equals that part of the full generation.

Sizes: for each of 3 element-wise schemes x 4 dtypes, 25 random full shapes (1-4 dims, up to
~6k elements) x 20 random boxes = 500 boxes, every 5th through the torch reference and the
rest through the default backend, against a full generation by the torch reference. Plus long
rows (> one 16k-element work unit) and strided destinations.
"""

import math
import random

import pytest
import torch

from fanin.rng.stream import Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

SCHEMES = {
    "uniform": Uniform(-0.3, 0.7),
    "normal": Normal(0.0, 0.02),
    "truncated_normal": TruncatedNormal(0.0, 1.0, -2.0, 2.0),
}
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def _random_shape(rng: random.Random) -> tuple[int, ...]:
    dims = rng.randint(1, 4)
    limit = {1: 6000, 2: 90, 3: 20, 4: 9}[dims]
    return tuple(rng.randint(1, limit) for _ in range(dims))


def _random_box(rng: random.Random, full: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    offs, shape = [], []
    for n in full:
        kind = rng.random()
        if kind < 0.3:
            a, b = 0, n  # whole dim (lets trailing dims merge into long runs)
        elif kind < 0.45:
            a = rng.randrange(n)
            b = a + 1
        else:
            a = rng.randrange(n)
            b = rng.randint(a + 1, n)
        offs.append(a)
        shape.append(b - a)
    return tuple(offs), tuple(shape)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_500_random_boxes_equal_the_full_generation(scheme, dtype):
    transform = SCHEMES[scheme]
    rng = random.Random(f"{scheme}-{dtype}")
    stream = Stream(rng.getrandbits(64), f"box.{scheme}")
    checked = 0
    for _ in range(25):
        full_shape = _random_shape(rng)
        full = stream.fill_(torch.empty(full_shape, dtype=dtype), transform, backend="torch")
        for k in range(20):
            offs, shape = _random_box(rng, full_shape)
            backend = "torch" if k % 5 == 0 else "auto"
            part = stream.fill_(
                torch.empty(shape, dtype=dtype), transform, full_shape=full_shape, offsets=offs, backend=backend
            )
            expected = full[tuple(slice(o, o + n) for o, n in zip(offs, shape, strict=True))]
            assert torch.equal(part.view(torch.uint8), expected.contiguous().view(torch.uint8)), (
                full_shape,
                offs,
                shape,
                backend,
            )
            checked += 1
    assert checked == 500


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_long_rows_and_1d_slices(scheme):
    transform = SCHEMES[scheme]
    s = Stream(3, "long")
    full = s.fill_(torch.empty(3, 40_001), transform)
    assert torch.equal(full, s.fill_(torch.empty(3, 40_001), transform, backend="torch"))
    part = s.fill_(torch.empty(2, 35_000), transform, full_shape=(3, 40_001), offsets=(1, 3))
    assert torch.equal(part, full[1:3, 3:35_003])
    flat = full.view(-1)
    rng = random.Random(0)
    for _ in range(30):
        a = rng.randrange(flat.numel())
        b = rng.randint(a + 1, min(flat.numel(), a + 50_000))
        piece = s.fill_(torch.empty(b - a), transform, full_shape=(flat.numel(),), offsets=(a,))
        assert torch.equal(piece, flat[a:b])


def test_index_slices_and_strided_destinations():
    s = Stream(4, "w")
    t = Normal(1.0, 3.0)
    full = s.fill_(torch.empty(50, 60, 7), t)
    part = s.fill_(torch.empty(10, 60, 3), t, full_shape=(50, 60, 7), index=(slice(5, 15), slice(None), slice(4, 7)))
    assert torch.equal(part, full[5:15, :, 4:7])
    dst = torch.zeros(60, 50).t()  # non-contiguous (50, 60) view
    s.fill_(dst, t, full_shape=(50, 60, 7)[:2], offsets=(0, 0))
    assert torch.equal(dst, s.fill_(torch.empty(50, 60), t))
    big = torch.zeros(700, 900, dtype=torch.bfloat16)
    view = big[:, 100:800]  # strided, larger than one scratch chunk
    s.fill_(view, t, full_shape=(700, 1000), offsets=(0, 50))
    assert torch.equal(view, s.fill_(torch.empty(700, 1000, dtype=torch.bfloat16), t)[:, 50:750])
    assert float(big[:, :100].abs().sum()) == 0.0


def test_boxes_of_huge_logical_tensors_are_cheap():
    # A 2**20 x 2**20 parameter is never materialized: one row of it is generated alone.
    s = Stream(5, "embed.weight")
    row = s.normal_(torch.empty(1, 8), 0.0, 1.0, full_shape=(2**20, 2**20), offsets=(2**20 - 1, 2**20 - 8))
    idx = torch.arange(2**40 - 8, 2**40)
    assert torch.equal(row.view(-1), s.values(Normal(0.0, 1.0), idx))


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"full_shape": (4, 4), "offsets": (3, 0)}, ValueError, "offsets\\[0\\]=3"),
        ({"full_shape": (4,), "offsets": (0,)}, ValueError, "same number of dims"),
        ({"full_shape": (4, 4), "offsets": (0, 0), "index": (slice(0, 2),)}, TypeError, "not both"),
        ({"full_shape": (4, 4), "index": (slice(0, 3), slice(None))}, ValueError, "selects 3 entries"),
        ({"full_shape": (4, 4), "index": (slice(0, 4, 2), slice(None))}, ValueError, "step 1"),
        ({"full_shape": "44"}, TypeError, "full_shape="),
    ],
)
def test_bad_boxes_are_refused(kwargs, error, text):
    with pytest.raises(error, match=text):
        Stream(0, "w").normal_(torch.empty(2, 4), 0.0, 1.0, **kwargs)


def test_geometry_merges_fully_covered_trailing_dims():
    from fanin.rng.stream import _geometry

    assert _geometry((2, 3, 4), (5, 3, 4), (1, 0, 0)) == (12, (), (), 24)
    assert _geometry((2, 2, 4), (5, 3, 4), (1, 1, 0)) == (16, (2,), (12,), 8)
    assert _geometry((), (), ()) == (0, (), (), 1)
    assert math.prod((2, 2, 4)) == 2 * 8
