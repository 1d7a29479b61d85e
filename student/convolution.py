# Generated from reference/convolution.py by `visionbench stub convolution`: fill in the bodies, keep the signatures.
"""Convolutions from scratch: padding, im2col, conv2d and its gradients, transposed convolution, pooling.

Conventions, the same as PyTorch's so that it can serve as the oracle:

- Images are batched ``Tensor[N, C, H, W]`` (NCHW). A convolution weight is ``Tensor[C_out, C_in / groups, kH, kW]``.
- "Convolution" means cross-correlation, as in every deep-learning library: the kernel is *not* flipped::

      out[n, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * x_padded[n, g*C_in/groups + c, i*sH + u*dH, j*sW + v*dW]

  where ``g = o // (C_out / groups)`` is the group of output channel ``o``.
- ``stride``, ``padding``, ``dilation`` and ``kernel_size`` are an int or an ``(h, w)`` pair; ``padding`` adds that many
  zeros on both sides of each axis. Outputs keep the input's dtype.
- Bad shapes or arguments raise ``ValueError`` (or ``TypeError`` for a wrong type) saying what was expected.

The one idea behind the fast versions: every output pixel is a dot product between the weight and one window of the
input. ``im2col`` lays every window out as a column, so the whole convolution becomes one matrix multiplication,
and its gradient is two more (``col2im`` scatters the column gradients back onto the image).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import torch

__all__ = [
    "output_size",
    "pad2d",
    "conv2d_naive",
    "im2col",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "receptive_field",
    "KERNELS",
    "apply_kernel",
]

Pair = int | tuple[int, int]

KERNELS: dict[str, torch.Tensor] = {
    # Classic 3x3 filters, written for cross-correlation (as apply_kernel uses them): x grows to the right, y downwards.
    "identity": torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64),
    "box_blur": torch.full((3, 3), 1.0 / 9.0, dtype=torch.float64),
    "gaussian": torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=torch.float64) / 16.0,
    "sharpen": torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]], dtype=torch.float64),
    "sobel_x": torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64),
    "sobel_y": torch.tensor([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]], dtype=torch.float64),
    "laplacian": torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64),
}


def output_size(size: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Length of a convolution's (or pooling's) output along one axis.

    The dilated kernel spans ``dilation * (kernel - 1) + 1`` input pixels; it fits at ``stride``-spaced positions of
    the padded input: ``floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``.

    Args:
        size (int): input length, >= 1.
        kernel (int): kernel length, >= 1.
        padding (int): zeros added on each side, >= 0.
        stride (int): step between windows, >= 1.
        dilation (int): spacing between kernel taps, >= 1.

    Returns:
        int: the output length, >= 1.

    Raises:
        ValueError: an argument out of range, or the dilated kernel is longer than the padded input.
    """
    raise NotImplementedError("convolution.output_size: see specs/02_convolution.yaml")


def pad2d(x: torch.Tensor, padding: int | tuple[int, int, int, int], mode: str = "zeros") -> torch.Tensor:
    """Pad the last two axes of a batch of images.

    Modes, for a row ``a b c d`` padded by 2 on each side:
    ``zeros`` ``0 0 | a b c d | 0 0``; ``reflect`` ``c b | a b c d | c b`` (the edge is not repeated, so each pad must
    be smaller than the side); ``replicate`` ``a a | a b c d | d d``. Reflect and replicate are gathers with an index
    per output row/column, built by :func:`_source_indices`.

    Args:
        x (Tensor[N, C, H, W]): images, any floating dtype.
        padding (int | tuple[int, int, int, int]): one size for all sides, or ``(left, right, top, bottom)`` as in
            ``torch.nn.functional.pad``; every entry >= 0.
        mode (str): ``"zeros"``, ``"reflect"`` or ``"replicate"``.

    Returns:
        Tensor[N, C, H + top + bottom, W + left + right]: same dtype as ``x``.

    Raises:
        TypeError: ``x`` is not a tensor or ``padding`` is not an int / 4-tuple of ints.
        ValueError: ``x`` is not 4-D, a padding is negative, the mode is unknown, or a reflect pad is >= the side.
    """
    raise NotImplementedError("convolution.pad2d: see specs/02_convolution.yaml")


