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


def _check_boxes(boxes: Tensor, name: str) -> None:
    """Raise TypeError/ValueError unless ``boxes`` is a floating ``Tensor[N, 4]``."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name}: expected a Tensor[N, 4], got {type(boxes).__name__}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point Tensor[N, 4], got dtype {boxes.dtype}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: expected a tensor of shape [N, 4], got {tuple(boxes.shape)}")


def _check_scores(scores: Tensor, count: int, name: str) -> None:
    if not isinstance(scores, Tensor) or scores.shape != (count,):
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{name}: expected scores of shape [{count}], got {got}")


def _check_anchors(anchors: Tensor, name: str) -> None:
    if not isinstance(anchors, Tensor) or anchors.dim() != 2 or anchors.shape[1] != 2:
        got = tuple(anchors.shape) if isinstance(anchors, Tensor) else type(anchors).__name__
        raise ValueError(f"{name}: expected anchors Tensor[A, 2] (w, h) in pixels, got {got}")
    if not bool((anchors > 0).all()):
        raise ValueError(f"{name}: anchor sizes must be > 0")


def _check_pred(pred: Tensor, anchors: Tensor, name: str) -> int:
    """Check ``pred`` is ``Tensor[N, A * (5 + C), H, W]`` with C >= 1; return C."""
    if not isinstance(pred, Tensor) or pred.dim() != 4:
        got = tuple(pred.shape) if isinstance(pred, Tensor) else type(pred).__name__
        raise ValueError(f"{name}: expected pred Tensor[N, A * (5 + C), H, W], got {got}")
    per_anchor, remainder = divmod(pred.shape[1], len(anchors))
    if remainder or per_anchor < 6:
        raise ValueError(f"{name}: pred has {pred.shape[1]} channels, not A * (5 + C) with A = {len(anchors)} and C >= 1")
    return per_anchor - 5


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
    _check_boxes(boxes, "box_convert")
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"box_convert: format must be one of {BOX_FORMATS}, got {fmt!r}")
    a, b, c, d = boxes.unbind(-1)
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    # (a, b, c, d) is now xyxy
    if out_fmt == "xywh":
        return torch.stack([a, b, c - a, d - b], dim=-1)
    if out_fmt == "cxcywh":
        return torch.stack([(a + c) / 2, (b + d) / 2, c - a, d - b], dim=-1)
    return torch.stack([a, b, c, d], dim=-1)


def _area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _intersection_union(boxes1: Tensor, boxes2: Tensor) -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas, each ``Tensor[N, M]``."""
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    size = (bottom_right - top_left).clamp(min=0)
    intersection = size[..., 0] * size[..., 1]
    union = _area(boxes1)[:, None] + _area(boxes2)[None, :] - intersection
    return intersection, union


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
    _check_boxes(boxes1, "box_iou(boxes1)")
    _check_boxes(boxes2, "box_iou(boxes2)")
    intersection, union = _intersection_union(boxes1, boxes2)
    return intersection / union


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
    _check_boxes(boxes1, "generalized_box_iou(boxes1)")
    _check_boxes(boxes2, "generalized_box_iou(boxes2)")
    intersection, union = _intersection_union(boxes1, boxes2)
    iou = intersection / union
    top_left = torch.min(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.max(boxes1[:, None, 2:], boxes2[None, :, 2:])
    size = (bottom_right - top_left).clamp(min=0)
    enclosing = size[..., 0] * size[..., 1]  # (N, M)
    return iou - (enclosing - union) / enclosing


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
    _check_boxes(boxes, "nms")
    _check_scores(scores, len(boxes), "nms")
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)  # (N, N)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= iou[index] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


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
    _check_boxes(boxes, "batched_nms")
    _check_scores(scores, len(boxes), "batched_nms")
    if not isinstance(idxs, Tensor) or idxs.shape != (len(boxes),) or idxs.is_floating_point():
        raise ValueError(f"batched_nms: expected integer idxs of shape [{len(boxes)}]")
    keep = [torch.nonzero(idxs == category).flatten()[nms(boxes[idxs == category], scores[idxs == category], iou_threshold)]
            for category in torch.unique(idxs)]  # fmt: skip
    kept = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64)
    kept = kept.sort().values  # index order, so that the stable sort below breaks ties by index
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


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
    _check_boxes(boxes, "encode")
    if not isinstance(anchors, Tensor) or anchors.shape != (len(boxes), 2):
        raise ValueError(f"encode: expected anchors Tensor[{len(boxes)}, 2], one (w, h) per box")
    if stride <= 0:
        raise ValueError(f"encode: stride must be > 0, got {stride}")
    centre_x, centre_y, width, height = box_convert(boxes, "xyxy", "cxcywh").unbind(-1)
    grid = torch.stack([centre_x, centre_y], dim=-1) / stride  # (M, 2), in cells
    cells = grid.floor()
    offsets = torch.logit((grid - cells).clamp(eps, 1 - eps))  # (M, 2)
    sizes = torch.log(torch.stack([width, height], dim=-1) / anchors.to(boxes.dtype))  # (M, 2)
    return torch.cat([offsets, sizes], dim=-1), cells.to(torch.int64)


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
    _check_anchors(anchors, "decode")
    if not isinstance(offsets, Tensor) or offsets.dim() != 5 or offsets.shape[-1] != 4 or offsets.shape[1] != len(anchors):
        got = tuple(offsets.shape) if isinstance(offsets, Tensor) else type(offsets).__name__
        raise ValueError(f"decode: expected offsets Tensor[N, {len(anchors)}, H, W, 4], got {got}")
    _, _, height, width, _ = offsets.shape
    rows = torch.arange(height, dtype=offsets.dtype).view(1, 1, height, 1)
    columns = torch.arange(width, dtype=offsets.dtype).view(1, 1, 1, width)
    centre_x = (columns + torch.sigmoid(offsets[..., 0])) * stride  # (N, A, H, W)
    centre_y = (rows + torch.sigmoid(offsets[..., 1])) * stride
    anchor_w = anchors[:, 0].to(offsets.dtype).view(1, -1, 1, 1)
    anchor_h = anchors[:, 1].to(offsets.dtype).view(1, -1, 1, 1)
    width_px, height_px = anchor_w * torch.exp(offsets[..., 2]), anchor_h * torch.exp(offsets[..., 3])
    return torch.stack([centre_x - width_px / 2, centre_y - height_px / 2, centre_x + width_px / 2, centre_y + height_px / 2], dim=-1)


