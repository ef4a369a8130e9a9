"""Renderers of audit and diff reports: terminal table, Markdown, JSON and a PNG of histograms.

The records are :class:`fanin.auditing.AuditReport` and :class:`fanin.auditing.DiffReport`; these
functions only turn them into text or a picture. The Markdown is meant to be pasted into a
paper's appendix or a rebuttal: the one-line answer first, then one table row per tensor.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from fanin.auditing.audit import AuditReport
from fanin.auditing.diff import DiffReport

__all__ = [
    "render_audit_json",
    "render_audit_markdown",
    "render_audit_table",
    "render_diff_json",
    "render_diff_markdown",
    "render_diff_table",
    "write_audit_plot",
]


def _shape(shape) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def _fans(record) -> str:
    if record.fans is None:
        return "-"
    text = f"{record.fans[0]:g} / {record.fans[1]:g}"
    return text + (" (of weight)" if record.fans_from else "")


def _scheme_cell(inference) -> str:
    if inference.trained:
        return "looks trained"
    if not inference.matches:
        return f"{inference.family} (no named scheme)"
    first = inference.matches[0]
    text = first.scheme + (f" [{first.note}]" if first.note else "")
    others = len(inference.matches) - 1
    return text + (f" (+{others} equivalent or close)" if others else "")


def _p(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _audit_rows(report: AuditReport) -> list[list[str]]:
    rows = []
    for r in report.records:
        i, s = r.inference, r.summary
        rows.append([
            r.name, _shape(r.shape), _fans(r), f"{s.mean:.3g}", f"{s.std:.3g}", i.family, _scheme_cell(i),
            _p(i.ks_statistic), _p(i.p_value), i.confidence,
        ])
    return rows


_AUDIT_HEADER = ["tensor", "shape", "fan_in / fan_out", "mean", "std", "family", "scheme", "KS D", "KS p", "confidence"]


def render_audit_table(report: AuditReport):
    """A ``rich`` Table (print it with a Console); the headline is its title."""
    from rich.table import Table

    table = Table(title=report.headline, caption=f"{report.source}: {report.layout_note}", show_lines=False)
    for h in _AUDIT_HEADER:
        table.add_column(h, overflow="fold", justify="right" if h in ("mean", "std", "KS D", "KS p") else "left")
    for row in _audit_rows(report):
        table.add_row(*row)
    return table


def _md_row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def render_audit_markdown(report: AuditReport) -> str:
    """The headline, a table of every tensor, then each tensor's reason and named matches."""
    lines = [f"**{report.headline}.**", "", f"Source: `{report.source}` ({report.layout_note}).", "",
             _md_row(_AUDIT_HEADER), "|" + "|".join(["---"] * len(_AUDIT_HEADER)) + "|"]
    lines += [_md_row(row) for row in _audit_rows(report)]
    lines.append("")
    for r in report.records:
        i = r.inference
        named = "; ".join(f"`{m.scheme}`: {m.description}" + (f" ({m.note})" if m.note else "") for m in i.matches[:4])
        more = f" and {len(i.matches) - 4} more" if len(i.matches) > 4 else ""
        lines.append(f"- `{r.name}`: {i.reason}." + (f" Matches: {named}{more}." if named else ""))
    if report.skipped:
        lines.append("")
        lines.append("Not audited (not floating point): " + ", ".join(f"`{n}`" for n in report.skipped) + ".")
    return "\n".join(lines) + "\n"


