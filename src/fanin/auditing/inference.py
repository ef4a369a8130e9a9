r"""Infer how one tensor was initialized: hypotheses judged by calibrated tests, evidence of training.

**Order.** One streaming pass (:func:`fanin.auditing.scanning.scan`) gives the exact moments of every
value, row/column sums and a fixed sample. Then, the first that holds wins:

==================  ===========================================================================
empty               no elements
non-finite          NaN or infinite values (counted; not an initialization any scheme draws)
constant            every value equal (``zeros``, ``ones``, ``constant(val=c)``)
identity            the non-zeros exactly an identity pattern (eye, dirac), all equal to one gain
constant per gate   each of G = 2, 3, 4 equal row blocks constant (an RNN's gates)
orthogonal          :math:`W W^\top = g^2 I` to the dtype's tolerance
                    (:mod:`fanin.auditing.structure`), per gate block too; when i.i.d. values of
                    this shape and dtype would pass the tolerance as well, orthogonal is reported
                    beside the continuous hypotheses instead
uniform per gate    each gate block :math:`\mathcal U(\pm b_k)`, the blocks' scales different
sparse              the same number of exact zeros in every column, the rest normal
continuous          the hypotheses below (all-zero rows, an embedding's padding, left out)
==================  ===========================================================================

**Hypotheses** are (family, parameters): every registered scheme evaluated at the tensor's shape
(and, for a bias, at its layer weight's fans) through :class:`~fanin.rng.recording.DrawRecorder`
(:mod:`fanin.auditing.candidates`), grouped when they draw the same distribution at this shape;
and, for each of the uniform, normal and truncated-normal families, the *fitted literal*: the
parameters estimated from the data (mean and unbiased std; bounds widened by one spacing of the
range; a symmetric truncation solved from the std and the largest deviation) rounded to the fewest
significant digits (1 to 4) that still pass. Each hypothesis is judged by the tests of
:mod:`fanin.auditing.hypotheses` (mean, scale, extremes, KS; dtype rounding included) and
*passes* when their Bonferroni p-value is at least :data:`ALPHA_FIT` = 0.001: a true hypothesis
fails with probability at most 0.001.

**Ranking.** The passing hypotheses are ranked by the log-likelihood of all values (exact, from
the moments and extremes) minus :math:`\tfrac k2 \ln n` for the :math:`k` parameters a fitted
literal solved from the data (BIC): a formula of the shape or a library default (:math:`k = 0`)
ranks before the literal of the same family unless the literal fits much better. ``family`` is the
first match's family. Each match lists every equivalent name, the module's native framework first.

**Confidence**, from the log-likelihood margin :math:`\Delta` between the first match and its best
*rival* (a passing hypothesis of another family, or another formula or default; the fitted literal
of the first match's family describes the same fit and is no rival):

- *too few values*: fewer than :data:`MIN_VALUES` values, or a passing hypothesis of another family
  within :math:`\Delta < \ln 20` (the family itself is not determined; the list says what remains);
- *high*: :math:`\Delta \ge \ln 1000` and the first match's p >= 0.01;
- *medium*: :math:`\Delta \ge \ln 20`; *low*: otherwise;
- *none*: no hypothesis passes (``unknown``).

**Evidence of training** (:mod:`fanin.auditing.evidence`; never for an exact structure) is the
Bonferroni combination of its tests. ``infer`` alone calls a tensor trained when it is below
``alpha`` (default :data:`ALPHA_TRAINED` = 1e-6: a sweep of 10,000 fresh tensors raises no alarm
with probability 0.99); :func:`fanin.audit` decides instead with Holm's procedure at a
family-wise level over all of a checkpoint's tensors.

>>> import torch, fanin
>>> w = fanin.init.kaiming_uniform_(torch.empty(64, 32), a=5 ** 0.5, generator=torch.Generator().manual_seed(0))
>>> r = infer(w)
>>> r.family, r.confidence, r.matches[0].scheme
('uniform', 'high', 'kaiming_uniform(a=sqrt(5))')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from fanin.auditing.candidates import (
    DEFAULT_NATIVE,
    FRAMEWORK_ORDER,
    NOTES,
    Group,
    continuous_groups,
    fit_direct,
    framework_rank,
    group_candidates,
    spec_framework,
)
from fanin.auditing.dtypes import (
    dtype_name,
    effective_dtype,
    mantissa_digits,
    rounding_interval,
    unit_roundoff,
)
from fanin.auditing.evidence import Evidence, combine, matrix_evidence, tail_evidence
from fanin.auditing.hypotheses import Dist, Fit, SampleView, assess_all
from fanin.auditing.records import Inference, Match, Summary
from fanin.auditing.roles import is_norm
from fanin.auditing.scanning import Scan, scan
from fanin.auditing.sources import skip_reason
from fanin.auditing.structure import (
    describe,
    gate_uniform_alternative,
    infer_constant,
    infer_gate_constant,
    infer_gate_orthogonal,
    infer_gate_uniform,
    infer_identity,
    infer_orthogonal,
    infer_sparse,
    nice,
    zero_rows,
)
from fanin.rng.threads import one_thread

__all__ = ["ALPHA_FIT", "ALPHA_TRAINED", "MIN_VALUES", "Inference", "Match", "Summary", "analyse", "infer"]

#: Level at which a hypothesis is rejected (its Bonferroni p-value below it).
ALPHA_FIT = 1e-3
#: Level of ``infer``'s own training alarm (one tensor judged alone).
ALPHA_TRAINED = 1e-6
#: Fewer values than this: "too few values" whatever the tests say.
MIN_VALUES = 8
_HIGH = math.log(1000)
_MEDIUM = math.log(20)
_PRESCREEN_Z = 8.0
# float8 tensors, which torch's CPU reductions do not take, are analysed through an exact float16
# copy (every float8 value is a float16 value); the effective dtype keeps their own rounding.
_VIA_FLOAT16 = tuple(
    d
    for d in (getattr(torch, n, None) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"))
    if d is not None
)
#: Two distributions closer than this in total variation are the same answer for the confidence.
MATERIAL_TV = 0.01


def total_variation(a: Dist, b: Dist) -> float:
    r""":math:`\tfrac12 \int |p_a - p_b|`, by the CDFs on a fine grid over both supports."""
    lo = min(_quantile_edge(a, low=True), _quantile_edge(b, low=True))
    hi = max(_quantile_edge(a, low=False), _quantile_edge(b, low=False))
    x = np.linspace(lo, hi, 4097)
    da, db = np.diff(a.cdf(x)), np.diff(b.cdf(x))
    return float(0.5 * np.abs(da - db).sum())


def _quantile_edge(d: Dist, low: bool) -> float:
    lo, hi = d.support
    if d.kind == "normal" or not math.isfinite(lo if low else hi):
        mu, s = d.params[0], d.params[1]
        return mu - 8 * s if low else mu + 8 * s
    return lo if low else hi


@dataclass(frozen=True)
class Context:
    """What the tensor is: the shape whose fans a bias's scheme used, its name and module type
    (for the norm-layer rule) and the native framework of its names."""

    fans_shape: tuple[int, ...] | None = None
    fans_of: str | None = None
    name: str | None = None
    module_type: str | None = None
    native: str = DEFAULT_NATIVE
    shape: tuple[int, ...] | None = None  # the shape the candidates take, when not the tensor's own (a pool)


def infer(
    tensor: torch.Tensor,
    *,
    fans_shape: tuple[int, ...] | None = None,
    name: str | None = None,
    module_type: str | None = None,
    framework: str = "torch",
    alpha: float = ALPHA_TRAINED,
) -> Inference:
    """Infer the initialization of ``tensor`` (see the module docstring).

    ``fans_shape``: the shape whose fans a 1-D tensor's scheme used (a bias takes its layer
    weight's); ``name`` and ``module_type``: where the tensor sits (a norm layer's parameter that is
    not constant is trained); ``framework``: whose names come first among equivalent ones
    (``"torch"`` or ``"keras"``); ``alpha``: the level of the training alarm for this one tensor.
    Never raises on a tensor it cannot read: an unreadable dtype is the family ``unreadable``.

    >>> import torch
    >>> infer(torch.zeros(3)).matches[0].scheme
    'zeros'
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"infer needs a torch.Tensor, got tensor={tensor!r} ({type(tensor).__name__})")
    if framework not in FRAMEWORK_ORDER:
        from fanin.errors import describe_choice

        raise ValueError(describe_choice("framework", framework, FRAMEWORK_ORDER))
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha is the level of the training alarm, in (0, 1); got alpha={alpha!r}")
    ctx = Context(
        None if fans_shape is None else tuple(fans_shape),
        "the layer weight" if fans_shape else None,
        name,
        module_type,
        framework,
    )
    inference, _ = analyse(tensor, ctx)
    return decide(inference, alpha)


