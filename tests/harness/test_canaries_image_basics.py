"""Canaries for topic 01, image_basics: wrong implementations that must lose the checks they should.

Each test grades the reference with some functions replaced (``tests/harness/canaries.py:grade_canary``, one child
pytest process per canary) and asserts the outcome of every check it grades, including the ones the canary must
still pass: a canary that breaks one function must not cost the others their points.
"""

from __future__ import annotations

from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test, recompiled

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
    overrides = (
        REPLACE
        + UINT8
        + f"""
_replace({ALL_INTERFACES[0::2]!r}, lambda result, *args: result * 0)
_replace({ALL_INTERFACES[1::2]!r}, lambda result, *args: result * 0 + (128 if _is_uint8(result) else 0.5))
"""
    )
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    assert outcomes == expect("failed", ALL_CHECKS, **{VALIDATION: "passed"})


def test_input_handed_back_loses_every_value_check(tmp_path):
    others = [name for name in ALL_INTERFACES if name != "rgb_to_grayscale"]
    overrides = (
        REPLACE
        + UINT8
        + f"""
_replace({others!r}, lambda result, image, *rest: image)
_replace(["rgb_to_grayscale"], lambda result, image: image[..., 0])  # the red channel: right shape and dtype
"""
    )
    outcomes = grade_canary(tmp_path, TOPIC, overrides, ALL_CHECKS)
    # An identity preprocess_imagenet returns uint8 [H, W, 3]: the round trip checks its type before deprocessing.
    assert outcomes == expect("failed", ALL_CHECKS, **{VALIDATION: "passed"})


def test_small_noise_loses_every_value_check(tmp_path):
    overrides = (
        REPLACE
        + UINT8
        + f"""
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
    )
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


# --- the learner-bug catalogue ----------------------------------------------------------------------------------------
# Plausible single mistakes, each in one interface, and the checks that must catch it.

LEARNER_BUGS = [
    LearnerBug(
        "to_uint8_truncates",
        "rounding",
        """
def to_uint8(image):  # astype truncates: 0.999 levels become 0
    tensor, from_numpy = _tensor(image, "to_uint8")
    _require_float(tensor, "to_uint8")
    return _output((tensor * 255).clamp(0, 255).to(torch.uint8), from_numpy)
""",
        loses={"to_uint8_rounds_and_clips": "failed", "deprocess_imagenet_matches_definition": "failed"},
    ),
    LearnerBug(
        "to_uint8_rounds_half_up",
        "tie",
        """
def to_uint8(image):  # floor(v * 255 + 0.5): ties go up, not to even
    tensor, from_numpy = _tensor(image, "to_uint8")
    _require_float(tensor, "to_uint8")
    return _output(torch.floor(tensor * 255 + 0.5).clamp(0, 255).to(torch.uint8), from_numpy)
""",
        loses={"to_uint8_rounds_and_clips": "failed"},
        keeps=("deprocess_imagenet_matches_definition",),
    ),
    LearnerBug(
        "grayscale_uint8_truncates",
        "rounding",
        """
def rgb_to_grayscale(image):  # the float luma cast to uint8 without rounding
    tensor, from_numpy = _tensor(image, "rgb_to_grayscale")
    _require_float_or_uint8(tensor, "rgb_to_grayscale")
    _require_channels_last(tensor, "rgb_to_grayscale")
    work = _working_float(tensor)
    gray = (work * _constant((0.299, 0.587, 0.114), work)).sum(-1)
    return _output(gray.to(torch.uint8) if tensor.dtype == torch.uint8 else gray, from_numpy)
""",
        loses={"grayscale_matches_opencv": "failed"},
    ),
    LearnerBug(
        "ycbcr_uint8_truncates",
        "rounding",
        """
def rgb_to_ycbcr(image):  # clipped but not rounded before the cast to uint8
    tensor, from_numpy = _tensor(image, "rgb_to_ycbcr")
    _require_float_or_uint8(tensor, "rgb_to_ycbcr")
    _require_channels_last(tensor, "rgb_to_ycbcr")
    work = _working_float(tensor)
    offset = 128.0 if tensor.dtype == torch.uint8 else 0.5
    matrix = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
    ycbcr = _apply_matrix(work, matrix) + _constant((0.0, offset, offset), work)
    return _output(ycbcr.clamp(0, 255).to(torch.uint8) if tensor.dtype == torch.uint8 else ycbcr, from_numpy)
""",
        loses={"rgb_to_ycbcr_matches_pil": "failed"},
    ),
    LearnerBug(
        "ycbcr_to_rgb_uint8_truncates",
        "rounding",
        """
def ycbcr_to_rgb(image):  # clipped but not rounded before the cast to uint8
    tensor, from_numpy = _tensor(image, "ycbcr_to_rgb")
    _require_float_or_uint8(tensor, "ycbcr_to_rgb")
    _require_channels_last(tensor, "ycbcr_to_rgb")
    work = _working_float(tensor)
    offset = 128.0 if tensor.dtype == torch.uint8 else 0.5
    matrix = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))
    rgb = _apply_matrix(work - _constant((0.0, offset, offset), work), matrix)
    return _output(rgb.clamp(0, 255).to(torch.uint8) if tensor.dtype == torch.uint8 else rgb, from_numpy)
