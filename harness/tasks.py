"""Running a metric task: the harness owns the data, the clock, the seed and the metric.

The implementation sees the training split (with labels) and the hidden split's inputs (without them);
what its ``predict`` entry point returns is scored here, by :mod:`harness.metrics`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.datasets import load_split, registry, secret_seed
from harness.metrics import METRICS
from harness.outcomes import CheckFailure, CheckTimeout
from harness import measurements
from harness.spec import Check, TopicSpec

__all__ = ["TaskResult", "TrainedTask", "to_model_inputs", "train_and_predict", "run_metric_task", "assert_reaches_threshold", "single_threaded", "BUDGET_GRACE"]

BUDGET_GRACE = 1.10  # training may overrun its budget by 10% (clock granularity, one last step) before it times out


@dataclass(frozen=True)
class TaskResult:
    """What one run of a metric task measured."""

    metric: str
    value: float
    train_s: float
    predict_s: float
    seed: int
    details: dict[str, Any] = field(default_factory=dict)


def to_model_inputs(arrays: dict[str, np.ndarray], *, with_labels: bool) -> dict[str, Any]:
    """A split as implementations receive it: ``images`` as ``float32[N, C, H, W]`` in [0, 1], numeric arrays as
    tensors, string arrays (captions) as lists of str. Without labels only ``images`` is passed on.
    """
    images = torch.from_numpy(np.array(arrays["images"])).permute(0, 3, 1, 2).float().div(255)
    if not with_labels:
        return {"images": images}

    def convert(value: np.ndarray) -> Any:
        return value.tolist() if value.dtype.kind in "US" else torch.from_numpy(np.array(value))

    return {"images": images, **{key: convert(value) for key, value in arrays.items() if key != "images"}}


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """One intra-op torch thread inside the block, the previous setting restored after it.

    Graded work runs this way: the same summation order (so the same trained weights and metric values) on every
    machine whatever its core count, and no thread oversubscription on a shared machine, which made a training
    step up to 30 times slower on a busy 2-core one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _hidden_split(dataset: str) -> dict[str, np.ndarray]:
    """The arrays of the dataset's one hidden split (cached by the registry)."""
    (hidden,) = registry()[dataset].hidden
    return load_split(dataset, hidden)


@dataclass(frozen=True)
class TrainedTask:
    """A task trained and run once on the hidden split; every metric check of the task scores these outputs."""

    model: Any
    outputs: Any
    train_s: float
    predict_s: float
    seed: int


_TRAINED: dict[tuple[int, str, str, int, float | None], TrainedTask] = {}


def train_and_predict(impl: Any, spec: TopicSpec, task_id: str, *, seed: int, budget_s: float | None) -> TrainedTask:
    """Train through the task's entry point on the training split and predict the hidden split's inputs.

    Cached per implementation module, task, seed and budget within a process, so that the checks of one task
    (mAP and mAP50, accuracy and latency, ...) train once.

    Raises:
        CheckTimeout: training overran the budget.
    """
    key = (id(impl), spec.id, task_id, seed, budget_s)
    if key in _TRAINED:
        return _TRAINED[key]
    task = spec.tasks[task_id]
    run_seed = seed + secret_seed()
    train = to_model_inputs(load_split(task.dataset, "train"), with_labels=True)

    start = time.perf_counter()
    with single_threaded():
        model = getattr(impl, task.train)(train, seed=run_seed, budget_s=budget_s)
    train_s = time.perf_counter() - start
    if budget_s is not None and train_s > budget_s * BUDGET_GRACE:
        raise CheckTimeout(f"{spec.id}.{task.train} trained for {train_s:.1f} s; the budget is {budget_s:g} s")

    inputs = to_model_inputs(_hidden_split(task.dataset), with_labels=False)
    start = time.perf_counter()
    with torch.inference_mode(), single_threaded():
        outputs = getattr(impl, task.predict)(model, inputs)
    predict_s = time.perf_counter() - start
    _TRAINED[key] = TrainedTask(model, outputs, train_s, predict_s, run_seed)
    return _TRAINED[key]


def run_metric_task(impl: Any, spec: TopicSpec, check_id: str, *, seed: int = 0) -> TaskResult:
    """Train (once per task and seed), predict the hidden split, and score the predictions with the check's metric.

    Args:
        impl: the graded topic module (the ``impl`` fixture).
        spec: the topic spec; ``spec.checks[check_id]`` names the task, metric and budget.
        seed: the task seed, moved by ``VISIONBENCH_SECRET_SEED`` like the data.

    Raises:
        CheckTimeout: training overran the budget.
        CheckFailure: the predictions are malformed, or the metric is not finite.
    """
    check = spec.checks[check_id]
    if check.task is None or check.metric is None or check.budget is None:
        raise ValueError(f"{spec.id}.{check_id} is not a metric check")
    trained = train_and_predict(impl, spec, check.task, seed=seed, budget_s=check.budget.train_s)
    value = METRICS[check.metric](trained.outputs, _hidden_split(spec.tasks[check.task].dataset))
    if not np.isfinite(value):
        raise CheckFailure(f"{check.metric} is {value}")
    result = TaskResult(check.metric, value, trained.train_s, trained.predict_s, trained.seed)
    measurements.record(
        metric=check.metric, value=value, threshold=check.threshold, reference_value=check.reference_value,
        train_s=round(trained.train_s, 3), predict_s=round(trained.predict_s, 3), seed=trained.seed,
    )  # fmt: skip
    return result


def assert_reaches_threshold(result: TaskResult, check: Check, what: str) -> None:
    """Fail unless the metric reaches the check's threshold; the message gives value, threshold and reference.

    Args:
        result: from :func:`run_metric_task`.
        check: the metric check (``spec_check``).
        what: where the value was measured, e.g. "on the hidden digits32 test split".

    Raises:
        CheckFailure: the value is on the wrong side of the threshold.
    """
    if check.passes(result.value):
        return
    side = "below" if check.higher_is_better else "above"
    budget = f" of {check.budget.train_s:g} s" if check.budget and check.budget.train_s else ""
    raise CheckFailure(
        f"{result.metric} {result.value:.4f} {what} is {side} the threshold {check.threshold:g} "
        f"(the reference reached {check.reference_value:g}; trained {result.train_s:.1f} s{budget})",
        {"value": result.value, "threshold": check.threshold, "reference_value": check.reference_value, "train_s": result.train_s},
    )
