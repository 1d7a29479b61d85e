"""The shapes scenes generator: array contract, labels that agree with the pixels, colours, parameters, helpers.

Scene properties are checked on ``shapes64``'s validation split and on small variants that reach what it does
not (all ten classes, upright shapes, a plain background, one object per scene, other anti-aliasing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from harness.datasets import load_split, registry
from harness.datasets.shapes import (
    BACKGROUNDS,
    COLOR_NAMES,
    COLORS,
    OBJECT_KEYS,
    SHAPE_CLASSES,
    SIZE_NAMES,
    SIZE_RADII,
    TEXTURE_AMPLITUDE,
    instance_masks,
    make_shapes,
    objects_of,
    tight_boxes,
)

PALETTE = np.array([COLORS[name] for name in COLOR_NAMES], np.uint8)  # (colours, 3)
PER_IMAGE = {"images": np.uint8, "counts": np.int64, "labels": np.int64, "semantic": np.uint8, "instances": np.uint8}
PER_OBJECT = {"object_image": np.int64, "boxes": np.float32, "classes": np.int64, "colors": np.int64, "sizes": np.int64}


@dataclass(frozen=True)
class Variant:
    """A set of scenes to check: ``shapes64``'s validation split, or a small generation with other parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)  # make_shapes parameters; empty: shapes64's
    # Pixels at least this far inside an object's visible mask must show its palette colour exactly. One pixel is
    # enough for a lone object; with several, a sharp corner of another object can reach between pixel centres
    # (marking none of them) into the nearest ring of pixels, so those scenes are checked two pixels in.
    interior_margin: int = 2


VARIANTS = [
    Variant("shapes64-val"),
    Variant("all-classes-upright-plain", {"num_classes": 10, "rotate": False, "background": "plain", "max_objects": 8}),
    Variant("one-object-antialias5", {"num_classes": 10, "min_objects": 1, "max_objects": 1, "background": "plain", "antialias": 5}, 1),
    Variant("crowded-no-antialias", {"min_objects": 6, "max_objects": 10, "antialias": 1, "min_visible_fraction": 0.8}),
    Variant("last-five-classes-one-object", {"image_size": 32, "num_classes": 5, "first_class": 5, "max_objects": 1, "min_visible_fraction": 1.0}, 1),
]


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda variant: variant.name)
def scenes(request) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(the full make_shapes parameters, the arrays) of one variant."""
    variant: Variant = request.param
    entry = registry()["shapes64"]
    if not variant.params:
        return {**entry.params, "interior_margin": variant.interior_margin}, load_split("shapes64", "val", seed=entry.seed)
    params = {**entry.params, **variant.params}
    arrays = make_shapes(split="train", seed=11, sizes={"train": 120}, **params)
    return {**params, "interior_margin": variant.interior_margin}, arrays


def object_offsets(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """int64[N]: index of each scene's first object in the flat per-object arrays."""
    return np.concatenate([[0], np.cumsum(arrays["counts"])[:-1]]).astype(np.int64)


# --- the array contract --------------------------------------------------------------------------------------


def test_shapes_arrays_have_documented_keys_dtypes_and_shapes(scenes):
    params, arrays = scenes
    size, count, objects = params["image_size"], len(arrays["images"]), len(arrays["classes"])
    assert set(arrays) == {*PER_IMAGE, *PER_OBJECT, "captions"}
    for key, dtype in PER_IMAGE.items():
        assert arrays[key].dtype == dtype and len(arrays[key]) == count, f"{key}: {arrays[key].dtype}{list(arrays[key].shape)}"
    for key, dtype in PER_OBJECT.items():
        assert arrays[key].dtype == dtype and len(arrays[key]) == objects, f"{key}: {arrays[key].dtype}{list(arrays[key].shape)}"
    assert arrays["images"].shape[1:] == (size, size, 3)
    assert arrays["semantic"].shape[1:] == arrays["instances"].shape[1:] == (size, size)
    assert arrays["boxes"].shape == (objects, 4)
    assert arrays["captions"].shape == (objects,) and arrays["captions"].dtype.kind == "U"


