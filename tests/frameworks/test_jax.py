"""fanin.jax: jax.nn.initializers semantics on torch tensors.

Same-stream rescaling (values == unit draw from the same seed x the hand-computed bound or std),
exact properties, and KS tests (scipy.stats.kstest, fixed seed, p > 1e-3, parameters by hand).
"""

import math

import pytest
import torch
from scipy import stats

import fanin
from fanin import jax
from fanin.rng import Stream
from fanin.schemes import list_schemes, lookup
from support.rescaling import KS_P, LAYERS, T, assert_rescaled, f64, gen, unit


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), LAYERS)
def test_specializations_rescale(shape, fan_in, fan_out):
    for fn, kind, factor in [
        (jax.glorot_uniform_, "uniform", math.sqrt(6 / (fan_in + fan_out))),
        (jax.he_uniform_, "uniform", math.sqrt(6 / fan_in)),
        (jax.lecun_uniform_, "uniform", math.sqrt(3 / fan_in)),
        (jax.glorot_normal_, "truncated", math.sqrt(2 / (fan_in + fan_out)) / T),
        (jax.he_normal_, "truncated", math.sqrt(2 / fan_in) / T),
        (jax.lecun_normal_, "truncated", math.sqrt(1 / fan_in) / T),
    ]:
        assert_rescaled(fn(f64(*shape), generator=gen(1)), unit(kind, shape, 1), factor)


@pytest.mark.parametrize(
    ("mode", "n"), [("fan_in", 105), ("fan_out", 280), ("fan_avg", 192.5), ("fan_geo_avg", math.sqrt(105 * 280))]
)
def test_variance_scaling_modes(mode, n):
    shape = (8, 3, 5, 7)
    # JAX's "normal" is untruncated
    for dist, kind, factor in [
        ("normal", "normal", math.sqrt(0.5 / n)),
        ("truncated_normal", "truncated", math.sqrt(0.5 / n) / T),
        ("uniform", "uniform", math.sqrt(1.5 / n)),
    ]:
        w = jax.variance_scaling_(f64(*shape), 0.5, mode, dist, generator=gen(2))
        assert_rescaled(w, unit(kind, shape, 2), factor)


def test_axes_index_the_jax_kernel():
    # layout="jax": (2, 3, 4, 5) with in_axis 0, out_axis (2, 3), batch_axis 1: fan_in 2
    w = jax.lecun_uniform_(f64(2, 3, 4, 5), in_axis=0, out_axis=(2, 3), batch_axis=1, layout="jax", generator=gen(3))
    assert_rescaled(w, unit("uniform", (2, 3, 4, 5), 3), math.sqrt(3 / 2))
    # in_axis (0, 1), out_axis (-2, -1): fan_in 6, fan_out 20, fan_avg 13
    w = jax.glorot_uniform_(f64(2, 3, 4, 5), in_axis=(0, 1), out_axis=(-2, -1), layout="jax", generator=gen(3))
    assert_rescaled(w, unit("uniform", (2, 3, 4, 5), 3), math.sqrt(3 / 13))
    # Flax Embed(11, 100): variance_scaling(1, fan_in, normal, out_axis=0): N(0, 1/features)
    w = jax.variance_scaling_(f64(11, 100), 1.0, "fan_in", "normal", out_axis=0, layout="jax", generator=gen(3))
    assert_rescaled(w, unit("normal", (11, 100), 3), math.sqrt(1 / 100))


def test_no_max_one_guard():
    # JAX divides by the fan as it is, even below 1 (Keras/TF would divide by max(1, fan)).
    # A jax-layout (2, 2) kernel, in_axis 1, out_axis (0, 1), batch_axis 0:
    # in 2, out 4, batch 2, rf = 4 / 2 / 4 / 2 = 0.25, fan_in = 2 * 0.25 = 0.5: variance 1 / 0.5 = 2.
    w = jax.variance_scaling_(
        f64(2, 2), 1.0, "fan_in", "uniform", in_axis=1, out_axis=(0, 1), batch_axis=0, layout="jax", generator=gen(4)
    )
    assert_rescaled(w, unit("uniform", (2, 2), 4), math.sqrt(3 * 2.0))


