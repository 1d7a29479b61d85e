"""Budgets mean work: CPU seconds of the topic process, scaled by the machine's measured speed factor.

A training that waits (sleeps, or is starved by other load) spends no CPU and is within its budget; one that computes
past it is a timeout, with the scaled numbers in the message. The speed factor is measured by a fixed probe, clamped,
fixed by the environment, or turned off.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness import machine
from harness.spec import TopicSpec
from harness.spec.outcomes import CheckTimeout
from harness.topic.tasks import run_metric_task, scaled_budget
from harness.training import EARLY_STOP_FRACTION, BudgetClock, seeded, seeded_generator, split_images, split_labels, warmup_cosine

BUDGET_S = 0.5
SPEC = TopicSpec.model_validate({
    "id": "budget_demo", "number": 98, "title": "t", "idea": "i",
    "interfaces": {"train": {"signature": "(train, *, seed, budget_s)", "doc": "d"}, "predict": {"signature": "(model, inputs)", "doc": "d"}},
    "tasks": {"fit": {"train": "train", "predict": "predict", "dataset": "digits32", "outputs": "int64[N]"}},
    "checks": {"fit_accuracy": {"kind": "metric", "points": 1, "description": "d", "uses": ["train", "predict"], "task": "fit",
                                "metric": "accuracy", "threshold": 0.0, "reference_value": 0.1, "calibration": "made up",
                                "budget": {"train_s": BUDGET_S}}},
})  # fmt: skip


@pytest.fixture(autouse=True)
def speed(monkeypatch):
    """A fixed speed factor of 2 for these tests (the measured one is cached per process)."""
    machine.speed_factor.cache_clear()
    monkeypatch.setenv(machine.SPEED_ENV, "2")
    yield 2.0
    machine.speed_factor.cache_clear()


def _implementation(work) -> SimpleNamespace:
    received = {}

    def train(train, *, seed, budget_s):
        received["budget_s"] = budget_s
        work(budget_s)
        return None

    def predict(model, inputs):
        return torch.zeros(len(inputs["images"]), dtype=torch.int64)

    return SimpleNamespace(train=train, predict=predict, received=received)


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_waiting_costs_no_budget_and_the_training_gets_the_scaled_budget(speed):
    impl = _implementation(lambda budget_s: time.sleep(1.5 * BUDGET_S * speed))  # longer than the budget, in wall time
    result = run_metric_task(impl, SPEC, "fit_accuracy", seed=11)
    assert impl.received["budget_s"] == pytest.approx(BUDGET_S * speed) == scaled_budget(BUDGET_S)
    assert result.train_s < BUDGET_S  # CPU seconds


def test_computing_past_the_scaled_budget_is_a_timeout(speed):
    impl = _implementation(lambda budget_s: _busy(1.3 * budget_s))
    with pytest.raises(CheckTimeout, match=r"CPU s; the budget is 1\.0 CPU s \(0\.5 s on the spec's profile x speed factor 2\)"):
        run_metric_task(impl, SPEC, "fit_accuracy", seed=12)


def test_the_speed_factor_is_clamped_fixed_or_off(monkeypatch):
    for fixed, expected in (("0.1", machine.MIN_SPEED), ("1.7", 1.7), ("100", machine.MAX_SPEED)):
        machine.speed_factor.cache_clear()
        monkeypatch.setenv(machine.SPEED_ENV, fixed)
        assert machine.speed_factor() == expected
    machine.speed_factor.cache_clear()
    monkeypatch.setenv(machine.NO_SCALING_ENV, "1")
    assert machine.speed_factor() == 1.0
    machine.speed_factor.cache_clear()
    monkeypatch.delenv(machine.NO_SCALING_ENV)
    monkeypatch.delenv(machine.SPEED_ENV)
    assert machine.MIN_SPEED <= machine.speed_factor() <= machine.MAX_SPEED
    assert 0 < machine.probe_seconds(repetitions=1)


# --- harness.training ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [0, -1.0, math.nan, True, "60"], ids=["zero", "negative", "nan", "bool", "string"])
def test_budget_clock_refuses_what_is_not_a_positive_budget(budget):
    with pytest.raises(ValueError, match="train_demo: budget_s must be a number > 0"):
        BudgetClock(budget, "train_demo")


def test_budget_clock_expires_at_the_early_stop_fraction_of_cpu_time():
    clock = BudgetClock(0.2, "train_demo")
    time.sleep(0.3)  # wall time does not count
    assert not clock.expired()
    _busy(0.2 * EARLY_STOP_FRACTION)
    assert clock.expired() and clock.elapsed_s >= 0.2 * EARLY_STOP_FRACTION


def test_split_validation_names_what_is_wrong():
    images = torch.rand(4, 1, 8, 8)
    assert split_images({"images": images}, "train_demo", channels=1, size=(8, 8)) is images
    for split, error, message in [
        ([images], TypeError, "expected a dict with 'images'"),
        ({"images": images.double()}, TypeError, "float64 tensor"),
        ({"images": images}, ValueError, r"\[N, 3, H, W\]"),
        ({"images": images[:0].reshape(0, 3, 8, 8)}, ValueError, "N >= 1"),
    ]:
        with pytest.raises(error, match=message):
            split_images(split, "train_demo", channels=3)
    labels = torch.tensor([0, 2, 1, 0])
    assert split_labels({"labels": labels}, "train_demo", count=4) is labels
    for bad, message in [(labels.int(), r"int64\[4\], got torch.int32"), (labels[:3], r"int64\[4\]"), (labels - 1, ">= 0")]:
        with pytest.raises(ValueError, match=message):
            split_labels({"labels": bad}, "train_demo", count=4)


def test_seeding_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        first = torch.nn.Linear(4, 3).weight.detach().clone()
    with seeded(7):
        second = torch.nn.Linear(4, 3).weight.detach().clone()
    assert torch.equal(first, second) and torch.equal(torch.rand(3), expected_next)
    assert torch.equal(torch.rand(5, generator=seeded_generator(3)), torch.rand(5, generator=seeded_generator(3)))


def _rates(schedule_factory, steps: int) -> np.ndarray:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule = schedule_factory(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return np.array(rates)


def test_warmup_cosine_is_cosine_annealing_after_a_linear_warmup():
    steps = 50
    cosine = _rates(lambda opt: warmup_cosine(opt, steps), steps)
    torch_cosine = _rates(lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps), steps)
    np.testing.assert_allclose(cosine, torch_cosine, rtol=1e-9, atol=1e-12)
    warm = _rates(lambda opt: warmup_cosine(opt, steps, warmup_steps=5, final_fraction=0.1), steps)
    np.testing.assert_allclose(warm[:5], 0.1 * np.arange(1, 6) / 5)
    assert warm[5] == pytest.approx(0.1) and warm[-1] > 0.1 * 0.1 and np.all(np.diff(warm[5:]) < 0)
    with pytest.raises(ValueError):
        warmup_cosine(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 10, warmup_steps=10)

