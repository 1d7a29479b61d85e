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


def _check_images(x: Tensor, name: str, channels: int | None = None) -> None:
    """Raise TypeError/ValueError unless ``x`` is a floating ``Tensor[N, channels, H, W]``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor[N, C, H, W], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        raise ValueError(f"{name}: expected a tensor of shape [N, {channels if channels is not None else 'C'}, H, W], got {tuple(x.shape)}")


def _check_class_map(x: Tensor, name: str) -> None:
    """Raise TypeError unless ``x`` is an integer tensor (a map of class indices)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected an integer tensor of class indices, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer tensor of class indices, got dtype {x.dtype}")


def _check_logits_and_target(logits: Tensor, target: Tensor, name: str) -> None:
    """``logits`` floating ``Tensor[N, C, H, W]``, ``target`` integer ``Tensor[N, H, W]`` in ``[0, C)``."""
    _check_images(logits, f"{name} logits")
    _check_class_map(target, f"{name} target")
    n, c, h, w = logits.shape
    if tuple(target.shape) != (n, h, w):
        raise ValueError(f"{name}: expected target of shape [{n}, {h}, {w}] for logits {tuple(logits.shape)}, got {tuple(target.shape)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= c):
        raise ValueError(f"{name}: target classes must lie in [0, {c}), got [{int(target.min())}, {int(target.max())}]")


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
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"DoubleConv: channel counts must be >= 1, got {in_channels} and {out_channels}")
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Two convolutions that keep the size.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, out_channels, H, W]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        _check_images(x, "DoubleConv", channels=self.block[0].in_channels)
        return self.block(x)


class Down(nn.Module):
    """One step down the contracting path: 2x2 max-pool (stride 2, rounding down), then a DoubleConv.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """Halve the resolution, then convolve.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 2.

        Returns:
            Tensor[N, out_channels, H // 2, W // 2].

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]`` with H, W >= 2.
        """
        _check_images(x, "Down", channels=self.conv.block[0].in_channels)
        if min(x.shape[2:]) < 2:
            raise ValueError(f"Down: expected H and W >= 2 to pool, got {tuple(x.shape)}")
        return self.conv(F.max_pool2d(x, kernel_size=2, stride=2))  # (N, out_channels, H // 2, W // 2)


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
        super().__init__()
        if in_channels < 2 or in_channels % 2:
            raise ValueError(f"Up: in_channels must be even and >= 2, got {in_channels}")
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

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
        _check_images(x, "Up x", channels=self.up.in_channels)
        _check_images(skip, "Up skip", channels=self.up.out_channels)
        x = self.up(x)  # (N, in_channels // 2, 2h, 2w)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        if dy < 0 or dx < 0 or skip.shape[0] != x.shape[0]:
            raise ValueError(f"Up: skip {tuple(skip.shape)} must hold the upsampled x {tuple(x.shape)}")
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])  # (N, in_channels // 2, H, W)
        return self.conv(torch.cat([skip, x], dim=1))  # (N, out_channels, H, W)


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
        super().__init__()
        if min(in_channels, num_classes, base) < 1:
            raise ValueError(f"UNet: in_channels, num_classes and base must be >= 1, got {in_channels}, {num_classes}, {base}")
        self.inc = DoubleConv(in_channels, base)
        self.down1, self.down2, self.down3 = Down(base, 2 * base), Down(2 * base, 4 * base), Down(4 * base, 8 * base)
        self.up1, self.up2, self.up3 = Up(8 * base, 4 * base), Up(4 * base, 2 * base), Up(2 * base, base)
        self.outc = nn.Conv2d(base, num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Per-pixel class logits.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 8.

        Returns:
            Tensor[N, num_classes, H, W]: logits.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]`` with H, W >= 8.
        """
        _check_images(x, "UNet", channels=self.inc.block[0].in_channels)
        if min(x.shape[2:]) < 8:
            raise ValueError(f"UNet: expected H and W >= 8 (three 2x poolings), got {tuple(x.shape)}")
        x1 = self.inc(x)  # (N, b, H, W)
        x2 = self.down1(x1)  # (N, 2b, H/2, W/2)
        x3 = self.down2(x2)  # (N, 4b, H/4, W/4)
        x4 = self.down3(x3)  # (N, 8b, H/8, W/8)
        x = self.up1(x4, x3)  # (N, 4b, H/4, W/4)
        x = self.up2(x, x2)  # (N, 2b, H/2, W/2)
        x = self.up3(x, x1)  # (N, b, H, W)
        return self.outc(x)  # (N, num_classes, H, W)


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
    _check_logits_and_target(logits, target, "dice_loss")
    if not smooth > 0:
        raise ValueError(f"dice_loss: smooth must be > 0, got {smooth}")
    num_classes = logits.shape[1]
    probabilities = logits.softmax(dim=1)  # (N, C, H, W)
    one_hot = F.one_hot(target.long(), num_classes).permute(0, 3, 1, 2).to(logits.dtype)  # (N, C, H, W)
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)  # (C,)
    total = probabilities.sum(dims) + one_hot.sum(dims)  # (C,)
    dice = (2 * intersection + smooth) / (total + smooth)
    return 1 - dice.mean()


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
    _check_logits_and_target(logits, target, "combined_loss")
    if not dice_weight >= 0:
        raise ValueError(f"combined_loss: dice_weight must be >= 0, got {dice_weight}")
    return F.cross_entropy(logits, target.long()) + dice_weight * dice_loss(logits, target, smooth)


