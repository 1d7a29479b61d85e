"""Classification metrics: predicted class indices against the hidden labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.spec.outcomes import CheckFailure
from harness.topic.compare import as_numpy

__all__ = ["accuracy", "class_predictions"]


def class_predictions(outputs: Any, count: int, num_classes: int) -> np.ndarray:
    """Validate predicted class indices: ``int[count]`` with values in ``[0, num_classes)``.

    Raises:
        CheckFailure: wrong type, shape, dtype or range, with what was received.
    """
    if not isinstance(outputs, (torch.Tensor, np.ndarray, list)):
        raise CheckFailure(f"predictions: expected a tensor of class indices, got {type(outputs).__name__}")
    predictions = as_numpy(outputs)
    if predictions.shape != (count,):
        raise CheckFailure(f"predictions: expected shape ({count},) (one class index per image), got {predictions.shape}")
    if not np.issubdtype(predictions.dtype, np.integer):
        raise CheckFailure(f"predictions: expected integer class indices, got dtype {predictions.dtype}")
    if predictions.size and (predictions.min() < 0 or predictions.max() >= num_classes):
        raise CheckFailure(f"predictions: class indices must lie in [0, {num_classes}), got [{predictions.min()}, {predictions.max()}]")
    return predictions


def accuracy(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """Fraction of images whose predicted class equals the label (scikit-learn's ``accuracy_score``)."""
    from sklearn.metrics import accuracy_score  # imported on use: it costs every topic's start-up almost a second

    labels = truth["labels"]
    predictions = class_predictions(outputs, len(labels), int(labels.max()) + 1)
    return float(accuracy_score(labels, predictions))
