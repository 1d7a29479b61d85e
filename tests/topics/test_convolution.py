"""Graded tests of topic 02, convolution: one test per check of specs/02_convolution.yaml.

Oracles are PyTorch (F.conv2d, F.pad, F.unfold, F.fold, F.conv_transpose2d, pooling, autograd) and
scipy.ndimage; they are evaluated in float64 and cast to the dtype under test, so the tolerance only has to
cover the implementation's rounding. Boundary inputs are built on purpose (1x1 images, kernels as large as
the image, stride larger than the kernel, dilation, groups, non-square everything); properties use hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from harness.testing import CheckFailure, ForbiddenCall, as_numpy, assert_close, check, gradcheck_or_fail, gradients
from harness.topic.strategies import seeds, tensors

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]
Pair = int | tuple[int, int]


# --- inputs and comparisons ---------------------------------------------------------------------------------


def _random(shape: Sequence[int], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Standard-normal values drawn in float64 from ``seed`` (the same numbers for every dtype)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float64).to(dtype)


@dataclass(frozen=True)
class ConvCase:
    """One conv2d problem: x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW] and the layer's options."""

    name: str
    x_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    stride: Pair = 1
    padding: Pair = 0
    dilation: Pair = 1
    groups: int = 1
    bias: bool = True

    def options(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}

    def tensors(self, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = _random(self.x_shape, dtype, seed)
        weight = _random(self.weight_shape, dtype, seed + 1)
        bias = _random(self.weight_shape[:1], dtype, seed + 2) if self.bias else None
        return x, weight, bias


CONV_CASES = [
    ConvCase("1x1-image-1x1-kernel", (2, 3, 1, 1), (4, 3, 1, 1)),
    ConvCase("1x1-image-3x3-kernel-padding-1", (1, 2, 1, 1), (3, 2, 3, 3), padding=1),
    ConvCase("kernel-as-large-as-image", (2, 3, 5, 4), (4, 3, 5, 4)),
    ConvCase("stride-larger-than-kernel", (1, 2, 10, 9), (3, 2, 2, 2), stride=3),
    ConvCase("padding-and-dilation", (2, 2, 7, 8), (3, 2, 3, 3), padding=2, dilation=2),
    ConvCase("groups-2", (2, 4, 6, 6), (6, 2, 3, 3), padding=1, groups=2),
    ConvCase("depthwise-multiplier-2", (1, 3, 6, 5), (6, 1, 3, 3), stride=2, padding=1, groups=3),
    ConvCase("non-square-everything", (1, 2, 5, 9), (3, 2, 2, 4), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
    ConvCase("no-bias", (3, 3, 6, 7), (2, 3, 3, 3), padding=1, bias=False),
    ConvCase("batch-8", (8, 4, 8, 8), (5, 4, 3, 3), padding=1),
]
CONV_IDS = [case.name for case in CONV_CASES]


def _float64(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.double()


def _conv2d_float64(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, **options: Any) -> torch.Tensor:
    """The oracle in float64, cast back to the dtype under test."""
    return F.conv2d(x.double(), weight.double(), _float64(bias), **options).to(x.dtype)


def _expect_value_error(call: Callable[[], Any], what: str) -> None:
    """``call()`` must raise ValueError (a stub's NotImplementedError and forbidden calls pass through)."""
    try:
        result = call()
    except ValueError:
        return
    except (NotImplementedError, ForbiddenCall):
        raise
    except Exception as error:  # one raise below for every wrong outcome: hypothesis reports a single failure
        result = error
    if isinstance(result, Exception):
        happened = f"got {type(result).__name__}: {result}"
    else:
        happened = f"nothing was raised (returned {type(result).__name__})"
    raise CheckFailure(f"{what}: expected ValueError, {happened}")


# --- autograd through the implementation (candidates for a harness helper: DESIGN.md, "The implementation boundary")


# --- output_size --------------------------------------------------------------------------------------------


@check("output_size_matches_torch")
@given(size=st.integers(1, 20), kernel=st.integers(1, 5), padding=st.integers(0, 3), stride=st.integers(1, 4), dilation=st.integers(1, 3))
@example(size=1, kernel=1, padding=0, stride=1, dilation=1)  # 1x1 image, 1x1 kernel
@example(size=5, kernel=5, padding=0, stride=1, dilation=1)  # kernel as large as the image
@example(size=1, kernel=3, padding=1, stride=1, dilation=1)  # padding is all that makes it fit
@example(size=9, kernel=2, padding=0, stride=4, dilation=1)  # stride larger than the kernel
@example(size=4, kernel=3, padding=0, stride=1, dilation=2)  # dilated kernel (5) longer than the image
def test_output_size_matches_torch(impl, size, kernel, padding, stride, dilation):
    x, weight = torch.zeros(1, 1, size, 1), torch.zeros(1, 1, kernel, 1)
    try:
        expected = F.conv2d(x, weight, padding=(padding, 0), stride=stride, dilation=dilation).shape[2]
    except RuntimeError:  # the dilated kernel does not fit the padded input: torch refuses, so must output_size
        expected = None
    try:
        got = impl.output_size(size, kernel, padding, stride, dilation)
    except ValueError as error:
        got = error
    call = f"output_size(size={size}, kernel={kernel}, padding={padding}, stride={stride}, dilation={dilation})"
    if expected is None:
        correct, wanted = isinstance(got, ValueError), "ValueError (F.conv2d refuses: the dilated kernel is longer than the padded input)"
    else:
        correct, wanted = got == expected, f"{expected} (F.conv2d)"
    assert correct, f"{call} = {got!r}, expected {wanted}"


# --- pad2d --------------------------------------------------------------------------------------------------

PAD_CASES = [  # (id, x shape, padding, mode)
    ("zeros-int", (2, 3, 4, 5), 2, "zeros"),
    ("zeros-asymmetric", (1, 2, 3, 4), (1, 0, 2, 3), "zeros"),
    ("zeros-no-padding", (1, 2, 3, 4), 0, "zeros"),
    ("zeros-1x1", (1, 1, 1, 1), (2, 1, 0, 3), "zeros"),
    ("reflect-int", (2, 3, 4, 5), 2, "reflect"),
    ("reflect-asymmetric", (1, 2, 5, 4), (3, 0, 1, 4), "reflect"),
    ("reflect-size-minus-1", (1, 1, 3, 4), (3, 3, 2, 2), "reflect"),
    ("replicate-int", (2, 3, 4, 5), 2, "replicate"),
    ("replicate-asymmetric", (1, 2, 3, 4), (0, 3, 2, 1), "replicate"),
    ("replicate-1x1", (1, 1, 1, 1), (2, 3, 1, 4), "replicate"),
    ("replicate-wider-than-image", (1, 1, 2, 3), (5, 4, 6, 2), "replicate"),
]
TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}


@check("pad2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, padding, mode", [case[1:] for case in PAD_CASES], ids=[case[0] for case in PAD_CASES])
def test_pad2d_matches_torch(impl, spec_check, dtype, shape, padding, mode):
    x = _random(shape, dtype, seed=20)
    sides = (padding,) * 4 if isinstance(padding, int) else padding
    expected = F.pad(x, sides, mode=TORCH_PAD_MODE[mode])
    got = impl.pad2d(x, padding, mode)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"pad2d(x {tuple(shape)}, {padding}, {mode!r})")


@st.composite
def _padding_problems(draw: st.DrawFn) -> tuple[torch.Tensor, tuple[int, int, int, int], str]:
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate"]))
    most_w, most_h = (w - 1, h - 1) if mode == "reflect" else (4, 4)  # reflect needs pad < size
    sides = tuple(draw(st.integers(0, min(4, most))) for most in (most_w, most_w, most_h, most_h))
    return draw(tensors((n, c, h, w))), sides, mode


@check("pad2d_unpad_round_trip")
@given(problem=_padding_problems())
def test_pad2d_unpad_round_trip(impl, spec_check, problem):
    x, (left, right, top, bottom), mode = problem
    n, c, h, w = x.shape
    call = f"pad2d(x {tuple(x.shape)}, {(left, right, top, bottom)}, {mode!r})"
    padded = impl.pad2d(x, (left, right, top, bottom), mode)
    expected_shape = (n, c, h + top + bottom, w + left + right)
    got_shape = tuple(padded.shape) if isinstance(padded, torch.Tensor) else type(padded).__name__
    assert got_shape == expected_shape, f"{call}: expected shape {expected_shape}, got {got_shape}"
    cropped = padded[:, :, top : top + h, left : left + w]
    assert_close(cropped, x, spec_check.tolerance_for(x.dtype), what=f"{call} with the padding cropped off")


# --- conv2d_naive, conv2d -----------------------------------------------------------------------------------


@check("conv2d_naive_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_naive_matches_torch(impl, spec_check, dtype, case):
    x, weight, bias = case.tensors(dtype, seed=1)
    expected = _conv2d_float64(x, weight, bias, **case.options())
    got = impl.conv2d_naive(x, weight, bias, **case.options())
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"conv2d_naive [{case.name}]")


@st.composite
def _conv_problems(draw: st.DrawFn, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """A valid conv2d problem (keyword arguments): x, weight, bias (or None), stride, padding, dilation, groups."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # the padded input must hold at least one dilated kernel
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 7))
    x = draw(tensors((draw(st.integers(1, 2)), c_in, h, w), dtype))
    weight = draw(tensors((c_out, c_in // groups, kh, kw), dtype))
    bias = draw(st.none() | tensors((c_out,), dtype))
    return {"x": x, "weight": weight, "bias": bias, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _describe(problem: dict[str, Any]) -> str:
    options = {key: value for key, value in problem.items() if key not in ("x", "weight", "bias")}
    return f"x {tuple(problem['x'].shape)}, weight {tuple(problem['weight'].shape)}, {options}"


@check("conv2d_naive_equals_conv2d")
@given(problem=_conv_problems())
def test_conv2d_naive_equals_conv2d(impl, spec_check, problem):
    naive = impl.conv2d_naive(**problem)
    fast = impl.conv2d(**problem)
    assert_close(fast, naive, spec_check.tolerance_for(problem["x"].dtype), what=f"conv2d vs conv2d_naive ({_describe(problem)})")


@check("conv2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_matches_torch(impl, spec_check, dtype, case):
    x, weight, bias = case.tensors(dtype, seed=2)
    expected = _conv2d_float64(x, weight, bias, **case.options())
    got = impl.conv2d(x, weight, bias, **case.options())
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"conv2d [{case.name}]")


@check("conv2d_gradients_match_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_gradients_match_torch(impl, spec_check, dtype, case):
    x, weight, bias = case.tensors(dtype, seed=3)
    grad_out = _random(_conv2d_float64(x, weight, bias, **case.options()).shape, dtype, seed=4)
    got = gradients(lambda *inputs: impl.conv2d(*inputs, **case.options()), (x, weight, bias), grad_out, f"conv2d [{case.name}]")
    inputs64 = (x.double(), weight.double(), _float64(bias))
    expected = gradients(lambda *inputs: F.conv2d(*inputs, **case.options()), inputs64, grad_out.double(), "F.conv2d")
    tolerance = spec_check.tolerance_for(dtype)
    for name, actual, oracle in zip(("x", "weight", "bias"), got, expected):
        if oracle is None:
            continue
        if actual is None:
            raise CheckFailure(f"conv2d [{case.name}]: no gradient reaches {name} (it is not used by the output's graph)")
        assert_close(actual, oracle.to(dtype), tolerance, what=f"gradient of conv2d w.r.t. {name} [{case.name}]")


@check("conv2d_gradcheck")
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
def test_conv2dgradcheck_or_fail(impl, spec_check, seed):
    options = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    x = _random((1, 4, 7, 6), torch.float64, seed)
    weight, bias = _random((4, 2, 2, 3), torch.float64, seed + 10), _random((4,), torch.float64, seed + 20)
    tolerance = spec_check.tolerance_for(torch.float64)
    gradcheck_or_fail(lambda *inputs: impl.conv2d(*inputs, **options), (x, weight, bias), tolerance, f"conv2d gradcheck (seed {seed}, {options})")


@check("conv2d_backward_matches_autograd")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_matches_autograd(impl, spec_check, dtype, case):
    x, weight, bias = case.tensors(dtype, seed=5)
    if bias is None:  # db does not depend on the bias; the oracle needs one to report it
        bias = torch.zeros(weight.shape[0], dtype=dtype)
    grad_out = _random(_conv2d_float64(x, weight, bias, **case.options()).shape, dtype, seed=6)
    inputs64 = (x.double(), weight.double(), bias.double())
    expected = gradients(lambda *inputs: F.conv2d(*inputs, **case.options()), inputs64, grad_out.double(), "F.conv2d")
    result = impl.conv2d_backward(grad_out, x, weight, **case.options())
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise CheckFailure(f"conv2d_backward [{case.name}]: expected a tuple (dx, dw, db), got {type(result).__name__}")
    tolerance = spec_check.tolerance_for(dtype)
    for name, actual, oracle in zip(("dx", "dw", "db"), result, expected):
        assert_close(actual, oracle.to(dtype), tolerance, what=f"conv2d_backward {name} [{case.name}]")


# --- im2col, col2im -----------------------------------------------------------------------------------------

UNFOLD_CASES = [  # (id, x shape, options)
    ("3x3", (2, 3, 5, 6), {"kernel_size": 3}),
    ("non-square-kernel-dilation-padding", (1, 2, 7, 6), {"kernel_size": (2, 3), "dilation": (2, 1), "padding": (1, 0)}),
    ("stride-larger-than-kernel", (1, 2, 9, 8), {"kernel_size": 2, "stride": 3}),
    ("padding-and-stride", (1, 1, 4, 4), {"kernel_size": 3, "padding": 2, "stride": 2}),
    ("kernel-as-large-as-image", (2, 2, 4, 5), {"kernel_size": (4, 5)}),
    ("1x1-image", (1, 3, 1, 1), {"kernel_size": 1}),
    ("1x1-image-3x3-kernel-padding-1", (1, 2, 1, 1), {"kernel_size": 3, "padding": 1}),
]
UNFOLD_PARAMETERS = [case[1:] for case in UNFOLD_CASES]
UNFOLD_IDS = [case[0] for case in UNFOLD_CASES]


@check("im2col_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, options", UNFOLD_PARAMETERS, ids=UNFOLD_IDS)
def test_im2col_matches_torch(impl, spec_check, dtype, shape, options):
    x = _random(shape, dtype, seed=7)
    got = impl.im2col(x, **options)
    assert_close(got, F.unfold(x, **options), spec_check.tolerance_for(dtype), what=f"im2col(x {tuple(shape)}, {options})")


@check("col2im_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, options", UNFOLD_PARAMETERS, ids=UNFOLD_IDS)
def test_col2im_matches_torch(impl, spec_check, dtype, shape, options):
    output_size = shape[2:]
    cols = _random(F.unfold(torch.zeros(shape), **options).shape, dtype, seed=8)
    expected = F.fold(cols.double(), output_size, **options).to(dtype)
    got = impl.col2im(cols, output_size, **options)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"col2im(cols {tuple(cols.shape)}, {output_size}, {options})")


# --- conv_transpose2d ---------------------------------------------------------------------------------------

TRANSPOSE_CASES = [  # (id, x shape, weight shape [C_in, C_out / groups, kH, kW], options, with bias)
    ("1x1-input", (2, 3, 1, 1), (3, 4, 3, 3), {}, True),
    ("stride-2-output-padding-1", (1, 2, 4, 5), (2, 3, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, True),
    ("stride-larger-than-kernel", (1, 2, 3, 3), (2, 2, 2, 2), {"stride": 3}, True),
    ("dilation-output-padding-below-dilation", (1, 2, 4, 4), (2, 2, 3, 3), {"dilation": 2, "output_padding": 1}, True),
    ("groups-2", (2, 4, 4, 4), (4, 3, 3, 3), {"padding": 1, "groups": 2}, True),
    (
        "non-square-everything",
        (1, 2, 3, 5),
        (2, 3, 2, 3),
        {"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0), "dilation": (1, 2)},
        True,
    ),
    ("no-bias", (2, 3, 4, 4), (3, 2, 3, 3), {"stride": 2}, False),
]


@check("conv_transpose2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "x_shape, weight_shape, options, with_bias", [case[1:] for case in TRANSPOSE_CASES], ids=[case[0] for case in TRANSPOSE_CASES]
)
def test_conv_transpose2d_matches_torch(impl, spec_check, dtype, x_shape, weight_shape, options, with_bias):
    x, weight = _random(x_shape, dtype, seed=9), _random(weight_shape, dtype, seed=10)
    c_out = weight_shape[1] * options.get("groups", 1)
    bias = _random((c_out,), dtype, seed=11) if with_bias else None
    expected = F.conv_transpose2d(x.double(), weight.double(), _float64(bias), **options).to(dtype)
    got = impl.conv_transpose2d(x, weight, bias, **options)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"conv_transpose2d(x {x_shape}, weight {weight_shape}, {options})")


# --- pooling ------------------------------------------------------------------------------------------------

POOL_CASES = [  # (id, x shape, options, all values negative)
    ("default-stride", (2, 3, 6, 6), {"kernel_size": 2}, False),
    ("overlapping-windows", (1, 2, 6, 7), {"kernel_size": 3, "stride": 1}, False),
    ("stride-larger-than-kernel", (1, 2, 9, 8), {"kernel_size": 2, "stride": 3}, False),
    ("padding-all-negative", (2, 2, 5, 6), {"kernel_size": 3, "stride": 2, "padding": 1}, True),
    ("non-square-kernel-stride-padding", (1, 2, 5, 7), {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 1)}, True),
    ("window-as-large-as-image", (1, 2, 4, 5), {"kernel_size": (4, 5)}, False),
    ("1x1-image", (1, 1, 1, 1), {"kernel_size": 1}, False),
]
POOL_PARAMETERS = [case[1:] for case in POOL_CASES]
POOL_IDS = [case[0] for case in POOL_CASES]


def _pool_input(shape: tuple[int, ...], dtype: torch.dtype, negative: bool) -> torch.Tensor:
    x = _random(shape, dtype, seed=12)
    return -x.abs() - 1 if negative else x  # all below zero: zero padding would win a max


@check("max_pool2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, options, negative", POOL_PARAMETERS, ids=POOL_IDS)
def test_max_pool2d_matches_torch(impl, spec_check, dtype, shape, options, negative):
    x = _pool_input(shape, dtype, negative)
    got = impl.max_pool2d(x, **options)
    assert_close(got, F.max_pool2d(x, **options), spec_check.tolerance_for(dtype), what=f"max_pool2d(x {shape}, {options})")


@check("avg_pool2d_matches_torch")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, options, negative", POOL_PARAMETERS, ids=POOL_IDS)
def test_avg_pool2d_matches_torch(impl, spec_check, dtype, shape, options, negative):
    x = _pool_input(shape, dtype, negative)
    expected = F.avg_pool2d(x.double(), **options).to(dtype)
    got = impl.avg_pool2d(x, **options)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"avg_pool2d(x {shape}, {options})")


# --- receptive_field ----------------------------------------------------------------------------------------


def _gradient_footprints(layers: list[tuple[int, int]]) -> list[int]:
    """Measured receptive fields: for each layer of a stack of all-ones, unpadded convolutions, the span (first to last
    input pixel) of the non-zero gradient when that layer's first output is back-propagated."""
    width = 8 * math.prod(k * s for k, s in layers)  # far more input than any of these stacks can see
    x = torch.zeros(1, 1, 1, width, dtype=torch.float64, requires_grad=True)
    footprints, hidden = [], x
    for kernel, stride in layers:
        hidden = F.conv2d(hidden, torch.ones(1, 1, 1, kernel, dtype=torch.float64), stride=stride)
        (grad,) = torch.autograd.grad(hidden[0, 0, 0, 0], x, retain_graph=True)
        touched = grad[0, 0, 0].nonzero().flatten()
        footprints.append(int(touched.max() - touched.min()) + 1)
    return footprints


@check("receptive_field_matches_gradient_footprint")
@given(layers=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), max_size=4))
@example(layers=[(3, 1), (3, 2), (3, 1), (3, 2)])  # 3, 5, 9, 13
@example(layers=[])
def test_receptive_field_matches_gradient_footprint(impl, layers):
    expected = _gradient_footprints(layers)
    got = impl.receptive_field(list(layers))
    correct = isinstance(got, (list, tuple)) and list(got) == expected
    assert correct, f"receptive_field({layers}) = {got!r}, the gradient footprints are {expected}"


