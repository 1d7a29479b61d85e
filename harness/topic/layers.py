"""Value oracles for modules: a network built from ``torch.nn`` layers in the test, its weights copied into the
implementation's layers of the same kind, so that both compute the same function when the implementation is right."""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.spec.outcomes import CheckFailure

__all__ = ["LAYER_TYPES", "randomized", "load_layers"]

LAYER_TYPES = (nn.ConvTranspose2d, nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _layer_name(layer: nn.Module) -> str:
    kind = next(t.__name__ for t in LAYER_TYPES if isinstance(layer, t))
    weight = list(layer.weight.shape) if getattr(layer, "weight", None) is not None else "no affine"
    return f"{kind}{weight}{'' if getattr(layer, 'bias', None) is not None or kind == 'BatchNorm2d' else ' no bias'}"


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, LAYER_TYPES)]


def randomized(oracle: nn.Module, seed: int) -> nn.Module:
    """``oracle`` in float64 with seeded random weights, biases and batch-norm statistics of sane magnitudes
    (weights scaled by 1.5 / sqrt(fan-in), so activations neither vanish nor explode), for a value oracle whose
    default initialisation (zero biases, unit variances) would hide a swapped or missing parameter."""
    from harness.testing import seeded_rand, seeded_randn

    oracle = oracle.double()
    with torch.no_grad():
        for index, layer in enumerate(_layers(oracle)):
            seed_of = seed + 10 * index
            if isinstance(layer, nn.BatchNorm2d):
                if layer.affine:
                    layer.weight.copy_(seeded_rand(layer.weight.shape, seed_of, torch.float64, 0.5, 1.5))
                    layer.bias.copy_(seeded_randn(layer.bias.shape, seed_of + 1, torch.float64, 0.5))
                if layer.track_running_stats:
                    layer.running_mean.copy_(seeded_randn(layer.running_mean.shape, seed_of + 2, torch.float64, 0.5))
                    layer.running_var.copy_(seeded_rand(layer.running_var.shape, seed_of + 3, torch.float64, 0.3, 2.0))
            else:
                fan_in = layer.weight[:, 0].numel() if isinstance(layer, nn.ConvTranspose2d) else layer.weight[0].numel()
                layer.weight.copy_(seeded_randn(layer.weight.shape, seed_of, torch.float64, 1.5 / math.sqrt(fan_in)))
                if layer.bias is not None:
                    layer.bias.copy_(seeded_randn(layer.bias.shape, seed_of + 1, torch.float64, 0.5))
    return oracle


def load_layers(model: nn.Module, oracle: nn.Module, what: str) -> None:
    """Copy each layer of ``oracle`` (convolutions, transposed convolutions, batch norms, linears) into the first
    unused layer of ``model`` of the same kind, weight shape and bias.

    Raises:
        CheckFailure: ``model`` is not a module, lacks one of the oracle's layers, has layers the oracle does not,
            or has parameters outside such layers.
    """
    from harness.sealed.client import beside

    wanted = [(_layer_name(layer), dict(layer.state_dict())) for layer in _layers(oracle)]
    beside(_load_layers_into, model, wanted, sum(p.numel() for p in oracle.parameters()), what)


def _load_layers_into(model: nn.Module, wanted: list[tuple[str, dict[str, torch.Tensor]]], parameters: int, what: str) -> None:
    """:func:`load_layers` where ``model`` lives (under sealed grading, the implementation's worker): ``wanted`` are
    the oracle's layers by name and state, ``parameters`` its parameter count."""
    if not isinstance(model, nn.Module):
        raise CheckFailure(f"{what}: expected an nn.Module, got {type(model).__name__}")
    free = _layers(model)
    listed = [_layer_name(m) for m in free]
    for name, state in wanted:
        match = next((m for m in free if _layer_name(m) == name), None)
        if match is None:
            raise CheckFailure(f"{what}: the spec's {name} is not among its layers {listed}")
        free.remove(match)
        with torch.no_grad():
            for key, value in state.items():
                getattr(match, key).copy_(value)
    if free:
        raise CheckFailure(f"{what}: layers the spec does not have: {[_layer_name(m) for m in free]} (all: {listed})")
    if sum(p.numel() for p in model.parameters()) != parameters:
        raise CheckFailure(f"{what}: parameters outside its convolution, batch-norm and linear layers")
