"""Every check of topic 03 `cnn` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process, a few seconds): the reference plus overrides, graded on the
checks it should lose and on some it should keep, so a canary also shows which checks a bug does *not* touch.
Canaries that bundle several bugs put each in a different interface, and every check grades one interface
(`uses:` in specs/03_cnn.yaml), so each verdict is caused by exactly one of the bugs.
"""

import pytest
from canaries import grade_canary

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
