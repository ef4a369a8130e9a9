"""Renderers of a coordinate check (:class:`fanin.diagnostics.coordinate_check.CoordCheck`): the table
(one row per layer group: its slope against width at every step and its verdict), Markdown, JSON
and the familiar figure (a panel per layer group, the statistic against the training step, one
line per width).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rich.console import Group

from fanin.diagnostics.coordinate_check import CoordCheck
from fanin.report.markdown import markdown_table
from fanin.report.plot import figure, plot_text
from fanin.report.table import PRINT_WIDTH, Column, fit_table, plain_text, prose
from fanin.report.text import markdown_cell, printable

__all__ = [
    "coord_check_table",
    "render_coord_check_json",
    "render_coord_check_markdown",
    "render_coord_check_text",
    "write_coord_plot",
]


def headline(result: CoordCheck) -> str:
    unstable = sum(v.kind != "stable" for v in result.verdicts)
    return (
        f"coordinate check: {printable(result.label)} ({printable(result.rules)}, {result.optimizer} "
        f"lr={result.lr:g}, {result.statistic}, widths {', '.join(map(str, result.widths))}, "
        f"{result.steps} steps): {len(result.verdicts)} layer groups, {unstable} not stable "
        f"(tolerance {result.tolerance:g})"
    )


def _columns(result: CoordCheck) -> list[Column]:
    steps = [
        Column(f"t={t}", "right", drop=result.steps - t + 1 if 0 < t < result.steps else 0)
        for t in range(result.steps + 1)
    ]
    return [Column("group", key=True), *steps, Column("verdict")]


def _rows(result: CoordCheck) -> list[list[object]]:
    return [
        [v.group, *(f"{result.slope(v.group, t):+.3f}" for t in range(result.steps + 1)), v.text]
        for v in result.verdicts
    ]


def coord_check_table(result: CoordCheck, width: int | None = PRINT_WIDTH) -> Group:
    """The headline, then per layer group the fitted slope of its size in width at every step
    (``t=0``: at init) and its verdict, fitted to ``width`` columns (middle steps go first)."""
    return Group(prose(headline(result), width, style="bold"), fit_table(_columns(result), _rows(result), width))


def render_coord_check_text(result: CoordCheck, width: int | None = PRINT_WIDTH) -> str:
    return plain_text(coord_check_table(result, width), width)


def render_coord_check_markdown(result: CoordCheck) -> str:
    lines = [f"**{markdown_cell(headline(result))}.**", "", *markdown_table(_columns(result), _rows(result))]
    return "\n".join(lines) + "\n"


def render_coord_check_json(result: CoordCheck) -> str:
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


def write_coord_plot(
    result: CoordCheck, path: str | os.PathLike[str], *, columns: int = 4, max_groups: int = 16
) -> Path:
    """The familiar figure: a panel per layer group (the first ``max_groups``; the title says how
    many are left out), the statistic against the training step on a log scale, one line per width
    (light to dark as the width grows), the verdict in the panel's title. PNG, SVG or PDF by the
    suffix of ``path``."""
    from matplotlib import colormaps
    from matplotlib.ticker import NullFormatter

    groups = list(result.groups)[:max_groups]
    columns = max(1, min(columns, len(groups)))
    rows = math.ceil(len(groups) / columns)
    cmap = colormaps["viridis"]
    colors = {w: cmap(0.85 - 0.75 * i / max(1, len(result.widths) - 1)) for i, w in enumerate(result.widths)}
    module_of: dict[str, str] = {}
    for record in result.records:
        module_of.setdefault(record[4], record[5])
    with figure(path, size=(3.2 * columns, 2.6 * rows + 0.9), nrows=rows, ncols=columns) as (fig, axes):
        for i, ax in enumerate(axes.flat):
            if i >= len(groups):
                ax.set_visible(False)
                continue
            group = groups[i]
            shown: list[float] = []
            for w in result.widths:
                points = [
                    (f.step, f.values[f.widths.index(w)]) for f in result.fits if f.group == group and w in f.widths
                ]
                steps = [s for s, v in points if math.isfinite(v) and v > 0]
                values = [v for s, v in points if math.isfinite(v) and v > 0]
                shown += values
                ax.plot(steps, values, marker="o", markersize=3, linewidth=1.4, color=colors[w], label=f"width {w}")
            if shown and max(shown) < 10 * min(shown):
                # At least a decade on every panel: flat lines look flat, and panels compare by eye.
                center = math.sqrt(max(shown) * min(shown))
                ax.set_ylim(center / math.sqrt(10), center * math.sqrt(10))
            verdict = result.verdict(group)
            ax.set_title(
                f"{plot_text(group)} ({plot_text(module_of.get(group, '?'))})\n{plot_text(verdict.text)}",
                fontsize=8.5,
                color="black" if verdict.kind == "stable" else "firebrick",
            )
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(range(result.steps + 1))
            if i % columns == 0:
                ax.set_ylabel(f"{result.statistic} of output")
            if i >= len(groups) - columns:
                ax.set_xlabel("step")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(result.widths), frameon=False)
        omitted = len(result.groups) - len(groups)
        fig.suptitle(
            f"coordinate check: {plot_text(result.label)}, {plot_text(result.rules)}, {result.optimizer} "
            f"lr={result.lr:g}" + (f" ({omitted} more groups not shown)" if omitted else ""),
            fontsize=10,
        )
    return Path(path)
