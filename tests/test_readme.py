"""The README is true: every code block that shows output is run and its output compared.

- ``python`` blocks are one doctest session, in order (``...`` elides, as the README says), run in
  a temporary directory;
- ``console`` blocks are ``$ command`` lines each followed by its output: ``fanin ...`` runs
  through click's runner as an 80-column terminal would show it (the README says so), ``make
  demo`` runs what the Makefile's ``demo`` recipe runs (checked to be ``fanin demo --plot
  depth.png``);
- every other block shows no output (no prompt), so an output cannot escape the test.
"""

import doctest
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from fanin.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def blocks(kind=None):
    found = [(lang, body) for lang, body in BLOCK.findall(README.read_text(encoding="utf-8"))]
    return [body for lang, body in found if lang == kind] if kind is not None else found


def console_commands():
    """(command, expected output) for every ``$`` line of the console blocks."""
    out = []
    for body in blocks("console"):
        command, lines = None, []
        for line in body.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    out.append((command, "\n".join(lines)))
                command, lines = line[2:], []
            else:
                lines.append(line)
        assert command is not None, f"a console block without a command:\n{body}"
        out.append((command, "\n".join(lines)))
    return out


def makefile_recipe(target):
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = lines.index(f"{target}: $(STAMP)")
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().lstrip("@"))
    return recipe


def fanin_args(command):
    if command == "make demo":
        recipe = makefile_recipe("demo")
        assert recipe == ["$(VENV)/bin/fanin demo --plot depth.png"], recipe
        return ["demo", "--plot", "depth.png"]
    words = shlex.split(command)
    assert words[0] == "fanin", f"README console commands run fanin or make demo, got {command!r}"
    return words[1:]


def test_every_block_with_output_is_tested():
    for lang, body in blocks():
        if lang not in ("python", "console"):
            assert not re.search(r"^(\$ |>>> )", body, re.MULTILINE), f"untested output in a ```{lang} block:\n{body}"
    assert len(blocks("python")) >= 6 and len(console_commands()) >= 3


def test_python_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = "\n".join(blocks("python"))
    test = doctest.DocTestParser().get_doctest(source, {}, "README.md", str(README), 0)
    report = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries >= 25


@pytest.mark.parametrize(("command", "expected"), console_commands(), ids=[c for c, _ in console_commands()])
def test_console_blocks(command, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, fanin_args(command), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.rstrip("\n") == expected.rstrip("\n")
    if command == "make demo":
        assert (tmp_path / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_demo_output_is_the_same_at_any_terminal_width(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = dict(console_commands())["make demo"]
    for env in ({"COLUMNS": "200"}, {"COLUMNS": None}):
        result = CliRunner().invoke(main, ["demo", "--plot", "depth.png"], env=env)
        assert result.output.rstrip("\n") == expected.rstrip("\n")


def test_the_install_section_names_every_extra():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    text = README.read_text()
    section = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    for extra in extras:
        assert f"- `{extra}`:" in section, extra
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in section
    assert "pip install '.[plot,audit]'" in section