def test_simple_initializers_with_jax_defaults():
    shape = (30, 20)
    # uniform(scale=0.01) is U[0, 0.01), not symmetric
    w = jax.uniform_(f64(*shape), generator=gen(5))
    assert torch.equal(w, torch.empty(shape, dtype=torch.float64).uniform_(0.0, 0.01, generator=gen(5)))
    assert_rescaled(jax.normal_(f64(*shape), generator=gen(5)), unit("normal", shape, 5), 0.01)
    # truncated_normal(stddev=0.01, lower=-2, upper=2): bounds in units of stddev, no correction
    assert_rescaled(jax.truncated_normal_(f64(*shape), generator=gen(5)), unit("truncated", shape, 5), 0.01)
    assert torch.equal(jax.constant_(torch.empty(3), -1.5), torch.full((3,), -1.5))
    assert torch.equal(jax.zeros_(torch.ones(3)), torch.zeros(3))
    assert torch.equal(jax.ones_(torch.empty(3)), torch.ones(3))


def test_defaults_match_jax():
    p = lambda n: lookup(f"jax.{n}").parameters  # noqa: E731
    assert p("uniform")["scale"] == 1e-2 and p("normal")["stddev"] == 1e-2
    assert (p("truncated_normal")["stddev"], p("truncated_normal")["lower"], p("truncated_normal")["upper"]) == (
        1e-2,
        -2.0,
        2.0,
    )
    for name in ["variance_scaling", "glorot_normal", "he_uniform", "lecun_normal"]:
        assert (p(name)["in_axis"], p(name)["out_axis"], p(name)["batch_axis"]) == (-2, -1, ())
    assert (p("orthogonal")["scale"], p("orthogonal")["column_axis"]) == (1.0, -1)
    assert (p("delta_orthogonal")["scale"], p("delta_orthogonal")["column_axis"]) == (1.0, -1)


def test_truncated_normal_distribution_custom_bounds():
    w = jax.truncated_normal_(
        torch.empty(10000, dtype=torch.float64), stddev=0.5, lower=-1.0, upper=3.0, generator=gen(6)
    ).numpy()
    assert w.min() >= -0.5 and w.max() <= 1.5
    assert stats.kstest(w, "truncnorm", (-1.0, 3.0, 0.0, 0.5)).pvalue > KS_P


def test_normal_variance_scaling_is_untruncated():
    # Linear(100 -> 100) with he "normal" (untruncated): N(0, 2/100); values beyond 2σ do occur
    w = jax.variance_scaling_(torch.empty(100, 100), 2.0, "fan_in", "normal", generator=gen(7)).flatten().numpy()
    sigma = math.sqrt(2 / 100)
    assert stats.kstest(w, "norm", (0, sigma)).pvalue > KS_P
    assert abs(w).max() > 2 * sigma / T


def test_lecun_normal_distribution():
    w = jax.lecun_normal_(torch.empty(64, 16, 3, 3), generator=gen(8)).flatten().numpy()
    s = math.sqrt(1 / (16 * 9)) / 0.87962566103423978
    assert stats.kstest(w, "truncnorm", (-2, 2, 0, s)).pvalue > KS_P


