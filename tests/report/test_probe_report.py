import io
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn

import fanin
from fanin.diagnostics.records import BlockStats, LayerStats, ParamStats
from fanin.diagnostics.verdicts import Verdict
from fanin.report import (
    MissingExtraError,
    ProbeReport,
    UnhealthyModelError,
    load_report,
    probe_plot,
    render_json,
    render_markdown,
    render_table,
    write_plot,
)
from fanin.report.probe import probe_markdown, probe_text

GOLDEN = Path(__file__).parent / "golden"
NAN, INF = float("nan"), float("inf")


def golden_report():
    """A hand-made report (no computation), so the goldens test the renderers alone."""
    layers = (
        LayerStats(
            0, "fc", "Linear", 0, 1, 12, (2, 4), "torch.float32", 0.125, 1.5, 2.375, 1.5, 0.0, 0.0, None, True, 0.5
        ),
        LayerStats(
            1, "act", "Tanh", 0, 1, 0, (2, 4), "torch.float32", -0.25, 0.75, 0.625, 0.75, 0.0, 0.0, 0.625, True, 0.25
        ),
        LayerStats(2, "act", "Tanh", 1, 1, 0, (2, 4), "torch.float32", NAN, NAN, INF, NAN, 0.0, 0.0, 0.5, False, None),
    )
    params = (ParamStats("fc.weight", (4, 3), 0.5, 0.25, 0.5), ParamStats("fc.bias", (4,), 0.0, 0.125, None))
    blocks = (BlockStats(1, "block", 0, 2, 1.0, 1.25),)
    verdicts = (
        Verdict("exploding", "non-finite from layer 2 ('act', Tanh, call 1)", 1e3, 2, NAN, None),
        Verdict("saturating", "on average 56% saturated", 0.5, 1, 0.5625),
    )
    return ProbeReport(
        "golden", "Net", "eval", True, "cpu", "2.13.0", ((2, 3),), 1.0, layers, params, blocks, 1.5, verdicts
    )


def _text(renderable, width=120):
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_markdown_golden():
    assert render_markdown(golden_report()) == (GOLDEN / "probe.md").read_text()


def test_table_golden():
    assert probe_text(golden_report(), 120) == (GOLDEN / "probe.txt").read_text()
    assert str(golden_report()) + "\n" == probe_text(golden_report())  # print(report) shows the tables


def test_repr_is_one_short_line():
    text = repr(golden_report())
    assert text == "<ProbeReport 'golden' (Net): 3 layer calls, input 2x3, forward and backward: exploding, saturating>"
    assert repr(_small_run()).startswith("<ProbeReport 'small' (Sequential): 4 layer calls, input 16x8")


