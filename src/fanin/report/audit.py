"""Renderers of audit and diff reports: terminal table, plain text, Markdown, JSON, and a PNG.

The records are :class:`fanin.auditing.AuditReport` and :class:`fanin.auditing.DiffReport`; these
functions only turn them into text or a picture. The Markdown and terminal reports are meant for a
paper's appendix: the one-line answer, then the summary by role ("attention, 12 tensors:
N(0, 0.02), ``normal(std=0.02)``"), then one row per tensor, then each tensor's reason, its
equivalent names and its evidence. Every name from a model or a file goes through
:mod:`fanin.report.text`, so nothing in it can change the output (markup, escapes, newlines,
Markdown).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from fanin.auditing.audit import AuditReport, TensorRecord
from fanin.auditing.diff import DiffReport
from fanin.report.text import markdown_cell, markdown_code, printable, rich_text

__all__ = [
    "render_audit_json",
    "render_audit_markdown",
    "render_audit_table",
    "render_audit_text",
    "render_diff_json",
    "render_diff_markdown",
    "render_diff_table",
    "render_diff_text",
    "write_audit_plot",
]

_TEXT_WIDTH = 160


def _shape(shape) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def _fans(record: TensorRecord) -> str:
    if record.fans is None:
        return "-"
    text = f"{record.fans[0]:g} / {record.fans[1]:g}"
    return text + (" (of weight)" if record.fans_from else "")


def _answer(record: TensorRecord) -> str:
    """What the tensor looks like: ``looks trained``, the first match with its formula, or the family."""
    i = record.inference
    if i.trained:
        return "looks trained"
    if not i.matches:
        return f"{i.family} (no hypothesis passes)" if i.family == "unknown" else i.family
    first = i.matches[0]
    text = f"{first.label}: {first.description}"
    others = len(i.matches) - 1
    return text + (f" (+{others} more passing)" if others else "")


def _p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def _evidence_cell(record: TensorRecord) -> str:
    i = record.inference
    if i.evidence_p is None:
        return "-"
    return f"p={i.evidence_p:.2g}" if i.evidence_p > 0 else "decisive"


_AUDIT_HEADER = ["tensor", "shape", "dtype", "fan_in / fan_out", "mean", "std", "family", "answer", "fit p",
                 "confidence", "training evidence"]


def _audit_cells(r: TensorRecord) -> list[str]:
    i, s = r.inference, r.summary
    name = r.name + (f" (= {', '.join(r.tied)})" if r.tied else "")
    return [name, _shape(r.shape), r.dtype, _fans(r), f"{s.mean:.3g}", f"{s.std:.3g}", i.family, _answer(r),
            _p(i.p_value), i.confidence, _evidence_cell(r)]


def _group_line(g) -> tuple[str, str, str]:
    """(who, answer, names) of a role group, plain text."""
    patterns = ", ".join(g.patterns[:4]) + (f", +{len(g.patterns) - 4} more" if len(g.patterns) > 4 else "")
    who = f"{g.role}, {g.count} tensor{'s' if g.count != 1 else ''} ({patterns})"
    answer = g.description if g.trained else f"{g.description}"
    if g.relation:
        answer += f" {g.relation}"
    names = ""
    if g.names and not g.trained:
        names = g.names[0] + (f" [{g.note}]" if g.note else "")
        if len(g.names) > 1:
            names += f"; also {', '.join(g.names[1:4])}" + (" ..." if len(g.names) > 4 else "")
    return who, answer, names


# --------------------------------------------------------------------------- terminal and plain text


def render_audit_table(report: AuditReport):
    """A ``rich`` renderable: the headline, the summary by role, one row per tensor, then what was
    skipped or tied (print it with a Console)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = [Text(printable(report.headline), style="bold"),
             rich_text(f"{report.source}: {report.layout_note}", style="dim")]
    summary = Table(title="Summary by role", title_justify="left", show_lines=False)
    for h in ("role and tensors", "looks like", "named"):
        summary.add_column(h, overflow="fold")
    for g in report.groups:
        summary.add_row(*(rich_text(c) for c in _group_line(g)))
    parts.append(summary)
    table = Table(title="Tensors", title_justify="left")
    for h in _AUDIT_HEADER:
        table.add_column(h, overflow="fold", justify="right" if h in ("mean", "std", "fit p") else "left")
    for r in report.records:
        table.add_row(*(rich_text(c) for c in _audit_cells(r)))
    parts.append(table)
    for r in report.records:
        if r.inference.trained:
            parts.append(rich_text(f"{r.name}: {r.inference.reason}"))
    parts += _skip_lines(report, rich=True)
    return Group(*parts)


