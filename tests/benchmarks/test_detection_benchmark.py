"""Timing benchmarks of topic 06: the implementation's box_iou, nms and mean_average_precision against the libraries.

Not graded checks (no budget, no points): they report how far from-scratch code is from the libraries, each pair (or
triple) in one pytest-benchmark group so the comparison table shows the ratio. ``make bench`` times them::

    pytest tests/benchmarks --benchmark-enable [--impl student|PATH]

Without ``--benchmark-enable`` each contender runs once, as a smoke test. Every contender's result is compared with
the library's within the tolerance of the spec's oracle check, so a benchmark never times a wrong answer. The implementation is the one ``--impl`` selects (default:
reference), loaded without the grading guards. The mAP set is COCO-sized per image: 500 images, 20 ground-truth boxes
and 50 detections each, 10 classes; the harness's COCOeval path (both backends) is timed end to end, from the task's
predictions to the summary statistics.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torchvision

from harness.metrics.detection import coco_detection_metrics
from harness.spec import load_specs
from harness.topic.compare import assert_close
from harness.topic.loader import load_topic, resolve_implementation

BOXES = 1000  # box_iou: 1000 x 1000 pairs
NMS_BOXES = 2000  # nms: 100 clusters of 20 jittered boxes
MAP_IMAGES, MAP_TRUTHS, MAP_DETECTIONS, MAP_CLASSES = 500, 20, 50, 10
IMAGE_SIZE = 640.0


@pytest.fixture(scope="module")
def checks() -> dict:
    return load_specs()["detection"].checks


@pytest.fixture(scope="module")
def detection(request: pytest.FixtureRequest) -> types.ModuleType:
    return load_topic(resolve_implementation(request.config.getoption("impl")), "detection")


def _boxes(count: int, generator: torch.Generator) -> torch.Tensor:
    """float32[count, 4] xyxy boxes inside the image, sides 8 to 200 pixels."""
    top_left = torch.rand(count, 2, generator=generator) * (IMAGE_SIZE - 200)
    sides = 8 + torch.rand(count, 2, generator=generator) * 192
    return torch.cat([top_left, top_left + sides], dim=1)


@pytest.mark.benchmark(group=f"box_iou float32 [{BOXES}, 4] x [{BOXES}, 4]")
@pytest.mark.parametrize("contender", ["implementation", "torchvision"], ids=["impl.box_iou", "torchvision.ops.box_iou"])
def test_box_iou_time_against_torchvision(benchmark, detection, checks, contender):
    generator = torch.Generator().manual_seed(0)
    boxes1, boxes2 = _boxes(BOXES, generator), _boxes(BOXES, generator)
    box_iou = detection.box_iou if contender == "implementation" else torchvision.ops.box_iou
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    iou = benchmark(box_iou, boxes1, boxes2)
    tolerance = checks["box_iou_matches_torchvision"].tolerance_for(torch.float32)
    assert_close(iou, torchvision.ops.box_iou(boxes1, boxes2), tolerance, what=f"{contender} box_iou")


@pytest.mark.benchmark(group=f"nms float32 [{NMS_BOXES}, 4] (clusters), iou_threshold 0.5")
@pytest.mark.parametrize("contender", ["implementation", "torchvision"], ids=["impl.nms", "torchvision.ops.nms"])
def test_nms_time_against_torchvision(benchmark, detection, contender):
    generator = torch.Generator().manual_seed(1)
    centres = _boxes(NMS_BOXES // 20, generator).repeat_interleave(20, dim=0)
    boxes = centres + 6 * torch.randn(centres.shape, generator=generator)
    boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], dim=1)
    scores = torch.rand(NMS_BOXES, generator=generator)
    nms = detection.nms if contender == "implementation" else torchvision.ops.nms
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    kept = benchmark(nms, boxes, scores, 0.5)
    assert kept.tolist() == torchvision.ops.nms(boxes, scores, 0.5).tolist()


def _map_set() -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
    """Per image: 20 ground truths, 50 detections (jittered copies of 30 of them, some relabelled, plus 20 spurious)."""
    generator = torch.Generator().manual_seed(2)
    detections, truths = [], []
    for _ in range(MAP_IMAGES):
        boxes = _boxes(MAP_TRUTHS, generator)
        labels = torch.randint(0, MAP_CLASSES, (MAP_TRUTHS,), generator=generator)
        copies = torch.randint(0, MAP_TRUTHS, (30,), generator=generator)
        found = boxes[copies] + 8 * torch.randn(30, 4, generator=generator)
        found = torch.cat([found[:, :2], torch.maximum(found[:, 2:], found[:, :2] + 1)], dim=1)
        det_labels = torch.where(torch.rand(30, generator=generator) < 0.1, torch.randint(0, MAP_CLASSES, (30,), generator=generator), labels[copies])
        det_boxes = torch.cat([found, _boxes(MAP_DETECTIONS - 30, generator)])
        det_labels = torch.cat([det_labels, torch.randint(0, MAP_CLASSES, (MAP_DETECTIONS - 30,), generator=generator)])
        detections.append({"boxes": det_boxes, "scores": torch.rand(MAP_DETECTIONS, generator=generator), "labels": det_labels})
        truths.append({"boxes": boxes, "labels": labels})
    return detections, truths


def _truth_arrays(truths: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """The per-image ground truths in the hidden-split layout the harness's metrics read."""
    return {
        "counts": np.array([len(t["labels"]) for t in truths], dtype=np.int64),
        "boxes": torch.cat([t["boxes"] for t in truths]).numpy(),
        "classes": torch.cat([t["labels"] for t in truths]).numpy(),
        "object_image": np.repeat(np.arange(len(truths)), [len(t["labels"]) for t in truths]),
    }


@pytest.fixture(scope="module")
def map_set() -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]], dict[str, float]]:
    detections, truths = _map_set()
    expected = coco_detection_metrics(detections, _truth_arrays(truths), backend="pycocotools")
    return detections, truths, expected


MAP_CONTENDERS = ["implementation", "pycocotools", "faster_coco_eval"]


@pytest.mark.benchmark(group=f"COCO box mAP, {MAP_IMAGES} images x {MAP_TRUTHS} truths x {MAP_DETECTIONS} detections")
@pytest.mark.parametrize("contender", MAP_CONTENDERS, ids=["impl.mean_average_precision", "harness (pycocotools)", "harness (faster-coco-eval)"])
def test_mean_average_precision_time_against_cocoeval(benchmark, detection, checks, map_set, contender):
    detections, truths, expected = map_set
    truth = _truth_arrays(truths)

    def run() -> dict[str, float]:
        if contender == "implementation":
            return detection.mean_average_precision(detections, truths)
        return coco_detection_metrics(list(detections), truth, backend=contender)  # a fresh list: the harness caches per object

    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    result = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    tolerance = checks["mean_average_precision_matches_cocoeval"].tolerance_for(torch.float64)
    for key in ("map", "map50", "map75"):
        assert_close(float(result[key]), expected[key], tolerance, what=f"{contender} {key} (pycocotools: {expected[key]:.6f})")