def _shape_iou(sizes: Tensor, anchors: Tensor) -> Tensor:
    """IoU of boxes and anchors placed on a common centre: ``Tensor[M, A]`` from sizes ``[M, 2]`` and ``[A, 2]``."""
    intersection = torch.min(sizes[:, None, 0], anchors[None, :, 0]) * torch.min(sizes[:, None, 1], anchors[None, :, 1])
    union = (sizes[:, 0] * sizes[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - intersection
    return intersection / union


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
    _check_boxes(boxes, "assign_targets")
    _check_anchors(anchors, "assign_targets")
    if not isinstance(labels, Tensor) or labels.shape != (len(boxes),) or labels.is_floating_point():
        raise ValueError(f"assign_targets: expected integer labels of shape [{len(boxes)}]")
    height, width = grid_size
    mask = torch.zeros(len(anchors), height, width, dtype=torch.bool)
    codes = torch.zeros(len(anchors), height, width, 4, dtype=boxes.dtype)
    classes = torch.full((len(anchors), height, width), -1, dtype=torch.int64)
    if len(boxes) == 0:
        return {"mask": mask, "boxes": codes, "labels": classes}
    sizes = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], dim=-1)  # (M, 2)
    best = _shape_iou(sizes, anchors.to(boxes.dtype)).argmax(dim=1)  # (M,), first maximum on ties
    box_codes, cells = encode(boxes, anchors[best].to(boxes.dtype), stride)
    columns, rows = cells[:, 0].clamp(0, width - 1), cells[:, 1].clamp(0, height - 1)
    for m in range(len(boxes)):  # in input order: a later box overwrites an earlier one on the same slot
        a, y, x = int(best[m]), int(rows[m]), int(columns[m])
        mask[a, y, x] = True
        codes[a, y, x] = box_codes[m]
        classes[a, y, x] = labels[m]
    return {"mask": mask, "boxes": codes, "labels": classes}


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
    if not isinstance(targets, dict) or not {"mask", "boxes", "labels"} <= set(targets):
        raise ValueError("yolo_loss: expected targets {'mask': bool[N, A, H, W], 'boxes': float[N, A, H, W, 4], 'labels': int64[N, A, H, W]}")
    mask = targets["mask"]
    n, num_anchors, height, width = mask.shape
    if not isinstance(pred, Tensor) or pred.dim() != 4 or pred.shape[0] != n or pred.shape[2:] != (height, width) or pred.shape[1] % num_anchors:
        raise ValueError(f"yolo_loss: expected pred Tensor[{n}, A * (5 + C), {height}, {width}] with A = {num_anchors}")
    per_anchor = pred.shape[1] // num_anchors
    pred = pred.view(n, num_anchors, per_anchor, height, width).permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5 + C)
    positives = pred[mask]  # (P, 5 + C)
    count = max(int(mask.sum()), 1)
    target_boxes = targets["boxes"][mask].to(pred.dtype)  # (P, 4)
    centre_error = (torch.sigmoid(positives[:, :2]) - torch.sigmoid(target_boxes[:, :2])).pow(2).sum()
    size_error = (positives[:, 2:4] - target_boxes[:, 2:4]).pow(2).sum()
    box = (centre_error + size_error) / count
    obj = F.binary_cross_entropy_with_logits(pred[..., 4], mask.to(pred.dtype))
    cls = F.cross_entropy(positives[:, 5:], targets["labels"][mask], reduction="sum") / count
    total = box_weight * box + obj_weight * obj + cls_weight * cls
    return {"box": box, "obj": obj, "cls": cls, "total": total}


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
    _check_anchors(anchors, "postprocess")
    num_classes = _check_pred(pred, anchors, "postprocess")
    n, _, height, width = pred.shape
    pred = pred.view(n, len(anchors), 5 + num_classes, height, width).permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5 + C)
    boxes = decode(pred[..., :4], anchors, stride).reshape(n, -1, 4)  # (N, A*H*W, 4)
    probabilities = torch.sigmoid(pred[..., 4:5]) * torch.softmax(pred[..., 5:], dim=-1)  # (N, A, H, W, C)
    scores, labels = probabilities.reshape(n, -1, num_classes).max(dim=-1)  # (N, A*H*W)
    detections = []
    for i in range(n):
        keep = torch.nonzero(scores[i] > conf_threshold).flatten()
        kept = keep[batched_nms(boxes[i, keep], scores[i, keep], labels[i, keep], iou_threshold)]
        detections.append({"boxes": boxes[i, kept].float(), "scores": scores[i, kept].float(), "labels": labels[i, kept]})
    return detections


