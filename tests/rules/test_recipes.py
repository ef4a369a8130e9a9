"""Recipes against their reference code: restated here from the cited files (tiny models with the
reference's module names and its init function), or the installed library itself (transformers
T5, torchvision ResNet, timm ViT); against the paper's equations where no code is the reference.

Each comparison captures the reference init (fanin.capture) and checks that the recipe resolves
every tensor to the same scheme, with the same arguments; where the draw order is the same, the
values are compared bit for bit too."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.planning.capturing import capture
from fanin.planning.stats import block_statistics
from fanin.report.plan import render_plan_text
from fanin.rules import RuleError
from fanin.rules.presets import gpt2
from fanin.rules.recipes import (
    RECIPES,
    deepnet_constants,
    deepnorm,
    fixup,
    for_model,
    gpt_neox,
    megatron,
    olmo,
    t5,
    tfixup,
    torchtitan_llama3,
    vit_jax,
    vit_moco,
    vit_timm,
    zero_init_residual,
)
from support import zoo


def assert_same_schemes(model: nn.Module, rules, *, init=None) -> fanin.Plan:
    """The recipe resolves every tensor the reference init writes to the reference's scheme."""
    reference = capture(model, init=init)
    plan = fanin.plan(model, rules, leftovers="keep")
    checked = 0
    for e in reference:
        if e.action != "scheme":
            continue
        ours = plan[e.name]
        assert ours.action == "scheme", e.name
        assert str(ours.scheme) == str(e.scheme), (e.name, str(ours.scheme), str(e.scheme))
        checked += 1
    assert checked >= 4
    return plan


def assert_bitwise(model: nn.Module, rules, init: str, seed: int = 3) -> None:
    reference = copy.deepcopy(model)
    torch.manual_seed(seed)
    with torch.no_grad():
        getattr(reference, init)()
    fanin.apply(model, rules, generator=torch.Generator().manual_seed(seed), leftovers="keep")
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


# ---------------------------------------------------------------------------------- torchtitan
# torchtitan/models/llama3/model/model.py (Attention/FeedForward/TransformerBlock/Transformer.init_weights),
# restated: the released code, with trunc_normal_'s default bounds and w3 depth-scaled.


TTTransformer = zoo.TTTransformer


@pytest.mark.parametrize("depth_init", [True, False])
def test_torchtitan_as_released_is_the_reference_bit_for_bit(depth_init):
    model = TTTransformer(depth_init=depth_init)
    rules = torchtitan_llama3(n_layers=3, dim=32, depth_init=depth_init, as_released=True)
    assert_same_schemes(model, rules)
    assert_bitwise(model, rules, "init_weights")


def test_torchtitan_default_fixes_the_two_slips_of_torchtitan_3334():
    plan = fanin.plan(TTTransformer(), torchtitan_llama3(n_layers=3, dim=32), leftovers="keep")
    wo = plan["layers.2.attention.wo.weight"].statistics  # depth_init: 0.02 / sqrt(2 * 3), cut at ±3sigma
    assert (wo.low, wo.high) == pytest.approx((-3 * 0.02 / math.sqrt(6), 3 * 0.02 / math.sqrt(6)), rel=1e-15)
    assert str(plan["layers.2.feed_forward.w3.weight"].scheme) == "trunc_normal(std=0.02, a=-0.06, b=0.06)"
    out = plan["output.weight"].statistics
    assert out.high == pytest.approx(3 * 32**-0.5, rel=1e-15)
    assert str(plan["tok_embeddings.weight"].scheme) == "normal"


# ------------------------------------------------------------------------------------ Megatron
# megatron/legacy/model/utils.py: init_method_normal(sigma), scaled_init_method_normal(sigma, num_layers),
# restated; the legacy GPT layer names.


def init_method_normal(sigma):
    return lambda t: nn.init.normal_(t, mean=0.0, std=sigma)


def scaled_init_method_normal(sigma, num_layers):
    std = sigma / math.sqrt(2.0 * num_layers)
    return lambda t: nn.init.normal_(t, mean=0.0, std=std)


