"""fanin.capture: the model zoo's own init, captured and replayed bit for bit; hand-written patterns;
opaque writes; the draw order; errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from scipy import stats
from torch import nn

import fanin
from fanin.planning.capturing import CapturedPlan, CaptureError, capture
from support import zoo


def captured_and_reference(member: str, seed: int):
    """(plan, model to apply it to, the library's own init of the same model under ``seed``)."""
    factory, entry = {n: (f, e) for n, f, e in zoo.ZOO}[member]
    if entry == "construction":
        plan = capture(factory)
        torch.manual_seed(seed)
        reference = factory()
        model = factory()
    else:
        model = factory()
        plan = capture(model)
        reference = copy.deepcopy(model)
        zoo.library_init(reference, entry, seed)
    return plan, model, reference


@pytest.mark.parametrize("member", [m for m, _, _ in zoo.ZOO])
def test_capture_then_apply_with_a_generator_is_the_library_init_bit_for_bit(member):
    zoo.require(member)
    plan, model, reference = captured_and_reference(member, seed=7)
    assert isinstance(plan, CapturedPlan)
    assert plan.opaque == () and plan.draw_order is None
    fanin.apply(model, plan, generator=torch.Generator().manual_seed(7))
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    different = [k for k in ours if not torch.equal(ours[k], theirs[k])]
    assert different == []


def test_gpt2_entries_cite_the_init_code_and_keep_the_last_write():
    zoo.require("hf-gpt2")
    model = zoo.HF["gpt2"]()
    plan = capture(model)
    assert plan.entry_point == "GPT2LMHeadModel.initialize_weights()"
    proj = plan["transformer.h.0.attn.c_proj.weight"]
    # Conv1D gets N(0, 0.02²) first, then the residual projections are redrawn with 0.02/sqrt(2·n_layer).
    assert proj.rule == "GPT2PreTrainedModel._init_weights"
    assert proj.statistics.std == pytest.approx(0.02 / math.sqrt(2 * 2), rel=1e-15)
    assert dict(plan.burns)["transformer.h.0.attn.c_proj.weight"] == 1
    wte = plan["transformer.wte.weight"]
    assert wte.aliases == ("lm_head.weight",) and str(wte.scheme) == "normal(std=0.02)"
    assert plan["transformer.ln_f.weight"].init == "ones"


def test_bert_padding_row_is_padded_normal_and_llama_inv_freq_values_are_kept():
    zoo.require("hf-bert")
    config = dict(
        num_hidden_layers=1,
        hidden_size=16,
        num_attention_heads=2,
        intermediate_size=32,
        vocab_size=32,
        max_position_embeddings=8,
        pad_token_id=0,
    )
    plan = capture(zoo._hf("BertConfig", "BertModel", **config)())
    assert str(plan["embeddings.word_embeddings.weight"].scheme) == "fanin.padded_normal(padding_idx=0, std=0.02)"
    # With the masked-LM head the tied decoder (a Linear) is initialized after the embedding and
    # overwrites it, padding row included: the last write wins, as in the library.
    tied = capture(zoo.HF["bert"]())["bert.embeddings.word_embeddings.weight"]
    assert str(tied.scheme) == "normal(std=0.02)" and tied.aliases == ("cls.predictions.decoder.weight",)
    llama = zoo.HF["llama"]()
    plan = capture(llama)
    inv = plan["model.rotary_emb.inv_freq"]
    assert inv.kind == "buffer" and inv.init.startswith("captured.steps(steps=values[4] float32")
    fresh = zoo.HF["llama"]()
    fresh.model.rotary_emb.inv_freq.fill_(float("nan"))
    fanin.apply(fresh, plan)
    assert torch.equal(fresh.model.rotary_emb.inv_freq, llama.model.rotary_emb.inv_freq)


def test_seeded_apply_draws_the_captured_distributions():
    """seed=: each tensor from its own counter stream, with the captured scheme's distribution.

    KS test per random tensor against the distribution the plan states (normal, or the truncated
    normal with its bounds), at level 1e-3 Bonferroni-corrected over the tensors tested."""
    zoo.require("timm-vit")
    model = zoo.timm_vit()
    plan = capture(model, seed=3)
    fanin.apply(model, plan)
    tensors = dict(model.named_parameters())
    tested = [e for e in plan if e.statistics is not None and e.statistics.std and math.prod(e.shape) >= 256]
    assert len(tested) >= 8
    level = 1e-3 / len(tested)
    for e in tested:
        x = tensors[e.name].detach().flatten().double().numpy()
        s = e.statistics
        if s.distribution == "normal":
            p = stats.kstest(x, "norm", args=(s.mean, s.std)).pvalue
        elif s.distribution == "uniform":
            p = stats.kstest(x, "uniform", args=(s.low, s.high - s.low)).pvalue
        else:
            sd = (
                float(e.scheme.args["steps"].value[0][3]) / math.sqrt(2.0)
                if e.scheme.name == "captured.steps"
                else s.std
            )
            a, b = (s.low - s.mean) / sd, (s.high - s.mean) / sd
            p = stats.kstest(x, "truncnorm", args=(a, b, s.mean, sd)).pvalue
        assert p > level, (e.name, s, p)


def test_materialize_a_meta_model_with_its_captured_plan():
    zoo.require("hf-gpt2")
    plan = capture(zoo.HF["gpt2"](), seed=0)
    with torch.device("meta"):
        model = zoo.HF["gpt2"]()
    fanin.materialize(model, plan)
    assert not any(p.is_meta for p in model.parameters())
    assert model.lm_head.weight is model.transformer.wte.weight
    assert torch.count_nonzero(model.transformer.h[0].attn.c_attn.bias) == 0


# ----------------------------------------------------------------------------- patterns


class HandWritten(nn.Module):
    """Init code as libraries write it by hand."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(16, 8))
        self.emb = nn.Embedding(10, 4)
        self.gates = nn.Parameter(torch.empty(12, 3))
        self.scale = nn.Parameter(torch.empty(8))
        self.proj = nn.Linear(8, 8)

    def init_weights(self):
        with torch.no_grad():
            # timm/_trunc_normal_: the erfinv truncated normal, bounds at ±2 std
            lo, hi = (1 + math.erf(-2 / math.sqrt(2))) / 2, (1 + math.erf(2 / math.sqrt(2))) / 2
            self.w.uniform_(2 * lo - 1, 2 * hi - 1)
            self.w.erfinv_()
            self.w.mul_(0.05 * math.sqrt(2.0))
            self.w.add_(0.0)
            self.w.clamp_(min=-0.1, max=0.1)
            self.emb.weight.normal_(mean=0.0, std=0.3)
            self.emb.weight[2] = 0
            for g in range(3):  # per-gate blocks, as the Keras-style RNN inits do
                nn.init.xavier_uniform_(self.gates[4 * g : 4 * (g + 1)])
            self.scale.copy_(torch.full((8,), 0.5))
            nn.init.normal_(self.proj.weight, std=0.02)
            self.proj.weight.div_(math.sqrt(2.0 * 3))  # timm's fix_init_weight
            nn.init.zeros_(self.proj.bias)


def test_hand_written_patterns_are_read_as_schemes():
    model = HandWritten()
    plan = capture(model)
    assert plan.entry_point == "HandWritten.init_weights()" and plan.opaque == ()
    w = plan["w"]
    assert w.init == "captured.steps(steps=erfinv trunc_normal(mean=0.0, std=0.05, a=-0.1, b=0.1))"
    assert (w.statistics.low, w.statistics.high) == (-0.1, 0.1)
    assert str(plan["emb.weight"].scheme) == "fanin.padded_normal(padding_idx=2, std=0.3)"
    gates = plan["gates"]
    assert gates.init == "fanin.blocks(scheme=xavier_uniform, layout=split(3))"
    assert (gates.fans.fan_in, gates.fans.fan_out) == (3, 4)  # one (4, 3) gate block, not (12, 3)
    assert str(plan["scale"].scheme) == "constant(val=0.5)"
    proj = plan["proj.weight"]
    assert proj.init == "captured.steps(steps=normal(std=0.02); div_(2.449489742783178))"
    assert proj.statistics.std == pytest.approx(0.02 / math.sqrt(6), rel=1e-15)
    reference = copy.deepcopy(model)
    torch.manual_seed(11)
    reference.init_weights()
    fanin.apply(model, plan, generator=torch.Generator().manual_seed(11))
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_layer_scale_constant_from_an_out_of_place_product_and_untouched_parameters_are_kept():
    class LayerScale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(1e-5 * torch.ones(6))
            self.free = nn.Parameter(torch.empty(3))

    plan = capture(LayerScale)
    assert str(plan["gamma"].scheme) == f"constant(val={float(torch.tensor(1e-5)):.17g})" or plan[
        "gamma"
    ].scheme.arguments["val"] == pytest.approx(1e-5)
    assert plan["free"].action == "keep" and plan["free"].rule.startswith("created by torch.empty and never written")


class Opaque(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def reset_parameters(self):
        with torch.no_grad():
            self.a.weight.normal_()
            self.a.weight.exp_()  # no scheme reads as this


def test_an_uninterpretable_write_is_opaque_and_replayed_by_the_modules_own_method():
    model = Opaque()
    plan = capture(model, init="reset_parameters")
    assert plan.opaque == (("a.weight", "in-place exp_"),)
    assert plan["a.weight"].init == "captured.replay(method='Opaque.reset_parameters')"
    assert plan.draw_order == "an opaque write draws random numbers"
    torch.manual_seed(2)
    fanin.apply(model, plan)
    torch.manual_seed(2)
    reference = Opaque()
    with torch.no_grad():
        torch.manual_seed(2)
        reference.reset_parameters()
    assert torch.equal(model.a.weight, reference.a.weight)
    assert plan["b.weight"].action == "keep"


def test_a_deep_copied_layer_is_opaque_copies_of_its_random_values():
    plan = capture(lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, enable_nested_tensor=False))
    reasons = dict(plan.opaque)
    assert reasons["layers.1.linear1.weight"] == "a copy of layers.0.linear1.weight's random values"
    assert "layers.0.linear1.weight" not in reasons
    assert plan.draw_order == "copies of another tensor's random values are drawn afresh"


def test_an_explicit_generator_in_the_init_code_is_reported():
    class OwnGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(3, 3))

        def init_weights(self):
            nn.init.xavier_normal_(self.w, generator=torch.Generator().manual_seed(0))

    plan = capture(OwnGenerator())
    assert plan.draw_order.endswith("OwnGenerator.init_weights")
    (note,) = plan.notes
    assert note.endswith(
        "OwnGenerator.init_weights passes its own generator to xavier_normal: its draws cannot be replayed in the "
        "library's order"
    )
    assert str(plan["w"].scheme) == "xavier_normal"


def test_capture_leaves_the_model_and_the_global_rng_alone():
    model = zoo.plain()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    capture(model)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: capture(3), r"capture needs a torch.nn.Module or a factory of one, got model=3 \(int\)"),
        (lambda: capture(nn.Linear(2, 2), init="nope"), r"capture\(init='nope'\): Linear has no method 'nope'"),
        (
            lambda: capture(nn.Linear(2, 2), init=5),
            r"capture's init is a callable init\(model\) or a method name, got init=5 \(int\)",
        ),
        (lambda: capture(lambda: 3), r"capture's factory must return a torch.nn.Module, got int"),
        (
            lambda: capture(lambda: nn.Linear(2, 2), init="x"),
            r"capture\(factory\) captures the construction; init= applies to a built model",
        ),
        (
            lambda: capture(nn.Linear(2, 2), device="cuda"),
            r"capture's device is 'meta' or 'cpu' \(the scratch copy\), got device='cuda'",
        ),
        (lambda: capture(nn.Linear(2, 2), seed=-1), r"seed must be None or an int in \[0, 2\*\*64\), got seed=-1"),
    ],
)
def test_capture_errors(call, message):
    with pytest.raises((CaptureError, TypeError), match=message):
        call()


def test_init_code_that_fails_names_the_entry_point():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(2))

        def init_weights(self):
            raise KeyError("boom")

    with pytest.raises(
        CaptureError, match=r"the init entry point Broken.init_weights\(\) failed on a meta copy: KeyError: 'boom'"
    ):
        capture(Broken())


def test_init_code_that_reads_values_is_captured_on_a_cpu_copy():
    class ReadsValues(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4))

        def init_weights(self):
            n = int(torch.linspace(0, 3, 4, device=self.w.device)[-1].item())
            nn.init.constant_(self.w, float(n))

    plan = capture(ReadsValues())
    assert str(plan["w"].scheme) == "constant(val=3.0)"
    assert plan.notes[0].startswith("the init code reads values (")
    assert plan.notes[0].endswith("captured on a CPU copy")


@pytest.mark.parametrize("member", ["hf-gpt2", "hf-llama"])
def test_a_transformers_factory_is_captured_as_it_constructs(member):
    """transformers initializes in post_init only on a real device, before tying the weights: a
    factory is captured on a CPU construction, and reproduces the construction bit for bit."""
    zoo.require(member)
    factory = zoo.HF[member[3:]]
    plan = capture(factory)
    assert plan.notes == (
        "transformers initializes only when it constructs on a real device: captured on a CPU construction",
    )
    torch.manual_seed(9)
    reference = factory()
    model = factory()
    fanin.apply(model, plan, generator=torch.Generator().manual_seed(9))
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True)
    )
    on_meta = capture(factory, device="meta")
    tied = member == "hf-gpt2"
    assert (on_meta.draw_order is not None) == tied
    if tied:
        assert "transformers ran its init after tying the weights" in on_meta.draw_order


def test_captured_and_block_plans_serialize_to_json():
    import json

    plan = capture(HandWritten())
    record = json.loads(plan.to_json())
    by_name = {e["name"]: e for e in record["entries"]}
    assert by_name["gates"]["scheme"] == {
        "name": "fanin.blocks",
        "args": {"scheme": "xavier_uniform", "layout": "split(3)"},
    }
    assert by_name["w"]["scheme"]["args"]["steps"].startswith("erfinv trunc_normal(mean=0.0, std=0.05")


def test_captured_plan_repr_is_one_short_line():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert repr(capture(model)) == "<CapturedPlan Sequential: 4 tensors from reset_parameters() of every module>"