def decide(inference: Inference, alpha: float, rejected: bool | None = None) -> Inference:
    """``inference`` with ``trained`` set: the evidence below ``alpha``, or Holm's decision
    ``rejected`` from an audit; the reason says which evidence."""
    if inference.evidence_p is None:
        return inference
    trained = inference.evidence_p <= alpha if rejected is None else rejected
    if any(e.p_value is None for e in inference.evidence):
        trained = True
    if trained == inference.trained:
        return inference
    if not trained:
        return replace(inference, trained=False)
    shown = [e for e in inference.evidence if e.p_value is None or e.p_value <= alpha] or list(inference.evidence)
    text = "; ".join(e.text for e in sorted(shown, key=lambda e: (e.p_value is not None, e.p_value or 0.0)))
    return replace(inference, trained=True, reason=f"looks trained: {text}. Values: {inference.reason}")


def _unreadable(t: torch.Tensor, why: str) -> Inference:
    return Inference(
        "unreadable", {}, None, (), "none", False, f"cannot analyse: {why}", n=int(t.numel()), dtype=dtype_name(t.dtype)
    )


def analyse(tensor: torch.Tensor, ctx: Context = Context()) -> tuple[Inference, Scan | None]:
    """The inference (``trained`` not yet decided) and the scan it was computed from."""
    t = tensor.detach()
    why = skip_reason(t)
    if why is not None:
        return _unreadable(t, why), None
    work = t.to(torch.float16) if t.dtype in _VIA_FLOAT16 else t
    # One torch thread: small float64 ops are 20x slower on two contended threads (measured), and
    # the eigenvalues and Gram matrices then have the same bits whatever the thread count.
    with one_thread():
        try:
            s = scan(work)
        except (RuntimeError, TypeError, NotImplementedError) as err:  # a dtype torch converts but cannot reduce
            return _unreadable(t, f"dtype={dtype_name(t.dtype)}: {str(err).splitlines()[0] if str(err) else err}"), None
        inference = _infer(work, s, ctx)
    if work is not t:
        inference = replace(inference, dtype=dtype_name(t.dtype))
    return inference, s


