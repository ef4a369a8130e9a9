"""fanin.keras: Keras 3 initializer semantics on torch tensors.

Numerical checks, in order: same-stream rescaling (the scheme's values equal the unit draw from
the same seed times the bound or std computed by hand here), exact properties (orthogonality,
identity), and KS tests (scipy.stats.kstest, fixed seed, p > 1e-3; the expected parameters are
computed by hand in each test, never with fanin's fan code).
"""

import math

import pytest
import torch
from scipy import stats

import fanin
from fanin import keras, rng
from fanin.rng import Stream
from fanin.schemes import list_schemes, lookup

KS_P = 1e-3  # reject a distribution only if the KS p-value falls below this
T = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def unit_uniform(shape, seed=0):
    """U[-1, 1) from the generator: the unit draw a symmetric uniform scheme rescales."""
    return torch.empty(shape, dtype=torch.float64).uniform_(-1.0, 1.0, generator=gen(seed))


def unit_normal(shape, seed=0):
    return torch.empty(shape, dtype=torch.float64).normal_(0.0, 1.0, generator=gen(seed))


def unit_truncated(shape, seed=0):
    return rng.truncated_normal_(torch.empty(shape, dtype=torch.float64), 0.0, 1.0, -2.0, 2.0, gen(seed))


def assert_rescaled(w, unit, factor):
    torch.testing.assert_close(w, unit * factor, rtol=1e-12, atol=1e-14 * factor)


# ---------------------------------------------------------------- same-stream rescaling

# (torch weight shape, Keras kernel fan_in, fan_out), hand-computed:
#   Linear(20 -> 10): weight (10, 20), Keras Dense kernel (20, 10)
#   Conv2d(3 -> 8, (5, 7)): weight (8, 3, 5, 7), Keras kernel (5, 7, 3, 8): rf 35
#   Conv1d(4 -> 6, 5): (6, 4, 5) -> (5, 4, 6)
#   Conv3d(2 -> 4, 3): (4, 2, 3, 3, 3) -> (3, 3, 3, 2, 4): rf 27
#   ConvTranspose2d(4 -> 8, (3, 5)): weight (4, 8, 3, 5) -> Conv2DTranspose kernel (3, 5, 8, 4)
#   Conv2d(8 -> 12, 3, groups=4): weight (12, 2, 3, 3) -> (3, 3, 2, 12)
LAYERS = [
    ((10, 20), 20, 10),
    ((8, 3, 5, 7), 105, 280),
    ((6, 4, 5), 20, 30),
    ((4, 2, 3, 3, 3), 54, 108),
    ((4, 8, 3, 5), 120, 60),
    ((12, 2, 3, 3), 18, 108),
]


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), LAYERS)
def test_uniform_specializations_rescale_the_unit_draw(shape, fan_in, fan_out):
    for fn, limit in [
        (keras.glorot_uniform_, math.sqrt(6 / (fan_in + fan_out))),
        (keras.he_uniform_, math.sqrt(6 / fan_in)),
        (keras.lecun_uniform_, math.sqrt(3 / fan_in)),
    ]:
        w = fn(torch.empty(shape, dtype=torch.float64), generator=gen(1))
        assert_rescaled(w, unit_uniform(shape, 1), limit)


@pytest.mark.parametrize(("shape", "fan_in", "fan_out"), LAYERS)
def test_truncated_specializations_rescale_the_unit_draw(shape, fan_in, fan_out):
    # std after truncation sqrt(scale / n): before truncation it is that / 0.8796...
    for fn, sigma in [
        (keras.glorot_normal_, math.sqrt(2 / (fan_in + fan_out))),
        (keras.he_normal_, math.sqrt(2 / fan_in)),
        (keras.lecun_normal_, math.sqrt(1 / fan_in)),
    ]:
        w = fn(torch.empty(shape, dtype=torch.float64), generator=gen(2))
        assert_rescaled(w, unit_truncated(shape, 2), sigma / T)


@pytest.mark.parametrize(("mode", "fan"), [("fan_in", 105), ("fan_out", 280), ("fan_avg", (105 + 280) / 2)])
def test_variance_scaling_modes_and_distributions(mode, fan):
    shape = (8, 3, 5, 7)
    scale = 3.0
    for dist, unit, factor in [
        ("uniform", unit_uniform, math.sqrt(3 * scale / fan)),
        ("untruncated_normal", unit_normal, math.sqrt(scale / fan)),
        ("truncated_normal", unit_truncated, math.sqrt(scale / fan) / T),
        ("normal", unit_truncated, math.sqrt(scale / fan) / T),  # Keras: "normal" is the truncated one
        ("Uniform", unit_uniform, math.sqrt(3 * scale / fan)),  # distribution is lower-cased
    ]:
        w = keras.variance_scaling_(torch.empty(shape, dtype=torch.float64), scale, mode, dist, generator=gen(3))
        assert_rescaled(w, unit(shape, 3), factor)


