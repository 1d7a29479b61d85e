"""``shapes``: synthetic scenes of coloured geometric shapes, with boxes, masks, classes and captions.

One generator serves the topics that need labelled scenes: classification (04), detection (06), semantic (07)
and instance (08) segmentation, captioned generation (11), CLIP (18), open-vocabulary segmentation (24) and
VQA (25). Each scene has a background (plain or a low-contrast texture) and 1 to ``max_objects`` objects, each
a shape class from :data:`SHAPE_CLASSES`, a colour from :data:`COLORS`, a size class from :data:`SIZE_NAMES`,
a position and a rotation. Objects are drawn in order, later ones on top; they may overlap and occlude.

Arrays of one split (``N`` scenes holding ``M`` objects in all; objects are stored flat, scene by scene):

- ``images`` (uint8[N, H, W, 3]): RGB.
- ``counts`` (int64[N]): objects in each scene, in ``[1, max_objects]``.
- ``labels`` (int64[N]): class of the scene's largest object (most visible pixels; the earliest on a tie), so a
  one-object variant is a classification set.
- ``semantic`` (uint8[N, H, W]): 0 for background, ``class + 1`` where an object is the topmost one.
- ``instances`` (uint8[N, H, W]): 0 for background, ``k + 1`` where the scene's ``k``-th object (in drawing
  order, bottom to top) is the topmost one.
- ``object_image`` (int64[M]): the scene each object belongs to; sorted, scene ``i`` owning ``counts[i]``
  consecutive objects in drawing order.
- ``boxes`` (float32[M, 4]): ``x1, y1, x2, y2`` on pixel edges, tight around the object's *visible* mask: an
  object covering pixel columns 3..7 inclusive has ``x1 = 3``, ``x2 = 8``.
- ``classes`` (int64[M]): index into :data:`SHAPE_CLASSES`.
- ``colors`` (int64[M]): index into :data:`COLOR_NAMES` (RGB values in :data:`COLORS`).
- ``sizes`` (int64[M]): index into :data:`SIZE_NAMES` (0 small, 1 large).
- ``captions`` (str[M], numpy ``<U``, fixed width): ``"a {size} {colour} {shape}"``, e.g. ``"a small red triangle"``.

Conventions:

- Pixel ``(y, x)`` is the unit square ``[x, x + 1] x [y, y + 1]``; its centre is ``(x + 0.5, y + 0.5)``.
- Masks are exact geometric tests at pixel centres: a pixel belongs to the topmost object whose shape contains
  its centre. Colours are anti-aliased: an object covering a fraction ``c`` of a pixel (``antialias**2``
  samples, the centre among them) blends as ``(1 - c) * below + c * colour``, so pixels whose samples all lie
  inside the topmost object show its palette colour exactly.
- Each object lies inside the image (its circumscribed disc does). An object keeps at least
  ``min_visible_fraction`` of its pixels visible: a candidate that would hide more of an earlier object, or that
  overlaps an earlier object of its own colour (they would merge), is redrawn, and dropped after
  ``max_attempts`` tries, so a few scenes hold fewer objects than first drawn (never none).
- Class and colour indices are global: ``num_classes=k`` uses the first ``k`` of :data:`SHAPE_CLASSES` (the ``k``
  from ``first_class`` on, when that is given), so an index means the same shape in every dataset built here.
- Scene ``i`` of a split depends only on ``(seed, split, i)`` and the parameters: the split's name seeds its
  own stream (splits are independent draws), and a larger split extends a smaller one.
- Rasterisation uses only IEEE-754 arithmetic and square roots (no trigonometry, no BLAS, no float
  reductions), so the bytes do not depend on the CPU's SIMD paths or the BLAS build. The one outside
  dependency is numpy's ``Generator`` stream (``random``, ``uniform``, ``SeedSequence.spawn``), which numpy keeps
  stable in practice but does not promise across versions; the recorded fingerprint would catch a change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

__all__ = [
    "SHAPE_CLASSES",
    "COLORS",
    "COLOR_NAMES",
    "SIZE_NAMES",
    "SIZE_RADII",
    "BACKGROUNDS",
    "OBJECT_KEYS",
    "BACKGROUND_GREY",
    "BACKGROUND_TINT",
    "TEXTURE_AMPLITUDE",
    "TEXTURE_CELLS",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "MAX_OBJECTS",
    "make_shapes",
    "caption",
    "objects_of",
    "instance_masks",
    "tight_boxes",
]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "ring", "cross", "hexagon", "semicircle", "crescent", "ellipse",
)  # fmt: skip
"""Shape class names; ``classes`` index this tuple. Ordered so that every prefix is a sensible class set."""

COLORS: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "red": (220, 40, 40),
    "green": (40, 180, 70),
    "blue": (50, 100, 235),
    "yellow": (240, 220, 50),
    "magenta": (210, 60, 210),
    "cyan": (60, 210, 220),
    "white": (245, 245, 245),
    "orange": (245, 140, 30),
})  # fmt: skip
"""Palette: colour name -> RGB. Every colour stands out from every background (see :data:`BACKGROUND_GREY`)."""

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
"""Colour names in palette order; ``colors`` index this tuple."""

SIZE_NAMES: tuple[str, ...] = ("small", "large")
"""Size class names; ``sizes`` index this tuple."""

SIZE_RADII: Mapping[str, tuple[float, float]] = MappingProxyType({"small": (0.09, 0.12), "large": (0.16, 0.22)})
"""Size class -> range of the circumscribed radius, as fractions of the image side (drawn uniformly)."""

BACKGROUNDS: tuple[str, ...] = ("plain", "texture")
"""Background kinds: one tinted grey per scene, or that grey with low-contrast value noise on top."""

OBJECT_KEYS: tuple[str, ...] = ("boxes", "classes", "colors", "sizes", "captions")
"""The per-object arrays (leading dimension ``M``), besides ``object_image``."""

BACKGROUND_GREY = (40.0, 90.0)  # range of a scene's background grey level, in [0, 255]
BACKGROUND_TINT = 10.0  # each channel of the background is moved by up to this much
TEXTURE_AMPLITUDE = 14.0  # value noise moves the background grey by up to this much
TEXTURE_CELLS = 4  # value-noise lattice cells across the image
# From this size on every shape holds a pixel centre: the thinnest (the smallest ring, 0.25 * 0.09 * 32 pixels
# thick on each side of its mid-circle) holds discs of radius > sqrt(2) / 2, and every such disc holds one.
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024
MAX_OBJECTS = 32  # object ids must fit in ``instances`` (uint8); scenes hold far fewer than 255 anyway
MAX_ANTIALIAS = 15
MAX_ATTEMPTS = 1000
MAX_SPLIT_SIZE = 10_000_000

_CAPTION_WIDTH = max(len(f"a {size} {color} {shape}") for size in SIZE_NAMES for color in COLOR_NAMES for shape in SHAPE_CLASSES)


# --- shapes: inside tests in the object's own frame ------------------------------------------------------------
# Each test takes float64 arrays ``u, v`` (any shape) of coordinates in the object's frame (centre at the origin,
# circumscribed radius 1, ``u`` to the right and ``v`` down before rotation) and returns bool "inside". Only
# + - * / and sqrt appear, so results are bit-identical everywhere.

_HALF_SQRT2 = math.sqrt(0.5)
_HALF_SQRT3 = math.sqrt(3.0) / 2
_SQRT5 = math.sqrt(5.0)
_COS36, _COS72 = (_SQRT5 + 1) / 4, (_SQRT5 - 1) / 4
_SIN36, _SIN72 = math.sqrt(10 - 2 * _SQRT5) / 4, math.sqrt(10 + 2 * _SQRT5) / 4
# Directions of the pentagram's five tips (the first points up). The line through tips k - 1 and k + 1 is at
# distance cos 72 from the centre, normal to tip k's direction.
_STAR_TIPS = ((0.0, -1.0), (_SIN72, -_COS72), (_SIN36, _COS36), (-_SIN36, _COS36), (-_SIN72, -_COS72))
_RING_INNER = 0.5  # hole radius
_CROSS_HALF_WIDTH = 0.3  # half the width of each arm
_CROSS_HALF_LENGTH = math.sqrt(1 - _CROSS_HALF_WIDTH**2)  # arm corners lie on the unit circle
_CRESCENT_BITE = (0.5, 0.8)  # centre (on the u axis) and radius of the disc bitten out of the unit disc
_ELLIPSE_MINOR = 0.55  # semi-minor axis (along v)


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= _HALF_SQRT2) & (np.abs(v) <= _HALF_SQRT2)


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, apex up at (0, -1), base at v = 1/2; the slanted sides are sqrt(3) |u| - v = 1.
    return (v <= 0.5) & (2 * _HALF_SQRT3 * np.abs(u) - v <= 1)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # A pentagram is the set of points on the inner side of at least four of its five lines.
    inner_sides = sum(((a * u + b * v) <= _COS72).astype(np.int8) for a, b in _STAR_TIPS)
    return inner_sides >= 4


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    squared = u * u + v * v
    return (squared <= 1) & (squared >= _RING_INNER**2)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= _CROSS_HALF_WIDTH) & (av <= _CROSS_HALF_LENGTH)) | ((av <= _CROSS_HALF_WIDTH) & (au <= _CROSS_HALF_LENGTH))


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Vertices at (+-1, 0) and (+-1/2, +-sqrt(3)/2); the apothem is sqrt(3)/2.
    av = np.abs(v)
    return (av <= _HALF_SQRT3) & (_HALF_SQRT3 * np.abs(u) + 0.5 * av <= _HALF_SQRT3)


def _semicircle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u + v * v <= 1) & (v <= 0)


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    bite_u, bite_radius = _CRESCENT_BITE
    return (u * u + v * v <= 1) & ((u - bite_u) ** 2 + v * v > bite_radius**2)


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + (v * v) / (_ELLIPSE_MINOR**2) <= 1


_INSIDE: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = MappingProxyType({
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "ring": _ring,
    "cross": _cross,
    "hexagon": _hexagon,
    "semicircle": _semicircle,
    "crescent": _crescent,
    "ellipse": _ellipse,
})  # fmt: skip


# --- parameters ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SceneConfig:
    """The parameters of :func:`make_shapes` (see there), checked on construction."""

    image_size: int  # H = W, in pixels
    min_objects: int  # fewest objects drawn per scene (placement may drop some, never the first)
    max_objects: int  # most objects drawn per scene
    num_classes: int  # shapes drawn: num_classes consecutive SHAPE_CLASSES from first_class on
    num_colors: int  # colours drawn: the first num_colors of COLOR_NAMES
    background: str  # one of BACKGROUNDS
    antialias: int  # samples per pixel side for the colour blend (odd: the centre is one of them)
    rotate: bool  # rotate shapes uniformly at random (else upright)
    min_visible_fraction: float  # every object keeps at least this fraction of its pixels visible
    max_attempts: int  # tries to place one object before it is dropped
    first_class: int = 0  # index of the first shape class drawn

    def __post_init__(self) -> None:
        """Raise ``ValueError`` naming the first parameter out of range."""
        _check_integer("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        _check_integer("max_objects", self.max_objects, 1, MAX_OBJECTS)
        _check_integer("min_objects", self.min_objects, 1, self.max_objects)
        _check_integer("num_classes", self.num_classes, 1, len(SHAPE_CLASSES))
        _check_integer("first_class", self.first_class, 0, len(SHAPE_CLASSES) - self.num_classes)
        _check_integer("num_colors", self.num_colors, 1, len(COLOR_NAMES))
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}; got {self.background!r}")
        _check_integer("antialias", self.antialias, 1, MAX_ANTIALIAS)
        if self.antialias % 2 == 0:
            raise ValueError(f"antialias must be odd so that the pixel centre is a sample; got {self.antialias}")
        if not isinstance(self.rotate, bool):
            raise ValueError(f"rotate must be a bool; got {self.rotate!r}")
        fraction = self.min_visible_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"min_visible_fraction must be a number in (0, 1]; got {fraction!r}")
        _check_integer("max_attempts", self.max_attempts, 1, MAX_ATTEMPTS)


def _check_integer(name: str, value: object, low: int, high: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value!r}")


def _split_streams(seed: int, split: str, sizes: Mapping[str, int]) -> list[np.random.SeedSequence]:
    """One independent seed sequence per scene of ``split``, from ``seed`` and the split's UTF-8 name."""
    if split not in sizes:
        raise ValueError(f"split {split!r} is not in sizes {dict(sizes)}")
    _check_integer(f"sizes[{split!r}]", sizes[split], 0, MAX_SPLIT_SIZE)
    _check_integer("seed", seed, 0, 2**63 - 1)
    return np.random.SeedSequence([int(seed), *split.encode("utf-8")]).spawn(int(sizes[split]))


