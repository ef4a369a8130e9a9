"""fanin.formulas.fans: fans by layout, checked against values computed by hand for each layer."""

import pytest

from fanin.formulas.fans import LAYOUTS, MODES, Fans, compute_fans, kernel_shape_from_torch


def fans(shape, layout="torch", **kw):
    f = compute_fans(shape, layout, **kw)
    return f.fan_in, f.fan_out, f.receptive_field


# ---------------------------------------------------------------- torch layout (out, in/groups, *k)


@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        # Linear(in=20, out=10): weight (10, 20)
        ("linear", (10, 20), (20, 10, 1)),
        # Conv1d(4 -> 6, k=5): weight (6, 4, 5); rf 5
        ("conv1d", (6, 4, 5), (4 * 5, 6 * 5, 5)),
        # Conv2d(3 -> 8, k=(5, 7)): weight (8, 3, 5, 7); rf 35
        ("conv2d", (8, 3, 5, 7), (105, 280, 35)),
        # Conv3d(2 -> 4, k=3): weight (4, 2, 3, 3, 3); rf 27
        ("conv3d", (4, 2, 3, 3, 3), (54, 108, 27)),
        # ConvTranspose2d(4 -> 6, (3, 5), groups=2): weight (in=4, out/g=3, 3, 5): torch's fan_in
        # counts the output channels of one group
        ("conv_transpose2d", (4, 3, 3, 5), (45, 60, 15)),
        # Conv2d(8 -> 12, k=3, groups=4): weight (12, 2, 3, 3): fan_in per group
        ("grouped_conv2d", (12, 2, 3, 3), (18, 108, 9)),
        # a zero-size input axis gives fan 0, no error (as torch)
        ("empty", (8, 0, 5), (0, 40, 5)),
    ],
)
def test_torch_layout_fans(layer, shape, expected):
    assert fans(shape) == expected


def test_torch_fans_are_ints():
    f = compute_fans((8, 3, 5, 7))
    assert type(f.fan_in) is int and type(f.fan_out) is int
    assert f == Fans(105, 280, 35, "torch")


def test_grouped_conv_override_divides_fan_out():
    # Conv2d(8 -> 12, k=3, groups=4): each input unit feeds 12/4 = 3 outputs over 9 taps.
    assert fans((12, 2, 3, 3), groups=4) == (18, 27, 9)
    # ConvTranspose2d(4 -> 6, (3, 5), groups=2): weight (4, 3, 3, 5); the stored output axis (4)
    # holds the two groups: fan_out = (4 / 2) * 15.
    assert fans((4, 3, 3, 5), groups=2) == (45, 30, 15)


def test_fused_override_gives_fan_of_one_block():
    # A stacked q/k/v in-projection (3E, E), E = 8: each block is an (E, E) matrix.
    assert fans((24, 8), fused=3) == (8, 8, 1)
    # fused and groups combine: out axis 24 split in 3 * 2 = 6 blocks
    assert fans((24, 8), fused=3, groups=2) == (8, 4, 1)
    assert type(compute_fans((24, 8), fused=3).fan_out) is int


def test_torch_explicit_axes():
    # A (heads=2, in=3, out=4) weight read with in_axis=1, out_axis=2 and heads as a batch axis.
    assert fans((2, 3, 4), in_axis=1, out_axis=2, batch_axis=0) == (3, 4, 1)
    # Without the batch axis the heads axis is the receptive field.
    assert fans((2, 3, 4), in_axis=1, out_axis=2) == (6, 8, 2)
    assert fans((2, 3, 4, 5), in_axis=[1, 2], out_axis=-1) == (24, 10, 2)


