"""harness.metrics.detection: COCO box mAP by pycocotools and by faster-coco-eval agree exactly; predictions are validated.

The harness scores detection tasks with faster-coco-eval when it is installed (fast path) and pycocotools otherwise;
these tests hold the two to the same twelve numbers on random sets and on the edge cases COCOeval treats specially.
"""

import numpy as np
import pytest
import torch

from harness.metrics import METRICS
from harness.metrics.detection import coco_detection_metrics, coco_map, coco_map50
from harness.spec.outcomes import CheckFailure

pytest.importorskip("pycocotools")
pytest.importorskip("faster_coco_eval")


def _truth(boxes: list[list[float]], classes: list[int], owners: list[int], images: int) -> dict[str, np.ndarray]:
    return {
        "images": np.zeros((images, 4, 4, 3), np.uint8),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "classes": np.asarray(classes, np.int64),
        "object_image": np.asarray(owners, np.int64),
    }


def _prediction(boxes: list[list[float]], scores: list[float], labels: list[int]) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def _random_case(seed: int, images: int = 30, classes: int = 6, ties: bool = False, spill: bool = False):
    """Random scenes; predictions are jittered truth (some dropped, some relabelled) plus spurious boxes."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 7, images)
    counts[::7] = 0  # empty images
    owners = np.repeat(np.arange(images), counts)
    corners = rng.uniform(0, 56, (len(owners), 2))
    sides = rng.uniform(0.5, 30, (len(owners), 2))  # tiny boxes too
    truth = _truth(np.c_[corners, corners + sides].tolist(), rng.integers(0, classes, len(owners)).tolist(), owners.tolist(), images)
    predictions = []
    for i in range(images):
        mine = owners == i
        boxes = truth["boxes"][mine][rng.random(mine.sum()) < 0.85]
        boxes = boxes + rng.normal(0, 2, boxes.shape)
        labels = truth["classes"][mine][: len(boxes)].copy()
        labels[rng.random(len(labels)) < 0.1] = rng.integers(0, classes)
        extra = rng.integers(0, 4)
        spurious = np.c_[rng.uniform(-10, 60, (extra, 2)), np.zeros((extra, 2))]
        spurious[:, 2:] = spurious[:, :2] + rng.uniform(1, 40, (extra, 2))  # may leave the 64x64 image
        boxes = np.r_[boxes, spurious]
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        labels = np.r_[labels, rng.integers(0, classes + 1, extra)]  # class `classes` has no ground truth
        scores = rng.random(len(boxes))
        if ties:
            scores = np.round(scores * 3) / 3
        if i % 11 == 5:
            boxes, scores, labels = boxes[:0], scores[:0], labels[:0]  # an image without detections
        predictions.append(_prediction(boxes.tolist(), scores.tolist(), labels.tolist()))
    if spill:  # more than 100 detections in one image: COCOeval keeps the best 100 per image and class
        many = np.tile(truth["boxes"][owners == 1], (40, 1)) + rng.normal(0, 3, (40 * (owners == 1).sum(), 4))
        many[:, 2:] = np.maximum(many[:, 2:], many[:, :2])
        predictions[1] = _prediction(many.tolist(), rng.random(len(many)).tolist(), np.tile(truth["classes"][owners == 1], 40).tolist())
    return predictions, truth


# The backends agree to the last bits, not bit for bit: pycocotools divides by tp + fp + np.spacing(1) (so a perfect
# class scores 0.9999999999999998), faster-coco-eval's C++ does not, and their final means sum in different orders.
AGREEMENT = 1e-12


def _assert_agree(pycocotools: dict[str, float], faster: dict[str, float]) -> None:
    assert pycocotools.keys() == faster.keys()
    differing = {key: (pycocotools[key], faster[key]) for key in pycocotools if abs(pycocotools[key] - faster[key]) > AGREEMENT}
    assert not differing, f"pycocotools vs faster-coco-eval differ: {differing}"


def _both(predictions, truth) -> tuple[dict[str, float], dict[str, float]]:
    return (coco_detection_metrics(predictions, truth, backend="pycocotools"),
            coco_detection_metrics(predictions, truth, backend="faster_coco_eval"))  # fmt: skip


RANDOM_CASES = {
    "random_0": {"seed": 0},
    "random_1": {"seed": 1, "images": 60, "classes": 10},
    "tied_scores": {"seed": 2, "ties": True},
    "more_than_100_detections": {"seed": 3, "spill": True},
}


@pytest.mark.parametrize("case", list(RANDOM_CASES), ids=list(RANDOM_CASES))
def test_backends_agree_on_random_sets(case):
    pycocotools, faster = _both(*_random_case(**RANDOM_CASES[case]))
    _assert_agree(pycocotools, faster)
    assert 0 < pycocotools["map"] < pycocotools["map50"] <= 1


def test_perfect_predictions_score_one():
    truth = _truth([[0, 0, 10, 10], [20, 20, 30, 40], [5, 5, 9, 9]], [0, 1, 0], [0, 0, 1], 2)
    predictions = [_prediction([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.8], [0, 1]), _prediction([[5, 5, 9, 9]], [0.7], [0])]
    for metrics in _both(predictions, truth):
        assert metrics["map"] == metrics["map50"] == metrics["map75"] == pytest.approx(1.0)


EDGE_CASES = {
    # no detections anywhere: AP 0 for every class with ground truth
    "no_detections": (_truth([[0, 0, 10, 10]], [0], [0], 2), [_prediction([], [], []), _prediction([], [], [])]),
    # ground truth only in image 0; image 1 empty on both sides
    "empty_images": (_truth([[0, 0, 10, 10]], [2], [0], 3), [_prediction([[1, 0, 10, 10]], [0.5], [2]), _prediction([], [], []), _prediction([[3, 3, 5, 5]], [0.1], [2])]),
    # class 1 has no ground truth: its detection costs nothing
    "class_absent": (_truth([[0, 0, 10, 10]], [0], [0], 1), [_prediction([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.95], [0, 1])]),
    # equal scores on a true and a false positive
    "tied_scores": (_truth([[0, 0, 10, 10], [30, 30, 40, 40]], [0, 0], [0, 1], 2), [_prediction([[0, 0, 10, 10], [50, 50, 60, 60]], [0.5, 0.5], [0, 0]), _prediction([[30, 30, 40, 40]], [0.5], [0])]),
    # tiny and zero-size boxes, a box beyond the image
    "tiny_and_outside": (_truth([[0, 0, 1, 1], [60, 60, 64, 64]], [0, 0], [0, 0], 1), [_prediction([[0, 0, 1, 1], [62, 62, 70, 70], [5, 5, 5, 5]], [0.9, 0.8, 0.7], [0, 0, 0])]),
    # no ground truth at all: every statistic is undefined (-1)
    "no_ground_truth": (_truth([], [], [], 2), [_prediction([[0, 0, 10, 10]], [0.5], [0]), _prediction([], [], [])]),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_backends_agree_on_edge_cases(case):
    truth, predictions = EDGE_CASES[case]
    pycocotools, faster = _both(predictions, truth)
    _assert_agree(pycocotools, faster)
    if case == "no_detections":
        assert pycocotools["map"] == 0.0
    if case == "class_absent":
        assert pycocotools["map"] == pytest.approx(1.0)
    if case == "no_ground_truth":
        assert pycocotools["map"] == -1.0


def test_registry_names_and_one_computation_per_prediction_set(monkeypatch):
    import harness.metrics.detection as detection

    assert METRICS["coco_map"] is coco_map and METRICS["coco_map50"] is coco_map50
    predictions, truth = _random_case(seed=4, images=10)
    calls = []
    evaluate = detection._evaluate
    monkeypatch.setattr(detection, "_evaluate", lambda *args: calls.append(1) or evaluate(*args))
    first, second = METRICS["coco_map"](predictions, truth), METRICS["coco_map50"](predictions, truth)
    assert len(calls) == 1
    assert first == coco_detection_metrics(predictions, truth)["map"] and second < 1


MALFORMED = {
    "not_a_list": ({"boxes": torch.zeros(0, 4)}, "expected a list"),
    "wrong_length": ([], "one dict per hidden image"),
    "missing_key": ([{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)}], "keys boxes, scores, labels"),
    "boxes_not_k_by_4": ([{"boxes": torch.zeros(2, 5), "scores": torch.zeros(2), "labels": torch.zeros(2, dtype=torch.int64)}], r"shape \(K, 4\)"),
    "scores_length": ([{"boxes": torch.zeros(2, 4), "scores": torch.zeros(3), "labels": torch.zeros(2, dtype=torch.int64)}], "for 2 boxes"),
    "float_labels": ([{"boxes": torch.zeros(1, 4), "scores": torch.zeros(1), "labels": torch.zeros(1)}], "integer class indices"),
    "nan_score": ([_prediction([[0, 0, 1, 1]], [float("nan")], [0])], "finite"),
    "inverted_box": ([_prediction([[5, 0, 1, 1]], [0.5], [0])], "x1 <= x2"),
    "negative_label": ([_prediction([[0, 0, 1, 1]], [0.5], [-1])], "class indices must lie"),
    "a_list_not_a_tensor": ([{"boxes": [[0, 0, 1, 1]], "scores": [0.5], "labels": [0]}], "expected a tensor"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_predictions_fail_clearly(case):
    predictions, message = MALFORMED[case]
    with pytest.raises(CheckFailure, match=message):
        coco_map(predictions, _truth([[0, 0, 10, 10]], [0], [0], 1))
