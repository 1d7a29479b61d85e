"""Every check of topic 07 `segmentation` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Boundary canaries (``REPLACE``) change what the tests see and nothing inside the
reference, so a noisy ``dice_loss`` does not leak into ``combined_loss`` (replaced by itself, that runs on the
reference's snapshot); the others replace a definition by name, so the reference's own callers see the bug too (a
wrong ``iou_per_class`` also makes ``mean_iou`` wrong, as it would in a student's module).
"""

import pytest
from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test

TOPIC = "segmentation"

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

DOUBLECONV_REFLECT_PADDING = """
class DoubleConv(DoubleConv):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        for layer in self.block:
            if isinstance(layer, nn.Conv2d):
                layer.padding_mode = "reflect"  # bug: the spec's 3x3 convolutions pad with zeros
"""

DOUBLECONV_KERAS_BATCH_NORM = """
class DoubleConv(DoubleConv):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        for layer in self.block:
            if isinstance(layer, nn.BatchNorm2d):
                layer.eps = 1e-3  # bug: Keras' default epsilon, not BatchNorm2d's 1e-5
"""

UP_CONCATENATES_X_FIRST = """
class Up(Up):
    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x, skip], dim=1))  # bug: [x, skip], the spec's order is [skip, x]
"""

UP_BILINEAR_UPSAMPLING = """
class Up(Up):
    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        # bug: bilinear upsampling and a 1x1 convolution instead of the spec's transposed convolution
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), nn.Conv2d(in_channels, in_channels // 2, 1))

    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))
"""

UP_PADS_TOP_LEFT = """
class Up(Up):
    def forward(self, x, skip):
        x = self.up(x)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, [dx - dx // 2, dx // 2, dy - dy // 2, dy // 2])  # bug: the odd row and column go top and left
        return self.conv(torch.cat([skip, x], dim=1))
"""

UP_INTERPOLATES_TO_SKIP_SIZE = """
class Up(Up):
    def forward(self, x, skip):
        x = F.interpolate(self.up(x), size=skip.shape[2:])  # bug: resized (nearest) to the skip's size, not zero-padded
        return self.conv(torch.cat([skip, x], dim=1))
"""

UP_PADS_WITH_FLOAT32_ZEROS = """
class Up(Up):
    def forward(self, x, skip):
        x = self.up(x)
        padded = torch.zeros(x.shape[0], x.shape[1], *skip.shape[2:])  # bug: float32 whatever the input's dtype
        padded[:, :, : x.shape[2], : x.shape[3]] = x
        return self.conv(torch.cat([skip, padded], dim=1))
"""

UP_ACCEPTS_ODD_IN_CHANNELS = """
class Up(Up):
    def __init__(self, in_channels, out_channels):
        nn.Module.__init__(self)  # bug: no ValueError for an odd in_channels (it fails later, in forward)
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)
"""

UNET_HEAD_3X3 = """
class UNet(UNet):
    def __init__(self, in_channels=3, num_classes=2, base=16):
        super().__init__(in_channels, num_classes, base)
        self.outc = nn.Conv2d(base, num_classes, kernel_size=3, padding=1)  # bug: the spec's head is a 1x1 convolution
"""

UNET_RETURNS_PROBABILITIES = """
class UNet(UNet):
    def forward(self, x):
        return super().forward(x).softmax(dim=1)  # bug: probabilities, not logits
"""

COMBINED_LOSS_IGNORES_SMOOTH = """
def combined_loss(logits, target, dice_weight=1.0, smooth=1.0):
    _check_logits_and_target(logits, target, "combined_loss")
    if not dice_weight >= 0:
        raise ValueError(f"combined_loss: dice_weight must be >= 0, got {dice_weight}")
    return F.cross_entropy(logits, target.long()) + dice_weight * dice_loss(logits, target)  # bug: smooth not passed on
"""

DICE_LOSS_ACCEPTS_FLOAT_TARGET = """
_reference_dice_loss = dice_loss


def dice_loss(logits, target, smooth=1.0):
    return _reference_dice_loss(logits, target.long(), smooth)  # bug: a floating target silently truncated, no TypeError
"""

