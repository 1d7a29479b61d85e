"""Graded tests of topic 07 `segmentation` (specs/07_segmentation.yaml): U-Net blocks, Dice loss, dataset-level IoU;
the U-Net trained on shapes_seg48 (a metric check) is graded by an item the harness makes from the spec.

Oracles: the Dice formula written out class by class here, torch.nn.functional.cross_entropy, scikit-learn's
confusion_matrix, and torchmetrics' MulticlassJaccardIndex / MulticlassAccuracy on the concatenated dataset (a
dataset-level mean IoU; torchmetrics' MeanIoU averages per image, a different number). Every oracle check also runs
on non-contiguous inputs. Tolerances, thresholds and points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from harness.testing import (
    Case,
    CheckFailure,
    assert_close,
    assert_raises,
    cases,
    check,
    functional_call,
    gradcheck_or_fail,
    in_layout,
    layouts,
    load_layers,
    randomized,
    seeded_generator,
    seeded_init,
    seeded_rand,
    seeded_randn,
    strategies,
)

# sklearn warns about a single label even when `labels` is passed (the one_class case): harmless.
pytestmark = pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")

IGNORE = 255  # the usual ignore_index (VOC, Cityscapes); the tests also draw -1, -100 and an in-range class


# --- helpers ----------------------------------------------------------------------------------------------------------


def _classes(shape: tuple[int, ...], seed: int, choices: list[int]) -> torch.Tensor:
    """int64 class map of ``shape`` drawn from ``choices``."""
    index = torch.randint(0, len(choices), shape, generator=seeded_generator(seed))
    return torch.tensor(choices, dtype=torch.int64)[index]


def _noisy_predictions(target: torch.Tensor, seed: int, choices: list[int], correct: float = 0.7) -> torch.Tensor:
    """``target`` with a fraction ``1 - correct`` of the pixels replaced by random classes from ``choices``."""
    keep = seeded_rand(tuple(target.shape), seed) < correct
    return torch.where(keep, target, _classes(tuple(target.shape), seed + 1, choices))


def _oracle_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> torch.Tensor:
    """The spec's Dice loss, class by class, in float64."""
    probabilities = logits.double().softmax(dim=1)
    dice = []
    for c in range(logits.shape[1]):
        p, t = probabilities[:, c], (target == c).double()
        dice.append((2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth))
    return 1 - torch.stack(dice).mean()


def _torchmetrics_iou(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int, average: str, ignore_index: int | None = None
) -> torch.Tensor:
    metric = MulticlassJaccardIndex(num_classes=num_classes, average=average, ignore_index=ignore_index)
    metric.update(predictions.reshape(-1), targets.reshape(-1))
    return metric.compute().double()


def _call(what: str, function, *args):
    """Call the implementation; a crash on valid input (a size mismatch, say) is a failure of the check."""
    try:
        return function(*args)
    except RuntimeError as error:
        raise CheckFailure(f"{what} raised {type(error).__name__}: {' '.join(str(error).split())[:300]}") from None


def _assert_positively_homogeneous(what: str, block, x: torch.Tensor, tolerance) -> None:
    """``block(2 x) = 2 block(x)``, and ``block(x)`` has positive values: a freshly initialised block of bias-free 3x3
    convolutions, batch norms in eval mode (at their initial statistics), max-pooling and ReLUs is positively homogeneous
    and responds to its input; the zero map, a constant or an output with noise added is not both."""
    with torch.no_grad():
        y, doubled = _call(what, block, x), _call(f"{what} of 2 x", block, 2 * x)
    if not isinstance(y, torch.Tensor) or not bool((y > 0).any()):
        raise CheckFailure(f"{what}: no positive value in the output for a random input; the block ends with a ReLU of a random map")
    assert_close(doubled, 2 * y, tolerance, what=f"{what} of 2 x vs twice its output of x (a fresh block in eval mode is positively homogeneous)")


def _assert_per_image(what: str, model, inputs: tuple, tolerance) -> None:
    """In eval mode the images of a batch are independent: each gets the output it gets alone; and the two images of
    ``inputs`` (different) get different outputs."""
    model.eval()
    with torch.no_grad():
        together = _call(what, model, *inputs)
        alone = torch.cat([_call(f"{what}, image {i} alone", model, *(value[i : i + 1] for value in inputs)) for i in range(len(inputs[0]))])
    assert_close(together, alone, tolerance, what=f"{what} on a batch vs on its images one by one (eval mode)")
    if torch.allclose(together[0], together[1]):
        raise CheckFailure(f"{what}: two different images give the same output; it must depend on its input")


# --- U-Net blocks -----------------------------------------------------------------------------------------------------


