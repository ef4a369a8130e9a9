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

from fanin.auditing.comparison import STATUSES, DiffReport
from fanin.auditing.run import AuditReport, TensorRecord
from fanin.report.markdown import markdown_table
from fanin.report.table import PRINT_WIDTH, Column, fit_table, plain_text, prose
from fanin.report.text import markdown_cell, markdown_code, printable

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


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


# The per-tensor table: what goes first when the terminal is narrow (highest rank first; the
# answer shortens to the first name before the std goes).
_AUDIT_COLUMNS = [
    Column("tensor", key=True),
    Column("shape"),
    Column("dtype", drop=7),
    Column("fan_in / fan_out", drop=8),
    Column("mean", "right", drop=9),
    Column("std", "right", drop=2),
    Column("family", drop=6),
    Column("answer", abbrev=3),
    Column("fit p", "right", drop=4),
    Column("confidence"),
    Column("training evidence", drop=5),
]


def _audit_cells(r: TensorRecord) -> list:
    i, s = r.inference, r.summary
    short = i.label if i.trained or i.matches else _answer(r)
    return [
        r.name,
        _shape(r.shape),
        r.dtype,
        _fans(r),
        f"{s.mean:.3g}",
        f"{s.std:.3g}",
        i.family,
        (_answer(r), short),
        _p(i.p_value),
        i.confidence,
        _evidence_cell(r),
    ]


def _group_cells(g) -> list[str]:
    """(who, answer, names) of a role group, plain text."""
    patterns = ", ".join(g.patterns[:4]) + (f", +{len(g.patterns) - 4} more" if len(g.patterns) > 4 else "")
    who = f"{g.role}: {_plural(g.count, 'tensor')} ({patterns})"
    answer = g.description + (f" {g.relation}" if g.relation else "")
    names = ""
    if g.names and not g.trained:
        names = g.names[0] + (f" [{g.note}]" if g.note else "")
        if len(g.names) > 1:
            names += f"; also {', '.join(g.names[1:4])}" + (" ..." if len(g.names) > 4 else "")
    return [who, answer, names]


def _skip_lines(report: AuditReport) -> list[str]:
    lines = []
    if report.skipped:
        lines.append("Not audited: " + "; ".join(f"{n} ({why})" for n, why in report.skipped.items()))
    if report.tied:
        lines.append(
            "Tied (shares the storage of the tensor after '=', audited under that name): "
            + "; ".join(f"{a} = {t}" for a, t in report.tied.items())
        )
    return lines


# --------------------------------------------------------------------------- terminal and plain text


def render_audit_table(report: AuditReport, width: int | None = None):
    """A ``rich`` renderable ``width`` columns wide (``None``: as wide as it needs): the headline,
    the summary by role, one row per tensor, then the evidence of every tensor that looks trained
    and what was skipped or tied (print it with a Console)."""
    from rich.console import Group, RenderableType
    from rich.text import Text

    parts: list[RenderableType] = [
        prose(report.headline, width, style="bold"),
        prose(f"{report.source}: {report.layout_note}", width, style="dim"),
        Text(""),
    ]
    if not report.records:
        return Group(*parts, *(prose(line, width, style="dim") for line in _skip_lines(report) or ["No tensor."]))
    parts.append(Text("Summary by role", style="bold"))
    for g in report.groups:
        who, answer, names = _group_cells(g)
        line = prose(f"{who}: {answer}" + (f": {names}" if names else ""), width, indent=1)
        line.stylize("bold", 1, 1 + len(printable(g.role)))
        parts.append(line)
    parts.append(Text(""))
    parts.append(fit_table(_AUDIT_COLUMNS, [_audit_cells(r) for r in report.records], width, title="Tensors"))
    for r in report.records:
        if r.inference.trained:
            parts.append(prose(f"{r.name}: {r.inference.reason}", width, indent=0))
    parts += [prose(line, width, style="dim") for line in _skip_lines(report)]
    return Group(*parts)


def render_audit_text(report: AuditReport, width: int | None = PRINT_WIDTH) -> str:
    """:func:`render_audit_table` as plain text (``print(report)``: 80 columns)."""
    return plain_text(render_audit_table(report, width), width)


# --------------------------------------------------------------------------- Markdown and JSON