# ---------------------------------------------------------------- exact properties


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_orthogonal(scale):
    # Linear(3 -> 5): kernel (3, 5), orthonormal rows = torch columns
    w = jax.orthogonal_(f64(5, 3), scale=scale, generator=gen(9))
    torch.testing.assert_close(w.T @ w, scale**2 * torch.eye(3, dtype=torch.float64))
    # column_axis=0 on a jax-layout (5, 3): n_cols = 5, n_rows = 3: Q (3, 5) moved to (5, 3)
    w = jax.orthogonal_(f64(5, 3), scale=scale, column_axis=0, layout="jax", generator=gen(9))
    torch.testing.assert_close(w.T @ w, scale**2 * torch.eye(3, dtype=torch.float64))
    # column_axis=1 of a (4, 3, 2) jax kernel: rows = 8, cols = 3: the (8, 3) matrix after moving axis 1 last
    w = jax.orthogonal_(f64(4, 3, 2), scale=scale, column_axis=1, layout="jax", generator=gen(9))
    m = w.movedim(1, -1).reshape(8, 3)
    torch.testing.assert_close(m.T @ m, scale**2 * torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("shape", "centre"),
    [((4, 3, 3), (1,)), ((6, 2, 4, 3), (1, 1)), ((5, 5, 3, 2, 5), (1, 0, 2))],
)
def test_delta_orthogonal(shape, centre):
    # torch Conv weight (out, in, *k) = jax kernel (*k, in, out); centre (k-1)//2; in <= out
    w = jax.delta_orthogonal_(f64(*shape), scale=2.0, generator=gen(10))
    c = w[(slice(None), slice(None), *centre)]
    torch.testing.assert_close(c.T @ c, 4.0 * torch.eye(shape[1], dtype=torch.float64))
    w[(slice(None), slice(None), *centre)] = 0
    assert torch.count_nonzero(w) == 0


# ---------------------------------------------------------------- streams, registry

ARGS = {
    "jax.variance_scaling": {"scale": 1.0, "mode": "fan_geo_avg", "distribution": "normal"},
    "jax.constant": {"value": 0.25},
}


@pytest.mark.parametrize("name", list_schemes("jax"))
def test_stream_accepted_and_deterministic(name):
    scheme = fanin.get({"name": name, "args": ARGS.get(name, {})})
    a = scheme(torch.empty(6, 4, 3), generator=Stream(0, "conv.weight"))
    b = scheme(torch.empty(6, 4, 3), generator=Stream(0, "conv.weight"))
    c = scheme(torch.empty(6, 4, 3), generator=Stream(1, "conv.weight"))
    assert torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert torch.equal(a, c) == (scheme.family == "constant")


@pytest.mark.parametrize("fn", [jax.orthogonal_, jax.delta_orthogonal_])
def test_orthogonal_stream_independent_of_thread_count(fn):
    before = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(fn(torch.empty(40, 24, 3), generator=Stream(5, "w")))
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0], out[1])


