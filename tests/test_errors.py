import pytest

from fanin.errors import (
    SchemeArgumentError,
    SchemeSpecError,
    UnknownFrameworkError,
    UnknownSchemeError,
    describe_choice,
)


def test_describe_choice_suggests_close_match_and_lists_sorted():
    msg = describe_choice("layout", "torc", ["torch", "keras", "jax"])
    assert msg == "Unknown layout 'torc'. Did you mean 'torch'? Accepted: 'jax', 'keras', 'torch'."


def test_describe_choice_without_close_match():
    assert describe_choice("mode", "xyz", ["fan_in"]) == "Unknown mode 'xyz'. Accepted: 'fan_in'."


def test_describe_choice_truncates_long_lists():
    msg = describe_choice("thing", 1, [f"n{i:03d}" for i in range(70)], show=3)
    assert msg.endswith("'n000', 'n001', 'n002', ... (67 more).")


@pytest.mark.parametrize("cls", [SchemeArgumentError, SchemeSpecError, UnknownFrameworkError, UnknownSchemeError])
def test_errors_are_value_errors(cls):
    assert issubclass(cls, ValueError)
