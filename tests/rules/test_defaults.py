"""fanin.rules.defaults: per-framework layer defaults.

"torch" is checked bit for bit against construction under the same seed (and the generator is left
in the same state); "keras", "tf1", "flax" by exact properties and KS tests (scipy, fixed seed,
p > 1e-3) with the expected bounds and stds computed by hand here.
"""

import math

import pytest
import torch
from scipy import stats
from torch import nn

import fanin
from fanin.rules.defaults import LazyModuleError, default_schemes

KS_P = 1e-3
TRUNC_STD = stats.truncnorm.std(-2, 2)  # std of N(0,1) cut at ±2: 0.8796...


@pytest.fixture(autouse=True)
def torch_stream_backend(monkeypatch):
    # The stream's torch path gives the numba path's values without its JIT compilation (seconds).
    monkeypatch.setenv("FANIN_STREAM_BACKEND", "torch")


def tensor_of(module, name):
    try:
        return module.get_parameter(name)
    except AttributeError:
        return module.get_buffer(name)


def apply_defaults(model, framework, generator=None, streams=None):
    """What the rules layer does for a preset: named_modules order, then each module's list."""
    seen = []
    for prefix, module in model.named_modules():
        for local, scheme in default_schemes(module, framework) or ():
            qualified = f"{prefix}.{local}" if prefix else local
            if qualified in seen:
                continue  # listed by a parent (MultiheadAttention's out_proj), which comes first
            g = fanin.Stream(streams, fanin.rng.canonical_name(qualified)) if streams is not None else generator
            scheme(tensor_of(module, local), generator=g)
            seen.append(qualified)
    return seen


def garble(model):
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.fill_(float("nan") if t.is_floating_point() else 7)


def same_bits(a, b):
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(
            a.detach().contiguous().view(-1).view(torch.uint8), b.detach().contiguous().view(-1).view(torch.uint8)
        )
    )


def assert_state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert same_bits(sa[k], sb[k]), k


TORCH_LAYERS = {
    "linear": lambda: nn.Linear(5, 3),
    "linear_nobias": lambda: nn.Linear(7, 3, bias=False),
    "linear_f64": lambda: nn.Linear(64, 5, dtype=torch.float64),
    "bilinear": lambda: nn.Bilinear(3, 4, 5),
    "conv1d": lambda: nn.Conv1d(3, 6, 3),
    "conv2d_groups": lambda: nn.Conv2d(4, 6, (3, 5), groups=2),
    "conv2d_f64": lambda: nn.Conv2d(2, 4, 4, dtype=torch.float64),
    "conv3d_nobias": lambda: nn.Conv3d(2, 4, 2, bias=False),
    "convT1d": lambda: nn.ConvTranspose1d(3, 5, 3),
    "convT2d_groups": lambda: nn.ConvTranspose2d(4, 6, (3, 5), groups=2),
    "convT3d": lambda: nn.ConvTranspose3d(2, 3, 2),
    "bn1d": lambda: nn.BatchNorm1d(4),
    "bn2d_nobias": lambda: nn.BatchNorm2d(3, bias=False),
    "bn3d_untracked": lambda: nn.BatchNorm3d(3, track_running_stats=False),
    "in1d_affine_tracked": lambda: nn.InstanceNorm1d(4, affine=True, track_running_stats=True),
    "layernorm": lambda: nn.LayerNorm((4, 5)),
    "layernorm_nobias": lambda: nn.LayerNorm(6, bias=False),
    "groupnorm": lambda: nn.GroupNorm(2, 4),
    "rmsnorm": lambda: nn.RMSNorm(6),
    "embedding": lambda: nn.Embedding(10, 4),
    "embedding_pad": lambda: nn.Embedding(10, 4, padding_idx=-2),
    "embeddingbag_pad": lambda: nn.EmbeddingBag(10, 4, padding_idx=3),
    "rnn_relu_2layers": lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"),
    "lstm_bi_proj": lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2),
    "gru_nobias": lambda: nn.GRU(3, 4, bias=False),
    "rnncell": lambda: nn.RNNCell(3, 4),
    "lstmcell": lambda: nn.LSTMCell(3, 4),
    "grucell": lambda: nn.GRUCell(3, 4),
    "mha": lambda: nn.MultiheadAttention(8, 2),
    "mha_kvdim_biaskv": lambda: nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True),
    "mha_nobias": lambda: nn.MultiheadAttention(8, 2, bias=False),
    "prelu": lambda: nn.PReLU(3, init=0.1),
    "encoder_layer": lambda: nn.TransformerEncoderLayer(8, 2, 16),
    "decoder_layer": lambda: nn.TransformerDecoderLayer(8, 2, 16, bias=False),
    "encoder_1_layer": lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16), 1, enable_nested_tensor=False
    ),
    "mixed": lambda: nn.Sequential(
        nn.Embedding(6, 4, padding_idx=0), nn.Conv1d(4, 4, 3), nn.BatchNorm1d(4), nn.GRU(4, 3), nn.Linear(3, 2)
    ),
}


