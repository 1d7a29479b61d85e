"""Pixels, channels and colour spaces: what the numbers in an image array mean.

Conventions used by every function here:
- **Library in, library out**: an ``ndarray`` gives an ``ndarray``, a ``Tensor`` gives a ``Tensor`` (same device).
  (The reference copies numpy inputs into a tensor so that there is one code path; any approach works.)
- **Layout**: images from disk are ``HWC`` (height, width, channels); networks take ``CHW`` / ``NCHW``.
  Colour conversions act on the last axis, ``[..., 3]`` (HWC, NHWC or a single pixel); convert an NCHW tensor
  with :func:`chw_to_hwc` first. ``standardize`` takes the channel axis as an argument.
- **Types**: ``uint8`` images hold 0..255; float images hold [0, 1]. Functions say which they take; a float result
  has the input's float dtype; uint8 results are rounded half to even and clipped to 0..255.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "XYZ_FROM_LINEAR_RGB",
    "D65_WHITE",
    "hwc_to_chw",
    "chw_to_hwc",
    "to_float",
    "to_uint8",
    "rgb_to_grayscale",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "srgb_to_linear",
    "linear_to_srgb",
    "rgb_to_lab",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "standardize",
    "destandardize",
    "preprocess_imagenet",
    "deprocess_imagenet",
    "resize",
    "equalize_histogram",
]

ImageLike = np.ndarray | torch.Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # per-channel RGB mean of ImageNet, images in [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)  # per-channel RGB standard deviation of ImageNet
# Linear sRGB (Rec. 709 primaries) to CIE XYZ, D65 white; the matrix skimage.color uses.
XYZ_FROM_LINEAR_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the D65 white point, CIE 1931 2-degree observer


def _tensor(image: object, name: str) -> tuple[torch.Tensor, bool]:
    """The input as a tensor (numpy arrays are copied), and whether it came as numpy."""
    if isinstance(image, torch.Tensor):
        return image, False
    if isinstance(image, np.ndarray):
        return torch.from_numpy(np.array(image)), True  # a copy: writable, positive strides
    raise TypeError(f"{name}: expected an ndarray or a Tensor, got {type(image).__name__}")


def _output(result: torch.Tensor, from_numpy: bool) -> ImageLike:
    return result.numpy() if from_numpy else result


def _require_float(image: torch.Tensor, name: str) -> None:
    if not image.is_floating_point():
        raise TypeError(f"{name}: expected a float image in [0, 1], got dtype {image.dtype} (convert uint8 with to_float)")


def _require_uint8(image: torch.Tensor, name: str) -> None:
    if image.dtype != torch.uint8:
        raise TypeError(f"{name}: expected a uint8 image, got dtype {image.dtype}")


def _require_float_or_uint8(image: torch.Tensor, name: str) -> None:
    if image.dtype != torch.uint8 and not image.is_floating_point():
        raise TypeError(f"{name}: expected a uint8 or float image, got dtype {image.dtype}")


def _require_channels_last(image: torch.Tensor, name: str, channels: int = 3) -> None:
    if image.ndim == 0 or image.shape[-1] != channels:
        raise ValueError(f"{name}: expected shape [..., {channels}] (channels last), got {list(image.shape)}")


def _constant(values: Sequence, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _apply_matrix(image: torch.Tensor, matrix: Sequence) -> torch.Tensor:
    """``[..., 3] -> [..., 3]``: each pixel multiplied by a 3x3 matrix (broadcast, not BLAS: tiny and thread-free)."""
    return (image.unsqueeze(-2) * _constant(matrix, image)).sum(-1)  # [..., 1, 3] * [3, 3] -> [..., 3, 3] -> [..., 3]


def _round_to_uint8(values: torch.Tensor) -> torch.Tensor:
    return values.round().clamp(0, 255).to(torch.uint8)


def _working_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 images are computed in float32; float images in their own dtype."""
    return image.to(torch.float32) if image.dtype == torch.uint8 else image


