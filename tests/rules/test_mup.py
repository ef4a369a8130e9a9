"""muP, depth-muP and u-muP as rules: roles from the module graph, the per-tensor numbers against
the closed forms of docs/mup.md (hand-computed here), against microsoft/mup (when it is installed)
and against the paper's tables, the learning-rate groups, the forward hooks, the consistency check
(depth counted once), and every error path.

References: Yang et al. 2022, "Tensor Programs V" (TP5), Table 3 (muP without multipliers) and
Table 8 ("alternative, equivalent formulation for easier implementation", the one microsoft/mup
implements); Yang et al. 2023, "Tensor Programs VI" (Depth-muP: branch multiplier a/sqrt(L), Adam
LR eta/sqrt(L)); Blake et al. 2024, u-muP (unit init, 1/sqrt(fan_in) and 1/fan_in multipliers,
Adam LR eta/sqrt(fan_in) for weights).
"""

import math

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.rules import DepthScaledNormal, Rule, preset
from fanin.rules.load import bind
from fanin.rules.parametrization import (
    Attention,
    MupError,
    depth_conflicts,
    depth_mup,
    mup,
    mup_hooks,
    mup_param_groups,
    mup_table,
    read_roles,
    u_mup,
)
from fanin.rules.parametrization.spec import MupSpec


def mlp(width: int = 256, d_in: int = 8, d_out: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out))


def gpt(width: int = 128, n_layer: int = 1) -> nn.Module:
    return fanin.models.gpt(vocab_size=64, block_size=8, n_layer=n_layer, n_head=2, n_embd=width)


def planned(model: nn.Module, rules, seed: int = 0) -> fanin.Plan:
    return fanin.plan(model, bind(rules, model), seed=seed)


def std(p: fanin.Plan, name: str) -> float:
    return p[name].statistics.std


def lrs(model: nn.Module, p: fanin.Plan, optimizer: str, lr: float = 1.0) -> dict[str, float]:
    by_id = {id(q): n for n, q in model.named_parameters()}
    return {by_id[id(q)]: g["lr"] for g in mup_param_groups(model, p, lr=lr, optimizer=optimizer) for q in g["params"]}


# ------------------------------------------------------------------------- closed forms (docs/mup.md)


def test_mlp_closed_forms_of_the_docs():
    """docs/mup.md, "A hand-computed example": MLP 8 -> 256 -> 256 -> 10, base_width=64 (m = 4)."""
    model = mlp()
    p = planned(model, mup(base_width=64))
    assert std(p, "0.weight") == pytest.approx(1 / math.sqrt(8), rel=1e-15)  # input: 1/sqrt(fan_in), fan_in fixed
    assert std(p, "2.weight") == pytest.approx(1 / 16, rel=1e-15)  # hidden: 1/sqrt(256)
    assert std(p, "4.weight") == pytest.approx(1 / 8, rel=1e-15)  # readout: 1/sqrt(n0) = 1/sqrt(64)
    assert [p[n].init for n in ("0.bias", "2.bias", "4.bias")] == ["zeros"] * 3
    assert lrs(model, p, "adam") == {
        "0.weight": 1,
        "0.bias": 1,
        "2.weight": 0.25,
        "2.bias": 1,
        "4.weight": 1,
        "4.bias": 1,
    }
    assert lrs(model, p, "sgd") == {"0.weight": 4, "0.bias": 4, "2.weight": 1, "2.bias": 4, "4.weight": 4, "4.bias": 1}
    table = mup_table(p)
    assert [(x.module, x.kind, x.factor) for x in table.multipliers] == [("4", "readout", 0.25)]
    assert (table.width, table.width_mult) == (256, 4.0)


def test_mlp_closed_forms_with_std_and_folded_readout():
    model = mlp()
    p = planned(model, mup(base_width=64, std=0.02))
    assert [std(p, n) for n in ("0.weight", "2.weight", "4.weight")] == pytest.approx([0.02, 0.01, 0.02], rel=1e-15)
    folded = planned(model, mup(base_width=64, std=0.02, multipliers="init"))  # TP5 Table 3: Var 1/fan_in^2
    assert std(folded, "4.weight") == pytest.approx(0.005, rel=1e-15)
    assert mup_table(folded).multipliers == ()
    assert lrs(model, folded, "adam")["4.weight"] == 0.25 and lrs(model, folded, "sgd")["4.weight"] == 0.25