def _infer(t: torch.Tensor, s: Scan, ctx: Context) -> Inference:
    dt = dtype_name(t.dtype)
    if t.numel() == 0:
        return Inference("empty", {}, None, (), "none", False, "no elements", dtype=dt)
    if not s.finite:
        parts = [f"{k} {v}" for k, v in (("NaN", s.nan), ("+inf", s.posinf), ("-inf", s.neginf)) if v]
        return Inference(
            "non-finite",
            {},
            None,
            (),
            "none",
            False,
            f"{', '.join(parts)} of {t.numel()} values: no scheme draws non-finite values",
            n=int(t.numel()),
            dtype=dt,
        )
    if s.lo == s.hi:
        return infer_constant(s, t.dtype)
    eff = effective_dtype(s.sample * s.unit, t.dtype)
    for found in (infer_identity(t, s), infer_gate_constant(t, s)):
        if found is not None:
            return found
    # Orthogonal row blocks of a tall tensor (rows > cols) stack to orthogonal columns, so the blocks
    # are tested first there; with rows <= cols any block of an orthogonal W is orthogonal.
    tall = t.dim() >= 2 and t.shape[0] > t.numel() // t.shape[0]
    if tall:
        found = infer_gate_orthogonal(t, s, eff)
        if found is not None:
            return found
    orth = infer_orthogonal(t, s, eff, ctx.native)
    if orth is not None and orth[1]:
        return orth[0]
    if not tall and orth is None:
        found = infer_gate_orthogonal(t, s, eff)
        if found is not None:
            return found
    for found in (infer_gate_uniform(t, s, eff), infer_sparse(t, s, eff)):
        if found is not None:
            return found
    return _continuous(t, s, eff, ctx, None if orth is None else orth[0])


# --------------------------------------------------------------------------- continuous hypotheses


@dataclass(frozen=True)
class _Hyp:
    dist: Dist
    group: Group | None  # the named group, or None for a fitted literal without registered names
    names: tuple[str, ...]
    note: str
    k: int  # parameters solved from the data (0: a formula of the shape or a library default)
    at_fans: bool
    fit: Fit
    score: float

    @property
    def fitted(self) -> bool:
        return self.k > 0

    def match(self, fans_of: str | None) -> Match:
        return Match(
            self.names[0],
            describe(self.dist),
            self.dist.kind,
            self.names,
            self.note,
            self.fitted,
            self.fit.p,
            dict(self.fit.tests),
            self.fit.scale_ratio,
            self.fit.ks,
            self.score,
            fans_of if self.at_fans else None,
        )