def test_max_one_guard_on_small_fans():
    # A 0-d tensor has Keras fans (1, 1); a (1, 1) kernel with fan_avg 1: scale / max(1, n) = scale.
    w = keras.variance_scaling_(torch.empty((), dtype=torch.float64), 2.0, "fan_in", "uniform", generator=gen(4))
    assert_rescaled(w, unit_uniform((), 4), math.sqrt(6.0))


def test_one_dim_fans_are_its_length():
    # Keras: a 1-D shape (n,) has fan_in = fan_out = n
    w = keras.he_uniform_(torch.empty(50, dtype=torch.float64), generator=gen(5))
    assert_rescaled(w, unit_uniform((50,), 5), math.sqrt(6 / 50))


def test_input_output_axes_index_the_keras_kernel():
    # An (E=32, H=8, Dk=16) MHA query kernel in Keras layout: input_axes [0], output_axes [1, 2]
    shape = (32, 8, 16)
    w = keras.lecun_uniform_(
        torch.empty(shape, dtype=torch.float64), input_axes=[0], output_axes=[1, 2], layout="keras", generator=gen(6)
    )
    assert_rescaled(w, unit_uniform(shape, 6), math.sqrt(3 / 32))
    # without axes the receptive-field rule: rf = 32, fan_in = 8 * 32
    w = keras.lecun_uniform_(torch.empty(shape, dtype=torch.float64), layout="keras", generator=gen(6))
    assert_rescaled(w, unit_uniform(shape, 6), math.sqrt(3 / 256))


def test_keras_layout_reads_a_dense_kernel_as_in_out():
    # layout="keras": (20, 10) is a Dense kernel (in=20, out=10); as a torch weight it is (out=20, in=10)
    w = keras.lecun_uniform_(torch.empty(20, 10, dtype=torch.float64), layout="keras", generator=gen(7))
    assert_rescaled(w, unit_uniform((20, 10), 7), math.sqrt(3 / 20))
    w = keras.lecun_uniform_(torch.empty(20, 10, dtype=torch.float64), generator=gen(7))
    assert_rescaled(w, unit_uniform((20, 10), 7), math.sqrt(3 / 10))


def test_plain_random_initializers_rescale_with_their_keras_defaults():
    shape = (30, 20)
    w = keras.random_normal_(torch.empty(shape, dtype=torch.float64), generator=gen(8))
    assert_rescaled(w, unit_normal(shape, 8), 0.05)
    w = keras.random_uniform_(torch.empty(shape, dtype=torch.float64), generator=gen(8))
    assert_rescaled(w, unit_uniform(shape, 8), 0.05)
    w = keras.truncated_normal_(torch.empty(shape, dtype=torch.float64), generator=gen(8))
    assert_rescaled(w, unit_truncated(shape, 8), 0.05)  # cut at ±2·stddev, no correction
    w = keras.random_normal_(torch.empty(shape, dtype=torch.float64), mean=1.0, stddev=2.0, generator=gen(8))
    torch.testing.assert_close(w, 1.0 + 2.0 * unit_normal(shape, 8), rtol=1e-12, atol=1e-12)


def test_random_normal_matches_keras_torch_backend():
    # Keras's torch backend: RandomNormal(0, 0.05, seed=S)(shape) is
    # torch.normal(0, 0.05, size=shape, generator=Generator().manual_seed(S)).
    w = keras.random_normal_(torch.empty(500), seed=7)
    assert torch.equal(w, torch.normal(0.0, 0.05, size=(500,), generator=gen(7)))


