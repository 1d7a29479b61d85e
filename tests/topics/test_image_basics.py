"""Graded tests of topic 01 image_basics: one test per check of specs/01_image_basics.yaml.

Inputs are drawn by hypothesis (``harness.testing.strategies``) or built on purpose (RGB-cube corners, curve
breakpoints, every grey level, rounding ties); oracles run on float64 numpy copies of exactly what the implementation
received; tolerances, points and oracles are the spec's. A uint8 result is compared exactly with the float64 definition
rounded half to even (``_rounded``: only within 1e-3 of a .5 tie may float arithmetic pick either neighbour), so
truncation loses. Every check runs on numpy and torch inputs, contiguous and not (``layouts``), and float checks in
every dtype the spec gives a tolerance for (the ``dtype`` fixture). Every result must come back in the input's library
with the documented dtype.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from skimage import color as skcolor
from skimage import util as skutil
from skimage.color.colorconv import xyz_from_rgb

from harness.testing import Case, CheckFailure, as_numpy, assert_close, assert_raises, cases, check, in_layout, layouts, strategies

MAX_SIDE = 12  # hypothesis images are at most 12 x 12 (x 2 when batched): the quick tier stays fast
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])  # torchvision's ImageNet statistics, the values the spec names
IMAGENET_STD = np.array([0.229, 0.224, 0.225])

LIBRARIES = ["numpy", "torch"]
EACH_LIBRARY = pytest.mark.parametrize("library", LIBRARIES, ids=LIBRARIES)
# to_uint8's spec tolerance is for its uint8 result; its inputs are floats of both widths, a list of their own.
FLOAT_INPUT_DTYPES = ["float32", "float64"]

# One row of pixels built on purpose: the RGB-cube corners, mid grey, channel ties and near-greys.
CUBE_CORNERS_AND_TIES = np.array(
    [[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255],
      [128, 128, 128], [255, 128, 0], [128, 255, 0], [0, 128, 255], [255, 0, 1], [1, 0, 0], [254, 255, 255], [10, 11, 12]]],
    dtype=np.uint8,
)  # fmt: skip


# --- inputs ----------------------------------------------------------------------------------------------


def _maybe_batched(single: st.SearchStrategy[np.ndarray]) -> st.SearchStrategy[np.ndarray]:
    """[H, W, C] as drawn, or the batch [2, H, W, C] of it and its 180-degree rotation."""
    return st.tuples(single, st.booleans()).map(lambda pair: np.stack([pair[0], pair[0][::-1, ::-1]]) if pair[1] else pair[0])


RGB_UINT8 = _maybe_batched(strategies.uint8_images(max_side=MAX_SIDE))
RGB_FLOAT = _maybe_batched(
    st.one_of(strategies.float_images(max_side=MAX_SIDE), strategies.uint8_images(max_side=MAX_SIDE).map(lambda image: image / 255))
)


# --- helpers ---------------------------------------------------------------------------------------------


def _numpy_dtype(dtype: torch.dtype | str) -> np.dtype:
    """The numpy dtype of the same name (the ``dtype`` fixture holds torch dtypes)."""
    return np.dtype(str(dtype).removeprefix("torch."))


def _as_library(array: np.ndarray, library: str, layout: str) -> np.ndarray | torch.Tensor:
    """What the implementation receives: a copy (it cannot alter the oracle's input) in the case's library, laid out
    in memory as ``layout`` says."""
    return in_layout(torch.from_numpy(array.copy()) if library == "torch" else array.copy(), layout)


def _assert_returns(result: object, library: str, dtype: np.dtype | torch.dtype | str, what: str) -> None:
    """The result is of the input's library (ndarray for ndarray, Tensor for Tensor) and has the documented dtype."""
    expected_type = torch.Tensor if library == "torch" else np.ndarray
    if not isinstance(result, expected_type):
        raise CheckFailure(f"{what}: a {library} input must give a {expected_type.__name__}, got {type(result).__name__}")
    if str(result.dtype).removeprefix("torch.") != str(dtype).removeprefix("torch."):  # type: ignore[attr-defined]
        raise CheckFailure(f"{what}: expected dtype {str(dtype).removeprefix('torch.')}, got {result.dtype}")  # type: ignore[attr-defined]


def _per_pixel(oracle: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    """Apply an HxWx3 oracle to an image of any leading shape, as one row of pixels (colour maps are per pixel)."""
    row = np.ascontiguousarray(image.reshape(1, -1, 3))
    result = np.asarray(oracle(row))
    return result.reshape(image.shape[:-1] + result.shape[2:])


TIE_WINDOW = 1e-3  # grey levels: within this of a .5 tie, float arithmetic may round either way


def _rounded(exact: np.ndarray, result: object) -> np.ndarray:
    """The uint8 the spec promises for ``exact`` (float64 values of the definition): clipped to 0..255 and rounded
    half to even, exactly. Within ``TIE_WINDOW`` of a .5 tie both neighbours are right (the definition's decimal
    coefficients are not exact in binary, so float arithmetic decides those ties): there the result's own value is
    taken when it is one of the two."""
    clipped = np.clip(exact, 0, 255)
    expected = np.rint(clipped)
    near_tie = np.abs(clipped - np.floor(clipped) - 0.5) <= TIE_WINDOW
    actual = as_numpy(result).astype(np.float64) if np.shape(as_numpy(result)) == clipped.shape else expected
    either = near_tie & ((actual == np.floor(clipped)) | (actual == np.ceil(clipped)))
    return np.where(either, actual, expected).astype(np.uint8)


def _tie_pixels(exact: Callable[[np.ndarray], np.ndarray], count: int = 12) -> np.ndarray:
    """``count`` uint8 pixels [1, count, 3] whose exact definition value lands on a .5 tie in some channel (found among
    seeded random pixels), so that the tie handling of :func:`_rounded` is exercised; raises if none are found."""
    pixels = np.random.default_rng(0).integers(0, 256, (100_000, 3)).astype(np.uint8)
    values = exact(pixels.astype(np.float64)).reshape(len(pixels), -1)
    on_tie = (np.abs(values - np.floor(values) - 0.5) < 1e-9).any(axis=1)
    if on_tie.sum() < count:
        raise RuntimeError(f"only {on_tie.sum()} tie pixels found, {count} wanted")
    return pixels[on_tie][:count][None]


def _uint8_and_float(image: np.ndarray, spec_check: Any, dtype: torch.dtype, tolerance: Any) -> list[tuple[np.ndarray, Any]]:
    """For checks of uint8 and float inputs: the uint8 image with the spec's uint8 tolerance, then the same image scaled
    to [0, 1] in the float ``dtype`` under test with its tolerance. (The ``dtype`` fixture holds the spec's float dtypes
    only, so every item checks the uint8 input too.)"""
    return [(image, spec_check.tolerance_for("uint8")), ((image / 255).astype(_numpy_dtype(dtype)), tolerance)]


# --- layout and value range ------------------------------------------------------------------------------


@check("layout_conversions_permute_axes")
@EACH_LIBRARY
@layouts
@given(image=_maybe_batched(strategies.uint8_images(max_side=MAX_SIDE, channels=(1, 3, 4))))
def test_layout_conversions_permute_axes(impl, spec_check, library, layout, image):
    tolerance = spec_check.tolerance_for("uint8")  # a uint8-only check: the `dtype` fixture holds float dtypes
    channels_first = np.moveaxis(image, -1, -3)
    result = impl.hwc_to_chw(_as_library(image, library, layout))
    _assert_returns(result, library, "uint8", "hwc_to_chw")
    assert_close(result, channels_first, tolerance, what=f"hwc_to_chw of shape {image.shape}")
    result = impl.chw_to_hwc(_as_library(channels_first, library, layout))
    _assert_returns(result, library, "uint8", "chw_to_hwc")
    assert_close(result, image, tolerance, what=f"chw_to_hwc of shape {channels_first.shape}")


_LEVELS = np.arange(256, dtype=np.uint8).reshape(16, 16)
ALL_LEVELS_HWC = np.stack([_LEVELS, _LEVELS[::-1], np.roll(_LEVELS, 85)], axis=-1)  # every level in every channel


@check("to_float_matches_skimage")
@EACH_LIBRARY
@layouts
@cases(
    Case("hwc", image=ALL_LEVELS_HWC),
    Case("nhwc", image=np.stack([ALL_LEVELS_HWC, ALL_LEVELS_HWC[::-1]])),
)
def test_to_float_matches_skimage(impl, library, layout, case, dtype, tolerance):
    result = impl.to_float(_as_library(case.image, library, layout))
    _assert_returns(result, library, dtype, "to_float")  # the spec's only dtype: float32
    assert_close(result, skutil.img_as_float32(case.image), tolerance, what=f"to_float [{case.name}]")


_K = np.arange(256) / 255
_TIES = (np.arange(-1, 256) + 0.5) / 255  # value * 255 = k + 0.5 exactly, in float32 and float64 alike (checked below)
TO_UINT8_BOUNDARY = np.concatenate([_K, _K + 0.3 / 255, _K - 0.3 / 255, _TIES, [-1.0, -1e-3, 1.001, 2.0]])  # levels, near, ties, out


def _off_tie_values(image: np.ndarray) -> np.ndarray:
    """Values over [-0.25, 1.25] at least 0.05 grey levels away from a rounding tie (k + 0.5) / 255, so that
    rounding in float32 or float64 agrees: level -64..319 plus an offset within +-0.45 of a level."""
    levels = np.rint(image * 383) - 64
    offsets = (np.roll(image, 1) - 0.5) * 0.9
    return (levels + offsets) / 255


@check("to_uint8_rounds_and_clips")
@EACH_LIBRARY
@layouts
@pytest.mark.parametrize("input_dtype", FLOAT_INPUT_DTYPES, ids=FLOAT_INPUT_DTYPES)
@given(values=strategies.float_images(max_side=MAX_SIDE).map(_off_tie_values))
@example(values=TO_UINT8_BOUNDARY)
def test_to_uint8_rounds_and_clips(impl, spec_check, library, layout, input_dtype, values):
    source = values.astype(input_dtype)
    if values is TO_UINT8_BOUNDARY:  # the built ties must be ties in this dtype: value * 255 == k + 0.5 exactly
        scaled = source * source.dtype.type(255)
        ties = int(np.sum((scaled - np.floor(scaled) == 0.5) & (scaled > 0) & (scaled < 255)))
        if ties != 255:
            raise CheckFailure(f"test data: {ties} of the 255 built rounding ties are exact in {input_dtype}")
    result = impl.to_uint8(_as_library(source, library, layout))
    _assert_returns(result, library, "uint8", "to_uint8")
    expected = skutil.img_as_ubyte(np.clip(source, 0, 1))  # rounds value * 255, computed in the input dtype, half to even
    assert_close(result, expected, spec_check.tolerance_for("uint8"), what=f"to_uint8 of {input_dtype}")


# --- colour spaces ---------------------------------------------------------------------------------------


BT601 = np.array([0.299, 0.587, 0.114])
GRAYSCALE_TIES = _tie_pixels(lambda pixels: pixels @ BT601)  # 0.299 R + 0.587 G + 0.114 B = k + 0.5 exactly
SINGLE_PIXEL, PIXEL_ROW = CUBE_CORNERS_AND_TIES[0, 11], CUBE_CORNERS_AND_TIES[0]  # [3] and [16, 3]: "[..., 3]" in full


@check("grayscale_matches_opencv")
@EACH_LIBRARY
@layouts
@given(image=RGB_UINT8)  # uint8 and each float dtype of the spec
@example(image=CUBE_CORNERS_AND_TIES)
@example(image=GRAYSCALE_TIES)
@example(image=SINGLE_PIXEL)
@example(image=PIXEL_ROW)
def test_grayscale_matches_opencv(impl, spec_check, library, layout, dtype, tolerance, image):
    for source, allowed in _uint8_and_float(image, spec_check, dtype, tolerance):
        result = impl.rgb_to_grayscale(_as_library(source, library, layout))
        _assert_returns(result, library, source.dtype, "rgb_to_grayscale")
        luma = source.astype(np.float64) @ BT601  # the definition, in float64
        if source.dtype == np.uint8:
            expected = _rounded(luma, result)
        elif source.dtype == np.float32:  # OpenCV has float32 colour conversions only
            expected = _per_pixel(lambda row: cv2.cvtColor(row, cv2.COLOR_RGB2GRAY)[..., None], source)[..., 0]
        else:
            expected = luma
        assert_close(result, expected, allowed, what=f"rgb_to_grayscale of {source.dtype} {source.shape}")


# Reds with B a hair above G: (G - B) / delta mod 6 rounds up to 6 exactly (H = 360, which must come back as 0, not 1).
HUE_ROUNDING_TO_360 = np.array([[[1.0, 0.0, 1e-8], [1.0, 0.0, 1e-17], [0.8, 0.3, 0.3 + 1e-9]]])


@check("rgb_to_hsv_matches_colorsys")
@EACH_LIBRARY
@layouts
@given(image=RGB_FLOAT)
@example(image=CUBE_CORNERS_AND_TIES / 255)
@example(image=SINGLE_PIXEL / 255)
@example(image=HUE_ROUNDING_TO_360)
def test_rgb_to_hsv_matches_colorsys(impl, library, layout, dtype, tolerance, image):
    source = image.astype(_numpy_dtype(dtype))
    if image is HUE_ROUNDING_TO_360:  # the rounding this example is for must happen in the dtype under test
        red_sector = torch.from_numpy((source[..., 1] - source[..., 2]) / (source.max(-1) - source.min(-1))) % 6
        if not (red_sector == 6).any():
            raise CheckFailure(f"test data: (G - B) / delta mod 6 = {red_sector.tolist()} never rounds to 6 in {dtype}")
    result = impl.rgb_to_hsv(_as_library(source, library, layout))
    _assert_returns(result, library, dtype, "rgb_to_hsv")
    pixels = source.astype(np.float64).reshape(-1, 3)
    expected = np.array([colorsys.rgb_to_hsv(*pixel) for pixel in pixels]).reshape(source.shape) * (360, 1, 1)
    actual = as_numpy(result).astype(np.float64)
    if actual.shape != expected.shape:
        raise CheckFailure(f"rgb_to_hsv: shape {actual.shape}, expected {expected.shape}")
    hue = actual[..., 0]
    if not ((hue >= 0) & (hue < 360)).all():
        raise CheckFailure(f"rgb_to_hsv: hue must be degrees in [0, 360), got values in [{hue.min():.6g}, {hue.max():.6g}]")
    actual[..., 0] = expected[..., 0] + (hue - expected[..., 0] + 180) % 360 - 180  # compare hues on the circle
    assert_close(actual, expected, tolerance, what="rgb_to_hsv (H, S, V)")


_SECTORS = np.arange(0, 360, 60.0)
_WRAPPED_HUES = [-720.0, -360.0, -300.0, -60.0, -1e-3, 360.0, 420.0, 719.5, 1020.0]  # outside [0, 360): they wrap
HSV_BOUNDARY = np.stack(
    np.meshgrid(np.concatenate([_SECTORS, [359.999], _WRAPPED_HUES]), [0.0, 0.5, 1.0], [0.0, 0.7, 1.0], indexing="ij"), axis=-1
)
HUE_LOW, HUE_SPAN = -720.0, 1800.0  # random hues over [-720, 1080): two turns below 0, two above 360


@check("hsv_to_rgb_matches_colorsys")
@EACH_LIBRARY
@layouts
@given(image=strategies.float_images(max_side=MAX_SIDE).map(lambda image: image * (HUE_SPAN, 1, 1) + (HUE_LOW, 0, 0)))
@example(image=HSV_BOUNDARY)
@example(image=HSV_BOUNDARY[3, 1, 1])  # a single (H, S, V) triple
def test_hsv_to_rgb_matches_colorsys(impl, library, layout, dtype, tolerance, image):
    source = image.astype(_numpy_dtype(dtype))
    result = impl.hsv_to_rgb(_as_library(source, library, layout))
    _assert_returns(result, library, dtype, "hsv_to_rgb")
    pixels = source.astype(np.float64).reshape(-1, 3)
    # colorsys wants a hue in [0, 1); its int() truncation would mishandle negative hues, so wrap first (exact in float64)
    expected = np.array([colorsys.hsv_to_rgb((h % 360) / 360, s, v) for h, s, v in pixels]).reshape(source.shape).astype(source.dtype)
    assert_close(result, expected, tolerance, what=f"hsv_to_rgb (hues in [{pixels[:, 0].min():g}, {pixels[:, 0].max():g}])")


_BREAKPOINTS = [0.0, 0.04045, 0.04045 - 1e-6, 0.04045 + 1e-6, 0.0031308, 0.0031308 - 1e-7, 0.0031308 + 1e-7, 1e-6, 0.5, 0.99, 1.0, 0.2]
SRGB_BREAKPOINTS = np.array(_BREAKPOINTS).reshape(1, 4, 3)
LINEAR_FROM_XYZ = np.linalg.inv(xyz_from_rgb)


def _srgb_to_linear_oracle(values: np.ndarray) -> np.ndarray:
    return skcolor.rgb2xyz(values) @ LINEAR_FROM_XYZ.T  # skimage linearises, then applies its matrix: undo the matrix


def _linear_to_srgb_oracle(values: np.ndarray) -> np.ndarray:
    return skcolor.xyz2rgb(values @ xyz_from_rgb.T)  # skimage applies the inverse matrix, then the curve


@check("srgb_transfer_matches_skimage")
@cases(  # the case's name is the interface under test
    Case("srgb_to_linear", oracle=_srgb_to_linear_oracle),
    Case("linear_to_srgb", oracle=_linear_to_srgb_oracle),
)
@EACH_LIBRARY
@layouts
@given(image=strategies.float_images(max_side=MAX_SIDE))
@example(image=SRGB_BREAKPOINTS)
def test_srgb_transfer_matches_skimage(impl, case, library, layout, dtype, tolerance, image):
    source = image.astype(_numpy_dtype(dtype))
    result = getattr(impl, case.name)(_as_library(source, library, layout))
    _assert_returns(result, library, dtype, case.name)
    expected = case.oracle(source.astype(np.float64)).astype(source.dtype)
    assert_close(result, expected, tolerance, what=case.name)


@check("rgb_to_lab_matches_skimage")
@EACH_LIBRARY
@layouts
@given(image=RGB_FLOAT)
@example(image=CUBE_CORNERS_AND_TIES / 255)
@example(image=SINGLE_PIXEL / 255)
def test_rgb_to_lab_matches_skimage(impl, library, layout, dtype, tolerance, image):
    source = image.astype(_numpy_dtype(dtype))
    result = impl.rgb_to_lab(_as_library(source, library, layout))
    _assert_returns(result, library, dtype, "rgb_to_lab")
    expected = skcolor.rgb2lab(source.astype(np.float64), illuminant="D65", observer="2").astype(source.dtype)
    assert_close(result, expected, tolerance, what="rgb_to_lab (L, a, b)")


CHROMA_OFFSET = np.array([0.0, 0.5, 0.5])  # float YCbCr = YPbPr + this
YCBCR_FROM_RGB = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])  # JFIF
RGB_FROM_YCBCR = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])