def test_gpt_closed_forms_of_the_docs():
    """docs/mup.md: GPT n_embd=128, n_head=2, base_width=32 (m = 4), std=0.02, tied lm_head."""
    model = gpt(128)
    rules = mup(base_width=32, std=0.02, attention=Attention("*.attn.c_attn", split=3, n_head=2))
    p = planned(model, rules)
    assert p["wte.weight"].aliases == ("lm_head.weight",)
    for name in ("wte.weight", "wpe.weight"):
        assert std(p, name) == pytest.approx(0.02, rel=1e-15)  # embeddings: constant
    for name in ("h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"):
        assert std(p, name) == pytest.approx(0.01, rel=1e-15)  # 0.02 * sqrt(n0/n) = 0.02 / 2
    assert p["h.0.ln_1.weight"].init == "ones" and p["h.0.ln_1.bias"].init == "zeros"
    adam = lrs(model, p, "adam")
    assert adam["wte.weight"] == 1 and adam["h.0.mlp.c_proj.weight"] == 0.25 and adam["h.0.mlp.c_proj.bias"] == 1
    table = mup_table(p)
    assert [(x.module, x.kind, x.factor, x.split) for x in table.multipliers] == [
        ("lm_head", "readout", 0.25, 1),
        ("h.0.attn.c_attn", "query", 0.5, 3),
    ]
    assert table["wte.weight"].tied_readout == "lm_head"


def test_depth_mup_closed_forms_of_the_docs():
    """depth_mup on GPT n_layer=2 (L = 4 branches), base_depth=2: branch multiplier and Adam factor sqrt(2/4)."""
    model = gpt(128, n_layer=2)
    p = planned(model, depth_mup(32, 2, branches=("*.attn", "*.mlp"), std=0.02))
    c = math.sqrt(2 / 4)
    adam = lrs(model, p, "adam")
    assert adam["h.1.attn.c_attn.weight"] == pytest.approx(0.25 * c, rel=1e-15)
    assert adam["h.1.mlp.c_fc.bias"] == pytest.approx(c, rel=1e-15)
    assert adam["h.1.ln_1.weight"] == 1 and adam["wte.weight"] == 1  # outside the branches
    assert lrs(model, p, "sgd")["h.1.attn.c_attn.weight"] == 1  # TP6: SGD LR does not scale with depth
    branches = [(x.module, x.factor) for x in mup_table(p).multipliers if x.kind == "branch"]
    assert branches == [(n, pytest.approx(c, rel=1e-15)) for n in ("h.0.attn", "h.0.mlp", "h.1.attn", "h.1.mlp")]
    assert std(p, "h.1.mlp.c_proj.weight") == pytest.approx(0.01, rel=1e-15)  # init unchanged by depth


def test_u_mup_closed_forms_of_the_docs():
    model = mlp()
    p = planned(model, u_mup())
    assert [std(p, n) for n in ("0.weight", "2.weight", "4.weight")] == [1.0, 1.0, 1.0]
    assert [(x.module, x.kind, x.factor) for x in mup_table(p).multipliers] == [
        ("0", "weight", pytest.approx(8**-0.5, rel=1e-15)),
        ("2", "weight", 1 / 16),
        ("4", "readout", 1 / 256),
    ]
    assert lrs(model, p, "adam") == pytest.approx(
        {"0.weight": 8**-0.5, "0.bias": 1, "2.weight": 1 / 16, "2.bias": 1, "4.weight": 1, "4.bias": 1}
    )
    assert lrs(model, p, "sgd") == {
        "0.weight": 2048,
        "0.bias": 256,
        "2.weight": 256,
        "2.bias": 256,
        "4.weight": 256,
        "4.bias": 1,
    }


def test_at_the_base_width_mup_is_standard_parametrization():
    """TP5: muP is defined relative to a base at which it equals SP (here LeCun normal, lr unchanged)."""
    model = mlp(64)
    p = planned(model, mup(base_width=64))
    assert [std(p, n) for n in ("0.weight", "2.weight", "4.weight")] == pytest.approx(
        [8**-0.5, 1 / 8, 1 / 8], rel=1e-15
    )
    assert set(lrs(model, p, "adam").values()) == {1.0} and set(lrs(model, p, "sgd").values()) == {1.0}
    assert [x.factor for x in mup_table(p).multipliers] == [1.0]


# ----------------------------------------------------------------------- against the paper's tables


@pytest.mark.parametrize("m", [2, 8])
def test_width_exponents_match_tp5_table_8(m):
    """TP5 Table 8, as exponents of the width multiplier m between two widths: init Var (input & biases: m^0,
    output: m^0, hidden: m^-1), multiplier (output: m^-1), SGD LR (input: m^1, output: m^1, hidden: m^0),
    Adam LR (input: m^0, output: m^0, hidden: m^-1)."""
    base, wide = mlp(64), mlp(64 * m)
    pb, pw = planned(base, mup(base_width=64)), planned(wide, mup(base_width=64))

    def exponent(a, b):
        return math.log(b / a) / math.log(m)

    var = {n: exponent(std(pb, n) ** 2, std(pw, n) ** 2) for n in ("0.weight", "2.weight", "4.weight")}
    assert var == pytest.approx({"0.weight": 0, "2.weight": -1, "4.weight": 0}, abs=1e-12)
    mult = exponent(mup_table(pb).multipliers[0].factor, mup_table(pw).multipliers[0].factor)
    assert mult == pytest.approx(-1, abs=1e-12)
    for optimizer, want in (
        ("sgd", {"0.weight": 1, "0.bias": 1, "2.weight": 0, "4.weight": 1}),
        ("adam", {"0.weight": 0, "0.bias": 0, "2.weight": -1, "4.weight": 0}),
    ):
        lb, lw = lrs(base, pb, optimizer), lrs(wide, pw, optimizer)
        assert {n: exponent(lb[n], lw[n]) for n in want} == pytest.approx(want, abs=1e-12)


