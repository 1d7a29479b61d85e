"""A check earns its points only when every item passed; its outcome is the worst item's."""

from __future__ import annotations

import pytest

from harness.spec import load_specs
from harness.spec.outcomes import Outcome
from harness.spec.scoring import score_items


@pytest.fixture
def topic():
    spec = next(iter(load_specs().values()))
    return spec.id, list(spec.checks)[0], spec.checks[list(spec.checks)[0]].points


def item(topic, check, outcome, message="", numbers=None, case=""):
    nodeid = f"tests/topics/test_x.py::test_{check}" + (f"[{case}]" if case else "")
    return {
        "nodeid": nodeid,
        "topic": topic,
        "check": check,
        "outcome": outcome,
        "message": message,
        "numbers": numbers or {},
        "duration_s": 0.5,
    }


def test_all_items_pass(topic):
    name, check, points = topic
    scores = score_items([item(name, check, "passed"), item(name, check, "passed")])
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.earned, result.items, result.duration_s) == ("passed", points, 2, 1.0)


def test_worst_item_decides(topic):
    name, check, _ = topic
    scores = score_items([item(name, check, "passed"), item(name, check, "failed", "off by 1"), item(name, check, "todo")])
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.earned, result.message) == ("failed", 0.0, "1 failed, 1 todo of 3 cases; off by 1")


def test_the_message_counts_cases_by_outcome_and_quotes_the_most_telling(topic):
    name, check, _ = topic
    small = item(name, check, "failed", "values off by 0.01", {"max_abs_error": 0.01}, "small-float32")
    large = item(name, check, "failed", "values off by 3", {"max_abs_error": 3.0}, "large-float64")
    shape = item(name, check, "failed", "shape (2,) but the oracle's is (3,)", None, "odd-float32")
    (result,) = score_items([small, large, item(name, check, "passed", case="ok")]).topics[0].checks
    assert result.message == "2 failed of 3 cases; [large-float64] values off by 3"  # the largest error
    (result,) = score_items([small, large, shape]).topics[0].checks
    assert result.message == "3 failed of 3 cases; [odd-float32] shape (2,) but the oracle's is (3,)"  # structure first
    assert [case["case"] for case in result.cases] == ["odd-float32", "large-float64", "small-float32"]
    crash = item(name, check, "error", "ZeroDivisionError (in f, m.py:3)", None, "empty")
    (result,) = score_items([crash, small, large, large]).topics[0].checks
    assert (result.outcome, result.message) == ("error", "1 error, 3 failed of 4 cases; [empty] ZeroDivisionError (in f, m.py:3)")
    forbidden = item(name, check, "forbidden", "forbidden call: x.f called torch.nn.functional.conv2d", None, "a")
    (result,) = score_items([crash, forbidden]).topics[0].checks
    assert result.outcome == "forbidden"  # outranks a crash


def test_expected_checks_without_items_get_the_missing_verdict(topic):
    name, check, points = topic
    scores = score_items([], expected={name: [check]}, missing={name: (Outcome.timeout, "ran past 60 s")})
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.message, result.points, scores.earned) == ("timeout", "ran past 60 s", points, 0.0)
