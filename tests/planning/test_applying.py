"""fanin.apply: random sources, bitwise values, atomicity, the counter-stream locality promise."""

import dataclasses
import importlib

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.errors import ApplyError
from fanin.planning import PlanMismatchError
from fanin.rules import Name, Ndim, Role, Rule, RuleError
from fanin.schemes import registry


def net():
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


RULES = [(Name("*.weight") & Ndim(2), "xavier_uniform"), (Role("bias"), "uniform(a=-0.1, b=0.1)")]


def test_seed_draws_each_tensor_from_its_own_stream():
    model = net()
    record = fanin.apply(model, RULES, seed=11)
    assert record.source == "stream"
    for name, scheme in (("0.weight", "xavier_uniform"), ("2.bias", "uniform(a=-0.1, b=0.1)")):
        expected = fanin.get(scheme)(torch.empty_like(model.get_parameter(name)), generator=fanin.Stream(11, name))
        assert torch.equal(model.get_parameter(name), expected)


def test_generator_is_drawn_in_plan_order():
    model = net()
    record = fanin.apply(model, RULES, generator=torch.Generator().manual_seed(5))
    assert record.source == "generator" and record.seed is None
    g = torch.Generator().manual_seed(5)
    expected = [
        torch.nn.init.xavier_uniform_(torch.empty(5, 6), generator=g),
        torch.nn.init.uniform_(torch.empty(5), -0.1, 0.1, generator=g),
        torch.nn.init.xavier_uniform_(torch.empty(3, 5), generator=g),
        torch.nn.init.uniform_(torch.empty(3), -0.1, 0.1, generator=g),
    ]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected, strict=True))


def test_global_rng_without_seed_or_generator():
    torch.manual_seed(3)
    expected = [torch.nn.init.xavier_uniform_(torch.empty(5, 6)), torch.nn.init.uniform_(torch.empty(5), -0.1, 0.1)]
    model = net()
    torch.manual_seed(3)
    assert fanin.apply(model, RULES).source == "global"
    assert torch.equal(model[0].weight, expected[0]) and torch.equal(model[0].bias, expected[1])


def test_torch_preset_reproduces_construction_bitwise():
    def build():
        return nn.Sequential(
            nn.Conv2d(3, 4, 3),
            nn.BatchNorm2d(4),
            nn.Flatten(),
            nn.Linear(4, 6),
            nn.Embedding(7, 4, padding_idx=2),
            nn.LayerNorm(4),
        )

    torch.manual_seed(0)
    reference = build()
    model = build()
    fanin.apply(model, "torch", generator=torch.Generator().manual_seed(0))
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert torch.count_nonzero(model[4].weight[2]) == 0


def test_added_layer_changes_no_other_layer_under_the_counter_stream():
    class Small(nn.Module):
        def __init__(self, extra=False):
            super().__init__()
            self.encoder = nn.Linear(8, 8)
            if extra:
                self.adapter = nn.Linear(8, 8)
            self.decoder = nn.Linear(8, 4)

    a, b = Small(), Small(extra=True)
    fanin.apply(a, "torch", seed=0)
    fanin.apply(b, "torch", seed=0)
    for name, p in a.named_parameters():
        assert torch.equal(p, b.get_parameter(name)), name
    # a deeper GPT: the first blocks keep their values bit for bit
    g2, g3 = fanin.models.gpt(n_layer=2), fanin.models.gpt(n_layer=3)
    fanin.apply(g2, "torch", seed=1)
    fanin.apply(g3, "torch", seed=1)
    for name, p in g2.named_parameters():
        assert torch.equal(p, g3.get_parameter(name)), name
    # whereas one generator in plan order shifts everything after the new layer
    a2, b2 = Small(), Small(extra=True)
    fanin.apply(a2, "torch", generator=torch.Generator().manual_seed(0))
    fanin.apply(b2, "torch", generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a2.decoder.weight, b2.decoder.weight)


