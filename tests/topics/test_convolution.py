"""Graded tests of topic 02, convolution: one test per check of specs/02_convolution.yaml.

Oracles are PyTorch (F.conv2d, F.pad, F.unfold, F.fold, F.conv_transpose2d, pooling, autograd) and
scipy.ndimage; they are evaluated in float64 and cast to the dtype under test, so the tolerance only has to
cover the implementation's rounding. Boundary inputs are built on purpose in named case tables (1x1 images, kernels
as large as the image, stride larger than the kernel, dilation, groups, non-square everything) and every oracle check
runs them on contiguous and non-contiguous tensors (``layouts``), in each dtype the spec gives a tolerance for (the
``dtype`` fixture); properties use hypothesis.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from harness.testing import (
    Case,
    CheckFailure,
    as_numpy,
    assert_close,
    assert_raises,
    cases,
    check,
    gradcheck_or_fail,
    gradients,
    in_layout,
    layouts,
    seeded_randn,
    strategies,
)

# --- inputs and comparisons ---------------------------------------------------------------------------------

# One conv2d problem per case: x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW] and the layer's options
# (stride, padding, dilation, groups: conv2d's defaults when absent; bias=False: no bias).
CONV_CASES = cases(
    Case("1x1-image-1x1-kernel", x=(2, 3, 1, 1), weight=(4, 3, 1, 1)),
    Case("1x1-image-3x3-kernel-padding-1", x=(1, 2, 1, 1), weight=(3, 2, 3, 3), padding=1),
    Case("kernel-as-large-as-image", x=(2, 3, 5, 4), weight=(4, 3, 5, 4)),
    Case("stride-larger-than-kernel", x=(1, 2, 10, 9), weight=(3, 2, 2, 2), stride=3),
    Case("padding-and-dilation", x=(2, 2, 7, 8), weight=(3, 2, 3, 3), padding=2, dilation=2),
    Case("groups-2", x=(2, 4, 6, 6), weight=(6, 2, 3, 3), padding=1, groups=2),
    Case("depthwise-multiplier-2", x=(1, 3, 6, 5), weight=(6, 1, 3, 3), stride=2, padding=1, groups=3),
    Case("non-square-everything", x=(1, 2, 5, 9), weight=(3, 2, 2, 4), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
    Case("no-bias", x=(3, 3, 6, 7), weight=(2, 3, 3, 3), padding=1, bias=False),
    Case("batch-8", x=(8, 4, 8, 8), weight=(5, 4, 3, 3), padding=1),
)


def _conv_options(case: Case) -> dict[str, Any]:
    """The case's stride, padding, dilation and groups as conv2d keyword arguments."""
    defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    return {name: case.get(name, default) for name, default in defaults.items()}


