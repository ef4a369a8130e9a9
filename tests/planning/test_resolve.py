"""fanin.plan: resolution, precedence, leftovers, entry contents, errors, explain/JSON."""

import json
import math

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.rules import Module, Name, Ndim, Role, Rule, RuleError, as_rules
from fanin.rules.rules import DepthScaledNormal


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_first_match_wins_in_dict_order():
    p = fanin.plan(Net(), {"head.weight": "zeros", "*.weight": "normal", "*": "ones"})
    assert [(e.name, e.rule_index, str(e.scheme)) for e in p] == [
        ("encoder.weight", 1, "normal"),
        ("encoder.bias", 2, "ones"),
        ("norm.weight", 1, "normal"),
        ("norm.bias", 2, "ones"),
        ("head.weight", 0, "zeros"),
        ("head.bias", 2, "ones"),
    ]
    # the same rules in another order: the catch-all first takes everything
    p = fanin.plan(Net(), {"*": "ones", "head.weight": "zeros"})
    assert {e.rule_index for e in p} == {0}


def test_rule_objects_compose_selectors():
    rules = [
        Rule(Module("Linear") & Ndim(2), "kaiming_normal(nonlinearity='relu')"),
        Rule(Role("norm_weight"), "ones"),
        Rule(Role("bias", "norm_bias"), "zeros"),
    ]
    p = fanin.plan(Net(), rules)
    assert [e.rule_index for e in p] == [0, 2, 1, 2, 0, 2]
    assert p["norm.weight"].rule == "role='norm_weight' -> ones"