# --- layout and value range ------------------------------------------------------------------------------


def hwc_to_chw(image: ImageLike) -> ImageLike:
    """Channels-last to channels-first: ``[H, W, C] -> [C, H, W]`` and ``[N, H, W, C] -> [N, C, H, W]``.

    Args:
        image (ndarray or Tensor [H, W, C] or [N, H, W, C]): any dtype.

    Returns:
        ndarray or Tensor [C, H, W] or [N, C, H, W]: same library and dtype, values unchanged.

    Raises:
        TypeError: not an ndarray or Tensor.
        ValueError: not 3-D or 4-D.
    """
    tensor, from_numpy = _tensor(image, "hwc_to_chw")
    if tensor.ndim not in (3, 4):
        raise ValueError(f"hwc_to_chw: expected [H, W, C] or [N, H, W, C], got shape {list(tensor.shape)}")
    return _output(tensor.movedim(-1, -3), from_numpy)


def chw_to_hwc(image: ImageLike) -> ImageLike:
    """Channels-first to channels-last: ``[C, H, W] -> [H, W, C]`` and ``[N, C, H, W] -> [N, H, W, C]``.

    Args:
        image (ndarray or Tensor [C, H, W] or [N, C, H, W]): any dtype.

    Returns:
        ndarray or Tensor [H, W, C] or [N, H, W, C]: same library and dtype, values unchanged.

    Raises:
        TypeError: not an ndarray or Tensor.
        ValueError: not 3-D or 4-D.
    """
    tensor, from_numpy = _tensor(image, "chw_to_hwc")
    if tensor.ndim not in (3, 4):
        raise ValueError(f"chw_to_hwc: expected [C, H, W] or [N, C, H, W], got shape {list(tensor.shape)}")
    return _output(tensor.movedim(-3, -1), from_numpy)


def to_float(image: ImageLike) -> ImageLike:
    """uint8 0..255 to float32 [0, 1]: ``value / 255``.

    Args:
        image (ndarray or Tensor [...], uint8): any shape.

    Returns:
        ndarray or Tensor [...], float32: same library and shape.

    Raises:
        TypeError: not an ndarray or Tensor, or not uint8.
    """
    tensor, from_numpy = _tensor(image, "to_float")
    _require_uint8(tensor, "to_float")
    return _output(tensor.to(torch.float32) / 255, from_numpy)


def to_uint8(image: ImageLike) -> ImageLike:
    """Float [0, 1] to uint8: ``round(value * 255)``, half to even, clipped to 0..255 (values outside [0, 1] clip).

    Rounding (not truncating) makes ``to_uint8(to_float(x)) == x`` for every uint8 ``x``.

    Args:
        image (ndarray or Tensor [...], float): any shape; computed in its own dtype.

    Returns:
        ndarray or Tensor [...], uint8: same library and shape.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
    """
    tensor, from_numpy = _tensor(image, "to_uint8")
    _require_float(tensor, "to_uint8")
    return _output(_round_to_uint8(tensor * 255), from_numpy)


# --- colour spaces (channels last) ----------------------------------------------------------------------


