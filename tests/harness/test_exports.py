"""Gradescope and JUnit exports of a result record: valid against their schemas, scores that add up."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import jsonschema
from records_fixtures import make_record

from harness.grader.exports import GradescopeResults, to_gradescope, to_junit
from harness.grader.records import result_json_schema


def test_record_and_gradescope_validate_and_scores_add_up():
    record = make_record(outcomes={"lenet5_parameter_count": "failed", "batchnorm2d_gradcheck": "todo"}, metric_value=0.99)
    jsonschema.validate(record.model_dump(mode="json"), result_json_schema())
    results = to_gradescope(record).model_dump(mode="json")
    jsonschema.validate(results, GradescopeResults.model_json_schema())
    assert results["score"] == sum(test["score"] for test in results["tests"]) == record.earned
    assert len(results["tests"]) == sum(len(t.checks) for t in record.topics)
    failed = next(t for t in results["tests"] if t["name"] == "cnn: lenet5_parameter_count")
    assert failed["score"] == 0 and failed["output"].startswith("failed") and "failed" in failed["tags"]
    assert {"name": "cnn.accuracy", "value": 0.99, "order": "desc"} in results["leaderboard"]


def test_hidden_checks_are_visible_after_publication():
    record = make_record()
    record.topics[0].checks[0].hidden = True
    tests = to_gradescope(record).tests
    assert tests[0].visibility == "after_published" and {t.visibility for t in tests[1:]} == {"visible"}


def test_junit_counts_and_escaping():
    record = make_record(outcomes={"lenet5_parameter_count": "failed", "batchnorm2d_gradcheck": "todo", "resnet18_logits_match_torchvision": "timeout"})
    suite = ElementTree.fromstring(to_junit(record)).find("testsuite")
    assert suite is not None and suite.get("name") == "cnn"
    assert (suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("1", "1", "1")
    failure = suite.find("testcase[@name='lenet5_parameter_count']/failure")
    assert failure is not None and failure.get("message") == "failed <because> & so"