def test_shapes_counts_within_bounds_and_object_image_sorted(scenes):
    params, arrays = scenes
    counts = arrays["counts"]
    assert counts.min() >= 1 and counts.max() <= params["max_objects"], f"counts span [{counts.min()}, {counts.max()}]"
    assert np.all(np.diff(arrays["object_image"]) >= 0), "object_image is not sorted"
    np.testing.assert_array_equal(arrays["object_image"], np.repeat(np.arange(len(counts)), counts))


def test_shapes_labels_within_configured_ranges(scenes):
    params, arrays = scenes
    first_class = params.get("first_class", 0)
    ranges = (("classes", first_class, params["num_classes"]), ("colors", 0, params["num_colors"]), ("sizes", 0, len(SIZE_NAMES)))
    for key, low, count in ranges:
        values = arrays[key]
        assert values.min() >= low and values.max() < low + count, f"{key} span [{values.min()}, {values.max()}], expected [{low}, {low + count})"
        assert len(np.unique(values)) == count, f"{key}: only {np.unique(values).tolist()} of {count} values drawn"


def test_shapes_captions_name_size_colour_and_shape(scenes):
    _, arrays = scenes
    expected = [
        f"a {SIZE_NAMES[size]} {COLOR_NAMES[color]} {SHAPE_CLASSES[shape]}"
        for shape, color, size in zip(arrays["classes"], arrays["colors"], arrays["sizes"])
    ]
    assert arrays["captions"].tolist() == expected


# --- labels agree with the pixels ----------------------------------------------------------------------------


def test_shapes_boxes_are_tight_around_visible_masks(scenes):
    _, arrays = scenes
    for index, (scene, offset) in enumerate(zip(arrays["instances"], object_offsets(arrays))):
        for k in range(arrays["counts"][index]):
            rows, columns = np.nonzero(scene == k + 1)
            assert len(rows), f"scene {index}: object {k} has no visible pixel"
            expected = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
            actual = arrays["boxes"][offset + k].tolist()
            assert actual == expected, f"scene {index}, object {k}: box {actual}, visible mask spans {expected}"


def test_shapes_instance_ids_refer_to_the_scene_objects(scenes):
    _, arrays = scenes
    largest_id = arrays["instances"].reshape(len(arrays["counts"]), -1).max(axis=1)
    np.testing.assert_array_equal(largest_id, arrays["counts"], err_msg="instance ids must run 1..counts[i]")


def test_shapes_semantic_map_agrees_with_instances_and_classes(scenes):
    _, arrays = scenes
    instances = arrays["instances"].astype(np.int64)
    flat_object = object_offsets(arrays)[:, None, None] + instances - 1  # (N, H, W): index into the flat arrays
    expected = np.where(instances > 0, arrays["classes"][np.maximum(flat_object, 0)] + 1, 0)
    np.testing.assert_array_equal(arrays["semantic"], expected)


def test_shapes_labels_are_class_of_largest_object(scenes):
    _, arrays = scenes
    for index, offset in enumerate(object_offsets(arrays)):
        areas = np.bincount(arrays["instances"][index].ravel(), minlength=arrays["counts"][index] + 1)[1:]
        expected = arrays["classes"][offset + np.argmax(areas)]
        assert arrays["labels"][index] == expected, f"scene {index}: label {arrays['labels'][index]}, areas {areas.tolist()}"


def test_shapes_interior_pixels_show_palette_colour(scenes):
    params, arrays = scenes
    margin = params["interior_margin"]
    structure = np.ones((2 * margin + 1, 2 * margin + 1), bool)
    checked = total = 0
    for index, offset in enumerate(object_offsets(arrays)):
        for k, mask in enumerate(instance_masks(arrays, index)):
            interior = ndimage.binary_erosion(mask, structure)
            pixels = arrays["images"][index][interior]
            colour = PALETTE[arrays["colors"][offset + k]]
            wrong = np.flatnonzero(np.any(pixels != colour, axis=1))
            where = np.argwhere(interior)[wrong[:1]].tolist()
            assert not len(wrong), f"scene {index}, object {k}: interior pixel {where} is {pixels[wrong[:1]].tolist()}, not {colour}"
            checked, total = checked + len(pixels), total + mask.sum()
    assert checked > 0.2 * total, f"only {checked} of {total} object pixels are interior: the check is vacuous"


