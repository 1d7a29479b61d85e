"""Graded tests of topic 04 `classification` (specs/04_classification.yaml): softmax and cross-entropy, augmentation,
confusion matrix and per-class report, expected calibration error, temperature scaling, and a trained classifier.

Oracles: torch.softmax / log_softmax, F.cross_entropy, scikit-learn's confusion_matrix and
precision_recall_fscore_support, torchmetrics' MulticlassCalibrationError, scipy.optimize.minimize_scalar.
Every check of an interface that takes tensors also runs on non-contiguous inputs. Tolerances, thresholds and points
come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import (
    Case,
    CheckFailure,
    assert_close,
    cases,
    check,
    gradients,
    in_layout,
    layouts,
    seeded_generator,
    seeded_rand,
    seeded_randn,
    strategies,
)

LARGE_LOGIT = 1e4  # the stability scale of the spec: exp(1e4) overflows every float dtype


# --- helpers ----------------------------------------------------------------------------------------------------------


def _soft_targets(count: int, num_classes: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Probability rows: random (normalised exponentials of uniforms cubed), the last two rows one-hot."""
    raw = seeded_rand((count, num_classes), seed, torch.float64) ** 3
    rows = raw / raw.sum(dim=1, keepdim=True)
    rows[-2:] = F.one_hot(torch.tensor([0, num_classes - 1]), num_classes).double()
    return rows.to(dtype)


def _nll(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(F.cross_entropy(logits.double(), target))


def _ece_oracle(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15) -> float:
    from torchmetrics.classification import MulticlassCalibrationError

    metric = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=n_bins, norm="l1")
    return float(metric(probs, target))


