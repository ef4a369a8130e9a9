"""fanin.formulas.variance: the variance-scaling arithmetic, against values computed by hand."""

import math

import pytest
from scipy import stats

from fanin.formulas.variance import (
    DISTRIBUTIONS,
    TRUNCATED_NORMAL_STD,
    TRUNCATION,
    ScaledDistribution,
    scaled_variance,
    truncated_normal_stddev,
    truncnorm_mean,
    truncnorm_std,
    uniform_limit,
    untruncated_normal_stddev,
    variance_scaling,
)


def test_truncated_normal_constant_is_std_of_unit_truncnorm():
    # The literal Keras/TF/JAX divide by is the std of N(0, 1) cut at ±2.
    assert TRUNCATION == 2.0
    assert TRUNCATED_NORMAL_STD == pytest.approx(stats.truncnorm.std(-2, 2), rel=1e-15)
    assert TRUNCATED_NORMAL_STD == 0.87962566103423978


def test_scaled_variance_guard():
    assert scaled_variance(2.0, 50) == 2.0 / 50
    assert scaled_variance(2.0, 0) == 2.0  # max(1, 0) = 1, Keras/TF
    assert scaled_variance(2.0, 0.5) == 2.0  # max(1, 0.5) = 1
    assert scaled_variance(2.0, 0.5, guard=False) == 4.0  # JAX divides by the fan as it is
    assert scaled_variance(3, 4.0, guard=False) == 0.75


@pytest.mark.parametrize(
    ("scale", "fan", "dist", "limit", "stddev"),
    [
        # He uniform, fan 50: limit sqrt(3 * 2/50)
        (2.0, 50, "uniform", math.sqrt(6 / 50), None),
        # LeCun untruncated normal, fan 4: std sqrt(1/4)
        (1.0, 4, "untruncated_normal", None, 0.5),
        # Glorot truncated, fan_avg 100: std before truncation sqrt(1/100) / 0.8796...
        (1.0, 100, "truncated_normal", None, 0.1 / 0.87962566103423978),
        # zero fan with the guard: variance = scale
        (2.0, 0, "uniform", math.sqrt(6.0), None),
    ],
)
def test_variance_scaling_values(scale, fan, dist, limit, stddev):
    got = variance_scaling(scale, fan, dist)
    assert got.distribution == dist
    assert got.variance == pytest.approx(scale / max(1, fan), rel=1e-15)
    if limit is None:
        assert got.limit is None
    else:
        assert got.limit == pytest.approx(limit, rel=1e-15)
    if stddev is None:
        assert got.stddev is None
    else:
        assert got.stddev == pytest.approx(stddev, rel=1e-15)


def test_truncated_stddev_gives_target_std_after_truncation():
    # N(0, s^2) cut at ±2s has std s * 0.8796...; with s = sigma / 0.8796... that is sigma.
    s = variance_scaling(2.0, 18, "truncated_normal").stddev
    assert s * stats.truncnorm.std(-2, 2) == pytest.approx(math.sqrt(2 / 18), rel=1e-14)


def test_unguarded_variance_scaling():
    assert variance_scaling(1.0, 0.25, "untruncated_normal", guard=False).stddev == 2.0


def test_component_formulas():
    assert uniform_limit(1 / 3) == 1.0
    assert uniform_limit(0.25) == math.sqrt(0.75)
    assert untruncated_normal_stddev(0.25) == 0.5
    assert truncated_normal_stddev(0.01) == 0.1 / 0.87962566103423978
    assert DISTRIBUTIONS == ("truncated_normal", "uniform", "untruncated_normal")
    assert ScaledDistribution("uniform", 1.0, limit=2.0).stddev is None


