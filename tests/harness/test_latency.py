"""The latency helper: percentiles, side-by-side rotation, peak memory, and the latency check's verdicts."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest
import torch

from harness.spec import Budget, Check, Interface, Task, TopicSpec
from harness.spec.outcomes import CheckFailure
from harness.topic import measurements
from harness.topic.latency import LatencyStats, measure_latency, peak_memory_supported, run_latency_task

SLEEP_S = 0.004


def test_stats_are_numpy_percentiles_in_milliseconds():
    seconds = [0.001 * k for k in range(1, 101)]  # 1 .. 100 ms
    stats = LatencyStats.from_samples(seconds, peak_bytes=3 * 2**20)
    expected = np.percentile(np.arange(1, 101, dtype=np.float64), [50, 95, 99])
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == pytest.approx(tuple(expected))
    assert stats.mean_ms == pytest.approx(50.5) and stats.iterations == 100 and stats.peak_mb == pytest.approx(3.0)
    assert LatencyStats.from_samples([0.001], peak_bytes=None).peak_mb is None


def test_contenders_are_timed_side_by_side_in_rotating_order():
    calls: list[tuple[str, int]] = []
    contenders = {name: (lambda i, name=name: calls.append((name, i))) for name in ("a", "b", "c")}
    stats = measure_latency(contenders, warmup=2, iterations=4)
    assert set(stats) == {"a", "b", "c"} and all(s.iterations == 4 for s in stats.values())
    timed = calls[6:18]  # after 2 warm-up rounds of 3 contenders, before the memory calls
    firsts = [timed[3 * i][0] for i in range(4)]
    assert firsts == ["a", "b", "c", "a"], "iteration i starts with contender i mod 3"
    assert all(index == i for i in range(4) for _, index in timed[3 * i : 3 * i + 3]), "every contender gets the same i in one iteration"


def test_a_slower_contender_measures_slower():
    stats = measure_latency({"sleeps": lambda i: time.sleep(SLEEP_S), "returns": lambda i: None}, warmup=1, iterations=10)
    assert stats["sleeps"].p50_ms >= SLEEP_S * 1e3
    assert stats["returns"].p50_ms < stats["sleeps"].p50_ms / 4


@pytest.mark.skipif(not peak_memory_supported(), reason="peak memory needs Linux procfs and glibc")
def test_peak_memory_counts_what_the_call_allocates():
    megabytes = 64
    stats = measure_latency(
        {"allocates": lambda i: np.ones(megabytes * 2**20 // 8).sum(), "nothing": lambda i: None}, warmup=1, iterations=3
    )
    assert stats["allocates"].peak_mb >= 0.9 * megabytes, stats
    assert stats["nothing"].peak_mb < 8, stats


@pytest.mark.skipif(not peak_memory_supported(), reason="peak memory needs Linux procfs and glibc")
def test_peak_memory_does_not_depend_on_who_ran_first():
    def small_blocks(i: int) -> int:  # heap blocks an allocator keeps for reuse, unlike one large mapping
        return len([np.ones(2048) for _ in range(2048)])  # 2048 x 16 KiB = 32 MiB

    stats = measure_latency({"first": small_blocks, "second": small_blocks}, warmup=1, iterations=2)
    assert min(stats["first"].peak_mb, stats["second"].peak_mb) >= 0.9 * 32, stats


@pytest.mark.parametrize("arguments", [{"contenders": {}}, {"contenders": {"a": lambda i: None}, "iterations": 0}])
def test_nothing_to_time_is_an_error(arguments):
    with pytest.raises(ValueError, match="need contenders"):
        measure_latency(**arguments)


# --- the latency check, on a made-up topic ----------------------------------------------------------------------------


def _spec(**budget: float) -> TopicSpec:
    interfaces = {
        "train": Interface(signature="(train, *, seed, budget_s)", doc="trains"),
        "predict": Interface(signature="(model, inputs)", doc="predicts"),
    }
    check = Check(kind="latency", points=1, description="latency", uses=["predict"], task="fit", budget=Budget(train_s=30, **budget))
    task = Task(train="train", predict="predict", dataset="digits32", outputs="int64[N]")
    return TopicSpec(id="demo", number=1, title="demo", idea="made up", interfaces=interfaces, tasks={"fit": task}, checks={"speed": check})


def _module(sleep_s: float) -> types.SimpleNamespace:
    def train(train, *, seed, budget_s):
        return {"seed": seed}

    def predict(model, inputs):
        if len(inputs["images"]) == 1:  # the timed calls, at batch 1
            time.sleep(sleep_s)
        return torch.zeros(len(inputs["images"]), dtype=torch.int64)

    return types.SimpleNamespace(train=train, predict=predict)


def test_latency_check_times_the_graded_predict_beside_the_reference():
    graded, reference = _module(sleep_s=SLEEP_S), _module(sleep_s=0.0)
    measurements.take()
    result = run_latency_task(graded, _spec(p50_ms=1000), "speed", reference=reference)
    numbers = measurements.take()
    assert result.graded.p50_ms >= SLEEP_S * 1e3 > result.reference.p50_ms
    assert result.p50_ratio == pytest.approx(result.graded.p50_ms / result.reference.p50_ms)
    assert numbers["p50_ms"] == pytest.approx(result.graded.p50_ms, abs=1e-3) and numbers["profile"] == "cpu-2core"
    assert {"p95_ms", "reference_p50_ms", "p50_ratio", "iterations"} <= set(numbers)


def test_latency_check_fails_over_budget_with_the_numbers():
    graded = _module(sleep_s=SLEEP_S)
    with pytest.raises(CheckFailure, match=r"p50 \d+\.\d+ ms > [\d.]+ ms \(1 ms x speed factor [\d.]+\).*the reference, timed in the same run") as failure:
        run_latency_task(graded, _spec(p50_ms=1), "speed", reference=_module(sleep_s=0.0))
    assert failure.value.numbers["p50_ms"] >= SLEEP_S * 1e3


def test_latency_check_of_the_reference_itself_times_it_once():
    module = _module(sleep_s=0.0)
    result = run_latency_task(module, _spec(p95_ms=1000), "speed", reference=module)
    assert result.reference is None and result.p50_ratio is None
