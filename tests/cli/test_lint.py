"""fanin lint: the model's own init by default, a plan of --rules, --check exits 1 on an error."""

import json

from click.testing import CliRunner

import fanin
import fanin.models
from fanin.cli.main import main
from fanin.report.lint import render_lint_text


def run(*args):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "120"})


def test_lint_of_the_model_own_init():
    result = run("lint", "mlp")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "fanin lint: Sequential (captured): 0 errors, 0 warnings, 0 infos"
    assert "No findings." in result.stdout


def test_lint_of_rules_names_the_tensor_and_check_exits_1(tmp_path):
    rules = tmp_path / "r.json"
    rules.write_text(
        json.dumps({"rules": [{"name": "0.weight", "init": "normal(std=0.02)"}, {"name": "*.bias", "init": "zeros"}]})
    )
    result = run("lint", "mlp", "--rules", str(rules))
    assert result.exit_code == 0, result.output  # without --check the answer is only reported
    assert "2 errors" in result.stdout.splitlines()[0]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(" error")]
    assert [r[2] for r in rows] == ["2.weight", "4.weight"] and {r[1] for r in rows} == {"uninitialized"}
    checked = run("lint", "mlp", "--rules", str(rules), "--check", "--format", "json")
    assert checked.exit_code == 1
    assert [f["tensor"] for f in json.loads(checked.stdout)["findings"]] == ["2.weight", "4.weight"]
    assert run("lint", "mlp", "--rules", "torch", "--check").exit_code == 0


def test_print_of_a_lint_report_is_its_table():
    report = fanin.lint(fanin.models.mlp(), {"0.weight": "normal(std=0.02)", "*.bias": "zeros"})
    assert str(report) == render_lint_text(report)
    assert str(report).startswith("fanin lint: Sequential (rules): 2 errors, 0 warnings, 0 infos")
    assert repr(report) == "<LintReport 'Sequential' (rules): 2 errors, 0 warnings, 0 infos>"


def test_explain_captured_plan_cites_the_model_own_init():
    result = run("explain", "mlp", "--rules", "captured", "--format", "json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["entries"]
    assert [e["name"] for e in entries] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert entries[0]["rule"] == "Linear.reset_parameters"
    assert entries[0]["scheme"]["name"] == "kaiming_uniform"
    refused = run("explain", "mlp", "--rules", "captured", "--leftovers", "keep")
    assert refused.exit_code == 2 and "--leftovers applies to rules" in refused.stderr
