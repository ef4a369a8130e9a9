"""Renderers of audit and diff reports: the order of their parts, tables that fit the width, names
from a file that cannot change the output, and the figure's panels and bins."""

import re

import numpy as np
import pytest
import torch

import fanin
from fanin.report.audit import (
    _bins,
    render_audit_markdown,
    render_audit_text,
    render_diff_markdown,
    render_diff_text,
    write_audit_plot,
)
from fanin.report.text import printable

HOSTILE = [
    "[/oops]",
    "[bold red]x",
    "esc\x1b[31mred",
    "new\nline",
    "pipe|`tick`|",
    "$\\alpha$",
    "tab\tbidi\u202e",
    "**bold** _it_ <b>",
    "# heading",
]


def _state(seed):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.empty(16, 8).uniform_(-0.3, 0.3, generator=g) for name in HOSTILE} | {
        "layer.weight": torch.randn(64, 32, generator=g) * 0.02,
        "layer.bias": torch.zeros(64),
    }


@pytest.fixture(scope="module")
def reports():
    a, b = _state(0), _state(1)
    b["layer.weight"] = b["layer.weight"] * 3  # one difference, found by the scale test
    return fanin.audit(a), fanin.diff(a, b)


def _no_injection(text, markdown=False):
    assert "\x1b" not in text and "\u202e" not in text and "\t" not in text
    # a newline in a name never starts a line of its own
    assert not any(line.lstrip(" |").startswith("line") for line in text.splitlines())
    if markdown:
        # outside code spans, Markdown's punctuation from a name is escaped
        prose = re.sub(r"(`+) .*? \1|(`+)[^`]*?\2", "", text)
        assert "[bold red]x" not in prose and "**bold**" not in prose and "<b>" not in prose
        assert not any(line.startswith("# heading") for line in text.splitlines())


def test_audit_text_leads_with_the_summary_and_fits_80_columns(reports):
    audit, _ = reports
    text = render_audit_text(audit)  # what print() shows: 80 columns
    assert str(audit) == text
    lines = text.splitlines()
    assert lines[0].startswith(f"{len(audit.records)} tensors: {len(audit.records)} fresh")
    assert text.index("Summary by role") < text.index("Tensors") < text.index("layer.weight  ")
    assert max(len(line) for line in lines) <= 80
    _no_injection(text)
    for name in HOSTILE:  # the key column is never folded: every name shows whole, escaped
        assert printable(name) in text, name
    wide = render_audit_text(audit, width=None)
    assert "training evidence" in wide and "training evidence" not in text  # dropped at 80, kept when room


def test_audit_markdown_keeps_names_in_their_cells(reports):
    audit, _ = reports
    md = render_audit_markdown(audit)
    _no_injection(md, markdown=True)
    table = [line for line in md.splitlines() if line.startswith("| ")]
    header = table[0]
    cells = header.count(" | ") + 1
    for row in table[1:]:
        # unescaped pipes only between cells
        assert len(re.findall(r"(?<!\\)\|", row)) == cells + 1, row
    assert md.index("Summary by role:") < md.index("| tensor |")


def test_diff_text_headline_counts_rows_and_details(reports):
    _, diff = reports
    text = render_diff_text(diff)
    assert str(diff) == text
    lines = text.splitlines()
    assert lines[0].startswith(f"same architecture ({len(diff.tensors)} tensors); different initialization for 1 of")
    counts = next(i for i, line in enumerate(lines) if line.startswith("Counts: "))
    table = next(i for i, line in enumerate(lines) if line.lstrip().startswith("tensor "))
    assert counts < table and "different 1" in text[text.index("Counts: ") :]
    assert max(len(line) for line in lines) <= 80
    _no_injection(text)
    for name in HOSTILE:
        assert printable(name) in text, name
    assert "layer.weight: rejected by the scale test" in text


def test_diff_markdown_keeps_names_in_their_cells(reports):
    _, diff = reports
    md = render_diff_markdown(diff)
    _no_injection(md, markdown=True)
    lines = md.splitlines()
    assert lines[0].startswith("**same architecture") and lines[2].startswith("Counts: identical ")
    table = [line for line in lines if line.startswith("| ")]
    cells = table[0].count(" | ") + 1
    assert all(len(re.findall(r"(?<!\\)\|", row)) == cells + 1 for row in table[1:])


def test_figure_with_hostile_names_left_out_and_not_drawn(reports, tmp_path):
    audit, _ = reports
    values = _state(0)
    svg = write_audit_plot(audit, tmp_path / "h.svg", values=values, max_panels=4)
    text = svg.read_text()
    assert "\x1b" not in text
    # the figure says which tensors are left out (more than 4 have a spread) and which are constant
    assert f"{len(audit.records) - 1 - 4} more left out (max_panels=4)" in text
    assert "not drawn (no spread of values): 1 constant (layer.bias)" in text
    png = write_audit_plot(audit, tmp_path / "h.png", ["$\\alpha$", "layer.bias"], values=values)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_errors_name_what_was_given(reports, tmp_path):
    audit, _ = reports
    with pytest.raises(ValueError, match=r"Unknown tensor to plot 'layer.wieght'. Did you mean 'layer.weight'"):
        write_audit_plot(audit, tmp_path / "x.png", ["layer.wieght"])
    with pytest.raises(
        ValueError,
        match=r"max_panels is the largest number of panels, an integer >= 1; got "
        r"max_panels=0",
    ):
        write_audit_plot(audit, tmp_path / "x.png", max_panels=0)
    only_constant = fanin.audit({"b": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"no tensor to plot: .*report tensors: b"):
        write_audit_plot(only_constant, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bins_follow_the_values_precision():
    g = torch.Generator().manual_seed(0)
    x32 = (torch.randn(20000, generator=g) * 0.02).double().numpy()
    assert _bins(x32, None) == 54  # Rice: 2 * 20000^(1/3)
    x16 = (torch.randn(20000, generator=g) * 0.02).bfloat16().double().numpy()
    edges = _bins(x16, None)
    values = np.unique(x16)
    # no edge on a representable value: each bar holds whole values
    assert not np.isin(edges, values).any() and 40 <= edges.size <= 60
    few = np.array([0.0, 0.5, 0.5, 1.0])
    assert _bins(few, None).tolist() == [-0.25, 0.25, 0.75, 1.25]  # one bar per value
    assert _bins(few, 7) == 7
    bias = (torch.rand(32, generator=g) - 0.5).numpy()  # 32 distinct float32 values: equal bins, no spikes
    assert _bins(bias, None) == 10


def test_nothing_audited_says_why_without_empty_tables():
    report = fanin.audit({"step": torch.tensor(3)})
    for text in (render_audit_text(report), render_audit_markdown(report)):
        assert "Not audited: step (not floating point (dtype=int64))" in text
        assert "Summary by role" not in text and "tensor |" not in text and "confidence" not in text
    diff = fanin.diff({"step": torch.tensor(3)}, {"x": torch.zeros(2)})
    text = render_diff_text(diff)
    assert (
        text.startswith(
            "different architecture (1 only in a, 1 only in b, 0 reshaped; 0 compared); no\n  tensor to compare"
        )
        and "Only in a: step" in text
        and "status" not in text
    )
    assert diff.any_different