class MegatronLayer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(d)
        self.self_attention = nn.ModuleDict({"query_key_value": nn.Linear(d, 3 * d), "dense": nn.Linear(d, d)})
        self.post_attention_layernorm = nn.LayerNorm(d)
        self.mlp = nn.ModuleDict({"dense_h_to_4h": nn.Linear(d, 4 * d), "dense_4h_to_h": nn.Linear(4 * d, d)})


class MegatronGPT(nn.Module):
    def __init__(self, d=32, n_layers=2, vocab=40, sigma=0.02):
        super().__init__()
        self.sigma, self.n = sigma, n_layers
        self.embedding = nn.ModuleDict(
            {"word_embeddings": nn.Embedding(vocab, d), "position_embeddings": nn.Embedding(16, d)}
        )
        self.layers = nn.ModuleList(MegatronLayer(d) for _ in range(n_layers))
        self.final_layernorm = nn.LayerNorm(d)

    def init_weights(self):
        init, out = init_method_normal(self.sigma), scaled_init_method_normal(self.sigma, self.n)
        for e in self.embedding.values():
            init(e.weight)
        for layer in self.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                nn.init.ones_(norm.weight)
                nn.init.zeros_(norm.bias)
            for name, lin in (*layer.self_attention.items(), *layer.mlp.items()):
                (out if name in ("dense", "dense_4h_to_h") else init)(lin.weight)
                nn.init.zeros_(lin.bias)
        nn.init.ones_(self.final_layernorm.weight)
        nn.init.zeros_(self.final_layernorm.bias)


def test_megatron_is_init_method_normal_and_scaled_init_method_normal():
    model = MegatronGPT()
    assert_same_schemes(model, megatron(n_layers=2))
    assert_bitwise(model, megatron(n_layers=2), "init_weights")
    plan = fanin.plan(model, megatron(n_layers=2))
    assert plan["layers.1.mlp.dense_4h_to_h.weight"].statistics.std == pytest.approx(0.02 / math.sqrt(4), rel=1e-15)


# ------------------------------------------------------------------------------------------ OLMo
# olmo/model.py OLMoBlock.reset_parameters / OLMo.reset_parameters and olmo/initialization.py
# init_normal (truncated normal cut at ±cutoff_factor·std), restated for mitchell and full_megatron.


def init_normal(module, std, cutoff_factor):
    nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-cutoff_factor * std, b=cutoff_factor * std)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


class OLMoBlock(nn.Module):
    # OLMoBlock.__init__ registers attn_out and ff_out; OLMoSequentialBlock adds att_proj and ff_proj
    # after it, and their reset_parameters initialize in that order too.
    def __init__(self, layer_id, d, hidden):
        super().__init__()
        self.layer_id = layer_id
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_out = nn.Linear(hidden, d, bias=False)
        self.att_proj = nn.Linear(d, 3 * d, bias=False)
        self.ff_proj = nn.Linear(d, 2 * hidden, bias=False)


class OLMo(nn.Module):
    def __init__(self, init_fn, d=32, n_layers=3, vocab=60, init_std=0.02):
        super().__init__()
        self.init_fn, self.d, self.n, self.init_std = init_fn, d, n_layers, init_std
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab, d),
                "blocks": nn.ModuleList(OLMoBlock(i, d, 2 * d) for i in range(n_layers)),
                "ln_f": nn.LayerNorm(d),
                "ff_out": nn.Linear(d, vocab, bias=False),
            }
        )

    def reset_parameters(self):
        cut = 3.0
        if self.init_fn == "mitchell":
            init_normal(self.transformer.wte, 1.0 / math.sqrt(self.d), cut)
        else:
            init_normal(self.transformer.wte, self.init_std, cut)
        for b in self.transformer.blocks:
            if self.init_fn == "mitchell":
                in_std = 1 / math.sqrt(self.d)
                attn_out_std = 1 / (math.sqrt(2 * self.d * (b.layer_id + 1)))
                ff_out_std = 1 / (math.sqrt(2 * b.ff_out.in_features * (b.layer_id + 1)))
            else:
                in_std = self.init_std
                attn_out_std = ff_out_std = self.init_std / math.sqrt(2.0 * self.n)
            init_normal(b.attn_out, attn_out_std, cut)
            init_normal(b.ff_out, ff_out_std, cut)
            init_normal(b.att_proj, in_std, cut)
            init_normal(b.ff_proj, in_std, cut)
        self.transformer.ln_f.reset_parameters()
        final = 1 / math.sqrt(self.d) if self.init_fn == "mitchell" else self.d**-0.5
        init_normal(self.transformer.ff_out, final, cut)


