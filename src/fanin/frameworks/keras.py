r"""Keras 3 initializers, with Keras semantics, applied to torch tensors.

Fans are those Keras computes for the equivalent layer's kernel: a torch weight (``layout="torch"``,
the default) is read as the Keras kernel ``(*kernel, in, out)`` of the same layer, so a Conv2d
weight (O, I, kh, kw) gets the fans of the Keras kernel (kh, kw, I, O). ``input_axes`` and
``output_axes`` index that Keras kernel shape. Pass ``layout="keras"`` for a tensor that already has
the Keras layout.

Differences from Keras, each deliberate:

- Randomness comes from the call's ``generator`` (or torch's global RNG). ``seed=int`` gives the
  Keras behaviour: every call draws from a fresh generator seeded with it, so it returns the same
  values. Keras's ``seed=None`` picks a random seed once at construction; fanin's draws from the
  call's generator instead.
- Truncated normals are exact (inverse CDF). Keras's torch backend takes the first of 4 draws
  inside ±2σ and keeps an out-of-range draw when all 4 miss (probability 4e-6 per element); fanin
  never returns a value outside the cut.
- Arguments are validated when the scheme is built, with Keras's messages.

>>> import torch
>>> w = torch.empty(64, 32)
>>> bound = (6 / (32 + 64)) ** 0.5
>>> bool(glorot_uniform_(w, seed=0).abs().max() <= bound)
True
>>> str(VarianceScaling(scale=2.0))
'keras.variance_scaling(scale=2.0)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from fanin import rng
from fanin.errors import SchemeArgumentError, describe_choice, shown
from fanin.frameworks.layers import LayerDefaults, glorot_limit
from fanin.frameworks.record import ELEMENTWISE, Framework
from fanin.frameworks.shared import (
    check_layout,
    check_seed,
    kernel_view,
    orthogonal_matrix,
    resolve_generator,
    variance_scaling_fill,
)
from fanin.schemes.checks import check_number, fills_in_place
from fanin.schemes.scheme import Scheme

__all__ = [
    "KERAS",
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "KerasLayers",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "constant_",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "identity_",
    "lecun_normal_",
    "lecun_uniform_",
    "ones_",
    "orthogonal_",
    "random_normal_",
    "random_uniform_",
    "truncated_normal_",
    "variance_scaling_",
    "zeros_",
]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")


class KerasLayers(LayerDefaults):
    """What a layer of the same architecture gets in Keras 3 (the ``"keras"`` preset).

    Dense and Conv kernels ``glorot_uniform`` (fans of the equivalent Keras kernel; a transposed
    convolution's fan_in counts its output channels, as in Keras), biases 0; Embedding
    ``RandomUniform(-0.05, 0.05)`` (``mask_zero`` keeps the padding row); norms 1 / 0 and running
    statistics 0 / 1; an RNN's input kernel ``glorot_uniform``, its recurrent kernel one
    ``orthogonal`` over the whole (G·h, h) weight, its bias 0 with the LSTM forget gate 1
    (``unit_forget_bias``); MultiheadAttention's three (E, E) projections Glorot each (the
    ``EinsumDense`` axes give fan_in = fan_out = E), biases 0; PReLU ``alpha`` 0.

    Permuting column blocks of a Haar-orthogonal matrix leaves it Haar-orthogonal with
    orthonormal rows, so the Keras GRU's (z, r, h) order against torch's (r, z, n) needs no
    remapping of the recurrent weight; only the LSTM forget bias must land in its block, which is
    block 1 in both packings.
    """

    zeros_name = "keras.zeros"
    ones_name = "keras.ones"

    def kernel(self, transposed: bool = False) -> Scheme:
        return Scheme("keras.glorot_uniform")

    def embedding(self, module: nn.Module) -> list[tuple[str, Scheme]]:
        return [("weight", Scheme("keras.random_uniform"))]

    def rnn_weight(self, name: str, own: dict[str, torch.Tensor], gates: int) -> Scheme:
        return Scheme("keras.orthogonal") if name.startswith("weight_hh") else self.kernel()

    def rnn_input_bias(self, gates: int) -> Scheme:
        if gates == 4:  # unit_forget_bias=True: the forget gate (block 1 of i, f, g, o) starts at 1
            return Scheme("fanin.gate_constant", values=[0.0, 1.0, 0.0, 0.0])
        return self.zeros()

    def in_projection(self, module: nn.Module) -> Scheme:
        embed_dim = cast(nn.MultiheadAttention, module).embed_dim
        limit = glorot_limit(embed_dim, embed_dim)
        return Scheme("keras.random_uniform", minval=-limit, maxval=limit)


#: Keras 3: kernels (*kernel, in, out), fans by ``keras.initializers`` (explicit ``input_axes`` and
#: ``output_axes`` replace the rule when both are given).
KERAS = Framework(
    name="keras",
    title="Keras 3",
    prefix="keras.",
    layout="keras",
    fan_axes=(("in_axis", "input_axes", None), ("out_axis", "output_axes", None)),
    element_local=ELEMENTWISE,
    orthogonal=frozenset({"keras.orthogonal"}),
    preset="keras",
    layer_defaults=KerasLayers(),
    default_kernel="keras.glorot_uniform",
    default_kernel_note="Keras default for Dense / Conv kernels",
    name_order=("keras", "jax", "tf1", "torch", "fanin"),
)


def _validate_variance_scaling(scale, mode, distribution, seed, input_axes, output_axes, layout):
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 < scale < math.inf:
        raise SchemeArgumentError(f"Argument `scale` must be positive float. Received: scale={shown(scale)}")
    # Keras's wording, with the accepted values sorted (Keras prints a set, whose order varies).
    if mode not in MODES:
        raise SchemeArgumentError(
            f"Invalid `mode` argument: {mode}. "
            + describe_choice("mode", mode, MODES)
            + (" Modes are case-sensitive." if isinstance(mode, str) and mode.lower() in MODES else "")
        )
    dist = distribution.lower() if isinstance(distribution, str) else distribution
    if dist not in (*DISTRIBUTIONS, "normal"):
        raise SchemeArgumentError(
            f"Invalid `distribution` argument: {distribution}. "
            + describe_choice("distribution", distribution, (*DISTRIBUTIONS, "normal"))
        )
    _validate_common(seed, layout)
    for name, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
        if axes is not None and (
            not isinstance(axes, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes)
        ):
            raise SchemeArgumentError(f"keras: {name} must be None or a list of ints, got {name}={shown(axes)}")


def _validate_common(seed=None, layout="torch"):
    check_seed("keras", seed)
    check_layout("keras", layout, KERAS)


def _variance_scaling(tensor, scale, mode, distribution, seed, input_axes, output_axes, layout, generator):
    # A direct call bypasses Scheme's validation: check here too, or a typo would silently fall
    # through to some distribution.
    _validate_variance_scaling(scale, mode, distribution, seed, input_axes, output_axes, layout)
    distribution = distribution.lower()
    if distribution == "normal":  # Keras: "normal" means the truncated normal
        distribution = "truncated_normal"
    return variance_scaling_fill(
        tensor,
        scale=scale,
        mode=mode,
        distribution=distribution,
        framework=KERAS,
        layout=layout,
        guard=True,
        generator=resolve_generator("keras", seed, generator, tensor.device),
        axes={"input_axes": input_axes, "output_axes": output_axes},
    )


@KERAS.register(
    "keras.variance_scaling",
    family="truncated_normal",
    aliases=("keras.VarianceScaling",),
    validate=_validate_variance_scaling,
)
@fills_in_place
def variance_scaling_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    seed: int | None = None,
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Keras ``VarianceScaling``: target variance scale / max(1, fan).

    .. math:: \sigma_{\text{after truncation}} = \sqrt{\text{scale} / \max(1, n)}, \quad
              L_{\text{uniform}} = \sqrt{3\,\text{scale} / \max(1, n)}

    Args:
        tensor: The tensor to fill, in place.
        scale: The target variance times the fan (positive).
        mode: The fan ``n``: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (case-sensitive).
        distribution: ``"truncated_normal"`` (``"normal"`` is an alias of it, as in Keras; cut at
            ±2σ), ``"untruncated_normal"`` or ``"uniform"``.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it (the same
            values on every call, as in Keras); ``None``: draw from ``generator``.
        input_axes: The axes of the Keras kernel shape that count as inputs; with ``output_axes``
            they replace the layout's fans rule (no receptive field).
        output_axes: The axes of the Keras kernel shape that count as outputs.
        layout: ``"torch"``: ``tensor`` is a torch weight, read as the equivalent Keras kernel;
            ``"keras"``: it already has the Keras layout (*kernel, in, out).
        generator: The random source when ``seed`` is ``None``: a ``torch.Generator``, a
            :class:`fanin.Stream`, or ``None`` for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        SchemeArgumentError: An argument is invalid (Keras's messages), or both ``seed`` and
            ``generator`` are given.

    Examples:
        >>> variance_scaling_(torch.empty(3, 4), scale=2.0, distribution="uniform", seed=1).shape
        torch.Size([3, 4])
    """
    return _variance_scaling(tensor, scale, mode, distribution, seed, input_axes, output_axes, layout, generator)


