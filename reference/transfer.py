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


def _stages_and_head(model: nn.Module) -> tuple[list[nn.Module], str]:
    """(the stages, input side first; the name of the head attribute) of a ShapesNet or a torchvision ResNet."""
    if isinstance(model, ShapesNet):
        return list(model.stages), "head"
    if isinstance(model, torchvision.models.ResNet):
        stem = nn.ModuleList([model.conv1, model.bn1])  # a container for their parameters; the model is unchanged
        return [stem, model.layer1, model.layer2, model.layer3, model.layer4], "fc"
    raise TypeError(f"expected a harness.pretrained.ShapesNet or a torchvision ResNet, got {type(model).__name__}")


# --- freezing ---------------------------------------------------------------------------------------------------------


def _keep_evaluating(layer: nn.Module, inputs: tuple[Tensor, ...]) -> None:
    """Forward pre-hook: back to evaluation mode before every call, whatever ``.train()`` did in between."""
    layer.train(False)  # a pre-hook's return value would replace the inputs: return None


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
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
            if not getattr(layer, "_running_statistics_frozen", False):
                layer.register_forward_pre_hook(_keep_evaluating)
                layer._running_statistics_frozen = True
    return module


def freeze(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: no parameter in it is trained, no batch-norm statistic in it is updated.

    Args:
        module (nn.Module): e.g. a stage of a model; layers outside it are untouched.

    Returns:
        nn.Module: ``module``.
    """
    module.requires_grad_(False)
    return freeze_bn_stats(module)


def trainable_param_count(model: nn.Module) -> int:
    """The number of scalars in ``model``'s parameters that require gradients (shared parameters counted once)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


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
    _, head_name = _stages_and_head(model)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be an integer >= 1, got {num_classes!r}")
    old = getattr(model, head_name)
    setattr(model, head_name, nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype))
    return model


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
    stages, head_name = _stages_and_head(model)
    if not base_lr > 0:
        raise ValueError(f"discriminative_param_groups: base_lr must be > 0, got {base_lr}")
    if not 0 < decay <= 1:
        raise ValueError(f"discriminative_param_groups: decay must lie in (0, 1], got {decay}")
    by_depth = [getattr(model, head_name), *reversed(stages)]  # depth 0 (the head), 1 (the last stage), ...
    groups = [{"params": list(block.parameters()), "lr": base_lr * decay**depth} for depth, block in enumerate(by_depth)]
    if sum(len(group["params"]) for group in groups) != len(list(model.parameters())):
        raise ValueError("discriminative_param_groups: the model has parameters outside its stages and head")
    return groups


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
    for name, value, low in (("num_stages", num_stages, 0), ("epochs", epochs, 1), ("unfreeze_every", unfreeze_every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"progressive_unfreeze_schedule: {name} must be an integer >= {low}, got {value!r}")
    return [min(num_stages, epoch // unfreeze_every) for epoch in range(epochs)]


# --- the linear probe -------------------------------------------------------------------------------------------------


def _check_probe_inputs(features: Tensor, labels: Tensor, c: float) -> int:
    """Raise TypeError/ValueError unless the inputs fit linear_probe's contract; returns the number of classes."""
    if not isinstance(features, Tensor) or not features.is_floating_point():
        got = features.dtype if isinstance(features, Tensor) else type(features).__name__
        raise TypeError(f"linear_probe: features must be a floating Tensor[N, D], got {got}")
    if features.dim() != 2 or len(features) == 0:
        raise ValueError(f"linear_probe: features must have shape [N, D] with N >= 1, got {tuple(features.shape)}")
    if not isinstance(labels, Tensor) or labels.dtype != torch.int64 or labels.shape != (len(features),):
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"linear_probe: labels must be int64[{len(features)}], got {got}")
    if labels.min() < 0:
        raise ValueError(f"linear_probe: labels must be >= 0, got {int(labels.min())}")
    counts = torch.bincount(labels)
    if (counts == 0).any():
        raise ValueError(f"linear_probe: classes {torch.nonzero(counts == 0).flatten().tolist()} of 0..{len(counts) - 1} have no examples")
    if not c > 0:
        raise ValueError(f"linear_probe: c must be > 0, got {c}")
    return len(counts)


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
    num_classes = _check_probe_inputs(features, labels, c)
    inputs = torch.cat([features.double(), features.new_ones(len(features), 1, dtype=torch.float64)], dim=1)  # (N, D + 1)
    targets = F.one_hot(labels, num_classes).double()  # (N, C)
    size = inputs.shape[1]
    penalised = torch.ones(num_classes, size, dtype=torch.float64)
    penalised[:, -1] = 0  # the bias column is not regularised

    def objective(theta: Tensor) -> Tensor:  # theta (C, D + 1): weight and bias side by side
        return c * F.cross_entropy(inputs @ theta.T, labels, reduction="sum") + 0.5 * (penalised * theta * theta).sum()

    theta = torch.zeros(num_classes, size, dtype=torch.float64)
    for _ in range(100):
        probabilities = torch.softmax(inputs @ theta.T, dim=1)  # (N, C)
        gradient = c * (probabilities - targets).T @ inputs + penalised * theta  # (C, D + 1)
        curvature = torch.diag_embed(probabilities) - probabilities[:, :, None] * probabilities[:, None, :]  # (N, C, C)
        hessian = c * torch.einsum("nab,ni,nj->aibj", curvature, inputs, inputs).reshape(num_classes * size, -1)  # (C(D+1), C(D+1))
        hessian += torch.diag(penalised.flatten())
        step = (torch.linalg.pinv(hessian, hermitian=True) @ gradient.flatten()).view_as(theta)
        decrement = float((gradient * step).sum())  # Newton decrement squared: twice the predicted decrease
        if decrement < 1e-20 * max(1.0, float(objective(theta))):
            break
        rate, current = 1.0, objective(theta)
        while objective(theta - rate * step) > current - 0.25 * rate * decrement and rate > 1e-8:
            rate /= 2  # backtracking (Armijo): far from the optimum a full Newton step can overshoot
        theta = theta - rate * step
    weight, bias = theta[:, :-1], theta[:, -1] - theta[:, -1].mean()  # centre away rounding drift
    return weight.to(features.dtype), bias.to(features.dtype)


# --- the metric task: fine-tune the pretrained ShapesNet on a few labels ----------------------------------------------


@dataclass(frozen=True)
class _TransferTraining:
    """How train_transfer trains (see specs/05_transfer.yaml for the calibration)."""

    epochs: int = 60  # passes over the few training images
    batch_size: int = 16
    learning_rate: float = 3e-3  # the head's peak step size (AdamW, one-cycle schedule over all steps)
    decay: float = 0.5  # with pretrained weights: depth d trains at learning_rate * decay ** d
    unfreeze_every: int = 3  # with pretrained weights: one more stage trains every this many epochs
    weight_decay: float = 5e-4
    probe_c: float = 1.0  # the linear probe that initialises the new head (pretrained features only)
    crop_padding: int = 2  # augmentation: random shifts of up to this many pixels, and left-right flips


class _TransferModel(nn.Module):
    """A fine-tuned ShapesNet and the global class index of each of its outputs."""

    def __init__(self, network: ShapesNet, classes: Tensor) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("classes", classes)


def _shift_and_flip(images: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Each image shifted by up to ``padding`` pixels (zero fill) and mirrored left-right with probability 1/2."""
    count, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (count, 2), generator=generator).tolist()  # (N, 2): top, left
    shifted = torch.stack([padded[i, :, top : top + height, left : left + width] for i, (top, left) in enumerate(offsets)])
    flipped = torch.rand(count, generator=generator) < 0.5
    shifted[flipped] = shifted[flipped].flip(-1)
    return shifted


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
    clock = BudgetClock(budget_s, "train_transfer")
    images = split_images(train, "train_transfer", channels=3)  # (N, 3, H, W)
    labels = split_labels(train, "train_transfer", count=len(images))  # (N,) global class indices
    backbone = train.get("backbone")
    if backbone is not None and not isinstance(backbone, Mapping):
        raise TypeError(f"train_transfer: 'backbone' must be a ShapesNet state dict or None, got {type(backbone).__name__}")
    config = _TransferTraining()
    classes, targets = torch.unique(labels, return_inverse=True)  # (K,) global class of each output; (N,) in [0, K)
    generator = seeded_generator(seed)
    pretrained = backbone is not None
    with seeded(seed):
        network = ShapesNet()
        if pretrained:
            network.load_state_dict(backbone)
            freeze_bn_stats(network)
        replace_head(network, len(classes))
    stages = list(network.stages)
    if pretrained:
        network.eval()
        with torch.no_grad():
            weight, bias = linear_probe(network.features(images), targets, config.probe_c)
            network.head.weight.copy_(weight)
            network.head.bias.copy_(bias)
        schedule = progressive_unfreeze_schedule(len(stages), config.epochs, config.unfreeze_every)
    else:
        schedule = [len(stages)] * config.epochs
    groups = discriminative_param_groups(network, config.learning_rate, config.decay if pretrained else 1.0)
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps = config.epochs * math.ceil(len(images) / config.batch_size)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[group["lr"] for group in groups], total_steps=steps)
    for trainable in schedule:
        for depth, stage in enumerate(reversed(stages), start=1):
            if depth <= trainable:
                stage.requires_grad_(True)
            else:
                freeze(stage)
        network.train()
        for batch in torch.randperm(len(images), generator=generator).split(config.batch_size):
            if clock.expired():
                break
            logits = network(_shift_and_flip(images[batch], config.crop_padding, generator))
            loss = F.cross_entropy(logits, targets[batch])
            optimizer.zero_grad(set_to_none=True)  # frozen stages keep grad None: AdamW skips them entirely
            loss.backward()
            optimizer.step()
            one_cycle.step()
    return _TransferModel(network, classes).eval()


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
    images = split_images(inputs, "predict_transfer", channels=3)  # (N, 3, H, W)
    model.eval()
    with torch.no_grad():
        outputs = torch.cat([model.network(chunk).argmax(dim=1) for chunk in images.split(500)])  # (N,) in [0, K)
    return model.classes[outputs]
