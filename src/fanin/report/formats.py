"""Plain-text renderers: Markdown and JSON for depth reports, text for gains and scheme lists."""

from __future__ import annotations

import json
from collections.abc import Iterable

from fanin.diagnostics.records import ProbeReport
from fanin.gains import GainComparison
from fanin.report.depth import DepthReport, activation_cell, limit_cell, std_cells
from fanin.schemes.registry import SchemeEntry

__all__ = ["render_gain", "render_json", "render_markdown", "render_schemes"]


def render_markdown(report: DepthReport | ProbeReport) -> str:
    """A Markdown table of the std after the snapshot layers, then each run's verdict and reason
    (a :class:`ProbeReport`: :func:`fanin.report.probe.probe_markdown`)."""
    if isinstance(report, ProbeReport):
        from fanin.report.probe import probe_markdown

        return probe_markdown(report)
    layers = report.layers
    first = report.runs[0].config
    header = ["run", "activation", "scheme", *(f"layer {i}" for i in layers), "non-finite / vanished", "verdict"]
    lines = [
        f"Std of the activations after each layer (width {first.width}, batch {first.batch}, "
        f"seed {first.seed}, {first.accumulate} accumulation).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(layers) + ["---"] * 2) + "|",
    ]
    for run in report.runs:
        cells = [run.name, activation_cell(run), f"`{run.config.scheme}`", *std_cells(run, layers)]
        cells += [limit_cell(run), run.verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- **{run.name}**: {run.verdict}: {run.reason}." for run in report.runs]
    return "\n".join(lines) + "\n"


def render_json(report: DepthReport | ProbeReport) -> str:
    """The report as JSON (floats round-trip exactly; non-finite stds are ``null`` in a depth
    report, ``"nan"``/``"inf"`` strings in a probe report, which reloads exactly)."""
    if isinstance(report, ProbeReport):
        return report.to_json()
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def render_gain(comparison: GainComparison) -> str:
    """The lines ``fanin gain`` prints."""
    c = comparison
    rows = [
        ("activation", c.activation + ("" if c.param is None else f" (param={c.param!r})")),
        ("exact", f"{c.exact!r}  1/sqrt(E[f(z)^2]), z ~ N(0, 1)"),
        ("torch table", "not in torch's table" if c.table is None else f"{c.table!r}  torch.nn.init.calculate_gain"),
        ("empirical", f"{c.empirical:.4f}  std(x)/std(f(x)), {c.samples} float32 samples, seed {c.seed}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if c.note:
        lines.append(f"{'note'.ljust(width)}  {c.note}")
    return "\n".join(lines) + "\n"


def render_schemes(entries: Iterable[SchemeEntry]) -> str:
    """One scheme a line: name, framework, family, the first line of its docstring."""
    rows = [(e.name, e.framework, e.family, e.summary) for e in entries]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + "  " + r[3] + "\n" for r in rows
    ).replace(" \n", "\n")
