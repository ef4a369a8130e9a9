"""The one convention every command follows (fanin.cli.output, fanin.cli.models, fanin.cli.errors):
-o/--output and --format agree, --plot by suffix, exit statuses, the model forms, output that fits
80 columns with whole names, plain piped output, files never lost, short reprs."""

import json
import os

import pytest
import torch
from click.testing import CliRunner

import fanin
from fanin.cli.main import main

# Each command with cheap arguments that make it succeed; the ones that draw a figure.
COMMANDS = {
    "demo": ["demo", "--depth", "3", "--width", "8", "--batch", "2", "--run", "normal"],
    "gain": ["gain", "relu", "--samples", "200"],
    "schemes": ["schemes", "--framework", "keras"],
    "explain": ["explain", "mlp(depth=1)"],
    "lint": ["lint", "mlp(depth=1)"],
    "coord-check": ["coord-check", "mlp(depth=1)", "--widths", "8,16", "--steps", "1"],
    "probe": ["probe", "mlp(depth=1)"],
    "audit": ["audit", "mlp(depth=1)"],
    "diff": ["diff", "mlp(depth=1)", "mlp(depth=1)"],
}
PLOTTING = ("demo", "probe", "coord-check", "audit")


def run(*args, **kwargs):
    return CliRunner().invoke(main, list(args), **kwargs)


