"""The spec schema: valid specs load, malformed ones fail with the file, the line or the item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.conventions import SPECS_DIR
from harness.grader.records import result_json_schema
from harness.spec import CheckKind, SpecError, json_schema, load_spec, load_specs

MINIMAL = """\
id: demo
number: 7
title: Demo
idea: An idea.
interfaces:
  double:
    signature: "(x, factor=2)"
    doc: "x * factor."
checks:
  double_doubles:
    kind: oracle
    points: 1
    description: double(x) == 2x.
    uses: [double]
    oracle: operator.mul
    tolerance: {float32: {rtol: 1.0e-6, atol: 0}}
"""


def write(tmp_path: Path, text: str, name: str = "07_demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.id == "demo" and spec.total_points == 1
    check = spec.checks["double_doubles"]
    assert check.kind is CheckKind.oracle and check.kind.tier == "quick"
    assert check.tolerance_for("float32").rtol == 1e-6
    with pytest.raises(KeyError, match="float64"):
        check.tolerance_for("torch.float64")


def test_invalid_yaml_reports_line(tmp_path):
    path = write(tmp_path, MINIMAL.replace("title: Demo", "title: [Demo"))
    with pytest.raises(SpecError, match=r"07_demo.yaml: invalid YAML at line \d+"):
        load_spec(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("points: 1", "points: -1"), r"checks.double_doubles.points"),
        (("uses: [double]", "uses: [triple]"), r"unknown interfaces \['triple'\]"),
        (("kind: oracle", "kind: vibes"), r"checks.double_doubles.kind"),
        (('signature: "(x, factor=2)"', 'signature: "(x, factor=two)"'), r"not a literal"),
        (("    oracle: operator.mul\n", ""), r"names its oracle"),
        (("kind: oracle", "kind: metric"), r"a metric check needs task, metric, threshold, reference_value, calibration, budget"),
        (("idea: An idea.\n", ""), r"idea: Field required"),
        (("idea: An idea.", "idea: An idea.\nextra: 1"), r"extra: Extra inputs are not permitted"),
    ],
    ids=["negative-points", "unknown-interface", "unknown-kind", "bad-default", "oracle-missing", "metric-fields", "missing-field", "extra-field"],
)
def test_invalid_spec_names_the_item(tmp_path, change, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, MINIMAL.replace(*change)))


WITH_TASK = MINIMAL.replace("checks:\n", """\
  train:
    signature: "(train, *, seed, budget_s)"
    doc: "Trains."
  predict:
    signature: "(model, inputs)"
    doc: "Predicts."
tasks:
  fit:
    train: train
    predict: predict
    dataset: digits32
    outputs: "int64[N]"
checks:
  fit_accuracy:
    kind: metric
    points: 2
    description: Accuracy.
    uses: [train, predict]
    task: fit
    metric: accuracy
    threshold: 0.9
    reference_value: 0.95
    calibration: made up
    budget: {train_s: 10}
  fit_latency:
    kind: latency
    points: 1
    description: Latency.
    uses: [predict]
    task: fit
    budget: {train_s: 10, p50_ms: 5}
""")


def test_spec_with_a_task_loads(tmp_path):
    spec = load_spec(write(tmp_path, WITH_TASK))
    assert spec.checks["fit_latency"].kind.tier == "full" and spec.checks["fit_latency"].budget.p50_ms == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("budget: {train_s: 10, p50_ms: 5}", "budget: {p50_ms: 5}"), r"a latency check needs a task and a budget with train_s"),
        (("budget: {train_s: 10, p50_ms: 5}", "budget: {train_s: 10}"), r"limits p50_ms, p95_ms or peak_mb"),
        (("budget: {train_s: 10, p50_ms: 5}", "budget: {train_s: 20, p50_ms: 5}"), r"task 'fit' give different training budgets \[10.0, 20.0\]"),
        (("    task: fit\n    budget: {train_s: 10, p50_ms", "    task: fat\n    budget: {train_s: 10, p50_ms"), r"names unknown task 'fat'"),
    ],
    ids=["latency-without-training-budget", "latency-without-limit", "one-task-two-budgets", "unknown-task"],
)
def test_invalid_task_checks_name_the_problem(tmp_path, change, message):
    assert change[0] in WITH_TASK
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, WITH_TASK.replace(*change)))


WITH_BASELINE = WITH_TASK.replace("""    outputs: "int64[N]"
checks:""", """    outputs: "int64[N]"
    train_inputs: {backbone: "harness.pretrained:backbone_state_dict", epochs: 3}
    predict_inputs: {scale: 2.0}
    variants:
      scratch:
        description: Without the pretrained weights.
        train_inputs: {backbone: null}
      unguided:
        description: Predicted at scale 1.
        predict_inputs: {scale: 1.0}
