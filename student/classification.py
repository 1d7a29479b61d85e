# Generated from reference/classification.py by `visionbench stub classification`: fill in the bodies, keep the signatures.
"""Image classification: softmax and cross-entropy, augmentation, evaluation, calibration, and a trained classifier.

Conventions: logits are ``Tensor[N, C]`` (unnormalised scores, one row per example, C classes); class targets are
int64 ``Tensor[N]`` in ``[0, C)`` or probability rows ``Tensor[N, C]``; images are NCHW float tensors in [0, 1].
A confusion matrix has the true class on the rows and the predicted class on the columns (scikit-learn's layout).

The path of the lesson:
- ``softmax`` / ``log_softmax``: subtract the row maximum first, so that logits of 1e4 neither overflow nor lose the
  answer; ``cross_entropy`` is the mean negative log-likelihood, with label smoothing and soft targets.
- ``mixup_batch``, ``random_crop``, ``random_hflip``: the augmentations that make a small network generalise.
- ``confusion_matrix``, ``per_class_report``: accuracy hides which classes are confused; these show it.
- ``expected_calibration_error`` and ``fit_temperature``: a network's confidence is not a probability until it is
  calibrated; one scalar temperature, fitted on held-out data, fixes most of it without changing a prediction.
- ``train_classifier`` / ``predict_classifier``: the metric task, a small CNN on shapes32cls, temperature-scaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.training import BudgetClock, seeded, seeded_generator, split_images, split_labels

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "mixup_batch",
    "random_crop",
    "random_hflip",
    "confusion_matrix",
    "per_class_report",
    "expected_calibration_error",
    "fit_temperature",
    "train_classifier",
    "predict_classifier",
]


# --- input checks -----------------------------------------------------------------------------------------------------


# --- softmax and cross-entropy ----------------------------------------------------------------------------------------


def log_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``log(softmax(logits))`` computed stably: ``x - max(x) - log(sum(exp(x - max(x))))`` along ``dim``.

    Subtracting the maximum changes nothing mathematically (softmax is shift-invariant) but keeps every ``exp`` in
    (0, 1], so logits of +-1e4 give finite, exact results where the naive formula gives ``inf - inf = nan``.

    Args:
        logits (Tensor[..., C, ...]): floating; any shape with at least one dimension.
        dim (int): the class dimension.

    Returns:
        Tensor: same shape and dtype as ``logits``, every entry <= 0, ``exp`` of each slice summing to 1.

    Raises:
        TypeError: ``logits`` is not a floating tensor.
        ValueError: ``logits`` is 0-dimensional or ``dim`` is out of range.
    """
    raise NotImplementedError("classification.log_softmax: see specs/04_classification.yaml")


def softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim``, computed as ``exp(x - max(x))`` normalised (stable at |x| = 1e4).

    Args:
        logits (Tensor[..., C, ...]): floating; any shape with at least one dimension.
        dim (int): the class dimension.

    Returns:
        Tensor: same shape and dtype as ``logits``, entries in [0, 1], each slice along ``dim`` summing to 1.

    Raises:
        TypeError: ``logits`` is not a floating tensor.
        ValueError: ``logits`` is 0-dimensional or ``dim`` is out of range.
    """
    raise NotImplementedError("classification.softmax: see specs/04_classification.yaml")


def cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean cross-entropy between target distributions and ``softmax(logits)``, with PyTorch's semantics.

    Each row's target distribution ``q`` is the one-hot vector of a class index, or a given probability row; label
    smoothing mixes it with the uniform distribution, ``q' = (1 - eps) * q + eps / C`` (every class, the true one
    included, gets ``eps / C``). The loss is ``mean_n( -sum_c q'[n, c] * log_softmax(logits)[n, c] )``.

    Args:
        logits (Tensor[N, C]): floating, N >= 1.
        target (Tensor[N] int64 | Tensor[N, C] floating): class indices in [0, C), or probability rows (non-negative,
            each summing to 1; same dtype as ``logits``).
        label_smoothing (float): ``eps`` in [0, 1].

    Returns:
        Tensor[]: 0-dimensional, the dtype of ``logits``; differentiable with respect to ``logits``.

    Raises:
        TypeError: ``logits`` not floating, or ``target`` neither integer nor floating.
        ValueError: shapes that do not match, class indices out of range, or ``label_smoothing`` outside [0, 1].
    """
    raise NotImplementedError("classification.cross_entropy: see specs/04_classification.yaml")


