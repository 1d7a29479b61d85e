"""Graded tests of topic 08 `instance_seg` (specs/08_instance_seg.yaml): RoIAlign and RoIPool (forward and backward),
box coding, anchors, mask pasting, mask IoU and COCO RLE; the Mask R-CNN trained on shapes64 (metric checks) is graded
by items the harness makes from the spec.

Oracles: torchvision (ops.roi_align, ops.roi_pool, BoxCoder, AnchorGenerator, paste_masks_in_image), pycocotools'
mask module, and loops written here. Every oracle check of a function that takes tensors also runs on non-contiguous
inputs. Tolerances, thresholds and points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import example, given
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import paste_masks_in_image as torchvision_paste

from harness.testing import (
    Case,
    CheckFailure,
    assert_close,
    assert_raises,
    cases,
    check,
    gradcheck_or_fail,
    gradients,
    in_layout,
    layouts,
    random_boxes,
    seeded_generator,
    seeded_rand,
    seeded_randn,
    strategies,
)

# pycocotools.mask.decode passes numpy a copy=False it does not take (numpy 2): harmless, and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# --- helpers ----------------------------------------------------------------------------------------------------------


def _per_image(boxes: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """RoIs ``Tensor[K, 5]`` as torchvision's other form: one ``Tensor[L_i, 4]`` per image (some empty)."""
    return [boxes[boxes[:, 0] == i, 1:] for i in range(batch)]


@st.composite
def _roi_cases(draw: st.DrawFn, min_rois: int = 0) -> dict:
    """A feature map, RoIs on and beyond its borders (in image coordinates), and roi_align's other arguments."""
    batch, channels = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    scale = draw(st.sampled_from([1.0, 0.5, 0.25]))
    boxes = draw(strategies.rois(batch, height, width, min_rois=min_rois))
    boxes[:, 1:] /= scale  # image coordinates; exact (powers of two)
    return {
        "features": seeded_randn((batch, channels, height, width), draw(strategies.seeds), torch.float64),
        "boxes": boxes if not draw(st.booleans()) else _per_image(boxes, batch),
        "output_size": draw(st.tuples(st.integers(1, 4), st.integers(1, 4))),
        "spatial_scale": scale,
        "sampling_ratio": draw(st.sampled_from([-1, 0, 1, 2, 3])),
        "aligned": draw(st.booleans()),
    }


def _cast(boxes: torch.Tensor | list[torch.Tensor], dtype: torch.dtype, layout: str = "contiguous") -> torch.Tensor | list[torch.Tensor]:
    """RoIs in either form, in ``dtype`` and ``layout``."""
    if isinstance(boxes, torch.Tensor):
        return in_layout(boxes.to(dtype), layout)
    return [in_layout(b.to(dtype), layout) for b in boxes]


