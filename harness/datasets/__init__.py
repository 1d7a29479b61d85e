"""The dataset registry: every dataset named in ``datasets.yaml``, generated or read, split and fingerprinted.

A split is a dict of numpy arrays as they would be stored on disk (images ``uint8[N, H, W, C]``, labels
``int64[N]``, ...). Embedded datasets are generated from fixed seeds; their fingerprint (a sha256 of every
split's arrays) is recorded in ``datasets.yaml`` and checked by a test, so silent generator drift is caught.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from functools import cache
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.conventions import DATASETS_FILE

__all__ = ["DatasetEntry", "registry", "load_split", "fingerprint", "secret_seed", "SECRET_ENV", "SPLITS"]

SPLITS = ("train", "val", "test")


class DatasetEntry(BaseModel):
    """One entry of ``datasets.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    kind: str = Field(pattern="^(synthetic|bundled|real)$")
    generator: str = Field(description="'module:function' called as function(split=, seed=, sizes=splits, **params)")
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int
    splits: dict[str, int] = Field(description="split name -> number of examples")
    hidden: list[str] = Field(default_factory=lambda: ["test"], description="splits whose labels implementations never see")
    fingerprint: str | None = None

    @model_validator(mode="after")
    def _hidden_splits_exist(self) -> DatasetEntry:
        if not set(self.hidden) <= set(self.splits):
            raise ValueError(f"hidden splits {self.hidden} are not all in splits {sorted(self.splits)}")
        return self


@cache
def registry() -> dict[str, DatasetEntry]:
    """Every dataset in ``datasets.yaml``, by name."""
    raw = yaml.safe_load(DATASETS_FILE.read_text(encoding="utf-8"))
    return {name: DatasetEntry.model_validate(entry) for name, entry in raw["datasets"].items()}


SECRET_ENV = "VISIONBENCH_SECRET_SEED"


def secret_seed() -> int:
    """0, or the instructor's ``VISIONBENCH_SECRET_SEED``: it moves every split to a hidden variant."""
    return int(os.environ.get(SECRET_ENV, "0"))


def _generator(entry: DatasetEntry) -> Any:
    module, function = entry.generator.split(":")
    return getattr(importlib.import_module(module), function)


@cache
def _generate(name: str, split: str, seed: int) -> dict[str, np.ndarray]:
    entry = registry()[name]
    arrays = _generator(entry)(split=split, seed=seed, sizes=entry.splits, **entry.params)
    for array in arrays.values():
        array.setflags(write=False)  # cached: callers must copy before changing
    return arrays


def load_split(name: str, split: str, *, seed: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of one split (read-only, cached).

    Args:
        name: a dataset in ``datasets.yaml``.
        split: one of the entry's splits.
        seed: generation seed; default the entry's seed moved by :func:`secret_seed`.

    Raises:
        KeyError: unknown dataset or split.
    """
    entries = registry()
    if name not in entries:
        raise KeyError(f"unknown dataset {name!r}; datasets.yaml has {sorted(entries)}")
    entry = entries[name]
    if split not in entry.splits:
        raise KeyError(f"dataset {name!r} has no split {split!r}; it has {sorted(entry.splits)}")
    return _generate(name, split, entry.seed + secret_seed() if seed is None else seed)


def fingerprint(name: str) -> str:
    """sha256 over every split's arrays at the entry's own seed (names, dtypes, shapes and bytes)."""
    entry = registry()[name]
    digest = hashlib.sha256()
    for split in sorted(entry.splits):
        arrays = load_split(name, split, seed=entry.seed)
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            digest.update(f"{split}/{key}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
