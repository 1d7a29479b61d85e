# Generated from reference/segmentation.py by `visionbench stub segmentation`: fill in the bodies, keep the signatures.
"""Semantic segmentation with U-Net: a class for every pixel, and the losses and metrics that go with it.

Conventions: images are NCHW float tensors; a segmentation model maps ``Tensor[N, C_in, H, W]`` to logits
``Tensor[N, num_classes, H, W]`` (one score per class per pixel, same height and width as the input). Class maps
(targets and predictions) are integer ``Tensor[N, H, W]`` with class 0 the background. A confusion matrix has the
true class along rows and the predicted class along columns (scikit-learn's layout).

The path of the lesson:
- ``DoubleConv``: two (3x3 convolution -> batch norm -> ReLU), the U-Net's basic unit; sizes are kept.
- ``Down``: 2x2 max-pool, then a DoubleConv (the contracting path halves the resolution, rounding down).
- ``Up``: 2x upsampling by a transposed convolution, padding to the skip connection's size (odd sizes lose a row
  on the way down), concatenation with the skip, then a DoubleConv (the expanding path).
- ``UNet``: Ronneberger et al. (2015), three Downs and three Ups around a bottleneck, a 1x1 convolution to logits.
- ``dice_loss`` and ``combined_loss``: overlap-based loss (robust to class imbalance) and its sum with cross-entropy.
- ``confusion_matrix``, ``iou_per_class``, ``mean_iou``, ``pixel_accuracy``: the metrics, accumulated over the
  **whole dataset** before dividing. Averaging per-batch IoUs (and counting a class absent from a batch as 0, as the
  lesson does) is a different, wrong number: it caps mIoU near 0.5 on a dataset where every class is rare.
- ``train_segmenter`` / ``predict_segmenter``: the metric task, a U-Net trained on synthetic shapes scenes with a fixed
  schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.training import BudgetClock, seeded, seeded_generator, split_images, warmup_cosine

__all__ = [
    "DoubleConv",
    "Down",
    "Up",
    "UNet",
    "dice_loss",
    "combined_loss",
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "train_segmenter",
    "predict_segmenter",
]


# --- input checks -----------------------------------------------------------------------------------------------------


# --- the U-Net ------------------------------------------------------------------------------------------------------


class DoubleConv(nn.Module):
    """(3x3 convolution, padding 1, no bias -> BatchNorm2d -> ReLU) twice: the unit every U-Net level is made of.

    Args:
        in_channels (int): input channels, >= 1.
        out_channels (int): output channels (of both convolutions), >= 1.

    Raises:
        ValueError: a channel count < 1.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        raise NotImplementedError("segmentation.DoubleConv: see specs/07_segmentation.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """Two convolutions that keep the size.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, out_channels, H, W]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        raise NotImplementedError("segmentation.DoubleConv: see specs/07_segmentation.yaml")