def _describe(case: dict) -> str:
    form = "Tensor[K, 5]" if isinstance(case["boxes"], torch.Tensor) else "list"
    options = ", ".join(f"{key}={case[key]}" for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned"))
    return f"map {tuple(case['features'].shape)}, boxes as {form}, {options}"


# --- RoIAlign ---------------------------------------------------------------------------------------------------------


@check("roi_align_matches_torchvision")
@layouts
@given(case=_roi_cases())
def test_roi_align_matches_torchvision(impl, dtype, tolerance, layout, case):
    features, boxes = case["features"].to(dtype), _cast(case["boxes"], dtype)
    options = {key: case[key] for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned")}
    expected = torchvision.ops.roi_align(features, boxes, **options)
    got = impl.roi_align(in_layout(features, layout), _cast(case["boxes"], dtype, layout), **options)
    assert_close(got, expected, tolerance, what=f"roi_align ({_describe(case)}, {layout})")


# A 1 x 2 x 5 x 6 map (H = 5, W = 6). With one bin and one sample, the sample sits at the RoI's centre, so a RoI
# [-2, ., 0, .] samples x = -1 exactly (kept: it reads column 0) and [4, ., 8, .] x = 6 = W (kept: column 5).
# The per-image cases use a 3 x 2 x 5 x 6 map and RoIs as a list of Tensor[L_i, 4].
BORDER_CASES = cases(
    Case("sample_on_minus_one", rois=[[0, -2, 1, 0, 3], [0, 1, -2, 3, 0]], output_size=(1, 1), sampling_ratio=1),
    Case("sample_on_far_edge", rois=[[0, 4, 1, 8, 3], [0, 1, 3, 3, 7]], output_size=(1, 1), sampling_ratio=1),
    Case("samples_just_beyond", rois=[[0, -2.2, 1, 0, 3], [0, 4, 1, 8.4, 3], [0, 1, 3, 3, 7.2]], output_size=(1, 1), sampling_ratio=1),
    Case(
        "samples_between_edge_and_beyond", rois=[[0, -1.8, -1.6, 0.2, 0.0], [0, 4.6, 3.4, 6.8, 5.6]], output_size=(2, 2), sampling_ratio=2
    ),
    Case("overlapping_each_border", rois=[[0, -2, -2, 3, 3], [0, 3, 2, 9, 7], [0, -3, 2, 2, 8]], output_size=(2, 3)),
    Case("entirely_outside", rois=[[0, 10, 10, 14, 14], [0, -9, -9, -5, -5]], output_size=(2, 2)),
    Case("thinner_than_a_cell_legacy", rois=[[0, 1.2, 1.0, 1.5, 4.0], [0, 2.0, 3.3, 5.0, 3.4]], output_size=(2, 2)),
    Case("thinner_than_a_cell_aligned", rois=[[0, 1.2, 1.0, 1.5, 4.0], [0, 2.0, 3.3, 5.0, 3.4]], output_size=(2, 2), aligned=True),
    Case("zero_size_legacy", rois=[[0, 2, 2, 2, 2]], output_size=(2, 2)),
    Case("zero_size_aligned", rois=[[0, 2, 2, 2, 2]], output_size=(2, 2), aligned=True),
    Case("adaptive_grid_grows", rois=[[0, 0, 0, 6, 5], [0, 0.5, 0.25, 5.5, 4.75]], output_size=(2, 1), aligned=True),
    Case("no_rois", rois=[], output_size=(3, 3)),
    Case(
        "image_without_rois",
        per_image=[[[0.5, 0.5, 3.0, 4.0]], [], [[-1.0, 2.0, 5.5, 5.0], [1.0, 1.0, 2.0, 2.0]]],
        output_size=(2, 2),
        sampling_ratio=2,
    ),
    Case("lists_without_rois", per_image=[[], [], []], output_size=(2, 2), sampling_ratio=2),
    Case(
        "lists_of_three_images",  # an image in the middle without RoIs, the last with three, on every border
        per_image=[[[0.5, 0.5, 3.0, 4.0], [-1.5, -1.0, 1.2, 2.0]], [], [[4.0, 3.0, 8.0, 7.5], [0.0, 0.0, 6.0, 5.0], [2.2, 2.2, 2.4, 2.4]]],
        output_size=(2, 3),
    ),
    Case(
        "tensor_rois_out_of_image_order",
        rois=[[2, 0.5, 0.5, 3.0, 4.0], [0, -1, 1, 4, 6], [1, 2, 2, 5, 4], [0, 1, 0, 2, 3]],
        output_size=(3, 2),
    ),
    Case(
        "float32_boxes_on_float64_map",
        rois=[[0, -0.75, 0.5, 3.25, 4.5], [0, 2.5, 1.0, 6.5, 5.0]],
        output_size=(2, 2),
        boxes_dtype=torch.float32,
    ),
)


@check("roi_align_border_cases")
@layouts
@BORDER_CASES
def test_roi_align_border_cases(impl, dtype, tolerance, layout, case):
    boxes_dtype = case.get("boxes_dtype", dtype)  # the output has the map's dtype whatever the boxes' (torchvision: both the same)
    if case.get("per_image") is not None:
        features = seeded_randn((len(case.per_image), 2, 5, 6), 9, dtype)
        boxes = [torch.tensor(rois, dtype=boxes_dtype).reshape(-1, 4) for rois in case.per_image]
    else:
        batch = 1 + int(max((roi[0] for roi in case.rois), default=0))
        features = seeded_randn((batch, 2, 5, 6), 8, dtype)
        boxes = torch.tensor(case.rois, dtype=boxes_dtype).reshape(-1, 5)
    sampling_ratio, aligned = case.get("sampling_ratio", -1), case.get("aligned", False)
    expected = torchvision.ops.roi_align(features, _cast(boxes, dtype), case.output_size, 1.0, sampling_ratio, aligned)
    got = impl.roi_align(in_layout(features, layout), _cast(boxes, boxes_dtype, layout), case.output_size, 1.0, sampling_ratio, aligned)
    what = f"roi_align ({case.name}, sampling_ratio={sampling_ratio}, aligned={aligned}, {layout})"
    assert_close(got, expected, tolerance, what=what)
    if dtype == torch.float64:  # the backward at the borders too (and a zero gradient, still connected, without RoIs)
        grad_out = seeded_randn(tuple(expected.shape), 10, dtype)
        arguments = (case.output_size, 1.0, sampling_ratio, aligned)
        oracle_boxes, graded_boxes = _cast(boxes, dtype), _cast(boxes, boxes_dtype, layout)
        (expected_gradient,) = gradients(
            lambda x: torchvision.ops.roi_align(x, oracle_boxes, *arguments), [features], grad_out, "torchvision"
        )
        (gradient,) = gradients(lambda x: impl.roi_align(x, graded_boxes, *arguments), [in_layout(features, layout)], grad_out, what)
        assert_close(gradient, expected_gradient, tolerance, what=f"gradient of {what} with respect to input")


@check("roi_align_backward_matches_torchvision")
@given(case=_roi_cases(min_rois=1), seed=strategies.seeds)
def test_roi_align_backward_matches_torchvision(impl, dtype, tolerance, case, seed):
    features, boxes = case["features"].to(dtype), _cast(case["boxes"], dtype)
    options = {key: case[key] for key in ("output_size", "spatial_scale", "sampling_ratio", "aligned")}
    shape = torchvision.ops.roi_align(features, boxes, **options).shape
    grad_out = seeded_randn(tuple(shape), seed, dtype)
    (expected,) = gradients(lambda x: torchvision.ops.roi_align(x, boxes, **options), [features], grad_out, "torchvision.ops.roi_align")
    (got,) = gradients(lambda x: impl.roi_align(x, boxes, **options), [features], grad_out, f"roi_align ({_describe(case)})")
    assert_close(got, expected, tolerance, what=f"gradient of roi_align with respect to input ({_describe(case)})")


@check("roi_align_gradcheck")
@pytest.mark.parametrize("aligned", [False, True], ids=["legacy", "aligned"])
@pytest.mark.parametrize("sampling_ratio", [-1, 2], ids=["adaptive", "sampling_2"])
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed_0", "seed_1", "seed_2_non_contiguous"])
def test_roi_align_gradcheck(impl, dtype, tolerance, seed, sampling_ratio, aligned):
    layout = "non_contiguous" if seed == 2 else "contiguous"  # the map and the RoIs
    features = in_layout(seeded_randn((2, 1, 4, 5), seed, dtype), layout)
    boxes = in_layout(torch.tensor([[0, -1.5, -0.7, 2.5, 3.2], [1, 2.3, 1.1, 6.4, 4.9], [1, 0.4, 0.6, 1.1, 1.3]], dtype=dtype), layout)
    # the gradient of the right function (a gradient check alone passes any smooth one): bilinear samples of a constant
    # map, inside it, are that constant
    constant = torch.full((2, 1, 4, 5), 1.75, dtype=dtype)
    inside = torch.tensor([[0, 0.8, 0.9, 3.1, 2.6], [1, 1.2, 0.7, 3.7, 2.4]], dtype=dtype)  # every sample inside, aligned or not
    assert_close(impl.roi_align(constant, inside, (2, 2), 1.0, sampling_ratio, aligned), torch.full((2, 1, 2, 2), 1.75, dtype=dtype),
                 tolerance, what=f"roi_align of a constant map 1.75 (sampling_ratio={sampling_ratio}, aligned={aligned})")  # fmt: skip
    gradcheck_or_fail(lambda x: impl.roi_align(x, boxes, (2, 2), 1.0, sampling_ratio, aligned), (features,), tolerance,
                      f"roi_align (sampling_ratio={sampling_ratio}, aligned={aligned}, {layout})")  # fmt: skip


# --- RoIPool ----------------------------------------------------------------------------------------------------------


@st.composite
def _roi_pool_cases(draw: st.DrawFn) -> dict:
    batch, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 10)), draw(st.integers(1, 10))
    scale = draw(st.sampled_from([1.0, 0.5]))
    boxes = draw(strategies.rois(batch, height, width, min_rois=1))
    boxes[:, 1:] /= scale
    features = seeded_randn((batch, 2, height, width), draw(strategies.seeds), torch.float64)
    if draw(st.booleans()):
        features = features.mul(1.5).round()  # a few distinct values: many ties within a bin
    if draw(st.booleans()):  # torchvision's other form: one Tensor[L_i, 4] per image, in image order
        boxes = boxes[torch.argsort(boxes[:, 0], stable=True)]
        boxes = boxes if not draw(st.booleans()) else _per_image(boxes, batch)
    return {"features": features, "boxes": boxes, "output_size": draw(st.tuples(st.integers(1, 4), st.integers(1, 4))), "scale": scale}


