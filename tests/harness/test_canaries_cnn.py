"""Every check of topic 03 `cnn` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process, a few seconds): the reference plus overrides, graded on the
checks it should lose and on some it should keep, so a canary also shows which checks a bug does *not* touch.
Canaries that bundle several bugs put each in a different interface, and every check grades one interface
(`uses:` in specs/03_cnn.yaml), so each verdict is caused by exactly one of the bugs.
"""

import pytest
from canaries import LearnerBug, grade_canary, learner_bug_test

BIASED_RUNNING_VARIANCE = """
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), correction=0)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)  # bug: the biased variance goes into the running average
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
"""

BATCH_STATISTICS_IN_EVAL = """
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        mean = x.mean(dim=(0, 2, 3))  # bug: the batch's statistics in eval mode, not the running ones
        var = x.var(dim=(0, 2, 3), correction=0)
        y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
"""

CALLS_F_BATCH_NORM = """
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, self.momentum, self.eps)
"""

NOISY_BATCH_NORM = """
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        return super().forward(x) + 1e-3 * torch.randn_like(x)  # the reference, off by a little
"""

ARCHITECTURE_BUGS = """
class LeNet5(LeNet5):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, bias=False)  # bug: 6 parameters short of LeNet-5


_reference_resnet18 = resnet18


def resnet18(num_classes=1000):
    model = _reference_resnet18(num_classes)
    model.classifier = model.fc  # bug: torchvision names the classifier `fc`
    del model.fc
    return model


def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters())  # bug: frozen parameters are counted too


class VGGBlock(VGGBlock):
    def forward(self, x):
        for conv in self.convs:
            x = conv(x)  # bug: no ReLU
        return F.max_pool2d(x, kernel_size=2, stride=2)
"""

LOOK_ALIKE_ARCHITECTURES = """
class LeNet5(LeNet5):
    def forward(self, x):  # bug: the modern ReLU + max-pool LeNet; same parameters, different function
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.fc3(x)


class BasicBlock(BasicBlock):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__(in_channels, channels, stride)
        if self.downsample is not None:
            self.downsample = nn.Sequential(self.downsample[0])  # bug: the projection without its batch norm


class Bottleneck(Bottleneck):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__(in_channels, channels, stride)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)  # bug: ResNet v1's stride on the first 1x1


import torchvision

_BORROWED_BLOCKS = {"basic": torchvision.models.resnet.BasicBlock}  # out of reach of the forbid list's name patching


class _BorrowedResNet(torchvision.models.resnet.ResNet):
    pass


def resnet18(num_classes=1000):
    return _BorrowedResNet(_BORROWED_BLOCKS["basic"], [2, 2, 2, 2], num_classes=num_classes)  # bug: not from scratch
"""

PREDICTS_ZEROS = """
def train_lenet(train, *, seed, budget_s):
    return None  # does not train


def predict_lenet(model, inputs):
    return torch.zeros(len(inputs["images"]), dtype=torch.int64)  # bug: always class 0
"""