@check("doubleconv_shapes_and_parameters")
@given(
    batch=st.integers(1, 3),
    in_channels=st.integers(1, 5),
    out_channels=st.integers(1, 6),
    height=st.integers(1, 11),
    width=st.integers(1, 11),
    seed=strategies.seeds,
    anchored=st.just(False),
)
@example(batch=2, in_channels=3, out_channels=4, height=6, width=7, seed=12, anchored=True)  # the values, once
def test_doubleconv_shapes_and_parameters(impl, spec_check, batch, in_channels, out_channels, height, width, seed, anchored):
    block = impl.DoubleConv(in_channels, out_channels).eval()  # eval: batch norm works on a single 1x1 image too
    x = seeded_randn((batch, in_channels, height, width), seed)
    with torch.no_grad():
        y = block(x)
    expected = (batch, out_channels, height, width)
    what = f"DoubleConv({in_channels}, {out_channels}) on {tuple(x.shape)}"
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == expected, (
        f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected}"
    )
    assert y.dtype == torch.float32, f"{what}: dtype {y.dtype}, expected float32"
    assert bool((y >= 0).all()), f"{what}: negative values {float(y.min()):.3g}; the block ends with a ReLU"
    parameters = sum(p.numel() for p in block.parameters())
    wanted = (9 * in_channels + 2) * out_channels + (9 * out_channels + 2) * out_channels
    assert parameters == wanted, f"{what}: {parameters} parameters, expected {wanted} (two bias-free 3x3 convolutions, two batch norms)"
    if anchored:
        _assert_positively_homogeneous(what, block, x, spec_check.tolerance_for(torch.float32))


def _max_pool_twin(x: torch.Tensor) -> torch.Tensor:
    """An input with the same 2x2 max-pool as ``x`` (stride 2, rounding down) but different values elsewhere."""
    pooled = F.max_pool2d(x, 2)  # (N, C, H // 2, W // 2)
    twin = pooled.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # every window filled with its maximum
    twin = twin - seeded_rand(tuple(twin.shape), 0, twin.dtype)  # all below it
    twin[..., ::2, ::2] = pooled  # each window keeps its maximum, at its top-left pixel
    out = x.clone() - 3.0  # rows and columns past the last whole window are never pooled: anything goes there
    out[..., : twin.shape[2], : twin.shape[3]] = twin
    return out


@check("down_halves_resolution")
@given(
    batch=st.integers(1, 3),
    in_channels=st.integers(1, 4),
    out_channels=st.integers(1, 5),
    height=st.integers(2, 13),
    width=st.integers(2, 13),
    seed=strategies.seeds,
    anchored=st.just(False),
)
@example(batch=2, in_channels=3, out_channels=4, height=9, width=11, seed=14, anchored=True)  # the values, once
def test_down_halves_resolution(impl, dtype, tolerance, batch, in_channels, out_channels, height, width, seed, anchored):
    with seeded_init(seed % 1000):
        block = impl.Down(in_channels, out_channels).to(dtype).eval()
    x = seeded_randn((batch, in_channels, height, width), seed, dtype)
    twin = _max_pool_twin(x)
    with torch.no_grad():
        y, y_twin = block(x), block(twin)
    expected = (batch, out_channels, height // 2, width // 2)
    what = f"Down({in_channels}, {out_channels}) on {tuple(x.shape)}"
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == expected, (
        f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected}"
    )
    if not torch.allclose(y, y_twin, rtol=tolerance.rtol, atol=tolerance.atol):
        raise CheckFailure(
            f"{what}: two inputs with the same 2x2 max-pool give different outputs (max abs difference {float((y - y_twin).abs().max()):.3g}); Down must max-pool first"
        )
    if anchored:
        _assert_positively_homogeneous(what, block, x, tolerance)


UP_SIZES = cases(
    Case("skip_2x2", height=2, width=2),
    Case("skip_3x3", height=3, width=3),
    Case("skip_5x4", height=5, width=4),
    Case("skip_4x7", height=4, width=7),
    Case("skip_12x13", height=12, width=13),
    Case("skip_13x13", height=13, width=13),
)