def test_defaults_match_keras():
    p = {
        n: lookup(f"keras.{n}").parameters
        for n in [
            "random_normal",
            "random_uniform",
            "truncated_normal",
            "variance_scaling",
            "orthogonal",
            "identity",
            "constant",
        ]
    }
    assert (p["random_normal"]["mean"], p["random_normal"]["stddev"]) == (0.0, 0.05)
    assert (p["random_uniform"]["minval"], p["random_uniform"]["maxval"]) == (-0.05, 0.05)
    assert (p["truncated_normal"]["mean"], p["truncated_normal"]["stddev"]) == (0.0, 0.05)
    vs = p["variance_scaling"]
    assert (vs["scale"], vs["mode"], vs["distribution"]) == (1.0, "fan_in", "truncated_normal")
    assert p["orthogonal"]["gain"] == 1.0 and p["identity"]["gain"] == 1.0 and p["constant"]["value"] == 0.0
    for entry in p.values():
        assert entry["layout"] == "torch"


# ---------------------------------------------------------------- distributions (KS)


def test_glorot_normal_is_truncated_with_corrected_std():
    # torch Linear(100 -> 200): Keras kernel (100, 200): sigma = sqrt(2 / 300) after truncation
    w = keras.glorot_normal_(torch.empty(200, 100, dtype=torch.float64), generator=gen(11)).flatten().numpy()
    s = math.sqrt(2 / 300) / 0.87962566103423978
    assert abs(w).max() <= 2 * s
    assert stats.kstest(w, "truncnorm", (-2, 2, 0, s)).pvalue > KS_P
    assert w.std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)


def test_he_uniform_distribution():
    # torch Conv2d(16 -> 8, 3): fan_in = 16 * 9
    w = keras.he_uniform_(torch.empty(8, 16, 3, 3), generator=gen(12)).flatten().numpy()
    limit = math.sqrt(6 / 144)
    assert stats.kstest(w, "uniform", (-limit, 2 * limit)).pvalue > KS_P


def test_untruncated_normal_distribution():
    w = keras.variance_scaling_(torch.empty(100, 50), 2.0, "fan_out", "untruncated_normal", generator=gen(13))
    # Keras kernel (50, 100): fan_out 100
    assert stats.kstest(w.flatten().numpy(), "norm", (0, math.sqrt(2 / 100))).pvalue > KS_P


def test_truncated_normal_has_no_correction():
    w = keras.truncated_normal_(torch.empty(10000), mean=1.0, stddev=0.5, generator=gen(14)).numpy()
    assert w.min() >= 0.0 and w.max() <= 2.0
    assert stats.kstest(w, "truncnorm", (-2, 2, 1.0, 0.5)).pvalue > KS_P


# ---------------------------------------------------------------- exact properties


@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_on_torch_weights(gain):
    eye = torch.eye
    # Linear(10 -> 6): weight (6, 10), Keras kernel (10, 6) has orthonormal columns = torch rows
    w = keras.orthogonal_(torch.empty(6, 10, dtype=torch.float64), gain=gain, generator=gen(20))
    torch.testing.assert_close(w @ w.T, gain**2 * eye(6, dtype=torch.float64))
    # Linear(6 -> 10): weight (10, 6), kernel (6, 10) has orthonormal rows = torch columns
    w = keras.orthogonal_(torch.empty(10, 6, dtype=torch.float64), gain=gain, generator=gen(20))
    torch.testing.assert_close(w.T @ w, gain**2 * eye(6, dtype=torch.float64))
    # Conv2d(3 -> 8, 3): kernel (3, 3, 3, 8) flattened to (27, 8): each output filter is a unit vector
    w = keras.orthogonal_(torch.empty(8, 3, 3, 3, dtype=torch.float64), gain=gain, generator=gen(20)).reshape(8, -1)
    torch.testing.assert_close(w @ w.T, gain**2 * eye(8, dtype=torch.float64))


def test_orthogonal_keras_layout_flattens_leading_dims():
    # Keras: (2, 3, 4) is viewed as (6, 4): orthonormal columns (torch would view it as (2, 12))
    w = keras.orthogonal_(torch.empty(2, 3, 4, dtype=torch.float64), layout="keras", generator=gen(21)).reshape(6, 4)
    torch.testing.assert_close(w.T @ w, torch.eye(4, dtype=torch.float64))