# --- one scene -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Object:
    """One drawn object: its labels and its placement in pixel coordinates (x right, y down)."""

    shape: int  # index into SHAPE_CLASSES
    color: int  # index into COLOR_NAMES
    size: int  # index into SIZE_NAMES
    center_x: float
    center_y: float
    radius: float  # circumscribed radius, pixels
    cos: float  # rotation from the object's frame to the image, as a unit vector
    sin: float

    def window(self) -> tuple[slice, slice]:
        """Rows and columns of the pixels the object's circumscribed disc touches (inside the image)."""
        rows = slice(math.floor(self.center_y - self.radius), math.ceil(self.center_y + self.radius))
        columns = slice(math.floor(self.center_x - self.radius), math.ceil(self.center_x + self.radius))
        return rows, columns

    def inside(self, window: tuple[slice, slice], samples: int) -> np.ndarray:
        """bool[h * samples, w * samples]: which of ``samples x samples`` points per pixel of ``window`` are inside.

        Sample ``j`` along an axis sits at ``start + (j + 0.5) / samples``; with ``samples`` odd the middle sample
        of each pixel is exactly its centre, the same float as with ``samples=1``.
        """
        rows, columns = window
        dx = (np.arange((columns.stop - columns.start) * samples) + 0.5) / samples + (columns.start - self.center_x)
        dy = (np.arange((rows.stop - rows.start) * samples) + 0.5) / samples + (rows.start - self.center_y)
        cos, sin = self.cos / self.radius, self.sin / self.radius
        u = (cos * dx)[None, :] + (sin * dy)[:, None]  # (h * samples, w * samples)
        v = (cos * dy)[:, None] - (sin * dx)[None, :]
        return _INSIDE[SHAPE_CLASSES[self.shape]](u, v)

    def coverage(self, window: tuple[slice, slice], samples: int) -> np.ndarray:
        """float64[h, w]: the fraction of ``samples x samples`` points per pixel of ``window`` inside the object."""
        rows, columns = window
        inside = self.inside(window, samples).reshape(rows.stop - rows.start, samples, columns.stop - columns.start, samples)
        return inside.sum(axis=(1, 3)) / samples**2  # exact multiples of 1 / samples**2; exactly 1 when all inside