def _specialization(name: str, scale: float, mode: str, distribution: str, formula: str):
    def fn(tensor, seed=None, input_axes=None, output_axes=None, layout="torch", *, generator=None):
        return _variance_scaling(tensor, scale, mode, distribution, seed, input_axes, output_axes, layout, generator)

    fn.__name__ = fn.__qualname__ = f"{name}_"
    fn.__doc__ = (
        f"Keras ``{name}``: variance scaling with scale={scale}, mode={mode!r}, distribution={distribution!r}.\n\n"
        f"    .. math:: {formula}\n"
    )
    family = "uniform" if distribution == "uniform" else "truncated_normal"
    camel = "".join(part.capitalize() for part in name.split("_"))

    def validate(seed, input_axes, output_axes, layout):
        _validate_variance_scaling(scale, mode, distribution, seed, input_axes, output_axes, layout)

    return KERAS.register(f"keras.{name}", family=family, aliases=(f"keras.{camel}",), validate=validate)(
        fills_in_place(fn)
    )


glorot_uniform_ = _specialization(
    "glorot_uniform", 1.0, "fan_avg", "uniform", r"\mathcal{U}(\pm\sqrt{6/(n_{in}+n_{out})})"
)
glorot_normal_ = _specialization(
    "glorot_normal", 1.0, "fan_avg", "truncated_normal", r"\sigma = \sqrt{2/(n_{in}+n_{out})}\ \text{after truncation}"
)
lecun_uniform_ = _specialization("lecun_uniform", 1.0, "fan_in", "uniform", r"\mathcal{U}(\pm\sqrt{3/n_{in}})")
lecun_normal_ = _specialization(
    "lecun_normal", 1.0, "fan_in", "truncated_normal", r"\sigma = \sqrt{1/n_{in}}\ \text{after truncation}"
)
he_uniform_ = _specialization("he_uniform", 2.0, "fan_in", "uniform", r"\mathcal{U}(\pm\sqrt{6/n_{in}})")
he_normal_ = _specialization(
    "he_normal", 2.0, "fan_in", "truncated_normal", r"\sigma = \sqrt{2/n_{in}}\ \text{after truncation}"
)


