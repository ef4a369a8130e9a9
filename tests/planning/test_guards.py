"""What must hold before a plan writes: shared memory, stream keys, destinations, lazy tensors."""

import pytest
import torch
from torch import nn

import fanin
from fanin.errors import ApplyError
from fanin.planning.guards import (
    check_destination,
    colliding_keys,
    overlapping_tensors,
    storage_span,
)
from fanin.rules import Role, Rule, RuleError

# --- storage spans and overlaps ---------------------------------------------------------------------


def test_storage_span_of_views():
    base = torch.zeros(4, 6)
    key, start, end = storage_span(base)
    assert (start, end) == (0, 96)
    assert storage_span(base[1:3])[1:] == (24, 72)
    assert storage_span(base[:, 2])[1:] == (8, 4 * 6 * 4 - 12)  # column 2: elements 2, 8, 14, 20
    assert storage_span(base.t())[0] == key
    assert storage_span(torch.empty(0, 3)) is None
    assert storage_span(torch.empty(3, device="meta")) is None


def test_overlapping_tensors_pairs_in_input_order():
    base = torch.zeros(10)
    named = [("a", base[:4]), ("b", base[4:]), ("c", base[3:5]), ("d", torch.zeros(3)), ("e", base)]
    assert overlapping_tensors(named) == [("a", "c"), ("a", "e"), ("b", "c"), ("b", "e"), ("c", "e")]
    assert overlapping_tensors([("x", base[:5]), ("y", base[5:])]) == []


def test_colliding_keys():
    assert colliding_keys([("module.weight", "weight"), ("weight", "weight"), ("b", "b")]) == [
        ("weight", "module.weight", "weight")
    ]


# --- plan time: shared memory -----------------------------------------------------------------------


class Shared(nn.Module):
    def __init__(self, *, overlap: bool = True):
        super().__init__()
        self.p1 = nn.Parameter(torch.ones(4))
        self.p2 = nn.Parameter(self.p1[:2] if overlap else torch.ones(2))


def test_two_parameters_sharing_memory_are_refused_at_plan_time(state):
    model = Shared()
    before = state.bits(model)
    message = (
        "'p1' and 'p2' are different tensors that share memory (views of one storage, e.g. p2 = nn.Parameter(p1[:2])): "
        "initializing one changes the other, so the plan would record values that are not there. Tie them (assign "
        "the same Parameter object) or give each its own storage (.clone())."
    )
    for rules in ({"p1": "zeros", "p2": "ones"}, {"p1": "keep", "p2": "zeros"}, {"p1": "zeros", "p2": "keep"}):
        with pytest.raises(RuleError) as info:
            fanin.apply(model, rules)
        assert str(info.value) == message
    state.assert_unchanged(model, before)
    # kept both: nothing is written, nothing can lie
    assert [e.action for e in fanin.plan(model, {"*": "keep"})] == ["keep", "keep"]


def test_disjoint_views_of_one_storage_are_written_independently():
    base = torch.zeros(6)

    class Views(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(base[:3])
            self.b = nn.Parameter(base[3:])

    model = Views()
    fanin.apply(model, {"a": "ones", "b": "constant(val=2.0)"})
    assert base.tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]


def test_tied_parameters_are_one_entry_not_an_overlap():
    model = nn.ModuleDict({"emb": nn.Embedding(5, 3), "head": nn.Linear(3, 5, bias=False)})
    model["head"].weight = model["emb"].weight
    p = fanin.plan(model, {"*": "normal(std=0.02)"}, seed=0)
    assert [(e.name, e.aliases) for e in p] == [("emb.weight", ("head.weight",))]


def test_a_buffer_that_views_a_written_parameter_is_refused():
    class Mirror(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(2, 3))
            self.register_buffer("row", self.w.data[0])

    with pytest.raises(RuleError, match=r"^'w' and 'row' are different tensors that share memory"):
        fanin.plan(Mirror(), {"w": "zeros"})


# --- plan time: stream keys --------------------------------------------------------------------------


