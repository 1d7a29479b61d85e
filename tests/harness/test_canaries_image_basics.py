"""Canaries for topic 01, image_basics: wrong implementations that must lose the checks they should.

Each test grades the reference with some functions replaced (``tests/harness/canaries.py:grade_canary``, one child
pytest process per canary) and asserts the outcome of every check it grades, including the ones the canary must
still pass: a canary that breaks one function must not cost the others their points.
"""

from __future__ import annotations

from canaries import REPLACE, expect, grade_canary

from harness.spec import load_specs

TOPIC = "image_basics"
SPEC = load_specs()[TOPIC]
ALL_CHECKS = list(SPEC.checks)
ALL_INTERFACES = list(SPEC.interfaces)
VALIDATION = "invalid_inputs_raise_clear_errors"


# Image canaries also need to know a uint8 result from a float one.
UINT8 = """
def _is_uint8(value):
    return str(value.dtype).removeprefix("torch.") == "uint8"
"""


def test_zeros_and_a_constant_lose_every_value_check(tmp_path):
    # Right shape, dtype and library, wrong values: every other interface returns zeros, the rest mid grey.
    overrides = REPLACE + UINT8 + f"""
_replace({ALL_INTERFACES[0::2]!r}, lambda result, *args: result * 0)
_replace({ALL_INTERFACES[1::2]!r}, lambda result, *args: result * 0 + (128 if _is_uint8(result) else 0.5))
"""
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    assert outcomes == expect("failed", ALL_CHECKS, **{VALIDATION: "passed"})


def test_input_handed_back_loses_every_value_check(tmp_path):
    others = [name for name in ALL_INTERFACES if name != "rgb_to_grayscale"]
    overrides = REPLACE + UINT8 + f"""
_replace({others!r}, lambda result, image, *rest: image)
_replace(["rgb_to_grayscale"], lambda result, image: image[..., 0])  # the red channel: right shape and dtype
"""
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # An identity preprocess_imagenet returns uint8 [H, W, 3]: the round trip checks its type before deprocessing.
    assert outcomes == expect("failed", ALL_CHECKS, **{VALIDATION: "passed"})


def test_small_noise_loses_every_value_check(tmp_path):
    overrides = REPLACE + UINT8 + f"""
def _noisy(result, *args):
    array = result.numpy() if isinstance(result, torch.Tensor) else result
    generator = np.random.default_rng(0)
    if array.dtype == np.uint8:  # two grey levels, towards mid grey, on about half of the values
        steps = np.where(array >= 128, -2, 2) * (generator.random(array.shape) < 0.5)
        noisy = (array.astype(np.int16) + steps).astype(np.uint8)
    else:
        noisy = (array + 1e-3 * generator.standard_normal(array.shape)).astype(array.dtype)
    return torch.from_numpy(noisy) if isinstance(result, torch.Tensor) else noisy


_replace({ALL_INTERFACES!r}, _noisy)
"""
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    assert outcomes == expect("failed", ALL_CHECKS, **{VALIDATION: "passed"})