def test_folded_readout_matches_tp5_table_3_and_trains_identically_to_table_8():
    """TP5 Table 3 (output weights: init Var 1/fan_in^2, SGD and Adam LR 1/fan_in, no multiplier) is the
    same network as Table 8 (Var 1, multiplier 1/fan_in): same outputs before and after training steps."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 8), torch.randint(0, 10, (16,))
    outputs = {}
    for multipliers in ("forward", "init"):
        for optimizer in ("adam", "sgd"):
            model = mlp(256)
            p = fanin.apply(model, bind(mup(base_width=64, multipliers=multipliers), model), seed=3)
            groups = mup_param_groups(model, p, lr=1e-2, optimizer=optimizer)
            opt = torch.optim.Adam(groups, eps=1e-30) if optimizer == "adam" else torch.optim.SGD(groups)
            with mup_hooks(model, p):
                for _ in range(3):
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
                outputs[multipliers, optimizer] = model(x).detach()
    for optimizer in ("adam", "sgd"):
        torch.testing.assert_close(outputs["forward", optimizer], outputs["init", optimizer], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ against microsoft/mup


def _mup_model(width: int, readout_cls):
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), readout_cls(width, 10))


@pytest.mark.parametrize("width", [256, 96])
def test_same_init_std_and_learning_rates_as_microsoft_mup(width):
    """microsoft/mup (a test-only extra): set_base_shapes with a base (width 64) and a delta (width 128),
    mup.init.normal_ (its documented re-initializer) vs fanin.mup(base_width=64, std=0.5) at the same
    target width: the same values from the same unit draws (same-stream rescaling), the same learning
    rate per tensor for MuAdam and MuSGD, and the same readout output (MuReadout's output_mult/width_mult)."""
    mupkg = pytest.importorskip("mup")
    sigma = 0.5
    ref = _mup_model(width, mupkg.MuReadout)
    mupkg.set_base_shapes(ref, _mup_model(64, mupkg.MuReadout), delta=_mup_model(128, mupkg.MuReadout))
    model = mlp(width)
    p = planned(model, mup(base_width=64, std=sigma))
    for name, q in ref.named_parameters():
        if q.ndim < 2:
            continue
        torch.manual_seed(11)
        mupkg.init.normal_(q, std=sigma)
        torch.manual_seed(11)
        ours = torch.empty_like(q).normal_(0, std(p, name))
        torch.testing.assert_close(q.detach(), ours, rtol=1e-6, atol=0)  # the same std, to float rounding
    for optimizer, impl in (("adam", mupkg.MuAdam), ("sgd", mupkg.MuSGD)):
        theirs = {}
        names = {id(q): n for n, q in ref.named_parameters()}
        for group in impl(ref.parameters(), lr=1e-3).param_groups:
            for q in group["params"]:
                theirs[names[id(q)]] = group["lr"]
        assert lrs(model, p, optimizer, lr=1e-3) == pytest.approx(theirs, rel=1e-12)
    with torch.no_grad():
        for (_, a), (_, b) in zip(model.named_parameters(), ref.named_parameters(), strict=True):
            a.copy_(b)
    x = torch.randn(4, 8)
    with mup_hooks(model, p):
        torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-6)  # x/1.5 there, x*(1/1.5) here