@pytest.mark.parametrize("name", list(TORCH_LAYERS))
def test_torch_defaults_replay_construction_bit_for_bit(name):
    factory = TORCH_LAYERS[name]
    torch.manual_seed(11)
    expected = factory()
    expected_next = torch.rand(3)
    torch.manual_seed(12345)
    model = factory()
    garble(model)
    g = torch.Generator().manual_seed(11)
    apply_defaults(model, "torch", generator=g)
    assert_state_equal(model, expected)
    assert same_bits(torch.rand(3, generator=g), expected_next)  # the same draws were consumed


def test_torch_defaults_with_the_global_generator():
    torch.manual_seed(5)
    expected = nn.LSTM(3, 4)
    model = nn.LSTM(3, 4)
    garble(model)
    torch.manual_seed(5)
    apply_defaults(model, "torch")
    assert_state_equal(model, expected)


def test_every_parameter_and_running_stat_is_covered_once():
    model = nn.Sequential(*(f() for f in TORCH_LAYERS.values() if f is not TORCH_LAYERS["mixed"]))
    for framework in ("torch", "keras", "tf1", "flax"):
        covered = apply_defaults(model, framework, generator=torch.Generator().manual_seed(0))
        assert len(covered) == len(set(covered))
        expected = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
        if framework != "torch":  # Bilinear has no counterpart in those frameworks
            expected -= {"3.weight", "3.bias"}
        assert set(covered) == expected, framework
        own_only = {  # a caller that reads own tensors only still covers everything
            f"{prefix}.{local}" if prefix else local
            for prefix, module in model.named_modules()
            for local, _ in default_schemes(module, framework) or ()
            if "." not in local
        }
        assert own_only == expected, framework


def test_torch_concrete_arguments():
    entries = dict(default_schemes(nn.Conv2d(4, 6, (3, 5), groups=2), "torch"))
    assert str(entries["bias"]) == f"uniform(a={-1 / math.sqrt(2 * 15)!r}, b={1 / math.sqrt(2 * 15)!r})"
    mha = default_schemes(nn.MultiheadAttention(16, 4, add_bias_kv=True), "torch")
    assert [(n, str(s)) for n, s in mha] == [
        ("out_proj.weight", "kaiming_uniform(a=2.23606797749979)"),
        ("out_proj.bias", "fanin.zeros_after_uniform(a=-0.25, b=0.25)"),
        ("in_proj_weight", "xavier_uniform"),
        ("in_proj_bias", "zeros"),
        ("bias_k", "xavier_normal"),
        ("bias_v", "xavier_normal"),
    ]
    # the out_proj child lists the same two tensors, for callers that look at own tensors only
    assert [(n, str(s)) for n, s in default_schemes(nn.MultiheadAttention(16, 4).out_proj, "torch")] == [
        ("weight", "kaiming_uniform(a=2.23606797749979)"),
        ("bias", "fanin.zeros_after_uniform(a=-0.25, b=0.25)"),
    ]
    assert [str(s) for _, s in default_schemes(nn.MultiheadAttention(16, 4).out_proj, "flax")] == [
        "jax.lecun_normal",
        "jax.zeros",
    ]
    assert str(dict(default_schemes(nn.LSTM(2, 16), "torch"))["weight_hh_l0"]) == "uniform(a=-0.25, b=0.25)"
    assert str(dict(default_schemes(nn.Bilinear(16, 3, 2), "torch"))["weight"]) == "uniform(a=-0.25, b=0.25)"