def test_identity_and_constants():
    assert torch.equal(keras.identity_(torch.empty(3, 5), gain=2.0), 2.0 * torch.eye(3, 5))
    assert torch.equal(keras.identity_(torch.empty(5, 3), layout="keras"), torch.eye(5, 3))
    assert torch.equal(keras.zeros_(torch.full((2, 3), 7.0)), torch.zeros(2, 3))
    assert torch.equal(keras.ones_(torch.empty(2, 3)), torch.ones(2, 3))
    assert torch.equal(keras.constant_(torch.empty(2, 2), value=6.0), torch.full((2, 2), 6.0))
    # an array value fills the Keras kernel (in, out) = (3, 2); the torch weight (2, 3) is its transpose
    w = keras.constant_(torch.empty(2, 3), value=[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert torch.equal(w, torch.tensor([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]))


# ---------------------------------------------------------------- seeds, generators, streams


def test_int_seed_gives_the_same_values_on_every_call():
    a = keras.glorot_normal_(torch.empty(5, 4), seed=3)
    b = keras.glorot_normal_(torch.empty(5, 4), seed=3)
    c = keras.glorot_normal_(torch.empty(5, 4), seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, keras.glorot_normal_(torch.empty(5, 4), generator=gen(3)))


def test_no_seed_draws_from_the_global_generator():
    torch.manual_seed(5)
    a = keras.he_uniform_(torch.empty(4, 4))
    assert torch.equal(a, keras.he_uniform_(torch.empty(4, 4), generator=gen(5)))


ARGS = {"keras.variance_scaling": {"scale": 2.0}, "keras.constant": {"value": 0.5}}


def shape_for(name):
    if name == "keras.identity":
        return (4, 6)
    return (6, 4, 3)


@pytest.mark.parametrize("name", list_schemes("keras"))
def test_stream_accepted_and_deterministic(name):
    scheme = fanin.get({"name": name, "args": ARGS.get(name, {})})
    a = scheme(torch.empty(shape_for(name)), generator=Stream(0, "layer.weight"))
    b = scheme(torch.empty(shape_for(name)), generator=Stream(0, "layer.weight"))
    c = scheme(torch.empty(shape_for(name)), generator=Stream(1, "layer.weight"))
    assert torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert torch.equal(a, c) == (scheme.family in ("constant", "identity"))


def test_stream_values_are_the_streams_unit_draws_rescaled():
    w = keras.he_uniform_(torch.empty(8, 16, dtype=torch.float64), generator=Stream(0, "w"))
    unit = Stream(0, "w").uniform_(torch.empty(8, 16, dtype=torch.float64), -1.0, 1.0)
    assert_rescaled(w, unit, math.sqrt(6 / 16))


def test_orthogonal_stream_independent_of_thread_count():
    before = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(keras.orthogonal_(torch.empty(48, 40), generator=Stream(9, "w")))
            assert torch.get_num_threads() == n  # restored after the single-threaded QR
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0], out[1])
    torch.testing.assert_close(out[0].T @ out[0], torch.eye(40), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- registry


def test_registry_round_trip():
    for name in list_schemes("keras"):
        s = fanin.get({"name": name, "args": ARGS.get(name, {})})
        assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    s = keras.VarianceScaling(scale=2.0, mode="fan_avg", distribution="uniform", input_axes=[0], output_axes=[1, 2])
    assert str(s) == (
        "keras.variance_scaling(scale=2.0, mode='fan_avg', distribution='uniform', input_axes=[0], output_axes=[1, 2])"
    )
    assert fanin.get(str(s)) == s and fanin.get(s.to_config()) == s
    assert keras.GlorotUniform(seed=3) == fanin.get("keras.glorot_uniform(seed=3)")


def test_keras_names_and_aliases():
    for alias, name in [
        ("keras.GlorotUniform", "keras.glorot_uniform"),
        ("keras.HeNormal", "keras.he_normal"),
        ("keras.normal", "keras.random_normal"),
        ("keras.uniform", "keras.random_uniform"),
        ("keras.zero", "keras.zeros"),
        ("keras.one", "keras.ones"),
        ("keras.OrthogonalInitializer", "keras.orthogonal"),
        ("keras.IdentityInitializer", "keras.identity"),
    ]:
        assert fanin.get(alias).name == name
    assert set(list_schemes("keras")) == {
        f"keras.{n}"
        for n in [
            "constant",
            "glorot_normal",
            "glorot_uniform",
            "he_normal",
            "he_uniform",
            "identity",
            "lecun_normal",
            "lecun_uniform",
            "ones",
            "orthogonal",
            "random_normal",
            "random_uniform",
            "truncated_normal",
            "variance_scaling",
            "zeros",
        ]
    }


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("keras.variance_scaling(scale=0.0)", r"Argument `scale` must be positive float\. Received: scale=0\.0"),
        ("keras.variance_scaling(scale='1')", r"Argument `scale` must be positive float\. Received: scale='1'"),
        (
            "keras.variance_scaling(mode='FAN_IN')",
            r"Invalid `mode` argument: FAN_IN\. Unknown mode 'FAN_IN'\. Accepted: 'fan_avg', 'fan_in', 'fan_out'\. "
            r"Modes are case-sensitive\.",
        ),
        (
            "keras.variance_scaling(mode='fan_geo_avg')",
            r"Invalid `mode` argument: fan_geo_avg\. Unknown mode 'fan_geo_avg'\. Did you mean",
        ),
        (
            "keras.variance_scaling(distribution='foo')",
            r"Invalid `distribution` argument: foo\. Unknown distribution 'foo'\. Accepted: 'normal', "
            r"'truncated_normal', 'uniform', 'untruncated_normal'\.",
        ),
        ("keras.variance_scaling(seed=-1)", r"keras: seed must be None or an int in \[0, 2\*\*64\), got seed=-1"),
        ("keras.glorot_uniform(seed=True)", r"keras: seed must be None or an int in \[0, 2\*\*64\), got seed=True"),
        ("keras.glorot_uniform(layout='jax')", r"keras: Unknown layout 'jax'\. Accepted: 'keras', 'torch'\."),
        ("keras.glorot_uniform(input_axes=0)", r"keras: input_axes must be None or a list of ints, got input_axes=0"),
        ("keras.random_normal(stddev=-1.0)", r"keras\.random_normal: stddev must be >= 0, got stddev=-1\.0"),
        ("keras.random_normal(mean='0')", r"keras\.random_normal: mean must be a finite number, got mean='0'"),
        (
            "keras.random_uniform(minval=1, maxval=0)",
            r"keras\.random_uniform: needs minval <= maxval, got minval=1, maxval=0",
        ),
        ("keras.truncated_normal(stddev=0.0)", r"keras\.truncated_normal: stddev must be > 0, got stddev=0\.0"),
        ("keras.orthogonal(gain=inf)", r"keras\.orthogonal: gain must be a finite number, got gain=inf"),
        ("keras.identity(gain=None)", r"keras\.identity: gain must be a finite number, got gain=None"),
        (
            "keras.constant(value='a')",
            r"keras\.constant: value must be a number or nested lists of numbers, got value='a'",
        ),
        ("keras.glorot_unifrom", r"Unknown scheme 'keras\.glorot_unifrom'\. Did you mean 'keras\.glorot_uniform'"),
        ("keras.glorot_uniform(gain=2)", r"Scheme 'keras\.glorot_uniform' got unexpected argument\(s\) gain=2"),
    ],
)
def test_argument_errors_at_construction(spec, message):
    with pytest.raises(ValueError, match=message):
        fanin.get(spec)


