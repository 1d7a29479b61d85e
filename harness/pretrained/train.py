"""Train ShapesNet on the source task and write its committed weights: ``python -m harness.pretrained.train``.

The recipe is :class:`~harness.pretrained.shapes_net.ShapesNetRecipe`: a fixed schedule (AdamW, one-cycle learning
rate, random shifts and flips) on ``shapes32_source``'s training split at the dataset's own seed, every random draw
from the recipe's seed, on one torch thread, so a run gives the same weights every time on a given machine (another
CPU may round differently; the test accuracy then moves by a test image or so). It writes ``shapes_net.pt`` and
``shapes_net.json`` (sha256 of the weights, recipe, source dataset and fingerprint, source test accuracy) beside
this module, or into ``--out``. About a minute on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from harness.datasets import load_split, registry
from harness.pretrained.shapes_net import SOURCE_DATASET, ShapesNet, ShapesNetRecipe
from harness.pretrained.weights import RETRAIN_COMMAND, SHAPES_NET, WEIGHTS_DIR, Manifest, recipe_record
from harness.topic.tasks import single_threaded, to_model_inputs

__all__ = ["augment", "train_shapes_net", "accuracy", "source_split", "write_weights", "main"]


def source_split(split: str) -> dict[str, Tensor]:
    """``{"images": float32[N, 3, 32, 32], "labels": int64[N], ...}`` of the source dataset at its own seed
    (not moved by ``VISIONBENCH_SECRET_SEED``: the committed weights belong to one dataset)."""
    return to_model_inputs(load_split(SOURCE_DATASET, split, seed=registry()[SOURCE_DATASET].seed))


def augment(images: Tensor, recipe: ShapesNetRecipe, generator: torch.Generator) -> Tensor:
    """Each image of ``Tensor[N, C, H, W]`` shifted by up to ``crop_padding`` pixels (zero fill) and, with
    ``flip``, mirrored left-right with probability 1/2; the draws come from ``generator``."""
    count, _, height, width = images.shape
    pad = recipe.crop_padding
    padded = F.pad(images, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (count, 2), generator=generator)  # (N, 2): top, left
    shifted = torch.stack([padded[i, :, top : top + height, left : left + width] for i, (top, left) in enumerate(offsets.tolist())])
    if recipe.flip:
        flipped = torch.rand(count, generator=generator) < 0.5
        shifted[flipped] = shifted[flipped].flip(-1)
    return shifted


def train_shapes_net(recipe: ShapesNetRecipe | None = None, *, max_steps: int | None = None) -> ShapesNet:
    """ShapesNet trained on the source training split with ``recipe`` (on one thread; global RNG left as it was).

    Args:
        recipe: the training recipe.
        max_steps: stop after this many optimiser steps (the schedule is unchanged); None trains it all.
    """
    recipe = recipe or ShapesNetRecipe()
    train = source_split("train")
    images, labels = train["images"], train["labels"]
    generator = torch.Generator().manual_seed(recipe.seed)
    with torch.random.fork_rng(devices=[]), single_threaded():
        torch.manual_seed(recipe.seed)
        network = ShapesNet(num_classes=recipe.num_classes, widths=recipe.widths)
        optimizer = torch.optim.AdamW(network.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        total_steps = recipe.epochs * math.ceil(len(images) / recipe.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.learning_rate, total_steps=total_steps)
        network.train()
        steps = 0
        for _ in range(recipe.epochs):
            for batch in torch.randperm(len(images), generator=generator).split(recipe.batch_size):
                if max_steps is not None and steps >= max_steps:
                    return network.eval()
                loss = F.cross_entropy(network(augment(images[batch], recipe, generator)), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                steps += 1
    return network.eval()


def accuracy(network: ShapesNet, split: dict[str, Tensor]) -> float:
    """Fraction of ``split["images"]`` whose argmax logit is ``split["labels"]`` (eval mode, one thread)."""
    network.eval()
    with torch.inference_mode(), single_threaded():
        predictions = torch.cat([network(chunk).argmax(dim=1) for chunk in split["images"].split(500)])
    return float((predictions == split["labels"]).double().mean())


def write_weights(network: ShapesNet, recipe: ShapesNetRecipe, train_s: float, out_dir: Path = WEIGHTS_DIR) -> Manifest:
    """Save ``network``'s state dict as ``<out_dir>/shapes_net.pt`` and its manifest as ``shapes_net.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{SHAPES_NET}.pt"
    torch.save(network.state_dict(), weights)
    manifest = Manifest(
        weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
        architecture=f"{ShapesNet.__module__}:{ShapesNet.__name__}",
        recipe=recipe_record(recipe),
        source_dataset=SOURCE_DATASET,
        source_fingerprint=str(registry()[SOURCE_DATASET].fingerprint),
        source_test_accuracy=accuracy(network, source_split("test")),
        train_s=round(train_s, 1),
        torch_version=torch.__version__,
        command=RETRAIN_COMMAND,
    )
    (out_dir / f"{SHAPES_NET}.json").write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=RETRAIN_COMMAND, description="Train ShapesNet on the source task and write its weights.")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"folder for {SHAPES_NET}.pt and {SHAPES_NET}.json (default: %(default)s)")
    arguments = parser.parse_args(argv)
    recipe = ShapesNetRecipe()
    start = time.perf_counter()
    network = train_shapes_net(recipe)
    train_s = time.perf_counter() - start
    manifest = write_weights(network, recipe, train_s, arguments.out)
    parameters = sum(p.numel() for p in network.parameters())
    print(f"trained ShapesNet ({parameters:,} parameters) on {SOURCE_DATASET} in {train_s:.1f} s")
    print(f"source test accuracy {manifest.source_test_accuracy:.4f}; wrote {arguments.out / SHAPES_NET}.pt (sha256 {manifest.weights_sha256})")
    print(f"validation accuracy {accuracy(network, source_split('val')):.4f}; numpy {np.__version__}, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
