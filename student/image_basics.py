# Generated from reference/image_basics.py by `visionbench stub image_basics`: fill in the bodies, keep the signatures.
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
    raise NotImplementedError("image_basics.hwc_to_chw: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.chw_to_hwc: see specs/01_image_basics.yaml")


def to_float(image: ImageLike) -> ImageLike:
    """uint8 0..255 to float32 [0, 1]: ``value / 255``.

    Args:
        image (ndarray or Tensor [...], uint8): any shape.

    Returns:
        ndarray or Tensor [...], float32: same library and shape.

    Raises:
        TypeError: not an ndarray or Tensor, or not uint8.
    """
    raise NotImplementedError("image_basics.to_float: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.to_uint8: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.rgb_to_grayscale: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.rgb_to_hsv: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.hsv_to_rgb: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.srgb_to_linear: see specs/01_image_basics.yaml")


def linear_to_srgb(image: ImageLike) -> ImageLike:
    """Apply the sRGB transfer curve: ``12.92 l`` for ``l <= 0.0031308``, else ``1.055 * l ** (1 / 2.4) - 0.055``.

    Args:
        image (ndarray or Tensor [...], float): linear-light values in [0, 1]; any shape.

    Returns:
        ndarray or Tensor [...]: sRGB-encoded values in [0, 1]; same library and dtype.

    Raises:
        TypeError: not an ndarray or Tensor, or not a float dtype.
    """
    raise NotImplementedError("image_basics.linear_to_srgb: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.rgb_to_lab: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.rgb_to_ycbcr: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.ycbcr_to_rgb: see specs/01_image_basics.yaml")


# --- normalisation for networks ----------------------------------------------------------------------------


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
    raise NotImplementedError("image_basics.standardize: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.destandardize: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.preprocess_imagenet: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.deprocess_imagenet: see specs/01_image_basics.yaml")


# --- geometry and contrast --------------------------------------------------------------------------------


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
    raise NotImplementedError("image_basics.resize: see specs/01_image_basics.yaml")


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
    raise NotImplementedError("image_basics.equalize_histogram: see specs/01_image_basics.yaml")
