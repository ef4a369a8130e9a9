r"""Calibrated tests of one hypothesis "these values are i.i.d. draws of D, rounded to the dtype".

A hypothesis is a fully specified continuous distribution :class:`Dist` (uniform, normal or
truncated normal) plus the storage dtype's rounding (:mod:`fanin.auditing.dtypes`). Four tests,
each with an exact or stated null distribution, judge it against a :class:`~fanin.auditing.scanning.Scan`:

``mean``
    :math:`z = (|\bar x - \mu| - \delta\sigma - \gamma) / (\sigma/\sqrt n)`, two-sided normal p
    (the CLT; every candidate family has light tails), over **all** values; :math:`\gamma = (b - a)
    2^{-p}` for a uniform on :math:`[a, b]` in a dtype of :math:`p` significand digits (torch's
    ``uniform_`` draws its unit variate on a grid of :math:`2^{-p}`: bfloat16's mean is 0.2% of
    the width low), 0 otherwise.
``scale``
    the unbiased variance :math:`s^2` against :math:`\sigma^2` as a scaled chi-square,
    :math:`\nu s^2/\sigma^2 \sim \chi^2_\nu` with :math:`\nu = 2n / (\beta_2 - (n-3)/(n-1))`
    (:math:`\beta_2 = \mu_4/\sigma^4` of the hypothesis; exact for the normal, where
    :math:`\nu = n - 1`), two-sided, over all values; a relative band of :math:`2\delta` around
    :math:`\sigma^2` is not tested.
``extremes``
    the exact order-statistic probabilities of the observed minimum :math:`m` and maximum
    :math:`M`: :math:`P(\max \ge M) = 1 - F(\mathrm{lo}(M))^n`, :math:`P(\max \le M) =
    F(\mathrm{hi}(M))^n` and the same for the minimum, with lo/hi the rounding interval of the
    stored value widened to :data:`EXTREME_SPACINGS` spacings at the largest magnitude (a scheme
    computed in the storage dtype rounds its bounds, its width and its result: torch's bfloat16
    ``uniform_(0, 1)`` stores 0.2% zeros);
    Bonferroni over the four. A value beyond a bounded hypothesis' support has p = 0,
    a range much narrower than an unbounded one's (a truncated normal under a normal hypothesis)
    a tiny p.
``ks``
    the Kolmogorov-Smirnov distance between the fixed sample (:data:`~fanin.auditing.scanning.SAMPLE_SIZE`
    values) and the *rounded* hypothesis, whose CDF steps at each representable value:
    :math:`D = \max_k \max(C_k/S - F(\mathrm{hi}(u_k)),\; F(\mathrm{lo}(u_k)) - C_{k-1}/S)`
    over the sample's distinct values :math:`u_k` (:math:`C_k` of them at most :math:`u_k`), with
    the p-value of the continuous statistic by Stephens' approximation (1970),
    :math:`Q_{KS}((\sqrt S + 0.12 + 0.11/\sqrt S) D)` (``scipy.special.kolmogorov``; within 7% of
    the exact ``scipy.stats.kstwo`` p-value for S = 8..8192 down to 1e-12, measured, and 1000x
    faster), which is conservative for a discrete null.

:math:`\delta` is the storage dtype's unit roundoff (0.4% for bfloat16): schemes computed in the
storage dtype (torch's ``trunc_normal_`` in bfloat16 shifts the std by 0.2%, measured) carry that
relative error in location and scale. The hypothesis' p-value is the Bonferroni combination
:math:`\min(1, k \min_j p_j)` over its :math:`k` tests, so a true hypothesis is rejected at level
:math:`\alpha` with probability at most :math:`\alpha`. Tests whose statistic a fitted parameter was
solved from are not run (a fitted uniform's bounds come from the extremes).

For dtypes of 8 bits or fewer the moments of the hypothesis are those of the rounded distribution,
summed exactly over the dtype's representable values; for wider dtypes rounding changes the
variance by less than :math:`10^{-5}` relative (bfloat16) and is covered by :math:`\delta`.

>>> import torch
>>> from fanin.auditing.scanning import scan
>>> w = torch.empty(256, 128).uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(0))
>>> s = scan(w)
>>> view = SampleView.of(s, torch.float32)
>>> assess(Dist("uniform", (-0.1, 0.1)), s, view, torch.float32).p > 1e-3
True
>>> assess(Dist("normal", (0.0, 0.1 / 3 ** 0.5)), s, view, torch.float32).p < 1e-10
True
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from fanin.auditing.dtypes import mantissa_digits, rounding_interval, unit_roundoff
from fanin.auditing.scanning import Scan

__all__ = ["KINDS", "PARAMS", "Dist", "Fit", "SampleView", "assess", "assess_all", "loglik"]

KINDS = ("uniform", "normal", "truncated_normal")
PARAMS = {"uniform": ("low", "high"), "normal": ("mean", "std"), "truncated_normal": ("mean", "std", "lower", "upper")}
_LOG_SQRT2PI = math.log(2 * math.pi) / 2
#: How far (in spacings of the dtype at the largest magnitude) the stored extremes may lie inside
#: the drawn distribution's bounds (see :meth:`SampleView.of`).
EXTREME_SPACINGS = 3


def _ndtr(x):
    return _special().ndtr(x)


@functools.lru_cache(maxsize=1)
def _special():
    """``scipy.special``, imported on first use (heavy imports are deferred)."""
    import scipy.special

    return scipy.special


@dataclass(frozen=True)
class Dist:
    """A continuous distribution: ``uniform`` (low, high), ``normal`` (mean, std) or
    ``truncated_normal`` (mean, std, lower, upper; std before truncation, bounds absolute)."""

    kind: str
    params: tuple[float, ...]

    @property
    def named(self) -> dict[str, float]:
        return dict(zip(PARAMS[self.kind], self.params, strict=True))

    def scaled(self, factor: float) -> Dist:
        """The distribution of ``factor * X``, ``factor > 0``."""
        return Dist(self.kind, tuple(p * factor for p in self.params))

    @functools.cached_property
    def _trunc(self) -> tuple[float, float, float, float, float]:
        mu, s, lo, hi = self.params
        a, b = (lo - mu) / s, (hi - mu) / s
        # Z = P(a <= N(0,1) <= b), computed on the side that keeps its digits.
        z = float(_ndtr(-a) - _ndtr(-b)) if a > 0 else float(_ndtr(b) - _ndtr(a))
        return mu, s, a, b, z

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "uniform":
            lo, hi = self.params
            return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        if self.kind == "normal":
            mu, s = self.params
            return _ndtr((x - mu) / s)
        mu, s, a, b, z = self._trunc
        t = np.clip((x - mu) / s, a, b)
        return np.clip((_ndtr(t) - _ndtr(a)) / z, 0.0, 1.0)

    def sf(self, x: np.ndarray) -> np.ndarray:
        """1 - cdf, with its digits in the upper tail."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "uniform":
            lo, hi = self.params
            return np.clip((hi - x) / (hi - lo), 0.0, 1.0)
        if self.kind == "normal":
            mu, s = self.params
            return _ndtr(-(x - mu) / s)
        mu, s, a, b, z = self._trunc
        t = np.clip((x - mu) / s, a, b)
        return np.clip((_ndtr(-t) - _ndtr(-b)) / z, 0.0, 1.0)

    @property
    def support(self) -> tuple[float, float]:
        if self.kind == "uniform":
            low, high = self.params
            return low, high
        if self.kind == "normal":
            return -math.inf, math.inf
        return self.params[2], self.params[3]

    @functools.cached_property
    def moments(self) -> tuple[float, float, float]:
        """(mean, variance, fourth central moment) of the continuous distribution."""
        if self.kind == "uniform":
            lo, hi = self.params
            w = hi - lo
            return (lo + hi) / 2, w * w / 12, w * w * w * w / 80
        if self.kind == "normal":
            mu, s = self.params
            return mu, s * s, 3 * s * s * s * s
        mu, s, a, b, z = self._trunc
        # Raw moments of the standard normal cut to [a, b]: E[X^k] = (k-1) E[X^(k-2)]
        # - (b^(k-1) phi(b) - a^(k-1) phi(a)) / Z (the recursion of the truncated normal).
        pa, pb = math.exp(-a * a / 2 - _LOG_SQRT2PI), math.exp(-b * b / 2 - _LOG_SQRT2PI)
        raw = [1.0, (pa - pb) / z]
        for k in range(2, 5):
            raw.append((k - 1) * raw[k - 2] - (b ** (k - 1) * pb - a ** (k - 1) * pa) / z)
        m1 = raw[1]
        var = raw[2] - m1 * m1
        mu4 = raw[4] - 4 * m1 * raw[3] + 6 * m1 * m1 * raw[2] - 3 * m1**4
        return mu + s * m1, max(var, 0.0) * s * s, max(mu4, 0.0) * s * s * s * s

    def quantized_moments(self, dtype: torch.dtype) -> tuple[float, float, float]:
        """:attr:`moments` of the distribution rounded to ``dtype``: exact over the representable
        values for dtypes of at most 8 bits, the continuous moments otherwise."""
        if mantissa_digits(dtype) > 4:
            return self.moments
        grid = _grid(dtype)
        lo, hi = rounding_interval(grid, dtype, nearest=True)  # a cast rounds to nearest
        p = np.clip(self.cdf(hi) - self.cdf(lo), 0.0, None)
        total = p.sum()
        if not total > 0:
            return self.moments
        p = p / total
        m = float((p * grid).sum())
        d = grid - m
        return m, float((p * d * d).sum()), float((p * d**4).sum())