@pytest.mark.parametrize("init_fn", ["mitchell", "full_megatron"])
def test_olmo_inits_are_the_reference(init_fn):
    model = OLMo(init_fn)
    rules = olmo(init_fn, n_layers=3, d_model=32)
    assert_same_schemes(model, rules, init="reset_parameters")
    assert_bitwise(model, rules, "reset_parameters")


# ------------------------------------------------------------------------------------- GPT-NeoX
# megatron/model/init_functions.py: small_init_init_method(dim), wang_init_method(n_layers, dim), restated.


class NeoX(nn.Module):
    def __init__(self, d=40, n_layers=2, vocab=30):
        super().__init__()
        self.d, self.n = d, n_layers
        self.embed_in = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                {
                    "attention": nn.ModuleDict({"query_key_value": nn.Linear(d, 3 * d), "dense": nn.Linear(d, d)}),
                    "mlp": nn.ModuleDict({"dense_h_to_4h": nn.Linear(d, 4 * d), "dense_4h_to_h": nn.Linear(4 * d, d)}),
                }
            )
            for _ in range(n_layers)
        )
        self.embed_out = nn.Linear(d, vocab, bias=False)

    def init_weights(self):
        small = math.sqrt(2 / (5 * self.d))
        wang = 2 / self.n / math.sqrt(self.d)
        nn.init.normal_(self.embed_in.weight, mean=0.0, std=small)
        for layer in self.layers:
            for part in (layer["attention"], layer["mlp"]):
                for name, lin in part.items():
                    nn.init.normal_(lin.weight, mean=0.0, std=wang if name in ("dense", "dense_4h_to_h") else small)
                    nn.init.zeros_(lin.bias)
        nn.init.normal_(self.embed_out.weight, mean=0.0, std=small)


def test_gpt_neox_small_init_and_wang_init():
    model = NeoX()
    assert_same_schemes(model, gpt_neox(n_layers=2, d_model=40))
    assert_bitwise(model, gpt_neox(n_layers=2, d_model=40), "init_weights")


# -------------------------------------------------------------------------------------------- T5


def test_t5_per_module_stds_are_transformers_t5():
    pytest.importorskip("transformers")
    model = zoo.HF["t5"]()
    plan = assert_same_schemes(model, for_model("t5", model))
    # the numbers, from T5PreTrainedModel._init_weights: d_model=32, d_kv=8, n_heads=4, d_ff=64, factor 1
    q = plan["encoder.block.0.layer.0.SelfAttention.q.weight"].statistics.std
    assert q == pytest.approx((32 * 8) ** -0.5, rel=1e-15)
    assert plan["decoder.block.1.layer.2.DenseReluDense.wo.weight"].statistics.std == pytest.approx(64**-0.5, rel=1e-15)


# ---------------------------------------------------------------------------------------- DeepNet


class FairseqLayer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.self_attn = nn.ModuleDict({k: nn.Linear(d, d) for k in ("q_proj", "k_proj", "v_proj", "out_proj")})
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.final_layer_norm = nn.LayerNorm(d)


class Stack(nn.Module):
    def __init__(self, d=16, n=3):
        super().__init__()
        self.layers = nn.ModuleList(FairseqLayer(d) for _ in range(n))


def test_deepnet_constants_are_table_1():
    n, m = 6, 4
    assert deepnet_constants("encoder", encoder_layers=n)["encoder"] == ((2 * n) ** 0.25, (8 * n) ** -0.25)
    both = deepnet_constants("encoder_decoder", encoder_layers=n, decoder_layers=m)
    assert both["encoder"] == pytest.approx((0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)), rel=1e-15)
    assert both["decoder"] == pytest.approx(((3 * m) ** 0.25, (12 * m) ** -0.25), rel=1e-15)


