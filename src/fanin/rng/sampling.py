"""Sampling primitives over a ``torch.Generator`` or a counter-based :class:`~fanin.rng.Stream`.

Each primitive fills a tensor in place and returns it. With a ``torch.Generator`` (or ``None``,
torch's global generator) ``uniform_`` and ``normal_`` are one call of the tensor's own sampler,
so they consume the generator exactly as ``torch.nn.init`` does, and ``truncated_normal_`` is an
exact inverse-CDF sampler with no rejection loop. With a ``Stream`` every element is the stream's
value at its row-major index (docs/stream.md): independent of device, threads and layout.
"""

from __future__ import annotations

import math

import torch

from fanin.rng.sharded import check_generator_for
from fanin.rng.stream import Stream

__all__ = ["check_generator", "normal_", "standard_normal", "truncated_normal_", "uniform_"]


def check_generator(generator: object) -> None:
    """Raise ``TypeError`` unless ``generator`` is ``None``, a ``torch.Generator`` or a ``fanin.Stream``.

    >>> check_generator(None)
    >>> check_generator(42)
    Traceback (most recent call last):
    ...
    TypeError: generator must be None, a torch.Generator or a fanin.Stream, got generator=42 (int)
    """
    if generator is not None and not isinstance(generator, (torch.Generator, Stream)):
        raise TypeError(
            f"generator must be None, a torch.Generator or a fanin.Stream, got generator={generator!r} "
            f"({type(generator).__name__})"
        )


def uniform_(tensor: torch.Tensor, low: float, high: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill ``tensor`` with :math:`\mathcal{U}[\text{low}, \text{high})` in one sampler call."""
    check_generator_for(tensor, generator)  # a DTensor takes only the stream (fanin.rng.sharded)
    if isinstance(generator, Stream):
        return generator.uniform_(tensor, low, high)
    return tensor.uniform_(low, high, generator=generator)


def normal_(tensor: torch.Tensor, mean: float, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Fill ``tensor`` with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` in one sampler call."""
    check_generator_for(tensor, generator)  # a DTensor takes only the stream (fanin.rng.sharded)
    if isinstance(generator, Stream):
        return generator.normal_(tensor, mean, std)
    return tensor.normal_(mean, std, generator=generator)


def standard_normal(
    shape: tuple[int, ...],
    *,
    dtype: torch.dtype,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A new tensor of N(0, 1) draws (the Gaussian matrix behind orthogonal schemes)."""
    if isinstance(generator, Stream):
        return generator.standard_normal(shape, dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device).normal_(0.0, 1.0, generator=generator)


def _ndtr(x: float) -> float:
    # Φ(x) = erfc(-x/√2)/2, accurate in the lower tail where 1 + erf(·) would cancel.
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def truncated_normal_(
    tensor: torch.Tensor,
    mean: float,
    std: float,
    lower: float,
    upper: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Fill ``tensor`` with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to [lower, upper].

    ``lower`` and ``upper`` are absolute values. Exact by inverse CDF: with
    :math:`\alpha = (\text{lower}-\text{mean})/\text{std}` and :math:`\beta` likewise,
    :math:`z = \Phi^{-1}(u)`, :math:`u \sim \mathcal{U}[\Phi(\alpha), \Phi(\beta))`, computed in
    float64 and in the lower tail (mirrored when the interval lies above the mean) so that the
    tails keep their precision; then rounded once to the tensor's dtype and clamped to the bounds.
    """
    if not std > 0:
        raise ValueError(f"truncated normal needs std > 0, got std={std!r}")
    if not lower < upper:
        raise ValueError(f"truncated normal needs lower < upper, got lower={lower!r}, upper={upper!r}")
    if tensor.numel() == 0:
        return tensor
    check_generator_for(tensor, generator)  # a DTensor takes only the stream (fanin.rng.sharded)
    if isinstance(generator, Stream):
        return generator.truncated_normal_(tensor, mean, std, lower, upper)
    alpha, beta = (lower - mean) / std, (upper - mean) / std
    mirror = alpha > 0  # sample -z in (-β, -α): the lower tail keeps the precision of Φ
    lo, hi = (-beta, -alpha) if mirror else (alpha, beta)
    u = torch.empty(tensor.shape, dtype=torch.float64, device=tensor.device)
    u.uniform_(_ndtr(lo), _ndtr(hi), generator=generator)
    z = torch.special.ndtri(u).clamp_(lo, hi)
    if mirror:
        z.neg_()
    z.mul_(std).add_(mean)
    return tensor.copy_(z).clamp_(lower, upper)