def _validate_random_normal(mean, stddev, seed, layout):
    check_number("keras.random_normal", "mean", mean)
    check_number("keras.random_normal", "stddev", stddev, minimum=0)
    _validate_common(seed, layout)


@KERAS.register(
    "keras.random_normal",
    family="normal",
    aliases=("keras.RandomNormal", "keras.normal"),
    validate=_validate_random_normal,
)
@fills_in_place
def random_normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    stddev: float = 0.05,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Keras ``RandomNormal``: :math:`\mathcal{N}(\text{mean}, \text{stddev}^2)`, default stddev 0.05.

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean.
        stddev: The standard deviation.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` (a torch weight) or ``"keras"``; element-wise, so it changes nothing
            but is accepted as for every Keras scheme.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> random_normal_(torch.empty(2, 2), seed=0).shape
        torch.Size([2, 2])
    """
    return rng.normal_(tensor, mean, stddev, resolve_generator("keras", seed, generator, tensor.device))


def _validate_random_uniform(minval, maxval, seed, layout):
    check_number("keras.random_uniform", "minval", minval)
    check_number("keras.random_uniform", "maxval", maxval)
    if minval > maxval:
        raise SchemeArgumentError(
            f"keras.random_uniform: needs minval <= maxval, got minval={shown(minval)}, maxval={shown(maxval)}"
        )
    _validate_common(seed, layout)


@KERAS.register(
    "keras.random_uniform",
    family="uniform",
    aliases=("keras.RandomUniform", "keras.uniform"),
    validate=_validate_random_uniform,
)
@fills_in_place
def random_uniform_(
    tensor: torch.Tensor,
    minval: float = -0.05,
    maxval: float = 0.05,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Keras ``RandomUniform``: :math:`\mathcal{U}[\text{minval}, \text{maxval})`, default ±0.05.

    Args:
        tensor: The tensor to fill, in place.
        minval: The lower bound.
        maxval: The upper bound (``minval <= maxval``).
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` (a torch weight) or ``"keras"``; element-wise, so it changes nothing.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(random_uniform_(torch.empty(100), seed=0).abs().max() <= 0.05)
        True
    """
    return rng.uniform_(tensor, minval, maxval, resolve_generator("keras", seed, generator, tensor.device))


def _validate_truncated_normal(mean, stddev, seed, layout):
    check_number("keras.truncated_normal", "mean", mean)
    check_number("keras.truncated_normal", "stddev", stddev, above=0)
    _validate_common(seed, layout)


@KERAS.register(
    "keras.truncated_normal",
    family="truncated_normal",
    aliases=("keras.TruncatedNormal",),
    validate=_validate_truncated_normal,
)
@fills_in_place
def truncated_normal_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    stddev: float = 0.05,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Keras ``TruncatedNormal``: :math:`\mathcal{N}(\text{mean}, \text{stddev}^2)` cut at mean ± 2·stddev.

    No variance correction: the std after truncation is about 0.88·stddev.

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean before truncation.
        stddev: The standard deviation before truncation (positive).
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` (a torch weight) or ``"keras"``; element-wise, so it changes nothing.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(truncated_normal_(torch.empty(1000), seed=0).abs().max() <= 0.1)
        True
    """
    g = resolve_generator("keras", seed, generator, tensor.device)
    return rng.truncated_normal_(tensor, mean, stddev, mean - 2.0 * stddev, mean + 2.0 * stddev, g)