# --- KERNELS, apply_kernel ----------------------------------------------------------------------------------


@st.composite
def _filtering_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    image = draw(tensors((draw(st.integers(1, 12)), draw(st.integers(1, 12))), torch.float64))
    kernel = draw(tensors((draw(st.integers(1, 5)), draw(st.integers(1, 5))), torch.float64))
    return image, kernel


@check("apply_kernel_matches_scipy")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@given(problem=_filtering_problems())
def test_apply_kernel_matches_scipy(impl, spec_check, dtype, problem):
    image, kernel = (t.to(dtype) for t in problem)
    expected = scipy.ndimage.correlate(as_numpy(image).astype(np.float64), as_numpy(kernel).astype(np.float64), mode="nearest")
    got = impl.apply_kernel(image, kernel)
    what = f"apply_kernel(image {tuple(image.shape)}, kernel {tuple(kernel.shape)})"
    assert_close(got, torch.from_numpy(expected).to(dtype), spec_check.tolerance_for(dtype), what=what)


def _binomial(image: np.ndarray) -> np.ndarray:
    """[1, 2, 1] / 4 along both axes."""
    rows = scipy.ndimage.correlate1d(image, [0.25, 0.5, 0.25], axis=0, mode="nearest")
    return scipy.ndimage.correlate1d(rows, [0.25, 0.5, 0.25], axis=1, mode="nearest")


