"""Metrics on predicted class probabilities: accuracy and the worst class's F1 of their argmax (scikit-learn), and
expected calibration error (torchmetrics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.spec.outcomes import CheckFailure
from harness.topic.compare import as_numpy

__all__ = ["class_probabilities", "accuracy_from_probs", "per_class_f1", "worst_class_f1", "ece", "ROW_SUM_TOLERANCE", "ECE_BINS"]

ROW_SUM_TOLERANCE = 1e-3  # rows of probabilities must sum to 1 within this
ECE_BINS = 15


def class_probabilities(outputs: Any, count: int, num_classes: int) -> np.ndarray:
    """Validate predicted probabilities: floating ``[count, num_classes]``, finite, in [0, 1], rows summing to 1.

    Raises:
        CheckFailure: wrong type, shape, dtype or values, with what was received.
    """
    if not isinstance(outputs, (torch.Tensor, np.ndarray)):
        raise CheckFailure(f"probabilities: expected a float tensor [{count}, {num_classes}], got {type(outputs).__name__}")
    probs = as_numpy(outputs)
    if probs.shape != (count, num_classes):
        raise CheckFailure(f"probabilities: expected shape ({count}, {num_classes}) (one row per image), got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise CheckFailure(f"probabilities: expected a floating dtype, got {probs.dtype}")
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all() or probs.min(initial=0) < 0 or probs.max(initial=0) > 1 + ROW_SUM_TOLERANCE:
        raise CheckFailure("probabilities: expected finite values in [0, 1]")
    worst = float(np.abs(probs.sum(axis=1) - 1).max(initial=0))
    if worst > ROW_SUM_TOLERANCE:
        raise CheckFailure(f"probabilities: rows must sum to 1 (within {ROW_SUM_TOLERANCE:g}); the worst is off by {worst:.3g}")
    return probs


def _probabilities_and_labels(outputs: Any, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The validated ``float64[N, C]`` probabilities and the hidden ``labels[N]``; ``C`` is the labels' class count."""
    labels = truth["labels"]
    return class_probabilities(outputs, len(labels), int(labels.max()) + 1), labels


def accuracy_from_probs(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """Fraction of images whose most probable class (first on a tie) equals the label."""
    probs, labels = _probabilities_and_labels(outputs, truth)
    return float(np.mean(probs.argmax(axis=1) == labels))


def per_class_f1(outputs: Any, truth: dict[str, np.ndarray]) -> np.ndarray:
    """float64[C]: each class's F1 of the rows' argmax (scikit-learn's ``precision_recall_fscore_support``); 0 for a
    class that is never predicted correctly, including one never predicted at all."""
    from sklearn.metrics import precision_recall_fscore_support  # imported on use: slow import

    probs, labels = _probabilities_and_labels(outputs, truth)
    classes = list(range(probs.shape[1]))
    _, _, f1, _ = precision_recall_fscore_support(labels, probs.argmax(axis=1), labels=classes, zero_division=0)
    return f1


def worst_class_f1(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """The lowest per-class F1 (:func:`per_class_f1`): every class must be learned, which accuracy alone does not
    ask (a classifier that never predicts one of ten balanced classes can still score 0.9)."""
    return float(per_class_f1(outputs, truth).min())


def ece(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """15-bin expected calibration error of the probabilities (torchmetrics' MulticlassCalibrationError, norm l1)."""
    from torchmetrics.functional.classification import multiclass_calibration_error  # imported on use: slow import

    probs, labels = _probabilities_and_labels(outputs, truth)
    value = multiclass_calibration_error(
        torch.from_numpy(probs), torch.from_numpy(np.array(labels, np.int64)), num_classes=probs.shape[1], n_bins=ECE_BINS, norm="l1"
    )
    return float(value)
