"""Reports sit left of the CLI (CONTRIBUTING.md): nothing in fanin.report imports fanin.cli."""

import ast
from pathlib import Path

import fanin.report


def test_reports_import_nothing_from_the_cli():
    offending = []
    for path in sorted(Path(fanin.report.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            offending += [
                f"{path.name}:{node.lineno}: {n}" for n in names if n == "fanin.cli" or n.startswith("fanin.cli.")
            ]
    assert offending == []