# --- COCO mean average precision ---------------------------------------------------------------------------------------

_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's, built the same way so the floats are identical
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)
_MAX_DETECTIONS = 100  # per image and class


def _xywh_iou(detections: np.ndarray, truths: np.ndarray) -> np.ndarray:
    """IoU ``float64[D, G]`` of xywh boxes, computed as pycocotools' C code does (so the floats agree)."""
    right = np.minimum(detections[:, None, 0] + detections[:, None, 2], truths[None, :, 0] + truths[None, :, 2])
    width = right - np.maximum(detections[:, None, 0], truths[None, :, 0])
    bottom = np.minimum(detections[:, None, 1] + detections[:, None, 3], truths[None, :, 1] + truths[None, :, 3])
    height = bottom - np.maximum(detections[:, None, 1], truths[None, :, 1])
    intersection = np.where((width > 0) & (height > 0), width * height, 0.0)
    union = (detections[:, 2] * detections[:, 3])[:, None] + (truths[:, 2] * truths[:, 3])[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(intersection > 0, intersection / union, 0.0)


def _match_image(iou: np.ndarray) -> np.ndarray:
    """bool[T, D]: whether each detection (sorted by score) matches a ground truth at each IoU threshold."""
    matched = np.zeros((len(_IOU_THRESHOLDS), iou.shape[0]), dtype=bool)
    for t, threshold in enumerate(_IOU_THRESHOLDS):
        taken = np.zeros(iou.shape[1], dtype=bool)
        for d in range(iou.shape[0]):
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in range(iou.shape[1]):  # the last ground truth with the highest IoU >= threshold wins, as in COCOeval
                if not taken[g] and iou[d, g] >= best_iou:
                    best, best_iou = g, iou[d, g]
            if best >= 0:
                taken[best] = matched[t, d] = True
    return matched


def _as_arrays(image: dict, name: str, with_scores: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(image, dict) or "boxes" not in image or "labels" not in image or (with_scores and "scores" not in image):
        raise ValueError(f"mean_average_precision: {name} must be dicts with boxes, labels" + (", scores" if with_scores else ""))
    boxes = torch.as_tensor(image["boxes"]).detach().double().reshape(-1, 4)
    labels = torch.as_tensor(image["labels"]).detach().long().reshape(-1)
    scores = torch.as_tensor(image["scores"]).detach().double().reshape(-1) if with_scores else torch.zeros(len(boxes))
    if len(labels) != len(boxes) or len(scores) != len(boxes):
        raise ValueError(f"mean_average_precision: {name} need one label" + (" and score" if with_scores else "") + " per box")
    xywh = box_convert(boxes, "xyxy", "xywh").numpy()
    return xywh, labels.numpy(), scores.numpy()


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
    if not isinstance(detections, (list, tuple)) or not isinstance(ground_truths, (list, tuple)) or len(detections) != len(ground_truths):
        raise ValueError("mean_average_precision: expected two lists with one dict per image, of the same length")
    images = [(_as_arrays(d, "detections", True), _as_arrays(g, "ground_truths", False)) for d, g in zip(detections, ground_truths)]
    classes = sorted({int(c) for _, (_, labels, _) in images for c in labels})
    precision = np.zeros((len(_IOU_THRESHOLDS), len(_RECALL_POINTS), len(classes)))
    for k, category in enumerate(classes):
        scores_all, matched_all, truths = [], [], 0
        for (det_boxes, det_labels, det_scores), (gt_boxes, gt_labels, _) in images:
            det = det_labels == category
            order = np.argsort(-det_scores[det], kind="mergesort")[:_MAX_DETECTIONS]
            boxes, scores = det_boxes[det][order], det_scores[det][order]
            gt = gt_boxes[gt_labels == category]
            truths += len(gt)
            scores_all.append(scores)
            matched_all.append(_match_image(_xywh_iou(boxes, gt)))
        scores = np.concatenate(scores_all)
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate(matched_all, axis=1)[:, order]  # (T, D)
        true_positives = np.cumsum(matched, axis=1, dtype=np.float64)
        false_positives = np.cumsum(~matched, axis=1, dtype=np.float64)
        for t in range(len(_IOU_THRESHOLDS)):
            recall = true_positives[t] / truths
            curve = true_positives[t] / (true_positives[t] + false_positives[t] + np.spacing(1))
            curve = np.maximum.accumulate(curve[::-1])[::-1]  # non-increasing: the interpolation
            positions = np.searchsorted(recall, _RECALL_POINTS, side="left")
            valid = positions < len(curve)
            precision[t, valid, k] = curve[positions[valid]]
    if not classes:
        return {"map": -1.0, "map50": -1.0, "map75": -1.0}
    return {"map": float(precision.mean()), "map50": float(precision[0].mean()), "map75": float(precision[5].mean())}


# --- the model and the metric task ------------------------------------------------------------------------------------


def _conv(in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3) -> nn.Sequential:
    """Convolution (padding ``kernel_size // 2``, no bias) -> BatchNorm -> SiLU."""
    convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
    return nn.Sequential(convolution, nn.BatchNorm2d(out_channels), nn.SiLU())


class _TinyYOLO(nn.Module):
    """A ~79k-parameter single-scale YOLO for 64x64 images: stride 8, an 8x8 grid of cells, and a passthrough.

    The passthrough (YOLOv2's) hands the head the finer stride-4 features as well, stacked 2x2 into channels
    (space-to-depth), so that the small shapes are classified from more than a few coarse cells::

        (N, 3, 64, 64) -> conv s2 16 -> (N, 16, 32, 32) -> conv s2 32 -> conv 32 -> fine (N, 32, 16, 16)
        fine -> conv s2 64 -> conv 64 -> coarse (N, 64, 8, 8)
        fine -> 1x1 conv 8 -> space-to-depth -> (N, 32, 8, 8), concatenated with coarse -> (N, 96, 8, 8)
        -> 1x1 conv 64 -> 1x1 conv -> (N, A * (5 + C), 8, 8)

    Args:
        anchors (Tensor[A, 2]): anchor sizes ``(w, h)`` in pixels (a buffer, saved with the model).
        num_classes (int): C >= 1.
        stride (int): must be 8 for this architecture (kept as an attribute for postprocessing).
    """

    def __init__(self, anchors: Tensor, num_classes: int, stride: int = 8) -> None:
        super().__init__()
        _check_anchors(anchors, "TinyYOLO")
        if num_classes < 1 or stride != 8:
            raise ValueError(f"TinyYOLO: expected num_classes >= 1 and stride 8, got {num_classes} and {stride}")
        self.num_classes, self.stride = num_classes, stride
        self.register_buffer("anchors", anchors.float().clone())
        self.fine = nn.Sequential(_conv(3, 16, 2), _conv(16, 32, 2), _conv(32, 32))  # stride 4
        self.coarse = nn.Sequential(_conv(32, 64, 2), _conv(64, 64))  # stride 8
        self.passthrough = _conv(32, 8, kernel_size=1)
        self.neck = _conv(64 + 4 * 8, 64, kernel_size=1)
        self.head = nn.Conv2d(64, len(anchors) * (5 + num_classes), 1)
        with torch.no_grad():  # start with low objectness everywhere (few cells hold an object)
            self.head.bias.view(len(anchors), 5 + num_classes)[:, 4] = -4.0

    def forward(self, images: Tensor) -> Tensor:
        """``Tensor[N, 3, 64, 64]`` -> raw head output ``Tensor[N, A * (5 + C), 8, 8]``."""
        fine = self.fine(images)  # (N, 32, 16, 16)
        stacked = F.pixel_unshuffle(self.passthrough(fine), 2)  # (N, 32, 8, 8): each 2x2 block of cells in channels
        return self.head(self.neck(torch.cat([self.coarse(fine), stacked], dim=1)))


@dataclass(frozen=True)
class _YOLOTraining:
    """How train_yolo trains: a fixed schedule (see specs/06_detection.yaml for the calibration)."""

    # (w, h) pixels, square so that a transposed box keeps its anchor (rotated shapes have near-square boxes anyway)
    anchors: tuple[tuple[float, float], ...] = ((10.0, 10.0), (18.0, 18.0), (27.0, 27.0))
    epochs: int = 13  # passes over the training split (~40-45 s on one thread of a 2-core machine)
    batch_size: int = 8  # small batches: many steps (on one thread, 8 images cost ~0.011 s a step)
    learning_rate: float = 5e-3  # AdamW peak, after a linear warm-up, then cosine decay to 0
    warmup_fraction: float = 0.03  # of the steps
    weight_decay: float = 5e-2
    box_weight: float = 8.0  # mAP averages IoU thresholds up to 0.95: the boxes have to be tight
    obj_weight: float = 20.0  # obj is averaged over all 192 anchors of an image, of which ~4 hold an object
    cls_weight: float = 2.0  # classifying the shape is the hard part
    conf_threshold: float = 0.001  # predict_yolo keeps candidates above this score (low: AP rewards recall)
    iou_threshold: float = 0.5  # and suppresses overlaps above this IoU, per class


def _check_split(split: dict, name: str, with_labels: bool) -> Tensor:
    """The split's images ``Tensor[N, 3, H, W]`` (H, W multiples of 8), after checking the split holds what ``name`` needs."""
    images = split_images(split, name, channels=3)
    if images.shape[2] % 8 or images.shape[3] % 8:
        raise ValueError(f"{name}: expected 'images' Tensor[N, 3, H, W] with H, W multiples of 8, got {tuple(images.shape)}")
    if with_labels:
        for key in ("boxes", "classes", "object_image"):
            if not isinstance(split.get(key), Tensor):
                raise ValueError(f"{name}: expected {key!r} as a tensor (boxes float32[M, 4] xyxy, classes and object_image int64[M])")
    return images


def _image_targets(train: dict, anchors: Tensor, grid: tuple[int, int], stride: int) -> dict[str, Tensor]:
    """assign_targets for every training image, stacked: mask [N, A, H, W], boxes [N, A, H, W, 4], labels."""
    boxes, classes, owner = train["boxes"].float(), train["classes"].long(), train["object_image"].long()
    per_image = [assign_targets(boxes[owner == i], classes[owner == i], anchors, stride, grid) for i in range(len(train["images"]))]
    return {key: torch.stack([t[key] for t in per_image]) for key in ("mask", "boxes", "labels")}


def _where(choice: Tensor, changed: Tensor, unchanged: Tensor) -> Tensor:
    """``changed`` for the images where ``choice`` (bool[N]) is set, ``unchanged`` for the others."""
    return torch.where(choice.view(-1, *[1] * (changed.dim() - 1)), changed, unchanged)


def _augment(images: Tensor, targets: dict[str, Tensor], generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
    """A random symmetry of the square and a random order of the colour channels for every image of a batch.

    The shapes are drawn at any rotation, so a scene transposed or flipped left-right or upside down is as likely as
    the original; colour says nothing about the class, so the RGB channels are shuffled. The targets follow on the
    grid: a transpose swaps rows with columns and the x codes with the y codes (each box keeps its square anchor), a
    left-right flip reverses the columns and negates tx (sigmoid(-t) = 1 - sigmoid(t)), an upside-down flip does the
    same for rows and ty. (A box centred exactly on a cell edge then sits in the cell on the other side of that
    edge, at offset 1 instead of 0: the same box.)

    Args:
        images (Tensor[N, 3, S, S]): the batch.
        targets (dict[str, Tensor]): its :func:`assign_targets`, stacked (mask, boxes, labels).
        generator (torch.Generator): the run's random stream.

    Returns:
        tuple[Tensor[N, 3, S, S], dict[str, Tensor]]: the transformed images and targets.
    """
    transpose, mirror, upside_down = torch.rand(3, len(images), generator=generator) < 0.5
    mask, codes, labels = targets["mask"], targets["boxes"], targets["labels"]  # (N, A, H, W), (N, A, H, W, 4), ...
    images, mask, labels = (_where(transpose, t.transpose(2, 3), t) for t in (images, mask, labels))
    codes = _where(transpose, codes.transpose(2, 3)[..., [1, 0, 3, 2]], codes)
    for choice, dim, offset in ((mirror, 3, 0), (upside_down, 2, 1)):  # flip columns and tx, or rows and ty
        images, mask, labels = (_where(choice, t.flip(dim), t) for t in (images, mask, labels))
        flipped = codes.flip(dim).clone()
        flipped[..., offset] = -flipped[..., offset]
        codes = _where(choice, flipped, codes)
    channel_order = torch.argsort(torch.rand(len(images), 3, generator=generator), dim=1)  # (N, 3)
    images = images.gather(1, channel_order[:, :, None, None].expand_as(images))
    return images, {"mask": mask, "boxes": codes, "labels": labels}


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
    clock = BudgetClock(budget_s, "train_yolo")
    images = _check_split(train, "train_yolo", with_labels=True)  # (N, 3, H, W)
    config = _YOLOTraining()
    anchors = torch.tensor(config.anchors)
    stride = 8
    grid = (images.shape[2] // stride, images.shape[3] // stride)
    targets = _image_targets(train, anchors, grid, stride)
    generator = seeded_generator(seed)
    with seeded(seed):
        model = _TinyYOLO(anchors, num_classes=int(train["classes"].max()) + 1, stride=stride)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)
    total_steps = config.epochs * math.ceil(len(images) / config.batch_size)
    schedule = warmup_cosine(optimizer, total_steps, warmup_steps=max(1, round(config.warmup_fraction * total_steps)))
    model.train()
    for _ in range(config.epochs):
        for batch in torch.randperm(len(images), generator=generator).split(config.batch_size):
            if clock.expired():
                return model.eval()
            batch_images, batch_targets = _augment(images[batch], {key: value[batch] for key, value in targets.items()}, generator)
            losses = yolo_loss(model(batch_images), batch_targets, config.box_weight, config.obj_weight, config.cls_weight)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            schedule.step()
    return model.eval()


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
    images = _check_split(inputs, "predict_yolo", with_labels=False)
    config = _YOLOTraining()
    model.eval()
    detections = []
    with torch.no_grad():
        for chunk in images.split(256):
            for image in postprocess(model(chunk), model.anchors, model.stride, config.conf_threshold, config.iou_threshold):
                detections.append({key: value[:100] for key, value in image.items()})
    return detections
