"""fanin lint: each bug class found on a model built to have it; silent on the zoo's own inits and presets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.planning.capturing import capture
from fanin.planning.linting import CHECKS, Finding, LintReport, lint
from fanin.rules import Rule
from fanin.rules.presets import gpt2
from fanin.rules.recipes import fixup, for_model, torchtitan_llama3, vit_jax, vit_moco, vit_timm, zero_init_residual
from support import zoo


def only(report: LintReport, check: str) -> list[Finding]:
    return [f for f in report if f.check == check]


# ------------------------------------------------------------------------------- each bug class


def test_truncation_bounds_in_absolute_units_never_cut():
    model = nn.Linear(256, 256)
    bad = lint(model, {"weight": "trunc_normal(std=0.02, a=-3.0, b=3.0)", "bias": "zeros"})
    (f,) = only(bad, "truncation-never-cuts")
    assert (f.severity, f.tensor) == ("warning", "weight")
    assert f.evidence.startswith("trunc_normal(std=0.02, a=-3.0, b=3.0) cuts at [-3, 3] = ±150σ with σ=0.02")
    assert (
        f.fix == "trunc_normal's bounds are absolute: for a cut at ±3σ pass a=-0.06, b=0.06 (or use normal(std=0.02))"
    )
    default = lint(model, {"weight": "trunc_normal(std=0.02)", "bias": "zeros"})
    assert [g.severity for g in only(default, "truncation-never-cuts")] == ["info"]
    assert lint(model, {"weight": "trunc_normal(std=0.02, a=-0.06, b=0.06)", "bias": "zeros"}).findings == ()


def test_a_std_that_is_a_variance_and_the_reverse():
    model = nn.Linear(256, 512)
    (f,) = lint(model, {"weight": f"normal(std={1 / 256!r})", "bias": "zeros"}).problems
    assert f.check == "std-looks-like-variance"
    assert f.evidence.startswith("std 0.00390625 = 1/fan_in (256) or 2/fan_out (512): that is a variance")
    assert f.fix == "the std is 0.0625"
    (g,) = lint(model, {"weight": f"normal(std={(1 / 256) ** 0.25!r})", "bias": "zeros"}).problems
    assert "a std was used as a variance" in g.evidence
    assert lint(model, {"weight": "normal(std=0.0625)", "bias": "zeros"}).problems == ()


def test_depth_scaling_applied_twice():
    model = fanin.models.gpt(n_layer=6, n_embd=32)
    twice = 0.02 / (2 * 6)  # 0.02 / sqrt(2L) applied twice
    report = lint(model, [{"*c_proj.weight": f"normal(std={twice!r})"}, gpt2(n_layer=6)])
    found = only(report, "depth-scaled-twice")
    assert len(found) == 12 and all(f.severity == "error" for f in found)
    assert "= sqrt(2L)=3.464 x sqrt(2L)=3.464 (L=6, l=0)" in found[0].evidence
    assert lint(model, gpt2(n_layer=6)).problems == ()


def test_torchtitan_as_released_shows_both_slips_of_torchtitan_3334():
    """torchtitan as released (torchtitan#3334): w3 depth-scaled, trunc_normal_ at its default ±2."""
    model = zoo.TTTransformer(n_layers=3)
    released = lint(model, torchtitan_llama3(n_layers=3, dim=32, as_released=True))
    off = only(released, "depth-scaled-off-residual")
    assert sorted(f.tensor for f in off) == [f"layers.{i}.feed_forward.w3.weight" for i in (0, 1, 2)]
    assert "SwiGLU value projection" in off[0].evidence
    cuts = only(released, "truncation-never-cuts")
    assert {f.severity for f in cuts} == {"info"} and len(cuts) == 21
    assert lint(model, torchtitan_llama3(n_layers=3, dim=32)).problems == ()


def test_fans_from_a_dtensors_local_shard():
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group is already initialized")
    from torch.distributed.tensor import Shard, distribute_tensor, init_device_mesh
    from torch.testing._internal.distributed.fake_pg import FakeStore

    # One process, a fake world of 2: each DTensor holds rank 0's half (no communication is needed).
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    try:
        mesh = init_device_mesh("cpu", (2,))
        model = nn.Linear(256, 512)
        model.weight = nn.Parameter(distribute_tensor(torch.empty(512, 256), mesh, [Shard(0)]))
        rules = {"weight": "xavier_normal", "bias": "zeros"}
        # the bug: the local shard initialized as if it were the layer (fans (256, 256), not (256, 512))
        torch.nn.init.xavier_normal_(model.weight.to_local(), generator=torch.Generator().manual_seed(0))
        (f,) = only(lint(model, rules), "dtensor-local-fans")
        assert f.severity == "error" and "close to the 0.0625 it gives the local shape" in f.evidence
        fanin.apply(model, rules, seed=0)  # each shard its part of the global init
        assert only(lint(model, rules), "dtensor-local-fans") == []
    finally:
        dist.destroy_process_group()


def test_stacked_experts_with_fans_from_the_storage():
    class Experts(nn.Module):
        def __init__(self):
            super().__init__()
            self.down_proj = nn.Parameter(torch.empty(4, 64, 16))  # (experts, in, out), as Hugging Face stores it

    model = nn.ModuleDict({"experts": Experts()})
    (f,) = lint(model, {"*": "kaiming_uniform(a=sqrt(5))"}).problems
    assert (f.check, f.tensor) == ("fans-from-storage", "experts.down_proj")
    assert "one expert's matrix has (64, 16)" in f.evidence
    assert (
        f.fix
        == "declare the layout: Rule('experts.down_proj', 'kaiming_uniform(a=2.23606797749979)', fans='experts:in_out')"
    )
    assert lint(model, [Rule("*", "kaiming_uniform(a=sqrt(5))", fans="experts:in_out")]).problems == ()


def test_uninitialized_parameters():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.scale = nn.Parameter(torch.empty(4))

    (f,) = lint(Custom(), {"fc.*": "zeros"}).errors
    assert (f.check, f.tensor, f.evidence) == ("uninitialized", "scale", "no rule covers it")
    (g,) = lint(Custom(), capture(Custom)).errors
    assert g.tensor == "scale" and g.evidence.startswith("created by torch.empty and never written")
    with torch.device("meta"):
        meta = Custom()
    (h,) = lint(meta, [{"scale": "keep"}, {"fc.*": "zeros"}]).errors
    assert h.evidence == "kept by the plan, and on the meta device: it has no values"


def test_buffers_on_meta_or_holding_garbage():
    class Rotary(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("inv_freq", 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8))
            self.register_buffer("table", torch.zeros(3))
            self.proj = nn.Linear(8, 8)

    good = Rotary()
    assert lint(good, "torch").problems == ()
    broken = Rotary()
    broken.inv_freq.zero_()
    broken.table[1] = float("nan")
    found = {f.tensor: f for f in lint(broken, "torch").errors}
    assert found["inv_freq"].evidence.startswith("inv_freq should be theta^(-2i/d): positive, at most 1, decreasing")
    assert found["table"].evidence == "1 of its 3 values are not finite"
    with torch.device("meta"):
        half = Rotary()
    half.proj.to_empty(device="cpu")
    (m, n) = sorted(lint(half, "torch").errors, key=lambda f: f.tensor)
    assert m.tensor == "inv_freq" and m.evidence.startswith("after materialization it is still on meta")
    assert n.tensor == "table"


def test_llama_inv_freq_left_uninitialized_after_to_empty():
    pytest.importorskip("transformers")
    with torch.device("meta"):
        model = zoo.HF["llama"]()
    model.to_empty(device="cpu")  # what a meta init that forgets the buffers leaves
    model.model.rotary_emb.inv_freq.fill_(float("nan"))
    errors = {f.tensor for f in lint(model, for_model("torchtitan_llama3", model)).errors}
    assert "model.rotary_emb.inv_freq" in errors


def test_tied_tensors_under_rules_with_different_schemes():
    """One tensor, two names, two rules that disagree: one silently wins (DeepSpeed#2650). A tied
    embedding whose rules differ only in its padding row (bert on a masked-LM head) is an info."""
    model = fanin.models.gpt(n_layer=1)
    (f,) = only(
        lint(model, [{"lm_head.weight": "zeros", "wte.weight": "normal(std=0.02)"}, gpt2(n_layer=1)]),
        "tied-different-schemes",
    )
    assert f.tensor == "wte.weight" and "rule #0, which matches lm_head.weight, says zeros" in f.evidence


def test_zero_inits_that_block_a_branchs_gradient():
    mlp = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    (f,) = lint(mlp, {"*.weight": "zeros", "*.bias": "zeros"}).errors
    assert f.check == "zero-blocks-gradient" and f.tensor == "2.weight"

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)

    net = nn.ModuleDict({"layer1": nn.Sequential(Block())})
    both = [{"*.bn2.weight": "zeros"}, fixup(n_blocks=1, m=2)]  # Fixup's zero conv2 and a zero bn2 gamma
    (g,) = lint(net, both).errors
    assert (
        g.tensor == "layer1.0.bn2.weight" and "layer1.0.conv2.weight and layer1.0.bn2.weight are both 0" in g.evidence
    )
    assert lint(net, fixup(n_blocks=1, m=2)).errors == ()


