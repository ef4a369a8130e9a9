import io
import json
import sys

import pytest
import torch
from rich.console import Console

from fanin.activations import compare_gains
from fanin.diagnostics import DEMO_CONFIGS, DepthConfig, run_depth_experiment
from fanin.report import (
    MissingExtraError,
    depth_report,
    render_gain,
    render_json,
    render_markdown,
    render_schemes,
    render_table,
    snapshot_layers,
    write_plot,
)
from fanin.report.table import plain_text
from fanin.schemes import lookup

SMALL = {"depth": 4, "width": 4, "batch": 2}


@pytest.fixture(scope="module")
def small_report():
    configs = [
        DepthConfig("huge", None, "normal(std=1e10)", **SMALL),
        DepthConfig("tiny", "relu", "normal(std=0.01)", **SMALL),
        DepthConfig("tanh-wide", "tanh", "normal(std=10.0)", **SMALL),
        DepthConfig("lecun", None, "normal(std=0.5)", **SMALL),
    ]
    return depth_report(run_depth_experiment(c) for c in configs)


GOLDEN_MARKDOWN = """\
Std of the activations after each layer (width 4, batch 2, seed 1, float64 accumulation).

| run | activation | scheme | layer 0 | layer 1 | layer 2 | layer 3 | non-finite / vanished | verdict |
|---|---|---|---:|---:|---:|---:|---|---|
| huge | none | `normal(std=1e10)` | 1.073e+10 | 1.284e+20 | 2.312e+30 | NaN | 3 (std), 3 (x) | exploding |
| tiny | relu | `normal(std=0.01)` | 0.004978 | 1e-05 | 7.732e-08 | 1.01e-09 | 1 (< 0.001) | vanishing |
| tanh-wide | tanh | `normal(std=10.0)` | 0.9258 | 1.03 | 1.003 | 1.035 | - | saturating |
| lecun | none | `normal(std=0.5)` | 0.5363 | 0.3211 | 0.289 | 0.3648 | - | stable |

- **huge**: exploding: std exceeds 1000 at layer 0; torch's float32 std is non-finite from layer 3; \
the activations overflow float32 at layer 3.
- **tiny**: vanishing: std falls below 0.001 at layer 1 (1e-05); 1.01e-09 after the last layer.
- **tanh-wide**: saturating: std within [0.001, 1000] at every layer (1.03 after the last layer), but on \
average 94% of units are saturated (|y| > 0.99), where the gradient through tanh is below 0.02.
- **lecun**: stable: std within [0.001, 1000] at every layer (0.365 after the last layer).
"""

GOLDEN_JSON = {
    "experiment": "depth",
    "torch_version": torch.__version__,
    "layers": [0, 1, 2, 3],
    "runs": [
        {
            "config": {
                "name": "huge",
                "activation": None,
                "scheme": "normal(std=1e10)",
                "depth": 4,
                "width": 4,
                "batch": 2,
                "seed": 1,
                "accumulate": "float64",
            },
            "verdict": "exploding",
            "reason": "std exceeds 1000 at layer 0; torch's float32 std is non-finite from layer 3; "
            "the activations overflow float32 at layer 3",
            "nonfinite_layer": 3,
            "overflow_layer": 3,
            "explode_layer": 0,
            "vanish_layer": None,
            "stds": [10725048320.0, 1.284391605275837e20, 2.312333722494472e30, None],
            "saturated": None,
            "zeros": None,
        }
    ],
}


def test_markdown_golden(small_report):
    assert render_markdown(small_report) == GOLDEN_MARKDOWN


def test_json_golden(small_report):
    one = depth_report(small_report.runs[:1])
    text = render_json(one)
    assert json.loads(text) == GOLDEN_JSON
    assert text.endswith("}\n") and "NaN" not in text


def test_snapshot_layers():
    assert snapshot_layers(100) == (0, 1, 2, 5, 10, 30, 50, 99)
    assert snapshot_layers(31) == (0, 1, 2, 5, 10, 30)
    assert snapshot_layers(1) == (0,)


def test_report_needs_runs():
    with pytest.raises(ValueError, match="at least one run"):
        depth_report([])


