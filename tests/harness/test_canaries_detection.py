"""Every check of topic 06 `detection` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process, a few seconds): the reference plus overrides, graded on the
checks it should lose and on some it should keep. Overrides replace module-level names, so reference functions that
call an overridden one (postprocess calls batched_nms, nms calls box_iou) see the bug too; the expected outcomes
say so where that happens.
"""

import pytest
from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test, recompiled

TOPIC = "detection"

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
UNINTERPOLATED_MAP = recompiled(TOPIC,
    "mean_average_precision", "curve = np.maximum.accumulate(curve[::-1])[::-1]", "pass  # bug: no interpolation"
)

# The raw centre offset in [0, 1) as the code, not its logit.
RAW_ENCODE = """
_reference_encode = encode


def encode(boxes, anchors, stride, eps=1e-06):
    codes, cells = _reference_encode(boxes, anchors, stride, eps)
    codes = codes.clone()
    codes[:, :2] = torch.sigmoid(codes[:, :2])  # bug: the raw centre offset in [0, 1), not its logit
    return codes, cells
"""

# The reference, off by a little: beyond every tolerance, close enough to look right at a glance.
NOISY = (
    REPLACE
    + """
_replace(["box_iou", "generalized_box_iou", "box_convert"], lambda result, *args: result + 1e-3 * torch.rand_like(result))
_replace(["decode"], lambda result, *args: result + 1e-2)
_replace(["mean_average_precision"], lambda result, *args: {key: value + 1e-5 for key, value in result.items()})
_replace(["yolo_loss"], lambda result, *args: {key: value * 1.001 for key, value in result.items()})
"""
)

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
    "noisy": (
        NOISY,
        # nms and batched_nms call the noisy box_iou: the pair built exactly at the threshold catches it
        expect(
            "failed",
            [
                *GEOMETRY_CHECKS,
                "decode_places_anchors_at_cell_centres",
                "mean_average_precision_matches_cocoeval",
                "yolo_loss_matches_formula",
            ],
        ),
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


# --- the learner-bug catalogue ----------------------------------------------------------------------------------------
# Plausible single mistakes, each in one interface, and the checks that must catch it.

LEARNER_BUGS = [
    LearnerBug(
        "batched_nms_ignores_categories",
        "value",
        SUPPRESSES_ACROSS_CLASSES,
        loses={"batched_nms_matches_torchvision": "failed", "postprocess_matches_torchvision": "failed"},
        keeps=("nms_matches_torchvision",),
    ),
    LearnerBug(
        "legacy_plus_one_iou",
        "value",
        LEGACY_PLUS_ONE_IOU,
        loses={"box_iou_matches_torchvision": "failed", "nms_matches_torchvision": "failed"},
        keeps=("generalized_box_iou_matches_torchvision",),
    ),
    LearnerBug(
        "nms_unstable_sort",
        "tie",
        """
def nms(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True).indices  # bug: not stable, equal scores in any order
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for index in order.tolist():
        if not suppressed[index]:
            keep.append(index)
            suppressed |= iou[index] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)
""",
        loses={"nms_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "nms_ascending_sort_flipped",
        "tie",
        """
def nms(boxes, scores, iou_threshold):
    order = torch.argsort(scores).flip(0)  # bug: equal scores visited from the highest index down
    iou = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for index in order.tolist():
        if not suppressed[index]:
            keep.append(index)
            suppressed |= iou[index] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)
""",
        loses={"nms_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "nms_suppresses_at_threshold_with_padded_union",
        "tie",
        """
def nms(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices
    top_left = torch.max(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = inter / (area[:, None] + area[None, :] - inter + 1e-6)  # a guard against 0 / 0
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for index in order.tolist():
        if not suppressed[index]:
            keep.append(index)
            suppressed |= iou[index] >= iou_threshold  # bug: a box exactly at the threshold is suppressed
    return torch.tensor(keep, dtype=torch.int64)
""",
        loses={"nms_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "batched_nms_ties_in_category_order",
        "tie",
        """
def batched_nms(boxes, scores, idxs, iou_threshold):
    keep = [torch.nonzero(idxs == c).flatten()[nms(boxes[idxs == c], scores[idxs == c], iou_threshold)] for c in torch.unique(idxs)]
    kept = torch.cat(keep) if keep else torch.zeros(0, dtype=torch.int64)
    # bug: kept is in category order, so equal scores of different categories come out by category, not by index
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]
""",
        loses={"batched_nms_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "assign_tied_anchors_to_the_last",
        "tie",
        recompiled(TOPIC,
            "assign_targets",
            "_shape_iou(sizes, anchors.to(boxes.dtype)).argmax(dim=1)",
            # bug: a loop with `>=` over the anchors, so of two equally good anchors the later one wins
            "(len(anchors) - 1 - _shape_iou(sizes, anchors.to(boxes.dtype)).flip(1).argmax(dim=1))",
        ),
        loses={"assign_targets_matches_loop": "failed"},
    ),
    LearnerBug(
        "assign_first_box_keeps_its_slot",
        "tie",
        """
_reference_assign_targets = assign_targets


def assign_targets(boxes, labels, anchors, stride, grid_size):
    result = None
    for m in range(len(boxes)):  # bug: a slot once taken is never overwritten, so the first box wins
        single = _reference_assign_targets(boxes[m : m + 1], labels[m : m + 1], anchors, stride, grid_size)
        if result is None:
            result = single
            continue
        fresh = single["mask"] & ~result["mask"]
        result["mask"] = result["mask"] | fresh
        result["boxes"] = torch.where(fresh[..., None], single["boxes"], result["boxes"])
        result["labels"] = torch.where(fresh, single["labels"], result["labels"])
    return result if result is not None else _reference_assign_targets(boxes, labels, anchors, stride, grid_size)
""",
        loses={"assign_targets_matches_loop": "failed"},
    ),
    LearnerBug(
        "encode_ignores_eps",
        "default",
        """
_reference_encode = encode


def encode(boxes, anchors, stride, eps=1e-06):
    return _reference_encode(boxes, anchors, stride)  # bug: eps never passed on, always 1e-6
""",
        loses={"encode_matches_formula": "failed"},
    ),
    LearnerBug(
        "decode_in_the_anchors_dtype",
        "dtype",
        # bug: float32 codes times float64 anchors promote the boxes to float64
        recompiled(TOPIC, "decode", ".to(offsets.dtype).view(1, -1, 1, 1)", ".view(1, -1, 1, 1)"),
        loses={"decode_places_anchors_at_cell_centres": "failed"},
    ),
    LearnerBug(
        "encode_in_the_anchors_dtype",
        "dtype",
        recompiled(TOPIC, "encode", "/ anchors.to(boxes.dtype))", "/ anchors)"),  # bug: float64 anchors make float64 codes
        loses={"encode_matches_formula": "failed"},
        keeps=("encode_decode_round_trip",),
    ),
    LearnerBug(
        "postprocess_keeps_scores_at_the_threshold",
        "tie",
        recompiled(TOPIC, "postprocess", "scores[i] > conf_threshold", "scores[i] >= conf_threshold"),  # bug: spec says >
        loses={"postprocess_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "postprocess_in_the_input_dtype",
        "dtype",
        """
_reference_postprocess = postprocess


def postprocess(pred, anchors, stride, conf_threshold, iou_threshold):
    detections = _reference_postprocess(pred, anchors, stride, conf_threshold, iou_threshold)
    # bug: boxes and scores left in pred's dtype (float64 in, float64 out), not float32
    return [{"boxes": d["boxes"].to(pred.dtype), "scores": d["scores"].to(pred.dtype), "labels": d["labels"]} for d in detections]
""",
        loses={"postprocess_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "postprocess_empty_image_with_float_labels",
        "dtype",
        """
_reference_postprocess = postprocess


def postprocess(pred, anchors, stride, conf_threshold, iou_threshold):
    detections = _reference_postprocess(pred, anchors, stride, conf_threshold, iou_threshold)
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.tensor([])}  # bug: float32 labels
    return [d if len(d["scores"]) else empty for d in detections]
""",
        loses={"postprocess_matches_torchvision": "failed"},
    ),
    LearnerBug(
        "map_strictly_above_the_threshold",
        "tie",
        """
def _match_image(iou):
    matched = np.zeros((len(_IOU_THRESHOLDS), iou.shape[0]), dtype=bool)
    for t, threshold in enumerate(_IOU_THRESHOLDS):
        taken = np.zeros(iou.shape[1], dtype=bool)
        for d in range(iou.shape[0]):
            best, best_iou = -1, threshold
            for g in range(iou.shape[1]):
                if not taken[g] and (iou[d, g] > best_iou or (best >= 0 and iou[d, g] == best_iou)):  # bug: IoU == t no match
                    best, best_iou = g, iou[d, g]
            if best >= 0:
                taken[best] = matched[t, d] = True
    return matched
""",
        loses={"mean_average_precision_matches_cocoeval": "failed"},
    ),
    LearnerBug(
        "map_argmax_takes_the_first_of_tied_truths",
        "tie",
        """
def _match_image(iou):
    matched = np.zeros((len(_IOU_THRESHOLDS), iou.shape[0]), dtype=bool)
    for t, threshold in enumerate(_IOU_THRESHOLDS):
        taken = np.zeros(iou.shape[1], dtype=bool)
        for d in range(iou.shape[0]):
            if iou.shape[1] == 0:
                continue
            candidates = np.where(taken, -1.0, iou[d])
            best = int(np.argmax(candidates))  # bug: of equally good ground truths the first, COCOeval takes the last
            if candidates[best] >= min(threshold, 1 - 1e-10):
                taken[best] = matched[t, d] = True
    return matched
""",
        loses={"mean_average_precision_matches_cocoeval": "failed"},
    ),
    LearnerBug(
        "map_drops_low_scores",
        "domain",
        """
_reference_map = mean_average_precision


def mean_average_precision(detections, ground_truths):
    # bug: a demo's confidence floor left in the metric; COCOeval ranks every detection however low its score
    kept = [{key: value[torch.as_tensor(d["scores"]) >= 0.05] for key, value in d.items()} for d in detections]
    return _reference_map(kept, ground_truths)
""",
        loses={"mean_average_precision_matches_cocoeval": "failed"},
    ),
    LearnerBug(
        "map_keeps_100_per_image_not_per_class",
        "domain",
        """
_reference_map = mean_average_precision


def mean_average_precision(detections, ground_truths):
    kept = []
    for d in detections:  # bug: the best 100 of the image over all classes; COCOeval keeps 100 per image and class
        order = torch.argsort(torch.as_tensor(d["scores"]), descending=True, stable=True)[:100]
        kept.append({key: value[order] for key, value in d.items()})
    return _reference_map(kept, ground_truths)
""",
        loses={"mean_average_precision_matches_cocoeval": "failed"},
    ),
    LearnerBug(
        "yolo_loss_in_the_targets_dtype",
        "dtype",
        """
_reference_yolo_loss = yolo_loss


def yolo_loss(pred, targets, box_weight=5.0, obj_weight=1.0, cls_weight=1.0):
    losses = _reference_yolo_loss(pred, targets, box_weight, obj_weight, cls_weight)
    promoted = torch.promote_types(pred.dtype, targets["boxes"].dtype)  # bug: float32 pred, float64 codes -> float64 loss
    return {key: value.to(promoted) for key, value in losses.items()}
""",
        loses={"yolo_loss_matches_formula": "failed"},
    ),
    LearnerBug(
        "box_convert_without_shape_check",
        "error",
        recompiled(TOPIC, "box_convert", '_check_boxes(boxes, "box_convert")', "pass  # bug: a 1-D box converts silently"),
        loses={"invalid_inputs_raise_clear_errors": "failed"},
        keeps=("box_convert_matches_torchvision",),
    ),
    LearnerBug(
        "map_zips_lists_of_different_lengths",
        "error",
        # bug: zip drops the images beyond the shorter list, silently
        recompiled(TOPIC, "mean_average_precision", " or len(detections) != len(ground_truths)", ""),
        loses={"invalid_inputs_raise_clear_errors": "failed"},
    ),
    LearnerBug(
        "map_without_interpolation",
        "value",
        UNINTERPOLATED_MAP,
        loses={"mean_average_precision_matches_cocoeval": "failed"},
    ),
    LearnerBug(
        "encode_raw_centre_offsets",
        "value",
        RAW_ENCODE,
        loses={"encode_decode_round_trip": "failed", "assign_targets_matches_loop": "failed"},
        keeps=("decode_places_anchors_at_cell_centres",),
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