def test_failure_half_way_changes_nothing(monkeypatch, state):
    model = net()
    before = state.bits(model)
    # the last tensor's scheme fails when it runs, after the others have their values (the
    # plan's dry run, on a zero-stride view, passes)
    original = fanin.init.uniform_

    def failing(tensor, *args, **kwargs):
        if tensor.shape == (3,) and tensor.stride() == (1,):
            raise RuntimeError("injected")
        return original(tensor, *args, **kwargs)

    entry = fanin.schemes.lookup("uniform")
    monkeypatch.setitem(registry._REGISTRY, "uniform", dataclasses.replace(entry, fn=failing))
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, RULES, seed=0)
    assert str(info.value) == (
        "Cannot compute '2.bias' (Linear '2') by rule \"#1 role='bias' -> uniform(a=-0.1, b=0.1)\" "
        "(uniform(a=-0.1, b=0.1)): RuntimeError: injected. Nothing was written."
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    state.assert_unchanged(model, before)


def test_a_seeded_scheme_with_a_stream_or_a_generator_is_refused_before_anything(state):
    model = net()
    before = state.bits(model)
    rules = [("2.bias", "keras.random_normal(seed=1)"), *RULES]
    with pytest.raises(
        RuleError,
        match=r"it draws from its own seed=1, and the plan draws every tensor from a counter stream \(seed=0\)",
    ):
        fanin.apply(model, rules, seed=0)
    with pytest.raises(
        ApplyError,
        match=r"^Cannot write '2.bias' \(Linear '2'\): rule .* uses keras.random_normal\(seed=1\), which draws from "
        r"its own seed, and apply was given generator=",
    ):
        fanin.apply(model, rules, generator=torch.Generator().manual_seed(0))
    state.assert_unchanged(model, before)
    fanin.apply(model, rules)  # the global RNG for the others, its own seed for it
    assert torch.equal(model[2].bias, fanin.get("keras.random_normal(seed=1)")(torch.empty(3)))


def test_failing_reset_parameters_changes_nothing(state):
    class Fragile(nn.Linear):
        def reset_parameters(self):
            if getattr(self, "armed", False):
                raise RuntimeError("boom")
            super().reset_parameters()

    model = nn.Sequential(nn.Linear(3, 3), Fragile(3, 3))
    model[1].armed = True
    before = state.bits(model)
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, [("0.*", "ones"), ("*", "reset_parameters")])
    assert str(info.value) == (
        "Cannot compute '1.weight': Fragile.reset_parameters() of module '1' raised RuntimeError: boom. Nothing was "
        "written."
    )
    state.assert_unchanged(model, before)


def test_reset_parameters_rule_runs_on_a_copy_with_the_global_rng():
    torch.manual_seed(4)
    expected = nn.Linear(3, 2)
    model = nn.Linear(3, 2)
    weight_object = model.weight
    torch.manual_seed(4)
    record = fanin.apply(model, {"*": "reset_parameters"})
    assert torch.equal(model.weight, expected.weight) and torch.equal(model.bias, expected.bias)
    assert model.weight is weight_object  # the parameter objects stay
    assert record["weight"].init == "Linear.reset_parameters()"


def test_keep_leaves_values_and_apply_returns_the_record():
    model = net()
    bias = model[0].bias.clone()
    record = fanin.apply(model, {"*.weight": "ones"}, leftovers="keep", seed=0)
    assert torch.equal(model[0].bias, bias)
    assert torch.equal(model[0].weight, torch.ones(5, 6))
    assert record["0.bias"].action == "keep"
    assert model[0].weight.requires_grad and model[0].weight.grad_fn is None


def test_applying_a_plan():
    model = net()
    p = fanin.plan(model, RULES, seed=2)
    fanin.apply(model, p)  # the plan's seed
    other = net()
    fanin.apply(other, RULES, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters(), strict=True))
    with pytest.raises(ValueError, match=r"the plan was resolved with seed=2 and is applied with seed=3"):
        fanin.apply(model, p, seed=3)
    with pytest.raises(TypeError, match=r"leftovers= applies to rules, not to a resolved plan; got leftovers='keep'"):
        fanin.apply(model, p, leftovers="keep")
    with pytest.raises(PlanMismatchError) as info:
        fanin.apply(nn.Sequential(nn.Linear(6, 4)), p)
    assert str(info.value) == (
        "The plan does not describe this model (Sequential): it has parameter '0.weight' of shape=(5, 6), the model "
        "has parameter of shape=(4, 6). Resolve the plan on this model: fanin.plan(model, rules)."
    )


def test_apply_errors():
    with pytest.raises(TypeError, match=r"pass seed= \(one counter stream per tensor\) or generator= .* not both"):
        fanin.apply(net(), RULES, seed=0, generator=torch.Generator())
    with pytest.raises(
        TypeError,
        match=r"generator must be None or a torch.Generator \(for counter streams pass seed=int\), got generator=5 "
        r"\(int\)",
    ):
        fanin.apply(net(), RULES, generator=5)
    with pytest.raises(TypeError, match=r"apply needs a torch.nn.Module, got model='x' \(str\)"):
        fanin.apply("x", RULES)
    with torch.device("meta"):
        meta = net()
    with pytest.raises(ValueError, match=r"'0.weight' is on the meta device: .* use fanin.materialize"):
        fanin.apply(meta, RULES)


def test_buffers_covered_by_a_rule_are_written():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    model[1].running_var.fill_(7.0)
    fanin.apply(model, [Rule(Role("running_var"), "ones"), ("*", "zeros")])
    assert torch.equal(model[1].running_var, torch.ones(3))


