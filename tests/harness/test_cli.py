"""The command line, in process: listing, spec tools, testing a topic and grading with a record."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from harness.cli import app
from harness.grader.records import load_record, result_json_schema
from harness.spec import json_schema, load_specs

runner = CliRunner()


def test_list_shows_every_topic():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for topic in load_specs():
        assert topic in result.output


def test_spec_check_and_schema():
    check = runner.invoke(app, ["spec", "check"])
    assert check.exit_code == 0, check.output
    assert "specs, implementations and tests agree" in check.output
    schema = runner.invoke(app, ["spec", "schema"])
    assert schema.exit_code == 0 and json.loads(schema.output) == json_schema()
    result_schema = runner.invoke(app, ["spec", "schema", "--result"])
    assert result_schema.exit_code == 0 and json.loads(result_schema.output) == result_json_schema()


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["test", "no_such_topic"]).exit_code == 2
    assert runner.invoke(app, ["grade", "/no/such/dir"]).exit_code == 2
    assert runner.invoke(app, ["grade", "reference", "--tier", "medium"]).exit_code == 2


def test_test_command_shows_todo_for_stubs_and_exits_1():
    result = runner.invoke(app, ["test", "convolution", "--impl", "student", "--tier", "quick"])
    assert result.exit_code == 1
    assert "todo" in result.output and "convolution" in result.output


def test_grade_writes_a_record(tmp_path):
    out = tmp_path / "results" / "reference.json"
    result = runner.invoke(app, ["grade", "reference", "--topics", "convolution", "--tier", "quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = load_record(out)
    assert record.schema_version == 1 and record.submission.name == "reference" and record.submission.git_commit is None
    assert record.earned == record.possible > 0
    assert [t.topic for t in record.topics] == ["convolution"] and "convolution" in record.spec_hashes