def _ycbcr_definition(rgb: np.ndarray) -> np.ndarray:
    """JFIF full-range YCbCr of uint8 RGB values, unrounded float64 (offset 128)."""
    return rgb @ YCBCR_FROM_RGB.T + (0, 128, 128)


def _rgb_definition(ycbcr: np.ndarray) -> np.ndarray:
    """RGB of uint8 YCbCr values with the JFIF inverse coefficients, unrounded and unclipped float64."""
    return (ycbcr - (0, 128, 128)) @ RGB_FROM_YCBCR.T


YCBCR_TIES = _tie_pixels(_ycbcr_definition)  # some channel lands on k + 0.5 exactly
RGB_TIES = _tie_pixels(_rgb_definition)


@check("rgb_to_ycbcr_matches_pil")
@EACH_LIBRARY
@layouts
@given(image=RGB_UINT8)
@example(image=CUBE_CORNERS_AND_TIES)
@example(image=YCBCR_TIES)
@example(image=SINGLE_PIXEL)
def test_rgb_to_ycbcr_matches_pil(impl, spec_check, library, layout, dtype, tolerance, image):
    for source, allowed in _uint8_and_float(image, spec_check, dtype, tolerance):
        result = impl.rgb_to_ycbcr(_as_library(source, library, layout))
        _assert_returns(result, library, source.dtype, "rgb_to_ycbcr")
        if source.dtype == np.uint8:
            expected = _rounded(_ycbcr_definition(source.astype(np.float64)), result)
        else:
            expected = (skcolor.rgb2ypbpr(source.astype(np.float64)) + CHROMA_OFFSET).astype(source.dtype)
        assert_close(result, expected, allowed, what=f"rgb_to_ycbcr (Y, Cb, Cr) of {source.dtype}")


