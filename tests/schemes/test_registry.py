import json
import math

import pytest
import torch

import fanin
from fanin.errors import SchemeArgumentError, SchemeSpecError, UnknownSchemeError
from fanin.schemes import FAMILIES, Scheme, get, list_schemes, lookup, parse_spec
from fanin.schemes.registry import declare_framework, register

TORCH_NAMES = [
    "constant",
    "dirac",
    "eye",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "ones",
    "orthogonal",
    "sparse",
    "trunc_normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]


def test_every_torch_init_function_is_registered():
    assert set(TORCH_NAMES) <= set(list_schemes("torch"))


def test_names_are_namespaced_by_framework():
    for name in list_schemes():
        entry = lookup(name)
        assert entry.family in FAMILIES
        if entry.framework != "torch":
            assert name.startswith(entry.framework + ".")


def test_list_schemes_unknown_framework():
    with pytest.raises(ValueError, match=r"Unknown framework 'kera'. Did you mean 'keras'\?"):
        list_schemes("kera")


def test_unknown_scheme_suggests_and_lists():
    with pytest.raises(UnknownSchemeError, match=r"Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'"):
        get("kaimin_normal")


def test_trailing_underscore_alias():
    assert get("kaiming_normal_") == get("kaiming_normal")


@pytest.mark.parametrize(
    "spec",
    [
        "kaiming_normal(mode='fan_out', nonlinearity='relu')",
        "keras.glorot_normal",
        "jax.lecun_normal",
        "tf1.truncated_normal_initializer",
        "uniform(-0.5, 0.5)",
        "trunc_normal(std=0.02)",
        "kaiming_uniform(a=sqrt(5))",
    ],
)
def test_str_and_config_round_trip(spec):
    scheme = get(spec)
    assert get(str(scheme)) == scheme
    config = json.loads(json.dumps(scheme.to_config()))
    assert get(config) == scheme
    assert get(scheme) is scheme


def test_spec_string_binds_positional_arguments_in_order():
    assert get("uniform(-1, 2)").args == {"a": -1, "b": 2}


def test_defaults_are_dropped_from_canonical_form():
    assert str(get("kaiming_normal(mode='fan_in')")) == "kaiming_normal"


def test_registered_function_converts_to_scheme():
    assert get(fanin.init.xavier_uniform_) == get("xavier_uniform")


def test_scheme_call_fills_in_place_like_torch():
    w = torch.empty(8, 4)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    out = get("kaiming_normal(mode='fan_out', nonlinearity='relu')")(w, generator=g1)
    assert out is w
    expected = torch.nn.init.kaiming_normal_(torch.empty(8, 4), mode="fan_out", nonlinearity="relu", generator=g2)
    assert torch.equal(w, expected)


def test_unknown_argument_is_rejected_at_build_time_with_hint():
    with pytest.raises(
        SchemeArgumentError, match=r"unexpected argument\(s\) mdoe='fan_out'.*Did you mean 'mdoe' -> 'mode'"
    ):
        get("kaiming_normal(mdoe='fan_out')")


def test_missing_required_argument():
    with pytest.raises(
        SchemeArgumentError, match=r"Scheme 'constant' needs argument\(s\) val, e.g. constant\(val=...\)"
    ):
        get("constant")


def test_invalid_argument_value_fails_at_build_time():
    with pytest.raises(ValueError, match="fan_avg"):
        get("kaiming_normal(mode='fan_avg')")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("kaiming_normal(", "Cannot read scheme spec 'kaiming_normal\\(':"),
        ("uniform(a=open('x'))", "found a call of open"),
        ("uniform(**{'a': 1})", "'\\*\\*' is not allowed"),
        ("uniform(1, 2, 3)", "uniform takes at most 2 positional argument\\(s\\) \\(a, b\\), got 3"),
        ("uniform(1, a=2)", "argument 'a' given twice"),
        ("1 + 2", "expected a scheme name"),
        ("uniform(a=-'x')", "a sign before 'x'"),
        ("uniform(a=x)", "found a Name expression"),
    ],
)
def test_spec_errors(spec, match):
    with pytest.raises(SchemeSpecError, match=match):
        get(spec)


def test_spec_literals():
    name, args = parse_spec("f(a=inf, b=-inf, c=nan, d=(1, [2]), e={'k': None}, f=True, g=+1.5)")
    assert name == "f"
    assert args["a"] == math.inf and args["b"] == -math.inf and math.isnan(args["c"])
    assert args["d"] == (1, [2]) and args["e"] == {"k": None} and args["f"] is True and args["g"] == 1.5


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"args": {}}, "keys 'name' and optionally 'args'; got keys \\['args'\\]"),
        ({"name": "zeros", "extra": 1}, "got keys \\['extra', 'name'\\]"),
        ({"name": "uniform", "args": [1]}, "'args' must be a dict, got args=\\[1\\]"),
    ],
)
def test_config_errors(config, match):
    with pytest.raises(SchemeSpecError, match=match):
        get(config)


def test_get_rejects_other_types():
    with pytest.raises(TypeError, match=r"got spec=3 \(int\)"):
        get(3)
    with pytest.raises(TypeError, match="got spec=<built-in function print>"):
        get(print)


def test_register_rejects_duplicates_and_unknown_family():
    with pytest.raises(ValueError, match="scheme 'zeros' is already registered"):
        register("zeros", family="constant", framework="torch")(lambda t, generator=None: t)
    with pytest.raises(ValueError, match="Unknown family 'gauss'"):
        register("x.gauss", family="gauss", framework="x")


def test_register_and_declare_know_only_the_declared_frameworks():
    with pytest.raises(
        ValueError,
        match=r"Unknown framework 'pytorch'\. Did you mean 'torch'\? Accepted: 'fanin', "
        r"'flax', 'jax', 'keras', 'tf1', 'torch'\.",
    ):
        register("x.normal", family="normal", framework="pytorch")
    with pytest.raises(ValueError, match=r"framework name 'flax' already names framework 'jax'"):
        declare_framework("flaxlike", ("flax",))
    with pytest.raises(ValueError, match=r"Unknown framework 'flaxlike'"):  # nothing half declared
        register("flaxlike.normal", family="normal", framework="flaxlike")


def test_scheme_equality_and_hash():
    a, b = get("normal(std=2.0)"), Scheme("normal", std=2.0)
    assert a == b and hash(a) == hash(b) and a != get("normal")
    assert a.arguments == {"mean": 0.0, "std": 2.0}
    assert repr(a) == "fanin.get('normal(std=2.0)')"
    assert a.family == "normal" and a.framework == "torch" and a.entry.summary


def test_a_second_import_of_the_same_definition_keeps_the_first_entry():
    # pytest's importlib mode imports a module a second time for its doctests; the registry
    # must not refuse the very same function defined again, and must keep the first entry.
    import importlib.util

    import fanin.frameworks.torch

    first = lookup("kaiming_normal")
    spec = importlib.util.spec_from_file_location("fanin_torch_again", fanin.frameworks.torch.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert lookup("kaiming_normal") is first
