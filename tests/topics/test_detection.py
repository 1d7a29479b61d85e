"""Graded tests of topic 06 `detection` (specs/06_detection.yaml): box geometry, NMS, anchor coding, the YOLO loss,
postprocessing and COCO mAP; the YOLO trained on shapes64 and timed at batch 1 (metric and latency checks) is graded
by items the harness makes from the spec.

Oracles: torchvision.ops (box_convert, box_iou, generalized_box_iou, nms, batched_nms), pycocotools' COCOeval (through
``coco_box_metrics``), and loops and formulas written here from the spec. Every oracle check also runs on
non-contiguous inputs. Tolerances, thresholds and points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import (
    Case,
    CheckFailure,
    assert_close,
    cases,
    check,
    coco_box_metrics,
    in_layout,
    layouts,
    random_boxes,
    seeded_generator,
    seeded_rand,
    strategies,
)

FORMATS = ["xyxy", "xywh", "cxcywh"]


# --- helpers ----------------------------------------------------------------------------------------------------------


def _clusters(seed: int, centres: int = 4, per_cluster: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Clusters of jittered copies of a few boxes (many overlaps near every threshold) and distinct scores."""
    generator = seeded_generator(seed)
    base = random_boxes(centres, seed + 1).repeat_interleave(per_cluster, dim=0)
    boxes = base + 4 * torch.randn(base.shape, generator=generator)
    boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], dim=1)
    scores = torch.randperm(len(boxes), generator=generator).float() / len(boxes)
    return boxes, scores


