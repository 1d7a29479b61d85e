# Generated from reference/cnn.py by `visionbench stub cnn`: fill in the bodies, keep the signatures.
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
        raise NotImplementedError("cnn.LeNet5: see specs/03_cnn.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch of 32x32 grey images.

        Args:
            x (Tensor[N, 1, 32, 32]): images, float.

        Returns:
            Tensor[N, num_classes]: logits, same dtype as ``x``.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, 1, 32, 32]``.
        """
        raise NotImplementedError("cnn.LeNet5: see specs/03_cnn.yaml")


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
        raise NotImplementedError("cnn.BatchNorm2d: see specs/03_cnn.yaml")

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
        raise NotImplementedError("cnn.BatchNorm2d: see specs/03_cnn.yaml")


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
        raise NotImplementedError("cnn.VGGBlock: see specs/03_cnn.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """Convolve, rectify, pool.

        Args:
            x (Tensor[N, in_channels, H, W]): float, H and W >= 2.

        Returns:
            Tensor[N, out_channels, H // 2, W // 2]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        raise NotImplementedError("cnn.VGGBlock: see specs/03_cnn.yaml")


# --- ResNet -----------------------------------------------------------------------------------------------------------
# Module names follow torchvision.models.resnet exactly, so that state dicts load both ways. The blocks use
# nn.BatchNorm2d, PyTorch's fused kernel: BatchNorm2d above computes the same thing with the same state-dict keys.


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
        raise NotImplementedError("cnn.BasicBlock: see specs/03_cnn.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """The residual function of ``x`` plus ``x`` (projected when the shape changes), rectified.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, channels, ceil(H / stride), ceil(W / stride)]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        raise NotImplementedError("cnn.BasicBlock: see specs/03_cnn.yaml")


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
        raise NotImplementedError("cnn.Bottleneck: see specs/03_cnn.yaml")

    def forward(self, x: Tensor) -> Tensor:
        """The bottleneck's residual function of ``x`` plus ``x`` (projected when the shape changes), rectified.

        Args:
            x (Tensor[N, in_channels, H, W]): float.

        Returns:
            Tensor[N, 4 * channels, ceil(H / stride), ceil(W / stride)]: non-negative.

        Raises:
            TypeError, ValueError: ``x`` is not a floating ``Tensor[N, in_channels, H, W]``.
        """
        raise NotImplementedError("cnn.Bottleneck: see specs/03_cnn.yaml")


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
    raise NotImplementedError("cnn.resnet18: see specs/03_cnn.yaml")


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
    raise NotImplementedError("cnn.count_parameters: see specs/03_cnn.yaml")


# --- the metric task: LeNet-5 on digits32 -----------------------------------------------------------------------------


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
    raise NotImplementedError("cnn.train_lenet: see specs/03_cnn.yaml")


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
    raise NotImplementedError("cnn.predict_lenet: see specs/03_cnn.yaml")
