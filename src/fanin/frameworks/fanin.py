r"""fanin's own composite schemes: per-gate blocks, padded rows, the LSUV start and mark.

Schemes that no framework namespace (:mod:`fanin.init`, :mod:`fanin.keras`, :mod:`fanin.tf1`,
:mod:`fanin.jax`) has, built from the same random source. They form the framework ``"fanin"``
(:data:`FANIN`, names ``fanin.*``, torch's layout); ``"lsuv"`` keeps its bare torch-style name
and is registered as a torch scheme.

- The framework presets (:mod:`fanin.rules.defaults`) need a layer's default as *one* scheme where
  a framework composes several steps or variables: ``fanin.padded_normal`` (an embedding table with
  a zero padding row), ``fanin.zeros_after_uniform`` (a bias drawn, then zeroed),
  ``fanin.gate_constant`` / ``fanin.gate_uniform`` / ``fanin.gatewise_orthogonal`` (an RNN
  parameter that stacks its gates' blocks along the first dimension, as torch packs them).
- ``"lsuv"`` is the first step of LSUV: an orthogonal start and a mark on the tensor, which
  :func:`fanin.lsuv_` (:mod:`fanin.diagnostics.lsuv`, the step that needs data) looks for with
  :func:`is_marked`.

>>> import torch, fanin
>>> fanin.get("fanin.gate_constant(values=[0.0, 1.0])")(torch.empty(4)).tolist()
[0.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fanin import rng
from fanin.errors import SchemeArgumentError, shown
from fanin.frameworks import torch as torch_schemes
from fanin.frameworks.record import Framework
from fanin.frameworks.torch import TORCH
from fanin.rng import Stream
from fanin.schemes.checks import check_int, check_number, fills_in_place

__all__ = [
    "FANIN",
    "LSUV_MARK",
    "gate_constant_",
    "gate_uniform_",
    "gatewise_orthogonal_",
    "is_marked",
    "lsuv_scheme",
    "padded_normal_",
    "zeros_after_uniform_",
]

#: fanin's own schemes: torch-layout tensors, torch's fans; none runs shard-locally (their
#: blocks, rows and orthogonal matrices need the whole tensor), and no layer defaults of their own.
FANIN = Framework(name="fanin", title="fanin", prefix="fanin.", layout="torch")

#: The attribute the ``"lsuv"`` scheme sets (to ``True``) on the tensor object it fills.
LSUV_MARK = "_fanin_lsuv"


# --- LSUV's first step --------------------------------------------------------------------------


def _validate_lsuv() -> None:
    return None


@TORCH.register("lsuv", family="orthogonal", validate=_validate_lsuv)
def lsuv_scheme(tensor: torch.Tensor, generator: torch.Generator | Stream | None = None) -> torch.Tensor:
    r"""LSUV's first step: a (semi-)orthogonal start, and a mark for :func:`fanin.lsuv_` to calibrate.

    The values are :func:`fanin.init.orthogonal_` with gain 1 (:math:`W W^\top = I` for
    rows <= cols, torch's construction; a :class:`fanin.Stream` gives its own orthogonal matrix),
    so the weight is usable before calibration. The tensor object gets a mark that
    ``fanin.lsuv_(model, batch, layers="marked")`` looks for (see :mod:`fanin.diagnostics.lsuv`).

    Args:
        tensor: The weight to fill, in place (2 or more dims).
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled and marked.

    Raises:
        TypeError: ``tensor`` is not a ``torch.Tensor``.
        ValueError: ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.empty(3, 5))
        >>> _ = lsuv_scheme(w, generator=torch.Generator().manual_seed(0))
        >>> is_marked(w), torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)
        (True, True)
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"lsuv fills a torch.Tensor in place, got tensor={shown(tensor)} ({type(tensor).__name__})")
    if tensor.dim() < 2:
        raise ValueError(
            f"lsuv initializes the weight of a Linear or convolution layer (2 or more dims), got a tensor of "
            f"shape {tuple(tensor.shape)}; assign it to weights only (e.g. a rule on '*.weight')"
        )
    torch_schemes.orthogonal_(tensor, 1.0, generator=generator)
    setattr(tensor, LSUV_MARK, True)
    return tensor


def is_marked(tensor: torch.Tensor) -> bool:
    """Whether the ``"lsuv"`` scheme filled this tensor object (and so awaits :func:`fanin.lsuv_`).

    Args:
        tensor: The tensor object to look at.

    Returns:
        ``True`` when it carries the mark :data:`LSUV_MARK`.
    """
    return bool(getattr(tensor, LSUV_MARK, False))


# --- per-gate blocks and padded rows ------------------------------------------------------------


