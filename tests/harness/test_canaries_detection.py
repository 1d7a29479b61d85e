"""Every check of topic 06 `detection` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process, a few seconds): the reference plus overrides, graded on the
checks it should lose and on some it should keep. Overrides replace module-level names, so reference functions that
call an overridden one (postprocess calls batched_nms, nms calls box_iou) see the bug too; the expected outcomes
say so where that happens.
"""

import pytest
from canaries import REPLACE, expect, grade_canary

# torchvision's batched_nms keeps boxes of different classes apart; plain NMS over all boxes does not.
SUPPRESSES_ACROSS_CLASSES = """
def batched_nms(boxes, scores, idxs, iou_threshold):
    return nms(boxes, scores, iou_threshold)  # bug: idxs ignored, a dog suppresses the cat it overlaps
"""

# The legacy "+1" pixel convention (Pascal VOC's devkit, old Detectron): width = x2 - x1 + 1.
LEGACY_PLUS_ONE_IOU = """
def box_iou(boxes1, boxes2):
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    size = (bottom_right - top_left + 1).clamp(min=0)  # bug: +1 on every side length
    intersection = size[..., 0] * size[..., 1]
    area1 = (boxes1[:, 2] - boxes1[:, 0] + 1) * (boxes1[:, 3] - boxes1[:, 1] + 1)
    area2 = (boxes2[:, 2] - boxes2[:, 0] + 1) * (boxes2[:, 3] - boxes2[:, 1] + 1)
    return intersection / (area1[:, None] + area2[None, :] - intersection)
"""

# AP as the area under the raw, zig-zagging precision-recall curve: no "precision = max precision to the right".
# The reference's own mean_average_precision, recompiled without its interpolation line (checked to be there).
UNINTERPOLATED_MAP_AND_RAW_ENCODE = """
import inspect as _inspect

_source = _inspect.getsource(mean_average_precision)
_INTERPOLATION = "curve = np.maximum.accumulate(curve[::-1])[::-1]"
if _INTERPOLATION not in _source:
    raise RuntimeError("canary out of date: the reference's mean_average_precision has no interpolation line")
exec(_source.replace(_INTERPOLATION, "pass  # bug: no interpolation"))

_reference_encode = encode


def encode(boxes, anchors, stride, eps=1e-06):
    codes, cells = _reference_encode(boxes, anchors, stride, eps)
    codes = codes.clone()
    codes[:, :2] = torch.sigmoid(codes[:, :2])  # bug: the raw centre offset in [0, 1), not its logit
    return codes, cells
"""

# The reference, off by a little: beyond every tolerance, close enough to look right at a glance.
NOISY = REPLACE + """
_replace(["box_iou", "generalized_box_iou", "box_convert"], lambda result, *args: result + 1e-3 * torch.rand_like(result))
_replace(["decode"], lambda result, *args: result + 1e-2)
_replace(["mean_average_precision"], lambda result, *args: {key: value + 1e-5 for key, value in result.items()})
_replace(["yolo_loss"], lambda result, *args: {key: value * 1.001 for key, value in result.items()})
"""

ZEROS = """
import torchvision as _torchvision


def nms(boxes, scores, iou_threshold):
    return _torchvision.ops.nms(boxes, scores, iou_threshold)  # not from scratch


def yolo_loss(pred, targets, box_weight=5.0, obj_weight=1.0, cls_weight=1.0):
    zero = pred.sum() * 0
    return {"box": zero, "obj": zero, "cls": zero, "total": zero}


def postprocess(pred, anchors, stride, conf_threshold, iou_threshold):
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    return [dict(empty) for _ in range(len(pred))]


def train_yolo(train, *, seed, budget_s):
    return None  # does not train


def predict_yolo(model, inputs):
    return postprocess(torch.zeros(len(inputs["images"]), 33, 8, 8), None, 8, 0.5, 0.5)  # no detections
"""

GEOMETRY_CHECKS = ["box_convert_matches_torchvision", "box_iou_matches_torchvision", "generalized_box_iou_matches_torchvision",
                   "nms_matches_torchvision", "batched_nms_matches_torchvision"]  # fmt: skip

CANARIES = {
    "suppresses_across_classes": (
        SUPPRESSES_ACROSS_CLASSES,
        {
            "batched_nms_matches_torchvision": "failed",
            "postprocess_matches_torchvision": "failed",
            "nms_matches_torchvision": "passed",
        },
    ),
    "legacy_plus_one_iou": (
        LEGACY_PLUS_ONE_IOU,
        {
            "box_iou_matches_torchvision": "failed",
            "nms_matches_torchvision": "failed",
            "generalized_box_iou_matches_torchvision": "passed",
        },
    ),
    "uninterpolated_map_and_raw_encode": (
        UNINTERPOLATED_MAP_AND_RAW_ENCODE,
        {
            "mean_average_precision_matches_cocoeval": "failed",
            "encode_decode_round_trip": "failed",
            "assign_targets_matches_loop": "failed",
            "decode_places_anchors_at_cell_centres": "passed",
        },
    ),
    "noisy": (
        NOISY,
        # nms and batched_nms call the noisy box_iou: the pair built exactly at the threshold catches it
        expect("failed", [*GEOMETRY_CHECKS, "decode_places_anchors_at_cell_centres", "mean_average_precision_matches_cocoeval", "yolo_loss_matches_formula"]),
    ),
    "zeros": (
        ZEROS,
        {
            "nms_matches_torchvision": "forbidden",
            "yolo_loss_matches_formula": "failed",
            "postprocess_matches_torchvision": "failed",
            "yolo_shapes_map50": "failed",
            "yolo_shapes_map": "failed",
        },
    ),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, "detection", overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
