r"""``fanin.diff(a, b)``: were two models or checkpoints initialized the same way? Answered by tests.

First the architecture: tensors only in ``a`` (missing from ``b``), only in ``b`` (extra), and in
both with different shapes (reshaped). Then each tensor in both with the same shape gets the
strongest statement that holds:

==================  ========================================================================
identical           the same dtype and the same bytes
close               every :math:`|a - b| \le \text{atol} + \text{rtol}\,|b|` (read in float64)
same distribution   not rejected: the two-sample tests below do not reject at the corrected
                    level (so the scales agree within sampling error), and no exact structure
                    (constant, identity, orthogonal) holds on one side only
different           rejected: the test that rejected, its p-value, the scale ratio and both
                    sides' families and first names are in the detail
==================  ========================================================================

**Tests** (the exact moments of all values, the fixed samples of :mod:`fanin.auditing.scanning`):

- *distribution*: the two-sample Kolmogorov-Smirnov test on the samples (``scipy.stats.ks_2samp``);
- *mean*: Welch's t, :math:`t = (\bar a - \bar b)/\sqrt{s_a^2/n_a + s_b^2/n_b}` with
  Welch-Satterthwaite degrees of freedom;
- *scale*: :math:`z = \ln(s_a^2/s_b^2) / \sqrt{v_a + v_b}`,
  :math:`v = (\kappa - \tfrac{n-3}{n-1})/n` the variance of a log sample variance (:math:`\kappa`
  the kurtosis, pooled over both sides); below :data:`SMALL` values a side, where that normal
  approximation rejects up to 10 times too often, Brown-Forsythe's test on all the values
  (``scipy.stats.levene(center='median')``) instead.

Differences within the coarser dtype's unit roundoff (of the std, for the mean and the scale) are
not tested, as in :mod:`fanin.auditing.hypotheses`. A tensor's p-value is the Bonferroni
combination of its tests, and "different" controls the family-wise error rate over the compared
tensors: Holm's procedure at ``alpha`` (default :data:`ALPHA` = 0.001), so two models initialized
the same way are called different anywhere with probability at most ``alpha``. Certain
differences count as rejected tests: an exact structure on one side only, constants or identity
gains that differ, orthogonal gains apart by more than the dtype tolerance, non-finite values,
integer tensors (step counters) that differ, a tensor tied to different tensors. Names of schemes
are shown, never compared: two tensors whose first names differ are "same distribution" unless a
test rejects. ``resolution`` is the relative scale difference the scale test would detect at the
corrected level, so a "same distribution" of 32 values says how little it means.

Examples:
    >>> import torch
    >>> torch.manual_seed(0) is not None
    True
    >>> a, b = torch.nn.Linear(64, 32), torch.nn.Linear(64, 32)
    >>> diff(a, b).headline
    'same architecture (2 tensors); same initialization: 2 same distribution'
    >>> diff(a, a).counts
    {'identical': 2, 'close': 0, 'same distribution': 0, 'different': 0}
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import torch

from fanin.auditing.checkpoint import CheckpointError
from fanin.auditing.dtypes import dtype_name, unit_roundoff
from fanin.auditing.evidence import holm
from fanin.auditing.run import Progress, TensorRecord, audit_tensor
from fanin.auditing.scanning import CHUNK, Scan
from fanin.auditing.sources import Source, open_source
from fanin.auditing.structure import orthogonal_tolerance

__all__ = ["ALPHA", "SMALL", "STATUSES", "DiffReport", "TensorDiff", "diff"]

#: Family-wise level of "different" over one diff: a pair initialized the same way is called
#: different anywhere with probability at most this.
ALPHA = 0.001
STATUSES = ("identical", "close", "same distribution", "different")
_EXACT = ("constant", "identity", "orthogonal")
_SAID = {"close": "equal within tolerance"}


def _num(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


@dataclass(frozen=True)
class TensorDiff:
    """One tensor present in both sources with the same shape.

    ``tests``: test -> p-value; ``p_value`` their Bonferroni combination (``0.0`` for a certain
    difference, which ``certain`` marks: no sampling error, e.g. a constant on one side only);
    ``test`` the one with the smallest p-value; ``scale_ratio`` std of b over std
    of a; ``resolution`` the relative scale difference the scale test could detect."""

    name: str
    shape: tuple[int, ...]
    status: str
    dtype_a: str
    dtype_b: str
    family_a: str
    family_b: str
    scheme_a: str
    scheme_b: str
    max_abs_diff: float | None
    scale_ratio: float | None
    tests: dict[str, float] = field(default_factory=dict)
    p_value: float | None = None
    test: str | None = None
    resolution: float | None = None
    detail: str = ""
    certain: bool = False

    def to_dict(self) -> dict:
        out = {k: _num(v) for k, v in self.__dict__.items()}
        out["shape"] = list(self.shape)
        out["tests"] = {k: _num(v) for k, v in self.tests.items()}
        return out


@dataclass(frozen=True)
class DiffReport:
    """What :func:`diff` found: the architecture comparison and the per-tensor answers.

    ``print(report)`` shows the tables (:mod:`fanin.report.audit`); ``to_dict()`` is the JSON form.

    Attributes:
        source_a: The label of source ``a``.
        source_b: The label of source ``b``.
        missing: The tensors only in ``a``.
        extra: The tensors only in ``b``.
        reshaped: ``(name, shape in a, shape in b)`` of the tensors in both with different shapes.
        tensors: One :class:`TensorDiff` per tensor compared, in ``a``'s order.
        records_a: The audit records of the compared tensors of ``a``.
        records_b: The audit records of the compared tensors of ``b``.
        skipped: Name -> why the tensor was not compared.
        tied: The names sharing storage with an earlier name on both sides (compared once) ->
            that name.
        alpha: The family-wise level of "different".

    Examples:
        >>> lin = torch.nn.Linear(4, 4)
        >>> d = diff(lin, torch.nn.Linear(4, 3))
        >>> d.same_architecture, d.reshaped[0]
        (False, ('weight', (4, 4), (3, 4)))
    """

    source_a: str
    source_b: str
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    reshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    tensors: tuple[TensorDiff, ...]
    records_a: tuple[TensorRecord, ...] = ()
    records_b: tuple[TensorRecord, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)
    tied: dict[str, str] = field(default_factory=dict)
    alpha: float = ALPHA

    @property
    def same_architecture(self) -> bool:
        return not (self.missing or self.extra or self.reshaped)

    @property
    def counts(self) -> dict[str, int]:
        """How many tensors got each answer (every status of :data:`STATUSES`)."""
        return {s: sum(t.status == s for t in self.tensors) for s in STATUSES}

    @property
    def any_different(self) -> bool:
        """Whether a tensor differs: a compared tensor is ``different``, or one is only in ``a``,
        only in ``b`` or reshaped (``fanin diff --exit-code`` then exits 1)."""
        return not self.same_architecture or any(t.status == "different" for t in self.tensors)

    @property
    def headline(self) -> str:
        """The one-line answer, then how many tensors got each answer (and how many are tied or
        not compared)."""
        n = len(self.tensors)
        if self.same_architecture:
            arch = f"same architecture ({n} tensor{'s' * (n != 1)})"
        else:
            arch = (
                f"different architecture ({len(self.missing)} only in a, {len(self.extra)} only in b, "
                f"{len(self.reshaped)} reshaped; {n} compared)"
            )
        extra = [f"{len(self.tied)} tied"] * bool(self.tied)
        extra += [f"{len(self.skipped)} not compared"] * bool(self.skipped)
        tail = f"; {', '.join(extra)}" if extra else ""
        if n == 0:
            return f"{arch}; no tensor to compare{tail}"
        c = self.counts
        counts = ", ".join(f"{c[s]} {_SAID.get(s, s)}" for s in STATUSES if c[s])
        if c["different"]:
            differ = [t.name for t in self.tensors if t.status == "different"]
            shown = ", ".join(differ[:3]) + (", ..." if len(differ) > 3 else "")
            answer = f"different initialization for {c['different']} of {n} ({shown})"
        elif c["identical"] == n:
            answer = "identical values"
        else:
            answer = "same initialization"
        return f"{arch}; {answer}: {counts}{tail}"

    def to_dict(self) -> dict:
        return {
            "source_a": self.source_a,
            "source_b": self.source_b,
            "headline": self.headline,
            "same_architecture": self.same_architecture,
            "any_different": self.any_different,
            "counts": self.counts,
            "alpha": self.alpha,
            "missing": list(self.missing),
            "extra": list(self.extra),
            "reshaped": [{"name": n, "shape_a": list(a), "shape_b": list(b)} for n, a, b in self.reshaped],
            "tensors": [t.to_dict() for t in self.tensors],
            "skipped": dict(self.skipped),
            "tied": dict(self.tied),
        }

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"<DiffReport {self.source_a!r} vs {self.source_b!r}: {len(self.tensors)} tensors, "
            f"{c['identical']} identical, {c['close']} close, {c['same distribution']} same distribution, "
            f"{c['different']} different>"
        )

    def __str__(self) -> str:
        from fanin.report.audit import render_diff_text

        return render_diff_text(self)


def _check_tolerance(name: str, value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} is {what}, a finite number >= 0; got {name}={value!r}")
    return float(value)


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes (``-0.0`` and ``0.0`` differ, a NaN equals the same NaN)."""
    return t.contiguous().view(torch.uint8) if t.numel() and t.element_size() else t