@check("roi_pool_matches_torchvision")
@layouts
@given(case=_roi_pool_cases(), seed=strategies.seeds)
def test_roi_pool_matches_torchvision(impl, dtype, tolerance, layout, case, seed):
    features, boxes, output_size, scale = case["features"].to(dtype), _cast(case["boxes"], dtype), case["output_size"], case["scale"]
    form = "Tensor[K, 5]" if isinstance(boxes, torch.Tensor) else f"a list of {len(boxes)} images' boxes"
    what = f"roi_pool (map {tuple(features.shape)}, boxes as {form}, output_size={output_size}, spatial_scale={scale}, {layout})"
    expected = torchvision.ops.roi_pool(features, boxes, output_size, scale)
    got = impl.roi_pool(in_layout(features, layout), _cast(boxes, dtype, layout), output_size, scale)
    assert_close(got, expected, tolerance, what=what)
    grad_out = seeded_randn(tuple(expected.shape), seed, dtype)
    (expected_gradient,) = gradients(
        lambda x: torchvision.ops.roi_pool(x, boxes, output_size, scale), [features], grad_out, "torchvision.ops.roi_pool"
    )
    (gradient,) = gradients(lambda x: impl.roi_pool(x, boxes, output_size, scale), [features], grad_out, what)
    assert_close(gradient, expected_gradient, tolerance, what=f"gradient of {what}")