CONFUSION_MATRIX_DROPS_OUT_OF_RANGE_TARGETS = """
def confusion_matrix(predictions, targets, num_classes, ignore_index=None):
    predictions, targets = predictions.reshape(-1).long(), targets.reshape(-1).long()
    if ignore_index is not None:
        keep = (targets >= 0) & (targets < num_classes)  # bug: drops the out-of-range targets, not those equal to ignore_index
        predictions, targets = predictions[keep], targets[keep]
    counts = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
"""

CONFUSION_MATRIX_NO_RANGE_CHECK = """
def confusion_matrix(predictions, targets, num_classes, ignore_index=None):
    predictions, targets = predictions.reshape(-1).long(), targets.reshape(-1).long()
    if ignore_index is not None:
        keep = targets != ignore_index
        predictions, targets = predictions[keep], targets[keep]
    # bug: no ValueError for classes outside [0, num_classes): they land in a neighbouring row, or past the end
    counts = torch.bincount(targets * num_classes + predictions, minlength=num_classes * num_classes)
    return counts[: num_classes * num_classes].reshape(num_classes, num_classes)
"""

MEAN_IOU_RETURNS_TENSOR = """
def mean_iou(predictions, targets, num_classes, ignore_index=None):
    iou = iou_per_class(_dataset_confusion(predictions, targets, num_classes, ignore_index, "mean_iou"))
    return iou.nanmean()  # bug: a 0-dim float64 Tensor, not a float
"""

