"""Graded tests of topic 08 `instance_seg` (specs/08_instance_seg.yaml): RoIAlign and RoIPool (forward and backward),
box coding, anchors, mask pasting, mask IoU, COCO RLE, and a Mask R-CNN trained on shapes64.

Oracles: torchvision (ops.roi_align, ops.roi_pool, BoxCoder, AnchorGenerator, paste_masks_in_image), pycocotools'
mask module, and loops written here. Tolerances, thresholds and points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image as torchvision_paste

from harness.testing import CheckFailure, assert_close, check, gradcheck_or_fail, gradients
from harness.topic.strategies import binary_masks, boxes_xyxy, rois, seeded_randn, seeds

# pycocotools.mask.decode passes numpy a copy=False it does not take (numpy 2): harmless, and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]


# --- helpers ----------------------------------------------------------------------------------------------------------


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _per_image(boxes: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """RoIs ``Tensor[K, 5]`` as torchvision's other form: one ``Tensor[L_i, 4]`` per image (some empty)."""
    return [boxes[boxes[:, 0] == i, 1:] for i in range(batch)]


@st.composite
def _roi_cases(draw: st.DrawFn, min_rois: int = 0) -> dict:
    """A feature map, RoIs on and beyond its borders (in image coordinates), and roi_align's other arguments."""
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25]))
    boxes = draw(rois(batch, height, width, min_rois=min_rois))
    boxes[:, 1:] /= scale  # image coordinates; exact (powers of two)
    return {
        "features": seeded_randn((batch, channels, height, width), draw(seeds), torch.float64),
        "boxes": boxes if not draw(st.booleans()) else _per_image(boxes, batch),
        "output_size": draw(st.tuples(st.integers(1, 4), st.integers(1, 4))),
        "spatial_scale": scale,
        "sampling_ratio": draw(st.sampled_from([-1, 0, 1, 2, 3])),
        "aligned": draw(st.booleans()),
    }


