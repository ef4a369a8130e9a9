"""Renderers of an LSUV report (:class:`fanin.diagnostics.lsuv.LSUVReport`): the summary line, a
Markdown table and a rich table, one row a layer in execution order.

>>> from fanin.diagnostics.lsuv import LSUVLayer, LSUVReport
>>> layer = LSUVLayer("fc", 0, "Linear", 1, True, 0.5, 1.0, 2.0, 1, True)
>>> print(lsuv_markdown(LSUVReport((layer,), 1.0, 0.01, 10)))
| order | layer | type | initial std | scale | iterations | final std | converged |
|---:|---|---|---:|---:|---:|---:|---|
| 0 | fc | Linear | 0.5 | 2 | 1 | 1 | yes |
<BLANKLINE>
LSUV: 1 layers calibrated in execution order (|var - 1^2| < 0.01, at most 10 rescalings)
<BLANKLINE>
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fanin.diagnostics.lsuv import LSUVReport

__all__ = ["lsuv_markdown", "lsuv_summary", "lsuv_table"]

_HEADER = ("order", "layer", "type", "initial std", "scale", "iterations", "final std", "converged")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def lsuv_summary(report: LSUVReport) -> str:
    """One line: how many layers, converged or not, and the criterion."""
    bad = [layer.name for layer in report.layers if not layer.converged]
    criterion = f"|var - {report.target_std:g}^2| < {report.tol:g}, at most {report.max_iter} rescalings"
    if bad:
        return f"LSUV: {len(bad)} of {len(report.layers)} layers did not converge ({', '.join(bad)}); {criterion}"
    return f"LSUV: {len(report.layers)} layers calibrated in execution order ({criterion})"


def _rows(report: LSUVReport) -> list[list[str]]:
    return [
        [
            str(x.order),
            x.name,
            x.kind + (f" x{x.calls}" if x.calls > 1 else ""),
            _fmt(x.initial_std),
            _fmt(x.scale),
            str(x.iterations),
            _fmt(x.final_std),
            "yes" if x.converged else "no" + (f" ({x.note})" if x.note else ""),
        ]
        for x in report.layers
    ]


def _unused_line(report: LSUVReport) -> str:
    return f"Not run in the forward, not calibrated: {', '.join(report.unused)}"


def lsuv_markdown(report: LSUVReport) -> str:
    """A Markdown table, one row a layer in execution order, then the summary line (and the
    selected layers that never ran)."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|---:|---|---|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _rows(report)]
    lines += ["", lsuv_summary(report)]
    if report.unused:
        lines.append(_unused_line(report))
    return "\n".join(lines) + "\n"


def lsuv_table(report: LSUVReport) -> Group:
    """A rich renderable: the table, the summary line (and the selected layers that never ran)."""
    table = Table(box=box.SIMPLE_HEAD, title="LSUV, in execution order")
    for i, header in enumerate(_HEADER):
        table.add_column(header, justify="left" if i in (1, 2, 7) else "right")
    for x, row in zip(report.layers, _rows(report), strict=True):
        table.add_row(*row[:-1], Text(row[-1], style="green" if x.converged else "bold red"))
    parts: list[RenderableType] = [table, Text(lsuv_summary(report), style="bold" if report.converged else "bold red")]
    if report.unused:
        parts.append(Text(_unused_line(report), style="dim"))
    return Group(*parts)
