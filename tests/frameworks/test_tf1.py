"""fanin.tf1: TensorFlow 1.x initializer semantics (r1.15) on torch tensors.

Same-stream rescaling (values == unit draw from the same seed x the hand-computed bound or std),
exact properties, and KS tests (scipy.stats.kstest, fixed seed, p > 1e-3, parameters by hand).
"""

import math

import pytest
import torch
from scipy import stats

import fanin
from fanin import tf1
from fanin.rng import Stream
from fanin.schemes import list_schemes, lookup
from support.rescaling import KS_P, LAYERS, T, assert_rescaled, f64, gen, unit


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), LAYERS)
def test_glorot_initializers_rescale(shape, fan_in, fan_out):
    w = tf1.glorot_uniform_initializer_(f64(*shape), generator=gen(1))
    assert_rescaled(w, unit("uniform", shape, 1), math.sqrt(6 / (fan_in + fan_out)))
    # glorot_normal: variance_scaling(1, fan_avg, "normal") = truncated, corrected in r1.15
    w = tf1.glorot_normal_initializer_(f64(*shape), generator=gen(1))
    assert_rescaled(w, unit("truncated", shape, 1), math.sqrt(2 / (fan_in + fan_out)) / T)


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", 105), ("fan_out", 280), ("fan_avg", 192.5)])
@pytest.mark.parametrize(
    ("dist", "kind", "k"),
    [
        ("uniform", "uniform", lambda v: math.sqrt(3 * v)),
        ("normal", "truncated", lambda v: math.sqrt(v) / T),
        ("truncated_normal", "truncated", lambda v: math.sqrt(v) / T),
        ("untruncated_normal", "normal", lambda v: math.sqrt(v)),
        ("NORMAL", "truncated", lambda v: math.sqrt(v) / T),  # distribution is lower-cased
    ],
)
def test_variance_scaling_initializer(mode, fan, dist, kind, k):
    w = tf1.variance_scaling_initializer_(f64(8, 3, 5, 7), 2.0, mode, dist, generator=gen(2))
    assert_rescaled(w, unit(kind, (8, 3, 5, 7), 2), k(2.0 / fan))


def test_variance_scaling_guard_and_one_dim():
    # 1-D (n,): fans (n, n); 0-D: fans (1, 1) and max(1, fan) keeps scale / 1
    w = tf1.variance_scaling_initializer_(f64(40), distribution="uniform", generator=gen(3))
    assert_rescaled(w, unit("uniform", (40,), 3), math.sqrt(3 / 40))
    w = tf1.variance_scaling_initializer_(f64(), scale=5.0, distribution="uniform", generator=gen(3))
    assert_rescaled(w, unit("uniform", (), 3), math.sqrt(15.0))


def test_plain_initializers_with_tf1_defaults():
    shape = (30, 20)
    assert_rescaled(tf1.random_normal_initializer_(f64(*shape), generator=gen(4)), unit("normal", shape, 4), 1.0)
    assert_rescaled(tf1.truncated_normal_initializer_(f64(*shape), generator=gen(4)), unit("truncated", shape, 4), 1.0)
    # random_uniform_initializer: [0, 1) by default (maxval=None means 1 for floats)
    w = tf1.random_uniform_initializer_(f64(*shape), generator=gen(4))
    u = torch.empty(shape, dtype=torch.float64).uniform_(0.0, 1.0, generator=gen(4))
    assert torch.equal(w, u)
    w = tf1.random_normal_initializer_(f64(*shape), mean=3.0, stddev=0.5, generator=gen(4))
    torch.testing.assert_close(w, 3.0 + 0.5 * unit("normal", shape, 4), rtol=1e-12, atol=1e-12)


def test_uniform_unit_scaling():
    # input_size = prod(kernel.shape[:-1]): Conv2d(3 -> 8, (5, 7)) kernel (5, 7, 3, 8) -> 105
    w = tf1.uniform_unit_scaling_initializer_(f64(8, 3, 5, 7), factor=1.5, generator=gen(5))
    assert_rescaled(w, unit("uniform", (8, 3, 5, 7), 5), 1.5 * math.sqrt(3 / 105))
    # 1-D: prod of no dims = 1
    w = tf1.uniform_unit_scaling_initializer_(f64(9), generator=gen(5))
    assert_rescaled(w, unit("uniform", (9,), 5), math.sqrt(3.0))


