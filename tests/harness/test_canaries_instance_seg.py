"""Every check of topic 08 `instance_seg` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process, a few seconds): the reference plus overrides, graded on the checks it
should lose and on some it should keep. ``PATCH`` recompiles one of the reference's own functions with one line
changed (checked to be there, so a canary cannot silently go stale); the reference's callers see the bug, as they
would in a student's module. Boundary canaries (``REPLACE``) change only what the tests see.
"""

import pytest
from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test

TOPIC = "instance_seg"

PATCH = """
import inspect as _inspect


def _patch(function, *replacements):
    source = _inspect.getsource(function)
    for old, new in replacements:
        if old not in source:
            raise RuntimeError(f"canary out of date: {function.__name__} has no line {old!r}")
        source = source.replace(old, new)
    exec(source, globals())
"""

ROI_ALIGN_CHECKS = [
    "roi_align_matches_torchvision",
    "roi_align_border_cases",
    "roi_align_backward_matches_torchvision",
    "roi_align_gradcheck",
]

# aligned=True is meant to move the scaled box by half a pixel; without it, aligned only drops the legacy minimum size.
NO_HALF_PIXEL_OFFSET = (
    PATCH
    + """
_patch(roi_align, ("offset = 0.5 if aligned else 0.0", "offset = 0.0  # bug: no half-pixel shift when aligned"))
"""
)

# The lesson's RoIAlign: grid_sample at each bin's centre, which is one sample per bin, and zero padding at the
# borders where torchvision clamps samples in [-1, 0) and (H - 1, H] to the border pixel.
GRID_SAMPLE_ROI_ALIGN = """
def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    rois = _as_rois(boxes, len(input), input.dtype, "roi_align")
    out_height, out_width = _pair(output_size, "roi_align")
    height, width = input.shape[2:]
    corners = rois[:, 1:] * spatial_scale - (0.5 if aligned else 0.0)  # (K, 4)
    size = corners[:, 2:] - corners[:, :2]
    if not aligned:
        size = size.clamp(min=1.0)
    bins = torch.tensor([out_width, out_height], dtype=input.dtype)
    steps_x = (torch.arange(out_width, dtype=input.dtype) + 0.5) / out_width
    steps_y = (torch.arange(out_height, dtype=input.dtype) + 0.5) / out_height
    x = corners[:, 0:1] + steps_x * size[:, 0:1]  # (K, out_w) bin centres in map indices
    y = corners[:, 1:2] + steps_y * size[:, 1:2]
    grid_x = x / max(width - 1, 1) * 2 - 1  # align_corners=True: -1 and 1 are the centres of the first and last pixel
    grid_y = y / max(height - 1, 1) * 2 - 1
    grid = torch.stack([grid_x[:, None, :].expand(-1, out_height, -1), grid_y[:, :, None].expand(-1, -1, out_width)], dim=-1)
    return F.grid_sample(input[rois[:, 0].long()], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
"""

# Bilinear samples between -1 and 0 read index 0 in torchvision; without the clamp of the position (only of the
# index) they extrapolate from indices 0 and 1 with a negative weight.
NO_BORDER_CLAMP = (
    PATCH
    + """
_patch(_interpolation_matrix,
       ("position = torch.where(counts, position, 0.0).clamp(min=0)", "position = torch.where(counts, position, 0.0)  # bug"),
       ("low = position.long()", "low = position.long().clamp(min=0)  # the index alone is kept in range"))
"""
)

# The forward computed outside autograd (in numpy, or under no_grad): right values, no gradient reaches the input.
DETACHED_ROI_ALIGN = (
    REPLACE
    + """
_replace(["roi_align"], lambda result, *args: result.detach().clone())
"""
)

# RoIPool's legacy "+ 1": a RoI from round(x1) to round(x2) spans round(x2) - round(x1) + 1 cells.
ROI_POOL_OFF_BY_ONE = (
    PATCH
    + """
_patch(_bin_edges, ("length = (end - start + 1).clamp(min=1).to(dtype)", "length = (end - start).clamp(min=1).to(dtype)  # bug: no + 1"))
"""
)

# Without the clamp, a large predicted dw (an untrained regressor's) overflows exp() to infinity.
UNCLAMPED_BOX_CODER = (
    PATCH
    + """
_patch(decode_boxes,
       ("torch.exp(torch.clamp(deltas[:, 2::4] / ww, max=clamp))", "torch.exp(deltas[:, 2::4] / ww)"),  # bug: no clamp
       ("torch.exp(torch.clamp(deltas[:, 3::4] / wh, max=clamp))", "torch.exp(deltas[:, 3::4] / wh)"))
"""
)