@functools.cache
def _grid(dtype: torch.dtype) -> np.ndarray:
    bits = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(dtype).to(torch.float64).numpy()
    return np.unique(bits[np.isfinite(bits)])


@dataclass(frozen=True)
class SampleView:
    """The fixed sample of a scan, sorted, as distinct values with cumulative counts and their
    rounding intervals in the effective dtype, and the rounding intervals of the minimum and the
    maximum of all values (all in scan units)."""

    values: np.ndarray
    cum: np.ndarray
    prev: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    size: int
    ends: tuple[float, float, float, float] = (math.nan,) * 4  # lo(min), hi(min), lo(max), hi(max)

    @staticmethod
    def of(s: Scan, dtype: torch.dtype, sample: np.ndarray | None = None) -> SampleView:
        x = np.sort(s.sample if sample is None else sample)
        u, counts = np.unique(x, return_counts=True)
        cum = np.cumsum(counts)
        with np.errstate(over="ignore"):
            lo, hi = rounding_interval(u * s.unit, dtype)
            # The extremes move by up to EXTREME_SPACINGS spacings at the largest magnitude: a
            # scheme computed in the storage dtype rounds relative to its range (torch's bfloat16
            # uniform_ stores U(0, 1)'s draws below ~2^-9 as 0, a 0.2% point mass), and torch's
            # from + u * (to - from) rounds the bounds (half a spacing each), the width (one) and
            # the result (one): bfloat16 U(±0.08839) at 768x768 stores nothing above 0.08789,
            # a spacing below the largest representable value under the bound (measured).
            big = max(abs(s.lo), abs(s.hi)) * s.unit
            b_lo, b_hi = rounding_interval(np.array([big]), dtype)
            step = EXTREME_SPACINGS * max(float(b_hi[0]) - big, big - float(b_lo[0]))
            elo, ehi = rounding_interval(np.array([s.lo, s.hi]) * s.unit, dtype)
            elo = np.minimum(elo, np.array([s.lo, s.hi]) * s.unit - step)
            ehi = np.maximum(ehi, np.array([s.lo, s.hi]) * s.unit + step)
        ends = (float(elo[0] / s.unit), float(ehi[0] / s.unit), float(elo[1] / s.unit), float(ehi[1] / s.unit))
        return SampleView(
            u, cum / max(x.size, 1), (cum - counts) / max(x.size, 1), lo / s.unit, hi / s.unit, int(x.size), ends
        )


