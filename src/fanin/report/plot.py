"""Figures: one style for every fanin figure (depth experiment, probe, audit), the formats they are
written in, and the depth experiment's figure.

matplotlib is the optional extra ``fanin[plot]``; it is imported only when a figure is drawn, on
the Agg canvas (no GUI backend), and pyplot's global state is never touched: the style is applied
with ``matplotlib.rc_context`` around drawing and saving only.

What every figure shares (use these for a new figure):

- :func:`figure`: a context manager that yields a styled ``Figure`` and its axes grid and writes
  it to ``path`` on exit, in the format of the path's suffix (:data:`FIGURE_FORMATS`: PNG at
  :data:`DPI` dots per inch, SVG or PDF), through a temporary file renamed into place
  (:func:`save_figure`);
- :data:`STYLE` (the rcParams), :data:`PALETTE` (Okabe & Ito's colour-blind safe colours, in the
  order runs are drawn) and :data:`LINESTYLES` (cycled with the colours, so lines differ in print);
- :func:`threshold`: a dashed horizontal line whose label sits in the right margin, where no
  data line can cross it;
- :func:`plot_text`: a name from a file or a model made safe for a label (printable, and ``$``
  escaped so matplotlib's mathtext never interprets it);
- legends go outside the axes (below the figure), so that they never cover a line.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fanin.diagnostics.records import ProbeReport
from fanin.diagnostics.verdicts import EXPLODE_ABOVE, VANISH_BELOW
from fanin.errors import FaninError, describe_choice
from fanin.report.depth import DepthReport
from fanin.report.files import atomic_write
from fanin.report.text import printable

__all__ = [
    "DPI",
    "FIGURE_FORMATS",
    "LINESTYLES",
    "PALETTE",
    "STYLE",
    "FigureFormatError",
    "MissingExtraError",
    "figure",
    "figure_format",
    "plot_text",
    "require_matplotlib",
    "save_figure",
    "threshold",
    "write_plot",
]

FIGURE_FORMATS = ("pdf", "png", "svg")
DPI = 150
# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "legend.frameon": False,
    "savefig.dpi": DPI,
    "svg.fonttype": "none",  # text stays text in SVG (searchable, editable)
    "pdf.fonttype": 42,  # TrueType in PDF: journals reject Type 3 fonts
}
THRESHOLD_COLOR = "0.45"


class MissingExtraError(FaninError, ImportError):
    """An optional dependency of fanin is not installed."""


class FigureFormatError(FaninError, ValueError):
    """A figure path whose suffix is not a format fanin writes."""


def require_matplotlib():
    """matplotlib's ``Figure`` and Agg canvas; :class:`MissingExtraError` when it is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise MissingExtraError(
            f"Plotting needs matplotlib, which is not installed ({err}). Install it with: pip install 'fanin[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


def figure_format(path: str | os.PathLike[str]) -> str:
    """The format a figure at ``path`` is written in: its suffix, one of :data:`FIGURE_FORMATS`.

    >>> figure_format("depth.SVG")
    'svg'
    >>> figure_format("depth.jpg")
    Traceback (most recent call last):
    ...
    fanin.report.plot.FigureFormatError: Unknown figure format 'jpg' (from path='depth.jpg'). Did you mean 'png'? ...
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        message = describe_choice("figure format", suffix, FIGURE_FORMATS)
        raise FigureFormatError(message.replace(f"{suffix!r}.", f"{suffix!r} (from path={os.fspath(path)!r}).", 1))
    return suffix


def plot_text(text: object) -> str:
    r"""``text`` for a figure label: :func:`~fanin.report.text.printable`, with ``$`` escaped so
    mathtext never reads it.

    >>> plot_text("cost $5\n")
    'cost \\$5\\n'
    """
    return printable(text).replace("$", r"\$")


def save_figure(fig, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` in the format of its suffix, atomically (:mod:`fanin.report.files`)."""
    fmt = figure_format(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata={"Software": None} if fmt == "png" else None)
    return atomic_write(path, buffer.getvalue())