@functools.lru_cache(maxsize=512)
def _table(shape: tuple[int, ...], fans_shape: tuple[int, ...] | None, native: str):
    groups = continuous_groups(shape, fans_shape, native)
    moments = np.array([g.dist.moments for g in groups]).reshape(-1, 3)
    return groups, moments


def _prescreen(moments: np.ndarray, s: Scan, delta: float, grid: float) -> np.ndarray:
    """Candidates whose mean and variance are within :data:`_PRESCREEN_Z` standard errors (a
    loose filter before the full tests, which decide), the mean allowed ``delta`` standard
    deviations and ``grid`` times sqrt(12) of them (a uniform's draw grid, see
    :mod:`fanin.auditing.hypotheses`)."""
    n, m = s.n, s.moments
    with np.errstate(over="ignore", under="ignore"):
        mean = moments[:, 0] / s.unit
        var = moments[:, 1] / s.unit / s.unit
        mu4 = moments[:, 2] / s.unit / s.unit / s.unit / s.unit
    sd = np.sqrt(np.maximum(var, 1e-300))
    z_mean = np.maximum(np.abs(m.mean - mean) - (delta + math.sqrt(12) * grid) * sd, 0) / (sd / math.sqrt(n))
    se_var = np.sqrt(np.maximum(mu4 - var * var, 1e-300) / max(n - 1, 1)) + 2 * delta * var
    z_var = np.abs(m.m2 - var) / se_var
    return (z_mean < _PRESCREEN_Z) & (z_var < _PRESCREEN_Z * (1 + 4 / math.sqrt(max(n, 1))))


def _score(fit: Fit, k: int, n: int) -> float:
    return fit.loglik - 0.5 * k * math.log(max(n, 2))


def _named(t, s, view, eff, ctx) -> list[_Hyp]:
    groups, moments = _table(ctx.shape or tuple(t.shape), ctx.fans_shape, ctx.native)
    if not groups:
        return []
    keep = _prescreen(moments, s, unit_roundoff(eff), 2.0 ** -mantissa_digits(eff))
    chosen = [g for g, ok in zip(groups, keep, strict=True) if ok]
    out = []
    for g, fit in zip(chosen, assess_all([g.dist for g in chosen], s, view, eff, cutoff=ALPHA_FIT), strict=True):
        k = 0 if not g.fitted else 1
        out.append(
            _Hyp(g.dist, g, tuple(c.scheme for c in g.members), g.first.note, k, g.at_fans, fit, _score(fit, k, s.n))
        )
    return out


def _literals(kind: str, s: Scan) -> list[tuple[Dist, int]]:
    """Fitted literals of ``kind``, roundest first (1 to 4 significant digits, then 10): (dist, k)."""
    n, m = s.n, s.moments
    u = s.unit
    mean = m.mean * u
    sd = math.sqrt(m.m2 * n / max(n - 1, 1)) * u
    lo, hi = s.min, s.max
    if not sd > 0 or n < 2:
        return []
    zero_mean = abs(mean) <= 3 * sd / math.sqrt(n)
    out: list[tuple[Dist, int]] = []
    digits = (1, 2, 3, 4, 10)
    if kind == "normal":
        for d in digits:
            mu = 0.0 if zero_mean else nice(mean, d)
            out.append((Dist("normal", (mu, nice(sd, d))), 1 + (mu != 0)))
        out.append((Dist("normal", (mean, sd)), 2))  # the free fit, mean not snapped to 0
    elif kind == "uniform":
        w = hi - lo
        # Symmetric within noise (the range's ends move by about w/n) and a spacing of the dtype.
        if abs(lo + hi) <= 4 * w / n + 2 * _spacing(max(abs(lo), abs(hi)), s.dtype):
            big = max(abs(lo), abs(hi))
            b = big * (n + 1) / n
            for d in digits:
                for v in dict.fromkeys((nice(b, d), _ceil_digits(big, d))):
                    out.append((Dist("uniform", (-v, v)), 1))
        else:
            a, b = lo - w / (n - 1), hi + w / (n - 1)
            for d in digits:
                for va, vb in dict.fromkeys(((nice(a, d), nice(b, d)), (-_ceil_digits(-lo, d), _ceil_digits(hi, d)))):
                    out.append((Dist("uniform", (va, vb)), 2))
    elif kind == "truncated_normal":
        centre = 0.0 if zero_mean else mean
        c = max(hi - centre, centre - lo) * (1 + 1 / n)
        cut = _solve_cut(sd / c)
        if cut is None:
            return []
        s_pre = c / cut
        for d in digits:
            mu = 0.0 if zero_mean else nice(centre, d)
            std = nice(s_pre, d)
            extra = mu != 0
            if abs(cut - 2) < 0.25:  # Keras / TF1 / JAX cut at 2 std
                out.append((Dist("truncated_normal", (mu, std, mu - 2 * std, mu + 2 * std)), 1 + extra))
            half = nice(c, d)
            out.append((Dist("truncated_normal", (mu, std, mu - half, mu + half)), 2 + extra))
        out.append((Dist("truncated_normal", (mean, s_pre, mean - c, mean + c)), 3))  # the free fit
    return out


