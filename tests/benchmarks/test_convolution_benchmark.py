"""Timing benchmark of topic 02: conv2d (im2col + matmul) of the implementation under test against F.conv2d.

Not a graded check (no budget, no points): it reports how far a from-scratch convolution is from the library's.
Not part of the default test run (``testpaths``); ``make bench`` times it::

    pytest tests/benchmarks --benchmark-enable [--impl student|PATH]

Without ``--benchmark-enable`` each contender runs once, as a smoke test.

Both rows land in one pytest-benchmark group, so the comparison table shows the ratio. The implementation is the
one ``--impl`` selects (default: reference), loaded without the grading guards so only the convolution is timed.
"""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F

from harness.topic.loader import load_topic, resolve_implementation

X_SHAPE = (8, 16, 32, 32)  # N, C_in, H, W
WEIGHT_SHAPE = (32, 16, 3, 3)  # C_out, C_in, kH, kW
PADDING = 1


@pytest.fixture(scope="module")
def convolution(request: pytest.FixtureRequest) -> types.ModuleType:
    return load_topic(resolve_implementation(request.config.getoption("impl")), "convolution")


@pytest.mark.benchmark(group="conv2d float32 x[8, 16, 32, 32] * w[32, 16, 3, 3], padding 1")
@pytest.mark.parametrize("contender", ["implementation", "torch"], ids=["impl.conv2d", "F.conv2d"])
def test_conv2d_time_against_torch(benchmark, convolution, contender):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(X_SHAPE, generator=generator)
    weight = torch.randn(WEIGHT_SHAPE, generator=generator)
    bias = torch.randn(WEIGHT_SHAPE[0], generator=generator)
    conv2d = convolution.conv2d if contender == "implementation" else F.conv2d
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()  # timings depend on it: report it with them
    with torch.no_grad():
        out = benchmark(conv2d, x, weight, bias, 1, PADDING)  # (x, weight, bias, stride, padding): same order for both
        expected = F.conv2d(x, weight, bias, padding=PADDING)
    assert out.shape == expected.shape, f"{contender}: output shape {tuple(out.shape)}, expected {tuple(expected.shape)}"
