r"""What a scheme draws for a given shape: its distribution, std and bounds, read from the scheme itself.

The plan shows, for every tensor, the standard deviation and bounds the scheme will use. Rather
than re-deriving each scheme's formula here (and drifting from it), :func:`scheme_statistics` runs
the scheme once on a zero-stride view of the tensor's shape (no memory) with a
:class:`~fanin.rng.recording.DrawRecorder` (:func:`fanin.schemes.dryrun.dry_run`): every scheme draws through the sampling seam, so the
recorder sees the exact ``low``/``high``, ``mean``/``std`` or truncation bounds the real run passes, computed by the
scheme's own code from the same shape. From those:

==================  ============================================================================
family              statistics
==================  ============================================================================
uniform U[l, h)     mean (l+h)/2, std :math:`(h-l)/\sqrt{12}`, bounds [l, h]
normal              mean, std as drawn, unbounded
truncated normal    std after truncation :math:`\sigma\sqrt{\operatorname{Var}(Z \mid a \le Z \le b)}`
                    (:func:`fanin.formulas.variance.truncnorm_std`), bounds [lower, upper]
orthogonal          gain·Q with Q (semi-)orthogonal of shape (r, c): every entry's RMS is exactly
                    :math:`\text{gain}/\sqrt{\max(r, c)}`; bounds [-gain, gain]
constant            the value, std 0
==================  ============================================================================

Schemes the recorder cannot follow (several draws, structured writes) report ``None``.

>>> import torch
>>> from fanin.schemes import get
>>> s = scheme_statistics(get("kaiming_uniform(a=sqrt(5))"), (16, 64))  # torch's Linear(64, 16)
>>> s.distribution, round(s.high, 12)
('uniform', 0.125)
>>> round(scheme_statistics(get("xavier_normal"), (10, 30)).std, 6)
0.223607
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from fanin.formulas.variance import truncnorm_std
from fanin.schemes import Scheme
from fanin.schemes.dryrun import dry_run

__all__ = ["Statistics", "scheme_statistics"]


@dataclass(frozen=True)
class Statistics:
    """The distribution a scheme draws every element from (``low``/``high``: support bounds)."""

    distribution: str
    mean: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def bound(self) -> float | None:
        """max(|low|, |high|) when both are finite."""
        if self.low is None or self.high is None:
            return None
        return max(abs(self.low), abs(self.high))

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        parts = [self.distribution]
        if self.distribution == "constant":
            return f"constant {self.mean:g}"
        if self.std is not None:
            parts.append(f"std {self.std:.4g}")
        if self.low is not None and self.high is not None:
            parts.append(f"[{self.low:.4g}, {self.high:.4g}]")
        return " ".join(parts)


def _orthogonal(scheme: Scheme, shape: tuple[int, ...]) -> Statistics | None:
    args = scheme.arguments
    gain = args.get("gain", args.get("scale", 1.0))
    if len(shape) < 2 or not isinstance(gain, (int, float)):
        return None
    if scheme.framework == "torch":
        rows, cols = shape[0], math.prod(shape[1:])
    elif scheme.name in ("orthogonal", "keras.orthogonal", "tf1.orthogonal_initializer", "jax.orthogonal"):
        # Keras/TF/JAX flatten the kernel (*k, in, out) to (prod(shape[:-1]), out); a torch-layout
        # weight (out, in, *k) is that kernel permuted, so the same pair of sizes.
        rows, cols = math.prod(shape[1:]), shape[0]
        if args.get("layout") not in (None, "torch"):
            rows, cols = math.prod(shape[:-1]), shape[-1]
    else:
        return None
    if rows * cols == 0:
        return None
    g = abs(float(gain))
    return Statistics("orthogonal", 0.0, g / math.sqrt(max(rows, cols)), -g, g)


def _constant(scheme: Scheme) -> Statistics | None:
    args = scheme.arguments
    for key in ("val", "value"):
        if key in args:
            v = args[key]
            return Statistics("constant", float(v), 0.0, float(v), float(v)) if isinstance(v, (int, float)) else None
    if "zeros" in scheme.name:
        return Statistics("constant", 0.0, 0.0, 0.0, 0.0)
    if "ones" in scheme.name:
        return Statistics("constant", 1.0, 0.0, 1.0, 1.0)
    return None


def scheme_statistics(scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Statistics | None:
    """The statistics of what ``scheme`` draws for a tensor of ``shape`` (``None`` if unknown).

    The scheme's own code runs first at this shape and dtype (:func:`fanin.schemes.dryrun.dry_run`,
    drawing and writing nothing), so errors it raises for a tensor it cannot take (a 1-D tensor
    for an orthogonal or fan-based scheme, a bad layout, a gate count that does not divide the
    rows) propagate, and a plan reports them before anything is written.
    """
    shape = tuple(int(s) for s in shape)
    calls = dry_run(scheme, shape, dtype)
    if scheme.family == "constant":
        return _constant(scheme)
    if scheme.family == "orthogonal":
        return _orthogonal(scheme, shape)
    if scheme.family == "identity" or math.prod(shape) == 0 or not scheme.entry.takes_generator:
        return None
    if "seed" in scheme.arguments and scheme.arguments["seed"] is not None:
        return None  # draws from its own seeded generator, which the plan does not record
    if scheme.family == "sparse" and calls and calls[0][0] == "normal":
        _, mean, std = calls[0]
        return Statistics("sparse normal", mean, std)
    if len(calls) != 1:
        return None
    call = calls[0]
    if call[0] == "uniform":
        low, high = call[1], call[2]
        return Statistics("uniform", (low + high) / 2, (high - low) / math.sqrt(12.0), low, high)
    if call[0] == "normal":
        return Statistics("normal", call[1], call[2])
    _, mean, std, lower, upper = call
    return Statistics(
        "truncated normal", mean, std * truncnorm_std((lower - mean) / std, (upper - mean) / std), lower, upper
    )
