import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.integrate import quad
from torch import nn

import fanin
from fanin.activations import (
    GainError,
    UnknownActivationError,
    activation_function,
    activation_names,
    compare_gains,
    gain,
)
from fanin.formulas import calculate_gain

# The reference, written out here from torch.nn.functional (not from fanin's table): each name's
# function and the points where it is not smooth, for scipy's adaptive quadrature.
REFERENCE = {
    "linear": (lambda x: x, ()),
    "relu": (F.relu, (0.0,)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.01), (0.0,)),
    "tanh": (torch.tanh, ()),
    "sigmoid": (torch.sigmoid, ()),
    "gelu": (F.gelu, ()),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ()),
    "silu": (F.silu, ()),
    "swish": (F.silu, ()),
    "mish": (F.mish, ()),
    "elu": (F.elu, (0.0,)),
    "selu": (F.selu, (0.0,)),
    "celu": (F.celu, (0.0,)),
    "softplus": (F.softplus, (20.0,)),
    "hardtanh": (F.hardtanh, (-1.0, 1.0)),
    "relu6": (F.relu6, (0.0, 6.0)),
    "hardswish": (F.hardswish, (-3.0, 3.0)),
    "hardsigmoid": (F.hardsigmoid, (-3.0, 3.0)),
    "softsign": (F.softsign, (0.0,)),
    "tanhshrink": (F.tanhshrink, ()),
    "logsigmoid": (F.logsigmoid, ()),
    "softshrink": (F.softshrink, (-0.5, 0.5)),
    "hardshrink": (F.hardshrink, (-0.5, 0.5)),
    "identity": (lambda x: x, ()),
    **{name: (lambda x: x, ()) for name in ("conv1d", "conv2d", "conv3d")},
    **{name: (lambda x: x, ()) for name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")},
}


def quad_gain(f, breakpoints=()):
    """1/sqrt(E[f(z)^2]) by scipy's adaptive quadrature, piece by piece between the breakpoints."""

    def integrand(x):
        y = f(torch.tensor([x], dtype=torch.float64)).item()
        return y * y * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    edges = sorted({-40.0, 40.0, *range(-12, 13, 2), *breakpoints})
    pieces = itertools.pairwise(edges)
    total = math.fsum(quad(integrand, a, b, epsabs=1e-17, epsrel=1e-12, limit=200)[0] for a, b in pieces)
    return 1 / math.sqrt(total)


def test_reference_covers_every_name():
    assert set(REFERENCE) == set(activation_names())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_exact_gain_matches_scipy_quad(name):
    f, kinks = REFERENCE[name]
    assert gain(name) == pytest.approx(quad_gain(f, kinks), rel=1e-9, abs=0)


@pytest.mark.parametrize(
    ("name", "param", "f", "kinks"),
    [
        ("leaky_relu", 0.2, lambda x: F.leaky_relu(x, 0.2), (0.0,)),
        ("elu", 0.5, lambda x: F.elu(x, 0.5), (0.0,)),
        ("celu", 2.0, lambda x: F.celu(x, 2.0), (0.0,)),
        ("softplus", 10.0, lambda x: F.softplus(x, 10.0), (2.0,)),  # torch's threshold jump at 20/beta
        ("softshrink", 1.3, lambda x: F.softshrink(x, 1.3), (-1.3, 1.3)),
        ("hardshrink", 0.25, lambda x: F.hardshrink(x, 0.25), (-0.25, 0.25)),
    ],
)
def test_exact_gain_with_param_matches_scipy_quad(name, param, f, kinks):
    assert gain(name, param=param) == pytest.approx(quad_gain(f, kinks), rel=1e-9, abs=0)


def test_closed_forms():
    assert gain("relu") == pytest.approx(math.sqrt(2), rel=1e-12, abs=0)
    assert gain("linear") == pytest.approx(1.0, rel=1e-12, abs=0)
    for a in (0.0, 0.01, 0.2, 1.0, 5.0):
        assert gain("leaky_relu", param=a) == pytest.approx(math.sqrt(2 / (1 + a * a)), rel=1e-12, abs=0)
    # SELU's constants are chosen so that E[selu(z)^2] = 1 (the self-normalizing fixed point).
    assert gain("selu") == pytest.approx(1.0, rel=1e-9, abs=0)
    # E[hardtanh(z)^2] = P(|z| > 1) + E[z^2; |z| < 1] = 2Q(1) + (1 - 2Q(1)) - 2 phi(1)
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    assert gain("hardtanh") == pytest.approx(1 / math.sqrt(1 - 2 * phi1), rel=1e-12, abs=0)


def test_modules_and_functions_resolve_to_named_activations():
    assert gain(nn.Tanh()) == gain("tanh")
    assert gain(nn.LeakyReLU(0.2)) == gain("leaky_relu", param=0.2)
    assert gain(nn.GELU(approximate="tanh")) == gain("gelu_tanh")
    assert gain(nn.ReLU6()) == gain("relu6")
    assert gain(nn.ELU(alpha=0.5)) == gain("elu", param=0.5)
    assert gain(torch.tanh) == gain("tanh")
    assert gain(F.relu) == gain("relu")


