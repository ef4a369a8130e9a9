r"""What a scheme draws at a shape: one answer (kind, parameters, moments, bounds) for everyone.

The plan's statistics (:func:`fanin.planning.stats.scheme_statistics`), the lint, the audit's
candidates (:func:`fanin.auditing.candidates.probe`) and the signal-propagation theory
(:func:`fanin.diagnostics.theory.weight_variance`) ask :func:`draw_of` instead of re-deriving
each scheme's formula. It runs the scheme's own code once at the shape
(:func:`fanin.schemes.dryrun.trace`: a zero-stride view and a
:class:`~fanin.rng.recording.DrawRecorder`, so nothing is drawn or written) and reads the draw the
scheme asks the sampling seam for: the exact ``low``/``high``, ``mean``/``std`` or truncation
bounds the real run passes, computed by the scheme's own code from the same shape. What the
recorder stops at (an orthogonal matrix's Gaussian) is read from the scheme's framework record
(:meth:`fanin.frameworks.record.Framework.orthogonal_matrix`).

==================  ==================================  ============================================
kind                parameters (as drawn)               moments of one element's value, bounds
==================  ==================================  ============================================
uniform             low, high                           mean :math:`(l+h)/2`, std :math:`(h-l)/\sqrt{12}`,
                                                        [low, high]
normal              mean, std                           mean, std; unbounded
truncated normal    mean, std, low, high (absolute)     :math:`\mu + \sigma\,E[Z \mid \alpha \le Z \le \beta]`,
                                                        :math:`\sigma\sqrt{\operatorname{Var}(Z \mid \alpha
                                                        \le Z \le \beta)}` (:mod:`fanin.formulas.variance`),
                                                        [low, high]
orthogonal          gain, rows, cols                    gain·Q, Q (semi-)orthogonal (rows, cols): mean 0,
                                                        RMS :math:`|g|/\sqrt{\max(r, c)}` for every entry,
                                                        [-|g|, |g|]
sparse normal       mean, std, zeros (per column of     the mixture: mean :math:`(1-p)\mu`, second moment
                    ``rows``)                           :math:`(1-p)(\sigma^2+\mu^2)`, p = zeros / rows
constant            value                               the value, std 0
==================  ==================================  ============================================

``None`` for what has no one distribution: several draws, values computed from a draw (per-gate
bounds), structured writes (identity, delta-orthogonal), generator-less schemes, a random scheme
on a tensor with no element.
A data-dependent scheme is described by what it draws (``"lsuv"``: its orthogonal start).

>>> from fanin.schemes import get
>>> draw_of(get("kaiming_uniform(a=sqrt(5))"), (16, 64))  # torch's Linear(64, 16): U(±1/8)
<Draw uniform low=-0.125, high=0.125: mean 0, std 0.07217, [-0.125, 0.125]>
>>> draw_of(get("keras.orthogonal(gain=2.0)"), (8, 3, 5, 5))  # the kernel (5, 5, 3, 8) as a (75, 8) matrix
<Draw orthogonal gain=2, rows=75, cols=8: mean 0, std 0.2309, [-2, 2]>
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from fanin.formulas.variance import truncnorm_mean, truncnorm_std
from fanin.frameworks import framework_of
from fanin.schemes.dryrun import trace
from fanin.schemes.scheme import Scheme

__all__ = ["KINDS", "Draw", "draw_of"]

KINDS = ("constant", "normal", "orthogonal", "sparse normal", "truncated normal", "uniform")


@dataclass(frozen=True)
class Draw:
    """The distribution a scheme draws every element of a tensor from.

    ``parameters`` are as the scheme passes them (see the module table); ``mean`` and ``std`` are
    the moments of one element's value; ``low``/``high`` bound the support (``None``: unbounded).
    """

    kind: str
    parameters: Mapping[str, float] = field(default_factory=dict)
    mean: float = 0.0
    std: float = 0.0
    low: float | None = None
    high: float | None = None

    @property
    def variance(self) -> float:
        """The variance of one element's value, ``std**2``."""
        return self.std**2

    def __repr__(self) -> str:
        drawn = ", ".join(f"{k}={v:.6g}" for k, v in self.parameters.items())
        bounds = f", [{self.low:.4g}, {self.high:.4g}]" if self.low is not None and self.high is not None else ""
        return f"<Draw {self.kind} {drawn}: mean {self.mean:.4g}, std {self.std:.4g}{bounds}>"