# --- box coding -------------------------------------------------------------------------------------------------------

DEFAULT_WEIGHTS = Case("default_weights", keywords={}, weights=(10.0, 10.0, 5.0, 5.0))  # the argument left out
UNIT_WEIGHTS = Case("unit_weights", keywords={"weights": (1.0, 1.0, 1.0, 1.0)}, weights=(1.0, 1.0, 1.0, 1.0))
OTHER_WEIGHTS = Case("other_weights", keywords={"weights": (2.0, 3.0, 0.5, 4.0)}, weights=(2.0, 3.0, 0.5, 4.0))


@check("encode_boxes_matches_torchvision")
@layouts
@cases(DEFAULT_WEIGHTS, UNIT_WEIGHTS, OTHER_WEIGHTS, argname="weights")
@pytest.mark.parametrize("anchors_dtype", ["same", "other"], ids=["anchors_same_dtype", "anchors_other_dtype"])
def test_encode_boxes_matches_torchvision(impl, dtype, tolerance, layout, weights, anchors_dtype):
    other = torch.float64 if dtype == torch.float32 else torch.float32
    boxes, anchors = random_boxes(32, 1, dtype=dtype), random_boxes(32, 2, dtype=dtype if anchors_dtype == "same" else other)
    expected = BoxCoder(weights.weights).encode_single(boxes, anchors.to(dtype))  # the boxes' dtype (torchvision promotes)
    got = impl.encode_boxes(in_layout(boxes, layout), in_layout(anchors, layout), **weights.keywords)
    assert_close(got, expected, tolerance, what=f"encode_boxes ({weights.name}, anchors {anchors.dtype}, {layout})")


