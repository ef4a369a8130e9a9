"""Renderers of the signal-propagation experiment (:class:`fanin.diagnostics.theory.SignalPropagation`):
the recursion's prediction beside the measurement, one row a layer, as Markdown or a rich table.

>>> from fanin.diagnostics.theory import LayerMoments, SignalPropagation
>>> run = SignalPropagation("mlp", 1, 8, None, "normal(std=0.1)", 0.01, 0.0, 4, 1, 0,
...                         (LayerMoments(0, 1.0, 1.1, 1.0, 1.1, None, 1.0),))
>>> for line in signal_propagation_markdown(run).splitlines()[3:]:
...     print(line)
|---:|---:|---:|---:|---:|---:|---:|
| 0 | 1 | 1.1 | +10.00% | +10.00% | 1 | 1.1 |
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from fanin.diagnostics.theory import SignalPropagation

__all__ = ["signal_propagation_markdown", "signal_propagation_table", "signal_propagation_title"]

_HEADER = (
    "layer",
    "predicted E[h^2]",
    "measured E[h^2]",
    "error",
    "one-step error",
    "predicted E[f(h)^2]",
    "measured E[f(h)^2]",
)


def signal_propagation_title(run: SignalPropagation) -> str:
    """The experiment's settings in one line."""
    act = run.activation or "no activation"
    return (
        f"Second moments, predicted vs measured ({run.kind}, depth {run.depth}, width {run.width}, {act}, "
        f"{run.scheme}; mean of {run.repeats} network(s), batch {run.batch}, seed {run.seed})"
    )


def _rows(run: SignalPropagation) -> list[list[str]]:
    return [
        [
            str(x.layer),
            f"{x.predicted_pre:.5g}",
            f"{x.measured_pre:.5g}" + ("" if x.pre_sem is None else f" ± {x.pre_sem:.2g}"),
            f"{x.relative_error:+.2%}" if x.predicted_pre else "n/a",
            f"{x.one_step_error:+.2%}" if x.one_step_pre else "n/a",
            f"{x.predicted_post:.5g}",
            f"{x.measured_post:.5g}",
        ]
        for x in run.layers
    ]


def signal_propagation_markdown(run: SignalPropagation) -> str:
    """The title, then a Markdown table, one row a layer."""
    lines = [signal_propagation_title(run) + ".", "", "| " + " | ".join(_HEADER) + " |", "|" + "---:|" * len(_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(run)]
    return "\n".join(lines) + "\n"


def signal_propagation_table(run: SignalPropagation) -> Table:
    """A rich table, one row a layer, titled with the experiment's settings."""
    table = Table(box=box.SIMPLE_HEAD, title=signal_propagation_title(run))
    for header in _HEADER:
        table.add_column(header, justify="right")
    for row in _rows(run):
        table.add_row(*row)
    return table
