"""``fanin.diff(a, b)``: were two models or checkpoints initialized the same way?

First the architecture: tensors only in ``a`` (missing from ``b``), only in ``b`` (extra) and
in both with different shapes (reshaped). Then, for every tensor in both with the same shape, the
strongest statement that holds, in this order:

==================  ========================================================================
identical           the same values bit for bit (``torch.equal``)
close               ``torch.allclose(a, b, rtol, atol)``
same scheme         not the same values, but the audit names a common scheme (or both are
                    the same constant / structure) at the same scale: a different seed
same distribution   the same inferred family and the two-sample KS test
                    (``scipy.stats.ks_2samp``) does not reject at p >= 0.001, but no common
                    named scheme (e.g. both unknown)
different           none of the above: a different scheme or scale (both named in the detail)
==================  ========================================================================

The one-line :attr:`DiffReport.headline` comes first, e.g. "same architecture (4 tensors); same
initialization scheme for all 4 tensors; values differ (different seeds)".

>>> import torch
>>> torch.manual_seed(0) is not None
True
>>> a, b = torch.nn.Linear(64, 32), torch.nn.Linear(64, 32)
>>> diff(a, b).headline
'same architecture (2 tensors); same initialization scheme for all 2 tensors; values differ (different seeds)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fanin.auditing.audit import TensorRecord, audit_tensor
from fanin.auditing.sources import open_source

__all__ = ["DiffReport", "TensorDiff", "diff"]

P_SAME = 1e-3
STATUSES = ("identical", "close", "same scheme", "same distribution", "different")


@dataclass(frozen=True)
class TensorDiff:
    """One tensor present in both sources with the same shape."""

    name: str
    shape: tuple[int, ...]
    status: str
    scheme_a: str
    scheme_b: str
    common_scheme: str | None
    max_abs_diff: float
    ks_statistic: float | None
    p_value: float | None
    detail: str

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["shape"] = list(self.shape)
        for k in ("max_abs_diff", "ks_statistic", "p_value"):
            if isinstance(out[k], float) and not math.isfinite(out[k]):
                out[k] = None
        return out


@dataclass(frozen=True)
class DiffReport:
    """Architecture comparison and per-tensor comparison of two sources."""

    source_a: str
    source_b: str
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    reshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    tensors: tuple[TensorDiff, ...]
    records_a: tuple[TensorRecord, ...] = ()
    records_b: tuple[TensorRecord, ...] = ()

    @property
    def same_architecture(self) -> bool:
        return not (self.missing or self.extra or self.reshaped)

    @property
    def headline(self) -> str:
        """The one-line answer."""
        n = len(self.tensors)
        if self.same_architecture:
            arch = f"same architecture ({n} tensors)"
        else:
            arch = (f"different architecture ({len(self.missing)} missing from b, {len(self.extra)} extra in b, "
                    f"{len(self.reshaped)} reshaped; {n} compared)")
        counts = {s: sum(t.status == s for t in self.tensors) for s in STATUSES}
        if n == 0:
            return f"{arch}; no tensor to compare"
        if counts["identical"] == n:
            return f"{arch}; identical values for all {n} tensors (same scheme and seed)"
        if counts["identical"] + counts["close"] == n:
            return f"{arch}; values equal within tolerance for all {n} tensors"
        same = counts["identical"] + counts["close"] + counts["same scheme"]
        if same == n:
            return f"{arch}; same initialization scheme for all {n} tensors; values differ (different seeds)"
        differ = [t.name for t in self.tensors if t.status == "different"]
        text = f"{arch}; same initialization scheme for {same} of {n} tensors"
        if counts["same distribution"]:
            text += f", same distribution (no named scheme) for {counts['same distribution']}"
        if differ:
            shown = ", ".join(differ[:3]) + (", ..." if len(differ) > 3 else "")
            text += f"; different initialization for {len(differ)} ({shown})"
        return text

    def to_dict(self) -> dict:
        return {
            "source_a": self.source_a,
            "source_b": self.source_b,
            "headline": self.headline,
            "same_architecture": self.same_architecture,
            "missing": list(self.missing),
            "extra": list(self.extra),
            "reshaped": [{"name": n, "shape_a": list(a), "shape_b": list(b)} for n, a, b in self.reshaped],
            "tensors": [t.to_dict() for t in self.tensors],
        }


def _common(ra: TensorRecord, rb: TensorRecord) -> str | None:
    ia, ib = ra.inference, rb.inference
    if ia.trained or ib.trained or ia.family != ib.family:
        return None
    names_b = {m.scheme for m in ib.matches}
    for m in ia.matches:
        if m.scheme in names_b:
            return m.scheme
    return None


def _compare(name: str, ta: torch.Tensor, tb: torch.Tensor, ra: TensorRecord, rb: TensorRecord,
             rtol: float, atol: float) -> TensorDiff:
    from scipy import stats

    shape = tuple(ta.shape)
    label_a, label_b = ra.inference.label, rb.inference.label
    if ta.dtype != tb.dtype:
        tb = tb.to(ta.dtype)
    delta = (ta.double() - tb.double()).abs()
    max_abs = float(delta.max()) if delta.numel() else 0.0
    common = _common(ra, rb)
    if torch.equal(ta, tb):
        return TensorDiff(name, shape, "identical", label_a, label_b, common, 0.0, None, None, "bitwise equal")
    if torch.allclose(ta, tb, rtol=rtol, atol=atol):
        return TensorDiff(name, shape, "close", label_a, label_b, common, max_abs, None, None,
                          f"max |a-b| = {max_abs:.3g} within rtol={rtol:g}, atol={atol:g}")
    xa = ta.detach().double().reshape(-1).numpy()
    xb = tb.detach().double().reshape(-1).numpy()
    res = stats.ks_2samp(xa, xb)
    stat, p = float(res.statistic), float(res.pvalue)
    if common is not None and p >= P_SAME:
        return TensorDiff(name, shape, "same scheme", label_a, label_b, common, max_abs, stat, p,
                          f"both {common}; values differ (two-sample KS p={p:.3g})")
    # A KS test on a few values cannot tell a small uniform from zeros: the families must agree too.
    same_family = ra.inference.family == rb.inference.family
    if p >= P_SAME and same_family and not (ra.inference.trained ^ rb.inference.trained):
        return TensorDiff(name, shape, "same distribution", label_a, label_b, None, max_abs, stat, p,
                          f"two-sample KS p={p:.3g}; no common named scheme ({label_a} vs {label_b})")
    why = f"{label_a} vs {label_b}" if label_a != label_b else f"both {label_a}, but distributions differ"
    return TensorDiff(name, shape, "different", label_a, label_b, None, max_abs, stat, p,
                      f"{why} (two-sample KS p={p:.3g}; std {ra.summary.std:.4g} vs {rb.summary.std:.4g})")


def diff(a: object, b: object, *, layout: str = "torch", rtol: float = 1e-5, atol: float = 1e-8,
         progress=None) -> DiffReport:
    """Compare ``a`` and ``b`` (each an ``nn.Module``, a state_dict or a checkpoint path).

    Tensors are read one pair at a time (safetensors streamed). Non-floating tensors are compared
    for equality only.
    """
    sa, sb = open_source(a, layout=layout), open_source(b, layout=layout)
    names_b = set(sb.names)
    missing = tuple(n for n in sa.names if n not in names_b)
    extra = tuple(n for n in sb.names if n not in set(sa.names))
    reshaped = tuple((n, sa.shapes[n], sb.shapes[n]) for n in sa.names if n in names_b and sa.shapes[n] != sb.shapes[n])
    both = [n for n in sa.names if n in names_b and sa.shapes[n] == sb.shapes[n]]
    out, recs_a, recs_b = [], [], []
    for i, name in enumerate(both):
        if progress is not None:
            progress(i, len(both), name)
        ta, tb = sa.get(name), sb.get(name)
        if not (ta.is_floating_point() and tb.is_floating_point()):
            continue
        ra = audit_tensor(name, ta, sa.infos[name], sa)
        rb = audit_tensor(name, tb, sb.infos[name], sb)
        recs_a.append(ra)
        recs_b.append(rb)
        out.append(_compare(name, ta, tb, ra, rb, rtol, atol))
    return DiffReport(sa.label, sb.label, missing, extra, reshaped, tuple(out), tuple(recs_a), tuple(recs_b))
