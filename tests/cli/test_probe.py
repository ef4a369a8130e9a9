import json
import sys

import pytest
from click.testing import CliRunner

from fanin.cli.main import main
from fanin.report import load_report


@pytest.fixture()
def runner():
    return CliRunner()


def test_probe_builtin_table(runner):
    result = runner.invoke(main, ["probe", "mlp", "--backward"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("mlp (Sequential): 5 layer calls, eval mode, forward and backward, input 8x16")
    assert "layers in execution order" in result.stdout and "parameters" in result.stdout
    assert result.stderr == ""  # the progress bar only shows on a terminal


def test_probe_args_json_and_check(runner):
    result = runner.invoke(main, ["probe", "mlp", "--arg", "depth=6", "--backward", "--format", "json", "--check"])
    data = json.loads(result.stdout)
    assert len(data["layers"]) == 13 and data["backward"] is True
    # PyTorch's default Linear init shrinks the signal about x0.41 per Linear+ReLU, gradients likewise.
    assert [v["kind"] for v in data["verdicts"]] == ["gradients_vanishing"]
    assert result.exit_code == 1


def test_probe_import_path_and_outputs(runner, tmp_path):
    args = ["probe", "torch.nn:Linear", "--arg", "in_features=4", "--arg", "out_features=3", "--input-shape", "5,4"]
    out = tmp_path / "r.json"
    result = runner.invoke(main, [*args, "--format", "markdown", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "| 0 | `(model)` | Linear | 5x3 |" in result.stdout
    result = runner.invoke(main, [*args, "-o", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.stderr == f"wrote {out}\n" and result.stdout == ""
    report = load_report(out)
    assert report.input_shapes == ((5, 4),) and report.label == "torch.nn:Linear"
    again = runner.invoke(main, [*args, "--format", "json", "--seed", "3"])
    assert json.loads(again.stdout) == json.loads(out.read_text())  # --seed: same model, same inputs
    md, png = tmp_path / "r.md", tmp_path / "r.png"
    assert runner.invoke(main, [*args, "-o", str(md)]).exit_code == 0
    assert md.read_text().startswith("**torch.nn:Linear (Linear)")
    assert runner.invoke(main, [*args, "--plot", str(png)]).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_probe_gpt_token_inputs_and_residual(runner):
    result = runner.invoke(main, ["probe", "gpt", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["input_shapes"] == [[8, 32]] and [b["name"] for b in data["blocks"]] == ["h.0", "h.1"]
    named = runner.invoke(main, ["probe", "gpt", "--format", "json", "--residual", "h.1"])
    assert [b["name"] for b in json.loads(named.stdout)["blocks"]] == ["h.1"]


def test_probe_with_rules(runner):
    result = runner.invoke(main, ["probe", "mlp", "--rules", "torch", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "Sequential"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["probe", "mlpp"], 2, "Unknown model 'mlpp'. Did you mean 'mlp'"),
        (["probe", "mlp", "--arg", "depth"], 2, "expected KEY=VALUE, got 'depth'"),
        (
            ["probe", "mlp", "--arg", "widht=3"],
            2,
            ("Unknown argument of mlp 'widht'. Accepted arguments: 'depth', 'hidden', 'in_features', 'out_features'."),
        ),
        (["probe", "mlp", "--arg", "depth=six"], 2, "the value of depth must be a Python literal"),
        (["probe", "mlp", "--input-shape", "8,a"], 2, "expected positive integers separated by commas"),
        (
            ["probe", "torch.nn:Linear", "--arg", "in_features=2", "--arg", "out_features=2"],
            2,
            "give the input's shape with --input-shape",
        ),
        (
            ["probe", "mlp", "-o", "r.png"],
            2,
            (
                "cannot tell the report's format from output='r.png': the suffix is .png; "
                "accepted suffixes: .json (json), .md (markdown), .txt (table)"
            ),
        ),
        (
            ["probe", "mlp", "--plot", "r.jpg"],
            2,
            "Unknown figure format 'jpg' (from path='r.jpg'). Did you mean 'png'?",
        ),
        (["probe", "mlp", "--input-shape", "8,3"], 1, "probing mlp failed"),
        (["probe", "mlp", "--rules", "no_such_rules.toml"], 2, "--rules"),
    ],
)
def test_probe_errors(runner, args, code, message):
    result = runner.invoke(main, args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and result.stdout == ""


def test_probe_png_without_matplotlib(runner, tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    result = runner.invoke(main, ["probe", "mlp", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "pip install 'fanin[plot]'" in result.stderr and result.stdout == ""


def test_demo_runs_through_the_probe(runner, monkeypatch):
    import fanin.diagnostics.depth as depth

    calls = []
    original = depth.probe
    monkeypatch.setattr(depth, "probe", lambda *a, **k: calls.append(k) or original(*a, **k))
    result = runner.invoke(main, ["demo", "--format", "json", "--run", "normal"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["stds"][:2] == [15.959932327270508, 256.6237487792969]
    assert len(calls) == 1 and calls[0]["mode"] == "eval"