def test_deepnorm_is_the_papers_pseudocode():
    """Wang et al. 2022, Fig. 2: xavier_normal_(w, gain=β) for ffn, v_proj, out_proj; gain 1 for q_proj, k_proj."""

    class Reference(Stack):
        def init_weights(self):
            beta = (8 * 3) ** -0.25
            for layer in self.layers:
                for name, lin in (*layer.self_attn.items(), ("fc1", layer.fc1), ("fc2", layer.fc2)):
                    nn.init.xavier_normal_(lin.weight, gain=1.0 if name in ("q_proj", "k_proj") else beta)
                    nn.init.zeros_(lin.bias)

    model = Reference()
    rules = deepnorm("decoder", decoder_layers=3)
    assert_same_schemes(model, rules)
    assert_bitwise(model, rules, "init_weights")
    plan = fanin.plan(model, rules)
    assert (
        "DeepNorm changes the forward pass: x_{l+1} = LN(alpha * x_l + G(x_l)) with alpha = 1.56508"
        in plan["layers.0.fc1.weight"].rule
    )
    assert "fanin does the init part only" in render_plan_text(plan, width=None)


def test_deepnorm_encoder_decoder_sides():
    model = nn.ModuleDict({"encoder": Stack(n=2), "decoder": Stack(n=3)})
    plan = fanin.plan(model, deepnorm("encoder_decoder", encoder_layers=2, decoder_layers=3))
    enc_beta = 0.87 * (2**4 * 3) ** (-1 / 16)
    dec_beta = (12 * 3) ** -0.25
    assert plan["encoder.layers.0.self_attn.v_proj.weight"].scheme.arguments["gain"] == enc_beta
    assert plan["decoder.layers.2.fc2.weight"].scheme.arguments["gain"] == dec_beta
    assert plan["decoder.layers.2.self_attn.q_proj.weight"].scheme.arguments["gain"] == 1.0


# ---------------------------------------------------------------------------------------- T-Fixup


def test_tfixup_is_algorithm_1():
    """Huang et al. 2020, Alg. 1: Xavier everywhere, embeddings N(0, d^-1); decoder v, w, MLP and the
    embeddings x (9N)^(-1/4); encoder v, w, MLP x 0.67 N^(-1/4)."""
    d, n = 16, 3
    model = nn.ModuleDict({"encoder": Stack(d, n), "decoder": Stack(d, n), "embed": nn.Embedding(20, d)})
    plan = fanin.plan(model, tfixup("encoder_decoder", n_layers=n, d_model=d))
    fan = (d + d) / 2  # a (d, d) projection
    assert plan["decoder.layers.0.self_attn.v_proj.weight"].statistics.high == pytest.approx(
        (9 * n) ** -0.25 * math.sqrt(3 / fan), rel=1e-12
    )
    assert plan["encoder.layers.1.self_attn.out_proj.weight"].statistics.high == pytest.approx(
        0.67 * n**-0.25 * math.sqrt(3 / fan), rel=1e-12
    )
    assert plan["encoder.layers.1.self_attn.q_proj.weight"].statistics.high == pytest.approx(
        math.sqrt(3 / fan), rel=1e-12
    )
    assert plan["embed.weight"].statistics.std == pytest.approx(d**-0.5 * (9 * n) ** -0.25, rel=1e-12)
    assert "T-Fixup removes LayerNorm" in plan["decoder.layers.0.fc1.weight"].rule


# ------------------------------------------------------------------------------------------ Fixup
# hongyi-zhang/Fixup imagenet/models/fixup_resnet_imagenet.py FixupResNet.__init__, restated.


class FixupBasicBlock(nn.Module):
    def __init__(self, c, downsample=False):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.downsample = nn.Sequential(nn.Conv2d(c, c, 1, bias=False)) if downsample else None