def _check_numbers(scheme: str, name: str, values: object, *, nonnegative: bool = False) -> None:
    numbers = values if isinstance(values, (list, tuple)) else ()
    ok = len(numbers) > 0 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
    if not ok or (nonnegative and any(v < 0 for v in numbers)):
        kind = "non-negative numbers" if nonnegative else "numbers"
        raise SchemeArgumentError(
            f"{scheme}: {name} must be a non-empty list or tuple of {kind}, one per gate, got {name}={shown(values)}"
        )


def _gate_rows(scheme: str, tensor: torch.Tensor, gates: int) -> int:
    rows = tensor.shape[0] if tensor.dim() else 0
    if tensor.dim() == 0 or rows % gates:
        raise ValueError(
            f"{scheme}: the first dimension must split into {gates} equal gate blocks, got shape={tuple(tensor.shape)}"
        )
    return rows // gates


def _validate_padded_normal(padding_idx, mean, std):
    check_number("fanin.padded_normal", "mean", mean)
    check_number("fanin.padded_normal", "std", std, minimum=0)
    check_int("fanin.padded_normal", "padding_idx", padding_idx)


@FANIN.register("fanin.padded_normal", family="normal", validate=_validate_padded_normal)
@fills_in_place
def padded_normal_(
    tensor: torch.Tensor,
    padding_idx: int,
    mean: float = 0.0,
    std: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""A normal embedding table whose padding row is zero (``nn.Embedding(padding_idx=...)``).

    .. math:: W \sim \mathcal{N}(\text{mean}, \text{std}^2), \quad W_{\text{padding\_idx}} = 0

    One ``normal_`` over the whole table (so the RNG covers the padding row, as torch's does),
    then the row is zeroed.

    Args:
        tensor: The embedding table (num, dim) to fill, in place.
        padding_idx: The row to zero; may be negative (counted from the end).
        mean: The mean of the normal distribution.
        std: The standard deviation of the normal distribution.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``padding_idx`` is not a row of the table.

    Examples:
        >>> w = padded_normal_(torch.empty(4, 3), padding_idx=1, generator=torch.Generator().manual_seed(0))
        >>> w[1].tolist()
        [0.0, 0.0, 0.0]
    """
    rows = tensor.shape[0] if tensor.dim() else 0
    if not -rows <= padding_idx < rows:
        raise ValueError(
            f"fanin.padded_normal: padding_idx must index a row of the table, got padding_idx={padding_idx} "
            f"for shape={tuple(tensor.shape)}"
        )
    rng.normal_(tensor, mean, std, generator)
    tensor[padding_idx].fill_(0)
    return tensor


def _validate_zeros_after_uniform(a, b):
    check_number("fanin.zeros_after_uniform", "a", a)
    check_number("fanin.zeros_after_uniform", "b", b)
    if a > b:
        raise SchemeArgumentError(f"fanin.zeros_after_uniform: needs a <= b, got a={shown(a)}, b={shown(b)}")


@FANIN.register("fanin.zeros_after_uniform", family="constant", validate=_validate_zeros_after_uniform)
@fills_in_place
def zeros_after_uniform_(
    tensor: torch.Tensor,
    a: float,
    b: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Zeros, after one thrown-away :math:`\mathcal{U}[a, b)` draw of the tensor's size.

    ``nn.MultiheadAttention`` builds ``out_proj`` as a Linear (whose bias draws
    :math:`\mathcal{U}(\pm 1/\sqrt{E})`) and then zeroes that bias: the draw only moves the
    generator, and this scheme moves it the same way so that later draws stay bit-identical.

    Args:
        tensor: The tensor to fill, in place.
        a: The lower bound of the thrown-away draw.
        b: The upper bound of the thrown-away draw.
        generator: The generator to move (``None``: torch's global RNG); with a
            :class:`fanin.Stream` nothing needs moving and nothing is drawn.

    Returns:
        ``tensor``, filled with 0.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> zeros_after_uniform_(torch.empty(3), a=-0.5, b=0.5, generator=g).tolist()
        [0.0, 0.0, 0.0]
    """
    if not isinstance(generator, rng.Stream):
        rng.uniform_(tensor, a, b, generator)
    tensor.zero_()
    return tensor


def _validate_gate_constant(values):
    _check_numbers("fanin.gate_constant", "values", values)


@FANIN.register("fanin.gate_constant", family="constant", validate=_validate_gate_constant)
@fills_in_place
def gate_constant_(
    tensor: torch.Tensor,
    values: Sequence[float],
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""A gate-stacked bias: the first dimension splits into ``len(values)`` equal blocks, block
    ``k`` is filled with ``values[k]``.

    .. math:: b_{[k h, (k+1) h)} = \text{values}_k, \quad h = \text{size}(0) / \text{len(values)}

    Keras's ``unit_forget_bias`` for an LSTM packed as torch packs it (gates i, f, g, o) is
    ``values=[0, 1, 0, 0]``.

    Args:
        tensor: The tensor to fill, in place; its first dimension splits into the blocks.
        values: One number per gate block.
        generator: Accepted and unused (nothing is drawn).

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The first dimension does not split into ``len(values)`` equal blocks.

    Examples:
        >>> gate_constant_(torch.empty(8), values=[0.0, 1.0, 0.0, 0.0]).tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    h = _gate_rows("fanin.gate_constant", tensor, len(values))
    for k, value in enumerate(values):
        tensor[k * h : (k + 1) * h].fill_(value)
    return tensor


def _validate_gate_uniform(bounds):
    _check_numbers("fanin.gate_uniform", "bounds", bounds, nonnegative=True)


@FANIN.register("fanin.gate_uniform", family="uniform", validate=_validate_gate_uniform)
@fills_in_place
def gate_uniform_(
    tensor: torch.Tensor,
    bounds: Sequence[float],
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Gate-stacked uniform: block ``k`` of the first dimension is :math:`\mathcal{U}(\pm\text{bounds}_k)`.

    .. math:: W_{[k h, (k+1) h)} = \text{bounds}_k \cdot u, \quad u \sim \mathcal{U}[-1, 1)

    One draw of :math:`\mathcal{U}[-1, 1)` over the whole tensor (so a counter stream gives each
    element one value), scaled per block. TF 1.x's GRU cell keeps its gate kernels (r, z) and its
    candidate kernel in two variables with different Glorot limits; packed as torch packs them
    they form one tensor with two bounds.

    Args:
        tensor: The tensor to fill, in place; its first dimension splits into the blocks.
        bounds: One non-negative bound per gate block.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: The first dimension does not split into ``len(bounds)`` equal blocks.

    Examples:
        >>> w = gate_uniform_(torch.empty(6, 2), bounds=[0.1, 0.1, 1.0], generator=torch.Generator().manual_seed(0))
        >>> bool(w[:4].abs().max() <= 0.1)
        True
    """
    h = _gate_rows("fanin.gate_uniform", tensor, len(bounds))
    rng.uniform_(tensor, -1.0, 1.0, generator)
    for k, bound in enumerate(bounds):
        tensor[k * h : (k + 1) * h].mul_(bound)
    return tensor


def _validate_gatewise_orthogonal(gates, scale):
    check_int("fanin.gatewise_orthogonal", "gates", gates, minimum=1)
    check_number("fanin.gatewise_orthogonal", "scale", scale)


@FANIN.register("fanin.gatewise_orthogonal", family="orthogonal", validate=_validate_gatewise_orthogonal)
@fills_in_place
def gatewise_orthogonal_(
    tensor: torch.Tensor,
    gates: int = 4,
    scale: float = 1.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""An independent orthogonal matrix for each of ``gates`` blocks of the first dimension.

    .. math:: W = [Q_1; \dots; Q_G]\,\text{scale}, \quad Q_k^\top Q_k = I \ (h \ge c) \text{ or } Q_k Q_k^\top = I

    Flax's LSTM/GRU cells hold one recurrent Dense per gate, each ``orthogonal()`` on its square
    (h, h) kernel; torch stacks them as ``weight_hh`` (G·h, h). One Gaussian draw of shape
    (G, max(h, c), min(h, c)), a batched reduced QR and the sign fix of Mezzadri (2007), as
    :func:`fanin.frameworks.shared.orthogonal_matrix` does for one matrix.

    Args:
        tensor: The 2-D weight (G·h, c) to fill, in place.
        gates: The number of gate blocks G.
        scale: The scaling factor.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None``
            for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``tensor`` is not 2-D, or its first dimension does not split into ``gates``
            equal blocks.

    Examples:
        >>> w = gatewise_orthogonal_(torch.empty(8, 2), gates=4, generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w[2:4] @ w[2:4].T, torch.eye(2), atol=1e-6)
        True
    """
    if tensor.dim() != 2:
        raise ValueError(f"fanin.gatewise_orthogonal: needs a 2-D weight, got shape={tuple(tensor.shape)}")
    h = _gate_rows("fanin.gatewise_orthogonal", tensor, gates)
    c = tensor.shape[1]
    work = torch.float64 if tensor.dtype == torch.float64 else torch.float32
    a = rng.standard_normal((gates, max(h, c), min(h, c)), dtype=work, device=tensor.device, generator=generator)
    q, r = torch.linalg.qr(a)
    q = q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(-2)
    if h < c:
        q = q.transpose(-2, -1)
    return tensor.copy_((q * scale).reshape(gates * h, c))