def _validate_orthogonal(gain, seed, layout):
    check_number("keras.orthogonal", "gain", gain)
    _validate_common(seed, layout)


@KERAS.register(
    "keras.orthogonal",
    family="orthogonal",
    aliases=("keras.Orthogonal", "keras.OrthogonalInitializer"),
    validate=_validate_orthogonal,
)
@fills_in_place
def orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Keras ``Orthogonal``: the kernel flattened to (prod(shape[:-1]), shape[-1]) is (semi-)orthogonal.

    .. math:: Q^\top Q = \text{gain}^2 I \ \text{(rows} \ge \text{cols)}

    For a torch weight the flattening is that of the Keras kernel (*kernel, in, out), so an
    (out, in) Linear weight has orthonormal rows when out <= in, as in Keras.

    Args:
        tensor: The tensor to fill, in place (2 or more dims).
        gain: The scaling factor.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: ``tensor`` is a torch weight, flattened as its Keras kernel;
            ``"keras"``: it already has the Keras layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel has fewer than 2 dimensions.

    Examples:
        >>> w = orthogonal_(torch.empty(3, 5), seed=0)
        >>> torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)
        True
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) < 2:
        raise ValueError(
            f"The tensor to initialize must be at least two-dimensional. Received: shape={shape} of rank {len(shape)}."
        )
    rows, cols = KERAS.orthogonal_shape(shape)
    g = resolve_generator("keras", seed, generator, tensor.device)
    q = orthogonal_matrix(rows, cols, dtype=tensor.dtype, device=tensor.device, generator=g)
    return tensor.copy_(to_tensor((gain * q).reshape(shape)))


def _validate_identity(gain, layout):
    check_number("keras.identity", "gain", gain)
    _validate_common(None, layout)


@KERAS.register(
    "keras.identity",
    family="identity",
    aliases=("keras.Identity", "keras.IdentityInitializer"),
    validate=_validate_identity,
)
@fills_in_place
def identity_(
    tensor: torch.Tensor, gain: float = 1.0, layout: str = "torch", *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Keras ``Identity``: gain · I on a 2-D kernel.

    Args:
        tensor: The 2-D tensor to fill, in place.
        gain: The value of the diagonal.
        layout: ``"torch"``: ``tensor`` is a torch weight (out, in), so the identity is that of the
            Keras kernel (in, out), transposed; ``"keras"``: it already has the Keras layout.
        generator: Accepted and unused (nothing is drawn).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel is not 2-D.

    Examples:
        >>> identity_(torch.empty(2, 3), gain=2.0)
        tensor([[2., 0., 0.],
                [0., 2., 0.]])
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) != 2:
        raise ValueError(
            "Identity matrix initializer can only be used for 2D matrices. "
            f"Received: shape={shape} of rank {len(shape)}."
        )
    eye = torch.eye(*shape, dtype=torch.float64, device=tensor.device)
    return tensor.copy_(to_tensor(gain * eye))