def test_defaults_match_tf1():
    p = lambda n: lookup(f"tf1.{n}").parameters  # noqa: E731
    assert (p("random_normal_initializer")["mean"], p("random_normal_initializer")["stddev"]) == (0.0, 1.0)
    assert p("truncated_normal_initializer")["stddev"] == 1.0
    assert (p("random_uniform_initializer")["minval"], p("random_uniform_initializer")["maxval"]) == (0, None)
    vs = p("variance_scaling_initializer")
    assert (vs["scale"], vs["mode"], vs["distribution"]) == (1.0, "fan_in", "truncated_normal")
    assert p("orthogonal_initializer")["gain"] == 1.0
    assert p("convolutional_delta_orthogonal")["gain"] == 1.0
    assert p("constant_initializer")["value"] == 0 and p("constant_initializer")["verify_shape"] is False


def test_truncated_normal_initializer_distribution():
    # cut at mean ± 2·stddev, no variance correction
    w = tf1.truncated_normal_initializer_(torch.empty(10000), mean=-1.0, stddev=2.0, generator=gen(6)).numpy()
    assert w.min() >= -5.0 and w.max() <= 3.0
    assert stats.kstest(w, "truncnorm", (-2, 2, -1.0, 2.0)).pvalue > KS_P


def test_glorot_normal_distribution():
    # Linear(150 -> 150): std after truncation sqrt(2 / 300)
    w = tf1.glorot_normal_initializer_(torch.empty(150, 150, dtype=torch.float64), generator=gen(7)).flatten().numpy()
    s = math.sqrt(2 / 300) / 0.87962566103423978
    assert stats.kstest(w, "truncnorm", (-2, 2, 0, s)).pvalue > KS_P


def test_random_uniform_distribution():
    w = tf1.random_uniform_initializer_(torch.empty(10000), minval=-3, maxval=1, generator=gen(8)).numpy()
    assert stats.kstest(w, "uniform", (-3, 4)).pvalue > KS_P


# ---------------------------------------------------------------- exact properties


def test_orthogonal_initializer():
    # Linear(10 -> 6): kernel (10, 6) with orthonormal columns: torch rows; gain 3
    w = tf1.orthogonal_initializer_(f64(6, 10), gain=3.0, generator=gen(9))
    torch.testing.assert_close(w @ w.T, 9.0 * torch.eye(6, dtype=torch.float64))
    w = tf1.orthogonal_initializer_(f64(2, 3, 4), layout="keras", generator=gen(9)).reshape(6, 4)
    torch.testing.assert_close(w.T @ w, torch.eye(4, dtype=torch.float64))


@pytest.mark.parametrize(
    ("shape", "centre"),
    [
        ((4, 2, 3), (1,)),  # Conv1d(2 -> 4, 3): kernel (3, 2, 4), centre (3-1)//2 = 1
        ((5, 3, 3, 4), (1, 1)),  # Conv2d(3 -> 5, (3, 4)): even kernel: (4-1)//2 = 1
        ((6, 6, 2, 3, 5), (0, 1, 2)),  # Conv3d(6 -> 6, (2, 3, 5))
    ],
)
def test_convolutional_delta_orthogonal(shape, centre):
    gain = 1.5
    w = tf1.convolutional_delta_orthogonal_(f64(*shape), gain=gain, generator=gen(10))
    c = w[(slice(None), slice(None), *centre)]  # (out, in)
    torch.testing.assert_close(c.T @ c, gain**2 * torch.eye(shape[1], dtype=torch.float64))
    w[(slice(None), slice(None), *centre)] = 0
    assert torch.count_nonzero(w) == 0


def test_identity_and_constants():
    assert torch.equal(tf1.identity_initializer_(torch.empty(3, 4), gain=2.0), 2.0 * torch.eye(3, 4))
    assert torch.equal(tf1.zeros_initializer_(torch.ones(3)), torch.zeros(3))
    assert torch.equal(tf1.ones_initializer_(torch.empty(3)), torch.ones(3))
    assert torch.equal(tf1.constant_initializer_(torch.empty(2, 2), value=4), torch.full((2, 2), 4.0))
    # a list fills the TF kernel (in, out) = (3, 2) in row-major order, padded with its last element;
    # the torch weight (2, 3) is that kernel transposed
    w = tf1.constant_initializer_(torch.empty(2, 3), value=[1.0, 2.0, 3.0])
    assert torch.equal(w, torch.tensor([[1.0, 3.0, 3.0], [2.0, 3.0, 3.0]]))
    w = tf1.constant_initializer_(torch.empty(2, 3), value=[[1, 2, 3], [4, 5, 6]], verify_shape=True, layout="keras")
    assert torch.equal(w, torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))


