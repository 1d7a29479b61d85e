"""Every check of topic 04 `classification` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Canaries that bundle several bugs put each in a different interface, and every check
grades one interface (`uses:` in specs/04_classification.yaml), so each verdict is caused by exactly one of the bugs.
The metric canaries never train: their train_classifier returns at once.
"""

import pytest
from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test

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
            [
                "softmax_matches_torch",
                "log_softmax_matches_torch",
                "cross_entropy_hard_targets_match_torch",
                "cross_entropy_gradients_match_torch",
            ],
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


# --- learner bugs: plausible single mistakes, each in one interface -------------------------------------------------

TOPIC = "classification"

LEARNER_BUGS = [
    LearnerBug(
        name="softmax_global_maximum",
        kind="value",
        overrides="""
def softmax(logits, dim=-1):
    exponentials = (logits - logits.max()).exp()  # bug: one maximum for the whole tensor; other rows underflow to 0 / 0
    return exponentials / exponentials.sum(dim=dim, keepdim=True)
""",
        loses={"softmax_matches_torch": "failed"},
    ),
    LearnerBug(
        name="softmax_transposes_for_another_dim",
        kind="domain",
        overrides="""
_reference_softmax = softmax


def softmax(logits, dim=-1):
    if dim not in (-1, logits.dim() - 1):
        return _reference_softmax(logits.t(), -1).t()  # bug: "the other dim" only exists for a matrix
    return _reference_softmax(logits, -1)
""",
        loses={"softmax_matches_torch": "error"},
    ),
    LearnerBug(
        name="softmax_accepts_integer_logits",
        kind="error",
        overrides="""
def softmax(logits, dim=-1):
    logits = logits.double() if not logits.is_floating_point() else logits  # bug: no TypeError for class indices
    exponentials = (logits - logits.amax(dim=dim, keepdim=True)).exp()
    return exponentials / exponentials.sum(dim=dim, keepdim=True)
""",
        loses={"softmax_rejects_invalid_input": "failed"},
        keeps=("softmax_matches_torch",),
    ),
    LearnerBug(
        name="log_softmax_without_dim_check",
        kind="error",
        overrides="""
def log_softmax(logits, dim=-1):
    shifted = logits - logits.amax(dim=dim, keepdim=True)  # bug: a dim out of range raises torch's IndexError
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()
""",
        loses={"softmax_rejects_invalid_input": "failed"},
        keeps=("log_softmax_matches_torch",),
    ),
    LearnerBug(
        name="log_of_softmax",
        kind="lesson",
        overrides="""
def log_softmax(logits, dim=-1):
    return softmax(logits, dim).log()  # bug: log(0) = -inf where a probability underflows
""",
        loses={"log_softmax_matches_torch": "failed"},
    ),
    LearnerBug(
        name="cross_entropy_smoothing_spread_over_other_classes",
        kind="value",
        overrides="""
def cross_entropy(logits, target, label_smoothing=0.0):
    num_classes = logits.shape[1]
    if not target.is_floating_point():
        target = torch.zeros_like(logits).scatter_(1, target[:, None], 1.0)
    smoothed = target * (1 - label_smoothing) + label_smoothing / (num_classes - 1) * (1 - target)  # bug: eps / (C - 1)
    return -(smoothed * log_softmax(logits, dim=1)).sum(dim=1).mean()
""",
        loses={"cross_entropy_hard_targets_match_torch": "failed"},
    ),
    LearnerBug(
        name="cross_entropy_negative_target_wraps_around",
        kind="error",
        overrides="""
def cross_entropy(logits, target, label_smoothing=0.0):
    log_probs = log_softmax(logits, dim=1)
    if target.is_floating_point():
        target = (1 - label_smoothing) * target + label_smoothing / logits.shape[1]
        return -(target * log_probs).sum(dim=1).mean()
    picked = log_probs[torch.arange(len(logits)), target]  # bug: a target of -1 silently picks the last class
    return -((1 - label_smoothing) * picked + label_smoothing * log_probs.mean(dim=1)).mean()
""",
        loses={"cross_entropy_rejects_invalid_input": "failed"},
        keeps=("cross_entropy_hard_targets_match_torch", "cross_entropy_soft_targets_match_torch"),
    ),
    LearnerBug(
        name="mixup_lambda_uniform",
        kind="distribution",
        overrides="""
def mixup_batch(images, labels, alpha, num_classes, generator):
    if not alpha > 0:
        raise ValueError("mixup_batch: alpha must be > 0")
    lam = float(torch.rand((), generator=generator, dtype=torch.float64))  # bug: alpha ignored, lam ~ U(0, 1)
    perm = torch.randperm(len(images), generator=generator)
    one_hot = F.one_hot(labels, num_classes).to(images.dtype)
    return lam * images + (1 - lam) * images[perm], lam * one_hot + (1 - lam) * one_hot[perm]
""",
        loses={"mixup_batch_lambda_follows_beta": "failed"},
        keeps=("mixup_batch_convex_combination",),
    ),
    LearnerBug(
        name="mixup_lambda_folded_above_half",
        kind="distribution",
        overrides="""
def mixup_batch(images, labels, alpha, num_classes, generator):
    if not alpha > 0:
        raise ValueError("mixup_batch: alpha must be > 0")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    lam = max(lam, 1 - lam)  # bug: "the image keeps the larger share", so lam is never Beta-distributed
    perm = torch.randperm(len(images), generator=generator)
    one_hot = F.one_hot(labels, num_classes).to(images.dtype)
    return lam * images + (1 - lam) * images[perm], lam * one_hot + (1 - lam) * one_hot[perm]
""",
        loses={"mixup_batch_lambda_follows_beta": "failed"},
        keeps=("mixup_batch_convex_combination",),
    ),
    LearnerBug(
        name="mixup_partner_is_the_next_image",
        kind="distribution",
        overrides="""
def mixup_batch(images, labels, alpha, num_classes, generator):
    if not alpha > 0:
        raise ValueError("mixup_batch: alpha must be > 0")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.arange(len(images)).roll(1)  # bug: a fixed pairing, not a random permutation
    one_hot = F.one_hot(labels, num_classes).to(images.dtype)
    return lam * images + (1 - lam) * images[perm], lam * one_hot + (1 - lam) * one_hot[perm]
""",
        loses={"mixup_batch_lambda_follows_beta": "failed"},
        keeps=("mixup_batch_convex_combination",),
    ),
    LearnerBug(
        name="random_crop_offsets_up_to_twice_padding",
        kind="domain",
        overrides="""
def random_crop(images, size, padding, generator):
    _check_images(images, "random_crop")
    if padding < 0 or not 1 <= size <= min(images.shape[2:]) + 2 * padding:
        raise ValueError("random_crop: bad size or padding")
    padded = F.pad(images, (padding,) * 4)
    offsets = torch.randint(0, 2 * padding + 1, (len(images), 2), generator=generator)  # bug: right only when size = H = W
    return torch.stack([padded[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(offsets.tolist())])
""",
        loses={"random_crop_offsets_cover_every_position": "failed", "random_crop_takes_padded_windows": "failed"},
    ),
    LearnerBug(
        name="random_crop_one_offset_for_both_axes",
        kind="distribution",
        overrides="""
def random_crop(images, size, padding, generator):
    _check_images(images, "random_crop")
    if padding < 0 or not 1 <= size <= min(images.shape[2:]) + 2 * padding:
        raise ValueError("random_crop: bad size or padding")
    padded = F.pad(images, (padding,) * 4)
    limit = min(padded.shape[2:]) - size + 1
    offsets = torch.randint(0, limit, (len(images),), generator=generator).tolist()  # bug: top == left, on the diagonal
    return torch.stack([padded[i, :, o : o + size, o : o + size] for i, o in enumerate(offsets)])
""",
        loses={"random_crop_offsets_cover_every_position": "failed"},
        keeps=("random_crop_takes_padded_windows",),
    ),
    LearnerBug(
        name="random_crop_height_and_width_swapped",
        kind="domain",
        overrides="""
def random_crop(images, size, padding, generator):
    _check_images(images, "random_crop")
    count, _, height, width = images.shape
    if padding < 0 or not 1 <= size <= min(height, width) + 2 * padding:
        raise ValueError("random_crop: bad size or padding")
    padded = F.pad(images, (padding,) * 4)
    tops = torch.randint(0, width + 2 * padding - size + 1, (count,), generator=generator)  # bug: W bounds the top
    lefts = torch.randint(0, height + 2 * padding - size + 1, (count,), generator=generator)
    return torch.stack([padded[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(tops.tolist(), lefts.tolist()))])
""",
        loses={"random_crop_offsets_cover_every_position": "error", "random_crop_takes_padded_windows": "failed"},  # windows of mixed sizes
    ),
    LearnerBug(
        name="random_crop_float32_output",
        kind="dtype",
        overrides="""
_reference_random_crop = random_crop


def random_crop(images, size, padding, generator):
    crops = _reference_random_crop(images, size, padding, generator)
    out = torch.empty(crops.shape)  # bug: a float32 buffer, whatever the images' dtype
    out.copy_(crops)
    return out
""",
        loses={"random_crop_offsets_cover_every_position": "failed"},
        keeps=("random_crop_takes_padded_windows",),
    ),
    LearnerBug(
        name="random_hflip_without_p_check",
        kind="error",
        overrides="""
def random_hflip(images, p, generator):
    flip = torch.rand(len(images), generator=generator) < p  # bug: p = 1.5 flips everything instead of raising
    return torch.where(flip[:, None, None, None], images.flip(-1), images)
""",
        loses={"random_hflip_flips_whole_images": "failed"},
    ),
    LearnerBug(
        name="ece_confidence_one_in_last_bin",
        kind="tie",
        overrides="""
def expected_calibration_error(probs, target, n_bins=15):
    confidences, predictions = probs.max(dim=1)
    bins = (confidences * n_bins).long().clamp(max=n_bins - 1)  # bug: a confidence of 1 joins the last bin
    total = 0.0
    for k in range(n_bins):
        members = bins == k
        if members.any():
            accuracy = (predictions[members] == target[members]).double().mean()
            total += float(members.sum()) / len(probs) * abs(float(accuracy - confidences[members].double().mean()))
    return total
""",
        loses={"expected_calibration_error_matches_torchmetrics": "failed"},
    ),
    LearnerBug(
        name="ece_correct_when_target_ties_the_maximum",
        kind="tie",
        overrides="""
def expected_calibration_error(probs, target, n_bins=15):
    confidences = probs.max(dim=1).values
    correct = (probs[torch.arange(len(probs)), target] == confidences).to(probs.dtype)  # bug: a tie counts as correct
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype)
    bins = torch.bucketize(confidences, boundaries, right=True) - 1
    confidence_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, confidences.double())
    correct_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, correct.double())
    return float((correct_sum - confidence_sum).abs().sum() / len(probs))
""",
        loses={"expected_calibration_error_matches_torchmetrics": "failed"},
    ),
    LearnerBug(
        name="ece_bins_closed_on_the_right",
        kind="tie",
        overrides="""
def expected_calibration_error(probs, target, n_bins=15):
    confidences, predictions = probs.max(dim=1)
    correct = (predictions == target).to(probs.dtype)
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype)
    bins = (torch.bucketize(confidences, boundaries) - 1).clamp(min=0)  # bug: (a, b] bins, a boundary goes down
    confidence_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, confidences.double())
    correct_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, bins, correct.double())
    return float((correct_sum - confidence_sum).abs().sum() / len(probs))
""",
        loses={"expected_calibration_error_matches_torchmetrics": "failed"},
    ),
    LearnerBug(
        name="ece_in_float32",
        kind="dtype",
        overrides="""
_reference_ece = expected_calibration_error


def expected_calibration_error(probs, target, n_bins=15):
    return _reference_ece(probs.float(), target, n_bins)  # bug: float64 probabilities binned and summed in float32
""",
        loses={"expected_calibration_error_matches_torchmetrics": "failed"},
    ),
    LearnerBug(
        name="fit_temperature_searches_0.1_to_10",
        kind="domain",
        overrides="""
def fit_temperature(logits, target):
    logits64 = logits.detach().double()
    low, high = math.log(0.1), math.log(10.0)  # bug: "temperatures are never far from 1"
    for _ in range(100):
        a, b = low + (high - low) / 3, high - (high - low) / 3
        if cross_entropy(logits64 / math.exp(a), target) < cross_entropy(logits64 / math.exp(b), target):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)
""",
        loses={"fit_temperature_matches_brute_force": "failed"},
        keeps=("fit_temperature_improves_calibration",),
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
