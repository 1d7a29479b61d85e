"""Canary submissions: the reference with one function replaced by a wrong one, graded for real.

Each canary is written to a fresh submission directory as the reference module's source followed by the
canary's overrides (which may refer to the reference's own definitions by name), then graded through
:func:`harness.grader.run.run_topic`, the same path ``visionbench grade`` takes.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.conventions import MIN_LEARNER_BUGS, REFERENCE_DIR
from harness.grader.run import run_topic
from harness.spec import load_specs
from harness.spec.scoring import score_items
from harness.tools.mutate import reachable, references
from harness.topic.loader import resolve_implementation

__all__ = ["grade_canary", "REPLACE", "expect", "LearnerBug", "BUG_KINDS", "recompiled", "assert_loses", "plan_batches", "learner_bug_test", "MIN_LEARNER_BUGS"]

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


def recompiled(topic: str, function: str, old: str, new: str) -> str:
    """Overrides that redefine the reference's top-level ``function`` with every ``old`` replaced by ``new`` in its
    source (a bug inside a long function, without copying all of it into the canary); fails when ``old`` is not there."""
    source = (REFERENCE_DIR / f"{topic}.py").read_text()
    node = next(
        (n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == function), None
    )
    if node is None:
        raise ValueError(f"reference/{topic}.py has no top-level {function}")
    lines = source.splitlines(keepends=True)
    first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    definition = "".join(lines[first - 1 : node.end_lineno])
    if old not in definition:
        raise ValueError(f"canary out of date: reference/{topic}.py's {function} has no {old!r}")
    return definition.replace(old, new)


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


    @property
    def checks(self) -> list[str]:
        """The checks it is graded on: those it loses, then those it keeps."""
        return list(self.loses) + list(self.keeps)

    @property
    def expected(self) -> dict[str, str]:
        return {**self.loses, **dict.fromkeys(self.keeps, "passed")}


# --- grading a catalogue, several bugs per topic process --------------------------------------------------------------
# A topic process costs about two seconds before it grades anything, so bugs that cannot affect each other's checks
# share one: each bug defines some top-level names, each check can reach the names its `uses` refer to (directly or
# through other definitions, in the reference and in the bugs' code), and two bugs share a submission only when no
# check of either can reach a name the other defines. A verdict is then caused by the one bug whose code it reaches.


def _dynamic(bug: LearnerBug) -> bool:
    """Whether the bug rebinds interfaces at run time (the REPLACE prelude): it gets a topic process of its own."""
    return any(marker in bug.overrides for marker in ("_replace(", "globals()", "exec(", "setattr("))


def plan_batches(topic: str, bugs: list[LearnerBug]) -> list[list[LearnerBug]]:
    """Groups of bugs that can be graded in one submission without a verdict of one caused by another."""
    spec = load_specs()[topic]
    graph = references((REFERENCE_DIR / f"{topic}.py").read_text())
    defined = {}
    for bug in bugs:
        own = references(textwrap.dedent(bug.overrides))
        defined[bug.name] = set(own)
        for name, used in own.items():
            graph.setdefault(name, set()).update(used)
    reached = {bug.name: reachable(graph, [name for check in bug.checks for name in spec.checks[check].uses]) for bug in bugs}
    batches: list[list[LearnerBug]] = []
    for bug in bugs:
        home = None
        if not _dynamic(bug):
            home = next(
                (
                    batch
                    for batch in batches
                    if not _dynamic(batch[0])
                    and all(
                        not (defined[bug.name] & defined[other.name])
                        and not (reached[bug.name] & defined[other.name])
                        and not (reached[other.name] & defined[bug.name])
                        for other in batch
                    )
                ),
                None,
            )
        if home is None:
            batches.append([bug])
        else:
            home.append(bug)
    return batches


_GRADED: dict[tuple[str, str], dict[str, str]] = {}  # (topic, bug name) -> outcomes of its batch, graded once


def assert_loses(tmp_path: Path, topic: str, bug: LearnerBug, catalogue: list[LearnerBug] | None = None) -> None:
    """Grade ``bug`` on the checks it names and assert each gets its stated outcome.

    With its ``catalogue``, the bug is graded together with the bugs of its batch (:func:`plan_batches`) the first
    time one of them is asked for; the outcomes of the batch are kept for the others.
    """
    unknown = sorted(set(bug.checks) - set(load_specs()[topic].checks))
    assert not unknown, f"learner bug {bug.name!r} names checks topic {topic!r} does not have: {unknown}"
    if (topic, bug.name) not in _GRADED:
        batch = next(b for b in plan_batches(topic, catalogue or [bug]) if bug in b)
        overrides = "\n\n".join(f"# --- learner bug: {member.name} ---\n{textwrap.dedent(member.overrides)}" for member in batch)
        checks = list(dict.fromkeys(check for member in batch for check in member.checks))
        outcomes = grade_canary(tmp_path, topic, overrides, checks)
        for member in batch:
            _GRADED[(topic, member.name)] = outcomes
    outcomes = {check: _GRADED[(topic, bug.name)].get(check) for check in bug.checks}
    assert outcomes == bug.expected, f"learner bug {bug.name!r} ({bug.kind}): expected {bug.expected}, got {outcomes}"


def learner_bug_test(topic: str, catalogue: list[LearnerBug]) -> Any:
    """The test of a catalogue: one item per bug, the topic's bugs in one xdist group so that batches are shared."""
    names = [bug.name for bug in catalogue]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"learner bug names must be unique in a catalogue; repeated: {repeated}")

    @pytest.mark.xdist_group(f"learner-bugs-{topic}")
    @pytest.mark.parametrize("bug", catalogue, ids=str)
    def test_learner_bug_loses_its_checks(tmp_path: Path, bug: LearnerBug) -> None:
        assert_loses(tmp_path, topic, bug, catalogue)

    return test_learner_bug_loses_its_checks