def render_audit_markdown(report: AuditReport) -> str:
    """The headline, the summary by role, a table of every tensor, then each tensor's reason,
    equivalent names and evidence of training."""
    lines = [
        f"**{markdown_cell(report.headline)}.**",
        "",
        f"Source: {markdown_code(report.source)} ({markdown_cell(report.layout_note)}).",
        "",
    ]
    if not report.records:
        return "\n".join(lines + [markdown_cell(line) for line in _skip_lines(report) or ["No tensor."]]) + "\n"
    lines += ["Summary by role:", ""]
    for g in report.groups:
        _, answer, _ = _group_cells(g)
        patterns = ", ".join(markdown_code(p) for p in g.patterns[:4]) + (
            f", +{len(g.patterns) - 4} more" if len(g.patterns) > 4 else ""
        )
        text = f"- **{markdown_cell(g.role)}**, {_plural(g.count, 'tensor')} ({patterns}): {markdown_cell(answer)}"
        if g.names and not g.trained:
            text += f": {markdown_code(g.names[0])}" + (f" ({markdown_cell(g.note)})" if g.note else "")
            if len(g.names) > 1:
                more = " ..." if len(g.names) > 4 else ""
                text += "; also " + ", ".join(markdown_code(n) for n in g.names[1:4]) + more
        lines.append(text)
    lines += ["", "Tensors:", ""]
    lines += markdown_table(_AUDIT_COLUMNS, [_audit_cells(r) for r in report.records])
    lines.append("")
    for r in report.records:
        i = r.inference
        text = f"- {markdown_code(r.name)}: {markdown_cell(i.reason)}."
        for m in i.matches[:4]:
            names = ", ".join(markdown_code(n) for n in m.names[:5]) + (" ..." if len(m.names) > 5 else "")
            text += (
                f" Passes: {markdown_cell(m.description)} as {names}"
                + (f" ({markdown_cell(m.note)})" if m.note else "")
                + "."
            )
        if len(i.matches) > 4:
            text += f" And {len(i.matches) - 4} more."
        shown = [e for e in i.evidence if e.p_value is None or e.p_value < 0.05]
        if shown:
            text += " Evidence of training: " + "; ".join(markdown_cell(e.text) for e in shown) + "."
        lines.append(text)
    skipped = _skip_lines(report)
    if skipped:
        lines.append("")
        lines += [markdown_cell(line) for line in skipped]
    return "\n".join(lines) + "\n"