class Down(nn.Module):
    """One step down the contracting path: 2x2 max-pool (stride 2, rounding down), then a DoubleConv.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        raise NotImplementedError("segmentation.Down: see specs/07_segmentation.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """Halve the resolution, then convolve.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 2.

        Returns:
            Tensor[N, out_channels, H // 2, W // 2].

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]`` with H, W >= 2.
        """
        raise NotImplementedError("segmentation.Down: see specs/07_segmentation.yaml")


class Up(nn.Module):
    """One step up the expanding path: upsample ``x`` 2x, pad it to the skip's size, concatenate, DoubleConv.

    The transposed convolution halves the channels (``in_channels -> in_channels // 2``); the skip connection brings
    ``in_channels // 2`` more, so the DoubleConv sees ``in_channels`` again. When the skip is larger than twice ``x``
    (its H or W was odd before the Down), the upsampled map is zero-padded, half on each side (the extra row and
    column go to the bottom and right), to the skip's size.

    Args:
        in_channels (int): channels of ``x``, even, >= 2; the skip must have ``in_channels // 2``.
        out_channels (int): output channels.

    Raises:
        ValueError: ``in_channels`` odd or < 2, or ``out_channels`` < 1.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        raise NotImplementedError("segmentation.Up: see specs/07_segmentation.yaml")

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Upsample ``x``, match the skip's size, concatenate ``[skip, x]`` along channels, convolve.

        Args:
            x (Tensor[N, in_channels, h, w]): float, from the level below.
            skip (Tensor[N, in_channels // 2, H, W]): float, from the contracting path, ``2h <= H`` and ``2w <= W``.

        Returns:
            Tensor[N, out_channels, H, W]: the skip's size.

        Raises:
            TypeError, ValueError: malformed tensors, or a skip smaller than the upsampled ``x``.
        """
        raise NotImplementedError("segmentation.Up: see specs/07_segmentation.yaml")


class UNet(nn.Module):
    """U-Net: a contracting path of three Downs, an expanding path of three Ups with skip connections, 1x1 logits.

    Channels by level for ``base`` b: b, 2b, 4b, 8b (bottleneck), back up to b, then ``num_classes``. Any H, W >= 8
    works (odd sizes included): each Up pads to its skip's size, so the logits have the input's size.

    Args:
        in_channels (int): image channels, >= 1.
        num_classes (int): classes, background included, >= 1.
        base (int): channels of the first level, >= 1.

    Raises:
        ValueError: an argument < 1.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 16) -> None:
        raise NotImplementedError("segmentation.UNet: see specs/07_segmentation.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel class logits.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 8.

        Returns:
            Tensor[N, num_classes, H, W]: logits.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]`` with H, W >= 8.
        """
        raise NotImplementedError("segmentation.UNet: see specs/07_segmentation.yaml")


# --- losses ---------------------------------------------------------------------------------------------------------


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft multi-class Dice loss: ``1 - mean_c (2 sum(p_c t_c) + s) / (sum(p_c) + sum(t_c) + s)``.

    ``p = softmax(logits)`` over classes and ``t`` the one-hot target; the sums run over the whole batch and every
    pixel (one Dice per class for the batch), the mean over all ``C`` classes. A class absent from both prediction and
    target scores ``s / s = 1`` (no loss).

    Args:
        logits (Tensor[N, C, H, W]): float.
        target (Tensor[N, H, W]): integer classes in ``[0, C)``.
        smooth (float): ``s`` > 0, keeps the ratio defined for empty classes.

    Returns:
        Tensor[] (logits' dtype): in ``[0, 1)``; 0 for a perfect, confident prediction; differentiable in ``logits``.

    Raises:
        TypeError, ValueError: malformed inputs, or ``smooth`` <= 0.
    """
    raise NotImplementedError("segmentation.dice_loss: see specs/07_segmentation.yaml")


def combined_loss(logits: Tensor, target: Tensor, dice_weight: float = 1.0, smooth: float = 1.0) -> Tensor:
    """Pixel-wise cross-entropy (mean over pixels) plus ``dice_weight`` times :func:`dice_loss`.

    Cross-entropy gives every pixel a gradient from the start; Dice looks at each class's overlap as a whole, so a
    small class counts as much as the background.

    Args:
        logits (Tensor[N, C, H, W]): float.
        target (Tensor[N, H, W]): integer classes in ``[0, C)``.
        dice_weight (float): >= 0.
        smooth (float): Dice's ``s`` > 0.

    Returns:
        Tensor[] (logits' dtype).

    Raises:
        TypeError, ValueError: malformed inputs, ``dice_weight`` < 0 or ``smooth`` <= 0.
    """
    raise NotImplementedError("segmentation.combined_loss: see specs/07_segmentation.yaml")


# --- metrics --------------------------------------------------------------------------------------------------------


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Counts of (true class, predicted class) pairs over every pixel.

    Args:
        predictions (Tensor[...]): integer predicted classes in ``[0, num_classes)``.
        targets (Tensor[...]): integer true classes in ``[0, num_classes)`` or ``ignore_index``; same shape.
        num_classes (int): ``C`` >= 1.
        ignore_index (int | None): pixels whose target is this value are not counted.

    Returns:
        Tensor[C, C] int64: entry ``[i, j]`` counts pixels of true class ``i`` predicted as ``j``.

    Raises:
        TypeError, ValueError: non-integer inputs, different shapes, ``num_classes`` < 1, classes out of range.
    """
    raise NotImplementedError("segmentation.confusion_matrix: see specs/07_segmentation.yaml")


def iou_per_class(confusion: Tensor) -> Tensor:
    """Intersection over union of each class, ``TP / (TP + FP + FN)``, from a confusion matrix.

    Args:
        confusion (Tensor[C, C]): counts, true class along rows (as :func:`confusion_matrix` returns).

    Returns:
        Tensor[C] float64: in ``[0, 1]``; NaN for a class absent from both truth and prediction (its IoU is
        undefined, not 0: a 0 would punish a model for a class the data never asked about).

    Raises:
        TypeError, ValueError: not a square matrix of counts.
    """
    raise NotImplementedError("segmentation.iou_per_class: see specs/07_segmentation.yaml")


def mean_iou(predictions: Tensor | Sequence[Tensor], targets: Tensor | Sequence[Tensor], num_classes: int, ignore_index: int | None = None) -> float:
    """Mean IoU of a whole dataset: confusion matrices summed over all batches first, then IoU per class, then the
    mean over the classes present (NaN IoUs skipped).

    Args:
        predictions (Tensor[N, H, W] | list[Tensor[N_i, H, W]]): integer predicted classes, one tensor or a batch list.
        targets (Tensor[N, H, W] | list[Tensor[N_i, H, W]]): integer true classes, matching ``predictions``.
        num_classes (int): ``C`` >= 1 (background included).
        ignore_index (int | None): target value whose pixels are not counted.

    Returns:
        float: in ``[0, 1]``; NaN only if no pixel was counted.

    Raises:
        TypeError, ValueError: as :func:`confusion_matrix`, or different numbers of batches.
    """
    raise NotImplementedError("segmentation.mean_iou: see specs/07_segmentation.yaml")


def pixel_accuracy(predictions: Tensor | Sequence[Tensor], targets: Tensor | Sequence[Tensor], ignore_index: int | None = None) -> float:
    """Fraction of the (non-ignored) pixels of a whole dataset whose predicted class is the true one.

    Args:
        predictions (Tensor[N, H, W] | list[Tensor[N_i, H, W]]): integer predicted classes.
        targets (Tensor[N, H, W] | list[Tensor[N_i, H, W]]): integer true classes, matching ``predictions``.
        ignore_index (int | None): target value whose pixels are not counted.

    Returns:
        float: in ``[0, 1]``; NaN if no pixel was counted.

    Raises:
        TypeError, ValueError: non-integer inputs, different shapes or numbers of batches.
    """
    raise NotImplementedError("segmentation.pixel_accuracy: see specs/07_segmentation.yaml")


# --- the metric task: U-Net on shapes scenes ------------------------------------------------------------------------


def train_segmenter(train: dict, *, seed: int, budget_s: float) -> nn.Module:
    """Train a U-Net (behind a stride-2 stem) on random windows of shapes scenes with AdamW, a warm-up + cosine
    schedule, random flips, and cross-entropy plus Dice.

    Training runs a fixed number of steps, so a seed gives the same model on any machine, whatever its load; only
    where the budget is nearly spent first (a much slower machine) does training stop early, to return in time. The
    global RNG is left as it was.

    Args:
        train (dict): ``{"images": Tensor[N, 3, H, W] float32 in [0, 1], "semantic": Tensor[N, H, W] uint8}``
            (0 background, class + 1 elsewhere; other keys are ignored).
        seed (int): the run's seed.
        budget_s (float): CPU seconds allowed; training stops early only once the budget clock expires
            (``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        nn.Module: the trained model, in eval mode, mapping images to logits ``Tensor[N, K, H, W]`` with
        ``K = semantic.max() + 1`` classes.

    Raises:
        TypeError, ValueError: a malformed split, or ``budget_s`` <= 0.
    """
    raise NotImplementedError("segmentation.train_segmenter: see specs/07_segmentation.yaml")


def predict_segmenter(model: nn.Module, inputs: dict) -> Tensor:
    """The most likely class of every pixel, by the trained model's largest logit.

    Args:
        model (nn.Module): what ``train_segmenter`` returned.
        inputs (dict): ``{"images": Tensor[N, 3, H, W] float32 in [0, 1]}``.

    Returns:
        Tensor[N, H, W] int64: class maps (0 background).

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    raise NotImplementedError("segmentation.predict_segmenter: see specs/07_segmentation.yaml")