def test_unmatched_error_lists_names_and_rules_and_touches_nothing():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuleError) as info:
        fanin.apply(model, {"*.weight": "normal(std=0.1)"}, seed=0)
    assert str(info.value) == (
        "3 parameter(s) match no rule: 'encoder.bias', 'norm.bias', 'head.bias'. "
        "Rules: #0 name='*.weight' -> normal(std=0.1). "
        "Add a rule for them, or pass leftovers='keep' or leftovers='reset_parameters'."
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_leftovers_keep_and_reset_parameters_are_recorded():
    p = fanin.plan(Net(), {"*.weight": "ones"}, leftovers="keep")
    assert [(e.name, e.action, e.rule_index, e.rule) for e in p if e.name.endswith("bias")] == [
        ("encoder.bias", "keep", None, "leftovers=keep"),
        ("norm.bias", "keep", None, "leftovers=keep"),
        ("head.bias", "keep", None, "leftovers=keep"),
    ]
    p = fanin.plan(Net(), {"*.weight": "ones"}, leftovers="reset_parameters")
    assert p["head.bias"].init == "Linear.reset_parameters()"
    assert p["norm.bias"].init == "LayerNorm.reset_parameters()"
    # the rules' own policy, overridden by the keyword
    doc = {"leftovers": "keep", "rules": {"*.weight": "ones"}}
    assert fanin.plan(Net(), doc).leftovers == "keep"
    assert fanin.plan(Net(), doc, leftovers="reset_parameters").leftovers == "reset_parameters"


def test_leftovers_policy_error():
    with pytest.raises(
        RuleError, match=r"Unknown leftovers policy 'drop'. Accepted: 'error', 'keep', 'reset_parameters'."
    ):
        fanin.plan(Net(), {"*": "zeros"}, leftovers="drop")


def test_reset_parameters_without_method_is_a_plan_error():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

    with pytest.raises(RuleError) as info:
        fanin.plan(Bare(), {"*": "reset_parameters"})
    assert str(info.value) == (
        "Rule \"name='*' -> reset_parameters\" defers 'scale' to its module's reset_parameters(), but Bare "
        "(module '<root>') has none. Give a scheme for it instead."
    )


def test_scheme_shape_errors_are_raised_at_plan_time_with_the_tensor():
    with pytest.raises(RuleError) as info:
        fanin.plan(Net(), {"*": "xavier_uniform"})
    assert str(info.value) == (
        "Rule \"name='*' -> xavier_uniform\": scheme 'xavier_uniform' cannot initialize 'encoder.bias' (Linear "
        "'encoder') of shape=(4,): Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    )


def test_entry_contents_by_hand():
    rules = [
        ("encoder.weight", "kaiming_uniform(a=sqrt(5))"),
        (Name("*.weight") & Ndim(2), "xavier_normal"),
        ("*", "zeros"),
    ]
    p = fanin.plan(Net(), rules, seed=7)
    e = p["encoder.weight"]
    assert (e.kind, e.module, e.module_type, e.local, e.role, e.shape, e.dtype) == (
        "parameter",
        "encoder",
        "Linear",
        "weight",
        "weight",
        (4, 8),
        "float32",
    )
    assert (e.fans.fan_in, e.fans.fan_out, e.fans.layout) == (8, 4, "torch")
    # kaiming_uniform, a = sqrt(5): gain sqrt(2/(1+5)), bound = gain*sqrt(3/fan_in) = 1/sqrt(8)
    assert e.statistics.distribution == "uniform"
    assert e.statistics.high == pytest.approx(1 / math.sqrt(8), rel=1e-15)
    assert e.statistics.low == pytest.approx(-1 / math.sqrt(8), rel=1e-15)
    assert e.statistics.std == pytest.approx(2 / math.sqrt(8) / math.sqrt(12), rel=1e-15)
    assert e.stream == (7, "encoder.weight")
    h = p["head.weight"]  # xavier_normal on (2, 4): std = sqrt(2/(4+2))
    assert h.statistics.std == pytest.approx(math.sqrt(2 / 6), rel=1e-15)
    assert h.statistics.low is None and h.statistics.bound is None
    assert p["norm.bias"].statistics.mean == 0.0 and p["norm.bias"].fans is None
    assert fanin.plan(Net(), {"*": "zeros"})["head.bias"].stream is None  # no seed: no stream key


def test_framework_fans_use_that_frameworks_layout():
    model = nn.Conv2d(3, 8, (5, 7))
    e = fanin.plan(model, {"weight": "keras.glorot_uniform", "bias": "zeros"})["weight"]
    # Keras kernel (5, 7, 3, 8): fan_in = 3*35, fan_out = 8*35
    assert (e.fans.fan_in, e.fans.fan_out, e.fans.layout) == (105, 280, "keras")
    assert e.statistics.high == pytest.approx(math.sqrt(6 / (105 + 280)), rel=1e-15)
    e = fanin.plan(model, {"weight": "jax.lecun_normal", "bias": "zeros"})["weight"]
    assert (e.fans.fan_in, e.fans.layout) == (105.0, "jax")
    # lecun_normal: truncated normal whose std after truncation is sqrt(1/fan_in)
    assert e.statistics.std == pytest.approx(math.sqrt(1 / 105), rel=1e-12)


def test_tied_parameters_appear_once_with_aliases():
    model = fanin.models.gpt(n_layer=1)
    p = fanin.plan(model, "gpt2(n_layer=1)")
    names = [e.name for e in p]
    assert "lm_head.weight" not in names
    assert p["wte.weight"].aliases == ("lm_head.weight",)
    assert p["lm_head.weight"] is p["wte.weight"]
    assert len(p) == len(list(model.parameters()))


def test_buffers_only_when_a_rule_covers_them():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    p = fanin.plan(model, {"*": "zeros"})
    assert [e.kind for e in p] == ["parameter"] * 4
    assert set(p.skipped_buffers) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    p = fanin.plan(model, [Rule(Role("running_var"), "ones"), ("*", "zeros")])
    assert [e.name for e in p if e.kind == "buffer"] == ["1.running_var"]
    assert p["1.running_var"].rule_index == 0


def test_depth_scaled_normal_needs_n_layer():
    p = fanin.plan(fanin.models.gpt(n_layer=3), "gpt2(n_layer=3)")
    # 3 blocks x (attn.c_proj, mlp.c_proj) -> N = 6 residual layers
    assert p["h.2.mlp.c_proj.weight"].statistics.std == pytest.approx(0.02 / math.sqrt(6), rel=1e-15)
    with pytest.raises(TypeError, match=r"n_layer"):
        DepthScaledNormal(0.02)
    with pytest.raises(RuleError, match=r"DepthScaledNormal needs a positive int n_layer, got n_layer=None"):
        DepthScaledNormal(0.02, n_layer=None)
    with pytest.raises(RuleError, match=r"DepthScaledNormal needs a finite std > 0, got std=0"):
        DepthScaledNormal(0, n_layer=1)


def test_plan_errors():
    with pytest.raises(TypeError, match=r"plan needs a torch.nn.Module, got model=3 \(int\)"):
        fanin.plan(3, {"*": "zeros"})
    with pytest.raises(TypeError, match=r"seed must be None or an int in \[0, 2\*\*64\), got seed=-1 \(int\)"):
        fanin.plan(Net(), {"*": "zeros"}, seed=-1)

    class IntParam(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)

    with pytest.raises(RuleError) as info:
        fanin.plan(IntParam(), {"*": "normal"})
    assert str(info.value) == (
        "Rule \"name='*' -> normal\": scheme 'normal' cannot initialize 'w' (IntParam '<root>') of shape=(2,): it "
        "draws random values, and the tensor has dtype=torch.int64; random schemes fill floating-point tensors "
        "(float16, bfloat16, float32, float64)"
    )
    assert fanin.plan(IntParam(), {"*": "zeros"})["w"].init == "zeros"  # a constant an int64 tensor holds


def test_explain_render_and_json():
    p = fanin.plan(Net(), [("head.*", "zeros"), (Name("*.weight") & Ndim(2), "orthogonal"), ("*", "zeros")], seed=3)
    from fanin.report.plan import render_plan_text

    text = render_plan_text(p, width=220)
    assert "counter stream, seed=3" in text
    assert "#1 name='*.weight' & ndim=2 -> orthogonal" in text
    assert "(3, 'encoder.weight')" in text
    assert "Rules (first match wins):" in text and "#0 name='head.*' -> zeros" in text
    data = json.loads(p.to_json())
    assert data["seed"] == 3 and data["leftovers"] == "error"
    first = data["entries"][0]
    assert first["name"] == "encoder.weight" and first["shape"] == [4, 8]
    assert first["scheme"] == {"name": "orthogonal", "args": {}}
    assert first["stream"] == {"seed": 3, "name": "encoder.weight"}
    assert first["fans"] == {"fan_in": 8, "fan_out": 4, "receptive_field": 1, "layout": "torch"}
    # orthogonal (4, 8): rows orthonormal, every entry's RMS is 1/sqrt(8)
    assert first["statistics"]["std"] == pytest.approx(1 / math.sqrt(8), rel=1e-15)
    assert str(p) == p.explain() == render_plan_text(p).rstrip("\n")


def test_plan_getitem_error():
    p = fanin.plan(Net(), {"*": "zeros"})
    with pytest.raises(KeyError, match=r"Unknown tensor name 'head.weigth'. Did you mean 'head.weight'"):
        p["head.weigth"]


def test_as_rules_list_mixing_forms_and_first_leftovers_wins():
    rules = as_rules(
        [
            {"a": "zeros"},
            (Name("b"), "ones"),
            Rule("c", "keep"),
            {"leftovers": "keep", "rules": {"d": "zeros"}},
            "resnet",
        ]
    )
    assert [str(r.select) for r in rules][:4] == ["name='a'", "name='b'", "name='c'", "name='d'"]
    assert rules.leftovers == "keep"


def test_the_planning_package_leaves_the_public_plan_a_function():
    # Importing a submodule sets the parent package's attribute of that name: a package called
    # fanin.plan would replace the function fanin.plan once any of its modules is imported first.
    import subprocess
    import sys

    code = (
        "import fanin.planning.applying, fanin.planning.resolve, fanin, types; "
        "from fanin import plan; "
        "print(isinstance(fanin.plan, types.FunctionType), plan is fanin.plan)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
