"""Imports flow one way, over the whole package: no module of src/fanin imports a module of a layer
to its right -- at top level, inside a function, under ``TYPE_CHECKING``, or by name through
``importlib.import_module("...")``.

The layers, left to right (a module may import its own layer and the layers to its left):

    errors < formulas < rng < schemes, activations < frameworks, init, keras, tf1, jax, composite
    < rules, models < planning < diagnostics, auditing < report < cli, fanin (the public face)

The registry of schemes loads the package that defines them, :mod:`fanin.frameworks`, by name on
first lookup (``fanin.schemes.registry.PROVIDER``): the one import of a layer to the right, a
plugin load (nothing of it is used by the registry), allowed for exactly that package, one layer
to the right, and nothing else.

One exception (the project's shared decision on records): a record's ``__str__`` (what ``print()``
shows) may import its renderer from ``fanin.report`` inside that method, so that records stay plain
data and ``print(plan)`` still gives the table; so may a record's other rendering method kept for
its public name (``report.to_markdown()``, ``table.describe()``) when it is a thin call: its body
is its imports and one ``return``. Only imports of ``fanin.report``, only inside the method body;
never in ``__repr__`` (one short line built in the record's module).

``fanin.activations`` is math on activations *with torch* (it imports only errors and formulas), so it
sits with the schemes rather than in the torch-free formulas. The public faces ``fanin.init``,
``fanin.keras``, ``fanin.tf1``, ``fanin.jax`` and ``fanin.composite`` re-export the framework modules
and sit in their layer. ``fanin/__init__.py`` (the public
face, which re-exports every layer) and ``fanin/__main__.py`` (the entry point) are exempt;
importing the public face itself (``import fanin``, ``from fanin import __version__``) counts as
importing the rightmost layer. ``from fanin import X`` is resolved to what it loads: the module
``fanin.X``, or the module the public face takes ``X`` from.
"""

import ast
import importlib
from pathlib import Path

import pytest

import fanin
import fanin.frameworks
import fanin.schemes.registry

PACKAGE = Path(fanin.__file__).parent