def test_shapes_background_is_plain_or_low_contrast(scenes):
    params, arrays = scenes
    spread = 0 if params["background"] == "plain" else int(2 * TEXTURE_AMPLITUDE) + 1  # noise in [-1, 1], rounded
    for index in range(len(arrays["images"])):
        near_objects = ndimage.binary_dilation(arrays["instances"][index] > 0, np.ones((5, 5), bool))
        background = arrays["images"][index][~near_objects].astype(np.int64)  # (pixels, 3)
        span = background.max(axis=0) - background.min(axis=0)
        assert np.all(span <= spread), f"scene {index}: background channels span {span.tolist()}, at most {spread} expected"


def test_shapes_antialiasing_blends_background_and_palette():
    """A lone object on a plain background: each pixel is ``(1 - c) * background + c * colour``, ``c`` a multiple of
    1 / antialias**2: above 0 on the mask (its centre sample is inside), below 1 off it, 0 beyond two pixels."""
    samples = 5
    arrays = make_shapes(split="train", seed=3, sizes={"train": 60}, num_classes=10, max_objects=1, background="plain", antialias=samples)
    for index, image in enumerate(arrays["images"].astype(np.float64)):
        background, colour = image[0, 0], PALETTE[arrays["colors"][index]].astype(np.float64)
        difference = colour - background
        coverage = (image - background) @ difference / (difference @ difference)  # (H, W), least squares per pixel
        quantised = np.round(coverage * samples**2) / samples**2
        blended = (1 - quantised[:, :, None]) * background + quantised[:, :, None] * colour
        assert np.abs(image - blended).max() <= 1.0, f"scene {index}: a pixel is no blend of background and {colour}"
        mask = arrays["instances"][index] > 0
        assert quantised[mask].min() > 0, f"scene {index}: a mask pixel shows no colour"
        assert quantised[~mask].max() < 1, f"scene {index}: a pixel outside the mask is fully covered"
        far = ~ndimage.binary_dilation(mask, np.ones((5, 5), bool))
        assert quantised[far].max() == 0, f"scene {index}: colour bleeds more than two pixels beyond the mask"


def test_shapes_upright_squares_fill_their_boxes():
    arrays = make_shapes(split="train", seed=4, sizes={"train": 40}, num_classes=2, max_objects=1, rotate=False)
    squares = np.flatnonzero(arrays["classes"] == SHAPE_CLASSES.index("square"))
    assert len(squares) > 5
    for index in squares:  # one object per scene: object index == scene index
        x1, y1, x2, y2 = arrays["boxes"][index]
        # The side covers one pixel centre more along one axis than the other, depending on where it falls.
        assert abs((x2 - x1) - (y2 - y1)) <= 1, f"scene {index}: an upright square's box is {x2 - x1} x {y2 - y1}"
        assert (arrays["instances"][index] > 0).sum() == (x2 - x1) * (y2 - y1), f"scene {index}: the square does not fill its box"


def test_shapes_size_classes_are_separable():
    (small_low, small_high), (large_low, large_high) = SIZE_RADII["small"], SIZE_RADII["large"]
    assert 0 < small_low < small_high < large_low < large_high < 0.5, "radius ranges must be disjoint and fit the image"


def test_shapes_constants_are_consistent():
    assert len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES) == 10
    assert len(set(COLOR_NAMES)) == len(COLOR_NAMES) and set(SIZE_RADII) == set(SIZE_NAMES) == {"small", "large"}
    assert all(len(rgb) == 3 and all(0 <= channel <= 255 for channel in rgb) for rgb in COLORS.values())
    assert BACKGROUNDS == ("plain", "texture")


# --- generation ----------------------------------------------------------------------------------------------