def test_call_time_errors():
    with pytest.raises(
        ValueError,
        match=r"The tensor to initialize must be at least two-dimensional\. Received: shape=\(3,\) of rank 1\.",
    ):
        keras.orthogonal_(torch.empty(3))
    with pytest.raises(
        ValueError,
        match=r"Identity matrix initializer can only be used for 2D matrices\. Received: shape=\(2, 2, 2\) of rank 3\.",
    ):
        keras.identity_(torch.empty(2, 2, 2))
    with pytest.raises(
        ValueError,
        match=r"keras\.constant: value must broadcast to the kernel shape \(3, 2\), got value=\[1\.0, 2\.0, 3\.0\] of "
        r"shape \(3,\)",
    ):
        keras.constant_(torch.empty(2, 3), value=[1.0, 2.0, 3.0])
    with pytest.raises(
        ValueError,
        match=r"keras: pass either a seed or a generator, not both; got seed=1 and generator=Stream\(seed=0, "
        r"name='w'\)",
    ):
        keras.he_normal_(torch.empty(2, 2), seed=1, generator=Stream(0, "w"))
    with pytest.raises(
        TypeError, match=r"generator must be None, a torch\.Generator or a fanin\.Stream, got generator=3 \(int\)"
    ):
        keras.he_normal_(torch.empty(2, 2), generator=3)


def test_direct_calls_are_validated_too():
    # Scheme validates at construction; the functions themselves must not let a typo through.
    with pytest.raises(
        ValueError,
        match=r"Invalid `distribution` argument: unifrom\. Unknown distribution 'unifrom'\. Did you mean 'uniform'",
    ):
        keras.variance_scaling_(torch.empty(3, 4), distribution="unifrom")
    with pytest.raises(ValueError, match=r"Argument `scale` must be positive float\. Received: scale=-2\.0"):
        keras.variance_scaling_(torch.empty(3, 4), scale=-2.0)
