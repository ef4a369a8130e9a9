"""fanin.frameworks.record: the Framework record, checked against hand-computed fans and matrices
and against what is registered (every scheme's framework, prefix, element-locality, orthogonal set)."""

import math

import pytest
import torch

from fanin.frameworks import FRAMEWORKS, get_framework
from fanin.frameworks.layers import LayerDefaults
from fanin.frameworks.record import ELEMENTWISE, Framework
from fanin.schemes.registry import list_schemes, lookup

BY_NAME = {f.name: f for f in FRAMEWORKS}


# --- fans, kernels, matrices, by hand --------------------------------------------------------------


def test_fans_of_a_torch_conv_weight_in_each_framework():
    # Conv2d(3, 8, 5): torch (out, in, kh, kw) = (8, 3, 5, 5); receptive field 25.
    shape = (8, 3, 5, 5)
    torch_fans = BY_NAME["torch"].fans(shape)
    assert (torch_fans.fan_in, torch_fans.fan_out, torch_fans.layout) == (75, 200, "torch")
    for name in ("keras", "tf1"):  # the kernel (5, 5, 3, 8): fan_in 25*3, fan_out 25*8
        fans = BY_NAME[name].fans(shape)
        assert (fans.fan_in, fans.fan_out, fans.layout) == (75, 200, "keras")
    jax = BY_NAME["jax"].fans(shape)
    assert (jax.fan_in, jax.fan_out, jax.layout) == (75.0, 200.0, "jax")


def test_fans_read_the_scheme_arguments():
    # A native Keras kernel with explicit axes: (512, 8, 64), in [0], out [1, 2] -> 512, 512.
    keras = BY_NAME["keras"].fans((512, 8, 64), {"layout": "keras", "input_axes": [0], "output_axes": [1, 2]})
    assert (keras.fan_in, keras.fan_out, keras.receptive_field) == (512, 512, 1)
    # Keras uses explicit axes only when both are given (keras.initializers.compute_fans).
    one = BY_NAME["keras"].fans((512, 8, 64), {"layout": "keras", "input_axes": [0]})
    assert (one.fan_in, one.fan_out) == (8 * 512, 64 * 512)
    # JAX: a (3, 4, 5) native kernel with in_axis 0, out_axis -1 -> fan_in 3*4, fan_out 5*4.
    jax = BY_NAME["jax"].fans((3, 4, 5), {"layout": "jax", "in_axis": 0, "out_axis": -1})
    assert (jax.fan_in, jax.fan_out) == (12.0, 20.0)


def test_fans_raise_what_the_rule_raises():
    with pytest.raises(ValueError, match="Fan in and fan out can not be computed for tensor with fewer than 2 dim"):
        BY_NAME["torch"].fans((4,))
    with pytest.raises(ValueError, match="Can't compute input and output sizes of a 1-dimensional weights tensor"):
        BY_NAME["jax"].fans((4,))
    with pytest.raises(ValueError, match=r"in_axis must name axes of a 2-dim shape \(-2..1\), got in_axis=5"):
        BY_NAME["jax"].fans((4, 3), {"in_axis": 5})


def test_kernel_shape():
    assert BY_NAME["torch"].kernel_shape((8, 3, 5, 7)) == (8, 3, 5, 7)
    for name in ("keras", "tf1", "jax"):
        f = BY_NAME[name]
        assert f.kernel_shape((8, 3, 5, 7)) == (5, 7, 3, 8)
        assert f.kernel_shape((5, 7, 3, 8), layout=f.layout) == (5, 7, 3, 8)
        assert f.kernel_shape((6,)) == (6,)


def test_orthogonal_flattening():
    assert BY_NAME["torch"].orthogonal_shape((8, 3, 5, 5)) == (8, 75)
    for name in ("keras", "tf1", "jax"):
        assert BY_NAME[name].orthogonal_shape((5, 5, 3, 8)) == (75, 8)


@pytest.mark.parametrize(
    "scheme, shape, arguments, matrix",
    [
        ("orthogonal", (8, 3, 5, 5), {}, (8, 75)),
        ("lsuv", (4, 6), {}, (4, 6)),
        ("keras.orthogonal", (8, 3, 5, 5), {"layout": "torch"}, (75, 8)),
        ("keras.orthogonal", (5, 5, 3, 8), {"layout": "keras"}, (75, 8)),
        ("tf1.orthogonal_initializer", (4, 6), {}, (6, 4)),  # no layout argument: a torch weight
        ("jax.orthogonal", (4, 6), {"layout": "jax"}, (4, 6)),
        ("jax.delta_orthogonal", (4, 4, 3), {}, None),  # structured, not gain·Q of the flattening
        ("tf1.convolutional_delta_orthogonal", (4, 4, 3), {}, None),
        ("fanin.gatewise_orthogonal", (8, 4), {}, None),
        ("keras.zeros", (4, 6), {}, None),
    ],
)
def test_orthogonal_matrix(scheme, shape, arguments, matrix):
    framework = get_framework(lookup(scheme).framework)
    assert framework.orthogonal_matrix(scheme, shape, arguments) == matrix


