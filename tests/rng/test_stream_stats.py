"""Distribution tests with fixed streams (deterministic), and the inverse CDF against scipy.

KS tests: 200,000 draws per case, the expected distribution built by hand with scipy.stats;
the threshold p > 1e-3 is fixed in advance (the streams are fixed, so the result is too).
The ndtri comparison covers 10,000,000 stream values (numba path; words by the torch reference).
"""

import math

import numpy as np
import pytest
import torch

from fanin.rng.philox import MASK32, philox4x32_10_torch
from fanin.rng.stream import Stream

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

N = 200_000


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (0.0, 0.02), (-3.0, 5.0)])
def test_uniform_ks(low, high):
    x = Stream(1, "ks.uniform").uniform_(torch.empty(N, dtype=torch.float64), low, high).numpy()
    assert stats.kstest(x, stats.uniform(loc=low, scale=high - low).cdf).pvalue > 1e-3
    assert abs(x.mean() - (low + high) / 2) < 5 * (high - low) / math.sqrt(12 * N)


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (0.5, 0.02), (-2.0, 3.0)])
def test_normal_ks(mean, std):
    x = Stream(2, "ks.normal").normal_(torch.empty(N, dtype=torch.float64), mean, std).numpy()
    assert stats.kstest(x, stats.norm(loc=mean, scale=std).cdf).pvalue > 1e-3
    assert abs(x.std() / std - 1) < 0.01


@pytest.mark.parametrize(
    ("mean", "std", "lower", "upper"),
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.0, 0.02, -0.04, 0.04),
        (0.0, 1.0, 2.0, 3.0),
        (1.0, 2.0, -9.0, -5.0),
        (0.0, 1.0, -1.0, 8.0),
    ],
)
def test_truncated_normal_ks(mean, std, lower, upper):
    x = Stream(3, "ks.trunc").truncated_normal_(torch.empty(N, dtype=torch.float64), mean, std, lower, upper).numpy()
    a, b = (lower - mean) / std, (upper - mean) / std
    assert stats.kstest(x, stats.truncnorm(a, b, loc=mean, scale=std).cdf).pvalue > 1e-3
    assert x.min() >= lower and x.max() <= upper


def test_sparse_positions_are_uniform_per_column():
    # Each row is zeroed in a column with probability num_zeros / rows.
    m = Stream(4, "ks.sparse").sparse_mask((50, 20_000), 10).float()
    freq = m.mean(dim=1).numpy()
    assert np.all(np.abs(freq - 0.2) < 5 * math.sqrt(0.2 * 0.8 / 20_000))


def test_inverse_cdf_matches_scipy_ndtri_to_the_last_float32_bit_on_10m_points():
    n = 10_000_000
    s = Stream(6, "ndtri.check")
    ours = s.normal_(torch.empty(n, dtype=torch.float32), 0.0, 1.0).numpy()
    k0, k1, w2 = s.key
    mismatches = 0
    for a in range(0, n, 2_000_000):  # the stream's own words, by the reference Philox
        blocks = torch.arange(a // 4, (a + 2_000_000) // 4, dtype=torch.int64)
        words = torch.stack(philox4x32_10_torch(blocks & MASK32, blocks >> 32, w2, 0, (k0, k1)), dim=1).reshape(-1)
        p = (words.numpy().astype(np.float64) + 0.5) * 2.0**-32
        ref = special.ndtri(p).astype(np.float32)
        mismatches += int(np.count_nonzero(ref != ours[a : a + 2_000_000]))
    assert mismatches == 0
