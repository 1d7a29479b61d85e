"""Running a metric task: the harness owns the data, the clock, the seed and the metric.

The implementation sees the training split (with labels) and the hidden split's inputs (without them), plus the
harness inputs the task names (``train_inputs``/``predict_inputs``: e.g. pretrained weights); what its ``predict``
entry point returns is scored here, by :mod:`harness.metrics`. A check with a ``baseline`` runs the task a second
time as that variant (e.g. without the pretrained weights) and scores the difference.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.conventions import BUDGET_GRACE
from harness.datasets import load_split, registry, secret_seed
from harness.machine import speed_factor
from harness.metrics import METRICS
from harness.spec import Check, InputValue, TopicSpec
from harness.spec.outcomes import CheckFailure, CheckTimeout
from harness.topic import measurements

__all__ = [
    "TaskResult", "TrainedTask", "to_model_inputs", "hidden_split", "resolve_inputs", "train_and_predict", "run_metric_task",
    "assert_reaches_threshold", "single_threaded", "scaled_budget",
]  # fmt: skip


@dataclass(frozen=True)
class TaskResult:
    """What one run of a metric task measured."""

    metric: str
    value: float
    train_s: float
    predict_s: float
    seed: int
    details: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None  # the variant compared with; ``value`` is then task_value - baseline_value
    task_value: float | None = None
    baseline_value: float | None = None
    baseline_train_s: float | None = None


def to_model_inputs(arrays: dict[str, np.ndarray], fields: Sequence[str] | None = None) -> dict[str, Any]:
    """A split as implementations receive it: ``images`` channels-first float32 in [0, 1] (``uint8[N, H, W, C]`` ->
    ``[N, C, H, W]``, clips ``uint8[N, T, H, W, C]`` -> ``[N, T, C, H, W]``), other numeric arrays as tensors, string
    arrays (captions) as lists of str.

    Args:
        fields: the split's fields to pass on (a task's ``predict_fields``: never its labels); None for all of them.

    Raises:
        KeyError: a field the split does not have.
    """
    names = list(arrays) if fields is None else list(fields)
    missing = [name for name in names if name not in arrays]
    if missing:
        raise KeyError(f"the split has no field {missing[0]!r} (has: {sorted(arrays)})")

    def convert(name: str) -> Any:
        value = np.array(arrays[name])
        if value.dtype.kind in "US":
            return value.tolist()
        tensor = torch.from_numpy(value)
        if name == "images":
            tensor = tensor.movedim(-1, -3)  # channels last -> first, whatever leads (N or N, T)
            tensor = tensor.float().div(255) if value.dtype == np.uint8 else tensor.float()
        return tensor

    return {name: convert(name) for name in names}


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


def cpu_clock(impl: Any) -> Any:
    """The clock a training budget is counted on: the CPU time of the process the implementation runs in (its sealed
    worker's, read by the grading process from the system; or this process's)."""
    return getattr(impl, "cpu_seconds", None) or time.process_time


def scaled_budget(budget_s: float | None) -> float | None:
    """A spec budget (CPU seconds on its hardware profile) as CPU seconds on this machine: times the speed factor."""
    return None if budget_s is None else budget_s * speed_factor()


def hidden_split(dataset: str) -> dict[str, np.ndarray]:
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


def resolve_inputs(inputs: dict[str, InputValue], split: dict[str, Any]) -> dict[str, Any]:
    """``split`` with a task's harness inputs added: each ``'harness.module:function'`` called (afresh, so what one
    run does to its copy cannot reach the next), each literal as it is.

    Raises:
        ValueError: an input has the name of one of the split's own entries.
    """
    clashes = sorted(set(inputs) & set(split))
    if clashes:
        raise ValueError(f"task inputs {clashes} would replace entries of the split itself; rename them in the spec")
    resolved = dict(split)
    for name, value in inputs.items():
        if isinstance(value, str):
            module, function = value.split(":")
            value = getattr(importlib.import_module(module), function)()
        resolved[name] = value
    return resolved


def _frozen(inputs: dict[str, InputValue]) -> tuple[tuple[str, InputValue], ...]:
    return tuple(sorted(inputs.items()))


# Keys start (id(impl), topic, task, seed, budget, train inputs); holding impl keeps its id from being reused.
_MODELS: dict[tuple[Any, ...], tuple[Any, Any, float]] = {}  # key -> (impl, model, train_s)
_TRAINED: dict[tuple[Any, ...], tuple[Any, TrainedTask]] = {}  # key + (predict inputs,) -> (impl, its trained task)


def train_and_predict(
    impl: Any, spec: TopicSpec, task_id: str, *, seed: int, budget_s: float | None, enforce_budget: bool = True, variant: str | None = None
) -> TrainedTask:
    """Train through the task's entry point on the training split and predict the hidden split's inputs.

    Cached per implementation module, task, seed, budget and inputs within a process, so that the checks of one
    task (mAP and mAP50, accuracy and latency, accuracy and the gain over a baseline, ...) train once per variant,
    and variants that change only ``predict_inputs`` share one training.

    Args:
        enforce_budget: raise when training overran ``budget_s``; off for a reference trained only to be timed
            beside the graded implementation (a slow machine must not fail the graded one's check).
        variant: one of the task's variants (its inputs replace the task's), or None for the task itself.

    Raises:
        CheckTimeout: training overran the budget.
    """
    task = spec.tasks[task_id]
    train_inputs, predict_inputs = task.inputs(variant)
    model_key = (id(impl), spec.id, task_id, seed, budget_s, _frozen(train_inputs))
    key = (*model_key, _frozen(predict_inputs))
    if key in _TRAINED:
        return _TRAINED[key][1]
    run_seed = seed + secret_seed()
    if model_key in _MODELS:
        _, model, train_s = _MODELS[model_key]
    else:
        train = resolve_inputs(train_inputs, to_model_inputs(load_split(task.dataset, "train")))
        allowed = scaled_budget(budget_s)
        clock = cpu_clock(impl)
        start = clock()
        with single_threaded():
            model = getattr(impl, task.train)(train, seed=run_seed, budget_s=allowed)
        train_s = clock() - start
        if enforce_budget and allowed is not None and train_s > allowed * BUDGET_GRACE:
            named = f" ({variant} variant)" if variant else ""
            raise CheckTimeout(
                f"{spec.id}.{task.train}{named} trained for {train_s:.1f} CPU s; the budget is {allowed:.1f} CPU s "
                f"({budget_s:g} s on the spec's profile x speed factor {speed_factor():g})"
            )
        _MODELS[model_key] = (impl, model, train_s)

    inputs = resolve_inputs(predict_inputs, to_model_inputs(hidden_split(task.dataset), task.predict_fields))
    start = time.perf_counter()
    with torch.inference_mode(), single_threaded():
        outputs = getattr(impl, task.predict)(model, inputs)
    predict_s = time.perf_counter() - start
    trained = TrainedTask(model, outputs, train_s, predict_s, run_seed)
    _TRAINED[key] = (impl, trained)
    return trained


def _score(check: Check, trained: TrainedTask, truth: dict[str, np.ndarray], of: str = "") -> float:
    """The check's metric of a run's outputs; ``of`` says which run in the message."""
    assert check.metric is not None
    value = METRICS[check.metric](trained.outputs, truth)
    if not np.isfinite(value):
        raise CheckFailure(f"{check.metric}{of} is {value}")
    return value


def run_metric_task(impl: Any, spec: TopicSpec, check_id: str, *, seed: int = 0) -> TaskResult:
    """Train (once per task and seed), predict the hidden split, and score the predictions with the check's metric.

    A check with a ``baseline`` also runs that variant of the task (trained once too) and its value is the
    difference: the task's metric minus the variant's.

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
    truth = hidden_split(spec.tasks[check.task].dataset)
    trained = train_and_predict(impl, spec, check.task, seed=seed, budget_s=check.budget.train_s)
    value = _score(check, trained, truth)
    result = TaskResult(check.metric, value, trained.train_s, trained.predict_s, trained.seed)
    if check.baseline is not None:
        baseline = train_and_predict(impl, spec, check.task, seed=seed, budget_s=check.budget.train_s, variant=check.baseline)
        baseline_value = _score(check, baseline, truth, of=f" of the {check.baseline} variant")
        result = TaskResult(
            check.metric, value - baseline_value, trained.train_s, trained.predict_s, trained.seed,
            baseline=check.baseline, task_value=value, baseline_value=baseline_value, baseline_train_s=baseline.train_s,
        )  # fmt: skip
        measurements.record(baseline=check.baseline, task_value=value, baseline_value=baseline_value, baseline_train_s=round(baseline.train_s, 3))
    measurements.record(
        metric=check.metric, value=result.value, threshold=check.threshold, reference_value=check.reference_value,
        train_s=round(trained.train_s, 3), predict_s=round(trained.predict_s, 3), seed=trained.seed, speed_factor=speed_factor(),
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
    budget = f" of {scaled_budget(check.budget.train_s):.1f}" if check.budget and check.budget.train_s else ""
    numbers = {"value": result.value, "threshold": check.threshold, "reference_value": check.reference_value, "train_s": result.train_s}
    if result.baseline is None:
        measured, trained = f"{result.metric} {result.value:.4f}", f"{result.train_s:.1f}"
    else:
        measured = (
            f"{result.metric} {result.task_value:.4f} minus {result.baseline_value:.4f} for the {result.baseline} variant "
            f"= {result.value:+.4f}"
        )
        trained = f"{result.train_s:.1f} and {result.baseline_train_s:.1f}"
        numbers.update(task_value=result.task_value, baseline_value=result.baseline_value, baseline_train_s=result.baseline_train_s)
    raise CheckFailure(
        f"{measured} {what} is {side} the threshold {check.threshold:g} "
        f"(the reference reached {check.reference_value:g}; trained {trained}{budget} CPU s)",
        numbers,
    )