@pytest.mark.parametrize(("a", "b"), [(-2.0, 2.0), (-1.0, 3.0), (2.0, 3.0), (-math.inf, 0.0), (0.5, math.inf)])
def test_truncnorm_std_closed_form(a, b):
    # Var = 1 + (a φ(a) - b φ(b)) / Z - ((φ(a) - φ(b)) / Z)^2, with a·φ(a) = 0 at a = ±inf.
    def pdf(x):
        return 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def xpdf(x):
        return 0.0 if math.isinf(x) else x * pdf(x)

    def cdf(x):
        return 0.5 * math.erfc(-x / math.sqrt(2))

    z = cdf(b) - cdf(a)
    m = (pdf(a) - pdf(b)) / z
    expected = math.sqrt(1 + (xpdf(a) - xpdf(b)) / z - m * m)
    assert truncnorm_std(a, b) == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2", 4), r"scale must be a finite number, got scale='2'"),
        ((True, 4), r"scale must be a finite number, got scale=True"),
        ((math.nan, 4), r"scale must be a finite number, got scale=nan"),
        ((1.0, math.inf), r"fan must be a finite number, got fan=inf"),
        ((1.0, -3), r"a fan is a count of units and cannot be negative, got fan=-3\.0"),
    ],
)
def test_scaled_variance_errors(args, message):
    with pytest.raises(ValueError, match=message):
        scaled_variance(*args)


def test_zero_fan_without_guard():
    with pytest.raises(
        ValueError, match=r"the fan is 0 \(fan=0\): a weight with a zero-size input or output axis has no fan"
    ):
        scaled_variance(1.0, 0, guard=False)


def test_normal_is_ambiguous():
    with pytest.raises(
        ValueError,
        match=r"distribution='normal' is ambiguous: Keras and TF 1\.x mean 'truncated_normal', JAX means "
        r"'untruncated_normal'",
    ):
        variance_scaling(1.0, 4, "normal")


def test_unknown_distribution():
    with pytest.raises(
        ValueError,
        match=r"Unknown distribution 'unifrom'\. Did you mean 'uniform'\? Accepted: 'truncated_normal', 'uniform', "
        r"'untruncated_normal'\.",
    ):
        variance_scaling(1.0, 4, "unifrom")


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (1.0, 1.0, r"truncnorm_std needs lower < upper, got lower=1\.0, upper=1\.0"),
        (2.0, -2.0, r"truncnorm_std needs lower < upper, got lower=2\.0, upper=-2\.0"),
        (math.nan, 1.0, r"lower must be a number \(infinities allowed\), got lower=nan"),
        (0.0, "1", r"upper must be a number \(infinities allowed\), got upper='1'"),
        (
            1e5,
            1e5 + 1,
            r"the std of N\(0, 1\) truncated to \[lower, upper\] is not computable in double precision "
            r"\(scipy\.stats\.truncnorm gives nan\), got lower=100000\.0, upper=100001\.0",
        ),
    ],
)
def test_truncnorm_std_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        truncnorm_std(a, b)


def test_truncnorm_std_in_a_far_tail():
    # Far in the tail the closed form above cancels (it gives 0.1508260, 6 digits); scipy keeps
    # ~1e-11. Reference: the same closed form at 50 significant digits (mpmath, dps=50).
    assert truncnorm_std(6.0, 7.0) == pytest.approx(0.15082566465131765154, rel=1e-9)


@pytest.mark.parametrize(("a", "b"), [(-2.0, 2.0), (-1.0, 3.0), (0.0, 2.0), (-math.inf, 0.0), (0.5, math.inf)])
def test_truncnorm_mean_closed_form(a, b):
    # E[Z | a <= Z <= b] = (φ(a) - φ(b)) / (Φ(b) - Φ(a)), by hand
    def pdf(x):
        return 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return 0.5 * math.erfc(-x / math.sqrt(2))

    expected = (pdf(a) - pdf(b)) / (cdf(b) - cdf(a))
    assert truncnorm_mean(a, b) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_truncnorm_mean_in_a_tail():
    # At [6, 7] the mass is Φ(7) - Φ(6) ~ 1e-9: by hand with the upper tail erfc(x/√2)/2, which keeps
    # its digits there (1 - Φ would not).
    def pdf(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    mass = 0.5 * (math.erfc(6 / math.sqrt(2)) - math.erfc(7 / math.sqrt(2)))
    assert truncnorm_mean(6.0, 7.0) == pytest.approx((pdf(6) - pdf(7)) / mass, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (1.0, 1.0, r"truncnorm_mean needs lower < upper, got lower=1\.0, upper=1\.0"),
        (math.nan, 1.0, r"lower must be a number \(infinities allowed\), got lower=nan"),
        (0.0, None, r"upper must be a number \(infinities allowed\), got upper=None"),
    ],
)
def test_truncnorm_mean_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        truncnorm_mean(a, b)
