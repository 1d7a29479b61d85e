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


def _check_float(x: Tensor, name: str, dims: int | None = None, expected: str = "a floating-point tensor") -> None:
    """Raise TypeError/ValueError unless ``x`` is a floating tensor (with ``dims`` dimensions when given)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected {expected} of a floating dtype, got {x.dtype}")
    if dims is not None and x.dim() != dims:
        raise ValueError(f"{name}: expected {expected}, got shape {tuple(x.shape)}")


def _check_labels(labels: Tensor, name: str, count: int, num_classes: int) -> None:
    """Raise TypeError/ValueError unless ``labels`` is an integer ``Tensor[count]`` with values in [0, num_classes)."""
    if not isinstance(labels, Tensor) or labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(f"{name}: expected integer class indices Tensor[{count}], got {got}")
    if labels.shape != (count,):
        raise ValueError(f"{name}: expected class indices of shape ({count},), got {tuple(labels.shape)}")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name}: class indices must lie in [0, {num_classes}), got [{int(labels.min())}, {int(labels.max())}]")


def _check_images(images: Tensor, name: str) -> None:
    _check_float(images, name, dims=4, expected="images Tensor[N, C, H, W]")


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
    _check_float(logits, "log_softmax", expected="logits Tensor[..., C]")
    if logits.dim() == 0 or not -logits.dim() <= dim < logits.dim():
        raise ValueError(f"log_softmax: dim {dim} is out of range for logits of shape {tuple(logits.shape)}")
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # max 0 along dim: exp in (0, 1]
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


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
    _check_float(logits, "softmax", expected="logits Tensor[..., C]")
    if logits.dim() == 0 or not -logits.dim() <= dim < logits.dim():
        raise ValueError(f"softmax: dim {dim} is out of range for logits of shape {tuple(logits.shape)}")
    exponentials = (logits - logits.amax(dim=dim, keepdim=True)).exp()
    return exponentials / exponentials.sum(dim=dim, keepdim=True)


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
    _check_float(logits, "cross_entropy", dims=2, expected="logits Tensor[N, C]")
    count, num_classes = logits.shape
    if count == 0:
        raise ValueError("cross_entropy: expected at least one row of logits, got shape (0, C)")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if isinstance(target, Tensor) and target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: soft targets must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}")
        distribution = target.to(logits.dtype)
    else:
        _check_labels(target, "cross_entropy", count, num_classes)
        distribution = torch.zeros_like(logits).scatter_(1, target.long()[:, None], 1.0)  # one-hot (N, C)
    distribution = (1 - label_smoothing) * distribution + label_smoothing / num_classes
    return -(distribution * log_softmax(logits, dim=1)).sum(dim=1).mean()


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
    _check_images(images, "mixup_batch")
    if len(images) == 0:
        raise ValueError("mixup_batch: expected at least one image")
    if not alpha > 0:
        raise ValueError(f"mixup_batch: alpha must be > 0, got {alpha}")
    if num_classes < 1:
        raise ValueError(f"mixup_batch: num_classes must be >= 1, got {num_classes}")
    _check_labels(labels, "mixup_batch", len(images), num_classes)
    beta_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(beta_seed).beta(alpha, alpha))
    perm = torch.randperm(len(images), generator=generator)
    mixed = lam * images + (1 - lam) * images[perm]
    one_hot = torch.zeros(len(labels), num_classes, dtype=images.dtype).scatter_(1, labels.long()[:, None], 1.0)  # (N, K)
    return mixed, lam * one_hot + (1 - lam) * one_hot[perm]


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
    _check_images(images, "random_crop")
    count, _, height, width = images.shape
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    if not 1 <= size <= min(height, width) + 2 * padding:
        raise ValueError(f"random_crop: size must lie in [1, {min(height, width) + 2 * padding}], got {size}")
    padded = F.pad(images, (padding,) * 4)  # (N, C, H + 2p, W + 2p)
    tops = torch.randint(0, height + 2 * padding - size + 1, (count,), generator=generator)
    lefts = torch.randint(0, width + 2 * padding - size + 1, (count,), generator=generator)
    crops = [padded[i, :, top : top + size, left : left + size] for i, (top, left) in enumerate(zip(tops.tolist(), lefts.tolist()))]
    return torch.stack(crops) if crops else images.new_zeros(0, images.shape[1], size, size)


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
    _check_images(images, "random_hflip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_hflip: p must lie in [0, 1], got {p}")
    flip = torch.rand(len(images), generator=generator) < p  # (N,) bool
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


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
    if num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be >= 1, got {num_classes}")
    _check_labels(targets, "confusion_matrix targets", len(targets) if isinstance(targets, Tensor) else 0, num_classes)
    _check_labels(predictions, "confusion_matrix predictions", len(targets), num_classes)
    flat = targets.long() * num_classes + predictions.long()  # pair (t, p) -> t * C + p
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


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
    if not isinstance(cm, Tensor):
        raise TypeError(f"per_class_report: expected a confusion matrix Tensor[C, C], got {type(cm).__name__}")
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"per_class_report: expected a square Tensor[C, C], got shape {tuple(cm.shape)}")
    if (cm < 0).any():
        raise ValueError("per_class_report: a confusion matrix holds counts, got negative entries")
    counts = cm.to(torch.float64)
    true_positives = counts.diagonal()
    predicted, actual = counts.sum(dim=0), counts.sum(dim=1)  # column sums, row sums

    def ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
        return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), torch.zeros_like(numerator))

    return ratio(true_positives, predicted), ratio(true_positives, actual), ratio(2 * true_positives, predicted + actual)


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
    _check_float(probs, "expected_calibration_error", dims=2, expected="probabilities Tensor[N, C]")
    if len(probs) == 0:
        raise ValueError("expected_calibration_error: expected at least one row of probabilities")
    if n_bins < 1:
        raise ValueError(f"expected_calibration_error: n_bins must be >= 1, got {n_bins}")
    _check_labels(target, "expected_calibration_error", len(probs), probs.shape[1])
    confidences, predictions = probs.max(dim=1)  # (N,), (N,)
    correct = (predictions == target).to(probs.dtype)
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype)
    bins = torch.bucketize(confidences, boundaries, right=True) - 1  # (N,) in [0, n_bins]; n_bins: confidence 1
    confidence_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, confidences.double())
    correct_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, correct.double())
    # sum_k |B_k| / N * |acc_k - conf_k| = sum_k |correct_k - confidence_k| / N
    return float((correct_sum - confidence_sum).abs().sum() / len(probs))


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
    _check_float(logits, "fit_temperature", dims=2, expected="logits Tensor[N, C]")
    if len(logits) == 0:
        raise ValueError("fit_temperature: expected at least one row of logits")
    _check_labels(target, "fit_temperature", len(logits), logits.shape[1])
    logits64, target64 = logits.detach().double(), target.long()

    def nll(log_temperature: float) -> float:
        return float(cross_entropy(logits64 / math.exp(log_temperature), target64))

    low, high = math.log(0.01), math.log(100.0)
    golden = (math.sqrt(5) - 1) / 2
    a, b = high - golden * (high - low), low + golden * (high - low)
    f_a, f_b = nll(a), nll(b)
    for _ in range(80):  # the bracket shrinks by 0.618 per step: far below float64 resolution after 80
        if f_a < f_b:
            high, b, f_b = b, a, f_a
            a = high - golden * (high - low)
            f_a = nll(a)
        else:
            low, a, f_a = a, b, f_b
            b = low + golden * (high - low)
            f_b = nll(b)
    return math.exp((low + high) / 2)


# --- the metric task: a small CNN on shapes32cls ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ClassifierTraining:
    """How train_classifier trains (see specs/04_classification.yaml for the calibration)."""

    widths: tuple[int, int, int, int] = (16, 32, 64, 64)  # channels of the four conv-BN-ReLU stages
    epochs: int = 24  # passes over the training images (~30 s on one thread of a 2-core machine)
    batch_size: int = 64
    learning_rate: float = 3e-3  # AdamW's peak step size (one-cycle schedule over all steps)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0  # none: temperature scaling does the calibration
    held_out: int = 300  # images kept aside to fit the temperature on
    crop_padding: int = 2  # augmentation: random shifts of up to this many pixels


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())


class _SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages (max-pool between them), global average pooling, a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, w1), nn.MaxPool2d(2),  # (N, w1, H/2, W/2)
            _conv_bn_relu(w1, w2), nn.MaxPool2d(2),  # (N, w2, H/4, W/4)
            _conv_bn_relu(w2, w3), nn.MaxPool2d(2),  # (N, w3, H/8, W/8)
            _conv_bn_relu(w3, w4),
        )  # fmt: skip
        self.classifier = nn.Linear(w4, num_classes)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images).mean(dim=(2, 3)))  # (N, num_classes)


class _CalibratedClassifier(nn.Module):
    """A network and the temperature its logits are divided by."""

    def __init__(self, network: nn.Module, temperature: float) -> None:
        super().__init__()
        self.network, self.temperature = network, temperature


def _logits(network: nn.Module, images: Tensor) -> Tensor:
    network.eval()
    with torch.no_grad():
        return torch.cat([network(chunk) for chunk in images.split(500)])  # (N, num_classes)


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
    clock = BudgetClock(budget_s, "train_classifier")
    images = split_images(train, "train_classifier")  # (N, C, H, W)
    labels = split_labels(train, "train_classifier", count=len(images))  # (N,)
    config = _ClassifierTraining()
    generator = seeded_generator(seed)
    num_classes = int(labels.max()) + 1
    order = torch.randperm(len(images), generator=generator)
    held_out, fit = order[: config.held_out], order[config.held_out :]
    with seeded(seed):
        network = _SmallCNN(images.shape[1], num_classes, config.widths)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    total_steps = config.epochs * math.ceil(len(fit) / config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=total_steps)
    size = images.shape[-1]
    network.train()
    for _ in range(config.epochs):
        for batch in fit[torch.randperm(len(fit), generator=generator)].split(config.batch_size):
            if clock.expired():
                break
            augmented = random_hflip(random_crop(images[batch], size, config.crop_padding, generator), 0.5, generator)
            loss = cross_entropy(network(augmented), labels[batch], config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    temperature = fit_temperature(_logits(network, images[held_out]), labels[held_out])
    return _CalibratedClassifier(network, temperature).eval()


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
    images = split_images(inputs, "predict_classifier")  # (N, C, H, W)
    return softmax(_logits(model.network, images) / model.temperature, dim=1).float()
