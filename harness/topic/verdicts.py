"""Turning what a graded test raised into a check outcome and a one-line message."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.spec.outcomes import CheckFailure, CheckTimeout, ForbiddenCall, InterfaceError, Outcome
from harness.topic.loader import Implementation, ImplementationError

__all__ = ["Verdict", "classify"]


@dataclass
class Verdict:
    outcome: Outcome
    message: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _raised_in(impl: Implementation, error: BaseException) -> traceback.FrameSummary | None:
    remote = getattr(error, "remote", None)  # raised in a sealed worker: where it says (it can only lose by lying)
    if remote is not None:
        return traceback.FrameSummary(remote.where or "submission", 0, "") if remote.in_submission else None
    frames = traceback.extract_tb(error.__traceback__)
    return frames[-1] if frames and impl.owns(frames[-1].filename) else None


def _where(impl: Implementation, error: BaseException) -> str:
    remote = getattr(error, "remote", None)
    if remote is not None:
        return f" (in {remote.where})" if remote.where else ""
    frame = _raised_in(impl, error) or next(
        (f for f in reversed(traceback.extract_tb(error.__traceback__)) if impl.owns(f.filename)), None
    )
    return f" (in {frame.name}, {Path(frame.filename).name}:{frame.lineno})" if frame else ""


def classify(error: BaseException | None, impl: Implementation) -> Verdict:
    """The outcome of one test item from the exception it raised (None: it passed).

    NotImplementedError counts as ``todo`` only when the implementation itself raised it (a stub);
    raised from a library it is an ``error`` like any other crash.
    """
    if error is None:
        return Verdict(Outcome.passed)
    if isinstance(error, BaseExceptionGroup):  # several failures (hypothesis): the worst decides
        return max((classify(e, impl) for e in error.exceptions), key=lambda verdict: verdict.outcome.severity)
    if isinstance(error, NotImplementedError):
        frame = _raised_in(impl, error)
        if frame is not None:
            task = _first_line(error).split(":")[0] if ":" in str(error) else frame.name.split(",")[0]
            return Verdict(Outcome.todo, f"todo: {task}")
    if isinstance(error, ForbiddenCall):
        return Verdict(Outcome.forbidden, _first_line(error))
    if isinstance(error, CheckTimeout):
        return Verdict(Outcome.timeout, _first_line(error))
    if isinstance(error, CheckFailure):
        return Verdict(Outcome.failed, _first_line(error), dict(error.numbers))
    if isinstance(error, AssertionError) and _raised_in(impl, error) is None:  # the test's own assertion
        return Verdict(Outcome.failed, _first_line(error))
    if isinstance(error, (InterfaceError, ImplementationError)):
        return Verdict(Outcome.error, _first_line(error))
    where = _where(impl, error)
    text = str(error).strip()  # a bare `assert` has no message: the location says which
    name = getattr(getattr(error, "remote", None), "type_name", "") or type(error).__name__
    return Verdict(Outcome.error, f"{name}{': ' + text.splitlines()[0] if text else ''}{where}")