def rgb_to_grayscale(image: ImageLike) -> ImageLike:
    """Luma of ITU-R BT.601: ``Y = 0.299 R + 0.587 G + 0.114 B`` (what ``cv2.COLOR_RGB2GRAY`` computes).

    Args:
        image (ndarray or Tensor [..., 3], uint8 or float): RGB, channels last.

    Returns:
        ndarray or Tensor [...]: the channel axis removed; same library and dtype (uint8 is rounded).

    Raises:
        TypeError: not an ndarray or Tensor, or neither uint8 nor float.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "rgb_to_grayscale")
    _require_float_or_uint8(tensor, "rgb_to_grayscale")
    _require_channels_last(tensor, "rgb_to_grayscale")
    work = _working_float(tensor)
    gray = (work * _constant((0.299, 0.587, 0.114), work)).sum(-1)  # [..., 3] -> [...]
    return _output(_round_to_uint8(gray) if tensor.dtype == torch.uint8 else gray, from_numpy)


def rgb_to_hsv(image: ImageLike) -> ImageLike:
    """RGB to HSV with the hue in degrees, as colorsys computes it (times 360 for the hue).

    ``V = max(R, G, B)``, ``S = (V - min) / V`` (0 where V = 0), and the hue is the angle on the colour hexagon:
    ``60 * ((G - B) / delta mod 6)`` where R is the maximum, ``60 * ((B - R) / delta + 2)`` where G is,
    ``60 * ((R - G) / delta + 4)`` where B is (``delta = V - min``); greys (delta = 0) get H = 0.

    Args:
        image (ndarray or Tensor [..., 3], float): RGB in [0, 1], channels last.

    Returns:
        ndarray or Tensor [..., 3]: (H, S, V) with H in [0, 360) and S, V in [0, 1]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "rgb_to_hsv")
    _require_float(tensor, "rgb_to_hsv")
    _require_channels_last(tensor, "rgb_to_hsv")
    red, green, blue = tensor.unbind(-1)
    value = tensor.amax(-1)
    delta = value - tensor.amin(-1)
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, 1), 0)
    safe_delta = torch.where(delta > 0, delta, 1)
    sector = torch.where(
        value == red,
        ((green - blue) / safe_delta) % 6,
        torch.where(value == green, (blue - red) / safe_delta + 2, (red - green) / safe_delta + 4),
    )
    hue = torch.where(delta > 0, 60 * sector, 0)
    hue = torch.where(hue >= 360, hue - 360, hue)  # a tiny negative angle mod 6 can round up to 6 exactly
    return _output(torch.stack([hue, saturation, value], dim=-1), from_numpy)


def hsv_to_rgb(image: ImageLike) -> ImageLike:
    """HSV (hue in degrees) to RGB, the inverse of :func:`rgb_to_hsv`; hues outside [0, 360) wrap around.

    Each channel is ``V - V * S * clip(min(k, 4 - k), 0, 1)`` with ``k = (n + H / 60) mod 6`` and
    ``n = 5, 3, 1`` for R, G, B: the piecewise-linear hexagon in closed form.

    Args:
        image (ndarray or Tensor [..., 3], float): (H, S, V), H in degrees, S and V in [0, 1], channels last.

    Returns:
        ndarray or Tensor [..., 3]: RGB in [0, 1]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "hsv_to_rgb")
    _require_float(tensor, "hsv_to_rgb")
    _require_channels_last(tensor, "hsv_to_rgb")
    hue, saturation, value = tensor.unbind(-1)
    offsets = _constant((5.0, 3.0, 1.0), tensor)  # R, G, B
    k = (offsets + (hue / 60).unsqueeze(-1)) % 6  # [..., 3]
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return _output(value.unsqueeze(-1) * (1 - saturation.unsqueeze(-1) * ramp), from_numpy)


def srgb_to_linear(image: ImageLike) -> ImageLike:
    """Undo the sRGB transfer curve (IEC 61966-2-1): ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``.

    Not a pure power law: near black the curve is linear, which a ``c ** 2.2`` approximation gets wrong.

    Args:
        image (ndarray or Tensor [...], float): sRGB-encoded values in [0, 1]; any shape (the curve is per value).

    Returns:
        ndarray or Tensor [...]: linear-light values in [0, 1]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
    """
    tensor, from_numpy = _tensor(image, "srgb_to_linear")
    _require_float(tensor, "srgb_to_linear")
    curved = ((tensor.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4  # clamped: the power sees its own branch only
    return _output(torch.where(tensor <= 0.04045, tensor / 12.92, curved), from_numpy)


def linear_to_srgb(image: ImageLike) -> ImageLike:
    """Apply the sRGB transfer curve: ``12.92 l`` for ``l <= 0.0031308``, else ``1.055 * l ** (1 / 2.4) - 0.055``.

    Args:
        image (ndarray or Tensor [...], float): linear-light values in [0, 1]; any shape.

    Returns:
        ndarray or Tensor [...]: sRGB-encoded values in [0, 1]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
    """
    tensor, from_numpy = _tensor(image, "linear_to_srgb")
    _require_float(tensor, "linear_to_srgb")
    curved = 1.055 * tensor.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    return _output(torch.where(tensor <= 0.0031308, 12.92 * tensor, curved), from_numpy)


def rgb_to_lab(image: ImageLike) -> ImageLike:
    """sRGB to CIE L*a*b* (D65 white, 2-degree observer), as ``skimage.color.rgb2lab`` computes it.

    sRGB -> linear (:func:`srgb_to_linear`) -> XYZ (``XYZ_FROM_LINEAR_RGB``) -> divide by ``D65_WHITE`` ->
    ``f(t) = t ** (1/3)`` for ``t > (6/29) ** 3``, else ``t / (3 (6/29) ** 2) + 4/29`` ->
    ``L = 116 f(Y) - 16``, ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))``.

    Args:
        image (ndarray or Tensor [..., 3], float): sRGB in [0, 1], channels last.

    Returns:
        ndarray or Tensor [..., 3]: (L, a, b), L in [0, 100]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "rgb_to_lab")
    _require_float(tensor, "rgb_to_lab")
    _require_channels_last(tensor, "rgb_to_lab")
    xyz = _apply_matrix(srgb_to_linear(tensor), XYZ_FROM_LINEAR_RGB) / _constant(D65_WHITE, tensor)
    epsilon = (6 / 29) ** 3
    f = torch.where(xyz > epsilon, xyz.clamp(min=epsilon) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-1)
    return _output(torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-1), from_numpy)