def _save(path, seed=0):
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.LayerNorm(32))
    save_file(model.state_dict(), str(path))
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_output_format_follows_the_suffix(command, tmp_path):
    args = COMMANDS[command]
    for suffix, check in (
        (".json", json.loads),
        (".md", lambda t: t.count("|") > 2 or t.startswith("**")),
        (".txt", lambda t: "\x1b" not in t and "|" not in t.splitlines()[0]),
    ):
        out = tmp_path / f"report{suffix}"
        result = run(*args, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert result.stdout == "" and result.stderr.endswith(f"wrote {out}\n")
        text = out.read_text()
        assert check(text), (suffix, text[:200])
        assert all(line == line.rstrip() for line in text.splitlines())
    # --format agreeing with the suffix, or naming the format of a suffix-less file
    assert run(*args, "-o", str(tmp_path / "a.json"), "--format", "json").exit_code == 0
    result = run(*args, "-o", str(tmp_path / "noext"), "--format", "json")
    assert result.exit_code == 0 and json.loads((tmp_path / "noext").read_text()) is not None


@pytest.mark.parametrize("command", COMMANDS)
def test_a_disagreeing_suffix_or_format_is_refused(command, tmp_path):
    args = COMMANDS[command]
    for extra, message in [
        (["--format", "json", "-o", str(tmp_path / "x.md")], "--format json disagrees with the suffix of output="),
        (
            ["-o", str(tmp_path / "x.csv")],
            "the suffix is .csv; accepted suffixes: .json (json), .md (markdown), .txt (table)",
        ),
        (["-o", str(tmp_path / "x")], "the suffix is missing"),
        (["--format", "yaml"], "'yaml' is not one of 'table', 'markdown', 'json'"),
    ]:
        result = run(*args, *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr, (extra, result.stderr)
        assert result.stdout == ""
    assert not list(tmp_path.iterdir())  # nothing was written


@pytest.mark.parametrize("command", PLOTTING)
def test_figures_by_suffix(command, tmp_path):
    args = COMMANDS[command]
    magic = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml", ".pdf": b"%PDF"}
    if command == "audit":  # fanin.report.audit's figure writes PNG only until it adopts fanin.report.plot.figure
        magic = {".png": magic[".png"]}
    for suffix, head in magic.items():
        path = tmp_path / f"figure{suffix}"
        result = run(*args, "--format", "json", "--plot", str(path))
        assert result.exit_code == 0, result.output
        assert path.read_bytes().startswith(head) and f"wrote {path}" in result.stderr
    for bad in ("figure.jpg", "figure.gif", "figure"):
        result = run(*args, "--plot", str(tmp_path / bad))
        assert result.exit_code == 2 and "Unknown figure format" in result.stderr, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"figure{suffix}" for suffix in magic)


def test_commands_without_a_figure_have_no_plot_option():
    for command in ("gain", "schemes", "explain", "lint", "diff"):
        result = run(*COMMANDS[command], "--plot", "x.png")
        assert result.exit_code == 2 and "No such option '--plot'" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_output_paths_are_checked_before_the_work(command, tmp_path, monkeypatch):
    args = COMMANDS[command]
    cases = [
        (tmp_path / "missing" / "r.md", "does not exist"),
        (tmp_path, "is a directory"),
    ]
    for path, message in cases:
        result = run(*args, "-o", str(path))
        assert result.exit_code == 2 and message in result.stderr, result.output
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root can write anywhere
            result = run(*args, "-o", str(locked / "r.md"))
            assert result.exit_code == 2 and "is not writable" in result.stderr
    finally:
        locked.chmod(0o700)


def test_a_missing_output_directory_is_reported_before_the_audit_runs(tmp_path, monkeypatch):
    import fanin.auditing

    calls = []
    monkeypatch.setattr(fanin.auditing, "audit", lambda *a, **k: calls.append(a))
    ckpt = _save(tmp_path / "m.safetensors")
    result = run("audit", str(ckpt), "-o", str(tmp_path / "no" / "r.md"))
    assert result.exit_code == 2 and calls == []
    result = run("audit", str(ckpt), "--plot", str(tmp_path / "no" / "h.png"))
    assert result.exit_code == 2 and calls == []


def test_no_output_may_be_an_input(tmp_path):
    a, b = _save(tmp_path / "a.safetensors", 0), _save(tmp_path / "b.safetensors", 1)
    before = {p: p.read_bytes() for p in (a, b)}
    (tmp_path / "link.safetensors").symlink_to(a)
    os.link(a, tmp_path / "hard.md")
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": {"*.weight": "ones", "*.bias": "zeros"}}')
    cases = [
        ["audit", str(a), "-o", str(a), "--format", "json"],
        ["audit", str(a), "--plot", str(a)],
        ["audit", str(a), "--plot", str(tmp_path / "r.md"), "-o", str(tmp_path / "r.md")],
        ["audit", str(a), "-o", str(tmp_path / "link.safetensors"), "--format", "json"],
        ["audit", str(a), "-o", str(tmp_path / "hard.md")],
        ["audit", str(tmp_path / "link.safetensors"), "-o", str(a), "--format", "json"],
        ["diff", str(a), str(b), "-o", str(b), "--format", "json"],
        ["diff", str(a), str(b), "-o", str(tmp_path / "." / "a.safetensors"), "--format", "markdown"],
        ["explain", "mlp", "--rules", str(rules), "-o", str(rules)],
        ["probe", "mlp", "--rules", str(rules), "-o", str(rules)],
        ["probe", "mlp", "--rules", str(rules), "--plot", str(rules)],
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "an input of this command" in result.stderr or "another output" in result.stderr, result.stderr
    assert {p: p.read_bytes() for p in (a, b)} == before
    assert rules.read_text() == '{"rules": {"*.weight": "ones", "*.bias": "zeros"}}'


def test_no_output_overwrites_a_file_inside_an_input_directory(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _save(model_dir / "model.safetensors")
    (model_dir / "config.json").write_text("{}")
    result = run("audit", str(model_dir), "-o", str(model_dir / "config.json"))
    assert result.exit_code == 2 and "inside the input directory" in result.stderr
    assert (model_dir / "config.json").read_text() == "{}"


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    import fanin.report.files

    out = tmp_path / "plan.md"
    out.write_text("old report\n")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fanin.report.files.os, "replace", broken)
    result = run("explain", "mlp", "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == f"Error: Cannot write the report to {out}: No space left on device"
    assert out.read_text() == "old report\n" and sorted(p.name for p in tmp_path.iterdir()) == ["plan.md"]


def test_a_written_report_replaces_the_old_one_with_its_permissions(tmp_path):
    out = tmp_path / "plan.json"
    out.write_text("old")
    out.chmod(0o640)
    assert run("explain", "mlp", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["model"] == "Sequential"
    assert out.stat().st_mode & 0o777 == 0o640


# --- exit statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_exit_statuses(command):
    args = COMMANDS[command]
    assert run(*args).exit_code == 0
    usage = run(*args, "--no-such-option")
    assert usage.exit_code == 2 and "No such option '--no-such-option'" in usage.stderr


def test_check_and_exit_code_answer_no_with_status_1(tmp_path):
    # PyTorch's default Linear init loses the gradient through 6 ReLU layers: not healthy.
    result = run("probe", "mlp", "--arg", "depth=6", "--backward", "--check")
    assert result.exit_code == 1 and "gradients_vanishing" in result.stdout
    assert run("probe", "mlp", "--check").exit_code == 0
    a, b = _save(tmp_path / "a.safetensors", 0), _save(tmp_path / "b.safetensors", 1)
    c = tmp_path / "c.safetensors"
    from safetensors.torch import load_file, save_file

    state = load_file(str(b))
    state["0.weight"] = torch.full_like(state["0.weight"], 0.5)
    save_file(state, str(c))
    assert run("diff", str(a), str(a), "--exit-code").exit_code == 0
    assert run("diff", str(a), str(b), "--exit-code").exit_code == 0  # same scheme, other seed: same way
    differ = run("diff", str(a), str(c), "--exit-code")
    assert differ.exit_code == 1 and "different initialization" in differ.stdout
    assert run("diff", str(a), str(c)).exit_code == 0  # without --exit-code the answer is only printed


def test_failures_exit_1_usage_errors_exit_2(tmp_path):
    rules = tmp_path / "bad.json"
    rules.write_text('{"rules": {"*.weight": "ones"}}')
    failures = [
        (["explain", "mlp", "--rules", str(rules)], "Error: 3 parameter(s) match no rule"),
        (["probe", "mlp", "--input-shape", "8,3"], "probing mlp failed"),
        (
            ["probe", "mlp(in_features=16777216, hidden=16777216)"],
            "Building mlp(in_features=16777216, hidden=16777216) failed",
        ),
    ]
    for args, message in failures:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    usages = [
        (["explain", "gtp"], "Unknown model 'gtp'. Did you mean 'gpt'?"),
        (["explain", "mlp", "--rules", "resnett"], "Unknown preset 'resnett'. Did you mean 'resnet'?"),
        (["explain", "mlp", "--rules", str(tmp_path / "none.toml")], "does not exist"),
        (["audit", str(tmp_path / "none.safetensors")], "No such file or directory"),
        (["demo", "--run", "relu-kaimin"], "Did you mean 'relu-kaiming'?"),
        (["gain", "tanhh"], "Did you mean 'tanh'"),
    ]
    for args, message in usages:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output


def test_an_unexpected_error_is_one_line_unless_asked(monkeypatch):
    import fanin.planning

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero in a plan")

    monkeypatch.setattr(fanin.planning, "plan", boom)
    result = run("explain", "mlp")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == (
        "Error: fanin explain failed unexpectedly: ZeroDivisionError: division by zero in a plan "
        "(set FANIN_TRACEBACK=1 to see the traceback, and please report it)\n"
    )
    monkeypatch.setenv("FANIN_TRACEBACK", "1")
    result = run("explain", "mlp")
    assert isinstance(result.exception, ZeroDivisionError)


# --- model forms --------------------------------------------------------------------------------


MODEL_COMMANDS = {
    "explain": lambda spec, *extra: ["explain", spec, *extra, "--format", "json"],
    "probe": lambda spec, *extra: ["probe", spec, *extra, "--format", "json"],
    "audit": lambda spec, *extra: ["audit", spec, *extra, "--format", "json"],
    "diff": lambda spec, *extra: ["diff", spec, spec, *extra, "--format", "json"],
}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_model_form_on_every_model_command(command):
    make = MODEL_COMMANDS[command]
    forms = [
        make("mlp"),
        make("mlp(depth=1, hidden=8)"),
        make("mlp", "--arg", "depth=1", "--arg", "hidden=8"),
        make("fanin.models:mlp", "--arg", "depth=1"),
        make("fanin.models:mlp(depth=1)"),
        make(
            "torch.nn:Linear",
            "--arg",
            "in_features=4",
            "--arg",
            "out_features=2",
            *(["--input-shape", "3,4"] if command == "probe" else []),
        ),
    ]
    for args in forms:
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
    wrong = run(*make("mlp", "--arg", "widht=8"))
    assert wrong.exit_code == 2
    assert (
        "Unknown argument of mlp 'widht'. Accepted arguments: 'depth', 'hidden', 'in_features', 'out_features'."
        in wrong.stderr
    )
    wrong = run(*make("torch.nn:Linear", "--arg", "in_feature=4"))
    assert wrong.exit_code == 2 and "Did you mean 'in_features'" in wrong.stderr
    missing = run(*make("torch.nn:Linear", "--arg", "in_features=4"))
    assert missing.exit_code == 2 and "missing a required argument: 'out_features'" in missing.stderr


def test_audit_of_a_demo_name_audits_the_demo_model():
    result = run("audit", "mlp", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["records"]] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


def test_checkpoints_for_audit_and_diff_but_not_for_commands_that_build(tmp_path):
    ckpt = _save(tmp_path / "m.safetensors")
    assert run("audit", str(ckpt), "--format", "json").exit_code == 0
    assert run("diff", str(ckpt), "mlp", "--format", "json").exit_code == 0
    result = run("audit", str(ckpt), "--arg", "depth=2")
    assert result.exit_code == 2 and "--arg configures a model's factory" in result.stderr
    for command in ("explain", "probe"):
        result = run(command, str(ckpt))
        assert result.exit_code == 2 and "fanin audit reads checkpoints" in result.stderr


def test_built_models_are_seeded():
    one = json.loads(run("probe", "mlp", "--format", "json", "--seed", "4").stdout)
    two = json.loads(run("probe", "mlp", "--format", "json", "--seed", "4").stdout)
    other = json.loads(run("probe", "mlp", "--format", "json", "--seed", "5").stdout)
    assert one == two and one != other
    state = torch.random.get_rng_state()
    run("audit", "mlp", "--format", "json")
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left as it was


# --- output that fits ----------------------------------------------------------------------------


def _lines(result):
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_tables_fit_80_columns_with_whole_names():
    env = {"COLUMNS": "80"}
    model = "gpt(n_layer=12, n_embd=64, n_head=4)"
    names = [e.name for e in fanin.plan(fanin.models.build(model), "gpt2")]
    for args in (
        ["explain", model, "--rules", "gpt2", "--seed", "0"],
        ["probe", model, "--backward"],
        ["schemes"],
        ["demo"],
        ["gain", "gelu"],
    ):
        lines = _lines(run(*args, env=env))
        assert max(len(line) for line in lines) <= 80, (args, max(lines, key=len))
        text = "\n".join(lines)
        assert "…" not in text, args
        if args[0] == "explain":
            for name in names:
                assert any(line.split()[1:2] == [name] for line in lines), name
        if args[0] == "probe":
            assert "h.11.attn.c_attn" in text and "h.11.mlp.c_proj" in text


def test_explain_drops_the_least_important_columns_first():
    narrow = _lines(run("explain", "mlp", "--seed", "0", env={"COLUMNS": "80"}))
    wide = _lines(run("explain", "mlp", "--seed", "0", env={"COLUMNS": "200"}))
    assert "stream key" in wide[1] and "fan in/out" in wide[1]
    assert "stream key" not in narrow[1] and "init" in narrow[1] and "tensor" in narrow[1]
    unseeded = _lines(run("explain", "mlp"))
    assert "stream key" not in unseeded[1]  # no seed, no key: no empty column


def test_piped_output_is_plain_and_not_wider_than_needed(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    for args in (COMMANDS["explain"], COMMANDS["probe"], COMMANDS["schemes"], ["demo"]):
        result = run(*args)
        assert result.exit_code == 0
        assert "\x1b" not in result.stdout
        assert all(line == line.rstrip() for line in result.stdout.splitlines()), args
    wide = run("schemes").stdout.splitlines()
    # natural width: one scheme a line, as wide as the longest summary needs
    assert len(wide) == len(fanin.schemes.list_schemes()) + 2


def test_reprs_are_one_short_line_and_print_gives_the_table():
    model = fanin.models.build("gpt(n_layer=4)")
    plan = fanin.plan(model, "gpt2", seed=0)
    assert repr(plan) == "<Plan GPT: 52 tensors, 5 rules, leftovers=error, counter stream, seed=0>"
    assert "\n" not in repr(plan) and len(repr(plan)) < 120
    assert str(plan).splitlines()[0] == "fanin plan: GPT (52 tensors; random source: counter stream, seed=0)"
    assert plan.explain() == str(plan)
    applied = fanin.apply(torch.nn.Linear(4, 2), {"weight": "zeros", "bias": "zeros"})
    assert repr(applied).startswith("<Plan Linear: 2 tensors") and len(repr(applied)) < 120
    report = fanin.probe(torch.nn.Linear(4, 2), torch.randn(3, 4))
    assert repr(report) == "<ProbeReport 'Linear' (Linear): 1 layer call, input 3x4, forward only: stable>"
    assert str(report).startswith("Linear (Linear): 1 layer call, train mode")


def test_on_a_terminal_tables_fit_its_width(monkeypatch):
    import fanin.cli.output

    monkeypatch.setattr(fanin.cli.output, "stdout_is_terminal", lambda: True)
    result = run("explain", "gpt(n_layer=1)", "--rules", "gpt2", "--seed", "0", env={"COLUMNS": "72"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 72 and "h.0.attn.c_proj.weight" in result.stdout
    assert "wte.weight (= lm_head.weight)" in result.stdout


def test_a_figure_that_fails_half_way_leaves_the_old_file(tmp_path, monkeypatch):
    import fanin.report.audit

    old = tmp_path / "hist.png"
    old.write_bytes(b"old figure")

    def half(report, path, names=None, **kwargs):
        path.write_bytes(b"\x89PNG half")  # whatever a renderer does to the path it is given
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fanin.report.audit, "write_audit_plot", half)
    result = run("audit", "mlp", "--format", "json", "--plot", str(old))
    assert result.exit_code == 1 and "Cannot write the plot to" in result.stderr
    assert old.read_bytes() == b"old figure" and [p.name for p in tmp_path.iterdir()] == ["hist.png"]


@pytest.mark.parametrize(
    "command, option, constant",
    [
        ("coord-check", "optimizer", "fanin.diagnostics.coordinate_check:OPTIMIZERS"),
        ("coord-check", "statistic", "fanin.diagnostics.coordinate_check:STATISTICS"),
        ("demo", "accumulate", "fanin.diagnostics.depth:ACCUMULATE"),
        ("probe", "mode", "fanin.diagnostics.probing:MODES"),
        ("explain", "leftovers", "fanin.rules.rules:LEFTOVERS"),
    ],
)
def test_option_choices_are_the_librarys(command, option, constant):
    """The CLI spells these choices out (loading it imports no torch); they are the library's."""
    import importlib

    module, name = constant.split(":")
    param = next(p for p in main.commands[command].params if p.name == option)
    assert sorted(param.type.choices) == sorted(getattr(importlib.import_module(module), name))


def test_one_definition_of_the_formats():
    from fanin.cli.output import FORMATS, SUFFIXES

    assert set(SUFFIXES.values()) == set(FORMATS)
    for command in main.commands.values():
        formats = [p for p in command.params if p.name == "fmt"]
        assert [tuple(p.type.choices) for p in formats] == [FORMATS], command.name
