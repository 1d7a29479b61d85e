"""Semantic segmentation metrics: predicted class maps against the hidden ``semantic`` masks.

Everything is computed from one **dataset-level** confusion matrix: counts are accumulated over every pixel of
every image first, and only then turned into per-class IoU. This is torchmetrics'
``MulticlassJaccardIndex(average="macro")`` on the concatenated dataset, not its ``MeanIoU`` (which averages
per image), and not the lesson's average of per-batch IoUs (which weighs a batch with three pixels of a class like
one with three thousand, and turns "absent" into 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.spec.outcomes import CheckFailure
from harness.topic.compare import as_numpy

__all__ = [
    "segmentation_confusion_matrix",
    "iou_from_confusion",
    "mean_iou_from_confusion",
    "class_maps",
    "semantic_num_classes",
    "miou",
    "pixel_accuracy",
]


def segmentation_confusion_matrix(predictions: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """int64[C, C] counts over every pixel: row = true class, column = predicted class (scikit-learn's layout).

    Args:
        predictions (int array [...]): predicted classes in ``[0, num_classes)``, the same shape as ``truth``.
        truth (int array [...]): true classes in ``[0, num_classes)``, or ``ignore_index``.
        num_classes (int): ``C`` >= 1.
        ignore_index (int | None): pixels whose true class is this value are left out.

    Raises:
        ValueError: shapes differ, ``num_classes`` < 1, or a class lies outside ``[0, num_classes)``.
    """
    predictions, truth = np.asarray(predictions), np.asarray(truth)
    if predictions.shape != truth.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, truth {truth.shape}: they must be equal")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    predictions, truth = predictions.astype(np.int64).ravel(), truth.astype(np.int64).ravel()
    if ignore_index is not None:
        keep = truth != ignore_index
        predictions, truth = predictions[keep], truth[keep]
    for name, values in (("predictions", predictions), ("truth", truth)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name}: classes must lie in [0, {num_classes}), got [{values.min()}, {values.max()}]")
    counts = np.bincount(truth * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """float64[C]: ``TP / (TP + FP + FN)`` per class; NaN for a class absent from both truth and prediction."""
    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / np.where(union > 0, union, 1), np.nan)


def mean_iou_from_confusion(confusion: np.ndarray) -> float:
    """The mean of :func:`iou_from_confusion` over classes present in truth or prediction (NaN if none is)."""
    iou = iou_from_confusion(confusion)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def semantic_num_classes(truth: dict[str, np.ndarray]) -> int:
    """Classes of a shapes split's ``semantic`` masks: background plus one per shape class the split draws."""
    semantic = truth["semantic"]
    largest = int(semantic.max()) if semantic.size else 0
    if "classes" in truth and len(truth["classes"]):
        largest = max(largest, int(truth["classes"].max()) + 1)
    return largest + 1


def class_maps(outputs: Any, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    """Validate predicted class maps: ``uint8`` or ``int64`` ``[N, H, W]`` with values in ``[0, num_classes)``.

    Raises:
        CheckFailure: wrong type, shape, dtype or range, with what was received.
    """
    if not isinstance(outputs, (torch.Tensor, np.ndarray)):
        raise CheckFailure(f"predictions: expected a uint8 or int64 tensor of class maps [N, H, W], got {type(outputs).__name__}")
    maps = as_numpy(outputs)
    if maps.shape != tuple(shape):
        raise CheckFailure(f"predictions: expected class maps of shape {tuple(shape)} (one class per pixel), got {maps.shape}")
    if maps.dtype not in (np.uint8, np.int64):
        raise CheckFailure(f"predictions: expected dtype uint8 or int64 class indices, got {maps.dtype}")
    if maps.size and (int(maps.min()) < 0 or int(maps.max()) >= num_classes):
        raise CheckFailure(f"predictions: classes must lie in [0, {num_classes}), got [{maps.min()}, {maps.max()}]")
    return maps


def miou(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """Mean IoU over the classes (background included) from the confusion matrix of the whole hidden split."""
    semantic = truth["semantic"]
    num_classes = semantic_num_classes(truth)
    maps = class_maps(outputs, semantic.shape, num_classes)
    return mean_iou_from_confusion(segmentation_confusion_matrix(maps, semantic, num_classes))


def pixel_accuracy(outputs: Any, truth: dict[str, np.ndarray]) -> float:
    """Fraction of the hidden split's pixels whose predicted class is the true one."""
    semantic = truth["semantic"]
    maps = class_maps(outputs, semantic.shape, semantic_num_classes(truth))
    return float(np.mean(maps.astype(np.int64) == semantic.astype(np.int64))) if semantic.size else float("nan")