def test_table_of_the_demo():
    report = depth_report(run_depth_experiment(c) for c in DEMO_CONFIGS[:2])
    console = Console(record=True, width=220, file=io.StringIO())
    console.print(render_table(report))
    text = console.export_text()
    for cell in ("15.96", "256.6", "0.9975", "1.002", "exploding", "stable", "99"):
        assert cell in text
    limit = next(line for line in text.splitlines() if line.strip().startswith("limit"))
    assert limit.split()[:3] == ["limit", f"{report.runs[0].nonfinite_layer}", "(std)"]
    assert text.startswith("Std of the activations after layer i (width 256, batch 16, seed 1)\n")
    assert "normal (none, normal(std=1.0)): exploding: std exceeds 1000 at layer 2" in text


def test_demo_table_fits_80_columns_and_is_the_same_at_any_larger_width():
    report = depth_report(run_depth_experiment(c) for c in DEMO_CONFIGS)
    natural = plain_text(render_table(report, None), None)
    assert max(len(line) for line in natural.splitlines()) <= 80
    assert plain_text(render_table(report, 80), 80) == natural == plain_text(render_table(report, 200), 200)
    assert "limit: the first layer whose std is NaN/inf (std)" in natural


def test_names_are_rendered_literally(small_report):
    import dataclasses

    run = small_report.runs[0]
    odd = dataclasses.replace(run, config=dataclasses.replace(run.config, name="[bold red]x\x1b[2J"))
    report = depth_report([odd])
    text = plain_text(render_table(report, None), None)
    assert "[bold red]x\\x1b[2J" in text and "\x1b" not in text
    md = render_markdown(report)
    assert "\\[bold red\\]x\\\\x1b\\[2J" in md and "\x1b" not in md


def test_plot_is_a_png(small_report, tmp_path):
    path = write_plot(small_report, tmp_path / "depth.png")
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib(small_report, tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'fanin\[plot\]'"):
        write_plot(small_report, tmp_path / "depth.png")
    assert not (tmp_path / "depth.png").exists()
    assert issubclass(MissingExtraError, ImportError)


def test_render_gain():
    text = render_gain(compare_gains("tanh"))
    lines = text.splitlines()
    assert lines[0] == "activation   tanh"
    assert lines[1].startswith("exact        1.59253741972")
    assert lines[2] == "torch table  1.6666666666666667  torch.nn.init.calculate_gain"
    assert lines[3].startswith("monte carlo  1.5901 ± 0.0020") and "100000 float64 draws," in lines[3]
    assert lines[5].startswith("std ratio    1.5928") and "consistent with 0, so it estimates the gain" in text
    assert "note         torch's docs give no derivation for 5/3" in text
    assert max(len(line) for line in lines) <= 80
    relu = render_gain(compare_gains("relu"))
    assert "here E[f(z)] = 0.4002 ± 0.0019, so it" in relu and "is not the gain" in relu
    assert "not in torch's table" in render_gain(compare_gains("gelu"))


def test_render_schemes():
    text = plain_text(render_schemes([lookup("kaiming_normal"), lookup("normal")]))
    header, _rule, first, second = text.splitlines()
    assert header.split() == ["scheme", "framework", "family", "summary"]
    assert first.split()[:3] == ["kaiming_normal", "torch", "normal"]
    assert second.split()[:3] == ["normal", "torch", "normal"]
    narrow = plain_text(render_schemes([lookup("tf1.uniform_unit_scaling_initializer")], 60), 60)
    assert "tf1.uniform_unit_scaling_initializer" in narrow and "framework" not in narrow


def test_scheme_summaries_are_plain_whole_sentences():
    from fanin.report.formats import plain_summary
    from fanin.schemes import list_schemes

    for name in list_schemes():
        summary = plain_summary(lookup(name).fn.__doc__)
        assert summary.endswith((".", ")")), (name, summary)
        for rest in ("``", ":math:", ":func:", "`", "\\", "\\text", "\\mathcal"):
            assert rest not in summary, (name, summary)
    assert plain_summary("Zeros, after one :math:`\\mathcal{U}[a, b)` draw of ``n`` values.") == (
        "Zeros, after one U[a, b) draw of n values."
    )
    text = plain_summary("A bias: the first dimension splits\ninto blocks, block")
    assert text == "A bias: the first dimension splits into blocks, block."
    assert plain_summary("One sentence. And a cut-off sec") == "One sentence."