def conv2d_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D cross-correlation straight from the definition: one dot product per output channel and position.

    Slow (Python loops over C_out * H_out * W_out), but obviously right: the yardstick for :func:`conv2d`.

    Args:
        x (Tensor[N, C_in, H, W]): input images.
        weight (Tensor[C_out, C_in / groups, kH, kW]): filters; output channel ``o`` reads input group ``o // (C_out / groups)``.
        bias (Tensor[C_out] | None): added to every output position of each channel.
        stride (int | tuple[int, int]): step between windows, >= 1.
        padding (int | tuple[int, int]): zeros on both sides of each axis, >= 0.
        dilation (int | tuple[int, int]): spacing between kernel taps, >= 1.
        groups (int): channel groups; ``groups == C_in`` is a depthwise convolution.

    Returns:
        Tensor[N, C_out, H_out, W_out]: ``H_out = output_size(H, kH, padding, stride, dilation)``, same for W.

    Raises:
        TypeError: a tensor or an int argument of the wrong type.
        ValueError: shapes that do not fit together (see :func:`conv2d`).
    """
    raise NotImplementedError("convolution.conv2d_naive: see specs/02_convolution.yaml")


def im2col(x: torch.Tensor, kernel_size: Pair, dilation: Pair = 1, padding: Pair = 0, stride: Pair = 1) -> torch.Tensor:
    """Lay every sliding window of the (zero-padded) input out as a column.

    Layout (that of ``torch.nn.functional.unfold``): row ``c*kH*kW + u*kW + v`` holds channel ``c`` at kernel tap
    ``(u, v)``; column ``i*W_out + j`` is the window of output position ``(i, j)``. A convolution is then
    ``weight.view(C_out, -1) @ im2col(x, ...)``.

    Args:
        x (Tensor[N, C, H, W]): input images.
        kernel_size (int | tuple[int, int]): window size ``(kH, kW)``.
        dilation (int | tuple[int, int]): spacing between taps, >= 1.
        padding (int | tuple[int, int]): zeros on both sides of each axis, >= 0.
        stride (int | tuple[int, int]): step between windows, >= 1.

    Returns:
        Tensor[N, C*kH*kW, L]: ``L = H_out * W_out`` windows, same dtype as ``x``.

    Raises:
        TypeError: ``x`` is not a tensor, or a size is not an int / pair of ints.
        ValueError: ``x`` is not 4-D, or a size is out of range or does not fit the padded input.
    """
    raise NotImplementedError("convolution.im2col: see specs/02_convolution.yaml")


def col2im(
    cols: torch.Tensor, output_size: Pair, kernel_size: Pair, dilation: Pair = 1, padding: Pair = 0, stride: Pair = 1
) -> torch.Tensor:
    """Put columns back where :func:`im2col` took them from, summing where windows overlap.

    It is the adjoint (transpose) of im2col, not its inverse: a pixel covered by three windows receives the sum of
    three column entries, and a pixel no window covers is zero. ``torch.nn.functional.fold`` semantics.

    Args:
        cols (Tensor[N, C*kH*kW, L]): columns in im2col's layout.
        output_size (int | tuple[int, int]): ``(H, W)`` of the image, without padding.
        kernel_size (int | tuple[int, int]): window size ``(kH, kW)``.
        dilation (int | tuple[int, int]): spacing between taps, >= 1.
        padding (int | tuple[int, int]): the padding im2col added (cropped off here), >= 0.
        stride (int | tuple[int, int]): step between windows, >= 1.

    Returns:
        Tensor[N, C, H, W]: same dtype as ``cols``.

    Raises:
        TypeError: ``cols`` is not a tensor, or a size is not an int / pair of ints.
        ValueError: ``cols`` is not 3-D, or its rows are not a multiple of kH*kW, or L is not the number of windows.
    """
    raise NotImplementedError("convolution.col2im: see specs/02_convolution.yaml")


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2-D cross-correlation as one batched matrix multiplication over im2col's columns.

    Built only from differentiable tensor operations (slicing, stack, matmul), so autograd gives its gradients;
    :func:`conv2d_backward` derives the same gradients by hand.

    Args:
        x (Tensor[N, C_in, H, W]): input images.
        weight (Tensor[C_out, C_in / groups, kH, kW]): filters; output channel ``o`` reads input group ``o // (C_out / groups)``.
        bias (Tensor[C_out] | None): added to every output position of each channel.
        stride (int | tuple[int, int]): step between windows, >= 1.
        padding (int | tuple[int, int]): zeros on both sides of each axis, >= 0.
        dilation (int | tuple[int, int]): spacing between kernel taps, >= 1.
        groups (int): channel groups, dividing C_in and C_out; ``groups == C_in`` is a depthwise convolution.

    Returns:
        Tensor[N, C_out, H_out, W_out]: ``H_out = output_size(H, kH, padding, stride, dilation)``, same for W.

    Raises:
        TypeError: a tensor or an int argument of the wrong type, or weight and x of different dtypes.
        ValueError: x or weight not 4-D, weight not ``[C_out, C_in / groups, kH, kW]``, groups not dividing the
            channel counts, bias not ``[C_out]``, or a kernel that does not fit the padded input.
    """
    raise NotImplementedError("convolution.conv2d: see specs/02_convolution.yaml")