def _cast(boxes: torch.Tensor | list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor | list[torch.Tensor]:
    return boxes.to(dtype) if isinstance(boxes, torch.Tensor) else [b.to(dtype) for b in boxes]


def _describe(case: dict) -> str:
    form = "Tensor[K, 5]" if isinstance(case["boxes"], torch.Tensor) else "list"
    options = ", ".join(f"{key}={case[key]}" for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned"))
    return f"map {tuple(case['features'].shape)}, boxes as {form}, {options}"


# --- RoIAlign ---------------------------------------------------------------------------------------------------------


@check("roi_align_matches_torchvision")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@given(case=_roi_cases())
def test_roi_align_matches_torchvision(impl, spec_check, dtype, case):
    features, boxes = case["features"].to(dtype), _cast(case["boxes"], dtype)
    options = {key: case[key] for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned")}
    expected = torchvision.ops.roi_align(features, boxes, **options)
    got = impl.roi_align(features, boxes, **options)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"roi_align ({_describe(case)})")


# A 1 x 2 x 5 x 6 map (H = 5, W = 6). With one bin and one sample, the sample sits at the RoI's centre, so a RoI
# [-2, ., 0, .] samples x = -1 exactly (kept: it reads column 0) and [4, ., 8, .] x = 6 = W (kept: column 5).
BORDER_CASES = {
    "sample_on_minus_one": ([[0, -2, 1, 0, 3], [0, 1, -2, 3, 0]], (1, 1), 1, False),
    "sample_on_far_edge": ([[0, 4, 1, 8, 3], [0, 1, 3, 3, 7]], (1, 1), 1, False),
    "samples_just_beyond": ([[0, -2.2, 1, 0, 3], [0, 4, 1, 8.4, 3], [0, 1, 3, 3, 7.2]], (1, 1), 1, False),
    "samples_between_edge_and_beyond": ([[0, -1.8, -1.6, 0.2, 0.0], [0, 4.6, 3.4, 6.8, 5.6]], (2, 2), 2, False),
    "overlapping_each_border": ([[0, -2, -2, 3, 3], [0, 3, 2, 9, 7], [0, -3, 2, 2, 8]], (2, 3), -1, False),
    "entirely_outside": ([[0, 10, 10, 14, 14], [0, -9, -9, -5, -5]], (2, 2), -1, False),
    "thinner_than_a_cell_legacy": ([[0, 1.2, 1.0, 1.5, 4.0], [0, 2.0, 3.3, 5.0, 3.4]], (2, 2), -1, False),
    "thinner_than_a_cell_aligned": ([[0, 1.2, 1.0, 1.5, 4.0], [0, 2.0, 3.3, 5.0, 3.4]], (2, 2), -1, True),
    "zero_size_legacy": ([[0, 2, 2, 2, 2]], (2, 2), -1, False),
    "zero_size_aligned": ([[0, 2, 2, 2, 2]], (2, 2), -1, True),
    "adaptive_grid_grows": ([[0, 0, 0, 6, 5], [0, 0.5, 0.25, 5.5, 4.75]], (2, 1), -1, True),
    "no_rois": ([], (3, 3), -1, False),
}


@check("roi_align_border_cases")
@pytest.mark.parametrize("case", [*BORDER_CASES, "image_without_rois", "lists_without_rois"])
def test_roi_align_border_cases(impl, spec_check, case):
    tolerance = spec_check.tolerance_for(torch.float64)
    if case in BORDER_CASES:
        raw, output_size, sampling_ratio, aligned = BORDER_CASES[case]
        features = seeded_randn((1, 2, 5, 6), 8, torch.float64)
        boxes = torch.tensor(raw, dtype=torch.float64).reshape(-1, 5)
    else:
        output_size, sampling_ratio, aligned = (2, 2), 2, False
        features = seeded_randn((3, 2, 5, 6), 9, torch.float64)
        boxes = [torch.tensor([[0.5, 0.5, 3.0, 4.0]], dtype=torch.float64), torch.zeros(0, 4, dtype=torch.float64),
                 torch.tensor([[-1.0, 2.0, 5.5, 5.0], [1.0, 1.0, 2.0, 2.0]], dtype=torch.float64)]  # fmt: skip
        if case == "lists_without_rois":
            boxes = [torch.zeros(0, 4, dtype=torch.float64)] * 3
    expected = torchvision.ops.roi_align(features, boxes, output_size, 1.0, sampling_ratio, aligned)
    got = impl.roi_align(features, boxes, output_size, 1.0, sampling_ratio, aligned)
    assert_close(got, expected, tolerance, what=f"roi_align ({case}, sampling_ratio={sampling_ratio}, aligned={aligned})")


@check("roi_align_backward_matches_torchvision")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@given(case=_roi_cases(min_rois=1), seed=seeds)
def test_roi_align_backward_matches_torchvision(impl, spec_check, dtype, case, seed):
    features, boxes = case["features"].to(dtype), _cast(case["boxes"], dtype)
    options = {key: case[key] for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned")}
    shape = torchvision.ops.roi_align(features, boxes, **options).shape
    grad_out = seeded_randn(tuple(shape), seed, dtype)
    (expected,) = gradients(lambda x: torchvision.ops.roi_align(x, boxes, **options), [features], grad_out, "torchvision.ops.roi_align")
    (got,) = gradients(lambda x: impl.roi_align(x, boxes, **options), [features], grad_out, f"roi_align ({_describe(case)})")
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"gradient of roi_align with respect to input ({_describe(case)})")


@check("roi_align_gradcheck")
@pytest.mark.parametrize("aligned", [False, True], ids=["legacy", "aligned"])
@pytest.mark.parametrize("sampling_ratio", [-1, 2], ids=["adaptive", "sampling_2"])
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed_0", "seed_1", "seed_2"])
def test_roi_align_gradcheck(impl, spec_check, seed, sampling_ratio, aligned):
    features = seeded_randn((2, 1, 4, 5), seed, torch.float64)
    boxes = torch.tensor([[0, -1.5, -0.7, 2.5, 3.2], [1, 2.3, 1.1, 6.4, 4.9], [1, 0.4, 0.6, 1.1, 1.3]], dtype=torch.float64)
    gradcheck_or_fail(lambda x: impl.roi_align(x, boxes, (2, 2), 1.0, sampling_ratio, aligned), (features,),
                      spec_check.tolerance_for(torch.float64), f"roi_align (sampling_ratio={sampling_ratio}, aligned={aligned})")  # fmt: skip


# --- RoIPool ----------------------------------------------------------------------------------------------------------


@st.composite
def _roi_pool_cases(draw: st.DrawFn) -> dict:
    batch, height, width = draw(st.integers(1, 2)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    scale = draw(st.sampled_from([1.0, 0.5]))
    boxes = draw(rois(batch, height, width, min_rois=1))
    boxes[:, 1:] /= scale
    features = seeded_randn((batch, 2, height, width), draw(seeds), torch.float64)
    if draw(st.booleans()):
        features = features.mul(1.5).round()  # a few distinct values: many ties within a bin
    return {"features": features, "boxes": boxes, "output_size": draw(st.tuples(st.integers(1, 4), st.integers(1, 4))), "scale": scale}


@check("roi_pool_matches_torchvision")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@given(case=_roi_pool_cases(), seed=seeds)
def test_roi_pool_matches_torchvision(impl, spec_check, dtype, case, seed):
    features, boxes, output_size, scale = case["features"].to(dtype), case["boxes"].to(dtype), case["output_size"], case["scale"]
    tolerance = spec_check.tolerance_for(dtype)
    what = f"roi_pool (map {tuple(features.shape)}, output_size={output_size}, spatial_scale={scale})"
    expected = torchvision.ops.roi_pool(features, boxes, output_size, scale)
    assert_close(impl.roi_pool(features, boxes, output_size, scale), expected, tolerance, what=what)
    grad_out = seeded_randn(tuple(expected.shape), seed, dtype)
    (expected_gradient,) = gradients(lambda x: torchvision.ops.roi_pool(x, boxes, output_size, scale), [features], grad_out, "torchvision.ops.roi_pool")
    (gradient,) = gradients(lambda x: impl.roi_pool(x, boxes, output_size, scale), [features], grad_out, what)
    assert_close(gradient, expected_gradient, tolerance, what=f"gradient of {what}")


# --- box coding -------------------------------------------------------------------------------------------------------


def _random_boxes(count: int, seed: int, dtype: torch.dtype, size: float = 64.0) -> torch.Tensor:
    """``Tensor[count, 4]`` xyxy boxes with corners in [0, size] and sides in [1, size / 2]."""
    generator = _generator(seed)
    top_left = torch.rand(count, 2, generator=generator, dtype=torch.float64) * size * 0.7
    sides = 1 + torch.rand(count, 2, generator=generator, dtype=torch.float64) * size / 2
    return torch.cat([top_left, top_left + sides], dim=1).to(dtype)


WEIGHTS = {"default_weights": None, "unit_weights": (1.0, 1.0, 1.0, 1.0), "other_weights": (2.0, 3.0, 0.5, 4.0)}


@check("encode_boxes_matches_torchvision")
@pytest.mark.parametrize("weights", list(WEIGHTS), ids=list(WEIGHTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_encode_boxes_matches_torchvision(impl, spec_check, dtype, weights):
    boxes, anchors = _random_boxes(32, 1, dtype), _random_boxes(32, 2, dtype)
    keywords = {} if WEIGHTS[weights] is None else {"weights": WEIGHTS[weights]}
    expected = BoxCoder(WEIGHTS[weights] or (10.0, 10.0, 5.0, 5.0)).encode_single(boxes, anchors)
    assert_close(impl.encode_boxes(boxes, anchors, **keywords), expected, spec_check.tolerance_for(dtype), what=f"encode_boxes ({weights})")


DECODE_CASES = {
    "one_set_default": (1, None, None, 2.0),
    "three_sets_default": (3, None, None, 2.0),
    "other_weights_and_clamp": (3, (2.0, 3.0, 0.5, 4.0), 2.0, 2.0),
    "far_beyond_the_clamp": (2, None, None, 200.0),  # dw / 5 up to ~100: exp would overflow without the clamp
}


@check("decode_boxes_matches_torchvision")
@pytest.mark.parametrize("case", list(DECODE_CASES), ids=list(DECODE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_decode_boxes_matches_torchvision(impl, spec_check, dtype, case):
    sets, weights, clamp, scale = DECODE_CASES[case]
    anchors = _random_boxes(24, 3, dtype)
    deltas = (seeded_randn((24, 4 * sets), 4) * scale).to(dtype)
    keywords = {key: value for key, value in (("weights", weights), ("clamp", clamp)) if value is not None}
    coder = BoxCoder(weights or (10.0, 10.0, 5.0, 5.0), **({"bbox_xform_clip": clamp} if clamp is not None else {}))
    expected = coder.decode_single(deltas, anchors)
    got = impl.decode_boxes(deltas, anchors, **keywords)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"decode_boxes ({case})")


@st.composite
def _boxes_and_anchors(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of boxes (positive sizes) whose size ratios stay well inside the clamp (a factor of 50 either way)."""
    boxes = draw(boxes_xyxy(max_boxes=8)).double()
    anchors = draw(boxes_xyxy(max_boxes=8)).double()
    count = min(len(boxes), len(anchors))
    boxes, anchors = boxes[:count], anchors[:count]
    sizes, anchor_sizes = boxes[:, 2:] - boxes[:, :2], anchors[:, 2:] - anchors[:, :2]
    keep = ((sizes / anchor_sizes).log().abs() < math.log(50)).all(dim=1) & (sizes > 1e-3).all(dim=1) & (anchor_sizes > 1e-3).all(dim=1)
    return boxes[keep], anchors[keep]


@check("encode_decode_round_trip")
@pytest.mark.parametrize("weights", ["default_weights", "other_weights"], ids=["default_weights", "other_weights"])
@given(pair=_boxes_and_anchors())
def test_encode_decode_round_trip(impl, spec_check, weights, pair):
    boxes, anchors = pair
    keywords = {} if WEIGHTS[weights] is None else {"weights": WEIGHTS[weights]}
    decoded = impl.decode_boxes(impl.encode_boxes(boxes, anchors, **keywords), anchors, **keywords)
    assert_close(decoded, boxes, spec_check.tolerance_for(torch.float64), what=f"decode_boxes(encode_boxes(boxes, anchors)) ({weights})")


# --- anchors ----------------------------------------------------------------------------------------------------------


ANCHOR_CASES = {
    "one_cell": ((1, 1), 16, (32.0,), (1.0,)),
    "three_sizes_three_ratios": ((5, 7), 8, (8.0, 16.0, 32.0), (0.5, 1.0, 2.0)),
    "fractional_sizes": ((3, 2), 4, (10.0, 13.3), (0.7, 1.0)),
    "halves_round_to_even": ((2, 4), 5, (3.0, 5.0, 7.0, 9.0), (1.0,)),  # half-widths 1.5, 2.5, 3.5, 4.5 -> 2, 2, 4, 4
}


@check("anchor_grid_matches_torchvision")
@pytest.mark.parametrize("offset", [0.0, 0.5], ids=["offset_0", "offset_half"])
@pytest.mark.parametrize("case", list(ANCHOR_CASES), ids=list(ANCHOR_CASES))
def test_anchor_grid_matches_torchvision(impl, spec_check, case, offset):
    (height, width), stride, sizes, ratios = ANCHOR_CASES[case]
    generator = AnchorGenerator((sizes,), (ratios,))
    images = ImageList(torch.zeros(1, 3, height * stride, width * stride), [(height * stride, width * stride)])
    expected = generator(images, [torch.zeros(1, 1, height, width)])[0] + offset * stride  # torchvision's offset is 0
    got = impl.anchor_grid((height, width), stride, sizes, ratios, offset=offset)
    assert_close(got, expected, spec_check.tolerance_for(torch.float32), what=f"anchor_grid ({case}, offset={offset})")


# --- masks ------------------------------------------------------------------------------------------------------------


PASTE_BOXES = [
    [0.0, 0.0, 10.0, 10.0], [-3.7, -2.2, 5.5, 9.9], [50.0, 40.0, 70.0, 66.0], [3.0, 4.0, 3.4, 4.2],
    [10.5, 2.5, 40.7, 30.1], [-0.6, -0.4, 2.0, 2.0], [20.2, 30.8, 21.9, 55.0], [0.0, 0.0, 64.0, 60.0],
]  # fmt: skip


@check("paste_masks_matches_torchvision")
@pytest.mark.parametrize("case", ["M7_padding_0", "M7_padding_1", "M28_padding_1", "M28_padding_2", "no_masks"])
def test_paste_masks_matches_torchvision(impl, spec_check, case):
    size, padding = (7, 1) if case == "no_masks" else (int(case.split("_")[0][1:]), int(case.split("_")[-1]))
    boxes = torch.tensor(PASTE_BOXES[: 0 if case == "no_masks" else None]).reshape(-1, 4)
    masks = torch.rand(len(boxes), 1, size, size, generator=_generator(size + padding))
    expected = torchvision_paste(masks, boxes, (60, 64), padding)
    got = impl.paste_masks_in_image(masks, boxes, (60, 64), padding)
    assert_close(got, expected, spec_check.tolerance_for(torch.float32), what=f"paste_masks_in_image ({case}, image 60 x 64)")


def _iou_by_loop(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    result = torch.zeros(len(first), len(second), dtype=torch.float32)
    for i, a in enumerate(first.bool().flatten(1).tolist()):
        for j, b in enumerate(second.bool().flatten(1).tolist()):
            intersection = sum(x and y for x, y in zip(a, b))
            union = sum(x or y for x, y in zip(a, b))
            result[i, j] = intersection / union if union else 0.0
    return result


def _mask_sets(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = _generator(len(case))
    first = torch.rand(5, 9, 7, generator=generator) < torch.rand(5, 1, 1, generator=generator)
    second = torch.rand(4, 9, 7, generator=generator) < 0.4
    if case == "identical_disjoint_empty":
        second = torch.stack([first[0], ~first[0], torch.zeros(9, 7, dtype=torch.bool), first[3]])
        first[4] = False
    elif case == "uint8":
        first, second = first.to(torch.uint8), second.to(torch.uint8)
    elif case == "empty_sets":
        first = first[:0]
    return first, second


@check("mask_iou_matches_loop")
@pytest.mark.parametrize("case", ["random", "identical_disjoint_empty", "uint8", "empty_sets"])
def test_mask_iou_matches_loop(impl, spec_check, case):
    first, second = _mask_sets(case)
    assert_close(impl.mask_iou(first, second), _iou_by_loop(first, second), spec_check.tolerance_for(torch.float32), what=f"mask_iou ({case})")


def _check_rle(rle: object, shape: tuple[int, int], what: str) -> list[int]:
    """The counts of an uncompressed RLE, after checking its form; CheckFailure says what is wrong."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise CheckFailure(f"{what}: expected a dict with 'size' and 'counts', got {rle!r:.120}")
    if list(rle["size"]) != list(shape):
        raise CheckFailure(f"{what}: size {rle['size']}, expected [H, W] = {list(shape)}")
    counts = rle["counts"]
    if not isinstance(counts, list) or not all(isinstance(c, int) and c >= 0 for c in counts):
        raise CheckFailure(f"{what}: counts must be a list of non-negative ints, got {counts!r:.120}")
    if sum(counts) != shape[0] * shape[1]:
        raise CheckFailure(f"{what}: counts sum to {sum(counts)}, expected H * W = {shape[0] * shape[1]}")
    return counts


@check("rle_encode_matches_pycocotools")
@given(mask=binary_masks())
def test_rle_encode_matches_pycocotools(impl, mask):
    height, width = mask.shape
    what = f"rle_encode of a {height} x {width} mask"
    counts = _check_rle(impl.rle_encode(mask), (height, width), what)
    expected = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))["counts"]
    got = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)["counts"]
    if got != expected:
        raise CheckFailure(f"{what}: counts {counts[:12]}{'...' if len(counts) > 12 else ''} differ from pycocotools' "
                           f"(compressed {got[:24]!r} vs {expected[:24]!r}); COCO reads pixels column by column, 0s first")  # fmt: skip


@st.composite
def _uncompressed_rles(draw: st.DrawFn) -> dict:
    """Random run lengths (zero-length runs included) summing to H * W."""
    height, width = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(seeds))
    cuts = np.sort(rng.integers(0, height * width + 1, rng.integers(0, 12)))
    counts = np.diff(np.concatenate([[0], cuts, [height * width]])).tolist()
    return {"size": [height, width], "counts": [int(c) for c in counts]}


@check("rle_decode_matches_pycocotools")
@given(rle=_uncompressed_rles())
def test_rle_decode_matches_pycocotools(impl, rle):
    height, width = rle["size"]
    expected = torch.from_numpy(mask_utils.decode(mask_utils.frPyObjects(dict(rle), height, width))).bool()
    got = impl.rle_decode({"size": list(rle["size"]), "counts": list(rle["counts"])})
    if not isinstance(got, torch.Tensor) or got.dtype != torch.bool or got.shape != expected.shape or not torch.equal(got, expected):
        described = f"{got.dtype} {tuple(got.shape)}" if isinstance(got, torch.Tensor) else type(got).__name__
        wrong = int((got != expected).sum()) if isinstance(got, torch.Tensor) and got.shape == expected.shape else "-"
        raise CheckFailure(f"rle_decode of counts {rle['counts']} (size {rle['size']}): got {described} with {wrong} pixels wrong, "
                           f"expected pycocotools' bool {tuple(expected.shape)} mask")  # fmt: skip
    broken = {"size": list(rle["size"]), "counts": [*rle["counts"], 1]}
    try:
        impl.rle_decode(broken)
    except ValueError:
        return
    raise CheckFailure(f"rle_decode of counts summing to {height * width + 1} for a {height} x {width} mask did not raise ValueError")


@check("rle_round_trip")
@given(mask=binary_masks())
def test_rle_round_trip(impl, mask):
    decoded = impl.rle_decode(impl.rle_encode(mask))
    if not isinstance(decoded, torch.Tensor) or decoded.shape != mask.shape or not torch.equal(decoded.bool(), mask):
        got = tuple(decoded.shape) if isinstance(decoded, torch.Tensor) else type(decoded).__name__
        raise CheckFailure(f"rle_decode(rle_encode(mask)) of a {tuple(mask.shape)} mask gave {got}, not the mask back")


# --- the metric task --------------------------------------------------------------------------------------------------