DECODE_CASES = cases(
    Case("one_set_default", sets=1, scale=2.0),
    Case("three_sets_default", sets=3, scale=2.0),
    Case("other_weights_and_clamp", sets=3, weights=(2.0, 3.0, 0.5, 4.0), clamp=2.0, scale=2.0, clamped=True),
    Case("far_beyond_the_clamp", sets=2, scale=200.0, clamped=True),  # dw / 5 up to ~100: exp would overflow without the clamp
    Case("other_clamp_only", sets=2, clamp=0.5, scale=4.0, clamped=True),  # default weights: dw / 5 beyond 0.5 for many rows
    Case("other_weights_beyond_default_clamp", sets=1, weights=(1.0, 0.5, 2.0, 0.25), scale=8.0, clamped=True),  # dh / 0.25 past 4.14
    Case("anchors_of_the_other_dtype", sets=2, scale=2.0, other_anchors=True),  # the output has the deltas' dtype
)


@check("decode_boxes_matches_torchvision")
@layouts
@DECODE_CASES
def test_decode_boxes_matches_torchvision(impl, dtype, tolerance, layout, case):
    other = torch.float64 if dtype == torch.float32 else torch.float32
    anchors = random_boxes(24, 3, dtype=other if case.get("other_anchors") else dtype)
    deltas = seeded_randn((24, 4 * case.sets), 4, dtype, scale=case.scale)
    clamp, weights = case.get("clamp", math.log(1000 / 16)), case.get("weights") or (10.0, 10.0, 5.0, 5.0)
    clamped = (deltas[:, 2::4] / weights[2] > clamp) | (deltas[:, 3::4] / weights[3] > clamp)
    assert bool(clamped.any()) or not case.get("clamped"), f"{case.name}: no size delta reaches the clamp"
    keywords = {key: case.get(key) for key in ("weights", "clamp") if case.get(key) is not None}
    coder = BoxCoder(
        case.get("weights") or (10.0, 10.0, 5.0, 5.0), **({"bbox_xform_clip": case.clamp} if case.get("clamp") is not None else {})
    )
    expected = coder.decode_single(deltas, anchors)
    got = impl.decode_boxes(in_layout(deltas, layout), in_layout(anchors, layout), **keywords)
    assert_close(got, expected, tolerance, what=f"decode_boxes ({case.name}, {layout})")