def rgb_to_ycbcr(image: ImageLike) -> ImageLike:
    """RGB to JPEG (JFIF) full-range YCbCr: ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cb = 0.564 (B - Y) + offset``, ...

    The offset is 128 for uint8 (as ``PIL.Image.convert("YCbCr")``) and 0.5 for float images in [0, 1]; no
    studio range (16..235): all of 0..255 is used.

    Args:
        image (ndarray or Tensor [..., 3], uint8 or float): RGB, channels last.

    Returns:
        ndarray or Tensor [..., 3]: (Y, Cb, Cr); same library and dtype (uint8 rounded and clipped).

    Raises:
        TypeError: not an ndarray or Tensor, or neither uint8 nor float.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "rgb_to_ycbcr")
    _require_float_or_uint8(tensor, "rgb_to_ycbcr")
    _require_channels_last(tensor, "rgb_to_ycbcr")
    work = _working_float(tensor)
    offset = 128.0 if tensor.dtype == torch.uint8 else 0.5
    ycbcr_from_rgb = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
    ycbcr = _apply_matrix(work, ycbcr_from_rgb) + _constant((0.0, offset, offset), work)
    return _output(_round_to_uint8(ycbcr) if tensor.dtype == torch.uint8 else ycbcr, from_numpy)


def ycbcr_to_rgb(image: ImageLike) -> ImageLike:
    """JPEG full-range YCbCr to RGB, the inverse of :func:`rgb_to_ycbcr`: ``R = Y + 1.402 (Cr - offset)``, ...

    Args:
        image (ndarray or Tensor [..., 3], uint8 or float): (Y, Cb, Cr) with offset 128 (uint8) or 0.5 (float).

    Returns:
        ndarray or Tensor [..., 3]: RGB; same library and dtype. uint8 is rounded and clipped to 0..255;
        float is not clipped (a YCbCr triple can lie outside the RGB cube).

    Raises:
        TypeError: not an ndarray or Tensor, or neither uint8 nor float.
        ValueError: the last axis is not 3.
    """
    tensor, from_numpy = _tensor(image, "ycbcr_to_rgb")
    _require_float_or_uint8(tensor, "ycbcr_to_rgb")
    _require_channels_last(tensor, "ycbcr_to_rgb")
    work = _working_float(tensor)
    offset = 128.0 if tensor.dtype == torch.uint8 else 0.5
    rgb_from_ycbcr = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))  # JFIF's rounded inverse
    rgb = _apply_matrix(work - _constant((0.0, offset, offset), work), rgb_from_ycbcr)
    return _output(_round_to_uint8(rgb) if tensor.dtype == torch.uint8 else rgb, from_numpy)


# --- normalisation for networks ----------------------------------------------------------------------------


def _channel_statistics(
    tensor: torch.Tensor, mean: Sequence[float] | ImageLike, std: Sequence[float] | ImageLike, channel_axis: int, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as tensors shaped to broadcast along ``channel_axis``."""
    if not -tensor.ndim <= channel_axis < tensor.ndim:
        raise ValueError(f"{name}: channel_axis {channel_axis} is out of range for shape {list(tensor.shape)}")
    channels = tensor.shape[channel_axis]
    shape = [1] * tensor.ndim
    shape[channel_axis] = channels
    statistics = []
    for label, values in (("mean", mean), ("std", std)):
        values = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)
        if values.shape != (channels,):
            raise ValueError(f"{name}: {label} must have shape [{channels}] (one value per channel), got {list(values.shape)}")
        statistics.append(values.to(dtype=tensor.dtype, device=tensor.device).reshape(shape))
    if not bool((statistics[1] > 0).all()):
        raise ValueError(f"{name}: every std must be positive, got {std}")
    return statistics[0], statistics[1]