def render_audit_json(report: AuditReport) -> str:
    """The report as JSON (non-finite numbers as ``null``)."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


_DIFF_COLUMNS = [
    Column("tensor", key=True),
    Column("shape", drop=3),
    Column("status", abbrev=1),
    Column("test", drop=2),
    Column("p", "right"),
    Column("scale b/a", "right"),
    Column("a", drop=4),
    Column("b", drop=4),
    Column("max |a-b|", "right", drop=5),
]


_SHORT_STATUS = {"same distribution": "same dist.", "close": "close"}


def _diff_cells(t) -> list:
    if t.certain:
        p = "certain"
    else:
        p = "-" if t.p_value is None else (f"{t.p_value:.2g}" if t.p_value > 0 else "<1e-300")
    ratio = "-" if t.scale_ratio is None else f"{t.scale_ratio:.4g}"
    max_abs = "-" if t.max_abs_diff is None else f"{t.max_abs_diff:.3g}"
    status = (t.status, _SHORT_STATUS.get(t.status, t.status))
    return [t.name, _shape(t.shape), status, t.test or "-", p, ratio, t.scheme_a, t.scheme_b, max_abs]


def _diff_counts(report: DiffReport) -> str:
    c = report.counts
    said = {"close": "equal within tolerance"}
    text = ", ".join(f"{said.get(s, s)} {c[s]}" for s in STATUSES)
    extra = [f"tied {len(report.tied)}"] * bool(report.tied) + [f"not compared {len(report.skipped)}"] * bool(
        report.skipped
    )
    return (
        f"Counts: {text}"
        + (f"; {', '.join(extra)}" if extra else "")
        + f" (different: family-wise level {report.alpha:g}, Holm)"
    )


def _arch_lines(report: DiffReport) -> list[str]:
    lines = [f"a = {report.source_a}, b = {report.source_b}"]
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


def render_diff_table(report: DiffReport, width: int | None = None):
    """A ``rich`` renderable ``width`` columns wide: the headline, the counts, the sources and
    architecture differences, one row per compared tensor, then the detail of every different
    tensor."""
    from rich.console import Group, RenderableType
    from rich.text import Text

    parts: list[RenderableType] = [prose(report.headline, width, style="bold"), prose(_diff_counts(report), width)]
    parts += [prose(line, width, style="dim") for line in _arch_lines(report)]
    if report.tensors:
        parts += [Text(""), fit_table(_DIFF_COLUMNS, [_diff_cells(t) for t in report.tensors], width)]
    parts += [prose(f"{t.name}: {t.detail}", width) for t in report.tensors if t.status == "different"]
    return Group(*parts)


def render_diff_text(report: DiffReport, width: int | None = PRINT_WIDTH) -> str:
    """:func:`render_diff_table` as plain text (``print(report)``: 80 columns)."""
    return plain_text(render_diff_table(report, width), width)


def render_diff_markdown(report: DiffReport) -> str:
    """The headline, the counts, the architecture differences, one row per compared tensor, then
    the detail of every tensor that is not identical."""
    lines = [f"**{markdown_cell(report.headline)}.**", "", markdown_cell(_diff_counts(report)) + ".", ""]
    lines += [f"- {markdown_cell(line)}" for line in _arch_lines(report)]
    if report.tensors:
        lines += ["", *markdown_table(_DIFF_COLUMNS, [_diff_cells(t) for t in report.tensors]), ""]
        lines += [
            f"- {markdown_code(t.name)}: {markdown_cell(t.status)}: {markdown_cell(t.detail)}."
            for t in report.tensors
            if t.status != "identical"
        ]
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
        return stats.truncnorm(
            (d["lower"] - d["mean"]) / d["std"], (d["upper"] - d["mean"]) / d["std"], loc=d["mean"], scale=d["std"]
        )
    if fam == "sparse":
        return stats.norm(0, d["std"])
    return None


def _values_for(values, name: str):
    """The values of ``name`` as float64 numpy, from a mapping or a Source; ``None`` if not given."""
    if values is None:
        return None
    try:
        tensor = values.get(name)
    except KeyError:
        return None
    if tensor is None or tensor.is_meta:
        return None
    import torch

    return tensor.detach().to(device="cpu", dtype=torch.float64).reshape(-1).numpy()


def _bins(x, requested):
    """Rice's rule, :math:`2 n^{1/3}` equal bins (10 to 100) over the range. When values repeat
    (fewer distinct values than half the count, a low-precision dtype; or at most 60 distinct
    values, some repeated) each edge
    moves to the nearest midpoint between consecutive distinct values, so no bar gets one
    representable value more than its neighbour (one bar per value up to 60). Distinct values
    that do not repeat (a small float32 bias) keep the equal bins: a bar per value would draw
    each value as a spike."""
    import numpy as np

    if requested is not None:
        return requested
    count = int(min(100, max(10, round(2 * x.size ** (1 / 3)))))
    u = np.unique(x)
    if 2 * u.size > x.size and (u.size > 60 or u.size == x.size):
        return count
    if u.size == 1:
        half = abs(float(u[0])) * 0.05 or 0.5
        return np.array([u[0] - half, u[0] + half])
    mid = (u[1:] + u[:-1]) / 2
    edges = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
    if u.size <= 60:
        return edges
    even = np.linspace(edges[0], edges[-1], count + 1)
    nearest = np.clip(np.searchsorted(edges, even), 1, edges.size - 1)
    below = edges[nearest - 1]
    above = edges[nearest]
    snapped = np.where(even - below <= above - even, below, above)
    return np.unique(snapped)


def _shorten(text: str, width: int, keep_end: bool) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


def _title(record: TensorRecord, width: int = 46) -> str:
    """Two lines: the tensor's name (its end kept when long, where layer names differ) and tied
    names, then the answer."""
    from fanin.report.plot import plot_text

    name = printable(record.name) + (f" (= {', '.join(printable(t) for t in record.tied)})" if record.tied else "")
    answer = printable(_answer(record))
    return f"{plot_text(_shorten(name, width, keep_end=True))}\n{plot_text(_shorten(answer, width + 8, False))}"


def _names_text(names: list[str], limit: int = 6) -> str:
    from fanin.report.plot import plot_text

    shown = ", ".join(plot_text(_shorten(printable(n), 40, keep_end=True)) for n in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def write_audit_plot(
    report: AuditReport,
    path: str | os.PathLike[str],
    names: list[str] | None = None,
    *,
    values=None,
    bins=None,
    max_panels: int = 24,
) -> Path:
    """Histograms of the chosen tensors against the first match's density, one panel each, into
    ``path`` (PNG, SVG or PDF by suffix, :mod:`fanin.report.plot`'s style); returns the path.

    ``names``: the tensors to show (default: every tensor with a spread of values; constants,
    empty and unreadable ones are named in the figure's title instead). At most ``max_panels``
    panels: the title names the tensors left out. ``values``: a mapping of names to tensors or a
    :class:`~fanin.auditing.sources.Source`, read one tensor at a time (the report keeps
    statistics, not values); a panel without values shows the density only. ``bins``: by default
    one bar per value for at most 60 distinct values (low precision), else Rice's rule
    :math:`2 n^{1/3}` (10 to 100). Needs the ``fanin[plot]`` extra.
    """
    import numpy as np

    from fanin.report.plot import PALETTE, figure, figure_format, legend_below, plot_text, require_matplotlib

    figure_format(path)
    require_matplotlib()
    if isinstance(max_panels, bool) or not isinstance(max_panels, int) or max_panels < 1:
        raise ValueError(f"max_panels is the largest number of panels, an integer >= 1; got max_panels={max_panels!r}")
    not_drawn: list[str] = []
    if names is not None:
        known = {r.name for r in report.records}
        unknown = [n for n in names if n not in known]
        if unknown:
            from fanin.errors import describe_choice

            raise ValueError(describe_choice("tensor to plot", unknown[0], sorted(known)))
        wanted = set(names)
        records = [r for r in report.records if r.name in wanted]
    else:
        records = [r for r in report.records if r.inference.family in _PLOTTABLE]
        not_drawn = [r.name for r in report.records if r.inference.family not in _PLOTTABLE]
    if not records:
        raise ValueError(
            "no tensor to plot: the report has no tensor with a spread of values (constants, empty or "
            f"unreadable tensors have no histogram); report tensors: "
            f"{', '.join(printable(r.name) for r in report.records[:10]) or 'none'}"
        )
    left_out = [r.name for r in records[max_panels:]]
    records = records[:max_panels]
    cols = min(3, len(records))
    rows = math.ceil(len(records) / cols)
    notes = []
    if not_drawn:
        by_family: dict[str, int] = {}
        for r in report.records:
            if r.name in set(not_drawn):
                by_family[r.inference.family] = by_family.get(r.inference.family, 0) + 1
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(by_family.items(), key=lambda kv: -kv[1]))
        notes.append(
            f"not drawn (no spread of values): {kinds}"
            + (f" ({_names_text(not_drawn, 3)})" if len(not_drawn) <= 3 else "")
        )
    if left_out:
        notes.append(f"{len(left_out)} more left out (max_panels={max_panels}): {_names_text(left_out)}")
    import textwrap

    notes = [line for note in notes for line in textwrap.wrap(note, width=int(cols * 4.2 * 12))]
    title = (
        plot_text(_shorten(printable(report.source), 60, keep_end=True))
        + ": "
        + plot_text(_shorten(printable(report.headline), 110, keep_end=False))
    )
    with figure(path, size=(4.2 * cols, 2.9 * rows + 0.9 + 0.2 * len(notes)), nrows=rows, ncols=cols) as (fig, axes):
        for k, ax in enumerate(axes.flat):
            if k >= len(records):
                ax.set_visible(False)
                continue
            r = records[k]
            x = _values_for(values, r.name)
            s = r.summary
            if x is not None and x.size and float(x.min()) == float(x.max()):
                # a point mass has no density: a stem at the value
                ax.vlines([x[0]], 0, 1, color="0.45", linewidth=3)
                ax.set_ylim(0, 1.15)
                ax.set_yticks([])
                lo = hi = float(x[0])
                count = f"all {x.size:,} values {x[0]:.6g}"
            elif x is not None and x.size:
                ax.hist(
                    x,
                    bins=_bins(x, bins),
                    density=True,
                    color="0.75",
                    edgecolor="none",
                    label="values (histogram, density)",
                )
                lo, hi = float(x.min()), float(x.max())
                count = f"{x.size:,} values"
            else:
                lo, hi = s.min, s.max
                count = "values not given"
            dist = _density(r)
            if dist is not None and math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                pad = 0.05 * (hi - lo)
                grid = np.linspace(lo - pad, hi + pad, 600)
                ax.plot(grid, dist.pdf(grid), color=PALETTE[0], linewidth=1.3, label="density of the first match")
            ax.set_title(_title(r), fontsize=8, loc="left")
            ax.text(0.99, 0.97, count, transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.35")
            ax.tick_params(labelsize=7)
            if k % cols == 0 and lo != hi:
                ax.set_ylabel("density", fontsize=8)
            if k >= len(records) - cols:
                ax.set_xlabel("value", fontsize=8)
        fig.suptitle("\n".join([title, *notes]), fontsize=9)
        legend_below(fig, list(axes.flat), ncols=2)
    return Path(path)