def render_audit_json(report: AuditReport) -> str:
    """The report as JSON (non-finite numbers as ``null``)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


_DIFF_HEADER = ["tensor", "shape", "status", "a", "b", "max |a-b|", "KS p"]


def _diff_rows(report: DiffReport) -> list[list[str]]:
    return [[t.name, _shape(t.shape), t.status, t.scheme_a, t.scheme_b, f"{t.max_abs_diff:.3g}", _p(t.p_value)]
            for t in report.tensors]


def _arch_lines(report: DiffReport) -> list[str]:
    lines = []
    if report.missing:
        lines.append("Only in a: " + ", ".join(report.missing))
    if report.extra:
        lines.append("Only in b: " + ", ".join(report.extra))
    for name, sa, sb in report.reshaped:
        lines.append(f"Reshaped: {name} {_shape(sa)} -> {_shape(sb)}")
    return lines


def render_diff_table(report: DiffReport):
    """A ``rich`` Table; the headline is its title, the architecture differences its caption."""
    from rich.table import Table

    caption = "\n".join([f"a = {report.source_a}, b = {report.source_b}", *_arch_lines(report)])
    table = Table(title=report.headline, caption=caption)
    for h in _DIFF_HEADER:
        table.add_column(h, overflow="fold")
    for row in _diff_rows(report):
        table.add_row(*row)
    return table


def render_diff_markdown(report: DiffReport) -> str:
    """The headline, the architecture differences, then one row per compared tensor."""
    lines = [f"**{report.headline}.**", "", f"a = `{report.source_a}`, b = `{report.source_b}`.", ""]
    lines += [f"- {line}" for line in _arch_lines(report)]
    if report.tensors:
        lines += ["", _md_row(_DIFF_HEADER), "|" + "|".join(["---"] * len(_DIFF_HEADER)) + "|"]
        lines += [_md_row(row) for row in _diff_rows(report)]
    return "\n".join(lines) + "\n"


def render_diff_json(report: DiffReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


class _Mixture:
    """Equal-weight mixture of ``blocks`` blocks, of which ``parts`` (frozen scipy distributions)
    are continuous; the rest are all-zero blocks, a point mass at 0 that a density cannot show."""

    def __init__(self, parts, blocks: int) -> None:
        self.parts = parts
        self.blocks = blocks

    def pdf(self, x):
        return sum(p.pdf(x) for p in self.parts) / self.blocks


def write_audit_plot(report: AuditReport, path: str | os.PathLike[str], names: list[str] | None = None,
                     *, values: dict | None = None, bins: int = 60) -> Path:
    """Histograms of the chosen tensors (default: the first 6 continuous ones) against their
    inferred density, one panel each, into a PNG at ``path``.

    ``values`` maps names to the tensors (the report keeps statistics, not values); without it the
    panel shows the inferred density only. Needs the ``fanin[plot]`` extra.
    """
    from scipy import stats

    from fanin.report.plot import require_matplotlib

    Figure, FigureCanvasAgg = require_matplotlib()
    records = [r for r in report.records if names is None or r.name in names]
    if names is None:
        records = [r for r in records if r.inference.family in ("uniform", "normal", "truncated_normal", "unknown",
                                                                  "sparse")][:6]
    if not records:
        raise ValueError("no tensor to plot: pass names= of continuous tensors of the report; got names="
                         f"{names!r}, report tensors: {', '.join(r.name for r in report.records[:10])}")
    cols = min(3, len(records))
    rows = math.ceil(len(records) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), dpi=100)
    FigureCanvasAgg(fig)
    for k, r in enumerate(records):
        ax = fig.add_subplot(rows, cols, k + 1)
        s = r.summary
        lo, hi = s.min, s.max
        if values is not None and r.name in values:
            x = values[r.name].detach().double().reshape(-1).cpu().numpy()
            ax.hist(x, bins=bins, density=True, color="0.75", label="values")
        grid = [lo + (hi - lo) * i / 400 for i in range(401)]
        d = r.inference.distribution
        fam = r.inference.family
        dist = None
        if fam == "uniform" and "gates" in d:  # per gate block: the equal-weight mixture of U(±b_k)
            gates = int(d["gates"])
            parts = [stats.uniform(-d[f"bound_{k}"], 2 * d[f"bound_{k}"]) for k in range(gates) if d[f"bound_{k}"] > 0]
            dist = _Mixture(parts, gates) if parts else None
        elif fam == "uniform":
            dist = stats.uniform(d["low"], d["high"] - d["low"])
        elif fam == "normal":
            dist = stats.norm(d["mean"], d["std"])
        elif fam == "truncated_normal":
            dist = stats.truncnorm((d["lower"] - d["mean"]) / d["std"], (d["upper"] - d["mean"]) / d["std"],
                                   loc=d["mean"], scale=d["std"])
        elif fam == "sparse":
            dist = stats.norm(0, d["std"])
        if dist is not None:
            ax.plot(grid, dist.pdf(grid), color="C0", linewidth=1.4, label=f"inferred {fam}")
        ax.set_title(f"{r.name}\n{_scheme_cell(r.inference)[:60]}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle(report.headline, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path