def standardize(
    image: ImageLike, mean: Sequence[float] | ImageLike, std: Sequence[float] | ImageLike, channel_axis: int = -1
) -> ImageLike:
    """Per-channel ``(image - mean) / std``, what ``torchvision.transforms.Normalize`` does.

    Args:
        image (ndarray or Tensor [..., C, ...], float): channels on ``channel_axis``: ``-1`` for HWC / NHWC
            (the default), ``1`` (or ``-3``) for NCHW, ``0`` for CHW.
        mean (sequence of C floats, or ndarray/Tensor [C]): per-channel mean.
        std (sequence of C floats, or ndarray/Tensor [C]): per-channel standard deviation, all > 0.
        channel_axis (int): the axis holding the channels.

    Returns:
        ndarray or Tensor, the input's shape: same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: channel_axis out of range, mean/std not of shape [C], or a std that is not positive.
    """
    tensor, from_numpy = _tensor(image, "standardize")
    _require_float(tensor, "standardize")
    mean_, std_ = _channel_statistics(tensor, mean, std, channel_axis, "standardize")
    return _output((tensor - mean_) / std_, from_numpy)


def destandardize(
    image: ImageLike, mean: Sequence[float] | ImageLike, std: Sequence[float] | ImageLike, channel_axis: int = -1
) -> ImageLike:
    """Per-channel ``image * std + mean``, the inverse of :func:`standardize` (same arguments).

    Args:
        image (ndarray or Tensor [..., C, ...], float): channels on ``channel_axis``.
        mean (sequence of C floats, or ndarray/Tensor [C]): per-channel mean.
        std (sequence of C floats, or ndarray/Tensor [C]): per-channel standard deviation, all > 0.
        channel_axis (int): the axis holding the channels (-1: HWC, 1: NCHW).

    Returns:
        ndarray or Tensor, the input's shape: same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: channel_axis out of range, mean/std not of shape [C], or a std that is not positive.
    """
    tensor, from_numpy = _tensor(image, "destandardize")
    _require_float(tensor, "destandardize")
    mean_, std_ = _channel_statistics(tensor, mean, std, channel_axis, "destandardize")
    return _output(tensor * std_ + mean_, from_numpy)


