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
    assert_raises,
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


def _tied_clusters(seed: int, centres: int = 8, per_cluster: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Clusters of jittered boxes of realistic sizes (sides >= 16 px) whose scores take only three values: ties among
    many boxes, where an unstable sort visits them in another order than the lower index first."""
    generator = seeded_generator(seed)
    base = random_boxes(centres, seed + 1, min_side=16.0).repeat_interleave(per_cluster, dim=0)
    boxes = base + 3 * torch.randn(base.shape, generator=generator)
    boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], dim=1)
    scores = 0.25 + torch.randint(0, 3, (len(boxes),), generator=generator).float() / 4  # 0.25, 0.5 or 0.75
    return boxes, scores


def _pairs_at_iou(iou: float, count: int, seed: int) -> torch.Tensor:
    """``count`` pairs of boxes (Tensor[2 * count, 4], pair k at rows 2k, 2k + 1) whose IoU is exactly ``iou`` in
    float32: a 40 x 32 px box and a box sharing its left, top and bottom edges, ``iou`` of its width (dyadic
    coordinates, so every float operation is exact), at random quarter-pixel positions in a 640-pixel image."""
    corners = torch.randint(0, 2400, (count, 2), generator=seeded_generator(seed)).float() / 4
    big = torch.cat([corners, corners + torch.tensor([40.0, 32.0])], dim=1)
    small = torch.cat([corners, corners + torch.tensor([40.0 * iou, 32.0])], dim=1)
    return torch.stack([big, small], dim=1).reshape(-1, 4)


def _spread(boxes: torch.Tensor, gap: float = 1000.0) -> torch.Tensor:
    """Move pair k (rows 2k, 2k + 1) ``k * gap`` pixels to the right, so that pairs never overlap each other."""
    return boxes + (torch.arange(len(boxes)) // 2 * gap).float()[:, None] * torch.tensor([1.0, 0.0, 1.0, 0.0])


# IoU([0, 0, 4, 1], [0, 0, 2, 1]) = 2 / 4 = 0.5 exactly (dyadic): kept at threshold 0.5, suppressed at 0.4999.
# The realistic pairs (_pairs_at_iou: 40 x 32 px boxes, 20 to 30 px overlaps, unions of 1280 px^2) sit exactly at
# 0.5, 0.625 and 0.75: an "IoU >= threshold" that a padded union (inter / (union + 1e-6)) hides on the tiny pair
# is seen there, where union + 1e-6 rounds to the union.
# The chain: A overlaps B (0.6), B overlaps C (0.6), A and C barely: A suppresses B, so C survives.
# The clusters: jittered copies of a few boxes (_clusters, seeds 0, 1, 2), many overlaps near every threshold.
# The tied clusters: 80 boxes with three score levels (_tied_clusters), ties among many overlapping boxes.
NMS_CASES = cases(
    Case("exactly_at_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]], scores=[0.9, 0.8], threshold=0.5),
    Case("just_above_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]], scores=[0.9, 0.8], threshold=0.4999),
    Case("exactly_at_threshold_realistic_0.5", at_iou=0.5, threshold=0.5),
    Case("exactly_at_threshold_realistic_0.625", at_iou=0.625, threshold=0.625),
    Case("exactly_at_threshold_realistic_0.75", at_iou=0.75, threshold=0.75),
    Case("just_above_threshold_realistic", at_iou=0.75, threshold=0.7499),
    Case("lower_score_first", boxes=[[0, 0, 2, 1], [0, 0, 4, 1], [10, 10, 12, 12]], scores=[0.1, 0.9, 0.5], threshold=0.3),
    Case("chain", boxes=[[0, 0, 10, 10], [2, 0, 12, 10], [4, 0, 14, 10]], scores=[0.9, 0.8, 0.7], threshold=0.5),
    Case("equal_scores", boxes=[[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [31, 30, 41, 40]], scores=[0.5] * 4, threshold=0.5),
    Case("identical_boxes", boxes=[[0, 0, 10, 10]] * 3, scores=[0.3, 0.9, 0.6], threshold=0.5),
    Case("no_boxes", boxes=[], scores=[], threshold=0.5),
    Case("clusters_0.3", cluster_seeds=(0, 1, 2), threshold=0.3),
    Case("clusters_0.5", cluster_seeds=(0, 1, 2), threshold=0.5),
    Case("clusters_0.7", cluster_seeds=(0, 1, 2), threshold=0.7),
    Case("many_ties_0.3", tied_seeds=(0, 1, 2), threshold=0.3),
    Case("many_ties_0.7", tied_seeds=(0, 1, 2), threshold=0.7),
)


def _nms_problems(case: Case) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(boxes, scores) of an NMS case, after checking that the situation it names is really built."""
    if case.get("cluster_seeds"):
        return [_clusters(seed) for seed in case.cluster_seeds]
    if case.get("tied_seeds"):
        problems = [_tied_clusters(seed) for seed in case.tied_seeds]
        for boxes, scores in problems:  # many boxes share each score, and equal-score boxes overlap
            tied_overlaps = (torchvision.ops.box_iou(boxes, boxes) > 0.3) & (scores[:, None] == scores[None, :])
            assert min(int((scores == level).sum()) for level in scores.unique()) >= 16 and int(tied_overlaps.sum()) > 2 * len(boxes)
        return problems
    if case.get("at_iou"):
        boxes = _spread(_pairs_at_iou(case.at_iou, 6, seed=3))
        iou = torchvision.ops.box_iou(boxes, boxes)
        assert all(float(iou[2 * k, 2 * k + 1]) == case.at_iou for k in range(6)) and float(boxes[:, 2:].sub(boxes[:, :2]).min()) >= 20
        return [(boxes, torch.linspace(0.9, 0.2, len(boxes)))]
    return [(torch.tensor(case.boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(case.scores, dtype=torch.float32))]


@check("nms_matches_torchvision")
@layouts
@NMS_CASES
def test_nms_matches_torchvision(impl, case, layout):
    for boxes, scores in _nms_problems(case):
        expected = torchvision.ops.nms(boxes, scores, case.threshold)
        got = impl.nms(in_layout(boxes, layout), in_layout(scores, layout), case.threshold)
        _expect_indices(got, expected, f"nms ({case.name}, iou_threshold={case.threshold}, {layout})")


# Equal scores across categories: the kept boxes of different categories come out by index, not by category.
BATCHED_NMS_CASES = cases(
    Case("clusters", cluster_seeds=(0, 1, 2)),  # categories drawn from seed + 10
    Case("tied_scores_across_categories", tied_seeds=(0, 1, 2)),  # categories drawn from seed + 10, some far apart
    Case(
        "identical_across_categories",
        boxes=[[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]],
        scores=[0.9, 0.8, 0.7, 0.6],
        idxs=[0, 1, 0, 1],
    ),
    Case(
        "equal_scores_across_categories",
        boxes=[[0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 10, 10], [21, 0, 31, 10], [40, 0, 50, 10]],
        scores=[0.5] * 5,
        idxs=[3, 1, 1, 3, 2],
    ),
    Case("exactly_at_threshold", boxes=[[0, 0, 4, 1], [0, 0, 2, 1]] * 2, scores=[0.9, 0.8, 0.7, 0.6], idxs=[2, 2, 5, 5]),
    Case("exactly_at_threshold_realistic", at_iou=0.5, idxs=[7, 7, 0, 0, 7, 7, 3, 3]),
    Case("no_boxes", boxes=[], scores=[], idxs=[]),
)


def _batched_nms_problems(case: Case) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(boxes, scores, idxs) of a batched-NMS case, after checking that the situation it names is really built."""
    problems = []
    for seed in case.get("cluster_seeds", ()):
        boxes, scores = _clusters(seed, centres=5, per_cluster=8)
        problems.append((boxes, scores, torch.randint(0, 3, (len(boxes),), generator=seeded_generator(seed + 10))))
    for seed in case.get("tied_seeds", ()):
        boxes, scores = _tied_clusters(seed)
        idxs = torch.tensor([0, 1, 2, 5, 1000])[torch.randint(0, 5, (len(boxes),), generator=seeded_generator(seed + 10))]
        tied_across = (scores[:, None] == scores[None, :]) & (idxs[:, None] != idxs[None, :])
        assert int(tied_across.sum()) > len(boxes)  # many equal scores in different categories
        problems.append((boxes, scores, idxs))
    if case.get("at_iou"):
        boxes = _spread(_pairs_at_iou(case.at_iou, 4, seed=5))
        problems.append((boxes, torch.linspace(0.9, 0.2, len(boxes)), torch.tensor(case.idxs)))
    if case.get("boxes") is not None:
        boxes = torch.tensor(case.boxes, dtype=torch.float32).reshape(-1, 4)
        problems.append((boxes, torch.tensor(case.scores, dtype=torch.float32), torch.tensor(case.idxs, dtype=torch.int64)))
    return problems


@check("batched_nms_matches_torchvision")
@layouts
@BATCHED_NMS_CASES
def test_batched_nms_matches_torchvision(impl, case, layout):
    for boxes, scores, idxs in _batched_nms_problems(case):
        expected = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
        got = impl.batched_nms(in_layout(boxes, layout), in_layout(scores, layout), in_layout(idxs, layout), 0.5)
        _expect_indices(got, expected, f"batched_nms ({case.name}, {layout})")


# --- anchor coding ----------------------------------------------------------------------------------------------------


@check("decode_places_anchors_at_cell_centres")
@layouts
@given(
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    anchors_count=st.integers(1, 3),
    stride=st.sampled_from([4, 8, 16]),
    seed=strategies.seeds,
)
def test_decode_places_anchors_at_cell_centres(impl, dtype, tolerance, layout, height, width, anchors_count, stride, seed):
    anchors = seeded_rand((anchors_count, 2), seed, torch.float32, low=2.0, high=32.0).to(dtype)  # float32 values: exact in both dtypes
    anchors[0, 1] = 0.75  # any positive size is an anchor, also one thinner than a pixel
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
    other = torch.float64 if dtype == torch.float32 else torch.float32  # anchors in another dtype: boxes keep offsets'
    got = impl.decode(in_layout(offsets, layout), in_layout(anchors.to(other), layout), stride)
    assert_close(got, torch.stack(expected), tolerance, what=f"decode of zero codes (N, A, H, W, 4), {other} anchors ({layout})")


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


# Centres on purpose: on a cell's left and top edges (offset 0), just inside its right and bottom edges, and on the
# image's far edge; with a large eps (0.1) more offsets are clamped; strides 8 and 16, float32 and float64.
ENCODE_CASES = cases(
    Case("default_eps", seed=0, stride=8, keywords={}),
    Case("eps_0.01", seed=1, stride=8, keywords={"eps": 0.01}),
    Case("eps_0.1_stride_16", seed=2, stride=16, keywords={"eps": 0.1}),
    Case("stride_1", seed=3, stride=1, keywords={"eps": 0.01}),  # a stride of one pixel is a stride
)


def _encode_by_formula(boxes: torch.Tensor, anchors: torch.Tensor, stride: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The spec's encode in float64: (codes Tensor[M, 4], cells int64[M, 2])."""
    boxes, anchors = boxes.double(), anchors.double()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 / stride
    cells = centres.floor()
    offsets = (centres - cells).clamp(eps, 1 - eps)
    sizes = (boxes[:, 2:] - boxes[:, :2]) / anchors
    return torch.cat([torch.log(offsets / (1 - offsets)), torch.log(sizes)], dim=1), cells.long()


@check("encode_matches_formula")
@layouts
@ENCODE_CASES
def test_encode_matches_formula(impl, dtype, tolerance, layout, case):
    stride, eps = case.stride, case.keywords.get("eps", 1e-6)
    generator = seeded_generator(case.seed)
    cells = torch.randint(0, 8, (12, 2), generator=generator).double()
    fraction = torch.randint(0, 256, (12, 2), generator=generator).double() / 256  # dyadic: exact in float32
    fraction[:3] = torch.tensor([[0.0, 0.0], [0.0, 0.5], [1 - 2**-10, 2**-10]])  # on the edges, just inside them
    centres = (cells + fraction) * stride
    centres[3] = 8 * stride  # the image's far corner: offset 0 of the cell beyond the grid
    sizes = torch.randint(2, 42, (12, 2), generator=generator).double()
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1).to(dtype)
    anchors = (4 + 30 * torch.rand(12, 2, generator=generator, dtype=torch.float64)).float().to(dtype)  # exact in both dtypes
    expected_codes, expected_cells = _encode_by_formula(boxes, anchors, stride, eps)
    offsets = ((boxes[:, :2] + boxes[:, 2:]).double() / 2 / stride).frac()
    assert int(((offsets < eps) | (offsets > 1 - eps)).sum()) >= 3  # the clamp really acts
    other = torch.float64 if dtype == torch.float32 else torch.float32  # anchors in another dtype: codes keep the boxes'
    got = impl.encode(in_layout(boxes, layout), in_layout(anchors.to(other), layout), stride, **case.keywords)
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailure(f"encode returned {type(got).__name__}, expected a tuple (codes Tensor[M, 4], cells int64[M, 2])")
    codes, got_cells = got
    if not isinstance(got_cells, torch.Tensor) or got_cells.dtype != torch.int64 or got_cells.tolist() != expected_cells.tolist():
        raise CheckFailure(
            f"encode ({case.name}): cells {getattr(got_cells, 'tolist', lambda: got_cells)()} ({getattr(got_cells, 'dtype', '-')}), expected int64 (column, row) {expected_cells.tolist()}"
        )
    assert_close(codes, expected_codes.to(dtype), tolerance, what=f"encode codes ({case.name}, eps={eps}, {layout})")


def _slots(boxes: torch.Tensor, anchors: torch.Tensor, stride: int, grid: tuple[int, int]) -> list[tuple[int, int, int, bool]]:
    """(anchor, row, column, tied) of each box by the spec's rule: the first anchor of the highest shape IoU (tied:
    another anchor has that same IoU), in the cell holding the centre, clamped into the (H, W) grid."""
    height, width = grid
    anchor_boxes = torch.cat([-anchors / 2, anchors / 2], dim=1).double()
    slots = []
    for box in boxes.double().tolist():
        w, h = box[2] - box[0], box[3] - box[1]
        iou = torchvision.ops.box_iou(torch.tensor([[-w / 2, -h / 2, w / 2, h / 2]], dtype=torch.float64), anchor_boxes)[0]
        best = int(iou.argmax())  # the first maximum
        column = min(max(math.floor((box[0] + box[2]) / 2 / stride), 0), width - 1)
        row = min(max(math.floor((box[1] + box[3]) / 2 / stride), 0), height - 1)
        slots.append((best, row, column, int((iou == iou[best]).sum()) > 1))
    return slots


def _assign_by_loop(
    boxes: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor, stride: int, grid: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """The spec's assignment rule, box by box (a later box overwrites an earlier one on its slot); codes in boxes' dtype."""
    height, width = grid
    mask = torch.zeros(len(anchors), height, width, dtype=torch.bool)
    codes = torch.zeros(len(anchors), height, width, 4, dtype=torch.float64)
    classes = torch.full((len(anchors), height, width), -1, dtype=torch.int64)
    for box, label, (best, row, column, _) in zip(boxes.double().tolist(), labels.tolist(), _slots(boxes, anchors, stride, grid)):
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        offset_x = min(max(cx / stride - math.floor(cx / stride), 1e-6), 1 - 1e-6)
        offset_y = min(max(cy / stride - math.floor(cy / stride), 1e-6), 1 - 1e-6)
        mask[best, row, column] = True
        classes[best, row, column] = label
        codes[best, row, column] = torch.tensor([
            math.log(offset_x / (1 - offset_x)), math.log(offset_y / (1 - offset_y)),
            math.log(w / float(anchors[best, 0])), math.log(h / float(anchors[best, 1])),
        ], dtype=torch.float64)  # fmt: skip
    return {"mask": mask, "boxes": codes.to(boxes.dtype), "labels": classes}


ANCHORS = [[10.0, 10.0], [18.0, 18.0], [28.0, 26.0]]
TIED_ANCHORS = [[40.0, 40.0], [10.0, 20.0], [20.0, 10.0], [20.0, 40.0]]  # a 20 x 20 box: IoU 1/4, 1/2, 1/2, 1/2
ASSIGN_CASES = cases(
    Case("random_0", seed=0),  # six boxes (sides >= 3) and labels drawn from the seed
    Case("random_1", seed=1),
    Case("random_non_square_grid", seed=2, grid=(6, 10), image=(48, 80)),  # H != W: rows and columns cannot swap
    Case(
        "same_slot", boxes=[[10, 10, 20, 20], [10.5, 10.5, 20.5, 20.5], [40, 40, 60, 62]], labels=[1, 4, 2], same_slot=True
    ),  # the second wins
    Case(
        "three_in_one_slot",
        boxes=[[33, 17, 55, 39], [34, 18, 54, 38], [40, 40, 60, 62], [35, 19, 53, 37]],
        labels=[0, 5, 2, 3],
        same_slot=True,
    ),
    Case("tied_anchors", boxes=[[20, 20, 40, 40], [4, 44, 24, 64], [30, 2, 50, 22]], labels=[2, 0, 1], anchors=TIED_ANCHORS, tied=True),
    # wide and tall boxes against wide and tall anchors: the anchor's width is matched with the box's width
    Case(
        "non_square_anchors",
        boxes=[[4, 20, 40, 32], [30, 4, 42, 40], [44, 44, 64, 64]],
        labels=[1, 2, 3],
        anchors=[[40.0, 10.0], [10.0, 40.0], [20.0, 20.0]],
    ),
    Case("centre_on_cell_edge", boxes=[[12, 4, 20, 12], [0, 0, 32, 32]], labels=[0, 3]),  # centres (16, 8) and (16, 16)
    Case("centre_on_far_edge", boxes=[[60, 60, 68, 68]], labels=[5]),  # centre (64, 64): clamped into the last cell
    Case(
        "centre_beyond_a_non_square_grid", boxes=[[60, 20, 68, 28], [20, 52, 36, 68]], labels=[1, 2], grid=(6, 10)
    ),  # rows clamped, not columns
    Case("no_boxes", boxes=[], labels=[]),
)


@check("assign_targets_matches_loop")
@layouts
@ASSIGN_CASES
def test_assign_targets_matches_loop(impl, dtype, tolerance, layout, case):
    grid = case.get("grid", (8, 8))
    if case.get("seed") is not None:
        height, width = case.get("image", (64, 64))
        boxes = random_boxes(6, case.seed, size=float(min(height, width)), min_side=3.0, dtype=dtype)
        boxes = boxes * torch.tensor([width, height, width, height], dtype=dtype) / min(height, width)  # spread over the image
        labels = torch.randint(0, 6, (6,), generator=seeded_generator(case.seed))
    else:
        boxes, labels = torch.tensor(case.boxes, dtype=dtype).reshape(-1, 4), torch.tensor(case.labels, dtype=torch.int64)
    anchors = torch.tensor(case.get("anchors", ANCHORS), dtype=dtype)
    slots = _slots(boxes, anchors, 8, grid)
    if case.get("same_slot"):  # the situation named: two boxes claim one slot
        assert len({slot[:3] for slot in slots}) < len(slots), f"{case.name}: no two boxes share a slot in {slots}"
    if case.get("tied"):  # the situation named: a box's best IoU is reached by two anchors
        assert sum(slot[3] for slot in slots) == len(slots), f"{case.name}: not every box has tied anchors in {slots}"
    got = impl.assign_targets(in_layout(boxes, layout), in_layout(labels, layout), in_layout(anchors, layout), 8, grid)
    expected = _assign_by_loop(boxes, labels, anchors, 8, grid)
    what = f"assign_targets ({case.name}, grid {grid}, {layout})"
    if not isinstance(got, dict) or set(got) < set(expected):
        raise CheckFailure(
            f"assign_targets returned {type(got).__name__} {sorted(got) if isinstance(got, dict) else ''}, expected a dict with mask, boxes, labels"
        )
    if got["mask"].dtype != torch.bool or got["mask"].shape != expected["mask"].shape or not torch.equal(got["mask"], expected["mask"]):
        where = torch.nonzero(got["mask"].bool() != expected["mask"]).tolist()[:4] if got["mask"].shape == expected["mask"].shape else "-"
        raise CheckFailure(
            f"{what}: mask ({got['mask'].dtype}, {tuple(got['mask'].shape)}) differs from the loop's (bool, (A, H, W) = {tuple(expected['mask'].shape)}) at (anchor, row, column) {where}"
        )
    if got["labels"].dtype != torch.int64 or not torch.equal(got["labels"], expected["labels"]):
        raise CheckFailure(f"{what}: labels ({got['labels'].dtype}) differ from the loop's (int64, -1 where no box is assigned)")
    assert_close(got["boxes"], expected["boxes"], tolerance, what=f"{what} codes")


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
    pred = torch.randn(n, num_anchors * (5 + classes), height, width, generator=generator, dtype=torch.float64).to(dtype)
    mask = torch.zeros(n * num_anchors * height * width, dtype=torch.bool)
    mask[torch.randperm(mask.numel(), generator=generator)[: positives.count]] = True
    mask = mask.view(n, num_anchors, height, width)
    # the codes are float64 whatever pred's dtype (assign_targets of float64 boxes): the losses keep pred's dtype
    boxes = torch.randn(n, num_anchors, height, width, 4, generator=generator, dtype=torch.float64) * mask[..., None]
    labels = torch.where(mask, torch.randint(0, classes, mask.shape, generator=generator), -1)
    targets = {"mask": mask, "boxes": boxes, "labels": labels}
    graded_pred = in_layout(pred.clone(), layout).requires_grad_(True)
    got = impl.yolo_loss(graded_pred, {key: in_layout(value, layout) for key, value in targets.items()}, **weights.keywords)
    oracle_pred = pred.double().requires_grad_(True)  # the formula in float64, its results cast to pred's dtype
    expected = _loss_by_formula(oracle_pred, targets, weights.weights)
    if not isinstance(got, dict) or not set(expected) <= set(got):
        raise CheckFailure(
            f"yolo_loss returned {sorted(got) if isinstance(got, dict) else type(got).__name__}, expected a dict with box, obj, cls, total"
        )
    for key, value in expected.items():
        assert_close(
            got[key].detach(), value.detach().to(dtype), tolerance, what=f"yolo_loss[{key!r}] ({positives.count} positives, {layout})"
        )
    (gradient,) = torch.autograd.grad(got["total"], graded_pred)
    (expected_gradient,) = torch.autograd.grad(expected["total"], oracle_pred)
    assert_close(gradient, expected_gradient.to(dtype), tolerance, what=f"gradient of yolo_loss total with respect to pred ({layout})")


# --- postprocessing ---------------------------------------------------------------------------------------------------


def _postprocess_by_torchvision(
    pred: torch.Tensor, anchors: torch.Tensor, stride: int, conf: float, iou: float
) -> list[dict[str, torch.Tensor]]:
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


POSTPROCESS_CASES = cases(
    Case("seed_0", seed=0, classes=3, grid=(6, 6), stride=8, conf=0.05),
    Case("seed_1_non_square_grid", seed=1, classes=3, grid=(5, 7), stride=16, conf=0.05),  # H != W
    Case("empty_image", seed=2, classes=3, grid=(5, 7), stride=8, conf=0.05, empty_image=2),  # image 2 has no candidate
    # one class (softmax = 1 exactly) and objectness logits of exactly 0 (sigmoid = 1/2 exactly): scores exactly at
    # conf_threshold = 0.5, which the spec's strict "score > conf_threshold" drops
    Case("scores_at_conf_threshold", seed=3, classes=1, grid=(4, 6), stride=8, conf=0.5, at_conf=True),
)


@check("postprocess_matches_torchvision")
@layouts
@POSTPROCESS_CASES
def test_postprocess_matches_torchvision(impl, dtype, tolerance, layout, case):
    generator = seeded_generator(case.seed)
    height, width = case.grid
    anchors = torch.tensor([[10.0, 10.0], [20.0, 16.0]], dtype=dtype)
    per_anchor = 5 + case.classes
    pred = torch.randn(3, 2, per_anchor, height, width, generator=generator, dtype=torch.float64)
    pred[:, :, 4] = -6 + 8 * torch.rand(3, 2, height, width, generator=generator, dtype=torch.float64)  # a few confident anchors
    pred[:, :, 2:4] += 1.0  # boxes larger than a cell: they overlap their neighbours'
    if case.get("empty_image") is not None:
        pred[case.empty_image, :, 4] = -30.0  # no anchor above conf_threshold
    if case.get("at_conf"):
        pred[:, :, 4] = torch.where(torch.rand(3, 2, height, width, generator=generator) < 0.3, 0.0, pred[:, :, 4])
    pred = pred.reshape(3, 2 * per_anchor, height, width).to(dtype)
    got = impl.postprocess(in_layout(pred, layout), in_layout(anchors, layout), case.stride, case.conf, 0.45)
    expected = _postprocess_by_torchvision(pred, anchors, case.stride, case.conf, 0.45)  # in pred's dtype, then float32
    expected = [{key: value.float() if value.is_floating_point() else value for key, value in image.items()} for image in expected]
    if case.get("empty_image") is not None:  # the situation named: an image without detections
        assert len(expected[case.empty_image]["scores"]) == 0 and all(
            len(image["scores"]) for i, image in enumerate(expected) if i != case.empty_image
        )
    if case.get("at_conf"):  # the situation named: scores exactly at the threshold
        scores = torch.sigmoid(pred.view(3, 2, per_anchor, height, width)[:, :, 4])
        assert int((scores == case.conf).sum()) >= 10
    if not isinstance(got, list) or len(got) != len(expected):
        raise CheckFailure(
            f"postprocess returned {type(got).__name__} of length {len(got) if isinstance(got, list) else '-'}, expected a list of {len(expected)} dicts"
        )
    for i, (image, oracle) in enumerate(zip(got, expected)):
        what = f"postprocess image {i} ({case.name}, pred {dtype}, {layout})"
        if image["labels"].dtype != torch.int64 or image["labels"].tolist() != oracle["labels"].tolist():
            raise CheckFailure(
                f"{what}: labels {image['labels'].tolist()} ({image['labels'].dtype}), expected {oracle['labels'].tolist()} (int64)"
            )
        assert_close(image["scores"], oracle["scores"], tolerance, what=f"{what} scores (float32)")
        assert_close(image["boxes"], oracle["boxes"], tolerance, what=f"{what} boxes (float32)")


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
        det_labels = torch.cat(
            [labels[kept], torch.randint(0, classes + 1, (len(spurious),), generator=generator)]
        )  # class `classes`: no truth
        flip = torch.rand(len(det_labels), generator=generator) < 0.1
        det_labels = torch.where(flip, (det_labels + 1) % classes, det_labels)
        scores = torch.rand(len(det_boxes), generator=generator)
        if tie_scores:
            scores = (scores * 4).floor() / 4  # four score levels: many ties, within and across images
        detections.append({"boxes": det_boxes, "scores": scores, "labels": det_labels})
    return detections, ground_truths


def _crowded_image(seed: int, classes: int = 1, per_class: int = 150) -> tuple[list[dict], list[dict]]:
    """One image with ``per_class`` detections of each class on 30 ground truths of it: with one class, only the best
    100 count; with three classes of 60, all 180 count (COCOeval keeps 100 per image *and class*)."""
    generator = seeded_generator(seed)
    truth_boxes, truth_labels, det_boxes, det_labels = [], [], [], []
    for label in range(classes):
        boxes = random_boxes(30, seed + label, min_side=4.0)
        jittered = boxes.repeat(per_class // 30, 1) + 2 * torch.randn(per_class, 4, generator=generator)
        truth_boxes.append(boxes)
        det_boxes.append(torch.cat([jittered[:, :2], torch.maximum(jittered[:, 2:], jittered[:, :2] + 0.5)], dim=1))
        truth_labels.append(torch.full((30,), label, dtype=torch.int64))
        det_labels.append(torch.full((per_class,), label, dtype=torch.int64))
    detection = {
        "boxes": torch.cat(det_boxes),
        "scores": torch.rand(classes * per_class, generator=generator),
        "labels": torch.cat(det_labels),
    }
    return [detection], [{"boxes": torch.cat(truth_boxes), "labels": torch.cat(truth_labels)}]


def _at_threshold_set(seed: int) -> tuple[list[dict], list[dict]]:
    """Six images whose detections have IoU exactly 0.5 or exactly 0.75 with their ground truth (40 x 32 px boxes at
    quarter-pixel positions, _pairs_at_iou), which COCOeval counts as matches (IoU >= threshold), and a spurious one."""
    detections, ground_truths = [], []
    generator = seeded_generator(seed)
    for i in range(6):
        pairs = _pairs_at_iou(0.5 if i % 2 else 0.75, 3, seed=seed * 10 + i).view(3, 2, 4)
        labels = torch.randint(0, 2, (3,), generator=generator)
        spurious = random_boxes(1, seed * 10 + i + 50, size=600.0, min_side=20.0)
        ground_truths.append({"boxes": pairs[:, 0], "labels": labels})
        detections.append({
            "boxes": torch.cat([pairs[:, 1], spurious]),
            "scores": torch.rand(4, generator=generator),
            "labels": torch.cat([labels, torch.randint(0, 2, (1,), generator=generator)]),
        })  # fmt: skip
    return detections, ground_truths


def _tied_truths_set() -> tuple[list[dict], list[dict]]:
    """Images where the best detection overlaps two ground truths A = [x, y, x + 40, y + 40] and B (A moved 8 px right)
    exactly equally (IoU 0.818... with both); COCOeval gives it the later one, B, so that the next detection (IoU 0.95
    with A, 0.625 with B) matches A at every threshold up to 0.95. Taking A first leaves the second detection B only,
    which it matches up to 0.6 and misses above."""
    detections, ground_truths = [], []
    for i, (x, y) in enumerate([(0.0, 0.0), (100.5, 37.25), (250.0, 400.75), (33.0, 500.0)]):
        truths = torch.tensor([[x, y, x + 40, y + 40], [x + 8, y, x + 48, y + 40]])
        boxes = torch.tensor([[x + 4, y, x + 44, y + 40], [x, y, x + 38, y + 40]])
        ground_truths.append({"boxes": truths, "labels": torch.full((2,), i % 2, dtype=torch.int64)})
        detections.append(
            {"boxes": boxes, "scores": torch.tensor([0.9, 0.8]) - 0.1 * i, "labels": torch.full((2,), i % 2, dtype=torch.int64)}
        )
    return detections, ground_truths


MAP_CASES = cases(
    Case("random_0", seed=0),
    Case("random_1", seed=1, images=20, classes=8),
    Case("tied_scores", seed=2, tie_scores=True),
    Case("low_scores_only", seed=5, score_scale=0.04),  # every score below 0.04: a confidence floor drops them all
    Case("more_than_100_detections", crowded_seed=3),
    Case("more_than_100_detections_over_classes", crowded_seed=6, crowded_classes=3, per_class=60),
    Case("iou_exactly_at_thresholds", at_threshold_seed=7),
    Case("tied_ground_truths", tied_truths=True),
    Case("no_ground_truth", seed=4, images=3, without_truth=True),
)


def _map_inputs(case: Case) -> tuple[list[dict], list[dict]]:
    """(detections, ground truths) of a mean-average-precision case, after checking that its named situation is built."""
    if case.get("crowded_seed") is not None:
        detections, ground_truths = _crowded_image(case.crowded_seed, case.get("crowded_classes", 1), case.get("per_class", 150))
        per_class = torch.bincount(detections[0]["labels"])
        assert (
            len(detections[0]["labels"]) > 100
            and (case.get("crowded_classes") or int(per_class.max()) > 100)
            and (not case.get("crowded_classes") or int(per_class.max()) <= 100)
        )
        return detections, ground_truths
    if case.get("at_threshold_seed") is not None:
        detections, ground_truths = _at_threshold_set(case.at_threshold_seed)
        ious = [torchvision.ops.box_iou(d["boxes"][:3].double(), g["boxes"].double()).diagonal() for d, g in zip(detections, ground_truths)]
        assert {float(value) for iou in ious for value in iou} == {0.5, 0.75}  # exactly the thresholds, nothing else
        return detections, ground_truths
    if case.get("tied_truths"):
        detections, ground_truths = _tied_truths_set()
        for d, g in zip(detections, ground_truths):
            iou = torchvision.ops.box_iou(d["boxes"].double(), g["boxes"].double())
            assert float(iou[0, 0]) == float(iou[0, 1]) > 0.8 and float(iou[1, 0]) == 0.95 and float(iou[1, 1]) == 0.625
        return detections, ground_truths
    detections, ground_truths = _detection_set(case.seed, case.get("images", 12), case.get("classes", 5), case.get("tie_scores", False))
    if case.get("score_scale"):
        detections = [{**image, "scores": image["scores"] * case.score_scale} for image in detections]
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
    assert_close(
        actual, np.array([expected[key] for key in keys]), tolerance, what=f"mean_average_precision {keys} ({case.name}, {layout})"
    )


# --- input validation -------------------------------------------------------------------------------------------------

_BOXES = torch.tensor([[0.0, 0.0, 10.0, 8.0], [2.0, 3.0, 12.0, 9.0]])
_ANCHORS = torch.tensor([[10.0, 10.0], [20.0, 16.0]])
_NO_IMAGE = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
INVALID_CALLS = cases(
    Case("box_convert-unknown-format", error=ValueError, call=lambda impl: impl.box_convert(_BOXES, "xyxy", "yxyx")),
    Case("box_convert-unknown-input-format", error=ValueError, call=lambda impl: impl.box_convert(_BOXES, "xcycwh", "xyxy")),
    Case("box_convert-five-columns", error=ValueError, call=lambda impl: impl.box_convert(torch.zeros(3, 5), "xyxy", "cxcywh")),
    Case("box_convert-one-dimensional", error=ValueError, call=lambda impl: impl.box_convert(torch.zeros(4), "xyxy", "xywh")),
    Case("nms-scores-of-another-length", error=ValueError, call=lambda impl: impl.nms(_BOXES, torch.tensor([0.5, 0.4, 0.3]), 0.5)),
    Case("nms-scores-as-a-list", error=(TypeError, ValueError), call=lambda impl: impl.nms(_BOXES, [0.5, 0.4], 0.5)),
    Case(
        "batched_nms-idxs-of-another-length",
        error=ValueError,
        call=lambda impl: impl.batched_nms(_BOXES, torch.tensor([0.5, 0.4]), torch.tensor([0]), 0.5),
    ),
    Case(
        "batched_nms-more-idxs-than-boxes",
        error=ValueError,
        call=lambda impl: impl.batched_nms(_BOXES, torch.tensor([0.5, 0.4]), torch.tensor([0, 1, 1]), 0.5),
    ),
    Case("encode-zero-stride", error=ValueError, call=lambda impl: impl.encode(_BOXES, _ANCHORS, 0)),
    Case("encode-one-anchor-for-two-boxes", error=ValueError, call=lambda impl: impl.encode(_BOXES, _ANCHORS[:1], 8)),
    Case("decode-offsets-without-anchor-dim", error=ValueError, call=lambda impl: impl.decode(torch.zeros(1, 4, 4, 4), _ANCHORS, 8)),
    Case("decode-offsets-for-three-anchors", error=ValueError, call=lambda impl: impl.decode(torch.zeros(1, 3, 4, 4, 4), _ANCHORS, 8)),
    Case(
        "decode-zero-width-anchor",
        error=ValueError,
        call=lambda impl: impl.decode(torch.zeros(1, 2, 4, 4, 4), torch.tensor([[10.0, 10.0], [0.0, 4.0]]), 8),
    ),
    Case(
        "assign_targets-fewer-labels-than-boxes",
        error=ValueError,
        call=lambda impl: impl.assign_targets(_BOXES, torch.tensor([1]), _ANCHORS, 8, (4, 4)),
    ),
    Case(
        "postprocess-pred-as-a-list", error=(TypeError, ValueError), call=lambda impl: impl.postprocess([[0.0] * 14], _ANCHORS, 8, 0.5, 0.5)
    ),
    Case(
        "postprocess-channels-not-a-multiple",
        error=ValueError,
        call=lambda impl: impl.postprocess(torch.zeros(1, 13, 4, 4), _ANCHORS, 8, 0.5, 0.5),  # 2 anchors need 2 * (5 + C)
    ),
    Case(
        "map-ground-truth-without-boxes",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision([_NO_IMAGE], [{"labels": torch.tensor([0, 1])}]),
    ),
    Case(
        "map-lists-of-different-lengths",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision([_NO_IMAGE, _NO_IMAGE], [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}]),
    ),
    Case(
        "map-fewer-detection-lists-than-truths",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision([_NO_IMAGE], [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}] * 2),
    ),
    Case(
        "map-detections-without-scores",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision(
            [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}], [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}]
        ),
    ),
    Case(
        "map-labels-of-another-length",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision(
            [{"boxes": _BOXES, "scores": torch.tensor([0.5, 0.4]), "labels": torch.tensor([0])}],
            [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}],
        ),
    ),
    Case(
        "map-more-scores-than-boxes",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision(
            [{"boxes": _BOXES, "scores": torch.tensor([0.5, 0.4, 0.3]), "labels": torch.tensor([0, 1])}],
            [{"boxes": _BOXES, "labels": torch.tensor([0, 1])}],
        ),
    ),
    Case(
        "map-truth-labels-of-another-length",
        error=ValueError,
        call=lambda impl: impl.mean_average_precision([_NO_IMAGE], [{"boxes": _BOXES, "labels": torch.tensor([0, 1, 1])}]),
    ),
)


@check("invalid_inputs_raise_clear_errors")
@INVALID_CALLS
def test_invalid_inputs_raise_clear_errors(impl, case):
    assert_raises(case.error, lambda: case.call(impl), case.name)