# Row-major (C order) runs, the numpy default: consistent with itself, but not COCO's column-major RLE.
ROW_MAJOR_RLE = (
    PATCH
    + """
_patch(rle_encode, ("pixels = mask.bool().T.reshape(-1)", "pixels = mask.bool().reshape(-1)  # bug: row-major"))
_patch(rle_decode, ("reshape(width, height).T.contiguous()", "reshape(height, width).contiguous()  # bug: row-major"))
"""
)

# Three classics: 0 / 0 for two empty masks, floor instead of truncation of negative box corners, and anchors
# whose corners are not rounded.
MASK_IOU_NAN_FOR_EMPTY = (
    PATCH
    + """
_patch(mask_iou, ("return torch.where(union > 0, intersection / union.clamp(min=1), 0.0).float()",
                  "return (intersection / union).float()  # bug: NaN for two empty masks"))
"""
)
PASTE_FLOORS_CORNERS = (
    PATCH
    + """
_patch(paste_masks_in_image, ("centre_y + half_h], dim=1).long()", "centre_y + half_h], dim=1).floor().long()  # bug: floor"))
"""
)
ANCHORS_NOT_ROUNDED = (
    PATCH
    + """
_patch(anchor_grid, ("cell = torch.stack([-half_w, -half_h, half_w, half_h], dim=1).round()",
                     "cell = torch.stack([-half_w, -half_h, half_w, half_h], dim=1)  # bug: not rounded"))
"""
)

# A decoder that checks the sum of the counts but not their signs: a negative run moves the position back, silently.
RLE_DECODE_NEGATIVE_COUNTS_UNCHECKED = """
def rle_decode(rle):
    height, width = (int(v) for v in rle["size"])
    if sum(rle["counts"]) != height * width:
        raise ValueError(f"rle_decode: counts must sum to H * W = {height * width}")
    flat = torch.zeros(height * width, dtype=torch.bool)
    position = 0
    for index, count in enumerate(rle["counts"]):  # bug: a negative count is not an error
        flat[position : position + count] = index % 2 == 1
        position += count
    return flat.reshape(width, height).T.contiguous()
"""

# The map cast to the boxes' dtype: right values, but a float32 result for float32 boxes on a float64 map.
ROI_ALIGN_IN_BOXES_DTYPE = """
_reference_roi_align = roi_align


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    dtype = boxes.dtype if isinstance(boxes, torch.Tensor) else boxes[0].dtype if len(boxes) else input.dtype
    return _reference_roi_align(input.to(dtype), boxes, output_size, spatial_scale, sampling_ratio, aligned)  # bug
"""

# RoIs pooled image by image and returned in that order, not in the order they were given.
ROI_ALIGN_GROUPED_BY_IMAGE = (
    PATCH
    + """
_patch(roi_align, ("return torch.cat(pooled)[torch.argsort(torch.cat(order))]", "return torch.cat(pooled)  # bug: grouped by image"))
"""
)

# Batch indices taken as they come: -1 silently pools the last image, N fails deep inside with an IndexError.
ROI_ALIGN_NO_BATCH_INDEX_CHECK = (
    PATCH
    + """
_patch(_as_rois, ("if len(boxes) and (bool((batch_index < 0).any()) or bool((batch_index >= batch).any())):", "if False:  # bug"))
"""
)

# Only the Tensor[K, 5] form handled: the per-image lists torchvision also takes are indexed as if they were one.
ROI_POOL_WITHOUT_LISTS = """
_reference_roi_pool = roi_pool


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    return _reference_roi_pool(input, torch.as_tensor(boxes) if not isinstance(boxes, torch.Tensor) else boxes, output_size, spatial_scale)
"""

ENCODE_BOXES_IN_ANCHORS_DTYPE = (
    PATCH
    + """
_patch(encode_boxes, ("anchors = anchors.to(boxes.dtype)", "boxes = boxes.to(anchors.dtype)  # bug: the anchors' dtype"))
"""
)

DECODE_BOXES_IN_ANCHORS_DTYPE = (
    PATCH
    + """
_patch(decode_boxes, ("anchors = anchors.to(deltas.dtype)", "deltas = deltas.to(anchors.dtype)  # bug: the anchors' dtype"))
"""
)

DECODE_BOXES_IGNORES_CLAMP = (
    PATCH
    + """
_patch(decode_boxes,
       ("torch.clamp(deltas[:, 2::4] / ww, max=clamp)", "torch.clamp(deltas[:, 2::4] / ww, max=math.log(1000 / 16))"),  # bug
       ("torch.clamp(deltas[:, 3::4] / wh, max=clamp)", "torch.clamp(deltas[:, 3::4] / wh, max=math.log(1000 / 16))"))
"""
)

PASTE_MASKS_IN_BOXES_DTYPE = (
    PATCH
    + """
_patch(paste_masks_in_image, ("pasted = masks.new_zeros(", "pasted = boxes.new_zeros("))  # bug: the dtype of the boxes
"""
)