def test_same_learning_rates_as_microsoft_mup_with_a_tied_readout():
    """MuSharedReadout (the readout sharing an Embedding's weight): vector-like, Adam LR unchanged, SGD LR x m."""
    mupkg = pytest.importorskip("mup")

    class Tied(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.wte = nn.Embedding(32, width)
            self.fc = nn.Linear(width, width)
            self.head = mupkg.MuSharedReadout(self.wte.weight, bias=False)

        def forward(self, idx):
            return self.head(torch.relu(self.fc(self.wte(idx))))

    ref = Tied(256)
    mupkg.set_base_shapes(ref, Tied(64), delta=Tied(128))
    model = Tied(256)
    p = planned(model, mup(base_width=64, readout="head"))
    for optimizer, impl in (("adam", mupkg.MuAdam), ("sgd", mupkg.MuSGD)):
        names = {id(q): n for n, q in ref.named_parameters()}
        theirs = {names[id(q)]: g["lr"] for g in impl(ref.parameters(), lr=1.0).param_groups for q in g["params"]}
        assert lrs(model, p, optimizer) == pytest.approx(theirs, rel=1e-12)
    assert [(x.module, x.factor) for x in mup_table(p).multipliers] == [
        ("head", ref.head.output_mult / ref.head.width_mult())
    ]


# ------------------------------------------------------------------------------------------ roles


def test_roles_of_a_gpt_read_from_its_graph():
    graph = read_roles(gpt(128))
    roles = {t.name: t.role for t in graph.tensors}
    assert roles["wte.weight"] == roles["wpe.weight"] == "embedding"
    assert roles["h.0.attn.c_attn.weight"] == roles["h.0.mlp.c_proj.weight"] == "hidden"
    assert roles["h.0.ln_1.weight"] == roles["ln_f.bias"] == "vector"
    assert graph["lm_head.weight"].name == "wte.weight" and graph["wte.weight"].tied_readout == "lm_head"
    assert (graph.width, graph.inputs, graph.readout) == (128, ("wte", "wpe"), ("lm_head",))
    assert graph.attention == ("h.0.attn",)
    assert graph["wte.weight"].fan_in == 64 and graph["wte.weight"].fan_out == 128  # one-hot in, embedding out


def test_roles_of_convolutions_and_overrides():
    model = fanin.models.cnn(channels=16)  # conv 3->16, BN, conv 16->32, BN, pool, Linear 32->10
    graph = read_roles(model)
    roles = {t.name: (t.role, t.width_axes) for t in graph.tensors}
    assert roles["0.weight"] == ("input", "fan_out") and roles["3.weight"] == ("hidden", "both")
    assert roles["8.weight"] == ("readout", "fan_in") and roles["8.bias"] == ("fixed", "none")
    assert roles["1.weight"] == ("vector", "fan_out")
    assert graph["3.weight"].fan_in == 16 * 9  # receptive field counted
    p = planned(model, mup(base_width=8))
    assert std(p, "3.weight") == pytest.approx(1 / math.sqrt(16 * 9), rel=1e-15)
    assert p["1.weight"].init == "ones"
    over = read_roles(model, roles={"3.weight": "fixed"}, readout="8", inputs="0")
    assert over["3.weight"].role == "fixed" and "roles=" in over["3.weight"].why


def test_first_match_wins_and_overridden_tensors_are_listed():
    model = mlp()
    p = planned(model, [{"2.weight": "orthogonal"}, mup(base_width=64)])
    assert p["2.weight"].init == "orthogonal" and std(p, "4.weight") == pytest.approx(1 / 8)
    assert mup_table(p).overridden == (("2.weight", "name='2.weight' -> orthogonal"),)
    assert "[overridden] 2.weight" in mup_table(p).describe()


def test_materialize_on_meta_by_the_bound_rules():
    with torch.device("meta"):
        model = gpt(128)
    rules = mup(base_width=32, std=0.02)
    p = fanin.materialize(model, rules.bind(model), seed=0)
    assert not any(t.is_meta for t in model.parameters()) and model.lm_head.weight is model.wte.weight
    assert p["h.0.mlp.c_fc.weight"].statistics.std == pytest.approx(0.01)
    # The values: the stream's unit draws times the std (same-stream rescaling against a plain normal plan).
    with torch.device("meta"):
        other = gpt(128)
    fanin.materialize(other, {"*.weight": "normal(std=1.0)", "*": "zeros"}, seed=0)
    torch.testing.assert_close(model.h[0].mlp.c_fc.weight, other.h[0].mlp.c_fc.weight * 0.01, rtol=1e-6, atol=0)


def test_plan_binds_the_rules_to_the_model():
    """fanin.plan binds graph rules itself (fanin.rules.rules.bind_rules), also from a preset string."""
    model = mlp()
    assert fanin.plan(model, mup(base_width=64), seed=0) == planned(model, mup(base_width=64))
    assert fanin.plan(model, "mup(base_width=64)", seed=0) == planned(model, mup(base_width=64))


def test_bind_keeps_other_rules_and_leaves_plain_rules_alone():
    model = mlp()
    plain = fanin.rules.as_rules({"*": "zeros"})
    assert bind(plain, model) is plain
    bound = bind([{"*.bias": "zeros"}, mup(base_width=64)], model)
    assert str(bound[0]) == "name='*.bias' -> zeros" and all(not hasattr(r, "expand") for r in bound)
    assert "TP5 Table 8" in str(bound[1])


# --------------------------------------------------------------------------------------- hooks


def test_hooks_scale_the_readout_queries_and_branches_and_come_off():
    torch.manual_seed(0)
    model = gpt(128, n_layer=2)
    rules = depth_mup(
        32, 2, branches=("*.attn", "*.mlp"), std=0.02, attention=Attention("*.attn.c_attn", split=3, n_head=2)
    )
    p = fanin.apply(model, rules.bind(model), seed=0)
    idx = torch.randint(0, 64, (2, 8))
    plain_qkv = model.h[0].attn.c_attn(model.h[0].ln_1(model.wte(idx) + model.wpe(torch.arange(8)))).detach()
    plain = model(idx)
    hooks = mup_hooks(model, p)
    assert len(hooks) == 1 + 2 + 4 and hooks.active
    seen = {}
    model.h[0].attn.c_attn.register_forward_hook(
        lambda m, a, out: seen.__setitem__("qkv", out.detach())
    )  # after fanin's
    out = model(idx)
    q, kv = seen["qkv"].split([128, 256], dim=-1)
    torch.testing.assert_close(q, plain_qkv[..., :128] * 0.5)  # 1/sqrt(m), m = 4
    torch.testing.assert_close(kv, plain_qkv[..., 128:])
    assert not torch.allclose(out, plain)
    with pytest.raises(MupError, match="already has fanin's multipliers installed"):
        mup_hooks(model, p)
    hooks.remove()
    assert not hooks.active and torch.equal(model(idx), plain)
    mup_hooks(model, p).remove()  # installable again once removed


def test_branch_hook_equals_a_scaled_residual_branch():
    class Res(nn.Module):
        def __init__(self, width, blocks):
            super().__init__()
            self.inp = nn.Linear(4, width)
            self.blocks = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
            self.out = nn.Linear(width, 3)

        def forward(self, x, scale=1.0):
            h = self.inp(x)
            for b in self.blocks:
                h = h + scale * b(h)
            return self.out(h)

    model = Res(64, 8)
    p = fanin.apply(model, bind(depth_mup(64, 2, branches="blocks.*"), model), seed=1)
    x = torch.randn(3, 4)
    want = model(x, scale=math.sqrt(2 / 8))
    with mup_hooks(model, p):
        torch.testing.assert_close(model(x), want)


def test_hook_on_a_module_returning_a_tuple_is_refused():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.head = nn.Linear(4, 64), nn.Linear(64, 2)

        def forward(self, x):
            return self.head(self.a(x))

    model = Pair()
    p = planned(model, u_mup())
    model.a.register_forward_hook(lambda m, a, out: (out, out))
    with (
        mup_hooks(model, p),
        pytest.raises(MupError, match=r"'a' returned tuple: fanin's weight multiplier needs a tensor output"),
    ):
        model(torch.zeros(1, 4))
    other = Pair()
    with (
        mup_hooks(other, planned(other, mup(base_width=32))),
        pytest.raises(MupError, match=r"'head' was called without a tensor input"),
    ):
        other.head(input=torch.zeros(1, 64))


# ----------------------------------------------------------------------- learning-rate groups


def test_param_groups_build_an_optimizer_and_carry_weight_decay():
    model = mlp()
    p = planned(model, mup(base_width=64))
    groups = mup_param_groups(model, p, lr=1e-3, optimizer="adamw", weight_decay=0.1)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (1e-3, 0.1, 5),
        (2.5e-4, pytest.approx(0.4), 1),
    ]
    decoupled = mup_param_groups(model, p, lr=1e-3, weight_decay=0.1, decoupled_wd=True)
    assert {g["weight_decay"] for g in decoupled} == {0.1}
    torch.optim.AdamW(groups)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"optimizer": "adma"},
            r"Unknown optimizer 'adma'. Did you mean 'adam' or 'adamw'\? Accepted: 'adam', 'adamw', 'sgd'.",
        ),
        ({"lr": 0}, r"lr must be a positive finite number, got lr=0"),
        ({"lr": float("nan")}, r"lr must be a positive finite number, got lr=nan"),
        ({"weight_decay": -1}, r"weight_decay must be a non-negative finite number, got weight_decay=-1"),
        ({"decoupled_wd": 1}, r"decoupled_wd must be True or False, got decoupled_wd=1"),
    ],
)
def test_param_groups_errors(kwargs, message):
    model = mlp()
    p = planned(model, mup(base_width=64))
    with pytest.raises(MupError, match=message):
        mup_param_groups(model, p, **{"lr": 1e-3, **kwargs})


