"""Renderers of a resolved plan (:class:`fanin.planning.records.Plan`): the terminal table fitted to a
width, plain text (what ``print(plan)`` shows), Markdown and JSON.

One row per tensor: its index in execution order, name (with the names tied to it), shape, fans,
the rule that matched it, what is done (scheme, ``keep`` or the module's own method), the std and
bound of the values drawn, and the counter-stream key; under the table the rules, first match
first. At a narrow width the least telling columns go first (stream key, fans, bound), then the
rule is shown by its index only; the tensor name is always whole.

>>> import torch, fanin
>>> p = fanin.plan(torch.nn.Linear(4, 2), {"weight": "xavier_uniform", "bias": "zeros"}, seed=0)
>>> print(render_plan_text(p, width=60), end="")
fanin plan: Linear (2 tensors; random source: counter
  stream, seed=0)
 #   tensor   shape   rule   init                std
─────────────────────────────────────────────────────
 0   weight   2×4     #0     xavier_uniform   0.5774
 1   bias     2       #1     zeros                 0
Rules (first match wins):
  #0 name='weight' -> xavier_uniform
  #1 name='bias' -> zeros
Leftovers: error.
>>> p
<Plan Linear: 2 tensors, 2 rules, leftovers=error, counter stream, seed=0>
"""

from __future__ import annotations

from rich.console import Group, RenderableType

from fanin.planning.records import Plan, PlanEntry
from fanin.report.markdown import Raw, markdown_table
from fanin.report.table import PRINT_WIDTH, Column, fit_table, plain_text, prose
from fanin.report.text import markdown_cell, markdown_code, printable

__all__ = ["plan_table", "render_plan_json", "render_plan_markdown", "render_plan_text"]

_COLUMNS = (
    Column("#", "right"),
    Column("tensor", key=True),
    Column("shape", drop=5),
    Column("fan in/out", drop=8),
    Column("rule", abbrev=6),  # the rule that matched is the point of explain: at least its index stays
    Column("init"),
    Column("std", "right"),
    Column("bound", "right", drop=7),
    Column("stream key", drop=9),
)
_SOURCES = {"stream": "counter stream, seed={seed}", "generator": "torch.Generator", "global": "torch global RNG"}


def _title(plan: Plan) -> str:
    source = _SOURCES[plan.source].format(seed=plan.seed)
    return f"fanin plan{': ' + plan.model if plan.model else ''} ({len(plan)} tensors; random source: {source})"


def _bound(e: PlanEntry) -> str:
    s = e.statistics
    if s is None or s.low is None or s.high is None:
        return ""
    if s.distribution == "constant":
        return f"= {s.high:g}"
    if s.low == -s.high:
        return f"±{s.high:.4g}"
    return f"[{s.low:.4g}, {s.high:.4g}]"


def _rows(plan: Plan) -> list[list[object]]:
    rows: list[list[object]] = []
    for i, e in enumerate(plan):
        fans = "" if e.fans is None else f"{e.fans.fan_in:g}/{e.fans.fan_out:g}"
        std = "" if e.statistics is None or e.statistics.std is None else f"{e.statistics.std:.4g}"
        key = f"({e.stream[0]}, {e.stream[1]!r})" if e.stream is not None else ""
        name = e.name + (f" (= {', '.join(e.aliases)})" if e.aliases else "")
        rule = (f"#{e.rule_index} {e.rule}", f"#{e.rule_index}") if e.rule_index is not None else (e.rule, "leftover")
        rows.append([str(i), name, "×".join(map(str, e.shape)) or "()", fans, rule, e.init, std, _bound(e), key])
    return rows


def _rules_lines(plan: Plan) -> list[str]:
    return [f"#{i} {r}" for i, r in enumerate(plan.rules)]


def plan_table(plan: Plan, width: int | None = None) -> Group:
    """A rich renderable: the title, the table fitted to ``width`` (``None``: natural width), the
    rules and the leftovers policy."""
    rules = _rules_lines(plan)
    parts: list[RenderableType] = [prose(_title(plan), width, style="bold"), fit_table(_COLUMNS, _rows(plan), width)]
    parts.append(prose(_rules_heading(plan) + ("" if rules else " none"), width))
    parts += [prose(r, width, indent=2) for r in rules]
    parts.append(prose(f"Leftovers: {plan.leftovers}.", width))
    return Group(*parts)


def _rules_heading(plan: Plan, literal=printable) -> str:
    name = getattr(plan.rules, "name", None)
    return f"Rules of {literal(name)} (first match wins):" if name else "Rules (first match wins):"


def render_plan_text(plan: Plan, width: int | None = PRINT_WIDTH) -> str:
    """:func:`plan_table` as plain text ``width`` columns wide (``print(plan)``: 80; ``None``:
    every column, as ``fanin explain -o plan.txt`` writes it)."""
    return plain_text(plan_table(plan, width), width)


def render_plan_markdown(plan: Plan) -> str:
    """A Markdown heading, the table (names and schemes as code spans) and the rules."""
    heading = (
        f"# fanin plan: {markdown_cell(plan.model)} ({len(plan)} tensors, source: {plan.source}"
        + (f", seed={plan.seed}" if plan.seed is not None else "")
        + ")"
    )
    rows = []
    for row in _rows(plan):
        row[4] = Raw(markdown_code(row[4][0]))  # type: ignore[index]
        row[5] = Raw(markdown_code(row[5]))
        row[8] = Raw(markdown_code(row[8])) if row[8] else ""
        rows.append(row)
    rules = [[f"#{i}", Raw(markdown_code(r))] for i, r in enumerate(plan.rules)]
    lines = [heading, "", *markdown_table(_COLUMNS, rows), "", _rules_heading(plan, markdown_code), ""]
    lines += markdown_table((Column("rule", "right"), Column("selector -> init")), rules)
    lines += ["", f"Leftovers: {plan.leftovers}", ""]
    return "\n".join(lines)


def render_plan_json(plan: Plan) -> str:
    """The plan's JSON form (:meth:`Plan.to_json`), ending with a newline."""
    return plan.to_json() + "\n"