def _compare_values(ta: torch.Tensor, tb: torch.Tensor, rtol: float, atol: float) -> tuple[bool, bool, float]:
    """(bitwise identical, close, max |a - b|), one row block at a time (float64 per block only)."""
    same = ta.dtype == tb.dtype
    close, biggest = True, 0.0
    a2 = ta.reshape(ta.shape[0], -1) if ta.dim() >= 2 else ta.reshape(1, -1)
    b2 = tb.reshape(tb.shape[0], -1) if tb.dim() >= 2 else tb.reshape(1, -1)
    step = max(1, CHUNK // max(a2.shape[1], 1))
    for r0 in range(0, a2.shape[0], step):
        pa, pb = a2[r0 : r0 + step], b2[r0 : r0 + step]
        if same and not torch.equal(_bits(pa), _bits(pb)):
            same = False
        da, db = pa.to(torch.float64), pb.to(torch.float64)
        delta = (da - db).abs()
        if delta.numel():
            m = float(delta.max())
            biggest = max(biggest, m) if not math.isnan(m) else math.nan
        if close and not bool((delta <= atol + rtol * db.abs()).all()):
            close = False
    return same, close, biggest


def _structure(r: TensorRecord) -> str | None:
    f = r.inference.family
    return f if f in _EXACT else None


def _dtype(name: str, fallback: torch.dtype) -> torch.dtype:
    found = getattr(torch, name, None) if name else None
    return found if isinstance(found, torch.dtype) else fallback


def _coarser(ra: TensorRecord, rb: TensorRecord, ta: torch.Tensor, tb: torch.Tensor) -> torch.dtype:
    """The less precise of the two sides' effective dtypes (the values' own precision)."""
    da = _dtype(ra.inference.effective_dtype, ta.dtype)
    db = _dtype(rb.inference.effective_dtype, tb.dtype)
    return max((da, db), key=unit_roundoff)


def _gains(inference) -> dict[str, float]:
    return {k: v for k, v in inference.distribution.items() if k.startswith("gain")}


def _orthogonal(ia, ib, shape, eff: torch.dtype) -> str | None:
    """Why two orthogonal tensors differ for certain, or ``None``: their gate layouts differ, or a
    block's gains differ by more than both sides' tolerance :math:`2\tau`
    (:func:`~fanin.auditing.structure.orthogonal_tolerance`). Orthogonal matrices of one gain are
    the same distribution (Haar, as every orthogonal scheme draws)."""
    if ia.distribution.get("gates") != ib.distribution.get("gates"):
        return f"gate layouts differ: {ia.reason} vs {ib.reason}"
    ga, gb = _gains(ia), _gains(ib)
    if ga.keys() != gb.keys():
        return f"per-block gains differ: {ia.reason} vs {ib.reason}"
    gates = int(ia.distribution.get("gates", 1))
    rows = max(1, shape[0] // gates) if shape else 1
    cols = max(1, math.prod(shape) // max(shape[0], 1)) if shape else 1
    tol = 2 * orthogonal_tolerance(eff, min(rows, cols))
    for key in ga:
        a, b = ga[key], gb[key]
        if not (math.isfinite(a) and math.isfinite(b)) or abs(b - a) > tol * max(abs(a), abs(b)):
            return f"orthogonal gains differ: {a:.6g} vs {b:.6g} (tolerance {tol:.2g} relative)"
    return None


#: Below this many values on either side (with every value in the sample) the scale test is
#: Brown-Forsythe's on the values: the delta method's normal approximation is too liberal there.
SMALL = 1000


def _two_sample(sa: Scan, sb: Scan, delta: float) -> tuple[dict[str, float], float | None]:
    r"""p-values of the KS, mean and scale tests (see the module docstring), and the standard
    error of the log variance ratio. Computed in a common power-of-two unit, so values near the
    float64 limit do not overflow."""
    from scipy import stats
    from scipy.special import ndtr

    c = max(sa.unit, sb.unit)
    xa, xb = sa.sample * (sa.unit / c), sb.sample * (sb.unit / c)
    tests: dict[str, float] = {}
    if xa.size >= 2 and xb.size >= 2:
        # exact below SMALL values a side; scipy falls back to the asymptotic distribution (with a
        # RuntimeWarning) when ties in low-precision values defeat the exact computation
        method = "exact" if min(xa.size, xb.size) < SMALL else "asymp"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
            tests["ks"] = float(stats.ks_2samp(xa, xb, method=method).pvalue)
    na, nb = sa.n, sb.n
    ma, mb = sa.moments.mean * (sa.unit / c), sb.moments.mean * (sb.unit / c)
    va = sa.moments.m2 * (sa.unit / c) ** 2 * na / max(na - 1, 1)  # unbiased
    vb = sb.moments.m2 * (sb.unit / c) ** 2 * nb / max(nb - 1, 1)
    if na < 2 or nb < 2 or not (va > 0 and vb > 0):
        return tests, None
    # Welch's t on the means, a band of the dtypes' rounding (delta std) left untested
    ua, ub = va / na, vb / nb
    t = max(0.0, abs(ma - mb) - delta * math.sqrt(max(va, vb))) / math.sqrt(ua + ub)
    df = (ua + ub) ** 2 / (ua * ua / (na - 1) + ub * ub / (nb - 1))
    tests["mean"] = float(min(1.0, 2 * stats.t.sf(t, df)))
    # Var(ln s^2) = (kappa - (n-3)/(n-1)) / n (kappa the kurtosis, each side standardized, pooled)
    kappa = (na * (sa.kurtosis + 3) + nb * (sb.kurtosis + 3)) / (na + nb)
    var_log = (kappa - (na - 3) / (na - 1)) / na + (kappa - (nb - 3) / (nb - 1)) / nb
    se_log = math.sqrt(max(var_log, 1e-12))
    if min(na, nb) < SMALL and xa.size == na and xb.size == nb:
        tests["scale"] = float(stats.levene(xa, xb, center="median").pvalue)
    else:
        z = max(0.0, abs(math.log(va / vb)) - 2 * delta) / se_log
        tests["scale"] = float(min(1.0, 2 * ndtr(-z)))
    return tests, se_log


def _pair(name: str, ta: torch.Tensor, tb: torch.Tensor, sa_src: Source, sb_src: Source, rtol: float, atol: float):
    """(TensorDiff, record of a, record of b, se of the log variance ratio); a TensorDiff of
    status ``pending`` waits for Holm's procedure (:func:`_decide`)."""
    shape = tuple(ta.shape)
    same, close, max_abs = _compare_values(ta, tb, rtol, atol)
    ra, scan_a = audit_tensor(name, ta, sa_src.infos[name], sa_src)
    rb, scan_b = audit_tensor(name, tb, sb_src.infos[name], sb_src)
    ia, ib = ra.inference, rb.inference
    sd_a, sd_b = ra.summary.std, rb.summary.std
    ratio = sd_b / sd_a if sd_a and math.isfinite(sd_a) and math.isfinite(sd_b) else None

    def row(status, detail, tests=None, p=None, test=None, resolution=None, scale_ratio=ratio, sure=False):
        return TensorDiff(
            name,
            shape,
            status,
            ra.dtype,
            rb.dtype,
            ia.family,
            ib.family,
            ia.label,
            ib.label,
            max_abs,
            scale_ratio,
            tests or {},
            p,
            test,
            resolution,
            detail,
            sure,
        )

    def certain(test, detail, scale_ratio=ratio):
        return row("different", detail, {test: 0.0}, 0.0, test, scale_ratio=scale_ratio, sure=True)

    def done(r, se=None):
        return r, ra, rb, se

    if same:
        return done(row("identical", "bitwise equal"))
    if close:
        return done(row("close", f"max |a-b| = {max_abs:.3g} within rtol={rtol:g}, atol={atol:g}"))
    bad = [(side, i) for side, i in (("a", ia), ("b", ib)) if i.family in ("non-finite", "unreadable")]
    if bad:
        return done(certain(bad[0][1].family, "; ".join(f"{side}: {i.reason}" for side, i in bad)))
    xa, xb = _structure(ra), _structure(rb)
    if xa != xb:
        parts = [f"{side} is {x} ({r.inference.reason})" for side, x, r in (("a", xa, ra), ("b", xb, rb)) if x]
        other = [
            f"{side} is not ({r.inference.label}: {r.inference.family})"
            for side, x, r in (("a", xa, ra), ("b", xb, rb))
            if not x
        ]
        return done(certain("structure", "; ".join(parts + other)))
    if xa in ("constant", "identity"):
        # the values are not within tolerance, so the constants or identity gains differ
        return done(certain(xa, f"{xa} values differ: a {ia.reason}; b {ib.reason}"))
    if xa == "orthogonal":
        why = _orthogonal(ia, ib, shape, _coarser(ra, rb, ta, tb))
        if why is not None:
            return done(certain("gain", why))
        return done(
            row("same distribution", f"both orthogonal, the same gains to the dtype tolerance ({ia.reason})", {}, 1.0)
        )
    if scan_a is None or scan_b is None:  # unreachable for readable dtypes; kept certain, never silent
        return done(certain("unreadable", f"cannot analyse: {ia.reason if scan_a is None else ib.reason}"))
    delta = max(unit_roundoff(_coarser(ra, rb, ta, tb)), unit_roundoff(ta.dtype), unit_roundoff(tb.dtype))
    tests, se_log = _two_sample(scan_a, scan_b, delta)
    p = min(1.0, len(tests) * min(tests.values())) if tests else 1.0
    test = min(tests, key=tests.__getitem__) if tests else None
    return done(row("pending", "", tests, p, test), se_log)


def diff(
    a: object,
    b: object,
    *,
    layout: str = "torch",
    rtol: float = 1e-5,
    atol: float = 1e-8,
    progress: Progress | None = None,
    alpha: float = ALPHA,
) -> DiffReport:
    """Compare ``a`` and ``b`` (each an ``nn.Module``, a state_dict or a checkpoint path); see the
    module docstring. Tensors are read one pair at a time (checkpoints streamed); integer tensors
    are compared for equality.

    Args:
        a: The first source: anything :func:`fanin.audit` reads.
        b: The second source, compared with ``a``.
        layout: ``"torch"`` or ``"keras"``: the layout assumed where no module says it.
        rtol: The relative tolerance of "close" (finite, >= 0).
        atol: The absolute tolerance of "close" (finite, >= 0).
        progress: ``progress(i, total, name)`` is called before each pair.
        alpha: The family-wise level of "different", in (0, 1).

    Returns:
        The architecture comparison and one :class:`TensorDiff` per tensor compared.

    Raises:
        ValueError: ``rtol``, ``atol`` or ``alpha`` is out of its range, or ``layout`` is unknown.
        CheckpointError: A checkpoint cannot be read as a set of named tensors.
        TypeError: ``a`` or ``b`` is none of the accepted kinds.

    Examples:
        >>> lin = torch.nn.Linear(4, 4)
        >>> d = diff(lin, {"weight": lin.weight.detach().clone(), "bias": torch.zeros(4)})
        >>> d
        <DiffReport 'Linear' vs 'state_dict': 2 tensors, 1 identical, 0 close, 0 same distribution, 1 different>
        >>> [(t.name, t.status) for t in d.tensors]
        [('weight', 'identical'), ('bias', 'different')]
    """
    rtol = _check_tolerance("rtol", rtol, "the relative tolerance of 'close'")
    atol = _check_tolerance("atol", atol, "the absolute tolerance of 'close'")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha is the family-wise level of 'different', in (0, 1); got alpha={alpha!r}")
    sa, sb = open_source(a, layout=layout), open_source(b, layout=layout)
    names_b = set(sb.names)
    names_a = set(sa.names)
    missing = tuple(n for n in sa.names if n not in names_b)
    extra = tuple(n for n in sb.names if n not in names_a)
    reshaped = tuple((n, sa.shapes[n], sb.shapes[n]) for n in sa.names if n in names_b and sa.shapes[n] != sb.shapes[n])
    both = [n for n in sa.names if n in names_b and sa.shapes[n] == sb.shapes[n]]
    rows: list[TensorDiff] = []
    recs_a: list[TensorRecord] = []
    recs_b: list[TensorRecord] = []
    ses: list[float | None] = []
    skipped: dict[str, str] = {}
    tied: dict[str, str] = {}
    for i, name in enumerate(both):
        if progress is not None:
            progress(i, len(both), name)
        if name in sa.skipped or name in sb.skipped:
            row = _skipped_pair(name, sa, sb)
            if isinstance(row, str):
                skipped[name] = row
            else:
                rows.append(row)
                ses.append(None)
            continue
        ta_alias, tb_alias = sa.aliases.get(name), sb.aliases.get(name)
        if ta_alias is not None or tb_alias is not None:
            if ta_alias == tb_alias and ta_alias is not None:
                tied[name] = ta_alias  # compared once, under its first name
            else:
                rows.append(_tying_differs(name, sa, sb, ta_alias, tb_alias))
                ses.append(None)
            continue
        ta, tb = sa.get(name), sb.get(name)  # readable: a source lists every tensor it cannot read in skipped
        row, ra, rb, se = _pair(name, ta, tb, sa, sb, rtol, atol)
        rows.append(row)
        recs_a.append(ra)
        recs_b.append(rb)
        ses.append(se)
        del ta, tb
    decided = _decide(rows, ses, alpha)
    return DiffReport(
        sa.label, sb.label, missing, extra, reshaped, tuple(decided), tuple(recs_a), tuple(recs_b), skipped, tied, alpha
    )


def _skipped_pair(name: str, sa: Source, sb: Source) -> TensorDiff | str:
    """A tensor skipped on a side: integer tensors on both sides (a step counter, BatchNorm's
    ``num_batches_tracked``) compared for equality; otherwise why it is not compared."""
    why = "; ".join(f"{side}: {src.skipped[name]}" for side, src in (("a", sa), ("b", sb)) if name in src.skipped)
    da, db = sa.dtypes.get(name), sb.dtypes.get(name)
    if da is None or db is None or da.is_floating_point or db.is_floating_point or da.is_complex or db.is_complex:
        return why
    try:
        ta, tb = sa.get(name), sb.get(name)
    except CheckpointError:
        return why
    if ta.is_meta or tb.is_meta:
        return why
    equal = ta.dtype == tb.dtype and torch.equal(ta, tb)
    return TensorDiff(
        name,
        tuple(ta.shape),
        "identical" if equal else "different",
        dtype_name(ta.dtype),
        dtype_name(tb.dtype),
        "integer",
        "integer",
        "-",
        "-",
        None,
        None,
        {} if equal else {"values": 0.0},
        None if equal else 0.0,
        None if equal else "values",
        None,
        "bitwise equal" if equal else "values differ (not floating point)",
        not equal,
    )


def _tying_differs(name: str, sa: Source, sb: Source, ta: str | None, tb: str | None) -> TensorDiff:
    """A tensor tied (sharing storage) to different tensors, or on one side only: a difference in
    how the model was built, certain, read from the sources without reading values again."""

    def where(side, target):
        return f"{side} ties it to {target}" if target else f"{side} stores its own"

    shape = sa.shapes[name]
    da, db = sa.dtype_names.get(name, "-"), sb.dtype_names.get(name, "-")
    return TensorDiff(
        name,
        tuple(shape),
        "different",
        da,
        db,
        "tied" if ta else "-",
        "tied" if tb else "-",
        f"= {ta}" if ta else "-",
        f"= {tb}" if tb else "-",
        None,
        None,
        {"tying": 0.0},
        0.0,
        "tying",
        None,
        f"{where('a', ta)}; {where('b', tb)} (shared storage differs)",
        True,
    )


def _decide(rows: list[TensorDiff], ses: list[float | None], alpha: float) -> list[TensorDiff]:
    """Holm's procedure over the pending tensors' p-values; certain differences count as tested."""
    from scipy.special import ndtri

    tested = [r.p_value if r.status in ("pending", "different") else None for r in rows]
    rejected = holm(tested, alpha)
    m = max(1, sum(p is not None for p in tested))
    z = float(ndtri(1 - alpha / (2 * 3 * m)))
    out = []
    for r, flag, se in zip(rows, rejected, ses, strict=True):
        if r.status != "pending":
            out.append(r)
            continue
        resolution = math.exp(z * se / 2) - 1 if se is not None else None
        tests = ", ".join(f"{k} p={v:.2g}" for k, v in r.tests.items())
        ratio = f"scale ratio b/a {r.scale_ratio:.4g}" if r.scale_ratio is not None else "scale ratio -"
        sides = f"a: {r.scheme_a} ({r.family_a}); b: {r.scheme_b} ({r.family_b})"
        if flag:
            assert r.test is not None  # a pending pair was tested
            detail = f"rejected by the {r.test} test (p={r.tests[r.test]:.2g}; {tests}); {ratio}; {sides}"
            out.append(replace(r, status="different", resolution=resolution, detail=detail))
        else:
            weak = f"; scales within {resolution:.0%} cannot be told apart" if resolution and resolution > 0.02 else ""
            detail = f"not rejected ({tests}); {ratio}{weak}; {sides}"
            out.append(replace(r, status="same distribution", resolution=resolution, detail=detail))
    return out