def test_a_plan_without_mup_rules_or_for_another_model_is_refused():
    model = mlp()
    with pytest.raises(MupError, match=r"this plan has no muP rules: resolve it with fanin.mup\(...\)"):
        mup_param_groups(model, fanin.plan(model, "torch"), lr=1.0)
    with pytest.raises(
        MupError,
        match=r"the plan does not describe this model \(Sequential\): '0.weight' of shape=\(256, 8\): the model's is "
        r"\(128, 8\)",
    ):
        mup_param_groups(mlp(128), planned(model, mup(base_width=64)), lr=1.0)
    with pytest.raises(MupError, match=r"holds 2 parametrizations"):
        mup_table(planned(model, [mup(base_width=64), mup(base_width=32)]))
    with pytest.raises(TypeError, match=r"mup_table needs a fanin.Plan, got plan=3 \(int\)"):
        mup_table(3)
    with pytest.raises(TypeError, match=r"mup_hooks needs a torch.nn.Module, got model=None"):
        mup_hooks(None, planned(model, mup(base_width=64)))


# --------------------------------------------------------------------------- depth counted once


def test_depth_mup_with_a_depth_scaled_residual_init_is_refused():
    model = gpt(128, n_layer=2)
    gpt2_residual = preset("gpt2(n_layer=2)")[0]  # '*c_proj.weight' -> N(0, (0.02/sqrt(2*2))^2)
    assert isinstance(gpt2_residual.init, DepthScaledNormal)
    p = planned(model, [gpt2_residual, depth_mup(32, 2, branches=("*.attn", "*.mlp"), std=0.02)])
    message = (
        r"4 tensor\(s\) are initialized by a rule that scales residual projections by depth "
        r"\('h.0.attn.c_proj.weight', 'h.0.mlp.c_proj.weight', .*depth would be counted twice"
    )
    for use in (mup_table, lambda q: mup_hooks(model, q), lambda q: mup_param_groups(model, q, lr=1.0)):
        with pytest.raises(MupError, match=message):
            use(p)
    conflicts = depth_conflicts(p)
    assert [n for n, _, _ in conflicts] == [
        "h.0.attn.c_proj.weight",
        "h.0.mlp.c_proj.weight",
        "h.1.attn.c_proj.weight",
        "h.1.mlp.c_proj.weight",
    ]
    assert conflicts[0][1] == str(gpt2_residual) and depth_conflicts(planned(model, mup(base_width=32))) == []
    width_only = planned(model, [gpt2_residual, mup(base_width=32, std=0.02)])
    with pytest.raises(
        MupError, match=r"a depth-scaled std constant in width breaks that, and depth belongs to fanin.depth_mup"
    ):
        mup_table(width_only)


