"""LeNet to ResNet: the building blocks of convolutional networks, and LeNet-5 trained on handwritten digits.

Conventions: images are NCHW float tensors; a model maps ``Tensor[N, C, H, W]`` to logits ``Tensor[N, num_classes]``
(unnormalised scores; softmax and the loss live in the training loop). Every module here is a ``torch.nn.Module``.

The path of the lesson:
- ``LeNet5`` (1998): convolutions, tanh, average pooling, three fully connected layers; 61,706 parameters.
- ``BatchNorm2d`` from scratch: normalise each channel with the batch's statistics while training, with running
  averages of them at inference; this is what made deep networks trainable without careful initialisation.
- ``VGGBlock`` (2014): stacks of 3x3 convolutions, then a 2x2 max-pool halving the resolution.
- ``BasicBlock`` and ``Bottleneck`` (2015): residual blocks, ``relu(F(x) + x)``; the identity path lets gradients
  reach early layers of very deep networks. ``resnet18`` assembles them, key for key like torchvision's.
- ``train_lenet`` / ``predict_lenet``: the metric task, LeNet-5 on the digits32 dataset within a time budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness.training import BudgetClock, seeded, seeded_generator, split_images, split_labels, warmup_cosine

__all__ = [
    "LeNet5",
    "BatchNorm2d",
    "VGGBlock",
    "BasicBlock",
    "Bottleneck",
    "resnet18",
    "count_parameters",
    "train_lenet",
    "predict_lenet",
]


# --- input checks -----------------------------------------------------------------------------------------------------


def _check_images(x: Tensor, name: str, channels: int | None = None, size: tuple[int, int] | None = None) -> None:
    """Raise TypeError/ValueError unless ``x`` is a floating ``Tensor[N, channels, *size]``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor[N, C, H, W], got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    expected = f"[N, {channels if channels is not None else 'C'}, {size[0] if size else 'H'}, {size[1] if size else 'W'}]"
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels) or (size is not None and tuple(x.shape[2:]) != size):
        raise ValueError(f"{name}: expected a tensor of shape {expected}, got {tuple(x.shape)}")