@check("up_handles_odd_skip_sizes")
@UP_SIZES
def test_up_handles_odd_skip_sizes(impl, spec_check, case):
    with seeded_init(3):
        block = impl.Up(8, 3)
    x = seeded_randn((2, 8, case.height // 2, case.width // 2), seed=4)
    skip = seeded_randn((2, 4, case.height, case.width), seed=5).requires_grad_(True)
    what = f"Up(8, 3) with x {tuple(x.shape)} and skip {tuple(skip.shape)}"
    y = _call(what, block, x, skip)
    expected = (2, 3, case.height, case.width)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        raise CheckFailure(
            f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected} (the skip's size)"
        )
    (gradient,) = torch.autograd.grad((y * seeded_randn(expected, seed=6)).sum(), skip, allow_unused=True)
    if gradient is None or not bool((gradient != 0).any()):
        raise CheckFailure(f"{what}: the output does not depend on the skip; Up must concatenate it with the upsampled x")
    _assert_per_image(what, block, (x, skip), spec_check.tolerance_for(torch.float32))


@check("unet_output_shape")
@given(
    batch=st.integers(1, 2),
    in_channels=st.integers(1, 3),
    num_classes=st.integers(1, 5),
    height=st.integers(8, 37),
    width=st.integers(8, 37),
    seed=strategies.seeds,
    anchored=st.just(False),
)
@example(batch=2, in_channels=2, num_classes=3, height=16, width=20, seed=16, anchored=True)  # the values, once
def test_unet_output_shape(impl, spec_check, batch, in_channels, num_classes, height, width, seed, anchored):
    model = impl.UNet(in_channels, num_classes, 4).eval()  # eval: the bottleneck may be 1x1 for a single image
    x = seeded_rand((batch, in_channels, height, width), seed)
    what = f"UNet({in_channels}, {num_classes}, base=4) on {tuple(x.shape)}"
    with torch.no_grad():
        logits = _call(what, model, x)
    expected = (batch, num_classes, height, width)
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == expected, (
        f"{what}: got {tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}, expected {expected}"
    )
    assert logits.dtype == torch.float32, f"{what}: dtype {logits.dtype}, expected float32"
    assert bool(torch.isfinite(logits).all()), f"{what}: non-finite logits"
    if anchored:
        _assert_per_image(what, model, (x,), spec_check.tolerance_for(torch.float32))


@check("unet_gradients_reach_every_level")
def test_unet_gradients_reach_every_level(impl, spec_check):
    with seeded_init(7):
        model = impl.UNet(3, 4, 4)
    x = seeded_rand((2, 3, 17, 23), 8)
    parameters = dict(model.named_parameters())
    logits = _call("UNet(3, 4, 4) on a 17x23 image", lambda images: functional_call(model, parameters, (images,)), x)
    if not isinstance(logits, torch.Tensor) or not logits.requires_grad:
        raise CheckFailure("UNet: the logits do not require grad: they are not computed from the parameters")
    found = torch.autograd.grad((logits * seeded_randn(tuple(logits.shape), seed=9)).sum(), list(parameters.values()), allow_unused=True)
    dead = [
        name
        for name, grad in zip(parameters, found)
        if grad is None or not bool(torch.isfinite(grad).all()) or not bool((grad != 0).any())
    ]
    if dead:
        raise CheckFailure(
            f"UNet: no (or a zero or non-finite) gradient reaches {len(dead)} parameters, e.g. {dead[:5]}", {"dead": len(dead)}
        )
    _assert_per_image("UNet(3, 4, 4) on a 17x23 image", model, (x,), spec_check.tolerance_for(torch.float32))


# --- U-Net blocks against torch modules built here ----------------------------------------------------------------
# Each value oracle is the spec's block written with torch.nn layers; its layers get random weights (and random
# batch-norm statistics) and are copied into the implementation's nn.Conv2d / nn.ConvTranspose2d / nn.BatchNorm2d
# layers of the same kind and shape (taken in the order model.modules() lists them when several share a shape), so a
# wrong pooling, concatenation order, upsampling, padding side, norm/activation order or head changes the values.

def _oracle_double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """The spec's DoubleConv: twice (3x3 convolution, zero padding 1, no bias -> BatchNorm2d -> ReLU)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
    )  # fmt: skip


def _oracle_down(in_channels: int, out_channels: int) -> nn.Sequential:
    """The spec's Down: 2x2 max-pool, stride 2 (rounding down), then a DoubleConv."""
    return nn.Sequential(nn.MaxPool2d(2, stride=2), _oracle_double_conv(in_channels, out_channels))


class OracleUp(nn.Module):
    """The spec's Up: transposed convolution (kernel 2, stride 2, to in_channels // 2), zero padding to the skip's size
    (floor(d / 2) before, the rest after), concatenation [skip, x], DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = _oracle_double_conv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (N, in_channels // 2, 2h, 2w)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])  # (N, in_channels // 2, H, W)
        return self.conv(torch.cat([skip, x], dim=1))


class OracleUNet(nn.Module):
    """The spec's UNet: DoubleConv (base), Downs to 2, 4, 8 x base, Ups back to base with skips, a 1x1 convolution."""

    def __init__(self, in_channels: int, num_classes: int, base: int) -> None:
        super().__init__()
        self.inc = _oracle_double_conv(in_channels, base)
        self.downs = nn.ModuleList(_oracle_down(base * 2**level, base * 2 ** (level + 1)) for level in range(3))
        self.ups = nn.ModuleList(OracleUp(base * 2**level, base * 2 ** (level - 1)) for level in (3, 2, 1))
        self.outc = nn.Conv2d(base, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]  # (N, b, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # (N, 2b, H/2, W/2), (N, 4b, H/4, W/4), (N, 8b, H/8, W/8)
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())  # back up to (N, b, H, W)
        return self.outc(x)


def _compare_modes(model: nn.Module, oracle: nn.Module, inputs: tuple, dtype: torch.dtype, tolerance, what: str) -> None:
    """The outputs of ``model`` (in ``dtype``) and of the float64 ``oracle`` on ``inputs``, in eval mode (the random
    running statistics) and then in train mode (the batch's statistics)."""
    for mode in ("eval", "train"):
        model.train(mode == "train")
        oracle.train(mode == "train")
        with torch.no_grad():
            output = _call(f"{what} in {mode} mode", model, *inputs)
            expected = oracle(*(value.double() for value in inputs)).to(dtype)
        assert_close(output, expected, tolerance, what=f"{what} in {mode} mode")


DOUBLECONV_CASES = cases(
    Case("3_to_5_channels_6x9", batch=2, channels=(3, 5), size=(6, 9), layout="contiguous"),
    Case("4_to_4_channels_7x5", batch=2, channels=(4, 4), size=(7, 5), layout="non_contiguous"),
    Case("1_to_2_channels_1x1_pixel", batch=3, channels=(1, 2), size=(1, 1), layout="contiguous"),
    Case("one_2x3_image", batch=1, channels=(2, 3), size=(2, 3), layout="non_contiguous"),
)


@check("doubleconv_matches_torch")
@DOUBLECONV_CASES
def test_doubleconv_matches_torch(impl, dtype, tolerance, case):
    in_channels, out_channels = case.channels
    oracle = randomized(_oracle_double_conv(in_channels, out_channels), seed=100)
    block = impl.DoubleConv(in_channels, out_channels).to(dtype)  # before the copy: float64 weights stay exact
    what = f"DoubleConv({in_channels}, {out_channels}) on {(case.batch, in_channels, *case.size)} ({case.layout})"
    load_layers(block, oracle, what)
    x = in_layout(seeded_randn((case.batch, in_channels, *case.size), 101, dtype), case.layout)
    _compare_modes(block, oracle, (x,), dtype, tolerance, what)


@check("down_matches_torch")
@cases(
    Case("2_to_3_channels_5x8", batch=2, channels=(2, 3), size=(5, 8), layout="contiguous"),
    Case("3_to_4_channels_9x6", batch=2, channels=(3, 4), size=(9, 6), layout="non_contiguous"),
    Case("1_to_1_channel_3x2", batch=3, channels=(1, 1), size=(3, 2), layout="non_contiguous"),
)
def test_down_matches_torch(impl, dtype, tolerance, case):
    in_channels, out_channels = case.channels
    oracle = randomized(_oracle_down(in_channels, out_channels), seed=110)
    block = impl.Down(in_channels, out_channels).to(dtype)
    what = f"Down({in_channels}, {out_channels}) on {(case.batch, in_channels, *case.size)} ({case.layout})"
    load_layers(block, oracle, what)
    x = in_layout(seeded_randn((case.batch, in_channels, *case.size), 111, dtype), case.layout)
    _compare_modes(block, oracle, (x,), dtype, tolerance, what)


@check("up_matches_torch")
@cases(
    Case("even_skip_6x8", channels=(6, 3), x=(3, 4), skip=(6, 8), gap=(0, 0), layout="contiguous"),
    Case("odd_skip_7x9", channels=(6, 3), x=(3, 4), skip=(7, 9), gap=(1, 1), layout="non_contiguous"),
    Case("odd_height_skip_5x4_2_channels", channels=(2, 3), x=(2, 2), skip=(5, 4), gap=(1, 0), layout="contiguous"),
    Case("gap_of_2_and_3_skip_8x7", channels=(4, 2), x=(3, 2), skip=(8, 7), gap=(2, 3), layout="non_contiguous"),
    Case("gap_of_3_and_2_skip_9x6", channels=(4, 4), x=(3, 2), skip=(9, 6), gap=(3, 2), layout="contiguous"),
)
def test_up_matches_torch(impl, dtype, tolerance, case):
    in_channels, out_channels = case.channels
    oracle = randomized(OracleUp(in_channels, out_channels), seed=120)
    block = impl.Up(in_channels, out_channels).to(dtype)
    what = (
        f"Up({in_channels}, {out_channels}) with x {(2, in_channels, *case.x)} and skip {(2, in_channels // 2, *case.skip)} ({case.layout})"
    )
    load_layers(block, oracle, what)
    x = in_layout(seeded_randn((2, in_channels, *case.x), 121, dtype), case.layout)
    skip = in_layout(seeded_randn((2, in_channels // 2, *case.skip), 122, dtype), case.layout)
    gap = (case.skip[0] - 2 * case.x[0], case.skip[1] - 2 * case.x[1])
    assert gap == case.gap, f"{case.name}: the skip is {gap} larger than the upsampled x, the case says {case.gap}"
    _compare_modes(block, oracle, (x, skip), dtype, tolerance, what)


@check("unet_matches_torch")
@cases(
    Case("3_channels_4_classes_17x23", batch=2, arguments=(3, 4, 4), size=(17, 23), layout="non_contiguous"),
    Case("1_channel_1_class_8x13", batch=2, arguments=(1, 1, 2), size=(8, 13), layout="contiguous"),
)
def test_unet_matches_torch(impl, dtype, tolerance, case):
    oracle = randomized(OracleUNet(*case.arguments), seed=130)
    model = impl.UNet(*case.arguments).to(dtype)
    what = f"UNet{case.arguments} on {(case.batch, case.arguments[0], *case.size)} ({case.layout})"
    load_layers(model, oracle, what)
    x = in_layout(seeded_randn((case.batch, case.arguments[0], *case.size), 131, dtype), case.layout)
    _compare_modes(model, oracle, (x,), dtype, tolerance, what)


# --- losses -----------------------------------------------------------------------------------------------------------


@check("dice_loss_matches_formula")
@layouts
@pytest.mark.parametrize("smooth", [1.0, 0.5], ids=["smooth_1", "smooth_0.5"])
def test_dice_loss_matches_formula(impl, dtype, tolerance, layout, smooth):
    logits = seeded_randn((3, 4, 5, 6), seed=10, dtype=dtype, scale=2.0)
    target = _classes((3, 5, 6), seed=11, choices=[0, 1, 3])  # class 2 absent from the target
    loss = impl.dice_loss(in_layout(logits, layout), in_layout(target, layout), smooth)
    expected = _oracle_dice(logits, target, smooth).to(dtype)  # 0-dim, the logits' dtype
    assert_close(loss, expected, tolerance, what=f"dice_loss (smooth {smooth}, {layout})")


@check("dice_loss_perfect_prediction_is_zero")
@given(batch=st.integers(1, 3), num_classes=st.integers(2, 5), side=st.integers(1, 9), seed=strategies.seeds)
def test_dice_loss_perfect_prediction_is_zero(impl, dtype, tolerance, batch, num_classes, side, seed):
    target = _classes((batch, side, side), seed, list(range(num_classes)))
    logits = 50 * F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(dtype)
    loss = impl.dice_loss(logits, target)
    if not abs(float(loss)) <= tolerance.atol:
        raise CheckFailure(f"dice_loss of a perfect, confident prediction is {float(loss):.3g}, expected 0", {"loss": float(loss)})
    shifted = (target + 1) % num_classes
    wrong = 50 * F.one_hot(shifted, num_classes).permute(0, 3, 1, 2).to(dtype)
    wrong_loss = float(impl.dice_loss(wrong, target))
    # No pixel is right, so every intersection is 0: dice_c = 1 / (predicted_c + true_c + 1) with smooth 1.
    counts = torch.bincount(shifted.flatten(), minlength=num_classes) + torch.bincount(target.flatten(), minlength=num_classes)
    expected = 1 - float((1 / (counts.double() + 1)).mean())
    if not abs(wrong_loss - expected) <= tolerance.atol + tolerance.rtol * abs(expected):
        raise CheckFailure(
            f"dice_loss of a confident prediction wrong at every pixel is {wrong_loss:.6g}, expected {expected:.6g}",
            {"loss": wrong_loss, "expected": expected},
        )


@check("dice_loss_gradcheck")
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed_0", "seed_1", "seed_2"])
def test_dice_loss_gradcheck(impl, dtype, tolerance, seed):
    logits = seeded_randn((2, 3, 3, 4), seed=20 + seed, dtype=dtype)
    target = _classes((2, 3, 4), seed=30 + seed, choices=[0, 1, 2])
    # the gradient of the right function: a gradient check alone passes any smooth one (zero, a constant)
    assert_close(impl.dice_loss(logits, target), _oracle_dice(logits, target, 1.0).to(dtype), tolerance, what="dice_loss at the checked logits")
    gradcheck_or_fail(
        lambda z: impl.dice_loss(z, target),
        (logits,),
        tolerance,
        f"dice_loss gradcheck ({str(dtype).removeprefix('torch.')}, w.r.t. logits)",
    )


@check("combined_loss_matches_torch")
@layouts
@cases(
    Case("dice_weight_0", dice_weight=0.0, smooth=1.0),
    Case("dice_weight_0.5_smooth_0.5", dice_weight=0.5, smooth=0.5),
    Case("dice_weight_1_smooth_2", dice_weight=1.0, smooth=2.0),
    Case("dice_weight_2.5_defaults", dice_weight=2.5, smooth=None),  # smooth left at its default, 1
)
def test_combined_loss_matches_torch(impl, dtype, tolerance, layout, case):
    target = _classes((2, 5, 4), seed=41, choices=[0, 1, 2, 3])
    values = seeded_randn((2, 4, 5, 4), seed=40, dtype=dtype)
    logits = in_layout(values.clone(), layout).requires_grad_(True)
    oracle_logits = values.double().requires_grad_(True)
    smooth = {} if case.smooth is None else {"smooth": case.smooth}
    loss = impl.combined_loss(logits, in_layout(target, layout), case.dice_weight, **smooth)
    expected = F.cross_entropy(oracle_logits, target) + case.dice_weight * _oracle_dice(oracle_logits, target, smooth.get("smooth", 1.0))
    what = f"combined_loss ({case.name}, {layout})"
    assert_close(loss, expected.detach().to(dtype), tolerance, what=what)  # a 0-dim tensor of the logits' dtype
    if not loss.requires_grad:
        raise CheckFailure("combined_loss: the loss does not require grad: it is not connected to the logits (detached?)")
    (gradient,) = torch.autograd.grad(loss, logits)
    (expected_gradient,) = torch.autograd.grad(expected, oracle_logits)
    assert_close(gradient, expected_gradient.to(dtype), tolerance, what=f"gradient of {what} w.r.t. logits")


# --- metrics ----------------------------------------------------------------------------------------------------------

# Five maps of 5 classes: 30% of the predictions wrong; class 2 absent from truth and prediction (absent); a quarter of
# the targets set to the case's ignore_index (ignored: 255, -1, -100, or class 3, whose predictions still count); a
# single image.
MAP_CASE_TABLE = (
    Case("plain"),
    Case("ignore_index_255", ignored=IGNORE),
    Case("ignore_index_minus_1", ignored=-1),
    Case("ignore_index_class_3", ignored=3),
    Case("class_absent_everywhere", absent=True),
    Case("absent_and_ignored_minus_100", absent=True, ignored=-100),
    Case("one_image", shape=(1, 9, 7), ignored=IGNORE),
)
MAP_CASES = cases(*MAP_CASE_TABLE)


def _maps(case: Case, num_classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets) int64 [N, H, W] of a MAP_CASES case."""
    choices = [c for c in range(num_classes) if not (case.get("absent") and c == 2)]
    shape = case.get("shape", (5, 8, 6))
    targets = _classes(shape, seed=50, choices=choices)
    predictions = _noisy_predictions(targets, seed=51, choices=choices)
    if case.get("ignored") is not None:
        targets = targets.masked_fill(seeded_rand(shape, 52) < 0.25, case.ignored)
        if 0 <= case.ignored < num_classes:  # an ignored class: it is still predicted where other classes are true
            assert bool(((predictions == case.ignored) & (targets != case.ignored)).any()), case.name
    return predictions, targets


@check("confusion_matrix_matches_sklearn")
@layouts
# Integer class maps (the spec's int64 and uint8 inputs), not the floating dtypes of a tolerance: hence input_dtype.
@pytest.mark.parametrize("input_dtype", [torch.int64, torch.uint8], ids=["int64", "uint8"])
@cases(*MAP_CASE_TABLE, Case("one_class", num_classes=1))  # num_classes 1: every pixel class 0
def test_confusion_matrix_matches_sklearn(impl, case, input_dtype, layout):
    num_classes = case.get("num_classes", 5)
    predictions, targets = _maps(case, num_classes)
    ignore_index = case.get("ignored")
    if input_dtype == torch.uint8 and ignore_index is not None and ignore_index < 0:
        ignore_index, targets = IGNORE, targets.masked_fill(targets == ignore_index, IGNORE)  # uint8 holds no -1: 255
    keep = targets != ignore_index if ignore_index is not None else torch.ones_like(targets, dtype=torch.bool)
    expected = torch.from_numpy(
        sklearn_confusion_matrix(targets[keep].numpy(), predictions[keep].numpy(), labels=list(range(num_classes))).astype(np.int64)
    )
    confusion = impl.confusion_matrix(
        in_layout(predictions.to(input_dtype), layout), in_layout(targets.to(input_dtype), layout), num_classes, ignore_index
    )
    if not isinstance(confusion, torch.Tensor) or confusion.dtype != torch.int64 or tuple(confusion.shape) != (num_classes, num_classes):
        got = f"{confusion.dtype} {tuple(confusion.shape)}" if isinstance(confusion, torch.Tensor) else type(confusion).__name__
        raise CheckFailure(f"confusion_matrix returned {got}, expected an int64 Tensor[{num_classes}, {num_classes}]")
    if not torch.equal(confusion, expected):
        wrong = int((confusion != expected).sum())
        raise CheckFailure(
            f"confusion_matrix ({case.name}, ignore_index {ignore_index}, {input_dtype}, {layout}): {wrong} of {num_classes**2} counts differ from sklearn's; got\n{confusion.tolist()}\nexpected\n{expected.tolist()}",
            {"mismatched": wrong},
        )


@check("iou_per_class_matches_torchmetrics")
@layouts
@MAP_CASES
def test_iou_per_class_matches_torchmetrics(impl, tolerance, layout, case):
    predictions, targets = _maps(case)
    keep = targets != case.ignored if case.get("ignored") is not None else torch.ones_like(targets, dtype=torch.bool)
    confusion = torch.from_numpy(
        sklearn_confusion_matrix(targets[keep].numpy(), predictions[keep].numpy(), labels=list(range(5))).astype(np.int64)
    )
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    expected = _torchmetrics_iou(predictions, targets, 5, "none", case.get("ignored"))
    expected[~present] = math.nan  # torchmetrics reports 0 for an absent class; its IoU is undefined
    iou = impl.iou_per_class(in_layout(confusion, layout))
    assert_close(
        iou,
        expected,
        tolerance,
        what=f"iou_per_class ({case.name}, {layout}; NaN expected for classes {(~present).nonzero().flatten().tolist()})",
    )


def _batches(case: Case) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Batches of different sizes (2, 3, 1 images); class 4 appears only in the first batch, class 2 nowhere when
    the case is ``absent``, and a fifth of the targets are the case's ``ignored`` value when it has one."""
    generator = seeded_generator(60)
    predictions, targets = [], []
    for index, size in enumerate([2, 3, 1]):
        choices = [0, 1, 3] + ([] if case.get("absent") else [2]) + ([4] if index == 0 else [])
        target = _classes((size, 6, 7), seed=61 + index, choices=choices)
        prediction = _noisy_predictions(target, seed=71 + index, choices=choices, correct=0.8)
        if case.get("ignored") is not None:
            target = target.masked_fill(torch.rand(target.shape, generator=generator) < 0.2, case.ignored)
        predictions.append(prediction)
        targets.append(target)
    return predictions, targets


@check("mean_iou_matches_torchmetrics")
@layouts
@cases(
    Case("class_missing_from_batches"),
    Case("class_absent_everywhere", absent=True),
    Case("ignore_index_255", ignored=IGNORE),
    Case("ignore_index_minus_1", ignored=-1),
    Case("single_tensor", single_tensor=True),  # the batches concatenated into one Tensor[N, H, W]
)
def test_mean_iou_matches_torchmetrics(impl, tolerance, layout, case):
    predictions, targets = _batches(case)
    ignore_index = case.get("ignored")
    all_predictions, all_targets = torch.cat([p.reshape(-1) for p in predictions]), torch.cat([t.reshape(-1) for t in targets])
    expected = float(_torchmetrics_iou(all_predictions, all_targets, 5, "macro", ignore_index))
    if case.get("single_tensor"):
        graded = in_layout(torch.cat(predictions), layout), in_layout(torch.cat(targets), layout)
    else:
        graded = [in_layout(p, layout) for p in predictions], [in_layout(t, layout) for t in targets]
    value = impl.mean_iou(*graded, 5, ignore_index)
    if not isinstance(value, float):
        raise CheckFailure(f"mean_iou ({case.name}) returned a {type(value).__name__}; the spec's mean_iou returns a float")
    assert_close(
        value, expected, tolerance, what=f"mean_iou ({case.name}, {layout}; dataset-level, as MulticlassJaccardIndex(average='macro'))"
    )


@check("pixel_accuracy_matches_torchmetrics")
@layouts
@cases(Case("batches"), Case("ignore_index_255", ignored=IGNORE), Case("ignore_index_minus_100", ignored=-100))
def test_pixel_accuracy_matches_torchmetrics(impl, tolerance, layout, case):
    predictions, targets = _batches(case)
    ignore_index = case.get("ignored")
    all_predictions, all_targets = torch.cat([p.reshape(-1) for p in predictions]), torch.cat([t.reshape(-1) for t in targets])
    metric = MulticlassAccuracy(num_classes=5, average="micro", ignore_index=ignore_index)
    expected = float(metric(all_predictions, all_targets))
    value = impl.pixel_accuracy([in_layout(p, layout) for p in predictions], [in_layout(t, layout) for t in targets], ignore_index)
    if not isinstance(value, float):
        raise CheckFailure(f"pixel_accuracy ({case.name}) returned a {type(value).__name__}; the spec's pixel_accuracy returns a float")
    assert_close(value, expected, tolerance, what=f"pixel_accuracy ({case.name}, {layout})")


# --- input validation -------------------------------------------------------------------------------------------------

LOGITS = seeded_randn((2, 3, 4, 5), seed=90)  # C = 3
TARGET = _classes((2, 4, 5), seed=91, choices=[0, 1, 2])
MAPS = _classes((2, 4, 5), seed=92, choices=[0, 1, 2, 3])


def _with_value(maps: torch.Tensor, value: int) -> torch.Tensor:
    """``maps`` with its first pixel set to ``value``."""
    maps = maps.clone()
    maps.view(-1)[0] = value
    return maps


@check("invalid_inputs_raise_clear_errors")
@cases(
    Case("doubleconv_0_in_channels", expected=ValueError, call=lambda impl: impl.DoubleConv(0, 4)),
    Case("doubleconv_0_out_channels", expected=ValueError, call=lambda impl: impl.DoubleConv(3, 0)),
    Case("up_odd_in_channels", expected=ValueError, call=lambda impl: impl.Up(5, 3)),
    Case("unet_0_classes", expected=ValueError, call=lambda impl: impl.UNet(3, 0, 4)),
    Case("unet_base_0", expected=ValueError, call=lambda impl: impl.UNet(3, 2, 0)),
    Case("unet_7_rows", expected=ValueError, call=lambda impl: impl.UNet(1, 2, 2).eval()(torch.zeros(1, 1, 7, 20))),
    Case("unet_7_columns", expected=ValueError, call=lambda impl: impl.UNet(1, 2, 2).eval()(torch.zeros(1, 1, 20, 7))),
    Case("doubleconv_wrong_channels", expected=ValueError, call=lambda impl: impl.DoubleConv(3, 4).eval()(torch.zeros(1, 2, 5, 5))),
    Case("down_wrong_channels", expected=ValueError, call=lambda impl: impl.Down(3, 4).eval()(torch.zeros(1, 4, 6, 6))),
    Case("unet_wrong_channels", expected=ValueError, call=lambda impl: impl.UNet(3, 2, 2).eval()(torch.zeros(1, 4, 16, 16))),
    Case(
        "up_x_wrong_channels", expected=ValueError, call=lambda impl: impl.Up(4, 2).eval()(torch.zeros(1, 6, 2, 2), torch.zeros(1, 2, 4, 4))
    ),
    Case(
        "up_skip_wrong_channels",
        expected=ValueError,
        call=lambda impl: impl.Up(4, 2).eval()(torch.zeros(1, 4, 2, 2), torch.zeros(1, 3, 4, 4)),
    ),
    Case(
        "up_skip_too_small", expected=ValueError, call=lambda impl: impl.Up(4, 2).eval()(torch.zeros(1, 4, 3, 3), torch.zeros(1, 2, 5, 6))
    ),
    Case("dice_target_shape", expected=ValueError, call=lambda impl: impl.dice_loss(LOGITS, TARGET[:, :, :4])),
    Case("dice_target_class_C", expected=ValueError, call=lambda impl: impl.dice_loss(LOGITS, _with_value(TARGET, 3))),
    Case("dice_target_class_minus_1", expected=ValueError, call=lambda impl: impl.dice_loss(LOGITS, _with_value(TARGET, -1))),
    Case("dice_smooth_0", expected=ValueError, call=lambda impl: impl.dice_loss(LOGITS, TARGET, 0.0)),
    Case("dice_smooth_negative", expected=ValueError, call=lambda impl: impl.dice_loss(LOGITS, TARGET, -1.0)),
    Case("dice_float_target", expected=TypeError, call=lambda impl: impl.dice_loss(LOGITS, TARGET.double())),
    Case("combined_negative_dice_weight", expected=ValueError, call=lambda impl: impl.combined_loss(LOGITS, TARGET, -0.5)),
    Case("combined_target_class_C", expected=ValueError, call=lambda impl: impl.combined_loss(LOGITS, _with_value(TARGET, 3))),
    Case("combined_smooth_0", expected=ValueError, call=lambda impl: impl.combined_loss(LOGITS, TARGET, 1.0, 0.0)),
    Case("combined_float_target", expected=TypeError, call=lambda impl: impl.combined_loss(LOGITS, TARGET.float())),
    Case("confusion_shapes_differ", expected=ValueError, call=lambda impl: impl.confusion_matrix(MAPS, MAPS[:1], 4)),
    Case("confusion_prediction_num_classes", expected=ValueError, call=lambda impl: impl.confusion_matrix(_with_value(MAPS, 4), MAPS, 4)),
    Case("confusion_prediction_minus_1", expected=ValueError, call=lambda impl: impl.confusion_matrix(_with_value(MAPS, -1), MAPS, 4, 255)),
    Case("confusion_target_num_classes", expected=ValueError, call=lambda impl: impl.confusion_matrix(MAPS, _with_value(MAPS, 4), 4, 255)),
    Case("confusion_prediction_far_beyond", expected=ValueError, call=lambda impl: impl.confusion_matrix(_with_value(MAPS, 7), MAPS, 4)),
    Case("confusion_target_far_beyond", expected=ValueError, call=lambda impl: impl.confusion_matrix(MAPS, _with_value(MAPS, 7), 4, 255)),
    Case("mean_iou_shapes_differ", expected=ValueError, call=lambda impl: impl.mean_iou(MAPS, MAPS.transpose(1, 2), 4)),
    Case("mean_iou_list_lengths_differ", expected=ValueError, call=lambda impl: impl.mean_iou([MAPS, MAPS], [MAPS], 4)),
    Case("pixel_accuracy_4x5_and_5x4", expected=ValueError, call=lambda impl: impl.pixel_accuracy(MAPS, MAPS.transpose(1, 2))),
    Case("pixel_accuracy_list_lengths_differ", expected=ValueError, call=lambda impl: impl.pixel_accuracy([MAPS], [MAPS, MAPS])),
    Case("confusion_target_minus_1", expected=ValueError, call=lambda impl: impl.confusion_matrix(MAPS, _with_value(MAPS, -1), 4)),
    Case("confusion_floating_maps", expected=TypeError, call=lambda impl: impl.confusion_matrix(MAPS.float(), MAPS.float(), 4)),
    Case("iou_per_class_3x4", expected=ValueError, call=lambda impl: impl.iou_per_class(torch.ones(3, 4, dtype=torch.int64))),
    Case("iou_per_class_3x3x3", expected=ValueError, call=lambda impl: impl.iou_per_class(torch.ones(3, 3, 3, dtype=torch.int64))),
)
def test_invalid_inputs_raise_clear_errors(impl, case):
    assert_raises(case.expected, lambda: case.call(impl), case.name)