LAYERS = (
    ("fanin.errors",),
    ("fanin.formulas",),
    ("fanin.rng",),
    ("fanin.schemes", "fanin.activations"),
    ("fanin.frameworks", "fanin.init", "fanin.keras", "fanin.tf1", "fanin.jax", "fanin.composite"),
    ("fanin.rules", "fanin.models"),
    ("fanin.planning",),
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


def _thin_delegate(method: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A method whose body is an optional docstring, imports, then one ``return`` (not ``__repr__``)."""
    body = list(method.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return (
        method.name != "__repr__"
        and len(body) >= 2
        and isinstance(body[-1], ast.Return)
        and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body[:-1])
    )


def str_method_import_lines(path: Path) -> set[int]:
    """Lines of the import statements written inside a function named ``__str__`` (at any depth
    of that method's body, not in a function nested inside it), or directly in the body of a
    class's method that is a thin call (:func:`_thin_delegate`)."""
    lines: set[int] = set()

    def visit(node: ast.AST, in_str: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                and isinstance(node, ast.ClassDef)
                and _thin_delegate(child)
            ):
                lines.update(n.lineno for n in child.body if isinstance(n, (ast.Import, ast.ImportFrom)))
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


def provider_violations(provider: str) -> list[str]:
    """The registry imports its provider by name (importlib) on first lookup: allowed for the
    frameworks package only, which sits one layer to the right of the registry."""
    mine = layer_of("fanin.schemes.registry")
    if provider == "fanin.frameworks" and layer_of(provider) == mine + 1:
        return []
    return [
        f"fanin.schemes.registry.PROVIDER is {provider} (layer {layer_of(provider)}), not the frameworks "
        f"package one layer to the right of the registry (layer {mine})"
    ]


def source_files() -> list[tuple[Path, str]]:
    return [(p, module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))]


# --- framework knowledge lives in fanin.frameworks ----------------------------------------------
#
# A *string switch on a framework* is code that branches on, or tabulates by, a framework's name:
# a comparison or ``match`` against a framework name or alias, a dict keyed by one, a subscript
# or a loop over literal names, a literal collection of them, a ``startswith`` on a scheme-name
# prefix, or one literal table of scheme names of several frameworks (``{"keras.orthogonal": ...,
# "tf1.orthogonal_initializer": ...}``). Outside fanin.frameworks such code asks the framework's
# record instead. A layout (``"torch"``, ``"keras"``, ``"jax"``: fanin.formulas.fans.LAYOUTS) and
# the stream's ``"torch"`` backend share the words but are other concepts: a comparison whose other
# side, or a literal whose assigned name, says ``layout`` or ``backend`` is not a switch.

#: Modules that still switch on framework names, each with the reason (being rewritten elsewhere).
KNOWN_SWITCHES: dict[str, str] = {}


def _framework_words() -> tuple[frozenset[str], tuple[str, ...]]:
    names = frozenset(n for f in fanin.frameworks.FRAMEWORKS for n in f.names)
    prefixes = tuple(f.prefix for f in fanin.frameworks.FRAMEWORKS if f.prefix)
    return names, prefixes


def _strings(node: ast.AST) -> list[str]:
    """The string constants of ``node`` itself or, for a literal tuple/list/set, of its elements."""
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def _is_other_concept(*nodes: ast.AST | None) -> bool:
    text = " ".join(ast.unparse(n).lower() for n in nodes if n is not None)
    return "layout" in text or "backend" in text


def framework_switches(path: Path) -> list[str]:
    """``"line: code"`` for every string switch on a framework name in the file ``path``."""
    names, prefixes = _framework_words()

    def named(values: list[str]) -> bool:
        return any(v in names for v in values)

    def several_frameworks(values: list[str]) -> bool:
        return len({p for v in values for p in prefixes if v.startswith(p)}) >= 2

    tree = ast.parse(path.read_text(encoding="utf-8"))
    targets: dict[int, ast.AST] = {}  # id(value node) -> the name it is assigned to
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                targets[id(node.value)] = t
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets[id(node.value)] = node.target
    judged = set()  # literals judged as a part of the comparison, loop or subscript they sit in
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            judged.update(id(o) for o in (node.left, *node.comparators))
        elif isinstance(node, (ast.For, ast.comprehension)):
            judged.add(id(node.iter))
        elif isinstance(node, ast.Subscript):
            judged.add(id(node.slice))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        hit = False
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            values = [v for o in operands for v in _strings(o)]
            hit = (named(values) or several_frameworks(values)) and not _is_other_concept(
                *[o for o in operands if not _strings(o)]
            )
        elif isinstance(node, ast.match_case):
            values = [
                p.value.value
                for p in ast.walk(node.pattern)
                if isinstance(p, ast.MatchValue)
                and isinstance(p.value, ast.Constant)
                and isinstance(p.value.value, str)
            ]
            hit = named(values)
        elif isinstance(node, ast.Dict):
            keys = [v for k in node.keys if k is not None for v in _strings(k)]
            hit = (named(keys) or several_frameworks(keys)) and not _is_other_concept(targets.get(id(node)))
        elif isinstance(node, ast.Subscript):
            hit = named(_strings(node.slice)) and not _is_other_concept(node.value)
        elif isinstance(node, (ast.For, ast.comprehension)):
            hit = named(_strings(node.iter))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in judged:
            values = _strings(node)
            hit = (named(values) or several_frameworks(values)) and not _is_other_concept(targets.get(id(node)))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith", "removeprefix")
        ):
            hit = any(v in prefixes for a in node.args for v in _strings(a))
        if hit:
            anchor = (
                node.iter
                if isinstance(node, ast.comprehension)
                else node.pattern
                if isinstance(node, ast.match_case)
                else node
            )
            found.append((anchor.lineno, ast.unparse(anchor).splitlines()[0][:100]))
    return [f"{line}: {code}" for line, code in sorted(set(found))]


def _switch_exempt(module: str) -> bool:
    inside = ("fanin.frameworks", *KNOWN_SWITCHES)
    return module in EXEMPT or any(module == m or module.startswith(m + ".") for m in inside)


# --- the scanner ---------------------------------------------------------------------------------


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "fanin"
    for sub in ("schemes", "rules", "planning", "diagnostics", "cli"):
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
    path = tree / "planning" / "records.py"
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
        "    def to_markdown(self):\n"
        '        """A thin call: allowed."""\n'
        "        from fanin.report.plan import render_plan_markdown\n"
        "        return render_plan_markdown(self)\n"
        "    def to_json(self):\n"
        "        from fanin.report.plan import render_plan_json\n"
        "        text = render_plan_json(self)\n"
        "        return text\n"
        "    def __repr__(self):\n"
        "        from fanin.report.plan import render_plan_text\n"
        "        return render_plan_text(self)\n"
        "    def to_cli(self):\n"
        "        import fanin.cli.main\n"
        "        return fanin.cli.main\n"
        "from fanin.report.plan import render_plan_text\n"
    )
    assert [v.split(" (")[0] for v in violations(path, "fanin.planning.records", tree)] == [
        "fanin.planning.records:6 imports fanin.report.plan",  # __repr__
        "fanin.planning.records:8 imports fanin.report",  # another method, not a thin call
        "fanin.planning.records:10 imports fanin.cli.main",  # __str__, but not a renderer
        "fanin.planning.records:12 imports fanin.report",  # a function inside __str__
        "fanin.planning.records:18 imports fanin.report.plan",  # more than a call
        "fanin.planning.records:22 imports fanin.report.plan",  # __repr__, even when thin
        "fanin.planning.records:25 imports fanin.cli.main",  # a thin call, but not to a renderer
        "fanin.planning.records:27 imports fanin.report.plan",  # module level
    ]


