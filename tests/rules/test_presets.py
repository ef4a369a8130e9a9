"""Presets: resnet, gpt2, bert, vit by formula and distribution; keras/tf1/flax wiring on hand-checked layers."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

import fanin
import fanin.models
from fanin.report.plan import render_plan_text
from fanin.rules import RuleError, list_presets, preset
from fanin.rules.recipes import RECIPES


def test_list_presets():
    assert {"bert", "flax", "gpt2", "keras", "resnet", "tf1", "torch", "vit"} <= set(list_presets())
    assert set(RECIPES) <= set(list_presets())


def test_resnet_recipe():
    model = fanin.models.cnn(channels=8)
    p = fanin.plan(model, "resnet", seed=0)
    conv = p["0.weight"]  # Conv2d(3, 8, 3): fan_out = 8 * 9, std = sqrt(2 / 72)
    assert str(conv.scheme) == "kaiming_normal(mode='fan_out', nonlinearity='relu')"
    assert conv.statistics.std == pytest.approx(math.sqrt(2 / 72), rel=1e-15)
    assert str(p["1.weight"].scheme) == "ones" and str(p["1.bias"].scheme) == "zeros"
    assert p["8.weight"].init == "Linear.reset_parameters()"  # the head keeps torchvision's default
    fanin.apply(model, "resnet", seed=0)
    w = model[3].weight.detach().flatten().double().numpy()  # Conv2d(8, 16, 3): fan_out 144
    assert stats.kstest(w, "norm", args=(0, math.sqrt(2 / 144))).pvalue > 1e-3


def test_gpt2_recipe():
    model = fanin.models.gpt(n_layer=4, n_embd=64)
    fanin.apply(model, "gpt2(n_layer=4)", seed=0)
    # residual projections: N(0, (0.02 / sqrt(2 * 4))^2); 4 * 2 matrices pooled
    proj = torch.cat(
        [b.attn.c_proj.weight.flatten() for b in model.h] + [b.mlp.c_proj.weight.flatten() for b in model.h]
    )
    assert stats.kstest(proj.detach().double().numpy(), "norm", args=(0, 0.02 / math.sqrt(8))).pvalue > 1e-3
    other = torch.cat([b.mlp.c_fc.weight.flatten() for b in model.h])
    assert stats.kstest(other.detach().double().numpy(), "norm", args=(0, 0.02)).pvalue > 1e-3
    assert torch.count_nonzero(model.h[0].attn.c_attn.bias) == 0
    assert torch.equal(model.ln_f.weight, torch.ones(64)) and torch.count_nonzero(model.ln_f.bias) == 0
    # n_layer given explicitly
    p = fanin.plan(model, "gpt2(n_layer=12)")
    assert p["h.0.mlp.c_proj.weight"].statistics.std == pytest.approx(0.02 / math.sqrt(24), rel=1e-15)


def test_bert_recipe_zeroes_the_padding_row():
    model = nn.ModuleDict(
        {"emb": nn.Embedding(50, 16, padding_idx=0), "dense": nn.Linear(16, 16), "ln": nn.LayerNorm(16)}
    )
    fanin.apply(model, "bert", seed=0)
    emb = model["emb"].weight.detach()
    assert torch.count_nonzero(emb[0]) == 0
    assert stats.kstest(emb[1:].flatten().double().numpy(), "norm", args=(0, 0.02)).pvalue > 1e-3
    assert str(fanin.plan(model, "bert")["emb.weight"].scheme) == "fanin.padded_normal(padding_idx=0, std=0.02)"
    assert torch.equal(model["ln"].weight, torch.ones(16)) and torch.count_nonzero(model["dense"].bias) == 0


def test_vit_recipe():
    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = nn.Conv2d(3, 32, 4, stride=4)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 32))
            self.pos_embed = nn.Parameter(torch.zeros(1, 17, 32))
            self.qkv = nn.Linear(32, 96)
            self.norm = nn.LayerNorm(32)

    model = TinyViT()
    p = fanin.apply(model, "vit", seed=0)
    assert str(p["pos_embed"].scheme) == "trunc_normal(std=0.02)"
    assert str(p["cls_token"].scheme) == "normal(std=1e-06)"
    assert str(p["qkv.weight"].scheme) == "trunc_normal(std=0.02)" and str(p["qkv.bias"].scheme) == "zeros"
    assert p["patch_embed.weight"].init == "Conv2d.reset_parameters()"
    # trunc_normal(std=0.02) is cut at ±2 absolute (timm): effectively N(0, 0.02²)
    w = model.qkv.weight.detach().flatten().double().numpy()
    assert stats.kstest(w, "norm", args=(0, 0.02)).pvalue > 1e-3


def test_keras_tf1_flax_wiring_on_a_linear():
    lin = nn.Linear(30, 10)
    k = fanin.plan(lin, "keras")
    assert k["weight"].scheme.name == "keras.glorot_uniform" and k["bias"].scheme.name == "keras.zeros"
    assert k["weight"].statistics.high == pytest.approx(math.sqrt(6 / 40), rel=1e-15)
    f = fanin.plan(lin, "flax")
    assert f["weight"].scheme.name == "jax.lecun_normal"
    assert f["weight"].statistics.std == pytest.approx(math.sqrt(1 / 30), rel=1e-12)
    t = fanin.plan(lin, "tf1")
    assert t["weight"].statistics.high == pytest.approx(math.sqrt(6 / 40), rel=1e-15)
    fanin.apply(lin, "keras", seed=0)
    assert torch.count_nonzero(lin.bias) == 0 and lin.weight.abs().max() <= math.sqrt(6 / 40)


def test_keras_lstm_forget_gate_bias():
    lstm = nn.LSTM(4, 3)
    fanin.apply(lstm, "keras", seed=0)
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0  # torch adds both; Keras has one bias: forget gate (i, f, g, o) = 1
    assert torch.equal(bias.detach(), torch.tensor([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=torch.float32))


def test_framework_presets_list_unknown_module_parameters():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.scale = nn.Parameter(torch.ones(2))

    with pytest.raises(RuleError, match=r"1 parameter\(s\) match no rule: 'scale'. Rules: #0 \* -> defaults:torch"):
        fanin.plan(Custom(), "torch")
    p = fanin.plan(Custom(), [{"scale": "ones"}, "torch"])
    assert p["scale"].rule_index == 0 and p["fc.weight"].rule == "* -> defaults:torch"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bret", r"Unknown preset 'bret'. Did you mean 'bert'"),
        ("gpt2(foo=1)", r"Preset 'gpt2' got unexpected argument\(s\) foo=1. Accepted arguments: n_layer, std."),
        ("gpt2(12)", r"Cannot read preset 'gpt2\(12\)': arguments are keywords, e.g. gpt2\(n_layer=24\)"),
        ("gpt2(n_layer=0)", r"gpt2 needs a positive int n_layer, got n_layer=0"),
    ],
)
def test_preset_errors(spec, message):
    with pytest.raises(RuleError, match=message):
        preset(spec)


def test_embedding_rule_says_what_is_done_to_each_table():
    # gpt2/bert describe the padding row as conditional, and each table's entry shows its own scheme
    model = torch.nn.ModuleDict({"wte": torch.nn.Embedding(8, 4), "pad": torch.nn.Embedding(8, 4, padding_idx=0)})
    p = fanin.plan(model, "bert")
    assert p["wte.weight"].rule == "role='embedding' -> normal(std=0.02), padding_idx row (if any) 0"
    assert p["wte.weight"].init == "normal(std=0.02)"
    assert p["pad.weight"].init == "fanin.padded_normal(padding_idx=0, std=0.02)"
    assert "with the padding_idx row 0" not in render_plan_text(
        fanin.plan(fanin.models.gpt(n_layer=1), "gpt2(n_layer=1)"), width=None
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (5, "A preset is named by a str such as 'gpt2(n_layer=24)', got 5 (int)"),
        (
            "gpt2(n_layer=2, n_layer=3)",
            "Cannot read preset 'gpt2(n_layer=2, n_layer=3)': argument 'n_layer' given twice",
        ),
        ("bert(std=nan)", "Preset 'bert(std=nan)': normal: std must be a finite number, got std=nan"),
        ("gpt2(n_layer=2, std=inf)", "DepthScaledNormal needs a finite std > 0, got std=inf"),
        (
            "x" * 20_000,
            "Unknown preset 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (20000 characters).",
        ),
        ("gpt2(" + "[" * 40 + ")", "Cannot read preset 'gpt2([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[)': "),
    ],
)
def test_hostile_preset_specs(spec, message):
    with pytest.raises(RuleError) as info:
        preset(spec)
    assert str(info.value).startswith(message), str(info.value)