def test_any_init_that_says_it_scales_depth_is_refused():
    class Captured(fanin.rules.rules.SchemeInit):
        scales_depth = True

    model = mlp()
    rule = Rule("2.weight", Captured(fanin.get("normal(std=0.01)")))
    with pytest.raises(MupError, match=r"\('2.weight'; rule \"name='2.weight' -> normal\(std=0.01\)\"\)"):
        mup_table(planned(model, [rule, mup(base_width=64)]))


# -------------------------------------------------------------------------------- what is said


def test_the_table_says_what_is_and_is_not_done():
    model = gpt(128)
    p = planned(model, mup(base_width=32, std=0.02))
    table = mup_table(p)
    notes = dict(table.notes)
    assert "NOT applied unless the optimizer is built from fanin.mup_param_groups" in notes["learning rates"]
    assert "NOT in the model's code and NOT done by the init" in notes["forward multipliers"]
    assert "muP needs logits q·k/d_head, not q·k/√d_head" in notes["not done"]
    # The tied embedding's own rule says that its readout's multiplier is not in the init.
    assert (
        "tied to the readout 'lm_head': its output × output_mult/m = 0.25 in the forward pass: NOT done by the init"
        in p["wte.weight"].rule
    )
    assert "tied" not in p["wpe.weight"].rule
    assert (
        repr(table)
        == "<MupTable mup(base_width=32, std=0.02) on GPT: 16 tensors, width=128 (x4), 1 forward multipliers>"
    )
    text = table.describe()
    assert "lm_head input x0.25 (readout)" in text
    import json

    assert json.loads(table.to_json())["multipliers"][0]["module"] == "lm_head"
    u = dict(mup_table(planned(mlp(), u_mup())).notes)
    assert "u-μP's unit-scaled operations" in u["not done"]


def test_readout_rule_text_says_the_multiplier_is_not_in_the_init():
    model = mlp()
    p = planned(model, mup(base_width=64))
    assert (
        "output × output_mult/m = 1/4 = 0.25 in the forward pass: NOT done by the init (fanin.mup_hooks)"
        in p["4.weight"].rule
    )
    assert p["2.weight"].rule.startswith("mup:hidden['2.weight'] -> normal(std=0.0625) [σ = 1/√n = 1/√256")


