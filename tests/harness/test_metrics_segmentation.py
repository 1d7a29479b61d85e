"""harness.metrics.segmentation against its oracles: scikit-learn's confusion_matrix and torchmetrics'
MulticlassJaccardIndex(average="macro") on the concatenated dataset (a dataset-level mIoU; torchmetrics' MeanIoU
averages per image, a different number), and the registry's validation of predicted class maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from harness.metrics import METRICS
from harness.metrics.segmentation import (
    iou_from_confusion,
    mean_iou_from_confusion,
    segmentation_confusion_matrix,
    semantic_num_classes,
)
from harness.spec.outcomes import CheckFailure

IGNORE = 255


def _noisy_maps(seed: int, shape: tuple[int, ...], num_classes: int, absent: int | None = None, ignore_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, truth) int64 maps: truth random, predictions right 70% of the time; class ``absent`` appears in
    neither; a fraction of the truth pixels set to IGNORE."""
    rng = np.random.default_rng(seed)
    present = [c for c in range(num_classes) if c != absent]
    truth = rng.choice(present, size=shape)
    predictions = np.where(rng.random(shape) < 0.7, truth, rng.choice(present, size=shape))
    truth = np.where(rng.random(shape) < ignore_fraction, IGNORE, truth)
    return predictions.astype(np.int64), truth.astype(np.int64)


def _torchmetrics_miou(predictions: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int | None) -> float:
    metric = MulticlassJaccardIndex(num_classes=num_classes, average="macro", ignore_index=ignore_index)
    metric.update(torch.from_numpy(predictions.reshape(-1)), torch.from_numpy(truth.reshape(-1)))
    return float(metric.compute())


CASES = {
    "dataset": {"shape": (6, 9, 11), "absent": None, "ignore_fraction": 0.0},
    "class_absent_everywhere": {"shape": (6, 9, 11), "absent": 2, "ignore_fraction": 0.0},
    "ignore_index_pixels": {"shape": (6, 9, 11), "absent": None, "ignore_fraction": 0.2},
    "absent_and_ignored": {"shape": (4, 7, 5), "absent": 3, "ignore_fraction": 0.3},
    "one_image": {"shape": (1, 13, 8), "absent": None, "ignore_fraction": 0.1},
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_confusion_matrix_matches_sklearn(case):
    params = CASES[case]
    predictions, truth = _noisy_maps(1, params["shape"], 5, params["absent"], params["ignore_fraction"])
    keep = truth != IGNORE
    expected = sklearn_confusion_matrix(truth[keep], predictions[keep], labels=list(range(5)))
    np.testing.assert_array_equal(segmentation_confusion_matrix(predictions, truth, 5, ignore_index=IGNORE), expected)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_mean_iou_matches_torchmetrics_jaccard(case):
    params = CASES[case]
    predictions, truth = _noisy_maps(2, params["shape"], 5, params["absent"], params["ignore_fraction"])
    confusion = segmentation_confusion_matrix(predictions, truth, 5, ignore_index=IGNORE)
    expected = _torchmetrics_miou(predictions, truth, 5, IGNORE)
    assert mean_iou_from_confusion(confusion) == pytest.approx(expected, rel=1e-6, abs=1e-7)
    iou = iou_from_confusion(confusion)
    if params["absent"] is not None:
        assert np.isnan(iou[params["absent"]]), f"IoU of the absent class is {iou[params['absent']]}, expected NaN"
    assert np.isfinite(np.delete(iou, [params["absent"]] if params["absent"] is not None else [])).all()


def test_mean_iou_is_dataset_level_not_per_image():
    # Image 0 holds class 1 (mostly right); image 1 does not hold it at all. Per-image averaging (MeanIoU, or the
    # lesson's per-batch mean) weighs the images alike; the dataset-level number pools the pixels first.
    truth = np.zeros((2, 4, 4), np.int64)
    truth[0, :, :2] = 1
    predictions = truth.copy()
    predictions[0, 0, 0] = 0
    predictions[1, 0, :3] = 1  # three false positives of class 1 in image 1
    confusion = segmentation_confusion_matrix(predictions, truth, 2)
    pooled = mean_iou_from_confusion(confusion)
    assert pooled == pytest.approx(_torchmetrics_miou(predictions, truth, 2, None), rel=1e-6)
    per_image = np.nanmean([mean_iou_from_confusion(segmentation_confusion_matrix(p, t, 2)) for p, t in zip(predictions, truth)])
    assert abs(pooled - per_image) > 0.05


@pytest.mark.parametrize("dtype", [np.uint8, np.int64], ids=["uint8", "int64"])
@pytest.mark.parametrize("container", ["numpy", "torch"])
def test_registry_miou_and_pixel_accuracy_score_class_maps(dtype, container):
    predictions, truth = _noisy_maps(3, (5, 8, 8), 4)
    split = {"semantic": truth.astype(np.uint8), "classes": np.array([0, 1, 2])}
    outputs = predictions.astype(dtype) if container == "numpy" else torch.from_numpy(predictions.astype(dtype))
    assert METRICS["miou"](outputs, split) == pytest.approx(_torchmetrics_miou(predictions, truth, 4, None), rel=1e-6)
    accuracy = MulticlassAccuracy(num_classes=4, average="micro")(torch.from_numpy(predictions.ravel()), torch.from_numpy(truth.ravel()))
    assert METRICS["pixel_accuracy"](outputs, split) == pytest.approx(float(accuracy), rel=1e-6)


def test_semantic_num_classes_counts_classes_absent_from_the_masks():
    split = {"semantic": np.zeros((1, 4, 4), np.uint8), "classes": np.array([0, 2])}
    assert semantic_num_classes(split) == 4  # background + shape classes 0..2


MALFORMED = {
    "list": ([[0, 1]], "expected a uint8 or int64 tensor"),
    "float_maps": (torch.zeros(2, 4, 4), "dtype uint8 or int64"),
    "int32_maps": (torch.zeros(2, 4, 4, dtype=torch.int32), "dtype uint8 or int64"),
    "logits_not_maps": (torch.zeros(2, 3, 4, 4, dtype=torch.int64), "shape (2, 4, 4)"),
    "wrong_size": (torch.zeros(2, 4, 5, dtype=torch.int64), "shape (2, 4, 4)"),
    "class_out_of_range": (torch.full((2, 4, 4), 3, dtype=torch.int64), "must lie in [0, 3)"),
    "negative_class": (torch.full((2, 4, 4), -1, dtype=torch.int64), "must lie in [0, 3)"),
}


@pytest.mark.parametrize("metric", ["miou", "pixel_accuracy"])
@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_registry_metrics_reject_malformed_predictions(metric, case):
    outputs, message = MALFORMED[case]
    split = {"semantic": np.zeros((2, 4, 4), np.uint8), "classes": np.array([0, 1])}
    with pytest.raises(CheckFailure, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        METRICS[metric](outputs, split)


def test_confusion_matrix_rejects_out_of_range_truth():
    with pytest.raises(ValueError, match="truth"):
        segmentation_confusion_matrix(np.zeros(3, np.int64), np.array([0, 1, 5]), 3)