def _spacing(v: float, dtype: torch.dtype) -> float:
    _, hi = rounding_interval(np.array([v]), dtype)
    return float(hi[0] - v)


def _ceil_digits(v: float, d: int) -> float:
    """The smallest number of ``d`` significant digits that is >= ``v`` (> 0)."""
    if not v > 0:
        return v
    e = math.floor(math.log10(v)) - d + 1
    return float(f"{math.ceil(v / 10**e - 1e-9) * 10**e:.{d}g}")


@functools.lru_cache(maxsize=256)
def _truncnorm_std(t: float) -> float:
    """The std of N(0, 1) cut at ±t."""
    d = Dist("truncated_normal", (0.0, 1.0, -t, t))
    return math.sqrt(d.moments[1])


def _solve_cut(ratio: float) -> float | None:
    """t with std(N(0,1) cut at ±t) / t = ratio (decreasing from 1/sqrt(3) at 0); None outside
    [1, 3]: a fitted cut beyond 3 std leaves out less than 0.27% of the mass and, placed at the
    largest value, buys likelihood for free (the normal is the answer there), and one below 1 std
    is a nearly flat density that mimics a uniform with one more parameter (libraries cut at 2 or
    3 std; registered truncations at any cut remain candidates)."""
    from scipy.optimize import brentq

    def f(t: float) -> float:
        return _truncnorm_std(t) / t - ratio

    lo, hi = 1.0, 3.0
    if not (f(lo) > 0 > f(hi)):
        return None
    return float(brentq(f, lo, hi, xtol=1e-10))


@functools.lru_cache(maxsize=2048)
def _literal_names(kind: str, params: tuple[float, ...], shape: tuple[int, ...], native: str) -> tuple[str, ...]:
    """Every registered scheme whose literal arguments reproduce the distribution, native first."""
    target = Dist(kind, params).named
    found = [
        c
        for c in fit_direct(kind, target, shape, lambda name, v: nice(v, 12))
        if _same(c.as_dist(), Dist(kind, params))
    ]
    return tuple(c.scheme for g in group_candidates(found, native) for c in g.members)


def _same(a: Dist, b: Dist) -> bool:
    return a.kind == b.kind and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-300) for x, y in zip(a.params, b.params, strict=True)
    )


@functools.lru_cache(maxsize=256)
def _padded_names(dist: Dist, row: int, shape: tuple[int, ...]) -> tuple[str, ...]:
    """The registered padded-normal schemes (a normal with one zero row, an embedding's
    ``padding_idx``) that draw ``dist`` with that row zero, read from their own draws."""
    from fanin.auditing.candidates import pretty_spec, probe
    from fanin.schemes import Scheme, list_schemes, lookup

    out = []
    for name in list_schemes():
        entry = lookup(name)
        if entry.family != "normal" or "padding_idx" not in entry.parameters:
            continue
        args = {"padding_idx": row, "std": dist.params[1]} | ({"mean": dist.params[0]} if dist.params[0] else {})
        try:
            scheme = Scheme(name, **args)
        except (TypeError, ValueError):
            continue
        got = probe(scheme, shape)
        if got is not None and got[0] == "normal" and _same(Dist("normal", (got[1]["mean"], got[1]["std"])), dist):
            out.append(pretty_spec(str(scheme)))
    return tuple(out)


def _literal_spec(d: Dist) -> str:
    """The torch spec of a literal distribution (when no registered scheme was found by probing)."""
    p = d.params
    if d.kind == "normal":
        return f"normal(mean={p[0]!r}, std={p[1]!r})" if p[0] else f"normal(std={p[1]!r})"
    if d.kind == "uniform":
        return f"uniform(a={p[0]!r}, b={p[1]!r})"
    return f"trunc_normal(mean={p[0]!r}, std={p[1]!r}, a={p[2]!r}, b={p[3]!r})"


