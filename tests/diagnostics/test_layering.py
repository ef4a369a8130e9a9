"""Imports flow one way (CONTRIBUTING.md): diagnostics import nothing from reports or the CLI, and the
probe function is not shadowed by a module of the same name. The one exception, as in
tests/test_layering.py: a record's ``__str__``, or a rendering method that is only a call of its
renderer (``report.to_markdown()``), may import that renderer from ``fanin.report``."""

import ast
import importlib.util
from pathlib import Path

import fanin
import fanin.diagnostics
import fanin.diagnostics.probing
import fanin.diagnostics.records
import fanin.report
import fanin.report.probe

PACKAGE = Path(fanin.diagnostics.__file__).parent
RIGHT_OF_DIAGNOSTICS = ("fanin.report", "fanin.cli")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at top level or inside a function, as (line, dotted name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _thin_call(method: ast.FunctionDef) -> bool:
    """A method whose body is an optional docstring, imports, then one ``return`` (not ``__repr__``)."""
    body = method.body[1:] if ast.get_docstring(method) is not None else method.body
    return (
        method.name != "__repr__"
        and len(body) >= 2
        and isinstance(body[-1], ast.Return)
        and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body[:-1])
    )


def str_method_lines(path: Path) -> set[int]:
    """Lines of imports written directly in the body of a method named ``__str__``, or of a record's
    rendering method that is a thin call into its renderer (``report.to_markdown()``)."""
    lines: set[int] = set()
    for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in cls.body:
            if isinstance(node, ast.FunctionDef) and (node.name == "__str__" or _thin_call(node)):
                lines |= {n.lineno for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    return lines


def _to_the_right(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in RIGHT_OF_DIAGNOSTICS)


def test_the_scanner_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os\ndef f():\n    from fanin.report import render_table\n    import fanin.cli\n")
    found = imported_modules(source)
    assert [(line, m) for line, m in found if _to_the_right(m)] == [
        (3, "fanin.report"),
        (3, "fanin.report.render_table"),
        (4, "fanin.cli"),
    ]
    # "from fanin import report" names the package too
    source.write_text("from fanin import report\n")
    assert any(_to_the_right(m) for _, m in imported_modules(source))


def test_diagnostics_import_nothing_from_reports_or_the_cli():
    files = sorted(PACKAGE.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "probing.py", "records.py", "depth.py", "lsuv.py", "theory.py"}
    offending = [
        f"{path.name}:{line}: {module}"
        for path in files
        for line, module in imported_modules(path)
        if _to_the_right(module) and not (line in str_method_lines(path) and module.startswith("fanin.report"))
    ]
    assert offending == []


def test_probe_is_the_function_and_no_submodule_shadows_it():
    assert callable(fanin.diagnostics.probe) and fanin.diagnostics.probe.__module__ == "fanin.diagnostics.probing"
    assert fanin.probe is fanin.diagnostics.probe is fanin.diagnostics.probing.probe
    assert importlib.util.find_spec("fanin.diagnostics.probe") is None


def test_records_keep_their_public_names():
    records = fanin.diagnostics.records
    for name in ("BlockStats", "LayerStats", "ParamStats", "ProbeReport", "UnhealthyModelError", "load_report"):
        obj = getattr(records, name)
        assert obj.__module__ == "fanin.diagnostics.records"
        assert getattr(fanin.diagnostics, name) is obj
        assert getattr(fanin.report, name) is obj, name  # the renderers' package re-exports them
        assert getattr(fanin.report.probe, name) is obj, name  # and so does their former module
    assert fanin.ProbeReport is records.ProbeReport


def test_only_thin_rendering_methods_may_import_their_renderer(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "class R:\n"
        "    def to_markdown(self):\n"
        "        '''doc'''\n"
        "        from fanin.report.lsuv import lsuv_markdown\n"
        "        return lsuv_markdown(self)\n"
        "    def to_table(self):\n"
        "        from fanin.report.lsuv import lsuv_table\n"
        "        table = lsuv_table(self)\n"
        "        return table\n"
        "    def __repr__(self):\n"
        "        from fanin.report.lsuv import lsuv_summary\n"
        "        return lsuv_summary(self)\n"
        "def helper():\n"
        "    from fanin.report.lsuv import lsuv_table\n"
        "    return lsuv_table\n"
    )
    assert str_method_lines(source) == {4}
