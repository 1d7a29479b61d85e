"""Graded tests of topic 07 `segmentation` (specs/07_segmentation.yaml): U-Net blocks, Dice loss, dataset-level IoU.

Oracles: the Dice formula written out class by class here, torch.nn.functional.cross_entropy, scikit-learn's
confusion_matrix, and torchmetrics' MulticlassJaccardIndex / MulticlassAccuracy on the concatenated dataset (a
dataset-level mean IoU; torchmetrics' MeanIoU averages per image, a different number). Tolerances, thresholds and
points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from harness.testing import CheckFailure, assert_close, check, gradcheck_or_fail
from harness.topic.strategies import seeded_init, seeded_randn, seeds

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]
IGNORE = 255  # ignore_index used in the tests: outside every class range, as in VOC and Cityscapes


# --- helpers ----------------------------------------------------------------------------------------------------------


def _classes(shape: tuple[int, ...], seed: int, choices: list[int]) -> torch.Tensor:
    """int64 class map of ``shape`` drawn from ``choices``."""
    index = torch.randint(0, len(choices), shape, generator=torch.Generator().manual_seed(seed))
    return torch.tensor(choices, dtype=torch.int64)[index]


def _noisy_predictions(target: torch.Tensor, seed: int, choices: list[int], correct: float = 0.7) -> torch.Tensor:
    """``target`` with a fraction ``1 - correct`` of the pixels replaced by random classes from ``choices``."""
    generator = torch.Generator().manual_seed(seed)
    keep = torch.rand(target.shape, generator=generator) < correct
    return torch.where(keep, target, _classes(tuple(target.shape), seed + 1, choices))


def _oracle_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float) -> torch.Tensor:
    """The spec's Dice loss, class by class, in float64."""
    probabilities = logits.double().softmax(dim=1)
    dice = []
    for c in range(logits.shape[1]):
        p, t = probabilities[:, c], (target == c).double()
        dice.append((2 * (p * t).sum() + smooth) / (p.sum() + t.sum() + smooth))
    return 1 - torch.stack(dice).mean()


def _torchmetrics_iou(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int, average: str, ignore_index: int | None = None) -> torch.Tensor:
    metric = MulticlassJaccardIndex(num_classes=num_classes, average=average, ignore_index=ignore_index)
    metric.update(predictions.reshape(-1), targets.reshape(-1))
    return metric.compute().double()


def _call(what: str, function, *args):
    """Call the implementation; a crash on valid input (a size mismatch, say) is a failure of the check."""
    try:
        return function(*args)
    except RuntimeError as error:
        raise CheckFailure(f"{what} raised {type(error).__name__}: {' '.join(str(error).split())[:300]}") from None


# --- U-Net blocks -----------------------------------------------------------------------------------------------------


@check("doubleconv_shapes_and_parameters")
@given(batch=st.integers(1, 3), in_channels=st.integers(1, 5), out_channels=st.integers(1, 6), height=st.integers(1, 11), width=st.integers(1, 11), seed=seeds)
def test_doubleconv_shapes_and_parameters(impl, batch, in_channels, out_channels, height, width, seed):
    block = impl.DoubleConv(in_channels, out_channels).eval()  # eval: batch norm works on a single 1x1 image too
    x = seeded_randn((batch, in_channels, height, width), seed)
    with torch.no_grad():
        y = block(x)
    expected = (batch, out_channels, height, width)
    what = f"DoubleConv({in_channels}, {out_channels}) on {tuple(x.shape)}"
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == expected, f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected}"
    assert y.dtype == torch.float32, f"{what}: dtype {y.dtype}, expected float32"
    assert bool((y >= 0).all()), f"{what}: negative values {float(y.min()):.3g}; the block ends with a ReLU"
    parameters = sum(p.numel() for p in block.parameters())
    wanted = (9 * in_channels + 2) * out_channels + (9 * out_channels + 2) * out_channels
    assert parameters == wanted, f"{what}: {parameters} parameters, expected {wanted} (two bias-free 3x3 convolutions, two batch norms)"


def _max_pool_twin(x: torch.Tensor) -> torch.Tensor:
    """An input with the same 2x2 max-pool as ``x`` (stride 2, rounding down) but different values elsewhere."""
    pooled = F.max_pool2d(x, 2)  # (N, C, H // 2, W // 2)
    twin = pooled.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # every window filled with its maximum
    twin = twin - torch.rand(twin.shape, generator=torch.Generator().manual_seed(0), dtype=twin.dtype)  # all below it
    twin[..., ::2, ::2] = pooled  # each window keeps its maximum, at its top-left pixel
    out = x.clone() - 3.0  # rows and columns past the last whole window are never pooled: anything goes there
    out[..., : twin.shape[2], : twin.shape[3]] = twin
    return out


