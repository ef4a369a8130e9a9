"""Imports flow one way, over the whole package (STYLE.md): no module of src/fanin imports a module
of a layer to its right -- at top level, inside a function, under ``TYPE_CHECKING``, or by name
through ``importlib.import_module("...")`` and the registry's ``_PROVIDERS``.

The layers, left to right (a module may import its own layer and the layers to its left):

    errors < formulas < rng < schemes, init, keras, tf1, jax, composite, gains
    < rules, models < diagnostics, auditing < report < cli, fanin (the public face)

One exception (the project's shared decision on records): a record's ``__str__`` (what ``print()``
shows) may import its renderer from ``fanin.report`` inside that method, so that records stay plain
data and ``print(plan)`` still gives the table. Only a method named ``__str__``, only imports of
``fanin.report``, only inside the method body.

``fanin.gains`` is math on activations *with torch* (it imports only errors and formulas), so it
sits with the schemes rather than in the torch-free formulas. ``fanin/__init__.py`` (the public
face, which re-exports every layer) and ``fanin/__main__.py`` (the entry point) are exempt;
importing the public face itself (``import fanin``, ``from fanin import __version__``) counts as
importing the rightmost layer. ``from fanin import X`` is resolved to what it loads: the module
``fanin.X``, or the module the public face takes ``X`` from.
"""

import ast
from pathlib import Path

import pytest

import fanin
import fanin.schemes.registry

PACKAGE = Path(fanin.__file__).parent

LAYERS = (
    ("fanin.errors",),
    ("fanin.formulas",),
    ("fanin.rng",),
    ("fanin.schemes", "fanin.init", "fanin.keras", "fanin.tf1", "fanin.jax", "fanin.composite", "fanin.gains"),
    ("fanin.rules", "fanin.models"),
    ("fanin.diagnostics", "fanin.auditing"),
    ("fanin.report",),
    ("fanin.cli", "fanin"),
)
EXEMPT = ("fanin", "fanin.__main__")