# ---------------------------------------------------------------- keras layout (*k, in, out)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((3, 3, 16, 32), (144, 288, 9)),  # Conv2D(32, 3) on 16 channels
        ((20, 10), (20, 10, 1)),  # Dense(10) on 20 inputs: kernel (in, out)
        ((5, 4, 6), (20, 30, 5)),  # Conv1D(6, 5) on 4 channels
        ((3, 3, 3, 2, 4), (54, 108, 27)),  # Conv3D(4, 3) on 2 channels
        ((3, 5, 8, 4), (120, 60, 15)),  # Conv2DTranspose(8, (3, 5)) on 4 channels: (*k, filters, in)
        ((7,), (7, 7, 1)),
        ((), (1, 1, 1)),
        ((5, 0), (5, 0, 1)),
    ],
)
def test_keras_layout_fans(shape, expected):
    assert fans(shape, "keras") == expected


def test_keras_axes_used_only_when_both_given():
    # keras' own test_compute_fans_with_axes
    assert fans((512, 8, 64), "keras", in_axis=[0], out_axis=[1, 2]) == (512, 512, 1)
    assert fans((512, 8, 64), "keras", in_axis=[0, 1], out_axis=[2]) == (4096, 64, 1)
    # only one of them: ignored, the receptive-field rule applies (rf = 512)
    assert fans((512, 8, 64), "keras", in_axis=[0]) == (8 * 512, 64 * 512, 512)


def test_keras_grouped_and_fused():
    # Keras Conv2D(12, 3, groups=4) on 8 channels: kernel (3, 3, 2, 12)
    assert fans((3, 3, 2, 12), "keras", groups=4) == (18, 27, 9)
    assert fans((8, 24), "keras", fused=3) == (8, 8, 1)


def test_torch_weight_as_keras_kernel_matches_keras_layer():
    # The equivalent Keras kernel of a torch weight gets the fans Keras computes for that layer.
    assert kernel_shape_from_torch((8, 3, 5, 7)) == (5, 7, 3, 8)
    assert fans(kernel_shape_from_torch((8, 3, 5, 7)), "keras") == (105, 280, 35)
    # ConvTranspose2d(4 -> 8, (3, 5)): torch (4, 8, 3, 5) -> Keras Conv2DTranspose kernel (3, 5, 8, 4)
    assert kernel_shape_from_torch((4, 8, 3, 5)) == (3, 5, 8, 4)
    assert fans((3, 5, 8, 4), "keras")[:2] == fans((4, 8, 3, 5))[:2] == (120, 60)
    assert kernel_shape_from_torch((10, 20)) == (20, 10)
    assert kernel_shape_from_torch((7,)) == (7,)
    assert kernel_shape_from_torch(()) == ()


# ---------------------------------------------------------------- jax layout, float fans


def test_jax_layout_fans_are_floats():
    f = compute_fans((3, 3, 16, 32), "jax")
    assert (f.fan_in, f.fan_out, f.receptive_field) == (144.0, 288.0, 9.0)
    assert type(f.fan_in) is float


def test_jax_multi_and_batch_axes():
    # jax nn_test testVarianceScalingMultiAxis / BatchAxis shapes
    assert fans((2, 3, 4, 5), "jax", in_axis=(0, 1), out_axis=(-2, -1)) == (6.0, 20.0, 1.0)
    assert fans((2, 3, 4, 5), "jax", in_axis=0, out_axis=(2, 3), batch_axis=1) == (2.0, 20.0, 1.0)
    assert fans((2, 3, 4, 5), "jax", in_axis=0, out_axis=3) == (2 * 12.0, 5 * 12.0, 12.0)


def test_jax_flax_embed_float_rounding():
    # Flax Embed(11, 100): in_axis=-2 and out_axis=0 name the same axis; rf = 1100/11/11 in floats.
    rf = 1100 / 11.0 / 11.0
    assert fans((11, 100), "jax", in_axis=-2, out_axis=0) == (11.0 * rf, 11.0 * rf, rf)
    assert 11.0 * rf == 100.00000000000001


