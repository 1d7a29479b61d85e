"""Every check of topic 05 `transfer` can fail: the reference with the topic's classic bugs, graded for real.

Each canary is one submission (one child process): the reference plus overrides, graded on the checks it should lose
and on some it should keep. Overrides replace module-level names, so reference functions that call an overridden one
(freeze calls freeze_bn_stats, train_transfer calls most of them) see the bug too; canaries that do not grade the
metric task leave it out for that reason. The learner-bug catalogue (LEARNER_BUGS) holds one plausible mistake per
entry; the canaries above it are the crude ones (no training, zeros, noise).
"""

import pytest
from canaries import REPLACE, LearnerBug, expect, grade_canary, learner_bug_test, recompiled

TOPIC = "transfer"


# requires_grad stays True: the "frozen" stage is fine-tuned after all.
FREEZE_LEAVES_TRAINABLE = """
def freeze(module):
    return freeze_bn_stats(module)  # bug: the parameters still train
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
NOISY = (
    REPLACE
    + """
_replace(["linear_probe"], lambda result, *args: (result[0] * 1.01, result[1] + 1e-2))
_replace(["discriminative_param_groups"], lambda result, *args: [{**group, "lr": group["lr"] * (1 + 1e-6)} for group in result])
"""
)

FREEZING = ["freeze_stops_updates", "freeze_bn_stats_uses_running_statistics"]
QUICK = [
    *FREEZING, "trainable_param_count_matches_torch", "replace_head_makes_a_new_classifier", "discriminative_param_groups_match_depths",
    "progressive_unfreeze_schedule_matches_formula", "linear_probe_matches_sklearn", "invalid_inputs_raise_clear_errors",
]  # fmt: skip
METRICS = ["fewshot_transfer_accuracy", "fewshot_transfer_beats_scratch"]

CANARIES = {
    "ignores_backbone": (
        IGNORES_BACKBONE,
        {"fewshot_transfer_accuracy": "failed", "fewshot_transfer_beats_scratch": "failed", "freeze_stops_updates": "passed"},
    ),
    "zeros": (
        ZEROS,
        expect(
            "failed",
            [*QUICK, *METRICS],
            freeze_stops_updates="passed",
            freeze_bn_stats_uses_running_statistics="passed",
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


# --- the learner-bug catalogue ----------------------------------------------------------------------------------------
# Plausible single mistakes, each in one interface, and the checks that must catch it.


LEARNER_BUGS = [
    LearnerBug(
        "freeze_leaves_parameters_trainable",
        "distribution",
        FREEZE_LEAVES_TRAINABLE,
        loses={"freeze_stops_updates": "failed"},
        keeps=("freeze_bn_stats_uses_running_statistics",),
    ),
    LearnerBug(
        "freeze_leaves_batch_norm_updating",
        "distribution",
        """
def freeze(module):
    return module.requires_grad_(False)  # bug: batch-norm statistics keep updating
""",
        loses={"freeze_stops_updates": "failed"},
    ),
    LearnerBug(
        "freeze_handles_only_batchnorm2d",
        "domain",
        """
def freeze(module):
    module.requires_grad_(False)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):  # bug: BatchNorm1d (and 3d) layers keep updating their statistics
            freeze_bn_stats(layer)
    return module
""",
        loses={"freeze_stops_updates": "failed"},
    ),
    LearnerBug(
        "freeze_only_conv_and_linear_weights",
        "domain",
        """
def freeze(module):
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):  # bug: the batch-norm affine parameters still train
            layer.requires_grad_(False)
    return freeze_bn_stats(module)
""",
        loses={"freeze_stops_updates": "failed"},
    ),
    LearnerBug(
        "counts_frozen_parameters",
        "value",
        """
def trainable_param_count(model):
    return sum(parameter.numel() for parameter in model.parameters())  # bug: frozen parameters counted too
""",
        loses={"trainable_param_count_matches_torch": "failed"},
    ),
    LearnerBug(
        "counts_shared_parameters_twice",
        "value",
        """
def trainable_param_count(model):
    # bug: the state dict names a shared layer's tensors once per use, so they are counted twice
    return sum(tensor.numel() for tensor in model.state_dict(keep_vars=True).values() if tensor.requires_grad)
""",
        loses={"trainable_param_count_matches_torch": "failed"},
    ),
    LearnerBug(
        "lesson_bn_eval_once",
        "lesson",
        """
def freeze_bn_stats(module):
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()  # bug: model.train() switches it back
    return module
""",
        loses={"freeze_bn_stats_uses_running_statistics": "failed", "freeze_stops_updates": "failed"},
    ),
    LearnerBug(
        "bn_momentum_zero",
        "value",
        """
def freeze_bn_stats(module):
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.momentum = 0.0  # bug: not evaluation mode, the batch's own statistics still normalise
    return module
""",
        loses={"freeze_bn_stats_uses_running_statistics": "failed"},
    ),
    LearnerBug(
        "bn_freezing_puts_every_layer_in_eval",
        "distribution",
        """
def _module_eval(layer, inputs):
    layer.eval()  # every layer of the module, not only its batch norms