# --- the documented exceptions ------------------------------------------------------------------


def test_transformer_encoder_copies_are_an_exception():
    torch.manual_seed(3)
    expected = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False)
    layers = expected.layers
    assert same_bits(layers[0].linear1.weight, layers[1].linear1.weight)  # torch: deep copies
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False)
    apply_defaults(model, "torch", generator=torch.Generator().manual_seed(3))
    for (name, a), (_, b) in zip(model.layers[0].state_dict().items(), layers[0].state_dict().items(), strict=True):
        assert same_bits(a, b), name  # layer 0 is the prototype's draw
    assert not torch.equal(model.layers[1].linear1.weight, model.layers[0].linear1.weight)
    assert default_schemes(model, "torch") is None
    assert default_schemes(nn.Transformer(8, 2, 1, 1, 16, batch_first=True), "torch") is None


class Reordered(nn.Module):
    def __init__(self):
        super().__init__()
        a = nn.Linear(2, 3)
        b = nn.Linear(3, 4)
        self.b = b  # registered before a, constructed after it
        self.a = a


class InOrder(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Linear(3, 4)
        self.a = nn.Linear(2, 3)


def test_construction_order_other_than_module_order_is_an_exception():
    torch.manual_seed(0)
    built = Reordered()
    torch.manual_seed(0)
    in_order = InOrder()
    model = Reordered()
    apply_defaults(model, "torch", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(model.a.weight, built.a.weight)
    assert_state_equal(model, in_order)  # module order is what the defaults follow


class CustomLinear(nn.Linear):
    def reset_parameters(self):
        nn.init.zeros_(self.weight)


class PlainSubclass(nn.Linear):
    pass


def test_module_types_without_defaults():
    for module in (nn.ReLU(), nn.Sequential(nn.Linear(2, 2)), nn.InstanceNorm2d(3), CustomLinear(2, 2)):
        assert default_schemes(module, "torch") is None
    assert [n for n, _ in default_schemes(PlainSubclass(2, 3), "torch")] == ["weight", "bias"]
    for framework in ("keras", "tf1", "flax"):
        assert default_schemes(nn.Bilinear(2, 2, 2), framework) is None


def test_unknown_framework_error():
    with pytest.raises(
        ValueError,
        match=r"default_schemes: Unknown framework 'kears'. Did you mean 'keras'\? "
        r"Accepted: 'flax', 'jax', 'keras', 'tf1', 'torch'.",
    ):
        default_schemes(nn.Linear(2, 2), "kears")


def test_lazy_module_error_then_materialized():
    lazy = nn.LazyLinear(3)
    with pytest.raises(LazyModuleError, match=r"LazyLinear has uninitialized lazy parameters \(weight, bias\)"):
        default_schemes(lazy, "torch")
    lazy(torch.zeros(1, 4))
    assert [n for n, _ in default_schemes(lazy, "torch")] == ["weight", "bias"]


def test_bilinear_without_inputs_error():
    layer = nn.Bilinear(1, 2, 3)
    layer.weight = nn.Parameter(torch.empty(3, 0, 2))
    with pytest.raises(ValueError, match=r"in1_features must be > 0, but got \(in1_features=0\)"):
        default_schemes(layer, "torch")


# --- keras / tf1 / flax: distributions ----------------------------------------------------------


def init(module, framework, seed=0):
    apply_defaults(module, framework, generator=torch.Generator().manual_seed(seed))
    return module


def ks_uniform(t, bound):
    x = t.detach().flatten().double().numpy()
    assert abs(x).max() <= bound
    assert stats.kstest(x, "uniform", (-bound, 2 * bound)).pvalue > KS_P


def ks_truncated(t, std_after):
    sigma = std_after / TRUNC_STD
    x = t.detach().flatten().double().numpy()
    assert abs(x).max() <= 2 * sigma
    assert stats.kstest(x, "truncnorm", (-2, 2, 0, sigma)).pvalue > KS_P


def zeros(t):
    return bool((t == 0).all())


def test_keras_dense_conv_and_transposed():
    lin = init(nn.Linear(300, 200), "keras")
    ks_uniform(lin.weight, math.sqrt(6 / (300 + 200)))
    assert zeros(lin.bias)
    conv = init(nn.Conv2d(4, 8, (3, 5)), "keras")  # Keras kernel (3, 5, 4, 8): fans 60, 120
    ks_uniform(conv.weight, math.sqrt(6 / (60 + 120)))
    convt = init(nn.ConvTranspose2d(4, 6, 3), "keras")  # kernel (3, 3, 6, 4): fans 54, 36
    ks_uniform(convt.weight, math.sqrt(6 / (54 + 36)))
    assert zeros(convt.bias)


def test_keras_embedding_norms_prelu():
    emb = init(nn.Embedding(100, 50, padding_idx=0), "keras")
    ks_uniform(emb.weight, 0.05)
    assert not zeros(emb.weight[0])  # Keras has no padding row
    bn = nn.BatchNorm1d(3)
    garble(bn)
    init(bn, "keras")
    assert (bn.weight == 1).all() and zeros(bn.bias) and zeros(bn.running_mean) and (bn.running_var == 1).all()
    assert bn.num_batches_tracked.item() == 0
    assert zeros(init(nn.PReLU(), "keras").weight)


def test_keras_lstm_gru_rnn():
    lstm = init(nn.LSTM(6, 8), "keras")
    ks_uniform(lstm.weight_ih_l0, math.sqrt(6 / (6 + 32)))
    w = lstm.weight_hh_l0.detach().double()  # (32, 8) = Keras (8, 32) with orthonormal rows
    torch.testing.assert_close(w.T @ w, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0)
    expected_bias = torch.cat([torch.zeros(8), torch.ones(8), torch.zeros(16)])  # i, f, g, o
    assert torch.equal(lstm.bias_ih_l0, expected_bias) and zeros(lstm.bias_hh_l0)
    gru = init(nn.GRU(5, 4, num_layers=2), "keras")
    w = gru.weight_hh_l1.detach().double()
    torch.testing.assert_close(w.T @ w, torch.eye(4, dtype=torch.float64), atol=1e-5, rtol=0)
    ks_uniform(gru.weight_ih_l1, math.sqrt(6 / (4 + 12)))
    assert all(zeros(getattr(gru, n)) for n in ("bias_ih_l0", "bias_hh_l0", "bias_ih_l1", "bias_hh_l1"))
    cell = init(nn.RNNCell(3, 5), "keras")
    w = cell.weight_hh.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(5, dtype=torch.float64), atol=1e-5, rtol=0)


def test_keras_and_tf1_attention_glorot_per_projection():
    for framework in ("keras", "tf1"):
        mha = init(nn.MultiheadAttention(64, 4), framework)
        ks_uniform(mha.in_proj_weight, math.sqrt(6 / (64 + 64)))  # not sqrt(6 / (64 + 192))
        ks_uniform(mha.out_proj.weight, math.sqrt(6 / (64 + 64)))
        assert zeros(mha.in_proj_bias) and zeros(mha.out_proj.bias)
    sep = init(nn.MultiheadAttention(64, 4, kdim=32, vdim=16), "keras")
    ks_uniform(sep.k_proj_weight, math.sqrt(6 / (32 + 64)))


def test_tf1_rnn_cells_share_one_glorot_kernel():
    lstm = init(nn.LSTM(6, 8), "tf1")
    limit = math.sqrt(6 / ((6 + 8) + 32))  # kernel [input_depth + h, 4h]
    ks_uniform(torch.cat([lstm.weight_ih_l0.flatten(), lstm.weight_hh_l0.flatten()]), limit)
    assert torch.equal(lstm.bias_ih_l0, torch.cat([torch.zeros(8), torch.ones(8), torch.zeros(16)]))
    gru = init(nn.GRU(5, 40), "tf1")
    gates, candidate = math.sqrt(6 / (45 + 80)), math.sqrt(6 / (45 + 40))
    for w in (gru.weight_ih_l0, gru.weight_hh_l0):
        ks_uniform(w[:80], gates)
        ks_uniform(w[80:], candidate)
    assert torch.equal(gru.bias_ih_l0, torch.cat([torch.ones(80), torch.zeros(40)])) and zeros(gru.bias_hh_l0)
    emb = init(nn.Embedding(50, 20), "tf1")
    ks_uniform(emb.weight, math.sqrt(6 / 70))
    dense = init(nn.Linear(30, 20), "tf1")
    ks_uniform(dense.weight, math.sqrt(6 / 50))
    assert zeros(dense.bias)


def test_flax_dense_conv_transposed_embed():
    lin = init(nn.Linear(400, 300), "flax")
    ks_truncated(lin.weight, math.sqrt(1 / 400))
    assert zeros(lin.bias)
    conv = init(nn.Conv2d(4, 64, 3), "flax")
    ks_truncated(conv.weight, math.sqrt(1 / 36))
    convt = init(nn.ConvTranspose2d(6, 64, 3), "flax")  # Flax kernel (3, 3, in=6, 64): fan_in = 6·9
    ks_truncated(convt.weight, math.sqrt(1 / 54))
    emb = init(nn.Embedding(11, 1000), "flax")  # N(0, 1/features), untruncated
    x = emb.weight.detach().flatten().double().numpy()
    assert stats.kstest(x, "norm", (0, math.sqrt(1 / 1000))).pvalue > KS_P
    assert abs(x).max() > 2 * math.sqrt(1 / 1000)
    assert torch.allclose(init(nn.PReLU(2), "flax").weight, torch.full((2,), 0.01))
    ln = nn.LayerNorm(4)
    garble(ln)
    init(ln, "flax")
    assert (ln.weight == 1).all() and zeros(ln.bias)


def test_flax_lstm_per_gate_orthogonal():
    lstm = init(nn.LSTM(50, 40), "flax")
    ks_truncated(lstm.weight_ih_l0, math.sqrt(1 / 50))
    blocks = lstm.weight_hh_l0.detach().double().reshape(4, 40, 40)
    for q in blocks:
        torch.testing.assert_close(q @ q.T, torch.eye(40, dtype=torch.float64), atol=1e-5, rtol=0)
    whole = lstm.weight_hh_l0.detach().double()
    assert not torch.allclose(whole.T @ whole, torch.eye(40, dtype=torch.float64), atol=1e-2)  # not Keras's
    assert zeros(lstm.bias_ih_l0) and zeros(lstm.bias_hh_l0)
    rnn = init(nn.RNN(3, 6), "flax")
    w = rnn.weight_hh_l0.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(6, dtype=torch.float64), atol=1e-5, rtol=0)
    mha = init(nn.MultiheadAttention(400, 4), "flax")
    ks_truncated(mha.in_proj_weight, math.sqrt(1 / 400))


@pytest.mark.parametrize("framework", ["torch", "keras", "tf1", "flax"])
def test_counter_stream_is_deterministic(framework):
    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Embedding(5, 4, padding_idx=1), nn.LSTM(4, 3, proj_size=2), nn.MultiheadAttention(4, 2))

    a, b = build(), build()
    garble(a)
    garble(b)
    apply_defaults(a, framework, streams=9)
    apply_defaults(b, framework, streams=9)
    assert_state_equal(a, b)
    assert all(torch.isfinite(t).all() for t in a.state_dict().values())
