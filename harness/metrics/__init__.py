"""Metrics the harness computes on hidden splits, with trusted libraries; implementations never compute their own.

A metric is ``metric(outputs, truth) -> float``: ``outputs`` is what the task's predict entry point returned (validated
here, with a CheckFailure that says what was expected), ``truth`` the hidden split's arrays. Each family lives in a
module of its own; :data:`METRICS` names them for the specs' ``metric:`` fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.metrics.calibration import accuracy_from_probs, ece, worst_class_f1
from harness.metrics.classification import accuracy
from harness.metrics.detection import coco_map, coco_map50
from harness.metrics.instance_segmentation import coco_mask_map, coco_mask_map50
from harness.metrics.segmentation import miou, pixel_accuracy

__all__ = ["METRICS", "Metric"]

Metric = Callable[[Any, dict[str, np.ndarray]], float]

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "accuracy_from_probs": accuracy_from_probs,
    "ece": ece,
    "worst_class_f1": worst_class_f1,
    "coco_map": coco_map,
    "coco_map50": coco_map50,
    "coco_mask_map": coco_mask_map,
    "coco_mask_map50": coco_mask_map50,
    "miou": miou,
    "pixel_accuracy": pixel_accuracy,
}
