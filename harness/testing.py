"""What graded tests import: the ``@check`` decorator, comparisons, and the metric-task runner.

    from harness.testing import check, assert_close

    @check("conv2d_matches_torch")
    def test_conv2d_matches_torch(impl, spec_check): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from harness.autograd import gradcheck_or_fail, gradients
from harness.compare import as_numpy, assert_close
from harness.latency import run_latency_task
from harness.outcomes import CheckFailure, ForbiddenCall, InterfaceError
from harness.tasks import TaskResult, assert_reaches_threshold, run_metric_task

__all__ = ["check", "assert_close", "as_numpy", "CheckFailure", "ForbiddenCall", "run_metric_task", "assert_reaches_threshold", "TaskResult", "CHECK_MARKER", "gradients", "gradcheck_or_fail", "run_latency_task", "assert_raises"]

CHECK_MARKER = "visionbench_check"
F = TypeVar("F", bound=Callable[..., object])


def check(check_id: str) -> Callable[[F], F]:
    """Tie a test to the spec check ``check_id`` of its topic (points, tolerances, thresholds come from there)."""
    return getattr(pytest.mark, CHECK_MARKER)(check_id)


def assert_raises(expected: type[BaseException], call: Callable[[], object], what: str) -> None:
    """Fail unless ``call()`` raises ``expected`` (an input check's clear error), saying what it did instead.

    The implementation's ``NotImplementedError`` (todo), forbidden calls and interface errors pass through, so they
    get their own verdicts rather than "wrong exception".
    """
    try:
        call()
    except expected:
        return
    except (NotImplementedError, ForbiddenCall, InterfaceError):
        raise
    except Exception as error:
        raise CheckFailure(f"{what}: expected {expected.__name__}, got {type(error).__name__}: {error}") from error
    raise CheckFailure(f"{what}: expected {expected.__name__}, but nothing was raised")