# --- LeNet-5 ----------------------------------------------------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with tanh activations and average pooling.

    Layer by layer, for ``Tensor[N, 1, 32, 32]`` input::

        conv1  1 -> 6,  5x5   (N, 6, 28, 28)   tanh, avg-pool 2 -> (N, 6, 14, 14)        156 parameters
        conv2  6 -> 16, 5x5   (N, 16, 10, 10)  tanh, avg-pool 2 -> (N, 16, 5, 5)       2,416
        fc1    400 -> 120                       tanh                                  48,120
        fc2    120 -> 84                        tanh                                  10,164
        fc3    84 -> num_classes                logits                                   850 (10 classes)

    61,706 parameters for 10 classes. (The 1998 network also had trainable pooling coefficients and a sparse
    conv2 connection table; this is the version everyone builds today.)

    Args:
        num_classes (int): number of output logits, >= 1.

    Raises:
        ValueError: ``num_classes`` < 1.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"LeNet5: num_classes must be >= 1, got {num_classes}")
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch of 32x32 grey images.

        Args:
            x (Tensor[N, 1, 32, 32]): images, float.

        Returns:
            Tensor[N, num_classes]: logits, same dtype as ``x``.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, 1, 32, 32]``.
        """
        _check_images(x, "LeNet5", channels=1, size=(32, 32))
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)  # (N, 6, 14, 14)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)  # (N, 16, 5, 5)
        x = x.flatten(1)  # (N, 400)
        x = torch.tanh(self.fc1(x))  # (N, 120)
        x = torch.tanh(self.fc2(x))  # (N, 84)
        return self.fc3(x)  # (N, num_classes)


# --- batch normalisation ----------------------------------------------------------------------------------------------


class BatchNorm2d(nn.Module):
    """Batch normalisation over (N, H, W) for each channel, with PyTorch's semantics and state-dict layout.

    Train mode: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with ``mean`` and the *biased* ``var`` of the
    batch, per channel; then the running statistics move towards the batch's,
    ``running = (1 - momentum) * running + momentum * batch``, using the *unbiased* variance (``n / (n - 1)`` times
    the biased one, n = N * H * W), and ``num_batches_tracked`` grows by one.
    Eval mode: the same formula with ``running_mean`` and ``running_var``; nothing changes, so an image's output no
    longer depends on the rest of its batch.

    Args:
        num_features (int): number of channels C.
        eps (float): added to the variance before the square root, > 0.
        momentum (float): weight of the new batch in the running averages, in [0, 1].
        affine (bool): learn a per-channel ``weight`` (init 1) and ``bias`` (init 0); without it both are None.

    Raises:
        ValueError: ``num_features`` < 1, ``eps`` <= 0, or ``momentum`` outside [0, 1].
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"BatchNorm2d: num_features must be >= 1, got {num_features}")
        if eps <= 0:
            raise ValueError(f"BatchNorm2d: eps must be > 0, got {eps}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d: momentum must lie in [0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum, self.affine = num_features, eps, momentum, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        # Buffers are saved in the state dict and moved by .to(), but are not trained.
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each channel.

        Args:
            x (Tensor[N, C, H, W]): float, C == num_features.

        Returns:
            Tensor[N, C, H, W]: same dtype as ``x``.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, num_features, H, W]``, or in train mode a
                channel has fewer than 2 values (N * H * W < 2: no variance to normalise with).
        """
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        if self.training:
            count = x.numel() // x.shape[1]  # values per channel: N * H * W
            if count < 2:
                raise ValueError(f"BatchNorm2d: train mode needs more than one value per channel, got input of shape {tuple(x.shape)}")
            mean = x.mean(dim=(0, 2, 3))  # (C,)
            var = x.var(dim=(0, 2, 3), correction=0)  # (C,) biased: the batch's own spread, used to normalise
            with torch.no_grad():  # the running averages are bookkeeping, not part of the graph
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * (count / (count - 1)), self.momentum)  # unbiased estimate of the data's variance
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean[:, None, None]) * torch.rsqrt(var[:, None, None] + self.eps)  # (N, C, H, W)
        if self.affine:
            return x_hat * self.weight[:, None, None] + self.bias[:, None, None]
        return x_hat


# --- VGG --------------------------------------------------------------------------------------------------------------


class VGGBlock(nn.Module):
    """A VGG stage (Simonyan & Zisserman, 2014): ``num_convs`` x (3x3 conv, padding 1 -> ReLU), then 2x2 max-pool.

    Two stacked 3x3 convolutions see a 5x5 window with fewer parameters than one 5x5 convolution; the pool halves
    the resolution (odd sizes round down).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels of every convolution.
        num_convs (int): number of convolutions, >= 1.

    Raises:
        ValueError: ``num_convs`` < 1.
    """

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2) -> None:
        super().__init__()
        if num_convs < 1:
            raise ValueError(f"VGGBlock: num_convs must be >= 1, got {num_convs}")
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, kernel_size=3, padding=1) for i in range(num_convs)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Convolve, rectify, pool.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 2.

        Returns:
            Tensor[N, out_channels, H // 2, W // 2]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        _check_images(x, "VGGBlock", channels=self.convs[0].in_channels)
        for conv in self.convs:
            x = F.relu(conv(x))  # (N, out_channels, H, W): padding 1 keeps the size
        return F.max_pool2d(x, kernel_size=2, stride=2)  # (N, out_channels, H // 2, W // 2)


# --- ResNet -----------------------------------------------------------------------------------------------------------
# Module names follow torchvision.models.resnet exactly, so that state dicts load both ways. The blocks use
# nn.BatchNorm2d, PyTorch's fused kernel: BatchNorm2d above computes the same thing with the same state-dict keys.


def _check_block_arguments(name: str, in_channels: int, channels: int, stride: int) -> None:
    if in_channels < 1 or channels < 1:
        raise ValueError(f"{name}: in_channels and channels must be >= 1, got {in_channels} and {channels}")
    if stride < 1:
        raise ValueError(f"{name}: stride must be >= 1, got {stride}")


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (the batch norm that follows has one)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias: mixes channels at each pixel."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def _projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """The identity path's projection ("downsample" in torchvision) when a block changes shape, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(_conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """The residual block of ResNet-18/34 (He et al., 2015): ``relu(bn2(conv2(relu(bn1(conv1(x))))) + identity)``.

    ``identity`` is ``x`` itself when the block keeps the shape, else ``downsample(x)``: a strided 1x1 convolution and
    a batch norm that bring ``x`` to the output's channels and size.

    Args:
        in_channels (int): input channels.
        channels (int): output channels (``expansion`` = 1).
        stride (int): stride of conv1 (and of the projection); the output is ``ceil(H / stride)`` high.

    Raises:
        ValueError: a channel count < 1 or stride < 1.
    """

    expansion = 1  # output channels = expansion * channels

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        _check_block_arguments("BasicBlock", in_channels, channels, stride)
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = _projection(in_channels, channels * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        """The residual function of ``x`` plus ``x`` (projected when the shape changes), rectified.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, channels, ceil(H / stride), ceil(W / stride)]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        _check_images(x, "BasicBlock", channels=self.conv1.in_channels)
        identity = x if self.downsample is None else self.downsample(x)  # (N, channels, H', W')
        out = F.relu(self.bn1(self.conv1(x)))  # (N, channels, H', W')
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    """The residual block of ResNet-50/101/152: 1x1 (reduce) -> 3x3 -> 1x1 (expand by 4), plus the identity.

    The 3x3 convolution works on ``channels`` channels while the block's input and output have ``4 * channels``,
    which keeps deep networks affordable. The stride sits on the 3x3 convolution ("ResNet v1.5", as torchvision).

    Args:
        in_channels (int): input channels.
        channels (int): width of the 3x3 convolution; output channels are ``expansion * channels``.
        stride (int): stride of conv2 (and of the projection).

    Raises:
        ValueError: a channel count < 1 or stride < 1.
    """

    expansion = 4  # output channels = expansion * channels

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        _check_block_arguments("Bottleneck", in_channels, channels, stride)
        out_channels = channels * self.expansion
        self.conv1 = _conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = _conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample = _projection(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        """The bottleneck's residual function of ``x`` plus ``x`` (projected when the shape changes), rectified.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, 4 * channels, ceil(H / stride), ceil(W / stride)]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        _check_images(x, "Bottleneck", channels=self.conv1.in_channels)
        identity = x if self.downsample is None else self.downsample(x)  # (N, 4 * channels, H', W')
        out = F.relu(self.bn1(self.conv1(x)))  # (N, channels, H, W)
        out = F.relu(self.bn2(self.conv2(out)))  # (N, channels, H', W')
        out = self.bn3(self.conv3(out))  # (N, 4 * channels, H', W')
        return F.relu(out + identity)


class _ResNet(nn.Module):
    """A stem (7x7 stride-2 conv, max-pool), four stages of residual blocks (64, 128, 256, 512 channels, each stage
    after the first halving the resolution), global average pooling and a linear classifier.

    ``_ResNet(BasicBlock, [2, 2, 2, 2])`` is ResNet-18, ``[3, 4, 6, 3]`` ResNet-34; with Bottleneck, ResNet-50.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks_per_stage: list[int], num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"resnet: num_classes must be >= 1, got {num_classes}")
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for index, (channels, count) in enumerate(zip((64, 128, 256, 512), blocks_per_stage)):
            stride = 1 if index == 0 else 2
            stage = [block(in_channels, channels, stride)] + [block(channels * block.expansion, channels) for _ in range(count - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
            in_channels = channels * block.expansion
        self.fc = nn.Linear(in_channels, num_classes)
        for module in self.modules():  # torchvision's initialisation: He-normal for convolutions, BN as identity
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``Tensor[N, num_classes]`` for images ``Tensor[N, 3, H, W]`` (ValueError for other shapes)."""
        _check_images(x, "resnet", channels=3)
        x = F.relu(self.bn1(self.conv1(x)))  # (N, 64, H/2, W/2)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)  # (N, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 512 * expansion, H/32, W/32)
        x = x.mean(dim=(2, 3))  # global average pooling: (N, 512 * expansion)
        return self.fc(x)  # (N, num_classes)


def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18, state-dict compatible with ``torchvision.models.resnet18(num_classes=num_classes)``.

    Keys: ``conv1``, ``bn1``, ``layer1`` .. ``layer4`` (two BasicBlocks each; ``layerK.0.downsample`` in stages 2-4),
    ``fc``; 11,689,512 parameters for 1000 classes.

    Args:
        num_classes (int): number of logits, >= 1.

    Returns:
        nn.Module: maps ``Tensor[N, 3, H, W]`` (float; five stride-2 steps halve H and W, rounding up) to logits ``Tensor[N, num_classes]``.

    Raises:
        ValueError: ``num_classes`` < 1.
    """
    return _ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters of ``model``.

    ``model.parameters()`` yields a parameter shared by several layers once, so it is counted once; buffers (batch
    norm's running statistics) are state, not parameters, and are not counted.

    Args:
        model (nn.Module): any module.
        trainable_only (bool): count only parameters with ``requires_grad``.

    Returns:
        int: the count (0 for a module without parameters).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"count_parameters: expected an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --- the metric task: LeNet-5 on digits32 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _LeNetTraining:
    """How train_lenet trains (chosen on digits32's validation split; see specs/03_cnn.yaml for the calibration)."""

    epochs: int = 30  # passes over the training split, unless the budget runs out first
    batch_size: int = 32  # images per optimisation step
    learning_rate: float = 3e-3  # AdamW's peak step size, decayed to 0 along a cosine over all steps
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay
    max_shift: int = 2  # augmentation: each training image moves by up to this many pixels in x and y


def _shifted(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image translated by its own random offset in [-max_shift, max_shift]^2, zeros (background) filled in."""
    if max_shift == 0:
        return images
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4)  # (N, 1, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets.tolist())])


def train_lenet(train: dict, *, seed: int, budget_s: float) -> LeNet5:
    """Train LeNet-5 on 32x32 grey digits with AdamW, a cosine learning-rate schedule and small random shifts.

    Deterministic given ``seed`` (initialisation, shuffling and augmentation all draw from it) unless the budget
    cuts training short; the global RNG is left as it was.

    Args:
        train (dict): ``{"images": Tensor[N, 1, 32, 32] float32 in [0, 1], "labels": Tensor[N] int64}``.
        seed (int): the run's seed.
        budget_s (float): CPU seconds allowed; the fixed schedule stops early only once the budget clock expires
            (``harness.training.EARLY_STOP_FRACTION`` of it spent).

    Returns:
        LeNet5: the trained model, in eval mode, with as many classes as ``labels.max() + 1``.

    Raises:
        TypeError, ValueError: a malformed split, or ``budget_s`` <= 0.
    """
    clock = BudgetClock(budget_s, "train_lenet")
    images = split_images(train, "train_lenet", channels=1, size=(32, 32))  # (N, 1, 32, 32)
    labels = split_labels(train, "train_lenet", count=len(images))  # (N,)
    config = _LeNetTraining()
    generator = seeded_generator(seed)
    with seeded(seed):
        model = LeNet5(num_classes=int(labels.max()) + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(images) / config.batch_size)
    schedule = warmup_cosine(optimizer, total_steps=config.epochs * steps_per_epoch)
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator)
        for batch in order.split(config.batch_size):
            if clock.expired():
                return model.eval()
            logits = model(_shifted(images[batch], config.max_shift, generator))  # (B, num_classes)
            loss = F.cross_entropy(logits, labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def predict_lenet(model: nn.Module, inputs: dict) -> Tensor:
    """The class each image most likely shows, by the trained model's largest logit.

    Args:
        model (nn.Module): what ``train_lenet`` returned.
        inputs (dict): ``{"images": Tensor[N, 1, 32, 32] float32 in [0, 1]}``.

    Returns:
        Tensor[N] int64: class indices.

    Raises:
        TypeError, ValueError: malformed ``inputs``.
    """
    images = split_images(inputs, "predict_lenet", channels=1, size=(32, 32))  # (N, 1, 32, 32)
    model.eval()
    with torch.no_grad():
        return torch.cat([model(chunk).argmax(dim=1) for chunk in images.split(512)])  # (N,)
