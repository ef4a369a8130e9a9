"""The audit's candidates: framework knowledge from the framework records, draws from the draw model."""

import torch

from fanin.auditing.candidates import (
    DEFAULT_NATIVE,
    FRAMEWORK_ORDER,
    NOTES,
    framework_rank,
    native_of,
    pretty_spec,
    spec_framework,
)
from fanin.frameworks import FRAMEWORKS, get_framework
from fanin.schemes import list_schemes, lookup


def test_every_framework_default_kernel_is_noted_and_is_its_layer_default():
    for f in FRAMEWORKS:
        if f.default_kernel is None:
            continue
        assert NOTES[f.default_kernel] == f.default_kernel_note
        assert spec_framework(f.default_kernel) == f.name
        assert f.layer_defaults is not None
        entries = f.layer_defaults(torch.nn.Linear(8, 4))
        assert entries is not None
        (_, weight), *_ = entries
        assert pretty_spec(str(weight)) == f.default_kernel, f.name


def test_name_orders_list_every_framework_native_first():
    names = sorted(f.name for f in FRAMEWORKS)
    assert FRAMEWORK_ORDER
    for native, order in FRAMEWORK_ORDER.items():
        assert order[0] == native
        assert sorted(order) == names
        assert [framework_rank(native)(n) for n in order] == list(range(len(order)))
    assert framework_rank(native_of("keras"))("torch") > 0
    # a framework that orders no names ranks them as the default native does
    assert [framework_rank("fanin")(n) for n in FRAMEWORK_ORDER[DEFAULT_NATIVE]] == list(range(len(names)))


def test_the_native_framework_of_a_layout_is_its_namesake():
    for layout in ("keras", "torch"):
        assert get_framework(native_of(layout)).layout == layout
    assert DEFAULT_NATIVE == native_of("torch")


def test_spec_framework_is_the_registered_framework():
    for name in list_schemes():
        assert spec_framework(f"{name}(x=1.5)") == lookup(name).framework, name
