"""Every check of topic 07 `segmentation` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Boundary canaries (``REPLACE``) change what the tests see and nothing inside the
reference, so a noisy ``dice_loss`` does not leak into ``combined_loss`` (replaced by itself, that runs on the
reference's snapshot); the others replace a definition by name, so the reference's own callers see the bug too (a
wrong ``iou_per_class`` also makes ``mean_iou`` wrong, as it would in a student's module).
"""

import pytest
from canaries import REPLACE, expect, grade_canary

PER_BATCH_MIOU_NAN_AS_ZERO = """
def mean_iou(predictions, targets, num_classes, ignore_index=None):
    # the lesson's bug: one mIoU per batch, a class absent from the batch counted as IoU 0, then the mean of batches
    if isinstance(predictions, torch.Tensor):
        predictions, targets = [predictions], [targets]
    per_batch = []
    for batch_predictions, batch_targets in zip(predictions, targets):
        iou = iou_per_class(confusion_matrix(batch_predictions, batch_targets, num_classes, ignore_index))
        per_batch.append(float(torch.nan_to_num(iou, nan=0.0).mean()))
    return sum(per_batch) / len(per_batch)
"""

IOU_ZERO_FOR_ABSENT_CLASSES = """
def iou_per_class(confusion):
    confusion = confusion.double()
    true_positive = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positive
    return true_positive / union.clamp(min=1)  # bug: 0, not NaN, for a class absent from truth and prediction
"""

UP_WITHOUT_SIZE_HANDLING = """
class Up(Up):
    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], dim=1))  # bug: no padding to the skip's size
"""

REFERENCE_PLUS_NOISE = (
    REPLACE
    + """
_replace(["dice_loss", "mean_iou", "pixel_accuracy"], lambda result, *arguments: result + 1e-4 * float(torch.rand(())))
_replace(["iou_per_class"], lambda result, *arguments: result + 1e-4 * torch.rand(result.shape, dtype=result.dtype))
_replace(["combined_loss"], lambda result, *arguments: result)  # a copy on the snapshot: calls the clean dice_loss
"""
)

ZEROS_AND_BORROWED = (
    REPLACE
    + """
_replace(["dice_loss", "combined_loss", "iou_per_class"], lambda result, *arguments: torch.zeros_like(result).detach())
_replace(["mean_iou", "pixel_accuracy"], lambda result, *arguments: 0.0)


class UNet(UNet):
    def forward(self, x):
        return torch.zeros(x.shape[0], self.outc.out_channels, *x.shape[2:])  # constant logits


from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix


def confusion_matrix(predictions, targets, num_classes, ignore_index=None):
    keep = targets != ignore_index if ignore_index is not None else torch.ones_like(targets, dtype=torch.bool)
    counts = sklearn_confusion_matrix(targets[keep].numpy(), predictions[keep].numpy(), labels=list(range(num_classes)))
    return torch.from_numpy(counts).long()  # bug: not from scratch
"""
)

PREDICTS_ALL_BACKGROUND = """
def train_segmenter(train, *, seed, budget_s):
    return None  # does not train


def predict_segmenter(model, inputs):
    images = inputs["images"]
    return torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.int64)  # bug: background everywhere
"""

QUICK_CHECKS = [
    "doubleconv_shapes_and_parameters",
    "down_halves_resolution",
    "up_handles_odd_skip_sizes",
    "unet_output_shape",
    "unet_gradients_reach_every_level",
    "dice_loss_matches_formula",
    "dice_loss_perfect_prediction_is_zero",
    "dice_loss_gradcheck",
    "combined_loss_matches_torch",
    "confusion_matrix_matches_sklearn",
    "iou_per_class_matches_torchmetrics",
    "mean_iou_matches_torchmetrics",
    "pixel_accuracy_matches_torchmetrics",
]

CANARIES = {
    "per_batch_miou_nan_as_zero": (
        PER_BATCH_MIOU_NAN_AS_ZERO,
        {
            "mean_iou_matches_torchmetrics": "failed",
            "iou_per_class_matches_torchmetrics": "passed",
            "confusion_matrix_matches_sklearn": "passed",
        },
    ),
    "iou_zero_for_absent_classes": (
        IOU_ZERO_FOR_ABSENT_CLASSES,
        {
            "iou_per_class_matches_torchmetrics": "failed",
            "mean_iou_matches_torchmetrics": "failed",
            "confusion_matrix_matches_sklearn": "passed",
            "pixel_accuracy_matches_torchmetrics": "passed",
        },
    ),
    "up_without_size_handling": (
        UP_WITHOUT_SIZE_HANDLING,
        {
            "up_handles_odd_skip_sizes": "failed",
            "unet_output_shape": "failed",
            "unet_gradients_reach_every_level": "failed",
            "down_halves_resolution": "passed",
            "doubleconv_shapes_and_parameters": "passed",
        },
    ),
    "reference_plus_noise": (
        REFERENCE_PLUS_NOISE,
        {
            "dice_loss_matches_formula": "failed",
            "iou_per_class_matches_torchmetrics": "failed",
            "mean_iou_matches_torchmetrics": "failed",
            "pixel_accuracy_matches_torchmetrics": "failed",
            "combined_loss_matches_torch": "passed",
            "confusion_matrix_matches_sklearn": "passed",
        },
    ),
    "zeros_and_borrowed": (
        ZEROS_AND_BORROWED,
        expect(
            "failed",
            QUICK_CHECKS,
            doubleconv_shapes_and_parameters="passed",
            down_halves_resolution="passed",
            up_handles_odd_skip_sizes="passed",
            unet_output_shape="passed",  # constant logits have the right shape: the gradient check catches them
            confusion_matrix_matches_sklearn="forbidden",
        ),
    ),
    "predicts_all_background": (PREDICTS_ALL_BACKGROUND, {"shapes_segmentation_miou": "failed"}),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, "segmentation", overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