# ---------------------------------------------------------------- seeds, streams, registry


def test_seed_semantics():
    a = tf1.glorot_uniform_initializer_(torch.empty(4, 5), seed=2)
    assert torch.equal(a, tf1.glorot_uniform_initializer_(torch.empty(4, 5), seed=2))
    assert torch.equal(a, tf1.glorot_uniform_initializer_(torch.empty(4, 5), generator=gen(2)))


ARGS = {"tf1.constant_initializer": {"value": [1.0, 2.0]}}


def shape_for(name):
    return (4, 6) if name == "tf1.identity_initializer" else (6, 4, 3)


@pytest.mark.parametrize("name", list_schemes("tf1"))
def test_stream_accepted_and_deterministic(name):
    scheme = fanin.get({"name": name, "args": ARGS.get(name, {})})
    a = scheme(torch.empty(shape_for(name)), generator=Stream(0, "conv.weight"))
    b = scheme(torch.empty(shape_for(name)), generator=Stream(0, "conv.weight"))
    c = scheme(torch.empty(shape_for(name)), generator=Stream(1, "conv.weight"))
    assert torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert torch.equal(a, c) == (scheme.family in ("constant", "identity"))


@pytest.mark.parametrize("fn", [tf1.orthogonal_initializer_, tf1.convolutional_delta_orthogonal_])
def test_orthogonal_stream_independent_of_thread_count(fn):
    before = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(fn(torch.empty(40, 24, 3), generator=Stream(4, "w")))
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0], out[1])


def test_registry_round_trip():
    for name in list_schemes("tf1"):
        s = fanin.get({"name": name, "args": ARGS.get(name, {})})
        assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    s = tf1.variance_scaling_initializer(scale=2.0, mode="fan_out", distribution="uniform", seed=3)
    assert str(s) == "tf1.variance_scaling_initializer(scale=2.0, mode='fan_out', distribution='uniform', seed=3)"
    assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    assert set(list_schemes("tf1")) == {
        f"tf1.{n}"
        for n in [
            "constant_initializer",
            "convolutional_delta_orthogonal",
            "glorot_normal_initializer",
            "glorot_uniform_initializer",
            "identity_initializer",
            "ones_initializer",
            "orthogonal_initializer",
            "random_normal_initializer",
            "random_uniform_initializer",
            "truncated_normal_initializer",
            "uniform_unit_scaling_initializer",
            "variance_scaling_initializer",
            "zeros_initializer",
        ]
    }


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "tf1.variance_scaling_initializer(scale=-1.0)",
            ValueError,
            r"`scale` must be positive float\. Received: scale=-1\.0",
        ),
        (
            "tf1.variance_scaling_initializer(mode='fan_avgg')",
            ValueError,
            r"Invalid `mode` argument: fan_avgg\. Unknown mode 'fan_avgg'\. Did you mean 'fan_avg'",
        ),
        ("tf1.variance_scaling_initializer(mode='FAN_OUT')", ValueError, r"Modes are case-sensitive\."),
        (
            "tf1.variance_scaling_initializer(distribution='gauss')",
            ValueError,
            r"Invalid `distribution` argument: gauss\. Unknown distribution 'gauss'\. Accepted: 'normal', "
            r"'truncated_normal', 'uniform', 'untruncated_normal'\.",
        ),
        ("tf1.variance_scaling_initializer(distribution=1)", ValueError, r"Invalid `distribution` argument: 1\."),
        (
            "tf1.glorot_uniform_initializer(seed=1.5)",
            ValueError,
            r"tf1\.glorot_uniform_initializer: seed must be None or an int in \[0, 2\*\*64\), got seed=1\.5",
        ),
        (
            "tf1.zeros_initializer(layout='jax')",
            ValueError,
            r"tf1\.zeros_initializer: Unknown layout 'jax'\. Accepted: 'keras', 'torch'\.",
        ),
        ("tf1.constant_initializer(value='x')", TypeError, r"Invalid type for initial value: 'x'"),
        (
            "tf1.constant_initializer(verify_shape=1)",
            ValueError,
            r"tf1\.constant_initializer: verify_shape must be a bool, got verify_shape=1",
        ),
        (
            "tf1.random_normal_initializer(stddev=-0.1)",
            ValueError,
            r"tf1\.random_normal_initializer: stddev must be >= 0, got stddev=-0\.1",
        ),
        (
            "tf1.truncated_normal_initializer(stddev=0.0)",
            ValueError,
            r"tf1\.truncated_normal_initializer: stddev must be > 0, got stddev=0\.0",
        ),
        (
            "tf1.random_uniform_initializer(minval=2)",
            ValueError,
            r"tf1\.random_uniform_initializer: needs minval <= maxval, got minval=2, maxval=None",
        ),
        (
            "tf1.random_uniform_initializer(maxval='1')",
            ValueError,
            r"tf1\.random_uniform_initializer: maxval must be a finite number, got maxval='1'",
        ),
        (
            "tf1.uniform_unit_scaling_initializer(factor=None)",
            ValueError,
            r"tf1\.uniform_unit_scaling_initializer: factor must be a finite number, got factor=None",
        ),
        (
            "tf1.orthogonal_initializer(gain=nan)",
            ValueError,
            r"tf1\.orthogonal_initializer: gain must be a finite number, got gain=nan",
        ),
        (
            "tf1.identity_initializer(gain='1')",
            ValueError,
            r"tf1\.identity_initializer: gain must be a finite number, got gain='1'",
        ),
        (
            "tf1.convolutional_delta_orthogonal(gain=[1])",
            ValueError,
            r"tf1\.convolutional_delta_orthogonal: gain must be a finite number, got gain=\[1\]",
        ),
    ],
)
def test_argument_errors_at_construction(spec, error, message):
    with pytest.raises(error, match=message):
        fanin.get(spec)


