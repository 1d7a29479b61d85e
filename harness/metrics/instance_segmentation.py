"""COCO mask (segm) metrics: mask AP by pycocotools' ``COCOeval(iouType="segm")``, faster-coco-eval as fast path.

Predictions (what an instance segmentation task's predict entry point returns) are a list with one dict per hidden
image::

    {"boxes": float32[K, 4] xyxy, "scores": float32[K], "labels": int64[K], "masks": bool[K, H, W]}

``masks`` are full-image binary masks (``H, W`` the image's); the boxes are validated like a detection's but not
scored (segm IoU compares masks only). The truth is the hidden split's arrays (``harness.datasets.shapes``):
``instances`` uint8[N, H, W] (``k + 1`` where the image's ``k``-th object is on top), ``classes`` int64[M],
``object_image`` int64[M] and ``counts`` int64[N]; object ``k``'s mask is its visible pixels
(:func:`harness.datasets.shapes.instance_masks`).

Masks become COCO run-length encodings with ``pycocotools.mask.encode`` of Fortran-ordered (column-major) uint8
arrays, as COCO stores them; a ground truth's ``area`` is its mask's pixel count, and a detection gets the ``area``
and ``bbox`` of its mask, as ``COCO.loadRes`` gives them. Images, categories, the 100 detections per image and the
undefined (-1) cases follow :mod:`harness.metrics.detection`, whose :func:`~harness.metrics.detection.coco_metrics`
path (backend, COCOeval, cache) these metrics share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.datasets.shapes import instance_masks
from harness.metrics.detection import coco_annotation, coco_datasets, coco_metrics, detection_predictions
from harness.spec.outcomes import CheckFailure
from harness.topic.compare import as_numpy

__all__ = ["mask_predictions", "encode_masks", "coco_mask_metrics", "coco_mask_map", "coco_mask_map50"]


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO RLEs (``{"size": [H, W], "counts": bytes}``) of binary masks ``[K, H, W]``, by pycocotools."""
    from pycocotools import mask as mask_utils

    if not len(masks):
        return []
    return mask_utils.encode(np.asfortranarray(np.moveaxis(masks.astype(np.uint8), 0, -1)))  # (H, W, K), column-major


def mask_predictions(predictions: Any, count: int, image_shape: tuple[int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Validate an instance segmentation task's predictions: detections (see
    :func:`~harness.metrics.detection.detection_predictions`) that also carry full-image binary masks.

    Args:
        predictions: one dict per image with ``boxes``, ``scores``, ``labels`` and ``masks`` bool[K, H, W] (0/1
            integer masks are accepted too).
        count: the number of hidden images.
        image_shape: ``(H, W)`` of the hidden images.

    Returns:
        Per image, ``(boxes float64[K, 4], scores float64[K], labels int64[K], masks bool[K, H, W])``.

    Raises:
        CheckFailure: what :func:`detection_predictions` rejects; a missing ``masks``; masks not a tensor of shape
            ``(K, H, W)``; floating masks (probabilities must be thresholded); values other than 0 and 1.
    """
    detections = detection_predictions(predictions, count)
    result = []
    for index, (image, (boxes, scores, labels)) in enumerate(zip(predictions, detections)):
        where = f"predictions[{index}]['masks']"
        if "masks" not in image:
            raise CheckFailure(f"predictions[{index}]: expected a dict with keys boxes, scores, labels, masks, got {sorted(image)}")
        if not isinstance(image["masks"], (torch.Tensor, np.ndarray)):
            raise CheckFailure(f"{where}: expected a tensor, got {type(image['masks']).__name__}")
        masks = as_numpy(image["masks"])
        expected = (len(boxes), *image_shape)
        if masks.shape != expected:
            raise CheckFailure(f"{where}: expected full-image masks of shape {expected} (one per box), got {masks.shape}")
        if masks.dtype != np.bool_:
            if not np.issubdtype(masks.dtype, np.integer):
                raise CheckFailure(f"{where}: expected binary masks (bool), got dtype {masks.dtype}; threshold probabilities first")
            if masks.size and (masks.min() < 0 or masks.max() > 1):
                raise CheckFailure(f"{where}: expected binary masks (bool or 0/1), got values in [{masks.min()}, {masks.max()}]")
        result.append((boxes, scores, labels, masks.astype(bool)))
    return result


def _segm_annotation(image: int, label: int, rle: dict[str, Any]) -> dict[str, Any]:
    """A COCO annotation whose ``segmentation`` is ``rle``, with its mask's ``area`` and ``bbox`` (``COCO.loadRes``)."""
    from pycocotools import mask as mask_utils

    x, y, width, height = (float(v) for v in mask_utils.toBbox(rle))
    return {**coco_annotation(image, label, np.array([x, y, x + width, y + height])), "segmentation": rle, "area": float(mask_utils.area(rle))}


def _mask_datasets(predictions: Any, truth: dict[str, np.ndarray]) -> tuple[dict[str, list], dict[str, list]]:
    """Ground truth and detections as in-memory COCO datasets with RLE segmentations (see the module docstring)."""
    instances = np.asarray(truth["instances"])
    checked = mask_predictions(predictions, len(instances), instances.shape[1:])
    classes, owners = np.asarray(truth["classes"], dtype=np.int64), np.asarray(truth["object_image"], dtype=np.int64)
    gt = []
    for image in range(len(instances)):
        image_classes = classes[owners == image]
        rles = encode_masks(instance_masks(truth, image))  # in drawing order, like image_classes
        gt.extend(_segm_annotation(image, int(label), rle) for label, rle in zip(image_classes, rles))
    dt = []
    for image, (_, scores, labels, masks) in enumerate(checked):
        for score, label, rle in zip(scores, labels, encode_masks(masks)):
            dt.append({**_segm_annotation(image, int(label), rle), "score": float(score)})
    return coco_datasets(len(instances), gt, dt, image_size=instances.shape[1:])


def coco_mask_metrics(predictions: Any, truth: dict[str, np.ndarray], *, backend: str | None = None) -> dict[str, float]:
    """COCO mask (segm) metrics of an instance segmentation task's predictions on the hidden split.

    Args:
        predictions: one dict per image, ``{"boxes", "scores", "labels", "masks": bool[K, H, W]}``.
        truth: the split's arrays: ``instances`` uint8[N, H, W], ``counts`` int64[N], ``classes`` int64[M],
            ``object_image`` int64[M].
        backend: ``"faster_coco_eval"`` (default when installed) or ``"pycocotools"``.

    Returns:
        COCOeval's twelve ``stats`` by name (``map``, ``map50``, ``map75``, ... as in
        :func:`~harness.metrics.detection.coco_detection_metrics`), with mask IoU; computed once per predictions,
        truth and backend.

    Raises:
        CheckFailure: malformed predictions (see :func:`mask_predictions`).
    """
    return coco_metrics(predictions, truth, iou_type="segm", datasets=_mask_datasets, backend=backend)


def coco_mask_map(predictions: Any, truth: dict[str, np.ndarray]) -> float:
    """COCO mask AP (segm, averaged over IoU thresholds 0.50:0.05:0.95, all areas, 100 detections per image)."""
    return coco_mask_metrics(predictions, truth)["map"]


def coco_mask_map50(predictions: Any, truth: dict[str, np.ndarray]) -> float:
    """COCO mask AP at IoU threshold 0.50 (segm, all areas, 100 detections per image)."""
    return coco_mask_metrics(predictions, truth)["map50"]