def test_unknown_module_is_called_in_float64():
    # PReLU holds a float32 weight (0.25): fanin evaluates a float64 copy of it.
    assert gain(nn.PReLU()) == pytest.approx(math.sqrt(2 / (1 + 0.25**2)), rel=1e-12, abs=0)
    assert gain(nn.Sequential(nn.Tanh(), nn.Identity())) == pytest.approx(gain("tanh"), rel=1e-12, abs=0)


def test_callable_with_kinks_on_the_grid_is_exact():
    assert gain(lambda x: torch.clamp(x, -2.0, 0.5)) == pytest.approx(
        quad_gain(lambda x: torch.clamp(x, -2.0, 0.5), (-2.0, 0.5)), rel=1e-9, abs=0
    )


def test_callable_with_unknown_kink_raises_then_breakpoints_fix_it():
    def shifted(x):
        return torch.relu(x - 0.3)

    with pytest.raises(GainError, match=r"did not converge to 1e-9.*breakpoints=\[0\.3\]"):
        gain(shifted)
    assert gain(shifted, breakpoints=[0.3]) == pytest.approx(quad_gain(shifted, (0.3,)), rel=1e-9, abs=0)


def test_std_ratio_reproduces_the_documents_measurement():
    # The document: 10,000 samples, std(x)/std(tanh(x)) "about 1.6". The estimate's relative
    # standard error is about 0.5% at this size; 0.03 is about 4 of them.
    value = gain("tanh", method="std_ratio", samples=10_000, seed=0)
    assert abs(value - 1.6) < 0.03
    assert abs(value - gain("tanh")) < 0.03
    assert value == gain(nn.Tanh(), method="std_ratio", samples=10_000, seed=0)
    assert gain("tanh", method="std_ratio", samples=10_000, seed=1) != value


def test_std_ratio_is_not_the_second_moment_gain():
    # ReLU: std(relu(z)) = sqrt(1/2 - 1/(2 pi)), so the std ratio is about 1.71, not sqrt 2.
    expected = 1 / math.sqrt(0.5 - 1 / (2 * math.pi))
    assert gain("relu", method="std_ratio", samples=100_000) == pytest.approx(expected, rel=0.01)


MC_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "gelu", "selu", "elu", "silu", "softplus", "leaky_relu")


def test_monte_carlo_estimates_the_exact_gain_within_its_standard_error():
    # 10 activations, one seed each: |estimate - exact| < 4 standard errors. Under the normal
    # approximation each fails with probability 6.3e-5; all ten pass with probability > 0.999.
    for name in MC_ACTIVATIONS:
        c = compare_gains(name, samples=50_000, seed=7)
        assert abs(c.monte_carlo - c.exact) < 4 * c.monte_carlo_se, (name, c)
        assert 0 < c.monte_carlo_se < 0.02 * c.exact


def test_monte_carlo_standard_error_is_calibrated():
    # 200 seeds of ReLU at 2,000 draws: the interval estimate ± 1.96 se covers the exact gain for
    # about 95% of seeds if the delta-method error is right. Binomial test against p = 0.95 at
    # level 1e-3 (two-sided); a standard error too small by a third would cover ~82% and fail.
    from scipy.stats import binomtest

    exact = math.sqrt(2)
    covered = 0
    for seed in range(200):
        c = compare_gains("relu", samples=2_000, seed=seed)
        covered += abs(c.monte_carlo - exact) < 1.96 * c.monte_carlo_se
    assert binomtest(covered, 200, 0.95).pvalue > 1e-3, covered


def test_monte_carlo_mean_tells_when_the_std_ratio_is_the_gain():
    # E[f(z)] = 0 for odd f (tanh): the std ratio estimates the gain; E[relu(z)] = 1/sqrt(2 pi).
    tanh, relu = compare_gains("tanh"), compare_gains("relu")
    assert tanh.std_ratio_valid and abs(tanh.std_ratio - tanh.exact) < 0.02
    assert not relu.std_ratio_valid
    assert abs(relu.mean - 1 / math.sqrt(2 * math.pi)) < 4 * relu.mean_se
    assert gain("relu", method="monte_carlo", samples=100_000, seed=0) == compare_gains("relu").monte_carlo


def test_compare_gains_records_and_notes():
    tanh = compare_gains("tanh")
    assert tanh.table == 5 / 3
    assert tanh.exact == pytest.approx(1.5925374197, rel=1e-9)
    assert round(tanh.std_ratio, 1) == 1.6 and round(tanh.monte_carlo, 1) == 1.6
    assert "5/3" in tanh.note

    selu = compare_gains("selu")
    assert selu.table == 0.75
    assert "24991" in selu.note and "nonlinearity='linear'" in selu.note

    sigmoid = compare_gains("sigmoid")
    assert sigmoid.table == 1.0
    assert sigmoid.exact == pytest.approx(1.8462285453, rel=1e-9)
    assert "zero-mean" in sigmoid.note

    relu = compare_gains("relu")
    assert relu.table == math.sqrt(2) and relu.note is None
    leaky = compare_gains(nn.LeakyReLU(0.2))
    assert leaky.table == calculate_gain("leaky_relu", 0.2) and leaky.param == 0.2
    assert leaky.activation == "leaky_relu (LeakyReLU)"
    assert compare_gains("leaky_relu").table == calculate_gain("leaky_relu")
    gelu = compare_gains("gelu")
    assert gelu.table is None and gelu.note is None
    assert compare_gains("conv2d").table == 1.0
    assert set(tanh.to_dict()) == {
        "activation",
        "param",
        "exact",
        "table",
        "monte_carlo",
        "monte_carlo_se",
        "mean",
        "mean_se",
        "std_ratio",
        "std_ratio_valid",
        "samples",
        "seed",
        "note",
    }


