"""The public face: every exported name loads, from the module that defines it, on first use."""

import subprocess
import sys

import pytest

import fanin


def test_every_exported_name_resolves_and_dir_lists_it():
    missing = [name for name in fanin.__all__ if getattr(fanin, name, None) is None]
    assert missing == []
    assert set(fanin.__all__) <= set(dir(fanin))


def test_exported_functions_are_functions_not_their_submodules():
    # A module that shares its name with the function it defines would shadow it on the package.
    import types

    for name in ("audit", "diff", "probe", "plan", "apply", "materialize"):
        assert not isinstance(getattr(fanin, name), types.ModuleType), name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'fanin' has no attribute 'kaiming'"):
        fanin.kaiming  # noqa: B018


def test_import_fanin_does_not_import_torch():
    # So that `fanin --version` / `--help` answer at once; torch loads with the first name used.
    code = "import sys, fanin; print('torch' in sys.modules); fanin.Stream; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def _face() -> tuple[list[str], dict[str, str | None], dict[str, str]]:
    """``__all__``, ``_EXPORTS`` and the TYPE_CHECKING imports of fanin/__init__.py, read as source."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(fanin.__file__).read_text(encoding="utf-8"))
    listed: list[str] = []
    exports: dict[str, str | None] = {}
    imported: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "__all__":
            listed = [ast.literal_eval(e) for e in node.value.elts]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "_EXPORTS":
            exports = ast.literal_eval(node.value)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.dump(statement)
                imported.update({alias.name: statement.module for alias in statement.names})
    return listed, exports, imported


def test_the_public_face_is_literal_and_its_three_lists_agree():
    listed, exports, imported = _face()
    assert len(listed) == len(set(listed))
    assert set(listed) == {*exports, "__version__"}
    assert imported == {name: source or "fanin" for name, source in exports.items()}
    assert listed == fanin.__all__
