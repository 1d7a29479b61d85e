"""Running a metric task: the harness owns the data, the clock, the seed and the metric.

The implementation sees the training split (with labels) and the hidden split's inputs (without them);
what its ``predict`` entry point returns is scored here, by :mod:`harness.metrics`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.datasets import load_split, registry, secret_seed
from harness.metrics import METRICS
from harness.outcomes import CheckFailure, CheckTimeout
from harness.spec import TopicSpec

__all__ = ["TaskResult", "to_model_inputs", "run_metric_task", "BUDGET_GRACE"]

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


def run_metric_task(impl: Any, spec: TopicSpec, check_id: str, *, seed: int = 0) -> TaskResult:
    """Train through the task's entry point on the training split, predict the hidden split, score it.

    Args:
        impl: the graded topic module (the ``impl`` fixture).
        spec: the topic spec; ``spec.checks[check_id]`` names the task, metric and budget.
        seed: the task seed, moved by ``VISIONBENCH_SECRET_SEED`` like the data.

    Raises:
        CheckTimeout: training overran the budget.
        CheckFailure: the predictions are malformed.
    """
    check = spec.checks[check_id]
    assert check.task is not None and check.metric is not None and check.budget is not None
    task = spec.tasks[check.task]
    dataset = registry()[task.dataset]
    (hidden_split,) = dataset.hidden
    run_seed = seed + secret_seed()
    budget_s = check.budget.train_s
    train = to_model_inputs(load_split(task.dataset, "train"), with_labels=True)

    start = time.perf_counter()
    model = getattr(impl, task.train)(train, seed=run_seed, budget_s=budget_s)
    train_s = time.perf_counter() - start
    if budget_s is not None and train_s > budget_s * BUDGET_GRACE:
        raise CheckTimeout(f"{spec.id}.{task.train} trained for {train_s:.1f} s; the budget is {budget_s:g} s")

    hidden = load_split(task.dataset, hidden_split)
    start = time.perf_counter()
    with torch.inference_mode():
        outputs = getattr(impl, task.predict)(model, to_model_inputs(hidden, with_labels=False))
    predict_s = time.perf_counter() - start
    value = METRICS[check.metric](outputs, hidden)
    if not np.isfinite(value):
        raise CheckFailure(f"{check.metric} is {value}")
    return TaskResult(check.metric, value, train_s, predict_s, run_seed)
