"""harness.metrics.instance_segmentation: COCO mask AP by pycocotools and by faster-coco-eval agree, and agree with
pycocotools driven the usual way (``COCO.loadRes`` of a results list); masks are COCO RLEs; predictions are validated.
"""

import contextlib
import io

import numpy as np
import pytest
import torch

from harness.metrics import METRICS
from harness.metrics.detection import coco_detection_metrics
from harness.metrics.instance_segmentation import coco_mask_map, coco_mask_map50, coco_mask_metrics, encode_masks
from harness.spec.outcomes import CheckFailure

# pycocotools.mask.decode passes numpy a copy=False it does not take (numpy 2): harmless, and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

mask_utils = pytest.importorskip("pycocotools.mask")
pytest.importorskip("faster_coco_eval")

SIZE = 24  # image side of the hand-made truths


def _truth(objects: list[list[tuple[int, np.ndarray]]], size: int = SIZE) -> dict[str, np.ndarray]:
    """A split like shapes64's from per-image lists of (class, bool mask) in drawing order (later ones on top)."""
    instances = np.zeros((len(objects), size, size), np.uint8)
    classes, owners, boxes = [], [], []
    for image, drawn in enumerate(objects):
        for number, (_, mask) in enumerate(drawn):
            instances[image][mask] = number + 1
        for number, (label, _) in enumerate(drawn):
            visible = instances[image] == number + 1
            rows, columns = np.nonzero(visible)
            boxes.append([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1] if len(rows) else [0, 0, 0, 0])
            classes.append(label)
            owners.append(image)
    return {
        "images": np.zeros((len(objects), size, size, 3), np.uint8),
        "counts": np.array([len(drawn) for drawn in objects], np.int64),
        "instances": instances,
        "classes": np.array(classes, np.int64),
        "object_image": np.array(owners, np.int64),
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
    }


def _visible(truth: dict[str, np.ndarray], image: int) -> list[np.ndarray]:
    return [truth["instances"][image] == number + 1 for number in range(int(truth["counts"][image]))]


def _prediction(masks: list[np.ndarray], scores: list[float], labels: list[int], size: int = SIZE) -> dict[str, torch.Tensor]:
    stacked = np.array(masks, dtype=bool).reshape(-1, size, size)
    boxes = []
    for mask in stacked:
        rows, columns = np.nonzero(mask)
        boxes.append([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1] if len(rows) else [0, 0, 0, 0])
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.from_numpy(stacked),
    }


def _blob(rng: np.random.Generator, size: int, small: bool = False) -> np.ndarray:
    """A random ellipse or rectangle (1-4 pixels across when small)."""
    yy, xx = np.mgrid[:size, :size] + 0.5
    cy, cx = rng.uniform(2, size - 2, 2)
    ry, rx = rng.uniform(0.6, 2.0, 2) if small else rng.uniform(2, size / 3, 2)
    if rng.random() < 0.5:
        return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)