def test_names_are_shown_literally():
    model = nn.Sequential()
    model.add_module("in\x1b[31m", nn.Linear(4, 64))
    model.add_module("head", nn.Linear(64, 2))
    table = mup_table(planned(model, mup(base_width=32)))
    assert "\x1b" not in table.describe() and "in\\x1b[31m.weight" in table.describe()


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: mup(base_width=64.0), r"base_width must be a positive int, got base_width=64.0"),
        (lambda: mup(64, width=0), r"width must be a positive int, got width=0"),
        (lambda: mup(64, std=-1), r"std must be a positive finite number, got std=-1"),
        (
            lambda: mup(64, output_mult=float("inf")),
            r"output_mult must be a positive finite number, got output_mult=inf",
        ),
        (
            lambda: mup(64, multipliers="fwd"),
            r"Unknown multipliers 'fwd'. Did you mean 'forward'\? Accepted: 'forward', 'init'.",
        ),
        (
            lambda: mup(64, multipliers="init", output_mult=2.0),
            r"output_mult=2.0 is a forward multiplier: use multipliers='forward'",
        ),
        (lambda: mup(64, zero_readout=1), r"zero_readout must be True or False, got zero_readout=1"),
        (lambda: mup(64, readout=[]), r"readout takes a module-name glob or a list of globs, got readout=\[\]"),
        (lambda: mup(64, roles={"*.weight": "hiden"}), r"Unknown role 'hiden'. Did you mean 'hidden'\?"),
        (lambda: mup(64, roles=[("a", "hidden")]), r"roles takes a mapping \{tensor-name glob: role\}"),
        (
            lambda: mup(64, attention="*.c_attn"),
            r"attention takes fanin.Attention\(query=..., split=..., n_head=... or head_dim=...\)",
        ),
        (lambda: mup(64, attention={"query": "q", "heads": 2}), r"Unknown Attention argument 'heads'"),
        (lambda: Attention("q"), r"Attention needs exactly one of n_head= .* got n_head=None, head_dim=None"),
        (lambda: Attention("", n_head=2), r"Attention needs a module-name glob query=, got query=''"),
        (lambda: Attention("q", split=0, n_head=2), r"split must be a positive int, got split=0"),
        (lambda: depth_mup(64, 0, branches="*.mlp"), r"base_depth must be a positive int, got base_depth=0"),
        (
            lambda: MupSpec("depth_mup", base_width=64, base_depth=2),
            r"depth_mup needs branches=: globs naming the residual branches",
        ),
        (
            lambda: MupSpec("mup", base_width=64, base_depth=2),
            r"mup does not scale depth; base_depth/branches are depth_mup's",
        ),
        (lambda: MupSpec("u_mup", base_width=64), r"u_mup has no base model \(absolute fans\), got base_width=64"),
        (lambda: MupSpec("u_mup", std=0.02), r"u_mup initializes every weight with unit variance .* got std=0.02"),
        (lambda: MupSpec("mu_p", base_width=64), r"Unknown parametrization 'mu_p'. Did you mean 'mup' or 'u_mup'\?"),
    ],
)
def test_spec_errors(build, message):
    with pytest.raises(MupError, match=message):
        build()


@pytest.mark.parametrize(
    ("model", "rules", "message"),
    [
        (
            mlp(),
            mup(64, readout="head"),
            r"readout=\['head'\] matches no module of Sequential; modules: '0', '1', '2', '3', '4'",
        ),
        (mlp(), mup(64, readout="1"), r"readout=\['1'\] matches '1' \(ReLU\), not a Linear or Conv layer"),
        (mlp(), mup(64, inputs="9"), r"inputs=\['9'\] matches no module of Sequential"),
        (mlp(), mup(64, inputs="3"), r"inputs=\['3'\] matches '3' \(ReLU\), not an Embedding, Linear or Conv layer"),
        (
            mlp(),
            mup(64, inputs="4"),
            r"module '4' is both an input layer and the readout: name them with inputs= and readout=",
        ),
        (
            nn.Sequential(nn.ReLU()),
            mup(64),
            r"Sequential has no Linear or Conv layer to be its readout: name it with readout=",
        ),
        (
            nn.Sequential(nn.Linear(8, 64), nn.Linear(64, 51), nn.Linear(51, 2)),
            mup(32),
            r"'1.weight' \(hidden, .*\) has fan_out=51, which does not scale with width=64: its base size "
            r"fan_out·base_width/width = 25.5",
        ),
        (
            mlp(),
            mup(64, width=100),
            r"'0.weight' \(input, .*\) has fan_out=256, which does not scale with width=100: its base size "
            r"fan_out·base_width/width = 163.84 is not a whole number",
        ),
        (
            gpt(),
            mup(64, multipliers="init"),
            r"'wte.weight' is both an input embedding and the readout \('lm_head', tied\): multipliers='init' \(TP5 "
            r"Table 3\)",
        ),
        (
            gpt(),
            u_mup(),
            r"'wte.weight' is both an input embedding and the readout \('lm_head', tied\): u_mup gives them different "
            r"learning rates",
        ),
        (
            gpt(),
            mup(32, attention=Attention("*.attention", n_head=2)),
            r"attention query='\*.attention' matches no module of GPT",
        ),
        (
            gpt(),
            mup(32, attention=Attention("*.attn", n_head=2)),
            r"matches 'h.0.attn' \(CausalSelfAttention\): the queries must be a Linear's output",
        ),
        (
            gpt(),
            mup(32, attention=Attention("*.c_attn", split=5, n_head=2)),
            r"attention split=5: 'h.0.attn.c_attn' has out_features=384, not divisible by 5",
        ),
        (
            gpt(),
            mup(32, attention=Attention("*.c_attn", split=3, n_head=3)),
            r"attention n_head=3: the queries of 'h.0.attn.c_attn' are 128 wide, not divisible by 3",
        ),
        (gpt(), depth_mup(32, 2, branches="*.block"), r"branches=\['\*.block'\] matches no module of GPT"),
        (
            gpt(),
            depth_mup(32, 2, branches=("*.attn", "*.attn.c_proj")),
            r"matches 'h.0.attn.c_proj' inside 'h.0.attn': a branch is counted once",
        ),
        (
            nn.Sequential(nn.Linear(8, 64), nn.MultiheadAttention(64, 2), nn.Linear(64, 2)),
            u_mup(),
            r"fanin does that for Linear/Conv modules, not for '1.in_proj_weight' \(MultiheadAttention\)",
        ),
    ],
)
def test_binding_errors(model, rules, message):
    with pytest.raises(MupError, match=message):
        rules.bind(model)