@st.composite
def _boxes_and_anchors(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of boxes (positive sizes) whose size ratios stay well inside the clamp (a factor of 50 either way)."""
    boxes = draw(strategies.boxes_xyxy(max_boxes=8)).double()
    anchors = draw(strategies.boxes_xyxy(max_boxes=8)).double()
    count = min(len(boxes), len(anchors))
    boxes, anchors = boxes[:count], anchors[:count]
    sizes, anchor_sizes = boxes[:, 2:] - boxes[:, :2], anchors[:, 2:] - anchors[:, :2]
    keep = ((sizes / anchor_sizes).log().abs() < math.log(50)).all(dim=1) & (sizes > 1e-3).all(dim=1) & (anchor_sizes > 1e-3).all(dim=1)
    return boxes[keep], anchors[keep]


_ANCHORS = torch.tensor([[2.0, 3.0, 10.0, 7.5], [0.5, 0.25, 40.0, 90.0], [-4.0, 6.0, -1.0, 6.5]], dtype=torch.float64)


@check("encode_decode_round_trip")
@cases(DEFAULT_WEIGHTS, OTHER_WEIGHTS, argname="weights")
@given(pair=_boxes_and_anchors(), anchored=st.just(False))
@example(pair=(_ANCHORS.flip(0), _ANCHORS), anchored=True)
def test_encode_decode_round_trip(impl, dtype, tolerance, weights, pair, anchored):
    boxes, anchors = (tensor.to(dtype) for tensor in pair)
    decoded = impl.decode_boxes(impl.encode_boxes(boxes, anchors, **weights.keywords), anchors, **weights.keywords)
    assert_close(decoded, boxes, tolerance, what=f"decode_boxes(encode_boxes(boxes, anchors)) ({weights.name})")
    if not anchored:
        return
    # and not any pair of inverse maps (two identities): a box equal to its anchor is the zero offset
    zero = impl.encode_boxes(anchors, anchors, **weights.keywords)
    assert_close(zero, torch.zeros_like(anchors), tolerance, what=f"encode_boxes(anchors, anchors) ({weights.name})")
    assert_close(impl.decode_boxes(torch.zeros_like(anchors), anchors, **weights.keywords), anchors, tolerance,
                 what=f"decode_boxes(zeros, anchors) ({weights.name})")  # fmt: skip


# --- anchors ----------------------------------------------------------------------------------------------------------


ANCHOR_CASES = cases(
    Case("one_cell", grid=(1, 1), stride=16, sizes=(32.0,), ratios=(1.0,)),
    Case("three_sizes_three_ratios", grid=(5, 7), stride=8, sizes=(8.0, 16.0, 32.0), ratios=(0.5, 1.0, 2.0)),
    Case("fractional_sizes", grid=(3, 2), stride=4, sizes=(10.0, 13.3), ratios=(0.7, 1.0)),
    Case(
        "halves_round_to_even", grid=(2, 4), stride=5, sizes=(3.0, 5.0, 7.0, 9.0), ratios=(1.0,)
    ),  # half-widths 1.5, 2.5, 3.5, 4.5 -> 2, 2, 4, 4
)


@check("anchor_grid_matches_torchvision")
@pytest.mark.parametrize("offset", [0.0, 0.5], ids=["offset_0", "offset_half"])
@ANCHOR_CASES
def test_anchor_grid_matches_torchvision(impl, tolerance, case, offset):
    (height, width), stride = case.grid, case.stride
    anchor_generator = AnchorGenerator((case.sizes,), (case.ratios,))
    images = ImageList(torch.zeros(1, 3, height * stride, width * stride), [(height * stride, width * stride)])
    expected = anchor_generator(images, [torch.zeros(1, 1, height, width)])[0] + offset * stride  # torchvision's offset is 0; float32
    got = impl.anchor_grid((height, width), stride, case.sizes, case.ratios, offset=offset)
    assert_close(got, expected, tolerance, what=f"anchor_grid ({case.name}, offset={offset})")


# --- masks ------------------------------------------------------------------------------------------------------------


PASTE_BOXES = [
    [0.0, 0.0, 10.0, 10.0], [-3.7, -2.2, 5.5, 9.9], [50.0, 40.0, 70.0, 66.0], [3.0, 4.0, 3.4, 4.2],
    [10.5, 2.5, 40.7, 30.1], [-0.6, -0.4, 2.0, 2.0], [20.2, 30.8, 21.9, 55.0], [0.0, 0.0, 64.0, 60.0],
]  # fmt: skip


@check("paste_masks_matches_torchvision")
@layouts
@cases(
    Case("M7_padding_0", mask_size=7, padding=0),
    Case("M7_padding_1", mask_size=7, padding=1),
    Case("M28_padding_1", mask_size=28, padding=1),
    Case("M28_padding_2", mask_size=28, padding=2),
    Case("no_masks", mask_size=7, padding=1, count=0),
    Case("M7_float64_boxes", mask_size=7, padding=1, boxes_dtype=torch.float64),  # the output has the masks' dtype
)
def test_paste_masks_matches_torchvision(impl, dtype, tolerance, layout, case):
    boxes = torch.tensor(PASTE_BOXES[: case.get("count")], dtype=case.get("boxes_dtype", dtype)).reshape(-1, 4)
    masks = seeded_rand((len(boxes), 1, case.mask_size, case.mask_size), case.mask_size + case.padding, dtype)
    expected = torchvision_paste(masks, boxes, (60, 64), case.padding)
    got = impl.paste_masks_in_image(in_layout(masks, layout), in_layout(boxes, layout), (60, 64), case.padding)
    assert_close(got, expected, tolerance, what=f"paste_masks_in_image ({case.name}, image 60 x 64, {layout})")


def _iou_by_loop(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    result = torch.zeros(len(first), len(second), dtype=torch.float32)
    for i, a in enumerate(first.bool().flatten(1).tolist()):
        for j, b in enumerate(second.bool().flatten(1).tolist()):
            intersection = sum(x and y for x, y in zip(a, b))
            union = sum(x or y for x, y in zip(a, b))
            result[i, j] = intersection / union if union else 0.0
    return result


def _mask_sets(case: Case) -> tuple[torch.Tensor, torch.Tensor]:
    """Five random 9 x 7 bool masks of random densities and four of density 0.4, then the case's changes."""
    generator = seeded_generator(case.seed)
    first = torch.rand(5, 9, 7, generator=generator) < torch.rand(5, 1, 1, generator=generator)
    second = torch.rand(4, 9, 7, generator=generator) < 0.4
    if case.get("special_pairs"):  # identical, disjoint (the complement), empty vs anything, and an empty first mask
        second = torch.stack([first[0], ~first[0], torch.zeros(9, 7, dtype=torch.bool), first[3]])
        first[4] = False
    if case.get("as_uint8"):
        first, second = first.to(torch.uint8), second.to(torch.uint8)
    if case.get("second_uint8"):
        second = second.to(torch.uint8)
    if case.get("first_empty"):
        first = first[:0]
    return first, second


@check("mask_iou_matches_loop")
@layouts
@cases(
    Case("random", seed=6),
    Case("identical_disjoint_empty", seed=24, special_pairs=True),
    Case("uint8", seed=5, as_uint8=True),
    Case("bool_and_uint8", seed=7, second_uint8=True),
    Case("empty_sets", seed=10, first_empty=True),
)
def test_mask_iou_matches_loop(impl, tolerance, layout, case):
    first, second = _mask_sets(case)
    got = impl.mask_iou(in_layout(first, layout), in_layout(second, layout))
    assert_close(got, _iou_by_loop(first, second), tolerance, what=f"mask_iou ({case.name}, {layout})")  # float32, as the loop's


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
@layouts
@given(mask=strategies.binary_masks())
def test_rle_encode_matches_pycocotools(impl, layout, mask):
    height, width = mask.shape
    what = f"rle_encode of a {height} x {width} mask ({layout})"
    counts = _check_rle(impl.rle_encode(in_layout(mask, layout)), (height, width), what)
    expected = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))["counts"]
    got = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)["counts"]
    if got != expected:
        raise CheckFailure(f"{what}: counts {counts[:12]}{'...' if len(counts) > 12 else ''} differ from pycocotools' "
                           f"(compressed {got[:24]!r} vs {expected[:24]!r}); COCO reads pixels column by column, 0s first")  # fmt: skip


