"""The picture renderer: std of the activations against depth, one line a run, log scale.

matplotlib is the optional extra ``fanin[plot]``; it is imported only here, when a plot is asked
for, and drawn on the Agg canvas (no GUI backend, no change to pyplot's global state).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fanin.diagnostics.records import ProbeReport
from fanin.diagnostics.verdicts import EXPLODE_ABOVE, VANISH_BELOW
from fanin.errors import FaninError
from fanin.report.depth import DepthReport

__all__ = ["MissingExtraError", "require_matplotlib", "write_plot"]


class MissingExtraError(FaninError, ImportError):
    """An optional dependency of fanin is not installed."""


def require_matplotlib():
    """matplotlib's ``Figure`` and Agg canvas; :class:`MissingExtraError` when it is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise MissingExtraError(
            f"Plotting needs matplotlib, which is not installed ({err}). Install it with: "
            "pip install 'fanin[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


def write_plot(report: DepthReport | ProbeReport | list[ProbeReport], path: str | os.PathLike[str]) -> Path:
    """Draw ``report`` into a PNG at ``path`` and return the path (probe reports, one or a list:
    :func:`fanin.report.probe.probe_plot`).

    Each run's std is a line over its layers (log scale); dashed lines mark the verdicts'
    thresholds. Where a run's std becomes NaN/inf, a cross sits at the top edge of the plot at that
    layer, labelled with it; an std of exactly 0 would sit at the bottom edge.
    """
    if isinstance(report, (ProbeReport, list, tuple)):
        from fanin.report.probe import probe_plot

        return probe_plot(report, path)
    Figure, FigureCanvasAgg = require_matplotlib()
    from matplotlib.transforms import blended_transform_factory

    path = Path(path)
    fig = Figure(figsize=(9, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    edge = blended_transform_factory(ax.transData, ax.transAxes)
    for run in report.runs:
        layers = range(len(run.stds))
        shown = [s if math.isfinite(s) and s > 0 else math.nan for s in run.stds]
        (line,) = ax.plot(layers, shown, label=f"{run.name} ({run.verdict})", linewidth=1.5)
        if run.nonfinite_layer is not None:
            layer = run.nonfinite_layer
            ax.plot([layer], [0.97], marker="X", markersize=10, color=line.get_color(), transform=edge, clip_on=False)
            ax.annotate(
                f"NaN/inf from layer {layer}", (layer, 0.97), xycoords=edge, xytext=(6, -4),
                textcoords="offset points", color=line.get_color(), fontsize=8, va="top",
            )
        zero = [i for i, s in enumerate(run.stds) if s == 0]
        if zero:
            ax.plot(zero[:1], [0.03], marker="v", markersize=9, color=line.get_color(), transform=edge, clip_on=False)
    for level, label in ((EXPLODE_ABOVE, "exploding above"), (VANISH_BELOW, "vanishing below")):
        ax.axhline(level, color="0.5", linestyle="--", linewidth=0.8)
        ax.annotate(
            f"{label} {level:g}", (0.005, level), xycoords=("axes fraction", "data"), xytext=(0, 2),
            textcoords="offset points", color="0.4", fontsize=7, va="bottom",
        )
    first = report.runs[0].config
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of the activations")
    ax.set_title(
        f"Std vs depth: width {first.width}, batch {first.batch}, seed {first.seed} (torch {report.torch_version})"
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
