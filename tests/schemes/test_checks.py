"""The shared checks: finite arguments for every scheme, one wording for each domain constraint."""

import math

import pytest
import torch

import fanin
from fanin.errors import SchemeArgumentError
from fanin.schemes.checks import (
    MAX_ARGUMENT_DEPTH,
    check_arguments,
    check_int,
    check_number,
)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"std": math.inf}, "s: std must be a finite number, got std=inf"),
        ({"values": [0.0, [1.0, math.nan]]}, "s: values[1][1] must be a finite number, got values[1][1]=nan"),
        ({"value": {"a": -math.inf}}, "s: value['a'] must be a finite number, got value['a']=-inf"),
        ({"std": 10**400}, "s: std must be a finite number, got std=" + str(10**400)[:18] + "..." + str(10**400)[-19:]),
    ],
)
def test_check_arguments(arguments, message):
    with pytest.raises(SchemeArgumentError) as info:
        check_arguments("s", arguments)
    assert str(info.value) == message


def test_check_arguments_accepts_finite_and_other_values():
    check_arguments("s", {"a": 1, "b": -2.5, "c": [1, (2.0, {"k": 3})], "mode": "fan_in", "seed": None, "flag": True})


def test_check_arguments_bounds_nesting_without_recursion():
    deep: list = [1.0]
    for _ in range(100_000):  # far beyond Python's recursion limit
        deep = [deep]
    with pytest.raises(
        SchemeArgumentError,
        match=rf"^s: v nests lists/tuples/dicts more than {MAX_ARGUMENT_DEPTH} levels deep, got "
        r"v=\[\[\[\[\.\.\.\]\]\]\]$",
    ):
        check_arguments("s", {"v": deep})


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({}, "1", "s: x must be a finite number, got x='1'"),
        ({}, True, "s: x must be a finite number, got x=True"),
        ({"minimum": 0}, -1, "s: x must be >= 0, got x=-1"),
        ({"above": 0}, 0.0, "s: x must be > 0, got x=0.0"),
        ({"minimum": 0, "below": 1}, 1.0, "s: x must be a finite number >= 0 and < 1, got x=1.0"),
        ({"minimum": 0}, math.nan, "s: x must be a finite number, got x=nan"),
    ],
)
def test_check_number(kwargs, value, message):
    with pytest.raises(SchemeArgumentError) as info:
        check_number("s", "x", value, **kwargs)
    assert str(info.value) == message


def test_check_int():
    check_int("s", "n", 3, minimum=1)
    for value, message in (
        (1.0, "s: n must be an int >= 1, got n=1.0"),
        (False, "s: n must be an int >= 1, got n=False"),
    ):
        with pytest.raises(SchemeArgumentError) as info:
            check_int("s", "n", value, minimum=1)
        assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("normal(std=-1.0)", "normal: std must be >= 0, got std=-1.0"),
        ("trunc_normal(std=0.0)", "trunc_normal: std must be > 0, got std=0.0"),
        ("sparse(sparsity=1.0)", "sparse: sparsity must be a finite number >= 0 and < 1, got sparsity=1.0"),
        ("sparse(sparsity=-0.1)", "sparse: sparsity must be a finite number >= 0 and < 1, got sparsity=-0.1"),
        ("xavier_uniform(gain=-1.0)", "xavier_uniform: gain must be >= 0, got gain=-1.0"),
        ("xavier_normal(gain=-0.5)", "xavier_normal: gain must be >= 0, got gain=-0.5"),
        ("dirac(groups=0)", "dirac: groups must be an int >= 1, got groups=0"),
        (
            "tf1.uniform_unit_scaling_initializer(factor=-1.0)",
            "tf1.uniform_unit_scaling_initializer: factor must be >= 0, got factor=-1.0",
        ),
        ("jax.variance_scaling(0.0, 'fan_in', 'normal')", "jax.variance_scaling: scale must be > 0, got scale=0.0"),
        ("jax.variance_scaling(-2.0, 'fan_in', 'uniform')", "jax.variance_scaling: scale must be > 0, got scale=-2.0"),
        (
            "keras.random_normal(seed=18446744073709551616)",
            "keras: seed must be None or an int in [0, 2**64), got seed=18446744073709551616",
        ),
        (
            "normal(std=" + "9" * 400 + ")",
            "normal: std must be a finite number, got std=" + "9" * 18 + "..." + "9" * 19,
        ),
    ],
)
def test_out_of_domain_arguments_are_refused_when_built(spec, message):
    with pytest.raises(SchemeArgumentError) as info:
        fanin.get(spec)
    assert str(info.value) == message


def test_in_domain_edges_are_accepted():
    for spec in (
        "normal(std=0.0)",
        "sparse(sparsity=0.0)",
        "xavier_uniform(gain=0.0)",
        "orthogonal(gain=-1.0)",
        "uniform(a=1.0, b=1.0)",
        "keras.random_normal(seed=18446744073709551615)",
    ):
        fanin.get(spec)


def test_direct_calls_outside_torch_validate_like_the_scheme():
    tensor = torch.full((4, 3), 7.0)
    with pytest.raises(SchemeArgumentError, match=r"^keras\.random_normal: stddev must be >= 0, got stddev=-1\.0$"):
        fanin.keras.random_normal_(tensor, stddev=-1.0)
    with pytest.raises(SchemeArgumentError, match=r"^jax\.orthogonal: scale must be a finite number, got scale=nan$"):
        fanin.jax.orthogonal_(tensor, math.nan)  # positional arguments are bound as the signature binds them
    assert torch.equal(tensor, torch.full((4, 3), 7.0))
