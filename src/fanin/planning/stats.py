r"""What a scheme draws for a given shape, as the plan shows it: distribution, std and bounds.

The plan shows, for every tensor, the standard deviation and bounds the scheme will use. They
come from the one draw model, :func:`fanin.frameworks.draws.draw_of`, which runs the scheme's own
code once at the tensor's shape with a draw recorder (nothing drawn, nothing written), so no
formula is re-derived here. What the plan shows of each kind of draw:

==================  ============================================================================
distribution        statistics
==================  ============================================================================
uniform U[l, h)     mean (l+h)/2, std :math:`(h-l)/\sqrt{12}`, bounds [l, h]
normal              mean, std as drawn, unbounded
truncated normal    the mean passed to the draw, the std after truncation
                    :math:`\sigma\sqrt{\operatorname{Var}(Z \mid a \le Z \le b)}`
                    (:func:`fanin.formulas.variance.truncnorm_std`), bounds [lower, upper]
orthogonal          gain·Q with Q (semi-)orthogonal of shape (r, c): every entry's RMS is exactly
                    :math:`\text{gain}/\sqrt{\max(r, c)}`; bounds [-gain, gain]
sparse normal       the mean and std of the normal before the zeros
constant            the value, std 0
==================  ============================================================================

Schemes the recorder cannot follow (several draws, structured writes) report ``None``, and so do
random schemes with their own ``seed`` (the plan does not record that generator).

>>> import torch
>>> from fanin.schemes import get
>>> s = scheme_statistics(get("kaiming_uniform(a=sqrt(5))"), (16, 64))  # torch's Linear(64, 16)
>>> s.distribution, round(s.high, 12)
('uniform', 0.125)
>>> round(scheme_statistics(get("xavier_normal"), (10, 30)).std, 6)
0.223607
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from fanin.frameworks.draws import draw_of
from fanin.rules.blocks import block_slices, parts_of
from fanin.schemes import Scheme

__all__ = ["Statistics", "block_statistics", "scheme_statistics"]


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


def scheme_statistics(scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Statistics | None:
    """The statistics of what ``scheme`` draws for a tensor of ``shape`` (``None`` if unknown).

    The scheme's own code runs first at this shape and dtype (:func:`fanin.frameworks.draws.draw_of`,
    drawing and writing nothing), so errors it raises for a tensor it cannot take (a 1-D tensor
    for an orthogonal or fan-based scheme, a bad layout, a gate count that does not divide the
    rows) propagate, and a plan reports them before anything is written.
    """
    draw = draw_of(scheme, tuple(int(s) for s in shape), dtype)
    if draw is None:
        return None
    if draw.kind not in ("constant", "orthogonal") and scheme.arguments.get("seed") is not None:
        return None  # draws from its own seeded generator, which the plan does not record
    drawn = draw.parameters
    if draw.kind == "sparse normal":
        return Statistics(draw.kind, drawn["mean"], drawn["std"])
    if draw.kind == "truncated normal":
        return Statistics(draw.kind, drawn["mean"], draw.std, draw.low, draw.high)
    return Statistics(draw.kind, draw.mean, draw.std, draw.low, draw.high)


def block_statistics(
    scheme: Scheme, shape: Sequence[int], dtype: torch.dtype = torch.float32
) -> list[tuple[tuple[int, int], tuple[int, ...], Statistics | None]]:
    """``[(rows, logical shape, Statistics), ...]`` per block of a :func:`fanin.rules.blocks.blocked` scheme."""
    inner, lay = parts_of(scheme)
    out = []
    for i, (start, size, _index, logical, _sq) in enumerate(block_slices(lay, tuple(shape))):
        s = lay.schemes[i] if lay.schemes is not None else inner
        out.append(((start, start + size), logical, scheme_statistics(s, logical, dtype)))
    return out