def test_registry_round_trip():
    for name in list_schemes("jax"):
        s = fanin.get({"name": name, "args": ARGS.get(name, {})})
        assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    s = jax.variance_scaling(scale=2.0, mode="fan_avg", distribution="uniform", in_axis=(0, 1), batch_axis=[2])
    assert (
        str(s)
        == "jax.variance_scaling(scale=2.0, mode='fan_avg', distribution='uniform', in_axis=(0, 1), batch_axis=[2])"
    )
    assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    for alias, name in [("jax.xavier_uniform", "jax.glorot_uniform"), ("jax.kaiming_normal", "jax.he_normal")]:
        assert fanin.get(alias).name == name
    assert jax.lecun_normal() == fanin.get("jax.lecun_normal")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("jax.variance_scaling", r"Scheme 'jax\.variance_scaling' needs argument\(s\) scale, mode, distribution"),
        (
            "jax.variance_scaling(1.0, 'fan_inn', 'normal')",
            r"invalid mode for variance scaling initializer: fan_inn\. Unknown mode 'fan_inn'\. Did you mean 'fan_in'",
        ),
        (
            "jax.variance_scaling(1.0, 'fan_in', 'untruncated_normal')",
            r"invalid distribution for variance scaling initializer: untruncated_normal\. Unknown distribution "
            r"'untruncated_normal'\. Did you mean 'truncated_normal'",
        ),
        (
            "jax.variance_scaling('1', 'fan_in', 'normal')",
            r"jax\.variance_scaling: scale must be a finite number, got scale='1'",
        ),
        (
            "jax.lecun_normal(in_axis='0')",
            r"jax\.variance_scaling: in_axis must be an int or a sequence of ints, got in_axis='0'",
        ),
        (
            "jax.lecun_normal(out_axis=())",
            r"jax\.variance_scaling: out_axis must name at least one axis, got out_axis=\(\)",
        ),
        (
            "jax.lecun_normal(batch_axis=[True])",
            r"jax\.variance_scaling: batch_axis must be an int or a sequence of ints, got batch_axis=\[True\]",
        ),
        (
            "jax.he_uniform(layout='keras')",
            r"jax\.variance_scaling: Unknown layout 'keras'\. Accepted: 'jax', 'torch'\.",
        ),
        ("jax.constant(value='a')", r"jax\.constant: value must be a finite number, got value='a'"),
        ("jax.uniform(scale=-1.0)", r"jax\.uniform: scale must be >= 0, got scale=-1\.0"),
        ("jax.normal(stddev=-1.0)", r"jax\.normal: stddev must be >= 0, got stddev=-1\.0"),
        ("jax.truncated_normal(stddev=0.0)", r"jax\.truncated_normal: stddev must be > 0, got stddev=0\.0"),
        (
            "jax.truncated_normal(lower=2.0, upper=-2.0)",
            r"jax\.truncated_normal: needs lower < upper, got lower=2\.0, upper=-2\.0",
        ),
        ("jax.orthogonal(column_axis=1.0)", r"jax\.orthogonal: column_axis must be an int, got column_axis=1\.0"),
        ("jax.delta_orthogonal(scale=None)", r"jax\.delta_orthogonal: scale must be a finite number, got scale=None"),
        (
            "jax.delta_orthogonal(layout='tf')",
            r"jax\.delta_orthogonal: Unknown layout 'tf'\. Accepted: 'jax', 'torch'\.",
        ),
    ],
)
def test_argument_errors_at_construction(spec, message):
    with pytest.raises(ValueError, match=message):
        fanin.get(spec)


def test_call_time_errors():
    with pytest.raises(
        ValueError,
        match=r"Can't compute input and output sizes of a 1-dimensional weights tensor with default in_axis\. Must be "
        r"at least 2D or specify in_axis explicitly\.",
    ):
        jax.lecun_normal_(torch.empty(5))
    with pytest.raises(ValueError, match=r"orthogonal initializer requires at least a 2D shape"):
        jax.orthogonal_(torch.empty(5))
    with pytest.raises(ValueError, match=r"column_axis=2 is out of range for a kernel of shape \(3, 4\)"):
        jax.orthogonal_(torch.empty(4, 3), column_axis=2)
    with pytest.raises(ValueError, match=r"Delta orthogonal initializer requires a 3D, 4D or 5D shape\."):
        jax.delta_orthogonal_(torch.empty(4, 4))
    with pytest.raises(ValueError, match=r"`fan_in` must be less or equal than `fan_out`\. "):
        jax.delta_orthogonal_(torch.empty(2, 4, 3))  # Conv1d(4 -> 2, 3): in 4 > out 2
    with pytest.raises(ValueError, match=r"in_axis must name axes of a 2-dim shape \(-2\.\.1\), got in_axis=5"):
        jax.lecun_normal_(torch.empty(3, 4), in_axis=5)


def test_direct_calls_are_validated_too():
    with pytest.raises(
        ValueError,
        match=r"invalid distribution for variance scaling initializer: Normal\. Unknown distribution 'Normal'",
    ):
        jax.variance_scaling_(torch.empty(3, 4), 1.0, "fan_in", "Normal")


def test_fill_rejects_an_unmapped_distribution():
    from fanin.frameworks.jax import JAX
    from fanin.frameworks.shared import variance_scaling_fill

    with pytest.raises(
        ValueError,
        match=r"Unknown distribution 'normal'\. Did you mean 'uniform'\? Accepted: 'truncated_normal', 'uniform', "
        r"'untruncated_normal'\.",
    ):
        variance_scaling_fill(
            torch.empty(3, 4),
            scale=1.0,
            mode="fan_in",
            distribution="normal",
            framework=JAX,
            layout="torch",
            guard=False,
            generator=None,
        )
