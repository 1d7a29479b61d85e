"""Canary submissions: the reference with one function replaced by a wrong one, graded for real.

Each canary is written to a fresh submission directory as the reference module's source followed by the
canary's overrides (which may refer to the reference's own definitions by name), then graded through
:func:`harness.grader.run.run_topic`, the same path ``visionbench grade`` takes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from harness.conventions import REFERENCE_DIR
from harness.grader.run import run_topic
from harness.spec.scoring import score_items
from harness.topic.loader import resolve_implementation

__all__ = ["grade_canary", "REPLACE", "expect"]

# Starts the overrides of a boundary canary: ``_replace(names, transform)`` makes each named interface return
# ``transform(reference result, *arguments)``, the arguments in signature order however they were passed. The
# reference's functions keep calling each other untransformed (copies of them run on a snapshot of the module's
# namespace), so a boundary canary changes what the tests see and nothing inside the reference.
REPLACE = """
import functools as _functools
import inspect as _inspect
import types as _types

_reference = dict(globals())
for _name, _value in list(_reference.items()):
    if isinstance(_value, _types.FunctionType) and _value.__module__ == __name__:
        _copy = _types.FunctionType(_value.__code__, _reference, _name, _value.__defaults__, _value.__closure__)
        _copy.__kwdefaults__ = _value.__kwdefaults__
        _reference[_name] = _copy


def _wrapped(original, transform):
    @_functools.wraps(original)  # keeps the signature the spec checks
    def wrapper(*args, **kwargs):
        arguments = _inspect.signature(original).bind(*args, **kwargs).arguments.values()
        return transform(original(*args, **kwargs), *arguments)

    return wrapper


def _replace(names, transform):
    for name in names:
        globals()[name] = _wrapped(_reference[name], transform)
"""


def expect(default: str, checks: list[str], **exceptions: str) -> dict[str, str]:
    """Outcome ``default`` for every check in ``checks`` except those named in ``exceptions``."""
    unknown = set(exceptions) - set(checks)
    if unknown:
        raise ValueError(f"exceptions for checks not graded: {sorted(unknown)}")
    return {check_id: exceptions.get(check_id, default) for check_id in checks}


def grade_canary(tmp_path: Path, topic: str, overrides: str, checks: list[str]) -> dict[str, str]:
    """Grade ``checks`` of ``topic`` for the reference with ``overrides`` appended; returns check id -> outcome."""
    submission = tmp_path / "submission"
    submission.mkdir()
    source = (REFERENCE_DIR / f"{topic}.py").read_text()
    (submission / f"{topic}.py").write_text(f"{source}\n\n# --- canary overrides ---\n{textwrap.dedent(overrides)}\n")
    run = run_topic(resolve_implementation(submission), topic, tier="full", checks=checks)
    scores = score_items(run.items, expected={topic: run.expected}, missing={topic: run.problem} if run.problem else None)
    return {result.check: result.outcome for topic_score in scores.topics for result in topic_score.checks}