def _unit_vector(rng: np.random.Generator) -> tuple[float, float]:
    """A uniformly random direction, by rejection from the square (square roots only, no trigonometry)."""
    while True:
        x, y = rng.uniform(-1.0, 1.0, size=2)
        squared = x * x + y * y
        if 1e-4 < squared <= 1:
            norm = math.sqrt(squared)
            return float(x / norm), float(y / norm)


def _propose(rng: np.random.Generator, config: _SceneConfig) -> _Object:
    """A random object: shape, colour, size class, radius, centre (disc inside the image) and rotation all uniform."""
    shape_draw, color_draw, size_draw, radius_draw, x_draw, y_draw = rng.random(6)
    shape = config.first_class + _index(shape_draw, config.num_classes)
    color, size = _index(color_draw, config.num_colors), _index(size_draw, 2)
    low, high = SIZE_RADII[SIZE_NAMES[size]]
    radius = (low + (high - low) * radius_draw) * config.image_size
    span = config.image_size - 2 * radius
    cos, sin = _unit_vector(rng) if config.rotate else (1.0, 0.0)
    return _Object(shape, color, size, radius + span * x_draw, radius + span * y_draw, radius, cos, sin)


def _index(draw: float, count: int) -> int:
    """The uniform index in ``[0, count)`` that a uniform ``draw`` in [0, 1) selects."""
    return min(int(draw * count), count - 1)  # the product can round up to count when draw is within 2**-53 of 1