def _skip_lines(report: AuditReport, rich: bool) -> list:
    lines = []
    if report.skipped:
        lines.append("Not audited: " + "; ".join(f"{n} ({why})" for n, why in report.skipped.items()))
    if report.tied:
        lines.append("Tied (shares storage, audited once): " + "; ".join(f"{a} = {t}" for a, t in report.tied.items()))
    return [rich_text(line, style="dim") for line in lines] if rich else lines


def _to_text(renderable, width: int) -> str:
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, record=True,
                      legacy_windows=False)
    console.print(renderable)
    return console.export_text()


def render_audit_text(report: AuditReport, width: int = _TEXT_WIDTH) -> str:
    """:func:`render_audit_table` as plain text (what ``print(report)`` shows)."""
    return _to_text(render_audit_table(report), width)


# --------------------------------------------------------------------------- Markdown and JSON


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def render_audit_markdown(report: AuditReport) -> str:
    """The headline, the summary by role, a table of every tensor, then each tensor's reason,
    equivalent names and evidence of training."""
    lines = [f"**{markdown_cell(report.headline)}.**", "",
             f"Source: {markdown_code(report.source)} ({markdown_cell(report.layout_note)}).", "",
             "Summary by role:", ""]
    for g in report.groups:
        who, answer, names = _group_line(g)
        patterns = ", ".join(markdown_code(p) for p in g.patterns[:4]) + (
            f", +{len(g.patterns) - 4} more" if len(g.patterns) > 4 else "")
        text = f"- **{markdown_cell(g.role)}**, {g.count} tensor{'s' if g.count != 1 else ''} ({patterns}): " \
               f"{markdown_cell(answer)}"
        if g.names and not g.trained:
            text += f": {markdown_code(g.names[0])}" + (f" ({markdown_cell(g.note)})" if g.note else "")
            if len(g.names) > 1:
                text += "; also " + ", ".join(markdown_code(n) for n in g.names[1:4]) + (" ..." if len(g.names) > 4 else "")
        lines.append(text)
    lines += ["", _md_row(markdown_cell(h) for h in _AUDIT_HEADER), "|" + "|".join(["---"] * len(_AUDIT_HEADER)) + "|"]
    for r in report.records:
        cells = _audit_cells(r)
        lines.append(_md_row([markdown_code(cells[0])] + [markdown_cell(c) for c in cells[1:]]))
    lines.append("")
    for r in report.records:
        i = r.inference
        text = f"- {markdown_code(r.name)}: {markdown_cell(i.reason)}."
        for m in i.matches[:4]:
            names = ", ".join(markdown_code(n) for n in m.names[:5]) + (" ..." if len(m.names) > 5 else "")
            text += f" Passes: {markdown_cell(m.description)} as {names}" + (f" ({markdown_cell(m.note)})" if m.note else "") + "."
        if len(i.matches) > 4:
            text += f" And {len(i.matches) - 4} more."
        shown = [e for e in i.evidence if e.p_value is None or e.p_value < 0.05]
        if shown:
            text += " Evidence of training: " + "; ".join(markdown_cell(e.text) for e in shown) + "."
        lines.append(text)
    skipped = _skip_lines(report, rich=False)
    if skipped:
        lines.append("")
        lines += [markdown_cell(line) for line in skipped]
    return "\n".join(lines) + "\n"


