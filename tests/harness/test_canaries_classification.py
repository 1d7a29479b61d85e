"""Every check of topic 04 `classification` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Canaries that bundle several bugs put each in a different interface, and every check
grades one interface (`uses:` in specs/04_classification.yaml), so each verdict is caused by exactly one of the bugs.
The metric canaries never train: their train_classifier returns at once.
"""

import pytest
from canaries import REPLACE, expect, grade_canary

QUICK_CHECKS = [
    "softmax_matches_torch",
    "log_softmax_matches_torch",
    "cross_entropy_hard_targets_match_torch",
    "cross_entropy_soft_targets_match_torch",
    "cross_entropy_gradients_match_torch",
    "mixup_batch_convex_combination",
    "random_crop_takes_padded_windows",
    "random_hflip_flips_whole_images",
    "confusion_matrix_matches_sklearn",
    "per_class_report_matches_sklearn",
    "expected_calibration_error_matches_torchmetrics",
    "fit_temperature_matches_brute_force",
    "fit_temperature_improves_calibration",
]

CONSTANTS = """
def softmax(logits, dim=-1):
    return torch.full_like(logits, 1.0 / logits.shape[dim])


def log_softmax(logits, dim=-1):
    return torch.zeros_like(logits)


def cross_entropy(logits, target, label_smoothing=0.0):
    return (logits * 0).sum()


def mixup_batch(images, labels, alpha, num_classes, generator):
    return torch.zeros_like(images), torch.zeros(len(images), num_classes, dtype=images.dtype)


def random_crop(images, size, padding, generator):
    return images.new_zeros(len(images), images.shape[1], size, size)


def random_hflip(images, p, generator):
    return torch.zeros_like(images)


def confusion_matrix(predictions, targets, num_classes):
    return torch.zeros(num_classes, num_classes, dtype=torch.int64)


def per_class_report(cm):
    zeros = torch.zeros(cm.shape[0], dtype=torch.float64)
    return zeros, zeros, zeros


def expected_calibration_error(probs, target, n_bins=15):
    return 0.0


def fit_temperature(logits, target):
    return 1.0
"""

NOISY = (
    REPLACE
    + """
def _noisy(result, *arguments):
    if isinstance(result, float):
        return result + 1e-3
    if isinstance(result, tuple):
        return tuple(value + 1e-3 for value in result)
    return result + 1e-3 * torch.randn_like(result)  # the reference, off by a little


_replace(["softmax", "log_softmax", "cross_entropy", "per_class_report", "expected_calibration_error", "fit_temperature"], _noisy)
"""
)

NO_MAX_SUBTRACTION = """
def log_softmax(logits, dim=-1):
    return logits - logits.exp().sum(dim=dim, keepdim=True).log()  # bug: exp(1e4) = inf


def softmax(logits, dim=-1):
    exponentials = logits.exp()  # bug: no max subtraction
    return exponentials / exponentials.sum(dim=dim, keepdim=True)
"""

WRONG_SMOOTHING_AND_AUGMENTATION = """
_reference_cross_entropy = cross_entropy


def cross_entropy(logits, target, label_smoothing=0.0):
    num_classes = logits.shape[1]
    if not target.is_floating_point():
        target = torch.zeros_like(logits).scatter_(1, target[:, None], 1.0)
    smoothed = target * (1 - label_smoothing) + label_smoothing / (num_classes - 1) * (1 - target)  # bug: eps/(C-1) on the others
    return _reference_cross_entropy(logits, smoothed)


_reference_mixup = mixup_batch


def mixup_batch(images, labels, alpha, num_classes, generator):
    mixed, targets = _reference_mixup(images, labels, alpha, num_classes, generator)
    lam = float(np.random.default_rng(0).beta(alpha, alpha))
    one_hot = torch.zeros(len(labels), num_classes, dtype=images.dtype).scatter_(1, labels[:, None], 1.0)
    return mixed, lam * one_hot + (1 - lam) * one_hot.flip(0)  # bug: the labels mixed with another lam and pairing


def random_crop(images, size, padding, generator):
    padded = F.pad(images, (padding,) * 4)
    top, left = torch.randint(0, images.shape[-1] + 2 * padding - size + 1, (2,), generator=generator).tolist()
    return padded[:, :, top : top + size, left : left + size]  # bug: one offset for the whole batch


def random_hflip(images, p, generator):
    flip = torch.rand(len(images), generator=generator) < p
    return torch.where(flip[:, None, None, None], images.flip(-2), images)  # bug: flips upside down
"""