@cache
def _noise_weights(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice cell ``int64[S]`` and smoothstep weight ``float64[S]`` of each pixel centre along one axis."""
    position = (np.arange(image_size) + 0.5) * (TEXTURE_CELLS / image_size)
    cell = np.floor(position).astype(np.int64)
    fraction = position - cell
    weight = fraction * fraction * (3 - 2 * fraction)
    cell.setflags(write=False)
    weight.setflags(write=False)
    return cell, weight


def _background(rng: np.random.Generator, config: _SceneConfig) -> np.ndarray:
    """float64[H, W, 3] in [0, 255]: a tinted grey, plus smooth value noise for the ``texture`` background."""
    size = config.image_size
    base = rng.uniform(*BACKGROUND_GREY) + rng.uniform(-BACKGROUND_TINT, BACKGROUND_TINT, size=3)  # (3,)
    if config.background == "plain":
        return np.broadcast_to(base, (size, size, 3)).copy()
    lattice = rng.uniform(-1.0, 1.0, size=(TEXTURE_CELLS + 1, TEXTURE_CELLS + 1))
    cell, weight = _noise_weights(size)
    along_x = lattice[:, cell] * (1 - weight) + lattice[:, cell + 1] * weight  # (cells + 1, S)
    noise = along_x[cell] * (1 - weight)[:, None] + along_x[cell + 1] * weight[:, None]  # (S, S), in [-1, 1]
    return base + TEXTURE_AMPLITUDE * noise[:, :, None]


def _fits(candidate: _Object, hidden: np.ndarray, placed: list[_Object], full_areas: np.ndarray,
          visible_areas: np.ndarray, min_visible_fraction: float) -> bool:  # fmt: skip
    """Whether ``candidate``, hiding ``hidden[k]`` pixels of each placed object, leaves every one visible enough
    and overlaps none of its own colour."""
    if np.any(visible_areas - hidden < min_visible_fraction * full_areas):
        return False
    return not any(count and other.color == candidate.color for count, other in zip(hidden, placed))


class _Scene(NamedTuple):
    image: np.ndarray  # uint8[H, W, 3]
    instances: np.ndarray  # uint8[H, W]: 0 background, k + 1 where objects[k] is on top
    objects: list[_Object]  # in drawing order, bottom to top


def _draw_scene(rng: np.random.Generator, config: _SceneConfig) -> _Scene:
    """One scene: draw a background, then objects one on top of the other, each redrawn until it fits."""
    canvas = _background(rng, config)  # (H, W, 3) float64
    instances = np.zeros((config.image_size, config.image_size), np.uint8)
    placed: list[_Object] = []
    full_areas = np.zeros(0, np.int64)  # pixels of each placed object when drawn
    visible_areas = np.zeros(0, np.int64)  # pixels of each placed object still on top
    for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
        for _ in range(config.max_attempts):
            candidate = _propose(rng, config)
            window = candidate.window()
            mask = candidate.inside(window, samples=1)  # (h, w): pixel centres
            hidden = np.bincount(instances[window][mask], minlength=len(placed) + 1)[1:]  # (K,) pixels covered
            if _fits(candidate, hidden, placed, full_areas, visible_areas, config.min_visible_fraction):
                break
        else:
            continue  # no room for this object: drop it
        _paint(canvas[window], candidate.coverage(window, config.antialias), COLORS[COLOR_NAMES[candidate.color]])
        instances[window][mask] = len(placed) + 1
        visible_areas = np.append(visible_areas - hidden, mask.sum())
        full_areas = np.append(full_areas, mask.sum())
        placed.append(candidate)
    return _Scene(np.rint(canvas).clip(0, 255).astype(np.uint8), instances, placed)


def _paint(canvas: np.ndarray, coverage: np.ndarray, color: tuple[int, int, int]) -> None:
    """Blend ``color`` over ``canvas`` (float64[h, w, 3], in place) by ``coverage`` (float64[h, w], in [0, 1]).

    Written as ``(1 - c) * below + c * color`` so that full coverage gives the palette colour exactly.
    """
    weight = coverage[:, :, None]
    canvas[...] = (1 - weight) * canvas + weight * np.asarray(color, np.float64)


# --- the dataset ---------------------------------------------------------------------------------------------


def make_shapes(
    *,
    split: str,
    seed: int,
    sizes: Mapping[str, int],
    image_size: int = 64,
    min_objects: int = 1,
    max_objects: int = 6,
    num_classes: int = len(SHAPE_CLASSES),
    num_colors: int = len(COLOR_NAMES),
    background: str = "plain",
    antialias: int = 3,
    rotate: bool = True,
    min_visible_fraction: float = 0.5,
    max_attempts: int = 20,
    first_class: int = 0,
) -> dict[str, np.ndarray]:
    """One split of shapes scenes, as the arrays described in the module docstring.

    Args:
        split: the split to generate; a key of ``sizes``.
        seed: non-negative generation seed; with ``split`` it seeds the split's own stream.
        sizes: split name -> number of scenes.
        image_size: height and width ``S`` of every image, at least :data:`MIN_IMAGE_SIZE`.
        min_objects: fewest objects drawn per scene, at least 1.
        max_objects: most objects drawn per scene, at most :data:`MAX_OBJECTS`.
        num_classes: draw ``num_classes`` consecutive classes of :data:`SHAPE_CLASSES`, the first ones by default.
        num_colors: draw the first ``num_colors`` of :data:`COLOR_NAMES`.
        background: one of :data:`BACKGROUNDS`.
        antialias: odd number of colour samples per pixel side (1: no anti-aliasing).
        rotate: rotate every shape uniformly at random; ``False`` draws them upright.
        min_visible_fraction: in (0, 1]; every object keeps at least this fraction of its pixels on top.
        max_attempts: tries to place one object before it is dropped.
        first_class: index of the first class drawn, in ``[0, len(SHAPE_CLASSES) - num_classes]``: classes
            ``first_class .. first_class + num_classes - 1`` (global indices: ``labels`` and ``classes`` hold them).

    Returns:
        ``images`` uint8[N, S, S, 3], ``counts`` int64[N], ``labels`` int64[N], ``semantic`` uint8[N, S, S],
        ``instances`` uint8[N, S, S], ``object_image`` int64[M], ``boxes`` float32[M, 4] (xyxy, pixel edges),
        ``classes`` int64[M], ``colors`` int64[M], ``sizes`` int64[M] and ``captions`` <U[M].

    Raises:
        ValueError: ``split`` is not in ``sizes``, or a parameter is out of range (the message names it).
    """
    config = _SceneConfig(
        image_size=image_size, min_objects=min_objects, max_objects=max_objects, num_classes=num_classes,
        num_colors=num_colors, background=background, antialias=antialias, rotate=rotate,
        min_visible_fraction=min_visible_fraction, max_attempts=max_attempts, first_class=first_class,
    )  # fmt: skip
    scenes = [_draw_scene(np.random.default_rng(stream), config) for stream in _split_streams(seed, split, sizes)]
    return _assemble(scenes, config.image_size)


def _assemble(scenes: list[_Scene], image_size: int) -> dict[str, np.ndarray]:
    """Stack scenes into the split's arrays, objects flattened scene by scene."""
    shape = (len(scenes), image_size, image_size)
    images, instances, semantic = np.zeros((*shape, 3), np.uint8), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    labels = np.zeros(len(scenes), np.int64)
    boxes: list[np.ndarray] = [np.zeros((0, 4), np.float32)]
    for index, scene in enumerate(scenes):
        images[index], instances[index] = scene.image, scene.instances
        classes = np.array([obj.shape for obj in scene.objects], np.int64)
        semantic[index] = np.concatenate([[0], classes + 1]).astype(np.uint8)[scene.instances]
        masks = scene.instances[None] == np.arange(1, len(classes) + 1, dtype=np.uint8)[:, None, None]  # (K, S, S)
        labels[index] = classes[np.argmax(masks.sum(axis=(1, 2)))]
        boxes.append(tight_boxes(masks))
    objects = [obj for scene in scenes for obj in scene.objects]
    counts = np.array([len(scene.objects) for scene in scenes], np.int64)
    return {
        "images": images,
        "counts": counts,
        "labels": labels,
        "semantic": semantic,
        "instances": instances,
        "object_image": np.repeat(np.arange(len(scenes), dtype=np.int64), counts),
        "boxes": np.concatenate(boxes),
        "classes": np.array([obj.shape for obj in objects], np.int64),
        "colors": np.array([obj.color for obj in objects], np.int64),
        "sizes": np.array([obj.size for obj in objects], np.int64),
        "captions": np.array([caption(obj.shape, obj.color, obj.size) for obj in objects], f"<U{_CAPTION_WIDTH}"),
    }


# --- helpers for the topics ----------------------------------------------------------------------------------


def caption(shape: int, color: int, size: int) -> str:
    """``"a {size} {colour} {shape}"`` for indices into :data:`SHAPE_CLASSES`, :data:`COLOR_NAMES`, :data:`SIZE_NAMES`."""
    return f"a {SIZE_NAMES[size]} {COLOR_NAMES[color]} {SHAPE_CLASSES[shape]}"


def objects_of(arrays: Mapping[str, np.ndarray], image_index: int) -> dict[str, np.ndarray]:
    """The per-object arrays (:data:`OBJECT_KEYS`) of one scene, in drawing order (views, not copies).

    Args:
        arrays: a split from :func:`make_shapes` (or ``load_split``).
        image_index: the scene, in ``[0, N)``.

    Returns:
        ``boxes`` float32[K, 4], ``classes``/``colors``/``sizes`` int64[K] and ``captions`` <U[K], where
        ``K = counts[image_index]``.

    Raises:
        IndexError: ``image_index`` is out of range.
    """
    count = len(arrays["counts"])
    if not 0 <= image_index < count:
        raise IndexError(f"image_index {image_index} is out of range for a split of {count} scenes")
    start, stop = np.searchsorted(arrays["object_image"], [image_index, image_index + 1])
    return {key: arrays[key][start:stop] for key in OBJECT_KEYS}


def instance_masks(arrays: Mapping[str, np.ndarray], image_index: int) -> np.ndarray:
    """bool[K, H, W]: the visible mask of each of a scene's ``K = counts[image_index]`` objects, in drawing order.

    Raises:
        IndexError: ``image_index`` is out of range.
    """
    count = len(arrays["counts"])
    if not 0 <= image_index < count:
        raise IndexError(f"image_index {image_index} is out of range for a split of {count} scenes")
    objects = np.arange(1, int(arrays["counts"][image_index]) + 1)
    return arrays["instances"][image_index][None] == objects[:, None, None]


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """float32[K, 4]: the xyxy box on pixel edges around each of ``masks`` (bool[K, H, W]); all zeros if empty.

    Unlike ``torchvision.ops.masks_to_boxes`` (whose ``x2, y2`` are the last pixel's index), ``x2`` and ``y2``
    here are one past the last pixel, so a mask over columns 3..7 has ``x1 = 3``, ``x2 = 8``.
    """
    if masks.ndim != 3 or masks.dtype != np.bool_:
        raise ValueError(f"masks must be bool[K, H, W]; got {masks.dtype}{list(masks.shape)}")
    rows, columns = masks.any(axis=2), masks.any(axis=1)  # (K, H), (K, W)
    height, width = masks.shape[1:]
    boxes = np.stack(
        [columns.argmax(1), rows.argmax(1), width - columns[:, ::-1].argmax(1), height - rows[:, ::-1].argmax(1)], axis=1
    ).astype(np.float32)
    boxes[~rows.any(axis=1)] = 0
    return boxes
