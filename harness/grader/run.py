"""Grading an implementation: each topic's graded tests run in a topic process of their own, several at a time.

A process per topic means a submission that crashes the interpreter, exits, or hangs costs only that topic's
remaining checks; everything else is still graded. The verdicts come back through the plugin's
``--visionbench-results`` file, never through anything the submission can touch in this process. Topics are
independent, so ``jobs`` of them run at once; verdicts do not depend on how many (each topic process runs its graded
work on one torch thread, and budgets count its own CPU time). A SIGTERM to the grading process ends the topic
processes with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.conventions import ROOT, Implementation, topic_test_path, topic_time_limit
from harness.grader.launch import TopicProcess, start_topic_process, start_zygote
from harness.machine import SPEED_ENV, speed_factor
from harness.sealed.worker import remove_tree
from harness.spec import TopicSpec, load_specs
from harness.spec.outcomes import Outcome
from harness.spec.scoring import Scores, score_items

__all__ = ["TopicRun", "run_topic", "grade", "selected_checks", "default_jobs"]


@dataclass
class TopicRun:
    """What one topic process reported for one topic."""

    topic: str
    items: list[dict[str, Any]]
    expected: list[str]
    wall_s: float
    problem: tuple[Outcome, str] | None = None  # why the process left checks without a verdict
    containment: dict[str, str] = field(default_factory=dict)  # sealed: the workers' containment features


def selected_checks(spec: TopicSpec, tier: str, only: Iterable[str] | None = None) -> list[str]:
    """Check ids of a topic graded at a tier (``quick`` leaves out metric and latency checks)."""
    wanted = set(only) if only else None
    return [cid for cid, c in spec.checks.items() if (tier == "full" or c.kind.tier == "quick") and (wanted is None or cid in wanted)]


def default_jobs() -> int:
    """Topics graded at once by default: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_RUNNING: set[TopicProcess] = set()  # topic processes alive now, ended with the grader on SIGTERM
_RUNNING_LOCK = threading.Lock()


def _end_running(signum: int, frame: Any) -> None:
    with _RUNNING_LOCK:
        for process in list(_RUNNING):
            process.kill()
    raise SystemExit(128 + signum)


def run_topic(
    impl: Implementation,
    topic: str,
    *,
    tier: str = "full",
    checks: Iterable[str] | None = None,
    profile: str = "grading",
    speed: float | None = None,
    stop_early: bool = False,
    sealed: bool = False,
) -> TopicRun:
    """Run one topic's graded tests against ``impl`` in a topic process and collect the item verdicts.

    Args:
        speed: the machine-speed factor handed to the topic process (default: measured once, :mod:`harness.machine`).
        stop_early: stop at the first item that does not pass (the checks after it get no verdict), for callers
            that only need to know whether everything passes.
        sealed: run the implementation in contained worker processes (:mod:`harness.sealed`), never in the topic
            process that runs the tests and writes the verdicts.
    """
    spec = load_specs()[topic]
    expected = selected_checks(spec, tier, checks)
    if not expected:
        return TopicRun(topic, [], [], 0.0)
    speed = speed_factor() if speed is None else speed
    limit = topic_time_limit([spec.checks[c] for c in expected], speed)
    with tempfile.TemporaryDirectory(prefix="visionbench-") as scratch:
        results, log = Path(scratch) / "results.json", Path(scratch) / "output.log"
        arguments = [
            str(topic_test_path(topic)), "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--no-header", "--tb=no",
            "-p", "no:unraisableexception",  # its garbage collections at exit cost a second with torch loaded
            f"--impl={impl.root}", f"--tier={tier}", f"--profile={profile}", f"--check={','.join(expected)}", f"--visionbench-results={results}",
        ] + (["--exitfirst"] if stop_early else []) + (["--sealed-fd={sealed_fd}"] if sealed else [])  # fmt: skip
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", SPEED_ENV: str(speed)}
        start = time.perf_counter()
        problem = None
        zygote, sealed_scratch = None, None
        with _RUNNING_LOCK:
            if sealed:
                grading_end, zygote_end = socket.socketpair()
                sealed_scratch = Path(tempfile.mkdtemp(prefix="visionbench-sealed-"))
                zygote = start_zygote(zygote_end, impl.root, impl.name, topic, cwd=ROOT, log=Path(scratch) / "zygote.log", scratch=sealed_scratch)
                _RUNNING.add(zygote)
                process = start_topic_process(arguments, cwd=ROOT, environment=environment, log=log, sealed=grading_end)
                grading_end.close()
                zygote_end.close()
            else:
                process = start_topic_process(arguments, cwd=ROOT, environment=environment, log=log)
            _RUNNING.add(process)
        try:
            code = process.wait(timeout=limit)
            if code is None:
                problem = (Outcome.timeout, f"the topic ran past its {limit:.0f} s limit")
            elif not results.exists():
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
                problem = (Outcome.error, f"the test process exited with code {code} before reporting: {' | '.join(tail)}")
        finally:
            process.kill()  # also what a hung or exiting topic process left behind
            if zygote is not None:
                zygote.kill()
                remove_tree(sealed_scratch)  # the zygote's copies, even when it was killed before it could
            with _RUNNING_LOCK:
                _RUNNING.discard(process)
                _RUNNING.discard(zygote)
        wall_s = time.perf_counter() - start
        reported = json.loads(results.read_text()) if results.exists() else {}
    return TopicRun(topic, reported.get("items", []), expected, wall_s, problem, reported.get("containment", {}))


def grade(
    impl: Implementation,
    topics: Iterable[str] | None = None,
    *,
    tier: str = "full",
    profile: str = "grading",
    jobs: int | None = None,
    on_topic: Callable[[TopicRun], None] | None = None,
    sealed: bool = False,
) -> tuple[Scores, list[TopicRun]]:
    """Grade every (or the named) topic of ``impl``, ``jobs`` topics at a time (default: one per core).

    Checks that produced no verdict count as errors (or timeouts); ``sealed``: see :func:`run_topic`. ``on_topic`` is called as each topic finishes;
    the runs come back in curriculum order whatever the order they finished in.
    """
    specs = load_specs()
    chosen = list(topics or specs)
    speed = speed_factor()
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _end_running)
    else:
        previous = None
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs or default_jobs())) as pool:
            futures = {topic: pool.submit(run_topic, impl, topic, tier=tier, profile=profile, speed=speed, sealed=sealed) for topic in _longest_first(chosen, tier)}
            done: dict[str, TopicRun] = {}
            for future in as_completed(futures.values()):
                run = future.result()
                done[run.topic] = run
                if on_topic:
                    on_topic(run)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    runs = [done[topic] for topic in chosen]
    items = [item for run in runs for item in run.items]
    expected = {run.topic: run.expected for run in runs if run.expected}
    missing = {run.topic: run.problem for run in runs if run.problem}
    return score_items(items, expected=expected, missing=missing), runs


def _longest_first(topics: list[str], tier: str) -> list[str]:
    """Topics ordered by their training budgets, largest first, so that parallel grading ends sooner."""
    specs = load_specs()

    def training(topic: str) -> float:
        if tier != "full":
            return 0.0
        budgets = {(c.task, c.baseline): c.budget.train_s or 0.0 for c in specs[topic].checks.values() if c.budget is not None}
        return sum(budgets.values())

    return sorted(topics, key=training, reverse=True)