def render_audit_json(report: AuditReport) -> str:
    """The report as JSON (non-finite numbers as ``null``)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


_DIFF_HEADER = ["tensor", "shape", "status", "test", "p", "scale b/a", "a", "b", "max |a-b|"]


def _diff_cells(t) -> list[str]:
    p = "-" if t.p_value is None else ("0 (certain)" if t.p_value == 0 else f"{t.p_value:.2g}")
    ratio = "-" if t.scale_ratio is None else f"{t.scale_ratio:.4g}"
    max_abs = "-" if t.max_abs_diff is None else f"{t.max_abs_diff:.3g}"
    return [t.name, _shape(t.shape), t.status, t.test or "-", p, ratio, t.scheme_a, t.scheme_b, max_abs]


def _arch_lines(report: DiffReport) -> list[str]:
    lines = []
    if report.missing:
        lines.append("Only in a: " + ", ".join(report.missing))
    if report.extra:
        lines.append("Only in b: " + ", ".join(report.extra))
    for name, sa, sb in report.reshaped:
        lines.append(f"Reshaped: {name} {_shape(sa)} -> {_shape(sb)}")
    if report.tied:
        lines.append("Tied on both sides (compared once): " + ", ".join(f"{a} = {t}" for a, t in report.tied.items()))
    if report.skipped:
        lines.append("Not compared: " + "; ".join(f"{n} ({why})" for n, why in report.skipped.items()))
    return lines


def render_diff_table(report: DiffReport):
    """A ``rich`` renderable: the headline, the sources and architecture differences, one row per
    compared tensor, then the detail of every different tensor."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = [Text(printable(report.headline), style="bold"),
             rich_text(f"a = {report.source_a}, b = {report.source_b}", style="dim")]
    parts += [rich_text(line) for line in _arch_lines(report)]
    table = Table()
    for h in _DIFF_HEADER:
        table.add_column(h, overflow="fold")
    for t in report.tensors:
        table.add_row(*(rich_text(c) for c in _diff_cells(t)))
    parts.append(table)
    parts += [rich_text(f"{t.name}: {t.detail}") for t in report.tensors if t.status == "different"]
    return Group(*parts)


def render_diff_text(report: DiffReport, width: int = _TEXT_WIDTH) -> str:
    """:func:`render_diff_table` as plain text (what ``print(report)`` shows)."""
    return _to_text(render_diff_table(report), width)


def render_diff_markdown(report: DiffReport) -> str:
    """The headline, the architecture differences, one row per compared tensor, then the details."""
    lines = [f"**{markdown_cell(report.headline)}.**", "",
             f"a = {markdown_code(report.source_a)}, b = {markdown_code(report.source_b)}; "
             f"different at family-wise level {report.alpha:g} (Holm).", ""]
    lines += [f"- {markdown_cell(line)}" for line in _arch_lines(report)]
    if report.tensors:
        lines += ["", _md_row(markdown_cell(h) for h in _DIFF_HEADER), "|" + "|".join(["---"] * len(_DIFF_HEADER)) + "|"]
        for t in report.tensors:
            cells = _diff_cells(t)
            lines.append(_md_row([markdown_code(cells[0])] + [markdown_cell(c) for c in cells[1:6]]
                                 + [markdown_code(cells[6]), markdown_code(cells[7]), markdown_cell(cells[8])]))
        lines.append("")
        lines += [f"- {markdown_code(t.name)}: {markdown_cell(t.status)}: {markdown_cell(t.detail)}."
                  for t in report.tensors if t.status != "identical"]
    return "\n".join(lines) + "\n"


