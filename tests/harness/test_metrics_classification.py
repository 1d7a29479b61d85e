"""harness.metrics' classification metrics against their oracles: scikit-learn's accuracy_score and
precision_recall_fscore_support, torchmetrics' MulticlassAccuracy, and expected calibration error computed from its
definition (15 equal-width confidence bins, the gap between accuracy and mean confidence weighted by the bin's share);
plus the validation of predicted class indices and probabilities."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from torchmetrics.classification import MulticlassAccuracy

from harness.metrics import METRICS
from harness.metrics.calibration import per_class_f1
from harness.spec.outcomes import CheckFailure

NUM_CLASSES = 5


def _labels(seed: int, count: int = 400) -> np.ndarray:
    """Balanced int64 labels in random order."""
    return np.random.default_rng(seed).permutation(np.arange(count) % NUM_CLASSES).astype(np.int64)


def _probabilities(seed: int, labels: np.ndarray, sharpness: float = 3.0) -> np.ndarray:
    """float64[N, C] rows: a softmax of noise plus ``sharpness`` on the true class, so most argmaxes are right."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(labels), NUM_CLASSES))
    logits[np.arange(len(labels)), labels] += sharpness
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _ece_from_definition(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """sum_b |acc(b) - conf(b)| * n_b / N over the spec's 15 bins [k/15, (k+1)/15); a confidence of exactly 1 gets a bin of its
    own (torchmetrics' bucketize convention, which the harness inherits)."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    index = np.floor(confidence * bins).astype(np.int64)  # exactly 1.0 -> index ``bins``: the bin of its own
    total = 0.0
    for b in np.unique(index):
        members = index == b
        total += abs(correct[members].mean() - confidence[members].mean()) * members.mean()
    return total


def _split(labels: np.ndarray) -> dict[str, np.ndarray]:
    return {"labels": labels}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("container", ["numpy", "torch", "list"])
def test_accuracy_of_class_indices_matches_sklearn_and_torchmetrics(seed, container):
    labels = _labels(seed)
    predictions = _probabilities(seed + 10, labels, sharpness=1.0).argmax(axis=1).astype(np.int64)
    outputs = {"numpy": predictions, "torch": torch.from_numpy(predictions), "list": predictions.tolist()}[container]
    value = METRICS["accuracy"](outputs, _split(labels))
    assert value == pytest.approx(accuracy_score(labels, predictions), abs=1e-12)
    micro = MulticlassAccuracy(num_classes=NUM_CLASSES, average="micro")(torch.from_numpy(predictions), torch.from_numpy(labels))
    assert value == pytest.approx(float(micro), abs=1e-6)
    assert 0.3 < value < 0.95  # the cases are neither trivial nor hopeless


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_and_worst_class_f1_of_probabilities_match_sklearn(seed):
    labels = _labels(seed)
    probs = _probabilities(seed + 20, labels, sharpness=1.5)
    predictions = probs.argmax(axis=1)
    _, _, f1, _ = precision_recall_fscore_support(labels, predictions, labels=list(range(NUM_CLASSES)), zero_division=0)
    assert METRICS["accuracy_from_probs"](torch.from_numpy(probs).float(), _split(labels)) == pytest.approx(accuracy_score(labels, predictions))
    np.testing.assert_array_equal(per_class_f1(probs, _split(labels)), f1)
    assert METRICS["worst_class_f1"](probs, _split(labels)) == f1.min()
    assert f1.min() < f1.max()  # the classes differ, so the minimum is not any class's F1


def test_a_class_never_predicted_keeps_accuracy_but_has_f1_zero():
    # Ten balanced classes, every image right except class 9's, which all go to class 8: accuracy 0.9.
    labels = np.arange(1000, dtype=np.int64) % 10
    predictions = np.where(labels == 9, 8, labels)
    probs = np.eye(10)[predictions]
    assert METRICS["accuracy_from_probs"](probs, _split(labels)) == pytest.approx(0.9)
    assert METRICS["worst_class_f1"](probs, _split(labels)) == 0.0
    assert per_class_f1(probs, _split(labels))[8] == pytest.approx(2 * 100 / (200 + 100))  # precision 1/2, recall 1


def test_ties_go_to_the_first_class():
    labels = np.array([0, 1, 2, 0], np.int64)
    probs = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]])
    assert METRICS["accuracy_from_probs"](probs, _split(labels)) == pytest.approx(0.5)  # rows 0 and 3 right


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sharpness", [0.5, 3.0, 8.0], ids=["underconfident", "moderate", "sharp"])
def test_ece_matches_its_definition(seed, sharpness):
    labels = _labels(seed)
    probs = _probabilities(seed + 30, labels, sharpness).astype(np.float32)  # the harness bins float32 confidences
    value = METRICS["ece"](probs, _split(labels))
    assert value == pytest.approx(_ece_from_definition(probs.astype(np.float64), labels), abs=1e-6)
    assert value > 1e-3


def test_ece_of_extreme_predictions():
    labels = np.arange(100, dtype=np.int64) % 4
    confident_right = np.eye(4)[labels]
    confident_wrong = np.eye(4)[(labels + 1) % 4]
    uniform = np.full((100, 4), 0.25)
    assert METRICS["ece"](confident_right, _split(labels)) == pytest.approx(0.0, abs=1e-7)
    assert METRICS["ece"](confident_wrong, _split(labels)) == pytest.approx(1.0, abs=1e-6)
    # every row ties, so every argmax is class 0: accuracy 1/4 at confidence 1/4
    assert METRICS["ece"](uniform, _split(labels)) == pytest.approx(0.0, abs=1e-6)


def test_a_confidence_of_one_is_binned_apart_from_those_just_below():
    # 10 rows at confidence 1.0 (half right) and 10 at 0.94 (all right), gaps of opposite sign: one bin [14/15, 1]
    # would pool them to |0.75 - 0.97| = 0.22; torchmetrics' convention, two bins, gives 0.5 * 0.5 + 0.5 * 0.06.
    labels = np.array([0] * 5 + [1] * 5 + [0] * 10, np.int64)
    probs = np.array([[1.0, 0.0]] * 10 + [[0.94, 0.06]] * 10)
    value = METRICS["ece"](probs, _split(labels))
    assert value == pytest.approx(0.5 * 0.5 + 0.5 * 0.06, abs=1e-6)
    assert value == pytest.approx(_ece_from_definition(probs, labels), abs=1e-6)


MALFORMED_INDICES = {
    "dict": ({"classes": [0]}, "expected a tensor of class indices"),
    "probabilities_not_indices": (torch.full((4, 3), 1 / 3), "shape (4,)"),
    "float_indices": (torch.zeros(4), "integer class indices"),
    "out_of_range": (torch.tensor([0, 1, 2, 3]), "must lie in [0, 3)"),
    "negative": (torch.tensor([0, -1, 2, 1]), "must lie in [0, 3)"),
}


@pytest.mark.parametrize("case", list(MALFORMED_INDICES), ids=list(MALFORMED_INDICES))
def test_accuracy_rejects_malformed_class_indices(case):
    outputs, message = MALFORMED_INDICES[case]
    with pytest.raises(CheckFailure, match=re.escape(message)):
        METRICS["accuracy"](outputs, _split(np.array([0, 1, 2, 0], np.int64)))


MALFORMED_PROBABILITIES = {
    "list": ([[1.0, 0.0, 0.0]] * 4, "expected a float tensor [4, 3]"),
    "indices_not_probabilities": (torch.tensor([0, 1, 2, 0]), "shape (4, 3)"),
    "wrong_class_count": (torch.full((4, 4), 0.25), "shape (4, 3)"),
    "integer_one_hot": (torch.eye(3, dtype=torch.int64)[[0, 1, 2, 0]], "floating dtype"),
    "nan": (torch.tensor([[float("nan"), 0.5, 0.5]] * 4), "finite values in [0, 1]"),
    "logits": (torch.tensor([[2.0, -1.0, 0.0]] * 4), "finite values in [0, 1]"),
    "rows_not_normalised": (torch.full((4, 3), 0.5), "rows must sum to 1"),
}


@pytest.mark.parametrize("metric", ["accuracy_from_probs", "worst_class_f1", "ece"])
@pytest.mark.parametrize("case", list(MALFORMED_PROBABILITIES), ids=list(MALFORMED_PROBABILITIES))
def test_probability_metrics_reject_malformed_probabilities(metric, case):
    outputs, message = MALFORMED_PROBABILITIES[case]
    with pytest.raises(CheckFailure, match=re.escape(message)):
        METRICS[metric](outputs, _split(np.array([0, 1, 2, 0], np.int64)))
