"""The visionbench pytest plugin, run in the topic process: hooks and fixtures only; the work is done elsewhere.

Options (group "visionbench"): ``--impl``, ``--topic``, ``--tier``, ``--check``, ``--profile``,
``--visionbench-results``. Fixtures: ``impl`` (the graded topic module), ``spec`` (its TopicSpec), ``spec_check`` and
``check_id`` (the check a test is tied to by ``@check(id)``), ``dtype`` (parametrized over the dtypes the check's
spec gives tolerances for) and ``tolerance`` (that dtype's). Metric and latency checks need no code: their items are
made from the spec (:mod:`harness.topic.generated`). Every tied item gets a verdict (passed, failed, todo, error,
timeout, forbidden); ``todo`` is shown as a skip.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from harness.conventions import CHECK_MARKER, check_time_limit, topic_of_path

_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("visionbench", "visionbench grading")
    group.addoption("--impl", default="reference", help="reference, student, or a submission directory (default: reference)")
    group.addoption("--topic", action="append", default=[], help="only these topics (repeat, or comma-separate)")
    group.addoption("--check", action="append", default=[], dest="check_ids", help="only these check ids (repeat, or comma-separate)")
    group.addoption("--tier", choices=["quick", "full"], default="full", help="quick: no training or latency checks")
    group.addoption("--profile", choices=["grading", "practice"], default="grading", help="hypothesis profile (default: grading, derandomized)")
    group.addoption("--visionbench-results", metavar="FILE", help="write every graded item's verdict to FILE as JSON")
    group.addoption("--visionbench-cost", action="store_true", help="print what the run cost per topic: quick checks, trainings, canaries")
    group.addoption("--sealed-fd", type=int, default=None, help=argparse_suppress())


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS  # set by the grader for sealed grading, not by people


def _split(values: list[str]) -> set[str]:
    return {part.strip() for value in values for part in value.split(",") if part.strip()}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{CHECK_MARKER}(check_id): ties a test to a check of its topic's spec")
    from harness.conventions import resolve_implementation
    from harness.topic.profiles import load_profile

    load_profile(config.getoption("profile"))
    config.stash[_STATE] = {"impl": resolve_implementation(config.getoption("impl")), "modules": {}, "zygote": None}
    if config.getoption("sealed_fd") is not None:  # sealed grading: the implementation runs in workers of this zygote
        import socket

        from harness.sealed import client
        from harness.sealed.contain import protect_grader

        protect_grader()
        client.ZYGOTE = config.stash[_STATE]["zygote"] = socket.socket(fileno=config.getoption("sealed_fd"))
    config.pluginmanager.register(_Verdicts(config), "visionbench-verdicts")
    if config.getoption("visionbench_cost"):
        from harness.topic.cost import SuiteCost

        config.pluginmanager.register(SuiteCost(), "visionbench-cost")


def topic_of(item: pytest.Item) -> str | None:
    """The topic a test belongs to, from its file's place under tests/topics."""
    return topic_of_path(Path(item.path))