@st.composite
def _uncompressed_rles(draw: st.DrawFn) -> dict:
    """Random run lengths (zero-length runs included) summing to H * W."""
    height, width = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(strategies.seeds))
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
    assert_raises(
        ValueError, lambda: impl.rle_decode(broken), f"rle_decode of counts summing to {height * width + 1} for a {height} x {width} mask"
    )
    negative = {"size": list(rle["size"]), "counts": [*rle["counts"], 2, -2]}  # still summing to H * W
    assert_raises(
        ValueError, lambda: impl.rle_decode(negative), f"rle_decode of counts {negative['counts']} (a negative run, summing to H * W)"
    )


@check("rle_round_trip")
@given(mask=strategies.binary_masks())
def test_rle_round_trip(impl, mask):
    rle = impl.rle_encode(mask)
    height, width = mask.shape
    if not isinstance(rle, dict) or list(rle.get("size", ())) != [height, width] or sum(rle.get("counts", [-1])) != height * width:
        raise CheckFailure(f"rle_encode of a {height} x {width} mask gave {type(rle).__name__} {str(rle)[:80]}, not {{'size': [H, W], 'counts': runs summing to H * W}}")
    decoded = impl.rle_decode(rle)
    if not isinstance(decoded, torch.Tensor) or decoded.shape != mask.shape or not torch.equal(decoded.bool(), mask):
        got = tuple(decoded.shape) if isinstance(decoded, torch.Tensor) else type(decoded).__name__
        raise CheckFailure(f"rle_decode(rle_encode(mask)) of a {tuple(mask.shape)} mask gave {got}, not the mask back")


# --- input validation -------------------------------------------------------------------------------------------------

