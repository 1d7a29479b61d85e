# Generated from reference/transfer.py by `visionbench stub transfer`: fill in the bodies, keep the signatures.
"""Transfer learning: reuse a network trained on one task for a new task with few labels.

The pretrained network comes from the harness: ``harness.pretrained.ShapesNet``, trained on 5 shape classes of
``shapes32_source`` by the project's own script (weights committed, nothing downloads). The new task,
``shapes32_fewshot``, has 5 *other* shape classes and about 20 labelled images of each.

Conventions: a model is a ShapesNet or a torchvision ResNet. Its *stages* are the blocks of layers fine-tuned as a
unit (ShapesNet: ``stages[0..3]``; ResNet: the stem ``conv1`` + ``bn1``, then ``layer1`` to ``layer4``) and its *head*
is the final linear layer (``head``; ResNet: ``fc``). *Depth* counts from the output: the head is at depth 0, the last
stage at depth 1, the first stage at depth S. A batch-norm layer is any ``nn.modules.batchnorm._BatchNorm``.

The path of the lesson:
- ``freeze`` and ``trainable_param_count``: a frozen layer gets no gradient, so it keeps its pretrained weights; the
  count says how much is really being trained.
- ``freeze_bn_stats``: ``requires_grad = False`` does not stop a batch-norm layer in training mode from replacing its
  pretrained running statistics with those of a few target images; only evaluation mode does, and ``model.train()``
  switches that off again, so the layer must keep itself in evaluation mode.
- ``replace_head``: the source task's classifier is useless for new classes; a fresh linear layer takes its place.
- ``linear_probe``: the cheapest transfer, a logistic regression on frozen features; also a good start for the new
  head before fine-tuning ("LP-FT").
- ``discriminative_param_groups`` and ``progressive_unfreeze_schedule``: early layers hold general features and move
  least: smaller learning rates the further from the output, and layers unfrozen one at a time from the top.
- ``train_transfer`` / ``predict_transfer``: the metric task; the harness also trains it without the pretrained weights
  and the pretrained run must win by a margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from harness.pretrained import ShapesNet
from harness.training import BudgetClock, seeded, seeded_generator, split_images, split_labels

__all__ = [
    "freeze",
    "freeze_bn_stats",
    "trainable_param_count",
    "replace_head",
    "discriminative_param_groups",
    "progressive_unfreeze_schedule",
    "linear_probe",
    "train_transfer",
    "predict_transfer",
]


# --- model layouts ----------------------------------------------------------------------------------------------------


# --- freezing ---------------------------------------------------------------------------------------------------------


def freeze_bn_stats(module: nn.Module) -> nn.Module:
    """Make every batch-norm layer in ``module`` normalise with its running statistics and never update them.

    In training mode a batch-norm layer normalises with the batch's own mean and variance and blends them into its
    running statistics; with a few target images that overwrites what pretraining estimated from thousands. In
    evaluation mode it uses, and keeps, the running statistics. ``model.train()`` puts every layer back in training
    mode, so each layer gets a forward pre-hook that returns it to evaluation mode before it runs. The affine weight
    and bias keep their ``requires_grad``: they can still be fine-tuned.

    Args:
        module (nn.Module): any module; its batch-norm layers (BatchNorm1d/2d/3d) are changed in place.

    Returns:
        nn.Module: ``module``.
    """
    raise NotImplementedError("transfer.freeze_bn_stats: see specs/05_transfer.yaml")


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: no parameter in it is trained, no batch-norm statistic in it is updated.

    Args:
        module (nn.Module): e.g. a stage of a model; layers outside it are untouched.

    Returns:
        nn.Module: ``module``.
    """
    raise NotImplementedError("transfer.freeze: see specs/05_transfer.yaml")


def trainable_param_count(model: nn.Module) -> int:
    """The number of scalars in ``model``'s parameters that require gradients (shared parameters counted once)."""
    raise NotImplementedError("transfer.trainable_param_count: see specs/05_transfer.yaml")