def _validate_constant(value, layout):
    def ok(v):
        if isinstance(v, (list, tuple)):
            return all(ok(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not ok(value):
        raise SchemeArgumentError(
            f"keras.constant: value must be a number or nested lists of numbers, got value={shown(value)}"
        )
    _validate_common(None, layout)


@KERAS.register("keras.constant", family="constant", aliases=("keras.Constant",), validate=_validate_constant)
@fills_in_place
def constant_(
    tensor: torch.Tensor,
    value: float | list[Any] | tuple[Any, ...] = 0.0,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Keras ``Constant``: ``value`` broadcast to the kernel shape (a scalar, or an array that broadcasts).

    Args:
        tensor: The tensor to fill, in place.
        value: A number, or nested lists of numbers that broadcast to the kernel shape.
        layout: ``"torch"``: ``value`` broadcasts to the Keras kernel of the torch weight ``tensor``;
            ``"keras"``: ``tensor`` already has the Keras layout.
        generator: Accepted and unused (nothing is drawn).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``value`` does not broadcast to the kernel shape.

    Examples:
        >>> constant_(torch.empty(2, 2), value=[1.0, 2.0], layout="keras")
        tensor([[1., 2.],
                [1., 2.]])
    """
    shape, to_tensor = kernel_view(tensor, layout)
    values = torch.as_tensor(value, dtype=torch.float64, device=tensor.device)
    try:
        kernel = values.broadcast_to(shape)
    except RuntimeError:
        raise ValueError(
            f"keras.constant: value must broadcast to the kernel shape {shape}, got value={shown(value)} "
            f"of shape {tuple(values.shape)}"
        ) from None
    return tensor.copy_(to_tensor(kernel))


@KERAS.register("keras.zeros", family="constant", aliases=("keras.Zeros", "keras.zero"), validate=_validate_common)
@fills_in_place
def zeros_(tensor: torch.Tensor, layout: str = "torch", *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras ``Zeros``.

    Args:
        tensor: The tensor to fill, in place.
        layout: ``"torch"`` or ``"keras"``; changes nothing.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled with 0.

    Examples:
        >>> zeros_(torch.empty(2))
        tensor([0., 0.])
    """
    return tensor.zero_()


@KERAS.register("keras.ones", family="constant", aliases=("keras.Ones", "keras.one"), validate=_validate_common)
@fills_in_place
def ones_(tensor: torch.Tensor, layout: str = "torch", *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Keras ``Ones``.

    Args:
        tensor: The tensor to fill, in place.
        layout: ``"torch"`` or ``"keras"``; changes nothing.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled with 1.

    Examples:
        >>> ones_(torch.empty(2))
        tensor([1., 1.])
    """
    return tensor.fill_(1.0)


def VarianceScaling(
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    seed: int | None = None,
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
    layout: str = "torch",
) -> Scheme:
    r"""``keras.initializers.VarianceScaling`` as a fanin :class:`~fanin.Scheme`.

    Args:
        scale: The target variance times the fan (positive).
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (or its alias ``"normal"``), ``"untruncated_normal"``
            or ``"uniform"``.
        seed: An int (the same values on every call) or ``None`` (the caller's generator).
        input_axes: The input axes of the Keras kernel shape (with ``output_axes``).
        output_axes: The output axes of the Keras kernel shape (with ``input_axes``).
        layout: ``"torch"`` (a torch weight) or ``"keras"``.

    Returns:
        The scheme ``keras.variance_scaling`` with these arguments (see :func:`variance_scaling_`).

    Raises:
        SchemeArgumentError: An argument is invalid.

    Examples:
        >>> VarianceScaling(scale=2.0, mode="fan_out")
        fanin.get("keras.variance_scaling(scale=2.0, mode='fan_out')")
    """
    return Scheme(
        "keras.variance_scaling",
        scale=scale,
        mode=mode,
        distribution=distribution,
        seed=seed,
        input_axes=input_axes,
        output_axes=output_axes,
        layout=layout,
    )


def _constructor(name: str):
    def build(**kwargs) -> Scheme:
        return Scheme(name, **kwargs)

    build.__name__ = build.__qualname__ = "".join(p.capitalize() for p in name.split(".")[1].split("_"))
    build.__doc__ = (
        f"``keras.initializers.{build.__name__}`` as a fanin :class:`~fanin.Scheme` (the arguments of ``{name}``)."
    )
    return build


GlorotUniform = _constructor("keras.glorot_uniform")
GlorotNormal = _constructor("keras.glorot_normal")
LecunUniform = _constructor("keras.lecun_uniform")
LecunNormal = _constructor("keras.lecun_normal")
HeUniform = _constructor("keras.he_uniform")
HeNormal = _constructor("keras.he_normal")
RandomNormal = _constructor("keras.random_normal")
RandomUniform = _constructor("keras.random_uniform")
TruncatedNormal = _constructor("keras.truncated_normal")
Orthogonal = _constructor("keras.orthogonal")
Identity = _constructor("keras.identity")
Constant = _constructor("keras.constant")
Zeros = _constructor("keras.zeros")
Ones = _constructor("keras.ones")