# --- augmentation -----------------------------------------------------------------------------------------------------


def mixup_batch(images: Tensor, labels: Tensor, alpha: float, num_classes: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Mixup (Zhang et al., 2018): blend every image with another image of the batch, and their labels alike.

    One ``lam ~ Beta(alpha, alpha)`` is drawn for the batch, and one permutation ``perm`` of ``range(N)``; then
    ``mixed[i] = lam * images[i] + (1 - lam) * images[perm[i]]`` and
    ``targets[i] = lam * one_hot(labels[i]) + (1 - lam) * one_hot(labels[perm[i]])``. Both draws come from
    ``generator`` (``lam`` through a numpy stream seeded from it), so the result is reproducible.

    Args:
        images (Tensor[N, C, H, W]): floating, N >= 1.
        labels (Tensor[N] int64): class indices in [0, num_classes).
        alpha (float): Beta concentration, > 0 (small: ``lam`` near 0 or 1; 1: uniform).
        num_classes (int): length of the target rows, >= 1.
        generator (torch.Generator): the only source of randomness.

    Returns:
        tuple[Tensor[N, C, H, W], Tensor[N, num_classes]]: the mixed images (dtype of ``images``) and the soft
        targets (same dtype; each row non-negative and summing to 1).

    Raises:
        TypeError, ValueError: malformed images or labels, ``alpha`` <= 0 or ``num_classes`` < 1.
    """
    raise NotImplementedError("classification.mixup_batch: see specs/04_classification.yaml")


def random_crop(images: Tensor, size: int, padding: int, generator: torch.Generator) -> Tensor:
    """Zero-pad every image by ``padding`` pixels on each side, then cut a ``size x size`` window from each.

    Each image gets its own offset ``(top, left)``, uniform over ``[0, H + 2 * padding - size] x [0, W + 2 * padding -
    size]``, drawn from ``generator``. The classic CIFAR recipe is ``size = 32, padding = 4``: shifts of up to 4 px.

    Args:
        images (Tensor[N, C, H, W]): floating.
        size (int): side of the output, in [1, min(H, W) + 2 * padding].
        padding (int): zeros added on each side, >= 0.
        generator (torch.Generator): the only source of randomness.

    Returns:
        Tensor[N, C, size, size]: same dtype; each image a window of its own padded image.

    Raises:
        TypeError, ValueError: malformed images, ``padding`` < 0 or ``size`` out of range.
    """
    raise NotImplementedError("classification.random_crop: see specs/04_classification.yaml")


def random_hflip(images: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Mirror each image left-right (reverse its columns) with probability ``p``, independently, by ``generator``.

    Args:
        images (Tensor[N, C, H, W]): floating.
        p (float): flip probability in [0, 1]; 0 returns the images unchanged, 1 flips them all.
        generator (torch.Generator): the only source of randomness.

    Returns:
        Tensor[N, C, H, W]: same dtype; image ``i`` is ``images[i]`` or ``images[i].flip(-1)``.

    Raises:
        TypeError, ValueError: malformed images, or ``p`` outside [0, 1].
    """
    raise NotImplementedError("classification.random_hflip: see specs/04_classification.yaml")


# --- evaluation -------------------------------------------------------------------------------------------------------


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """Counts of (true class, predicted class) pairs: ``cm[t, p]`` = examples of class ``t`` predicted as ``p``.

    Args:
        predictions (Tensor[N] int64): predicted classes in [0, num_classes).
        targets (Tensor[N] int64): true classes in [0, num_classes).
        num_classes (int): >= 1.

    Returns:
        Tensor[num_classes, num_classes] int64: rows are true classes, columns predicted (scikit-learn's layout);
        the diagonal holds the correct predictions and the total is N.

    Raises:
        TypeError, ValueError: non-integer inputs, different lengths, or classes out of range.
    """
    raise NotImplementedError("classification.confusion_matrix: see specs/04_classification.yaml")


def per_class_report(cm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Precision, recall and F1 of every class from a confusion matrix (true classes on rows).

    For class ``c``: ``tp = cm[c, c]``, precision = tp / (column sum), recall = tp / (row sum),
    F1 = 2 tp / (row sum + column sum). A ratio with a zero denominator is 0 (scikit-learn's ``zero_division=0``):
    precision of a class never predicted, recall of a class never present, F1 of a class neither present nor predicted.

    Args:
        cm (Tensor[C, C]): non-negative counts (integer or floating).

    Returns:
        tuple[Tensor[C], Tensor[C], Tensor[C]]: precision, recall, f1, float64, each in [0, 1].

    Raises:
        TypeError: ``cm`` is not a tensor.
        ValueError: ``cm`` is not square or has negative entries.
    """
    raise NotImplementedError("classification.per_class_report: see specs/04_classification.yaml")


# --- calibration ------------------------------------------------------------------------------------------------------


def expected_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> float:
    """ECE: how far confidence is from accuracy, averaged over confidence bins weighted by their size.

    Each example's confidence is its largest probability and its prediction that class (the first on a tie). Bin
    ``k`` holds the confidences in ``[k / n_bins, (k + 1) / n_bins)`` (boundaries ``linspace(0, 1, n_bins + 1)`` in
    the dtype of ``probs``), and confidences of exactly 1 a bin of their own (torchmetrics' convention). Then
    ``ECE = sum_k (|B_k| / N) * |accuracy(B_k) - mean confidence(B_k)|`` over the non-empty bins.

    Args:
        probs (Tensor[N, C]): floating, rows of class probabilities, N >= 1.
        target (Tensor[N] int64): true classes in [0, C).
        n_bins (int): number of equal-width bins, >= 1.

    Returns:
        float: in [0, 1]; 0 for a perfectly calibrated model.

    Raises:
        TypeError, ValueError: malformed ``probs`` or ``target``, or ``n_bins`` < 1.
    """
    raise NotImplementedError("classification.expected_calibration_error: see specs/04_classification.yaml")


def fit_temperature(logits: Tensor, target: Tensor) -> float:
    """Temperature scaling (Guo et al., 2017): the ``T > 0`` minimising the NLL of ``softmax(logits / T)``.

    Dividing every logit by the same ``T`` never changes the argmax, so accuracy stays; ``T > 1`` softens an
    overconfident model, ``T < 1`` sharpens an underconfident one. Fit on held-out data, never the training set.
    The NLL is convex in ``1 / T``; this minimises it over ``log T`` in [log 0.01, log 100] by golden-section
    search in float64, then polishes with Newton steps.

    Args:
        logits (Tensor[N, C]): floating, held-out logits, N >= 1.
        target (Tensor[N] int64): their true classes in [0, C).

    Returns:
        float: the fitted temperature, in [0.01, 100].

    Raises:
        TypeError, ValueError: malformed ``logits`` or ``target``.
    """
    raise NotImplementedError("classification.fit_temperature: see specs/04_classification.yaml")


# --- the metric task: a small CNN on shapes32cls ----------------------------------------------------------------------


def train_classifier(train: dict, *, seed: int, budget_s: float) -> nn.Module:
    """Train a small CNN with AdamW, a one-cycle schedule, random crops and flips; then fit a temperature.

    The last ``held_out`` training images (in a seeded shuffle) are not trained on: the temperature is fitted on
    their logits, so that the probabilities ``predict_classifier`` returns are calibrated. The schedule (epochs,
    batch size, one-cycle learning rate) is fixed, so a seed gives the same model on any machine, whatever its load;
    only where the budget is nearly spent first (a much slower machine) does training stop early, to return in time.
    The global RNG is left as it was.

    Args:
        train (dict): ``{"images": Tensor[N, 3, H, W] float32 in [0, 1], "labels": Tensor[N] int64}`` (other keys
            are ignored).
        seed (int): the run's seed.
        budget_s (float): CPU seconds allowed (the schedule needs ~30 s on one thread of a 2-core machine); training
            stops early only once the budget clock expires (``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        nn.Module: an opaque model for ``predict_classifier``.

    Raises:
        TypeError, ValueError: a malformed split, or ``budget_s`` <= 0.
    """
    raise NotImplementedError("classification.train_classifier: see specs/04_classification.yaml")


def predict_classifier(model: nn.Module, inputs: dict) -> Tensor:
    """Calibrated class probabilities: ``softmax(logits / T)`` with the temperature fitted in training.

    Args:
        model (nn.Module): what ``train_classifier`` returned.
        inputs (dict): ``{"images": Tensor[N, 3, H, W] float32 in [0, 1]}``.

    Returns:
        Tensor[N, num_classes] float32: rows of probabilities (non-negative, summing to 1); the predicted class of
        image ``i`` is ``argmax`` of row ``i``.

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    raise NotImplementedError("classification.predict_classifier: see specs/04_classification.yaml")