@contextmanager
def figure(
    path: str | os.PathLike[str],
    *,
    size: tuple[float, float] = (8.0, 5.0),
    nrows: int = 1,
    ncols: int = 1,
    **subplots: Any,
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(fig, axes)`` (``axes`` a 2-D array) in fanin's style; on a clean exit the figure is
    written to ``path`` (format from the suffix, checked before anything is drawn)."""
    figure_format(path)
    Figure, FigureCanvasAgg = require_matplotlib()
    import matplotlib

    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]  # STYLE's keys are rcParams names
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplots)
        yield fig, axes
        save_figure(fig, path)


def style_of(i: int) -> dict[str, Any]:
    """Colour and line style of the ``i``-th line of a figure."""
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}


def threshold(ax, level: float, label: str) -> None:
    """A dashed line at ``level`` with ``label`` in the right margin (outside the data area)."""
    ax.axhline(level, color=THRESHOLD_COLOR, linestyle=(0, (4, 3)), linewidth=0.9, zorder=1)
    ax.annotate(
        label,
        (1.0, level),
        xycoords=("axes fraction", "data"),
        xytext=(4, 0),
        textcoords="offset points",
        color=THRESHOLD_COLOR,
        fontsize=7.5,
        va="center",
        ha="left",
        annotation_clip=False,
    )


def legend_below(fig, axes, ncols: int = 2) -> None:
    """One legend for the figure, under the axes, from the lines of ``axes`` (labelled ones)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


# ------------------------------------------------------------------------------ depth experiment

_CLIP = 1e6  # the overview panel's log axis: [1/_CLIP, _CLIP]; runs beyond are drawn to the edge


def write_plot(report: DepthReport | ProbeReport | list[ProbeReport], path: str | os.PathLike[str]) -> Path:
    """Draw ``report`` to ``path`` (PNG, SVG or PDF by suffix) and return the path (probe reports,
    one or a list: :func:`fanin.report.probe.probe_plot`).

    A depth report gets two panels over the layers. Above, every run on a log axis clipped to
    [1e-6, 1e6] with the exploding and vanishing thresholds: a run that leaves it is drawn to the
    edge, and its legend entry says where it left float32's range or vanished. Below, the runs
    that stay within the thresholds on a linear axis, where stable runs near 1 are told apart.
    """
    if isinstance(report, (ProbeReport, list, tuple)):
        from fanin.report.probe import probe_plot

        return probe_plot(report, path)
    path = Path(path)
    first = report.runs[0].config
    inside = [i for i, run in enumerate(report.runs) if run.verdict != "exploding" and run.vanish_layer is None]
    with figure(
        path,
        size=(8.0, 7.5 if inside else 4.8),
        nrows=2 if inside else 1,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 2]} if inside else None,
    ) as (fig, axes):
        top = axes[0, 0]
        for i, run in enumerate(report.runs):
            layers = range(len(run.stds))
            shown = [
                min(max(s, 1 / _CLIP / 10), _CLIP * 10) if math.isfinite(s) and s > 0 else math.nan for s in run.stds
            ]
            label = f"{plot_text(run.name)} ({run.verdict}): {plot_text(run.config.scheme)}"
            top.plot(layers, shown, label=label, **style_of(i))
            if run.nonfinite_layer is not None and run.nonfinite_layer < len(run.stds):
                top.plot(
                    [run.nonfinite_layer],
                    [_CLIP],
                    marker="X",
                    markersize=8,
                    clip_on=False,
                    color=style_of(i)["color"],
                    linestyle="none",
                )
        top.set_yscale("log")
        top.set_ylim(1 / _CLIP, _CLIP)
        threshold(top, EXPLODE_ABOVE, f"exploding\nabove {EXPLODE_ABOVE:g}")
        threshold(top, VANISH_BELOW, f"vanishing\nbelow {VANISH_BELOW:g}")
        top.set_ylabel("std of the activations (log)")
        top.set_title("All runs (log axis clipped to [1e-6, 1e6]; X: std NaN/inf from that layer)", loc="left")
        if inside:
            bottom = axes[1, 0]
            for i in inside:
                run = report.runs[i]
                bottom.plot(range(len(run.stds)), run.stds, **style_of(i))
            bottom.set_ylim(bottom=0)
            bottom.set_ylabel("std of the activations")
            bottom.set_title("Runs within the thresholds (linear axis)", loc="left")
        for ax in axes[:, 0]:
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[-1, 0].set_xlabel("layer")
        fig.suptitle(
            f"Std of the activations by depth: width {first.width}, batch {first.batch}, seed {first.seed} "
            f"(torch {report.torch_version})"
        )
        legend_below(fig, axes[:, 0], ncols=2)
    return path