def freeze_bn_stats(module):
    module.eval()
    module.register_forward_pre_hook(_module_eval)  # bug: a dropout or any other layer stops training too
    return module
""",
        loses={"freeze_bn_stats_uses_running_statistics": "failed"},
    ),
    LearnerBug(
        "bn_freezing_hooks_every_layer",
        "distribution",
        """
def freeze_bn_stats(module):
    for layer in module.modules():  # bug: no isinstance check, every layer is kept in evaluation mode
        layer.eval()
        layer.register_forward_pre_hook(_keep_evaluating)
    return module
""",
        loses={"freeze_bn_stats_uses_running_statistics": "failed"},
    ),
    LearnerBug(
        "bn_freezing_also_freezes_affine",
        "value",
        """
_reference_freeze_bn_stats = freeze_bn_stats


def freeze_bn_stats(module):
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.requires_grad_(False)  # bug: the affine weight and bias can no longer be fine-tuned
    return _reference_freeze_bn_stats(module)
""",
        loses={"freeze_bn_stats_uses_running_statistics": "failed"},
    ),
    LearnerBug(
        "replace_head_zero_bias",
        "value",
        """
_reference_replace_head = replace_head


def replace_head(model, num_classes):
    model = _reference_replace_head(model, num_classes)
    head = model.fc if isinstance(model, torchvision.models.ResNet) else model.head
    nn.init.zeros_(head.bias)  # bug: not torch's default initialisation
    return model
""",
        loses={"replace_head_makes_a_new_classifier": "failed"},
    ),
    LearnerBug(
        "replace_head_small_normal_init",
        "value",
        """
_reference_replace_head = replace_head


def replace_head(model, num_classes):
    model = _reference_replace_head(model, num_classes)
    head = model.fc if isinstance(model, torchvision.models.ResNet) else model.head
    nn.init.normal_(head.weight, std=0.01)  # bug: a "small" init, not torch's default
    return model
""",
        loses={"replace_head_makes_a_new_classifier": "failed"},
    ),
    LearnerBug(
        "replace_head_in_float32",
        "dtype",
        """
def replace_head(model, num_classes):
    _, head_name = _stages_and_head(model)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    setattr(model, head_name, nn.Linear(getattr(model, head_name).in_features, num_classes))  # bug: float32 whatever the model
    return model
""",
        loses={"replace_head_makes_a_new_classifier": "failed"},
    ),
    LearnerBug(
        "replace_head_keeps_output_size",
        "value",
        """
_reference_replace_head = replace_head


def replace_head(model, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    _, head_name = _stages_and_head(model)
    return _reference_replace_head(model, getattr(model, head_name).out_features)  # bug: the old output size
""",
        loses={"replace_head_makes_a_new_classifier": "failed"},
        keeps=("invalid_inputs_raise_clear_errors",),
    ),
    LearnerBug(
        "param_groups_skip_frozen",
        "default",
        """
_reference_groups = discriminative_param_groups


def discriminative_param_groups(model, base_lr, decay):
    groups = _reference_groups(model, base_lr, decay)
    return [{**group, "params": [p for p in group["params"] if p.requires_grad]} for group in groups]  # bug: frozen left out
""",
        loses={"discriminative_param_groups_match_depths": "failed"},
    ),
    LearnerBug(
        "param_groups_depth_reversed",
        "value",
        """
_reference_groups = discriminative_param_groups


def discriminative_param_groups(model, base_lr, decay):
    groups = _reference_groups(model, base_lr, decay)
    rates = [group["lr"] for group in groups]
    return [{"params": group["params"], "lr": rate} for group, rate in zip(groups, reversed(rates))]  # bug: first stage fastest
""",
        loses={"discriminative_param_groups_match_depths": "failed"},
    ),
    LearnerBug(
        "param_groups_reject_decay_one",
        "error",
        """
_reference_groups = discriminative_param_groups


def discriminative_param_groups(model, base_lr, decay):
    if not 0 < decay < 1:  # bug: decay = 1 (one rate for every depth) is valid
        raise ValueError(f"decay must lie in (0, 1), got {decay}")
    return _reference_groups(model, base_lr, decay)
""",
        loses={"discriminative_param_groups_match_depths": "error"},
    ),
    LearnerBug(
        "unfreezing_one_epoch_early",
        "value",
        """
_reference_schedule = progressive_unfreeze_schedule


def progressive_unfreeze_schedule(num_stages, epochs, unfreeze_every):
    _reference_schedule(num_stages, epochs, unfreeze_every)  # (for its input checks)
    return [min(num_stages, (epoch + 1) // unfreeze_every) for epoch in range(epochs)]  # bug: off by one epoch
""",
        loses={"progressive_unfreeze_schedule_matches_formula": "failed"},
    ),
    LearnerBug(
        "probe_penalises_the_bias",
        "value",
        recompiled(TOPIC, "linear_probe", "penalised[:, -1] = 0  # the bias column is not regularised", "pass  # bug: the bias regularised too"),
        loses={"linear_probe_matches_sklearn": "failed"},
    ),
]


test_learner_bug_loses_its_checks = learner_bug_test(TOPIC, LEARNER_BUGS)
