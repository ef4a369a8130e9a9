"""fanin.frameworks.draws: the one draw model, against parameters and moments computed by hand,
and against real draws of every registered scheme that has one distribution."""

import math

import pytest
import torch
from scipy import stats

import fanin
from fanin.errors import SchemeArgumentError
from fanin.frameworks.draws import KINDS, Draw, draw_of
from fanin.schemes.registry import list_schemes

# --- by hand ----------------------------------------------------------------------------------------


def test_uniform():
    # kaiming_uniform(a=sqrt(5)) on Linear(64, 16): bound gain * sqrt(3 / fan_in), gain^2 = 2 / 6
    bound = math.sqrt(2 / 6) * math.sqrt(3 / 64)
    d = draw_of(fanin.get("kaiming_uniform(a=sqrt(5))"), (16, 64))
    assert d.kind == "uniform"
    assert d.parameters == pytest.approx({"low": -bound, "high": bound}, rel=1e-15)
    assert (d.low, d.high) == (d.parameters["low"], d.parameters["high"])
    assert d.mean == 0.0 and d.std == pytest.approx(2 * bound / math.sqrt(12), rel=1e-15)


def test_normal_and_its_variance():
    d = draw_of(fanin.get("xavier_normal(gain=2.0)"), (10, 30))  # std = 2 sqrt(2 / 40)
    assert (d.kind, d.low, d.high) == ("normal", None, None)
    assert d.std == pytest.approx(2 * math.sqrt(2 / 40), rel=1e-15) and d.variance == pytest.approx(0.2, rel=1e-14)
    assert draw_of(fanin.get("normal(mean=0.5, std=2.0)"), (3, 3)).parameters == {"mean": 0.5, "std": 2.0}


def test_truncated_normal_moments():
    # N(1, 2^2) cut to [0, 5]: alpha = -0.5, beta = 2 (scipy.stats.truncnorm, the reference)
    d = draw_of(fanin.get("trunc_normal(mean=1.0, std=2.0, a=0.0, b=5.0)"), (4, 4))
    ref = stats.truncnorm(-0.5, 2.0, loc=1.0, scale=2.0)
    assert d.kind == "truncated normal" and (d.low, d.high) == (0.0, 5.0)
    assert d.parameters == {"mean": 1.0, "std": 2.0, "low": 0.0, "high": 5.0}
    assert d.mean == pytest.approx(ref.mean(), rel=1e-12) and d.std == pytest.approx(ref.std(), rel=1e-12)


def test_keras_truncated_normal_has_the_variance_scaling_variance():
    # keras.he_normal: variance 2 / fan_in after truncation, fan_in of the kernel (3, 3, 16, 32) = 144
    d = draw_of(fanin.get("keras.he_normal"), (32, 16, 3, 3))
    assert d.kind == "truncated normal" and d.variance == pytest.approx(2 / 144, rel=1e-12)
    assert d.high == pytest.approx(2 * d.parameters["std"], rel=1e-15) and d.mean == 0.0


@pytest.mark.parametrize(
    "spec, shape, rows, cols",
    [
        ("orthogonal(gain=2.0)", (8, 3, 5, 5), 8, 75),  # torch: (out, in * kh * kw)
        ("keras.orthogonal(gain=2.0)", (8, 3, 5, 5), 75, 8),  # the kernel (5, 5, 3, 8)
        ("jax.orthogonal(scale=2.0)", (8, 3), 3, 8),
    ],
)
def test_orthogonal(spec, shape, rows, cols):
    d = draw_of(fanin.get(spec), shape)
    assert d.kind == "orthogonal" and d.parameters == {"gain": 2.0, "rows": rows, "cols": cols}
    assert (d.mean, d.low, d.high) == (0.0, -2.0, 2.0) and d.std == pytest.approx(2 / math.sqrt(max(rows, cols)))


def test_sparse_normal_is_the_mixture():
    # sparse_(sparsity=0.25) of 10 rows: ceil(2.5) = 3 zeros per column, p = 0.3
    d = draw_of(fanin.get("sparse(sparsity=0.25, std=0.5)"), (10, 4))
    assert d.kind == "sparse normal" and d.parameters == {"mean": 0.0, "std": 0.5, "zeros": 3, "rows": 10}
    assert d.mean == 0.0 and d.variance == pytest.approx(0.25 * 0.7, rel=1e-15)


