r"""Infer how one tensor was initialized: family, scale, matching named schemes, fit and confidence.

The family comes from the values alone, in this order (the first that holds wins):

==================  ===========================================================================
empty               no elements
constant            every value equal (``zeros``, ``ones``, ``constant(val=c)``)
identity            the non-zeros are exactly those of a registered identity scheme (eye, dirac),
                    all equal to one gain
orthogonal          :math:`W W^\top = g^2 I` (rows <= cols, W viewed as (shape[0], -1); else
                    :math:`W^\top W`) to float tolerance
constant per gate   the rows split into G equal blocks (G = 2, 3, 4, the smallest that holds; PyTorch
block               packs an RNN's gates so: 4 for an LSTM, 3 for a GRU), each block constant
orthogonal per      each of G equal row blocks orthogonal (same test); tested before the whole
gate block          tensor when rows > cols (blocks of orthonormal columns stack to orthogonal
                    columns of gain sqrt(G) g), after it otherwise (rows of an orthogonal W are)
sparse              2-D, the same number (>= 1) of exact zeros in every column, the rest continuous
uniform per gate    each of G equal row blocks fits U(±b_k) (KS p >= 0.001) and the blocks differ in
block               scale (Levene's test, median-centred, p < 1e-6): a plain uniform or normal
                    tensor has blocks that do not differ, so it is never reported gate-blocked
uniform / normal /  the best two-sided KS fit (``scipy.stats.kstest``) of U(lo, hi), N(m, s) and
truncated_normal    N(m, s) cut symmetrically at ±c; a truncated fit cut beyond ±4 s is a normal,
                    one cut beyond ±3 s is a normal unless the normal fit fails (p < 0.01); one cut
                    within ±1 s (a flat top: excess kurtosis -1.2 vs -0.64 at ±2 s vs 0 for a
                    normal) is a uniform when the uniform fit passes
unknown             none of the above passes (KS p < 0.001 for every continuous family)
==================  ===========================================================================

The **named schemes** are every registered scheme (with its common argument values) evaluated at
the tensor's shape (:mod:`fanin.auditing.candidates`) whose exact distribution passes, against the
values, a two-sided KS test (p >= 0.001), a mean test (within 4 standard errors), a std test
(relative error within :math:`4\sqrt{(\kappa+2)/(4n)} + 10^{-3}`, :math:`\kappa` the candidate's
excess kurtosis) and, for bounded candidates, a support test (no value beyond the bound by more
than the dtype's rounding). When no formula matches, literal arguments are solved from the fit
(``normal(std=0.02)``) and rounded to 1, 2, 3 or 4 significant digits, the first that passes.

Gate-block families report ``family`` constant / orthogonal / uniform, ``distribution`` with
``gates`` and the per-block values, gains or bounds, and match the registered gate-block schemes
(:func:`fanin.auditing.candidates.gate_candidates`) with their arguments read from the blocks
(bounds rounded to 1 to 4 significant digits, the first that passes every block's tests).

**Confidence** (the stated rule): *high* for an exact structural family (constant, identity,
orthogonal, sparse with a named match), or a continuous family with KS p >= 0.01 that no other
family also fits at p >= 0.01 and a named formula that matches; *medium* when the family fits
(p >= 0.01) but is ambiguous or only fitted arguments match; *low* when 0.001 <= p < 0.01 or
fewer than 64 values; *none* for unknown. Per gate block: constant and orthogonal are *high*;
uniform is *medium* (its bounds are fitted) when every block fits at p >= 0.01, else *low*.

**Looks trained** when no family fits, or when the values are within 5% of a named bounded
scheme's scale but up to 10% of them lie beyond its bound (what a few optimizer steps do to a
uniform or truncated initialization): such a tensor is reported as ``unknown`` with
``trained=True``, not forced into a scheme.

>>> import torch, fanin
>>> w = fanin.init.kaiming_uniform_(torch.empty(64, 32), a=5 ** 0.5, generator=torch.Generator().manual_seed(0))
>>> r = infer(w)
>>> r.family, r.confidence, r.matches[0].scheme
('uniform', 'high', 'kaiming_uniform(a=sqrt(5))')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from fanin.auditing.candidates import (
    Candidate,
    constant_candidates,
    continuous_candidates,
    fit_direct,
    gate_candidates,
    identity_candidates,
    orthogonal_candidates,
)

__all__ = ["Inference", "Match", "Summary", "infer", "summarize"]

P_FIT = 1e-3
P_GOOD = 1e-2
MAX_KS_SAMPLES = 200_000
_EXACT_IDENTITY_MAX = 1 << 22
GATE_COUNTS = (2, 3, 4)
P_BLOCKS_DIFFER = 1e-6
_MIN_BLOCK_VALUES = 16


@dataclass(frozen=True)
class Summary:
    """Summary statistics of a tensor's values (computed in float64 over every element)."""

    numel: int
    mean: float
    std: float
    min: float
    max: float
    kurtosis: float
    zero_fraction: float

    def to_dict(self) -> dict:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Match:
    """A named scheme that fits: its spec (``fanin.get`` reads it), what it draws, and the fit."""

    scheme: str
    description: str
    note: str = ""
    ks_statistic: float | None = None
    p_value: float | None = None
    scale_error: float | None = None
    fitted: bool = False

    def to_dict(self) -> dict:
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Inference:
    """How one tensor looks initialized. ``distribution`` holds the fitted parameters of ``family``."""

    family: str
    distribution: dict[str, float]
    scale: float | None
    ks_statistic: float | None
    p_value: float | None
    matches: tuple[Match, ...]
    confidence: str
    trained: bool
    reason: str
    alternatives: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """One short phrase: the first match, else the family."""
        if self.trained:
            return "looks trained"
        if self.matches:
            return self.matches[0].scheme
        return self.family

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "distribution": {k: _num(v) for k, v in self.distribution.items()},
            "scale": _num(self.scale),
            "ks_statistic": _num(self.ks_statistic),
            "p_value": _num(self.p_value),
            "matches": [m.to_dict() for m in self.matches],
            "confidence": self.confidence,
            "trained": self.trained,
            "reason": self.reason,
            "alternatives": {k: _num(v) for k, v in self.alternatives.items()},
        }