checks:""").replace("""  fit_latency:""", """  fit_gain:
    kind: metric
    points: 2
    description: Accuracy gain over scratch.
    uses: [train, predict]
    task: fit
    metric: accuracy
    baseline: scratch
    threshold: 0.1
    reference_value: 0.3
    calibration: made up
    budget: {train_s: 10}
  fit_latency:""")


def test_spec_with_a_baseline_variant_loads(tmp_path):
    spec = load_spec(write(tmp_path, WITH_BASELINE))
    task, gain = spec.tasks["fit"], spec.checks["fit_gain"]
    assert gain.baseline == "scratch" and gain.training_runs == 2 and spec.checks["fit_accuracy"].training_runs == 1
    assert task.inputs() == ({"backbone": "harness.pretrained:backbone_state_dict", "epochs": 3}, {"scale": 2.0})
    assert task.inputs("scratch") == ({"backbone": None, "epochs": 3}, {"scale": 2.0})
    assert task.inputs("unguided") == ({"backbone": "harness.pretrained:backbone_state_dict", "epochs": 3}, {"scale": 1.0})
    with pytest.raises(KeyError, match="no variant 'guided'"):
        task.inputs("guided")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("    baseline: scratch\n", "    baseline: pretrained\n"),
            r"names baseline 'pretrained', not a variant of task 'fit' \(has: \['scratch', 'unguided'\]\)",
        ),
        (("    kind: oracle\n    points: 1\n", "    kind: oracle\n    baseline: scratch\n    points: 1\n"), r"only a metric check compares with a baseline"),
        (
            ('backbone: "harness.pretrained:backbone_state_dict"', 'backbone: "os:getcwd"'),
            r"names a harness function 'harness.module:function', got 'os:getcwd'",
        ),
        (("        train_inputs: {backbone: null}\n", ""), r"a variant changes at least one of train_inputs and predict_inputs"),
        (("epochs: 3}", "epochs: [3]}"), r"tasks.fit.train_inputs.epochs"),
    ],
    ids=["unknown-variant", "baseline-on-an-oracle-check", "provider-outside-the-harness", "variant-without-changes", "input-not-a-scalar"],
)
def test_invalid_baselines_and_inputs_name_the_problem(tmp_path, change, message):
    assert change[0] in WITH_BASELINE
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, WITH_BASELINE.replace(*change)))


def test_file_name_must_match_number_and_id(tmp_path):
    with pytest.raises(SpecError, match="file name must be 07_demo.yaml"):
        load_spec(write(tmp_path, MINIMAL, name="08_demo.yaml"))


def test_committed_schemas_are_current():
    committed = json.loads((SPECS_DIR / "schema.json").read_text())
    assert committed == json_schema(), "specs/schema.json is stale: run `visionbench spec schema --out specs/schema.json`"
    committed = json.loads((SPECS_DIR / "result.schema.json").read_text())
    assert committed == result_json_schema(), "stale: run `visionbench spec schema --result --out specs/result.schema.json`"


def test_repository_specs_load_in_curriculum_order():
    specs = load_specs()
    assert specs, "no specs found"
    numbers = [spec.number for spec in specs.values()]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
