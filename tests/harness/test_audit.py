"""`visionbench audit`: degenerate implementations generated from the reference must lose every non-interface check."""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from harness.cli import app
from harness.conventions import Implementation, resolve_implementation
from harness.grader.run import TopicRun
from harness.spec import CheckKind, load_specs
from harness.tools import audit as audit_module
from harness.tools.audit import (
    BOUNDARY_KINDS,
    Degenerate,
    Finding,
    audit,
    boundary_degenerates,
    degenerate_source,
    plan_batches,
    stub_degenerates,
)
from harness.topic.loader import load_topic

# --- the generated implementations -------------------------------------------------------------------------------------


def _generated(tmp_path: Path, topic: str, kinds: list[str]):
    """The degenerate module, imported here (its own package: each directory is a separate implementation)."""
    directory = tmp_path / "-".join(kind.replace(":", "_") for kind in kinds)
    directory.mkdir()
    (directory / f"{topic}.py").write_text(degenerate_source(load_specs()[topic], kinds))
    return load_topic(Implementation(directory.name, directory), topic)


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    """The reference's detection module and its four boundary degenerates, by kind."""
    root = tmp_path_factory.mktemp("audit")
    modules = {kind: _generated(root, "detection", [kind]) for kind in BOUNDARY_KINDS}
    return {**modules, "reference": load_topic(resolve_implementation("reference"), "detection")}


BOXES1 = torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 5.0]])
BOXES2 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 4.0, 4.0], [5.0, 5.0, 6.0, 7.0]])
SCORES = torch.tensor([0.9, 0.8])


def test_zeros_and_constant_keep_structure_shapes_and_dtypes(detection):
    reference = detection["reference"]
    for kind, fill, index_fill in (("zeros", 0.0, 0), ("constant", 0.5, 1)):
        module = detection[kind]
        iou = module.box_iou(BOXES1, BOXES2.double())
        assert iou.shape == (2, 3) and iou.dtype == reference.box_iou(BOXES1, BOXES2.double()).dtype and bool((iou == fill).all())
        keep = module.nms(BOXES1, SCORES, 0.5)
        assert keep.dtype == torch.int64 and keep.shape == reference.nms(BOXES1, SCORES, 0.5).shape and bool((keep == index_fill).all())
        codes, cells = module.encode(BOXES1, torch.tensor([[4.0, 4.0], [2.0, 4.0]]), 8)
        assert (codes.dtype, cells.dtype) == (torch.float32, torch.int64) and bool((codes == fill).all()) and bool((cells == index_fill).all())
        scores = module.mean_average_precision(
            [{"boxes": BOXES1, "scores": SCORES, "labels": torch.tensor([1, 1])}], [{"boxes": BOXES1, "labels": torch.tensor([1, 1])}]
        )
        assert set(scores) == {"map", "map50", "map75"} and all(type(v) is float and v == fill for v in scores.values())


def test_echo_returns_its_first_tensor_argument(detection):
    assert detection["echo"].box_iou(BOXES1, BOXES2) is BOXES1
    assert detection["echo"].nms(BOXES1, SCORES, 0.5) is BOXES1


def test_noise_is_far_above_any_tolerance_in_the_same_dtype(detection):
    reference, noise = detection["reference"], detection["noise"]
    expected, got = reference.box_iou(BOXES1, BOXES2), noise.box_iou(BOXES1, BOXES2)
    assert got.dtype == expected.dtype and bool(((got - expected).abs() >= 0.01 + 0.05 * expected.abs() - 1e-6).all())
    assert torch.equal(noise.nms(BOXES1, SCORES, 0.5), reference.nms(BOXES1, SCORES, 0.5) + 1)


def test_degenerates_keep_the_reference_signatures(detection):
    for kind in BOUNDARY_KINDS:
        for name in load_specs()["detection"].interfaces:
            assert inspect.signature(getattr(detection[kind], name)) == inspect.signature(getattr(detection["reference"], name)), (kind, name)


def test_a_degenerate_class_returns_a_degenerate_forward_on_a_graph_and_the_reference_inside_is_untouched(tmp_path):
    zeros = _generated(tmp_path, "segmentation", ["zeros"])
    x = torch.randn(2, 3, 6, 7, requires_grad=True)
    out = zeros.DoubleConv(3, 4)(x)
    assert out.shape == (2, 4, 6, 7) and out.dtype == torch.float32 and bool((out == 0).all())
    out.sum().backward()  # still connected to the graph, with zero gradients
    assert x.grad is not None and bool((x.grad == 0).all())
    # the reference's UNet, built from the reference's DoubleConv (not the zeroed one the tests see), computes for real
    inner = zeros._audit_reference["UNet"](3, 2, 4).eval()
    assert not bool((inner(torch.rand(1, 3, 16, 16)) == 0).all())
    assert bool((zeros.UNet(3, 2, 4).eval()(torch.rand(1, 3, 16, 16)) == 0).all())


