"""COCO box detection metrics: mean average precision by pycocotools' ``COCOeval``, with faster-coco-eval as fast path.

Predictions (what a detection task's predict entry point returns) are a list with one dict per hidden image::

    {"boxes": float32[K, 4] (x1, y1, x2, y2) in pixels, "scores": float32[K], "labels": int64[K]}

The truth is the hidden split's arrays (``harness.datasets.shapes``): ``boxes`` float32[M, 4] xyxy on pixel edges,
``classes`` int64[M] and ``object_image`` int64[M] (the image each object belongs to), ``images`` (N of them).

Both sides become in-memory COCO datasets: image ``i`` has id ``i + 1``, class ``c`` is category ``c + 1``, boxes are
``[x1, y1, x2 - x1, y2 - y1]`` with ``area = w * h`` and ``iscrowd = 0`` (what ``COCO.loadRes`` gives detections).
Every class in the truth or the predictions is a category; a category without ground truth does not count towards
the mean (COCO's rule), so a false positive of an absent class costs nothing. COCOeval's defaults apply: IoU
thresholds 0.50:0.05:0.95, 101 recall points, at most 100 detections per image (the highest-scoring ones).

:func:`coco_metrics` is the path every COCO metric takes (validation and datasets, the backend, COCOeval, the cache);
:mod:`harness.metrics.instance_segmentation` scores masks through it with ``iouType="segm"``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from harness.spec.outcomes import CheckFailure
from harness.topic.compare import as_numpy

__all__ = ["BACKENDS", "detection_predictions", "coco_annotation", "coco_datasets", "coco_metrics", "coco_detection_metrics", "coco_map", "coco_map50"]

BACKENDS = ("faster_coco_eval", "pycocotools")
"""COCOeval implementations, fastest first; they agree to 1e-12 (pycocotools adds np.spacing(1) to precision
denominators, faster-coco-eval does not; see tests/harness/test_metrics_detection.py)."""

_STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large", "mar1", "mar10", "mar100", "mar_small", "mar_medium", "mar_large")
_MAX_LABEL = 2**31 - 2  # category id = label + 1 must fit COCO's int32 ids
_CACHE_SIZE = 4
_cache: list[tuple[str, Any, Any, str, dict[str, float]]] = []  # (iou type, predictions, truth, backend, metrics), newest last


def _tensor_or_array(value: Any, what: str) -> np.ndarray:
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise CheckFailure(f"{what}: expected a tensor, got {type(value).__name__}")
    return as_numpy(value)


def detection_predictions(predictions: Any, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Validate a detection task's predictions: a list of ``count`` dicts with boxes, scores and labels.

    Args:
        predictions: ``[{"boxes": float[K, 4] xyxy, "scores": float[K], "labels": int[K]}, ...]``, one per image;
            tensors or arrays, any floating dtype for boxes and scores, any integer dtype for labels.
        count: the number of hidden images.

    Returns:
        Per image, ``(boxes float64[K, 4], scores float64[K], labels int64[K])``.

    Raises:
        CheckFailure: not a list of ``count`` dicts, a missing key, a wrong shape or dtype, NaN or infinite values,
            ``x2 < x1`` or ``y2 < y1``, or a negative label; the message names the image and what came back.
    """
    if not isinstance(predictions, (list, tuple)):
        raise CheckFailure(f"predictions: expected a list of {count} dicts (boxes, scores, labels), got {type(predictions).__name__}")
    if len(predictions) != count:
        raise CheckFailure(f"predictions: expected one dict per hidden image ({count}), got {len(predictions)}")
    result = []
    for index, image in enumerate(predictions):
        where = f"predictions[{index}]"
        if not isinstance(image, dict) or not {"boxes", "scores", "labels"} <= set(image):
            keys = sorted(image) if isinstance(image, dict) else type(image).__name__
            raise CheckFailure(f"{where}: expected a dict with keys boxes, scores, labels, got {keys}")
        boxes = _tensor_or_array(image["boxes"], f"{where}['boxes']")
        scores = _tensor_or_array(image["scores"], f"{where}['scores']")
        labels = _tensor_or_array(image["labels"], f"{where}['labels']")
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise CheckFailure(f"{where}['boxes']: expected shape (K, 4) xyxy, got {boxes.shape}")
        k = boxes.shape[0]
        if scores.shape != (k,) or labels.shape != (k,):
            raise CheckFailure(f"{where}: expected scores ({k},) and labels ({k},) for {k} boxes, got {scores.shape} and {labels.shape}")
        if not (np.issubdtype(boxes.dtype, np.floating) and np.issubdtype(scores.dtype, np.floating)):
            raise CheckFailure(f"{where}: expected floating boxes and scores, got {boxes.dtype} and {scores.dtype}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise CheckFailure(f"{where}['labels']: expected integer class indices, got {labels.dtype}")
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise CheckFailure(f"{where}: boxes and scores must be finite; got NaN or infinite values")
        if k and ((boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any()):
            raise CheckFailure(f"{where}['boxes']: expected (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2; got x2 < x1 or y2 < y1")
        if k and (labels.min() < 0 or labels.max() > _MAX_LABEL):
            raise CheckFailure(f"{where}['labels']: class indices must lie in [0, {_MAX_LABEL}], got [{labels.min()}, {labels.max()}]")
        result.append((boxes.astype(np.float64), scores.astype(np.float64), labels.astype(np.int64)))
    return result


def _truth_images(truth: dict[str, np.ndarray]) -> int:
    if "images" in truth:
        return len(truth["images"])
    return len(truth["counts"])


def coco_annotation(image: int, label: int, box: np.ndarray) -> dict[str, Any]:
    """One COCO annotation of image index ``image`` (id ``image + 1``), class ``label`` (category ``label + 1``) and
    xyxy ``box`` (``bbox`` xywh, ``area = w * h``, ``iscrowd = 0``); :func:`coco_datasets` numbers it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    return {"image_id": image + 1, "category_id": label + 1, "bbox": [x1, y1, width, height], "area": width * height, "iscrowd": 0}


def coco_datasets(
    images: int, truth: list[dict[str, Any]], detections: list[dict[str, Any]], image_size: tuple[int, int] | None = None
) -> tuple[dict[str, list], dict[str, list]]:
    """In-memory COCO datasets (ground truth, detections) of ``images`` images from annotations (without ids).

    Every class of either side is a category; annotations are numbered 1, 2, ... in order on each side. Images get
    ``height`` and ``width`` when ``image_size`` (H, W) is given (COCO reads them for segmentations).
    """
    categories = [{"id": c} for c in sorted({a["category_id"] for a in truth} | {a["category_id"] for a in detections})]
    size = {} if image_size is None else {"height": int(image_size[0]), "width": int(image_size[1])}
    image_list = [{"id": i + 1, **size} for i in range(images)]

    def dataset(annotations: list[dict[str, Any]]) -> dict[str, list]:
        return {"images": image_list, "categories": categories, "annotations": [{**a, "id": n + 1} for n, a in enumerate(annotations)]}

    return dataset(truth), dataset(detections)


def _coco_datasets(
    predictions: list[tuple[np.ndarray, np.ndarray, np.ndarray]], truth: dict[str, np.ndarray]
) -> tuple[dict[str, list], dict[str, list]]:
    """The ground truth and detections as COCO dataset dicts (see the module docstring for the conventions)."""
    gt_boxes = np.asarray(truth["boxes"], dtype=np.float64).reshape(-1, 4)
    gt_classes = np.asarray(truth["classes"], dtype=np.int64)
    gt_images = np.asarray(truth["object_image"], dtype=np.int64)
    gt = [coco_annotation(int(i), int(c), b) for i, b, c in zip(gt_images, gt_boxes, gt_classes)]
    dt = [{**coco_annotation(image, int(label), box), "score": float(score)}
          for image, (boxes, scores, labels) in enumerate(predictions) for box, score, label in zip(boxes, scores, labels)]  # fmt: skip
    return coco_datasets(len(predictions), gt, dt)


def _evaluate(gt: dict[str, list], dt: dict[str, list], backend: str, iou_type: str = "bbox") -> np.ndarray:
    """COCOeval's twelve summary statistics for in-memory datasets (``iou_type`` "bbox" or "segm")."""
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and summary
        if backend == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval as Evaluator
        elif backend == "faster_coco_eval":
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as Evaluator
        else:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        cocos = []
        for dataset in (gt, dt):
            coco = COCO()
            coco.dataset = dataset
            coco.createIndex()
            cocos.append(coco)
        evaluator = Evaluator(cocos[0], cocos[1], iouType=iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats[: len(_STAT_NAMES)], dtype=np.float64)


def _default_backend() -> str:
    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return "pycocotools"
    return "faster_coco_eval"


def coco_metrics(
    predictions: Any, truth: dict[str, np.ndarray], *, iou_type: str, datasets: Callable[[Any, dict[str, np.ndarray]], tuple[dict, dict]],
    backend: str | None = None,
) -> dict[str, float]:
    """COCOeval's statistics of a task's predictions, the path box and mask metrics share.

    Args:
        predictions: what the task's predict entry point returned.
        truth: the hidden split's arrays.
        iou_type: ``"bbox"`` or ``"segm"``, COCOeval's ``iouType``.
        datasets: validates ``predictions`` (raising CheckFailure) and builds the in-memory COCO datasets
            ``(ground truth, detections)`` from them and ``truth``.
        backend: ``"faster_coco_eval"`` (default when installed) or ``"pycocotools"``.

    Returns:
        COCOeval's twelve ``stats`` by name (``map``, ``map50``, ``map75``, ..., ``mar_large``), computed once per
        (iou type, predictions, truth, backend) object tuple: the checks of one task (mAP, mAP50) share it.
    """
    backend = backend or _default_backend()
    for cached_type, cached_predictions, cached_truth, cached_backend, metrics in _cache:
        if cached_type == iou_type and cached_predictions is predictions and cached_truth is truth and cached_backend == backend:
            return dict(metrics)
    gt, dt = datasets(predictions, truth)
    metrics = dict(zip(_STAT_NAMES, (float(v) for v in _evaluate(gt, dt, backend, iou_type))))
    _cache.append((iou_type, predictions, truth, backend, metrics))  # holds the objects, so their ids cannot be reused
    del _cache[:-_CACHE_SIZE]
    return dict(metrics)


def _box_datasets(predictions: Any, truth: dict[str, np.ndarray]) -> tuple[dict[str, list], dict[str, list]]:
    """Validated box predictions and the truth's boxes as COCO datasets."""
    return _coco_datasets(detection_predictions(predictions, _truth_images(truth)), truth)


def coco_detection_metrics(predictions: Any, truth: dict[str, np.ndarray], *, backend: str | None = None) -> dict[str, float]:
    """COCO box metrics of a detection task's predictions on the hidden split.

    Args:
        predictions: one dict per image, ``{"boxes": float32[K, 4] xyxy, "scores": float32[K], "labels": int64[K]}``.
        truth: the split's arrays: ``boxes`` float32[M, 4] xyxy, ``classes`` int64[M], ``object_image`` int64[M],
            and ``images`` (or ``counts``) giving the number of images N.
        backend: ``"faster_coco_eval"`` (default when installed) or ``"pycocotools"``.

    Returns:
        ``{"map", "map50", "map75", "map_small", "map_medium", "map_large", "mar1", "mar10", "mar100", "mar_small",
        "mar_medium", "mar_large"}`` as COCOeval's ``stats``: -1.0 where undefined (no ground truth at all, or none
        in an area range). Computed once per (predictions, truth, backend) object triple: the checks of one task
        (mAP, mAP50) share it.

    Raises:
        CheckFailure: malformed predictions (see :func:`detection_predictions`).
    """
    return coco_metrics(predictions, truth, iou_type="bbox", datasets=_box_datasets, backend=backend)


def coco_map(predictions: Any, truth: dict[str, np.ndarray]) -> float:
    """COCO mAP (AP averaged over IoU thresholds 0.50:0.05:0.95, all areas, 100 detections per image)."""
    return coco_detection_metrics(predictions, truth)["map"]


def coco_map50(predictions: Any, truth: dict[str, np.ndarray]) -> float:
    """COCO AP at IoU threshold 0.50 (all areas, 100 detections per image)."""
    return coco_detection_metrics(predictions, truth)["map50"]
