"""Timing benchmarks of topic 08: the implementation's roi_align against torchvision.ops.roi_align, forward and
forward + backward (the gradient with respect to the feature map, which a Mask R-CNN's training step needs).

Not graded checks (no budget, no points): they report how far a from-scratch RoIAlign is from the library's, both rows
of each in one pytest-benchmark group so the comparison table shows the ratio. ``make bench`` times them::

    pytest tests/benchmarks --benchmark-enable [--impl student|PATH]

Without ``--benchmark-enable`` each contender runs once, as a smoke test. Every contender's result is compared with
torchvision's within the tolerance of the spec's oracle check, so a benchmark never times a wrong answer. The implementation is the one ``--impl`` selects (default:
reference), loaded without the grading guards. The inputs are a Mask R-CNN box head's on shapes64: a batch of 8 stride-4
maps (64 channels, 16 x 16), 48 RoIs per image, 7 x 7 bins, 2 x 2 samples per bin, aligned.
"""

from __future__ import annotations

import types

import pytest
import torch
import torchvision

from harness.spec import load_specs
from harness.topic.compare import assert_close
from harness.topic.loader import load_topic, resolve_implementation

FEATURES = (8, 64, 16, 16)  # N, C, H, W: stride 4 on 64 x 64 images
ROIS_PER_IMAGE = 48
OPTIONS = {"output_size": (7, 7), "spatial_scale": 0.25, "sampling_ratio": 2, "aligned": True}
GROUP = f"roi_align float32 {list(FEATURES)}, {ROIS_PER_IMAGE} RoIs per image, 7 x 7 bins, sampling 2, aligned"


@pytest.fixture(scope="module")
def checks() -> dict:
    return load_specs()["instance_seg"].checks


@pytest.fixture(scope="module")
def instance_seg(request: pytest.FixtureRequest) -> types.ModuleType:
    return load_topic(resolve_implementation(request.config.getoption("impl")), "instance_seg")


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The feature maps and RoIs ``Tensor[K, 5]``: boxes of 5-30 pixels anywhere in the 64 x 64 images."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(FEATURES, generator=generator)
    count = FEATURES[0] * ROIS_PER_IMAGE
    top_left = torch.rand(count, 2, generator=generator) * 50
    sides = 5 + torch.rand(count, 2, generator=generator) * 25
    index = torch.arange(FEATURES[0]).repeat_interleave(ROIS_PER_IMAGE)[:, None].float()
    return features, torch.cat([index, top_left, top_left + sides], dim=1)


def _roi_align(instance_seg: types.ModuleType, contender: str):
    return instance_seg.roi_align if contender == "implementation" else torchvision.ops.roi_align


@pytest.mark.benchmark(group=f"{GROUP}: forward")
@pytest.mark.parametrize("contender", ["implementation", "torchvision"], ids=["impl.roi_align", "torchvision.ops.roi_align"])
def test_roi_align_forward_time_against_torchvision(benchmark, instance_seg, checks, contender):
    features, rois = _inputs()
    roi_align = _roi_align(instance_seg, contender)
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()  # timings depend on it: report it with them
    with torch.no_grad():
        pooled = benchmark(roi_align, features, rois, **OPTIONS)
        expected = torchvision.ops.roi_align(features, rois, **OPTIONS)
        assert_close(pooled, expected, checks["roi_align_matches_torchvision"].tolerance_for(torch.float32), what=f"{contender} roi_align")


@pytest.mark.benchmark(group=f"{GROUP}: forward + backward")
@pytest.mark.parametrize("contender", ["implementation", "torchvision"], ids=["impl.roi_align", "torchvision.ops.roi_align"])
def test_roi_align_backward_time_against_torchvision(benchmark, instance_seg, checks, contender):
    features, rois = _inputs()
    roi_align = _roi_align(instance_seg, contender)
    grad_out = torch.randn(len(rois), FEATURES[1], *OPTIONS["output_size"], generator=torch.Generator().manual_seed(1))

    def forward_backward() -> torch.Tensor:
        leaf = features.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(roi_align(leaf, rois, **OPTIONS), leaf, grad_out)
        return gradient

    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    gradient = benchmark(forward_backward)
    leaf = features.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torchvision.ops.roi_align(leaf, rois, **OPTIONS), leaf, grad_out)
    tolerance = checks["roi_align_backward_matches_torchvision"].tolerance_for(torch.float32)
    assert_close(gradient, expected, tolerance, what=f"gradient of {contender} roi_align")
