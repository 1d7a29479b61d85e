"""Committed pretrained weights: a state-dict file and its manifest, loaded only when they check out.

Each network has two files beside this module: ``<name>.pt`` (the state dict, ``torch.save``) and ``<name>.json``
(its manifest: the file's sha256, the recipe and source dataset it was trained with, and the accuracy it reached on
the source task's hidden test split). Loading verifies the bytes against the manifest, the manifest against the
current recipe and dataset fingerprint, and the state dict against the architecture, so a corrupted, stale or
mismatched file is a clear :class:`PretrainedWeightsError` instead of a silently different network. Nothing is
downloaded: the weights are trained by ``python -m harness.pretrained.train`` and committed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.datasets import registry
from harness.pretrained.shapes_net import SOURCE_DATASET, ShapesNet, ShapesNetRecipe

__all__ = [
    "WEIGHTS_DIR",
    "SHAPES_NET",
    "RETRAIN_COMMAND",
    "Manifest",
    "PretrainedWeightsError",
    "weights_path",
    "manifest_path",
    "load_manifest",
    "verified_state_dict",
    "load_shapes_net",
    "backbone_state_dict",
    "recipe_record",
]

WEIGHTS_DIR = Path(__file__).resolve().parent
SHAPES_NET = "shapes_net"  # the name of ShapesNet's files: shapes_net.pt, shapes_net.json
RETRAIN_COMMAND = "python -m harness.pretrained.train"


class PretrainedWeightsError(RuntimeError):
    """Committed weights that are missing, corrupted, stale or do not fit their architecture; the message says how
    to retrain them."""


class Manifest(BaseModel):
    """What ``<name>.json`` records about ``<name>.pt``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights_sha256: str
    architecture: str  # "module:class"
    recipe: dict[str, Any]  # the training recipe's fields (recipe_record)
    source_dataset: str  # in datasets.yaml
    source_fingerprint: str  # its fingerprint when the weights were trained
    source_test_accuracy: float  # on the source dataset's hidden test split, at training time
    train_s: float  # wall-clock training time, one torch thread
    torch_version: str
    command: str  # how the files were made


def weights_path(name: str = SHAPES_NET) -> Path:
    return WEIGHTS_DIR / f"{name}.pt"


def manifest_path(name: str = SHAPES_NET) -> Path:
    return WEIGHTS_DIR / f"{name}.json"


def recipe_record(recipe: ShapesNetRecipe) -> dict[str, Any]:
    """The recipe as the manifest stores it (JSON types: tuples become lists)."""
    return json.loads(json.dumps(asdict(recipe)))


def load_manifest(name: str = SHAPES_NET) -> Manifest:
    """The manifest of ``name``'s weights.

    Raises:
        PretrainedWeightsError: missing, not JSON, or not a manifest.
    """
    path = manifest_path(name)
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as error:
        raise PretrainedWeightsError(f"{path}: not a readable manifest ({error}); retrain with `{RETRAIN_COMMAND}`") from None


def _check_current(manifest: Manifest, path: Path) -> None:
    """Raise unless the manifest's recipe and source dataset are today's."""
    stale = []
    if manifest.recipe != recipe_record(ShapesNetRecipe()):
        stale.append(f"the recipe changed (weights: {manifest.recipe}; harness.pretrained.shapes_net: {recipe_record(ShapesNetRecipe())})")
    entry = registry().get(manifest.source_dataset)
    if manifest.source_dataset != SOURCE_DATASET or entry is None:
        stale.append(f"they were trained on {manifest.source_dataset!r}, the source task is now {SOURCE_DATASET!r}")
    elif entry.fingerprint != manifest.source_fingerprint:
        trained_on = manifest.source_fingerprint
        stale.append(f"{manifest.source_dataset}'s fingerprint is now {entry.fingerprint}, the weights were trained on {trained_on}")
    if stale:
        raise PretrainedWeightsError(f"{path} is stale: {'; '.join(stale)}. Retrain with `{RETRAIN_COMMAND}` and commit both files")


@cache
def _verified(name: str) -> dict[str, torch.Tensor]:
    manifest = load_manifest(name)
    path = weights_path(name)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PretrainedWeightsError(f"{path}: cannot be read ({error}); retrain with `{RETRAIN_COMMAND}`") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.weights_sha256:
        raise PretrainedWeightsError(
            f"{path} is corrupted or was replaced: its sha256 is {digest}, {manifest_path(name).name} records "
            f"{manifest.weights_sha256}. Restore it from git, or retrain with `{RETRAIN_COMMAND}` and commit both files"
        )
    _check_current(manifest, path)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # the verified bytes, not a second read
    for tensor in state.values():
        tensor.requires_grad_(False)
    return state


def verified_state_dict(name: str = SHAPES_NET) -> dict[str, torch.Tensor]:
    """A fresh copy of ``name``'s committed state dict, after checking it (sha256, recipe, source dataset).

    Raises:
        PretrainedWeightsError: the weights or their manifest are missing, corrupted or stale.
    """
    return {key: tensor.clone() for key, tensor in _verified(name).items()}


def load_shapes_net() -> ShapesNet:
    """ShapesNet with the committed source-task weights, in eval mode.

    Raises:
        PretrainedWeightsError: the weights are missing, corrupted, stale, or do not fit the architecture.
    """
    recipe = ShapesNetRecipe()
    network = ShapesNet(num_classes=recipe.num_classes, widths=recipe.widths)
    try:
        network.load_state_dict(verified_state_dict(SHAPES_NET))
    except RuntimeError as error:  # missing/unexpected keys or shapes: the architecture changed
        raise PretrainedWeightsError(f"{weights_path()} does not fit ShapesNet ({error}); retrain with `{RETRAIN_COMMAND}`") from None
    return network.eval()


def backbone_state_dict() -> dict[str, torch.Tensor]:
    """The pretrained ShapesNet's state dict (a fresh copy): what topic 05's task passes as ``train["backbone"]``.

    Keys are ShapesNet's (``stages.*`` and the source head's ``head.*``); it loads into ``ShapesNet()`` with
    ``load_state_dict``.

    Raises:
        PretrainedWeightsError: the weights are missing, corrupted, stale, or do not fit the architecture.
    """
    return {key: tensor.clone() for key, tensor in load_shapes_net().state_dict().items()}
