"""Canary submissions: the reference with one function replaced by a wrong one, graded for real.

Each canary is written to a fresh submission directory as the reference module's source followed by the
canary's overrides (which may refer to the reference's own definitions by name), then graded through
:func:`harness.grader.run.run_topic`, the same path ``visionbench grade`` takes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from harness.conventions import MIN_LEARNER_BUGS, REFERENCE_DIR
from harness.grader.run import run_topic
from harness.spec import load_specs
from harness.spec.scoring import score_items
from harness.topic.loader import resolve_implementation

__all__ = ["grade_canary", "REPLACE", "expect", "LearnerBug", "BUG_KINDS", "assert_loses", "MIN_LEARNER_BUGS"]

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


# The classes of learner bugs a catalogue draws from (docs/writing-a-topic.md, "Learner bugs").
BUG_KINDS = {
    "rounding": "uint8 truncated instead of rounded, ties rounded the wrong way",
    "domain": "an input the spec allows handled wrong (another dim or axis, non-square, out-of-range, 2-D, several images)",
    "default": "an argument's non-default value ignored or mishandled",
    "dtype": "the output in another dtype than the spec states, or a computation in too low a precision",
    "tie": "ties and exact thresholds resolved the wrong way",
    "value": "the right shape and sign but the wrong values (wrong formula, layer, order)",
    "distribution": "a random operation with the wrong distribution, or a side effect missed or overdone",
    "mutation": "an argument changed in place",
    "error": "an error the spec promises not raised, or a valid input rejected",
    "layout": "a non-contiguous tensor mishandled",
    "lesson": "the curriculum's own demo code's mistake (TOPICS.md)",
}

LOSING = frozenset({"failed", "error", "forbidden", "timeout"})


@dataclass(frozen=True)
class LearnerBug:
    """A plausible learner's mistake in one interface, and the checks it must lose.

    ``overrides`` is appended to the reference module (it may name the reference's definitions, e.g. subclass a
    class or call the reference function it replaces); ``loses`` maps each check the bug must lose to the outcome
    it gets ("failed", "error", "forbidden"); ``keeps`` names checks it still passes, documenting what those checks
    cannot see. ``kind`` says which class of mistake it is (see docs/writing-a-topic.md, "Learner bugs").
    """

    name: str
    kind: str
    overrides: str
    loses: dict[str, str]
    keeps: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in BUG_KINDS:
            raise ValueError(f"learner bug {self.name!r}: kind {self.kind!r} is not one of {sorted(BUG_KINDS)}")
        if not self.loses:
            raise ValueError(f"learner bug {self.name!r} must name at least one check it loses")
        wrong = {check: outcome for check, outcome in self.loses.items() if outcome not in LOSING}
        if wrong:
            raise ValueError(f"learner bug {self.name!r}: a lost check's outcome is one of {sorted(LOSING)}, got {wrong}")

    def __str__(self) -> str:  # the pytest id
        return self.name


def assert_loses(tmp_path: Path, topic: str, bug: LearnerBug) -> None:
    """Grade ``bug`` on the checks it names and assert each gets its stated outcome."""
    checks = list(bug.loses) + list(bug.keeps)
    unknown = sorted(set(checks) - set(load_specs()[topic].checks))
    assert not unknown, f"learner bug {bug.name!r} names checks topic {topic!r} does not have: {unknown}"
    expected = {**bug.loses, **dict.fromkeys(bug.keeps, "passed")}
    outcomes = grade_canary(tmp_path, topic, bug.overrides, checks)
    assert outcomes == expected, f"learner bug {bug.name!r} ({bug.kind}): expected {expected}, got {outcomes}"