def _fitted(t, s, view, eff, ctx) -> tuple[list[_Hyp], list[_Hyp]]:
    """(passing, best rejected) fitted literal per family: the roundest literal that passes the
    tests and is within sampling error of the family's best fit in likelihood (:func:`_close_to_best`)."""
    shape = ctx.shape or (tuple(t.shape) if t.dim() >= 1 else (1,))
    passing, rejected = [], []
    by_kind = {kind: _literals(kind, s) for kind in ("uniform", "normal", "truncated_normal")}
    every = assess_all([d for literals in by_kind.values() for d, _ in literals], s, view, eff, cutoff=ALPHA_FIT)
    offsets = np.cumsum([0] + [len(v) for v in by_kind.values()])
    for (kind, literals), i0 in zip(by_kind.items(), offsets, strict=False):
        best = None
        fits = every[i0 : i0 + len(literals)]
        top_ll = max((f.loglik for f in fits), default=-math.inf)
        top_ll = max(top_ll, _best_loglik(kind, s, view))
        for (dist, k), fit in zip(literals, fits, strict=True):
            hyp = _Hyp(dist, None, (), "", k, False, fit, _score(fit, k, s.n))
            if best is None or fit.p > best.fit.p:
                best = hyp
            if fit.p >= ALPHA_FIT and _close_to_best(kind, k, top_ll - fit.loglik):
                names = _literal_names(dist.kind, dist.params, shape, ctx.native) or (_literal_spec(dist),)
                note = next((NOTES[n] for n in names if n in NOTES), "")
                passing.append(replace(hyp, names=names, note=note))
                break
        else:
            if best is not None:
                rejected.append(replace(best, names=(_literal_spec(best.dist),)))
    return passing, rejected


def _best_loglik(kind: str, s: Scan, view: SampleView) -> float:
    """The family's maximum log-likelihood where it is known in closed form: a uniform's over the
    widest range the stored extremes allow (their rounding intervals, :attr:`SampleView.ends`:
    bounds anywhere in them fit the stored values equally, and a bfloat16 maximum lies up to
    three spacings under the drawn bound), in scan units as :func:`~fanin.auditing.hypotheses.assess_all`."""
    if kind != "uniform" or not s.hi > s.lo:
        return -math.inf
    lo_min, _, _, hi_max = view.ends
    width = hi_max - lo_min if math.isfinite(hi_max - lo_min) and hi_max > lo_min else s.hi - s.lo
    return -s.n * math.log(width)


def _close_to_best(kind: str, k: int, drop: float) -> bool:
    r"""Whether a literal ``drop`` nats below the family's best fit is within sampling error, at
    :data:`ALPHA_FIT`: the likelihood-ratio statistic :math:`2\Delta` is :math:`\chi^2_k` for the
    normal families (Wilks), and :math:`\Delta` is a sum of k unit exponentials for a uniform's
    bounds (:math:`n(b - \hat b)/b \sim \mathrm{Exp}(1)` for a bound estimated by an extreme)."""
    from scipy.special import chdtri, gammainccinv

    if drop <= 0:
        return True
    if kind == "uniform":
        return drop <= float(gammainccinv(k, ALPHA_FIT))
    return 2 * drop <= float(chdtri(k, ALPHA_FIT))


def _merge(named: list[_Hyp], fitted: list[_Hyp], native: str) -> list[_Hyp]:
    """Fitted literals equal to a named group's distribution join that group's names."""
    out = list(named)
    for f in fitted:
        same = next((i for i, h in enumerate(out) if _same(h.dist, f.dist)), None)
        if same is None:
            out.append(f)
        else:
            h = out[same]
            names = h.names + tuple(n for n in f.names if n not in h.names)
            out[same] = replace(h, names=tuple(sorted(names, key=_name_order(native))))
    return out


def _name_order(native: str):
    rank = framework_rank(native)

    def key(spec: str):
        return (rank(spec_framework(spec)), spec not in NOTES, len(spec), spec)

    return key


#: Prior odds of a documented library default (:data:`~fanin.auditing.candidates.NOTES`: PyTorch's
#: layer default, GPT-2's N(0, 0.02), ones and zeros) against any other hypothesis.
PRIOR_DEFAULT = 20.0
#: Prior odds against each non-default argument of a named formula.
PRIOR_PER_ARGUMENT = 3.0


