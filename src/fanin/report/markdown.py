"""Markdown tables from the same :class:`~fanin.report.table.Column` specs as the terminal tables.

Every cell is escaped (:func:`fanin.report.text.markdown_cell`) unless it is :class:`Raw` (Markdown
the renderer built itself, e.g. a code span from :func:`fanin.report.text.markdown_code`); the
``key`` column (names) is shown as code spans, literally. Columns whose cells are all empty are
left out, as in the terminal.

>>> from fanin.report.table import Column
>>> print("\\n".join(markdown_table([Column("name", key=True), Column("std", "right"), Column("note", drop=1)],
...                                 [["h.0|x", "0.02", ""]])))
| name | std |
|---|---:|
| `h.0\\|x` | 0.02 |
"""

from __future__ import annotations

from collections.abc import Sequence

from fanin.report.table import Column
from fanin.report.text import markdown_cell, markdown_code

__all__ = ["Raw", "markdown_table"]


class Raw(str):
    """A cell that is already Markdown (escaped by whoever built it)."""


def _cell(value: object, key: bool) -> str:
    if isinstance(value, tuple):  # (full, short) of a terminal column: Markdown has the room
        value = value[0]
    if isinstance(value, Raw):
        return str(value)
    text = "" if value is None else str(value)
    if not text:
        return ""
    return markdown_code(text) if key else markdown_cell(text)


def markdown_table(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table (header, alignment row, one line per row)."""
    keep = [i for i, c in enumerate(columns) if c.key or any(_cell(r[i], False) for r in rows) or not rows]
    lines = [
        "| " + " | ".join(markdown_cell(columns[i].header) for i in keep) + " |",
        "|" + "|".join("---:" if columns[i].justify == "right" else "---" for i in keep) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[i], columns[i].key) for i in keep) + " |")
    return lines