# --- a new head, layer-wise learning rates, gradual unfreezing ---------------------------------------------------------


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the classifier of a ShapesNet (``head``) or a torchvision ResNet (``fc``) by a fresh linear layer.

    The new layer keeps the old one's input size, dtype and device, has a bias and torch's default initialisation
    (from the global RNG), and is trainable even when the rest of the model is frozen.

    Args:
        model (nn.Module): a ShapesNet or a torchvision ResNet, changed in place.
        num_classes (int): outputs of the new head, at least 1.

    Returns:
        nn.Module: ``model``, now mapping images to ``Tensor[N, num_classes]``.

    Raises:
        TypeError: ``model`` is neither kind.
        ValueError: ``num_classes`` < 1.
    """
    raise NotImplementedError("transfer.replace_head: see specs/05_transfer.yaml")


def discriminative_param_groups(model: nn.Module, base_lr: float, decay: float) -> list[dict]:
    """One optimizer parameter group per depth, the learning rate shrinking by ``decay`` at each step from the output.

    Args:
        model (nn.Module): a ShapesNet (4 stages) or a torchvision ResNet (5: the stem and four layers).
        base_lr (float): the head's learning rate, > 0.
        decay (float): in (0, 1]; depth ``d`` gets ``base_lr * decay ** d``.

    Returns:
        list[dict]: ``S + 1`` groups ``{"params": [...], "lr": ...}``, ``groups[d]`` for depth ``d`` (the head first,
        the first stage last); every parameter of the model in exactly one, frozen ones included.

    Raises:
        TypeError: ``model`` is neither kind.
        ValueError: ``base_lr`` <= 0 or ``decay`` outside (0, 1].
    """
    raise NotImplementedError("transfer.discriminative_param_groups: see specs/05_transfer.yaml")


def progressive_unfreeze_schedule(num_stages: int, epochs: int, unfreeze_every: int) -> list[int]:
    """Gradual unfreezing: how many stages (from the output side) train beside the head in each epoch.

    Epochs ``0 .. unfreeze_every - 1`` train the head alone; every ``unfreeze_every`` epochs the next stage down
    joins, until all ``num_stages`` train.

    Args:
        num_stages (int): stages below the head, >= 0.
        epochs (int): length of the schedule, >= 1.
        unfreeze_every (int): epochs between two unfreezings, >= 1.

    Returns:
        list[int]: ``epochs`` entries, entry ``e`` = ``min(num_stages, e // unfreeze_every)``.

    Raises:
        ValueError: an argument out of range.
    """
    raise NotImplementedError("transfer.progressive_unfreeze_schedule: see specs/05_transfer.yaml")


# --- the linear probe -------------------------------------------------------------------------------------------------


def linear_probe(features: Tensor, labels: Tensor, c: float = 1.0) -> tuple[Tensor, Tensor]:
    """Multinomial logistic regression on frozen features, solved by Newton's method to convergence.

    Minimises ``c * sum_i cross_entropy(W x_i + b, y_i) + ||W||^2 / 2`` (the bias unpenalised), scikit-learn's
    ``LogisticRegression(C=c)`` objective. It is convex, so Newton's method (the exact Hessian, a backtracking line
    search) reaches its minimum in a few steps. The loss does not change when one constant is added to every bias,
    so the Hessian is singular along that direction; the pseudo-inverse steps orthogonally to it, which keeps the bias
    centred (summing to 0), the representative scikit-learn returns. Computed in float64.

    Args:
        features (Tensor[N, D]): floating features, one row per example.
        labels (Tensor[N], int64): classes in ``[0, C)``, ``C = labels.max() + 1``, each present.
        c (float): inverse regularisation strength, > 0.

    Returns:
        tuple[Tensor[C, D], Tensor[C]]: ``(weight, bias)`` in the dtype of ``features``; logits are
        ``features @ weight.T + bias``.

    Raises:
        TypeError: ``features`` is not a floating tensor.
        ValueError: wrong shapes, a class without examples, or ``c`` <= 0.
    """
    raise NotImplementedError("transfer.linear_probe: see specs/05_transfer.yaml")


# --- the metric task: fine-tune the pretrained ShapesNet on a few labels ----------------------------------------------


def train_transfer(train: dict, *, seed: int, budget_s: float) -> nn.Module:
    """Fine-tune ShapesNet on the few target images: from the pretrained weights when given, else from scratch.

    With ``train["backbone"]`` (LP-FT): load the pretrained weights, freeze their batch-norm statistics, replace the
    head and initialise it by a linear probe on the frozen features, then fine-tune with AdamW (one-cycle schedule),
    layer-wise learning rates (``decay`` per depth) and gradual unfreezing (one stage more every ``unfreeze_every``
    epochs), on randomly shifted and flipped images. With ``None`` nothing is pretrained, so nothing needs protecting:
    the same network, optimiser, schedule, epochs and augmentation, every layer trained at the same rate from the
    first epoch with ordinary batch norm. Deterministic given ``seed``; the global RNG is left as it was.

    Args:
        train (dict): ``{"images": Tensor[N, 3, 32, 32] float32 in [0, 1], "labels": Tensor[N] int64 (global class
            indices), "backbone": a ShapesNet state dict or None}`` (other keys are ignored).
        seed (int): the run's seed.
        budget_s (float): CPU seconds allowed (the fixed schedule takes a fraction of them; training stops early
            only once the budget clock expires, ``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        nn.Module: an opaque model for ``predict_transfer``.

    Raises:
        TypeError, ValueError: a malformed split or backbone, or ``budget_s`` <= 0.
    """
    raise NotImplementedError("transfer.train_transfer: see specs/05_transfer.yaml")


def predict_transfer(model: nn.Module, inputs: dict) -> Tensor:
    """The global class index of each image: the class of the network's largest logit.

    Args:
        model (nn.Module): what ``train_transfer`` returned.
        inputs (dict): ``{"images": Tensor[N, 3, 32, 32] float32 in [0, 1]}``.

    Returns:
        Tensor[N] int64: predicted shape classes (global indices).

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    raise NotImplementedError("transfer.predict_transfer: see specs/05_transfer.yaml")
