r"""TensorFlow 1.x initializers (``tf.*_initializer``), with TF 1.x defaults, applied to torch tensors.

Kernels follow TF's layout ``(*kernel, in, out)``, the same as Keras: a torch weight
(``layout="torch"``, the default) gets the fans and structure of the equivalent TF kernel; pass
``layout="keras"`` for a tensor already in that layout.

Versions: ``variance_scaling_initializer`` follows the later 1.x (r1.15) source: "normal" and
"truncated_normal" are a truncated normal whose std *after* truncation is sqrt(scale/n) (the
0.8796... correction), "untruncated_normal" a plain normal. Early 1.x releases truncated without
the correction (std before truncation sqrt(scale/n)), so their values are 12% smaller.
``glorot_normal_initializer`` is therefore a corrected truncated normal.

TF's graph- and op-level seeds cannot be reproduced; ``seed=int`` draws every call from a fresh
``torch.Generator`` seeded with it, ``seed=None`` from the call's ``generator``.

>>> import torch
>>> truncated_normal_initializer_(torch.empty(1000), seed=0).abs().max() <= 2.0
tensor(True)
"""

from __future__ import annotations

import math
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
    "TF1",
    "TF1Layers",
    "constant_initializer",
    "constant_initializer_",
    "convolutional_delta_orthogonal",
    "convolutional_delta_orthogonal_",
    "glorot_normal_initializer",
    "glorot_normal_initializer_",
    "glorot_uniform_initializer",
    "glorot_uniform_initializer_",
    "identity_initializer",
    "identity_initializer_",
    "ones_initializer",
    "ones_initializer_",
    "orthogonal_initializer",
    "orthogonal_initializer_",
    "random_normal_initializer",
    "random_normal_initializer_",
    "random_uniform_initializer",
    "random_uniform_initializer_",
    "truncated_normal_initializer",
    "truncated_normal_initializer_",
    "uniform_unit_scaling_initializer",
    "uniform_unit_scaling_initializer_",
    "variance_scaling_initializer",
    "variance_scaling_initializer_",
    "zeros_initializer",
    "zeros_initializer_",
]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "uniform", "truncated_normal", "untruncated_normal")


class TF1Layers(LayerDefaults):
    """What a layer of the same architecture gets in TF 1.x (``tf.layers``, ``tf.nn.rnn_cell``,
    ``tf.get_variable``: the ``"tf1"`` preset).

    Dense and Conv kernels ``glorot_uniform_initializer``, biases 0; an embedding table
    ``glorot_uniform`` (``tf.get_variable``'s default initializer; the (vocab, dim) table is
    already in TF's layout); norms 1 / 0 and running statistics 0 / 1. An RNN cell has one kernel
    ``[input_depth + h_depth, G·h]`` (``glorot_uniform``) that multiplies ``concat(x, h)``, which
    torch splits into ``weight_ih`` and ``weight_hh``: both get the uniform bound of the joint
    kernel (a GRU keeps its gates (r, z) and its candidate in two kernels, hence two bounds). The
    LSTM's ``forget_bias=1.0`` is added at run time, the GRU's gate bias is 1 and its candidate
    bias 0: torch sums ``bias_ih`` and ``bias_hh``, so the 1 goes into ``bias_ih``.
    MultiheadAttention's three (E, E) projections Glorot each; PReLU 0.
    """

    zeros_name = "tf1.zeros_initializer"
    ones_name = "tf1.ones_initializer"

    def kernel(self, transposed: bool = False) -> Scheme:
        return Scheme("tf1.glorot_uniform_initializer")

    def embedding(self, module: nn.Module) -> list[tuple[str, Scheme]]:
        return [("weight", Scheme("tf1.glorot_uniform_initializer", layout="keras"))]

    def rnn_weight(self, name: str, own: dict[str, torch.Tensor], gates: int) -> Scheme:
        suffix = name[len("weight_ih") :]
        depth = own["weight_ih" + suffix].shape[1] + own["weight_hh" + suffix].shape[1]
        h = own[name].shape[0] // gates
        if gates == 3:
            gate, candidate = glorot_limit(depth, 2 * h), glorot_limit(depth, h)
            return Scheme("fanin.gate_uniform", bounds=[gate, gate, candidate])
        limit = glorot_limit(depth, gates * h)
        return Scheme("tf1.random_uniform_initializer", minval=-limit, maxval=limit)

    def rnn_input_bias(self, gates: int) -> Scheme:
        if gates == 4:  # forget_bias=1.0 on the forget gate, torch's block 1
            return Scheme("fanin.gate_constant", values=[0.0, 1.0, 0.0, 0.0])
        if gates == 3:  # GRUCell: gates/bias constant_initializer(1.0), candidate/bias zeros
            return Scheme("fanin.gate_constant", values=[1.0, 1.0, 0.0])
        return self.zeros()

    def in_projection(self, module: nn.Module) -> Scheme:
        embed_dim = cast(nn.MultiheadAttention, module).embed_dim
        limit = glorot_limit(embed_dim, embed_dim)
        return Scheme("tf1.random_uniform_initializer", minval=-limit, maxval=limit)