@check("ycbcr_to_rgb_matches_pil")
@EACH_LIBRARY
@layouts
@given(image=RGB_UINT8)  # read as YCbCr triples: many lie outside the RGB cube and clip
@example(image=CUBE_CORNERS_AND_TIES)
@example(image=RGB_TIES)
def test_ycbcr_to_rgb_matches_pil(impl, spec_check, library, layout, dtype, tolerance, image):
    for source, allowed in _uint8_and_float(image, spec_check, dtype, tolerance):
        result = impl.ycbcr_to_rgb(_as_library(source, library, layout))
        _assert_returns(result, library, source.dtype, "ycbcr_to_rgb")
        if source.dtype == np.uint8:
            expected = _rounded(_rgb_definition(source.astype(np.float64)), result)
        else:
            expected = skcolor.ypbpr2rgb(source.astype(np.float64) - CHROMA_OFFSET).astype(source.dtype)
        assert_close(result, expected, allowed, what=f"ycbcr_to_rgb (R, G, B) of {source.dtype}")


# --- normalisation for networks ----------------------------------------------------------------------------

STATISTICS_CASES = cases(  # every channel_axis the spec names, both libraries, every kind of mean / std it accepts
    Case("numpy-hwc-lists", library="numpy", axes="hwc", channel_axis=-1, statistics="list"),
    Case("torch-nchw-tensors", library="torch", axes="nchw", channel_axis=1, statistics="tensor"),
    Case("numpy-chw-arrays", library="numpy", axes="chw", channel_axis=0, statistics="ndarray"),
    Case("torch-nchw-axis-minus-3-tuples", library="torch", axes="nchw", channel_axis=-3, statistics="tuple"),
)
_STATISTICS_AS = {"list": list, "tuple": tuple, "ndarray": np.asarray, "tensor": torch.tensor}