def _log_prior(h: _Hyp) -> float:
    r"""The log prior weight of a hypothesis in the ranking (not in the confidence, which is the
    data's): :math:`\ln 20` for a documented default, :math:`-\ln 3` per non-default argument of
    a formula (a fitted literal pays BIC's :math:`\tfrac k2 \ln n` instead). It decides only
    what the data cannot: a 32-value bias under ``kaiming_uniform(a=sqrt(5))`` passes a dozen
    formulas whose bounds differ by 10%, the likelihood prefers the narrowest bound that holds the
    largest value, and the prior names PyTorch's default first unless the data favour another by
    more than 20:1."""
    prior = math.log(PRIOR_DEFAULT) if any(n in NOTES for n in h.names) else 0.0
    if not h.fitted and h.names:
        prior -= math.log(PRIOR_PER_ARGUMENT) * min(n.count("=") for n in h.names)
    return prior


#: Free parameters of each family: among descriptions within :data:`MATERIAL_TV` of each other,
#: the family with fewer comes first.
_FAMILY_PARAMETERS = {"uniform": 2, "normal": 2, "truncated_normal": 4}


def _parsimonious(ranked: list[_Hyp]) -> list[_Hyp]:
    """``ranked`` with the first hypothesis replaced by the best one of a simpler family that is
    within :data:`MATERIAL_TV` of it (total variation): a normal cut at ±0.2 std *is* a uniform
    to 1%, and the uniform is the description to report (a fitted cut placed just inside the
    rounded extremes otherwise buys likelihood that the data does not support)."""
    if not ranked:
        return ranked
    top = ranked[0]
    simpler = [
        h
        for h in ranked[1:]
        if _FAMILY_PARAMETERS[h.dist.kind] < _FAMILY_PARAMETERS[top.dist.kind]
        and total_variation(h.dist, top.dist) < MATERIAL_TV
    ]
    if not simpler:
        return ranked
    best = simpler[0]
    return [best] + [h for h in ranked if h is not best]


def _confidence(ranked: list[_Hyp], n: int) -> tuple[str, str]:
    top = ranked[0]
    # Rivals: another formula or default (a different name), or another family that differs from
    # the first match on at least 1% of the mass (a normal and a normal cut at 3.5 std are not).
    family_rivals = [
        h for h in ranked[1:] if h.dist.kind != top.dist.kind and total_variation(h.dist, top.dist) >= MATERIAL_TV
    ]
    rivals = family_rivals + [
        h
        for h in ranked[1:]
        if not h.fitted
        and h not in family_rivals
        and (h.dist.kind == top.dist.kind or total_variation(h.dist, top.dist) >= MATERIAL_TV)
    ]
    margin = top.score - max((h.score for h in rivals), default=-math.inf)
    family_margin = top.score - max((h.score for h in family_rivals), default=-math.inf)
    if n < MIN_VALUES:
        return "too few values", f"only {n} values"
    if family_margin < _MEDIUM:
        rival = max(family_rivals, key=lambda h: h.score)
        return "too few values", (
            f"{rival.dist.kind} ({rival.names[0]}) fits about as well (log-likelihood "
            f"{_lower(family_margin)}): the family is not determined by {n} values"
        )
    why = (
        "no other hypothesis passes"
        if not rivals
        else f"next: {max(rivals, key=lambda h: h.score).names[0]}, log-likelihood {_lower(margin)}"
    )
    if margin >= _HIGH and top.fit.p >= 0.01:
        return "high", why
    if margin >= _MEDIUM:
        return "medium", why
    return "low", why


def _lower(margin: float) -> str:
    return f"{margin:.3g} lower" if margin >= 0 else f"{-margin:.3g} higher"


def _tests_text(fit: Fit) -> str:
    return ", ".join(f"{k} {v:.2g}" for k, v in fit.tests.items())


