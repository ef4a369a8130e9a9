"""One streaming pass: exact moments (to order 8) over all values whatever the chunking, row and
column sums, padding rows left out, values near the float64 limit, the fixed sample and submatrix."""

import math

import numpy as np
import pytest
import torch

import fanin.auditing.scanning as scan_module
from fanin.auditing.scanning import SAMPLE_SIZE, SPECTRUM_SHAPE, Moments, scan, submatrix


def _central(x, k):
    return ((x - x.mean()) ** k).mean()


@pytest.mark.parametrize("chunk", [7, 64, 1000, 1 << 20])
def test_moments_are_exact_whatever_the_chunks(monkeypatch, chunk):
    monkeypatch.setattr(scan_module, "CHUNK", chunk)
    x = torch.randn(37, 29, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3 + 1
    s = scan(x)
    d = x.numpy()
    assert s.n == d.size and math.isclose(s.mean, d.mean(), rel_tol=1e-13)
    for k in range(2, 9):
        assert math.isclose(s.moments.m(k) * s.unit**k, _central(d, k), rel_tol=1e-10), k
    assert s.row_sum is not None and s.row_sq is not None and s.col_sum is not None and s.col_sq is not None
    assert np.allclose(s.row_sum * s.unit, d.sum(1), rtol=1e-12)
    assert np.allclose(s.row_sq * s.unit**2, (d * d).sum(1), rtol=1e-12)
    assert np.allclose(s.col_sum * s.unit, d.sum(0), rtol=1e-12, atol=1e-12)
    assert np.allclose(s.col_sq * s.unit**2, (d * d).sum(0), rtol=1e-12)
    assert (s.min, s.max) == (d.min(), d.max())


def test_merge_and_removal_invert_each_other():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(100) * 2, rng.uniform(-1, 5, 37)
    merged = Moments.merge(Moments.of(a), Moments.of(b))
    whole = Moments.of(np.concatenate([a, b]))
    assert np.allclose(merged.central, whole.central, rtol=1e-12) and math.isclose(merged.mean, whole.mean)
    back = merged.without(Moments.of(b))
    assert np.allclose(back.central, Moments.of(a).central, rtol=1e-9) and math.isclose(back.mean, a.mean())


def test_padding_rows_are_left_out_exactly():
    x = torch.randn(50, 20, generator=torch.Generator().manual_seed(2)) + 0.3
    x[[3, 7]] = 0
    s = scan(x).without_rows([3, 7], x)
    kept = np.delete(x.double().numpy(), [3, 7], axis=0)
    assert s.n == kept.size and s.rows == 48 and s.excluded_rows == (3, 7)
    assert math.isclose(s.mean, kept.mean(), rel_tol=1e-12) and math.isclose(s.var, kept.var(), rel_tol=1e-10)
    assert (s.min, s.max) == (kept.min(), kept.max())
    assert np.all(np.isin(s.sample * s.unit, kept))


def test_values_near_the_float64_limit_do_not_overflow():
    x = torch.tensor([1e308, -1e308, 1e308, 5e307], dtype=torch.float64)
    s = scan(x)
    assert math.isfinite(s.std) and math.isclose(s.std, float(np.std(x.numpy() / 1e300)) * 1e300, rel_tol=1e-12)
    assert s.unit == 2.0**1023


def test_non_finite_values_are_counted():
    x = torch.tensor([1.0, math.nan, math.inf, -math.inf, math.inf])
    s = scan(x)
    assert (s.nan, s.posinf, s.neginf, s.finite) == (1, 2, 1, False)


def test_the_sample_is_fixed_and_of_the_stated_size():
    x = torch.randn(300, 100, generator=torch.Generator().manual_seed(3))
    a, b = scan(x), scan(x.clone())
    assert a.sample.size == SAMPLE_SIZE and np.array_equal(a.sample, b.sample)
    assert np.array_equal(np.sort(a.sample_index), a.sample_index) and np.unique(a.sample_index).size == SAMPLE_SIZE
    assert np.array_equal(a.sample * a.unit, x.reshape(-1).double().numpy()[a.sample_index])
    small = scan(torch.arange(10.0))
    assert small.sample.size == 10 and np.array_equal(small.sample * small.unit, np.arange(10.0))


def test_non_contiguous_views_are_read_without_a_copy_of_the_whole():
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(4))
    t = x.t()
    s = scan(t)
    assert s.row_sq is not None
    assert np.allclose(s.row_sq * s.unit**2, (t.double() ** 2).sum(1).numpy())
    assert np.array_equal(s.sample * s.unit, t.reshape(-1).double().numpy()[s.sample_index])


def test_submatrix_is_bounded_and_reads_only_its_values():
    x = torch.randn(2000, 3000, generator=torch.Generator().manual_seed(5))
    m = submatrix(x)
    assert m.shape == SPECTRUM_SHAPE
    tall = submatrix(torch.randn(3000, 100))
    assert tall.shape == (SPECTRUM_SHAPE[1], 100)
    keep = np.ones(50, dtype=bool)
    keep[0] = False
    z = torch.randn(50, 20)
    z[0] = 0
    assert submatrix(z, keep).shape == (49, 20) and not np.any(np.all(submatrix(z, keep) == 0, axis=1))


def test_empty_tensor():
    s = scan(torch.empty(0, 4))
    assert s.n == 0 and math.isnan(s.mean)
