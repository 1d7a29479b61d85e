"""Hypothesis strategies shared by the topic tests: images, tensors, boxes, regions of interest, binary masks.

All draw their values through hypothesis (no hidden global RNG), so the ``grading`` profile reproduces them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from hypothesis import strategies as st

__all__ = ["uint8_images", "float_images", "tensors", "nchw_tensors", "boxes_xyxy", "rois", "ROI_STYLES", "binary_masks", "seeds", "seeded_randn", "seeded_init"]

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def seeded_randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard-normal ``Tensor[shape]`` from its own generator (drawn in float64, then cast: the same values in
    every dtype)."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build modules with torch's default initialisation from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def float_images(min_side: int = 1, max_side: int = 24, channels: tuple[int, ...] = (3,)) -> st.SearchStrategy[np.ndarray]:
    """``float32[H, W, C]`` images in [0, 1], from a seed (fast for large images) with exact 0 and 1 corners."""

    def build(args: tuple[int, int, int, int]) -> np.ndarray:
        h, w, c, seed = args
        image = np.random.default_rng(seed).random((h, w, c), dtype=np.float32)
        image.flat[0], image.flat[-1] = 0.0, 1.0
        return image

    return st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side), st.sampled_from(channels), seeds).map(build)


def uint8_images(min_side: int = 1, max_side: int = 24, channels: tuple[int, ...] = (3,)) -> st.SearchStrategy[np.ndarray]:
    """``uint8[H, W, C]`` images as loaded from disk, built from a drawn seed (fast, unlike element-wise arrays), in
    one of four styles: dense noise, greys (equal channels), three levels (0, 127, 255) or one constant value.
    All but the constants hold both 0 and 255."""

    def build(args: tuple[np.ndarray, str, int]) -> np.ndarray:
        image, style, constant = args
        if style == "grey":
            return np.repeat(np.rint(image[..., :1] * 255).astype(np.uint8), image.shape[-1], axis=-1)
        if style == "three levels":
            return (np.rint(image * 2) * 127.5).astype(np.uint8)
        if style == "constant":
            return np.full(image.shape, constant, dtype=np.uint8)
        return np.rint(image * 255).astype(np.uint8)

    styles = st.sampled_from(["dense", "grey", "three levels", "constant"])
    return st.tuples(float_images(min_side, max_side, channels), styles, st.integers(0, 255)).map(build)


def tensors(shape: tuple[int, ...], dtype: torch.dtype = torch.float32, scale: float = 1.0) -> st.SearchStrategy[torch.Tensor]:
    """Standard-normal tensors of a fixed shape times ``scale``, from a drawn seed (float64 for gradchecks)."""

    def build(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype)

    return seeds.map(build)


def nchw_tensors(
    batch: tuple[int, int] = (1, 3), channels: tuple[int, int] = (1, 4), side: tuple[int, int] = (1, 12), dtype: torch.dtype = torch.float32
) -> st.SearchStrategy[torch.Tensor]:
    """``Tensor[N, C, H, W]`` with sizes drawn from the given inclusive ranges."""
    return st.tuples(st.integers(*batch), st.integers(*channels), st.integers(*side), st.integers(*side)).flatmap(
        lambda nchw: tensors(nchw, dtype)
    )


def boxes_xyxy(max_boxes: int = 8, image_size: float = 64.0, allow_degenerate: bool = False) -> st.SearchStrategy[torch.Tensor]:
    """``float32[N, 4]`` boxes ``(x1, y1, x2, y2)`` with ``0 <= x1 < x2`` (``<=`` when degenerate boxes are allowed)."""
    coordinate = st.floats(0, image_size, allow_nan=False, width=32)

    def box(values: tuple[float, float, float, float]) -> list[float]:
        x1, x2 = sorted(values[:2])
        y1, y2 = sorted(values[2:])
        return [x1, y1, x2, y2]

    one = st.tuples(coordinate, coordinate, coordinate, coordinate).map(box)
    if not allow_degenerate:
        one = one.filter(lambda b: b[2] > b[0] and b[3] > b[1])
    return st.lists(one, min_size=0, max_size=max_boxes).map(lambda bs: torch.tensor(bs, dtype=torch.float32).reshape(-1, 4))


ROI_STYLES = ("fractional", "integer", "half-integer", "thin", "beyond")


def rois(batch: int, height: int, width: int, max_rois: int = 6, beyond: float = 3.0, min_rois: int = 0) -> st.SearchStrategy[torch.Tensor]:
    """float64 ``Tensor[K, 5]`` regions of interest ``(batch index, x1, y1, x2, y2)`` on a batch of ``height x width``
    maps, in map coordinates, ``x1 <= x2`` and ``y1 <= y2``; ``K`` in ``[min_rois, max_rois]``.

    Built from a drawn seed in one of :data:`ROI_STYLES`: corners anywhere in ``[-beyond, side + beyond]``, on
    integers, on halves (where rounding conventions differ), RoIs thinner than a cell (zero-size ones included), or
    RoIs straddling a border (so bilinear samples land on and past it).
    """

    def build(args: tuple[int, str, int]) -> torch.Tensor:
        count, style, seed = args
        rng = np.random.default_rng(seed)
        sides = np.array([width, height], dtype=np.float64)
        first = rng.uniform(-beyond, sides + beyond, (count, 2))  # (K, 2) x1, y1
        size = rng.uniform(0, sides + beyond, (count, 2))
        if style == "integer":
            first, size = np.round(first), np.round(size)
        elif style == "half-integer":
            first, size = np.round(2 * first) / 2, np.round(2 * size) / 2
        elif style == "thin":
            size = size * rng.choice([0.0, 0.05, 0.3, 0.9], (count, 2))
        elif style == "beyond":  # centred near a border: half inside, half outside
            border = rng.integers(0, 2, (count, 2)) * sides
            first = border - size / 2 + rng.uniform(-0.5, 0.5, (count, 2))
        index = rng.integers(0, batch, (count, 1)).astype(np.float64)
        return torch.from_numpy(np.concatenate([index, first, first + size], axis=1))

    return st.tuples(st.integers(min_rois, max_rois), st.sampled_from(ROI_STYLES), seeds).map(build)


def binary_masks(min_side: int = 1, max_side: int = 12) -> st.SearchStrategy[torch.Tensor]:
    """``bool Tensor[H, W]`` masks from a drawn seed: random density, a rectangle, all False, all True, or one pixel,
    with ``H`` and ``W`` drawn independently (so masks are rarely square)."""

    def build(args: tuple[int, int, str, int]) -> torch.Tensor:
        height, width, style, seed = args
        rng = np.random.default_rng(seed)
        if style == "empty":
            mask = np.zeros((height, width), dtype=bool)
        elif style == "full":
            mask = np.ones((height, width), dtype=bool)
        elif style == "one pixel":
            mask = np.zeros((height, width), dtype=bool)
            mask[rng.integers(height), rng.integers(width)] = True
        elif style == "rectangle":
            mask = np.zeros((height, width), dtype=bool)
            top, left = rng.integers(height), rng.integers(width)
            mask[top : rng.integers(top, height) + 1, left : rng.integers(left, width) + 1] = True
        else:
            mask = rng.random((height, width)) < rng.uniform(0.1, 0.9)
        return torch.from_numpy(mask)

    styles = st.sampled_from(["random", "rectangle", "empty", "full", "one pixel"])
    return st.tuples(st.integers(min_side, max_side), st.integers(min_side, max_side), styles, seeds).map(build)