def _statistics_case(image: np.ndarray, seed: int, case: Case, dtype: torch.dtype):
    """(image [H, W, C] moved to the case's axes in ``dtype``, mean and std as the implementation gets them (float64
    values), mean and std shaped to broadcast along the channel axis)."""
    generator = np.random.default_rng(seed)
    channels = image.shape[-1]
    mean, std = generator.uniform(-1, 1, channels), generator.uniform(0.1, 2, channels)
    batch = np.stack([image, image[::-1, ::-1]]) if case.axes.startswith("n") else image  # [2, H, W, C] or [H, W, C]
    placed = batch if case.axes.endswith("c") else np.moveaxis(batch, -1, -3)  # channels last or at -3
    along_channels = [1] * placed.ndim
    along_channels[case.channel_axis] = channels
    convert = _STATISTICS_AS[case.statistics]
    return placed.astype(_numpy_dtype(dtype)), convert(mean), convert(std), mean.reshape(along_channels), std.reshape(along_channels)


@check("standardize_matches_definition")
@STATISTICS_CASES
@layouts
@given(image=strategies.float_images(max_side=8, channels=(1, 2, 3, 4)), seed=strategies.seeds)
def test_standardize_matches_definition(impl, case, layout, dtype, tolerance, image, seed):
    source, mean, std, mean_along, std_along = _statistics_case(image, seed, case, dtype)
    result = impl.standardize(_as_library(source, case.library, layout), mean, std, channel_axis=case.channel_axis)
    _assert_returns(result, case.library, dtype, "standardize")
    expected = ((source.astype(np.float64) - mean_along) / std_along).astype(source.dtype)
    assert_close(result, expected, tolerance, what=f"standardize [{case.name}] of shape {source.shape}, channel_axis={case.channel_axis}")