def conv2d_backward(
    grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1, groups: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of a :func:`conv2d` layer, by hand.

    With ``cols = im2col(x)`` and, per group, ``out = W @ cols + b``, for a loss with ``dL/dout = grad_out``:

    - ``dW = sum_n grad_out_n @ cols_n^T`` (each weight met every window),
    - ``dcols = W^T @ grad_out`` and ``dx = col2im(dcols)`` (each pixel collects from every window it was in),
    - ``db = grad_out`` summed over batch and positions.

    Args:
        grad_out (Tensor[N, C_out, H_out, W_out]): gradient of the loss w.r.t. the layer's output.
        x (Tensor[N, C_in, H, W]): the layer's input.
        weight (Tensor[C_out, C_in / groups, kH, kW]): the layer's filters.
        stride (int | tuple[int, int]): the layer's stride, >= 1.
        padding (int | tuple[int, int]): the layer's zero padding, >= 0.
        dilation (int | tuple[int, int]): the layer's dilation, >= 1.
        groups (int): the layer's channel groups.

    Returns:
        tuple[Tensor[N, C_in, H, W], Tensor[C_out, C_in / groups, kH, kW], Tensor[C_out]]: ``(dx, dw, db)``, in the
        dtype of ``grad_out``. ``db`` does not depend on the bias, so the bias is not an argument.

    Raises:
        TypeError: a tensor or an int argument of the wrong type.
        ValueError: shapes that do not fit together, or ``grad_out`` not of conv2d's output shape.
    """
    raise NotImplementedError("convolution.conv2d_backward: see specs/02_convolution.yaml")


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    output_padding: Pair = 0,
    groups: int = 1,
    dilation: Pair = 1,
) -> torch.Tensor:
    """Transposed convolution: the gradient of :func:`conv2d` w.r.t. its input, used as an upsampling layer.

    Each input pixel stamps ``x[n, c, i, j] * weight[c]`` onto the output at ``(i*stride, j*stride)``, where
    overlapping stamps add up: ``cols = weight^T @ x`` then :func:`col2im`. ``padding`` crops the result (it undoes
    the padding of the matching conv2d); ``output_padding`` adds rows/columns at the bottom/right to pick one of the
    sizes a strided conv2d maps to the same output size. Argument order is that of
    ``torch.nn.functional.conv_transpose2d``.

    Args:
        x (Tensor[N, C_in, H, W]): input.
        weight (Tensor[C_in, C_out / groups, kH, kW]): filters (conv2d's layout with the channel axes swapped).
        bias (Tensor[C_out] | None): added to every output position of each channel.
        stride (int | tuple[int, int]): upsampling factor, >= 1.
        padding (int | tuple[int, int]): rows/columns cropped from each side, >= 0.
        output_padding (int | tuple[int, int]): extra rows/columns on the bottom/right, < max(stride, dilation).
        groups (int): channel groups, dividing C_in and C_out.
        dilation (int | tuple[int, int]): spacing between kernel taps, >= 1.

    Returns:
        Tensor[N, C_out, H_out, W_out]: ``H_out = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1``.

    Raises:
        TypeError: a tensor or an int argument of the wrong type.
        ValueError: shapes that do not fit together, output_padding too large, or a non-positive output size.
    """
    raise NotImplementedError("convolution.conv_transpose2d: see specs/02_convolution.yaml")


def max_pool2d(x: torch.Tensor, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> torch.Tensor:
    """Maximum over each window (``torch.nn.functional.max_pool2d`` without dilation, ceil_mode or indices).

    Padding is filled with -inf, so it never wins a max: padded windows hold at least one real pixel because
    ``padding <= kernel_size / 2``.

    Args:
        x (Tensor[N, C, H, W]): input.
        kernel_size (int | tuple[int, int]): window size.
        stride (int | tuple[int, int] | None): step between windows; None means ``kernel_size`` (no overlap).
        padding (int | tuple[int, int]): -inf on both sides of each axis, at most half the kernel size.

    Returns:
        Tensor[N, C, H_out, W_out]: floor mode, ``H_out = output_size(H, kH, padding, stride)``.

    Raises:
        TypeError: ``x`` is not a tensor, or a size is not an int / pair of ints.
        ValueError: ``x`` is not 4-D, padding exceeds half the kernel, or the window does not fit.
    """
    raise NotImplementedError("convolution.max_pool2d: see specs/02_convolution.yaml")


def avg_pool2d(x: torch.Tensor, kernel_size: Pair, stride: Pair | None = None, padding: Pair = 0) -> torch.Tensor:
    """Mean over each window (``torch.nn.functional.avg_pool2d`` with count_include_pad=True, floor mode).

    Zero padding counts in the mean: every window divides by ``kH * kW``, also at the borders.

    Args:
        x (Tensor[N, C, H, W]): input.
        kernel_size (int | tuple[int, int]): window size.
        stride (int | tuple[int, int] | None): step between windows; None means ``kernel_size`` (no overlap).
        padding (int | tuple[int, int]): zeros on both sides of each axis, at most half the kernel size.

    Returns:
        Tensor[N, C, H_out, W_out]: same dtype as ``x``.

    Raises:
        TypeError: ``x`` is not a tensor, or a size is not an int / pair of ints.
        ValueError: ``x`` is not 4-D, padding exceeds half the kernel, or the window does not fit.
    """
    raise NotImplementedError("convolution.avg_pool2d: see specs/02_convolution.yaml")


def receptive_field(layers: Sequence[tuple[int, int]]) -> list[int]:
    """Receptive-field size after each layer of a stack of convolutions, in input pixels along one axis.

    A unit of layer ``l`` sees ``k_l`` units of layer ``l - 1``; neighbouring units of layer ``l - 1`` are
    ``j_{l-1} = s_1 * ... * s_{l-1}`` input pixels apart (the "jump"), so each extra tap widens the field by that:
    ``r_l = r_{l-1} + (k_l - 1) * j_{l-1}``, with ``r_0 = 1`` and ``j_0 = 1``. Padding and dilation-free layers assumed.

    Example: ``[(3, 1), (3, 2), (3, 1), (3, 2)]`` gives ``[3, 5, 9, 13]``: the stride-2 layer doubles the growth of
    every layer after it, not its own.

    Args:
        layers (Sequence[tuple[int, int]]): ``(kernel, stride)`` per layer, input side first; both >= 1.

    Returns:
        list[int]: one size per layer (empty for no layers).

    Raises:
        TypeError: a layer is not a pair of ints.
        ValueError: a kernel or stride < 1.
    """
    raise NotImplementedError("convolution.receptive_field: see specs/02_convolution.yaml")


def apply_kernel(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter one grayscale image with a small kernel: the classic image-processing convolution.

    Cross-correlation (the kernel is not flipped; use :data:`KERNELS` as written), output the size of the image.
    Borders are replicated (scipy.ndimage's mode ``"nearest"``), and the kernel's centre is tap
    ``(kH // 2, kW // 2)``, as in ``scipy.ndimage.correlate``, so even-sized kernels work too.

    Args:
        image (Tensor[H, W]): grayscale image, floating dtype.
        kernel (Tensor[kH, kW]): weights, cast to the image's dtype.

    Returns:
        Tensor[H, W]: ``out[i, j] = sum_{u, v} kernel[u, v] * image[clamp(i + u - kH//2), clamp(j + v - kW//2)]``.

    Raises:
        TypeError: ``image`` or ``kernel`` is not a tensor, or the image is not floating point.
        ValueError: ``image`` or ``kernel`` is not 2-D.
    """
    raise NotImplementedError("convolution.apply_kernel: see specs/02_convolution.yaml")