def test_the_orthogonal_matrix_is_the_one_drawn():
    # W^T W or W W^T is gain^2 I for the (rows, cols) the record names, as the scheme draws it.
    import fanin

    for spec, shape in (
        ("orthogonal(gain=2.0)", (6, 2, 2)),
        ("keras.orthogonal(gain=2.0)", (6, 2, 2)),
        ("tf1.orthogonal_initializer(gain=2.0)", (3, 8)),
        ("jax.orthogonal(scale=2.0)", (8, 3)),
    ):
        scheme = fanin.get(spec)
        w = scheme(torch.empty(shape, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
        rows, cols = get_framework(scheme.framework).orthogonal_matrix(scheme.name, shape, scheme.arguments)
        if scheme.framework == "torch":
            m = w.reshape(rows, cols)
        else:  # the kernel of a torch weight (out, in, *k) is (*k, in, out)
            m = w.permute(*range(2, w.dim()), 1, 0).reshape(rows, cols)
        gram = m @ m.T if rows <= cols else m.T @ m
        torch.testing.assert_close(gram, 4.0 * torch.eye(min(rows, cols), dtype=torch.float64))


# --- what the records say about the registry ------------------------------------------------------


def test_every_scheme_belongs_to_a_record_and_carries_its_prefix():
    for name in list_schemes():
        entry = lookup(name)
        framework = get_framework(entry.framework)
        assert framework.name == entry.framework
        if framework.prefix:
            assert name.startswith(framework.prefix), name
        else:
            assert "." not in name, name


def test_element_local_is_the_records_families():
    for name in list_schemes():
        entry = lookup(name)
        assert entry.element_local is (entry.family in get_framework(entry.framework).element_local), name
    assert BY_NAME["torch"].element_local == ELEMENTWISE | {"constant"}
    assert BY_NAME["fanin"].element_local == frozenset()


def test_the_orthogonal_sets_name_registered_orthogonal_schemes():
    for framework in FRAMEWORKS:
        for name in framework.orthogonal:
            assert (lookup(name).framework, lookup(name).family) == (framework.name, "orthogonal")


def test_presets_and_layer_defaults():
    assert {f.name: f.preset for f in FRAMEWORKS} == {
        "torch": "torch",
        "keras": "keras",
        "tf1": "tf1",
        "jax": "flax",
        "fanin": None,
    }
    assert all(isinstance(f.layer_defaults, LayerDefaults) for f in FRAMEWORKS if f.preset is not None)


# --- bad records ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layout": "tf"}, r"framework 'x': layout='tf' is not one of \('jax', 'keras', 'torch'\)"),
        ({"prefix": "x"}, r"framework 'x': a scheme-name prefix ends with '\.', got prefix='x'"),
        ({"element_local": frozenset({"gauss"})}, r"framework 'x': element_local names unknown families \['gauss'\]"),
        (
            {"orthogonal": frozenset({"keras.orthogonal", "x.q"})},
            r"framework 'x': orthogonal names schemes of other frameworks \['keras.orthogonal'\]",
        ),
        ({"preset": "x"}, "framework 'x': a preset needs layer defaults, and layer defaults a preset"),
    ],
)
def test_a_bad_record_is_refused(kwargs, message):
    arguments = {"name": "x", "title": "X", "prefix": "x.", "layout": "torch", **kwargs}
    with pytest.raises(ValueError, match=message):
        Framework(**arguments)


def test_register_refuses_a_name_without_the_prefix():
    with pytest.raises(ValueError, match=r"the name of a keras scheme starts with 'keras\.', got name='glorot'"):
        BY_NAME["keras"].register("glorot", family="uniform")
    with pytest.raises(ValueError, match=r"the name of a torch scheme has no prefix \(no '\.'\), got name='keras.x'"):
        BY_NAME["torch"].register("keras.x", family="uniform")


def test_records_are_frozen_and_compare_by_value():
    with pytest.raises(AttributeError):
        BY_NAME["torch"].layout = "keras"  # type: ignore[misc]
    assert math.isclose(BY_NAME["jax"].fans((11, 100), {"out_axis": 0, "layout": "jax"}).fan_in, 100.0)