def test_constants():
    assert draw_of(fanin.get("constant(val=0.5)"), (3,)) == Draw("constant", {"value": 0.5}, 0.5, 0.0, 0.5, 0.5)
    assert draw_of(fanin.get("keras.ones"), (3, 2)).mean == 1.0
    assert draw_of(fanin.get("jax.zeros"), (3, 2)).mean == 0.0
    assert draw_of(fanin.get("keras.constant(value=[1.0, 2.0])"), (2, 3)) is None  # an array: no one value


@pytest.mark.parametrize(
    "spec, shape",
    [
        ("eye", (3, 3)),  # identity
        ("jax.delta_orthogonal", (4, 3, 3)),  # structured
        ("fanin.gatewise_orthogonal(gates=2)", (4, 3)),  # per gate
        ("fanin.gate_uniform(bounds=[0.1, 0.2])", (4, 3)),  # U(-1, 1) scaled per block
        ("kaiming_normal", (0, 3)),  # no element
    ],
)
def test_no_one_distribution(spec, shape):
    assert draw_of(fanin.get(spec), shape) is None


def test_a_seed_does_not_change_the_distribution():
    seeded, unseeded = fanin.get("keras.glorot_uniform(seed=3)"), fanin.get("keras.glorot_uniform")
    assert draw_of(seeded, (4, 6)) == draw_of(unseeded, (4, 6))


def test_what_the_scheme_raises_propagates():
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        draw_of(fanin.get("orthogonal"), (8,))
    with pytest.raises(ValueError, match=r"fanin.gate_constant: the first dimension must split into 3 equal gate"):
        draw_of(fanin.get("fanin.gate_constant(values=[0.0, 1.0, 2.0])"), (4, 3))  # 3 gates, 4 rows


def test_repr_is_one_line():
    text = repr(draw_of(fanin.get("normal(std=0.02)"), (4, 4)))
    assert text == "<Draw normal mean=0, std=0.02: mean 0, std 0.02>"


# --- against real draws ------------------------------------------------------------------------------


def _described_schemes(shape):
    found = []
    for name in list_schemes():
        try:
            scheme = fanin.get("sparse(sparsity=0.25)" if name == "sparse" else name)
        except SchemeArgumentError:
            continue  # needs arguments
        try:
            draw = draw_of(scheme, shape)
        except ValueError:
            continue  # does not take this shape
        if draw is not None and draw.kind != "constant":
            found.append((scheme, draw))
    return found


def test_every_described_scheme_draws_what_the_model_says():
    # A (256, 128) float64 weight from every registered scheme the model describes, from a fixed
    # Stream. Mean: z = mean / (std / sqrt(n)); std: z = (s / std - 1) / sqrt((kurtosis - 1) / (4n)),
    # with kurtosis <= 3 for these distributions (uniform 1.8, truncated < 3, normal 3, the sparse
    # mixture 3 / (1 - p)). Two-sided level 1e-3 over all tests together (Bonferroni). Orthogonal
    # draws are exact: RMS = gain / sqrt(max(rows, cols)) to float64 precision.
    shape, n = (256, 128), 256 * 128
    described = _described_schemes(shape)
    assert {d.kind for _, d in described} == set(KINDS) - {"constant"}
    assert len(described) >= 30
    tests = 2 * len(described)
    z_max = stats.norm.isf(1e-3 / (2 * tests))
    for scheme, draw in described:
        name = str(scheme)
        w = scheme(torch.empty(shape, dtype=torch.float64), generator=fanin.Stream(0, name))
        if draw.low is not None:
            assert draw.low <= w.min().item() and w.max().item() <= draw.high, name
        if draw.kind == "orthogonal":
            assert w.pow(2).mean().sqrt().item() == pytest.approx(draw.std, rel=1e-12), name
            continue
        kurtosis = 3.0 / (1 - draw.parameters["zeros"] / shape[0]) if draw.kind == "sparse normal" else 3.0
        z_mean = (w.mean().item() - draw.mean) / (draw.std / math.sqrt(n))
        z_std = (w.std().item() / draw.std - 1) / math.sqrt((kurtosis - 1) / (4 * n))
        assert abs(z_mean) < z_max and abs(z_std) < z_max, (name, z_mean, z_std)
