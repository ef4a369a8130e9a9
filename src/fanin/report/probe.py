"""Renderers of probe reports (:class:`fanin.diagnostics.records.ProbeReport`): a rich table for
the terminal (fitted to a width), plain text, Markdown, JSON, and a figure of activation and
gradient std by layer.

The records themselves live in :mod:`fanin.diagnostics.records` (diagnostics import nothing from
reports); they are re-exported here, and from :mod:`fanin.report`, under their former names.

Numbers are shown to four significant digits (:func:`fanin.report.depth.format_std`), fractions
as percentages with one decimal; a column that measured nothing (no backward pass, no saturating
activation) is left out. Layer and parameter names are rendered literally.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
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
from fanin.report.markdown import markdown_table
from fanin.report.table import PRINT_WIDTH, Column, fit_table, plain_text, prose
from fanin.report.text import printable

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
    "probe_text",
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
# drop: the rank at which a column goes when the table is too wide (highest first; 0 stays)
_LAYER_COLUMNS = (
    Column("#", "right"),
    Column("layer", key=True),
    Column("module", drop=4),
    Column("shape", drop=5),
    Column("mean", "right", drop=6),
    Column("std", "right"),
    Column("E[y^2]", "right", drop=7),
    Column("zeros", "right", drop=2),
    Column("saturated", "right", drop=3),
    Column("grad std", "right", drop=1),
)
_BLOCK_COLUMNS = (
    Column("k", "right"),
    Column("block", key=True),
    Column("input std", "right"),
    Column("output std", "right"),
    Column("found", drop=1),
)
_PARAM_COLUMNS = (
    Column("parameter", key=True),
    Column("shape", drop=2),
    Column("std", "right"),
    Column("grad std", "right", drop=1),
    Column("grad/weight", "right", drop=3),
)


def _num(value: float | None) -> str:
    return "" if value is None else format_std(value)


def _pct(value: float | None) -> str:
    if value is None:
        return ""
    return "NaN" if math.isnan(value) else f"{value:.1%}"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _layer_name(r: LayerStats) -> str:
    return (r.name or "(model)") + (f" #{r.call}" if r.call else "")


def _layer_cells(r: LayerStats) -> list[str]:
    return [
        str(r.index),
        _layer_name(r),
        r.module,
        _shape(r.shape),
        _num(r.mean),
        _num(r.std),
        _num(r.second_moment),
        _pct(r.zeros),
        _pct(r.saturated),
        _num(r.grad_std),
    ]


def _inputs(report: ProbeReport) -> str:
    shapes = ", ".join(_shape(s) for s in report.input_shapes) or "none"
    floating = [d for d in report.input_dtypes if "float" in d or "complex" in d]
    if report.input_dtypes and not floating:
        return (
            f"input {shapes} ({', '.join(sorted({d.replace('torch.', '') for d in report.input_dtypes}))} "
            "token ids: no std)"
        )
    if math.isnan(report.input_std) and not report.input_dtypes:
        return f"input {shapes} (std not measured: no floating-point input, or NaN values)"
    return f"input {shapes} (std {format_std(report.input_std)})"


def _summary(report: ProbeReport, name=printable) -> str:
    """The one-line summary; ``name`` renders the names that come from the model (label, class)."""
    return (
        f"{name(report.label)} ({name(report.model)}): {len(report.layers)} layer "
        f"call{'s' * (len(report.layers) != 1)}, {report.mode} mode, "
        f"{'forward and backward' if report.backward else 'forward only'}, {_inputs(report)}, "
        f"{report.device}, torch {report.torch_version}"
    )


def _block_cells(report: ProbeReport) -> list[list[str]]:
    return [
        [
            str(b.k),
            b.name + (f" #{b.call}" if b.call else ""),
            format_std(b.input_std),
            format_std(b.output_std),
            "auto" if b.detected else "named",
        ]
        for b in report.blocks
    ]


def _param_cells(report: ProbeReport) -> list[list[str]]:
    return [[p.name, _shape(p.shape), format_std(p.std), _num(p.grad_std), _num(p.grad_ratio)] for p in report.params]


def _exponent(report: ProbeReport) -> str:
    x = report.residual_exponent
    return "" if x is None else f"stream std ~ depth^{x:.3f}"


def probe_table(report: ProbeReport, width: int | None = None) -> Group:
    """A rich renderable fitted to ``width`` columns (``None``: natural width): a summary line,
    the verdicts, the layers, the residual stream and (with a backward pass) the parameters."""
    parts: list[RenderableType] = [prose(_summary(report), width, style="bold")]
    for v in report.verdicts:
        line = prose(f"{v.kind}: {v.message}", width, indent=2)
        line.stylize(_STYLES.get(v.kind, ""), 2, 2 + len(v.kind))
        parts.append(line)
    parts.append(Text(""))
    parts.append(
        fit_table(_LAYER_COLUMNS, [_layer_cells(r) for r in report.layers], width, title="layers in execution order")
    )
    if report.blocks:
        parts.append(Text(""))
        parts.append(
            fit_table(
                _BLOCK_COLUMNS,
                _block_cells(report),
                width,
                title=f"residual stream ({_exponent(report) or 'no exponent'})",
            )
        )
    if report.backward:
        parts.append(Text(""))
        parts.append(fit_table(_PARAM_COLUMNS, _param_cells(report), width, title="parameters"))
    return Group(*parts)


def probe_text(report: ProbeReport, width: int | None = PRINT_WIDTH) -> str:
    """:func:`probe_table` as plain text ``width`` columns wide (``print(report)``: 80; ``None``:
    every column)."""
    return plain_text(probe_table(report, width), width)


def probe_markdown(report: ProbeReport) -> str:
    """Markdown: summary, verdicts as a list, then the tables of :func:`probe_table` (every
    column that measured something; names as code spans)."""
    from fanin.report.text import markdown_cell

    lines = [f"**{_summary(report, markdown_cell)}**", ""]
    lines += [f"- **{v.kind}**: {markdown_cell(v.message)}" for v in report.verdicts]
    lines += ["", "Layers in execution order:", ""]
    lines += markdown_table(_LAYER_COLUMNS, [_layer_cells(r) for r in report.layers])
    if report.blocks:
        lines += ["", f"Residual stream ({_exponent(report) or 'no exponent'}):", ""]
        lines += markdown_table(_BLOCK_COLUMNS, _block_cells(report))
    if report.backward:
        lines += ["", "Parameters:", ""]
        lines += markdown_table(_PARAM_COLUMNS, _param_cells(report))
    return "\n".join(lines) + "\n"


def probe_json(report: ProbeReport) -> str:
    """The report's JSON form (:meth:`ProbeReport.to_json`; :func:`fanin.diagnostics.records.load_report`
    reads it back)."""
    return report.to_json()


def _same_layers(reports: Sequence[ProbeReport]) -> list[str] | None:
    names = [_layer_name(r) for r in reports[0].layers]
    if all([_layer_name(r) for r in other.layers] == names for other in reports[1:]):
        return names
    return None


def probe_plot(reports: ProbeReport | Sequence[ProbeReport], path: str | os.PathLike[str]) -> Path:
    """Draw activation std (and, where measured, gradient std) by layer in execution order to
    ``path`` (PNG, SVG or PDF by suffix), one line per report, so that runs (schemes) compare on one
    figure. The x axis is the layer's execution index (integer ticks), labelled with the layer names
    when every report probed the same layers; dashed lines mark the exploding and vanishing
    thresholds, labelled in the margin."""
    from fanin.report.plot import figure, legend_below, plot_text, style_of, threshold

    reports = [reports] if isinstance(reports, ProbeReport) else list(reports)
    if not reports or not all(isinstance(r, ProbeReport) for r in reports):
        raise TypeError(f"probe_plot takes a ProbeReport or a list of them, got reports={reports!r:.200}")
    path = Path(path)
    with_grads = any(r.backward for r in reports)
    names = _same_layers(reports)
    count = max(len(r.layers) for r in reports)
    with figure(path, size=(8.0, 7.0 if with_grads else 4.8), nrows=2 if with_grads else 1, sharex=True) as (fig, axes):
        axes = axes[:, 0]
        for i, report in enumerate(reports):
            x = [r.index for r in report.layers]
            verdicts = ", ".join(v.kind for v in report.verdicts) or "no verdict"
            label = f"{plot_text(report.label)} ({verdicts})"
            axes[0].plot(
                x,
                [_shown(r.std) for r in report.layers],
                label=label,
                marker="." if count <= 40 else None,
                **style_of(i),
            )
            if with_grads:
                grads = [_shown(r.grad_std) if r.grad_std is not None else math.nan for r in report.layers]
                axes[1].plot(x, grads, marker="." if count <= 40 else None, **style_of(i))
        threshold(axes[0], EXPLODE_ABOVE, f"exploding\nabove {EXPLODE_ABOVE:g}")
        threshold(axes[0], VANISH_BELOW, f"vanishing\nbelow {VANISH_BELOW:g}")
        axes[0].set_ylabel("std of the layer's output (log)")
        axes[0].set_title("Activation std by layer", loc="left")
        if with_grads:
            axes[1].set_ylabel("std of the gradient\nw.r.t. the output (log)")
            axes[1].set_title("Gradient std by layer", loc="left")
        for ax in axes:
            ax.set_yscale("log")
        _layer_ticks(axes[-1], names, count)
        title = plot_text(reports[0].label) if len(reports) == 1 else f"{len(reports)} runs"
        fig.suptitle(f"Probe: {title} ({plot_text(reports[0].model)}, {reports[0].mode} mode)")
        legend_below(fig, axes, ncols=min(3, len(reports)))
    return path


def _layer_ticks(ax, names: list[str] | None, count: int) -> None:
    """Integer ticks at layer indices; with names, every tick (up to 40 layers) or an integer
    subset of them labelled ``index name``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    from fanin.report.plot import plot_text

    ax.set_xlabel("layer, in execution order")
    ax.set_xlim(-0.5 if count <= 40 else -1, count - 0.5 if count <= 40 else count)
    if names is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        return
    if count <= 40:
        ax.xaxis.set_major_locator(FixedLocator(range(count)))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=24, integer=True))

    def label(x: float, _pos: int) -> str:
        i = round(x)
        if not (0 <= i < len(names) and abs(x - i) < 1e-9):
            return ""
        # nn.Sequential names its layers by position: "3", not "3 3"
        return plot_text(names[i]) if names[i] == str(i) else f"{i} {plot_text(names[i])}"

    ax.xaxis.set_major_formatter(FuncFormatter(label))
    for tick in ax.get_xticklabels():
        tick.set_rotation(60)
        tick.set_horizontalalignment("right")
        tick.set_rotation_mode("anchor")
    ax.tick_params(axis="x", labelrotation=60)


def _shown(value: float) -> float:
    # log axes: NaN/inf and 0 leave a gap rather than an error
    return value if math.isfinite(value) and value > 0 else math.nan
