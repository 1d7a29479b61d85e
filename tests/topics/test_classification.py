"""Graded tests of topic 04 `classification` (specs/04_classification.yaml): softmax and cross-entropy, augmentation,
confusion matrix and per-class report, expected calibration error, temperature scaling, and a trained classifier.

Oracles: torch.softmax / log_softmax, F.cross_entropy, scikit-learn's confusion_matrix and
precision_recall_fscore_support, torchmetrics' MulticlassCalibrationError, scipy.optimize.minimize_scalar.
Tolerances, thresholds and points come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from harness.testing import CheckFailure, assert_close, check, gradients
from harness.topic.strategies import seeds

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]
LARGE_LOGIT = 1e4  # the stability scale of the spec: exp(1e4) overflows every float dtype


# --- helpers ----------------------------------------------------------------------------------------------------------


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logits(shape: tuple[int, ...], seed: int, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    """Standard-normal logits times ``scale``; at scale 1e4 rows hold +-1e4-sized gaps, exp of which overflows."""
    return (torch.randn(shape, generator=_generator(seed), dtype=torch.float64) * scale).to(dtype)


def _soft_targets(count: int, num_classes: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Probability rows: random (normalised exponentials of uniforms cubed), the last two rows one-hot."""
    raw = torch.rand(count, num_classes, generator=_generator(seed), dtype=torch.float64) ** 3
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
    generator = _generator(seed)
    z = 2.0 * torch.randn(count, num_classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    return scale * z, labels


# --- softmax, log_softmax, cross-entropy ------------------------------------------------------------------------------


SOFTMAX_CASES = {"scale_1_last_dim": (1.0, -1), "scale_30_last_dim": (30.0, -1), "scale_1_first_dim": (1.0, 0), "scale_1e4": (LARGE_LOGIT, -1)}


def _assert_matches_torch(function, oracle, spec_check, dtype, case) -> None:
    scale, dim = SOFTMAX_CASES[case]
    logits = _logits((5, 7), seed=1, dtype=dtype, scale=scale)
    if case == "scale_1e4":
        logits[0] = torch.tensor([LARGE_LOGIT, -LARGE_LOGIT, LARGE_LOGIT, 0, 0, -LARGE_LOGIT, 1], dtype=dtype)
    got = function(logits, dim=dim)
    if not torch.isfinite(got).all():
        raise CheckFailure(f"{function.__name__} returned non-finite values for logits of scale {scale:g}: subtract the maximum first")
    assert_close(got, oracle(logits, dim=dim), spec_check.tolerance_for(dtype), what=f"{function.__name__} ({case}, {str(dtype)[6:]})")


@check("softmax_matches_torch")
@pytest.mark.parametrize("case", list(SOFTMAX_CASES), ids=list(SOFTMAX_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_matches_torch(impl, spec_check, dtype, case):
    _assert_matches_torch(impl.softmax, torch.softmax, spec_check, dtype, case)


@check("log_softmax_matches_torch")
@pytest.mark.parametrize("case", list(SOFTMAX_CASES), ids=list(SOFTMAX_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_log_softmax_matches_torch(impl, spec_check, dtype, case):
    _assert_matches_torch(impl.log_softmax, torch.log_softmax, spec_check, dtype, case)


def _assert_loss_matches(impl, spec_check, logits, target, smoothing, dtype, what) -> None:
    loss = impl.cross_entropy(logits, target, label_smoothing=smoothing)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailure(f"cross_entropy returned {type(loss).__name__} {getattr(loss, 'shape', '')}; expected a 0-dimensional tensor")
    if not torch.isfinite(loss):
        raise CheckFailure(f"cross_entropy is {float(loss)} ({what}): it must stay finite at |logit| = 1e4")
    expected = F.cross_entropy(logits, target, label_smoothing=smoothing)
    assert_close(loss, expected, spec_check.tolerance_for(dtype), what=f"cross_entropy ({what})")


@check("cross_entropy_hard_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0], ids=["no_smoothing", "smoothing_0.1", "smoothing_1"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_cross_entropy_hard_targets_match_torch(impl, spec_check, dtype, smoothing, scale):
    logits = _logits((6, 5), seed=2, dtype=dtype, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    _assert_loss_matches(impl, spec_check, logits, target, smoothing, dtype, f"class targets, label_smoothing={smoothing}, scale {scale:g}")


@check("cross_entropy_soft_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2], ids=["no_smoothing", "smoothing_0.2"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_cross_entropy_soft_targets_match_torch(impl, spec_check, dtype, smoothing, scale):
    logits = _logits((6, 5), seed=3, dtype=dtype, scale=scale)
    target = _soft_targets(6, 5, seed=4, dtype=dtype)
    _assert_loss_matches(impl, spec_check, logits, target, smoothing, dtype, f"probability targets, label_smoothing={smoothing}, scale {scale:g}")


@check("cross_entropy_gradients_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("targets", ["hard", "soft"])
def test_cross_entropy_gradients_match_torch(impl, spec_check, targets, scale):
    logits = _logits((6, 5), seed=5, dtype=torch.float64, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3]) if targets == "hard" else _soft_targets(6, 5, seed=6, dtype=torch.float64)
    upstream = torch.tensor(1.0, dtype=torch.float64)
    what = f"cross_entropy ({targets} targets, scale {scale:g})"
    (got,) = gradients(lambda x: impl.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, what)
    (expected,) = gradients(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, "F.cross_entropy")
    if got is None or not torch.isfinite(got).all():
        raise CheckFailure(f"the gradient of cross_entropy w.r.t. the logits is missing or not finite ({targets} targets, scale {scale:g})")
    assert_close(got, expected, spec_check.tolerance_for(torch.float64), what=f"d cross_entropy / d logits ({targets} targets, scale {scale:g})")


# --- augmentation -----------------------------------------------------------------------------------------------------


@check("mixup_batch_convex_combination")
@given(count=st.integers(1, 8), alpha=st.sampled_from([0.2, 1.0, 4.0]), seed=seeds, image_seed=seeds)
def test_mixup_batch_convex_combination(impl, spec_check, count, alpha, seed, image_seed):
    tolerance = spec_check.tolerance_for(torch.float64)
    num_classes = 10
    images = torch.rand(count, 2, 3, 3, generator=_generator(image_seed), dtype=torch.float64)
    labels = torch.randperm(num_classes, generator=_generator(image_seed + 1))[:count]  # distinct: a label names its image
    mixed, targets = impl.mixup_batch(images, labels, alpha, num_classes, _generator(seed))
    assert tuple(mixed.shape) == tuple(images.shape), f"mixup_batch: mixed images of shape {tuple(mixed.shape)}, expected {tuple(images.shape)}"
    assert tuple(targets.shape) == (count, num_classes), f"mixup_batch: targets of shape {tuple(targets.shape)}, expected {(count, num_classes)}"
    assert targets.min() >= -tolerance.atol, f"mixup_batch: negative target {float(targets.min()):.3g}"
    assert_close(targets.sum(dim=1), torch.ones(count, dtype=targets.dtype), tolerance, what="mixup_batch target row sums", check_dtype=False)
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
    if lams and max(lams) - min(lams) > 1e-6:
        raise CheckFailure(f"mixup_batch: one lam per batch expected, the targets show {sorted({round(v, 6) for v in lams})}")
    lam = lams[0] if lams else 1.0
    assert -1e-12 <= lam <= 1 + 1e-12, f"mixup_batch: lam {lam} outside [0, 1]"
    expected = lam * images + (1 - lam) * images[partners]
    fixed = [i for i in range(count) if partners[i] == i]
    expected[fixed] = images[fixed]
    assert_close(mixed, expected, tolerance, what=f"mixup_batch images (lam {lam:.4f}, from the targets)")
    again_mixed, again_targets = impl.mixup_batch(images, labels, alpha, num_classes, _generator(seed))
    assert torch.equal(again_mixed, mixed) and torch.equal(again_targets, targets), "mixup_batch: the same generator seed gave a different result"


def _windows(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Every size x size window of a (C, H, W) image: (positions, C, size, size)."""
    patches = padded.unfold(1, size, 1).unfold(2, size, 1)  # (C, H', W', size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, padded.shape[0], size, size)


@check("random_crop_takes_padded_windows")
@given(count=st.integers(1, 4), side=st.integers(4, 9), padding=st.integers(0, 3), data=st.data(), seed=seeds)
def test_random_crop_takes_padded_windows(impl, count, side, padding, data, seed):
    size = data.draw(st.integers(1, side + 2 * padding), label="size")
    images = 0.5 + torch.rand(count, 2, side, side, generator=_generator(seed + 1))  # > 0, so padding zeros stand out
    crops = impl.random_crop(images, size, padding, _generator(seed))
    assert tuple(crops.shape) == (count, 2, size, size), f"random_crop: shape {tuple(crops.shape)}, expected {(count, 2, size, size)}"
    for i in range(count):
        windows = _windows(F.pad(images[i], (padding,) * 4), size)
        if not (windows == crops[i]).flatten(1).all(dim=1).any():
            raise CheckFailure(f"random_crop(size={size}, padding={padding}): crop {i} is not a window of its zero-padded {side}x{side} image")
    assert torch.equal(impl.random_crop(images, size, padding, _generator(seed)), crops), "random_crop: the same generator seed gave a different result"
    assert torch.equal(impl.random_crop(images, side, 0, _generator(seed)), images), "random_crop(size=H, padding=0) must return the images"
    many = torch.arange(64, dtype=torch.float32)[:, None, None, None] + 1 + torch.rand(64, 1, 6, 6, generator=_generator(seed + 2))
    offsets = set()
    for i, crop in enumerate(impl.random_crop(many, 6, 2, _generator(seed))):
        matches = (_windows(F.pad(many[i], (2,) * 4), 6) == crop).flatten(1).all(dim=1).nonzero()
        offsets.add(int(matches[0]) if len(matches) else -1)
    assert len(offsets) > 1, "random_crop: 64 images all got the same offset; each image needs its own"


@check("random_hflip_flips_whole_images")
@given(count=st.integers(1, 6), p=st.sampled_from([0.0, 0.5, 1.0]), seed=seeds)
def test_random_hflip_flips_whole_images(impl, count, p, seed):
    images = torch.rand(count, 2, 3, 4, generator=_generator(seed + 1))
    flipped = impl.random_hflip(images, p, _generator(seed))
    assert tuple(flipped.shape) == tuple(images.shape), f"random_hflip: shape {tuple(flipped.shape)}, expected {tuple(images.shape)}"
    same = (flipped == images).flatten(1).all(dim=1)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    if not (same | mirrored).all():
        raise CheckFailure(f"random_hflip(p={p}): image {int((~(same | mirrored)).nonzero()[0])} is neither its input nor its left-right mirror")
    if p == 0.0 and not same.all():
        raise CheckFailure("random_hflip(p=0) changed an image")
    if p == 1.0 and not mirrored.all():
        raise CheckFailure("random_hflip(p=1) left an image unflipped")
    assert torch.equal(impl.random_hflip(images, p, _generator(seed)), flipped), "random_hflip: the same generator seed gave a different result"
    many = torch.arange(4 * 4000, dtype=torch.float32).reshape(4000, 1, 1, 4)  # every row differs from its mirror
    fraction = float((impl.random_hflip(many, 0.3, _generator(seed)) != many).flatten(1).any(dim=1).float().mean())
    sigma = math.sqrt(0.3 * 0.7 / 4000)
    if abs(fraction - 0.3) > 5 * sigma:
        raise CheckFailure(f"random_hflip(p=0.3) flipped {fraction:.3f} of 4,000 images; expected 0.3 +- {5 * sigma:.3f}", {"fraction": fraction})


# --- evaluation -------------------------------------------------------------------------------------------------------


CONFUSION_CASES = {
    "random": (torch.randint(0, 5, (200,), generator=_generator(7)), torch.randint(0, 5, (200,), generator=_generator(8)), 5),
    "absent_classes": (torch.tensor([0, 2, 2, 0, 5]), torch.tensor([2, 2, 0, 0, 5]), 7),
    "single_example": (torch.tensor([1]), torch.tensor([2]), 3),
}


@check("confusion_matrix_matches_sklearn")
@pytest.mark.parametrize("case", list(CONFUSION_CASES), ids=list(CONFUSION_CASES))
def test_confusion_matrix_matches_sklearn(impl, case):
    from sklearn.metrics import confusion_matrix

    predictions, targets, num_classes = CONFUSION_CASES[case]
    expected = confusion_matrix(targets.numpy(), predictions.numpy(), labels=list(range(num_classes)))
    got = impl.confusion_matrix(predictions, targets, num_classes)
    if not isinstance(got, torch.Tensor) or got.dtype != torch.int64:
        raise CheckFailure(f"confusion_matrix returned {getattr(got, 'dtype', type(got).__name__)}, expected an int64 tensor")
    if tuple(got.shape) != expected.shape or not np.array_equal(got.numpy(), expected):
        raise CheckFailure(f"confusion_matrix ({case}; rows true, columns predicted) is\n{got.numpy()}\nexpected\n{expected}")


REPORT_CASES = {
    "random": torch.randint(0, 20, (6, 6), generator=_generator(9)),
    "asymmetric": torch.tensor([[5, 0, 0], [4, 1, 0], [3, 0, 2]]),  # class 0 over-predicted: precision 5/12, recall 1
    "never_predicted_never_present": torch.tensor([[3, 0, 1, 0], [2, 0, 0, 0], [1, 0, 4, 0], [0, 0, 0, 0]]),
}


@check("per_class_report_matches_sklearn")
@pytest.mark.parametrize("case", list(REPORT_CASES), ids=list(REPORT_CASES))
def test_per_class_report_matches_sklearn(impl, spec_check, case):
    from sklearn.metrics import precision_recall_fscore_support

    cm = REPORT_CASES[case]
    num_classes = cm.shape[0]
    pairs = [(t, p) for t in range(num_classes) for p in range(num_classes) for _ in range(int(cm[t, p]))]
    targets, predictions = zip(*pairs)
    precision, recall, f1, _ = precision_recall_fscore_support(targets, predictions, labels=list(range(num_classes)), zero_division=0)
    report = impl.per_class_report(cm)
    if not isinstance(report, tuple) or len(report) != 3:
        raise CheckFailure(f"per_class_report returned {type(report).__name__}; expected a tuple (precision, recall, f1)")
    tolerance = spec_check.tolerance_for(torch.float64)
    for name, got, expected in zip(("precision", "recall", "f1"), report, (precision, recall, f1)):
        assert_close(got, torch.from_numpy(expected), tolerance, what=f"per_class_report {name} ({case}, confusion matrix rows true)")


# --- calibration ------------------------------------------------------------------------------------------------------


ECE_CASES = {
    "overconfident_15_bins": (4.0, 15),
    "underconfident_15_bins": (0.3, 15),
    "calibrated_10_bins": (1.0, 10),
    "one_bin": (2.0, 1),
    "one_hot_rows": (None, 15),
}


@check("expected_calibration_error_matches_torchmetrics")
@pytest.mark.parametrize("case", list(ECE_CASES), ids=list(ECE_CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_expected_calibration_error_matches_torchmetrics(impl, spec_check, dtype, case):
    scale, n_bins = ECE_CASES[case]
    logits, target = _miscalibrated(1.0 if scale is None else scale, seed=11, count=600, num_classes=6)
    probs = torch.softmax(logits, dim=1).to(dtype)
    if scale is None:
        probs = F.one_hot(logits.argmax(dim=1), 6).to(dtype)
    got = impl.expected_calibration_error(probs, target, n_bins=n_bins)
    if isinstance(got, torch.Tensor):
        got = got.item() if got.numel() == 1 else got
    if not isinstance(got, float):
        raise CheckFailure(f"expected_calibration_error returned {type(got).__name__}, expected a float")
    expected = _ece_oracle(probs.double() if dtype == torch.float64 else probs, target, n_bins)
    assert_close(got, expected, spec_check.tolerance_for(dtype), what=f"expected_calibration_error ({case}, {n_bins} bins)")


@check("fit_temperature_matches_brute_force")
@pytest.mark.parametrize("scale", [3.0, 0.4], ids=["overconfident", "underconfident"])
def test_fit_temperature_matches_brute_force(impl, spec_check, scale):
    from scipy.optimize import minimize_scalar

    logits, target = _miscalibrated(scale, seed=12, count=1000)
    result = minimize_scalar(lambda t: _nll(logits / math.exp(t), target), bounds=(math.log(0.01), math.log(100)), method="bounded", options={"xatol": 1e-8})
    temperature = impl.fit_temperature(logits, target)
    if not isinstance(temperature, (float, int)) or isinstance(temperature, bool):
        raise CheckFailure(f"fit_temperature returned {type(temperature).__name__}, expected a float")
    assert_close(float(temperature), math.exp(result.x), spec_check.tolerance_for(torch.float64), what=f"temperature (logits scaled x{scale})")


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
