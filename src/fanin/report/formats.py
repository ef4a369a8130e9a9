r"""Plain-text renderers: Markdown and JSON of depth reports, the gain comparison, the scheme list.

Scheme summaries are the first paragraph of each scheme's docstring made plain
(:func:`plain_summary`): reST roles and literals unwrapped, the LaTeX of ``:math:`` written as
text, whole sentences only.

>>> plain_summary(r"Fill with :math:`\mathcal{U}(\pm\sqrt{6/(n_{in}+n_{out})})` from ``tf``.")
'Fill with U(±sqrt(6/(n_in+n_out))) from tf.'
"""

from __future__ import annotations

import inspect
import json
import math
import re
import textwrap
from collections.abc import Iterable

from fanin.activations import GainComparison
from fanin.diagnostics.records import ProbeReport
from fanin.report.depth import DepthReport, activation_cell, limit_cell, std_cells
from fanin.report.markdown import Raw, markdown_table
from fanin.report.table import PROSE_WIDTH, Column, fit_table
from fanin.report.text import markdown_cell, markdown_code
from fanin.schemes.registry import SchemeEntry

__all__ = [
    "plain_summary",
    "render_gain",
    "render_gain_json",
    "render_gain_markdown",
    "render_json",
    "render_markdown",
    "render_schemes",
    "render_schemes_json",
    "render_schemes_markdown",
]


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
        (
            f"Std of the activations after each layer (width {first.width}, batch {first.batch}, "
            f"seed {first.seed}, {first.accumulate} accumulation)."
        ),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(layers) + ["---"] * 2) + "|",
    ]
    for run in report.runs:
        cells = [
            markdown_cell(run.name),
            markdown_cell(activation_cell(run)),
            markdown_code(run.config.scheme),
            *std_cells(run, layers),
            limit_cell(run),
            run.verdict,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    # the reason is fanin's own sentence (numbers and thresholds); only the run's name is escaped
    lines += [f"- **{markdown_cell(run.name)}**: {run.verdict}: {run.reason}." for run in report.runs]
    return "\n".join(lines) + "\n"


def render_json(report: DepthReport | ProbeReport) -> str:
    """The report as JSON (floats round-trip exactly; non-finite stds are ``null`` in a depth
    report, ``"nan"``/``"inf"`` strings in a probe report, which reloads exactly)."""
    if isinstance(report, ProbeReport):
        return report.to_json()
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------------------- gains


def _with_error(value: float, se: float) -> str:
    """``value ± se``, the error to two significant digits and the value to the same decimal.

    >>> _with_error(1.41067374928448, 0.004974484047300062)
    '1.4107 ± 0.0050'
    """
    if not (math.isfinite(se) and se > 0):
        return f"{value:.6g}"
    decimals = max(0, 1 - math.floor(math.log10(se)))
    return f"{value:.{decimals}f} ± {se:.{decimals}f}"


def _gain_rows(c: GainComparison) -> list[tuple[str, str, str]]:
    activation = c.activation + ("" if c.param is None else f" (param={c.param!r})")
    mean = _with_error(c.mean, c.mean_se)
    if c.std_ratio_valid:
        ratio_note = (
            f"std(z)/std(f(z)), {c.samples} float32 draws: the gain only when E[f(z)] = 0; "
            f"here E[f(z)] = {mean}, consistent with 0, so it estimates the gain"
        )
    else:
        ratio_note = (
            f"std(z)/std(f(z)), {c.samples} float32 draws: the gain only when E[f(z)] = 0; "
            f"here E[f(z)] = {mean}, so it is not the gain"
        )
    return [
        ("activation", activation, ""),
        ("exact", repr(c.exact), "1/sqrt(E[f(z)^2]), z ~ N(0, 1), by quadrature"),
        (
            "torch table",
            "-" if c.table is None else repr(c.table),
            "not in torch's table" if c.table is None else "torch.nn.init.calculate_gain",
        ),
        (
            "monte carlo",
            _with_error(c.monte_carlo, c.monte_carlo_se),
            f"1/sqrt(mean of f(z)^2), {c.samples} float64 draws, seed {c.seed}; ± one standard error",
        ),
        ("std ratio", f"{c.std_ratio:.4f}", ratio_note),
    ]


def render_gain(comparison: GainComparison) -> str:
    """The lines ``fanin gain`` prints: label, value, what it is; wrapped at 80 columns."""
    rows = _gain_rows(comparison)
    if comparison.note:
        rows.append(("note", "", comparison.note))
    key = max(len(k) for k, _, _ in rows)
    value = max(len(v) for _, v, _ in rows)
    lines = []
    for k, v, why in rows:
        if k == "note":
            head = f"{k.ljust(key)}  "
        else:
            head = f"{k.ljust(key)}  {v.ljust(value)}  " if why else f"{k.ljust(key)}  {v}"
        indent = " " * (key + 2)
        if not why:
            lines.append(head.rstrip())
            continue
        lines.append(
            textwrap.fill(
                why,
                width=PROSE_WIDTH,
                initial_indent=head,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
        )
    return "\n".join(lines) + "\n"


def render_gain_json(comparison: GainComparison) -> str:
    """The comparison as JSON (:meth:`fanin.activations.GainComparison.to_dict`)."""
    return json.dumps(comparison.to_dict(), indent=2, allow_nan=False) + "\n"


def render_gain_markdown(comparison: GainComparison) -> str:
    """The comparison as a Markdown table (quantity, value, what it is) and the note."""
    rows = [[k, v, why] for k, v, why in _gain_rows(comparison)]
    columns = (Column("quantity"), Column("value", "right"), Column("what it is", drop=1))
    lines = [f"**Gain of {markdown_code(comparison.activation)}**", "", *markdown_table(columns, rows)]
    if comparison.note:
        lines += ["", markdown_cell(comparison.note)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- schemes

_MATH = re.compile(r":math:`([^`]*)`")
_ROLE = re.compile(r":[a-z]+:`~?([^`]*)`")
_LITERAL = re.compile(r"``([^`]*)``")
# the characters the scheme summaries show (fanin schemes, pinned by tests)
_TEX_WORDS = {
    r"\pm": "±",
    r"\cdot": "·",
    r"\times": "×",
    r"\leq": "≤",
    r"\geq": "≥",
    r"\infty": "inf",
    r"\sigma": "σ",
    r"\mu": "μ",
    r"\approx": "≈",
    r"\propto": "∝",
}


def _tex(expr: str) -> str:
    r"""The LaTeX of a ``:math:`` role as plain text (``\sqrt{x}`` -> ``sqrt(x)``, ``\text{a}`` -> ``a``)."""
    out = expr
    for word, text in _TEX_WORDS.items():
        out = re.sub(re.escape(word) + r"(?![A-Za-z])\s*", text, out)
    out = re.sub(r"(?<=[\w}])\\sqrt", r"·\\sqrt", out)  # "\text{factor}\sqrt{3}": a product
    for _ in range(8):  # innermost braces first, a few levels deep
        before = out
        out = re.sub(r"\\(?:text|mathrm|mathcal|mathbf|operatorname)\{([^{}]*)\}", r"\1", out)
        out = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", out)
        out = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", out)
        out = re.sub(r"_\{([^{}]*)\}", r"_\1", out)
        out = re.sub(r"\^\{([^{}]*)\}", r"^\1", out)
        if out == before:
            break
    # \max, \prod, \log: the name, a space before a following word
    out = re.sub(r"\\([A-Za-z]+)\s*(?=(\w)?)", lambda m: m.group(1) + (" " if m.group(2) else ""), out)
    out = out.replace("\\,", " ").replace("\\", "").replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", out).strip()


def plain_summary(doc: str) -> str:
    """The first paragraph of a docstring as plain text: roles, literals and math unwrapped,
    whitespace folded; cut after the last whole sentence when the paragraph runs on."""
    paragraph = (inspect.cleandoc(doc or "").split("\n\n") or [""])[0]
    text = _MATH.sub(lambda m: _tex(m.group(1)), " ".join(paragraph.split()))
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    text = text.replace("`", "")
    if text and not text.endswith((".", "!", "?", ")")):
        end = max(text.rfind(". "), text.rfind(".) "))
        text = text[: end + 1] if end > 0 else text + "."
    return text


def _summary(entry: SchemeEntry) -> str:
    return plain_summary(inspect.getdoc(entry.fn) or "")


_SCHEME_COLUMNS = (Column("scheme", key=True), Column("framework", drop=2), Column("family", drop=1), Column("summary"))


def render_schemes(entries: Iterable[SchemeEntry], width: int | None = None):
    """A table of schemes fitted to ``width``: name, framework, family and summary (the
    framework goes first when space is short: it is the name's prefix)."""
    rows = [[e.name, e.framework, e.family, _summary(e)] for e in entries]
    return fit_table(_SCHEME_COLUMNS, rows, width)


def render_schemes_markdown(entries: Iterable[SchemeEntry]) -> str:
    rows = [[e.name, e.framework, e.family, Raw(markdown_cell(_summary(e)))] for e in entries]
    return "\n".join(markdown_table(_SCHEME_COLUMNS, rows)) + "\n"


def render_schemes_json(entries: Iterable[SchemeEntry]) -> str:
    """Each scheme's name, framework, family, aliases, arguments with their defaults, and summary."""

    def default(value: object) -> object:
        if value is inspect.Parameter.empty:
            return None
        return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)

    data = [
        {
            "name": e.name,
            "framework": e.framework,
            "family": e.family,
            "aliases": list(e.aliases),
            "arguments": {k: default(v) for k, v in e.parameters.items()},
            "summary": _summary(e),
        }
        for e in entries
    ]
    return json.dumps(data, indent=2, allow_nan=False, default=repr) + "\n"
