"""Selectors: every selector, composition, roles, and their error messages."""

import pytest
import torch
from torch import nn

import fanin
from fanin.rules import Rule
from fanin.rules.selectors import (
    MAX_PATTERN_LENGTH,
    All,
    Any,
    Everything,
    Kind,
    Module,
    Name,
    Ndim,
    Not,
    Role,
    SelectorError,
    Target,
    role_of,
)


def target(module, local, name=None, kind="parameter"):
    tensor = (module._parameters if kind == "parameter" else module._buffers)[local]
    return Target.of(module, name or local, local, kind, tensor)


LIN = nn.Linear(3, 2)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*.weight", "weight", True),  # top level: the leading "*." may match nothing
        ("*.weight", "encoder.0.weight", True),  # "*" crosses dots
        ("*.weight", "encoder.0.bias", False),
        ("encoder.*", "encoder.0.weight", True),
        ("encoder.*", "decoder.0.weight", False),
        ("h.?.attn.*", "h.1.attn.c_proj.weight", True),
        ("h.?.attn.*", "h.10.attn.c_proj.weight", False),
        ("*.Weight", "x.weight", False),  # case-sensitive
    ],
)
def test_name_glob(pattern, name, expected):
    assert Name(pattern).matches_name(name) is expected


def test_name_regex_is_fullmatch():
    sel = Name(r"h\.\d+\.attn\..*", regex=True)
    assert sel.matches_name("h.10.attn.c_proj.weight")
    assert not sel.matches_name("x.h.10.attn.c_proj.weight")  # fullmatch, not search
    assert str(sel) == r"name~'h\\.\\d+\\.attn\\..*'"


def test_name_errors():
    with pytest.raises(SelectorError, match=r"Name needs a non-empty str pattern, got pattern=''"):
        Name("")
    with pytest.raises(SelectorError, match=r"Name got an invalid regex pattern='\(': "):
        Name("(", regex=True)


def test_module_by_class_name_and_mro():
    class MyLinear(nn.Linear):
        pass

    t = target(MyLinear(3, 2), "weight")
    assert Module(nn.Linear).matches(t)  # isinstance
    assert Module("Linear").matches(t)  # a base class's name
    assert Module("MyLinear").matches(t)
    assert Module("torch.nn.Linear").matches(t)  # public path
    assert Module("torch.nn.modules.linear.Linear").matches(t)  # defining module path
    assert not Module("Conv2d", nn.Embedding).matches(t)
    assert str(Module("Conv2d", nn.Linear)) == "module=Conv2d|Linear"


def test_module_errors():
    with pytest.raises(SelectorError, match="Module needs at least one module type or class name, got none"):
        Module()
    with pytest.raises(SelectorError, match=r"Module takes torch.nn.Module subclasses or class names, got 3 \(int\)"):
        Module(3)


@pytest.mark.parametrize(
    ("module", "local", "kind", "role"),
    [
        (nn.Linear(2, 2), "weight", "parameter", "weight"),
        (nn.Linear(2, 2), "bias", "parameter", "bias"),
        (nn.Conv2d(2, 2, 3), "weight", "parameter", "weight"),
        (nn.Embedding(4, 2), "weight", "parameter", "embedding"),
        (nn.EmbeddingBag(4, 2), "weight", "parameter", "embedding"),
        (nn.LayerNorm(2), "weight", "parameter", "norm_weight"),
        (nn.BatchNorm1d(2), "bias", "parameter", "norm_bias"),
        (nn.GroupNorm(1, 2), "weight", "parameter", "norm_weight"),
        (nn.RMSNorm(2), "weight", "parameter", "norm_weight"),
        (nn.BatchNorm1d(2), "running_mean", "buffer", "running_mean"),
        (nn.BatchNorm1d(2), "running_var", "buffer", "running_var"),
        (nn.BatchNorm1d(2), "num_batches_tracked", "buffer", "num_batches_tracked"),
        (nn.LSTM(2, 3, proj_size=2), "weight_ih_l0", "parameter", "input_weight"),
        (nn.LSTM(2, 3, proj_size=2), "weight_hh_l0", "parameter", "recurrent_weight"),
        (nn.LSTM(2, 3, proj_size=2), "weight_hr_l0", "parameter", "recurrent_weight"),
        (nn.GRUCell(2, 3), "bias_hh", "parameter", "recurrent_bias"),
        (nn.MultiheadAttention(4, 2, add_bias_kv=True), "in_proj_weight", "parameter", "weight"),
        (nn.MultiheadAttention(4, 2, add_bias_kv=True), "bias_k", "parameter", "bias"),
        (nn.PReLU(), "weight", "parameter", "weight"),
    ],
)
def test_role_of(module, local, kind, role):
    assert role_of(module, local, kind) == role
    assert Role(role).matches(target(module, local, kind=kind))


def test_role_of_custom_norm_and_plain_parameter():
    class MyNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3))
            self.cls_token = nn.Parameter(torch.zeros(1, 3))

    assert role_of(MyNorm(), "weight") == "norm_weight"
    assert role_of(MyNorm(), "cls_token") == "parameter"
    assert role_of(MyNorm(), "cache", "buffer") == "buffer"


