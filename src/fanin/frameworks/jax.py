r"""JAX (``jax.nn.initializers``) and Flax initializers, with JAX semantics, applied to torch tensors.

Fans are floats, computed by JAX's rule on the kernel ``(*kernel, in, out)`` with ``in_axis=-2``,
``out_axis=-1``, ``batch_axis=()``; these axes index the JAX kernel shape. A torch weight
(``layout="torch"``, the default) is read as the equivalent JAX kernel; pass ``layout="jax"`` for a
tensor already in that layout. (Flax's ``ConvTranspose`` stores (*k, in, features), unlike torch
and Keras: use ``layout="jax"`` on such a kernel.)

Differences from JAX, each deliberate:

- Arguments are validated when the scheme is built, not when it is called.
- A zero fan needs a zero-size dimension, where JAX divides by zero; fanin returns a zero-element
  tensor unchanged, as every fanin scheme does (:func:`fanin.formulas.variance.scaled_variance`
  with ``guard=False`` raises a ``ValueError`` for a zero fan).
- Randomness comes from the call's ``generator``: there are no keys.

Note JAX's "normal" in ``variance_scaling`` is **untruncated** (Keras's is truncated), and
``uniform(scale)`` is U[0, scale), not symmetric.

>>> import torch
>>> lecun_normal()
fanin.get('jax.lecun_normal')
>>> w = orthogonal_(torch.empty(5, 3), generator=torch.Generator().manual_seed(0))
>>> torch.allclose(w.T @ w, torch.eye(3), atol=1e-6)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fanin import rng
from fanin.errors import SchemeArgumentError, describe_choice, shown
from fanin.frameworks.layers import LayerDefaults
from fanin.frameworks.record import ELEMENTWISE, Framework
from fanin.frameworks.shared import check_layout, kernel_view, orthogonal_matrix, variance_scaling_fill
from fanin.schemes.checks import check_number, fills_in_place
from fanin.schemes.scheme import Scheme

__all__ = [
    "JAX",
    "FlaxLayers",
    "constant",
    "constant_",
    "delta_orthogonal",
    "delta_orthogonal_",
    "glorot_normal",
    "glorot_normal_",
    "glorot_uniform",
    "glorot_uniform_",
    "he_normal",
    "he_normal_",
    "he_uniform",
    "he_uniform_",
    "lecun_normal",
    "lecun_normal_",
    "lecun_uniform",
    "lecun_uniform_",
    "normal",
    "normal_",
    "ones",
    "ones_",
    "orthogonal",
    "orthogonal_",
    "truncated_normal",
    "truncated_normal_",
    "uniform",
    "uniform_",
    "variance_scaling",
    "variance_scaling_",
    "zeros",
    "zeros_",
]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


class FlaxLayers(LayerDefaults):
    """What a layer of the same architecture gets in Flax linen (the ``"flax"`` preset).

    Dense and Conv kernels ``lecun_normal``, biases 0; a ``ConvTranspose`` kernel
    (*k, in, features) counts its **input** channels as fan_in: the torch weight (in, out/g, *k)
    maps to the kernel (*k, out/g, in), whose in is axis -1; ``Embed``
    ``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)`` on the (num, features) table, the
    layout of the torch table (in_axis -2 and out_axis 0 are the same axis, fan_in = features):
    N(0, 1/features), untruncated; norms 1 / 0 and running statistics 0 / 1; an LSTM/GRU cell's
    input kernels ``lecun_normal``, its recurrent kernels one ``orthogonal()`` per gate (each gate
    has its own (h, h) Dense: ``fanin.gatewise_orthogonal`` on torch's stacked weight), biases 0;
    MultiheadAttention's projections ``lecun_normal`` (fan_in E, stacked or not), biases 0;
    PReLU's ``negative_slope_init`` 0.01.
    """

    zeros_name = "jax.zeros"
    ones_name = "jax.ones"

    def kernel(self, transposed: bool = False) -> Scheme:
        if transposed:
            return Scheme("jax.lecun_normal", in_axis=-1, out_axis=-2)
        return Scheme("jax.lecun_normal")

    def embedding(self, module: nn.Module) -> list[tuple[str, Scheme]]:
        return [
            (
                "weight",
                Scheme(
                    "jax.variance_scaling", scale=1.0, mode="fan_in", distribution="normal", out_axis=0, layout="jax"
                ),
            )
        ]

    def rnn_weight(self, name: str, own: dict[str, torch.Tensor], gates: int) -> Scheme:
        if not name.startswith("weight_hh"):
            return self.kernel()
        if gates == 1:
            return Scheme("jax.orthogonal")
        return Scheme("fanin.gatewise_orthogonal", gates=gates)

    def prelu(self, module: nn.Module) -> list[tuple[str, Scheme]]:
        return [("weight", Scheme("jax.constant", value=0.01))]


#: JAX (``jax.nn.initializers``, which Flax re-exports) with Flax linen's layer defaults: kernels
#: (*kernel, in, out), fans by JAX's rule with the ``in_axis``/``out_axis``/``batch_axis`` arguments.
#: The framework is called "jax", as its schemes are (``jax.lecun_normal``); "flax", the name of
#: its preset, is accepted wherever a framework is named.
JAX = Framework(
    name="jax",
    title="JAX / Flax",
    prefix="jax.",
    layout="jax",
    aliases=("flax",),
    fan_axes=(("in_axis", "in_axis", -2), ("out_axis", "out_axis", -1), ("batch_axis", "batch_axis", ())),
    element_local=ELEMENTWISE,
    orthogonal=frozenset({"jax.orthogonal"}),
    preset="flax",
    layer_defaults=FlaxLayers(),
    default_kernel="jax.lecun_normal",
    default_kernel_note="Flax default for Dense / Conv kernels",
)


def _check_axes(scheme, name, axes, allow_empty=False):
    items = (axes,) if isinstance(axes, int) and not isinstance(axes, bool) else axes
    if not isinstance(items, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        raise SchemeArgumentError(f"{scheme}: {name} must be an int or a sequence of ints, got {name}={shown(axes)}")
    if not items and not allow_empty:
        raise SchemeArgumentError(f"{scheme}: {name} must name at least one axis, got {name}={shown(axes)}")


def _validate_vs(scale, mode, distribution, in_axis, out_axis, batch_axis, layout):
    # JAX does not check; scale <= 0 gives a zero or imaginary std (sqrt(scale / n)).
    check_number("jax.variance_scaling", "scale", scale, above=0)
    if mode not in MODES:
        raise SchemeArgumentError(
            f"invalid mode for variance scaling initializer: {mode}. " + describe_choice("mode", mode, MODES)
        )
    if distribution not in DISTRIBUTIONS:
        raise SchemeArgumentError(
            f"invalid distribution for variance scaling initializer: {distribution}. "
            + describe_choice("distribution", distribution, DISTRIBUTIONS)
        )
    _check_axes("jax.variance_scaling", "in_axis", in_axis)
    _check_axes("jax.variance_scaling", "out_axis", out_axis)
    _check_axes("jax.variance_scaling", "batch_axis", batch_axis, allow_empty=True)
    check_layout("jax.variance_scaling", layout, JAX)


def _vs(tensor, scale, mode, distribution, in_axis, out_axis, batch_axis, layout, generator):
    _validate_vs(scale, mode, distribution, in_axis, out_axis, batch_axis, layout)  # direct calls too
    return variance_scaling_fill(
        tensor,
        scale=scale,
        mode=mode,
        distribution="untruncated_normal" if distribution == "normal" else distribution,
        framework=JAX,
        layout=layout,
        guard=False,
        generator=generator,
        axes={"in_axis": in_axis, "out_axis": out_axis, "batch_axis": batch_axis},
    )


@JAX.register("jax.variance_scaling", family="truncated_normal", validate=_validate_vs)
@fills_in_place
def variance_scaling_(
    tensor: torch.Tensor,
    scale: float,
    mode: str,
    distribution: str,
    in_axis: int | Sequence[int] = -2,
    out_axis: int | Sequence[int] = -1,
    batch_axis: int | Sequence[int] = (),
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``jax.nn.initializers.variance_scaling``: target variance scale / n.

    .. math:: \text{truncated\_normal: } \sigma = \sqrt{\text{scale}/n} / 0.8796\ldots \ \text{cut at } \pm 2\sigma;
              \ \text{normal: } \sigma = \sqrt{\text{scale}/n};
              \ \text{uniform: } \mathcal{U}(\pm\sqrt{3\,\text{scale}/n})

    Args:
        tensor: The tensor to fill, in place.
        scale: The target variance times the fan (positive).
        mode: The fan ``n``: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` ((fan_in + fan_out)/2) or
            ``"fan_geo_avg"`` (sqrt(fan_in·fan_out)).
        distribution: ``"truncated_normal"``, ``"normal"`` (untruncated, as in JAX) or ``"uniform"``.
        in_axis: The input axis or axes of the JAX kernel shape.
        out_axis: The output axis or axes of the JAX kernel shape.
        batch_axis: The batch axes of the JAX kernel shape (excluded from the fans).
        layout: ``"torch"``: ``tensor`` is a torch weight, read as the equivalent JAX kernel
            (*kernel, in, out); ``"jax"``: it already has the JAX layout.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        SchemeArgumentError: An argument is invalid (a mode, distribution or axes JAX does not
            know, a non-positive scale).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> variance_scaling_(torch.empty(4, 8), 1.0, "fan_geo_avg", "normal", generator=g).shape
        torch.Size([4, 8])
    """
    return _vs(tensor, scale, mode, distribution, in_axis, out_axis, batch_axis, layout, generator)


def _specialization(name, scale, mode, distribution, aliases=()):
    def fn(tensor, in_axis=-2, out_axis=-1, batch_axis=(), layout="torch", *, generator=None):
        return _vs(tensor, scale, mode, distribution, in_axis, out_axis, batch_axis, layout, generator)

    fn.__name__ = fn.__qualname__ = f"{name}_"
    fn.__doc__ = f"``jax.nn.initializers.{name}``: variance_scaling({scale}, {mode!r}, {distribution!r})."

    def validate(in_axis, out_axis, batch_axis, layout):
        _validate_vs(scale, mode, distribution, in_axis, out_axis, batch_axis, layout)

    family = "uniform" if distribution == "uniform" else "truncated_normal"
    return JAX.register(f"jax.{name}", family=family, aliases=aliases, validate=validate)(fills_in_place(fn))


glorot_uniform_ = _specialization("glorot_uniform", 1.0, "fan_avg", "uniform", ("jax.xavier_uniform",))
glorot_normal_ = _specialization("glorot_normal", 1.0, "fan_avg", "truncated_normal", ("jax.xavier_normal",))
lecun_uniform_ = _specialization("lecun_uniform", 1.0, "fan_in", "uniform")
lecun_normal_ = _specialization("lecun_normal", 1.0, "fan_in", "truncated_normal")
he_uniform_ = _specialization("he_uniform", 2.0, "fan_in", "uniform", ("jax.kaiming_uniform",))
he_normal_ = _specialization("he_normal", 2.0, "fan_in", "truncated_normal", ("jax.kaiming_normal",))


def _validate_scalar(scheme, name):
    def validate(**kwargs):
        check_number(scheme, name, kwargs[name], minimum=None if name == "value" else 0)

    return validate


@JAX.register("jax.constant", family="constant", validate=_validate_scalar("jax.constant", "value"))
@fills_in_place
def constant_(
    tensor: torch.Tensor,
    value: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``jax.nn.initializers.constant``: every element ``value``.

    Args:
        tensor: The tensor to fill, in place.
        value: The value every element gets.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> constant_(torch.empty(2), 0.5)
        tensor([0.5000, 0.5000])
    """
    return tensor.fill_(value)


@JAX.register("jax.zeros", family="constant", validate=lambda: None)
@fills_in_place
def zeros_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``jax.nn.initializers.zeros``.

    Args:
        tensor: The tensor to fill, in place.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled with 0.

    Examples:
        >>> zeros_(torch.empty(2))
        tensor([0., 0.])
    """
    return tensor.zero_()


@JAX.register("jax.ones", family="constant", validate=lambda: None)
@fills_in_place
def ones_(
    tensor: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``jax.nn.initializers.ones``.

    Args:
        tensor: The tensor to fill, in place.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled with 1.

    Examples:
        >>> ones_(torch.empty(2))
        tensor([1., 1.])
    """
    return tensor.fill_(1.0)


@JAX.register("jax.uniform", family="uniform", validate=_validate_scalar("jax.uniform", "scale"))
@fills_in_place
def uniform_(
    tensor: torch.Tensor,
    scale: float = 1e-2,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``jax.nn.initializers.uniform``: :math:`\mathcal{U}[0, \text{scale})` (not symmetric), default scale 0.01.

    Args:
        tensor: The tensor to fill, in place.
        scale: The upper bound (non-negative).
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(uniform_(torch.empty(100), generator=torch.Generator().manual_seed(0)).min() >= 0)
        True
    """
    return rng.uniform_(tensor, 0.0, scale, generator)


@JAX.register("jax.normal", family="normal", validate=_validate_scalar("jax.normal", "stddev"))
@fills_in_place
def normal_(
    tensor: torch.Tensor,
    stddev: float = 1e-2,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``jax.nn.initializers.normal``: :math:`\mathcal{N}(0, \text{stddev}^2)`, default stddev 0.01.

    Args:
        tensor: The tensor to fill, in place.
        stddev: The standard deviation (non-negative).
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> normal_(torch.empty(3)).shape
        torch.Size([3])
    """
    return rng.normal_(tensor, 0.0, stddev, generator)


def _validate_truncated(stddev, lower, upper):
    check_number("jax.truncated_normal", "stddev", stddev, above=0)
    check_number("jax.truncated_normal", "lower", lower)
    check_number("jax.truncated_normal", "upper", upper)
    if not lower < upper:
        raise SchemeArgumentError(
            f"jax.truncated_normal: needs lower < upper, got lower={shown(lower)}, upper={shown(upper)}"
        )


@JAX.register("jax.truncated_normal", family="truncated_normal", validate=_validate_truncated)
@fills_in_place
def truncated_normal_(
    tensor: torch.Tensor,
    stddev: float = 1e-2,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``jax.nn.initializers.truncated_normal``: stddev · N(0, 1) truncated to [lower, upper] (in units of stddev).

    No variance correction: the std is about 0.88·stddev for the defaults.

    Args:
        tensor: The tensor to fill, in place.
        stddev: The standard deviation before truncation (positive).
        lower: The lower cut, in units of ``stddev``.
        upper: The upper cut, in units of ``stddev`` (``lower < upper``).
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(truncated_normal_(torch.empty(1000), generator=torch.Generator().manual_seed(0)).abs().max() <= 0.02)
        True
    """
    return rng.truncated_normal_(tensor, 0.0, stddev, lower * stddev, upper * stddev, generator)


def _validate_orthogonal(scheme):
    def validate(scale, column_axis, layout):
        check_number(scheme, "scale", scale)
        if isinstance(column_axis, bool) or not isinstance(column_axis, int):
            raise SchemeArgumentError(f"{scheme}: column_axis must be an int, got column_axis={shown(column_axis)}")
        check_layout(scheme, layout, JAX)

    return validate


def _orthogonal_kernel(shape, column_axis, dtype, device, generator):
    if not -len(shape) <= column_axis < len(shape):
        raise ValueError(f"column_axis={column_axis} is out of range for a kernel of shape {shape}")
    n_cols = shape[column_axis]
    n_rows = math.prod(shape) // n_cols
    q = orthogonal_matrix(n_rows, n_cols, dtype=dtype, device=device, generator=generator)
    rest = tuple(s for i, s in enumerate(shape) if i != column_axis % len(shape))
    return torch.movedim(q.reshape(*rest, n_cols), -1, column_axis)


@JAX.register("jax.orthogonal", family="orthogonal", validate=_validate_orthogonal("jax.orthogonal"))
@fills_in_place
def orthogonal_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    column_axis: int = -1,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``jax.nn.initializers.orthogonal``: the kernel as (numel / shape[column_axis], shape[column_axis]) is
    (semi-)orthogonal, times ``scale``.

    .. math:: Q^\top Q = \text{scale}^2 I \ \text{(rows} \ge \text{cols)}

    Args:
        tensor: The tensor to fill, in place (2 or more dims).
        scale: The scaling factor.
        column_axis: The axis of the JAX kernel shape that holds the matrix's columns.
        layout: ``"torch"``: ``tensor`` is a torch weight, read as the equivalent JAX kernel;
            ``"jax"``: it already has the JAX layout.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel has fewer than 2 dimensions, or ``column_axis`` is out of range.

    Examples:
        >>> w = orthogonal_(torch.empty(5, 3), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w.T @ w, torch.eye(3), atol=1e-6)
        True
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) < 2:
        raise ValueError("orthogonal initializer requires at least a 2D shape")
    kernel = _orthogonal_kernel(shape, column_axis, tensor.dtype, tensor.device, generator)
    return tensor.copy_(to_tensor(scale * kernel))


@JAX.register("jax.delta_orthogonal", family="orthogonal", validate=_validate_orthogonal("jax.delta_orthogonal"))
@fills_in_place
def delta_orthogonal_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    column_axis: int = -1,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``jax.nn.initializers.delta_orthogonal`` (Xiao et al., 2018): an orthogonal (in, out) matrix times
    ``scale`` at the spatial centre (k-1)//2 of a (*k, in, out) kernel, zeros elsewhere.

    Args:
        tensor: The 3-, 4- or 5-D convolution weight to fill, in place.
        scale: The scaling factor.
        column_axis: The axis of the (in, out) matrix that holds its columns.
        layout: ``"torch"``: ``tensor`` is a torch convolution weight (out, in, *k), filled as its
            JAX kernel; ``"jax"``: it already has the JAX layout.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel is not 3-, 4- or 5-D, or it has more input than output channels.

    Examples:
        >>> w = delta_orthogonal_(torch.empty(4, 4, 3, 3), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w[:, :, 1, 1] @ w[:, :, 1, 1].T, torch.eye(4), atol=1e-6)
        True
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) not in (3, 4, 5):
        raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
    if shape[-1] < shape[-2]:
        raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
    ortho = _orthogonal_kernel(shape[-2:], column_axis, tensor.dtype, tensor.device, generator)
    kernel = torch.zeros(shape, dtype=ortho.dtype, device=tensor.device)
    kernel[tuple((k - 1) // 2 for k in shape[:-2])] = scale * ortho
    return tensor.copy_(to_tensor(kernel))


def _builder(name: str, doc: str):
    def build(**kwargs) -> Scheme:
        return Scheme(f"jax.{name}", **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"``jax.nn.initializers.{name}`` as a fanin :class:`~fanin.Scheme`. {doc}"
    return build


constant = _builder("constant", "Takes value.")
zeros = _builder("zeros", "")
ones = _builder("ones", "")
uniform = _builder("uniform", "Takes scale.")
normal = _builder("normal", "Takes stddev.")
truncated_normal = _builder("truncated_normal", "Takes stddev, lower, upper.")
variance_scaling = _builder("variance_scaling", "Takes scale, mode, distribution, in_axis, out_axis, batch_axis.")
glorot_uniform = _builder("glorot_uniform", "Takes in_axis, out_axis, batch_axis.")
glorot_normal = _builder("glorot_normal", "Takes in_axis, out_axis, batch_axis.")
lecun_uniform = _builder("lecun_uniform", "Takes in_axis, out_axis, batch_axis.")
lecun_normal = _builder("lecun_normal", "Takes in_axis, out_axis, batch_axis.")
he_uniform = _builder("he_uniform", "Takes in_axis, out_axis, batch_axis.")
he_normal = _builder("he_normal", "Takes in_axis, out_axis, batch_axis.")
orthogonal = _builder("orthogonal", "Takes scale, column_axis.")
delta_orthogonal = _builder("delta_orthogonal", "Takes scale, column_axis.")
