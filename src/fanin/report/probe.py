"""Renderers of probe reports (:class:`fanin.diagnostics.records.ProbeReport`): a rich table for
the terminal, Markdown, JSON, and a PNG of activation and gradient std against depth.

The records themselves live in :mod:`fanin.diagnostics.records` (diagnostics import nothing from
reports); they are re-exported here, and from :mod:`fanin.report`, under their former names.

Numbers are shown to four significant digits (:func:`fanin.report.depth.format_std`), fractions
as percentages with one decimal; an empty cell means "not measured" (no backward pass, or not a
saturating activation).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fanin.diagnostics.records import (  # the records are re-exported here: this was their home
    BlockStats,
    LayerStats,
    ParamStats,
    ProbeReport,
    UnhealthyModelError,
    load_report,
)
from fanin.diagnostics.verdicts import EXPLODE_ABOVE, VANISH_BELOW
from fanin.report.depth import format_std

__all__ = [
    "BlockStats",
    "LayerStats",
    "ParamStats",
    "ProbeReport",
    "UnhealthyModelError",
    "load_report",
    "probe_json",
    "probe_markdown",
    "probe_plot",
    "probe_table",
]

_STYLES = {
    "stable": "bold green",
    "exploding": "bold red",
    "gradients_exploding": "bold red",
    "vanishing": "bold yellow",
    "gradients_vanishing": "bold yellow",
    "saturating": "bold magenta",
    "dead_units": "bold magenta",
    "residual_growth": "bold red",
}
_LAYER_HEADER = ("#", "layer", "module", "shape", "mean", "std", "E[y^2]", "zeros", "saturated", "grad std")


def _num(value: float | None) -> str:
    return "" if value is None else format_std(value)


def _pct(value: float | None) -> str:
    if value is None:
        return ""
    return "NaN" if math.isnan(value) else f"{value:.1%}"


def _layer_cells(r: LayerStats) -> list[str]:
    name = (r.name or "(model)") + (f" #{r.call}" if r.call else "")
    shape = "x".join(str(d) for d in r.shape)
    return [
        str(r.index), name, r.module, shape, _num(r.mean), _num(r.std), _num(r.second_moment), _pct(r.zeros),
        _pct(r.saturated), _num(r.grad_std),
    ]


def _summary(report: ProbeReport) -> str:
    shapes = ", ".join("x".join(str(d) for d in s) for s in report.input_shapes) or "none"
    return (
        f"{report.label} ({report.model}): {len(report.layers)} layer calls, {report.mode} mode, "
        f"{'forward and backward' if report.backward else 'forward only'}, input {shapes} "
        f"(std {format_std(report.input_std)}), {report.device}, torch {report.torch_version}"
    )


def _block_cells(report: ProbeReport) -> list[list[str]]:
    return [
        [str(b.k), b.name + (f" #{b.call}" if b.call else ""), format_std(b.input_std), format_std(b.output_std),
         "auto" if b.detected else "named"]
        for b in report.blocks
    ]


def _param_cells(report: ProbeReport) -> list[list[str]]:
    return [
        [p.name, "x".join(str(d) for d in p.shape), format_std(p.std), _num(p.grad_std), _num(p.grad_ratio)]
        for p in report.params
    ]


def _exponent(report: ProbeReport) -> str:
    x = report.residual_exponent
    return "" if x is None else f"stream std ~ depth^{x:.3f}"


def probe_table(report: ProbeReport) -> Group:
    """A rich renderable: a summary line, the verdicts, the layers, the residual stream and (with
    a backward pass) the parameters."""
    parts: list[object] = [Text(_summary(report), style="bold")]
    for v in report.verdicts:
        line = Text("  ")
        line.append(v.kind, style=_STYLES.get(v.kind, ""))
        line.append(f": {v.message}")
        parts.append(line)
    table = Table(box=box.SIMPLE_HEAD, title="layers in execution order", title_justify="left")
    for i, header in enumerate(_LAYER_HEADER):
        # Text: "[y^2]" must not be read as rich markup
        table.add_column(Text(header), justify="left" if i in (1, 2, 3) else "right", no_wrap=i != 1)
    for r in report.layers:
        table.add_row(*_layer_cells(r))
    parts.append(table)
    if report.blocks:
        blocks = Table(box=box.SIMPLE_HEAD, title=f"residual stream ({_exponent(report) or 'no exponent'})",
                       title_justify="left")
        for i, header in enumerate(("k", "block", "input std", "output std", "found")):
            blocks.add_column(header, justify="left" if i in (1, 4) else "right")
        for row in _block_cells(report):
            blocks.add_row(*row)
        parts.append(blocks)
    if report.backward:
        params = Table(box=box.SIMPLE_HEAD, title="parameters", title_justify="left")
        for i, header in enumerate(("parameter", "shape", "std", "grad std", "grad/weight")):
            params.add_column(header, justify="left" if i < 2 else "right")
        for row in _param_cells(report):
            params.add_row(*row)
        parts.append(params)
    return Group(*parts)


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def probe_markdown(report: ProbeReport) -> str:
    """Markdown: summary, verdicts as a list, then the tables of :func:`probe_table`."""
    lines = [f"**{_summary(report)}**", ""]
    lines += [f"- **{v.kind}**: {v.message}" for v in report.verdicts]
    lines += ["", "Layers in execution order:", ""]
    lines += _md_table(_LAYER_HEADER, (_layer_cells(r) for r in report.layers),
                       [True, False, False, False, True, True, True, True, True, True])
    if report.blocks:
        lines += ["", f"Residual stream ({_exponent(report) or 'no exponent'}):", ""]
        lines += _md_table(("k", "block", "input std", "output std", "found"), _block_cells(report),
                           [True, False, True, True, False])
    if report.backward:
        lines += ["", "Parameters:", ""]
        lines += _md_table(("parameter", "shape", "std", "grad std", "grad/weight"), _param_cells(report),
                           [False, False, True, True, True])
    return "\n".join(lines) + "\n"


def probe_json(report: ProbeReport) -> str:
    """The report's JSON form (:meth:`ProbeReport.to_json`; :func:`fanin.diagnostics.records.load_report`
    reads it back)."""
    return report.to_json()


def probe_plot(reports: ProbeReport | Sequence[ProbeReport], path: str | os.PathLike[str]) -> Path:
    """Draw activation std (and, where measured, gradient std) against the layer's execution index
    on log scales into a PNG at ``path``, one line per report, so that runs (schemes) compare on
    one plot; dashed lines mark the exploding and vanishing thresholds."""
    from fanin.report.plot import require_matplotlib

    Figure, FigureCanvasAgg = require_matplotlib()
    reports = [reports] if isinstance(reports, ProbeReport) else list(reports)
    if not reports or not all(isinstance(r, ProbeReport) for r in reports):
        raise TypeError(f"probe_plot takes a ProbeReport or a list of them, got reports={reports!r}")
    with_grads = any(r.backward for r in reports)
    fig = Figure(figsize=(9, 8 if with_grads else 5), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2 if with_grads else 1, 1, sharex=True, squeeze=False)[:, 0]
    for report in reports:
        x = [r.index for r in report.layers]
        label = f"{report.label} ({', '.join(v.kind for v in report.verdicts)})"
        axes[0].plot(x, [_shown(r.std) for r in report.layers], label=label, linewidth=1.3)
        if with_grads:
            grads = [_shown(r.grad_std) if r.grad_std is not None else math.nan for r in report.layers]
            axes[1].plot(x, grads, label=report.label, linewidth=1.3)
    for level in (EXPLODE_ABOVE, VANISH_BELOW):
        axes[0].axhline(level, color="0.5", linestyle="--", linewidth=0.8)
    axes[0].set_ylabel("std of the layer's output")
    axes[0].set_title("Activation std by layer (execution order)")
    if with_grads:
        axes[1].set_ylabel("std of the gradient w.r.t. the output")
        axes[1].set_title("Gradient std by layer")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("layer (execution index)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def _shown(value: float) -> float:
    # log axes: NaN/inf and 0 leave a gap rather than an error
    return value if math.isfinite(value) and value > 0 else math.nan