def test_shapes_scene_does_not_depend_on_split_size():
    small = make_shapes(split="val", seed=5, sizes={"val": 4})
    large = make_shapes(split="val", seed=5, sizes={"val": 9})
    np.testing.assert_array_equal(small["images"], large["images"][:4])
    objects = small["counts"].sum()
    np.testing.assert_array_equal(small["boxes"], large["boxes"][:objects])


def test_shapes_splits_are_independent_draws():
    sizes = {"train": 6, "val": 6}
    train, val = (make_shapes(split=split, seed=5, sizes=sizes) for split in sizes)
    assert not np.array_equal(train["images"], val["images"])
    renamed = make_shapes(split="train", seed=5, sizes={"val": 6, "train": 6})
    np.testing.assert_array_equal(train["images"], renamed["images"], err_msg="a split's stream must not depend on dict order")


def test_shapes_empty_split_keeps_dtypes():
    arrays = make_shapes(split="test", seed=0, sizes={"test": 0})
    assert arrays["images"].shape == (0, 64, 64, 3) and arrays["boxes"].shape == (0, 4)
    assert arrays["captions"].dtype == make_shapes(split="test", seed=0, sizes={"test": 1})["captions"].dtype


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"split": "dev"}, "split 'dev'"),
        ({"seed": -1}, "seed"),
        ({"image_size": 16}, "image_size"),
        ({"max_objects": 0}, "max_objects"),
        ({"min_objects": 4, "max_objects": 3}, "min_objects"),
        ({"num_classes": 11}, "num_classes"),
        ({"num_classes": 5, "first_class": 6}, "first_class"),
        ({"num_colors": 0}, "num_colors"),
        ({"antialias": 4}, "antialias must be odd"),
        ({"background": "noise"}, "background"),
        ({"min_visible_fraction": 0.0}, "min_visible_fraction"),
        ({"rotate": 1}, "rotate"),
        ({"max_attempts": 2.5}, "max_attempts"),
    ],
    ids=lambda value: ",".join(f"{key}={item}" for key, item in value.items()) if isinstance(value, dict) else "",
)
def test_shapes_rejects_bad_parameters(params, message):
    arguments = {"split": "train", "seed": 0, "sizes": {"train": 1}, **params}
    with pytest.raises(ValueError, match=message):
        make_shapes(**arguments)


# --- helpers -------------------------------------------------------------------------------------------------


def test_objects_of_returns_the_scene_objects():
    arrays = make_shapes(split="train", seed=6, sizes={"train": 5})
    offsets = object_offsets(arrays)
    for index in range(5):
        objects = objects_of(arrays, index)
        assert set(objects) == set(OBJECT_KEYS)
        for key in OBJECT_KEYS:
            np.testing.assert_array_equal(objects[key], arrays[key][offsets[index] : offsets[index] + arrays["counts"][index]])
    with pytest.raises(IndexError):
        objects_of(arrays, 5)


def test_instance_masks_are_disjoint_and_cover_the_objects():
    arrays = make_shapes(split="train", seed=6, sizes={"train": 5})
    for index in range(5):
        masks = instance_masks(arrays, index)
        assert masks.dtype == np.bool_ and masks.shape == (arrays["counts"][index], 64, 64)
        assert masks.sum(axis=0).max() == 1
        np.testing.assert_array_equal(masks.any(axis=0), arrays["instances"][index] > 0)
        np.testing.assert_array_equal(tight_boxes(masks), objects_of(arrays, index)["boxes"])
    with pytest.raises(IndexError):
        instance_masks(arrays, -1)


def test_tight_boxes_use_pixel_edges():
    masks = np.zeros((3, 10, 12), bool)
    masks[0, 2:5, 3:8] = True  # rows 2..4, columns 3..7
    masks[2] = True
    np.testing.assert_array_equal(tight_boxes(masks), np.array([[3, 2, 8, 5], [0, 0, 0, 0], [0, 0, 12, 10]], np.float32))
    with pytest.raises(ValueError, match="bool"):
        tight_boxes(masks.astype(np.uint8))
