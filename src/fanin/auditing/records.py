"""The plain records of an inference: :class:`Summary`, :class:`Match` and :class:`Inference`.

They are data (``to_dict()`` is their JSON form); :mod:`fanin.auditing.inference` fills them and
:mod:`fanin.report.audit` renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fanin.auditing.evidence import Evidence
from fanin.auditing.scanning import Scan

__all__ = ["CONFIDENCES", "Inference", "Match", "Summary"]

#: Confidence levels, most certain first (see :mod:`fanin.auditing.inference`).
CONFIDENCES = ("high", "medium", "low", "too few values", "none")


def num(v):
    """A float for JSON: non-finite as ``None``."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True)
class Summary:
    """Summary statistics of a tensor's values, exact over every element (float64 accumulators)."""

    numel: int
    mean: float
    std: float
    min: float
    max: float
    kurtosis: float
    zero_fraction: float
    nan: int = 0
    posinf: int = 0
    neginf: int = 0

    @staticmethod
    def of(s: Scan, numel: int) -> Summary:
        zf = s.zeros / numel if numel and s.finite else math.nan
        return Summary(numel, s.mean, s.std, s.min, s.max, s.kurtosis, zf, s.nan, s.posinf, s.neginf)

    def to_dict(self) -> dict:
        return {k: num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Match:
    """A hypothesis that the values pass: one distribution and every registered name that draws it.

    ``scheme`` is the first name (a spec ``fanin.get`` reads); ``names`` all equivalent names,
    the module's native framework first; ``fitted`` marks literal arguments solved from the data
    (``normal(std=0.02)``) rather than a formula of the shape or a library default;
    ``at_fans_of`` names the tensor whose fans a formula used (a bias takes its layer weight's).
    ``tests`` maps each test to its p-value, ``p_value`` is their Bonferroni combination,
    ``scale_ratio`` the measured std over the hypothesis' std, ``log_likelihood`` the score the
    matches are ranked by (penalized for fitted parameters).
    """

    scheme: str
    description: str
    family: str
    names: tuple[str, ...] = ()
    note: str = ""
    fitted: bool = False
    p_value: float | None = None
    tests: dict[str, float] = field(default_factory=dict)
    scale_ratio: float | None = None
    ks_statistic: float | None = None
    log_likelihood: float | None = None
    at_fans_of: str | None = None

    @property
    def label(self) -> str:
        """The first name, with where its fans come from when that is not the tensor itself."""
        return self.scheme + (f" at {self.at_fans_of}'s fans" if self.at_fans_of else "")

    def to_dict(self) -> dict:
        out = {k: num(v) for k, v in self.__dict__.items()}
        out["names"] = list(self.names)
        out["tests"] = {k: num(v) for k, v in self.tests.items()}
        return out


@dataclass(frozen=True)
class Inference:
    """How one tensor looks initialized.

    ``family`` is the family of the first match (they never disagree), or ``constant``-like
    structures, ``unknown`` (no hypothesis passes), ``empty``, ``non-finite`` or ``unreadable``.
    ``matches`` are the hypotheses that pass, best first; ``confidence`` one of
    :data:`CONFIDENCES`; ``trained`` whether the evidence of training is significant at the level
    it was judged at (``infer``'s ``alpha``, or the audit's family-wise level); ``evidence`` the
    tests of training with their p-values, ``evidence_p`` their combination.
    """

    family: str
    distribution: dict[str, float]
    scale: float | None
    matches: tuple[Match, ...]
    confidence: str
    trained: bool
    reason: str
    evidence: tuple[Evidence, ...] = ()
    evidence_p: float | None = None
    n: int = 0
    dtype: str = ""
    effective_dtype: str = ""
    notes: tuple[str, ...] = ()
    rejected: tuple[Match, ...] = ()

    @property
    def label(self) -> str:
        """One short phrase: ``looks trained``, the first match, or the family."""
        if self.trained:
            return "looks trained"
        if self.matches:
            return self.matches[0].label
        return self.family

    @property
    def p_value(self) -> float | None:
        return self.matches[0].p_value if self.matches else None

    @property
    def ks_statistic(self) -> float | None:
        return self.matches[0].ks_statistic if self.matches else None

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "label": self.label,
            "distribution": {k: num(v) for k, v in self.distribution.items()},
            "scale": num(self.scale),
            "matches": [m.to_dict() for m in self.matches],
            "confidence": self.confidence,
            "trained": self.trained,
            "reason": self.reason,
            "evidence": [e.to_dict() for e in self.evidence],
            "evidence_p": num(self.evidence_p),
            "n": self.n,
            "dtype": self.dtype,
            "effective_dtype": self.effective_dtype,
            "notes": list(self.notes),
            "rejected": [m.to_dict() for m in self.rejected],
        }