def preprocess_imagenet(image: ImageLike) -> ImageLike:
    """An RGB image from disk to a network input: ``standardize(hwc_to_chw(to_float(image)), IMAGENET_MEAN, IMAGENET_STD)``.

    The same values as ``torchvision.transforms.ToTensor()`` followed by ``Normalize(IMAGENET_MEAN, IMAGENET_STD)``;
    no resizing or cropping.

    Args:
        image (ndarray or Tensor [H, W, 3] or [N, H, W, 3], uint8): RGB as loaded from disk.

    Returns:
        ndarray or Tensor [3, H, W] or [N, 3, H, W], float32: same library.

    Raises:
        TypeError: not an ndarray or Tensor, or not uint8.
        ValueError: not [H, W, 3] or [N, H, W, 3].
    """
    tensor, from_numpy = _tensor(image, "preprocess_imagenet")
    _require_uint8(tensor, "preprocess_imagenet")
    if tensor.ndim not in (3, 4) or tensor.shape[-1] != 3:
        raise ValueError(f"preprocess_imagenet: expected [H, W, 3] or [N, H, W, 3], got shape {list(tensor.shape)}")
    chw = hwc_to_chw(to_float(tensor))  # [..., 3, H, W]
    return _output(standardize(chw, IMAGENET_MEAN, IMAGENET_STD, channel_axis=-3), from_numpy)


def deprocess_imagenet(image: ImageLike) -> ImageLike:
    """A network input back to a displayable image, the inverse of :func:`preprocess_imagenet` up to rounding.

    ``to_uint8(chw_to_hwc(destandardize(image, IMAGENET_MEAN, IMAGENET_STD)))``: rounded and clipped, so values a
    network produced outside the range still display.

    Args:
        image (ndarray or Tensor [3, H, W] or [N, 3, H, W], float): standardized RGB.

    Returns:
        ndarray or Tensor [H, W, 3] or [N, H, W, 3], uint8: same library.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
        ValueError: not [3, H, W] or [N, 3, H, W].
    """
    tensor, from_numpy = _tensor(image, "deprocess_imagenet")
    _require_float(tensor, "deprocess_imagenet")
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise ValueError(f"deprocess_imagenet: expected [3, H, W] or [N, 3, H, W], got shape {list(tensor.shape)}")
    rgb = destandardize(tensor, IMAGENET_MEAN, IMAGENET_STD, channel_axis=-3)
    return _output(to_uint8(chw_to_hwc(rgb)), from_numpy)


# --- geometry and contrast --------------------------------------------------------------------------------