class Collide(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = nn.Linear(2, 2, bias=False)  # named like DDP's wrapper attribute
        self.weight = nn.Parameter(torch.empty(2, 2))


def test_colliding_stream_keys_are_refused_with_a_seed(state):
    model = Collide()
    before = state.bits(model)
    with pytest.raises(RuleError) as info:
        fanin.apply(model, {"*": "normal"}, seed=0)
    assert str(info.value) == (
        "'weight' and 'module.weight' have the same stream key 'weight' (canonical names drop wrapper components: "
        "a leading 'module', '_orig_mod', '_fsdp_wrapped_module', '_checkpoint_wrapped_module'), so with seed=0 they "
        "would get identical values. Rename one of the modules, or initialize with generator= instead of seed=."
    )
    state.assert_unchanged(model, before)
    # one generator in plan order has no keys: allowed, and the two differ
    fanin.apply(model, {"*": "normal"}, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(model.weight, model.module.weight)
    # a kept one draws nothing: no collision
    fanin.plan(model, {"weight": "keep", "*": "normal"}, seed=0)


# --- plan time: schemes that cannot take a tensor ---------------------------------------------------


@pytest.mark.parametrize(
    ("model", "rules", "message"),
    [
        (
            nn.Linear(3, 2),
            [Rule(Role("bias"), "orthogonal"), Rule("*", "zeros")],
            (
                "Rule \"role='bias' -> orthogonal\": scheme 'orthogonal' cannot initialize 'bias' (Linear '<root>') "
                "of shape=(2,): "
                "Only tensors with 2 or more dimensions are supported"
            ),
        ),
        (
            nn.Linear(3, 2),
            {"weight": "keras.orthogonal", "bias": "jax.orthogonal"},
            (
                "Rule \"name='bias' -> jax.orthogonal\": scheme 'jax.orthogonal' cannot initialize 'bias' (Linear "
                "'<root>') of "
                "shape=(2,): orthogonal initializer requires at least a 2D shape"
            ),
        ),
        (
            nn.Linear(3, 2),
            {"weight": "eye", "bias": "tf1.identity_initializer"},
            (
                "Rule \"name='bias' -> tf1.identity_initializer\": scheme 'tf1.identity_initializer' cannot "
                "initialize 'bias' "
                "(Linear '<root>') of shape=(2,): Identity matrix initializer can only be used for 2D matrices. "
                "Received: shape=(2,) of rank 1."
            ),
        ),
        (
            nn.Linear(3, 6),
            {"weight": "fanin.gatewise_orthogonal", "bias": "zeros"},
            (
                "Rule \"name='weight' -> fanin.gatewise_orthogonal\": scheme 'fanin.gatewise_orthogonal' cannot "
                "initialize 'weight' "
                "(Linear '<root>') of shape=(6, 3): fanin.gatewise_orthogonal: the first dimension must split into 4 "
                "equal gate "
                "blocks, got shape=(6, 3)"
            ),
        ),
        (
            nn.BatchNorm1d(3),
            [Rule(Role("num_batches_tracked"), "normal"), Rule("*", "ones")],
            (
                "Rule \"role='num_batches_tracked' [any] -> normal\": scheme 'normal' cannot initialize "
                "'num_batches_tracked' "
                "(BatchNorm1d '<root>') of shape=(): it draws random values, and the tensor has dtype=torch.int64; "
                "random "
                "schemes fill floating-point tensors (float16, bfloat16, float32, float64)"
            ),
        ),
        (
            nn.BatchNorm1d(3),
            [Rule(Role("num_batches_tracked"), "keras.zeros"), Rule("*", "ones")],
            (
                "Rule \"role='num_batches_tracked' [any] -> keras.zeros\": scheme 'keras.zeros' cannot initialize "
                "'num_batches_tracked' (BatchNorm1d '<root>') of shape=(): zeros_ needs a floating-point tensor "
                "(float16, "
                "bfloat16, float32, float64), got dtype=torch.int64"
            ),
        ),
        (
            nn.BatchNorm1d(3),
            [Rule(Role("num_batches_tracked"), "constant(val=0.5)"), Rule("*", "ones")],
            (
                "Rule \"role='num_batches_tracked' [any] -> constant(val=0.5)\": scheme 'constant(val=0.5)' cannot "
                "initialize "
                "'num_batches_tracked' (BatchNorm1d '<root>') of shape=(): a tensor of dtype=torch.int64 cannot hold "
                "the value 0.5"
            ),
        ),
    ],
    ids=[
        "orthogonal-bias",
        "jax-orthogonal-bias",
        "identity-bias",
        "gates",
        "normal-int-buffer",
        "keras-int-buffer",
        "fraction-int",
    ],
)
def test_schemes_that_cannot_take_a_tensor_fail_at_plan_time(model, rules, message, state):
    before = state.bits(model)
    with pytest.raises(RuleError) as info:
        fanin.plan(model, rules)
    assert str(info.value) == message
    with pytest.raises(RuleError):
        fanin.apply(model, rules)
    state.assert_unchanged(model, before)


def test_integer_buffers_take_the_constants_they_can_hold():
    model = nn.BatchNorm1d(3)
    model.num_batches_tracked.fill_(5)
    fanin.apply(model, [Rule(Role("num_batches_tracked"), "zeros"), Rule("*", "ones")])
    assert model.num_batches_tracked.item() == 0 and model.num_batches_tracked.dtype == torch.int64


def test_lazy_parameters_are_refused_at_plan_time():
    model = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(RuleError) as info:
        fanin.plan(model, {"*": "zeros"})
    assert str(info.value) == (
        "'0.weight' of LazyLinear (module '0') is an uninitialized lazy parameter or buffer, which has no shape yet: "
        "run one forward pass, then plan"
    )


# --- apply time: destinations --------------------------------------------------------------------------


def test_an_expanded_parameter_is_refused_before_the_first_write(state):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    model[1].weight = nn.Parameter(torch.zeros(1, 2).expand(2, 2))  # stride 0: copy_ would raise half-way
    before = state.bits(model)
    with pytest.raises(ApplyError) as info:
        fanin.apply(model, {"*": "ones"})
    assert str(info.value) == (
        "Cannot write '1.weight' (Linear '1'): it is an expanded or self-overlapping view (stride=(0, 1) for "
        "shape=(2, 2)): "
        "several of its elements are one memory location, so it cannot hold independent values; give it its own "
        "storage "
        "(e.g. nn.Parameter(tensor.clone())). Nothing was written."
    )
    state.assert_unchanged(model, before)


def test_an_inference_tensor_is_refused_before_the_first_write(state):
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(3, 2))
    before = state.bits(model)
    with pytest.raises(
        ApplyError,
        match=r"^Cannot write '0.weight' \(Linear '0'\): it is an inference tensor \(made under "
        r"torch.inference_mode\(\)\), ",
    ):
        fanin.apply(model, {"*": "ones"})
    state.assert_unchanged(model, before)


def test_a_sparse_parameter_is_refused_before_the_first_write(state):
    model = nn.ModuleDict({"a": nn.Linear(2, 2)})
    model["a"].weight = nn.Parameter(torch.eye(2).to_sparse())
    before = state.bits(model)
    with pytest.raises(
        ApplyError, match=r"^Cannot write 'a.weight' \(Linear 'a'\): it has layout torch.sparse_coo; fanin writes dense"
    ):
        fanin.apply(model, {"*": "ones"})
    state.assert_unchanged(model, before)


def test_a_tensor_changed_since_planning_is_refused(state):
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    p = fanin.plan(model, {"*": "ones"})
    model[1].weight = nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
    before = state.bits(model)
    with pytest.raises(
        ApplyError,
        match=r"^Cannot write '1.weight' \(Linear '1'\): it is now \(2, 2\) float64, but was planned as \(2, 2\) "
        r"float32; plan again",
    ):
        fanin.apply(model, p)
    state.assert_unchanged(model, before)


def test_check_destination_accepts_ordinary_tensors():
    check_destination("w", "Linear 'x'", torch.empty(3, 4).t(), (4, 3), "float32")
    check_destination("w", "Linear 'x'", torch.empty(10, 8)[::2, 1::2], (5, 4), "float32")


def test_a_plan_applied_after_the_model_gained_shared_memory_is_refused(state):
    model = Shared(overlap=False)
    p = fanin.plan(model, {"*": "zeros"})
    model.p2 = nn.Parameter(model.p1[:2])
    before = state.bits(model)
    with pytest.raises(RuleError, match=r"^'p1' and 'p2' are different tensors that share memory"):
        fanin.apply(model, p)
    state.assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("rules", "dtype", "message"),
    [
        ({"*": "constant(val=1e5)"}, torch.float16, "value cannot be converted to type c10::Half without overflow"),
        (
            {"*": "normal(std=1e38)"},
            torch.float32,
            "its values reach 1e+39, beyond the largest finite float32 (3.403e+38)",
        ),
        (
            {"*": "uniform(a=-1e300, b=1.0)"},
            torch.float32,
            "its values reach 1e+300, beyond the largest finite float32 (3.403e+38)",
        ),
        (
            {"weight": "orthogonal(gain=1e39)", "bias": "zeros"},
            torch.bfloat16,
            "its values reach 1e+39, beyond the largest finite bfloat16 (3.39e+38)",
        ),
        (
            {"*": "keras.random_normal(stddev=1e4)"},
            torch.float16,
            "its values reach 1e+05, beyond the largest finite float16 (6.55e+04)",
        ),
    ],
)
def test_values_beyond_the_dtype_range_are_refused(rules, dtype, message, state):
    model = nn.Linear(4, 4).to(dtype)
    before = state.bits(model)
    with pytest.raises(RuleError) as info:
        fanin.apply(model, rules)
    assert str(info.value).endswith(message + (", so the tensor would hold infinities" if "reach" in message else ""))
    state.assert_unchanged(model, before)
    fanin.plan(nn.Linear(4, 4).double(), rules)  # float64 holds them
