"""Names from files and models, rendered literally: what is printed is what is there.

A tensor or module name comes from a checkpoint or a model someone else wrote. Every renderer
passes such text through one of these before it reaches a terminal, a rich table, a Markdown
report or a figure, so that no name can inject markup, escape sequences or lines:

- :func:`printable`: every character that is not printable (control characters such as ESC and
  newline, format characters such as bidi overrides, line/paragraph separators) written as its
  Python escape (``\\x1b``, ``\\n``, ``\\u202e``); the result is one line of visible characters.
- :func:`rich_text`: a ``rich.text.Text`` of :func:`printable` (never parsed as markup, so
  ``[bold red]`` and ``[/oops]`` show as typed); :func:`rich_escape` for text that is
  interpolated into a markup string.
- :func:`markdown_code`: an inline code span that holds any text (backtick fences longer than any
  run inside, ``|`` escaped so a table cell is not split); :func:`markdown_cell` for plain cells.

>>> printable("h.0\\x1b[31m\\nweight")
'h.0\\\\x1b[31m\\\\nweight'
>>> markdown_code("a`b|c")
'`` a`b\\\\|c ``'
>>> rich_text("[bold red]w").plain
'[bold red]w'
"""

from __future__ import annotations

import re

__all__ = ["markdown_cell", "markdown_code", "printable", "rich_escape", "rich_text"]


def printable(text: object) -> str:
    """``str(text)`` with every non-printable character written as its Python escape."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in s)


def rich_escape(text: object) -> str:
    """:func:`printable` with rich markup escaped, for interpolation into a markup string."""
    from rich.markup import escape

    return escape(printable(text))


def rich_text(text: object, style: str = ""):
    """A ``rich.text.Text`` that shows :func:`printable` of ``text`` literally."""
    from rich.text import Text

    return Text(printable(text), style=style)


# Backslash-escaped where they would format: emphasis, code, links/images ([ ]), HTML (< >), headings
# and lists (# + -, only at a line's start, but escaped anywhere for simplicity), tables (|), strikethrough.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#+|~])")


def markdown_cell(text: object) -> str:
    """Plain text for a Markdown paragraph or table cell: :func:`printable`, with Markdown's
    punctuation (including ``|``) backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", printable(text))


def markdown_code(text: object) -> str:
    """An inline code span showing ``text`` literally (also inside a table cell)."""
    s = printable(text).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest or s.startswith(("`", " ")) or s.endswith(("`", " ")) else ""
    return f"{fence}{pad}{s}{pad}{fence}"