def test_role_errors():
    with pytest.raises(SelectorError, match=r"Unknown role 'weights'. Did you mean 'weight'"):
        Role("weights")
    with pytest.raises(SelectorError, match=r"Role needs at least one role, got none. Accepted: 'bias', "):
        Role()


def test_ndim_and_kind():
    w, b = target(LIN, "weight"), target(LIN, "bias")
    assert Ndim(2).matches(w) and not Ndim(2).matches(b)
    assert Ndim(min=2).matches(w) and not Ndim(min=2).matches(b)
    assert Ndim(max=1).matches(b) and not Ndim(max=1).matches(w)
    assert Ndim(min=1, max=1).matches(b) and str(Ndim(min=1, max=3)) == "1<=ndim<=3"
    bn = nn.BatchNorm1d(2)
    assert Kind("buffer").matches(target(bn, "running_var", kind="buffer"))
    assert not Kind("buffer").matches(w)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Ndim(), "Ndim needs n, min or max, got none"),
        (lambda: Ndim(-1), r"Ndim needs non-negative ints, got n=-1"),
        (lambda: Ndim(2, min=1), r"Ndim takes n or min/max, not both; got n=2, min=1, max=None"),
        (lambda: Ndim(min=3, max=1), r"Ndim needs min <= max, got min=3, max=1"),
        (lambda: Kind("param"), r"Unknown kind 'param'. Did you mean 'parameter'\? Accepted: 'buffer', 'parameter'."),
        (lambda: All(), "All needs at least one selector"),
        (lambda: Any("x"), r"Any composes selectors, got 'x' \(str\)"),
        (lambda: Not("x"), r"Not negates a selector, got 'x' \(str\)"),
    ],
)
def test_errors(call, message):
    with pytest.raises(SelectorError, match=message):
        call()


def test_composition_truth_table():
    w, b = target(LIN, "weight", "fc.weight"), target(LIN, "bias", "fc.bias")
    sel = Module("Linear") & (Role("bias") | Ndim(2))
    assert sel.matches(w) and sel.matches(b)
    assert not (Name("*.weight") & Role("bias")).matches(w)
    assert (~Role("bias")).matches(w) and not (~Role("bias")).matches(b)
    assert Everything().matches(w)
    # & and | flatten; the text shows grouping
    assert str(Name("a") & (Name("b") | Name("c"))) == "name='a' & (name='b' | name='c')"
    assert str(~(Name("a") & Name("b"))) == "~(name='a' & name='b')"
    assert len((Name("a") & Name("b") & Name("c")).parts) == 3
    assert Name("a") & Name("b") == All(Name("a"), Name("b"))


# --- patterns from files cannot hang a plan ------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)*b", r"(x+x+)+y", r"(.*a){20}"])
def test_catastrophic_regexes_match_in_linear_time(pattern):
    # Python's backtracking re takes hours on (a+)+$ against 40 a's and a '!'; RE2 is linear
    # in the name whatever the pattern, so this returns at once (and would hang, not fail, if
    # the engine were ever switched back).
    import re2

    sel = Name(pattern, regex=True)
    assert isinstance(sel._compiled, re2._Regexp)
    assert sel.matches_name("a" * 40 + "!") is False
    model = torch.nn.ModuleDict({"a" * 40 + "x": torch.nn.Linear(2, 2)})
    plan = fanin.plan(model, [Rule(Name(pattern, regex=True), "zeros"), Rule("*", "ones")])
    assert [e.rule_index for e in plan] == [1, 1]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            r"(a)\1",
            r"Name got an invalid regex pattern='\(a\)\\\\1': invalid escape sequence: \\1 \(RE2 syntax: no "
            r"backreferences or lookaround\)",
        ),
        (r"(?=a)a", r"invalid perl operator: \(\?= \(RE2 syntax"),
        (r"(?<!a)b", r"invalid perl operator: \(\?<"),
        ("a{2000}", r"invalid repetition size: \{2000\}"),
    ],
)
def test_regex_outside_re2_syntax_is_refused(pattern, message, capfd):
    with pytest.raises(SelectorError, match=message):
        Name(pattern, regex=True)
    assert capfd.readouterr().err == ""  # RE2's own error log is switched off


def test_pattern_length_is_bounded():
    Name("x" * MAX_PATTERN_LENGTH)
    for regex in (False, True):
        with pytest.raises(
            SelectorError, match=rf"^Name patterns are at most {MAX_PATTERN_LENGTH} characters, got pattern='xxx"
        ):
            Name("x" * (MAX_PATTERN_LENGTH + 1), regex=regex)


def test_hostile_globs_stay_fast():
    # fnmatch translates each '*' to an atomic group: no backtracking blow-up
    assert not Name("*a" * 30 + "*b").matches_name("a" * 200)
    assert not Name("*" + "?*" * 100 + "b").matches_name("a" * 200)


def test_regex_selectors_pickle_and_copy():
    import copy
    import pickle

    sel = Name(r"h\.\d+", regex=True) & Role("weight")
    for clone in (pickle.loads(pickle.dumps(sel)), copy.deepcopy(sel)):
        assert clone == sel and clone.parts[0].matches_name("h.12")
