"""The harness's folders are its stages, and imports between them go one way.

conventions → spec (1) → topic process (2-4) | grading process (5-6); the grading process never imports the topic
process's code (which imports submission code), and no stage imports a later one or the tools.
"""

import ast
from pathlib import Path

import pytest

from harness.conventions import ROOT

HARNESS = ROOT / "harness"

# module prefix -> harness modules it may not import (directly, at any level of the file)
FORBIDDEN = {
    "harness.conventions": ["harness."],
    "harness.machine": ["harness."],
    "harness.jsonfiles": ["harness."],
    "harness.spec": ["harness.topic", "harness.grader", "harness.tools", "harness.cli", "harness.testing", "harness.training", "harness.metrics"],
    "harness.topic": ["harness.grader", "harness.tools", "harness.cli"],
    "harness.grader": ["harness.topic", "harness.tools", "harness.cli", "harness.testing", "harness.training"],
    "harness.training": ["harness."],
    "harness.testing": ["harness.grader", "harness.tools", "harness.cli"],
    "harness.metrics": ["harness.grader", "harness.tools", "harness.cli", "harness.testing", "harness.training"],
    "harness.datasets": ["harness.topic", "harness.grader", "harness.tools", "harness.cli", "harness.testing", "harness.training", "harness.metrics"],
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names if node.module == "harness"]
    return found


MODULES = sorted(p for p in HARNESS.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_imports_go_one_way(path):
    name = _module_name(path)
    rules = [banned for prefix, banned in FORBIDDEN.items() if name == prefix or name.startswith(prefix + ".")]
    wrong = [
        f"line {line}: {module}"
        for line, module in _imports(path)
        for banned in (b for rule in rules for b in rule)
        if (module + ".").startswith(banned if banned.endswith(".") else banned + ".") and not module.startswith(name)
    ]
    assert not wrong, f"{name} imports from a later stage: {wrong}"