def _num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def summarize(x: np.ndarray) -> Summary:
    """:class:`Summary` of a float64 array."""
    n = x.size
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    std = float(x.std())
    kurt = float(((x - mean) ** 4).mean() / std**4 - 3.0) if std > 0 else math.nan
    return Summary(n, mean, std, float(x.min()), float(x.max()), kurt, float((x == 0).mean()))


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps if dtype.is_floating_point else 0.0


def _nice(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _describe(c: Candidate) -> str:
    p = c.params
    if c.kind == "uniform":
        if abs(p["low"] + p["high"]) <= 1e-12 * abs(p["high"]):
            return f"U(±{p['high']:.4g})"
        return f"U({p['low']:.4g}, {p['high']:.4g})"
    if c.kind in ("normal", "sparse"):
        text = f"N({p.get('mean', 0.0):.4g}, {p['std']:.4g})"
        return text + (f" with {p['sparsity']:.3g} of each column zero" if c.kind == "sparse" else "")
    if c.kind == "truncated_normal":
        m, s = p["mean"], p["std"]
        cut_lo, cut_hi = (p["lower"] - m) / s, (p["upper"] - m) / s
        if c.effective_kind() == "normal":
            return f"N({m:.4g}, {s:.4g}) cut at [{p['lower']:.4g}, {p['upper']:.4g}] (beyond ±4 std: a normal)"
        if abs(cut_lo + cut_hi) < 1e-9:
            return f"N({m:.4g}, {s:.4g}) truncated at ±{cut_hi:.3g} std"
        return f"N({m:.4g}, {s:.4g}) truncated to [{p['lower']:.4g}, {p['upper']:.4g}]"
    if c.kind in ("orthogonal", "identity"):
        return f"{c.kind}, gain {_gain_text(p['gain'])}"
    return f"constant {p['value']:g}"


def _gain_text(g: float) -> str:
    for k in (2, 3, 5, 6):
        if abs(g - math.sqrt(k)) < 1e-4 * g:
            return f"sqrt({k})"
    if abs(g - 5 / 3) < 1e-4:
        return "5/3"
    return f"{g:.4g}"


# --------------------------------------------------------------------------- continuous fits


def _ks(sample: np.ndarray, dist) -> tuple[float, float]:
    from scipy import stats

    res = stats.kstest(sample, dist.cdf)
    return float(res.statistic), float(res.pvalue)


def _truncnorm_std(t: float) -> float:
    from scipy import stats

    return float(stats.truncnorm.std(-t, t))


def _fit_families(sample: np.ndarray, n: int) -> dict[str, tuple[dict, object, float, float]]:
    """family -> (params, frozen dist, KS statistic, p) for the three continuous families."""
    from scipy import optimize, stats

    out = {}
    lo, hi = float(sample.min()), float(sample.max())
    width = hi - lo
    mean, sd = float(sample.mean()), float(sample.std(ddof=1))
    # Uniform: the unbiased range estimate widens (min, max) by one spacing on each side.
    ulo, uhi = lo - width / (n - 1), hi + width / (n - 1)
    u = stats.uniform(ulo, uhi - ulo)
    out["uniform"] = ({"low": ulo, "high": uhi}, u, *_ks(sample, u))
    norm = stats.norm(mean, sd)
    out["normal"] = ({"mean": mean, "std": sd}, norm, *_ks(sample, norm))
    # Truncated normal, symmetric about the mean: cut c from the extremes, pre-truncation std s
    # solved from sd = s * std(N(0,1) cut at ±c/s).
    c = max(hi - mean, mean - lo) * (1 + 1 / n)
    ratio = sd / c
    f = lambda t: _truncnorm_std(t) / t - ratio  # noqa: E731  decreasing from 1/sqrt(3) to 0
    if 1e-3 < ratio < f(1e-3) + ratio and f(40.0) < 0:
        t = optimize.brentq(f, 1e-3, 40.0)
        s = c / t
        tn = stats.truncnorm(-t, t, loc=mean, scale=s)
        out["truncated_normal"] = ({"mean": mean, "std": s, "lower": mean - c, "upper": mean + c, "cut": t},
                                   tn, *_ks(sample, tn))
    return out


def _check_candidate(c: Candidate, sample: np.ndarray, summary: Summary, n: int, dtype) -> Match | None:
    d_mean, d_std, kurt, lo, hi = c.moments
    if not d_std > 0:
        return None
    if abs(summary.mean - d_mean) > 4 * d_std / math.sqrt(n) + 1e-12:
        return None
    rel = summary.std / d_std - 1
    if abs(rel) > 4 * math.sqrt(max(kurt + 2, 0.1) / (4 * n)) + 1e-3:
        return None
    tol = 4 * _eps(dtype) * max(abs(lo), abs(hi), d_std) if math.isfinite(lo) else 0.0
    if summary.min < lo - tol or summary.max > hi + tol:
        return None
    stat, p = _ks(sample, c.frozen)
    if p < P_FIT:
        return None
    return Match(c.scheme, _describe(c), c.note, stat, p, rel, c.fitted)


def _near_miss(cands, summary: Summary, x: np.ndarray, dtype) -> tuple[Candidate, float] | None:
    """A bounded named scheme within 5% of the values' scale with 0 < fraction <= 10% beyond its bound."""
    best = None
    for c in cands:
        if c.fitted or c.effective_kind() not in ("uniform", "truncated_normal"):
            continue
        d_mean, d_std, _, lo, hi = c.moments
        if abs(summary.std / d_std - 1) > 0.05 or abs(summary.mean - d_mean) > 0.05 * d_std:
            continue
        tol = 4 * _eps(dtype) * max(abs(lo), abs(hi))
        beyond = float(((x < lo - tol) | (x > hi + tol)).mean())
        if 0 < beyond <= 0.10 and (best is None or beyond < best[1]):
            best = (c, beyond)
    return best


# --------------------------------------------------------------------------- structure


def _orthogonal_gain(t: torch.Tensor) -> float | None:
    if t.dim() < 2:
        return None
    m = t.detach().reshape(t.shape[0], -1).double()
    if m.shape[0] > m.shape[1]:
        m = m.T
    if m.shape[0] < 2:
        return None
    norms = torch.linalg.norm(m, dim=1)
    g = float(norms.mean())
    tol = max(1e-4, 50 * _eps(t.dtype))
    if not g > 0 or float((norms - g).abs().max()) > tol * g:
        return None
    gram = (m @ m.T) / (g * g)
    if float((gram - torch.eye(m.shape[0], dtype=gram.dtype)).abs().max()) > tol * math.sqrt(m.shape[1]):
        return None
    return g


def _delta(t: torch.Tensor) -> bool:
    """Non-zero only at the spatial centre of a convolution kernel (a delta-orthogonal kernel)."""
    if t.dim() < 3:
        return False
    centre = tuple(s // 2 for s in t.shape[2:])
    mask = torch.zeros(t.shape[2:], dtype=torch.bool)
    mask[centre] = True
    return bool((t[..., ~mask] == 0).all()) if (~mask).any() else False


def _infer_identity(t: torch.Tensor, x: np.ndarray) -> Inference | None:
    if t.dim() < 2 or t.numel() > _EXACT_IDENTITY_MAX:
        return None
    w = t.detach().double()
    nonzero = w != 0
    if not nonzero.any():
        return None
    values = w[nonzero]
    gain = float(values[0])
    if not bool((values == gain).all()):
        return None
    matches = []
    for c, pattern in identity_candidates(tuple(t.shape)):
        if torch.equal(pattern != 0, nonzero) and pattern.abs().max() > 0:
            scale = gain / float(pattern[pattern != 0][0])
            if abs(scale - 1) <= 4 * _eps(t.dtype):
                matches.append(Match(c.scheme, _describe(c), c.note))
            else:
                matches.append(Match(f"{c.scheme} x {scale:.6g}", f"identity pattern of {c.scheme}, gain {gain:.6g}",
                                     fitted=True))
    if not matches:
        return None
    matches = rank(matches)
    return Inference("identity", {"gain": gain}, gain, None, None, tuple(matches), "high", False,
                     f"the non-zeros are exactly an identity pattern, all equal to {gain:.6g}")


def _infer_orthogonal(t: torch.Tensor, gain: float) -> Inference:
    matches = []
    delta = _delta(t)
    for c in orthogonal_candidates(tuple(t.shape)):
        if abs(c.params["gain"] / gain - 1) < max(1e-3, 100 * _eps(t.dtype)):
            is_delta = "delta" in c.entry
            if is_delta == delta:
                matches.append(Match(c.scheme, _describe(c), c.note, scale_error=gain / c.params["gain"] - 1))
    if not matches:
        matches.append(Match(f"orthogonal(gain={_nice(gain, 4)!r})", f"orthogonal, gain {_gain_text(gain)}",
                             fitted=True))
    kind = "delta-orthogonal (only the kernel centre is non-zero)" if delta else "orthogonal"
    return Inference("orthogonal", {"gain": gain}, gain, None, None, tuple(rank(matches)),
                     "high", False, f"{kind}: W W^T = g^2 I with g = {_gain_text(gain)} to float tolerance")


def _infer_sparse(t: torch.Tensor, x: np.ndarray, summary: Summary) -> Inference | None:
    if t.dim() != 2 or summary.zero_fraction == 0 or summary.zero_fraction >= 1:
        return None
    w = t.detach().double()
    zeros = (w == 0).sum(0)
    if int(zeros.min()) == 0 or int(zeros.max()) != int(zeros.min()) or _zero_rows(t):
        return None
    nz = w[w != 0].numpy()
    if nz.size < 8 or np.unique(nz).size < 0.9 * nz.size:
        return None
    rows = t.shape[0]
    z = int(zeros[0])
    # torch's sparse_ zeroes ceil(sparsity * rows) per column: the roundest sparsity that gives z.
    sparsity = next((v for d in range(1, 6) if math.ceil((v := round(z / rows, d)) * rows) == z), z / rows)
    from scipy import stats

    std = float(np.sqrt((nz**2).mean()))
    stat, p = _ks(nz, stats.norm(0, std))
    target = {"sparsity": sparsity, "std": std}
    matches = []
    for digits in (2, 3, 4):
        for c in fit_direct("sparse", target, tuple(t.shape), lambda name, v, d=digits: _nice(v, d)):
            d = stats.norm(0, c.params["std"])
            cs, cp = _ks(nz, d)
            if cp >= P_FIT and abs(std / c.params["std"] - 1) < 4 / math.sqrt(2 * nz.size) + 1e-3:
                matches.append(Match(c.scheme, _describe(c), c.note, cs, cp, std / c.params["std"] - 1, True))
        if matches:
            break
    confidence = "high" if matches and p >= P_GOOD else "medium" if p >= P_FIT else "low"
    return Inference("sparse", {"sparsity": sparsity, "std": std}, std, stat, p, tuple(matches), confidence, False,
                     f"{int(zeros[0])} of {rows} values zero in every column; the rest N(0, {std:.4g}) (KS p={p:.3g})")


# --------------------------------------------------------------------------- gate blocks


def _gate_blocks(t: torch.Tensor, gates: int, min_values: int = 2) -> tuple[torch.Tensor, ...] | None:
    """The first dimension split into ``gates`` equal blocks of at least ``min_values`` values each."""
    if t.dim() == 0 or t.shape[0] % gates or t.numel() // gates < min_values:
        return None
    return t.split(t.shape[0] // gates)


def _gate_layout(t: torch.Tensor, gates: int) -> str:
    return f"{gates} blocks of {t.shape[0] // gates} rows"


def _gate_matches(kind: str, found: list[tuple[int, list[float]]], t: torch.Tensor) -> list[Match]:
    """Named matches for each (gate count, per-block parameters) in ``found`` (a constant or uniform
    2-block layout is also a 4-block one: the same values, the same distribution)."""
    matches = []
    for _, per_block in found:
        for c in gate_candidates(kind, per_block, tuple(t.shape), t.dtype):
            text = ", ".join(f"{v:g}" for v in per_block) if kind == "constant" else \
                ", ".join(f"±{v:.4g}" for v in per_block) if kind == "uniform" else f"gain {_gain_text(per_block[0])}"
            matches.append(Match(c.scheme, f"{kind} per gate block: {text}", c.note, fitted=c.fitted))
    return rank(matches)


def _infer_gate_constant(t: torch.Tensor) -> Inference | None:
    """Every gate block constant (not all equal: a constant tensor is caught before)."""
    found = []
    for gates in GATE_COUNTS:
        blocks = _gate_blocks(t, gates)
        if blocks is not None and all(bool((b == b.reshape(-1)[0]).all()) for b in blocks):
            found.append((gates, [float(b.reshape(-1)[0]) for b in blocks]))
    if not found:
        return None
    gates, values = found[0]
    text = "[" + ", ".join(f"{v:g}" for v in values) + "]"
    dist = {"gates": float(gates)} | {f"value_{k}": v for k, v in enumerate(values)}
    return Inference("constant", dist, None, None, None, tuple(_gate_matches("constant", found, t)), "high", False,
                     f"constant per gate block: {text} ({_gate_layout(t, gates)})")


def _infer_gate_orthogonal(t: torch.Tensor) -> Inference | None:
    """Every gate block orthogonal (:func:`_orthogonal_gain`), the whole tensor not."""
    found = []
    for gates in GATE_COUNTS:
        blocks = _gate_blocks(t, gates)
        if blocks is None or t.dim() < 2:
            continue
        gains = [_orthogonal_gain(b) for b in blocks]
        if all(g is not None for g in gains):
            found.append((gates, gains))
    if not found:
        return None
    # Tall blocks (rows > cols) of orthonormal columns stack to taller ones that are orthogonal too
    # (gain sqrt(2) g): the finest layout is the drawn one. Wide blocks split into wide ones that
    # are orthogonal too (same gain): the coarsest is.
    tall = t.shape[0] // found[0][0] > t.numel() // t.shape[0]
    if tall:
        found.reverse()
    gates, gains = found[0]
    tol = max(1e-4, 50 * _eps(t.dtype))
    same = max(gains) - min(gains) <= tol * max(gains)
    if same:
        gain = sum(gains) / len(gains)
        # Only this layout: independent blocks of another layout would not show its cross-block structure.
        matches = _gate_matches("orthogonal", [(gates, [gain] * gates)], t)
        text = f"gain {_gain_text(gain)}"
    else:
        gain, matches = None, []
        text = "gains " + ", ".join(_gain_text(g) for g in gains)
    dist = {"gates": float(gates)} | ({"gain": gain} if same else {f"gain_{k}": g for k, g in enumerate(gains)})
    return Inference("orthogonal", dist, gain, None, None, tuple(matches), "high", False,
                     f"orthogonal per gate block: {text} ({_gate_layout(t, gates)}; each block W W^T = g^2 I "
                     "to float tolerance)" + ("" if matches else "; no registered scheme matches"))


def _infer_gate_uniform(t: torch.Tensor) -> Inference | None:
    """Every gate block U(±b_k), the blocks' scales significantly different."""
    from scipy import stats

    for gates in GATE_COUNTS:
        blocks = _gate_blocks(t, gates, _MIN_BLOCK_VALUES)
        if blocks is None:
            continue
        xs = [b.double().reshape(-1).cpu().numpy() for b in blocks]
        zero = [bool((v == 0).all()) for v in xs]
        live = [v for v, z in zip(xs, zero) if not z]
        if not live or any(v.min() == v.max() for v in live):
            continue
        if len(live) == len(xs):
            cap = MAX_KS_SAMPLES // gates
            rng = np.random.default_rng(0)
            sub = [v if v.size <= cap else rng.choice(v, cap, replace=False) for v in live]
            if stats.levene(*sub, center="median").pvalue >= P_BLOCKS_DIFFER:
                continue
        # |x| of U(±b) is U(0, b): the unbiased bound from n values is max|x| (n + 1) / n.
        bounds = [0.0 if z else float(np.abs(v).max()) * (v.size + 1) / v.size for v, z in zip(xs, zero)]
        fits = [None if z else _ks(_cap(v), stats.uniform(-b, 2 * b)) for v, z, b in zip(xs, zero, bounds)]
        if any(f is not None and f[1] < P_FIT for f in fits):
            continue
        return _gate_uniform_result(t, gates, xs, bounds, fits)
    return None


def _cap(v: np.ndarray) -> np.ndarray:
    return v if v.size <= MAX_KS_SAMPLES else np.random.default_rng(0).choice(v, MAX_KS_SAMPLES, replace=False)


def _gate_uniform_result(t, gates, xs, bounds, fits) -> Inference:
    # Bonferroni over the blocks: the family p is the smallest block p times the number of blocks.
    stat = max(f[0] for f in fits if f is not None)
    p = min(1.0, gates * min(f[1] for f in fits if f is not None))
    matches = []
    for digits in (1, 2, 3, 4):  # the roundest bounds that every block passes
        nice = [_nice(b, digits) for b in bounds]
        if all(b == 0 or _check_candidate(Candidate("", "", "", "uniform", {"low": -nb, "high": nb}),
                                          _cap(v), summarize(v), v.size, t.dtype) is not None
               for v, b, nb in zip(xs, bounds, nice)):
            found = [(gates, nice)] + [(g, [b for b in nice for _ in range(g // gates)])
                                       for g in GATE_COUNTS if g > gates and g % gates == 0]
            matches = _gate_matches("uniform", found, t)
            if matches:
                break
    text = ", ".join(f"±{b:.4g}" for b in bounds)
    dist = {"gates": float(gates), "low": -max(bounds), "high": max(bounds)} | {
        f"bound_{k}": b for k, b in enumerate(bounds)}
    reason = f"uniform per gate block: bounds {text} ({_gate_layout(t, gates)}; KS p={p:.3g}, Bonferroni over " \
             "the blocks; the blocks' scales differ, Levene p < 1e-6)"
    if not matches:
        reason += "; no registered scheme matches"
    confidence = "medium" if p >= P_GOOD and t.numel() >= 64 else "low"
    return Inference("uniform", dist, float(np.concatenate(xs).std()), stat, p, tuple(matches), confidence, False,
                     reason)


# --------------------------------------------------------------------------- entry point


def infer(tensor: torch.Tensor, *, fans_shape: tuple[int, ...] | None = None) -> Inference:
    """Infer the initialization of ``tensor`` (see the module docstring for the rules).

    ``fans_shape`` is the shape whose fans a 1-D tensor's scheme used (a bias takes its layer's
    weight's fans): the named schemes are then evaluated at that shape as well as at the tensor's.
    Values are read in float64; KS tests use a fixed random subsample of at most 200,000 values.

    >>> import torch
    >>> infer(torch.zeros(3)).matches[0].scheme
    'zeros'
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"infer needs a torch.Tensor, got tensor={tensor!r} ({type(tensor).__name__})")
    t = tensor.detach()
    if not t.is_floating_point():
        return Inference("unknown", {}, None, None, None, (), "none", False,
                         f"not a floating-point tensor (dtype={t.dtype}): not an initialized weight")
    x = t.double().reshape(-1).cpu().numpy()
    n = x.size
    if n == 0:
        return Inference("empty", {}, None, None, None, (), "none", False, "no elements")
    if not np.isfinite(x).all():
        return Inference("unknown", {}, None, None, None, (), "none", True, "contains NaN or inf")
    summary = summarize(x)

    if summary.min == summary.max:
        value = summary.min
        cands = constant_candidates(value, t.dtype)
        matches = tuple(rank([Match(c.scheme, _describe(c), c.note, fitted=c.fitted) for c in cands]))
        return Inference("constant", {"value": value}, value, None, None, matches, "high" if n > 1 else "low", False,
                         f"all {n} values equal {value:g}")

    if summary.zero_fraction >= 0.5:
        found = _infer_identity(t, x)
        if found is not None:
            return found
    found = _infer_gate_constant(t)
    if found is not None:
        return found
    # Orthogonal row blocks of a tall tensor (rows > cols) stack to orthogonal columns, so the
    # blocks are tested first there; with rows <= cols any block of an orthogonal W is orthogonal.
    tall = t.dim() >= 2 and t.shape[0] > t.numel() // t.shape[0]
    found = _infer_gate_orthogonal(t) if tall else None
    if found is not None:
        return found
    # A delta-orthogonal kernel is orthogonal at its centre tap only.
    gain = _orthogonal_gain(t[(..., *(s // 2 for s in t.shape[2:]))] if _delta(t) else t)
    if gain is not None:
        return _infer_orthogonal(t, gain)
    found = None if tall else _infer_gate_orthogonal(t)
    if found is not None:
        return found
    found = _infer_gate_uniform(t)
    if found is not None:
        return found
    found = _infer_sparse(t, x, summary)
    if found is not None:
        return found
    return _infer_continuous(t, x, summary, fans_shape)


def _zero_rows(t: torch.Tensor) -> list[int]:
    if t.dim() != 2 or t.shape[0] < 4:
        return []
    rows = (t == 0).all(dim=1).nonzero().flatten().tolist()
    return rows if 0 < len(rows) < t.shape[0] // 4 else []


def _infer_continuous(t: torch.Tensor, x: np.ndarray, summary: Summary, fans_shape) -> Inference:
    notes = []
    zero_rows = _zero_rows(t)
    if zero_rows:
        keep = torch.ones(t.shape[0], dtype=torch.bool)
        keep[zero_rows] = False
        x = t[keep].double().reshape(-1).numpy()
        summary = summarize(x)
        shown = ", ".join(map(str, zero_rows[:5])) + (", ..." if len(zero_rows) > 5 else "")
        notes.append(f"row(s) {shown} all zero (e.g. an embedding's padding_idx), left out of the fit")
    n = x.size
    sample = x
    if n > MAX_KS_SAMPLES:
        sample = np.random.default_rng(0).choice(x, MAX_KS_SAMPLES, replace=False)
    if n < 3 or np.unique(sample).size < min(n, 50) * 0.5:
        return Inference("unknown", {}, summary.std, None, None, (), "none", n >= 3,
                         "too few distinct values for a continuous distribution")

    fits = _fit_families(sample, n)
    ps = {k: v[3] for k, v in fits.items()}
    family = max(ps, key=ps.get)
    if "truncated_normal" in fits:
        cut = fits["truncated_normal"][0]["cut"]
        # A truncation is claimed only where it shows: cut within ±3 std, or the normal rejected.
        if family == "truncated_normal" and cut > 3 and ps["normal"] >= P_GOOD:
            family = "normal"
        if family == "truncated_normal" and cut > 4:
            family = "normal"
        if family == "truncated_normal" and cut < 1 and ps["uniform"] >= P_FIT:
            family = "uniform"
    params, _, stat, p = fits[family]
    params = {k: v for k, v in params.items() if k != "cut"} | (
        {"cut_in_std": fits["truncated_normal"][0]["cut"]} if family == "truncated_normal" else {})

    shapes = [tuple(t.shape)] + ([tuple(fans_shape)] if fans_shape is not None else [])
    cands = [c for s in shapes for c in continuous_candidates(s)]
    if fans_shape is not None:
        own = set(continuous_candidates(tuple(t.shape)))
        cands = [c if c in own else _at_fans(c) for c in cands]

    matches = []
    seen = set()
    for c in cands:
        if c.scheme in seen:
            continue
        m = _check_candidate(c, sample, summary, n, t.dtype)
        if m is not None:
            seen.add(c.scheme)
            matches.append(m)

    if not matches:
        miss = _near_miss(cands, summary, x, t.dtype)
        if miss is not None:
            c, beyond = miss
            return Inference("unknown", params, summary.std, stat, p, (), "none", True,
                             f"looks trained: within 5% of {c.scheme} ({_describe(c)}) but {beyond:.2%} of the "
                             "values lie beyond its bound", ps)
        if p < P_FIT:
            return Inference("unknown", params, summary.std, stat, p, (), "none", True,
                             "looks trained (or an unknown scheme): no family fits, KS p < 0.001 for "
                             + ", ".join(f"{k} ({v:.2g})" for k, v in ps.items()), ps)
        matches = _fitted_matches(family, params, sample, summary, n, t)

    # A truncated fit cut beyond ±3 std is a normal, one cut within ±1 std a uniform: not a rival.
    ambiguous = sorted(k for k, v in ps.items() if k != family and v >= P_GOOD
                       and not (k == "truncated_normal" and family == "normal" and fits[k][0]["cut"] > 3)
                       and not (k == "truncated_normal" and family == "uniform" and fits[k][0]["cut"] < 1))
    exact = [m for m in matches if not m.fitted]
    matches = rank(matches)
    if n < 64 or p < P_GOOD:
        confidence = "low"
    elif exact and not ambiguous:
        confidence = "high"
    else:
        confidence = "medium"
    reason = f"{family} fits best (KS p={p:.3g}"
    if ambiguous:
        reason += "; also fits: " + ", ".join(f"{k} p={ps[k]:.3g}" for k in ambiguous)
    reason += ")"
    if len({m.description for m in exact}) > 1:
        reason += f"; {len(exact)} named schemes fit, with different scales (too few values to tell)"
    if not matches:
        reason += "; no registered scheme matches"
    reason = "; ".join([reason, *notes])
    return Inference(family, params, summary.std, stat, p, tuple(matches), confidence, False, reason, ps)


def rank(matches: list[Match]) -> list[Match]:
    """Best first: formula before fitted, well-known (noted) before the rest, then the better KS
    fit, PyTorch's own before other frameworks', the shorter spec (fewer non-default arguments)."""
    return sorted(matches, key=lambda m: (m.fitted, not m.note, -round(m.p_value or 0.0, 6),
                                          "." in m.scheme.split("(")[0], len(m.scheme), m.scheme))


def _at_fans(c: Candidate) -> Candidate:
    return Candidate(f"{c.scheme} at the layer weight's fans", c.entry, c.framework, c.kind, c.params, c.fitted)


def _fitted_matches(family, params, sample, summary, n, t) -> list[Match]:
    target = {k: v for k, v in params.items() if k != "cut_in_std"}
    if family in ("normal", "truncated_normal") and abs(target["mean"]) < 4 * target["std"] / math.sqrt(n):
        # A mean within noise of 0 is 0 (every registered scheme's default).
        shift = target["mean"]
        target = {k: (v - shift if k in ("mean", "lower", "upper") else v) for k, v in target.items()}
    if family == "normal":
        target = {"mean": target["mean"], "std": target["std"]}
    elif family == "uniform":
        # Snap the range estimate to the nearest symmetric one when it is within noise of it.
        half = (target["high"] - target["low"]) / 2
        if abs(target["high"] + target["low"]) < 4 * half / n + 1e-12:
            target = {"low": -half, "high": half}
    elif family == "truncated_normal":
        target = {k: target[k] for k in ("mean", "std", "lower", "upper")}
    for digits in (1, 2, 3, 4):  # the roundest value that passes: std=0.02 rather than 0.018
        def nice(name, value, d=digits):
            return 0.0 if abs(value) < 1e-9 * summary.std else _nice(value, d)

        found = []
        for c in fit_direct(family, target, tuple(t.shape), nice):
            if c.effective_kind() != family:
                continue
            m = _check_candidate(c, sample, summary, n, t.dtype)
            if m is not None:
                found.append(m)
        if found:
            return found
    return []
