"""``ShapesNet``: the small CNN the harness pretrains on a source task, and the recipe it is trained with.

The network is four stages and a linear head. A *stage* is one element of ``stages`` (a conv-BN-ReLU block, the
first three followed by 2x2 max-pooling); the *head* is ``head``, applied to the globally average-pooled output of
the last stage. Topic 05 (transfer) fine-tunes it on new classes; its spec says what a stage's depth is.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

__all__ = ["ShapesNet", "ShapesNetRecipe", "SOURCE_DATASET"]

SOURCE_DATASET = "shapes32_source"
"""The dataset (datasets.yaml) of the source task: 32x32 images of one shape of the first 5 classes."""


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


class ShapesNet(nn.Module):
    """Four conv-BN-ReLU stages (2x2 max-pooling after the first three), global average pooling, a linear head.

    Attributes:
        stages (nn.Sequential): the four stages, input side first; ``stages[i]`` is an ``nn.Sequential`` of
            ``Conv2d(3x3, no bias), BatchNorm2d, ReLU`` (and ``MaxPool2d(2)`` for ``i < 3``).
        head (nn.Linear): ``feature_dim -> num_classes``.
        feature_dim (int): channels of the last stage, the length of a feature vector.

    Args:
        num_classes: outputs of the head.
        widths: output channels of the four stages.
        in_channels: channels of the input images.
    """

    def __init__(self, num_classes: int = 5, widths: tuple[int, int, int, int] = (16, 32, 64, 64), in_channels: int = 3) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"ShapesNet has four stages; got widths {widths}")
        inputs = (in_channels, *widths[:-1])
        self.stages = nn.Sequential(
            *(nn.Sequential(*_conv_bn_relu(i, o), *([nn.MaxPool2d(2)] if k < 3 else [])) for k, (i, o) in enumerate(zip(inputs, widths)))
        )
        self.feature_dim = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, images: Tensor) -> Tensor:
        """``Tensor[N, feature_dim]``: the last stage's output, averaged over space, for images ``Tensor[N, C, H, W]``."""
        return self.stages(images).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``Tensor[N, num_classes]`` for images ``Tensor[N, C, H, W]`` (float, in [0, 1])."""
        return self.head(self.features(images))


@dataclass(frozen=True)
class ShapesNetRecipe:
    """How ``python -m harness.pretrained.train`` trains ShapesNet on the source task (fixed schedule, one thread).

    The committed weights record the recipe they were trained with; loading them fails when this one differs.
    """

    seed: int = 0  # initialisation, shuffling and augmentation
    epochs: int = 15  # passes over the source training split
    batch_size: int = 64
    learning_rate: float = 3e-3  # AdamW's peak step size, one-cycle schedule over all steps
    weight_decay: float = 5e-4
    crop_padding: int = 2  # augmentation: random shifts of up to this many pixels (zero padding) ...
    flip: bool = True  # ... and random left-right flips
    widths: tuple[int, int, int, int] = (16, 32, 64, 64)
    num_classes: int = 5  # the source classes: circle, square, triangle, star, ring
