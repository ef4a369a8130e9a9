"""The float64 building blocks of the stream transforms: log, sqrt, ndtri, Phi."""

import math
import struct

import numpy as np
import pytest
import torch

from fanin.rng import transforms as T


def _ulps(a: float, b: float) -> int:
    ia, ib = (struct.unpack("<q", struct.pack("<d", x))[0] for x in (a, b))
    return abs(ia - ib)


def test_own_log_is_within_one_ulp_of_the_c_library():
    g = np.random.default_rng(1)
    x = np.concatenate([g.uniform(1e-300, 1.0, 20000), g.uniform(0.5, 2.0, 20000), 2.0 ** g.uniform(-1000, 10, 2000)])
    ours = T.log_torch(torch.from_numpy(x)).numpy()
    assert max(_ulps(a, b) for a, b in zip(ours, np.log(x), strict=True)) <= 1
    assert all(T.log_scalar(float(v)) == o for v, o in zip(x[:2000], ours[:2000], strict=True))
    assert T.log_scalar(1.0) == 0.0


def test_sqrt_torch_is_correctly_rounded():
    x = torch.from_numpy(np.random.default_rng(2).uniform(0.5, 800.0, 200000))
    assert np.array_equal(T.sqrt_torch(x).numpy(), np.sqrt(x.numpy()))  # numpy's sqrt is IEEE


def test_ndtri_scalar_torch_and_scipy_agree():
    scipy_special = pytest.importorskip("scipy.special")
    g = np.random.default_rng(3)
    p = np.concatenate([(g.integers(0, 2**32, 100000) + 0.5) * 2.0**-32, 10.0 ** g.uniform(-300, -1, 5000)])
    ours = T.ndtri_torch(torch.from_numpy(p)).numpy()
    ref = scipy_special.ndtri(p)
    assert np.max(np.abs(ours - ref) / np.abs(ref)) < 4e-15
    assert all(T.ndtri_scalar(float(v)) == o for v, o in zip(p[::50], ours[::50], strict=True))


def test_phi_host_is_correctly_rounded_against_known_values():
    # Phi(-2), Phi(-1), Phi(-5) to 20 digits (Abramowitz & Stegun / mpmath).
    assert T.phi_host(-2.0) == 0.022750131948179207200
    assert T.phi_host(-1.0) == 0.15865525393145705142
    assert T.phi_host(-5.0) == 2.8665157187919391167e-07
    assert T.phi_host(0.0) == 0.5 and T.phi_host(math.inf) == 1.0 and T.phi_host(-math.inf) == 0.0
    assert T.phi_host(3.0) == 1.0 - 0.0013498980316300945267


@pytest.mark.parametrize(
    ("cls", "args", "error"),
    [
        (T.Uniform, (1.0, 0.0), ValueError),
        (T.Uniform, (0.0, math.inf), ValueError),
        (T.Uniform, ("0", 1.0), TypeError),
        (T.Normal, (0.0, -1.0), ValueError),
        (T.TruncatedNormal, (0.0, 0.0, -1.0, 1.0), ValueError),
        (T.TruncatedNormal, (0.0, 1.0, 1.0, 1.0), ValueError),
        (T.TruncatedNormal, (0.0, 1.0, 50.0, 60.0), ValueError),
        (T.TruncatedNormal, (0.0, 1.0, math.nan, 1.0), TypeError),
    ],
)
def test_transform_arguments_are_checked(cls, args, error):
    with pytest.raises(error):
        cls(*args)
