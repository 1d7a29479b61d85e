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


def _pair(value: Pair, name: str, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair as a pair of ints, each at least ``minimum``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair  # type: ignore[return-value]


def _check_tensor(x: torch.Tensor, name: str, dims: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a Tensor{layout}, got {type(x).__name__}")
    if x.dim() != dims:
        raise ValueError(f"{name} must be Tensor{layout} ({dims}-D), got shape {tuple(x.shape)}")


def _output_hw(
    hw: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    return (
        output_size(hw[0], kernel[0], padding[0], stride[0], dilation[0]),
        output_size(hw[1], kernel[1], padding[1], stride[1], dilation[1]),
    )


def _check_conv_weight(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> None:
    """x [N, C_in, H, W], weight [C_out, C_in / groups, kH, kW], bias [C_out] or None, groups dividing both channel counts."""
    _check_tensor(x, "x", 4, "[N, C_in, H, W]")
    _check_tensor(weight, "weight", 4, "[C_out, C_in / groups, kH, kW]")
    if weight.dtype != x.dtype:
        raise TypeError(f"weight must have x's dtype {x.dtype}, got {weight.dtype}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    c_in, c_out = x.shape[1], weight.shape[0]
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide C_in={c_in} and C_out={c_out}")
    if weight.shape[1] != c_in // groups:
        expected = (c_out, c_in // groups, *weight.shape[2:])
        raise ValueError(
            f"weight must have shape [C_out, C_in / groups, kH, kW] = {expected} for x {tuple(x.shape)} and groups={groups}, "
            f"got {tuple(weight.shape)}"
        )
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (c_out,)):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must be None or Tensor[C_out] = ({c_out},), got {got}")


def _windows(
    x_padded: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]
) -> torch.Tensor:
    """Every kernel tap's view of an already padded input: Tensor[N, C, kH*kW, H_out, W_out].

    Tap ``(u, v)`` sees the pixels ``x_padded[..., i*sH + u*dH, j*sW + v*dW]`` for all output positions ``(i, j)``:
    one strided slice per tap, so the loop runs kH*kW times, not once per output pixel.
    """
    (kh, kw), (sh, sw), (dh, dw), (h_out, w_out) = kernel, stride, dilation, out_hw
    taps = [
        x_padded[:, :, u * dh : u * dh + sh * (h_out - 1) + 1 : sh, v * dw : v * dw + sw * (w_out - 1) + 1 : sw]  # (N, C, H_out, W_out)
        for u, v in product(range(kh), range(kw))
    ]
    return torch.stack(taps, dim=2)


def _add_windows(
    windows: torch.Tensor, padded_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> torch.Tensor:
    """The adjoint of :func:`_windows`: Tensor[N, C, kH*kW, H_out, W_out] summed back onto zeros of ``padded_hw``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, _, h_out, w_out = windows.shape
    image = windows.new_zeros(n, c, *padded_hw)
    for tap, (u, v) in enumerate(product(range(kh), range(kw))):
        image[:, :, u * dh : u * dh + sh * (h_out - 1) + 1 : sh, v * dw : v * dw + sw * (w_out - 1) + 1 : sw] += windows[:, :, tap]
    return image


def _constant_pad(x: torch.Tensor, padding: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """Symmetric constant padding of the last two axes (``value`` = -inf for max pooling)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    padded = x.new_full((*x.shape[:-2], x.shape[-2] + 2 * ph, x.shape[-1] + 2 * pw), value)
    padded[..., ph : ph + x.shape[-2], pw : pw + x.shape[-1]] = x
    return padded


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
    if size < 1 or kernel < 1 or padding < 0 or stride < 1 or dilation < 1:
        raise ValueError(
            "need size >= 1, kernel >= 1, padding >= 0, stride >= 1, dilation >= 1; "
            f"got {size=}, {kernel=}, {padding=}, {stride=}, {dilation=}"
        )
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(f"the dilated kernel spans {span} pixels but the padded input has only {size + 2 * padding}")
    return (size + 2 * padding - span) // stride + 1


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
    _check_tensor(x, "x", 4, "[N, C, H, W]")
    sides = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    if len(sides) != 4 or not all(isinstance(p, int) and not isinstance(p, bool) for p in sides):
        raise TypeError(f"padding must be an int or (left, right, top, bottom) ints, got {padding!r}")
    if min(sides) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if mode not in ("zeros", "reflect", "replicate"):
        raise ValueError(f"mode must be 'zeros', 'reflect' or 'replicate', got {mode!r}")
    left, right, top, bottom = sides
    height, width = x.shape[-2:]
    if mode == "zeros":
        padded = x.new_zeros(*x.shape[:-2], height + top + bottom, width + left + right)
        padded[..., top : top + height, left : left + width] = x
        return padded
    rows = _source_indices(height, top, bottom, mode)  # (H + top + bottom,)
    columns = _source_indices(width, left, right, mode)  # (W + left + right,)
    return x[..., rows, :][..., columns]


def _source_indices(size: int, before: int, after: int, mode: str) -> torch.Tensor:
    """For each position of the padded axis, the index of the input pixel it copies."""
    positions = torch.arange(-before, size + after)  # padded axis in input coordinates
    if mode == "replicate":
        return positions.clamp(0, size - 1)
    if max(before, after) >= size:
        raise ValueError(f"reflect padding must be smaller than the side it pads: pad ({before}, {after}) for size {size}")
    positions = positions.abs()  # -1 -> 1: mirror about the first pixel
    return torch.where(positions > size - 1, 2 * (size - 1) - positions, positions)  # size -> size - 2: about the last


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
    _check_conv_weight(x, weight, bias, groups)
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    (kh, kw), (sh, sw), (dh, dw) = weight.shape[2:], stride, dilation
    h_out, w_out = _output_hw(x.shape[2:], (kh, kw), padding, stride, dilation)
    x_padded = _constant_pad(x, padding)
    c_out, c_per_group = weight.shape[0], weight.shape[1]
    out_per_group = c_out // groups
    out = x.new_zeros(x.shape[0], c_out, h_out, w_out)
    for o in range(c_out):
        first = (o // out_per_group) * c_per_group  # first input channel of o's group
        for i in range(h_out):
            for j in range(w_out):
                top, left = i * sh, j * sw
                window = x_padded[:, first : first + c_per_group, top : top + dh * (kh - 1) + 1 : dh, left : left + dw * (kw - 1) + 1 : dw]
                # window: (N, C_in/groups, kH, kW), the input under the kernel for output pixel (i, j)
                out[:, o, i, j] = (window * weight[o]).sum(dim=(1, 2, 3))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


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
    _check_tensor(x, "x", 4, "[N, C, H, W]")
    kernel, dilation = _pair(kernel_size, "kernel_size", 1), _pair(dilation, "dilation", 1)
    padding, stride = _pair(padding, "padding", 0), _pair(stride, "stride", 1)
    out_hw = _output_hw(x.shape[2:], kernel, padding, stride, dilation)
    windows = _windows(_constant_pad(x, padding), kernel, stride, dilation, out_hw)  # (N, C, kH*kW, H_out, W_out)
    return windows.reshape(x.shape[0], -1, out_hw[0] * out_hw[1])


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
    _check_tensor(cols, "cols", 3, "[N, C*kH*kW, L]")
    hw, kernel = _pair(output_size, "output_size", 1), _pair(kernel_size, "kernel_size", 1)
    dilation, padding, stride = _pair(dilation, "dilation", 1), _pair(padding, "padding", 0), _pair(stride, "stride", 1)
    taps = kernel[0] * kernel[1]
    out_hw = _output_hw(hw, kernel, padding, stride, dilation)
    if cols.shape[1] % taps or cols.shape[2] != out_hw[0] * out_hw[1]:
        expected = f"Tensor[N, C*{taps}, {out_hw[0] * out_hw[1]}]"
        raise ValueError(f"cols must be {expected} for output {hw}, kernel {kernel}; got {tuple(cols.shape)}")
    windows = cols.reshape(cols.shape[0], -1, taps, *out_hw)  # (N, C, kH*kW, H_out, W_out)
    padded_hw = (hw[0] + 2 * padding[0], hw[1] + 2 * padding[1])
    image = _add_windows(windows, padded_hw, kernel, stride, dilation)
    return image[:, :, padding[0] : padding[0] + hw[0], padding[1] : padding[1] + hw[1]]


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
    _check_conv_weight(x, weight, bias, groups)
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    n, c_out = x.shape[0], weight.shape[0]
    h_out, w_out = _output_hw(x.shape[2:], weight.shape[2:], padding, stride, dilation)
    cols = im2col(x, weight.shape[2:], dilation, padding, stride)  # (N, C_in*kH*kW, L)
    cols = cols.view(n, groups, -1, h_out * w_out)  # (N, G, C_in/G*kH*kW, L): the rows of a group are contiguous
    filters = weight.reshape(groups, c_out // groups, -1)  # (G, C_out/G, C_in/G*kH*kW)
    out = torch.matmul(filters, cols)  # (N, G, C_out/G, L)
    out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


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
    _check_conv_weight(x, weight, None, groups)
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    n, c_out = x.shape[0], weight.shape[0]
    h_out, w_out = _output_hw(x.shape[2:], weight.shape[2:], padding, stride, dilation)
    _check_tensor(grad_out, "grad_out", 4, "[N, C_out, H_out, W_out]")
    if grad_out.shape != (n, c_out, h_out, w_out):
        raise ValueError(f"grad_out must have conv2d's output shape {(n, c_out, h_out, w_out)}, got {tuple(grad_out.shape)}")
    cols = im2col(x, weight.shape[2:], dilation, padding, stride).view(n, groups, -1, h_out * w_out)  # (N, G, K, L), K = C_in/G*kH*kW
    grads = grad_out.reshape(n, groups, c_out // groups, h_out * w_out)  # (N, G, C_out/G, L)
    filters = weight.reshape(groups, c_out // groups, -1)  # (G, C_out/G, K)
    dw = torch.matmul(grads, cols.transpose(-1, -2)).sum(dim=0)  # (G, C_out/G, K)
    dcols = torch.matmul(filters.transpose(-1, -2), grads)  # (N, G, K, L)
    dx = col2im(dcols.reshape(n, -1, h_out * w_out), x.shape[2:], weight.shape[2:], dilation, padding, stride)
    db = grad_out.sum(dim=(0, 2, 3))
    return dx, dw.reshape(weight.shape), db


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
    _check_tensor(x, "x", 4, "[N, C_in, H, W]")
    _check_tensor(weight, "weight", 4, "[C_in, C_out / groups, kH, kW]")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"groups must be a positive int dividing C_in={x.shape[1]}, got {groups!r}")
    if weight.shape[0] != x.shape[1]:
        raise ValueError(f"weight must have shape [C_in, C_out / groups, kH, kW] with C_in={x.shape[1]}, got {tuple(weight.shape)}")
    c_in, c_out_per_group, kh, kw = weight.shape
    c_out = c_out_per_group * groups
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != (c_out,)):
        got = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must be None or Tensor[C_out] = ({c_out},), got {got}")
    stride, padding, dilation = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    output_padding = _pair(output_padding, "output_padding", 0)
    for axis in range(2):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got {output_padding} for stride {stride}, dilation {dilation}"
            )
    n, _, h, w = x.shape
    # Size before cropping `padding`: every stamp fits, plus output_padding rows/columns.
    full_hw = (
        (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0],
        (w - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1],
    )
    out_hw = (full_hw[0] - 2 * padding[0], full_hw[1] - 2 * padding[1])
    if min(out_hw) < 1:
        raise ValueError(f"padding {padding} crops the whole output (uncropped size {full_hw})")
    inputs = x.reshape(n, groups, c_in // groups, h * w)  # (N, G, C_in/G, H*W)
    filters = weight.reshape(groups, c_in // groups, -1)  # (G, C_in/G, C_out/G*kH*kW)
    cols = torch.matmul(filters.transpose(-1, -2), inputs)  # (N, G, C_out/G*kH*kW, H*W): one stamp per input pixel
    windows = cols.reshape(n, c_out, kh * kw, h, w)
    out = _add_windows(windows, full_hw, (kh, kw), stride, dilation)
    out = out[:, :, padding[0] : padding[0] + out_hw[0], padding[1] : padding[1] + out_hw[1]]
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def _pool_windows(x: torch.Tensor, kernel_size: Pair, stride: Pair | None, padding: Pair, fill: float) -> torch.Tensor:
    """Pooling windows of x padded with ``fill``: Tensor[N, C, kH*kW, H_out, W_out]."""
    _check_tensor(x, "x", 4, "[N, C, H, W]")
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding must be at most half the kernel size, got padding {padding} for kernel {kernel}")
    out_hw = _output_hw(x.shape[2:], kernel, padding, stride, (1, 1))
    return _windows(_constant_pad(x, padding, fill), kernel, stride, (1, 1), out_hw)


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
    return _pool_windows(x, kernel_size, stride, padding, float("-inf")).amax(dim=2)


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
    return _pool_windows(x, kernel_size, stride, padding, 0.0).mean(dim=2)


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
    sizes, field, jump = [], 1, 1
    for index, layer in enumerate(layers):
        if len(layer) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in layer):
            raise TypeError(f"layer {index} must be a (kernel, stride) pair of ints, got {layer!r}")
        kernel, stride = layer
        if kernel < 1 or stride < 1:
            raise ValueError(f"layer {index}: kernel and stride must be >= 1, got {layer!r}")
        field += (kernel - 1) * jump
        jump *= stride
        sizes.append(field)
    return sizes


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
    _check_tensor(image, "image", 2, "[H, W]")
    _check_tensor(kernel, "kernel", 2, "[kH, kW]")
    if not image.is_floating_point():
        raise TypeError(f"image must be a floating-point tensor, got {image.dtype}")
    kh, kw = kernel.shape
    sides = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)  # (left, right, top, bottom): centre at (kH//2, kW//2)
    padded = pad2d(image[None, None], sides, "replicate")  # (1, 1, H + kH - 1, W + kW - 1)
    return conv2d(padded, kernel.to(image.dtype)[None, None])[0, 0]
