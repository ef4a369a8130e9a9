"""fanin.frameworks (the package): the one list of frameworks, names and aliases, the public faces."""

import pytest

import fanin
import fanin.composite
import fanin.frameworks
import fanin.frameworks.fanin
import fanin.frameworks.jax
import fanin.frameworks.keras
import fanin.frameworks.tf1
import fanin.frameworks.torch
import fanin.init
import fanin.jax
import fanin.keras
import fanin.tf1
from fanin.errors import UnknownFrameworkError
from fanin.frameworks import FRAMEWORKS, framework_names, get_framework
from fanin.schemes.registry import list_schemes, lookup


def test_one_list_of_frameworks():
    assert [f.name for f in FRAMEWORKS] == ["torch", "keras", "tf1", "jax", "fanin"]
    assert framework_names() == ["fanin", "flax", "jax", "keras", "tf1", "torch"]
    assert framework_names(with_layer_defaults=True) == ["flax", "jax", "keras", "tf1", "torch"]
    # the registry's schemes come from exactly these frameworks
    assert {lookup(n).framework for n in list_schemes()} == {f.name for f in FRAMEWORKS}


def test_names_and_aliases_find_the_record():
    assert get_framework("flax") is get_framework("jax") is fanin.frameworks.jax.JAX
    assert get_framework("torch") is fanin.frameworks.torch.TORCH
    assert list_schemes("flax") == list_schemes("jax")


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        (
            "pytorch",
            {},
            "Unknown framework 'pytorch'. Did you mean 'torch'? Accepted: 'fanin', 'flax', 'jax', "
            "'keras', 'tf1', 'torch'.",
        ),
        (
            "fanin",
            {"with_layer_defaults": True},
            "Unknown framework 'fanin'. Accepted: 'flax', 'jax', 'keras', 'tf1', 'torch'.",
        ),
        (3, {}, "Unknown framework 3."),
    ],
)
def test_an_unknown_framework_names_the_accepted_ones(name, kwargs, message):
    with pytest.raises(UnknownFrameworkError) as err:
        get_framework(name, **kwargs)
    assert str(err.value).startswith(message)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    "face, module",
    [
        (fanin.init, fanin.frameworks.torch),
        (fanin.keras, fanin.frameworks.keras),
        (fanin.tf1, fanin.frameworks.tf1),
        (fanin.jax, fanin.frameworks.jax),
        (fanin.composite, fanin.frameworks.fanin),
    ],
)
def test_the_public_faces_re_export_the_framework_modules(face, module):
    assert face.__all__ and all(getattr(face, name) is getattr(module, name) for name in face.__all__)
    assert all(name in module.__all__ for name in face.__all__ if not name.startswith("_"))
