"""Canaries for topic 02, convolution: wrong implementations that must lose the checks they should.

Each test grades the reference with a few functions replaced (``tests/harness/canaries.py:grade_canary``, one child
pytest process per canary) and asserts the outcome of every check it grades, the ones a canary still passes
included: they document what a property alone cannot see (zero is linear; a flipped kernel is still equivariant).
"""

from __future__ import annotations

from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test

from harness.spec import load_specs

TOPIC = "convolution"
ALL_CHECKS = list(load_specs()[TOPIC].checks)
ORACLE_CHECKS = [check_id for check_id, check in load_specs()[TOPIC].checks.items() if check.kind.value == "oracle"]
TENSOR_INTERFACES = [
    "pad2d", "conv2d_naive", "im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "apply_kernel",
]  # fmt: skip


def test_zeros_lose_every_oracle(tmp_path):
    overrides = (
        REPLACE
        + f"""
def _zeros(result, *args):
    if isinstance(result, torch.Tensor):
        return torch.zeros_like(result)
    if isinstance(result, (tuple, list)):
        return type(result)(_zeros(item) for item in result)
    return 0 * result


_replace({TENSOR_INTERFACES + ["output_size", "receptive_field"]!r}, _zeros)
"""
    )
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # Zero is linear, equivariant and channel-separable, and agrees with a zero conv2d_naive: those properties also ask
    # that the response to a unit impulse hold the kernel's values (`visionbench audit`). The reference still raises its
    # errors before the result is replaced.
    assert outcomes == expect("failed", ALL_CHECKS, invalid_arguments_raise_clear_errors="passed")


def test_input_handed_back_loses_every_oracle(tmp_path):
    overrides = (
        REPLACE
        + f"""
_replace({TENSOR_INTERFACES + ["output_size", "receptive_field"]!r}, lambda result, first, *rest: first)
"""
    )
    checks = ORACLE_CHECKS + ["pad2d_unpad_round_trip"]  # the other properties lose to the noise canary
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    assert outcomes == expect("failed", checks)


def test_small_noise_loses_every_tensor_check(tmp_path):
    overrides = (
        REPLACE
        + f"""
def _noisy(result, *args):
    if isinstance(result, torch.Tensor):
        return result + 1e-3 * torch.randn_like(result)
    return type(result)(_noisy(item) for item in result)


_replace({TENSOR_INTERFACES!r}, _noisy)
"""
    )
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # Untouched: output_size and receptive_field return numbers. Noise that does not depend on the inputs leaves
    # conv2d's autograd gradients exact; gradcheck's finite differences see it.
    untouched = [
        "output_size_matches_torch", "receptive_field_matches_gradient_footprint", "conv2d_gradients_match_torch",
        "invalid_arguments_raise_clear_errors",
    ]  # fmt: skip
    assert outcomes == expect("failed", ALL_CHECKS, **dict.fromkeys(untouched, "passed"))


