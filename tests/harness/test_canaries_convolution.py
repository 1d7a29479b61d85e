"""Canaries for topic 02, convolution: wrong implementations that must lose the checks they should.

Each test grades the reference with a few functions replaced (``tests/harness/canaries.py:grade_canary``, one child
pytest process per canary) and asserts the outcome of every check it grades, the ones a canary still passes
included: they document what a property alone cannot see (zero is linear; a flipped kernel is still equivariant).
"""

from __future__ import annotations

from canaries import REPLACE, expect, grade_canary

from harness.spec import load_specs

TOPIC = "convolution"
ALL_CHECKS = list(load_specs()[TOPIC].checks)
ORACLE_CHECKS = [check_id for check_id, check in load_specs()[TOPIC].checks.items() if check.kind.value == "oracle"]
TENSOR_INTERFACES = [
    "pad2d", "conv2d_naive", "im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d", "max_pool2d", "avg_pool2d",
    "apply_kernel",
]  # fmt: skip


def test_zeros_lose_every_oracle(tmp_path):
    overrides = REPLACE + f"""
def _zeros(result, *args):
    if isinstance(result, torch.Tensor):
        return torch.zeros_like(result)
    if isinstance(result, (tuple, list)):
        return type(result)(_zeros(item) for item in result)
    return 0 * result


_replace({TENSOR_INTERFACES + ["output_size", "receptive_field"]!r}, _zeros)
"""
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # Zero is linear, equivariant and channel-separable, and agrees with a zero conv2d_naive: only oracles catch it.
    passing = ["conv2d_is_linear", "conv2d_translation_equivariant", "conv2d_depthwise_parameter_count", "conv2d_naive_equals_conv2d"]
    assert outcomes == expect("failed", ALL_CHECKS, **dict.fromkeys(passing, "passed"))


def test_input_handed_back_loses_every_oracle(tmp_path):
    overrides = REPLACE + f"""
_replace({TENSOR_INTERFACES + ["output_size", "receptive_field"]!r}, lambda result, first, *rest: first)
"""
    checks = ORACLE_CHECKS + ["pad2d_unpad_round_trip"]  # the other properties lose to the noise canary
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    assert outcomes == expect("failed", checks)


def test_small_noise_loses_every_tensor_check(tmp_path):
    overrides = REPLACE + f"""
def _noisy(result, *args):
    if isinstance(result, torch.Tensor):
        return result + 1e-3 * torch.randn_like(result)
    return type(result)(_noisy(item) for item in result)


_replace({TENSOR_INTERFACES!r}, _noisy)
"""
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # Untouched: output_size and receptive_field return numbers. Noise that does not depend on the inputs leaves
    # conv2d's autograd gradients exact; gradcheck's finite differences see it.
    untouched = ["output_size_matches_torch", "receptive_field_matches_gradient_footprint", "conv2d_gradients_match_torch"]
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
