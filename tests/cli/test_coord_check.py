"""fanin coord-check: standard parametrization grows with width, muP stays put; --check exits 1 when not stable."""

import json

from click.testing import CliRunner

from fanin.cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "120"})


def test_standard_parametrization_grows_and_mup_stays_put():
    sp = run("coord-check", "mlp", "--widths", "64,256,1024", "--format", "json", "--check")
    assert sp.exit_code == 1  # the logits grow with width
    data = json.loads(sp.stdout)
    logits = next(v for v in data["verdicts"] if v["group"] == "4")
    assert logits["kind"] == "grows" and logits["slope"] >= 0.4
    mu = run("coord-check", "mlp", "--widths", "64,256,1024", "--rules", "mup(base_width=64)", "--check")
    assert mu.exit_code == 0, mu.output
    assert "0 not stable" in mu.stdout.splitlines()[0] + mu.stdout.splitlines()[1]


def test_token_models_get_token_inputs_and_the_width_argument_is_named():
    result = run("coord-check", "gpt(n_layer=1, n_head=2)", "--widths", "16,32", "--steps", "1")
    assert result.exit_code == 0, result.output
    refused = run("coord-check", "torch.nn:Identity", "--widths", "8,16")
    assert refused.exit_code == 2 and "give the factory's width argument with --width-arg" in refused.stderr
    twice = run("coord-check", "mlp(hidden=8)", "--widths", "8,16")
    assert twice.exit_code == 2 and "hidden is the width argument" in twice.stderr