def test_true_convolution_and_averaging_col2im(tmp_path):
    overrides = """
_reference_conv2d, _reference_conv2d_naive, _reference_col2im = conv2d, conv2d_naive, col2im


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    # a true convolution: the kernel is flipped (apply_kernel, built on conv2d, flips too)
    return _reference_conv2d(x, weight.flip(-2, -1), bias, stride, padding, dilation, groups)


def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _reference_conv2d_naive(x, weight.flip(-2, -1), bias, stride, padding, dilation, groups)


def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    # col2im taken for the inverse of im2col: overlapping windows averaged instead of summed
    summed = _reference_col2im(cols, output_size, kernel_size, dilation, padding, stride)
    counts = _reference_col2im(torch.ones_like(cols), output_size, kernel_size, dilation, padding, stride)
    return summed / counts.clamp(min=1)
"""
    checks = [
        "conv2d_matches_torch", "conv2d_naive_matches_torch", "conv2d_gradients_match_torch", "apply_kernel_matches_scipy",
        "apply_kernel_classic_kernels", "col2im_matches_torch", "conv2d_backward_matches_autograd",
        "conv2d_is_linear", "conv2d_translation_equivariant", "conv2d_depthwise_parameter_count", "conv2d_naive_equals_conv2d",
        "conv2d_gradcheck",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    # A flipped kernel is still a linear, equivariant, differentiable, channel-separable operator: only oracles see it
    # (sobel_x flipped is -sobel_x). The averaging col2im breaks conv2d_backward's dx, which scatters through col2im.
    flip_blind = [
        "conv2d_is_linear", "conv2d_translation_equivariant", "conv2d_depthwise_parameter_count", "conv2d_naive_equals_conv2d",
        "conv2d_gradcheck",
    ]  # fmt: skip
    assert outcomes == expect("failed", checks, **dict.fromkeys(flip_blind, "passed"))


def test_padding_off_by_one_symmetric_reflect_and_tap_major_im2col(tmp_path):
    overrides = """
_reference_conv2d, _reference_pad2d, _reference_im2col = conv2d, pad2d, im2col


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    # one pixel too much padding, output cropped to the right size: every window starts one pixel up and left
    right = _reference_conv2d(x, weight, bias, stride, padding, dilation, groups)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return _reference_conv2d(x, weight, bias, stride, (ph + 1, pw + 1), dilation, groups)[:, :, : right.shape[2], : right.shape[3]]


def _symmetric(size, before, after):
    positions = torch.arange(-before, size + after)
    positions = torch.where(positions < 0, -positions - 1, positions)
    return torch.where(positions > size - 1, 2 * size - 1 - positions, positions)


def pad2d(x, padding, mode="zeros"):
    # "reflect" that repeats the edge pixel (scipy's reflect, numpy's symmetric), not torch's
    if mode != "reflect":
        return _reference_pad2d(x, padding, mode)
    left, right, top, bottom = (padding,) * 4 if isinstance(padding, int) else padding
    return x[..., _symmetric(x.shape[-2], top, bottom), :][..., _symmetric(x.shape[-1], left, right)]


def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    # rows ordered (kernel tap, channel) instead of (channel, kernel tap)
    cols = _reference_im2col(x, kernel_size, dilation, padding, stride)
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    n, _, length = cols.shape
    return cols.view(n, -1, kh * kw, length).transpose(1, 2).reshape(n, -1, length)
"""
    checks = [
        "pad2d_matches_torch", "pad2d_unpad_round_trip", "im2col_matches_torch", "col2im_matches_torch", "conv2d_matches_torch",
        "conv2d_backward_matches_autograd", "conv2d_translation_equivariant", "conv2d_depthwise_parameter_count",
        "conv2d_naive_equals_conv2d", "apply_kernel_matches_scipy", "conv2d_is_linear", "conv2d_gradcheck",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    # The round trip cannot see what the padding holds; a shifted or reordered conv2d is still linear and differentiable.
    # conv2d_backward fails through the reordered im2col; depthwise fails because reordered rows mix the groups;
    # apply_kernel, built on conv2d, inherits the shifted windows.
    unaffected = ["pad2d_unpad_round_trip", "col2im_matches_torch", "conv2d_is_linear", "conv2d_gradcheck"]
    assert outcomes == expect("failed", checks, **dict.fromkeys(unaffected, "passed"))


def test_library_shortcuts_are_forbidden(tmp_path):
    overrides = """
import scipy.ndimage as _ndimage
import torch.nn.functional as _F

_reference_conv2d = conv2d


def pad2d(x, padding, mode="zeros"):
    sides = (padding,) * 4 if isinstance(padding, int) else padding
    return _F.pad(x, sides, mode="constant" if mode == "zeros" else mode)


def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def im2col(x, kernel_size, dilation=1, padding=0, stride=1):
    return _F.unfold(x, kernel_size, dilation, padding, stride)


def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    return _F.fold(cols, output_size, kernel_size, dilation, padding, stride)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    x, weight = x.detach().requires_grad_(), weight.detach().requires_grad_()
    out = _reference_conv2d(x, weight, None, stride, padding, dilation, groups)
    dx, dw = torch.autograd.grad(out, (x, weight), grad_out)
    return dx, dw, grad_out.sum(dim=(0, 2, 3))


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return _F.max_pool2d(x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return _F.avg_pool2d(x, kernel_size, stride, padding)


def apply_kernel(image, kernel):
    return torch.from_numpy(_ndimage.correlate(image.numpy(), kernel.to(image.dtype).numpy(), mode="nearest"))
"""
    checks = [  # one check per replaced interface (the property checks call the same guarded interfaces)
        "pad2d_matches_torch", "conv2d_naive_matches_torch", "conv2d_matches_torch", "im2col_matches_torch", "col2im_matches_torch",
        "conv2d_backward_matches_autograd", "conv_transpose2d_matches_torch", "max_pool2d_matches_torch", "avg_pool2d_matches_torch",
        "apply_kernel_matches_scipy",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    assert outcomes == expect("forbidden", checks)


def test_backward_transposed_dw_receptive_field_and_pool_count_bugs(tmp_path):
    overrides = """
_reference_conv2d_backward, _reference_avg_pool2d = conv2d_backward, avg_pool2d


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    # dw computed as cols @ grad_out^T, a [C_in/groups*kH*kW, C_out] matrix laid into the weight's shape
    dx, dw, db = _reference_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return dx, dw.reshape(dw.shape[0], -1).t().reshape(dw.shape), db


def receptive_field(layers):
    # the jump is multiplied by the layer's own stride before it is used: 3, 7, 11, 19 instead of 3, 5, 9, 13
    sizes, field, jump = [], 1, 1
    for kernel, stride in layers:
        jump *= stride
        field += (kernel - 1) * jump
        sizes.append(field)
    return sizes


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    # divides by the real pixels of each window only (count_include_pad=False)
    real_share = _reference_avg_pool2d(torch.ones_like(x), kernel_size, stride, padding)
    return _reference_avg_pool2d(x, kernel_size, stride, padding) / real_share
"""
    checks = [
        "conv2d_backward_matches_autograd", "receptive_field_matches_gradient_footprint", "avg_pool2d_matches_torch",
        "max_pool2d_matches_torch", "conv2d_gradients_match_torch",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    assert outcomes == expect("failed", checks, max_pool2d_matches_torch="passed", conv2d_gradients_match_torch="passed")


def test_missing_db_zero_padded_max_pool_and_ignored_output_padding(tmp_path):
    overrides = """
_reference_conv2d_backward, _reference_max_pool2d, _reference_conv_transpose2d = conv2d_backward, max_pool2d, conv_transpose2d


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    # forgets the bias gradient
    dx, dw, _ = _reference_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return dx, dw


def max_pool2d(x, kernel_size, stride=None, padding=0):
    # zero padding: on negative inputs the padding wins the max
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return _reference_max_pool2d(pad2d(x, (pw, pw, ph, ph), "zeros"), kernel_size, stride, 0)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    # output_padding ignored
    return _reference_conv_transpose2d(x, weight, bias, stride, padding, 0, groups, dilation)
"""
    checks = ["conv2d_backward_matches_autograd", "max_pool2d_matches_torch", "conv_transpose2d_matches_torch", "avg_pool2d_matches_torch"]
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    assert outcomes == expect("failed", checks, avg_pool2d_matches_torch="passed")


# --- the learner-bug catalogue ----------------------------------------------------------------------------------------
# Plausible single mistakes, each in one interface, and the checks that must catch it.

ERRORS = "invalid_arguments_raise_clear_errors"

LEARNER_BUGS = [
    LearnerBug(
        "output_size_returns_a_float",
        "dtype",
        """
import numpy as _np


def output_size(size, kernel, padding=0, stride=1, dilation=1):  # np.floor keeps a float: 3.0, not 3
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * padding:
        raise ValueError("the dilated kernel does not fit the padded input")
    return _np.floor((size + 2 * padding - span) / stride) + 1
""",
        loses={"output_size_matches_torch": "failed"},
    ),
    LearnerBug(
        "pad2d_reflect_wider_than_the_image",
        "error",
        """
_reference_pad2d = pad2d


def pad2d(x, padding, mode="zeros"):  # reflect indices folded with a modulo: no error when the pad is too wide
    if mode != "reflect":
        return _reference_pad2d(x, padding, mode)
    left, right, top, bottom = (padding,) * 4 if isinstance(padding, int) else padding

    def fold(size, before, after):
        period = max(2 * (size - 1), 1)
        positions = torch.arange(-before, size + after).abs() % period
        return torch.where(positions > size - 1, period - positions, positions)

    return x[..., fold(x.shape[-2], top, bottom), :][..., fold(x.shape[-1], left, right)]
""",
        loses={ERRORS: "failed"},
        keeps=("pad2d_matches_torch", "pad2d_unpad_round_trip"),
    ),
    LearnerBug(
        "conv_transpose2d_accepts_any_output_padding",
        "error",
        """
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    # no check of output_padding < max(stride, dilation): extra rows of bias are returned
    c_in, c_out_per_group, kh, kw = weight.shape
    c_out = c_out_per_group * groups
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    output_padding = _pair(output_padding, "output_padding", 0)
    n, _, h, w = x.shape
    full_hw = (
        (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0],
        (w - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1],
    )
    out_hw = (full_hw[0] - 2 * padding[0], full_hw[1] - 2 * padding[1])
    inputs = x.reshape(n, groups, c_in // groups, h * w)
    filters = weight.reshape(groups, c_in // groups, -1)
    windows = torch.matmul(filters.transpose(-1, -2), inputs).reshape(n, c_out, kh * kw, h, w)
    out = _add_windows(windows, full_hw, (kh, kw), stride, dilation)
    out = out[:, :, padding[0] : padding[0] + out_hw[0], padding[1] : padding[1] + out_hw[1]]
    return out if bias is None else out + bias.view(1, c_out, 1, 1)
""",
        loses={ERRORS: "failed"},
        keeps=("conv_transpose2d_matches_torch",),
    ),
    LearnerBug(
        "conv2d_views_the_weight",
        "layout",
        """
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # weight.view: fails on a non-contiguous weight
    _check_conv_weight(x, weight, bias, groups)
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    n, c_out = x.shape[0], weight.shape[0]
    h_out, w_out = _output_hw(x.shape[2:], weight.shape[2:], padding, stride, dilation)
    cols = im2col(x, weight.shape[2:], dilation, padding, stride).reshape(n, groups, -1, h_out * w_out)
    out = torch.matmul(weight.view(groups, c_out // groups, -1), cols).reshape(n, c_out, h_out, w_out)
    return out if bias is None else out + bias.view(1, c_out, 1, 1)
""",
        loses={"conv2d_matches_torch": "error"},
    ),
    LearnerBug(
        "im2col_stride_read_as_w_h",
        "domain",
        """
_reference_im2col = im2col


def im2col(x, kernel_size, dilation=1, padding=0, stride=1):  # stride pair read as (w, h)
    stride = stride if isinstance(stride, int) else tuple(stride)[::-1]
    return _reference_im2col(x, kernel_size, dilation, padding, stride)
""",
        loses={"im2col_matches_torch": "failed"},
    ),
    LearnerBug(
        "max_pool2d_padding_read_as_w_h",
        "domain",
        """
_reference_max_pool2d = max_pool2d


def max_pool2d(x, kernel_size, stride=None, padding=0):  # padding pair read as (w, h)
    padding = padding if isinstance(padding, int) else tuple(padding)[::-1]
    return _reference_max_pool2d(x, kernel_size, stride, padding)
""",
        loses={"max_pool2d_matches_torch": "error"},  # (2, 1) exceeds half of the (3, 4) kernel: a ValueError on valid input
    ),
    LearnerBug(
        "avg_pool2d_kernel_read_as_w_h",
        "domain",
        """
_reference_avg_pool2d = avg_pool2d


def avg_pool2d(x, kernel_size, stride=None, padding=0):  # kernel_size pair read as (w, h); stride defaults to it
    kernel_size = kernel_size if isinstance(kernel_size, int) else tuple(kernel_size)[::-1]
    return _reference_avg_pool2d(x, kernel_size, stride, padding)
""",
        loses={"avg_pool2d_matches_torch": "error"},  # the swapped window no longer fits a 4 x 5 image
    ),
    LearnerBug(
        "col2im_dilation_read_as_w_h",
        "domain",
        """
_reference_col2im = col2im


def col2im(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):  # dilation pair read as (w, h)
    dilation = dilation if isinstance(dilation, int) else tuple(dilation)[::-1]
    return _reference_col2im(cols, output_size, kernel_size, dilation, padding, stride)
""",
        loses={"col2im_matches_torch": "error"},  # the columns no longer match the swapped windows
    ),
    LearnerBug(
        "conv2d_backward_dx_without_the_remainder",
        "value",
        """
_reference_conv_transpose2d, _reference_conv2d_backward = conv_transpose2d, conv2d_backward


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):
    # dx as a transposed convolution without output_padding: rows the strided windows skipped are lost
    dx = _reference_conv_transpose2d(grad_out, weight, None, stride, padding, 0, groups, dilation)
    _, dw, db = _reference_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return dx, dw, db
""",
        loses={"conv2d_backward_matches_autograd": "failed"},
    ),
    LearnerBug(
        "conv_transpose2d_swaps_weight_in_place",
        "mutation",
        """
_reference_conv_transpose2d = conv_transpose2d


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    # swaps the caller's weight axes in place to get conv2d's [C_out, C_in] order
    swapped = weight.transpose_(0, 1)
    return _reference_conv_transpose2d(x, swapped.transpose(0, 1), bias, stride, padding, output_padding, groups, dilation)
""",
        loses={"conv_transpose2d_matches_torch": "failed"},
    ),
    LearnerBug(
        "receptive_field_jump_updated_first",
        "lesson",
        """
def receptive_field(layers):  # the layer's own stride applied before its kernel: 3, 7, 11, 19
    sizes, field, jump = [], 1, 1
    for kernel, stride in layers:
        jump *= stride
        field += (kernel - 1) * jump
        sizes.append(field)
    return sizes
""",
        loses={"receptive_field_matches_gradient_footprint": "failed"},
    ),
    LearnerBug(
        "apply_kernel_even_kernel_centre",
        "domain",
        """
def apply_kernel(image, kernel):  # centre at ((kH - 1) // 2, (kW - 1) // 2): even kernels shift by one pixel
    kh, kw = kernel.shape
    sides = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
    padded = pad2d(image[None, None], sides, "replicate")
    return conv2d(padded, kernel.to(image.dtype)[None, None])[0, 0]
""",
        loses={"apply_kernel_matches_scipy": "failed"},
        keeps=("apply_kernel_classic_kernels",),
    ),
    LearnerBug(
        "apply_kernel_promotes_to_the_kernel_dtype",
        "dtype",
        """
def apply_kernel(image, kernel):  # both promoted to a common dtype: a float32 image with a float64 kernel gives float64
    common = torch.promote_types(image.dtype, kernel.dtype)
    kh, kw = kernel.shape
    sides = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
    padded = pad2d(image.to(common)[None, None], sides, "replicate")
    return conv2d(padded, kernel.to(common)[None, None])[0, 0]
""",
        loses={"apply_kernel_matches_scipy": "failed"},
        keeps=("apply_kernel_classic_kernels",),
    ),
    LearnerBug(
        "conv2d_naive_float32_accumulator",
        "dtype",
        """
_reference_conv2d_naive = conv2d_naive


def conv2d_naive(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # out = torch.zeros(...): float32
    return _reference_conv2d_naive(x, weight, bias, stride, padding, dilation, groups).to(torch.float32)
""",
        loses={"conv2d_naive_matches_torch": "failed"},
    ),
    LearnerBug(
        "pool_padding_larger_than_half_the_kernel",
        "error",
        """
def max_pool2d(x, kernel_size, stride=None, padding=0):  # no check of padding <= kernel / 2: windows of -inf only
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    out_hw = _output_hw(x.shape[2:], kernel, padding, stride, (1, 1))
    return _windows(_constant_pad(x, padding, float("-inf")), kernel, stride, (1, 1), out_hw).amax(dim=2)
""",
        loses={ERRORS: "failed"},
        keeps=("max_pool2d_matches_torch",),
    ),
    LearnerBug(
        "conv2d_backward_db_summed_over_batch_only",
        "value",
        """
_reference_conv2d_backward = conv2d_backward


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1):  # db = grad_out.sum(0).mean((1, 2))
    dx, dw, _ = _reference_conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups)
    return dx, dw, grad_out.sum(dim=0).mean(dim=(1, 2))
""",
        loses={"conv2d_backward_matches_autograd": "failed"},
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