# --- metrics --------------------------------------------------------------------------------------------------------


def _as_batches(values: Tensor | Sequence[Tensor], name: str) -> list[Tensor]:
    """A class-map tensor or a sequence of them (batches) as a list of tensors."""
    batches = [values] if isinstance(values, Tensor) else list(values) if isinstance(values, (list, tuple)) else None
    if batches is None:
        raise TypeError(f"{name}: expected an integer tensor or a list of them (batches), got {type(values).__name__}")
    for batch in batches:
        _check_class_map(batch, name)
    return batches


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
    _check_class_map(predictions, "confusion_matrix predictions")
    _check_class_map(targets, "confusion_matrix targets")
    if predictions.shape != targets.shape:
        raise ValueError(f"confusion_matrix: predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ in shape")
    if num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be >= 1, got {num_classes}")
    predictions, targets = predictions.reshape(-1).long(), targets.reshape(-1).long()
    if ignore_index is not None:
        keep = targets != ignore_index
        predictions, targets = predictions[keep], targets[keep]
    for name, values in (("predictions", predictions), ("targets", targets)):
        if values.numel() and (int(values.min()) < 0 or int(values.max()) >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in [0, {num_classes}), got [{int(values.min())}, {int(values.max())}]")
    counts = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


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
    if not isinstance(confusion, Tensor):
        raise TypeError(f"iou_per_class: expected a Tensor[C, C] confusion matrix, got {type(confusion).__name__}")
    if confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"iou_per_class: expected a square Tensor[C, C], got shape {tuple(confusion.shape)}")
    confusion = confusion.double()
    true_positive = confusion.diagonal()  # (C,)
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positive  # predicted + true - both
    return torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, math.nan))


def _dataset_confusion(predictions: Tensor | Sequence[Tensor], targets: Tensor | Sequence[Tensor], num_classes: int, ignore_index: int | None, name: str) -> Tensor:
    """The confusion matrix summed over every batch."""
    prediction_batches, target_batches = _as_batches(predictions, f"{name} predictions"), _as_batches(targets, f"{name} targets")
    if len(prediction_batches) != len(target_batches):
        raise ValueError(f"{name}: {len(prediction_batches)} prediction batches but {len(target_batches)} target batches")
    total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for batch_predictions, batch_targets in zip(prediction_batches, target_batches):
        total += confusion_matrix(batch_predictions, batch_targets, num_classes, ignore_index)
    return total


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
    iou = iou_per_class(_dataset_confusion(predictions, targets, num_classes, ignore_index, "mean_iou"))
    return float(iou.nanmean()) if not iou.isnan().all() else math.nan


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
    prediction_batches, target_batches = _as_batches(predictions, "pixel_accuracy predictions"), _as_batches(targets, "pixel_accuracy targets")
    if len(prediction_batches) != len(target_batches):
        raise ValueError(f"pixel_accuracy: {len(prediction_batches)} prediction batches but {len(target_batches)} target batches")
    correct = counted = 0
    for batch_predictions, batch_targets in zip(prediction_batches, target_batches):
        if batch_predictions.shape != batch_targets.shape:
            raise ValueError(f"pixel_accuracy: predictions {tuple(batch_predictions.shape)} and targets {tuple(batch_targets.shape)} differ in shape")
        keep = batch_targets != ignore_index if ignore_index is not None else torch.ones_like(batch_targets, dtype=torch.bool)
        correct += int(((batch_predictions.long() == batch_targets.long()) & keep).sum())
        counted += int(keep.sum())
    return correct / counted if counted else math.nan


# --- the metric task: U-Net on shapes scenes ------------------------------------------------------------------------