@check("down_halves_resolution")
@given(batch=st.integers(1, 3), in_channels=st.integers(1, 4), out_channels=st.integers(1, 5), height=st.integers(2, 13), width=st.integers(2, 13), seed=seeds)
def test_down_halves_resolution(impl, spec_check, batch, in_channels, out_channels, height, width, seed):
    with seeded_init(seed % 1000):
        block = impl.Down(in_channels, out_channels).eval()
    x = seeded_randn((batch, in_channels, height, width), seed)
    twin = _max_pool_twin(x)
    with torch.no_grad():
        y, y_twin = block(x), block(twin)
    expected = (batch, out_channels, height // 2, width // 2)
    what = f"Down({in_channels}, {out_channels}) on {tuple(x.shape)}"
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == expected, f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected}"
    tolerance = spec_check.tolerance_for(torch.float32)
    if not torch.allclose(y, y_twin, rtol=tolerance.rtol, atol=tolerance.atol):
        raise CheckFailure(f"{what}: two inputs with the same 2x2 max-pool give different outputs (max abs difference {float((y - y_twin).abs().max()):.3g}); Down must max-pool first")


UP_SIZES = [(2, 2), (3, 3), (5, 4), (4, 7), (12, 13), (13, 13)]


@check("up_handles_odd_skip_sizes")
@pytest.mark.parametrize(("height", "width"), UP_SIZES, ids=[f"skip_{h}x{w}" for h, w in UP_SIZES])
def test_up_handles_odd_skip_sizes(impl, height, width):
    with seeded_init(3):
        block = impl.Up(8, 3)
    x = seeded_randn((2, 8, height // 2, width // 2), seed=4)
    skip = seeded_randn((2, 4, height, width), seed=5).requires_grad_(True)
    what = f"Up(8, 3) with x {tuple(x.shape)} and skip {tuple(skip.shape)}"
    y = _call(what, block, x, skip)
    expected = (2, 3, height, width)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        raise CheckFailure(f"{what}: got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}, expected {expected} (the skip's size)")
    (gradient,) = torch.autograd.grad((y * seeded_randn(expected, seed=6)).sum(), skip, allow_unused=True)
    if gradient is None or not bool((gradient != 0).any()):
        raise CheckFailure(f"{what}: the output does not depend on the skip; Up must concatenate it with the upsampled x")


@check("unet_output_shape")
@given(batch=st.integers(1, 2), in_channels=st.integers(1, 3), num_classes=st.integers(1, 5), height=st.integers(8, 37), width=st.integers(8, 37), seed=seeds)
def test_unet_output_shape(impl, batch, in_channels, num_classes, height, width, seed):
    model = impl.UNet(in_channels, num_classes, 4).eval()  # eval: the bottleneck may be 1x1 for a single image
    x = torch.rand(batch, in_channels, height, width, generator=torch.Generator().manual_seed(seed))
    what = f"UNet({in_channels}, {num_classes}, base=4) on {tuple(x.shape)}"
    with torch.no_grad():
        logits = _call(what, model, x)
    expected = (batch, num_classes, height, width)
    assert isinstance(logits, torch.Tensor) and tuple(logits.shape) == expected, f"{what}: got {tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}, expected {expected}"
    assert logits.dtype == torch.float32, f"{what}: dtype {logits.dtype}, expected float32"
    assert bool(torch.isfinite(logits).all()), f"{what}: non-finite logits"


@check("unet_gradients_reach_every_level")
def test_unet_gradients_reach_every_level(impl):
    with seeded_init(7):
        model = impl.UNet(3, 4, 4)
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(8))
    logits = _call("UNet(3, 4, 4) on a 17x23 image", model, x)
    if not isinstance(logits, torch.Tensor) or not logits.requires_grad:
        raise CheckFailure("UNet: the logits do not require grad: they are not computed from the parameters")
    (logits * seeded_randn(tuple(logits.shape), seed=9)).sum().backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not bool(torch.isfinite(p.grad).all()) or not bool((p.grad != 0).any())]
    if dead:
        raise CheckFailure(f"UNet: no (or a zero or non-finite) gradient reaches {len(dead)} parameters, e.g. {dead[:5]}", {"dead": len(dead)})


# --- losses -----------------------------------------------------------------------------------------------------------


