r"""Exact structures: constant, identity, orthogonal, gate blocks, sparse; their tolerances from the dtype.

Each function returns an :class:`~fanin.auditing.records.Inference` when the structure holds to
the stated tolerance, else ``None``. They read the :class:`~fanin.auditing.scanning.Scan`'s row and
column sums first (no extra pass), and touch the tensor again only when that cheap necessary
condition holds.

**Orthogonal.** W viewed as (shape[0], rest) and oriented so that :math:`r \le c` (rows of the
smaller side), orthogonal with gain :math:`g` when every :math:`|(W W^\top)_{ij}/g^2 - \delta_{ij}|`
is at most

.. math:: \tau = 2.5\,u_{\text{eff}} + 4\sqrt r\,u_c

where :math:`u_{\text{eff}}` is the unit roundoff of the effective dtype (rounding each entry to
it moves a Gram entry by at most :math:`2u g^2`, Cauchy-Schwarz) and :math:`u_c` that of the dtype
the QR was computed in (float64 for float64 values, float32 otherwise: torch has no reduced-
precision QR), times :math:`4\sqrt r` (measured: torch's float32 QR is within
:math:`1.7\sqrt r\,u` at r <= 1024). The row norms from the scan are checked first; the Gram matrix
is computed in float64 by column chunks for :math:`r \le 2048`, and for larger :math:`r` probed with
8 random vectors :math:`z` (:math:`\|(W W^\top - g^2 I) z\|_\infty \le \tau g^2 \sqrt r\,\|z\|_\infty`).
The test is *decisive* only when i.i.d. values would miss the tolerance by far:
:math:`\sqrt{2\ln(r^2)/c} > 4\tau` (the largest normalized Gram entry of i.i.d. rows); otherwise the
orthogonal hypothesis is reported beside the continuous ones (a bfloat16 matrix with 2 rows of
65,536 cannot be told from i.i.d.).

**Gate blocks** (PyTorch packs an RNN's gates as equal row blocks: 4 for an LSTM, 3 for a GRU):
constant per block (exact), orthogonal per block (the test above per block), uniform per block
(the blocks' scales differ: Levene's test, median-centred, p < 1e-6, on the sample split by
block; and "every block passes :math:`\mathcal U(\pm b_k)`" is not rejected at that same level,
Bonferroni over the blocks; below 0.001 the answer is low confidence).

**Sparse** (2-D): the same number (>= 1) of exact zeros in every column, the rest normal.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import EllipsisType

import numpy as np
import torch

from fanin.auditing.candidates import (
    DEFAULT_NATIVE,
    DEMOTED,
    Candidate,
    constant_candidates,
    fit_direct,
    framework_rank,
    gate_candidates,
    identity_candidates,
    orthogonal_candidates,
)
from fanin.auditing.dtypes import dtype_name, mantissa_digits, unit_roundoff
from fanin.auditing.hypotheses import Dist, Fit, SampleView, assess
from fanin.auditing.records import Inference, Match
from fanin.auditing.scanning import CHUNK, Scan, scan

__all__ = [
    "GATE_COUNTS",
    "describe",
    "gain_text",
    "gate_uniform_alternative",
    "infer_constant",
    "infer_gate_constant",
    "infer_gate_orthogonal",
    "infer_gate_uniform",
    "infer_identity",
    "infer_orthogonal",
    "infer_sparse",
    "nice",
    "orthogonal_tolerance",
    "zero_rows",
]

GATE_COUNTS = (2, 3, 4)
P_BLOCKS_DIFFER = 1e-6
P_FIT = 1e-3
_MIN_BLOCK_VALUES = 16
_EXACT_IDENTITY_MAX = 1 << 22
_GRAM_MAX_ROWS = 2048


def nice(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def gain_text(g: float) -> str:
    """A gain as ``sqrt(k)``, ``5/3`` or 4 significant digits."""
    for k in (2, 3, 5, 6):
        if abs(g - math.sqrt(k)) < 1e-4 * g:
            return f"sqrt({k})"
    if abs(g - 5 / 3) < 1e-4:
        return "5/3"
    return f"{g:.4g}"


def describe(c: Candidate | Dist) -> str:
    """A short formula for a candidate's distribution: ``U(±0.0442)``, ``N(0, 0.02)``, ..."""
    if isinstance(c, Candidate):
        if c.kind in ("orthogonal", "identity"):
            return f"{c.kind}, gain {gain_text(c.params['gain'])}"
        if c.kind == "constant":
            return f"constant {c.params['value']:g}"
        if c.kind == "sparse":
            return f"N(0, {c.params['std']:.4g}) with {c.params['sparsity']:.3g} of each column zero"
        c = c.as_dist()
    p = c.params
    if c.kind == "uniform":
        if abs(p[0] + p[1]) <= 1e-12 * abs(p[1]):
            return f"U(±{p[1]:.4g})"
        return f"U({p[0]:.4g}, {p[1]:.4g})"
    if c.kind == "normal":
        return f"N({p[0]:.4g}, {p[1]:.4g})"
    m, s, lo, hi = p
    cut_lo, cut_hi = (lo - m) / s, (hi - m) / s
    if abs(cut_lo + cut_hi) < 1e-9:
        return f"N({m:.4g}, {s:.4g}) truncated at ±{cut_hi:.3g} std"
    return f"N({m:.4g}, {s:.4g}) truncated to [{lo:.4g}, {hi:.4g}]"