def _nearest_indices(size_in: int, size_out: int, device: torch.device) -> torch.Tensor:
    """``floor((i + 0.5) * in / out)`` in integers, so that a centre exactly on a pixel boundary is exact."""
    positions = torch.arange(size_out, device=device)
    return ((2 * positions + 1) * size_in // (2 * size_out)).clamp(max=size_in - 1)


def _linear_taps(size_in: int, size_out: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each output position: the two input neighbours and the weight of the second one."""
    source = (torch.arange(size_out, dtype=torch.float64, device=device) + 0.5) * (size_in / size_out) - 0.5
    source = source.clamp(0, size_in - 1)  # edge clamp: outside the outer centres, copy the edge pixel
    lower = source.floor().long()
    upper = (lower + 1).clamp(max=size_in - 1)
    return lower, upper, (source - lower).to(dtype)


def _lerp_along(image: torch.Tensor, axis: int, size_out: int) -> torch.Tensor:
    lower, upper, weight = _linear_taps(image.shape[axis], size_out, image.dtype, image.device)
    shape = [1] * image.ndim
    shape[axis] = size_out
    below, above = image.index_select(axis, lower), image.index_select(axis, upper)
    return below + (above - below) * weight.reshape(shape)


def resize(image: ImageLike, size: Sequence[int], mode: str = "bilinear") -> ImageLike:
    """Resize the two spatial axes to ``size = (height, width)``, with pixel centres at half-integers.

    Output pixel ``i`` has its centre at input coordinate ``(i + 0.5) * in / out - 0.5``.
    - ``"nearest"`` copies the input pixel whose footprint holds that centre: index ``floor((i + 0.5) * in / out)``;
      a centre exactly on a boundary (every pixel when halving) takes the later pixel. Compute it in integers or
      float64: float32 breaks some ties the other way (14 -> 23 rows: output row 11 is input row 7).
    - ``"bilinear"`` interpolates the two nearest input centres on each axis, clamping to the edge pixel outside
      the outer centres; no antialiasing when shrinking. This is ``cv2.resize(..., INTER_LINEAR)`` and
      ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``.

    Args:
        image (ndarray or Tensor [H, W], [H, W, C] or [N, H, W, C], uint8 or float): channels last.
        size (tuple of 2 ints): output (height, width), each >= 1.
        mode (str): ``"bilinear"`` or ``"nearest"``.

    Returns:
        ndarray or Tensor [H', W'], [H', W', C] or [N, H', W', C]: same library and dtype (bilinear uint8 is
        computed in float32, then rounded).

    Raises:
        TypeError: not an ndarray or Tensor, or neither uint8 nor float.
        ValueError: not 2-D to 4-D, a size that is not two positive ints, or an unknown mode.
    """
    tensor, from_numpy = _tensor(image, "resize")
    _require_float_or_uint8(tensor, "resize")
    if tensor.ndim not in (2, 3, 4) or 0 in tensor.shape:
        raise ValueError(f"resize: expected a non-empty [H, W], [H, W, C] or [N, H, W, C], got shape {list(tensor.shape)}")
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(f"resize: size must be (height, width), two ints >= 1, got {size!r}")
    height_axis = 1 if tensor.ndim == 4 else 0
    if mode == "nearest":
        rows = _nearest_indices(tensor.shape[height_axis], int(size[0]), tensor.device)
        columns = _nearest_indices(tensor.shape[height_axis + 1], int(size[1]), tensor.device)
        resized = tensor.index_select(height_axis, rows).index_select(height_axis + 1, columns)
    elif mode == "bilinear":
        work = _working_float(tensor)
        resized = _lerp_along(_lerp_along(work, height_axis, int(size[0])), height_axis + 1, int(size[1]))
        if tensor.dtype == torch.uint8:
            resized = _round_to_uint8(resized)
    else:
        raise ValueError(f"resize: mode must be 'bilinear' or 'nearest', got {mode!r}")
    return _output(resized, from_numpy)


def equalize_histogram(image: ImageLike) -> ImageLike:
    """Spread the grey levels so that their cumulative histogram is close to a straight line (``cv2.equalizeHist``).

    With ``cdf(v)`` the number of pixels ``<= v`` and ``cdf_min`` the count of the darkest level present, level
    ``v`` becomes ``round(255 * (cdf(v) - cdf_min) / (H * W - cdf_min))``: the darkest level maps to 0, the
    brightest to 255. A constant image is returned unchanged.

    Args:
        image (ndarray or Tensor [H, W], uint8): a grey image.

    Returns:
        ndarray or Tensor [H, W], uint8: same library.

    Raises:
        TypeError: not an ndarray or Tensor, or not uint8.
        ValueError: not 2-D.
    """
    tensor, from_numpy = _tensor(image, "equalize_histogram")
    _require_uint8(tensor, "equalize_histogram")
    if tensor.ndim != 2:
        raise ValueError(f"equalize_histogram: expected a grey image [H, W], got shape {list(tensor.shape)}")
    levels = tensor.long()
    histogram = torch.bincount(levels.flatten(), minlength=256)
    cdf = histogram.cumsum(0)
    total = levels.numel()
    cdf_min = histogram[histogram > 0][0] if total else 0
    if total == cdf_min:  # constant (or empty): nothing to spread
        return _output(tensor.clone(), from_numpy)
    lut = _round_to_uint8((cdf - cdf_min).to(torch.float64) * 255 / (total - cdf_min))  # [256]
    return _output(lut[levels], from_numpy)