#: TensorFlow 1.x: kernels (*kernel, in, out), the layout and fans rule Keras has.
TF1 = Framework(
    name="tf1",
    title="TensorFlow 1.x",
    prefix="tf1.",
    layout="keras",
    element_local=ELEMENTWISE,
    orthogonal=frozenset({"tf1.orthogonal_initializer"}),
    preset="tf1",
    layer_defaults=TF1Layers(),
    default_kernel="tf1.glorot_uniform_initializer",
    default_kernel_note="TF 1.x tf.get_variable default",
)


def _common(scheme, seed=None, layout="torch"):
    check_seed(scheme, seed)
    check_layout(scheme, layout, TF1)


def _gen(seed, generator, tensor):
    return resolve_generator("tf1", seed, generator, tensor.device)


@TF1.register(
    "tf1.zeros_initializer", family="constant", validate=lambda layout: _common("tf1.zeros_initializer", None, layout)
)
@fills_in_place
def zeros_initializer_(
    tensor: torch.Tensor,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.zeros_initializer``: 0.

    Args:
        tensor: The tensor to fill, in place.
        layout: ``"torch"`` or ``"keras"``; changes nothing.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> zeros_initializer_(torch.empty(2))
        tensor([0., 0.])
    """
    return tensor.zero_()


@TF1.register(
    "tf1.ones_initializer", family="constant", validate=lambda layout: _common("tf1.ones_initializer", None, layout)
)
@fills_in_place
def ones_initializer_(
    tensor: torch.Tensor,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.ones_initializer``: 1.

    Args:
        tensor: The tensor to fill, in place.
        layout: ``"torch"`` or ``"keras"``; changes nothing.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> ones_initializer_(torch.empty(2))
        tensor([1., 1.])
    """
    return tensor.fill_(1.0)


def _validate_constant(value, verify_shape, layout):
    flat = value if isinstance(value, (list, tuple)) else [value]

    def numbers(v):
        return all(
            numbers(x) if isinstance(x, (list, tuple)) else isinstance(x, (int, float)) and not isinstance(x, bool)
            for x in v
        )

    if not numbers(flat):
        raise TypeError(f"Invalid type for initial value: {shown(value)} (expected a number or a list of numbers)")
    if not isinstance(verify_shape, bool):
        raise SchemeArgumentError(
            f"tf1.constant_initializer: verify_shape must be a bool, got verify_shape={shown(verify_shape)}"
        )
    _common("tf1.constant_initializer", None, layout)


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    return [value]


@TF1.register("tf1.constant_initializer", family="constant", validate=_validate_constant)
@fills_in_place
def constant_initializer_(
    tensor: torch.Tensor,
    value: float | list[Any] | tuple[Any, ...] = 0,
    verify_shape: bool = False,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.constant_initializer``: a scalar fills everything; a list fills the kernel in row-major
    order, padded with its last element when shorter (TF 1.x behaviour).

    Args:
        tensor: The tensor to fill, in place.
        value: A number, or a (nested) list of numbers.
        verify_shape: Require a list ``value`` to have exactly the kernel's shape.
        layout: ``"torch"``: the list fills the TF kernel (*kernel, in, out) of the torch weight
            ``tensor``, row-major; ``"keras"``: ``tensor`` already has TF's layout.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled.

    Raises:
        TypeError: ``value`` is not a number or a list of numbers, or ``verify_shape`` is set and
            its shape differs from the kernel's.
        ValueError: The list is empty or has more elements than the kernel.

    Examples:
        >>> constant_initializer_(torch.empty(2, 3), value=[1.0, 2.0], layout="keras")
        tensor([[1., 2., 2.],
                [2., 2., 2.]])
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if not isinstance(value, (list, tuple)):
        return tensor.fill_(value)
    flat = _flatten(value)
    n = math.prod(shape)
    if verify_shape and tuple(_shape_of(value)) != tuple(shape):
        raise TypeError(f"Expected Tensor's shape: {tuple(shape)}, got {tuple(_shape_of(value))}.")
    if len(flat) > n:
        raise ValueError(f"Too many elements provided. Needed at most {n}, but received {len(flat)}")
    if not flat:
        raise ValueError("tf1.constant_initializer: value is an empty list")
    flat = flat + [flat[-1]] * (n - len(flat))
    kernel = torch.tensor(flat, dtype=torch.float64, device=tensor.device).reshape(shape)
    return tensor.copy_(to_tensor(kernel))


def _shape_of(value):
    shape = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _validate_normal(name):
    def validate(mean, stddev, seed, layout):
        check_number(name, "mean", mean)
        if name.endswith("truncated_normal_initializer"):
            check_number(name, "stddev", stddev, above=0)
        else:
            check_number(name, "stddev", stddev, minimum=0)
        _common(name, seed, layout)

    return validate


@TF1.register(
    "tf1.random_normal_initializer", family="normal", validate=_validate_normal("tf1.random_normal_initializer")
)
@fills_in_place
def random_normal_initializer_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    stddev: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.random_normal_initializer``: :math:`\mathcal{N}(\text{mean}, \text{stddev}^2)`, default stddev 1.

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean.
        stddev: The standard deviation.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` or ``"keras"``; element-wise, so it changes nothing.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> random_normal_initializer_(torch.empty(2, 2), seed=0).shape
        torch.Size([2, 2])
    """
    return rng.normal_(tensor, mean, stddev, _gen(seed, generator, tensor))


@TF1.register(
    "tf1.truncated_normal_initializer",
    family="truncated_normal",
    validate=_validate_normal("tf1.truncated_normal_initializer"),
)
@fills_in_place
def truncated_normal_initializer_(
    tensor: torch.Tensor,
    mean: float = 0.0,
    stddev: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.truncated_normal_initializer``: normal cut at mean ± 2·stddev, no variance correction.

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean before truncation.
        stddev: The standard deviation before truncation (positive).
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` or ``"keras"``; element-wise, so it changes nothing.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(truncated_normal_initializer_(torch.empty(100), stddev=0.5, seed=0).abs().max() <= 1.0)
        True
    """
    g = _gen(seed, generator, tensor)
    return rng.truncated_normal_(tensor, mean, stddev, mean - 2.0 * stddev, mean + 2.0 * stddev, g)


def _validate_uniform(minval, maxval, seed, layout):
    check_number("tf1.random_uniform_initializer", "minval", minval)
    if maxval is not None:
        check_number("tf1.random_uniform_initializer", "maxval", maxval)
    hi = 1.0 if maxval is None else maxval
    if minval > hi:
        raise SchemeArgumentError(
            "tf1.random_uniform_initializer: needs minval <= maxval, "
            f"got minval={shown(minval)}, maxval={shown(maxval)}"
        )
    _common("tf1.random_uniform_initializer", seed, layout)


@TF1.register("tf1.random_uniform_initializer", family="uniform", validate=_validate_uniform)
@fills_in_place
def random_uniform_initializer_(
    tensor: torch.Tensor,
    minval: float = 0,
    maxval: float | None = None,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.random_uniform_initializer``: :math:`\mathcal{U}[\text{minval}, \text{maxval})`; maxval None means 1.

    Args:
        tensor: The tensor to fill, in place.
        minval: The lower bound.
        maxval: The upper bound; ``None`` means 1.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"`` or ``"keras"``; element-wise, so it changes nothing.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(random_uniform_initializer_(torch.empty(100), seed=0).min() >= 0)
        True
    """
    return rng.uniform_(tensor, minval, 1.0 if maxval is None else maxval, _gen(seed, generator, tensor))


def _validate_vs(scale, mode, distribution, seed, layout):
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 < scale < math.inf:
        raise SchemeArgumentError(f"`scale` must be positive float. Received: scale={shown(scale)}")
    if mode not in MODES:
        raise SchemeArgumentError(
            f"Invalid `mode` argument: {mode}. "
            + describe_choice("mode", mode, MODES)
            + (" Modes are case-sensitive." if isinstance(mode, str) and mode.lower() in MODES else "")
        )
    if not isinstance(distribution, str) or distribution.lower() not in DISTRIBUTIONS:
        raise SchemeArgumentError(
            f"Invalid `distribution` argument: {distribution}. "
            + describe_choice("distribution", distribution, DISTRIBUTIONS)
        )
    _common("tf1.variance_scaling_initializer", seed, layout)


def _vs(tensor, scale, mode, distribution, seed, layout, generator):
    _validate_vs(scale, mode, distribution, seed, layout)  # direct calls bypass Scheme's validation
    dist = distribution.lower()
    return variance_scaling_fill(
        tensor,
        scale=scale,
        mode=mode,
        distribution="truncated_normal" if dist == "normal" else dist,
        framework=TF1,
        layout=layout,
        guard=True,
        generator=_gen(seed, generator, tensor),
    )


@TF1.register("tf1.variance_scaling_initializer", family="truncated_normal", validate=_validate_vs)
@fills_in_place
def variance_scaling_initializer_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.variance_scaling_initializer`` (r1.15): target variance scale / max(1, n).

    .. math:: \sigma_{\text{after truncation}} = \sqrt{\text{scale}/\max(1, n)}

    Args:
        tensor: The tensor to fill, in place.
        scale: The target variance times the fan (positive).
        mode: The fan ``n``: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (case-sensitive).
        distribution: ``"truncated_normal"`` or ``"normal"`` (both the corrected truncated normal,
            cut at ±2σ), ``"untruncated_normal"`` or ``"uniform"``; case-insensitive.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: ``tensor`` is a torch weight, whose fans are those of the equivalent TF
            kernel; ``"keras"``: it already has TF's layout (*kernel, in, out).
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Raises:
        SchemeArgumentError: ``scale``, ``mode`` or ``distribution`` is invalid, or both ``seed``
            and ``generator`` are given.

    Examples:
        >>> variance_scaling_initializer_(torch.empty(4, 4), distribution="uniform", seed=0).shape
        torch.Size([4, 4])
    """
    return _vs(tensor, scale, mode, distribution, seed, layout, generator)


@TF1.register(
    "tf1.glorot_uniform_initializer",
    family="uniform",
    validate=lambda seed, layout: _common("tf1.glorot_uniform_initializer", seed, layout),
)
@fills_in_place
def glorot_uniform_initializer_(
    tensor: torch.Tensor,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.glorot_uniform_initializer``, the ``tf.get_variable`` default.

    .. math:: \mathcal{U}(\pm\sqrt{6/(n_{in}+n_{out})})

    Args:
        tensor: The tensor to fill, in place.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: fans of the equivalent TF kernel of the torch weight; ``"keras"``:
            ``tensor`` already has TF's layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> glorot_uniform_initializer_(torch.empty(4, 4), seed=0).shape
        torch.Size([4, 4])
    """
    return _vs(tensor, 1.0, "fan_avg", "uniform", seed, layout, generator)


@TF1.register(
    "tf1.glorot_normal_initializer",
    family="truncated_normal",
    validate=lambda seed, layout: _common("tf1.glorot_normal_initializer", seed, layout),
)
@fills_in_place
def glorot_normal_initializer_(
    tensor: torch.Tensor,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.glorot_normal_initializer``: truncated normal, std after truncation :math:`\sqrt{2/(n_{in}+n_{out})}`.

    Args:
        tensor: The tensor to fill, in place.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: fans of the equivalent TF kernel of the torch weight; ``"keras"``:
            ``tensor`` already has TF's layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> glorot_normal_initializer_(torch.empty(4, 4), seed=0).shape
        torch.Size([4, 4])
    """
    return _vs(tensor, 1.0, "fan_avg", "normal", seed, layout, generator)


def _validate_uus(factor, seed, layout):
    # A negative factor would ask for U(limit, -limit): an empty range.
    check_number("tf1.uniform_unit_scaling_initializer", "factor", factor, minimum=0)
    _common("tf1.uniform_unit_scaling_initializer", seed, layout)


@TF1.register("tf1.uniform_unit_scaling_initializer", family="uniform", validate=_validate_uus)
@fills_in_place
def uniform_unit_scaling_initializer_(
    tensor: torch.Tensor,
    factor: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.uniform_unit_scaling_initializer`` (deprecated in TF).

    .. math:: \mathcal{U}(\pm \text{factor}\sqrt{3/\max(1, \prod \text{shape}[:-1])})

    Args:
        tensor: The tensor to fill, in place.
        factor: The multiplier of the limit (non-negative).
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: ``shape`` is that of the equivalent TF kernel of the torch weight;
            ``"keras"``: ``tensor`` already has TF's layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Examples:
        >>> bool(uniform_unit_scaling_initializer_(torch.empty(2, 3), seed=0).abs().max() <= 1.0)
        True
    """
    shape, _ = kernel_view(tensor, layout)
    input_size = max(1, math.prod(shape[:-1]))
    limit = math.sqrt(3.0 / input_size) * factor
    return rng.uniform_(tensor, -limit, limit, _gen(seed, generator, tensor))


def _validate_orthogonal(gain, seed, layout):
    check_number("tf1.orthogonal_initializer", "gain", gain)
    _common("tf1.orthogonal_initializer", seed, layout)


@TF1.register("tf1.orthogonal_initializer", family="orthogonal", validate=_validate_orthogonal)
@fills_in_place
def orthogonal_initializer_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.orthogonal_initializer``: (semi-)orthogonal times gain, on the flattened kernel.

    The kernel is flattened to (prod(shape[:-1]), shape[-1]).

    Args:
        tensor: The tensor to fill, in place (2 or more dims).
        gain: The scaling factor.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: ``tensor`` is a torch weight, flattened as its TF kernel; ``"keras"``:
            it already has TF's layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel has fewer than 2 dimensions.

    Examples:
        >>> w = orthogonal_initializer_(torch.empty(3, 5), seed=0)
        >>> torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)
        True
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) < 2:
        raise ValueError(
            f"The tensor to initialize must be at least two-dimensional. Received: shape={shape} of rank {len(shape)}."
        )
    rows, cols = TF1.orthogonal_shape(shape)
    q = orthogonal_matrix(rows, cols, dtype=tensor.dtype, device=tensor.device, generator=_gen(seed, generator, tensor))
    return tensor.copy_(to_tensor((gain * q).reshape(shape)))


def _validate_identity(gain, layout):
    check_number("tf1.identity_initializer", "gain", gain)
    _common("tf1.identity_initializer", None, layout)


@TF1.register("tf1.identity_initializer", family="identity", validate=_validate_identity)
@fills_in_place
def identity_initializer_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tf.initializers.identity``: gain · I, 2-D only.

    Args:
        tensor: The 2-D tensor to fill, in place.
        gain: The value of the diagonal.
        layout: ``"torch"``: the identity of the TF kernel (in, out), written back as the torch
            weight (out, in); ``"keras"``: ``tensor`` already has TF's layout.
        generator: Accepted and unused.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel is not 2-D.

    Examples:
        >>> identity_initializer_(torch.empty(2, 2))
        tensor([[1., 0.],
                [0., 1.]])
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if len(shape) != 2:
        raise ValueError(
            "Identity matrix initializer can only be used for 2D matrices. "
            f"Received: shape={shape} of rank {len(shape)}."
        )
    return tensor.copy_(to_tensor(gain * torch.eye(*shape, dtype=torch.float64, device=tensor.device)))


def _validate_cdo(gain, seed, layout):
    check_number("tf1.convolutional_delta_orthogonal", "gain", gain)
    _common("tf1.convolutional_delta_orthogonal", seed, layout)


@TF1.register("tf1.convolutional_delta_orthogonal", family="orthogonal", validate=_validate_cdo)
@fills_in_place
def convolutional_delta_orthogonal_(
    tensor: torch.Tensor,
    gain: float = 1.0,
    seed: int | None = None,
    layout: str = "torch",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``tf.initializers.convolutional_delta_orthogonal`` (Xiao et al., 2018): an orthogonal
    (in, out) matrix times ``gain`` at the spatial centre (k-1)//2 of the (*k, in, out) kernel,
    zeros elsewhere.

    .. math:: W[c] W[c]^\top = \text{gain}^2 I_{in}, \quad c = ((k_1-1)/\!/2, \ldots)

    Versions: TF 1.x from r1.13 (and r1.15, which fanin follows, as for variance scaling)
    multiplies by ``gain``; earlier 1.x releases multiplied by ``sqrt(gain)``. With the default
    gain 1 they agree. TF draws an (out × out) Gaussian, orthogonalizes it and keeps its first
    ``in`` rows; fanin draws the (out × in) Gaussian of :func:`~fanin.frameworks.shared.orthogonal_matrix`:
    the same distribution, a semi-orthogonal (in, out) matrix with orthonormal rows.

    Args:
        tensor: The 3-, 4- or 5-D convolution weight to fill, in place.
        gain: The scaling factor.
        seed: An int: every call draws from a fresh ``torch.Generator`` seeded with it; ``None``:
            draw from ``generator``.
        layout: ``"torch"``: ``tensor`` is a torch convolution weight (out, in, *k), filled as its
            TF kernel; ``"keras"``: it already has TF's layout.
        generator: The random source when ``seed`` is ``None`` (``None``: torch's global RNG).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The kernel is not 3-, 4- or 5-D, or it has more input than output channels.

    Examples:
        >>> w = convolutional_delta_orthogonal_(torch.empty(4, 2, 3), seed=0)   # torch Conv1d (out=4, in=2, k=3)
        >>> bool(w[:, :, 0].abs().sum() == 0) and torch.allclose(w[:, :, 1].T @ w[:, :, 1], torch.eye(2), atol=1e-6)
        True
    """
    shape, to_tensor = kernel_view(tensor, layout)
    if not 3 <= len(shape) <= 5:
        raise ValueError(
            "The tensor to initialize must be at least three-dimensional and at most five-dimensional. "
            f"Received: shape={shape} of rank {len(shape)}."
        )
    if shape[-2] > shape[-1]:
        raise ValueError(
            "In_filters cannot be greater than out_filters. "
            f"Received: in_filters={shape[-2]}, out_filters={shape[-1]} (kernel shape={shape})."
        )
    q = orthogonal_matrix(
        shape[-2], shape[-1], dtype=tensor.dtype, device=tensor.device, generator=_gen(seed, generator, tensor)
    )
    kernel = torch.zeros(shape, dtype=q.dtype, device=tensor.device)
    kernel[tuple((k - 1) // 2 for k in shape[:-2])] = q * gain
    return tensor.copy_(to_tensor(kernel))


def _constructor(name: str):
    def build(**kwargs) -> Scheme:
        return Scheme(name, **kwargs)

    build.__name__ = build.__qualname__ = name.split(".")[1]
    build.__doc__ = f"``tf.{build.__name__}`` as a fanin :class:`~fanin.Scheme` (the arguments of ``{name}``)."
    return build


zeros_initializer = _constructor("tf1.zeros_initializer")
ones_initializer = _constructor("tf1.ones_initializer")
constant_initializer = _constructor("tf1.constant_initializer")
random_normal_initializer = _constructor("tf1.random_normal_initializer")
truncated_normal_initializer = _constructor("tf1.truncated_normal_initializer")
random_uniform_initializer = _constructor("tf1.random_uniform_initializer")
variance_scaling_initializer = _constructor("tf1.variance_scaling_initializer")
glorot_uniform_initializer = _constructor("tf1.glorot_uniform_initializer")
glorot_normal_initializer = _constructor("tf1.glorot_normal_initializer")
uniform_unit_scaling_initializer = _constructor("tf1.uniform_unit_scaling_initializer")
orthogonal_initializer = _constructor("tf1.orthogonal_initializer")
identity_initializer = _constructor("tf1.identity_initializer")
convolutional_delta_orthogonal = _constructor("tf1.convolutional_delta_orthogonal")
