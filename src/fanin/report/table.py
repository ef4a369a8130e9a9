"""The terminal renderer: a rich table of a depth report, one column a run, then each run's reason.

Runs are columns and snapshot layers rows, so that six runs fit an 80-column terminal.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from fanin.diagnostics.records import ProbeReport
from fanin.report.depth import DepthReport, activation_cell, limit_cell, std_cells

__all__ = ["render_table"]

_STYLES = {"exploding": "bold red", "vanishing": "bold yellow", "saturating": "bold magenta", "stable": "bold green"}


def render_table(report: DepthReport | ProbeReport) -> Group:
    """A rich renderable: std after each snapshot layer, the limit layer and the verdict per run,
    then one line per run with its activation, scheme, verdict and the reason for it (a
    :class:`ProbeReport`: :func:`fanin.report.probe.probe_table`)."""
    if isinstance(report, ProbeReport):
        from fanin.report.probe import probe_table

        return probe_table(report)
    first = report.runs[0].config
    title = Text(
        f"Std of the activations after layer i (width {first.width}, batch {first.batch}, seed {first.seed})",
        style="bold",
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("layer", justify="right", no_wrap=True)
    for run in report.runs:
        # "relu-\ndefault": two short header lines keep six runs within 80 columns.
        table.add_column(run.name.replace("-", "-\n"), justify="right")
    columns = [std_cells(run, report.layers) for run in report.runs]
    for i, layer in enumerate(report.layers):
        table.add_row(str(layer), *(column[i] for column in columns))
    table.add_section()
    table.add_row("limit", *(limit_cell(run) for run in report.runs))
    table.add_row("verdict", *(Text(run.verdict, style=_STYLES.get(run.verdict, "")) for run in report.runs))
    lines = []
    for run in report.runs:
        line = Text(f"{run.name}", style="bold")
        line.append(f" ({activation_cell(run)}, {run.config.scheme}): ")
        line.append(run.verdict, style=_STYLES.get(run.verdict, ""))
        line.append(f": {run.reason}.")
        lines.append(line)
    legend = Text(
        "limit: the first layer whose std is NaN/inf (std), whose activations overflow (x) or whose std "
        "falls below the vanishing threshold.",
        style="dim",
    )
    return Group(title, table, legend, *lines)
