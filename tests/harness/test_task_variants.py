"""Metric checks with a baseline: the task's harness inputs, its variants, one training per variant, and the difference.

A made-up topic on digits32 whose "implementation" is a pair of functions written here: training records what it
received, and a model trained with ``flag`` true predicts every hidden label right while one trained without it
gets every third wrong, so the gain over the ``plain`` variant is known exactly.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.datasets import secret_seed
from harness.spec import TopicSpec
from harness.spec.outcomes import CheckFailure
from harness.topic import measurements, tasks
from harness.topic.tasks import assert_reaches_threshold, resolve_inputs, run_metric_task

METRIC_CHECK = {"kind": "metric", "points": 1, "description": "d", "uses": ["train", "predict"], "task": "fit", "metric": "accuracy",
                "calibration": "made up", "budget": {"train_s": 30}}  # fmt: skip
SPEC = TopicSpec.model_validate({
    "id": "variants_demo", "number": 99, "title": "t", "idea": "i",
    "interfaces": {"train": {"signature": "(train, *, seed, budget_s)", "doc": "d"}, "predict": {"signature": "(model, inputs)", "doc": "d"}},
    "tasks": {"fit": {
        "train": "train", "predict": "predict", "dataset": "digits32", "outputs": "int64[N]",
        "train_inputs": {"flag": True, "seed_shift": "harness.datasets:secret_seed"}, "predict_inputs": {"wrong_every": 3},
        "variants": {
            "plain": {"description": "without the flag", "train_inputs": {"flag": False}},
            "all_right": {"description": "predicted without mistakes", "predict_inputs": {"wrong_every": 0}},
        },
    }},
    "checks": {
        "fit_accuracy": {**METRIC_CHECK, "threshold": 0.9, "reference_value": 1.0},
        "fit_gain": {**METRIC_CHECK, "baseline": "plain", "threshold": 0.2, "reference_value": 0.33},
        "fit_gain_too_high": {**METRIC_CHECK, "baseline": "plain", "threshold": 0.5, "reference_value": 0.6},
        "fit_gain_when_predicted_right": {**METRIC_CHECK, "baseline": "all_right", "threshold": -1.0, "reference_value": 0.0},
    },
})  # fmt: skip


def _implementation() -> SimpleNamespace:
    """Train/predict functions that log their calls; predictions come from the hidden labels (test code may read them)."""
    truth = torch.from_numpy(np.array(tasks.hidden_split("digits32")["labels"]))
    calls = SimpleNamespace(trained=[], predicted=[])

    def train(train, *, seed, budget_s):
        calls.trained.append({key: train[key] for key in ("flag", "seed_shift")})
        return {"flag": train["flag"]}

    def predict(model, inputs):
        calls.predicted.append(inputs["wrong_every"])
        labels = truth.clone()
        if not model["flag"] and inputs["wrong_every"]:
            labels[:: inputs["wrong_every"]] = (labels[:: inputs["wrong_every"]] + 1) % 10
        return labels

    return SimpleNamespace(train=train, predict=predict, calls=calls)


def test_baseline_check_scores_the_difference_and_trains_each_variant_once():
    impl = _implementation()
    measurements.take()
    accuracy = run_metric_task(impl, SPEC, "fit_accuracy", seed=0)
    assert accuracy.value == 1.0 and accuracy.baseline is None
    gain = run_metric_task(impl, SPEC, "fit_gain", seed=0)
    wrong = len(range(0, len(tasks.hidden_split("digits32")["labels"]), 3)) / len(tasks.hidden_split("digits32")["labels"])
    assert (gain.baseline, gain.task_value, gain.baseline_value) == ("plain", 1.0, pytest.approx(1 - wrong))
    assert gain.value == pytest.approx(wrong)
    numbers = measurements.take()
    assert numbers["value"] == gain.value and numbers["baseline"] == "plain" and numbers["baseline_value"] == gain.baseline_value
    run_metric_task(impl, SPEC, "fit_gain_too_high", seed=0)  # both runs cached: nothing trains again
    assert impl.calls.trained == [{"flag": True, "seed_shift": secret_seed()}, {"flag": False, "seed_shift": secret_seed()}]


def test_a_variant_that_changes_only_predict_inputs_shares_the_training():
    impl = _implementation()
    result = run_metric_task(impl, SPEC, "fit_gain_when_predicted_right", seed=0)
    assert result.value == 0.0
    assert len(impl.calls.trained) == 1 and impl.calls.predicted == [3, 0]


def test_baseline_failure_message_gives_both_runs():
    impl = _implementation()
    result = run_metric_task(impl, SPEC, "fit_gain_too_high", seed=0)
    message = r"accuracy 1.0000 minus 0.66\d+ for the plain variant = \+0.33\d+ on the demo split is below the threshold 0.5"
    with pytest.raises(CheckFailure, match=message) as failure:
        assert_reaches_threshold(result, SPEC.checks["fit_gain_too_high"], "on the demo split")
    assert failure.value.numbers["baseline_value"] == result.baseline_value
    assert_reaches_threshold(result, SPEC.checks["fit_gain"], "on the demo split")  # 0.33 >= 0.2


def test_task_inputs_may_not_replace_the_split_s_own_arrays():
    with pytest.raises(ValueError, match=r"task inputs \['labels'\] would replace entries of the split"):
        resolve_inputs({"labels": None}, {"images": 0, "labels": 1})


def test_predict_gets_only_the_task_s_predict_fields():
    generation = SPEC.tasks["fit"].model_copy(update={"predict_fields": []})  # the harness inputs alone, no hidden images
    spec = SPEC.model_copy(update={"tasks": {"fit": generation}})
    impl = _implementation()
    seen = []
    predict = impl.predict
    impl.predict = lambda model, inputs: seen.append(sorted(inputs)) or predict(model, inputs)
    run_metric_task(impl, spec, "fit_accuracy", seed=0)
    assert seen == [["wrong_every"]]
    assert SPEC.tasks["fit"].predict_fields == ["images"]  # the default


def test_model_inputs_are_channels_first_floats_for_images_and_clips():
    images = np.arange(2 * 3 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 3, 4, 5, 3)  # (N, T, H, W, C)
    split = {"images": images, "labels": np.array([1, 2]), "captions": np.array(["a", "b"])}
    inputs = tasks.to_model_inputs(split, ["images", "captions"])
    assert sorted(inputs) == ["captions", "images"] and inputs["captions"] == ["a", "b"]
    assert inputs["images"].shape == (2, 3, 3, 4, 5) and inputs["images"].dtype == torch.float32
    torch.testing.assert_close(inputs["images"][1, 2, 0], torch.from_numpy(images[1, 2, :, :, 0]).float() / 255)
    still = tasks.to_model_inputs({"images": images[:, 0]})["images"]  # (N, H, W, C) -> (N, C, H, W)
    torch.testing.assert_close(still, torch.from_numpy(images[:, 0]).permute(0, 3, 1, 2).float() / 255)
    assert tasks.to_model_inputs(split)["labels"].dtype == torch.int64
    with pytest.raises(KeyError, match="the split has no field 'boxes'"):
        tasks.to_model_inputs(split, ["boxes"])