def test_fast_but_integrable_growth():
    # E[exp(a z^2)] = 1/sqrt(1 - 2a); with f = exp(z^2/4.5), a = 2/4.5 and E = 3.
    assert gain(lambda x: torch.exp(x * x / 4.5)) == pytest.approx(1 / math.sqrt(3), rel=1e-9, abs=0)


def test_tanh_fixed_point_under_torchs_gain():
    # The module docs: with gain 5/3 the pre-activation variance q settles where
    # q = (5/3)^2 E[tanh(sqrt(q) z)^2], about 1.18, not 1.
    q = 1.0
    for _ in range(60):
        scale = math.sqrt(q)
        q = (5 / 3) ** 2 / gain(lambda x, s=scale: torch.tanh(s * x)) ** 2
    assert q == pytest.approx(1.18, abs=0.005)


def test_activation_function():
    x = torch.tensor([-2.0, 3.0])
    assert torch.equal(activation_function("leaky_relu", 0.5)(x), torch.tensor([-1.0, 3.0]))
    assert torch.equal(activation_function("swish")(x), F.silu(x))


def test_public_export():
    assert fanin.gain is gain


def test_unknown_name_suggests():
    with pytest.raises(UnknownActivationError, match=r"Unknown activation 'tanhh'. Did you mean 'tanh'"):
        gain("tanhh")
    with pytest.raises(ValueError, match=r"Did you mean 'leaky_relu'"):
        gain("leakyrelu")


def test_not_callable():
    with pytest.raises(TypeError, match=r"activation must be a name .* got activation=42 \(int\)"):
        gain(42)


@pytest.mark.parametrize(
    ("f", "match"),
    [
        (lambda x: torch.exp(x * x), r"returned a non-finite value, f\(.*\) = inf"),
        (lambda x: torch.log(x), r"returned a non-finite value, f\(-39\.99\d*\) = nan"),
        (lambda x: x[:3], r"must return a tensor of its input's shape"),
        (lambda x: torch.zeros_like(x), r"E\[f\(z\)\^2\] = 0\.0"),
        (lambda x: torch.exp(x * x / 4), r"not negligible beyond \|z\| = 30 \(6\.76 of 30\.7\): f grows too fast"),
        (lambda x: torch.full_like(x, 1e200), r"overflows float64"),
        (lambda x: torch.tanh(x.float()), r"returned torch.float32 for a float64 input"),
    ],
)
def test_bad_functions(f, match):
    with pytest.raises(GainError, match=match):
        gain(f)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Activation 'tanh' takes no param, got param=0.2"):
        gain("tanh", param=0.2)
    with pytest.raises(TypeError, match=r"param \(negative_slope of 'leaky_relu'\) must be a finite real number"):
        gain("leaky_relu", param=True)
    with pytest.raises(ValueError, match=r"param is only for activation names .* got param=0.1"):
        gain(nn.LeakyReLU(), param=0.1)
    with pytest.raises(ValueError, match=r"Unknown method 'exakt'. Did you mean 'exact'"):
        gain("tanh", method="exakt")
    with pytest.raises(ValueError, match=r"samples must be an int >= 2, got samples=1"):
        gain("tanh", method="std_ratio", samples=1)
    with pytest.raises(ValueError, match=r"samples must be an int >= 2, got samples=1.5"):
        gain("tanh", method="monte_carlo", samples=1.5)
    with pytest.raises(ValueError, match=r"Unknown method 'empirical'. Accepted: 'exact', 'monte_carlo', 'std_ratio'"):
        gain("tanh", method="empirical")
    with pytest.raises(GainError, match=r"activation 'zero' is 0 on every draw"):

        def zero(x):
            return x * 0

        gain(zero, method="monte_carlo")
    with pytest.raises(ValueError, match=r"breakpoints must be finite"):
        gain(torch.tanh, breakpoints=[np.inf])


def test_in_place_functions_do_not_change_the_samples():
    def relu_in_place(x):
        return x.relu_()

    assert gain(relu_in_place, method="std_ratio") == gain("relu", method="std_ratio")
    assert gain(relu_in_place, method="monte_carlo") == gain("relu", method="monte_carlo")
    assert gain(relu_in_place) == pytest.approx(math.sqrt(2), rel=1e-12, abs=0)
    assert gain(nn.Hardtanh(inplace=True)) == pytest.approx(gain("hardtanh"), rel=1e-12, abs=0)