def check_id_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(CHECK_MARKER)
    return marker.args[0] if marker else None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A topic's test module also holds one item per metric and latency check of its spec, made from the spec."""
    report = yield
    if isinstance(collector, pytest.Module) and report.passed:
        from harness.topic.generated import generated_items

        report.result.extend(generated_items(collector))
    return report


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``dtype`` runs a check once per dtype its spec gives a tolerance for (ids: the dtype names).

    Tests outside tests/topics, and tests that parametrize ``dtype`` themselves (which ``spec check`` reports in a topic
    test), are left alone.
    """
    if "dtype" not in metafunc.fixturenames or topic_of(metafunc.definition) is None:
        return
    if any(_parametrizes_dtype(marker) for marker in metafunc.definition.iter_markers("parametrize")):
        return
    check = _check_of(metafunc.definition)
    if check is None or not check.tolerance:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the `dtype` fixture needs a check whose spec gives tolerances per dtype")
    import torch

    names = [name for name in check.tolerance if name != "uint8"]  # uint8 images are inputs a test builds, not a float dtype to run in
    if not names:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the `dtype` fixture runs over float dtypes; the spec gives only {sorted(check.tolerance)}")
    metafunc.parametrize("dtype", [getattr(torch, name) for name in names], ids=names)  # names the spec schema allows


def _parametrizes_dtype(marker: pytest.Mark) -> bool:
    names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
    return "dtype" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else list(names))


def _check_of(item: pytest.Item) -> Any:
    topic, check_id = topic_of(item), check_id_of(item)
    if topic is None or check_id is None:
        return None
    from harness.spec import load_specs

    spec = load_specs().get(topic)
    return spec.checks.get(check_id) if spec else None


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
def check_id(request: pytest.FixtureRequest) -> str | None:
    """The id of the check the test is tied to."""
    return check_id_of(request.node)


@pytest.fixture
def tolerance(spec_check: Any, dtype: Any) -> Any:
    """The spec's tolerance for the test's ``dtype``."""
    return spec_check.tolerance_for(dtype)


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> Any:
    """The implementation's topic module, its interfaces checked against the spec and guarded by its forbid lists;
    a test sees only the interfaces its check ``uses``."""
    from harness.topic.guard import CheckView, GradedModule
    from harness.topic.loader import load_topic

    spec_, check_ = _spec_and_check(request)
    state = request.config.stash[_STATE]
    if spec_.id not in state["modules"]:
        if state["zygote"] is not None:
            from harness.sealed.client import SealedModule

            state["modules"][spec_.id] = SealedModule(state["zygote"], spec_, source=state["impl"].root)
        else:
            state["modules"][spec_.id] = GradedModule(load_topic(state["impl"], spec_.id), spec_)
    graded = state["modules"][spec_.id]
    return graded if check_ is None else CheckView(graded, check_id_of(request.node), check_.uses)


@pytest.fixture(autouse=True)
def _single_threaded(request: pytest.FixtureRequest) -> Any:
    """Graded checks run on one intra-op thread (see :func:`harness.topic.tasks.single_threaded` for why)."""
    if _check_of(request.node) is None:
        yield
        return
    from harness.topic.tasks import single_threaded

    with single_threaded():
        yield


def _time_limit(item: pytest.Item) -> float | None:
    check = _check_of(item)
    if check is None:
        return None
    from harness.machine import speed_factor

    return check_time_limit(check, speed_factor() if check.kind.tier == "full" else 1.0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Run a graded test under a wall-clock limit: a hung implementation becomes a timeout, not a stuck run."""
    limit = _time_limit(item)
    if limit is None or not hasattr(signal, "SIGALRM"):
        return (yield)
    from harness.spec.outcomes import CheckTimeout
    from harness.topic import measurements

    measurements.take()  # numbers belong to the test that records them

    def on_alarm(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"{item.name} ran past its {limit:g} s wall-clock limit")

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
    from harness.jsonfiles import json_safe
    from harness.spec.outcomes import Outcome
    from harness.topic import measurements
    from harness.topic.verdicts import Verdict, classify

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
        "kind": _check_of(item).kind.value,
        "when": call.when,
        "outcome": verdict.outcome.value,
        "message": verdict.message,
        "numbers": json_safe({**measurements.take(), **verdict.numbers}),
        "duration_s": round(call.duration, 4),
    }
    report.user_properties.append(("visionbench", record))
    return report


class _Verdicts:
    """Gathers the items' verdicts from their reports (so pytest-xdist's controller sees its workers' too), prints
    the checks' scores and writes ``--visionbench-results``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.items: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.items.extend(value for key, value in report.user_properties if key == "visionbench")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.items:
            return
        from harness.spec.scoring import score_items

        impl = self.config.stash[_STATE]["impl"]
        terminalreporter.section("visionbench checks")
        for topic in score_items(self.items).topics:
            terminalreporter.write_line(f"{topic.topic}: {topic.earned:g}/{topic.possible:g} points  [{impl.name}]")
            for result in topic.checks:
                detail = f"  {result.message}" if result.message and result.outcome != "passed" else ""
                terminalreporter.write_line(f"  {result.outcome:9s} {result.earned:g}/{result.points:g}  {result.check}{detail}")

    def pytest_sessionfinish(self) -> None:
        path = self.config.getoption("visionbench_results")
        if path and not hasattr(self.config, "workerinput"):  # the xdist controller (or a plain run) writes the file
            from harness.jsonfiles import write_json_atomic

            state = self.config.stash[_STATE]
            for module in state["modules"].values():  # sealed workers end with the session
                getattr(module, "close", lambda: None)()
            containment = {k: v for module in state["modules"].values() for k, v in getattr(module, "containment", {}).items()}
            write_json_atomic(Path(path), {"implementation": str(state["impl"].root), "items": self.items, "containment": containment})
