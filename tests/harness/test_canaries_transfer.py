"""Every check of topic 05 `transfer` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Overrides replace module-level names, so reference functions that call an overridden one
(freeze calls freeze_bn_stats, train_transfer calls most of them) see the bug too; canaries that do not grade the
metric task leave it out for that reason. Two bugs whose checks do not overlap share a canary.
"""

import pytest
from canaries import REPLACE, expect, grade_canary

# requires_grad stays True: the "frozen" stage is fine-tuned after all.
FREEZE_LEAVES_TRAINABLE = """
def freeze(module):
    return freeze_bn_stats(module)  # bug: the parameters still train
"""

# Gradients stop, but batch norm in training mode still overwrites its running statistics; and a count that
# includes the frozen parameters.
FREEZE_LEAVES_BN_UPDATING_AND_COUNTS_FROZEN = """
def freeze(module):
    return module.requires_grad_(False)  # bug: batch-norm statistics keep updating


def trainable_param_count(model):
    return sum(parameter.numel() for parameter in model.parameters())  # bug: frozen parameters counted too
"""

# The lesson's freeze_bn_stats: eval() once, undone by the next model.train(); and layer-wise learning rates the
# wrong way round (the first stage fastest).
BN_EVAL_ONCE_AND_REVERSED_DEPTHS = """
def freeze_bn_stats(module):
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()  # bug: model.train() switches it back
    return module


_reference_groups = discriminative_param_groups


def discriminative_param_groups(model, base_lr, decay):
    groups = _reference_groups(model, base_lr, decay)
    rates = [group["lr"] for group in groups]
    return [{"params": group["params"], "lr": rate} for group, rate in zip(groups, reversed(rates))]  # bug: depth reversed
"""

# Momentum 0 keeps the running means, but training mode still normalises with the batch's own statistics (and
# counts batches); and a head that keeps the source task's number of classes.
MOMENTUM_ZERO_AND_KEEPS_OUTPUT_SIZE = """
def freeze_bn_stats(module):
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = 0.0  # bug: not evaluation mode
    return module


_reference_replace_head = replace_head


def replace_head(model, num_classes):
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    _, head_name = _stages_and_head(model)
    return _reference_replace_head(model, getattr(model, head_name).out_features)  # bug: the old output size
"""

# A probe that learns nothing, and gradual unfreezing one epoch early.
CONSTANT_PROBE_AND_EARLY_UNFREEZING = """
_reference_probe = linear_probe
_reference_schedule = progressive_unfreeze_schedule


def linear_probe(features, labels, c=1.0):
    weight, bias = _reference_probe(features, labels, c)  # (for its input checks)
    return torch.zeros_like(weight), torch.zeros_like(bias)  # bug: a constant classifier


def progressive_unfreeze_schedule(num_stages, epochs, unfreeze_every):
    _reference_schedule(num_stages, epochs, unfreeze_every)  # (for its input checks)
    return [min(num_stages, (epoch + 1) // unfreeze_every) for epoch in range(epochs)]  # bug: off by one epoch
"""

# Fine-tuning that never loads the pretrained weights: it trains from scratch, so it cannot beat scratch.
IGNORES_BACKBONE = """
_reference_train = train_transfer


def train_transfer(train, *, seed, budget_s):
    return _reference_train({**train, "backbone": None}, seed=seed, budget_s=budget_s)  # bug: weights ignored
"""

ZEROS = """
def trainable_param_count(model):
    return 0


def discriminative_param_groups(model, base_lr, decay):
    return [{"params": list(model.parameters()), "lr": base_lr}]


def progressive_unfreeze_schedule(num_stages, epochs, unfreeze_every):
    return [0] * epochs


def linear_probe(features, labels, c=1.0):
    classes = int(labels.max()) + 1
    return features.new_zeros(classes, features.shape[1]), features.new_zeros(classes)


def train_transfer(train, *, seed, budget_s):
    return None  # does not train


def predict_transfer(model, inputs):
    return torch.full((len(inputs["images"]),), 5, dtype=torch.int64)  # always the first new class
"""

# The reference, off by a little: beyond every tolerance, close enough to look right at a glance.
NOISY = REPLACE + """
_replace(["linear_probe"], lambda result, *args: (result[0] * 1.01, result[1] + 1e-2))
_replace(["discriminative_param_groups"], lambda result, *args: [{**group, "lr": group["lr"] * (1 + 1e-6)} for group in result])
"""

FREEZING = ["freeze_stops_updates", "freeze_bn_stats_uses_running_statistics"]
QUICK = [
    *FREEZING, "trainable_param_count_matches_torch", "replace_head_makes_a_new_classifier", "discriminative_param_groups_match_depths",
    "progressive_unfreeze_schedule_matches_formula", "linear_probe_matches_sklearn", "invalid_inputs_raise_clear_errors",
]  # fmt: skip
METRICS = ["fewshot_transfer_accuracy", "fewshot_transfer_beats_scratch"]

CANARIES = {
    "freeze_leaves_trainable": (
        FREEZE_LEAVES_TRAINABLE,
        {"freeze_stops_updates": "failed", "freeze_bn_stats_uses_running_statistics": "passed", "trainable_param_count_matches_torch": "passed"},
    ),
    "freeze_leaves_bn_updating_and_counts_frozen": (
        FREEZE_LEAVES_BN_UPDATING_AND_COUNTS_FROZEN,
        {"freeze_stops_updates": "failed", "trainable_param_count_matches_torch": "failed", "freeze_bn_stats_uses_running_statistics": "passed"},
    ),
    "bn_eval_once_and_reversed_depths": (
        BN_EVAL_ONCE_AND_REVERSED_DEPTHS,
        # freeze calls freeze_bn_stats: it loses too
        {**expect("failed", FREEZING), "discriminative_param_groups_match_depths": "failed", "replace_head_makes_a_new_classifier": "passed"},
    ),
    "momentum_zero_and_keeps_output_size": (
        MOMENTUM_ZERO_AND_KEEPS_OUTPUT_SIZE,
        {**expect("failed", FREEZING), "replace_head_makes_a_new_classifier": "failed", "invalid_inputs_raise_clear_errors": "passed"},
    ),
    "constant_probe_and_early_unfreezing": (
        CONSTANT_PROBE_AND_EARLY_UNFREEZING,
        {
            "linear_probe_matches_sklearn": "failed",
            "progressive_unfreeze_schedule_matches_formula": "failed",
            "invalid_inputs_raise_clear_errors": "passed",
        },
    ),
    "ignores_backbone": (
        IGNORES_BACKBONE,
        {"fewshot_transfer_accuracy": "failed", "fewshot_transfer_beats_scratch": "failed", "freeze_stops_updates": "passed"},
    ),
    "zeros": (
        ZEROS,
        expect(
            "failed", [*QUICK, *METRICS], freeze_stops_updates="passed", freeze_bn_stats_uses_running_statistics="passed",
            replace_head_makes_a_new_classifier="passed",
        ),  # fmt: skip
    ),
    "noisy": (
        NOISY,
        expect("passed", QUICK, linear_probe_matches_sklearn="failed", discriminative_param_groups_match_depths="failed"),
    ),
}


@pytest.mark.parametrize("canary", list(CANARIES), ids=list(CANARIES))
def test_canary_loses_its_checks(tmp_path, canary):
    overrides, expected = CANARIES[canary]
    outcomes = grade_canary(tmp_path, "transfer", overrides, list(expected))
    assert outcomes == expected, f"canary {canary}: expected {expected}, got {outcomes}"
