"""Value oracles for modules: weights copied by layer kind and shape, and every mismatch named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.spec.outcomes import CheckFailure
from harness.testing import load_layers, randomized


def oracle() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 1, 1))


class Swapped(nn.Module):
    """The oracle's layers registered in another order, used in the oracle's order."""

    def __init__(self) -> None:
        super().__init__()
        self.head, self.norm, self.body = nn.Conv2d(3, 1, 1), nn.BatchNorm2d(3), nn.Conv2d(2, 3, 3, padding=1, bias=False)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.body(x))))


def test_weights_are_copied_by_kind_and_shape_so_a_right_module_computes_the_oracles_function():
    reference = randomized(oracle(), seed=3).eval()
    assert reference[1].running_var.min() >= 0.3 and reference[3].bias.abs().max() > 0  # no default initialisation left
    model = Swapped().double().eval()
    load_layers(model, reference, "model")
    x = torch.randn(2, 2, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(model(x), reference(x))


def test_missing_extra_and_stray_parameters_are_named():
    reference = randomized(oracle(), seed=3)
    with pytest.raises(CheckFailure, match=r"the spec's Conv2d\[1, 3, 1, 1\] is not among its layers"):
        load_layers(nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), nn.BatchNorm2d(3), nn.Conv2d(3, 1, 3)), reference, "model")
    with pytest.raises(CheckFailure, match=r"layers the spec does not have: \['BatchNorm2d\[1\]'\]"):
        load_layers(nn.Sequential(*oracle(), nn.BatchNorm2d(1)), reference, "model")
    stray = nn.Sequential(*oracle())
    stray.scale = nn.Parameter(torch.ones(1))
    with pytest.raises(CheckFailure, match="parameters outside"):
        load_layers(stray, reference, "model")
    with pytest.raises(CheckFailure, match="expected an nn.Module, got function"):
        load_layers(lambda x: x, reference, "model")
