"""Grading an implementation: each topic's graded tests run in a child pytest process of their own.

A child per topic means a submission that crashes the interpreter, exits, or hangs costs only that topic's
remaining checks; everything else is still graded. The verdicts come back through the plugin's
``--visionbench-results`` file, never through anything the submission can touch in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.loader import Implementation
from harness.outcomes import Outcome
from harness.paths import ROOT, TOPIC_TESTS_DIR
from harness.pytest_plugin import QUICK_CHECK_LIMIT_S, TASK_OVERHEAD_S
from harness.scoring import Scores, score_items
from harness.spec import TopicSpec, load_specs

__all__ = ["TopicRun", "run_topic", "grade", "selected_checks", "topic_time_limit"]


@dataclass
class TopicRun:
    """What one child process reported for one topic."""

    topic: str
    items: list[dict[str, Any]]
    expected: list[str]
    wall_s: float
    problem: tuple[Outcome, str] | None = None  # why the child left checks without a verdict


def selected_checks(spec: TopicSpec, tier: str, only: Iterable[str] | None = None) -> list[str]:
    """Check ids of a topic graded at a tier (``quick`` leaves out metric and latency checks)."""
    wanted = set(only) if only else None
    return [cid for cid, c in spec.checks.items() if (tier == "full" or c.kind.tier == "quick") and (wanted is None or cid in wanted)]


def topic_time_limit(spec: TopicSpec, checks: list[str]) -> float:
    """Wall-clock limit for a topic's child process: every check's own limit, added up."""
    total = 30.0  # interpreter and library start-up
    for check_id in checks:
        check = spec.checks[check_id]
        budget = check.budget
        total += budget.train_s * check.training_runs + TASK_OVERHEAD_S if budget and budget.train_s else QUICK_CHECK_LIMIT_S / 4
    return total


def _test_path(topic: str) -> Path:
    folder = TOPIC_TESTS_DIR / topic
    return folder if folder.is_dir() else TOPIC_TESTS_DIR / f"test_{topic}.py"


def run_topic(impl: Implementation, topic: str, *, tier: str = "full", checks: Iterable[str] | None = None, profile: str = "grading") -> TopicRun:
    """Run one topic's graded tests against ``impl`` in a child process and collect the item verdicts."""
    spec = load_specs()[topic]
    expected = selected_checks(spec, tier, checks)
    if not expected:
        return TopicRun(topic, [], [], 0.0)
    with tempfile.TemporaryDirectory(prefix="visionbench-") as scratch:
        results = Path(scratch) / "results.json"
        command = [
            sys.executable, "-m", "pytest", str(_test_path(topic)), "-q", "-p", "no:cacheprovider", "--no-header", "--tb=no",
            f"--impl={impl.root}", f"--tier={tier}", f"--profile={profile}", f"--check={','.join(expected)}",
            f"--visionbench-results={results}",
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        start = time.perf_counter()
        problem = None
        try:
            completed = subprocess.run(
                command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=topic_time_limit(spec, expected), stdin=subprocess.DEVNULL
            )
            if not results.exists():
                tail = (completed.stdout + completed.stderr).strip().splitlines()[-3:]
                problem = (Outcome.error, f"the test process exited with code {completed.returncode} before reporting: {' | '.join(tail)}")
        except subprocess.TimeoutExpired as expired:
            problem = (Outcome.timeout, f"the topic ran past its {expired.timeout:.0f} s limit")
        wall_s = time.perf_counter() - start
        items = json.loads(results.read_text())["items"] if results.exists() else []
    return TopicRun(topic, items, expected, wall_s, problem)


def grade(
    impl: Implementation,
    topics: Iterable[str] | None = None,
    *,
    tier: str = "full",
    profile: str = "grading",
    on_topic: Callable[[TopicRun], None] | None = None,
) -> tuple[Scores, list[TopicRun]]:
    """Grade every (or the named) topic of ``impl``; checks that produced no verdict count as errors."""
    specs = load_specs()
    runs = []
    for topic in topics or list(specs):
        run = run_topic(impl, topic, tier=tier, profile=profile)
        runs.append(run)
        if on_topic:
            on_topic(run)
    items = [item for run in runs for item in run.items]
    expected = {run.topic: run.expected for run in runs if run.expected}
    missing = {run.topic: run.problem for run in runs if run.problem}
    return score_items(items, expected=expected, missing=missing), runs