def test_torch_preset_multihead_attention_and_transformer_layer_bitwise():
    # MultiheadAttention's constructor draws out_proj before its own tensors: its defaults list
    # out_proj.* by dotted name, and the plan places them at the parent's position.
    def build():
        return nn.ModuleDict(
            {
                "mha": nn.MultiheadAttention(8, 2, add_bias_kv=True),
                "layer": nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0),
            }
        )

    torch.manual_seed(0)
    reference = build()
    model = build()
    record = fanin.apply(model, "torch", generator=torch.Generator().manual_seed(0))
    assert [e.name for e in record][:3] == ["mha.out_proj.weight", "mha.out_proj.bias", "mha.in_proj_weight"]
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_wrapping_does_not_change_the_stream_keys():
    class Wrapper(nn.Module):  # what DDP / DataParallel do: the model under ".module"
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    plain, wrapped = net(), Wrapper(net())
    fanin.apply(plain, RULES, seed=9)
    record = fanin.apply(wrapped, RULES, seed=9)
    assert record["module.0.weight"].stream == (9, "0.weight")
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), wrapped.parameters(), strict=True))


# --- the commit: all or nothing ---------------------------------------------------------------------


def big_net():
    return nn.Sequential(*[nn.Linear(16, 16) for _ in range(6)])


@pytest.mark.parametrize("at", [0, 3, 11])
@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_write_failing_during_the_commit_restores_what_was_written(monkeypatch, at, error, state):
    apply_module = importlib.import_module("fanin.planning.applying")

    model = big_net()
    before = state.bits(model)
    calls = []
    original = apply_module._write

    def failing(destination, value):
        calls.append(destination)
        if len(calls) == at + 1:
            original(destination, value)  # the failing write may already have written
            raise error
        original(destination, value)

    monkeypatch.setattr(apply_module, "_write", failing)
    with pytest.raises(type(error), match=str(error) or None):
        fanin.apply(model, {"*.weight": "orthogonal", "*.bias": "uniform(a=-1.0, b=1.0)"}, seed=0)
    assert len(calls) == at + 1
    state.assert_unchanged(model, before)


def test_ctrl_c_during_the_commit_is_deferred_then_restores_and_raises(monkeypatch, state):
    import signal

    apply_module = importlib.import_module("fanin.planning.applying")

    model = big_net()
    before = state.bits(model)
    original = apply_module._write
    calls = []

    def interrupted(destination, value):
        calls.append(1)
        original(destination, value)
        if len(calls) == 4:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, arriving mid-commit

    monkeypatch.setattr(apply_module, "_write", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    assert handler is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt) as info:
        fanin.apply(model, {"*": "ones"})
    assert len(calls) == 4  # the deferred interrupt stopped the commit at the next tensor...
    assert info.traceback[-1].name == "commit"  # ...raised there, not inside the write it interrupted
    assert signal.getsignal(signal.SIGINT) is handler
    state.assert_unchanged(model, before)


def test_commit_restores_when_copy_itself_fails(monkeypatch, state):
    # Tensor.copy_ failing on its k-th call, wherever that is (a scheme's own copy, the commit);
    # the restore's copies pass: the model is unchanged.
    for k in range(1, 16):
        model = big_net()
        before = state.bits(model)
        count = [0]
        original = torch.Tensor.copy_

        def flaky(self, *args, _count=count, _k=k, _original=original, **kwargs):
            _count[0] += 1
            if _count[0] == _k:
                raise RuntimeError(f"copy {_k} failed")
            return _original(self, *args, **kwargs)

        with monkeypatch.context() as m:
            m.setattr(torch.Tensor, "copy_", flaky)
            with pytest.raises((RuntimeError, ApplyError), match=f"copy {k} failed"):
                fanin.apply(model, {"*.weight": "orthogonal", "*": "zeros"}, seed=k)
        state.assert_unchanged(model, before)


def test_parameters_keep_their_objects_and_autograd_flags():
    model = net()
    model[2].bias.requires_grad_(False)
    model[0].weight.grad = torch.full_like(model[0].weight, 3.0)
    objects = [p for p in model.parameters()]
    fanin.apply(model, RULES, seed=0)
    assert [p for p in model.parameters()] == objects and all(
        a is b for a, b in zip(model.parameters(), objects, strict=True)
    )
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, False]
    assert all(p.is_leaf and p.grad_fn is None for p in model.parameters())
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 3.0))  # untouched
    model(torch.randn(2, 6)).sum().backward()  # still trains