@dataclass(frozen=True)
class _SegmenterTraining:
    """How train_segmenter trains (see specs/07_segmentation.yaml for the calibration)."""

    base: int = 16  # channels of the first U-Net level (after the stem)
    stem_stride: int = 2  # the stem works at half resolution; logits are upsampled back (about 4x faster per step)
    crop_size: int = 32  # train on random 32x32 windows of the scenes (half the compute of a whole 48x48 scene);
    # the network is convolutional, so it still predicts whole scenes
    batch_size: int = 32  # windows per optimisation step
    steps: int = 900  # optimisation steps (~35-40 s on one thread of a 2-core machine)
    learning_rate: float = 1e-2  # AdamW's peak step size: linear warm-up, then a cosine decay to 0
    warmup: float = 0.05  # fraction of training spent warming up
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    dice_weight: float = 1.0  # combined_loss = cross-entropy + dice_weight * dice


class _Segmenter(nn.Module):
    """A U-Net behind a strided stem: the stem halves the resolution, the U-Net (the same Down and Up blocks)
    runs on the half-size map, and bilinear upsampling brings its logits back to the input's size."""

    def __init__(self, in_channels: int, num_classes: int, base: int, stem_stride: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base, kernel_size=3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(base), nn.ReLU(inplace=True)
        )
        self.unet = UNet(base, num_classes, base)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.unet(self.stem(x))  # (N, num_classes, H / stride, W / stride)
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)  # (N, num_classes, H, W)


def _check_split(split: dict, name: str, with_labels: bool) -> tuple[Tensor, Tensor | None]:
    """The split's images ``Tensor[N, 3, H, W]`` and, ``with_labels``, its class maps ``Tensor[N, H, W]`` int64."""
    images = split_images(split, name, channels=3)
    if not with_labels:
        return images, None
    semantic = split.get("semantic")
    expected = (images.shape[0], *images.shape[2:])
    if not isinstance(semantic, Tensor) or tuple(semantic.shape) != expected:
        got = tuple(semantic.shape) if isinstance(semantic, Tensor) else type(semantic).__name__
        raise ValueError(f"{name}: expected 'semantic' integer class maps of shape {expected}, got {got}")
    _check_class_map(semantic, name)
    return images, semantic.long()


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
    clock = BudgetClock(budget_s, "train_segmenter")
    images, semantic = _check_split(train, "train_segmenter", with_labels=True)  # (N, 3, H, W), (N, H, W)
    config = _SegmenterTraining()
    num_classes = int(semantic.max()) + 1
    generator = seeded_generator(seed)
    with seeded(seed):
        model = _Segmenter(images.shape[1], num_classes, config.base, config.stem_stride)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    _fit(model, optimizer, images, semantic, config, generator, clock)
    return model.eval()


def _random_windows(images: Tensor, semantic: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random ``size x size`` window of every scene and the same window of its class map.

    Args:
        images (Tensor[B, C, H, W]): scenes, H and W >= ``size``.
        semantic (Tensor[B, H, W]): their class maps.
        size (int): the window's side in pixels.
        generator (torch.Generator): where the windows' corners are drawn from.

    Returns:
        tuple[Tensor[B, C, size, size], Tensor[B, size, size]]: the windows.
    """
    height, width = images.shape[2:]
    corners = torch.stack([torch.randint(0, height - size + 1, (len(images),), generator=generator),
                           torch.randint(0, width - size + 1, (len(images),), generator=generator)], dim=1)  # fmt: skip
    windows = [(slice(top, top + size), slice(left, left + size)) for top, left in corners.tolist()]  # (rows, columns)
    return (torch.stack([image[:, rows, columns] for image, (rows, columns) in zip(images, windows)]),
            torch.stack([classes[rows, columns] for classes, (rows, columns) in zip(semantic, windows)]))  # fmt: skip


def _fit(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, semantic: Tensor, config: _SegmenterTraining,
         generator: torch.Generator, clock: BudgetClock) -> None:  # fmt: skip
    """The training loop of train_segmenter: ``config.steps`` steps of random batches, or fewer if the clock expires."""
    schedule = warmup_cosine(optimizer, config.steps, warmup_steps=round(config.warmup * config.steps))
    model.train()
    for _ in range(config.steps):
        if clock.expired():
            break  # a much slower machine: stop here, to return within the budget
        batch = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        size = min(config.crop_size, *images.shape[2:])
        x, y = _random_windows(images[batch], semantic[batch], size, generator)  # (B, 3, size, size), (B, size, size)
        flip = torch.rand(2, generator=generator)
        if flip[0] < 0.5:
            x, y = x.flip(3), y.flip(2)
        if flip[1] < 0.5:
            x, y = x.flip(2), y.flip(1)
        loss = combined_loss(model(x), y, config.dice_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()


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
    images, _ = _check_split(inputs, "predict_segmenter", with_labels=False)
    model.eval()
    with torch.no_grad():
        return torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(128)])  # (N, H, W)
