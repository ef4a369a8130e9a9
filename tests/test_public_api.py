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
    # fanin/auditing/audit.py, fanin/auditing/diff.py, ... share a name with the function they define.
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
