"""Student stubs are the reference with the bodies removed, and stay in sync with it."""

from __future__ import annotations

import ast

import pytest
import torch

from harness.spec import load_specs
from harness.spec.signatures import signature_of
from harness.tools.stubgen import stub_source
from harness.topic.loader import load_topic, resolve_implementation

SPECS = load_specs()


@pytest.mark.parametrize("topic", list(SPECS), ids=list(SPECS))
def test_stub_keeps_signatures_and_docstrings_and_raises_todo(topic, tmp_path):
    spec = SPECS[topic]
    (tmp_path / f"{topic}.py").write_text(stub_source(spec))
    stub = load_topic(resolve_implementation(tmp_path), topic)
    reference = load_topic(resolve_implementation("reference"), topic)
    for name, interface in spec.interfaces.items():
        ours, theirs = getattr(stub, name), getattr(reference, name)
        if interface.signature is None:
            assert _same_value(ours, theirs), f"{name}: a constant is given to students as it is"
            continue
        assert signature_of(ours) == signature_of(theirs), name
        assert ours.__doc__ == theirs.__doc__, f"{name}: docstring differs"
        if not isinstance(ours, type):
            required = [p for p in signature_of(ours) if p.default == "<required>"]
            positional = [None for p in required if p.kind.startswith("positional")]
            keywords = {p.name: None for p in required if p.kind == "keyword-only"}
            with pytest.raises(NotImplementedError, match=rf"^{topic}\.{name}: see specs/{spec.number:02d}_{topic}\.yaml$"):
                ours(*positional, **keywords)


def _same_value(a: object, b: object) -> bool:
    """Equality that also compares tensors and containers of them."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    return a == b


@pytest.mark.parametrize("topic", list(SPECS), ids=list(SPECS))
def test_stub_leaves_out_the_solution(topic):
    tree = ast.parse(stub_source(SPECS[topic]))
    definitions = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert definitions <= set(SPECS[topic].interfaces), f"non-interface definitions kept: {definitions - set(SPECS[topic].interfaces)}"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
            assert len(body) == 1 and isinstance(body[0], ast.Raise), f"{node.name} keeps code besides the raise"
