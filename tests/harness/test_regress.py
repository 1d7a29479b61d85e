"""`visionbench regress`: a metric worsened beyond its spec's tolerance is a regression; the reference is not."""

from __future__ import annotations

import json

from records_fixtures import make_record
from typer.testing import CliRunner

from harness.cli import app
from harness.conventions import REFERENCE_DIR
from harness.grader.records import CheckRecord, ResultRecord, TopicRecord
from harness.grader.regress import BASELINE_FILE, baseline_from, compare, load_baseline, write_baseline
from harness.spec import load_specs

TOLERANCE = load_specs()["cnn"].checks["lenet_digits_accuracy"].regression_allowance
assert TOLERANCE is not None
runner = CliRunner()


def test_compare_flags_drops_beyond_tolerance_and_failed_checks():
    baseline = baseline_from(make_record(metric_value=0.99))
    within = compare(make_record(metric_value=0.99 - TOLERANCE / 2), baseline)
    beyond = compare(make_record(metric_value=0.99 - 2 * TOLERANCE), baseline)
    better = compare(make_record(metric_value=1.0), baseline)
    failed = compare(make_record(outcomes={"lenet5_parameter_count": "failed"}, metric_value=0.99), baseline)
    assert not any(c.regressed for c in within + better)
    assert [c.name for c in beyond if c.regressed] == ["cnn.lenet_digits_accuracy"]
    assert [c.name for c in failed if c.regressed] == ["cnn.lenet5_parameter_count"]


def test_degraded_reference_regresses_and_the_reference_does_not(tmp_path):
    # The degraded copy still passes its threshold: it mislabels 2% of the images, a drop beyond the tolerance.
    degraded = tmp_path / "degraded"
    degraded.mkdir()
    source = (REFERENCE_DIR / "cnn.py").read_text()
    (degraded / "cnn.py").write_text(
        f"{source}\n\n_predict = predict_lenet\n\n"
        "def predict_lenet(model, inputs):\n"
        "    labels = _predict(model, inputs).clone()\n"
        "    wrong = torch.arange(0, len(labels), 50)\n"
        "    labels[wrong] = (labels[wrong] + 1) % 10\n"
        "    return labels\n"
    )
    baseline = json.loads(BASELINE_FILE.read_text())["metrics"]["cnn.lenet_digits_accuracy"]
    assert 2 / 100 > TOLERANCE and baseline - 2 / 100 >= load_specs()["cnn"].checks["lenet_digits_accuracy"].threshold
    worse = runner.invoke(app, ["regress", "--impl", str(degraded), "--topics", "cnn"])
    assert worse.exit_code == 1 and "regressed" in worse.output, worse.output
    same = runner.invoke(app, ["regress", "--topics", "cnn"])
    assert same.exit_code == 0, same.output


def test_a_baseline_check_regresses_on_its_difference():
    # transfer's gain check records value = fine-tuned minus scratch accuracy; regress compares that like any metric
    check_id = "fewshot_transfer_beats_scratch"
    check = load_specs()["transfer"].checks[check_id]
    allowance = check.regression_allowance
    assert check.baseline == "scratch" and allowance is not None

    def record(gain: float) -> ResultRecord:
        numbers = {"value": gain, "task_value": 0.7, "baseline_value": 0.7 - gain, "baseline": "scratch", "threshold": check.threshold}
        checks = [CheckRecord(topic="transfer", check=check_id, kind="metric", outcome="passed", points=check.points, max_points=check.points,
                              duration_s=1.0, numbers=numbers, items=1)]  # fmt: skip
        topic = TopicRecord(topic="transfer", earned=check.points, possible=check.points, wall_s=1.0, checks=checks)
        return make_record().model_copy(update={"topics": [topic]})

    baseline = baseline_from(record(check.reference_value))
    assert baseline == {f"transfer.{check_id}": check.reference_value}
    assert not compare(record(check.reference_value - allowance / 2), baseline)[0].regressed
    assert compare(record(check.reference_value - 2 * allowance), baseline)[0].regressed


def test_updating_the_baseline_of_some_topics_keeps_the_others(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"metrics": {"cnn.lenet_digits_accuracy": 0.5, "video.motion_clips_accuracy": 0.9}}))
    write_baseline(make_record(metric_value=0.99), path)  # a record of topic cnn only
    assert load_baseline(path) == {"cnn.lenet_digits_accuracy": 0.99, "video.motion_clips_accuracy": 0.9}
