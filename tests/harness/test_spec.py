"""The spec schema: valid specs load, malformed ones fail with the file, the line or the item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.paths import SPECS_DIR
from harness.records import result_json_schema
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