PIXEL_ACCURACY_HARDCODED_255 = """
def pixel_accuracy(predictions, targets, ignore_index=None):
    if isinstance(predictions, torch.Tensor):
        predictions, targets = [predictions], [targets]
    correct = counted = 0
    for batch_predictions, batch_targets in zip(predictions, targets):
        keep = batch_targets != 255 if ignore_index is not None else torch.ones_like(batch_targets, dtype=torch.bool)  # bug: 255, not ignore_index
        correct += int(((batch_predictions == batch_targets) & keep).sum())
        counted += int(keep.sum())
    return correct / counted if counted else math.nan
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
    "doubleconv_matches_torch",
    "down_matches_torch",
    "up_matches_torch",
    "unet_matches_torch",
    "invalid_inputs_raise_clear_errors",
    "dice_loss_matches_formula",
    "dice_loss_perfect_prediction_is_zero",
    "dice_loss_gradcheck",
    "combined_loss_matches_torch",
    "confusion_matrix_matches_sklearn",
    "iou_per_class_matches_torchmetrics",
    "mean_iou_matches_torchmetrics",
    "pixel_accuracy_matches_torchmetrics",
]

# Plausible single mistakes of a learner, each with the checks it must lose (and a few it keeps, to show what those
# checks cannot see). Most of them passed every quick check before the value oracles of the U-Net blocks, the
# ignore_index values other than 255, the non-default smooth of combined_loss, the float outputs and the promised
# errors were tested.
LEARNER_BUGS = [
    LearnerBug(
        "per_batch_miou_nan_as_zero",
        "lesson",
        PER_BATCH_MIOU_NAN_AS_ZERO,
        loses={"mean_iou_matches_torchmetrics": "failed"},
        keeps=("iou_per_class_matches_torchmetrics", "confusion_matrix_matches_sklearn"),
    ),
    LearnerBug(
        "iou_zero_for_absent_classes",
        "value",
        IOU_ZERO_FOR_ABSENT_CLASSES,
        loses={"iou_per_class_matches_torchmetrics": "failed", "mean_iou_matches_torchmetrics": "failed"},
        keeps=("confusion_matrix_matches_sklearn", "pixel_accuracy_matches_torchmetrics"),
    ),
    LearnerBug(
        "up_without_size_handling",
        "domain",
        UP_WITHOUT_SIZE_HANDLING,
        loses={"up_handles_odd_skip_sizes": "failed", "up_matches_torch": "failed", "unet_output_shape": "failed"},
        keeps=("down_halves_resolution",),
    ),
    LearnerBug(
        "doubleconv_reflect_padding",
        "value",
        DOUBLECONV_REFLECT_PADDING,
        loses={"doubleconv_matches_torch": "failed"},
    ),
    LearnerBug(
        "doubleconv_keras_batch_norm_epsilon",
        "value",
        DOUBLECONV_KERAS_BATCH_NORM,
        loses={"doubleconv_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("doubleconv_shapes_and_parameters", "down_halves_resolution"),
    ),
    LearnerBug(
        "up_concatenates_x_first",
        "value",
        UP_CONCATENATES_X_FIRST,
        loses={"up_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("up_handles_odd_skip_sizes", "unet_gradients_reach_every_level"),
    ),
    LearnerBug(
        "up_bilinear_upsampling",
        "value",
        UP_BILINEAR_UPSAMPLING,
        loses={"up_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("up_handles_odd_skip_sizes", "unet_output_shape"),
    ),
    LearnerBug(
        "up_pads_top_left",
        "domain",
        UP_PADS_TOP_LEFT,
        loses={"up_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("up_handles_odd_skip_sizes",),
    ),
    LearnerBug(
        "up_interpolates_to_skip_size",
        "value",
        UP_INTERPOLATES_TO_SKIP_SIZE,
        loses={"up_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("up_handles_odd_skip_sizes",),
    ),
    LearnerBug(
        "up_pads_with_float32_zeros",
        "dtype",
        UP_PADS_WITH_FLOAT32_ZEROS,
        loses={"up_matches_torch": "failed", "unet_matches_torch": "failed"},
        keeps=("up_handles_odd_skip_sizes",),
    ),
    LearnerBug(
        "up_accepts_odd_in_channels",
        "error",
        UP_ACCEPTS_ODD_IN_CHANNELS,
        loses={"invalid_inputs_raise_clear_errors": "failed"},
        keeps=("up_matches_torch",),
    ),
    LearnerBug(
        "unet_head_3x3",
        "value",
        UNET_HEAD_3X3,
        loses={"unet_matches_torch": "failed"},
        keeps=("unet_output_shape", "unet_gradients_reach_every_level"),
    ),
    LearnerBug(
        "unet_returns_probabilities",
        "value",
        UNET_RETURNS_PROBABILITIES,
        loses={"unet_matches_torch": "failed"},
        keeps=("unet_output_shape", "unet_gradients_reach_every_level"),
    ),
    LearnerBug(
        "combined_loss_ignores_smooth",
        "default",
        COMBINED_LOSS_IGNORES_SMOOTH,
        loses={"combined_loss_matches_torch": "failed"},
        keeps=("dice_loss_matches_formula",),
    ),
    LearnerBug(
        "dice_loss_accepts_float_target",
        "error",
        DICE_LOSS_ACCEPTS_FLOAT_TARGET,
        loses={"invalid_inputs_raise_clear_errors": "failed"},
        keeps=("dice_loss_matches_formula",),
    ),
    LearnerBug(
        "confusion_matrix_drops_out_of_range_targets",
        "domain",
        CONFUSION_MATRIX_DROPS_OUT_OF_RANGE_TARGETS,
        loses={"confusion_matrix_matches_sklearn": "failed"},
        keeps=("mean_iou_matches_torchmetrics",),
    ),
    LearnerBug(
        "confusion_matrix_no_range_check",
        "error",
        CONFUSION_MATRIX_NO_RANGE_CHECK,
        loses={"invalid_inputs_raise_clear_errors": "failed"},
        keeps=("confusion_matrix_matches_sklearn",),
    ),
    LearnerBug(
        "mean_iou_returns_tensor",
        "dtype",
        MEAN_IOU_RETURNS_TENSOR,
        loses={"mean_iou_matches_torchmetrics": "failed"},
    ),
    LearnerBug(
        "pixel_accuracy_hardcoded_255",
        "default",
        PIXEL_ACCURACY_HARDCODED_255,
        loses={"pixel_accuracy_matches_torchmetrics": "failed"},
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)


CANARIES = {
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
            doubleconv_matches_torch="passed",
            down_matches_torch="passed",
            up_matches_torch="passed",
            invalid_inputs_raise_clear_errors="forbidden",  # its confusion_matrix cases call the borrowed sklearn
            confusion_matrix_matches_sklearn="forbidden",
        ),
    ),
    "predicts_all_background": (PREDICTS_ALL_BACKGROUND, {"shapes_segmentation_miou": "failed"}),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, TOPIC, overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