ROI_POOL_ROUNDS_HALVES_TO_EVEN = (
    PATCH
    + """
_patch(roi_pool, ("corners = _round_half_away(rois[:, 1:] * spatial_scale).long()",
                  "corners = torch.round(rois[:, 1:] * spatial_scale).long()  # bug: halves to even, not away from zero"))
"""
)

# The reference, off by a little: beyond every tolerance, close enough to look right at a glance. Multiplicative
# noise changes the gradients too (and, drawn afresh on every call, fails gradcheck's finite differences).
NOISY = (
    REPLACE
    + """
_replace(["roi_align", "roi_pool", "paste_masks_in_image"], lambda result, *args: result * (1 + 1e-3 * torch.rand_like(result)))
_replace(["encode_boxes", "decode_boxes", "anchor_grid"], lambda result, *args: result + 1e-2 * torch.rand_like(result))
_replace(["mask_iou"], lambda result, *args: result * (1 - 1e-3 * torch.rand_like(result)))
"""
)

# Zeros, a constant, and an input handed back; a training entry point that does not train and predicts nothing.
ZEROS = """
def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    rois = _as_rois(boxes, len(input), input.dtype, "roi_align")
    return torch.zeros(len(rois), input.shape[1], *_pair(output_size, "roi_align"), dtype=input.dtype)


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    rois = _as_rois(boxes, len(input), input.dtype, "roi_pool")
    return torch.zeros(len(rois), input.shape[1], *_pair(output_size, "roi_pool"), dtype=input.dtype)


def encode_boxes(boxes, anchors, weights=(10.0, 10.0, 5.0, 5.0)):
    return torch.zeros_like(boxes)


def decode_boxes(deltas, anchors, weights=(10.0, 10.0, 5.0, 5.0), clamp=4.135166556742356):
    return anchors.to(deltas.dtype).repeat(1, deltas.shape[1] // 4)  # the input handed back


def anchor_grid(grid_size, stride, sizes, aspect_ratios, offset=0.0):
    return torch.zeros(grid_size[0] * grid_size[1] * len(sizes) * len(aspect_ratios), 4)


def paste_masks_in_image(masks, boxes, image_shape, padding=1):
    return torch.full((len(masks), 1, *image_shape), 0.5, dtype=masks.dtype)  # a constant


def mask_iou(masks1, masks2):
    return torch.zeros(len(masks1), len(masks2))


def rle_encode(mask):
    return {"size": list(mask.shape), "counts": [mask.numel()]}  # every mask empty


def rle_decode(rle):
    return torch.zeros(rle["size"], dtype=torch.bool)


def train_mask_rcnn(train, *, seed, budget_s):
    return None  # does not train


def predict_mask_rcnn(model, inputs):
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64),
             "masks": torch.zeros(0, *inputs["images"].shape[2:], dtype=torch.bool)}
    return [dict(empty) for _ in range(len(inputs["images"]))]  # no detections
"""

# Probabilities where binary masks are due: the harness refuses them with a clear message instead of scoring them.
PROBABILITY_MASKS = """
def train_mask_rcnn(train, *, seed, budget_s):
    return None


def predict_mask_rcnn(model, inputs):
    height, width = inputs["images"].shape[2:]
    one = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "scores": torch.ones(1), "labels": torch.zeros(1, dtype=torch.int64),
           "masks": torch.full((1, height, width), 0.9)}
    return [dict(one) for _ in range(len(inputs["images"]))]
"""

QUICK_CHECKS = [*ROI_ALIGN_CHECKS, "roi_pool_matches_torchvision", "encode_boxes_matches_torchvision", "decode_boxes_matches_torchvision",
                "encode_decode_round_trip", "anchor_grid_matches_torchvision", "paste_masks_matches_torchvision", "mask_iou_matches_loop",
                "rle_encode_matches_pycocotools", "rle_decode_matches_pycocotools", "rle_round_trip"]  # fmt: skip
METRIC_CHECKS = ["mask_rcnn_shapes_mask_map50", "mask_rcnn_shapes_mask_map"]