@check("destandardize_inverts_standardize")
@STATISTICS_CASES
@layouts
@given(image=strategies.float_images(max_side=8, channels=(1, 2, 3, 4)), seed=strategies.seeds)
def test_destandardize_inverts_standardize(impl, case, layout, dtype, tolerance, image, seed):
    source, mean, std, mean_along, std_along = _statistics_case(image, seed, case, dtype)
    standardized = (source - mean_along.astype(source.dtype)) / std_along.astype(source.dtype)  # in the dtype, as torchvision does
    result = impl.destandardize(_as_library(standardized, case.library, layout), mean, std, channel_axis=case.channel_axis)
    _assert_returns(result, case.library, dtype, "destandardize")
    what = f"destandardize [{case.name}] of shape {source.shape}, channel_axis={case.channel_axis}"
    assert_close(result, source, tolerance, what=what)


def _imagenet_definition(image: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize(ImageNet) in float64: [..., H, W, 3] uint8 -> [..., 3, H, W] float32."""
    channels_first = np.moveaxis(image, -1, -3) / 255
    return ((channels_first - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(np.float32)


@check("preprocess_imagenet_matches_definition")
@EACH_LIBRARY
@layouts
@given(image=RGB_UINT8)
def test_preprocess_imagenet_matches_definition(impl, library, layout, dtype, tolerance, image):
    result = impl.preprocess_imagenet(_as_library(image, library, layout))
    _assert_returns(result, library, dtype, "preprocess_imagenet")  # the spec's only dtype: float32
    assert_close(result, _imagenet_definition(image), tolerance, what="preprocess_imagenet")


@check("imagenet_round_trip_within_one_level")
@EACH_LIBRARY
@layouts
@given(image=RGB_UINT8)
@example(image=CUBE_CORNERS_AND_TIES)
def test_imagenet_round_trip_within_one_level(impl, spec_check, library, layout, image):
    tolerance = spec_check.tolerance_for("uint8")  # a uint8-only check: the `dtype` fixture holds float dtypes
    network_input = impl.preprocess_imagenet(_as_library(image, library, layout))
    _assert_returns(network_input, library, "float32", "preprocess_imagenet")
    result = impl.deprocess_imagenet(in_layout(network_input, layout))
    _assert_returns(result, library, "uint8", "deprocess_imagenet(preprocess_imagenet(x))")
    assert_close(result, image, tolerance, what="deprocess_imagenet(preprocess_imagenet(x))")
    result = impl.deprocess_imagenet(_as_library(_imagenet_definition(image), library, layout))
    _assert_returns(result, library, "uint8", "deprocess_imagenet")
    assert_close(result, image, tolerance, what="deprocess_imagenet of the float64 preprocessing")


def _network_output(image: np.ndarray) -> np.ndarray:
    """A float image [..., H, W, 3] in [0, 1] as a network might emit it: spread over [-0.2, 1.2] (so both ends clip),
    standardized with the ImageNet statistics, channels first [..., 3, H, W] (float64)."""
    return np.moveaxis((1.4 * image.astype(np.float64) - 0.2 - IMAGENET_MEAN) / IMAGENET_STD, -1, -3)


@check("deprocess_imagenet_matches_definition")
@EACH_LIBRARY
@layouts
@pytest.mark.parametrize("input_dtype", FLOAT_INPUT_DTYPES, ids=FLOAT_INPUT_DTYPES)
@given(image=_maybe_batched(strategies.float_images(max_side=MAX_SIDE)))
def test_deprocess_imagenet_matches_definition(impl, spec_check, library, layout, input_dtype, image):
    source = _network_output(image).astype(input_dtype)
    result = impl.deprocess_imagenet(_as_library(source, library, layout))
    _assert_returns(result, library, "uint8", "deprocess_imagenet")
    levels = np.moveaxis(source.astype(np.float64) * IMAGENET_STD[:, None, None] + IMAGENET_MEAN[:, None, None], -3, -1) * 255
    if not ((levels < 0).any() and (levels > 255).any()):  # the drawn image holds a 0 and a 1: -0.2 and 1.2 here
        raise CheckFailure(f"test data: values in [{levels.min():.4g}, {levels.max():.4g}]; some must clip at each end")
    tolerance = spec_check.tolerance_for("uint8")  # a uint8-only check: the `dtype` fixture holds float dtypes
    assert_close(result, _rounded(levels, result), tolerance, what=f"deprocess_imagenet of {input_dtype} {source.shape}")


# --- geometry and contrast --------------------------------------------------------------------------------

SIDES_IN, SIDES_OUT = st.integers(1, 16), st.integers(1, 24)


def _index_image(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Every pixel a different value (modulo 251 for uint8), so a wrong source pixel cannot go unnoticed."""
    return (np.arange(int(np.prod(shape))).reshape(shape) % (251 if dtype == np.uint8 else 2**24)).astype(dtype)


@check("resize_nearest_picks_centre_pixel")
@EACH_LIBRARY
@layouts
@given(
    shape=st.one_of(
        st.tuples(SIDES_IN, SIDES_IN),
        st.tuples(SIDES_IN, SIDES_IN, st.sampled_from([1, 3])),
        st.tuples(st.just(2), SIDES_IN, SIDES_IN, st.just(3)),
    ),
    size=st.tuples(SIDES_OUT, SIDES_OUT),
)
@example(shape=(8, 6, 3), size=(4, 3))  # halving: every centre lies on a pixel boundary
@example(shape=(14, 5), size=(23, 5))  # a tie float arithmetic breaks the other way
def test_resize_nearest_picks_centre_pixel(impl, spec_check, library, layout, dtype, tolerance, shape, size):
    # uint8 and the spec's float dtypes: every item also checks a uint8 image (the `dtype` fixture holds floats only)
    for image_dtype, allowed in ((np.dtype(np.uint8), spec_check.tolerance_for("uint8")), (_numpy_dtype(dtype), tolerance)):
        image = _index_image(shape, image_dtype)
        result = impl.resize(_as_library(image, library, layout), size, mode="nearest")
        _assert_returns(result, library, image_dtype, "resize(nearest)")
        height_axis = 1 if image.ndim == 4 else 0
        rows = (2 * np.arange(size[0]) + 1) * image.shape[height_axis] // (2 * size[0])
        columns = (2 * np.arange(size[1]) + 1) * image.shape[height_axis + 1] // (2 * size[1])
        expected = np.take(np.take(image, rows, axis=height_axis), columns, axis=height_axis + 1)
        assert_close(result, expected, allowed, what=f"resize(nearest) {image.shape[:3]} -> {size}, {image_dtype}")


def _torch_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """F.interpolate(bilinear, align_corners=False) in float64 of an [H, W], [H, W, C] or [N, H, W, C] image."""
    nhwc = image[None, ..., None] if image.ndim == 2 else image[None] if image.ndim == 3 else image
    nchw = torch.from_numpy(np.moveaxis(nhwc, -1, 1).astype(np.float64))
    resized = np.moveaxis(F.interpolate(nchw, size=size, mode="bilinear", align_corners=False, antialias=False).numpy(), 1, -1)
    return resized[0, ..., 0] if image.ndim == 2 else resized[0] if image.ndim == 3 else resized


BILINEAR_IMAGES = st.one_of(  # [H, W], [H, W, C] and [N, H, W, C]
    strategies.uint8_images(max_side=MAX_SIDE, channels=(1,)).map(lambda image: image[..., 0]),
    _maybe_batched(strategies.uint8_images(max_side=MAX_SIDE, channels=(1, 3))),
)


@check("resize_bilinear_matches_opencv")
@EACH_LIBRARY
@layouts
@given(image=BILINEAR_IMAGES, size=st.tuples(SIDES_OUT, SIDES_OUT))
@example(image=np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5, size=(2, 2))  # halving
@example(image=np.array([[[0], [255]], [[255], [0]]], dtype=np.uint8), size=(5, 7))  # upsampling: edge clamp
@example(image=np.array([[0, 1], [2, 3]], dtype=np.uint8) * 85, size=(3, 6))  # [H, W] grey; midpoints x.5 (up to float rounding)
def test_resize_bilinear_matches_opencv(impl, spec_check, library, layout, dtype, tolerance, image, size):
    for source, allowed in _uint8_and_float(image, spec_check, dtype, tolerance):
        result = impl.resize(_as_library(source, library, layout), size, mode="bilinear")
        _assert_returns(result, library, source.dtype, "resize(bilinear)")
        interpolated = _torch_bilinear(source, size)  # float64
        expected = _rounded(interpolated, result) if source.dtype == np.uint8 else interpolated.astype(source.dtype)
        assert_close(result, expected, allowed, what=f"resize(bilinear) {source.shape} -> {size}, {source.dtype}")


GREY_IMAGES = st.one_of(
    strategies.uint8_images(max_side=MAX_SIDE, channels=(1,)),
    strategies.float_images(max_side=MAX_SIDE, channels=(1,)).map(lambda image: (100 + 20 * image).astype(np.uint8)),  # low contrast
).map(lambda image: image[..., 0])


def _equalized_levels(image: np.ndarray) -> np.ndarray:
    """The spec's lookup, unrounded: 255 (cdf(v) - cdf_min) / (H W - cdf_min) per pixel in float64 (the product with
    255 is an exact integer, so an exact .5 tie stays exact); a constant image maps to itself."""
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf, cdf_min = np.cumsum(histogram), histogram[histogram > 0][0]
    if cdf_min == image.size:
        return image.astype(np.float64)
    return ((cdf - cdf_min) * 255 / (image.size - cdf_min))[image]


# cdf - cdf_min = 0, 1, 3, 5, 6 over 6: levels 0, 42.5, 127.5, 212.5, 255 (three exact ties), no level 0 present
EQUALIZE_TIES = np.array([[10, 20, 30, 30, 40, 40, 50]], dtype=np.uint8)


@check("equalize_histogram_matches_opencv")
@EACH_LIBRARY
@layouts
@given(image=GREY_IMAGES)
@example(image=np.full((3, 5), 77, dtype=np.uint8))  # constant: unchanged
@example(image=np.array([[0, 0, 0, 200], [3, 3, 255, 255]], dtype=np.uint8))
@example(image=EQUALIZE_TIES)
def test_equalize_histogram_matches_opencv(impl, spec_check, library, layout, image):
    levels = _equalized_levels(image)
    if image is EQUALIZE_TIES and len(set(levels[levels - np.floor(levels) == 0.5].tolist())) != 3:
        raise CheckFailure(f"test data: the tie example's lookup is {sorted(set(levels.ravel()))}, without its three exact ties")
    result = impl.equalize_histogram(_as_library(image, library, layout))
    _assert_returns(result, library, "uint8", "equalize_histogram")
    tolerance = spec_check.tolerance_for("uint8")  # a uint8-only check: the `dtype` fixture holds float dtypes
    assert_close(result, _rounded(levels, result), tolerance, what=f"equalize_histogram of {image.shape}")


# --- input validation ---------------------------------------------------------------------------------------


@check("invalid_inputs_raise_clear_errors")
@cases(
    Case("grayscale-of-a-list", expected=TypeError, call=lambda impl: impl.rgb_to_grayscale([[[0, 0, 0]]])),
    Case("hsv-of-uint8", expected=TypeError, call=lambda impl: impl.rgb_to_hsv(np.zeros((2, 2, 3), np.uint8))),
    Case("to-float-of-float", expected=TypeError, call=lambda impl: impl.to_float(np.zeros((2, 2, 3), np.float32))),
    Case("to-uint8-of-uint8", expected=TypeError, call=lambda impl: impl.to_uint8(torch.zeros(2, 2, 3, dtype=torch.uint8))),
    Case("grayscale-of-rgba", expected=ValueError, call=lambda impl: impl.rgb_to_grayscale(np.zeros((2, 2, 4), np.uint8))),
    Case("hwc-to-chw-of-2d", expected=ValueError, call=lambda impl: impl.hwc_to_chw(np.zeros((2, 2)))),
    Case(
        "standardize-mean-length",
        expected=ValueError,
        call=lambda impl: impl.standardize(np.zeros((2, 2, 3)), [0.5, 0.5], [1.0, 1.0, 1.0]),
    ),
    Case(
        "standardize-zero-std",
        expected=ValueError,
        call=lambda impl: impl.standardize(torch.zeros(1, 3, 2, 2), [0.0] * 3, [1, 0, 1.0], channel_axis=1),
    ),
    Case("resize-unknown-mode", expected=ValueError, call=lambda impl: impl.resize(np.zeros((4, 4, 3), np.uint8), (2, 2), mode="bicubic")),
    Case("resize-zero-size", expected=ValueError, call=lambda impl: impl.resize(np.zeros((4, 4, 3), np.uint8), (0, 2))),
    Case("equalize-of-1d", expected=ValueError, call=lambda impl: impl.equalize_histogram(np.arange(6, dtype=np.uint8))),
    Case("equalize-colour", expected=ValueError, call=lambda impl: impl.equalize_histogram(np.zeros((4, 4, 3), np.uint8))),
    Case("chw-to-hwc-of-5d", expected=ValueError, call=lambda impl: impl.chw_to_hwc(torch.zeros(1, 1, 3, 2, 2))),
    Case("hsv-to-rgb-of-rgba", expected=ValueError, call=lambda impl: impl.hsv_to_rgb(np.zeros((2, 2, 4)))),
    Case("ycbcr-of-int64", expected=TypeError, call=lambda impl: impl.rgb_to_ycbcr(torch.zeros(2, 2, 3, dtype=torch.int64))),
    Case(
        "standardize-negative-std",
        expected=ValueError,
        call=lambda impl: impl.standardize(np.zeros((2, 2, 3)), [0.0] * 3, np.array([1.0, -1.0, 1.0])),
    ),
    Case(
        "standardize-of-uint8", expected=TypeError, call=lambda impl: impl.standardize(np.zeros((2, 2, 3), np.uint8), [0.0] * 3, [1.0] * 3)
    ),
    Case("preprocess-of-float", expected=TypeError, call=lambda impl: impl.preprocess_imagenet(np.zeros((2, 2, 3), np.float32))),
    Case("deprocess-of-hwc", expected=ValueError, call=lambda impl: impl.deprocess_imagenet(torch.zeros(2, 2, 3))),
    Case("resize-of-5d", expected=ValueError, call=lambda impl: impl.resize(np.zeros((1, 2, 4, 4, 3), np.uint8), (2, 2))),
    Case("resize-of-empty", expected=ValueError, call=lambda impl: impl.resize(torch.zeros(0, 4, 3), (2, 2), mode="nearest")),
    Case("resize-size-of-three", expected=ValueError, call=lambda impl: impl.resize(np.zeros((4, 4), np.uint8), (2, 2, 2))),
)
def test_invalid_inputs_raise_clear_errors(impl, case):
    assert_raises(case.expected, lambda: case.call(impl), case.name)