def _expect_indices(got: object, expected: torch.Tensor, what: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise CheckFailure(f"{what}: expected a tensor of kept indices, got {type(got).__name__}")
    if got.dtype != torch.int64:
        raise CheckFailure(f"{what}: kept indices have dtype {got.dtype}, expected int64")
    if got.tolist() != expected.tolist():
        missing = sorted(set(expected.tolist()) - set(got.tolist()))
        extra = sorted(set(got.tolist()) - set(expected.tolist()))
        raise CheckFailure(
            f"{what}: kept {got.tolist()}, torchvision keeps {expected.tolist()}"
            + (f" (missing {missing}, extra {extra})" if missing or extra else " (same set, different order)"),
            {"kept": len(got), "expected": len(expected), "missing": len(missing), "extra": len(extra)},
        )


# --- box geometry -----------------------------------------------------------------------------------------------------


@check("box_convert_matches_torchvision")
@layouts
@pytest.mark.parametrize("out_fmt", FORMATS)
@pytest.mark.parametrize("in_fmt", FORMATS)
def test_box_convert_matches_torchvision(impl, dtype, tolerance, layout, in_fmt, out_fmt):
    boxes = torchvision.ops.box_convert(random_boxes(16, seed=1, dtype=dtype), "xyxy", in_fmt)
    got = impl.box_convert(in_layout(boxes, layout), in_fmt, out_fmt)
    expected = torchvision.ops.box_convert(boxes, in_fmt, out_fmt)
    assert_close(got, expected, tolerance, what=f"box_convert {in_fmt} -> {out_fmt} ({layout})")


# Hand-built pairs: identical, disjoint, touching edges, nested, zero area (a line, and a point on a box).
SPECIAL_BOXES_1 = [[0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 8, 8], [1, 1, 1, 5], [3, 3, 3, 3]]
SPECIAL_BOXES_2 = [[0, 0, 4, 4], [5, 5, 7, 7], [2, 0, 4, 2], [2, 2, 4, 4], [0, 0, 2, 2], [3, 3, 3, 3]]


@check("box_iou_matches_torchvision")
@layouts
@given(boxes1=strategies.boxes_xyxy(max_boxes=6, allow_degenerate=True), boxes2=strategies.boxes_xyxy(max_boxes=6, allow_degenerate=True))
def test_box_iou_matches_torchvision(impl, dtype, tolerance, layout, boxes1, boxes2):
    for first, second in [(boxes1, boxes2), (torch.tensor(SPECIAL_BOXES_1), torch.tensor(SPECIAL_BOXES_2))]:
        first, second = first.to(dtype), second.to(dtype)
        expected = torchvision.ops.box_iou(first, second)
        got = impl.box_iou(in_layout(first, layout), in_layout(second, layout))
        assert_close(got, expected, tolerance, what=f"box_iou ({layout})")


@check("generalized_box_iou_matches_torchvision")
@layouts
@given(boxes1=strategies.boxes_xyxy(max_boxes=6), boxes2=strategies.boxes_xyxy(max_boxes=6))
def test_generalized_box_iou_matches_torchvision(impl, dtype, tolerance, layout, boxes1, boxes2):
    for first, second in [(boxes1, boxes2), (torch.tensor(SPECIAL_BOXES_1[:4]), torch.tensor(SPECIAL_BOXES_2[:4]))]:
        first, second = first.to(dtype), second.to(dtype)
        expected = torchvision.ops.generalized_box_iou(first, second)
        got = impl.generalized_box_iou(in_layout(first, layout), in_layout(second, layout))
        assert_close(got, expected, tolerance, what=f"generalized_box_iou ({layout})")


# IoU([0, 0, 4, 1], [0, 0, 2, 1]) = 2 / 4 = 0.5 exactly (dyadic): kept at threshold 0.5, suppressed at 0.4999.
# The chain: A overlaps B (0.6), B overlaps C (0.6), A and C barely: A suppresses B, so C survives.
# The clusters: jittered copies of a few boxes (_clusters, seeds 0, 1, 2), many overlaps near every threshold.
NMS_CASES = cases(
    Case("exactly_at_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]], scores=[0.9, 0.8], threshold=0.5),
    Case("just_above_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]], scores=[0.9, 0.8], threshold=0.4999),
    Case("lower_score_first", boxes=[[0, 0, 2, 1], [0, 0, 4, 1], [10, 10, 12, 12]], scores=[0.1, 0.9, 0.5], threshold=0.3),
    Case("chain", boxes=[[0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10]], scores=[0.9, 0.8, 0.7], threshold=0.5),
    Case("equal_scores", boxes=[[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [31, 30, 41, 40]], scores=[0.5] * 4, threshold=0.5),
    Case("identical_boxes", boxes=[[0, 0, 10, 10]] * 3, scores=[0.3, 0.9, 0.6], threshold=0.5),
    Case("no_boxes", boxes=[], scores=[], threshold=0.5),
    Case("clusters_0.3", cluster_seeds=(0, 1, 2), threshold=0.3),
    Case("clusters_0.5", cluster_seeds=(0, 1, 2), threshold=0.5),
    Case("clusters_0.7", cluster_seeds=(0, 1, 2), threshold=0.7),
)


@check("nms_matches_torchvision")
@layouts
@NMS_CASES
def test_nms_matches_torchvision(impl, case, layout):
    if case.get("cluster_seeds"):
        problems = [_clusters(seed) for seed in case.cluster_seeds]
    else:
        problems = [(torch.tensor(case.boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(case.scores, dtype=torch.float32))]
    for boxes, scores in problems:
        expected = torchvision.ops.nms(boxes, scores, case.threshold)
        got = impl.nms(in_layout(boxes, layout), in_layout(scores, layout), case.threshold)
        _expect_indices(got, expected, f"nms ({case.name}, iou_threshold={case.threshold}, {layout})")


BATCHED_NMS_CASES = cases(
    Case("clusters", cluster_seeds=(0, 1, 2)),  # categories drawn from seed + 10
    Case("identical_across_categories", boxes=[[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], scores=[0.9, 0.8, 0.7, 0.6], idxs=[0, 1, 0, 1]),
    Case("exactly_at_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]] * 2, scores=[0.9, 0.8, 0.7, 0.6], idxs=[2, 2, 5, 5]),
    Case("no_boxes", boxes=[], scores=[], idxs=[]),
)


@check("batched_nms_matches_torchvision")
@layouts
@BATCHED_NMS_CASES
def test_batched_nms_matches_torchvision(impl, case, layout):
    problems = []
    for seed in case.get("cluster_seeds", ()):
        boxes, scores = _clusters(seed, centres=5, per_cluster=8)
        problems.append((boxes, scores, torch.randint(0, 3, (len(boxes),), generator=seeded_generator(seed + 10))))
    if not case.get("cluster_seeds"):
        boxes = torch.tensor(case.boxes, dtype=torch.float32).reshape(-1, 4)
        problems.append((boxes, torch.tensor(case.scores, dtype=torch.float32), torch.tensor(case.idxs, dtype=torch.int64)))
    for boxes, scores, idxs in problems:
        expected = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
        got = impl.batched_nms(in_layout(boxes, layout), in_layout(scores, layout), in_layout(idxs, layout), 0.5)
        _expect_indices(got, expected, f"batched_nms ({case.name}, {layout})")


# --- anchor coding ----------------------------------------------------------------------------------------------------


@check("decode_places_anchors_at_cell_centres")
@layouts
@given(height=st.integers(1, 6), width=st.integers(1, 6), anchors_count=st.integers(1, 3), stride=st.sampled_from([4, 8, 16]), seed=strategies.seeds)
def test_decode_places_anchors_at_cell_centres(impl, dtype, tolerance, layout, height, width, anchors_count, stride, seed):
    anchors = seeded_rand((anchors_count, 2), seed, dtype, low=2.0, high=32.0)
    offsets = torch.zeros(2, anchors_count, height, width, 4, dtype=dtype)
    offsets[1, ..., 2] = math.log(2.0)  # the second image's boxes are twice as wide
    rows = torch.arange(height, dtype=dtype).view(1, height, 1).expand(anchors_count, height, width)
    columns = torch.arange(width, dtype=dtype).view(1, 1, width).expand(anchors_count, height, width)
    centre_x, centre_y = (columns + 0.5) * stride, (rows + 0.5) * stride
    expected = []
    for scale in (1.0, 2.0):
        half_w = (scale * anchors[:, 0] / 2).view(-1, 1, 1).expand_as(centre_x)
        half_h = (anchors[:, 1] / 2).view(-1, 1, 1).expand_as(centre_x)
        expected.append(torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], dim=-1))
    got = impl.decode(in_layout(offsets, layout), in_layout(anchors, layout), stride)
    assert_close(got, torch.stack(expected), tolerance, what=f"decode of zero codes (N, A, H, W, 4) ({layout})")


@st.composite
def _boxes_on_grid(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """float64 boxes whose centres lie inside an 8x8 grid, at least 1e-3 of a cell from every cell edge; their anchors."""
    stride = draw(st.sampled_from([4, 8, 16]))
    count = draw(st.integers(1, 6))
    seed = draw(strategies.seeds)
    generator = seeded_generator(seed)
    cells = torch.randint(0, 8, (count, 2), generator=generator).double()
    fraction = 1e-3 + (1 - 2e-3) * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    centres = (cells + fraction) * stride
    sizes = 1 + 40 * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    anchors = 2 + 30 * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1), anchors, stride, seed


@check("encode_decode_round_trip")
@layouts
@given(case=_boxes_on_grid())
def test_encode_decode_round_trip(impl, dtype, tolerance, layout, case):
    boxes, anchors, stride, _ = case
    boxes, anchors = boxes.to(dtype), anchors.to(dtype)
    codes, cells = impl.encode(in_layout(boxes, layout), in_layout(anchors, layout), stride)
    expected_cells = (torchvision.ops.box_convert(boxes, "xyxy", "cxcywh")[:, :2] / stride).floor().long()
    if not isinstance(cells, torch.Tensor) or cells.tolist() != expected_cells.tolist():
        raise CheckFailure(f"encode: cells {getattr(cells, 'tolist', lambda: cells)()}, expected (column, row) {expected_cells.tolist()}")
    if cells.dtype != torch.int64:
        raise CheckFailure(f"encode: cells have dtype {cells.dtype}, expected int64")
    for m in range(len(boxes)):  # decode on a grid holding only box m's code, at its cell and a one-anchor set
        grid = torch.zeros(1, 1, 8, 8, 4, dtype=dtype)
        column, row = expected_cells[m].tolist()
        grid[0, 0, row, column] = codes[m]
        decoded = impl.decode(in_layout(grid, layout), in_layout(anchors[m : m + 1], layout), stride)[0, 0, row, column]
        assert_close(decoded, boxes[m], tolerance, what=f"decode(encode(box {m})) at cell {(column, row)} ({layout})")


def _assign_by_loop(boxes: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor, stride: int, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """The spec's assignment rule, box by box."""
    height, width = grid
    mask = torch.zeros(len(anchors), height, width, dtype=torch.bool)
    codes = torch.zeros(len(anchors), height, width, 4, dtype=torch.float64)
    classes = torch.full((len(anchors), height, width), -1, dtype=torch.int64)
    for box, label in zip(boxes.tolist(), labels.tolist()):
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        centred = torch.tensor([[-w / 2, -h / 2, w / 2, h / 2]], dtype=torch.float64)
        anchor_boxes = torch.cat([-anchors / 2, anchors / 2], dim=1).double()
        best = int(torchvision.ops.box_iou(centred, anchor_boxes)[0].argmax())
        column, row = min(max(math.floor(cx / stride), 0), width - 1), min(max(math.floor(cy / stride), 0), height - 1)
        offset_x = min(max(cx / stride - math.floor(cx / stride), 1e-6), 1 - 1e-6)
        offset_y = min(max(cy / stride - math.floor(cy / stride), 1e-6), 1 - 1e-6)
        mask[best, row, column] = True
        classes[best, row, column] = label
        codes[best, row, column] = torch.tensor([
            math.log(offset_x / (1 - offset_x)), math.log(offset_y / (1 - offset_y)),
            math.log(w / float(anchors[best, 0])), math.log(h / float(anchors[best, 1])),
        ], dtype=torch.float64)  # fmt: skip
    return {"mask": mask, "boxes": codes, "labels": classes}


ANCHORS = [[10.0, 10.0], [18.0, 18.0], [28.0, 26.0]]
ASSIGN_CASES = cases(
    Case("random_0", seed=0),  # six boxes (sides >= 3) and labels drawn from the seed
    Case("random_1", seed=1),
    Case("same_slot", boxes=[[10, 10, 20, 20], [11, 11, 21, 21], [40, 40, 60, 62]], labels=[1, 4, 2]),  # the second box wins the slot
    Case("centre_on_cell_edge", boxes=[[12, 4, 20, 12], [0, 0, 32, 32]], labels=[0, 3]),  # centres (16, 8) and (16, 16)
    Case("centre_on_far_edge", boxes=[[60, 60, 68, 68]], labels=[5]),  # centre (64, 64): clamped into the last cell
    Case("no_boxes", boxes=[], labels=[]),
)


@check("assign_targets_matches_loop")
@layouts
@ASSIGN_CASES
def test_assign_targets_matches_loop(impl, dtype, tolerance, layout, case):
    if case.get("seed") is not None:
        boxes = random_boxes(6, case.seed, min_side=3.0, dtype=dtype)
        labels = torch.randint(0, 6, (6,), generator=seeded_generator(case.seed))
    else:
        boxes, labels = torch.tensor(case.boxes, dtype=dtype).reshape(-1, 4), torch.tensor(case.labels, dtype=torch.int64)
    anchors = torch.tensor(ANCHORS, dtype=dtype)
    got = impl.assign_targets(in_layout(boxes, layout), in_layout(labels, layout), in_layout(anchors, layout), 8, (8, 8))
    expected = _assign_by_loop(boxes, labels, anchors, 8, (8, 8))
    what = f"assign_targets ({case.name}, {layout})"
    if not isinstance(got, dict) or set(got) < set(expected):
        raise CheckFailure(f"assign_targets returned {type(got).__name__} {sorted(got) if isinstance(got, dict) else ''}, expected a dict with mask, boxes, labels")
    if got["mask"].dtype != torch.bool or not torch.equal(got["mask"], expected["mask"]):
        where = torch.nonzero(got["mask"].bool() != expected["mask"]).tolist()[:4]
        raise CheckFailure(f"{what}: mask differs from the loop's at (anchor, row, column) {where}")
    if got["labels"].dtype != torch.int64 or not torch.equal(got["labels"], expected["labels"]):
        raise CheckFailure(f"{what}: labels ({got['labels'].dtype}) differ from the loop's (int64, -1 where no box is assigned)")
    assert_close(got["boxes"].double(), expected["boxes"], tolerance, what=f"{what} codes")


# --- loss -------------------------------------------------------------------------------------------------------------


def _loss_by_formula(pred: torch.Tensor, targets: dict[str, torch.Tensor], weights: tuple[float, float, float]) -> dict[str, torch.Tensor]:
    n, num_anchors, height, width = targets["mask"].shape
    parts = pred.reshape(n, num_anchors, -1, height, width).permute(0, 1, 3, 4, 2)
    mask = targets["mask"]
    count = max(int(mask.sum()), 1)
    positives, target_boxes = parts[mask], targets["boxes"][mask]
    centre = F.mse_loss(torch.sigmoid(positives[:, :2]), torch.sigmoid(target_boxes[:, :2]), reduction="sum")
    size = F.mse_loss(positives[:, 2:4], target_boxes[:, 2:4], reduction="sum")
    box = (centre + size) / count
    obj = F.binary_cross_entropy_with_logits(parts[..., 4], mask.to(pred.dtype), reduction="mean")
    cls = F.cross_entropy(positives[:, 5:], targets["labels"][mask], reduction="sum") / count
    return {"box": box, "obj": obj, "cls": cls, "total": weights[0] * box + weights[1] * obj + weights[2] * cls}


@check("yolo_loss_matches_formula")
@layouts
@cases(Case("with_positives", count=5), Case("no_positives", count=0), argname="positives")
@cases(
    Case("default_weights", keywords={}, weights=(5.0, 1.0, 1.0)),
    Case("other_weights", keywords={"box_weight": 2.0, "obj_weight": 3.0, "cls_weight": 0.5}, weights=(2.0, 3.0, 0.5)),
    argname="weights",
)
def test_yolo_loss_matches_formula(impl, dtype, tolerance, layout, weights, positives):
    generator = seeded_generator(positives.count + 7)
    n, num_anchors, classes, height, width = 2, 3, 4, 4, 5
    pred = torch.randn(n, num_anchors * (5 + classes), height, width, generator=generator, dtype=dtype)
    mask = torch.zeros(n * num_anchors * height * width, dtype=torch.bool)
    mask[torch.randperm(mask.numel(), generator=generator)[: positives.count]] = True
    mask = mask.view(n, num_anchors, height, width)
    boxes = torch.randn(n, num_anchors, height, width, 4, generator=generator, dtype=dtype) * mask[..., None]
    labels = torch.where(mask, torch.randint(0, classes, mask.shape, generator=generator), -1)
    targets = {"mask": mask, "boxes": boxes, "labels": labels}
    graded_pred = in_layout(pred.clone(), layout).requires_grad_(True)
    got = impl.yolo_loss(graded_pred, {key: in_layout(value, layout) for key, value in targets.items()}, **weights.keywords)
    oracle_pred = pred.clone().requires_grad_(True)
    expected = _loss_by_formula(oracle_pred, targets, weights.weights)
    if not isinstance(got, dict) or not set(expected) <= set(got):
        raise CheckFailure(f"yolo_loss returned {sorted(got) if isinstance(got, dict) else type(got).__name__}, expected a dict with box, obj, cls, total")
    for key, value in expected.items():
        assert_close(got[key].detach(), value.detach(), tolerance, what=f"yolo_loss[{key!r}] ({positives.count} positives, {layout})")
    (gradient,) = torch.autograd.grad(got["total"], graded_pred)
    (expected_gradient,) = torch.autograd.grad(expected["total"], oracle_pred)
    assert_close(gradient, expected_gradient, tolerance, what=f"gradient of yolo_loss total with respect to pred ({layout})")


# --- postprocessing ---------------------------------------------------------------------------------------------------


def _postprocess_by_torchvision(pred: torch.Tensor, anchors: torch.Tensor, stride: int, conf: float, iou: float) -> list[dict[str, torch.Tensor]]:
    n, _, height, width = pred.shape
    parts = pred.reshape(n, len(anchors), -1, height, width).permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5 + C)
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    centre_x = (columns + torch.sigmoid(parts[..., 0])) * stride
    centre_y = (rows + torch.sigmoid(parts[..., 1])) * stride
    box_w = anchors[:, 0].view(1, -1, 1, 1) * torch.exp(parts[..., 2])
    box_h = anchors[:, 1].view(1, -1, 1, 1) * torch.exp(parts[..., 3])
    boxes = torchvision.ops.box_convert(torch.stack([centre_x, centre_y, box_w, box_h], -1), "cxcywh", "xyxy").reshape(n, -1, 4)
    scores, labels = (torch.sigmoid(parts[..., 4:5]) * torch.softmax(parts[..., 5:], -1)).reshape(n, boxes.shape[1], -1).max(-1)
    result = []
    for i in range(n):
        keep = torch.nonzero(scores[i] > conf).flatten()
        kept = keep[torchvision.ops.batched_nms(boxes[i, keep], scores[i, keep], labels[i, keep], iou)]
        result.append({"boxes": boxes[i, kept], "scores": scores[i, kept], "labels": labels[i, kept]})
    return result


@check("postprocess_matches_torchvision")
@layouts
@pytest.mark.parametrize("seed", [0, 1], ids=["seed_0", "seed_1"])
def test_postprocess_matches_torchvision(impl, dtype, tolerance, layout, seed):
    generator = seeded_generator(seed)
    anchors = torch.tensor([[10.0, 10.0], [20.0, 16.0]], dtype=dtype)
    pred = torch.randn(3, 2 * (5 + 3), 6, 6, generator=generator, dtype=dtype).view(3, 2, 8, 6, 6)
    pred[:, :, 4] = -6 + 8 * torch.rand(3, 2, 6, 6, generator=generator, dtype=dtype)  # a few confident anchors
    pred[:, :, 2:4] += 1.0  # boxes larger than a cell: they overlap their neighbours'
    pred = pred.reshape(3, 16, 6, 6)
    got = impl.postprocess(in_layout(pred, layout), in_layout(anchors, layout), 8, 0.05, 0.45)
    expected = _postprocess_by_torchvision(pred, anchors, 8, 0.05, 0.45)
    if not isinstance(got, list) or len(got) != len(expected):
        raise CheckFailure(f"postprocess returned {type(got).__name__} of length {len(got) if isinstance(got, list) else '-'}, expected a list of {len(expected)} dicts")
    for i, (image, oracle) in enumerate(zip(got, expected)):
        if image["labels"].dtype != torch.int64 or image["labels"].tolist() != oracle["labels"].tolist():
            raise CheckFailure(f"postprocess image {i}: labels {image['labels'].tolist()} ({image['labels'].dtype}), expected {oracle['labels'].tolist()} (int64)")
        assert_close(image["scores"], oracle["scores"], tolerance, what=f"postprocess image {i} scores ({layout})")
        assert_close(image["boxes"], oracle["boxes"], tolerance, what=f"postprocess image {i} boxes ({layout})")


# --- COCO mean average precision ----------------------------------------------------------------------------------------


def _detection_set(seed: int, images: int = 12, classes: int = 5, tie_scores: bool = False) -> tuple[list[dict], list[dict]]:
    """Random ground truth; detections = jittered copies (some dropped, some mislabelled) + spurious boxes."""
    generator = seeded_generator(seed)
    ground_truths, detections = [], []
    for i in range(images):
        count = 0 if i % 5 == 4 else int(torch.randint(1, 7, (1,), generator=generator))  # every fifth image empty
        boxes = random_boxes(count, seed * 100 + i, min_side=4.0)
        labels = torch.randint(0, classes, (count,), generator=generator)
        ground_truths.append({"boxes": boxes, "labels": labels})
        if i % 7 == 3:  # an image without detections
            detections.append({"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)})
            continue
        kept = torch.rand(count, generator=generator) < 0.8
        found = boxes[kept] + 3 * torch.randn(int(kept.sum()), 4, generator=generator)
        spurious = random_boxes(int(torch.randint(0, 4, (1,), generator=generator)), seed * 100 + i + 50, min_side=4.0)
        det_boxes = torch.cat([found, spurious])
        det_boxes = torch.cat([det_boxes[:, :2], torch.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 0.5)], dim=1)
        det_labels = torch.cat([labels[kept], torch.randint(0, classes + 1, (len(spurious),), generator=generator)])  # class `classes`: no truth
        flip = torch.rand(len(det_labels), generator=generator) < 0.1
        det_labels = torch.where(flip, (det_labels + 1) % classes, det_labels)
        scores = torch.rand(len(det_boxes), generator=generator)
        if tie_scores:
            scores = (scores * 4).floor() / 4  # four score levels: many ties, within and across images
        detections.append({"boxes": det_boxes, "scores": scores, "labels": det_labels})
    return detections, ground_truths


def _crowded_image(seed: int) -> tuple[list[dict], list[dict]]:
    """One image with 150 detections of one class on 30 ground truths: only the best 100 count."""
    generator = seeded_generator(seed)
    boxes = random_boxes(30, seed, min_side=4.0)
    det_boxes = boxes.repeat(5, 1) + 2 * torch.randn(150, 4, generator=generator)
    det_boxes = torch.cat([det_boxes[:, :2], torch.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 0.5)], dim=1)
    detection = {"boxes": det_boxes, "scores": torch.rand(150, generator=generator), "labels": torch.zeros(150, dtype=torch.int64)}
    return [detection], [{"boxes": boxes, "labels": torch.zeros(30, dtype=torch.int64)}]


MAP_CASES = cases(
    Case("random_0", seed=0),
    Case("random_1", seed=1, images=20, classes=8),
    Case("tied_scores", seed=2, tie_scores=True),
    Case("more_than_100_detections", crowded_seed=3),
    Case("no_ground_truth", seed=4, images=3, without_truth=True),
)


def _map_inputs(case: Case) -> tuple[list[dict], list[dict]]:
    """(detections, ground truths) of a mean-average-precision case."""
    if case.get("crowded_seed") is not None:
        return _crowded_image(case.crowded_seed)
    detections, ground_truths = _detection_set(case.seed, case.get("images", 12), case.get("classes", 5), case.get("tie_scores", False))
    if case.get("without_truth"):
        ground_truths = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * len(ground_truths)
    return detections, ground_truths


@check("mean_average_precision_matches_cocoeval")
@layouts
@MAP_CASES
def test_mean_average_precision_matches_cocoeval(impl, tolerance, layout, case):
    detections, ground_truths = _map_inputs(case)
    expected = {key: value for key, value in coco_box_metrics(detections, ground_truths).items() if key in ("map", "map50", "map75")}
    got = impl.mean_average_precision(
        [{key: in_layout(value, layout) for key, value in image.items()} for image in detections],
        [{key: in_layout(value, layout) for key, value in image.items()} for image in ground_truths],
    )
    if not isinstance(got, dict) or not set(expected) <= set(got):
        raise CheckFailure(f"mean_average_precision returned {got!r:.200}, expected a dict with map, map50, map75")
    keys = list(expected)
    actual = np.array([float(got[key]) for key in keys])
    assert_close(actual, np.array([expected[key] for key in keys]), tolerance, what=f"mean_average_precision {keys} ({case.name}, {layout})")
