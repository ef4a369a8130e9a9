"""Every subcommand over a corpus of bad input: hostile files, bad specs, bad options, bad paths.

What must hold for each case: exit status 2 (usage) or 1 (failure), one ``Error:`` line naming what
was given, never a traceback, nothing written where an input was; and names that come from a
model are shown literally (no markup, no escape sequence, no line break gets through).
"""

import json
import struct
import textwrap

import pytest
import torch
from click.testing import CliRunner

from fanin.cli.main import main


def run(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Hostile and careless files, written once."""
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("corpus")
    files = {}

    def write(name, data):
        path = d / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        files[name] = path

    good = d / "good.safetensors"
    save_file({"w": torch.randn(8, 4)}, str(good))
    files["good.safetensors"] = good
    raw = good.read_bytes()
    write("empty.pt", b"")
    write("empty.safetensors", b"")
    write("truncated.safetensors", raw[:24])
    write("header_longer_than_file.safetensors", struct.pack("<Q", 10**6) + b"{}")
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    write("offsets_out_of_range.safetensors", struct.pack("<Q", len(header)) + header)
    write("non_utf8_header.safetensors", struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc")
    torch.save({"w": torch.zeros(2)}, d / "pickle.safetensors")
    files["pickle.safetensors"] = d / "pickle.safetensors"
    write("random.pt", bytes(range(256)) * 4)
    write("text.pt", "not a checkpoint\n")
    (d / "dir.safetensors").mkdir()
    files["dir.safetensors"] = d / "dir.safetensors"

    write("empty.toml", "")
    write("bad.toml", "[rules\n")
    write("list.json", "[1, 2, 3]")
    write("rules_is_a_number.json", '{"rules": 5}')
    write("preset_is_a_number.toml", "preset = 5\n")
    write("unknown_scheme.json", '{"rules": {"*": "normall"}}')
    write("bad_spec.json", '{"rules": {"*": "normal(std="}}')
    write("deep.json", "[" * 100_000 + "]" * 100_000)
    write("binary.toml", b"\x00\xff\xfe garbage")
    write("rules.yaml", "rules: {}")
    return files


def _assert_clean_failure(result, args):
    assert result.exit_code in (1, 2), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    assert isinstance(result.exception, SystemExit), (args, repr(result.exception))
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, (args, result.stderr)
    assert len(errors[0]) < 2000, (args, len(errors[0]))  # bounded, even for a huge input
    assert "\x1b" not in result.output, (args, result.output)


CHECKPOINTS = [
    "empty.pt",
    "empty.safetensors",
    "truncated.safetensors",
    "header_longer_than_file.safetensors",
    "offsets_out_of_range.safetensors",
    "non_utf8_header.safetensors",
    "pickle.safetensors",
    "random.pt",
    "text.pt",
    "dir.safetensors",
]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_hostile_checkpoints(corpus, name):
    path = corpus[name]
    for args in (
        ["audit", path],
        ["audit", path, "--format", "json"],
        ["diff", path, corpus["good.safetensors"]],
        ["diff", corpus["good.safetensors"], path, "--exit-code"],
    ):
        _assert_clean_failure(run(*args), args)


RULES = [
    "empty.toml",
    "bad.toml",
    "list.json",
    "rules_is_a_number.json",
    "preset_is_a_number.toml",
    "unknown_scheme.json",
    "bad_spec.json",
    "deep.json",
    "binary.toml",
    "rules.yaml",
]


@pytest.mark.parametrize("name", RULES)
def test_hostile_rules_files(corpus, name):
    for args in (["explain", "mlp", "--rules", corpus[name]], ["probe", "mlp", "--rules", corpus[name]]):
        _assert_clean_failure(run(*args), args)


BAD_SPECS = [
    "-" * 5000,
    "mlp(",
    "mlp(depth=)",
    "mlp(depth=1e400)",
    "mlp(depth='x')",
    "mlp(depth=__import__('os'))",
    "mlp(1, 2)",
    "mlp(**{'depth': 1})",
    "mlp(depth=1, depth=2)",
    "gpt(n_embd=30, n_head=4)",
    ":",
    "os:system",
    "builtins:exec",
    "builtins:dict",
    "math:pi",
    "no_such_module_xyz:f",
    "torch.nn:NoSuchLayer",
    "[bold red]mlp",
    "mlp\x1b[2J",
    "x" * 100_000,
]


@pytest.mark.parametrize("spec", BAD_SPECS, ids=lambda s: repr(s[:30]))
def test_bad_model_specs_on_every_model_command(spec):
    for args in (["explain", spec], ["probe", spec], ["audit", spec], ["diff", spec, "mlp"]):
        _assert_clean_failure(run(*args), args)


def test_a_model_too_large_to_build_is_planned_on_meta():
    # explain builds on the meta device: no memory, so a 2.8e14-parameter model is planned
    result = run("explain", "mlp(in_features=16777216, hidden=16777216)", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["entries"][0]["shape"] == [16777216, 16777216]


BAD_OPTIONS = [
    ["demo", "--seed", "-1"],
    ["demo", "--seed", str(2**70)],
    ["demo", "--width", "0"],
    ["demo", "--depth", str(10**9)],
    ["demo", "--run", "[/oops]"],
    ["demo", "--accumulate", "float16"],
    ["gain", "relu", "--samples", "1"],
    ["gain", "relu", "--param", "nan"],
    ["gain", "leaky_relu", "--param", "inf"],
    ["gain", "[bold]relu"],
    ["gain", ""],
    ["schemes", "--framework", "[red]x"],
    ["explain", "mlp", "--seed", "-1"],
    ["explain", "mlp", "--seed", str(2**64)],
    ["explain", "mlp", "--leftovers", "drop"],
    ["explain", "mlp", "--rules", ""],
    ["explain", "mlp", "--rules", "gpt2(n_layer=-1"],
    ["explain", "mlp", "--rules", "gpt2(bogus=1)"],
    ["explain", "mlp", "--arg", "=1"],
    ["explain", "mlp", "--arg", "depth="],
    ["explain", "mlp", "--arg", "depth=1", "--arg", "depth=2"],
    ["explain", "mlp", "--arg", "depth=" + "[" * 10_000],
    ["probe", "mlp", "--input-shape", "0"],
    ["probe", "mlp", "--input-shape", "100000,100000,100000"],
    ["probe", "mlp", "--input-shape", "-3,4"],
    ["probe", "mlp", "--int-inputs", "0"],
    ["probe", "mlp", "--mode", "test"],
    ["probe", "gpt", "--int-inputs", "100000"],
    [
        "probe",
        "torch.nn:Embedding",
        "--arg",
        "num_embeddings=5",
        "--arg",
        "embedding_dim=3",
        "--input-shape",
        "2,3",
        "--int-inputs",
        "50",
    ],
    ["lint", "mlp", "--rules", "gpt2(bogus=1)"],
    ["lint", "[/oops]"],
    ["lint", "mlp", "--arg", "bogus=1"],
    ["coord-check", "mlp", "--widths", "64"],
    ["coord-check", "mlp", "--widths", "64,32"],
    ["coord-check", "mlp", "--widths", "a,b"],
    ["coord-check", "mlp", "--widths", "8,16", "--width-arg", "bogus"],
    ["coord-check", "mlp(hidden=8)", "--widths", "8,16"],
    ["coord-check", "torch.nn:Identity", "--widths", "8,16", "--width-arg", "x"],
    ["coord-check", "mlp", "--widths", "8,16", "--lr", "nan"],
    ["coord-check", "mlp", "--widths", "8,16", "--rules", "mup(bogus=1)"],
    ["audit", "mlp", "--layout", "jax"],
    ["audit", "mlp", "--tensor", "[/oops]"],
    ["diff", "mlp", "mlp", "--rtol", "nan"],
    ["diff", "mlp", "mlp", "--atol", "-1"],
]


@pytest.mark.parametrize("args", BAD_OPTIONS, ids=lambda a: " ".join(a)[:60])
def test_bad_options(args):
    _assert_clean_failure(run(*args), args)


@pytest.mark.parametrize("command", ["probe", "audit", "diff"])
def test_a_model_too_large_to_build_fails_in_one_line(command):
    spec = "mlp(in_features=16777216, hidden=16777216)"
    args = [command, spec, *(["mlp"] if command == "diff" else [])]
    result = run(*args)
    _assert_clean_failure(result, args)
    assert result.exit_code == 1 and f"Building {spec} failed" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--depth", "2"],
        ["gain", "relu"],
        ["schemes"],
        ["explain", "mlp"],
        ["lint", "mlp"],
        ["coord-check", "mlp", "--widths", "8,16", "--steps", "1"],
        ["probe", "mlp"],
        ["audit", "mlp"],
        ["diff", "mlp", "mlp"],
    ],
)
def test_bad_output_paths(command, tmp_path):
    for bad in (
        "",
        "/",
        str(tmp_path) + "/",
        str(tmp_path / "missing" / "x.md"),
        str(tmp_path / "x.csv"),
        "/dev/null",
        str(tmp_path / "x\x1b[31m.yaml"),
    ):
        args = [*command, "-o", bad]
        _assert_clean_failure(run(*args), args)
    if command[0] in ("demo", "probe", "audit", "coord-check"):
        for bad in (str(tmp_path / "x.gif"), str(tmp_path / "missing" / "x.png"), "/dev/null", str(tmp_path)):
            args = [*command, "--plot", bad]
            _assert_clean_failure(run(*args), args)
    assert list(tmp_path.iterdir()) == []


# --- names from a model, shown literally ---------------------------------------------------------

HOSTILE_NAMES = ["[/oops]", "[bold red]x", "esc\x1b[31mred", "new\nline", "pipe|`tick`", "$\\alpha$", "tab\tbidi\u202e"]


@pytest.fixture()
def hostile_module(tmp_path, monkeypatch):
    (tmp_path / "hostile_models.py").write_text(
        textwrap.dedent(f"""
        import torch
        from torch import nn

        NAMES = {HOSTILE_NAMES!r}


        class Layer(nn.Module):
            def __init__(self, name):
                super().__init__()
                self.register_parameter(name, nn.Parameter(torch.randn(4, 4) * 0.5))

            def forward(self, x):
                return torch.tanh(x @ next(iter(self.parameters())))


        def model():
            net = nn.Sequential()
            for name in NAMES:
                net.add_module(name, Layer(name))
            return net
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "hostile_models:model"


def _shown(name):
    from fanin.report.text import printable

    return printable(name)


def test_names_from_a_model_are_printed_literally(hostile_module, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": {"*": "normal(std=0.02)"}}')
    checks = [
        ["explain", hostile_module, "--rules", rules, "--seed", "0"],
        ["probe", hostile_module, "--input-shape", "2,4", "--backward"],
        ["audit", hostile_module],
    ]
    for args in checks:
        result = run(*args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
        out = result.stdout
        assert "\x1b" not in out and "\u202e" not in out and "\t" not in out, args
        for name in HOSTILE_NAMES:
            assert _shown(name) in out, (args, name)
        assert not any(line.startswith("line") for line in out.splitlines()), args  # no injected line


def test_names_from_a_model_in_markdown_and_figures(hostile_module, tmp_path):
    md = tmp_path / "plan.md"
    assert run("explain", hostile_module, "--leftovers", "keep", "-o", md).exit_code == 0
    text = md.read_text()
    table = [line for line in text.split("(first match wins):")[0].splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(HOSTILE_NAMES)  # header + one row per tensor: no name split a row or a line
    assert all(line.count(" | ") == table[0].count(" | ") for line in table[1:])
    assert "\x1b" not in text and "\u202e" not in text
    probe_md = tmp_path / "probe.md"
    png, svg = tmp_path / "probe.png", tmp_path / "probe.svg"
    result = run("probe", hostile_module, "--input-shape", "2,4", "-o", probe_md, "--plot", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "\x1b" not in probe_md.read_text()
    assert run("probe", hostile_module, "--input-shape", "2,4", "--plot", svg, "--format", "json").exit_code == 0
    drawn = svg.read_text()
    assert "[bold red]x" in drawn and "$\\alpha$" in drawn and "α" not in drawn  # shown as typed, no mathtext


def test_error_messages_show_names_literally():
    result = run("explain", "mlp\x1b[2J\nInjected: line")
    assert result.exit_code == 2 and "\x1b" not in result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "\\x1b[2J" in error[0] and "Injected" in error[0]
    assert not any(line.startswith("Injected") for line in result.stderr.splitlines())