def test_classic_colour_and_range_bugs(tmp_path):
    overrides = """
_reference_rgb_to_hsv, _reference_rgb_to_ycbcr = rgb_to_hsv, rgb_to_ycbcr


def rgb_to_grayscale(image):  # equal weights: the mean of R, G and B
    tensor, from_numpy = _tensor(image, "rgb_to_grayscale")
    gray = _working_float(tensor).mean(-1)
    return _output(_round_to_uint8(gray) if tensor.dtype == torch.uint8 else gray, from_numpy)


def rgb_to_hsv(image):  # hue as a fraction of a turn, [0, 1), as colorsys and skimage return it
    hsv = _reference_rgb_to_hsv(image)
    hsv[..., 0] /= 360
    return hsv


def srgb_to_linear(image):  # a pure 2.2 gamma instead of the piecewise IEC 61966-2-1 curve
    tensor, from_numpy = _tensor(image, "srgb_to_linear")
    return _output(tensor.clamp(min=0) ** 2.2, from_numpy)


def linear_to_srgb(image):
    tensor, from_numpy = _tensor(image, "linear_to_srgb")
    return _output(tensor.clamp(min=0) ** (1 / 2.2), from_numpy)


def to_uint8(image):  # truncates instead of rounding
    tensor, from_numpy = _tensor(image, "to_uint8")
    return _output((tensor * 255).clamp(0, 255).to(torch.uint8), from_numpy)


def rgb_to_ycbcr(image):  # studio range (Y in 16..235, chroma in 16..240), skimage's rgb2ycbcr, not JPEG's
    tensor, from_numpy = _tensor(image, "rgb_to_ycbcr")
    scale = 255.0 if tensor.dtype == torch.uint8 else 1.0
    y, cb, cr = _reference_rgb_to_ycbcr(_working_float(tensor) / scale).unbind(-1)  # full range, in [0, 1]
    studio = torch.stack([16 + 219 * y, 128 + 224 * (cb - 0.5), 128 + 224 * (cr - 0.5)], dim=-1) * (scale / 255)
    return _output(_round_to_uint8(studio) if tensor.dtype == torch.uint8 else studio, from_numpy)


def preprocess_imagenet(image):  # forgets to scale 0..255 to [0, 1] before normalising
    tensor, from_numpy = _tensor(image, "preprocess_imagenet")
    channels_first = hwc_to_chw(tensor.to(torch.float32))
    return _output(standardize(channels_first, IMAGENET_MEAN, IMAGENET_STD, channel_axis=-3), from_numpy)


def equalize_histogram(image):  # cdf * 255 / N without subtracting cdf_min: the darkest level does not map to 0
    tensor, from_numpy = _tensor(image, "equalize_histogram")
    levels = tensor.long()
    cdf = torch.bincount(levels.flatten(), minlength=256).cumsum(0)
    return _output(_round_to_uint8(cdf.double() * 255 / levels.numel())[levels], from_numpy)
"""
    checks = [
        "grayscale_matches_opencv", "rgb_to_hsv_matches_colorsys", "srgb_transfer_matches_skimage", "rgb_to_lab_matches_skimage",
        "to_uint8_rounds_and_clips", "rgb_to_ycbcr_matches_pil", "preprocess_imagenet_matches_definition",
        "imagenet_round_trip_within_one_level", "equalize_histogram_matches_opencv",
        "hsv_to_rgb_matches_colorsys", "ycbcr_to_rgb_matches_pil", "to_float_matches_skimage", "layout_conversions_permute_axes",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    # rgb_to_lab linearises through the module's srgb_to_linear, so the 2.2 gamma costs it too. The inverse functions
    # and the untouched conversions keep their points.
    untouched = ["hsv_to_rgb_matches_colorsys", "ycbcr_to_rgb_matches_pil", "to_float_matches_skimage", "layout_conversions_permute_axes"]
    assert outcomes == expect("failed", checks, **dict.fromkeys(untouched, "passed"))


def test_corner_aligned_resize_and_channel_order_bugs(tmp_path):
    overrides = """
_reference_resize, _reference_rgb_to_grayscale, _reference_rgb_to_hsv = resize, rgb_to_grayscale, rgb_to_hsv
_reference_ycbcr_to_rgb = ycbcr_to_rgb


def resize(image, size, mode="bilinear"):
    # nearest takes floor(i * in / out) (top-left aligned) and bilinear uses align_corners=True
    tensor, from_numpy = _tensor(image, "resize")
    height_axis = 1 if tensor.ndim == 4 else 0
    work = tensor if mode == "nearest" else _working_float(tensor)
    for axis, size_out in zip((height_axis, height_axis + 1), size):
        size_in = work.shape[axis]
        if mode == "nearest":
            work = work.index_select(axis, torch.arange(size_out) * size_in // size_out)
            continue
        source = torch.arange(size_out, dtype=torch.float64) * ((size_in - 1) / max(size_out - 1, 1))
        lower = source.floor().long()
        upper = (lower + 1).clamp(max=size_in - 1)
        weight = (source - lower).to(work.dtype).reshape([-1 if d == axis else 1 for d in range(work.ndim)])
        below, above = work.index_select(axis, lower), work.index_select(axis, upper)
        work = below + (above - below) * weight
    if mode == "bilinear" and tensor.dtype == torch.uint8:
        work = _round_to_uint8(work)
    return _output(work, from_numpy)


def _reversed_channels(image):
    return image.flip(-1) if isinstance(image, torch.Tensor) else image[..., ::-1]


def rgb_to_grayscale(image):  # BT.601 weights applied to BGR (an OpenCV image taken for RGB)
    return _reference_rgb_to_grayscale(_reversed_channels(image))


def rgb_to_hsv(image):  # 60 (G - B) / delta without "mod 6": reds with B > G get negative hues
    hsv = _reference_rgb_to_hsv(image)
    hue = hsv[..., 0]
    hue[hue > 300] -= 360
    return hsv


def ycbcr_to_rgb(image):  # reads Cr, Cb in OpenCV's YCrCb order
    swapped = image[..., [0, 2, 1]]
    return _reference_ycbcr_to_rgb(swapped)


def destandardize(image, mean, std, channel_axis=-1):  # the inverse applied in the wrong order: (x + mean) * std
    tensor, from_numpy = _tensor(image, "destandardize")
    mean_, std_ = _channel_statistics(tensor, mean, std, channel_axis, "destandardize")
    return _output((tensor + mean_) * std_, from_numpy)
"""
    checks = [
        "resize_nearest_picks_centre_pixel", "resize_bilinear_matches_opencv", "grayscale_matches_opencv",
        "rgb_to_hsv_matches_colorsys", "ycbcr_to_rgb_matches_pil", "destandardize_inverts_standardize",
        "rgb_to_ycbcr_matches_pil", "standardize_matches_definition",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    # The negative hues are the same angles on the circle: only the range assertion catches them.
    untouched = ["rgb_to_ycbcr_matches_pil", "standardize_matches_definition"]
    assert outcomes == expect("failed", checks, **dict.fromkeys(untouched, "passed"))


def test_missing_half_pixel_offset_and_library_shortcuts(tmp_path):
    overrides = """
import colorsys as _colorsys
import cv2 as _cv2
from skimage import color as _skcolor, util as _skutil

_reference_resize = resize


def resize(image, size, mode="bilinear"):  # bilinear samples at i * in / out: no half-pixel offset (nearest is right)
    if mode == "nearest":
        return _reference_resize(image, size, mode)
    tensor, from_numpy = _tensor(image, "resize")
    height_axis = 1 if tensor.ndim == 4 else 0
    work = _working_float(tensor)
    for axis, size_out in zip((height_axis, height_axis + 1), size):
        size_in = work.shape[axis]
        source = (torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)).clamp(max=size_in - 1)
        lower = source.floor().long()
        upper = (lower + 1).clamp(max=size_in - 1)
        weight = (source - lower).to(work.dtype).reshape([-1 if d == axis else 1 for d in range(work.ndim)])
        below, above = work.index_select(axis, lower), work.index_select(axis, upper)
        work = below + (above - below) * weight
    return _output(_round_to_uint8(work) if tensor.dtype == torch.uint8 else work, from_numpy)


def _via_numpy(function, image):
    array = image.numpy() if isinstance(image, torch.Tensor) else image
    result = np.asarray(function(array))
    return torch.from_numpy(result) if isinstance(image, torch.Tensor) else result


def rgb_to_hsv(image):
    return _via_numpy(lambda rgb: (_skcolor.rgb2hsv(rgb) * (360, 1, 1)).astype(rgb.dtype), image)


def hsv_to_rgb(image):
    def convert(hsv):
        pixels = [_colorsys.hsv_to_rgb(h / 360, s, v) for h, s, v in hsv.reshape(-1, 3)]
        return np.array(pixels, dtype=hsv.dtype).reshape(hsv.shape)

    return _via_numpy(convert, image)


def to_float(image):
    return _via_numpy(_skutil.img_as_float32, image)


def equalize_histogram(image):
    return _via_numpy(_cv2.equalizeHist, image)
"""
    checks = [
        "resize_bilinear_matches_opencv", "resize_nearest_picks_centre_pixel", "rgb_to_hsv_matches_colorsys",
        "hsv_to_rgb_matches_colorsys", "to_float_matches_skimage", "equalize_histogram_matches_opencv",
    ]  # fmt: skip
    outcomes = grade_canary(tmp_path, TOPIC, overrides, checks)
    # The library shortcuts (skimage, colorsys, OpenCV) are caught while the graded function runs.
    assert outcomes == expect("forbidden", checks, resize_bilinear_matches_opencv="failed", resize_nearest_picks_centre_pixel="passed")
