"""``fanin explain``: built-in and import-path models, rules files and presets, formats, errors."""

import json

from click.testing import CliRunner

from fanin.cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_explain_builtin_model_with_a_preset():
    result = run("explain", "gpt(n_layer=1)", "--rules", "gpt2(n_layer=1)", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "fanin plan: GPT (16 tensors; random source: counter stream, seed=0)" in result.output
    assert "wte.weight (= lm_head.weight)" in result.output
    assert "normal(std=0.02/sqrt(2*1))" in result.output
    assert "(0, 'h.0.attn.c_proj.weight')" in result.output


def test_explain_import_path_with_rules_file_as_json(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[rules]\n"*.weight" = "xavier_uniform"\n"*.bias" = "zeros"\n')
    result = run("explain", "fanin.models:mlp(depth=1, hidden=8)", "--rules", str(rules), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [e["name"] for e in data["entries"]] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert data["entries"][0]["shape"] == [8, 16] and data["entries"][0]["rule_index"] == 0
    assert data["rules"][1] == {"index": 1, "rule": "name='*.bias' -> zeros"}


def test_explain_markdown():
    result = run("explain", "cnn", "--rules", "resnet", "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "# fanin plan: Sequential (8 tensors, source: global)"
    assert lines[2] == "| \\# | tensor | shape | fan in/out | rule | init | std | bound |"  # no stream key: no seed
    assert lines[4].startswith(
        "| 0 | `0.weight` | 16×3×3×3 | 27/144 | `#0 module=Conv2d & role='weight' -> kaiming_normal"
    )
    assert "Leftovers: reset_parameters" in result.output


def test_explain_errors(tmp_path):
    result = run("explain", "gtp")
    assert result.exit_code == 2
    assert "Unknown model 'gtp'. Did you mean 'gpt'? Accepted: 'cnn', 'gpt', 'mlp'." in result.output
    result = run("explain", "no_such_module_xyz:factory")
    assert result.exit_code == 2 and "Cannot import 'no_such_module_xyz'" in result.output
    result = run("explain", "mlp", "--rules", "*.weight")
    assert result.exit_code == 2 and "Unknown preset '*.weight'" in result.output
    result = run("explain", "mlp", "--rules", str(tmp_path / "none.toml"))
    assert result.exit_code == 2 and "Cannot read rules file" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": {"*.weight": "ones"}}')
    result = run("explain", "mlp", "--rules", str(bad))
    assert result.exit_code == 1
    assert "Error: 3 parameter(s) match no rule: '0.bias', '2.bias', '4.bias'." in result.output
    result = run("explain", "mlp", "--rules", str(bad), "--leftovers", "keep")
    assert result.exit_code == 0 and "leftovers=keep" in result.output