def test_width_must_be_given_when_the_input_layers_disagree():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Embedding(10, 64), nn.Embedding(10, 32), nn.Linear(64, 2)

    with pytest.raises(
        MupError, match=r"the input layers of TwoInputs have different output sizes \{'a': 64, 'b': 32\}: give width="
    ):
        read_roles(TwoInputs())
    with pytest.raises(MupError, match=r"cannot tell the role of .* shape=\(64, 3, 64\)"):

        class Odd(nn.Module):
            def __init__(self):
                super().__init__()
                self.inp, self.head = nn.Linear(4, 64), nn.Linear(64, 2)
                self.mix = nn.Parameter(torch.zeros(64, 3, 64))

        read_roles(Odd())


def test_parameters_of_other_modules_are_classified_by_their_dimensions():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.head = nn.Linear(4, 64), nn.Linear(64, 2)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 64))
            self.mix = nn.Parameter(torch.zeros(128, 64))
            self.temperature = nn.Parameter(torch.ones(3))

    graph = read_roles(Tokens())
    assert [(graph[n].role, graph[n].why) for n in ("cls_token", "mix", "temperature")] == [
        ("vector", "one dim is a multiple of width=64"),
        ("hidden", "dims 128 and 64 are multiples of width=64"),
        ("fixed", "no dim is a multiple of width=64"),
    ]
    p = planned(Tokens(), [{"cls_token": "zeros", "mix": "zeros", "temperature": "ones"}, mup(base_width=32)])
    assert mup_table(p)["mix"].adam_lr == 0.5 and mup_table(p)["cls_token"].sgd_lr == 2


def test_read_roles_errors_when_called_directly():
    with pytest.raises(TypeError, match=r"read_roles needs a torch.nn.Module, got model='mlp' \(str\)"):
        read_roles("mlp")
    with pytest.raises(
        MupError, match=r"Sequential has no input layer to read its width from: give width= \(or inputs=\)"
    ):
        read_roles(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(MupError, match=r"width must be a positive int, got width=-3"):
        read_roles(mlp(), width=-3)
    with pytest.raises(MupError, match=r"roles takes a mapping \{tensor-name glob: role\}, got roles=\['hidden'\]"):
        read_roles(mlp(), roles=["hidden"])
    with pytest.raises(MupError, match=r"roles keys are tensor-name globs, got 3"):
        read_roles(mlp(), roles={3: "hidden"})
    with pytest.raises(
        MupError, match=r"Unknown role 'vectors'. Did you mean 'vector'\? .* \(in roles=\{'\*.bias': 'vectors'\}\)"
    ):
        read_roles(mlp(), roles={"*.bias": "vectors"})


def test_table_lookup_and_a_model_with_a_parameter_the_plan_lacks():
    model = mlp()
    p = planned(model, mup(base_width=64))
    with pytest.raises(KeyError, match=r"Unknown tensor name '2.wieght'. Did you mean '2.weight' or"):
        mup_table(p)["2.wieght"]
    grown = mlp()
    grown.register_parameter("extra", nn.Parameter(torch.zeros(3)))
    with pytest.raises(
        MupError, match=r"the plan does not describe this model \(Sequential\): 'extra': not in the plan"
    ):
        mup_hooks(grown, p)


def test_a_split_multiplier_on_an_output_of_another_width_is_refused():
    from fanin.rules.parametrization.hooks import _hook
    from fanin.rules.parametrization.table import Multiplier

    hook = _hook(Multiplier("q", "query", 0.5, "test", split=3))
    torch.testing.assert_close(hook(None, (), torch.ones(2, 6)), torch.tensor([[0.5, 0.5, 1, 1, 1, 1]] * 2))
    with pytest.raises(MupError, match=r"'q''s output has a last dimension of 4, not divisible by split=3"):
        hook(None, (), torch.zeros(2, 4))
