"""Implementations load under names of their own; broken topics become errors for that topic only."""

from __future__ import annotations

import sys

import pytest

from harness.topic.loader import ImplementationError, load_topic, resolve_implementation


def submission(tmp_path, name, files):
    root = tmp_path / name
    root.mkdir()
    for file, text in files.items():
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_text(text)
    return resolve_implementation(root)


def test_two_implementations_of_one_topic_coexist(tmp_path):
    one = load_topic(submission(tmp_path, "one", {"demo.py": "VALUE = 1\n"}), "demo")
    two = load_topic(submission(tmp_path, "two", {"demo.py": "VALUE = 2\n"}), "demo")
    assert (one.VALUE, two.VALUE) == (1, 2)
    assert one.__name__ != two.__name__ and "demo" not in sys.modules


def test_topic_package_with_relative_imports(tmp_path):
    impl = submission(tmp_path, "pkg", {"demo/__init__.py": "from .parts import VALUE\n", "demo/parts.py": "VALUE = 3\n"})
    assert load_topic(impl, "demo").VALUE == 3


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, r"no module demo.py \(or package demo/\)"),
        ({"demo.py": "def f(:\n"}, r"syntax error in .*demo.py, line 1"),
        ({"demo.py": "import numpy\nraise RuntimeError('boom')\n"}, r"importing demo raised RuntimeError: boom \(demo.py, line 2\)"),
        ({"demo.py": "import not_a_module_anywhere\n"}, r"ModuleNotFoundError"),
    ],
    ids=["missing", "syntax-error", "import-crash", "missing-dependency"],
)
def test_broken_topic_raises_implementation_error(tmp_path, files, message):
    impl = submission(tmp_path, "broken", files)
    with pytest.raises(ImplementationError, match=message):
        load_topic(impl, "demo")


def test_builtin_names_and_bad_paths(tmp_path):
    assert resolve_implementation("reference").name == "reference"
    with pytest.raises(ImplementationError, match="neither 'reference', 'student' nor a directory"):
        resolve_implementation(tmp_path / "nowhere")
