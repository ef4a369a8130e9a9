"""fanin.report.text: names render literally in terminals, rich tables and Markdown."""

from rich.console import Console
from rich.table import Table

from fanin.report.text import markdown_cell, markdown_code, printable, rich_escape, rich_text

HOSTILE = ["[/oops]", "[bold red]w[/bold red]", "a\x1b[2Jb", "x\ny", "r\u202eevil", "a|b", "``tick`"]


def test_printable_is_one_visible_line():
    for name in HOSTILE:
        out = printable(name)
        assert out.isprintable() and "\n" not in out and "\x1b" not in out
    assert printable("x\ny") == "x\\ny"
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("ok.weight") == "ok.weight"


def test_rich_renders_names_as_typed():
    console = Console(width=200, record=True, color_system=None)
    table = Table("name")
    for name in HOSTILE:
        table.add_row(rich_text(name))
    console.print(table)
    console.print(rich_escape("[/oops]") + " and " + rich_escape("[bold]b"))
    text = console.export_text()
    for name in HOSTILE:
        assert printable(name) in text
    assert "[/oops] and [bold]b" in text


def test_markdown_code_and_cell_hold_any_text():
    assert markdown_code("h.0.weight") == "`h.0.weight`"
    assert markdown_code("a`b") == "`` a`b ``"
    assert markdown_code("x|y") == "`x\\|y`"
    assert markdown_code("x\ny") == "`x\\ny`"
    assert markdown_cell("*bold* [link](u) |") == "\\*bold\\* \\[link\\](u) \\|"