def _continuous(t: torch.Tensor, s: Scan, eff: torch.dtype, ctx: Context, orthogonal: Inference | None) -> Inference:
    notes = []
    dt, ed = dtype_name(t.dtype), dtype_name(eff)
    rows = zero_rows(s, t)
    keep_rows = None
    if rows:
        s = s.without_rows(rows, t)
        keep_rows = np.ones(t.shape[0], dtype=bool)
        keep_rows[rows] = False
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        notes.append(f"row(s) {shown} all zero (e.g. an embedding's padding_idx), left out")
    if eff != t.dtype:
        notes.append(f"every sampled value is exactly representable in {ed}: tolerances are {ed}'s")
    view = SampleView.of(s, eff)
    distinct = view.values.size
    if s.n < 3 or distinct < min(s.n, 50) * 0.5:
        # Discrete values: no continuous hypothesis and no i.i.d.-continuous null to test training against.
        return Inference(
            "unknown",
            {},
            s.std,
            (),
            "none",
            False,
            f"only {distinct} distinct values among {s.n}: not a continuous distribution",
            n=s.n,
            dtype=dt,
            effective_dtype=ed,
            notes=tuple(notes),
        )
    named = _named(t, s, view, eff, ctx)
    fitted, fit_rejected = _fitted(t, s, view, eff, ctx)
    everything = _merge(named, fitted, ctx.native)
    passing = _parsimonious(
        sorted((h for h in everything if h.fit.p >= ALPHA_FIT), key=lambda h: -(h.score + _log_prior(h)))
    )
    rejected = sorted((h for h in everything if h.fit.p < ALPHA_FIT), key=lambda h: -h.fit.p)
    best_rejected: dict[str, _Hyp] = {}
    for h in rejected + fit_rejected:
        if h.dist.kind not in best_rejected or h.fit.p > best_rejected[h.dist.kind].fit.p:
            best_rejected[h.dist.kind] = h
    rejected_matches = tuple(h.match(ctx.fans_of) for h in best_rejected.values())
    best_p = max([h.fit.p for h in everything + fit_rejected], default=0.0)
    ev = _evidence(t, s, keep_rows, ctx, None if passing else best_p)
    if not passing:
        shown = "; ".join(
            f"{h.dist.kind} {describe(h.dist)}: p={h.fit.p:.2g} ({_tests_text(h.fit)})" for h in best_rejected.values()
        )
        return Inference(
            "unknown",
            {},
            s.std,
            (),
            "none",
            False,
            f"no hypothesis passes at the {ALPHA_FIT:g} level (closest: {shown})",
            tuple(ev),
            combine(ev),
            s.n,
            dt,
            ed,
            tuple(notes),
            rejected_matches,
        )
    # A fitted literal of another family within 1% (total variation) of a better-ranked hypothesis
    # says nothing new (a normal cut at 3 std beside the normal); one of the same family is the
    # literal description of a formula's fit and is reported beside it.
    kept: list[_Hyp] = []
    for h in passing:
        if h.fitted and any(k.dist.kind != h.dist.kind and total_variation(h.dist, k.dist) < MATERIAL_TV for k in kept):
            continue
        kept.append(h)
    passing = kept
    if len(rows) == 1:
        passing = [
            replace(h, names=h.names + _padded_names(h.dist, rows[0], ctx.shape or tuple(t.shape)))
            if h.dist.kind == "normal"
            else h
            for h in passing
        ]
    confidence, why = _confidence(passing, s.n)
    top = passing[0]
    matches = tuple(h.match(ctx.fans_of) for h in passing)
    reason = f"{top.dist.kind} {describe(top.dist)} passes (p={top.fit.p:.3g}: {_tests_text(top.fit)}); {why}"
    if len(passing) > 1:
        reason += f"; {len(passing)} hypotheses pass"
    if not any(h.dist.kind == "uniform" for h in passing):
        alternative = gate_uniform_alternative(t, eff)
        if alternative is not None:
            confidence = "too few values"
            reason += (
                f"; also {alternative.description} ({alternative.scheme}), which gate blocks this small "
                "cannot tell from one distribution"
            )
            matches = (*matches, alternative)
    if orthogonal is not None:
        confidence = "too few values"
        reason += (
            f"; also orthogonal to the {ed} tolerance (gain {orthogonal.scale:.4g}), which i.i.d. values of "
            f"this shape pass too"
        )
        matches = matches + orthogonal.matches
    reason = "; ".join([reason, *notes])
    return Inference(
        top.dist.kind,
        dict(top.dist.named),
        s.std,
        matches,
        confidence,
        False,
        reason,
        tuple(ev),
        combine(ev),
        s.n,
        dt,
        ed,
        tuple(notes),
        rejected_matches,
    )


def _evidence(t: torch.Tensor, s: Scan, keep_rows, ctx: Context, best_p: float | None) -> list[Evidence]:
    found = list(matrix_evidence(t, s, keep_rows)) if t.dim() >= 2 else []
    tail = tail_evidence(s)
    if tail is not None:
        found.append(tail)
    if best_p is not None:
        found.append(
            Evidence(
                "no family fits",
                best_p,
                best_p,
                f"no uniform, normal or truncated normal (named or fitted) passes (best p = {best_p:.2g})",
            )
        )
    if ctx.name is not None and is_norm(ctx.name, ctx.module_type):
        found.append(
            Evidence(
                "norm layer",
                s.std,
                None,
                f"a norm layer's parameter that is not constant (mean {s.mean:.4g}, std {s.std:.3g}): "
                "every library initializes norm layers to a constant (ones or zeros)",
            )
        )
    return found