class FixupResNet(nn.Module):
    def __init__(self, layers=(2, 1)):
        super().__init__()
        self.num_layers = sum(layers)
        self.conv1 = nn.Conv2d(3, 8, 3, bias=False)
        for i, n in enumerate(layers):
            setattr(
                self,
                f"layer{i + 1}",
                nn.Sequential(*[FixupBasicBlock(8, downsample=(j == 0 and i > 0)) for j in range(n)]),
            )
        self.fc = nn.Linear(8, 5)

    def init_weights(self):
        for m in self.modules():
            if isinstance(m, FixupBasicBlock):
                w = m.conv1.weight
                nn.init.normal_(
                    w, mean=0, std=math.sqrt(2 / (w.shape[0] * math.prod(w.shape[2:]))) * self.num_layers ** (-0.5)
                )
                nn.init.constant_(m.conv2.weight, 0)
                if m.downsample is not None:
                    d = m.downsample[0].weight
                    nn.init.normal_(d, mean=0, std=math.sqrt(2 / (d.shape[0] * math.prod(d.shape[2:]))))
        nn.init.constant_(self.fc.weight, 0)
        nn.init.constant_(self.fc.bias, 0)


def test_fixup_is_the_reference_resnet_init():
    model = FixupResNet()
    rules = fixup(n_blocks=3, m=2)
    assert_same_schemes(model, rules)
    plan = fanin.plan(model, rules)
    assert plan["conv1.weight"].action == "reset_parameters"  # the stem keeps its module's init
    assert "Fixup removes normalization" in plan["layer1.0.conv1.weight"].rule
    # m = 3 (Bottleneck): L^(-1/4) on conv1 and conv2, conv3 zero
    bottleneck = nn.ModuleDict(
        {"layer1": nn.Sequential(nn.ModuleDict({f"conv{i}": nn.Conv2d(4, 4, 1) for i in (1, 2, 3)}))}
    )
    p = fanin.plan(bottleneck, fixup(n_blocks=16, m=3), leftovers="keep")
    assert p["layer1.0.conv2.weight"].statistics.std == pytest.approx(math.sqrt(2 / 4) * 16 ** (-0.25), rel=1e-15)
    assert str(p["layer1.0.conv3.weight"].scheme) == "zeros"


# ----------------------------------------------------------------------- torchvision and timm


def test_zero_init_residual_is_torchvisions():
    try:
        tv = zoo.import_torchvision()
    except ImportError:
        pytest.skip("torchvision not installed")
    model = tv.models.resnet.ResNet(tv.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=5, zero_init_residual=True)
    reference = capture(
        lambda: tv.models.resnet.ResNet(
            tv.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=5, zero_init_residual=True
        )
    )
    plan = fanin.plan(model, zero_init_residual("basic"))
    compared = 0
    for e in plan:
        if e.action == "scheme":
            assert str(e.scheme) == str(reference[e.name].scheme), e.name
            compared += 1
    assert compared > 20 and str(plan["layer3.0.bn2.weight"].scheme) == "zeros"


def _same_distribution(ours, theirs, shape):
    from fanin.rules.blocks import is_blocked

    pairs = [(ours.statistics, theirs.statistics)]
    if is_blocked(ours.scheme):
        pairs = [(s, theirs.statistics) for _rows, _logical, s in block_statistics(ours.scheme, shape)]
    for a, b in pairs:
        _same_statistics(a, b)


def _same_statistics(a, b):
    assert a.distribution == b.distribution
    for x, y in ((a.mean, b.mean), (a.std, b.std), (a.low, b.low), (a.high, b.high)):
        assert (x is None and y is None) or x == pytest.approx(y, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("mode", "recipe"), [("", vit_timm()), ("jax", vit_jax()), ("moco", vit_moco())])
def test_timm_vit_modes_have_timms_distributions(mode, recipe):
    """timm's own init (captured) and the recipe give every tensor the same distribution (timm
    draws its truncated normals by erfinv, fanin by torch's sampler: bits differ, parameters not)."""
    try:
        zoo.timm_module()
    except ImportError:
        pytest.skip("timm/torchvision not installed")
    model = zoo.timm_vit(weight_init=mode)
    reference = capture(model, init=lambda m: m.init_weights(mode or ""))
    plan = fanin.plan(model, recipe)
    compared = 0
    for e in plan:
        if e.action != "scheme":
            continue
        _same_distribution(e, reference[e.name], e.shape)
        compared += 1
    assert compared >= 10


# --------------------------------------------------------------------------------- parameters