def test_a_stub_raises_not_implemented_and_only_the_tests_see_it(tmp_path):
    stubbed = _generated(tmp_path, "segmentation", ["stub:iou_per_class"])
    with pytest.raises(NotImplementedError, match="segmentation.iou_per_class"):
        stubbed.iou_per_class(torch.eye(3, dtype=torch.int64))
    predictions = torch.tensor([[0, 1], [1, 1]])
    assert math.isclose(stubbed.mean_iou(predictions, predictions, 2), 1.0)  # the reference's mean_iou calls the reference's iou_per_class
    assert stubbed.iou_per_class.__doc__ == stubbed._audit_reference["iou_per_class"].__doc__  # the student stub keeps the docstring


def test_stubs_share_a_topic_process_only_when_no_check_uses_two_of_them():
    spec = load_specs()["image_basics"]
    batches = plan_batches(spec, boundary_degenerates("image_basics") + stub_degenerates(spec), "quick")
    assert [batch for batch in batches if batch[0].stubbed is None] == [[d] for d in boundary_degenerates("image_basics")]
    for batch in (b for b in batches if b[0].stubbed is not None):
        checks = [check for degenerate in batch for check in degenerate.checks(spec, "quick")]
        assert len(checks) == len(set(checks)), batch  # each check graded once, against the one stub it uses
    together = {d.stubbed: i for i, batch in enumerate(batches) for d in batch if d.stubbed}
    assert together["hwc_to_chw"] != together["chw_to_hwc"]  # layout_conversions_permute_axes uses both
    assert len(batches) < len(boundary_degenerates("image_basics")) + len(stub_degenerates(spec))


def test_interface_checks_and_training_checks_are_left_out_of_the_quick_audit():
    spec = load_specs()["detection"]
    checks = Degenerate("detection", "zeros").checks(spec, "quick")
    assert "invalid_inputs_raise_clear_errors" not in checks and "box_iou_matches_torchvision" in checks
    assert not [c for c in checks if spec.checks[c].kind in (CheckKind.metric, CheckKind.latency)]
    assert "yolo_shapes_map50" in Degenerate("detection", "zeros").checks(spec, "full")
    assert Degenerate("detection", "stub:nms").checks(spec, "quick") == ["nms_matches_torchvision"]


# --- the audit can fail --------------------------------------------------------------------------------------------------


def test_the_audit_finds_a_check_a_degenerate_passes():
    # An interface check (an error raised) cannot see a zeroed output: the reference still validates its inputs. Audited
    # like the others, it is the weak check the audit must find, graded for real.
    report = audit(["detection"], degenerates=["zeros"], kinds=[CheckKind.interface])
    assert report.problems == []
    assert report.findings == [Finding("zeros", "detection", "invalid_inputs_raise_clear_errors", "interface")]


def _fake_runner(passing: set[str], message: str = "wrong"):
    def run(impl, topic, *, tier, checks, speed):
        outcome = "failed" if message == "wrong" else "error"
        items = [{"check": c, "outcome": "passed" if c in passing else outcome, "message": "" if c in passing else message} for c in checks]
        return TopicRun(topic, items, list(checks), 0.1)

    return run


def test_the_command_lists_findings_writes_json_and_exits_1(tmp_path, monkeypatch):
    real = audit_module.audit
    monkeypatch.setattr(audit_module, "audit", lambda *a, **k: real(*a, **k, runner=_fake_runner({"nms_matches_torchvision"})))
    out = tmp_path / "audit.json"
    result = CliRunner().invoke(app, ["audit", "detection", "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "nms_matches_torchvision" in result.output
    findings = json.loads(out.read_text())["findings"]
    assert {f["degenerate"] for f in findings} == {*BOUNDARY_KINDS, "stub:nms"} and {f["check"] for f in findings} == {"nms_matches_torchvision"}


def test_a_module_that_does_not_import_is_a_problem_not_a_pass(monkeypatch):
    broken = _fake_runner(set(), message="x: importing detection raised NameError: name 'y' is not defined")
    report = audit(["detection"], degenerates=["echo"], runner=broken)
    assert report.findings == [] and len(report.problems) == 1 and "importing detection" in report.problems[0]
    real = audit_module.audit
    monkeypatch.setattr(audit_module, "audit", lambda *a, **k: real(*a, **k, runner=broken))
    assert CliRunner().invoke(app, ["audit", "detection"]).exit_code == 3


# --- the suite fails on any check a degenerate passes ---------------------------------------------------------------------


@pytest.mark.parametrize("topic", list(load_specs()))
def test_no_check_passes_a_degenerate(topic):
    report = audit([topic])
    assert report.problems == [], report.problems
    found = sorted((f.degenerate, f.check) for f in report.findings)
    assert found == [], f"{topic}: checks that pass a degenerate implementation: {found}"