def test_opaque_captured_writes_are_reported():
    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(3, 3))

        def init_weights(self):
            with torch.no_grad():
                self.w.normal_().exp_()

    (f,) = lint(Opaque()).warnings
    assert (f.check, f.tensor) == ("opaque", "w") and "in-place exp_" in f.evidence


def test_report_record_and_errors():
    report = lint(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)), {"*.weight": "zeros", "*.bias": "zeros"})
    assert repr(report) == "<LintReport 'Sequential' (rules): 1 error, 0 warnings, 0 infos>"
    assert report.exit_code(check=True) == 1 and report.exit_code(check=False) == 0
    assert report.to_dict()["findings"][0]["check"] == "zero-blocks-gradient"
    assert set(CHECKS) >= {f.check for f in report}
    with pytest.raises(TypeError, match=r"lint needs a torch.nn.Module \(or a Plan\), got model=3 \(int\)"):
        lint(3)
    with pytest.raises(TypeError, match=r"lint needs a model, a plan, or both; got neither"):
        lint()
    with pytest.raises(ValueError, match=r"Unknown severity 'fatal'"):
        report.of("fatal")
    plan_only = lint(
        fanin.plan(nn.Linear(256, 256), {"weight": "trunc_normal(std=0.02, a=-3.0, b=3.0)", "bias": "zeros"})
    )
    assert [f.check for f in plan_only] == ["truncation-never-cuts"]


