"""Numbers a graded test measured (metric values, times), kept with its verdict whether it passed or not.

The plugin clears them before each test and attaches what was recorded to the test's verdict, so result records
and the leaderboard get a passing metric's value too, not only a failing one's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["record", "take"]

_current: dict[str, Any] = {}


def record(**numbers: Any) -> None:
    """Attach numbers to the verdict of the test that is running."""
    _current.update(numbers)


def take() -> dict[str, Any]:
    """The numbers recorded since the last call, which clears them."""
    numbers = dict(_current)
    _current.clear()
    return numbers
