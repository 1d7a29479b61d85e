"""Check outcomes, and the exceptions that produce the ones other than passed/failed/error."""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["Outcome", "CheckFailure", "ForbiddenCall", "CheckTimeout", "InterfaceError"]


class Outcome(str, Enum):
    """The verdict of one check. Only ``passed`` earns points; ``todo`` is not an error."""

    passed = "passed"
    failed = "failed"  # ran, and the result is wrong (the message gives the numbers)
    todo = "todo"  # the implementation raised NotImplementedError: not started
    error = "error"  # crashed, missing interface, wrong signature, module did not import
    timeout = "timeout"  # over its time budget
    forbidden = "forbidden"  # called a library function the spec forbids for that interface

    @property
    def severity(self) -> int:
        """Order used to combine the items of one check: the worst item decides."""
        return _SEVERITY[self]


# A forbidden call outranks everything: whatever else a case did, it used what the spec rules out.
_SEVERITY = {Outcome.passed: 0, Outcome.todo: 1, Outcome.failed: 2, Outcome.timeout: 3, Outcome.error: 4, Outcome.forbidden: 5}


class CheckFailure(AssertionError):
    """A wrong result, with the numbers behind the verdict (max errors, metric vs threshold, ...)."""

    def __init__(self, message: str, numbers: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.numbers = numbers or {}


class ForbiddenCall(Exception):
    """An interface called a library function its spec forbids."""


class CheckTimeout(BaseException):
    """A check ran past its time limit, or a task past its budget.

    A BaseException, like KeyboardInterrupt, so that neither an implementation's ``except Exception`` nor
    hypothesis (which would re-run a failing example to shrink it) can swallow or prolong it.
    """


class InterfaceError(Exception):
    """An interface the spec requires is missing or has the wrong signature."""
