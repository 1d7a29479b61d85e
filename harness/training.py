"""Helpers for a topic's training entry points: what every ``train_<task>(train, *, seed, budget_s)`` does first.

The reference's trainings import these, and the generated stubs keep the import, so students may use them too:

    def train_lenet(train: dict, *, seed: int, budget_s: float) -> LeNet5:
        clock = BudgetClock(budget_s, "train_lenet")                  # ValueError unless budget_s > 0
        images = split_images(train, "train_lenet", channels=1, size=(32, 32))
        labels = split_labels(train, "train_lenet", count=len(images))
        generator = seeded_generator(seed)                            # shuffling and augmentation draw from it
        with seeded(seed):                                            # initialisation from the seed, global RNG kept
            model = LeNet5()
        schedule = warmup_cosine(optimizer, total_steps=epochs * steps_per_epoch, warmup_steps=50)
        for step in ...:
            if clock.expired():                                       # the one early-stop rule
                break

The budget is CPU seconds of this process (the harness measures the same clock, and scales the spec's budget by the
machine's speed before it hands it over), so a busy machine does not cut a training short; only a much slower one
does. A training that stops at :data:`EARLY_STOP_FRACTION` of it leaves room for its last step and for returning.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["EARLY_STOP_FRACTION", "BudgetClock", "split_images", "split_labels", "seeded_generator", "seeded", "warmup_cosine"]

EARLY_STOP_FRACTION = 0.9  # a training stops early once this fraction of its budget is spent


class BudgetClock:
    """CPU seconds this process has spent since the clock was made, against a training budget.

    Args:
        budget_s (float): the budget in CPU seconds (what the harness passed as ``budget_s``); must be > 0.
        name (str): the entry point, for error messages.

    Raises:
        ValueError: ``budget_s`` is not a positive number.
    """

    def __init__(self, budget_s: float, name: str) -> None:
        if not isinstance(budget_s, (int, float)) or isinstance(budget_s, bool) or not budget_s > 0:
            raise ValueError(f"{name}: budget_s must be a number > 0, got {budget_s!r}")
        self.budget_s = float(budget_s)
        self.start = time.process_time()

    @property
    def elapsed_s(self) -> float:
        """CPU seconds spent since the clock was made."""
        return time.process_time() - self.start

    def expired(self) -> bool:
        """Whether training should stop now: :data:`EARLY_STOP_FRACTION` of the budget is spent."""
        return self.elapsed_s >= EARLY_STOP_FRACTION * self.budget_s


def split_images(split: object, name: str, *, channels: int | None = None, size: tuple[int, int] | None = None) -> Tensor:
    """The ``images`` of a split as the harness passes it, validated.

    Args:
        split (dict): ``{"images": Tensor[N, C, H, W] float32 in [0, 1], ...}``.
        name (str): the entry point, for error messages.
        channels (int | None): the C it must have, if any.
        size (tuple[int, int] | None): the (H, W) it must have, if any.

    Returns:
        Tensor[N, C, H, W] float32: the images (not copied).

    Raises:
        TypeError: ``split`` is not a dict with ``images``, or they are not a float32 tensor.
        ValueError: a shape other than the expected one, or no images.
    """
    expected = f"[N, {channels if channels is not None else 'C'}, {'H, W' if size is None else f'{size[0]}, {size[1]}'}]"
    if not isinstance(split, dict) or "images" not in split:
        raise TypeError(f"{name}: expected a dict with 'images' float32{expected}, got {type(split).__name__}")
    images = split["images"]
    if not isinstance(images, Tensor) or images.dtype != torch.float32:
        got = f"{images.dtype} tensor" if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"{name}: expected 'images' float32{expected}, got {got}")
    if images.dim() != 4 or len(images) == 0 or (channels is not None and images.shape[1] != channels) or (size is not None and tuple(images.shape[2:]) != tuple(size)):
        raise ValueError(f"{name}: expected 'images' of shape {expected} with N >= 1, got {tuple(images.shape)}")
    return images


def split_labels(split: dict, name: str, *, count: int, key: str = "labels") -> Tensor:
    """A split's per-image class labels, validated.

    Args:
        split (dict): holds ``split[key]``, ``Tensor[count] int64`` of class indices >= 0.
        name (str): the entry point, for error messages.
        count (int): the number of images.
        key (str): the entry's name.

    Returns:
        Tensor[count] int64: the labels (not copied).

    Raises:
        ValueError: missing, another dtype or shape, or a negative label.
    """
    labels = split.get(key)
    if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or tuple(labels.shape) != (count,):
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name}: expected {key!r} int64[{count}], got {got}")
    if count and labels.min() < 0:
        raise ValueError(f"{name}: expected {key!r} >= 0, got a minimum of {int(labels.min())}")
    return labels


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the training's shuffling and augmentation draw from it alone."""
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside the block torch's global RNG starts from ``seed`` (modules built there are initialised from it); after
    it, the global RNG is as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over ``warmup_steps`` to the optimiser's own, then decaying along a half cosine to
    ``final_fraction`` of it at ``total_steps``; call ``step()`` once per optimiser step.

    Raises:
        ValueError: ``total_steps`` < 1, ``warmup_steps`` outside [0, total_steps), or ``final_fraction`` outside [0, 1].
    """
    if total_steps < 1 or not 0 <= warmup_steps < total_steps or not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"warmup_cosine: need total_steps >= 1, 0 <= warmup_steps < total_steps, final_fraction in [0, 1]; got {total_steps}, {warmup_steps}, {final_fraction}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