def _miscalibrated(scale: float, seed: int, count: int = 3000, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``scale * z`` of a model whose calibrated logits are ``z``: labels are drawn from ``softmax(z)``."""
    generator = seeded_generator(seed)
    z = 2.0 * torch.randn(count, num_classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    return scale * z, labels


# --- softmax, log_softmax, cross-entropy ------------------------------------------------------------------------------


SOFTMAX_CASES = cases(
    Case("scale_1_last_dim", scale=1.0, dim=-1),
    Case("scale_30_last_dim", scale=30.0, dim=-1),
    Case("scale_1_first_dim", scale=1.0, dim=0),
    Case("scale_1e4", scale=LARGE_LOGIT, dim=-1),  # rows hold +-1e4-sized gaps, exp of which overflows every float dtype
)


def _assert_matches_torch(function, oracle, tolerance, dtype, case: Case, layout: str) -> None:
    logits = seeded_randn((5, 7), 1, dtype, scale=case.scale)
    if case.name == "scale_1e4":
        logits[0] = torch.tensor([LARGE_LOGIT, -LARGE_LOGIT, LARGE_LOGIT, 0, 0, -LARGE_LOGIT, 1], dtype=dtype)
    got = function(in_layout(logits, layout), dim=case.dim)
    if not torch.isfinite(got).all():
        raise CheckFailure(f"{function.__name__} returned non-finite values for logits of scale {case.scale:g}: subtract the maximum first")
    what = f"{function.__name__} ({case.name}, {str(dtype)[6:]}, {layout} logits)"
    assert_close(got, oracle(logits, dim=case.dim), tolerance, what=what)


@check("softmax_matches_torch")
@SOFTMAX_CASES
@layouts
def test_softmax_matches_torch(impl, dtype, tolerance, layout, case):
    _assert_matches_torch(impl.softmax, torch.softmax, tolerance, dtype, case, layout)


@check("log_softmax_matches_torch")
@SOFTMAX_CASES
@layouts
def test_log_softmax_matches_torch(impl, dtype, tolerance, layout, case):
    _assert_matches_torch(impl.log_softmax, torch.log_softmax, tolerance, dtype, case, layout)


def _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, what) -> None:
    loss = impl.cross_entropy(in_layout(logits, layout), in_layout(target, layout), label_smoothing=smoothing)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailure(f"cross_entropy returned {type(loss).__name__} {getattr(loss, 'shape', '')}; expected a 0-dimensional tensor")
    if not torch.isfinite(loss):
        raise CheckFailure(f"cross_entropy is {float(loss)} ({what}): it must stay finite at |logit| = 1e4")
    expected = F.cross_entropy(logits, target, label_smoothing=smoothing)
    assert_close(loss, expected, tolerance, what=f"cross_entropy ({what}, {layout} inputs)")


@check("cross_entropy_hard_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0], ids=["no_smoothing", "smoothing_0.1", "smoothing_1"])
@layouts
def test_cross_entropy_hard_targets_match_torch(impl, dtype, tolerance, layout, smoothing, scale):
    logits = seeded_randn((6, 5), 2, dtype, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, f"class targets, label_smoothing={smoothing}, scale {scale:g}")


@check("cross_entropy_soft_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2], ids=["no_smoothing", "smoothing_0.2"])
@layouts
def test_cross_entropy_soft_targets_match_torch(impl, dtype, tolerance, layout, smoothing, scale):
    logits = seeded_randn((6, 5), 3, dtype, scale=scale)
    target = _soft_targets(6, 5, seed=4, dtype=dtype)
    what = f"probability targets, label_smoothing={smoothing}, scale {scale:g}"
    _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, what)


@check("cross_entropy_gradients_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("targets", ["hard", "soft"])
def test_cross_entropy_gradients_match_torch(impl, dtype, tolerance, targets, scale):
    logits = seeded_randn((6, 5), 5, dtype, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3]) if targets == "hard" else _soft_targets(6, 5, seed=6, dtype=dtype)
    upstream = torch.tensor(1.0, dtype=dtype)
    what = f"cross_entropy ({targets} targets, scale {scale:g})"
    (got,) = gradients(lambda x: impl.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, what)
    (expected,) = gradients(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, "F.cross_entropy")
    if got is None or not torch.isfinite(got).all():
        raise CheckFailure(f"the gradient of cross_entropy w.r.t. the logits is missing or not finite ({targets} targets, scale {scale:g})")
    assert_close(got, expected, tolerance, what=f"d cross_entropy / d logits ({targets} targets, scale {scale:g})")


# --- augmentation -----------------------------------------------------------------------------------------------------


@check("mixup_batch_convex_combination")
@layouts
@given(count=st.integers(1, 8), alpha=st.sampled_from([0.2, 1.0, 4.0]), seed=strategies.seeds, image_seed=strategies.seeds)
def test_mixup_batch_convex_combination(impl, dtype, tolerance, layout, count, alpha, seed, image_seed):
    num_classes = 10
    images = seeded_rand((count, 2, 3, 3), image_seed, dtype)
    labels = torch.randperm(num_classes, generator=seeded_generator(image_seed + 1))[:count]  # distinct: a label names its image
    mixed, targets = impl.mixup_batch(in_layout(images, layout), in_layout(labels, layout), alpha, num_classes, seeded_generator(seed))
    assert tuple(mixed.shape) == tuple(images.shape), f"mixup_batch: mixed images of shape {tuple(mixed.shape)}, expected {tuple(images.shape)}"
    assert tuple(targets.shape) == (count, num_classes), f"mixup_batch: targets of shape {tuple(targets.shape)}, expected {(count, num_classes)}"
    assert targets.dtype == images.dtype, f"mixup_batch: targets of dtype {targets.dtype}, expected the images' {images.dtype}"
    assert targets.min() >= -tolerance.atol, f"mixup_batch: negative target {float(targets.min()):.3g}"
    assert_close(targets.sum(dim=1), torch.ones(count, dtype=dtype), tolerance, what="mixup_batch target row sums")
    image_of_label = {int(label): index for index, label in enumerate(labels)}
    own = targets[torch.arange(count), labels].double()  # lam, or 1 where an image is paired with itself
    partners, lams = [], []
    for i in range(count):
        rest = targets[i].double().clone()
        rest[labels[i]] = 0
        if rest.sum() <= tolerance.atol:  # paired with itself (or lam = 1): the image is unchanged
            partners.append(i)
            continue
        partner_label = int(rest.argmax())
        if partner_label not in image_of_label or abs(float(rest.sum() - rest[partner_label])) > tolerance.atol:
            raise CheckFailure(f"mixup_batch: target row {i} puts mass on labels other than its own and one other image's: {targets[i].tolist()}")
        partners.append(image_of_label[partner_label])
        lams.append(float(own[i]))
    if sorted(partners) != list(range(count)):
        raise CheckFailure(f"mixup_batch: partners {partners} are not a permutation of the batch")
    if lams and max(lams) - min(lams) > tolerance.atol:
        raise CheckFailure(f"mixup_batch: one lam per batch expected, the targets show {sorted({round(v, 6) for v in lams})}")
    lam = lams[0] if lams else 1.0
    assert -tolerance.atol <= lam <= 1 + tolerance.atol, f"mixup_batch: lam {lam} outside [0, 1]"
    expected = lam * images + (1 - lam) * images[partners]
    fixed = [i for i in range(count) if partners[i] == i]
    expected[fixed] = images[fixed]
    assert_close(mixed, expected, tolerance, what=f"mixup_batch images (lam {lam:.4f}, from the targets)")
    again_mixed, again_targets = impl.mixup_batch(images, labels, alpha, num_classes, seeded_generator(seed))
    assert torch.equal(again_mixed, mixed) and torch.equal(again_targets, targets), "mixup_batch: the same generator seed gave a different result"


def _windows(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Every size x size window of a (C, H, W) image: (positions, C, size, size)."""
    patches = padded.unfold(1, size, 1).unfold(2, size, 1)  # (C, H', W', size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, padded.shape[0], size, size)


@check("random_crop_takes_padded_windows")
@layouts
@given(count=st.integers(1, 4), side=st.integers(4, 9), padding=st.integers(0, 3), data=st.data(), seed=strategies.seeds)
def test_random_crop_takes_padded_windows(impl, layout, count, side, padding, data, seed):
    size = data.draw(st.integers(1, side + 2 * padding), label="size")
    images = seeded_rand((count, 2, side, side), seed + 1, low=0.5, high=1.5)  # > 0, so padding zeros stand out
    crops = impl.random_crop(in_layout(images, layout), size, padding, seeded_generator(seed))
    assert tuple(crops.shape) == (count, 2, size, size), f"random_crop: shape {tuple(crops.shape)}, expected {(count, 2, size, size)}"
    assert crops.dtype == images.dtype, f"random_crop: dtype {crops.dtype}, expected the images' {images.dtype}"
    for i in range(count):
        windows = _windows(F.pad(images[i], (padding,) * 4), size)
        if not (windows == crops[i]).flatten(1).all(dim=1).any():
            raise CheckFailure(f"random_crop(size={size}, padding={padding}): crop {i} is not a window of its zero-padded {side}x{side} image")
    assert torch.equal(impl.random_crop(images, size, padding, seeded_generator(seed)), crops), "random_crop: the same generator seed gave a different result"
    assert torch.equal(impl.random_crop(in_layout(images, layout), side, 0, seeded_generator(seed)), images), "random_crop(size=H, padding=0) must return the images"
    many = torch.arange(64, dtype=torch.float32)[:, None, None, None] + 1 + seeded_rand((64, 1, 6, 6), seed + 2)
    offsets = set()
    for i, crop in enumerate(impl.random_crop(many, 6, 2, seeded_generator(seed))):
        matches = (_windows(F.pad(many[i], (2,) * 4), 6) == crop).flatten(1).all(dim=1).nonzero()
        offsets.add(int(matches[0]) if len(matches) else -1)
    assert len(offsets) > 1, "random_crop: 64 images all got the same offset; each image needs its own"


@check("random_hflip_flips_whole_images")
@layouts
@given(count=st.integers(1, 6), p=st.sampled_from([0.0, 0.5, 1.0]), seed=strategies.seeds)
def test_random_hflip_flips_whole_images(impl, layout, count, p, seed):
    images = seeded_rand((count, 2, 3, 4), seed + 1)
    flipped = impl.random_hflip(in_layout(images, layout), p, seeded_generator(seed))
    assert tuple(flipped.shape) == tuple(images.shape), f"random_hflip: shape {tuple(flipped.shape)}, expected {tuple(images.shape)}"
    assert flipped.dtype == images.dtype, f"random_hflip: dtype {flipped.dtype}, expected the images' {images.dtype}"
    same = (flipped == images).flatten(1).all(dim=1)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    if not (same | mirrored).all():
        raise CheckFailure(f"random_hflip(p={p}): image {int((~(same | mirrored)).nonzero()[0])} is neither its input nor its left-right mirror")
    if p == 0.0 and not same.all():
        raise CheckFailure("random_hflip(p=0) changed an image")
    if p == 1.0 and not mirrored.all():
        raise CheckFailure("random_hflip(p=1) left an image unflipped")
    assert torch.equal(impl.random_hflip(images, p, seeded_generator(seed)), flipped), "random_hflip: the same generator seed gave a different result"
    many = torch.arange(4 * 4000, dtype=torch.float32).reshape(4000, 1, 1, 4)  # every row differs from its mirror
    fraction = float((impl.random_hflip(many, 0.3, seeded_generator(seed)) != many).flatten(1).any(dim=1).float().mean())
    sigma = math.sqrt(0.3 * 0.7 / 4000)
    if abs(fraction - 0.3) > 5 * sigma:
        raise CheckFailure(f"random_hflip(p=0.3) flipped {fraction:.3f} of 4,000 images; expected 0.3 +- {5 * sigma:.3f}", {"fraction": fraction})


# --- evaluation -------------------------------------------------------------------------------------------------------


CONFUSION_CASES = cases(
    Case(
        "random",
        predictions=torch.randint(0, 5, (200,), generator=seeded_generator(7)),
        targets=torch.randint(0, 5, (200,), generator=seeded_generator(8)),
        num_classes=5,
    ),
    Case("absent_classes", predictions=torch.tensor([0, 2, 2, 0, 5]), targets=torch.tensor([2, 2, 0, 0, 5]), num_classes=7),
    Case("single_example", predictions=torch.tensor([1]), targets=torch.tensor([2]), num_classes=3),
)


@check("confusion_matrix_matches_sklearn")
@CONFUSION_CASES
@layouts
def test_confusion_matrix_matches_sklearn(impl, layout, case):
    from sklearn.metrics import confusion_matrix

    num_classes = case.num_classes
    expected = confusion_matrix(case.targets.numpy(), case.predictions.numpy(), labels=list(range(num_classes)))
    got = impl.confusion_matrix(in_layout(case.predictions, layout), in_layout(case.targets, layout), num_classes)
    if not isinstance(got, torch.Tensor) or got.dtype != torch.int64:
        raise CheckFailure(f"confusion_matrix returned {getattr(got, 'dtype', type(got).__name__)}, expected an int64 tensor")
    if tuple(got.shape) != expected.shape or not np.array_equal(got.numpy(), expected):
        raise CheckFailure(f"confusion_matrix ({case.name}, {layout} inputs; rows true, columns predicted) is\n{got.numpy()}\nexpected\n{expected}")


REPORT_CASES = cases(
    Case("random", cm=torch.randint(0, 20, (6, 6), generator=seeded_generator(9))),
    Case("asymmetric", cm=torch.tensor([[5, 0, 0], [4, 1, 0], [3, 0, 2]])),  # class 0 over-predicted: precision 5/12, recall 1
    Case("never_predicted_never_present", cm=torch.tensor([[3, 0, 1, 0], [2, 0, 0, 0], [1, 0, 4, 0], [0, 0, 0, 0]])),
)


@check("per_class_report_matches_sklearn")
@REPORT_CASES
@layouts
def test_per_class_report_matches_sklearn(impl, dtype, tolerance, layout, case):
    from sklearn.metrics import precision_recall_fscore_support

    cm = case.cm
    num_classes = cm.shape[0]
    pairs = [(t, p) for t in range(num_classes) for p in range(num_classes) for _ in range(int(cm[t, p]))]
    targets, predictions = zip(*pairs)
    precision, recall, f1, _ = precision_recall_fscore_support(targets, predictions, labels=list(range(num_classes)), zero_division=0)
    report = impl.per_class_report(in_layout(cm, layout))
    if not isinstance(report, tuple) or len(report) != 3:
        raise CheckFailure(f"per_class_report returned {type(report).__name__}; expected a tuple (precision, recall, f1)")
    for name, got, expected in zip(("precision", "recall", "f1"), report, (precision, recall, f1)):
        what = f"per_class_report {name} ({case.name}, confusion matrix rows true, {layout})"
        assert_close(got, torch.from_numpy(expected).to(dtype), tolerance, what=what)


# --- calibration ------------------------------------------------------------------------------------------------------


ECE_CASES = cases(
    Case("overconfident_15_bins", scale=4.0, n_bins=15),
    Case("underconfident_15_bins", scale=0.3, n_bins=15),
    Case("calibrated_10_bins", scale=1.0, n_bins=10),
    Case("one_bin", scale=2.0, n_bins=1),
    Case("one_hot_rows", scale=1.0, n_bins=15, one_hot=True),
)


@check("expected_calibration_error_matches_torchmetrics")
@ECE_CASES
@layouts
def test_expected_calibration_error_matches_torchmetrics(impl, dtype, tolerance, layout, case):
    n_bins = case.n_bins
    logits, target = _miscalibrated(case.scale, seed=11, count=600, num_classes=6)
    probs = torch.softmax(logits, dim=1).to(dtype)
    if case.get("one_hot", False):
        probs = F.one_hot(logits.argmax(dim=1), 6).to(dtype)
    got = impl.expected_calibration_error(in_layout(probs, layout), in_layout(target, layout), n_bins=n_bins)
    if isinstance(got, torch.Tensor):
        got = got.item() if got.numel() == 1 else got
    if not isinstance(got, float):
        raise CheckFailure(f"expected_calibration_error returned {type(got).__name__}, expected a float")
    expected = _ece_oracle(probs.double() if dtype == torch.float64 else probs, target, n_bins)
    assert_close(got, expected, tolerance, what=f"expected_calibration_error ({case.name}, {n_bins} bins, {layout} inputs)")


@check("fit_temperature_matches_brute_force")
@pytest.mark.parametrize("scale", [3.0, 0.4], ids=["overconfident", "underconfident"])
@layouts
def test_fit_temperature_matches_brute_force(impl, dtype, tolerance, layout, scale):
    from scipy.optimize import minimize_scalar

    logits, target = _miscalibrated(scale, seed=12, count=1000)
    logits = logits.to(dtype)
    result = minimize_scalar(lambda t: _nll(logits / math.exp(t), target), bounds=(math.log(0.01), math.log(100)), method="bounded", options={"xatol": 1e-8})
    temperature = impl.fit_temperature(in_layout(logits, layout), in_layout(target, layout))
    if not isinstance(temperature, (float, int)) or isinstance(temperature, bool):
        raise CheckFailure(f"fit_temperature returned {type(temperature).__name__}, expected a float")
    assert_close(float(temperature), math.exp(result.x), tolerance, what=f"temperature (logits scaled x{scale}, {layout} inputs)")


@check("fit_temperature_improves_calibration")
@pytest.mark.parametrize("scale", [3.0, 0.4], ids=["overconfident", "underconfident"])
def test_fit_temperature_improves_calibration(impl, scale):
    logits, target = _miscalibrated(scale, seed=13)
    temperature = float(impl.fit_temperature(logits.float(), target))
    if not math.isfinite(temperature) or temperature <= 0:
        raise CheckFailure(f"fit_temperature returned {temperature}; a temperature must be a positive number")
    before_nll, after_nll = _nll(logits, target), _nll(logits / temperature, target)
    before_ece = _ece_oracle(torch.softmax(logits, dim=1), target)
    after_ece = _ece_oracle(torch.softmax(logits / temperature, dim=1), target)
    numbers = {"temperature": temperature, "nll_before": before_nll, "nll_after": after_nll, "ece_before": before_ece, "ece_after": after_ece}
    if not (after_nll < before_nll and after_ece < before_ece):
        raise CheckFailure(
            f"temperature {temperature:.4g} on logits scaled x{scale}: NLL {before_nll:.4f} -> {after_nll:.4f}, ECE {before_ece:.4f} -> "
            f"{after_ece:.4f}; both must go down",
            numbers,
        )
    if (temperature > 1) != (scale > 1):
        raise CheckFailure(f"temperature {temperature:.4g} for {'over' if scale > 1 else 'under'}confident logits: expected T {'>' if scale > 1 else '<'} 1", numbers)
    if not torch.equal((logits / temperature).argmax(dim=1), logits.argmax(dim=1)):
        raise CheckFailure("dividing by the temperature changed a prediction", numbers)
