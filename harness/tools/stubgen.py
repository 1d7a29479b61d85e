"""Student stubs, generated from the reference so the two never drift apart.

``stub_source(topic)`` is the reference module with
- every interface function's body replaced by its docstring and
  ``raise NotImplementedError("<topic>.<name>: see specs/NN_<topic>.yaml")``;
- every interface class kept with its docstring and class attributes, each method treated like a function;
- other functions and classes (private helpers, training internals) left out: they are the solution;
- the module docstring, imports, ``__all__`` and module constants kept as they are.

``visionbench stub TOPIC`` writes it; ``visionbench spec check`` fails when ``student/`` is out of date.
"""

from __future__ import annotations

import ast
import re

from harness.conventions import REFERENCE_DIR
from harness.spec import TopicSpec, spec_path

__all__ = ["stub_source"]

_HEADER = "# Generated from reference/{topic}.py by `visionbench stub {topic}`: fill in the bodies, keep the signatures.\n"


def _body_after_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.stmt]:
    body = node.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
    return body[1:] if has_docstring else body


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _stub_body(node: ast.FunctionDef | ast.AsyncFunctionDef, message: str) -> list[tuple[int, int, str]]:
    """An edit replacing the function's code (not its docstring) by the raise."""
    rest = _body_after_docstring(node)
    indent = " " * node.body[0].col_offset
    raise_line = f'{indent}raise NotImplementedError("{message}")\n'
    if not rest:  # docstring only: add the raise after it
        return [(node.body[0].end_lineno + 1, node.body[0].end_lineno, raise_line)]  # type: ignore[operator]
    return [(_first_line(rest[0]), node.end_lineno, raise_line)]  # type: ignore[list-item]


def stub_source(spec: TopicSpec) -> str:
    """The student stub for a topic, as Python source (comments and formatting of what is kept preserved)."""
    source = (REFERENCE_DIR / f"{spec.id}.py").read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    message = f"{{name}}: see specs/{spec_path(spec.id).name}"
    edits: list[tuple[int, int, str]] = []  # (first line, last line, replacement), 1-based inclusive
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if node.name not in spec.interfaces:
            edits.append((_first_line(node), node.end_lineno, ""))  # type: ignore[arg-type]
            continue
        text = message.format(name=f"{spec.id}.{node.name}")
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    edits += _stub_body(member, text)
        else:
            edits += _stub_body(node, text)
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first - 1 : last] = [replacement] if replacement else []
    return _HEADER.format(topic=spec.id) + _collapse_blank_lines("".join(lines))


def _collapse_blank_lines(source: str) -> str:
    """At most two blank lines in a row, none at the end (removed definitions leave gaps)."""
    return re.sub(r"\n{4,}", "\n\n\n", source).rstrip("\n") + "\n"