CANARIES = {
    "biased_running_variance": (
        BIASED_RUNNING_VARIANCE,
        {
            "batchnorm2d_running_stats_match_torch": "failed",
            "batchnorm2d_eval_matches_torch": "failed",
            "batchnorm2d_train_matches_torch": "passed",
            "batchnorm2d_gradients_match_torch": "passed",
        },
    ),
    "batch_statistics_in_eval": (
        BATCH_STATISTICS_IN_EVAL,
        {
            "batchnorm2d_eval_matches_torch": "failed",
            "batchnorm2d_train_matches_torch": "passed",
            "batchnorm2d_running_stats_match_torch": "passed",
        },
    ),
    "calls_f_batch_norm": (
        CALLS_F_BATCH_NORM,
        {
            "batchnorm2d_train_matches_torch": "forbidden",
            "batchnorm2d_running_stats_match_torch": "forbidden",
            "batchnorm2d_eval_matches_torch": "forbidden",
            "batchnorm2d_gradients_match_torch": "forbidden",
            "batchnorm2d_gradcheck": "forbidden",
        },
    ),
    "noisy_batch_norm": (
        NOISY_BATCH_NORM,
        {"batchnorm2d_train_matches_torch": "failed", "batchnorm2d_eval_matches_torch": "failed"},
    ),
    "architecture_bugs": (
        ARCHITECTURE_BUGS,
        {
            "lenet5_parameter_count": "failed",
            "lenet5_matches_sequential": "failed",
            "lenet5_output_shape": "passed",
            "resnet18_state_dict_matches_torchvision": "failed",
            "resnet18_logits_match_torchvision": "failed",
            "count_parameters_matches_torch": "failed",
            "vggblock_shapes_and_parameters": "failed",
        },
    ),
    "look_alike_architectures": (
        LOOK_ALIKE_ARCHITECTURES,
        {
            "lenet5_parameter_count": "passed",
            "lenet5_matches_sequential": "failed",
            "basicblock_matches_torchvision": "failed",
            "bottleneck_matches_torchvision": "failed",
            "resnet18_state_dict_matches_torchvision": "forbidden",
        },
    ),
    "predicts_zeros": (PREDICTS_ZEROS, {"lenet_digits_accuracy": "failed"}),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, "cnn", overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"


# --- learner bugs: plausible single mistakes, each in one interface -------------------------------------------------

TOPIC = "cnn"

LEARNER_BUGS = [
    LearnerBug(
        name="vgg_average_pool",
        kind="value",
        overrides="""
class VGGBlock(VGGBlock):
    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        return F.avg_pool2d(x, kernel_size=2, stride=2)  # bug: LeNet's average pooling, not VGG's max-pool
""",
        loses={"vggblock_matches_sequential": "failed"},
        keeps=("vggblock_shapes_and_parameters",),
    ),
    LearnerBug(
        name="vgg_single_relu_after_last_conv",
        kind="value",
        overrides="""
class VGGBlock(VGGBlock):
    def forward(self, x):
        for conv in self.convs:
            x = conv(x)
        return F.max_pool2d(F.relu(x), kernel_size=2, stride=2)  # bug: one ReLU for the whole stack
""",
        loses={"vggblock_matches_sequential": "failed"},
        keeps=("vggblock_shapes_and_parameters",),
    ),
    LearnerBug(
        name="vgg_accepts_no_convolutions",
        kind="error",
        overrides="""
class VGGBlock(VGGBlock):
    def __init__(self, in_channels, out_channels, num_convs=2):
        super().__init__(in_channels, out_channels, max(num_convs, 1))  # bug: num_convs=0 quietly becomes 1
""",
        loses={"vggblock_shapes_and_parameters": "failed"},
        keeps=("vggblock_matches_sequential",),
    ),
    LearnerBug(
        name="batchnorm_default_eps_in_eval",
        kind="default",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        if self.training:
            return super().forward(x)
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        y = (x - self.running_mean[:, None, None]) / torch.sqrt(self.running_var[:, None, None] + 1e-5)  # bug: eps ignored
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
""",
        loses={"batchnorm2d_eval_matches_torch": "failed"},
        keeps=("batchnorm2d_train_matches_torch", "batchnorm2d_running_stats_match_torch"),
    ),
    LearnerBug(
        name="batchnorm_running_stats_in_float32",
        kind="dtype",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        if not self.training:
            return super().forward(x)
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError("BatchNorm2d: train mode needs more than one value per channel")
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), correction=0)
        with torch.no_grad():  # bug: the statistics are rounded to float32 on their way into the running averages
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.float())
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.float() * count / (count - 1))
            self.num_batches_tracked += 1
        y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
""",
        loses={"batchnorm2d_running_stats_match_torch": "failed"},
        keeps=("batchnorm2d_train_matches_torch",),
    ),
    LearnerBug(
        name="batchnorm_momentum_weights_the_old_average",
        kind="default",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        if not self.training:
            return super().forward(x)
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError("BatchNorm2d: train mode needs more than one value per channel")
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), correction=0)
        with torch.no_grad():  # bug: Keras' convention, momentum weighs the old average
            self.running_mean.copy_(self.momentum * self.running_mean + (1 - self.momentum) * mean)
            self.running_var.copy_(self.momentum * self.running_var + (1 - self.momentum) * var * count / (count - 1))
            self.num_batches_tracked += 1
        y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
""",
        loses={"batchnorm2d_running_stats_match_torch": "failed"},
        keeps=("batchnorm2d_train_matches_torch",),
    ),
    LearnerBug(
        name="batchnorm_eps_outside_the_root",
        kind="value",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        if self.training:
            return super().forward(x)
        y = (x - self.running_mean[:, None, None]) / (torch.sqrt(self.running_var[:, None, None]) + self.eps)  # bug
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
""",
        loses={"batchnorm2d_eval_matches_torch": "failed"},
        keeps=("batchnorm2d_train_matches_torch",),
    ),
    LearnerBug(
        name="batchnorm_affine_false_keeps_parameters",
        kind="default",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def __init__(self, num_features, eps=1e-05, momentum=0.1, affine=True):
        super().__init__(num_features, eps, momentum, affine)
        if not affine:  # bug: weight and bias exist (and train) even without affine
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
""",
        loses={"batchnorm2d_running_stats_match_torch": "failed"},
        keeps=("batchnorm2d_train_matches_torch",),
    ),
    LearnerBug(
        name="batchnorm_single_value_not_rejected",
        kind="error",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        _check_images(x, "BatchNorm2d", channels=self.num_features)
        if not self.training:
            return super().forward(x)
        count = x.numel() // x.shape[1]
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), correction=0)
        with torch.no_grad():  # bug: one value per channel is not refused (every output is then the bias)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / max(count - 1, 1), self.momentum)
            self.num_batches_tracked += 1
        y = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y
""",
        loses={"batchnorm2d_rejects_invalid_input": "failed"},
        keeps=("batchnorm2d_train_matches_torch",),
    ),
    LearnerBug(
        name="batchnorm_rejects_single_value_in_eval",
        kind="error",
        overrides="""
class BatchNorm2d(BatchNorm2d):
    def forward(self, x):
        if x.dim() == 4 and x.numel() // x.shape[1] < 2:  # bug: eval mode needs no batch statistics
            raise ValueError("BatchNorm2d: expected more than one value per channel")
        return super().forward(x)
""",
        loses={"batchnorm2d_rejects_invalid_input": "failed"},
        keeps=("batchnorm2d_eval_matches_torch",),
    ),
    LearnerBug(
        name="lenet_without_input_checks",
        kind="error",
        overrides="""
class LeNet5(LeNet5):
    def forward(self, x):  # bug: no shape check; wrong inputs fail somewhere inside with a RuntimeError
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = torch.tanh(self.fc2(torch.tanh(self.fc1(x.flatten(1)))))
        return self.fc3(x)
""",
        loses={"lenet5_rejects_other_shapes": "failed"},
        keeps=("lenet5_matches_sequential",),
    ),
    LearnerBug(
        name="lenet_adaptive_pool_accepts_any_size",
        kind="domain",
        overrides="""
class LeNet5(LeNet5):
    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError("LeNet5: expected Tensor[N, 1, H, W]")
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.adaptive_avg_pool2d(torch.tanh(self.conv2(x)), 5)  # bug: any image size gives 5x5, none is refused
        x = torch.tanh(self.fc2(torch.tanh(self.fc1(x.flatten(1)))))
        return self.fc3(x)
""",
        loses={"lenet5_rejects_other_shapes": "failed"},
        keeps=("lenet5_matches_sequential",),
    ),
    LearnerBug(
        name="resnet_pool_kernel_from_height",
        kind="domain",
        overrides="""
class _PoolByHeight(_ResNet):
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.avg_pool2d(x, kernel_size=x.shape[2]).flatten(1)  # bug: a square window, right only for square images
        return self.fc(x)


def resnet18(num_classes=1000):
    return _PoolByHeight(BasicBlock, [2, 2, 2, 2], num_classes)
""",
        loses={"resnet18_logits_match_torchvision": "failed"},
        keeps=("resnet18_state_dict_matches_torchvision",),
    ),
    LearnerBug(
        name="basicblock_relu_before_batchnorm",
        kind="value",
        overrides="""
class BasicBlock(BasicBlock):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(F.relu(self.conv1(x)))  # bug: conv -> relu -> bn, the order of some tutorials
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)
""",
        loses={"basicblock_matches_torchvision": "failed"},
    ),
    LearnerBug(
        name="count_parameters_without_type_check",
        kind="error",
        overrides="""
def count_parameters(model, trainable_only=True):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)  # bug: no TypeError
""",
        loses={"count_parameters_matches_torch": "failed"},
    ),
    LearnerBug(
        name="count_parameters_from_state_dict",
        kind="value",
        overrides="""
def count_parameters(model, trainable_only=True):
    if not isinstance(model, nn.Module):
        raise TypeError("count_parameters: expected an nn.Module")
    return sum(value.numel() for value in model.state_dict().values())  # bug: buffers, shared and frozen tensors counted
""",
        loses={"count_parameters_matches_torch": "failed"},
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
