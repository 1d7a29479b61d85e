# Generated from reference/detection.py by `visionbench stub detection`: fill in the bodies, keep the signatures.
"""YOLO from scratch: boxes, IoU, non-maximum suppression, anchor coding, the YOLO loss, and COCO mean average precision.

Conventions: a box is ``(x1, y1, x2, y2)`` ("xyxy") in pixels with ``x1 <= x2`` and ``y1 <= y2``, x to the right and
y down; its width is ``x2 - x1`` (no "+1": boxes lie on pixel edges, a box around pixel columns 3..7 has x1 = 3,
x2 = 8). Images are NCHW float tensors in [0, 1]. The detection head predicts, for every cell of an ``H x W`` grid
(one cell per ``stride x stride`` pixels) and every one of ``A`` anchors (a prior box size ``(w, h)`` in pixels),
``5 + C`` numbers: ``tx, ty, tw, th`` (the box), an objectness logit and ``C`` class logits. Channels are grouped by
anchor: ``pred`` is ``Tensor[N, A * (5 + C), H, W]``, which ``pred.view(N, A, 5 + C, H, W)`` unpacks.

Box coding (YOLOv2/v3): the centre of a box in cell ``(column, row)`` is ``((column + sigmoid(tx)) * stride,
(row + sigmoid(ty)) * stride)``, so the centre offsets are coded in logit space; its size is ``(anchor_w * exp(tw),
anchor_h * exp(th))``, a log-ratio to the anchor.

The path of the lesson:
- ``box_convert``, ``box_iou``, ``generalized_box_iou``: the geometry every detector needs.
- ``nms``, ``batched_nms``: keep the best box of each cluster of overlapping boxes (per class).
- ``encode``, ``decode``, ``assign_targets``: which anchor of which cell is responsible for a ground-truth box, and
  what it should predict.
- ``yolo_loss``: box, objectness and class terms, reported separately.
- ``postprocess``: raw head output to scored, class-labelled, suppressed boxes.
- ``mean_average_precision``: COCO's mAP, the number detection papers report, with COCOeval's exact rules.
- ``train_yolo`` / ``predict_yolo``: the metric task, a ~79k-parameter YOLO on 64x64 shapes64 scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.training import BudgetClock, seeded, seeded_generator, split_images, warmup_cosine

__all__ = [
    "box_convert",
    "box_iou",
    "generalized_box_iou",
    "nms",
    "batched_nms",
    "encode",
    "decode",
    "assign_targets",
    "yolo_loss",
    "postprocess",
    "mean_average_precision",
    "train_yolo",
    "predict_yolo",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


# --- input checks -----------------------------------------------------------------------------------------------------


# --- box geometry -----------------------------------------------------------------------------------------------------


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between the formats ``xyxy``, ``xywh`` and ``cxcywh``.

    ``xyxy`` is ``(x1, y1, x2, y2)``; ``xywh`` is ``(x1, y1, w, h)`` (COCO's); ``cxcywh`` is ``(cx, cy, w, h)``.

    Args:
        boxes (Tensor[N, 4]): floating boxes in ``in_fmt``.
        in_fmt (str): one of ``"xyxy"``, ``"xywh"``, ``"cxcywh"``.
        out_fmt (str): one of the same.

    Returns:
        Tensor[N, 4]: the boxes in ``out_fmt``, same dtype.

    Raises:
        TypeError, ValueError: ``boxes`` not a floating Tensor[N, 4]; an unknown format.
    """
    raise NotImplementedError("detection.box_convert: see specs/06_detection.yaml")


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise intersection over union of two sets of xyxy boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy boxes, ``x1 <= x2`` and ``y1 <= y2``.
        boxes2 (Tensor[M, 4]): xyxy boxes, same dtype.

    Returns:
        Tensor[N, M]: ``IoU[i, j] = area(b1_i & b2_j) / area(b1_i | b2_j)``; NaN where both boxes have zero area
        (0 / 0, as torchvision gives).

    Raises:
        TypeError, ValueError: not floating Tensor[*, 4].
    """
    raise NotImplementedError("detection.box_iou: see specs/06_detection.yaml")


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019): ``IoU - (area(C) - union) / area(C)``.

    ``C`` is the smallest box enclosing both; GIoU lies in [-1, 1] and, unlike IoU, still says how far apart two
    disjoint boxes are, which makes ``1 - GIoU`` a useful box loss.

    Args:
        boxes1 (Tensor[N, 4]): xyxy boxes, ``x1 <= x2`` and ``y1 <= y2``.
        boxes2 (Tensor[M, 4]): xyxy boxes, same dtype.

    Returns:
        Tensor[N, M]: generalized IoU of every pair.

    Raises:
        TypeError, ValueError: not floating Tensor[*, 4].
    """
    raise NotImplementedError("detection.generalized_box_iou: see specs/06_detection.yaml")


