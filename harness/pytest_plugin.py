"""The visionbench pytest plugin: hooks only; the work is done by plain harness modules.

Options (group "visionbench"): ``--impl``, ``--topic``, ``--tier``, ``--check``, ``--profile``,
``--visionbench-results``. Fixtures: ``impl`` (the graded topic module), ``spec`` (its TopicSpec),
``spec_check`` (the Check the test is tied to by ``@check(id)``). Every tied test gets a verdict
(passed, failed, todo, error, timeout, forbidden); ``todo`` is shown as a skip.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

CHECK_MARKER = "visionbench_check"
# A quick check (no training) that runs longer than this is hung; VISIONBENCH_CHECK_LIMIT_S overrides it.
QUICK_CHECK_LIMIT_S = float(os.environ.get("VISIONBENCH_CHECK_LIMIT_S", "120"))
TASK_OVERHEAD_S = 120.0  # data, prediction and scoring time allowed on top of a task's training budget
_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("visionbench", "visionbench grading")
    group.addoption("--impl", default="reference", help="reference, student, or a submission directory (default: reference)")
    group.addoption("--topic", action="append", default=[], help="only these topics (repeat, or comma-separate)")
    group.addoption("--check", action="append", default=[], dest="check_ids", help="only these check ids (repeat, or comma-separate)")
    group.addoption("--tier", choices=["quick", "full"], default="full", help="quick: no training or latency checks")
    group.addoption("--profile", choices=["grading", "practice"], default="grading", help="hypothesis profile (default: grading, derandomized)")
    group.addoption("--visionbench-results", metavar="FILE", help="write every graded item's verdict to FILE as JSON")


def _split(values: list[str]) -> set[str]:
    return {part.strip() for value in values for part in value.split(",") if part.strip()}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{CHECK_MARKER}(check_id): ties a test to a check of its topic's spec")
    from harness.hypothesis_profiles import load_profile
    from harness.loader import resolve_implementation

    load_profile(config.getoption("profile"))
    config.stash[_STATE] = {"impl": resolve_implementation(config.getoption("impl")), "modules": {}, "items": []}


def topic_of(item: pytest.Item) -> str | None:
    """The topic a test belongs to: tests/topics/test_<topic>.py or tests/topics/<topic>/..."""
    from harness.paths import TOPIC_TESTS_DIR

    path = Path(item.path)
    if not path.is_relative_to(TOPIC_TESTS_DIR):
        return None
    first = path.relative_to(TOPIC_TESTS_DIR).parts[0]
    return first.removeprefix("test_").removesuffix(".py")


def check_id_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(CHECK_MARKER)
    return marker.args[0] if marker else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from harness.spec import load_specs

    topics, check_ids = _split(config.getoption("topic")), _split(config.getoption("check_ids"))
    quick_only = config.getoption("tier") == "quick"
    specs = load_specs()
    unknown_topics = topics - set(specs)
    if unknown_topics:
        raise pytest.UsageError(f"unknown topic(s) {sorted(unknown_topics)}; known: {', '.join(specs)}")
    kept, dropped = [], []
    for item in items:
        topic, check_id = topic_of(item), check_id_of(item)
        if topic is None:
            keep = not topics and not check_ids
        else:
            if topic not in specs:
                raise pytest.UsageError(f"{item.nodeid}: no spec for topic {topic!r}")
            check = specs[topic].checks.get(check_id) if check_id else None
            if check is None:
                raise pytest.UsageError(f"{item.nodeid}: not tied to a check of specs/{specs[topic].number:02d}_{topic}.yaml (@check id {check_id!r})")
            keep = (not topics or topic in topics) and (not check_ids or check_id in check_ids)
            keep = keep and not (quick_only and check.kind.tier == "full")
        (kept if keep else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _spec_and_check(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    from harness.spec import load_specs

    topic = topic_of(request.node)
    if topic is None:
        raise pytest.UsageError(f"{request.node.nodeid}: visionbench fixtures are for tests under tests/topics")
    spec = load_specs()[topic]
    check_id = check_id_of(request.node)
    return spec, spec.checks.get(check_id) if check_id else None


@pytest.fixture
def spec(request: pytest.FixtureRequest) -> Any:
    """The TopicSpec of the test's topic."""
    return _spec_and_check(request)[0]