def _conv_tensors(case: Case, dtype: torch.dtype, seed: int, layout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """x, weight and bias (None for a case without) of the case, drawn from ``seed``, in ``layout``."""
    x = in_layout(seeded_randn(case.x, seed, dtype), layout)
    weight = in_layout(seeded_randn(case.weight, seed + 1, dtype), layout)
    bias = in_layout(seeded_randn(case.weight[:1], seed + 2, dtype), layout) if case.get("bias", True) else None
    return x, weight, bias


def _laid_out(tensors: Sequence[torch.Tensor | None], layout: str) -> list[torch.Tensor | None]:
    """Each tensor in ``layout`` (None stays None); ``gradients`` keeps the layout of what it is given."""
    return [None if tensor is None else in_layout(tensor, layout) for tensor in tensors]


def _float64(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.double()


def _conv2d_float64(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, **options: Any) -> torch.Tensor:
    """The oracle in float64, cast back to the dtype under test."""
    return F.conv2d(x.double(), weight.double(), _float64(bias), **options).to(x.dtype)


def _assert_impulse_response(conv: Callable[..., Any], dtype: torch.dtype, tolerance: Any, what: str) -> None:
    """``conv`` of a unit impulse holds the kernel's values, wherever it puts them and whichever way round.

    Linearity, equivariance, channel separation and agreement with another implementation hold for the zero map too, and
    a gradient check passes any smooth map: a property check also asks for this, which only a convolution does. The
    values are compared sorted, so the response's position and orientation are left to the oracles (a window shifted by
    a pixel or a flipped kernel passes this).
    """
    impulse = torch.zeros(1, 1, 7, 7, dtype=dtype)
    impulse[0, 0, 3, 3] = 1
    kernel = seeded_randn((2, 1, 3, 3), 40, dtype)
    response = conv(impulse, kernel, padding=1)
    if not isinstance(response, torch.Tensor) or tuple(response.shape) != (1, 2, 7, 7):
        got = tuple(response.shape) if isinstance(response, torch.Tensor) else type(response).__name__
        raise CheckFailure(f"{what} of a 7x7 unit impulse with a 3x3 kernel, padding 1: got {got}, expected (1, 2, 7, 7)")
    expected = torch.cat([kernel.reshape(2, 9), torch.zeros(2, 40, dtype=dtype)], dim=1).sort(dim=1).values
    got = response.detach().reshape(2, 49).sort(dim=1).values
    assert_close(got, expected, tolerance, what=f"{what} of a unit impulse: its values, sorted, against the 3x3 kernel's and zeros")


def _is_int(value: object) -> bool:
    """An integer (Python or numpy), not a bool and not a float that happens to be whole."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
    call = f"output_size(size={size}, kernel={kernel}, padding={padding}, stride={stride}, dilation={dilation})"
    if expected is None:
        what = f"{call} (F.conv2d refuses: the dilated kernel is longer than the padded input)"
        assert_raises(ValueError, lambda: impl.output_size(size, kernel, padding, stride, dilation), what)
        return
    got = impl.output_size(size, kernel, padding, stride, dilation)
    if not _is_int(got):
        raise CheckFailure(f"{call} returned {got!r} of type {type(got).__name__}; an output length is an int ({expected})")
    if got != expected:
        raise CheckFailure(f"{call} = {got}, but F.conv2d's output has length {expected}", {"got": int(got), "expected": expected})


# --- pad2d --------------------------------------------------------------------------------------------------

TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate"}


@check("pad2d_matches_torch")
@layouts
@cases(
    Case("zeros-int", x=(2, 3, 4, 5), padding=2, mode="zeros"),
    Case("zeros-asymmetric", x=(1, 2, 3, 4), padding=(1, 0, 2, 3), mode="zeros"),
    Case("zeros-no-padding", x=(1, 2, 3, 4), padding=0, mode="zeros"),
    Case("zeros-1x1", x=(1, 1, 1, 1), padding=(2, 1, 0, 3), mode="zeros"),
    Case("reflect-int", x=(2, 3, 4, 5), padding=2, mode="reflect"),
    Case("reflect-asymmetric", x=(1, 2, 5, 4), padding=(3, 0, 1, 4), mode="reflect"),
    Case("reflect-size-minus-1", x=(1, 1, 3, 4), padding=(3, 3, 2, 2), mode="reflect"),
    Case("replicate-int", x=(2, 3, 4, 5), padding=2, mode="replicate"),
    Case("replicate-asymmetric", x=(1, 2, 3, 4), padding=(0, 3, 2, 1), mode="replicate"),
    Case("replicate-1x1", x=(1, 1, 1, 1), padding=(2, 3, 1, 4), mode="replicate"),
    Case("replicate-wider-than-image", x=(1, 1, 2, 3), padding=(5, 4, 6, 2), mode="replicate"),
)
def test_pad2d_matches_torch(impl, case, layout, dtype, tolerance):
    x = in_layout(seeded_randn(case.x, 20, dtype), layout)
    sides = (case.padding,) * 4 if isinstance(case.padding, int) else case.padding
    expected = F.pad(x, sides, mode=TORCH_PAD_MODE[case.mode])
    got = impl.pad2d(x, case.padding, case.mode)
    assert_close(got, expected, tolerance, what=f"pad2d(x {case.x}, {case.padding}, {case.mode!r}) [{case.name}]")


@st.composite
def _padding_problems(draw: st.DrawFn) -> tuple[torch.Tensor, tuple[int, int, int, int], str]:
    n, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate"]))
    most_w, most_h = (w - 1, h - 1) if mode == "reflect" else (4, 4)  # reflect needs pad < size
    sides = tuple(draw(st.integers(0, min(4, most))) for most in (most_w, most_w, most_h, most_h))
    return draw(strategies.tensors((n, c, h, w), torch.float64)), sides, mode


@check("pad2d_unpad_round_trip")
@given(problem=_padding_problems())
def test_pad2d_unpad_round_trip(impl, dtype, tolerance, problem):
    x, (left, right, top, bottom), mode = problem
    x = x.to(dtype)
    n, c, h, w = x.shape
    call = f"pad2d(x {tuple(x.shape)}, {(left, right, top, bottom)}, {mode!r})"
    padded = impl.pad2d(x, (left, right, top, bottom), mode)
    expected_shape = (n, c, h + top + bottom, w + left + right)
    got_shape = tuple(padded.shape) if isinstance(padded, torch.Tensor) else type(padded).__name__
    assert got_shape == expected_shape, f"{call}: expected shape {expected_shape}, got {got_shape}"
    cropped = padded[:, :, top : top + h, left : left + w]
    assert_close(cropped, x, tolerance, what=f"{call} with the padding cropped off")


# --- conv2d_naive, conv2d -----------------------------------------------------------------------------------


@check("conv2d_naive_matches_torch")
@layouts
@CONV_CASES
def test_conv2d_naive_matches_torch(impl, case, layout, dtype, tolerance):
    x, weight, bias = _conv_tensors(case, dtype, 1, layout)
    expected = _conv2d_float64(x, weight, bias, **_conv_options(case))
    got = impl.conv2d_naive(x, weight, bias, **_conv_options(case))
    assert_close(got, expected, tolerance, what=f"conv2d_naive [{case.name}, {layout}]")


@st.composite
def _conv_problems(draw: st.DrawFn) -> dict[str, Any]:
    """A valid float64 conv2d problem (keyword arguments): x, weight, bias (or None), stride, padding, dilation, groups."""
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # the padded input must hold at least one dilated kernel
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1]), 7))
    x = draw(strategies.tensors((draw(st.integers(1, 2)), c_in, h, w), torch.float64))
    weight = draw(strategies.tensors((c_out, c_in // groups, kh, kw), torch.float64))
    bias = draw(st.none() | strategies.tensors((c_out,), torch.float64))
    return {"x": x, "weight": weight, "bias": bias, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _in_dtype(problem: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """The problem with its tensors (drawn in float64) cast to the ``dtype`` under test."""
    return {key: value.to(dtype) if isinstance(value, torch.Tensor) else value for key, value in problem.items()}


def _describe(problem: dict[str, Any]) -> str:
    options = {key: value for key, value in problem.items() if key not in ("x", "weight", "bias")}
    return f"x {tuple(problem['x'].shape)}, weight {tuple(problem['weight'].shape)}, {options}"


# One explicit example of each conv2d property also checks the impulse response (the draws do not: it costs the same
# every time, and a loop implementation is slow).
_ANCHORED_PROBLEM = {
    "x": seeded_randn((1, 2, 5, 6), 50, torch.float64), "weight": seeded_randn((3, 2, 3, 3), 51, torch.float64), "bias": None,
    "stride": (1, 1), "padding": (1, 1), "dilation": (1, 1), "groups": 1,
}  # fmt: skip


@check("conv2d_naive_equals_conv2d")
@given(problem=_conv_problems(), anchored=st.just(False))
@example(problem=_ANCHORED_PROBLEM, anchored=True)
def test_conv2d_naive_equals_conv2d(impl, dtype, tolerance, problem, anchored):
    problem = _in_dtype(problem, dtype)
    naive = impl.conv2d_naive(**problem)
    fast = impl.conv2d(**problem)
    assert_close(fast, naive, tolerance, what=f"conv2d vs conv2d_naive ({_describe(problem)})")
    if anchored:
        _assert_impulse_response(impl.conv2d_naive, dtype, tolerance, "conv2d_naive")
        _assert_impulse_response(impl.conv2d, dtype, tolerance, "conv2d")


@check("conv2d_matches_torch")
@layouts
@CONV_CASES
def test_conv2d_matches_torch(impl, case, layout, dtype, tolerance):
    x, weight, bias = _conv_tensors(case, dtype, 2, layout)
    expected = _conv2d_float64(x, weight, bias, **_conv_options(case))
    got = impl.conv2d(x, weight, bias, **_conv_options(case))
    assert_close(got, expected, tolerance, what=f"conv2d [{case.name}, {layout}]")


@check("conv2d_gradients_match_torch")
@layouts
@CONV_CASES
def test_conv2d_gradients_match_torch(impl, case, layout, dtype, tolerance):
    options = _conv_options(case)
    x, weight, bias = _conv_tensors(case, dtype, 3, "contiguous")
    grad_out = seeded_randn(_conv2d_float64(x, weight, bias, **options).shape, 4, dtype)
    what = f"conv2d [{case.name}, {layout}]"
    # the leaves gradients() makes are contiguous: the layout is applied inside, and the gradients flow back through it
    got = gradients(lambda *inputs: impl.conv2d(*inputs, **options), _laid_out((x, weight, bias), layout), grad_out, what)
    inputs64 = (x.double(), weight.double(), _float64(bias))
    expected = gradients(lambda *inputs: F.conv2d(*inputs, **options), inputs64, grad_out.double(), "F.conv2d")
    for name, actual, oracle in zip(("x", "weight", "bias"), got, expected):
        if oracle is None:
            continue
        if actual is None:
            raise CheckFailure(f"{what}: no gradient reaches {name} (it is not used by the output's graph)")
        assert_close(actual, oracle.to(dtype), tolerance, what=f"gradient of conv2d w.r.t. {name} [{case.name}, {layout}]")


@check("conv2d_gradcheck")
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed0", "seed1", "seed2"])
def test_conv2d_gradcheck(impl, seed, dtype, tolerance):
    options = {"stride": 2, "padding": 1, "dilation": 2, "groups": 2}
    x = seeded_randn((1, 4, 7, 6), seed, dtype)  # dtype: the spec's float64, as gradcheck needs
    weight, bias = seeded_randn((4, 2, 2, 3), seed + 10, dtype), seeded_randn((4,), seed + 20, dtype)
    _assert_impulse_response(impl.conv2d, dtype, tolerance, "conv2d")  # first: it is cheap, and a gradcheck passes any smooth map
    gradcheck_or_fail(
        lambda *inputs: impl.conv2d(*inputs, **options), (x, weight, bias), tolerance, f"conv2d gradcheck (seed {seed}, {options})"
    )


@check("conv2d_backward_matches_autograd")
@layouts
@CONV_CASES
def test_conv2d_backward_matches_autograd(impl, case, layout, dtype, tolerance):
    options = _conv_options(case)
    x, weight, bias = _conv_tensors(case, dtype, 5, layout)
    if bias is None:  # db does not depend on the bias; the oracle needs one to report it
        bias = torch.zeros(weight.shape[0], dtype=dtype)
    grad_out = in_layout(seeded_randn(_conv2d_float64(x, weight, bias, **options).shape, 6, dtype), layout)
    inputs64 = (x.double(), weight.double(), bias.double())
    expected = gradients(lambda *inputs: F.conv2d(*inputs, **options), inputs64, grad_out.double(), "F.conv2d")
    result = impl.conv2d_backward(grad_out, x, weight, **options)
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise CheckFailure(f"conv2d_backward [{case.name}]: expected a tuple (dx, dw, db), got {type(result).__name__}")
    for name, actual, oracle in zip(("dx", "dw", "db"), result, expected):
        assert_close(actual, oracle.to(dtype), tolerance, what=f"conv2d_backward {name} [{case.name}, {layout}]")


# --- im2col, col2im -----------------------------------------------------------------------------------------

UNFOLD_CASES = cases(  # x [N, C, H, W] and the unfold options
    Case("3x3", x=(2, 3, 5, 6), options={"kernel_size": 3}),
    Case("non-square-kernel-dilation-padding", x=(1, 2, 7, 6), options={"kernel_size": (2, 3), "dilation": (2, 1), "padding": (1, 0)}),
    Case("stride-larger-than-kernel", x=(1, 2, 9, 8), options={"kernel_size": 2, "stride": 3}),
    Case("padding-and-stride", x=(1, 1, 4, 4), options={"kernel_size": 3, "padding": 2, "stride": 2}),
    Case("kernel-as-large-as-image", x=(2, 2, 4, 5), options={"kernel_size": (4, 5)}),
    Case("1x1-image", x=(1, 3, 1, 1), options={"kernel_size": 1}),
    Case("1x1-image-3x3-kernel-padding-1", x=(1, 2, 1, 1), options={"kernel_size": 3, "padding": 1}),
    Case("width-padding-3", x=(1, 2, 5, 4), options={"kernel_size": (3, 2), "padding": (1, 3), "stride": (1, 2)}),  # pad > kernel
    Case(  # every (h, w) pair unequal, on a non-square image: a pair read as (w, h) changes the result
        "every-pair-h-not-w",
        x=(2, 2, 9, 7),
        options={"kernel_size": (3, 2), "dilation": (1, 2), "padding": (0, 1), "stride": (2, 1)},
    ),
)


@check("im2col_matches_torch")
@layouts
@UNFOLD_CASES
def test_im2col_matches_torch(impl, case, layout, dtype, tolerance):
    x = in_layout(seeded_randn(case.x, 7, dtype), layout)
    got = impl.im2col(x, **case.options)
    assert_close(got, F.unfold(x, **case.options), tolerance, what=f"im2col(x {case.x}, {case.options}) [{layout}]")


@check("col2im_matches_torch")
@layouts
@UNFOLD_CASES
def test_col2im_matches_torch(impl, case, layout, dtype, tolerance):
    output_size = case.x[2:]
    cols = in_layout(seeded_randn(F.unfold(torch.zeros(case.x), **case.options).shape, 8, dtype), layout)
    expected = F.fold(cols.double(), output_size, **case.options).to(dtype)
    got = impl.col2im(cols, output_size, **case.options)
    assert_close(got, expected, tolerance, what=f"col2im(cols {tuple(cols.shape)}, {output_size}, {case.options}) [{layout}]")


# --- conv_transpose2d ---------------------------------------------------------------------------------------


@check("conv_transpose2d_matches_torch")
@layouts
@cases(  # x [N, C_in, H, W], weight [C_in, C_out / groups, kH, kW], the options; bias=False: no bias
    Case("1x1-input", x=(2, 3, 1, 1), weight=(3, 4, 3, 3), options={}),
    Case("padding-crops-to-one-row", x=(1, 2, 1, 4), weight=(2, 2, 3, 2), options={"padding": (1, 0)}),  # H_out = 1
    Case("stride-2-output-padding-1", x=(1, 2, 4, 5), weight=(2, 3, 3, 3), options={"stride": 2, "padding": 1, "output_padding": 1}),
    Case("stride-larger-than-kernel", x=(1, 2, 3, 3), weight=(2, 2, 2, 2), options={"stride": 3}),
    Case("dilation-output-padding-below-dilation", x=(1, 2, 4, 4), weight=(2, 2, 3, 3), options={"dilation": 2, "output_padding": 1}),
    Case("groups-2", x=(2, 4, 4, 4), weight=(4, 3, 3, 3), options={"padding": 1, "groups": 2}),
    Case(
        "non-square-everything",
        x=(1, 2, 3, 5),
        weight=(2, 3, 2, 3),
        options={"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0), "dilation": (1, 2)},
    ),
    Case("no-bias", x=(2, 3, 4, 4), weight=(3, 2, 3, 3), options={"stride": 2}, bias=False),
)
def test_conv_transpose2d_matches_torch(impl, case, layout, dtype, tolerance):
    x, weight = in_layout(seeded_randn(case.x, 9, dtype), layout), in_layout(seeded_randn(case.weight, 10, dtype), layout)
    c_out = case.weight[1] * case.options.get("groups", 1)
    bias = in_layout(seeded_randn((c_out,), 11, dtype), layout) if case.get("bias", True) else None
    expected = F.conv_transpose2d(x.double(), weight.double(), _float64(bias), **case.options).to(dtype)
    got = impl.conv_transpose2d(x, weight, bias, **case.options)
    assert_close(
        got, expected, tolerance, what=f"conv_transpose2d(x {case.x}, weight {case.weight}, {case.options}) [{case.name}, {layout}]"
    )


# --- pooling ------------------------------------------------------------------------------------------------

POOL_CASES = cases(  # x [N, C, H, W], the pooling options; negative=True: every value below zero
    Case("default-stride", x=(2, 3, 6, 6), options={"kernel_size": 2}),
    Case("overlapping-windows", x=(1, 2, 6, 7), options={"kernel_size": 3, "stride": 1}),
    Case("stride-larger-than-kernel", x=(1, 2, 9, 8), options={"kernel_size": 2, "stride": 3}),
    Case("padding-all-negative", x=(2, 2, 5, 6), options={"kernel_size": 3, "stride": 2, "padding": 1}, negative=True),
    Case(
        "non-square-kernel-stride-padding",
        x=(1, 2, 5, 7),
        options={"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 1)},
        negative=True,
    ),
    Case("window-as-large-as-image", x=(1, 2, 4, 5), options={"kernel_size": (4, 5)}),
    Case("1x1-image", x=(1, 1, 1, 1), options={"kernel_size": 1}),
    Case(  # every (h, w) pair unequal, on a non-square image: a pair read as (w, h) changes the result
        "every-pair-h-not-w",
        x=(2, 2, 7, 9),
        options={"kernel_size": (3, 4), "stride": (2, 1), "padding": (1, 2)},
        negative=True,
    ),
)


def _pool_input(case: Case, dtype: torch.dtype, layout: str) -> torch.Tensor:
    x = seeded_randn(case.x, 12, dtype)
    return in_layout(-x.abs() - 1 if case.get("negative", False) else x, layout)  # all below zero: zero padding would win a max


@check("max_pool2d_matches_torch")
@layouts
@POOL_CASES
def test_max_pool2d_matches_torch(impl, case, layout, dtype, tolerance):
    x = _pool_input(case, dtype, layout)
    got = impl.max_pool2d(x, **case.options)
    assert_close(got, F.max_pool2d(x, **case.options), tolerance, what=f"max_pool2d(x {case.x}, {case.options}) [{layout}]")


@check("avg_pool2d_matches_torch")
@layouts
@POOL_CASES
def test_avg_pool2d_matches_torch(impl, case, layout, dtype, tolerance):
    x = _pool_input(case, dtype, layout)
    expected = F.avg_pool2d(x.double(), **case.options).to(dtype)
    got = impl.avg_pool2d(x, **case.options)
    assert_close(got, expected, tolerance, what=f"avg_pool2d(x {case.x}, {case.options}) [{layout}]")


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
    call = f"receptive_field({layers})"
    if not isinstance(got, (list, tuple)) or not all(_is_int(size) for size in got):
        raise CheckFailure(f"{call} returned {got!r}; expected a list of ints, the gradient footprints {expected}")
    if list(got) != expected:
        wrong = next((index for index, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        message = f"{call} = {list(got)}, but the gradient footprints are {expected} (first difference at layer {wrong})"
        raise CheckFailure(message, {"first_wrong_layer": wrong, "layers": len(expected), "returned": len(got)})


# --- KERNELS, apply_kernel ----------------------------------------------------------------------------------


@st.composite
def _filtering_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    image = draw(strategies.tensors((draw(st.integers(1, 12)), draw(st.integers(1, 12))), torch.float64))
    kernel = draw(strategies.tensors((draw(st.integers(1, 5)), draw(st.integers(1, 5))), torch.float64))
    return image, kernel


@check("apply_kernel_matches_scipy")
@layouts
@given(problem=_filtering_problems())
def test_apply_kernel_matches_scipy(impl, layout, dtype, tolerance, problem):
    # the kernel stays float64 (the spec casts it to the image's dtype): with a float32 image the dtypes differ
    image, kernel = in_layout(problem[0].to(dtype), layout), in_layout(problem[1], layout)
    expected = scipy.ndimage.correlate(as_numpy(image).astype(np.float64), as_numpy(kernel).astype(np.float64), mode="nearest")
    got = impl.apply_kernel(image, kernel)
    what = f"apply_kernel(image {tuple(image.shape)}, kernel {tuple(kernel.shape)}) [{layout}]"
    assert_close(got, torch.from_numpy(expected).to(dtype), tolerance, what=what)


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
def test_apply_kernel_classic_kernels(impl, name, dtype, tolerance):
    kernels = impl.KERNELS
    if name not in kernels:
        raise CheckFailure(f"KERNELS has no {name!r} (has: {sorted(kernels)})")
    image = seeded_randn((9, 11), 13, dtype) + torch.linspace(0, 3, 11, dtype=dtype)  # noise on a ramp, in the spec's float64
    expected = torch.from_numpy(CLASSIC_FILTERS[name](image.double().numpy())).to(dtype)
    got = impl.apply_kernel(image, torch.as_tensor(kernels[name], dtype=dtype))
    assert_close(got, expected, tolerance, what=f"apply_kernel(image, KERNELS[{name!r}])")


# --- properties of conv2d -----------------------------------------------------------------------------------


@check("conv2d_is_linear")
@given(problem=_conv_problems(), other_seed=strategies.seeds, a=st.floats(-2, 2), b=st.floats(-2, 2), anchored=st.just(False))
@example(problem=_ANCHORED_PROBLEM, other_seed=52, a=0.5, b=-1.5, anchored=True)
def test_conv2d_is_linear(impl, dtype, tolerance, problem, other_seed, a, b, anchored):
    problem = _in_dtype(problem, dtype)
    x, weight = problem["x"], problem["weight"]
    options = {key: problem[key] for key in ("stride", "padding", "dilation", "groups")}
    y, v = seeded_randn(x.shape, other_seed, dtype), seeded_randn(weight.shape, other_seed + 1, dtype)

    def conv(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return impl.conv2d(image, kernel, **options)

    where = f"a={a:g}, b={b:g}, {_describe(problem)}"
    in_input, combined = conv(a * x + b * y, weight), a * conv(x, weight) + b * conv(y, weight)
    assert_close(in_input, combined, tolerance, what=f"conv2d(a*x + b*y, w) vs a*conv2d(x, w) + b*conv2d(y, w), {where}")
    in_weight, combined = conv(x, a * weight + b * v), a * conv(x, weight) + b * conv(x, v)
    assert_close(in_weight, combined, tolerance, what=f"conv2d(x, a*w + b*v) vs a*conv2d(x, w) + b*conv2d(x, v), {where}")
    if anchored:
        _assert_impulse_response(impl.conv2d, dtype, tolerance, "conv2d")


@st.composite
def _equivariance_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    stride = draw(st.sampled_from([1, 2]))
    h, w = stride * draw(st.integers(1, 5)), stride * draw(st.integers(1, 5))
    x = draw(strategies.tensors((1, draw(st.integers(1, 3)), h, w), torch.float64))
    weight = draw(
        strategies.tensors((draw(st.integers(1, 3)), x.shape[1], draw(st.integers(1, 3)), draw(st.integers(1, 3))), torch.float64)
    )
    return x, weight, stride, draw(st.integers(-3, 3)), draw(st.integers(-3, 3))


@check("conv2d_translation_equivariant")
@given(problem=_equivariance_problems(), anchored=st.just(False))
@example(problem=(seeded_randn((1, 2, 4, 6), 53, torch.float64), seeded_randn((2, 2, 3, 3), 54, torch.float64), 2, 1, -2), anchored=True)
def test_conv2d_translation_equivariant(impl, dtype, tolerance, problem, anchored):
    x, weight, stride, dy, dx = problem
    x, weight = x.to(dtype), weight.to(dtype)
    kh, kw = weight.shape[2:]

    def circular_conv(image: torch.Tensor) -> torch.Tensor:
        """Wrap kernel - 1 pixels (more than the image, if need be) around the bottom/right: no border anywhere."""
        rows = torch.arange(image.shape[2] + kh - 1) % image.shape[2]
        columns = torch.arange(image.shape[3] + kw - 1) % image.shape[3]
        return impl.conv2d(image[:, :, rows][:, :, :, columns], weight, stride=stride)

    shifted_first = circular_conv(torch.roll(x, (stride * dy, stride * dx), dims=(2, 3)))
    shifted_after = torch.roll(circular_conv(x), (dy, dx), dims=(2, 3))
    what = f"conv2d of the input shifted by {(stride * dy, stride * dx)} vs its output shifted by {(dy, dx)} (stride {stride})"
    assert_close(shifted_first, shifted_after, tolerance, what=what)
    if anchored:
        _assert_impulse_response(impl.conv2d, dtype, tolerance, "conv2d")


@st.composite
def _depthwise_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    channels, multiplier = draw(st.integers(2, 4)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(strategies.tensors((draw(st.integers(1, 2)), channels, draw(st.integers(kh, 7)), draw(st.integers(kw, 7))), torch.float64))
    weight = draw(strategies.tensors((channels * multiplier, 1, kh, kw), torch.float64))
    return x, weight, {"stride": draw(st.integers(1, 2)), "padding": draw(st.integers(0, 1))}


@check("conv2d_depthwise_parameter_count")
@given(problem=_depthwise_problems(), anchored=st.just(False))
@example(problem=(seeded_randn((1, 3, 6, 5), 55, torch.float64), seeded_randn((6, 1, 3, 3), 56, torch.float64), {"stride": 1, "padding": 1}), anchored=True)
def test_conv2d_depthwise_parameter_count(impl, dtype, tolerance, problem, anchored):
    x, weight, options = problem
    x, weight = x.to(dtype), weight.to(dtype)
    channels, multiplier = x.shape[1], weight.shape[0] // x.shape[1]
    depthwise = impl.conv2d(x, weight, groups=channels, **options)
    for out_channel in range(weight.shape[0]):
        in_channel = out_channel // multiplier
        alone = impl.conv2d(x[:, in_channel : in_channel + 1], weight[out_channel : out_channel + 1], **options)
        what = f"depthwise output channel {out_channel} (groups={channels}) vs input channel {in_channel} convolved alone"
        assert_close(depthwise[:, out_channel : out_channel + 1], alone, tolerance, what=what)
    dense = torch.ones(weight.shape[0], channels, *weight.shape[2:], dtype=dtype)
    what = f"conv2d with groups={channels} and a dense weight {tuple(dense.shape)} (expects {tuple(weight.shape)})"
    assert_raises(ValueError, lambda: impl.conv2d(x, dense, groups=channels, **options), what)
    if anchored:
        _assert_impulse_response(impl.conv2d, dtype, tolerance, "conv2d")


# --- invalid arguments --------------------------------------------------------------------------------------


def _zeros(*shape: int) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.float64)


@check("invalid_arguments_raise_clear_errors")
@cases(  # each call breaks one rule the spec states (ValueError unless the case says TypeError); boundaries sit on the limit
    Case("pad2d-reflect-as-wide-as-height", call=lambda impl: impl.pad2d(_zeros(1, 1, 3, 5), (0, 0, 3, 0), "reflect")),
    Case("pad2d-reflect-wider-than-width", call=lambda impl: impl.pad2d(_zeros(1, 1, 5, 3), (1, 6, 0, 0), "reflect")),
    Case("pad2d-unknown-mode", call=lambda impl: impl.pad2d(_zeros(1, 1, 3, 3), 1, "circular")),
    Case("pad2d-negative-padding", call=lambda impl: impl.pad2d(_zeros(1, 1, 3, 3), (1, -1, 0, 0))),
    Case("pad2d-float-padding", call=lambda impl: impl.pad2d(_zeros(1, 1, 3, 3), (1.0, 1, 1, 1), "replicate"), expected=TypeError),
    Case(
        "conv-transpose-output-padding-equal-to-stride",
        call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 3, 3), _zeros(2, 2, 3, 3), stride=2, output_padding=2),
    ),
    Case(  # the height's output_padding is fine; the width's equals max(stride_w, dilation_w) = 1
        "conv-transpose-output-padding-too-large-in-width",
        call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 3, 3), _zeros(2, 2, 3, 3), stride=(2, 1), output_padding=(1, 1)),
    ),
    Case(
        "conv-transpose-negative-output-padding",
        call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 3, 3), _zeros(2, 2, 3, 3), stride=2, output_padding=(0, -1)),
    ),
    Case(  # H = W = 4 are even: only C_in = 3 is not divisible by 2
        "conv-transpose-groups-not-dividing-channels",
        call=lambda impl: impl.conv_transpose2d(_zeros(1, 3, 4, 4), _zeros(3, 2, 3, 3), groups=2),
    ),
    Case("conv-transpose-groups-0", call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 4, 4), _zeros(2, 2, 3, 3), groups=0)),
    Case("conv-transpose-dilation-0", call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 3, 3), _zeros(2, 2, 3, 3), dilation=(1, 0))),
    Case(  # a bool is not a group count (ValueError or TypeError)
        "conv-transpose-groups-true",
        call=lambda impl: impl.conv_transpose2d(_zeros(1, 2, 3, 3), _zeros(2, 2, 3, 3), groups=True),
        expected=(TypeError, ValueError),
    ),
    Case("conv2d-of-5d", call=lambda impl: impl.conv2d(_zeros(1, 1, 5, 5, 5), _zeros(1, 1, 3, 3))),
    Case("conv2d-groups-0", call=lambda impl: impl.conv2d(_zeros(1, 2, 4, 4), _zeros(2, 2, 3, 3), groups=0)),
    Case("max-pool-padding-over-half-kernel", call=lambda impl: impl.max_pool2d(_zeros(1, 1, 6, 6), 3, padding=2)),
    Case("avg-pool-padding-over-half-kernel-width", call=lambda impl: impl.avg_pool2d(_zeros(1, 1, 6, 6), (4, 2), padding=(2, 2))),
    Case("conv2d-groups-not-dividing-channels", call=lambda impl: impl.conv2d(_zeros(1, 3, 5, 5), _zeros(4, 1, 3, 3), groups=2)),
    Case("conv2d-bias-of-wrong-length", call=lambda impl: impl.conv2d(_zeros(1, 2, 5, 5), _zeros(4, 2, 3, 3), _zeros(3))),
    Case("conv2d-kernel-larger-than-padded-input", call=lambda impl: impl.conv2d(_zeros(1, 1, 4, 6), _zeros(1, 1, 5, 3), padding=(0, 1))),
    Case("conv2d-naive-weight-channels", call=lambda impl: impl.conv2d_naive(_zeros(1, 2, 5, 5), _zeros(4, 3, 3, 3))),
    Case(
        "conv2d-backward-grad-out-shape",
        call=lambda impl: impl.conv2d_backward(_zeros(1, 4, 3, 4), _zeros(1, 2, 5, 5), _zeros(4, 2, 3, 3)),
    ),
    Case("col2im-wrong-column-count", call=lambda impl: impl.col2im(_zeros(1, 9, 10), (5, 5), 3)),
    Case("im2col-of-3d", call=lambda impl: impl.im2col(_zeros(2, 5, 5), 3)),
    Case("apply-kernel-of-3d-image", call=lambda impl: impl.apply_kernel(_zeros(1, 5, 5), _zeros(3, 3))),
    Case("output-size-of-size-0", call=lambda impl: impl.output_size(0, 1, padding=1)),
    Case("output-size-kernel-0", call=lambda impl: impl.output_size(5, 0)),
    Case("output-size-stride-0", call=lambda impl: impl.output_size(5, 3, stride=0)),
    Case("output-size-negative-padding", call=lambda impl: impl.output_size(5, 3, padding=-1)),
    Case("receptive-field-kernel-0", call=lambda impl: impl.receptive_field([(3, 1), (0, 2)])),
)
def test_invalid_arguments_raise_clear_errors(impl, case):
    assert_raises(case.get("expected", ValueError), lambda: case.call(impl), case.name)