# --- non-maximum suppression ------------------------------------------------------------------------------------------


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Visit boxes from the highest score down (ties: the lower index first); keep a box unless it overlaps an already
    kept box with IoU strictly greater than ``iou_threshold`` (a box exactly at the threshold is kept).

    Args:
        boxes (Tensor[N, 4]): xyxy boxes, ``x1 <= x2`` and ``y1 <= y2``.
        scores (Tensor[N]): their scores.
        iou_threshold (float): suppress overlaps with IoU > this.

    Returns:
        Tensor[K] int64: indices of the kept boxes, in decreasing order of score.

    Raises:
        TypeError, ValueError: malformed boxes or scores.
    """
    raise NotImplementedError("detection.nms: see specs/06_detection.yaml")


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression within each category: boxes of different ``idxs`` never suppress each other.

    Args:
        boxes (Tensor[N, 4]): xyxy boxes.
        scores (Tensor[N]): their scores.
        idxs (Tensor[N] int64): the category of each box.
        iou_threshold (float): suppress overlaps with IoU > this.

    Returns:
        Tensor[K] int64: indices of the kept boxes, in decreasing order of score (ties: the lower index first).

    Raises:
        TypeError, ValueError: malformed boxes, scores or idxs.
    """
    raise NotImplementedError("detection.batched_nms: see specs/06_detection.yaml")


# --- anchor coding ----------------------------------------------------------------------------------------------------