# Plausible single mistakes of a learner, each with the checks it must lose (and some it keeps, to show what those
# checks cannot see). The dtype, negative-run, roi_pool-list, batch-index and RoI-order bugs are aimed at cases added
# with them: mixed dtypes, a negative run summing to H * W, per-image lists for roi_pool, the promised errors, RoIs not
# in image order.
LEARNER_BUGS = [
    LearnerBug(
        "no_half_pixel_offset",
        "value",
        NO_HALF_PIXEL_OFFSET,
        loses={"roi_align_border_cases": "failed", "roi_align_matches_torchvision": "failed"},
        keeps=("roi_align_gradcheck",),
    ),
    LearnerBug(
        "grid_sample_roi_align",
        "lesson",
        GRID_SAMPLE_ROI_ALIGN,
        loses={"roi_align_border_cases": "failed", "roi_align_matches_torchvision": "failed"},
        keeps=("roi_align_gradcheck",),
    ),
    LearnerBug("no_border_clamp", "domain", NO_BORDER_CLAMP, loses={"roi_align_border_cases": "failed"}, keeps=("roi_align_gradcheck",)),
    LearnerBug(
        "detached_roi_align",
        "value",
        DETACHED_ROI_ALIGN,
        loses={"roi_align_gradcheck": "failed", "roi_align_backward_matches_torchvision": "failed", "roi_align_border_cases": "failed"},
        keeps=("roi_align_matches_torchvision",),
    ),
    LearnerBug("roi_pool_off_by_one", "value", ROI_POOL_OFF_BY_ONE, loses={"roi_pool_matches_torchvision": "failed"}),
    LearnerBug(
        "roi_align_no_batch_index_check",
        "error",
        ROI_ALIGN_NO_BATCH_INDEX_CHECK,
        loses={"invalid_inputs_raise_clear_errors": "failed"},
        keeps=("roi_align_border_cases",),
    ),
    LearnerBug("roi_pool_without_lists", "domain", ROI_POOL_WITHOUT_LISTS, loses={"roi_pool_matches_torchvision": "error"}),
    LearnerBug("roi_pool_rounds_halves_to_even", "tie", ROI_POOL_ROUNDS_HALVES_TO_EVEN, loses={"roi_pool_matches_torchvision": "failed"}),
    LearnerBug(
        "unclamped_box_coder",
        "domain",
        UNCLAMPED_BOX_CODER,
        loses={"decode_boxes_matches_torchvision": "failed"},
        keeps=("encode_decode_round_trip",),
    ),
    LearnerBug(
        "decode_boxes_ignores_clamp_argument",
        "default",
        DECODE_BOXES_IGNORES_CLAMP,
        loses={"decode_boxes_matches_torchvision": "failed"},
        keeps=("encode_decode_round_trip",),
    ),
    LearnerBug(
        "row_major_rle",
        "domain",
        ROW_MAJOR_RLE,
        loses={"rle_encode_matches_pycocotools": "failed", "rle_decode_matches_pycocotools": "failed"},
        keeps=("rle_round_trip",),
    ),
    LearnerBug(
        "rle_decode_negative_counts_unchecked",
        "error",
        RLE_DECODE_NEGATIVE_COUNTS_UNCHECKED,
        loses={"rle_decode_matches_pycocotools": "failed"},
        keeps=("rle_round_trip",),
    ),
    LearnerBug("mask_iou_nan_for_empty_masks", "value", MASK_IOU_NAN_FOR_EMPTY, loses={"mask_iou_matches_loop": "failed"}),
    LearnerBug("paste_floors_negative_corners", "rounding", PASTE_FLOORS_CORNERS, loses={"paste_masks_matches_torchvision": "failed"}),
    LearnerBug("anchors_not_rounded", "rounding", ANCHORS_NOT_ROUNDED, loses={"anchor_grid_matches_torchvision": "failed"}),
    LearnerBug(
        "roi_align_in_boxes_dtype",
        "dtype",
        ROI_ALIGN_IN_BOXES_DTYPE,
        loses={"roi_align_border_cases": "failed"},
        keeps=("roi_align_gradcheck",),
    ),
    LearnerBug(
        "roi_align_grouped_by_image",
        "domain",
        ROI_ALIGN_GROUPED_BY_IMAGE,
        loses={"roi_align_border_cases": "failed"},
        keeps=("roi_align_gradcheck",),
    ),
    LearnerBug(
        "encode_boxes_in_anchors_dtype",
        "dtype",
        ENCODE_BOXES_IN_ANCHORS_DTYPE,
        loses={"encode_boxes_matches_torchvision": "failed"},
        keeps=("encode_decode_round_trip",),
    ),
    LearnerBug(
        "decode_boxes_in_anchors_dtype",
        "dtype",
        DECODE_BOXES_IN_ANCHORS_DTYPE,
        loses={"decode_boxes_matches_torchvision": "failed"},
        keeps=("encode_decode_round_trip",),
    ),
    LearnerBug("paste_masks_in_boxes_dtype", "dtype", PASTE_MASKS_IN_BOXES_DTYPE, loses={"paste_masks_matches_torchvision": "failed"}),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)


CANARIES = {
    "noisy": (
        NOISY,
        expect("failed", [c for c in QUICK_CHECKS if not c.startswith("rle_")]),
    ),
    "zeros": (ZEROS, expect("failed", [*QUICK_CHECKS, *METRIC_CHECKS])),
    "probability_masks": (PROBABILITY_MASKS, expect("failed", METRIC_CHECKS)),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, TOPIC, overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