def draw_of(scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Draw | None:
    """What ``scheme`` draws for a tensor of ``shape`` and ``dtype`` (``None``: no one distribution).

    The scheme's own code runs first at this shape (:func:`~fanin.schemes.dryrun.trace`), so
    what it raises for a tensor it cannot take (a 1-D tensor for an orthogonal or fan-based scheme,
    a bad layout, a gate count that does not divide the rows) propagates. A scheme with its own
    ``seed`` draws the same distribution as without it.

    >>> from fanin.schemes import get
    >>> draw_of(get("trunc_normal(std=1.0, a=0.0, b=2.0)"), (4, 4)).mean  # E[Z | 0 <= Z <= 2]
    0.722789752245...
    """
    shape = tuple(int(s) for s in shape)
    run = trace(scheme, shape, dtype)
    if scheme.family == "constant":
        return _constant(scheme)
    if scheme.family == "orthogonal":
        return _orthogonal(scheme, shape)
    if scheme.family == "identity" or math.prod(shape) == 0 or not scheme.entry.takes_generator:
        return None
    if scheme.family == "sparse":
        return _sparse(run.calls, shape)
    if len(run.calls) != 1 or run.wrote:
        return None  # several draws, or values computed from the draw (scaled per block, ...)
    return _elementwise(run.calls[0])


def _elementwise(call: tuple) -> Draw:
    if call[0] == "uniform":
        _, low, high = call
        return Draw("uniform", {"low": low, "high": high}, (low + high) / 2, (high - low) / math.sqrt(12.0), low, high)
    if call[0] == "normal":
        _, mean, std = call
        return Draw("normal", {"mean": mean, "std": std}, mean, std)
    _, mean, std, low, high = call
    alpha, beta = (low - mean) / std, (high - mean) / std
    return Draw(
        "truncated normal",
        {"mean": mean, "std": std, "low": low, "high": high},
        mean + std * truncnorm_mean(alpha, beta),
        std * truncnorm_std(alpha, beta),
        low,
        high,
    )


def _sparse(calls: list[tuple], shape: tuple[int, ...]) -> Draw | None:
    # torch.nn.init.sparse_: N(mean, std) everywhere, then `zeros` entries of every column set to 0.
    if len(calls) != 2 or calls[0][0] != "normal" or calls[1][0] != "sparse":
        return None
    (_, mean, std), (_, zeros) = calls
    kept = 1.0 - zeros / shape[0]
    first = kept * mean
    second = kept * (std**2 + mean**2)
    return Draw(
        "sparse normal",
        {"mean": mean, "std": std, "zeros": zeros, "rows": shape[0]},
        first,
        math.sqrt(max(second - first**2, 0.0)),
    )


def _orthogonal(scheme: Scheme, shape: tuple[int, ...]) -> Draw | None:
    args = scheme.arguments
    gain = args.get("gain", args.get("scale", 1.0))
    if len(shape) < 2 or not isinstance(gain, (int, float)):
        return None
    matrix = framework_of(scheme).orthogonal_matrix(scheme.name, shape, args)
    if matrix is None or matrix[0] * matrix[1] == 0:
        return None
    rows, cols = matrix
    g = abs(float(gain))
    rms = g / math.sqrt(max(rows, cols))
    return Draw("orthogonal", {"gain": float(gain), "rows": rows, "cols": cols}, 0.0, rms, -g, g)


def _constant(scheme: Scheme) -> Draw | None:
    args = scheme.arguments
    for key in ("val", "value"):
        if key in args:
            v = args[key]
            if not isinstance(v, (int, float)):
                return None  # an array constant: no one value
            return Draw("constant", {"value": float(v)}, float(v), 0.0, float(v), float(v))
    for word, v in (("zeros", 0.0), ("ones", 1.0)):
        if word in scheme.name:
            return Draw("constant", {"value": v}, v, 0.0, v, v)
    return None