@dataclass(frozen=True)
class Fit:
    """The tests of one hypothesis: ``p`` is their Bonferroni combination; ``tests`` test -> p;
    ``scale_ratio`` the measured std over the hypothesis' std; ``ks`` the KS distance."""

    p: float
    tests: dict[str, float]
    loglik: float
    scale_ratio: float
    ks: float


class _Batch:
    """Hypotheses as arrays (one row each, in scan units), for vectorized CDFs."""

    def __init__(self, dists: list[Dist], unit: float) -> None:
        self.kind = np.array([KINDS.index(d.kind) for d in dists])
        p = np.zeros((len(dists), 4))
        for i, d in enumerate(dists):
            v = [x / unit for x in d.params]
            p[i, : len(v)] = v
        self.p = p
        uni, trunc = self.kind == 0, self.kind == 2
        with np.errstate(divide="ignore", invalid="ignore"):
            self.alpha = np.where(trunc, (p[:, 2] - p[:, 0]) / p[:, 1], -np.inf)
            self.beta = np.where(trunc, (p[:, 3] - p[:, 0]) / p[:, 1], np.inf)
        a, b = self.alpha, self.beta
        self.z = np.where(a > 0, _ndtr(-a) - _ndtr(-b), _ndtr(b) - _ndtr(a))
        self.uni, self.trunc = uni, trunc
        self.width = np.where(uni, p[:, 1] - p[:, 0], 1.0)
        self.mu = np.where(uni, p[:, 0], p[:, 0])
        self.sd = np.where(uni, 1.0, p[:, 1])

    def _std(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu[:, None]) / self.sd[:, None]

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """(hypotheses, len(x)) CDF values."""
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = np.clip((x[None, :] - self.p[:, :1]) / self.width[:, None], 0.0, 1.0)
            t = np.clip(self._std(x[None, :]), self.alpha[:, None], self.beta[:, None])
            g = _ndtr(t)
            g = np.where(self.trunc[:, None], np.clip((g - _ndtr(self.alpha)[:, None]) / self.z[:, None], 0, 1), g)
        return np.where(self.uni[:, None], u, g)

    def sf(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = np.clip((self.p[:, 1:2] - x[None, :]) / self.width[:, None], 0.0, 1.0)
            t = np.clip(self._std(x[None, :]), self.alpha[:, None], self.beta[:, None])
            g = _ndtr(-t)
            g = np.where(self.trunc[:, None], np.clip((g - _ndtr(-self.beta)[:, None]) / self.z[:, None], 0, 1), g)
        return np.where(self.uni[:, None], u, g)


def _log_pow(complement: np.ndarray, n: int) -> np.ndarray:
    """log((1 - c)^n) for c in [0, 1]."""
    with np.errstate(divide="ignore"):
        return n * np.log1p(-np.minimum(complement, 1.0))


def loglik(dist: Dist, s: Scan, dtype: torch.dtype) -> float:
    """The log-likelihood of all values under ``dist`` (see :func:`assess_all`)."""
    view = SampleView.of(s, dtype, np.empty(0))
    return assess_all([dist], s, view, dtype)[0].loglik


def assess(
    dist: Dist, s: Scan, view: SampleView, dtype: torch.dtype, *, skip: tuple[str, ...] = (), delta: float | None = None
) -> Fit:
    """:func:`assess_all` of one hypothesis."""
    return assess_all([dist], s, view, dtype, skip=skip, delta=delta)[0]


def assess_all(
    dists: list[Dist],
    s: Scan,
    view: SampleView,
    dtype: torch.dtype,
    *,
    skip: tuple[str, ...] = (),
    delta: float | None = None,
    cutoff: float | None = None,
) -> list[Fit]:
    r"""Run the tests of the module docstring for each of ``dists`` (in the tensor's own units)
    against the scan ``s`` of values stored in ``dtype``; ``skip`` names tests a fitted parameter
    came from; with ``cutoff``, the KS test (the costly one) is run only for hypotheses that the
    other tests have not already rejected below it. Also the log-likelihood of all values, in scan units (the constant
    :math:`-n \log(\text{unit})` left out): :math:`-\tfrac n2 \log 2\pi\sigma^2 - n(m_2 + (\bar x -
    \mu)^2)/2\sigma^2` for a normal, :math:`-n \log(b - a)` for a uniform, the normal's minus
    :math:`n \log Z` for a truncated normal; :math:`-\infty` when the minimum or the maximum lies
    outside a bounded support (after rounding)."""
    from scipy.special import chdtr, chdtrc, kolmogorov

    if not dists:
        return []
    if delta is None:
        delta = unit_roundoff(dtype)
    n, m = s.n, s.moments
    u = s.unit
    if mantissa_digits(dtype) <= 4:  # float8: values below 2^16, no overflow in their own units
        mom = np.array([d.quantized_moments(dtype) for d in dists])
        with np.errstate(over="ignore", under="ignore"):
            mu, var, mu4 = mom[:, 0] / u, mom[:, 1] / u / u, mom[:, 2] / u / u / u / u
    else:  # the moments of the distribution in scan units (no overflow near the float64 limit)
        mom = np.array([d.scaled(1 / u).moments for d in dists])
        mu, var, mu4 = mom[:, 0], mom[:, 1], mom[:, 2]
    sd = np.sqrt(np.maximum(var, 0.0))
    batch = _Batch(dists, u)
    tests: dict[str, np.ndarray] = {}
    ok = sd > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if "mean" not in skip:
            # torch's uniform_ in a dtype of p significand digits draws its unit variate on a grid
            # of 2^-p and returns from + u (to - from): the mean lies (to - from) 2^-(p+1) low
            # (bfloat16 U(0, 1): 0.4981, float16: 0.49976, measured), which one grid step covers.
            grid = np.where(batch.uni, batch.width * 2.0 ** -mantissa_digits(dtype), 0.0)
            z = np.maximum(0.0, np.abs(m.mean - mu) - delta * sd - grid) / (sd / math.sqrt(n))
            tests["mean"] = np.where(ok, np.minimum(1.0, 2 * _ndtr(-z)), 1.0)
        if n >= 2 and "scale" not in skip:
            b2 = mu4 / (var * var)
            nu = 2 * n / np.maximum(b2 - (n - 3) / (n - 1), 1e-12)
            s2 = m.m2 * n / (n - 1)
            up, down = var * (1 + 2 * delta), var * (1 - 2 * delta)
            p_up = 2 * chdtrc(nu, nu * s2 / up)
            p_down = 2 * chdtr(nu, nu * s2 / down)
            p = np.where(s2 > up, p_up, np.where(s2 < down, p_down, 1.0))
            tests["scale"] = np.where(ok, np.minimum(1.0, p), 1.0)
        lo_min, hi_min, lo_max, hi_max = view.ends
        if "extremes" not in skip:
            sf = batch.sf(np.array([lo_max, hi_max]))
            cdf = batch.cdf(np.array([hi_min, lo_min]))
            # max M: P(max >= M) = 1 - F(lo(M))^n, P(max <= M) = F(hi(M))^n; min m: P(min <= m) =
            # 1 - (1 - F(hi(m)))^n, P(min >= m) = (1 - F(lo(m)))^n.
            parts = np.stack(
                [
                    -np.expm1(_log_pow(sf[:, 0], n)),
                    np.exp(_log_pow(sf[:, 1], n)),
                    -np.expm1(_log_pow(cdf[:, 0], n)),
                    np.exp(_log_pow(cdf[:, 1], n)),
                ]
            )
            tests["extremes"] = np.minimum(1.0, 4 * parts.min(axis=0))
        ks = np.zeros(len(dists))
        if view.size:
            alive = np.ones(len(dists), dtype=bool)
            if cutoff is not None and tests:
                ntests = len(tests) + ("ks" not in skip)
                alive = ntests * np.min(np.stack(list(tests.values())), axis=0) >= cutoff
            rows = np.flatnonzero(alive)
            if rows.size:
                sub = _Batch([dists[i] for i in rows], u)
                f_hi, f_lo = sub.cdf(view.hi), sub.cdf(view.lo)
                d = np.maximum(np.max(view.cum[None, :] - f_hi, axis=1), np.max(f_lo - view.prev[None, :], axis=1))
                ks[rows] = np.maximum(d, 0.0)
            if "ks" not in skip:
                root = math.sqrt(view.size)
                p_ks = np.where(ks > 0, kolmogorov((root + 0.12 + 0.11 / root) * ks), 1.0)
                tests["ks"] = np.where(alive, p_ks, np.nan)
        # Log-likelihood; a bounded support must hold the minimum and the maximum after rounding.
        lows = np.where(batch.uni, batch.p[:, 0], np.where(batch.trunc, batch.p[:, 2], -np.inf))
        highs = np.where(batch.uni, batch.p[:, 1], np.where(batch.trunc, batch.p[:, 3], np.inf))
        inside = (hi_min >= lows) & (lo_max <= highs)
        gauss = -n * (_LOG_SQRT2PI + np.log(batch.sd)) - n * (m.m2 + (m.mean - batch.mu) ** 2) / (2 * batch.sd**2)
        ll = np.where(batch.uni, -n * np.log(batch.width), gauss - np.where(batch.trunc, n * np.log(batch.z), 0.0))
        ll = np.where(inside, ll, -np.inf)
        ratio = np.where(sd > 0, math.sqrt(max(m.m2, 0.0)) / sd, np.inf)
    names = list(tests)
    out = []
    for i in range(len(dists)):
        t = {k: float(tests[k][i]) for k in names if not np.isnan(tests[k][i])}
        # Bonferroni over the tests the hypothesis was given (a skipped KS still counts).
        bonferroni = min(1.0, len(names) * min(t.values())) if t else 1.0
        out.append(Fit(bonferroni, t, float(ll[i]), float(ratio[i]), float(ks[i])))
    return out