def render_diff_json(report: DiffReport) -> str:
    """The report as JSON (non-finite numbers as ``null``)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- figure


class _Mixture:
    """Equal-weight mixture of ``blocks`` blocks, of which ``parts`` (frozen scipy distributions)
    are continuous; the rest are all-zero blocks, a point mass at 0 that a density cannot show."""

    def __init__(self, parts, blocks: int) -> None:
        self.parts = parts
        self.blocks = blocks

    def pdf(self, x):
        return sum(p.pdf(x) for p in self.parts) / self.blocks


_PLOTTABLE = ("uniform", "normal", "truncated_normal", "unknown", "sparse", "orthogonal")


def _density(record: TensorRecord):
    from scipy import stats

    d = record.inference.distribution
    fam = record.inference.family
    if fam == "uniform" and "gates" in d:  # per gate block: the equal-weight mixture of U(±b_k)
        gates = int(d["gates"])
        parts = [stats.uniform(-d[f"bound_{k}"], 2 * d[f"bound_{k}"]) for k in range(gates) if d[f"bound_{k}"] > 0]
        return _Mixture(parts, gates) if parts else None
    if fam == "uniform" and "low" in d:
        return stats.uniform(d["low"], d["high"] - d["low"])
    if fam == "normal" and "std" in d:
        return stats.norm(d["mean"], d["std"])
    if fam == "truncated_normal" and "lower" in d:
        return stats.truncnorm((d["lower"] - d["mean"]) / d["std"], (d["upper"] - d["mean"]) / d["std"],
                               loc=d["mean"], scale=d["std"])
    if fam == "sparse":
        return stats.norm(0, d["std"])
    return None


def _values_for(values, name: str):
    if values is None:
        return None
    try:
        tensor = values.get(name) if hasattr(values, "get") and not isinstance(values, dict) else values.get(name)
    except KeyError:
        return None
    if tensor is None:
        return None
    return tensor.detach().to(device="cpu").double().reshape(-1).numpy()


def _bins(x, requested):
    import numpy as np

    if requested is not None:
        return requested
    u = np.unique(x)
    if u.size <= 60:  # few representable values (a low-precision dtype): one bar per value
        mid = (u[1:] + u[:-1]) / 2 if u.size > 1 else np.array([])
        step = (u[-1] - u[0]) / max(u.size - 1, 1) if u.size > 1 else 1.0
        return np.concatenate([[u[0] - step / 2], mid, [u[-1] + step / 2]])
    return int(min(100, max(10, round(2 * x.size ** (1 / 3)))))  # Rice's rule


def _title(record: TensorRecord, width: int = 44) -> str:
    name = printable(record.name)
    if len(name) > width:
        name = "…" + name[-(width - 1):]
    answer = printable(_answer(record))
    if len(answer) > width + 8:
        answer = answer[:width + 7] + "…"
    return f"{name}\n{answer}"


def write_audit_plot(report: AuditReport, path: str | os.PathLike[str], names: list[str] | None = None,
                     *, values=None, bins=None, max_panels: int = 24) -> Path:
    """Histograms of the chosen tensors against the first match's density, one panel each, into a
    PNG at ``path``; returns the path.

    ``names``: the tensors to show (default: every tensor with a continuous-looking answer, at most
    ``max_panels``; the figure says which are left out). ``values``: a mapping of names to tensors or
    a :class:`~fanin.auditing.sources.Source` (the report keeps statistics, not values); a panel
    without values shows the density only. ``bins``: default one bar per value for a tensor of at
    most 60 distinct values (low precision), else Rice's rule :math:`2 n^{1/3}` (10 to 100). Needs the
    ``fanin[plot]`` extra.
    """
    import numpy as np

    from fanin.report.plot import require_matplotlib

    Figure, FigureCanvasAgg = require_matplotlib()
    if names is not None:
        known = {r.name for r in report.records}
        unknown = [n for n in names if n not in known]
        if unknown:
            from fanin.errors import describe_choice

            raise ValueError(describe_choice("tensor to plot", unknown[0], sorted(known)))
        records = [r for r in report.records if r.name in set(names)]
    else:
        records = [r for r in report.records if r.inference.family in _PLOTTABLE]
    if not records:
        raise ValueError("no tensor to plot: the report has no tensor with continuous values (constants, empty or "
                         f"unreadable tensors have no histogram); report tensors: "
                         f"{', '.join(printable(r.name) for r in report.records[:10]) or 'none'}")
    left_out = records[max_panels:]
    records = records[:max_panels]
    cols = min(3, len(records))
    rows = math.ceil(len(records) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    for k, r in enumerate(records):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = _values_for(values, r.name)
        s = r.summary
        if x is not None and x.size:
            ax.hist(x, bins=_bins(x, bins), density=True, color="0.72", label=f"values ({x.size:,})")
            lo, hi = float(x.min()), float(x.max())
        else:
            lo, hi = s.min, s.max
            ax.text(0.5, 0.5, "(values not given)", transform=ax.transAxes, ha="center", fontsize=8, color="0.4")
        dist = _density(r)
        if dist is not None and math.isfinite(lo) and math.isfinite(hi) and hi > lo:
            pad = 0.05 * (hi - lo)
            grid = np.linspace(lo - pad, hi + pad, 600)
            first = r.inference.matches[0].description if r.inference.matches else r.inference.family
            ax.plot(grid, dist.pdf(grid), color="C0", linewidth=1.4, label=printable(first)[:40])
        ax.set_title(_title(r), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    title = printable(report.headline)
    if len(title) > 150:
        title = title[:149] + "…"
    fig.suptitle(title, fontsize=9)
    if left_out:
        shown = ", ".join(printable(r.name) for r in left_out[:6]) + (", …" if len(left_out) > 6 else "")
        fig.text(0.01, 0.005, f"{len(left_out)} more tensors left out (max_panels={max_panels}): {shown}", fontsize=7,
                 color="0.3")
    fig.tight_layout(rect=(0, 0.03 if left_out else 0, 1, 0.97))
    path = Path(path)
    fig.savefig(path, format="png")
    return path
