"""Tables that fit: the column-fitting helper every terminal renderer uses, plain-text export, and
the depth report's table.

:func:`fit_table` builds a rich table from :class:`Column` specs and rows of text, then fits it to a
width: columns whose cells are all empty are left out, and while the table is wider than the width
the column with the highest ``drop`` rank goes (the least important first); what is left wraps.
(A column is only ever dropped for width if its ``drop`` rank is above 0.)
The ``key`` column (the tensor or layer name) is never wrapped, folded or elided while it fits the
width at all. Every cell is rendered literally (:func:`fanin.report.text.rich_text`): a name like
``[bold red]x`` shows as typed.

:func:`plain_text` renders any rich renderable as plain text (no colour, no trailing spaces),
``width`` columns wide or, with ``width=None``, as wide as its content needs.

>>> cols = [Column("name", key=True), Column("shape"), Column("notes", drop=1)]
>>> rows = [["encoder.layers.0.weight", "4x8", "a long remark that can go"], ["[bold]b", "4", ""]]
>>> print(plain_text(fit_table(cols, rows, width=36), width=36), end="")
 name                      shape
─────────────────────────────────
 encoder.layers.0.weight   4x8
 [bold]b                   4
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console, Group, JustifyMethod
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from fanin.diagnostics.records import ProbeReport
from fanin.report.depth import DepthReport, activation_cell, limit_cell, std_cells
from fanin.report.text import printable, rich_text

__all__ = ["PRINT_WIDTH", "PROSE_WIDTH", "Column", "fit_table", "plain_text", "prose", "render_table"]

# Prose under a table is wrapped here at most, whatever the terminal: lines that read well and an
# output that is the same on any terminal at least this wide (the README shows it verbatim).
PROSE_WIDTH = 80
# What print() of a record shows: the table fitted to 80 columns (readable in any terminal, the same
# everywhere); renderers take width=None for the whole table.
PRINT_WIDTH = 80
_UNLIMITED = 100_000  # "as wide as the content needs": rich measures, nothing reaches this

_STYLES = {"exploding": "bold red", "vanishing": "bold yellow", "saturating": "bold magenta", "stable": "bold green"}


@dataclass(frozen=True)
class Column:
    """A column of :func:`fit_table`: ``drop`` 0 is always kept, higher ranks are dropped first
    when the table is too wide; ``abbrev`` > 0 ranks the column's switch to the short form of its
    cells (cells given as ``(full, short)`` pairs) in the same order; ``key`` marks the name column
    (kept whole)."""

    header: str
    justify: JustifyMethod = "left"
    drop: int = 0
    key: bool = False
    abbrev: int = 0


def _cell(value: object, short: bool = False) -> Text:
    if isinstance(value, tuple):
        value = value[1] if short else value[0]
    return value if isinstance(value, Text) else rich_text("" if value is None else value)


def _build(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Text]],
    keep: list[int],
    width: int | None,
    title: str | None,
    caption: str | None,
) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=None if title is None else rich_text(title),
        title_justify="left",
        caption=None if caption is None else rich_text(caption),
        caption_justify="left",
        show_edge=False,
        pad_edge=True,
    )
    for i in keep:
        c = columns[i]
        longest = max([len(c.header), *(r[i].cell_len for r in rows)])
        if c.key:
            # never shrunk below the longest name while that fits the width at all
            limit = longest if width is None else max(1, min(longest, width - 4))
            table.add_column(
                rich_text(c.header),
                justify=c.justify,
                no_wrap=True,
                min_width=limit,
                overflow="fold",
            )
        else:
            table.add_column(rich_text(c.header), justify=c.justify, overflow="fold")
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table


def _measure(table: Table) -> int:
    console = Console(width=_UNLIMITED, file=io.StringIO(), color_system=None)
    return Measurement.get(console, console.options, table).maximum


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[object]],
    width: int | None = None,
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Table:
    """A rich table of ``rows`` under ``columns`` that fits ``width`` columns (``None``: every
    non-empty column, at its natural width). ``title`` and ``caption`` are shown literally."""
    full = [[_cell(v) for v in row] for row in rows]
    short = [[_cell(v, short=True) for v in row] for row in rows]
    keep = [i for i, c in enumerate(columns) if c.key or any(r[i].plain for r in full) or not rows]
    shortened: set[int] = set()

    def cells() -> list[list[Text]]:
        return [
            [(s if i in shortened else f)[i] for i in range(len(columns))] for f, s in zip(full, short, strict=True)
        ]

    table = _build(columns, cells(), keep, width, title, caption)
    if width is None:
        return table
    while _measure(table) > width:
        # the highest rank goes first (drop or abbreviate); among equals, the rightmost column
        steps = [(columns[i].drop, i, "drop") for i in keep if columns[i].drop > 0]
        steps += [(columns[i].abbrev, i, "abbrev") for i in keep if columns[i].abbrev > 0 and i not in shortened]
        if not steps:
            break
        _, victim, how = max(steps)
        if how == "drop":
            keep.remove(victim)
        else:
            shortened.add(victim)
        table = _build(columns, cells(), keep, width, title, caption)
    return table


def plain_text(renderable: object, width: int | None = None) -> str:
    """``renderable`` as plain text ``width`` columns wide (``None``: as wide as it needs), each
    line without trailing spaces, ending with a newline."""
    buffer = io.StringIO()
    console = Console(
        width=width or _UNLIMITED,
        file=buffer,
        color_system=None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    console.print(renderable)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(lines).rstrip("\n") + "\n"


def prose(text: str, width: int | None = None, *, indent: int = 0, style: str = "") -> Text:
    """``text`` (printable) wrapped at ``min(width, PROSE_WIDTH)``, continuation lines indented."""
    limit = PROSE_WIDTH if width is None else max(20, min(width, PROSE_WIDTH))
    wrapped = textwrap.fill(
        printable(text),
        width=limit,
        subsequent_indent=" " * (indent + 2),
        initial_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    )
    return Text(wrapped, style=style)


def render_table(report: DepthReport | ProbeReport, width: int | None = None) -> Group:
    """A rich renderable: std after each snapshot layer, the limit layer and the verdict per run,
    then one line per run with its activation, scheme, verdict and the reason for it (a
    :class:`ProbeReport`: :func:`fanin.report.probe.probe_table`).

    Runs are columns and snapshot layers rows, so that six runs fit an 80-column terminal.
    """
    if isinstance(report, ProbeReport):
        from fanin.report.probe import probe_table

        return probe_table(report, width)
    first = report.runs[0].config
    title = prose(
        f"Std of the activations after layer i (width {first.width}, batch {first.batch}, seed {first.seed})",
        width,
        style="bold",
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("layer", justify="right", no_wrap=True)
    for run in report.runs:
        # "relu-\ndefault": two short header lines keep six runs within 80 columns.
        table.add_column(Text(printable(run.name).replace("-", "-\n")), justify="right")
    columns = [std_cells(run, report.layers) for run in report.runs]
    for i, layer in enumerate(report.layers):
        table.add_row(str(layer), *(column[i] for column in columns))
    table.add_section()
    # one part a line ("30 (std)" over "31 (x)"): the column stays as narrow as its numbers
    table.add_row("limit", *(limit_cell(run).replace(", ", "\n") for run in report.runs))
    table.add_row("verdict", *(rich_text(run.verdict, style=_STYLES.get(run.verdict, "")) for run in report.runs))
    legend = prose(
        "limit: the first layer whose std is NaN/inf (std), whose activations overflow (x) or whose "
        "std falls below the vanishing threshold.",
        width,
        style="dim",
    )
    lines = []
    for run in report.runs:
        text = prose(f"{run.name} ({activation_cell(run)}, {run.config.scheme}): {run.verdict}: {run.reason}.", width)
        text.stylize("bold", 0, len(printable(run.name)))
        start = text.plain.find(f": {run.verdict}:")
        if start >= 0:
            text.stylize(_STYLES.get(run.verdict, ""), start + 2, start + 2 + len(run.verdict))
        lines.append(text)
    return Group(title, table, legend, *lines)