def test_reset_parameters_of_a_module_holding_a_lock():
    import threading

    class Locked(nn.Linear):
        def __init__(self, *args):
            super().__init__(*args)
            self.lock = threading.Lock()  # copy.deepcopy: "cannot pickle '_thread.lock' object"

    torch.manual_seed(1)
    expected = nn.Linear(4, 3)
    model = nn.Sequential(Locked(4, 3))
    torch.manual_seed(1)
    fanin.apply(model, {"*": "reset_parameters"})
    assert torch.equal(model[0].weight, expected.weight) and torch.equal(model[0].bias, expected.bias)
    assert isinstance(model[0].lock, type(threading.Lock()))


def test_reset_parameters_changing_a_shape_is_refused(state):
    class Grows(nn.Linear):
        def reset_parameters(self):
            if getattr(self, "armed", False):
                self.weight = nn.Parameter(torch.zeros(self.out_features + 1, self.in_features))
            super().reset_parameters()

    model = nn.Sequential(nn.Linear(2, 2), Grows(2, 2))
    model[1].armed = True
    before = state.bits(model)
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, {"0.*": "ones", "*": "reset_parameters"})
    assert str(info.value) == (
        "Cannot compute '1.weight': Grows.reset_parameters() of module '1' left shape=(3, 2) for it, planned as "
        "shape=(2, 2). Nothing was written."
    )
    state.assert_unchanged(model, before)


def test_reset_parameters_runs_on_a_copy_that_shares_no_tensor():
    seen = []

    class Peek(nn.Linear):
        def reset_parameters(self):
            seen.append(self.weight)
            super().reset_parameters()

    model = Peek(3, 3)
    seen.clear()
    fanin.apply(model, {"*": "reset_parameters"})
    assert seen and seen[-1] is not model.weight
    assert seen[-1].untyped_storage().data_ptr() != model.weight.untyped_storage().data_ptr()


def test_the_lsuv_mark_reaches_the_model_through_apply_and_materialize():
    # the "lsuv" scheme marks the tensor it fills; apply fills fresh tensors, so the mark must travel
    from fanin.composite import is_marked

    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    fanin.apply(model, {"0.weight": "lsuv", "*": "zeros"}, seed=0)
    assert is_marked(model[0].weight) and not is_marked(model[1].weight)
    with torch.device("meta"):
        lazy = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    fanin.materialize(lazy, {"0.weight": "lsuv", "*": "zeros"}, seed=0)
    assert is_marked(lazy[0].weight) and not is_marked(lazy[1].weight)
    assert torch.equal(lazy[0].weight, model[0].weight)


def test_a_restore_that_fails_too_says_the_model_may_be_partly_written(monkeypatch):
    # the one case the commit cannot repair: copy_ failing again while putting old values back
    apply_module = importlib.import_module("fanin.planning.applying")
    model = big_net()
    calls = []

    def failing(destination, value):
        calls.append(1)
        destination.copy_(value)
        if len(calls) == 2:
            monkeypatch.setattr(torch.Tensor, "copy_", broken)
            raise RuntimeError("first failure")

    def broken(self, *args, **kwargs):
        raise RuntimeError("second failure")

    monkeypatch.setattr(apply_module, "_write", failing)
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, {"*": "ones"})
    assert str(info.value) == (
        "Writing the model failed (RuntimeError: first failure) and restoring the tensors written before it failed "
        "too (RuntimeError: second failure): the model may be partly written"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "dtype",
            (
                "Cannot write '1.weight': its new value has dtype=torch.float64, the tensor dtype=torch.float32. "
                "Nothing was written."
            ),
        ),
        (
            "drop",
            (
                "Cannot compute '1.weight': Odd.reset_parameters() of module '1' left no tensor for it, planned as "
                "shape=(2, 2). Nothing was written."
            ),
        ),
    ],
)
def test_reset_parameters_leaving_a_different_tensor_is_refused(change, message, state):
    class Odd(nn.Linear):
        def reset_parameters(self):
            super().reset_parameters()
            if getattr(self, "armed", None) == "dtype":
                self.weight = nn.Parameter(self.weight.detach().double())
            elif getattr(self, "armed", None) == "drop":
                del self._parameters["weight"]

    model = nn.Sequential(nn.Linear(2, 2), Odd(2, 2))
    model[1].armed = change
    before = state.bits(model)
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, {"0.*": "ones", "*": "reset_parameters"})
    assert str(info.value) == message
    state.assert_unchanged(model, before)


def test_apply_from_another_thread_commits_without_touching_signals():
    import signal
    import threading

    model = net()
    done = []
    thread = threading.Thread(target=lambda: done.append(fanin.apply(model, {"*": "ones"})))
    thread.start()
    thread.join()
    assert done and all(torch.equal(p, torch.ones_like(p)) for p in model.parameters())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
