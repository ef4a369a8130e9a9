"""Renderers of a lint report (:class:`fanin.planning.linting.LintReport`): terminal table, plain text,
Markdown and JSON.

One row per finding, errors first: its severity, the check that found it, the tensor, the
evidence and the fix. At a narrow width the fix is abbreviated first, then the check's name; the
tensor name is always whole.

>>> import torch, fanin
>>> report = fanin.lint(torch.nn.Linear(4, 2), {"weight": "trunc_normal(std=0.02, a=-1.0, b=1.0)", "bias": "zeros"})
>>> print(render_lint_text(report, width=100), end="")  # doctest: +ELLIPSIS
fanin lint: Linear (...): 0 errors, 1 warning, 0 infos
...
"""

from __future__ import annotations

from rich.console import Group, RenderableType

from fanin.planning.linting import SEVERITIES, LintReport
from fanin.report.markdown import markdown_table
from fanin.report.table import PRINT_WIDTH, Column, fit_table, plain_text, prose
from fanin.report.text import markdown_cell

__all__ = ["lint_table", "render_lint_json", "render_lint_markdown", "render_lint_text"]

_COLUMNS = (
    Column("severity"),
    Column("check", drop=2),
    Column("tensor", key=True),
    Column("evidence"),
    Column("fix", abbrev=1),
)


def headline(report: LintReport) -> str:
    counts = ", ".join(f"{len(report.of(s))} {s}{'s' if len(report.of(s)) != 1 else ''}" for s in SEVERITIES)
    rules = f" ({report.rules})" if report.rules else ""
    return f"fanin lint: {report.model}{rules}: {counts}"


def _rows(report: LintReport) -> list[list[object]]:
    return [
        [f.severity, f.check, f.tensor, f.evidence, (f.fix, f.fix.split(";")[0].split(". ")[0])]
        for f in report.findings
    ]


def lint_table(report: LintReport, width: int | None = PRINT_WIDTH) -> Group:
    """The headline and one row per finding, fitted to ``width`` columns (``None``: natural width)."""
    parts: list[RenderableType] = [prose(headline(report), width, style="bold")]
    if report.findings:
        parts.append(fit_table(_COLUMNS, _rows(report), width))
    else:
        parts.append(prose("No findings.", width))
    return Group(*parts)


def render_lint_text(report: LintReport, width: int | None = PRINT_WIDTH) -> str:
    """:func:`lint_table` as plain text (``print(report)``)."""
    return plain_text(lint_table(report, width), width)


def render_lint_markdown(report: LintReport) -> str:
    lines = [f"**{markdown_cell(headline(report))}.**", ""]
    lines += markdown_table(_COLUMNS, _rows(report)) if report.findings else ["No findings."]
    return "\n".join(lines) + "\n"


def render_lint_json(report: LintReport) -> str:
    return report.to_json() + "\n"