@check("dice_loss_matches_formula")
@pytest.mark.parametrize("smooth", [1.0, 0.5], ids=["smooth_1", "smooth_0.5"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_dice_loss_matches_formula(impl, spec_check, dtype, smooth):
    logits = 2 * seeded_randn((3, 4, 5, 6), seed=10, dtype=dtype)
    target = _classes((3, 5, 6), seed=11, choices=[0, 1, 3])  # class 2 absent from the target
    loss = impl.dice_loss(logits, target, smooth)
    expected = _oracle_dice(logits, target, smooth).to(dtype)
    assert_close(loss, expected, spec_check.tolerance_for(dtype), what=f"dice_loss (smooth {smooth}, {dtype})")


@check("dice_loss_perfect_prediction_is_zero")
@given(batch=st.integers(1, 3), num_classes=st.integers(2, 5), side=st.integers(1, 9), seed=seeds)
def test_dice_loss_perfect_prediction_is_zero(impl, spec_check, batch, num_classes, side, seed):
    target = _classes((batch, side, side), seed, list(range(num_classes)))
    logits = 50 * F.one_hot(target, num_classes).permute(0, 3, 1, 2).double()
    loss = impl.dice_loss(logits, target)
    tolerance = spec_check.tolerance_for(torch.float64)
    if not abs(float(loss)) <= tolerance.atol:
        raise CheckFailure(f"dice_loss of a perfect, confident prediction is {float(loss):.3g}, expected 0", {"loss": float(loss)})
    shifted = (target + 1) % num_classes
    wrong = 50 * F.one_hot(shifted, num_classes).permute(0, 3, 1, 2).double()
    wrong_loss = float(impl.dice_loss(wrong, target))
    # No pixel is right, so every intersection is 0: dice_c = 1 / (predicted_c + true_c + 1) with smooth 1.
    counts = torch.bincount(shifted.flatten(), minlength=num_classes) + torch.bincount(target.flatten(), minlength=num_classes)
    expected = 1 - float((1 / (counts.double() + 1)).mean())
    if not abs(wrong_loss - expected) <= tolerance.atol + 1e-9 * expected:
        raise CheckFailure(
            f"dice_loss of a confident prediction wrong at every pixel is {wrong_loss:.6g}, expected {expected:.6g}",
            {"loss": wrong_loss, "expected": expected},
        )


@check("dice_loss_gradcheck")
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed_0", "seed_1", "seed_2"])
def test_dice_loss_gradcheck(impl, spec_check, seed):
    logits = seeded_randn((2, 3, 3, 4), seed=20 + seed, dtype=torch.float64)
    target = _classes((2, 3, 4), seed=30 + seed, choices=[0, 1, 2])
    gradcheck_or_fail(lambda z: impl.dice_loss(z, target), (logits,), spec_check.tolerance_for(torch.float64), "dice_loss gradcheck (float64, w.r.t. logits)")


@check("combined_loss_matches_torch")
@pytest.mark.parametrize("dice_weight", [0.0, 0.5, 1.0], ids=["dice_weight_0", "dice_weight_0.5", "dice_weight_1"])
def test_combined_loss_matches_torch(impl, spec_check, dice_weight):
    tolerance = spec_check.tolerance_for(torch.float64)
    target = _classes((2, 5, 4), seed=41, choices=[0, 1, 2, 3])
    logits = seeded_randn((2, 4, 5, 4), seed=40, dtype=torch.float64).requires_grad_(True)
    oracle_logits = logits.detach().clone().requires_grad_(True)
    loss = impl.combined_loss(logits, target, dice_weight)
    expected = F.cross_entropy(oracle_logits, target) + dice_weight * _oracle_dice(oracle_logits, target, 1.0)
    assert_close(loss, expected, tolerance, what=f"combined_loss (dice_weight {dice_weight})", check_dtype=False)
    if not loss.requires_grad:
        raise CheckFailure("combined_loss: the loss does not require grad: it is not connected to the logits (detached?)")
    (gradient,) = torch.autograd.grad(loss, logits)
    (expected_gradient,) = torch.autograd.grad(expected, oracle_logits)
    assert_close(gradient, expected_gradient, tolerance, what=f"gradient of combined_loss (dice_weight {dice_weight}) w.r.t. logits")


# --- metrics ----------------------------------------------------------------------------------------------------------


def _maps(case: str, num_classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets) int64 [N, H, W] for a named case."""
    absent = case in ("class_absent_everywhere", "absent_and_ignored")
    choices = [c for c in range(num_classes) if not (absent and c == 2)]
    shape = (1, 9, 7) if case == "one_image" else (5, 8, 6)
    targets = _classes(shape, seed=50, choices=choices)
    predictions = _noisy_predictions(targets, seed=51, choices=choices)
    if case in ("ignore_index", "absent_and_ignored", "one_image"):
        ignored = torch.rand(shape, generator=torch.Generator().manual_seed(52)) < 0.25
        targets = targets.masked_fill(ignored, IGNORE)
    return predictions, targets


MAP_CASES = ["plain", "ignore_index", "class_absent_everywhere", "absent_and_ignored", "one_image"]


@check("confusion_matrix_matches_sklearn")
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8], ids=["int64", "uint8"])
@pytest.mark.parametrize("case", MAP_CASES, ids=MAP_CASES)
def test_confusion_matrix_matches_sklearn(impl, case, dtype):
    predictions, targets = _maps(case)
    ignore_index = IGNORE if case in ("ignore_index", "absent_and_ignored", "one_image") else None
    keep = targets != IGNORE
    expected = torch.from_numpy(sklearn_confusion_matrix(targets[keep].numpy(), predictions[keep].numpy(), labels=list(range(5))).astype(np.int64))
    confusion = impl.confusion_matrix(predictions.to(dtype), targets.to(dtype), 5, ignore_index)
    if not isinstance(confusion, torch.Tensor) or confusion.dtype != torch.int64 or tuple(confusion.shape) != (5, 5):
        got = f"{confusion.dtype} {tuple(confusion.shape)}" if isinstance(confusion, torch.Tensor) else type(confusion).__name__
        raise CheckFailure(f"confusion_matrix returned {got}, expected an int64 Tensor[5, 5]")
    if not torch.equal(confusion, expected):
        wrong = int((confusion != expected).sum())
        raise CheckFailure(f"confusion_matrix ({case}): {wrong} of 25 counts differ from sklearn's; got\n{confusion.tolist()}\nexpected\n{expected.tolist()}", {"mismatched": wrong})


@check("iou_per_class_matches_torchmetrics")
@pytest.mark.parametrize("case", MAP_CASES, ids=MAP_CASES)
def test_iou_per_class_matches_torchmetrics(impl, spec_check, case):
    predictions, targets = _maps(case)
    keep = targets != IGNORE
    confusion = torch.from_numpy(sklearn_confusion_matrix(targets[keep].numpy(), predictions[keep].numpy(), labels=list(range(5))).astype(np.int64))
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    expected = _torchmetrics_iou(predictions, targets, 5, "none", IGNORE)
    expected[~present] = math.nan  # torchmetrics reports 0 for an absent class; its IoU is undefined
    iou = impl.iou_per_class(confusion)
    assert_close(iou, expected, spec_check.tolerance_for(torch.float64), what=f"iou_per_class ({case}; NaN expected for classes {(~present).nonzero().flatten().tolist()})")


def _batches(case: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Batches of different sizes (2, 3, 1 images); class 4 appears only in the first batch, class 2 nowhere when
    the case says so, and some targets are ignored."""
    generator = torch.Generator().manual_seed(60)
    sizes = [2, 3, 1]
    predictions, targets = [], []
    for index, size in enumerate(sizes):
        choices = [0, 1, 3] + ([] if case == "class_absent_everywhere" else [2]) + ([4] if index == 0 else [])
        target = _classes((size, 6, 7), seed=61 + index, choices=choices)
        prediction = _noisy_predictions(target, seed=71 + index, choices=choices, correct=0.8)
        if case == "ignore_index":
            target = target.masked_fill(torch.rand(target.shape, generator=generator) < 0.2, IGNORE)
        predictions.append(prediction)
        targets.append(target)
    return predictions, targets


BATCH_CASES = ["class_missing_from_batches", "class_absent_everywhere", "ignore_index", "single_tensor"]


@check("mean_iou_matches_torchmetrics")
@pytest.mark.parametrize("case", BATCH_CASES, ids=BATCH_CASES)
def test_mean_iou_matches_torchmetrics(impl, spec_check, case):
    predictions, targets = _batches(case)
    ignore_index = IGNORE if case == "ignore_index" else None
    all_predictions, all_targets = torch.cat([p.reshape(-1) for p in predictions]), torch.cat([t.reshape(-1) for t in targets])
    expected = float(_torchmetrics_iou(all_predictions, all_targets, 5, "macro", ignore_index))
    if case == "single_tensor":
        predictions, targets = torch.cat(predictions), torch.cat(targets)
    value = impl.mean_iou(predictions, targets, 5, ignore_index)
    assert_close(value, expected, spec_check.tolerance_for(torch.float64), what=f"mean_iou ({case}; dataset-level, as MulticlassJaccardIndex(average='macro'))")


@check("pixel_accuracy_matches_torchmetrics")
@pytest.mark.parametrize("case", ["class_missing_from_batches", "ignore_index"], ids=["batches", "ignore_index"])
def test_pixel_accuracy_matches_torchmetrics(impl, spec_check, case):
    predictions, targets = _batches(case)
    ignore_index = IGNORE if case == "ignore_index" else None
    all_predictions, all_targets = torch.cat([p.reshape(-1) for p in predictions]), torch.cat([t.reshape(-1) for t in targets])
    metric = MulticlassAccuracy(num_classes=5, average="micro", ignore_index=ignore_index)
    expected = float(metric(all_predictions, all_targets))
    value = impl.pixel_accuracy(predictions, targets, ignore_index)
    assert_close(value, expected, spec_check.tolerance_for(torch.float64), what=f"pixel_accuracy ({case})")


# --- the metric task --------------------------------------------------------------------------------------------------