EVALUATION_BUGS = """
def confusion_matrix(predictions, targets, num_classes):
    flat = predictions.long() * num_classes + targets.long()  # bug: predicted classes on the rows
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


_reference_report = per_class_report


def per_class_report(cm):
    precision, recall, f1 = _reference_report(cm)
    return recall, precision, f1  # bug: precision and recall swapped


def expected_calibration_error(probs, target, n_bins=15):
    confidences, predictions = probs.max(dim=1)
    correct = (predictions == target).double()
    total = 0.0
    for cls in range(probs.shape[1]):  # bug: binned by predicted class, not by confidence
        members = predictions == cls
        if members.any():
            total += float(members.sum()) / len(probs) * abs(float(correct[members].mean() - confidences[members].double().mean()))
    return total


_reference_fit_temperature = fit_temperature


def fit_temperature(logits, target):
    return 1.0 / _reference_fit_temperature(logits, target)  # bug: the logits are multiplied by the fitted value
"""

FORBIDDEN_CALLS = """
def softmax(logits, dim=-1):
    return torch.softmax(logits, dim=dim)


def log_softmax(logits, dim=-1):
    return logits - torch.logsumexp(logits, dim=dim, keepdim=True)


def cross_entropy(logits, target, label_smoothing=0.0):
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
"""

PREDICTS_A_CONSTANT_CLASS = """
def train_classifier(train, *, seed, budget_s):
    return None  # does not train


def predict_classifier(model, inputs):
    probs = torch.zeros(len(inputs["images"]), 10)
    probs[:, 3] = 1.0  # bug: always class 3, fully confident
    return probs
"""

UNCALIBRATED_OR_MALFORMED = """
def train_classifier(train, *, seed, budget_s):
    return None


def predict_classifier(model, inputs):
    return torch.full((len(inputs["images"]),), 3, dtype=torch.int64)  # bug: class indices, not probabilities
"""

METRIC_CHECKS = ["shapes_classify_accuracy", "shapes_classify_ece", "shapes_classify_worst_class_f1"]

CANARIES = {
    "constants": (
        CONSTANTS,
        expect("failed", QUICK_CHECKS),
    ),
    "reference_plus_noise": (
        NOISY,
        expect(
            "failed",
            [
                "softmax_matches_torch",
                "log_softmax_matches_torch",
                "cross_entropy_hard_targets_match_torch",
                "per_class_report_matches_sklearn",
                "expected_calibration_error_matches_torchmetrics",
                "fit_temperature_matches_brute_force",
                "mixup_batch_convex_combination",
            ],
            mixup_batch_convex_combination="passed",
        ),
    ),
    "no_max_subtraction": (
        NO_MAX_SUBTRACTION,
        expect(
            "failed",
            [
                "softmax_matches_torch",
                "log_softmax_matches_torch",
                "cross_entropy_hard_targets_match_torch",
                "cross_entropy_soft_targets_match_torch",
                "cross_entropy_gradients_match_torch",
                "confusion_matrix_matches_sklearn",
            ],
            confusion_matrix_matches_sklearn="passed",
        ),
    ),
    "wrong_smoothing_and_augmentation": (
        WRONG_SMOOTHING_AND_AUGMENTATION,
        expect(
            "failed",
            [
                "cross_entropy_hard_targets_match_torch",
                "cross_entropy_soft_targets_match_torch",
                "cross_entropy_gradients_match_torch",
                "mixup_batch_convex_combination",
                "random_crop_takes_padded_windows",
                "random_hflip_flips_whole_images",
                "softmax_matches_torch",
            ],
            softmax_matches_torch="passed",
        ),
    ),
    "evaluation_bugs": (
        EVALUATION_BUGS,
        expect(
            "failed",
            [
                "confusion_matrix_matches_sklearn",
                "per_class_report_matches_sklearn",
                "expected_calibration_error_matches_torchmetrics",
                "fit_temperature_matches_brute_force",
                "fit_temperature_improves_calibration",
                "cross_entropy_hard_targets_match_torch",
            ],
            cross_entropy_hard_targets_match_torch="passed",
        ),
    ),
    "forbidden_calls": (
        FORBIDDEN_CALLS,
        expect(
            "forbidden",
            ["softmax_matches_torch", "log_softmax_matches_torch", "cross_entropy_hard_targets_match_torch", "cross_entropy_gradients_match_torch"],
        ),
    ),
    "predicts_a_constant_class": (PREDICTS_A_CONSTANT_CLASS, expect("failed", METRIC_CHECKS)),
    "predicts_class_indices": (UNCALIBRATED_OR_MALFORMED, expect("failed", METRIC_CHECKS)),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, "classification", overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