def _match(c: Candidate, **kw) -> Match:
    return Match(c.scheme, describe(c), c.kind, (c.scheme,), c.note, c.fitted, **kw)


# --------------------------------------------------------------------------- constant, identity


def infer_constant(s: Scan, dtype: torch.dtype) -> Inference:
    value = s.min
    cands = constant_candidates(value, dtype)
    order = sorted(cands, key=lambda c: (c.fitted, c.framework != DEFAULT_NATIVE, len(c.scheme), c.scheme))
    names = tuple(c.scheme for c in order)
    matches = (
        (Match(names[0], f"constant {value:g}", "constant", names, order[0].note, order[0].fitted, p_value=1.0),)
        if order
        else ()
    )
    return Inference(
        "constant",
        {"value": value},
        value,
        matches,
        "high" if s.n > 1 else "too few values",
        False,
        f"all {s.n} values equal {value:g}",
        n=s.n,
        dtype=dtype_name(dtype),
        effective_dtype=dtype_name(dtype),
    )


def infer_identity(t: torch.Tensor, s: Scan) -> Inference | None:
    """The non-zeros exactly an identity pattern (eye, dirac, ...), all equal to one gain."""
    if t.dim() < 2 or t.numel() > _EXACT_IDENTITY_MAX or s.zeros < t.numel() / 2:
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
    u = unit_roundoff(t.dtype)
    for c, pattern in identity_candidates(tuple(t.shape)):
        if torch.equal(pattern != 0, nonzero) and pattern.abs().max() > 0:
            scale = gain / float(pattern[pattern != 0][0])
            if abs(scale - 1) <= 4 * u:
                matches.append(_match(c, p_value=1.0))
            else:
                spec = f"{c.scheme} x {scale:.6g}"
                matches.append(
                    Match(
                        spec,
                        f"identity pattern of {c.scheme}, gain {gain:.6g}",
                        "identity",
                        (spec,),
                        fitted=True,
                        p_value=1.0,
                    )
                )
    if not matches:
        return None
    matches.sort(key=lambda m: (m.fitted, "." in m.scheme.split("(")[0], len(m.scheme), m.scheme))
    return Inference(
        "identity",
        {"gain": gain},
        gain,
        _merge_names(matches),
        "high",
        False,
        f"the non-zeros are exactly an identity pattern, all equal to {gain:.6g}",
        n=s.n,
        dtype=dtype_name(t.dtype),
        effective_dtype=dtype_name(t.dtype),
    )


def _merge_names(matches: list[Match]) -> tuple[Match, ...]:
    """Matches with the same description become one, the others' names listed as equivalent."""
    out: dict[str, Match] = {}
    for m in matches:
        if m.description in out:
            first = out[m.description]
            out[m.description] = Match(
                first.scheme,
                first.description,
                first.family,
                first.names + tuple(n for n in m.names if n not in first.names),
                first.note,
                first.fitted,
                first.p_value,
            )
        else:
            out[m.description] = m
    return tuple(out.values())