def test_table_fits_80_columns_with_whole_names():
    import dataclasses

    long = "encoder.layers.11.self_attention.query_key_value"
    layers = tuple(dataclasses.replace(r, name=long) for r in golden_report().layers)
    report = dataclasses.replace(golden_report(), layers=layers)
    text = probe_text(report, 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert text.count(long) == 3  # whole, in every row
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert header.split()[:3] == ["#", "layer", "std"] and "E[y^2]" not in header and "grad" in header
    wide = probe_text(report, 200)
    assert "E[y^2]" in wide and "module" in wide


def test_columns_that_measured_nothing_are_left_out():
    text = probe_text(_small_run(backward=False), None)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "grad std" not in header and "saturated" in header  # tanh is measured, no backward pass
    md = render_markdown(_small_run(backward=False))
    assert "grad std" not in md


def test_token_id_inputs_are_named_as_such():
    import dataclasses

    report = dataclasses.replace(golden_report(), input_std=NAN, input_dtypes=("torch.int64",))
    assert "input 2x3 (int64 token ids: no std)" in " ".join(probe_text(report).split())
    unknown = dataclasses.replace(golden_report(), input_std=NAN)
    assert "std not measured: no floating-point input, or NaN values" in " ".join(probe_text(unknown).split())
    assert ProbeReport.from_dict(json.loads(report.to_json())).input_dtypes == ("torch.int64",)


def test_names_from_the_model_are_rendered_literally():
    import dataclasses

    hostile = ("[/oops]", "[bold red]x", "a\x1b[31mb", "line\nbreak", "pipe|`tick`")
    layers = tuple(dataclasses.replace(r, name=n) for r, n in zip(golden_report().layers, hostile, strict=False))
    params = tuple(dataclasses.replace(p, name=n) for p, n in zip(golden_report().params, hostile[3:], strict=False))
    report = dataclasses.replace(golden_report(), layers=layers, params=params, label="[red]label")
    text = probe_text(report, 100)
    for shown in ("[/oops]", "[bold red]x", "a\\x1b[31mb", "line\\nbreak", "[red]label"):
        assert shown in text
    assert "\x1b" not in text and "\nbreak" not in text
    md = probe_markdown(report)
    assert "\x1b" not in md
    assert all(line.startswith(("|", "-", "*", "L", "R", "P")) or not line for line in md.splitlines())
    assert "`` pipe\\|`tick` ``" in md


def test_json_golden():
    text = render_json(golden_report())
    assert text == (GOLDEN / "probe.json").read_text()
    assert "NaN" not in text and json.loads(text)["layers"][2]["second_moment"] == "inf"


def _small_run(label="small", std=None, backward=True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU())
    if std is not None:
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=std)
    return fanin.probe(model, torch.randn(16, 8), backward=backward, label=label)


def test_json_round_trip(tmp_path):
    report = _small_run()
    path = report.save(tmp_path / "r.json")
    assert load_report(path) == report and ProbeReport.load(path) == report
    # NaN != NaN, so the hand-made report with non-finite values round-trips through its dict form.
    golden = golden_report()
    again = ProbeReport.from_dict(json.loads(golden.to_json()))
    assert again.to_dict() == golden.to_dict() and math.isinf(again.layers[2].second_moment)


def test_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"not a fanin probe report: .*bad.json is not JSON"):
        load_report(bad)
    bad.write_text('{"format": "fanin.depth"}')
    with pytest.raises(ValueError, match=r"expected format='fanin.probe/1', got format='fanin.depth'"):
        load_report(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"got format='list'"):
        load_report(bad)


def test_assert_healthy():
    assert _small_run().assert_healthy() is None
    report = _small_run("huge", std=30.0, backward=False)
    assert [v.kind for v in report.verdicts] == ["saturating"] and not report.healthy
    with pytest.raises(AssertionError) as info:
        report.assert_healthy()
    err = info.value
    assert isinstance(err, UnhealthyModelError) and err.verdicts == report.problems
    assert str(err).startswith("probe of huge is not healthy:\n- ")
    assert all(f"- {v}" in str(err) for v in report.problems)
    assert "above 0.5" in str(err)  # the threshold it was judged against


def test_real_run_renders():
    report = _small_run()
    md = render_markdown(report)
    assert "4 layer calls, train mode, forward and backward, input 16x8" in md.splitlines()[0]
    assert "| 1 | `1` | Tanh | 16x8 |" in md and "- **stable**:" in md
    text = _text(render_table(report), width=160)
    assert "layers in execution order" in text and "parameters" in text and "2.weight" in text
    assert md.startswith("**small (Sequential): 4 layer calls")


def test_png_several_runs(tmp_path):
    runs = [_small_run("a"), _small_run("b", std=3.0), _small_run("c", backward=False)]
    path = probe_plot(runs, tmp_path / "p.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    single = write_plot(runs[2], tmp_path / "one.png")  # forward only: one panel
    assert single.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TypeError, match="probe_plot takes a ProbeReport or a list of them"):
        probe_plot([], tmp_path / "x.png")


def test_png_without_matplotlib(tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=r"pip install 'fanin\[plot\]'"):
        probe_plot(golden_report(), tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
