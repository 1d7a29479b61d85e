"""``digits32``: scikit-learn's bundled 8x8 handwritten digits, upscaled to 32x32 (LeNet's input size)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["make_digits32", "linear_resize_matrix"]


def linear_resize_matrix(source: int, target: int) -> np.ndarray:
    """``float64[target, source]`` matrix of linear interpolation with half-pixel centres, edges clamped.

    ``M @ signal`` resizes a 1-D signal; ``M @ image @ M.T`` resizes an image bilinearly (same as
    ``F.interpolate(mode="bilinear", align_corners=False)``), exactly and without library drift.
    """
    coords = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, source - 1)
    frac = coords - low
    matrix = np.zeros((target, source))
    matrix[np.arange(target), low] += 1 - frac
    matrix[np.arange(target), high] += frac
    return matrix


def make_digits32(*, split: str, seed: int, sizes: dict[str, int], size: int = 32) -> dict[str, np.ndarray]:
    """One split of the 1,797 digits, stratified by class, as ``images uint8[N, size, size, 1]``, ``labels int64[N]``.

    The three splits partition the dataset: a seeded permutation of each class is cut in proportion to
    ``sizes`` (train/val/test), so every split holds every class in the same proportions.
    """
    digits = load_digits()
    rng = np.random.default_rng(seed)
    names = list(sizes)
    total = sum(sizes.values())
    chosen: list[np.ndarray] = []
    for label in range(10):
        members = rng.permutation(np.flatnonzero(digits.target == label))
        cuts = np.round(np.cumsum([sizes[n] for n in names]) / total * len(members)).astype(int)
        parts = np.split(members, cuts[:-1])
        chosen.append(parts[names.index(split)])
    index = rng.permutation(np.concatenate(chosen))
    resize = linear_resize_matrix(8, size)
    upscaled = resize @ digits.images[index] @ resize.T  # (N, size, size), values in [0, 16]
    images = np.round(upscaled * (255 / 16)).clip(0, 255).astype(np.uint8)[..., None]
    return {"images": images, "labels": digits.target[index].astype(np.int64)}
