"""The machine-speed factor: how much slower than the spec's hardware profile this machine runs graded work.

A training budget in a spec is CPU seconds on the ``cpu-2core`` profile (one torch thread). On a slower machine the
same work takes more CPU seconds, so budgets (and latency limits) are multiplied by this factor: a fixed probe (a
small convolutional network's forward and backward passes on one thread, the kind of work trainings do) is timed in
CPU seconds, best of several repetitions, and divided by the probe's time on the profile machine. The factor is
clamped to [``MIN_SPEED``, ``MAX_SPEED``] and stated in every result record; ``VISIONBENCH_SPEED`` fixes it (the
grading process measures it once and hands it to its topic processes this way), ``VISIONBENCH_NO_SPEED_SCALING=1``
turns scaling off (factor 1).
"""

from __future__ import annotations

import os
import time
from functools import cache

import torch
import torch.nn.functional as F

__all__ = ["PROFILE_PROBE_S", "MIN_SPEED", "MAX_SPEED", "SPEED_ENV", "NO_SCALING_ENV", "probe_seconds", "scaling_enabled", "speed_factor"]

PROFILE_PROBE_S = 0.145  # the probe's CPU seconds on the cpu-2core profile machine (idle), best of 5: 0.142-0.156
MIN_SPEED, MAX_SPEED = 0.5, 4.0
SPEED_ENV = "VISIONBENCH_SPEED"
NO_SCALING_ENV = "VISIONBENCH_NO_SPEED_SCALING"


def probe_seconds(repetitions: int = 5) -> float:
    """CPU seconds of the fixed probe on one torch thread, best of ``repetitions``."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, 32, 32, generator=generator)
    w1 = torch.randn(16, 8, 3, 3, generator=generator, requires_grad=True)
    w2 = torch.randn(16, 16, 3, 3, generator=generator, requires_grad=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(repetitions):
            start = time.process_time()
            for _ in range(24):
                y = F.conv2d(F.relu(F.conv2d(x, w1, padding=1)), w2, padding=1)
                y.square().mean().backward()
            best = min(best, time.process_time() - start)
    finally:
        torch.set_num_threads(previous)
    return best


def scaling_enabled() -> bool:
    """Whether budgets are scaled by the measured speed (not turned off with ``VISIONBENCH_NO_SPEED_SCALING``)."""
    return os.environ.get(NO_SCALING_ENV, "") in ("", "0")


@cache
def speed_factor() -> float:
    """This machine's speed factor (1.0: as fast as the profile machine; 2.0: graded work takes twice as long)."""
    if not scaling_enabled():
        return 1.0
    fixed = os.environ.get(SPEED_ENV)
    if fixed:
        return min(max(float(fixed), MIN_SPEED), MAX_SPEED)
    return round(min(max(probe_seconds() / PROFILE_PROBE_S, MIN_SPEED), MAX_SPEED), 3)