# --------------------------------------------------------------------------- orthogonal


def orthogonal_tolerance(eff: torch.dtype, r: int) -> float:
    """:math:`\\tau` of the module docstring."""
    compute = torch.float64 if eff == torch.float64 else torch.float32
    return 2.5 * unit_roundoff(eff) + 4 * math.sqrt(r) * unit_roundoff(compute)


def decisive(tau: float, r: int, c: int) -> bool:
    return math.sqrt(2 * math.log(max(r * r, 4)) / c) > 4 * tau


def _sq_norms(t2: torch.Tensor, along_rows: bool) -> np.ndarray:
    """Squared norms of the rows (``along_rows``) or columns of a 2-D tensor, float64, chunked."""
    rows, cols = t2.shape
    if along_rows:
        out = np.empty(rows)
        step = max(1, CHUNK // max(cols, 1))
        for r0 in range(0, rows, step):
            b = t2[r0 : r0 + step].to(torch.float64)
            out[r0 : r0 + step] = (b * b).sum(1).numpy()
        return out
    out = np.zeros(cols)
    step = max(1, CHUNK // max(cols, 1))
    for r0 in range(0, rows, step):
        b = t2[r0 : r0 + step].to(torch.float64)
        out += (b * b).sum(0).numpy()
    return out


def orthogonal_gain(
    t2: torch.Tensor, eff: torch.dtype, norms: np.ndarray | None = None, unit: float = 1.0
) -> tuple[float, bool] | None:
    """(gain, decisive) when the 2-D ``t2`` is orthogonal to :func:`orthogonal_tolerance`, else
    ``None``. ``norms``: the squared norms of the smaller side's vectors when already known, in
    units of ``unit`` (the values divided by it)."""
    rows, cols = t2.shape
    wide = rows <= cols
    r, c = (rows, cols) if wide else (cols, rows)
    if r < 1:
        return None
    if norms is None:
        norms = _sq_norms(t2, along_rows=wide)
    g2 = float(norms.mean())
    tau = orthogonal_tolerance(eff, r)
    if not (g2 > 0 and math.isfinite(g2)) or float(np.abs(norms / g2 - 1).max()) > tau:
        return None
    m = t2 if wide else t2.T
    scale = math.sqrt(g2) * unit
    if r <= _GRAM_MAX_ROWS:
        gram = torch.zeros(r, r, dtype=torch.float64)
        step = max(1, CHUNK // r)
        for c0 in range(0, c, step):
            b = m[:, c0 : c0 + step].to(torch.float64) / scale
            gram += b @ b.T
        dev = float((gram - torch.eye(r, dtype=torch.float64)).abs().max())
        ok = dev <= tau
    else:
        z = torch.from_numpy(np.random.default_rng(0).standard_normal((r, 8)))
        y = torch.zeros(c, 8, dtype=torch.float64)
        step = max(1, CHUNK // c)
        for r0 in range(0, r, step):
            y += m[r0 : r0 + step].to(torch.float64).T @ z[r0 : r0 + step] / scale
        out = torch.zeros(r, 8, dtype=torch.float64)
        for r0 in range(0, r, step):
            out[r0 : r0 + step] = m[r0 : r0 + step].to(torch.float64) @ y / scale
        ok = float((out - z).abs().max()) <= tau * math.sqrt(r) * float(z.abs().max())
    if not ok:
        return None
    return scale, decisive(tau, r, c)


def _delta(t: torch.Tensor, s: Scan | None = None) -> bool:
    """Non-zero only at the spatial centre of a convolution kernel (a delta-orthogonal kernel)."""
    if t.dim() < 3:
        return False
    taps = t.numel() // (t.shape[0] * t.shape[1])
    if s is not None and s.zeros < t.numel() - t.numel() // taps:
        return False
    centre = tuple(k // 2 for k in t.shape[2:])
    mask = torch.zeros(t.shape[2:], dtype=torch.bool)
    mask[centre] = True
    return bool((t[..., ~mask] == 0).all()) if (~mask).any() else False


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.dim() != 2 else t


def infer_orthogonal(
    t: torch.Tensor, s: Scan, eff: torch.dtype, native: str = DEFAULT_NATIVE
) -> tuple[Inference, bool] | None:
    """(inference, decisive) for an orthogonal (or delta-orthogonal) tensor, else ``None``."""
    if t.dim() < 2:
        return None
    delta = _delta(t, s)
    if delta:
        centre_index: tuple[EllipsisType | int, ...] = (..., *(k // 2 for k in t.shape[2:]))
        centre = t[centre_index]
        found = orthogonal_gain(as_matrix(centre), eff)
    else:
        rows, cols = s.rows, s.cols
        if s.row_sq is None or min(rows, cols) < 2:
            return None
        found = orthogonal_gain(as_matrix(t), eff, s.row_sq if rows <= cols else s.col_sq, s.unit)
    if found is None:
        return None
    gain, sure = found
    matches = []
    tol = 2 * orthogonal_tolerance(eff, min(as_matrix(t).shape)) + 1e-9
    rank = framework_rank(native)
    cands = [
        c
        for c in orthogonal_candidates(tuple(t.shape))
        if abs(c.params["gain"] / gain - 1) < tol and ("delta" in c.entry) == delta
    ]
    cands.sort(key=lambda c: (c.fitted, c.entry in DEMOTED, rank(c.framework), not c.note, len(c.scheme), c.scheme))
    matches = [_match(c, p_value=1.0, scale_ratio=gain / c.params["gain"]) for c in cands]
    if not matches:
        spec = f"orthogonal(gain={nice(gain, 4)!r})"
        matches.append(
            Match(spec, f"orthogonal, gain {gain_text(gain)}", "orthogonal", (spec,), fitted=True, p_value=1.0)
        )
    kind = "delta-orthogonal (only the kernel centre is non-zero)" if delta else "orthogonal"
    r = min(as_matrix(t).shape)
    tau = orthogonal_tolerance(eff, r)
    inference = Inference(
        "orthogonal",
        {"gain": gain},
        gain,
        _merge_names(matches),
        "high" if sure else "low",
        False,
        f"{kind}: W W^T = g^2 I with g = {gain_text(gain)} to the {dtype_name(eff)} tolerance {tau:.2g}",
        n=s.n,
        dtype=dtype_name(t.dtype),
        effective_dtype=dtype_name(eff),
    )
    return inference, sure


# --------------------------------------------------------------------------- gate blocks


def _gate_layout(t: torch.Tensor, gates: int) -> str:
    return f"{gates} blocks of {t.shape[0] // gates} rows"


def _gate_matches(kind: str, found: list[tuple[int, list[float]]], t: torch.Tensor) -> tuple[Match, ...]:
    matches = []
    for _, per_block in found:
        for c in gate_candidates(kind, per_block, tuple(t.shape), t.dtype):
            text = (
                ", ".join(f"{v:g}" for v in per_block)
                if kind == "constant"
                else ", ".join(f"±{v:.4g}" for v in per_block)
                if kind == "uniform"
                else f"gain {gain_text(per_block[0])}"
            )
            matches.append(
                Match(c.scheme, f"{kind} per gate block: {text}", kind, (c.scheme,), c.note, c.fitted, p_value=1.0)
            )
    matches.sort(key=lambda m: (m.fitted, len(m.scheme), m.scheme))
    return tuple(matches)


def _blocks(t: torch.Tensor, gates: int, min_values: int = 2):
    if t.dim() == 0 or t.shape[0] % gates or t.numel() // gates < min_values:
        return None
    return t.split(t.shape[0] // gates)


def _common(t: torch.Tensor, s: Scan) -> dict:
    return {"n": s.n, "dtype": dtype_name(t.dtype), "effective_dtype": dtype_name(t.dtype)}


def infer_gate_constant(t: torch.Tensor, s: Scan) -> Inference | None:
    """Every gate block constant (not all equal: a constant tensor is caught before)."""
    if t.dim() >= 2 and s.row_sq is not None and s.row_sum is not None:
        # Every row constant is necessary: cols * sum(x^2) == sum(x)^2 exactly up to rounding.
        spread = s.cols * s.row_sq - s.row_sum * s.row_sum
        if float(np.abs(spread).max()) > 1e-9 * float(np.abs(s.cols * s.row_sq).max()):
            return None
    found = []
    for gates in GATE_COUNTS:
        blocks = _blocks(t, gates)
        if blocks is not None and all(bool((b == b.reshape(-1)[0]).all()) for b in blocks):
            found.append((gates, [float(b.reshape(-1)[0]) for b in blocks]))
    if not found:
        return None
    gates, values = found[0]
    text = "[" + ", ".join(f"{v:g}" for v in values) + "]"
    dist = {"gates": float(gates)} | {f"value_{k}": v for k, v in enumerate(values)}
    return Inference(
        "constant",
        dist,
        None,
        _gate_matches("constant", found, t),
        "high",
        False,
        f"constant per gate block: {text} ({_gate_layout(t, gates)})",
        **_common(t, s),
    )


def infer_gate_orthogonal(t: torch.Tensor, s: Scan, eff: torch.dtype) -> Inference | None:
    """Every gate block orthogonal, the whole tensor not."""
    if t.dim() < 2 or s.row_sq is None or s.col_sq is None:
        return None
    # Necessary: wide blocks have equal row norms; tall blocks stack to equal column norms.
    r_ok = _equal(s.row_sq, orthogonal_tolerance(eff, s.rows))
    c_ok = _equal(s.col_sq, orthogonal_tolerance(eff, s.cols))
    if not (r_ok or c_ok):
        return None
    found = []
    for gates in GATE_COUNTS:
        blocks = _blocks(t, gates)
        if blocks is None:
            continue
        measured = [orthogonal_gain(as_matrix(b), eff) for b in blocks]
        block_gains = [g[0] for g in measured if g is not None]
        if len(block_gains) == len(measured):
            found.append((gates, block_gains))
    if not found:
        return None
    # Tall blocks of orthonormal columns stack to taller ones that are orthogonal too: the finest
    # layout is the drawn one. Wide blocks split into wide ones that are orthogonal too: the coarsest.
    tall = t.shape[0] // found[0][0] > t.numel() // t.shape[0]
    if tall:
        found.reverse()
    gates, gains = found[0]
    tau = orthogonal_tolerance(eff, t.shape[0] // gates)
    same = max(gains) - min(gains) <= tau * max(gains)
    dist = {"gates": float(gates)}
    gain: float | None
    matches: tuple[Match, ...]
    if same:
        gain = sum(gains) / len(gains)
        matches = _gate_matches("orthogonal", [(gates, [gain] * gates)], t)
        text = f"gain {gain_text(gain)}"
        dist["gain"] = gain
    else:
        gain, matches = None, ()
        text = "gains " + ", ".join(gain_text(g) for g in gains)
        dist |= {f"gain_{k}": g for k, g in enumerate(gains)}
    return Inference(
        "orthogonal",
        dist,
        gain,
        matches,
        "high",
        False,
        f"orthogonal per gate block: {text} ({_gate_layout(t, gates)}; each block W W^T = g^2 I "
        "to float tolerance)" + ("" if matches else "; no registered scheme matches"),
        **_common(t, s),
    )


def _equal(sq: np.ndarray, tau: float) -> bool:
    g = float(sq.mean())
    return g > 0 and float(np.abs(sq / g - 1).max()) <= tau


def infer_gate_uniform(t: torch.Tensor, s: Scan, eff: torch.dtype) -> Inference | None:
    """Every gate block :math:`\\mathcal U(\\pm b_k)`, the blocks' scales significantly different."""
    from scipy import stats

    if t.dim() == 0 or s.sample.size < 2 * _MIN_BLOCK_VALUES:
        return None
    rows = t.shape[0]
    for gates in GATE_COUNTS:
        if rows % gates or rows < gates:
            continue
        h = rows // gates
        # Blocks of rows are contiguous in the flat (row-major) order the sample indexes.
        block_of = s.sample_index // (t.numel() // gates)
        parts = [s.sample[block_of == k] for k in range(gates)]
        if min(p.size for p in parts) < _MIN_BLOCK_VALUES:
            continue
        zero = [bool((p == 0).all()) for p in parts]
        live = [p for p, z in zip(parts, zero, strict=True) if not z]
        if not live or any(p.min() == p.max() for p in live):
            continue
        if len(live) == len(parts):
            # Blocks of one distribution have sample variances within a few standard errors
            # (relative sd about sqrt(2/m) for m values); only a spread beyond 6 of them goes to
            # Levene's test, which decides.
            var = np.array([p.var() for p in live])
            m = min(p.size for p in live)
            if var.max() / var.min() < 1 + 6 * math.sqrt(2 / m) * (1 + math.sqrt(2 / m)):
                continue
            if stats.levene(*live, center="median").pvalue >= P_BLOCKS_DIFFER:
                continue
        blocks = t.split(h)
        bounds: list[float] = []
        fits: list[Fit | None] = []
        scans: list[Scan | None] = []
        for b, z in zip(blocks, zero, strict=True):
            if z:
                bounds.append(0.0)
                fits.append(None)
                scans.append(None)
                continue
            bs = scan(b)
            big = max(abs(bs.min), abs(bs.max))
            bound = big * (bs.n + 1) / bs.n
            fit = assess(Dist("uniform", (-bound, bound)), bs, SampleView.of(bs, eff), eff, skip=("extremes",))
            bounds.append(bound)
            fits.append(fit)
            scans.append(bs)
        # Blocks whose scales differ decisively (Levene p < 1e-6) are not one i.i.d. draw, so the
        # matrix evidence of training does not apply to them as a whole: "every block uniform" is
        # rejected only at the same level, P_BLOCKS_DIFFER (Bonferroni over the blocks), and a
        # Bonferroni p below P_FIT is reported as low confidence (a fixed torch seed gives a block
        # of 288 values with KS p = 4e-5: a 1-in-25,000 draw, not a structure).
        if any(f is not None and f.p * gates < P_BLOCKS_DIFFER for f in fits):
            continue
        return _gate_uniform_result(t, s, eff, gates, bounds, fits, scans)
    return None


def gate_uniform_alternative(t: torch.Tensor, eff: torch.dtype) -> Match | None:
    """Uniform per gate block as a hypothesis that *remains* for blocks too small for the
    heterogeneity test of :func:`infer_gate_uniform` (4 to 15 values each): the first gate count
    whose every block passes U(-b_k, b_k) at its own fitted bound (the extremes
    test left out, the bound came from them). ``None`` when no split passes or the blocks are
    large enough for the test to decide."""
    if t.dim() == 0:
        return None
    for gates in GATE_COUNTS:
        blocks = _blocks(t, gates, min_values=4)
        if blocks is None or blocks[0].numel() >= _MIN_BLOCK_VALUES:
            continue
        bounds: list[float] = []
        fits: list[Fit | None] = []
        scans: list[Scan | None] = []
        for b in blocks:
            bs = scan(b)
            big = max(abs(bs.min), abs(bs.max))
            if big == 0:
                bounds.append(0.0)
                fits.append(None)
                scans.append(None)
                continue
            if bs.min == bs.max:
                break
            bound = big * (bs.n + 1) / bs.n
            fit = assess(Dist("uniform", (-bound, bound)), bs, SampleView.of(bs, eff), eff, skip=("extremes",))
            if fit.p * gates < P_FIT:
                break
            bounds.append(bound)
            fits.append(fit)
            scans.append(bs)
        else:
            if len(set(bounds)) < 2 or all(f is None for f in fits):
                continue
            found = _gate_uniform_result(t, scan(t), eff, gates, bounds, fits, scans)
            text = ", ".join(f"±{b:.4g}" for b in bounds)
            p = min(1.0, gates * min(f.p for f in fits if f is not None))
            if found.matches:
                return replace(found.matches[0], p_value=p)
            spec = f"fanin.gate_uniform(bounds=[{', '.join(repr(nice(b, 4)) for b in bounds)}])"
            return Match(spec, f"uniform per gate block: {text}", "uniform", (spec,), fitted=True, p_value=p)
    return None


def _gate_uniform_result(t, s, eff, gates, bounds, fits, scans) -> Inference:
    p = min(1.0, gates * min(f.p for f in fits if f is not None))
    floor = min(P_FIT, p)  # a rounded bound may not fit worse than the fitted one
    rounded = []
    for b, bs in zip(bounds, scans, strict=True):  # each block's roundest bound (1 to 4 digits) that passes
        if b == 0:
            rounded.append(0.0)
            continue
        view = SampleView.of(bs, eff)
        rounded.append(
            next(
                (
                    nb
                    for nb in (nice(b, d) for d in (1, 2, 3, 4))
                    if assess(Dist("uniform", (-nb, nb)), bs, view, eff).p * gates >= floor
                ),
                b,
            )
        )
    found = [(gates, rounded)] + [
        (g, [b for b in rounded for _ in range(g // gates)]) for g in GATE_COUNTS if g > gates and g % gates == 0
    ]
    matches = _gate_matches("uniform", found, t)
    text = ", ".join(f"±{b:.4g}" for b in bounds)
    dist = {"gates": float(gates), "low": -max(bounds), "high": max(bounds)} | {
        f"bound_{k}": b for k, b in enumerate(bounds)
    }
    reason = (
        f"uniform per gate block: bounds {text} ({_gate_layout(t, gates)}; p={p:.3g}, Bonferroni over the "
        "blocks; the blocks' scales differ, Levene p < 1e-6)"
    )
    if not matches:
        reason += "; no registered scheme matches"
    confidence = "medium" if p >= 0.01 and t.numel() >= 64 else "low"
    return Inference(
        "uniform",
        dist,
        s.std,
        matches,
        confidence,
        False,
        reason,
        n=s.n,
        dtype=dtype_name(t.dtype),
        effective_dtype=dtype_name(eff),
    )


# --------------------------------------------------------------------------- sparse, padding rows


def zero_rows(s: Scan, t: torch.Tensor | None = None) -> list[int]:
    """All-zero rows of a 2-D or wider tensor (an embedding's padding row), at most a quarter (one of 4).

    The scan's row sums of squares are accumulated about each chunk's mean, so an all-zero row
    can leave a residue of rounding; candidates are the rows below 1e-12 of the mean row, each
    then checked exactly in ``t``."""
    if s.row_sq is None or s.rows < 4 or s.zeros < s.cols:
        return []
    typical = float(np.abs(s.row_sq).mean())
    rows = np.flatnonzero(np.abs(s.row_sq) <= 1e-12 * typical).tolist()
    if t is not None:
        rows = [r for r in rows if not bool(t[r].any())]
    return rows if 0 < len(rows) <= max(1, s.rows // 4) and len(rows) < s.rows else []


def infer_sparse(t: torch.Tensor, s: Scan, eff: torch.dtype) -> Inference | None:
    """2-D, the same number (>= 1) of exact zeros in every column, the other values normal.

    Exact zeros in equal numbers per column are a structure a continuous draw has probability 0
    of producing, so even a tiny tensor is reported sparse ("too few values" below 64 non-zeros).
    The candidates are every registered sparse scheme at its default std, then the roundest
    literal std (1 to 4 significant digits) within the sampling error of the measured one; each
    is kept when the KS test of the non-zero values does not reject it at :data:`P_FIT`."""
    from scipy import stats

    rows, cols = t.shape if t.dim() == 2 else (0, 0)
    if t.dim() != 2 or s.zeros < cols or s.zeros >= s.n or zero_rows(s, t):
        return None
    counts = np.zeros(cols, dtype=np.int64)
    step = max(1, CHUNK // max(cols, 1))
    for r0 in range(0, rows, step):
        counts += (t[r0 : r0 + step] == 0).sum(0).numpy()
    z = int(counts.min())
    nz = s.sample[s.sample != 0] * s.unit
    if z == 0 or nz.size < 2 or np.unique(nz).size < 0.5 * min(nz.size, 50):
        return None
    # Draws that round to 0 in the storage dtype (below half its smallest subnormal: N(0, 0.01) in
    # float16 stores about 2 such zeros per million values) add to some columns' counts.
    excess = s.zeros - z * cols
    if excess and excess > _underflow_bound(s, rows - z, cols, t.dtype):
        return None
    # torch's sparse_ zeroes ceil(sparsity * rows) per column: the roundest sparsity that gives z.
    sparsity = next((v for d in range(1, 6) if math.ceil((v := round(z / rows, d)) * rows) == z), z / rows)
    nnz = s.n - s.zeros
    std = math.sqrt(s.n * (s.moments.m2 + s.moments.mean**2) / nnz) * s.unit
    ks = stats.kstest(nz, stats.norm(0, std).cdf)
    p = float(ks.pvalue)
    # The std of the non-zeros has relative standard error sqrt(1/(2 nnz)); 4 of them, and the
    # dtype's rounding, is within sampling error.
    within = 4 / math.sqrt(2 * nnz) + unit_roundoff(eff)

    def match(c: Candidate) -> Match | None:
        cp = float(stats.kstest(nz, stats.norm(0, c.params["std"]).cdf).pvalue)
        if cp >= P_FIT and abs(std / c.params["std"] - 1) < within:
            return Match(
                c.scheme,
                describe(c),
                "sparse",
                (c.scheme,),
                c.note,
                c.fitted,
                cp,
                {"ks": cp},
                std / c.params["std"],
                float(ks.statistic),
            )
        return None

    matches = [m for m in (match(c) for c in _sparse_defaults(sparsity, tuple(t.shape))) if m is not None]
    for digits in (1, 2, 3, 4):
        found = [
            m
            for m in (
                match(c)
                for c in fit_direct(
                    "sparse", {"sparsity": sparsity, "std": std}, tuple(t.shape), lambda name, v, d=digits: nice(v, d)
                )
            )
            if m is not None and m.scheme not in {x.scheme for x in matches}
        ]
        if found:
            matches += found
            break
    if nnz < 64:
        confidence = "too few values"
    else:
        confidence = "high" if matches and p >= 0.01 else "medium" if p >= P_FIT else "low"
    return Inference(
        "sparse",
        {"sparsity": sparsity, "std": std},
        std,
        tuple(matches),
        confidence,
        False,
        f"{z} of {rows} values zero in every column (what torch's sparse_ gives for any sparsity in "
        f"({(z - 1) / rows:.3g}, {z / rows:.3g}]); the rest N(0, {std:.4g}) (KS p={p:.3g})",
        n=s.n,
        dtype=dtype_name(t.dtype),
        effective_dtype=dtype_name(eff),
    )


def _underflow_bound(s: Scan, per_column: int, cols: int, dtype: torch.dtype) -> float:
    """A 1e-6 upper bound on the zeros that the non-zero draws (normal, std from the scan) add:
    Poisson with mean ``per_column * cols * (P(|x| < tiny_sub / 2) + 2^-p)``, rounding to
    ``dtype`` below half its smallest subnormal, and torch's ``normal_`` itself, whose
    float32 draws are exactly 0 at a rate of 2^-24 (p the dtype's significand digits; 11 in
    1.7e8 values, measured)."""
    from scipy import stats

    info = torch.finfo(dtype)
    smallest = float(info.tiny) * float(info.eps)  # the smallest subnormal
    std = s.std * math.sqrt(s.n / max(per_column * cols, 1))
    if not std > 0:
        return 0.0
    p = 2 * float(stats.norm.cdf(smallest / 2 / std) - 0.5) + 2.0 ** -mantissa_digits(dtype)
    return float(stats.poisson.isf(1e-6, per_column * cols * p))


def _sparse_defaults(sparsity: float, shape: tuple[int, ...]) -> list[Candidate]:
    """Every registered sparse scheme with ``sparsity`` and its other arguments at their defaults."""
    from fanin.auditing.candidates import entries_of, pretty_spec, probe
    from fanin.schemes.scheme import Scheme

    out = []
    for entry in entries_of({"sparse"}):
        try:
            scheme = Scheme(entry, sparsity=sparsity)
        except (TypeError, ValueError):
            continue
        got = probe(scheme, shape)
        if got is not None and got[0] == "normal":
            out.append(
                Candidate(
                    pretty_spec(str(scheme)),
                    entry.name,
                    entry.framework,
                    "sparse",
                    {**got[1], "sparsity": sparsity},
                    fitted=False,
                )
            )
    return out
