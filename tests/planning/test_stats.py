"""Plan statistics read from the schemes' own draws, checked against formulas computed by hand."""

import math

import pytest
from scipy import stats as sps

from fanin.planning.stats import scheme_statistics
from fanin.schemes import get


@pytest.mark.parametrize(
    ("spec", "shape", "distribution", "std", "high"),
    [
        ("uniform(a=-0.5, b=1.5)", (3, 4), "uniform", 2 / math.sqrt(12), 1.5),
        ("normal(mean=1.0, std=0.3)", (7,), "normal", 0.3, None),
        ("kaiming_normal(mode='fan_out', nonlinearity='relu')", (8, 4, 3, 3), "normal", math.sqrt(2 / 72), None),
        ("xavier_uniform(gain=2.0)", (10, 30), "uniform", 2 * math.sqrt(2 / 40), 2 * math.sqrt(6 / 40)),
        ("keras.he_uniform", (16, 8), "uniform", math.sqrt(2 / 8), math.sqrt(6 / 8)),
        (
            "keras.glorot_normal",
            (16, 8),
            "truncated normal",
            math.sqrt(2 / 24),
            2 * math.sqrt(2 / 24) / float(sps.truncnorm.std(-2, 2)),
        ),
        ("orthogonal(gain=2.0)", (4, 9), "orthogonal", 2 / 3, 2.0),
        ("orthogonal", (9, 4), "orthogonal", 1 / 3, 1.0),
        ("constant(val=0.25)", (3,), "constant", 0.0, 0.25),
        ("zeros", (3,), "constant", 0.0, 0.0),
        ("keras.ones", (3,), "constant", 0.0, 1.0),
    ],
)
def test_statistics_by_hand(spec, shape, distribution, std, high):
    s = scheme_statistics(get(spec), shape)
    assert s.distribution == distribution
    assert s.std == pytest.approx(std, rel=1e-12)
    if high is None:
        assert s.high is None
    else:
        assert s.high == pytest.approx(high, rel=1e-12)


def test_trunc_normal_std_after_truncation():
    # N(0, 1) cut at [-1, 1]: std = truncnorm(-1, 1).std
    s = scheme_statistics(get("trunc_normal(std=1.0, a=-1.0, b=1.0)"), (5,))
    assert s.std == pytest.approx(float(sps.truncnorm.std(-1, 1)), rel=1e-12)
    assert (s.low, s.high, s.bound) == (-1.0, 1.0, 1.0)


def test_unknowable_statistics_are_none():
    assert scheme_statistics(get("eye"), (3, 3)) is None
    assert scheme_statistics(get("keras.random_normal(seed=3)"), (3, 3)) is None  # its own generator
    assert scheme_statistics(get("normal"), (0, 3)) is None
    assert str(scheme_statistics(get("sparse(sparsity=0.5, std=0.1)"), (4, 4))) == "sparse normal std 0.1"


def test_shape_errors_propagate():
    with pytest.raises(
        ValueError, match="Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    ):
        scheme_statistics(get("kaiming_uniform"), (5,))