def test_gpt2_needs_n_layer_and_reads_it_from_a_documented_attribute():
    with pytest.raises(
        RuleError, match=r"gpt2 needs n_layer \(the number of transformer blocks: GPT2Config.n_layer\), got none"
    ):
        fanin.plan(torch.nn.Sequential(torch.nn.Linear(2, 2)), "gpt2")
    with pytest.raises(
        RuleError, match=r"Looked on Sequential for: n_layer \(config.n_layer, config.num_hidden_layers"
    ):
        for_model("gpt2", torch.nn.Sequential(torch.nn.Linear(2, 2)))
    model = fanin.models.gpt(n_layer=2)
    plan = fanin.plan(model, gpt2(n_layer=2))
    assert plan["h.1.mlp.c_proj.weight"].statistics.std == pytest.approx(0.02 / math.sqrt(4), rel=1e-15)
    # the demo GPT documents n_layer as an attribute: the preset reads it and says so
    read = fanin.plan(model, "gpt2")
    assert read["h.1.mlp.c_proj.weight"].statistics.std == pytest.approx(0.02 / math.sqrt(4), rel=1e-15)
    assert read.rules.name == "gpt2 with n_layer=2 (the model's n_layer)"
    assert "Rules of gpt2 with n_layer=2 (the model's n_layer)" in str(read)
    # a value given in the spec wins over the model's
    assert fanin.plan(model, "gpt2(n_layer=8)")["h.1.mlp.c_proj.weight"].statistics.std == pytest.approx(0.02 / 4)


def test_for_model_reads_documented_attributes():
    pytest.importorskip("transformers")
    llama = zoo.HF["llama"]()
    rules = for_model("torchtitan_llama3", llama)
    plan = fanin.plan(llama, rules, leftovers="keep")
    assert plan["model.layers.1.self_attn.o_proj.weight"].scheme.arguments["std"] == 0.02 / (2 * 2) ** 0.5
    assert plan["lm_head.weight"].scheme.arguments["std"] == 32**-0.5
    with pytest.raises(RuleError, match=r"Unknown recipe 'torchtitan'"):
        for_model("torchtitan", llama)
    with pytest.raises(RuleError, match=r"Recipe 'olmo' got unexpected argument\(s\) depth"):
        for_model("olmo", llama, depth=3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: megatron(), r"megatron needs n_layers"),
        (lambda: megatron(n_layers=0), r"megatron needs a positive int n_layers, got n_layers=0"),
        (lambda: megatron(n_layers=2, sigma=-1), r"megatron needs a positive number sigma, got sigma=-1"),
        (lambda: olmo("kaiming", n_layers=2, d_model=8), r"Unknown OLMo init_fn 'kaiming'"),
        (
            lambda: gpt_neox(n_layers=2, d_model=8, init_method="wang"),
            r"gpt_neox: Unknown init_method 'wang'. Did you mean 'wang_init'",
        ),
        (
            lambda: t5(d_model=8, d_kv=2, d_ff=16),
            r"t5 needs n_heads \(the number of attention heads: T5Config.num_heads\)",
        ),
        (lambda: deepnorm("decoder"), r"deepnorm needs decoder_layers"),
        (lambda: deepnorm("seq2seq", decoder_layers=2), r"Unknown DeepNet arch 'seq2seq'"),
        (lambda: tfixup("encoder_decoder", n_layers=2), r"tfixup needs d_model"),
        (
            lambda: fixup(n_blocks=4),
            r"fixup needs m \(the number of layers in each residual branch: 2 for BasicBlock, 3 for Bottleneck\)",
        ),
        (lambda: fixup(n_blocks=4, m=1), r"fixup needs m >= 2 layers per residual branch"),
        (lambda: zero_init_residual(), r"zero_init_residual needs block"),
        (lambda: zero_init_residual("wide"), r"Unknown zero_init_residual block 'wide'"),
    ],
)
def test_recipe_parameter_errors(call, message):
    with pytest.raises(RuleError, match=message):
        call()


def test_every_recipe_is_documented_and_reads_its_parameters_by_name():
    import inspect

    for name, fn in RECIPES.items():
        doc = inspect.getdoc(fn) or ""
        assert doc and ">>>" in doc, name
        for p in inspect.signature(fn).parameters.values():
            assert p.kind is p.POSITIONAL_OR_KEYWORD, (name, p.name)