@pytest.fixture
def spec_check(request: pytest.FixtureRequest) -> Any:
    """The spec Check the test is tied to by ``@check(id)``: points, tolerances, thresholds, budget."""
    return _spec_and_check(request)[1]


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> Any:
    """The implementation's topic module, its interfaces checked against the spec and guarded by its forbid lists."""
    from harness.graded import GradedModule
    from harness.loader import load_topic

    spec_, _ = _spec_and_check(request)
    state = request.config.stash[_STATE]
    if spec_.id not in state["modules"]:
        state["modules"][spec_.id] = GradedModule(load_topic(state["impl"], spec_.id), spec_)
    return state["modules"][spec_.id]


@pytest.fixture(autouse=True)
def _single_threaded(request: pytest.FixtureRequest) -> Any:
    """Graded checks run on one intra-op thread (see :func:`harness.tasks.single_threaded` for why)."""
    if _time_limit(request.node) is None:
        yield
        return
    from harness.tasks import single_threaded

    with single_threaded():
        yield


def _time_limit(item: pytest.Item) -> float | None:
    topic, check_id = topic_of(item), check_id_of(item)
    if topic is None or check_id is None:
        return None
    from harness.spec import load_specs
    from harness.tasks import BUDGET_GRACE

    check = load_specs()[topic].checks[check_id]
    if check.budget is not None and check.budget.train_s is not None:
        return check.budget.train_s * BUDGET_GRACE * check.training_runs + TASK_OVERHEAD_S
    return QUICK_CHECK_LIMIT_S


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Run a graded test under a wall-clock limit: a hung implementation becomes a timeout, not a stuck run."""
    limit = _time_limit(item)
    if limit is None or not hasattr(signal, "SIGALRM"):
        return (yield)
    from harness import measurements

    measurements.take()  # numbers belong to the test that records them
    from harness.outcomes import CheckTimeout

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"{item.name} ran past its {limit:g} s limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the check verdict to the report; a stub's NotImplementedError is shown as a skip 'todo: ...'."""
    report = yield
    check_id = check_id_of(item)
    if check_id is None or topic_of(item) is None or (call.when != "call" and call.excinfo is None):
        return report
    from harness import measurements
    from harness.outcomes import Outcome
    from harness.records import json_safe
    from harness.verdicts import Verdict, classify

    state = item.config.stash[_STATE]
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(pytest.skip.Exception):
        verdict = Verdict(Outcome.error, f"graded tests may not skip: {excinfo.value}")
    else:
        verdict = classify(excinfo.value if excinfo else None, state["impl"])
    if verdict.outcome is Outcome.todo:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, verdict.message)
    elif verdict.outcome is not Outcome.passed and report.outcome == "passed":  # keep pytest's view consistent
        report.outcome = "failed"
    record = {
        "nodeid": item.nodeid,
        "topic": topic_of(item),
        "check": check_id,
        "when": call.when,
        "outcome": verdict.outcome.value,
        "message": verdict.message,
        "numbers": json_safe({**measurements.take(), **verdict.numbers}),
        "duration_s": round(call.duration, 4),
    }
    report.user_properties.append(("visionbench", record))
    state["items"].append(record)
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if not state or not state["items"]:
        return
    from harness.scoring import score_items

    scores = score_items(state["items"])
    terminalreporter.section("visionbench checks")
    for topic in scores.topics:
        terminalreporter.write_line(f"{topic.topic}: {topic.earned:g}/{topic.possible:g} points  [{state['impl'].name}]")
        for result in topic.checks:
            detail = f"  {result.message}" if result.message and result.outcome != "passed" else ""
            terminalreporter.write_line(f"  {result.outcome:9s} {result.earned:g}/{result.points:g}  {result.check}{detail}")
    path = config.getoption("visionbench_results")
    if path:
        from harness.records import write_json_atomic

        write_json_atomic(Path(path), {"implementation": str(state["impl"].root), "items": state["items"]})