def layer_of(module: str) -> int | None:
    """The index in LAYERS of a dotted fanin module name; None outside fanin."""
    if module == "fanin":
        return len(LAYERS) - 1
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names if n != "fanin"):
            return i
    return None


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = (root.name, *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from_fanin(name: str, root: Path) -> str:
    """What ``from fanin import name`` loads: a submodule, or the defining module of a re-export."""
    if (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file():
        return f"fanin.{name}"
    return fanin._EXPORTS.get(name) or "fanin"


def imported_modules(path: Path, module: str, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every fanin module that the file ``path`` (the module ``module``) imports, as (line, dotted name).

    Absolute and relative imports, at any depth of the syntax tree, and string constants given to
    ``importlib.import_module``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source == "fanin":
                found += [(node.lineno, _from_fanin(alias.name, root)) for alias in node.names]
            else:
                found.append((node.lineno, source))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return sorted((line, m) for line, m in found if m == "fanin" or m.startswith("fanin."))


def str_method_import_lines(path: Path) -> set[int]:
    """Lines of the import statements written inside a function named ``__str__`` (at any depth
    of that method's body, not in a function nested inside it)."""
    lines: set[int] = set()

    def visit(node: ast.AST, in_str: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, getattr(child, "name", None) == "__str__")
            elif isinstance(child, ast.ClassDef):
                visit(child, False)
            else:
                if in_str and isinstance(child, (ast.Import, ast.ImportFrom)):
                    lines.add(child.lineno)
                visit(child, in_str)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return lines


def _allowed(target: str, line: int, str_lines: set[int]) -> bool:
    return line in str_lines and (target == "fanin.report" or target.startswith("fanin.report."))


def violations(path: Path, module: str, root: Path = PACKAGE) -> list[str]:
    mine = layer_of(module)
    if mine is None:
        return []  # an unplaced module: test_every_module_has_a_layer names it
    str_lines = str_method_import_lines(path)
    return [
        f"{module}:{line} imports {target} (layer {layer_of(target)} > {mine})"
        for line, target in imported_modules(path, module, root)
        if layer_of(target) is not None and layer_of(target) > mine and not _allowed(target, line, str_lines)
    ]


def provider_violations(providers: tuple[str, ...]) -> list[str]:
    """The registry imports its providers by name (importlib) on first lookup: the same rule applies."""
    mine = layer_of("fanin.schemes.registry")
    return [f"fanin.schemes.registry._PROVIDERS imports {p} (layer {layer_of(p)} > {mine})"
            for p in providers if layer_of(p) is not None and layer_of(p) > mine]


def source_files() -> list[tuple[Path, str]]:
    return [(p, module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))]


# --- the scanner ---------------------------------------------------------------------------------


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "fanin"
    for sub in ("schemes", "rules", "diagnostics", "cli"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "rng.py").write_text("")
    return root


def test_the_scanner_sees_every_kind_of_import(tree):
    path = tree / "schemes" / "registry.py"
    path.write_text(
        "import os\n"
        "from fanin import rng\n"
        "def load():\n"
        "    from fanin.rules.defaults import default_schemes\n"
        "    import fanin.diagnostics.lsuv\n"
        "    from ..cli import main\n"
        "    from . import spec\n"
        "    importlib.import_module('fanin.diagnostics.lsuv')\n"
        "    from fanin import lsuv_\n"
        "    from fanin import __version__\n"
    )
    assert imported_modules(path, "fanin.schemes.registry", tree) == [
        (2, "fanin.rng"),
        (4, "fanin.rules.defaults"),
        (5, "fanin.diagnostics.lsuv"),
        (6, "fanin.cli"),
        (7, "fanin.schemes"),
        (8, "fanin.diagnostics.lsuv"),
        (9, "fanin.diagnostics.lsuv"),  # a re-export of the public face: its defining module
        (10, "fanin"),
    ]
    assert [v.split(" (")[0] for v in violations(path, "fanin.schemes.registry", tree)] == [
        "fanin.schemes.registry:4 imports fanin.rules.defaults",
        "fanin.schemes.registry:5 imports fanin.diagnostics.lsuv",
        "fanin.schemes.registry:6 imports fanin.cli",
        "fanin.schemes.registry:8 imports fanin.diagnostics.lsuv",
        "fanin.schemes.registry:9 imports fanin.diagnostics.lsuv",
        "fanin.schemes.registry:10 imports fanin",
    ]


def test_only_str_may_import_its_renderer(tree):
    path = tree / "rules" / "plan.py"
    path.write_text(
        "class Plan:\n"
        "    def __str__(self):\n"
        "        from fanin.report.plan import render_plan_text\n"
        "        return render_plan_text(self)\n"
        "    def __repr__(self):\n"
        "        from fanin.report.plan import render_plan_text\n"
        "    def explain(self):\n"
        "        from fanin.report import plan\n"
        "    def __str__(self):\n"
        "        import fanin.cli.main\n"
        "        def helper():\n"
        "            from fanin.report import plan\n"
        "from fanin.report.plan import render_plan_text\n"
    )
    assert [v.split(" (")[0] for v in violations(path, "fanin.rules.plan", tree)] == [
        "fanin.rules.plan:6 imports fanin.report.plan",  # __repr__
        "fanin.rules.plan:8 imports fanin.report",  # another method
        "fanin.rules.plan:10 imports fanin.cli.main",  # __str__, but not a renderer
        "fanin.rules.plan:12 imports fanin.report",  # a function inside __str__
        "fanin.rules.plan:13 imports fanin.report.plan",  # module level
    ]


def test_the_scanner_sees_providers_to_the_right():
    before = ("fanin.init", "fanin.keras", "fanin.tf1", "fanin.jax", "fanin.diagnostics.lsuv", "fanin.rules.defaults")
    assert [v.split(" (")[0] for v in provider_violations(before)] == [
        "fanin.schemes.registry._PROVIDERS imports fanin.diagnostics.lsuv",
        "fanin.schemes.registry._PROVIDERS imports fanin.rules.defaults",
    ]


def test_the_layers_are_ordered_as_style_md_says():
    order = ["fanin.errors", "fanin.formulas.fans", "fanin.rng.stream", "fanin.composite", "fanin.rules.plan",
             "fanin.diagnostics.lsuv", "fanin.report.table", "fanin.cli.main"]
    assert [layer_of(m) for m in order] == list(range(len(LAYERS)))
    assert layer_of("fanin.gains") == layer_of("fanin.schemes.registry") == layer_of("fanin.init")
    assert layer_of("fanin.models") == layer_of("fanin.rules")
    assert layer_of("fanin.auditing.infer") == layer_of("fanin.diagnostics")
    assert layer_of("torch.nn") is None and layer_of("faninx") is None


# --- the package ----------------------------------------------------------------------------------


def test_every_module_has_a_layer():
    unplaced = [m for _, m in source_files() if m not in EXEMPT and layer_of(m) in (None, len(LAYERS) - 1)
                and not m.startswith("fanin.cli")]
    assert unplaced == []
    assert {m for _, m in source_files()} >= {"fanin.composite", "fanin.schemes.registry", "fanin.cli.main"}


def test_no_module_imports_to_its_right():
    offending = [v for path, module in source_files() if module not in EXEMPT for v in violations(path, module)]
    offending += provider_violations(fanin.schemes.registry._PROVIDERS)
    assert offending == []


def test_the_registry_loads_the_scheme_namespaces():
    providers = fanin.schemes.registry._PROVIDERS
    assert providers == ("fanin.init", "fanin.keras", "fanin.tf1", "fanin.jax", "fanin.composite")
    assert {layer_of(p) for p in providers} == {layer_of("fanin.schemes.registry")}
