"""Fans (fan_in, fan_out) of a weight shape, computed as each framework computes them.

A layout names how a framework stores a layer's weight, and so which axes are inputs and outputs:

=========  ==============================  =====================================================
layout     dense / conv weight             rule
=========  ==============================  =====================================================
torch      (out, in/groups, *kernel)       fan_in = size(1)·rf, fan_out = size(0)·rf, rf = prod(kernel);
                                           fewer than 2 dims is an error (``torch.nn.init``)
keras      (*kernel, in/groups, out)       fan_in = shape[-2]·rf, fan_out = shape[-1]·rf; a 1-D shape
                                           gives (n, n), a scalar (1, 1); explicit axes replace all
                                           of this (no receptive field), as ``keras.initializers``
jax        (*kernel, in, out)              in_axis=-2, out_axis=-1, batch_axis=(); rf = numel / in /
                                           out / batch in floats; fans are floats (``jax.nn``)
=========  ==============================  =====================================================

A transposed convolution stores (in, out/groups, *kernel) in torch and (*kernel, out, in) in Keras:
in both the rule above counts the *output* channels as fan_in, which is what those frameworks do.

Two overrides describe weights that the layout alone gets wrong:

- ``groups``: the output axis holds ``groups`` independent blocks (a grouped convolution), so each
  input unit feeds only ``out/groups`` outputs: fan_out = (out/groups)·rf.
- ``fused``: the output axis stacks ``fused`` independent matrices (a fused q/k/v projection of
  shape (3E, E) in torch): fan_out = (out/fused)·rf, the fan of one of them.

>>> compute_fans((8, 3, 5, 7))
Fans(fan_in=105, fan_out=280, receptive_field=35, layout='torch')
>>> compute_fans((3, 3, 16, 32), layout="keras")
Fans(fan_in=144, fan_out=288, receptive_field=9, layout='keras')
>>> compute_fans((768 * 3, 768), fused=3).fan_out
768
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fanin.errors import describe_choice

__all__ = ["LAYOUTS", "MODES", "Fans", "compute_fans", "kernel_shape_from_torch"]

LAYOUTS = ("jax", "keras", "torch")
MODES = ("fan_avg", "fan_geo_avg", "fan_in", "fan_out")

Axes = int | Sequence[int]


@dataclass(frozen=True)
class Fans:
    """The fans of one weight shape; ints for torch and keras, floats for jax (as jax computes them)."""

    fan_in: float
    fan_out: float
    receptive_field: float
    layout: str

    def select(self, mode: str) -> float:
        """The fan a variance-scaling mode divides by.

        Args:
            mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` ((fan_in + fan_out) / 2) or
                ``"fan_geo_avg"`` (sqrt(fan_in · fan_out), JAX's extra mode).

        Returns:
            The fan.

        Raises:
            ValueError: ``mode`` is not one of those.

        Examples:
            >>> Fans(4, 8, 1, "keras").select("fan_avg")
            6.0
        """
        if mode == "fan_in":
            return self.fan_in
        if mode == "fan_out":
            return self.fan_out
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2.0
        if mode == "fan_geo_avg":
            return math.sqrt(self.fan_in * self.fan_out)
        raise ValueError(describe_choice("fan mode", mode, MODES))


def kernel_shape_from_torch(shape: Sequence[int]) -> tuple[int, ...]:
    """The Keras/JAX kernel shape of the layer whose torch weight has ``shape``.

    (out, in, *kernel) becomes (*kernel, in, out); a transposed convolution's (in, out, *kernel)
    becomes (*kernel, out, in), which is Keras's transposed kernel. Shapes of fewer than 2 dims
    are the same in every layout.

    Args:
        shape: The shape of the torch weight.

    Returns:
        The kernel shape.

    Examples:
        >>> kernel_shape_from_torch((32, 16, 3, 5))
        (3, 5, 16, 32)
        >>> kernel_shape_from_torch((10, 20))
        (20, 10)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        return shape
    return (*shape[2:], shape[1], shape[0])


def compute_fans(
    shape: Sequence[int],
    layout: str = "torch",
    *,
    in_axis: Axes | None = None,
    out_axis: Axes | None = None,
    batch_axis: Axes = (),
    groups: int = 1,
    fused: int = 1,
) -> Fans:
    """Fans of a weight of ``shape`` stored in ``layout``.

    For ``torch`` and ``jax`` the axes not named as input, output or batch axes form the receptive
    field; for ``keras``, as in ``keras.initializers.compute_fans``, explicit axes are used only when
    both are given and then there is no receptive field.

    Args:
        shape: The weight's shape (non-negative ints).
        layout: ``"torch"``, ``"keras"`` or ``"jax"`` (see :mod:`fanin.formulas.fans`).
        in_axis: The input axis or axes (negative allowed); ``None``: the layout's.
        out_axis: The output axis or axes (negative allowed); ``None``: the layout's.
        batch_axis: Axes excluded from both fans (torch and jax).
        groups: The output axis holds this many independent blocks: fan_out = (out/groups)·rf.
        fused: The output axis stacks this many independent matrices: fan_out = (out/fused)·rf.

    Returns:
        The fans (ints for torch and keras, floats for jax).

    Raises:
        TypeError: ``shape`` is not a sequence of non-negative ints.
        ValueError: An unknown layout, a shape the rule cannot read (fewer than 2 dims for torch),
            axes out of range, ``groups`` or ``fused`` not a positive int, or an output axis not
            divisible by ``groups``·``fused``.

    Examples:
        >>> compute_fans((4, 6, 3), layout="torch", groups=2)
        Fans(fan_in=18, fan_out=6, receptive_field=3, layout='torch')
        >>> compute_fans((512, 8, 64), layout="keras", in_axis=[0], out_axis=[1, 2])
        Fans(fan_in=512, fan_out=512, receptive_field=1, layout='keras')
        >>> compute_fans((11, 100), layout="jax", in_axis=-2, out_axis=0).fan_in  # Flax Embed
        100.00000000000001
    """
    shape = _as_shape(shape)
    if layout not in LAYOUTS:
        raise ValueError(describe_choice("layout", layout, LAYOUTS))
    for name, value in (("groups", groups), ("fused", fused)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")

    if layout == "torch":
        fans = _torch_fans(shape, in_axis, out_axis, batch_axis)
        out_axes = _normalize_axes(out_axis if out_axis is not None else 0, len(shape), "out_axis")
    elif layout == "keras":
        fans = _keras_fans(shape, in_axis, out_axis)
        out_axes = _keras_out_axes(shape, in_axis, out_axis)
    else:
        fans = _jax_fans(shape, in_axis, out_axis, batch_axis)
        out_axes = _normalize_axes(out_axis if out_axis is not None else -1, len(shape), "out_axis")

    split = groups * fused
    if split == 1:
        return fans
    out_size = math.prod(shape[a] for a in out_axes) if out_axes else 1
    if out_size % split:
        raise ValueError(
            f"The output axis of shape={shape} (size {out_size}) is not divisible by "
            f"groups·fused = {groups}·{fused} = {split}"
        )
    fan_out = fans.fan_out / split
    if layout != "jax":
        fan_out = int(fan_out)
    return Fans(fans.fan_in, fan_out, fans.receptive_field, layout)


def _as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of non-negative ints, got shape={shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or (not isinstance(d, int) and not hasattr(d, "__index__")) or int(d) < 0:
            raise TypeError(f"shape must be a sequence of non-negative ints, got shape={shape!r}")
    return tuple(int(d) for d in dims)


def _normalize_axes(axes: Axes, ndim: int, name: str) -> tuple[int, ...]:
    items = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int) or not -ndim <= a < ndim:
            raise ValueError(f"{name} must name axes of a {ndim}-dim shape (-{ndim}..{ndim - 1}), got {name}={axes!r}")
        out.append(a % ndim)
    return tuple(out)


def _torch_fans(shape: Sequence[int], in_axis: Axes | None, out_axis: Axes | None, batch_axis: Axes) -> Fans:
    if len(shape) < 2:
        # The text of torch.nn.init._calculate_fan_in_and_fan_out, so callers see the same error.
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    ins = _normalize_axes(in_axis if in_axis is not None else 1, len(shape), "in_axis")
    outs = _normalize_axes(out_axis if out_axis is not None else 0, len(shape), "out_axis")
    batch = _normalize_axes(batch_axis, len(shape), "batch_axis")
    rf = math.prod(s for i, s in enumerate(shape) if i not in ins + outs + batch)
    fan_in = math.prod(shape[a] for a in ins) * rf
    fan_out = math.prod(shape[a] for a in outs) * rf
    return Fans(fan_in, fan_out, rf, "torch")


def _keras_out_axes(shape: Sequence[int], in_axis: Axes | None, out_axis: Axes | None) -> tuple[int, ...]:
    if in_axis is not None and out_axis is not None:
        return _normalize_axes(out_axis, len(shape), "out_axis")
    return (len(shape) - 1,) if shape else ()


def _keras_fans(shape: Sequence[int], in_axis: Axes | None, out_axis: Axes | None) -> Fans:
    if in_axis is not None and out_axis is not None:
        fan_in = math.prod(shape[a] for a in _normalize_axes(in_axis, len(shape), "in_axis"))
        fan_out = math.prod(shape[a] for a in _normalize_axes(out_axis, len(shape), "out_axis"))
        return Fans(fan_in, fan_out, 1, "keras")
    if len(shape) == 0:
        return Fans(1, 1, 1, "keras")
    if len(shape) == 1:
        return Fans(shape[0], shape[0], 1, "keras")
    rf = math.prod(shape[:-2])
    return Fans(shape[-2] * rf, shape[-1] * rf, rf, "keras")


def _jax_fans(shape: Sequence[int], in_axis: Axes | None, out_axis: Axes | None, batch_axis: Axes) -> Fans:
    if len(shape) <= 1 and (in_axis is None or (type(in_axis) is int and in_axis == -2)):
        # jax raises this whenever in_axis is its default -2 (passed explicitly or not); jax 0.10's
        # message, so a port of code written against jax reads the same error.
        raise ValueError(
            f"Can't compute input and output sizes of a {len(shape)}-dimensional weights tensor with "
            "default in_axis. Must be at least 2D or specify in_axis explicitly."
        )
    ndim = len(shape)
    ins = _normalize_axes(in_axis if in_axis is not None else -2, ndim, "in_axis")
    outs = _normalize_axes(out_axis if out_axis is not None else -1, ndim, "out_axis")
    batch = _normalize_axes(batch_axis, ndim, "batch_axis")
    in_size = float(math.prod(shape[a] for a in ins))
    out_size = float(math.prod(shape[a] for a in outs))
    batch_size = float(math.prod(shape[a] for a in batch))
    if in_size and out_size and batch_size:
        # Float division in this order, as jax.nn.initializers._compute_fans does: the fans can be
        # 1 ulp off an integer (Flax Embed), and fanin reproduces that.
        rf = math.prod(shape) / in_size / out_size / batch_size
    else:
        rf = float(math.prod(s for i, s in enumerate(shape) if i not in set(ins) | set(outs) | set(batch)))
    return Fans(in_size * rf, out_size * rf, rf, "jax")