# ------------------------------------------------------------------------------------ silence


@pytest.mark.parametrize("member", [m for m, _, _ in zoo.ZOO])
def test_silent_on_the_zoos_own_init(member):
    zoo.require(member)
    factory, entry = {n: (f, e) for n, f, e in zoo.ZOO}[member]
    model = factory()
    report = lint(model, capture(factory)) if entry == "construction" else lint(model)
    assert report.problems == ()


def _presets():
    return [
        ("torch-layers", lambda m: "torch"),
        (
            "torch-layers",
            lambda m: ["keras", {"bil.weight": "xavier_uniform", "bil.bias": "zeros"}],
        ),  # Keras has no Bilinear
        ("hf-gpt2", lambda m: for_model("gpt2", m)),
        ("hf-bert", lambda m: "bert"),
        ("hf-llama", lambda m: for_model("torchtitan_llama3", m)),
        ("hf-qwen2", lambda m: for_model("deepnorm", m, decoder_layers=2)),
        ("hf-t5", lambda m: for_model("t5", m)),
        ("timm-vit", lambda m: vit_timm()),
        ("timm-vit", lambda m: vit_jax()),
        ("timm-vit", lambda m: vit_moco()),
        ("tv-resnet", lambda m: "resnet"),
        ("tv-resnet", lambda m: zero_init_residual("basic")),
        ("tv-resnet", lambda m: fixup(n_blocks=4, m=2)),
    ]


@pytest.mark.parametrize(("member", "rules"), _presets(), ids=[f"{m}-{i}" for i, (m, _) in enumerate(_presets())])
def test_silent_on_the_presets(member, rules):
    zoo.require(member)
    factory = {n: f for n, f, _ in zoo.ZOO}[member]
    model = factory()
    assert lint(model, rules(model)).problems == ()