MAP = seeded_randn((3, 2, 5, 6), 30)
ROIS = torch.tensor([[0, 1.0, 1.0, 4.0, 3.0], [2, 0.5, 0.0, 5.5, 4.0]])
BOXES = random_boxes(3, 31)


def _rois_with_index(index: float) -> torch.Tensor:
    rois = ROIS.clone()
    rois[1, 0] = index
    return rois


@check("invalid_inputs_raise_clear_errors")
@cases(
    Case("roi_align_batch_index_N", expected=ValueError, call=lambda impl: impl.roi_align(MAP, _rois_with_index(3), 2)),
    Case("roi_align_batch_index_minus_1", expected=ValueError, call=lambda impl: impl.roi_align(MAP, _rois_with_index(-1), 2)),
    Case("roi_align_four_lists_three_images", expected=ValueError, call=lambda impl: impl.roi_align(MAP, [BOXES[:1]] * 4, 2)),
    Case("roi_align_output_size_0", expected=ValueError, call=lambda impl: impl.roi_align(MAP, ROIS, (0, 2))),
    Case("roi_align_integer_map", expected=TypeError, call=lambda impl: impl.roi_align(MAP.long(), ROIS, 2)),
    Case("roi_pool_batch_index_N", expected=ValueError, call=lambda impl: impl.roi_pool(MAP, _rois_with_index(3), 2)),
    Case("roi_pool_batch_index_minus_1", expected=ValueError, call=lambda impl: impl.roi_pool(MAP, _rois_with_index(-1), 2)),
    Case("roi_pool_four_lists_three_images", expected=ValueError, call=lambda impl: impl.roi_pool(MAP, [BOXES[:1]] * 4, 2)),
    Case("roi_pool_output_size_0", expected=ValueError, call=lambda impl: impl.roi_pool(MAP, ROIS, (2, 0))),
    Case("encode_3_boxes_2_anchors", expected=ValueError, call=lambda impl: impl.encode_boxes(BOXES, BOXES[:2])),
    Case("encode_3d_boxes", expected=ValueError, call=lambda impl: impl.encode_boxes(BOXES[:, :, None], BOXES)),
    Case("roi_align_3d_rois", expected=ValueError, call=lambda impl: impl.roi_align(MAP, ROIS[:, :, None], 2)),
    Case("decode_6_columns", expected=ValueError, call=lambda impl: impl.decode_boxes(torch.zeros(3, 6), BOXES)),
    Case("decode_2_anchors_3_rows", expected=ValueError, call=lambda impl: impl.decode_boxes(torch.zeros(3, 4), BOXES[:2])),
    Case("anchor_grid_no_sizes", expected=ValueError, call=lambda impl: impl.anchor_grid((2, 3), 8, (), (1.0,))),
    Case("anchor_grid_size_0", expected=ValueError, call=lambda impl: impl.anchor_grid((2, 3), 8, (0.0, 16.0), (1.0,))),
    Case("anchor_grid_ratio_minus_1", expected=ValueError, call=lambda impl: impl.anchor_grid((2, 3), 8, (16.0,), (1.0, -1.0))),
    Case("anchor_grid_stride_0", expected=ValueError, call=lambda impl: impl.anchor_grid((2, 3), 0, (16.0,), (1.0,))),
    Case(
        "paste_2_boxes_3_masks",
        expected=ValueError,
        call=lambda impl: impl.paste_masks_in_image(torch.rand(3, 1, 7, 7), BOXES[:2], (20, 24)),
    ),
    Case(
        "mask_iou_sizes_differ",
        expected=ValueError,
        call=lambda impl: impl.mask_iou(torch.ones(2, 5, 5, dtype=torch.bool), torch.ones(1, 5, 6, dtype=torch.bool)),
    ),
    Case("mask_iou_float_masks", expected=TypeError, call=lambda impl: impl.mask_iou(torch.ones(2, 5, 5), torch.ones(1, 5, 5))),
    Case("rle_encode_float_mask", expected=TypeError, call=lambda impl: impl.rle_encode(torch.ones(4, 3))),
)
def test_invalid_inputs_raise_clear_errors(impl, case):
    assert_raises(case.expected, lambda: case.call(impl), case.name)
