"""Spec strings: bounded in length and nesting, strict about repeats, quoting only an excerpt."""

import pytest

import fanin
from fanin.errors import SchemeSpecError
from fanin.schemes.spec import MAX_NESTING, MAX_SPEC_LENGTH, parse_call, parse_spec


def _nested(depth: int) -> str:
    return "tf1.constant_initializer(value=" + "[" * depth + "1" + "]" * depth + ")"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "normal(std=0.02, std=3.0)",
            "Cannot read scheme spec 'normal(std=0.02, std=3.0)': argument 'std' given twice",
        ),
        ("uniform(0.5, a=0.1)", "Cannot read scheme spec 'uniform(0.5, a=0.1)': argument 'a' given twice"),
        (
            "fanin.gate_constant(values={1: 2, 1: 3})",
            "Cannot read scheme spec 'fanin.gate_constant(values={1: 2, 1: 3})': dict key 1 given twice",
        ),
        (
            "fanin.gate_constant(values={[1]: 2})",
            (
                "Cannot read scheme spec 'fanin.gate_constant(values={[1]: 2})': a dict key must be a number, string, "
                "None, True/False or tuple, got [1]"
            ),
        ),
        (
            "kaiming_uniform(a=sqrt(-1))",
            "Cannot read scheme spec 'kaiming_uniform(a=sqrt(-1))': sqrt(-1) is not a real number",
        ),
        (
            _nested(MAX_NESTING + 1),
            (
                f"Cannot read scheme spec {_nested(MAX_NESTING + 1)!r}: it nests too deeply (at most {MAX_NESTING} "
                "levels "
                "of brackets, signs and sqrt)"
            ),
        ),
        ("normal\x00", "Cannot read scheme spec 'normal\\x00': source code string cannot contain null bytes"),
        (
            "1 + 2",
            (
                "Cannot read scheme spec '1 + 2': expected a scheme name such as 'kaiming_normal' or "
                "'keras.glorot_uniform(seed=1)'"
            ),
        ),
    ],
)
def test_spec_errors(spec, message):
    with pytest.raises(SchemeSpecError) as info:
        fanin.get(spec)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "spec",
    [
        "-" * 5000,  # a RecursionError in ast before
        "normal(std=" + "-" * 4980 + "1)",  # deep signs within the length limit
        "normal(std=" + "1+" * 4900 + "1)",  # a deep BinOp chain
        "a." * 4900 + "b",  # a long dotted name
        "normal(std=" + "(" * 3000 + "1" + ")" * 3000 + ")",
        "tf1.constant_initializer(value=[" + "1," * 500_000 + "1])",  # 1 MB: seconds and 150 MB before
        "x" * 10_000_000,  # 10 MB: a 10 MB message before
        "normal(std=" + "9" * 5000 + ")",  # beyond Python's int-parsing digit limit
    ],
    ids=["dashes", "signs", "binop-chain", "dotted", "parentheses", "1MB-list", "10MB-name", "5000-digits"],
)
def test_hostile_specs_get_a_short_spec_error(spec):
    with pytest.raises(SchemeSpecError) as info:
        fanin.get(spec)
    message = str(info.value)
    assert message.startswith("Cannot read scheme spec '")
    assert len(message) < 400, message[:500]
    if len(spec) > MAX_SPEC_LENGTH:
        assert f"({len(spec)} characters): it is at most {MAX_SPEC_LENGTH} characters, got {len(spec)}" in message


def test_nesting_up_to_the_limit_is_read():
    _, args = parse_spec(_nested(MAX_NESTING - 1))
    value = args["value"]
    for _ in range(MAX_NESTING - 1):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == 1


def test_a_spec_of_the_maximum_length_is_read():
    spec = "normal(std=0.5" + " " * (MAX_SPEC_LENGTH - len("normal(std=0.5)")) + ")"
    assert len(spec) == MAX_SPEC_LENGTH
    assert parse_spec(spec) == ("normal", {"std": 0.5})


def test_non_string_spec():
    with pytest.raises(SchemeSpecError, match=r"^A scheme spec is a str, got 5 \(int\)$"):
        parse_spec(5)  # type: ignore[arg-type]


def test_parse_call_names_what_it_reads():
    assert parse_call("gpt2(n_layer=24)", "preset")[:3] == ("gpt2", [], {"n_layer": 24})
    with pytest.raises(
        SchemeSpecError, match=r"^Cannot read preset 'gpt2\(std=1, std=2\)': argument 'std' given twice$"
    ):
        parse_call("gpt2(std=1, std=2)", "preset")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "normal", "args": {1: 2}}, "A scheme config's 'args' has argument names as keys, got key 1"),
        ({"name": "normal", "args": [1]}, "A scheme config's 'args' must be a dict, got args=[1]"),
        (
            {"name": "normal", "colour": 1},
            "A scheme config has the keys 'name' and optionally 'args'; got keys ['colour', 'name']",
        ),
        ({"name": ["x"]}, "Unknown scheme ['x']. Accepted: "),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(fanin.errors.FaninError) as info:
        fanin.get(config)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)