def _random_case(seed: int, images: int = 24, classes: int = 5, ties: bool = False):
    """Random scenes of overlapping blobs; predictions are shifted or dilated copies of the visible masks (some dropped,
    some relabelled, some empty) plus spurious blobs; every seventh image has no objects, every eleventh no detections."""
    rng = np.random.default_rng(seed)
    objects = []
    for image in range(images):
        count = 0 if image % 7 == 3 else int(rng.integers(1, 6))
        objects.append([(int(rng.integers(classes)), _blob(rng, SIZE, small=rng.random() < 0.2)) for _ in range(count)])
    truth = _truth(objects)
    predictions = []
    for image in range(images):
        masks, labels = [], []
        for mask, label in zip(_visible(truth, image), truth["classes"][truth["object_image"] == image]):
            if rng.random() < 0.15:
                continue
            moved = np.roll(mask, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
            if rng.random() < 0.3:
                moved = moved | np.roll(moved, 1, axis=int(rng.integers(2)))
            masks.append(moved)
            labels.append(int(label) if rng.random() > 0.1 else int(rng.integers(classes)))
        for _ in range(int(rng.integers(0, 3))):
            masks.append(_blob(rng, SIZE))
            labels.append(int(rng.integers(classes + 1)))  # class `classes` has no ground truth
        if masks and rng.random() < 0.2:
            masks[0] = np.zeros_like(masks[0])  # an empty predicted mask
        scores = rng.random(len(masks))
        if ties:
            scores = np.round(scores * 3) / 3
        if image % 11 == 5:
            masks, scores, labels = [], [], []
        predictions.append(_prediction(masks, list(scores), labels))
    return predictions, truth


def _pycocotools_as_usual(predictions: list[dict], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """pycocotools' COCOeval (segm) the usual way: a ground-truth COCO and ``loadRes`` of a results list of RLEs."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    size = truth["instances"].shape[1:]
    annotations = []
    for image in range(len(truth["counts"])):
        labels = truth["classes"][truth["object_image"] == image]
        for mask, label in zip(_visible(truth, image), labels):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({"id": len(annotations) + 1, "image_id": image + 1, "category_id": int(label) + 1, "segmentation": rle,
                                "area": float(mask.sum()), "iscrowd": 0, "bbox": list(mask_utils.toBbox(rle))})  # fmt: skip
    results = []
    for image, prediction in enumerate(predictions):
        for mask, score, label in zip(prediction["masks"].numpy(), prediction["scores"].tolist(), prediction["labels"].tolist()):
            results.append({"image_id": image + 1, "category_id": label + 1, "score": score,
                            "segmentation": mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))})  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        truth_coco = COCO()
        truth_coco.dataset = {
            "images": [{"id": i + 1, "height": size[0], "width": size[1]} for i in range(len(truth["counts"]))],
            "categories": [{"id": int(c) + 1} for c in sorted(set(truth["classes"].tolist()))],
            "annotations": annotations,
        }
        truth_coco.createIndex()
        evaluator = COCOeval(truth_coco, truth_coco.loadRes(results), iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(["map", "map50", "map75"], (float(v) for v in evaluator.stats[:3])))


# pycocotools adds np.spacing(1) to precision denominators, faster-coco-eval does not (see test_metrics_detection.py).
AGREEMENT = 1e-12


def _both(predictions, truth) -> tuple[dict[str, float], dict[str, float]]:
    return (coco_mask_metrics(predictions, truth, backend="pycocotools"),
            coco_mask_metrics(predictions, truth, backend="faster_coco_eval"))  # fmt: skip


def _assert_agree(first: dict[str, float], second: dict[str, float], keys=None) -> None:
    keys = keys or first.keys()
    differing = {key: (first[key], second[key]) for key in keys if abs(first[key] - second[key]) > AGREEMENT}
    assert not differing, f"backends differ: {differing}"


RANDOM_CASES = {"random_0": {"seed": 0}, "random_1": {"seed": 1, "images": 40, "classes": 8}, "tied_scores": {"seed": 2, "ties": True}}


@pytest.mark.parametrize("case", list(RANDOM_CASES), ids=list(RANDOM_CASES))
def test_backends_and_loadres_agree_on_random_sets(case):
    predictions, truth = _random_case(**RANDOM_CASES[case])
    pycocotools, faster = _both(predictions, truth)
    _assert_agree(pycocotools, faster)
    _assert_agree(pycocotools, _pycocotools_as_usual(predictions, truth), keys=["map", "map50", "map75"])
    assert 0 < pycocotools["map"] < pycocotools["map50"] < 1


def test_masks_are_column_major_coco_rles():
    rng = np.random.default_rng(5)
    masks = rng.random((3, 5, 7)) < 0.4  # not square: a row-major encoding would differ
    rles = encode_masks(masks)
    for mask, rle in zip(masks, rles):
        assert rle == mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)
    assert encode_masks(masks[:0]) == []


def _square(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[top : top + height, left : left + width] = True
    return mask


def test_perfect_predictions_score_one():
    predictions, truth = _random_case(seed=3, images=10)
    perfect = []
    for image in range(10):
        masks = _visible(truth, image)
        labels = truth["classes"][truth["object_image"] == image].tolist()
        perfect.append(_prediction(masks, [0.9] * len(masks), labels))
    for metrics in _both(perfect, truth):
        assert metrics["map"] == metrics["map50"] == metrics["map75"] == pytest.approx(1.0)


def test_mask_iou_not_box_iou_decides():
    # A filled 10 x 10 square against its outline ring of width 2 (64 of its 100 pixels): mask IoU 0.64, box IoU 1.
    truth = _truth([[(0, _square(2, 2, 10, 10))]])
    ring = _square(2, 2, 10, 10) & ~_square(4, 4, 6, 6)
    prediction = [_prediction([ring], [0.9], [0])]
    for metrics in _both(prediction, truth):
        assert metrics["map50"] == pytest.approx(1.0) and metrics["map75"] == 0.0
        assert metrics["map"] == pytest.approx(0.3)  # matched at IoU 0.50, 0.55 and 0.60 of the ten thresholds
    assert coco_detection_metrics([{key: value for key, value in prediction[0].items() if key != "masks"}], truth)["map"] == pytest.approx(1.0)


EMPTY = _prediction([], [], [])
EDGE_CASES = {
    # no detections anywhere: AP 0 for every class with ground truth
    "no_detections": (_truth([[(0, _square(2, 2, 5, 5))], []]), [EMPTY, EMPTY]),
    # ground truth only in image 0; image 1 empty on both sides; a false positive in image 2
    "empty_images": (_truth([[(2, _square(2, 2, 5, 5))], [], []]), [_prediction([_square(2, 2, 5, 4)], [0.5], [2]), EMPTY,
                                                                   _prediction([_square(9, 9, 3, 3)], [0.1], [2])]),  # fmt: skip
    # class 1 has no ground truth: its (higher-scored) detection costs nothing
    "class_absent": (_truth([[(0, _square(2, 2, 5, 5))]]), [_prediction([_square(2, 2, 5, 5)] * 2, [0.9, 0.95], [0, 1])]),
    # equal scores on a true and a false positive
    "tied_scores": (_truth([[(0, _square(2, 2, 5, 5))], [(0, _square(10, 10, 5, 5))]]),
                    [_prediction([_square(2, 2, 5, 5), _square(15, 15, 5, 5)], [0.5, 0.5], [0, 0]), _prediction([_square(10, 10, 5, 5)], [0.5], [0])]),
    # one-pixel objects, an empty predicted mask, an occluded object
    "tiny_masks": (_truth([[(0, _square(0, 0, 1, 1)), (1, _square(5, 5, 6, 6)), (1, _square(7, 7, 2, 2))]]),
                   [_prediction([_square(0, 0, 1, 1), np.zeros((SIZE, SIZE), bool), _square(7, 7, 2, 2)], [0.9, 0.8, 0.7], [0, 1, 1])]),
    # no ground truth at all: every statistic is undefined (-1)
    "no_ground_truth": (_truth([[], []]), [_prediction([_square(2, 2, 5, 5)], [0.5], [0]), EMPTY]),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_backends_agree_on_edge_cases(case):
    truth, predictions = EDGE_CASES[case]
    pycocotools, faster = _both(predictions, truth)
    _assert_agree(pycocotools, faster)
    expected = {"no_detections": 0.0, "class_absent": 1.0, "no_ground_truth": -1.0}
    if case in expected:
        assert pycocotools["map"] == pytest.approx(expected[case])
    if case not in ("no_detections", "no_ground_truth"):
        _assert_agree(pycocotools, _pycocotools_as_usual(predictions, truth), keys=["map", "map50", "map75"])


def test_registry_names_and_one_computation_per_prediction_set(monkeypatch):
    import harness.metrics.detection as detection

    assert METRICS["coco_mask_map"] is coco_mask_map and METRICS["coco_mask_map50"] is coco_mask_map50
    predictions, truth = _random_case(seed=4, images=10)
    calls = []
    evaluate = detection._evaluate
    monkeypatch.setattr(detection, "_evaluate", lambda *args: calls.append(args[3]) or evaluate(*args))
    first, second = METRICS["coco_mask_map"](predictions, truth), METRICS["coco_mask_map50"](predictions, truth)
    boxes = METRICS["coco_map"](predictions, truth)  # the same objects scored as boxes: a computation of its own
    assert calls == ["segm", "bbox"]
    assert first == coco_mask_metrics(predictions, truth)["map"] and second < 1 and boxes != first


def _one(**changes) -> list[dict]:
    prediction = _prediction([_square(2, 2, 5, 5)], [0.5], [0])
    return [{**prediction, **changes}]


MALFORMED = {
    "missing_masks": ([{key: value for key, value in _one()[0].items() if key != "masks"}], "keys boxes, scores, labels, masks"),
    "missing_scores": ([{key: value for key, value in _one()[0].items() if key != "scores"}], "keys boxes, scores, labels"),
    "masks_not_a_tensor": (_one(masks=[[0]]), "expected a tensor"),
    "one_mask_too_many": (_one(masks=torch.zeros(2, SIZE, SIZE, dtype=torch.bool)), r"shape \(1, 24, 24\)"),
    "wrong_image_size": (_one(masks=torch.zeros(1, SIZE, SIZE + 1, dtype=torch.bool)), r"full-image masks of shape \(1, 24, 24\)"),
    "probabilities": (_one(masks=torch.full((1, SIZE, SIZE), 0.7)), "threshold probabilities"),
    "not_binary": (_one(masks=torch.full((1, SIZE, SIZE), 2, dtype=torch.uint8)), "bool or 0/1"),
    "wrong_length": ([], "one dict per hidden image"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_predictions_fail_clearly(case):
    predictions, message = MALFORMED[case]
    with pytest.raises(CheckFailure, match=message):
        coco_mask_map(predictions, _truth([[(0, _square(2, 2, 5, 5))]]))


def test_integer_masks_are_accepted():
    truth = _truth([[(0, _square(2, 2, 5, 5))]])
    as_uint8 = _one(masks=torch.from_numpy(_square(2, 2, 5, 5)[None].astype(np.uint8)))
    assert coco_mask_map(as_uint8, truth) == pytest.approx(1.0)