CLASSIC_FILTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {  # what each kernel of KERNELS does, per scipy.ndimage
    "identity": lambda image: image,
    "box_blur": lambda image: scipy.ndimage.uniform_filter(image, size=3, mode="nearest"),
    "gaussian": _binomial,
    "sharpen": lambda image: image - scipy.ndimage.laplace(image, mode="nearest"),
    "sobel_x": lambda image: scipy.ndimage.sobel(image, axis=1, mode="nearest"),
    "sobel_y": lambda image: scipy.ndimage.sobel(image, axis=0, mode="nearest"),
    "laplacian": lambda image: scipy.ndimage.laplace(image, mode="nearest"),
}


@check("apply_kernel_classic_kernels")
@pytest.mark.parametrize("name", list(CLASSIC_FILTERS), ids=list(CLASSIC_FILTERS))
def test_apply_kernel_classic_kernels(impl, spec_check, name):
    kernels = impl.KERNELS
    if name not in kernels:
        raise CheckFailure(f"KERNELS has no {name!r} (has: {sorted(kernels)})")
    image = _random((9, 11), torch.float64, seed=13) + torch.linspace(0, 3, 11, dtype=torch.float64)  # noise on a ramp
    expected = torch.from_numpy(CLASSIC_FILTERS[name](image.numpy()))
    got = impl.apply_kernel(image, torch.as_tensor(kernels[name], dtype=torch.float64))
    assert_close(got, expected, spec_check.tolerance_for(torch.float64), what=f"apply_kernel(image, KERNELS[{name!r}])")


