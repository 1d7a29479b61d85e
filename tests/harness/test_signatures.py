"""Spec signatures are parsed and compared by names, kinds and defaults, not annotations."""

from __future__ import annotations

import pytest

from harness.spec.signatures import parse_signature, signature_mismatch


def f(x: int, weight: float, bias: float | None = None, *, stride: int = 1) -> None: ...


class Model:
    def __init__(self, num_classes: int = 10) -> None: ...


@pytest.mark.parametrize(
    ("obj", "signature", "ok"),
    [
        (f, "(x, weight, bias=None, *, stride=1)", True),
        (f, "(x, weight, bias=None, stride=1)", False),  # stride must be keyword-only
        (f, "(x, weight, bias=0, *, stride=1)", False),  # other default
        (f, "(x, w, bias=None, *, stride=1)", False),  # other name
        (Model, "(num_classes=10)", True),  # a class: its constructor without self
        (Model, "(num_classes=100)", False),
    ],
    ids=["same", "kind", "default", "name", "class", "class-default"],
)
def test_signature_mismatch(obj, signature, ok):
    mismatch = signature_mismatch(obj, signature)
    assert (mismatch is None) is ok, mismatch


def test_mismatch_message_shows_both():
    message = signature_mismatch(f, "(x)")
    assert message == "has signature (x, weight, bias=None, *, stride=1), the spec requires (x)"


def test_parse_rejects_non_literal_defaults():
    with pytest.raises(ValueError, match="not a literal"):
        parse_signature("(x, mean=MEAN)")
    with pytest.raises(ValueError, match="not a Python parameter list"):
        parse_signature("x, y")