def test_call_time_errors():
    with pytest.raises(ValueError, match=r"Too many elements provided\. Needed at most 6, but received 8"):
        tf1.constant_initializer_(torch.empty(2, 3), value=list(range(8)))
    with pytest.raises(TypeError, match=r"Expected Tensor's shape: \(3, 2\), got \(6,\)\."):
        tf1.constant_initializer_(torch.empty(2, 3), value=list(range(6)), verify_shape=True)
    with pytest.raises(ValueError, match=r"tf1\.constant_initializer: value is an empty list"):
        tf1.constant_initializer_(torch.empty(2, 3), value=[])
    with pytest.raises(
        ValueError,
        match=r"The tensor to initialize must be at least two-dimensional\. Received: shape=\(5,\) of rank 1\.",
    ):
        tf1.orthogonal_initializer_(torch.empty(5))
    with pytest.raises(
        ValueError,
        match=r"Identity matrix initializer can only be used for 2D matrices\. Received: shape=\(3, 2, 2\) of rank 3\.",
    ):
        tf1.identity_initializer_(torch.empty(2, 2, 3))
    with pytest.raises(
        ValueError,
        match=r"at least three-dimensional and at most five-dimensional\. Received: shape=\(4, 4\) of rank 2\.",
    ):
        tf1.convolutional_delta_orthogonal_(torch.empty(4, 4))
    with pytest.raises(
        ValueError,
        match=r"In_filters cannot be greater than out_filters\. Received: in_filters=4, out_filters=2 \(kernel "
        r"shape=\(3, 4, 2\)\)\.",
    ):
        tf1.convolutional_delta_orthogonal_(torch.empty(2, 4, 3))  # Conv1d(4 -> 2, 3)
    with pytest.raises(
        ValueError, match=r"tf1: pass either a seed or a generator, not both; got seed=0 and generator="
    ):
        tf1.random_normal_initializer_(torch.empty(2), seed=0, generator=gen(0))


def test_direct_calls_are_validated_too():
    with pytest.raises(ValueError, match=r"Invalid `mode` argument: fan_sum\. Unknown mode 'fan_sum'"):
        tf1.variance_scaling_initializer_(torch.empty(3, 4), mode="fan_sum")