# --- properties of conv2d -----------------------------------------------------------------------------------


@check("conv2d_is_linear")
@given(problem=_conv_problems(torch.float64), other_seed=seeds, a=st.floats(-2, 2), b=st.floats(-2, 2))
def test_conv2d_is_linear(impl, spec_check, problem, other_seed, a, b):
    x, weight = problem["x"], problem["weight"]
    options = {key: problem[key] for key in ("stride", "padding", "dilation", "groups")}
    y, v = _random(x.shape, x.dtype, other_seed), _random(weight.shape, x.dtype, other_seed + 1)
    tolerance = spec_check.tolerance_for(torch.float64)

    def conv(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return impl.conv2d(image, kernel, **options)

    where = f"a={a:g}, b={b:g}, {_describe(problem)}"
    in_input, combined = conv(a * x + b * y, weight), a * conv(x, weight) + b * conv(y, weight)
    assert_close(in_input, combined, tolerance, what=f"conv2d(a*x + b*y, w) vs a*conv2d(x, w) + b*conv2d(y, w), {where}")
    in_weight, combined = conv(x, a * weight + b * v), a * conv(x, weight) + b * conv(x, v)
    assert_close(in_weight, combined, tolerance, what=f"conv2d(x, a*w + b*v) vs a*conv2d(x, w) + b*conv2d(x, v), {where}")


@st.composite
def _equivariance_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    stride = draw(st.sampled_from([1, 2]))
    h, w = stride * draw(st.integers(1, 5)), stride * draw(st.integers(1, 5))
    x = draw(tensors((1, draw(st.integers(1, 3)), h, w), torch.float64))
    weight = draw(tensors((draw(st.integers(1, 3)), x.shape[1], draw(st.integers(1, 3)), draw(st.integers(1, 3))), torch.float64))
    return x, weight, stride, draw(st.integers(-3, 3)), draw(st.integers(-3, 3))


@check("conv2d_translation_equivariant")
@given(problem=_equivariance_problems())
def test_conv2d_translation_equivariant(impl, spec_check, problem):
    x, weight, stride, dy, dx = problem
    kh, kw = weight.shape[2:]

    def circular_conv(image: torch.Tensor) -> torch.Tensor:
        """Wrap kernel - 1 pixels (more than the image, if need be) around the bottom/right: no border anywhere."""
        rows = torch.arange(image.shape[2] + kh - 1) % image.shape[2]
        columns = torch.arange(image.shape[3] + kw - 1) % image.shape[3]
        return impl.conv2d(image[:, :, rows][:, :, :, columns], weight, stride=stride)

    shifted_first = circular_conv(torch.roll(x, (stride * dy, stride * dx), dims=(2, 3)))
    shifted_after = torch.roll(circular_conv(x), (dy, dx), dims=(2, 3))
    what = f"conv2d of the input shifted by {(stride * dy, stride * dx)} vs its output shifted by {(dy, dx)} (stride {stride})"
    assert_close(shifted_first, shifted_after, spec_check.tolerance_for(torch.float64), what=what)


@st.composite
def _depthwise_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    channels, multiplier = draw(st.integers(2, 4)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(tensors((draw(st.integers(1, 2)), channels, draw(st.integers(kh, 7)), draw(st.integers(kw, 7))), torch.float64))
    weight = draw(tensors((channels * multiplier, 1, kh, kw), torch.float64))
    return x, weight, {"stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, 1))}


@check("conv2d_depthwise_parameter_count")
@given(problem=_depthwise_problems())
def test_conv2d_depthwise_parameter_count(impl, spec_check, problem):
    x, weight, options = problem
    channels, multiplier = x.shape[1], weight.shape[0] // x.shape[1]
    depthwise = impl.conv2d(x, weight, groups=channels, **options)
    tolerance = spec_check.tolerance_for(torch.float64)
    for out_channel in range(weight.shape[0]):
        in_channel = out_channel // multiplier
        alone = impl.conv2d(x[:, in_channel : in_channel + 1], weight[out_channel : out_channel + 1], **options)
        what = f"depthwise output channel {out_channel} (groups={channels}) vs input channel {in_channel} convolved alone"
        assert_close(depthwise[:, out_channel : out_channel + 1], alone, tolerance, what=what)
    dense = torch.ones(weight.shape[0], channels, *weight.shape[2:], dtype=torch.float64)
    what = f"conv2d with groups={channels} and a dense weight {tuple(dense.shape)} (expects {tuple(weight.shape)})"
    _expect_value_error(lambda: impl.conv2d(x, dense, groups=channels, **options), what)
