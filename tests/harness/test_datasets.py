"""Every dataset in ``datasets.yaml``: declared split sizes, recorded fingerprints, determinism, distinct splits;
then ``digits32``'s own properties. The shapes scenes' properties are in ``test_shapes.py``."""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from harness.datasets import DatasetEntry, fingerprint, load_split, registry
from harness.datasets.digits import linear_resize_matrix

EMBEDDED = sorted(name for name, entry in registry().items() if entry.kind != "real")


def generate(entry: DatasetEntry, split: str, seed: int) -> dict[str, np.ndarray]:
    """A fresh (uncached) generation of one split, as ``load_split`` would make it."""
    module, function = entry.generator.split(":")
    return getattr(importlib.import_module(module), function)(split=split, seed=seed, sizes=entry.splits, **entry.params)


def smallest_split(entry: DatasetEntry) -> str:
    return min(entry.splits, key=entry.splits.__getitem__)


def image_hashes(images: np.ndarray) -> list[str]:
    return [hashlib.sha256(image.tobytes()).hexdigest() for image in images]


@pytest.mark.parametrize("name", EMBEDDED)
def test_dataset_split_sizes_match_declared(name):
    entry = registry()[name]
    for split, declared in entry.splits.items():
        arrays = load_split(name, split, seed=entry.seed)
        assert len(arrays["images"]) == declared, f"{name}/{split}: {len(arrays['images'])} images, declared {declared}"
        assert len(arrays["labels"]) == declared, f"{name}/{split}: {len(arrays['labels'])} labels, declared {declared}"


@pytest.mark.parametrize("name", EMBEDDED)
def test_dataset_fingerprint_matches_recorded(name):
    entry = registry()[name]
    actual = fingerprint(name)
    assert entry.fingerprint is not None, f"{name} has no `fingerprint:` in datasets.yaml; record `fingerprint: {actual}`"
    assert actual == entry.fingerprint, (
        f"{name}'s generated data changed: datasets.yaml records fingerprint {entry.fingerprint}, the generator now "
        f"gives {actual}. If the change is deliberate, set `fingerprint: {actual}` for {name} in datasets.yaml and "
        "say why in the commit message; if not, the generator (or a library under it) drifted."
    )


@pytest.mark.parametrize("name", EMBEDDED)
def test_dataset_generation_is_deterministic(name):
    entry = registry()[name]
    split = smallest_split(entry)
    cached, fresh = load_split(name, split, seed=entry.seed), generate(entry, split, entry.seed)
    assert sorted(cached) == sorted(fresh)
    for key in cached:
        assert cached[key].dtype == fresh[key].dtype, f"{name}/{split}/{key}: dtype {fresh[key].dtype} vs {cached[key].dtype}"
        np.testing.assert_array_equal(fresh[key], cached[key], err_msg=f"{name}/{split}/{key} differs between two generations")


@pytest.mark.parametrize("name", EMBEDDED)
def test_dataset_seeds_give_different_data(name):
    entry = registry()[name]
    split = smallest_split(entry)
    other = generate(entry, split, entry.seed + 1)
    assert not np.array_equal(other["images"], load_split(name, split, seed=entry.seed)["images"])


@pytest.mark.parametrize("name", EMBEDDED)
def test_dataset_splits_share_no_image(name):
    entry = registry()[name]
    seen: dict[str, str] = {}
    for split in entry.splits:
        for digest in image_hashes(load_split(name, split, seed=entry.seed)["images"]):
            assert seen.setdefault(digest, split) == split, f"{name}: an image of {split} is also in {seen[digest]}"


@pytest.mark.parametrize("name", sorted(registry()))
def test_dataset_hidden_splits_exist(name):
    entry = registry()[name]
    assert entry.hidden, f"{name} hides no split"
    assert set(entry.hidden) <= set(entry.splits), f"{name}: hidden {entry.hidden} not all in splits {sorted(entry.splits)}"


# --- digits32 ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits32() -> dict[str, dict[str, np.ndarray]]:
    entry = registry()["digits32"]
    return {split: load_split("digits32", split, seed=entry.seed) for split in entry.splits}


def test_digits32_images_are_uint8_32x32_grey(digits32):
    for split, arrays in digits32.items():
        images = arrays["images"]
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 1), f"{split}: {images.dtype}{list(images.shape)}"
        assert images.min() == 0 and images.max() == 255, f"{split}: values span [{images.min()}, {images.max()}], not [0, 255]"
        assert arrays["labels"].dtype == np.int64


def test_digits32_classes_balanced_across_splits(digits32):
    source_counts = np.bincount(load_digits().target, minlength=10)
    total = sum(len(arrays["labels"]) for arrays in digits32.values())
    for split, arrays in digits32.items():
        expected = source_counts * len(arrays["labels"]) / total
        counts = np.bincount(arrays["labels"], minlength=10)
        assert np.all(np.abs(counts - expected) <= 1), f"{split}: class counts {counts.tolist()}, expected ~{expected.round(1).tolist()}"


def test_digits32_splits_partition_the_source_digits(digits32):
    digits = load_digits()
    resize = linear_resize_matrix(8, 32)
    upscaled = np.round(resize @ digits.images @ resize.T * (255 / 16)).clip(0, 255).astype(np.uint8)[..., None]
    source_row = {digest: row for row, digest in enumerate(image_hashes(upscaled))}
    assert len(source_row) == len(digits.images), "the source digits are not all distinct"
    rows_of = {split: [source_row.get(digest) for digest in image_hashes(arrays["images"])] for split, arrays in digits32.items()}
    for split, rows in rows_of.items():
        assert None not in rows, f"{split} holds an image that is not an upscaled source digit"
        np.testing.assert_array_equal(digits32[split]["labels"], digits.target[rows], err_msg=f"{split}: labels != source targets")
    used = [row for rows in rows_of.values() for row in rows]
    assert len(used) == len(set(used)), "a source digit appears twice (within or across splits)"
    assert len(used) == len(digits.images), f"the splits hold {len(used)} of the {len(digits.images)} source digits"
