"""The pytest plugin, run as a user runs it (pytester, in a subprocess): options, todo-as-skip, results file."""

from __future__ import annotations

import json

from harness.conventions import TOPIC_TESTS_DIR
from harness.spec import load_specs

TOPIC = "convolution"
QUICK = [cid for cid, c in load_specs()[TOPIC].checks.items() if c.kind.tier == "quick"]


def test_stubs_are_todo_skips_with_the_interface_named(pytester):
    results = pytester.path / "results.json"
    run = pytester.runpytest_subprocess(
        str(TOPIC_TESTS_DIR / f"test_{TOPIC}.py"), "--impl=student", "--tier=quick", "-rs", "-p", "no:cacheprovider", f"--visionbench-results={results}"
    )
    outcomes = run.parseoutcomes()
    assert outcomes.get("skipped", 0) >= len(QUICK) and "failed" not in outcomes and "error" not in outcomes
    run.stdout.fnmatch_lines(["*visionbench checks*", f"{TOPIC}: 0/* points  [[]student[]]", f"*todo: {TOPIC}.*"])
    items = json.loads(results.read_text())["items"]
    assert {item["check"] for item in items} == set(QUICK) and {item["outcome"] for item in items} == {"todo"}


def test_check_option_selects_and_unknown_topic_is_a_usage_error(pytester):
    first = QUICK[0]
    run = pytester.runpytest_subprocess(str(TOPIC_TESTS_DIR / f"test_{TOPIC}.py"), f"--check={first}", "-p", "no:cacheprovider")
    run.stdout.fnmatch_lines([f"*passed    */*  {first}*"])
    bad = pytester.runpytest_subprocess(str(TOPIC_TESTS_DIR), "--topic=no_such_topic", "-p", "no:cacheprovider")
    assert bad.ret == 4  # pytest's usage-error exit code
    bad.stderr.fnmatch_lines(["*unknown topic(s) [[]'no_such_topic'[]]*"])


def test_metric_and_latency_checks_are_items_made_from_the_spec(pytester):
    generated = {cid for spec in load_specs().values() for cid, c in spec.checks.items() if c.kind.tier == "full"}
    run = pytester.runpytest_subprocess(str(TOPIC_TESTS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider")
    collected = {line.split("::")[-1] for line in run.stdout.lines if "::" in line}
    assert {f"test_{cid}" for cid in generated} <= collected


def test_dtype_runs_over_the_spec_tolerances_and_xdist_workers_report_every_verdict(pytester):
    results = pytester.path / "results.json"
    check = next(cid for cid, c in load_specs()[TOPIC].checks.items() if c.tolerance and set(c.tolerance) >= {"float32", "float64"})
    run = pytester.runpytest_subprocess(
        str(TOPIC_TESTS_DIR / f"test_{TOPIC}.py"), f"--check={check},{QUICK[0]}", "-n", "2", "-p", "no:cacheprovider",
        f"--visionbench-results={results}", "--visionbench-cost", "-v",
    )  # fmt: skip
    run.stdout.fnmatch_lines(["*float32*", "*float64*", "*visionbench suite cost*", f"{TOPIC}*"])
    items = json.loads(results.read_text())["items"]
    assert {item["check"] for item in items} == {check, QUICK[0]} and {item["outcome"] for item in items} == {"passed"}
    assert len(items) == run.parseoutcomes()["passed"]
