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


def item(topic, check, outcome, message=""):
    return {"topic": topic, "check": check, "outcome": outcome, "message": message, "numbers": {}, "duration_s": 0.5}


def test_all_items_pass(topic):
    name, check, points = topic
    scores = score_items([item(name, check, "passed"), item(name, check, "passed")])
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.earned, result.items, result.duration_s) == ("passed", points, 2, 1.0)


def test_worst_item_decides(topic):
    name, check, _ = topic
    scores = score_items([item(name, check, "passed"), item(name, check, "failed", "off by 1"), item(name, check, "todo")])
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.earned, result.message) == ("failed", 0.0, "2 of 3 cases: off by 1")


def test_expected_checks_without_items_get_the_missing_verdict(topic):
    name, check, points = topic
    scores = score_items([], expected={name: [check]}, missing={name: (Outcome.timeout, "ran past 60 s")})
    (result,) = scores.topics[0].checks
    assert (result.outcome, result.message, result.points, scores.earned) == ("timeout", "ran past 60 s", points, 0.0)
