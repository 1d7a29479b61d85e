"""Latency: how long a task's predict entry point takes for one image, and how much memory it needs.

:func:`measure_latency` times several contenders side by side: each iteration calls every contender once, in an
order that rotates, so a burst of load on a shared machine slows them all alike and their ratio stays meaningful
where the absolute numbers do not. :func:`run_latency_task` is what latency checks call: the graded
implementation's ``predict`` at batch 1 on the hidden split, after warm-up, with the reference timed in the same run.

Peak memory is measured on separate, untimed calls (page faults would slow the timed ones): the allocator's free
memory is handed back to the system first (glibc ``malloc_trim``), then the peak is the resident set's high-water
mark during the call minus the resident set just before it (``/proc/self/status`` VmHWM, reset through
``/proc/self/clear_refs``). So it counts the memory the call itself touches, whatever the process held already, and
whichever contender ran first. Where procfs or glibc is missing it is ``None``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.machine import speed_factor
from harness.spec import Check, TopicSpec
from harness.spec.outcomes import CheckFailure
from harness.topic import measurements
from harness.topic.tasks import hidden_split, resolve_inputs, single_threaded, to_model_inputs, train_and_predict

__all__ = ["WARMUP", "ITERATIONS", "LatencyStats", "measure_latency", "peak_memory_supported", "run_latency_task", "LatencyResult"]

WARMUP = 5  # calls per contender before timing starts (allocator, caches, lazy initialisation)
ITERATIONS = 50  # timed calls per contender
MEMORY_CALLS = 3  # untimed calls per contender that measure peak memory

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock times of repeated calls, in milliseconds, and the largest memory one call needed."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    iterations: int
    peak_mb: float | None  # None where the platform cannot measure it

    @classmethod
    def from_samples(cls, seconds: list[float], peak_bytes: int | None) -> LatencyStats:
        """Percentiles (numpy's linear interpolation) of per-call times in seconds."""
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        peak_mb = None if peak_bytes is None else peak_bytes / 2**20
        return cls(float(p50), float(p95), float(p99), float(ms.mean()), len(ms), peak_mb)


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


@cache
def peak_memory_supported() -> bool:
    """Whether this process can free its allocator's unused memory and reset and read its resident-set high-water
    mark (Linux procfs and glibc)."""
    if _libc() is None:
        return False
    try:
        _reset_peak()
        return _read_status_kb("VmHWM:") is not None
    except OSError:
        return False


def _peak_bytes(call: Callable[[], object], pid: int | None = None) -> int:
    """Resident memory the call touches beyond what the process holds once its allocator's free memory is returned
    (``pid``: the process the call runs in, a sealed worker; its allocator is not trimmed first)."""
    if pid is None:
        gc.collect()
        _libc().malloc_trim(0)  # type: ignore[union-attr]  # checked by peak_memory_supported
    _reset_peak(pid)
    before = _read_status_kb("VmRSS:", pid) or 0
    call()
    return max(0, ((_read_status_kb("VmHWM:", pid) or 0) - before) * 1024)


def _reset_peak(pid: int | None = None) -> None:
    path = _CLEAR_REFS if pid is None else Path(f"/proc/{pid}/clear_refs")
    path.write_text("5")  # "5" resets the peak resident set size (VmHWM) to the current one


def _read_status_kb(field: str, pid: int | None = None) -> int | None:
    for line in (_STATUS if pid is None else Path(f"/proc/{pid}/status")).read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return None


def measure_latency(
    contenders: Mapping[str, Callable[[int], object]],
    *,
    warmup: int = WARMUP,
    iterations: int = ITERATIONS,
    processes: Mapping[str, int | None] | None = None,
) -> dict[str, LatencyStats]:
    """Time contenders side by side.

    Args:
        contenders: name -> ``call(i)``, which runs iteration ``i`` (e.g. on the ``i``-th input: every contender gets
            the same ``i``, so they work on the same inputs).
        warmup: untimed calls per contender first (``i`` = 0, 1, ...).
        iterations: timed calls per contender; iteration ``i`` calls each contender once, starting with contender
            ``i mod len(contenders)``, so none is always first. Then :data:`MEMORY_CALLS` untimed calls each measure
            peak memory (see the module docstring).
        processes: name -> the pid a contender's calls run in (a sealed worker), for its peak memory; default this one.

    Returns:
        name -> its :class:`LatencyStats`. Garbage collection is off while timing (as in :mod:`timeit`).

    Raises:
        ValueError: no contenders, or fewer than one iteration.
    """
    if not contenders or iterations < 1 or warmup < 0:
        raise ValueError(f"need contenders, iterations >= 1 and warmup >= 0; got {len(contenders)}, {iterations}, {warmup}")
    names = list(contenders)
    for i in range(warmup):
        for name in names:
            contenders[name](i)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(iterations):
            for k in range(len(names)):
                name = names[(i + k) % len(names)]
                start = time.perf_counter()
                contenders[name](i)
                seconds[name].append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    peaks: dict[str, int | None] = dict.fromkeys(names)
    if peak_memory_supported():
        pids = processes or {}
        peaks = {name: max(_peak_bytes(functools.partial(contenders[name], i), pids.get(name)) for i in range(MEMORY_CALLS)) for name in names}
    return {name: LatencyStats.from_samples(seconds[name], peaks[name]) for name in names}


@dataclass(frozen=True)
class LatencyResult:
    """What a latency check measured: the graded implementation, and the reference beside it (None when the
    graded implementation is the reference)."""

    graded: LatencyStats
    reference: LatencyStats | None

    @property
    def p50_ratio(self) -> float | None:
        """Graded p50 over reference p50, measured in the same run."""
        return None if self.reference is None else self.graded.p50_ms / self.reference.p50_ms


@cache
def _reference_module(topic: str) -> Any:
    """The reference, run as the graded implementation is: in a worker of its own under sealed grading, so that
    both pay the same for crossing to it."""
    from harness.sealed import client
    from harness.spec import load_specs

    if client.ZYGOTE is not None:
        return client.SealedModule(client.ZYGOTE, load_specs()[topic], b"R")
    from harness.topic.guard import GradedModule
    from harness.topic.loader import load_topic, resolve_implementation

    return GradedModule(load_topic(resolve_implementation("reference"), topic), load_specs()[topic])


def run_latency_task(impl: Any, spec: TopicSpec, check_id: str, *, seed: int = 0, reference: Any | None = None) -> LatencyResult:
    """Time the task's predict entry point at batch 1 on hidden images, against the check's budget.

    The graded model is the one the task's metric checks train (the same cache, so it trains once); the reference
    is trained too, unless it is what is graded, and timed in the same loop. Every measured number is recorded with
    the verdict (``p50_ms``, ``p95_ms``, ``peak_mb``, ``reference_p50_ms``, ``p50_ratio``, ...).

    Args:
        impl: the graded topic module (the ``impl`` fixture).
        spec: the topic spec; ``spec.checks[check_id]`` is a latency check naming the task and its budget.
        seed: the task seed (as for the metric checks).
        reference: the module timed beside it; default the project's reference of the topic.

    Raises:
        CheckTimeout: the graded implementation's training overran its budget.
        CheckFailure: a percentile or the peak memory is over the budget, or predict returned nothing usable.
    """
    check = spec.checks[check_id]
    if check.task is None or check.budget is None:
        raise ValueError(f"{spec.id}.{check_id} is not a latency check")
    task = spec.tasks[check.task]
    items = to_model_inputs(hidden_split(task.dataset), task.predict_fields)
    contenders = {"graded": _predict_one(impl, spec, check, seed, items, enforce_budget=True)}
    reference = _reference_module(spec.id) if reference is None else reference
    if not _same_implementation(reference, impl):
        contenders["reference"] = _predict_one(reference, spec, check, seed, items, enforce_budget=False)
    processes = {"graded": getattr(impl, "worker_pid", None), "reference": getattr(reference, "worker_pid", None)}
    with torch.inference_mode(), single_threaded():  # as the task's predictions are made
        stats = measure_latency(contenders, processes=processes)
    result = LatencyResult(stats["graded"], stats.get("reference"))
    measurements.record(**_numbers(result, check))
    _assert_within_budget(result, check, f"{spec.id}.{task.predict}")
    return result


def _same_implementation(a: Any, b: Any) -> bool:
    """Whether two topic modules (in-process or sealed) are one implementation (the reference graded is not timed
    beside itself)."""
    if getattr(a, "module", a) is getattr(b, "module", b):
        return True
    source_a, source_b = getattr(a, "source", None), getattr(b, "source", None)
    return source_a is not None and source_a == source_b


def _predict_one(module: Any, spec: TopicSpec, check: Check, seed: int, items: dict[str, Any], *, enforce_budget: bool) -> Callable[[int], object]:
    """``call(i)``: predict on hidden item ``i mod N`` alone (each of the task's ``predict_fields`` cut to ``[i:i+1]``),
    with the model the task trained; a task without fields (generation) predicts from its ``predict_inputs`` alone."""
    assert check.task is not None and check.budget is not None
    task = spec.tasks[check.task]
    trained = train_and_predict(module, spec, check.task, seed=seed, budget_s=check.budget.train_s, enforce_budget=enforce_budget)
    predict = getattr(module, task.predict)
    harness_inputs = resolve_inputs(task.inputs()[1], {})  # the task's predict_inputs, resolved once, outside the timing
    count = min((len(value) for value in items.values()), default=1)

    def call(i: int) -> object:
        index = i % count
        return predict(trained.model, {**{name: value[index : index + 1] for name, value in items.items()}, **harness_inputs})

    return call


def _numbers(result: LatencyResult, check: Check) -> dict[str, Any]:
    numbers: dict[str, Any] = {key: _rounded(value) for key, value in asdict(result.graded).items()}
    if result.reference is not None:
        numbers.update({f"reference_{key}": _rounded(value) for key, value in asdict(result.reference).items() if key != "iterations"})
        numbers["p50_ratio"] = _rounded(result.p50_ratio)
    assert check.budget is not None
    numbers["profile"] = check.budget.profile
    numbers["speed_factor"] = speed_factor()
    return numbers


def _rounded(value: float | int | None) -> float | int | None:
    return round(value, 4) if isinstance(value, float) else value


def _assert_within_budget(result: LatencyResult, check: Check, what: str) -> None:
    budget = check.budget
    assert budget is not None
    graded = result.graded
    over = []
    speed = speed_factor()  # times scale with the machine's speed; memory does not
    for name, limit, value in (("p50", budget.p50_ms, graded.p50_ms), ("p95", budget.p95_ms, graded.p95_ms)):
        if limit is not None and value > limit * speed:
            over.append(f"{name} {value:.2f} ms > {limit * speed:.3g} ms ({limit:g} ms x speed factor {speed:g})")
    if budget.peak_mb is not None:
        if graded.peak_mb is None:
            raise RuntimeError("the budget limits peak memory, which this platform cannot measure (it needs Linux procfs)")
        if graded.peak_mb > budget.peak_mb:
            over.append(f"peak memory {graded.peak_mb:.1f} MB > {budget.peak_mb:g} MB")
    if not over:
        return
    beside = f"; the reference, timed in the same run: p50 {result.reference.p50_ms:.2f} ms (ratio {result.p50_ratio:.2f})" if result.reference else ""
    raise CheckFailure(
        f"{what} at batch 1 on {budget.profile}: {', '.join(over)} (p50 {graded.p50_ms:.2f} ms, p95 {graded.p95_ms:.2f} ms "
        f"over {graded.iterations} calls){beside}",
        _numbers(result, check),
    )
