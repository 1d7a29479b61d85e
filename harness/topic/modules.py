"""Tests and an implementation's modules, wherever the modules live.

In-process an implementation's module is an ``nn.Module`` of this process; under sealed grading it lives in the
submission's worker and the test holds a :class:`harness.sealed.client.Remote` to it, whose methods return values by
value. These helpers give a test one way to write both:
- :func:`take`: a module the test built, handed to the implementation to change in place (freeze it, replace its
  head): moved into the worker first, so that the changes and any code attached to it stay there;
- :func:`identity`: a tensor's identity (parameters compared before and after), stable across by-value copies;
- :func:`instance_of`: ``isinstance`` that also reads a remote object's classes;
- :func:`training_flags`, :func:`sgd_steps` and :func:`hooked_forward`: work that must run next to the module (training it, observing a
  layer), run there; only values come back, and the test judges them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["take", "identity", "instance_of", "training_flags", "sgd_steps", "hooked_forward", "MLPWithBatchNorm1d"]


def take(impl: Any, module: nn.Module) -> Any:
    """``module`` as the implementation's to change: in-process the module itself; sealed, moved into the worker
    (the returned proxy is what the test uses from then on)."""
    taker = getattr(impl, "take", None)
    return module if taker is None else taker(module)


def identity(tensor: torch.Tensor) -> tuple[str, int]:
    """A key naming the tensor object itself: two by-value copies of one worker tensor share it."""
    remote = getattr(tensor, "_visionbench_id", None)
    return ("remote", remote) if remote is not None else ("local", id(tensor))


def instance_of(value: Any, classes: type | tuple[type, ...]) -> bool:
    """``isinstance(value, classes)``, for a remote object by the class names its worker reports."""
    from harness.sealed.client import is_remote

    if not is_remote(value):
        return isinstance(value, classes)
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in (classes if isinstance(classes, tuple) else (classes,))}
    return bool(names & set(value.remote_classes))


def training_flags(model: Any) -> dict[str, bool]:
    """``{name: module.training}`` for every submodule (``""``: the model itself), read where the model lives."""
    from harness.sealed.client import beside

    return beside(_training_flags, model)


def _training_flags(model: nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def sgd_steps(model: Any, steps: int, seed: int, image: tuple[int, int, int], lr: float = 0.1) -> None:
    """A few SGD steps on random images and labels, calling ``model.train()`` before each, as a training loop does
    (where the model lives)."""
    from harness.sealed.client import beside

    beside(_sgd_steps, model, steps, seed, image, lr)


def _sgd_steps(model: nn.Module, steps: int, seed: int, image: tuple[int, int, int], lr: float) -> None:
    from harness.testing import seeded_rand

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        model.train()
        images = seeded_rand((4, *image), seed + step)
        logits = model(images)
        labels = torch.arange(len(images)) % logits.shape[1]
        optimizer.zero_grad()
        F.cross_entropy(logits, labels).backward()
        optimizer.step()


def hooked_forward(model: Any, layer: str, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``model(inputs)`` without grad, and every output of its submodule named ``layer`` during that call."""
    from harness.sealed.client import beside

    return beside(_hooked_forward, model, layer, inputs)


def _hooked_forward(model: nn.Module, layer: str, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    hook = model.get_submodule(layer).register_forward_hook(lambda module, args, output: seen.append(output))
    try:
        with torch.no_grad():
            outputs = model(inputs)
    finally:
        hook.remove()
    return outputs, seen


class MLPWithBatchNorm1d(nn.Module):
    """A small model with a BatchNorm1d (on the top-left 8x8 crop of 3-channel images): every kind of batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images[:, :, :8, :8])
