"""What a test run cost, per topic: its quick checks, its trainings (metric and latency checks) and its canaries.

Registered by ``pytest --visionbench-cost`` (``make test`` turns it on), so that each topic's share of the suite,
and the cost a new topic adds, is visible in every run. Durations are the tests' own (setup, call and teardown)
summed per topic and part; under pytest-xdist they add up to more than the run's wall time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest

from harness.conventions import ROOT, TOPIC_TESTS_DIR, topic_of_canary_path, topic_of_path

__all__ = ["SuiteCost", "PARTS"]

PARTS = ("quick checks", "trainings", "canaries", "other")
_WIDTHS = (8, 10, 9, 8)  # of the parts' columns


class SuiteCost:
    """A pytest plugin object: sums test durations by (topic, part) and prints the table at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(PARTS, 0.0))
        self.start = time.perf_counter()

    @staticmethod
    def _place(report: pytest.TestReport) -> tuple[str, str]:
        path = ROOT / report.nodeid.split("::")[0]
        topic = topic_of_path(path, TOPIC_TESTS_DIR)
        if topic is not None:
            generated = any(key == "visionbench" and value.get("kind") in ("metric", "latency") for key, value in report.user_properties)
            return topic, "trainings" if generated else "quick checks"
        canaries_of = topic_of_canary_path(path)
        return (canaries_of, "canaries") if canaries_of is not None else ("(harness)", "other")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        topic, part = self._place(report)
        self.seconds[topic][part] += report.duration

    def rows(self) -> list[tuple[str, dict[str, float]]]:
        """(topic, seconds by part), largest total first, the harness's own tests last."""
        topics = sorted((t for t in self.seconds if t != "(harness)"), key=lambda t: -sum(self.seconds[t].values()))
        return [(t, self.seconds[t]) for t in [*topics, *(["(harness)"] if "(harness)" in self.seconds else [])]]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.seconds:
            return
        terminalreporter.section("visionbench suite cost (test durations, s)")
        terminalreporter.write_line(f"{'topic':16s} {'quick':>8s} {'trainings':>10s} {'canaries':>9s} {'other':>8s} {'total':>8s}")
        totals = dict.fromkeys(PARTS, 0.0)
        for topic, parts in self.rows():
            for part in PARTS:
                totals[part] += parts[part]
            cells = " ".join(f"{parts[p]:>{w}.1f}" for p, w in zip(PARTS, _WIDTHS))
            terminalreporter.write_line(f"{topic:16s} {cells} {sum(parts.values()):>8.1f}")
        cells = " ".join(f"{totals[p]:>{w}.1f}" for p, w in zip(PARTS, _WIDTHS))
        terminalreporter.write_line(f"{'all':16s} {cells} {sum(totals.values()):>8.1f}   (wall {time.perf_counter() - self.start:.0f} s)")