""",
        loses={"ycbcr_to_rgb_matches_pil": "failed"},
    ),
    LearnerBug(
        "resize_bilinear_uint8_truncates",
        "rounding",
        """
_reference_resize = resize


def resize(image, size, mode="bilinear"):  # uint8 bilinear results cast without rounding
    if mode != "bilinear" or str(image.dtype).removeprefix("torch.") != "uint8":
        return _reference_resize(image, size, mode)
    tensor, from_numpy = _tensor(image, "resize")
    height_axis = 1 if tensor.ndim == 4 else 0
    work = _working_float(tensor)
    resized = _lerp_along(_lerp_along(work, height_axis, int(size[0])), height_axis + 1, int(size[1]))
    return _output(resized.to(torch.uint8), from_numpy)
""",
        loses={"resize_bilinear_matches_opencv": "failed"},
        keeps=("resize_nearest_picks_centre_pixel",),
    ),
    LearnerBug(
        "equalize_histogram_floors",
        "rounding",
        """
def equalize_histogram(image):  # the lookup table floored (integer division), not rounded
    tensor, from_numpy = _tensor(image, "equalize_histogram")
    _require_uint8(tensor, "equalize_histogram")
    if tensor.ndim != 2:
        raise ValueError("equalize_histogram: expected [H, W]")
    levels = tensor.long()
    histogram = torch.bincount(levels.flatten(), minlength=256)
    cdf = histogram.cumsum(0)
    cdf_min = histogram[histogram > 0][0]
    if levels.numel() == cdf_min:
        return _output(tensor.clone(), from_numpy)
    lut = ((cdf - cdf_min) * 255 // (levels.numel() - cdf_min)).clamp(0, 255).to(torch.uint8)
    return _output(lut[levels], from_numpy)
""",
        loses={"equalize_histogram_matches_opencv": "failed"},
    ),
    LearnerBug(
        "deprocess_truncates",
        "rounding",
        """
def deprocess_imagenet(image):  # * 255 and astype, as many notebooks do: truncation
    tensor, from_numpy = _tensor(image, "deprocess_imagenet")
    _require_float(tensor, "deprocess_imagenet")
    rgb = destandardize(tensor, IMAGENET_MEAN, IMAGENET_STD, channel_axis=-3)
    return _output((chw_to_hwc(rgb) * 255).clamp(0, 255).to(torch.uint8), from_numpy)
""",
        loses={"deprocess_imagenet_matches_definition": "failed"},
        keeps=("preprocess_imagenet_matches_definition",),
    ),
    LearnerBug(
        "hsv_to_rgb_truncated_sector",
        "domain",
        """
def hsv_to_rgb(image):  # colorsys' int(h * 6) sector: truncation towards zero breaks negative hues
    tensor, from_numpy = _tensor(image, "hsv_to_rgb")
    _require_float(tensor, "hsv_to_rgb")
    _require_channels_last(tensor, "hsv_to_rgb")
    h, s, v = tensor.unbind(-1)
    scaled = h / 60
    sector = torch.trunc(scaled)
    f = scaled - sector
    sector = sector.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack([
        torch.stack([v, t, p], -1), torch.stack([q, v, p], -1), torch.stack([p, v, t], -1),
        torch.stack([p, q, v], -1), torch.stack([t, p, v], -1), torch.stack([v, p, q], -1),
    ], -2)  # [..., 6, 3]
    rgb = torch.gather(table, -2, sector[..., None, None].expand(*sector.shape, 1, 3)).squeeze(-2)
    return _output(rgb, from_numpy)
""",
        loses={"hsv_to_rgb_matches_colorsys": "failed"},
    ),
    LearnerBug(
        "standardize_assumes_batch_for_channels_first",
        "domain",
        """
def standardize(image, mean, std, channel_axis=-1):  # any channels-first layout taken for NCHW
    tensor, from_numpy = _tensor(image, "standardize")
    _require_float(tensor, "standardize")
    mean_ = torch.as_tensor(np.asarray(mean), dtype=tensor.dtype)
    std_ = torch.as_tensor(np.asarray(std), dtype=tensor.dtype)
    if channel_axis != -1:
        mean_, std_ = mean_.view(1, -1, 1, 1), std_.view(1, -1, 1, 1)
    return _output((tensor - mean_) / std_, from_numpy)
""",
        loses={"standardize_matches_definition": "failed"},
    ),
    LearnerBug(
        "destandardize_broadcasts_on_last_axis",
        "default",
        """
def destandardize(image, mean, std, channel_axis=-1):  # channel_axis ignored: mean and std broadcast on the last axis
    tensor, from_numpy = _tensor(image, "destandardize")
    _require_float(tensor, "destandardize")
    mean_ = torch.as_tensor(np.asarray(mean), dtype=tensor.dtype)
    std_ = torch.as_tensor(np.asarray(std), dtype=tensor.dtype)
    return _output(tensor * std_ + mean_, from_numpy)
""",
        loses={"destandardize_inverts_standardize": "failed"},
    ),
    LearnerBug(
        "standardize_in_place",
        "mutation",
        """
def standardize(image, mean, std, channel_axis=-1):  # -= and /= on the caller's array
    tensor, from_numpy = _tensor(image, "standardize")
    _require_float(tensor, "standardize")
    mean_, std_ = _channel_statistics(tensor, mean, std, channel_axis, "standardize")
    if from_numpy:
        image -= mean_.numpy()
        image /= std_.numpy()
        return image
    return tensor.sub_(mean_).div_(std_)
""",
        loses={"standardize_matches_definition": "failed"},
    ),
    LearnerBug(
        "resize_bilinear_channels_last_only",
        "domain",
        """
_reference_resize = resize


def resize(image, size, mode="bilinear"):  # bilinear takes the spatial axes as (-3, -2): a 2-D grey image goes wrong
    if mode != "bilinear":
        return _reference_resize(image, size, mode)
    tensor, from_numpy = _tensor(image, "resize")
    work = _working_float(tensor)
    resized = _lerp_along(_lerp_along(work, work.ndim - 3, int(size[0])), work.ndim - 2, int(size[1]))
    return _output(_round_to_uint8(resized) if tensor.dtype == torch.uint8 else resized, from_numpy)
""",
        loses={"resize_bilinear_matches_opencv": "failed"},
        keeps=("resize_nearest_picks_centre_pixel",),
    ),
    LearnerBug(
        "hwc_to_chw_reshapes",
        "value",
        """
def hwc_to_chw(image):  # reshape instead of a transpose: right shape, scrambled pixels
    tensor, from_numpy = _tensor(image, "hwc_to_chw")
    if tensor.ndim not in (3, 4):
        raise ValueError("hwc_to_chw: expected [H, W, C] or [N, H, W, C]")
    shape = (*tensor.shape[:-3], tensor.shape[-1], *tensor.shape[-3:-1])
    return _output(tensor.reshape(shape), from_numpy)
""",
        loses={"layout_conversions_permute_axes": "failed"},
    ),
    LearnerBug(
        "grayscale_of_a_single_pixel",
        "domain",
        """
_reference_rgb_to_grayscale = rgb_to_grayscale


def rgb_to_grayscale(image):  # indexes [:, :, c]: images [H, W, 3] (and batches of them) only
    tensor, from_numpy = _tensor(image, "rgb_to_grayscale")
    _require_float_or_uint8(tensor, "rgb_to_grayscale")
    _require_channels_last(tensor, "rgb_to_grayscale")
    if tensor.ndim == 4:
        return _output(torch.stack([_reference_rgb_to_grayscale(single) for single in tensor]), from_numpy)
    work = _working_float(tensor)
    gray = 0.299 * work[:, :, 0] + 0.587 * work[:, :, 1] + 0.114 * work[:, :, 2]
    return _output(_round_to_uint8(gray) if tensor.dtype == torch.uint8 else gray, from_numpy)
""",
        loses={"grayscale_matches_opencv": "error"},
    ),
    LearnerBug(
        "equalize_cdf_min_of_level_zero",
        "lesson",
        """
def equalize_histogram(image):  # cdf_min = cdf[0], the count of level 0, even when no pixel is 0
    tensor, from_numpy = _tensor(image, "equalize_histogram")
    _require_uint8(tensor, "equalize_histogram")
    if tensor.ndim != 2:
        raise ValueError("equalize_histogram: expected [H, W]")
    levels = tensor.long()
    cdf = torch.bincount(levels.flatten(), minlength=256).cumsum(0)
    total = levels.numel()
    if total == cdf[0] or bool((levels == levels.flatten()[0]).all()):
        return _output(tensor.clone(), from_numpy)
    lut = _round_to_uint8((cdf - cdf[0]).double() * 255 / (total - cdf[0]))
    return _output(lut[levels], from_numpy)
""",
        loses={"equalize_histogram_matches_opencv": "failed"},
    ),
    LearnerBug(
        "rgb_to_hsv_hue_can_reach_360",
        "tie",
        # 60 * ((G - B) / delta mod 6) with no guard: a tiny negative ratio rounds up to exactly 360
        recompiled(TOPIC, "rgb_to_hsv", "    hue = torch.where(hue >= 360, hue - 360, hue)", "    pass"),
        loses={"rgb_to_hsv_matches_colorsys": "failed"},
    ),
    LearnerBug(
        "rgb_to_hsv_hue_in_turns",
        "lesson",
        """
_reference_rgb_to_hsv = rgb_to_hsv


def rgb_to_hsv(image):  # colorsys' hue in [0, 1) kept instead of degrees
    hsv = _reference_rgb_to_hsv(image)
    hsv[..., 0] /= 360
    return hsv
""",
        loses={"rgb_to_hsv_matches_colorsys": "failed"},
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