def encode(boxes: Tensor, anchors: Tensor, stride: int, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Code each box relative to the grid cell holding its centre and to its anchor.

    ``column = floor(cx / stride)``, ``row = floor(cy / stride)``;
    ``tx = logit(clamp(cx / stride - column, eps, 1 - eps))`` (same for ``ty``), ``tw = log(w / anchor_w)``,
    ``th = log(h / anchor_h)``.

    Args:
        boxes (Tensor[M, 4]): xyxy boxes in pixels, positive width and height.
        anchors (Tensor[M, 2]): the anchor size ``(w, h)`` in pixels each box is coded against.
        stride (int): pixels per grid cell.
        eps (float): keeps the centre offsets inside (0, 1), where the logit is finite.

    Returns:
        tuple[Tensor[M, 4], Tensor[M, 2] int64]: the codes ``(tx, ty, tw, th)``, and the cells ``(column, row)``.

    Raises:
        TypeError, ValueError: malformed boxes or anchors, or ``stride`` <= 0.
    """
    raise NotImplementedError("detection.encode: see specs/06_detection.yaml")


def decode(offsets: Tensor, anchors: Tensor, stride: int) -> Tensor:
    """Boxes from the box codes predicted on a grid (the inverse of :func:`encode`).

    Args:
        offsets (Tensor[N, A, H, W, 4]): ``(tx, ty, tw, th)`` of every anchor of every cell (row ``y``, column ``x``).
        anchors (Tensor[A, 2]): anchor sizes ``(w, h)`` in pixels.
        stride (int): pixels per grid cell.

    Returns:
        Tensor[N, A, H, W, 4]: xyxy boxes in pixels, ``cx = (x + sigmoid(tx)) * stride``,
        ``w = anchor_w * exp(tw)``.

    Raises:
        ValueError: malformed offsets or anchors.
    """
    raise NotImplementedError("detection.decode: see specs/06_detection.yaml")


def assign_targets(boxes: Tensor, labels: Tensor, anchors: Tensor, stride: int, grid_size: tuple[int, int]) -> dict[str, Tensor]:
    """Make the anchors responsible for the ground-truth boxes of one image, and their training targets.

    Each box goes to the cell holding its centre (``floor(c / stride)``, clamped into the grid) and to the anchor
    whose size has the highest IoU with the box's when both are centred together (ties: the lower anchor index).
    When two boxes claim the same anchor of the same cell, the later box (in input order) wins.

    Args:
        boxes (Tensor[M, 4]): xyxy ground-truth boxes in pixels, positive width and height.
        labels (Tensor[M] int64): their classes.
        anchors (Tensor[A, 2]): anchor sizes ``(w, h)`` in pixels.
        stride (int): pixels per grid cell.
        grid_size (tuple[int, int]): ``(H, W)`` cells.

    Returns:
        dict[str, Tensor]: ``mask`` bool[A, H, W] (responsible anchors), ``boxes`` float[A, H, W, 4] (the
        :func:`encode` codes of the assigned box, zeros elsewhere) and ``labels`` int64[A, H, W] (-1 elsewhere).

    Raises:
        TypeError, ValueError: malformed inputs.
    """
    raise NotImplementedError("detection.assign_targets: see specs/06_detection.yaml")


# --- loss -------------------------------------------------------------------------------------------------------------


def yolo_loss(pred: Tensor, targets: dict[str, Tensor], box_weight: float = 5.0, obj_weight: float = 1.0, cls_weight: float = 1.0) -> dict[str, Tensor]:
    """The YOLO loss, with its three parts reported separately.

    With ``P`` the responsible anchors (``targets["mask"]``), ``|P|`` their number (at least 1 in the denominators):

    - ``box = sum_P [(sigmoid(px) - sigmoid(tx))^2 + (sigmoid(py) - sigmoid(ty))^2 + (pw - tw)^2 + (ph - th)^2] / |P|``
    - ``obj`` = binary cross-entropy of the objectness logits against the mask, averaged over all N*A*H*W anchors
    - ``cls`` = cross-entropy of the class logits against ``targets["labels"]``, summed over ``P``, divided by ``|P|``
    - ``total = box_weight * box + obj_weight * obj + cls_weight * cls``

    Args:
        pred (Tensor[N, A * (5 + C), H, W]): raw head output, channels grouped by anchor
            (``tx, ty, tw, th, objectness, C class logits``).
        targets (dict[str, Tensor]): ``mask`` bool[N, A, H, W], ``boxes`` float[N, A, H, W, 4] (codes of
            :func:`encode`), ``labels`` int64[N, A, H, W]: :func:`assign_targets` of each image, stacked.
        box_weight, obj_weight, cls_weight (float): weights of the parts in ``total``.

    Returns:
        dict[str, Tensor]: scalar tensors ``box``, ``obj``, ``cls`` and ``total`` (differentiable).

    Raises:
        ValueError: shapes that do not fit together.
    """
    raise NotImplementedError("detection.yolo_loss: see specs/06_detection.yaml")


# --- postprocessing ---------------------------------------------------------------------------------------------------


def postprocess(pred: Tensor, anchors: Tensor, stride: int, conf_threshold: float, iou_threshold: float) -> list[dict[str, Tensor]]:
    """Raw head output to detections: decode, score, threshold, and suppress per class.

    The score of an anchor is ``sigmoid(objectness) * max_c softmax(class logits)_c`` and its label that ``c``;
    anchors with ``score > conf_threshold`` are kept, then :func:`batched_nms` by label with ``iou_threshold``.

    Args:
        pred (Tensor[N, A * (5 + C), H, W]): raw head output, channels grouped by anchor.
        anchors (Tensor[A, 2]): anchor sizes ``(w, h)`` in pixels.
        stride (int): pixels per grid cell.
        conf_threshold (float): minimum score (exclusive).
        iou_threshold (float): NMS threshold.

    Returns:
        list[dict[str, Tensor]]: per image ``boxes`` float32[K, 4] xyxy, ``scores`` float32[K] and ``labels``
        int64[K], in decreasing order of score.

    Raises:
        ValueError: malformed pred or anchors.
    """
    raise NotImplementedError("detection.postprocess: see specs/06_detection.yaml")


# --- COCO mean average precision ---------------------------------------------------------------------------------------

_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's, built the same way so the floats are identical
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
_MAX_DETECTIONS = 100  # per image and class


def mean_average_precision(detections: list[dict[str, Tensor]], ground_truths: list[dict[str, Tensor]]) -> dict[str, float]:
    """COCO box mAP with COCOeval's rules: mAP over IoU 0.50:0.05:0.95, AP at 0.50 and 0.75.

    Per class and IoU threshold ``t``: in each image, detections of the class are sorted by score (stable) and the
    first 100 kept; each, in turn, matches the unmatched ground truth with the highest IoU ``>= t`` (on equal IoU
    the later one). Over all images (in order; within an image in score order), detections are sorted by score
    (stable), giving cumulative precision and recall; precision is made non-increasing from the right (the
    interpolation) and read at the 101 recall points 0, 0.01, ..., 1 (0 beyond the highest recall reached); AP is
    their mean. A class counts only if some image has a ground truth of it. mAP is the mean over the ten thresholds
    and those classes; -1.0 when there is no ground truth at all (COCOeval's "undefined").

    Args:
        detections (list[dict[str, Tensor]]): per image ``boxes`` [K, 4] xyxy, ``scores`` [K], ``labels`` int64[K].
        ground_truths (list[dict[str, Tensor]]): per image ``boxes`` [M, 4] xyxy, ``labels`` int64[M]; same length.

    Returns:
        dict[str, float]: ``map``, ``map50``, ``map75``.

    Raises:
        ValueError: lists of different lengths or malformed entries.
    """
    raise NotImplementedError("detection.mean_average_precision: see specs/06_detection.yaml")


# --- the model and the metric task ------------------------------------------------------------------------------------


def train_yolo(train: dict, *, seed: int, budget_s: float) -> nn.Module:
    """Train a TinyYOLO on shapes scenes: a fixed schedule of AdamW steps with flips, transposes and colour shuffles.

    The loss is :func:`yolo_loss` on the :func:`assign_targets` of every image. The schedule (epochs, batch size,
    warm-up and cosine decay) is fixed, so a seed gives the same model on any machine, whatever its load; only
    where the budget is nearly spent first (a much slower machine) does training stop early, to return in time.

    Args:
        train (dict): ``images`` float32[N, 3, 64, 64] in [0, 1]; ``boxes`` float32[M, 4] xyxy pixels, ``classes``
            int64[M] and ``object_image`` int64[M] (the image of each object).
        seed (int): the run's seed (initialisation, shuffling, augmentation); the global RNG is left as it was.
        budget_s (float): CPU seconds allowed (the schedule needs ~40-45 s on one thread of a 2-core machine); training
            stops early only once the budget clock expires (``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        nn.Module: the trained TinyYOLO, in eval mode.

    Raises:
        TypeError, ValueError: a malformed split, or ``budget_s`` <= 0.
    """
    raise NotImplementedError("detection.train_yolo: see specs/06_detection.yaml")


def predict_yolo(model: nn.Module, inputs: dict) -> list[dict[str, Tensor]]:
    """Detections for every image: :func:`postprocess` of the model's output.

    Args:
        model (nn.Module): what ``train_yolo`` returned.
        inputs (dict): ``{"images": Tensor[N, 3, 64, 64] float32 in [0, 1]}``.

    Returns:
        list[dict[str, Tensor]]: per image ``boxes`` float32[K, 4] xyxy pixels, ``scores`` float32[K], ``labels``
        int64[K], at most 100, in decreasing order of score.

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    raise NotImplementedError("detection.predict_yolo: see specs/06_detection.yaml")