def test_jax_zero_size_axis_gives_zero_fan():
    assert fans((0, 4), "jax") == (0.0, 4.0, 1.0)
    assert fans((3, 0, 4), "jax") == (0.0, 12.0, 3.0)


def test_jax_fused_keeps_float():
    assert fans((8, 24), "jax", fused=3) == (8.0, 8.0, 1.0)


# ---------------------------------------------------------------- Fans.select


@pytest.mark.parametrize(("mode", "expected"), [("fan_in", 4), ("fan_out", 9), ("fan_avg", 6.5), ("fan_geo_avg", 6.0)])
def test_select(mode, expected):
    assert Fans(4, 9, 1, "keras").select(mode) == expected


def test_modes_and_layouts_listed():
    assert set(MODES) == {"fan_in", "fan_out", "fan_avg", "fan_geo_avg"}
    assert LAYOUTS == ("jax", "keras", "torch")


# ---------------------------------------------------------------- errors


def test_select_unknown_mode():
    with pytest.raises(ValueError, match=r"Unknown fan mode 'fan_inn'\. Did you mean 'fan_in'"):
        Fans(1, 1, 1, "torch").select("fan_inn")


def test_unknown_layout():
    with pytest.raises(
        ValueError, match=r"Unknown layout 'kears'\. Did you mean 'keras'\? Accepted: 'jax', 'keras', 'torch'\."
    ):
        compute_fans((2, 3), "kears")


def test_torch_needs_two_dims():
    msg = "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    for shape in [(), (5,)]:
        with pytest.raises(ValueError, match=msg):
            compute_fans(shape)


@pytest.mark.parametrize("in_axis", [None, -2])
def test_jax_default_in_axis_needs_two_dims(in_axis):
    msg = (
        r"Can't compute input and output sizes of a 1-dimensional weights tensor with default in_axis\. "
        r"Must be at least 2D or specify in_axis explicitly\."
    )
    with pytest.raises(ValueError, match=msg):
        compute_fans((5,), "jax", in_axis=in_axis)


def test_jax_one_dim_with_explicit_in_axis():
    # in and out are the same axis: rf = 5/5/5, fan = 5 * 0.2
    assert fans((5,), "jax", in_axis=0) == (1.0, 1.0, 0.2)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"groups": 0}, "groups must be a positive integer, got groups=0"),
        ({"groups": True}, "groups must be a positive integer, got groups=True"),
        ({"fused": 1.5}, "fused must be a positive integer, got fused=1.5"),
        ({"fused": 5}, r"The output axis of shape=\(24, 8\) \(size 24\) is not divisible by groups·fused = 1·5 = 5"),
        ({"in_axis": 2}, r"in_axis must name axes of a 2-dim shape \(-2\.\.1\), got in_axis=2"),
        ({"out_axis": [0, True]}, r"out_axis must name axes of a 2-dim shape \(-2\.\.1\), got out_axis=\[0, True\]"),
        ({"batch_axis": -3}, r"batch_axis must name axes of a 2-dim shape \(-2\.\.1\), got batch_axis=-3"),
    ],
)
def test_argument_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        compute_fans((24, 8), **kw)


@pytest.mark.parametrize("shape", [5, (3, -1), (3, 2.0), (True, 3), "ab"])
def test_shape_errors(shape):
    with pytest.raises(TypeError, match=r"shape must be a sequence of non-negative ints, got shape="):
        compute_fans(shape)


def test_keras_axis_errors():
    with pytest.raises(ValueError, match=r"in_axis must name axes of a 3-dim shape \(-3\.\.2\), got in_axis=\[3\]"):
        compute_fans((2, 3, 4), "keras", in_axis=[3], out_axis=[0])


def test_shape_accepts_torch_size_and_numpy_ints():
    import numpy as np
    import torch

    assert fans(torch.Size([8, 3, 5, 7])) == (105, 280, 35)
    assert fans((np.int64(10), np.int32(20))) == (20, 10, 1)