def test_the_scanner_allows_only_the_frameworks_package_as_provider():
    assert provider_violations("fanin.frameworks") == []
    for provider in ("fanin.diagnostics.lsuv", "fanin.rules.defaults", "fanin.frameworks.torch.x", "fanin.rng"):
        assert [v.split(" (")[0] for v in provider_violations(provider)] == [
            f"fanin.schemes.registry.PROVIDER is {provider}"
        ]


def test_the_switch_scanner_sees_framework_names(tmp_path):
    path = tmp_path / "switchy.py"
    path.write_text(
        "def f(scheme, args, layout, backend):\n"
        "    if scheme.framework == 'keras':\n"  # 2: a comparison
        "        pass\n"
        "    if scheme.framework in ('tf1', 'jax'):\n"  # 4: membership in a literal
        "        pass\n"
        "    match scheme.framework:\n"
        "        case 'flax':\n"  # 7: match
        "            pass\n"
        "    TABLE = {'torch': 1, 'other': 2}\n"  # 9: a table keyed by framework
        "    x = TABLE['fanin']\n"  # 10: a subscript
        "    for fw in ('keras', 'jax'):\n"  # 11: a loop over names
        "        pass\n"
        "    names = {'keras.orthogonal': 'gain', 'tf1.orthogonal_initializer': 'gain'}\n"  # 13
        "    ok = scheme.name.startswith('jax.')\n"  # 14: a prefix test
        "    if layout == 'torch' or backend == 'torch' or args.get('layout') in (None, 'keras'):\n"  # other concepts
        "        pass\n"
        "    LAYOUTS = ('jax', 'keras', 'torch')\n"  # a layout list
        "    one = ('normal', 'fanin.padded_normal')\n"  # a scheme name, one framework: not a table
        "    return scheme.name == 'fanin.padded_normal', get('torch'), Fans(1, 1, 1, 'torch')\n"
    )
    lines = [int(v.split(":")[0]) for v in framework_switches(path)]
    assert sorted(set(lines)) == [2, 4, 7, 9, 10, 11, 13, 14]


def test_the_layers_are_ordered_as_documented():
    order = [
        "fanin.errors",
        "fanin.formulas.fans",
        "fanin.rng.stream",
        "fanin.schemes.registry",
        "fanin.frameworks.torch",
        "fanin.rules.rules",
        "fanin.planning.resolve",
        "fanin.diagnostics.lsuv",
        "fanin.report.table",
        "fanin.cli.main",
    ]
    assert [layer_of(m) for m in order] == list(range(len(LAYERS)))
    assert layer_of("fanin.activations") == layer_of("fanin.schemes.registry")
    assert layer_of("fanin.init") == layer_of("fanin.composite") == layer_of("fanin.frameworks")
    assert layer_of("fanin.models") == layer_of("fanin.rules")
    assert layer_of("fanin.auditing.inference") == layer_of("fanin.diagnostics")
    assert layer_of("torch.nn") is None and layer_of("faninx") is None


# --- the package ----------------------------------------------------------------------------------


def test_every_module_has_a_layer():
    unplaced = [
        m
        for _, m in source_files()
        if m not in EXEMPT and layer_of(m) in (None, len(LAYERS) - 1) and not m.startswith("fanin.cli")
    ]
    assert unplaced == []
    assert {m for _, m in source_files()} >= {"fanin.frameworks.fanin", "fanin.schemes.registry", "fanin.cli.main"}


def test_no_module_imports_to_its_right():
    offending = [v for path, module in source_files() if module not in EXEMPT for v in violations(path, module)]
    offending += provider_violations(fanin.schemes.registry.PROVIDER)
    assert offending == []


def test_no_module_outside_frameworks_switches_on_a_framework_name():
    offending = [
        f"{module}:{hit}"
        for path, module in source_files()
        if not _switch_exempt(module)
        for hit in framework_switches(path)
    ]
    assert offending == []


def test_the_known_switches_are_still_there():
    # An exception that no longer has a switch to excuse is removed from KNOWN_SWITCHES.
    modules = {module for path, module in source_files() if framework_switches(path)}
    stale = [known for known in KNOWN_SWITCHES if not any(m == known or m.startswith(known + ".") for m in modules)]
    assert stale == []


def test_the_registry_loads_the_frameworks_package():
    assert fanin.schemes.registry.PROVIDER == "fanin.frameworks"
    # ... which lists every framework module, and the registry's schemes come from those modules
    modules = {importlib.import_module(f"fanin.frameworks.{f.name}") for f in fanin.frameworks.FRAMEWORKS}
    entries = [fanin.schemes.registry.lookup(n) for n in fanin.schemes.registry.list_schemes()]
    assert {e.fn.__module__ for e in entries} == {m.__name__ for m in modules}
