"""Graded tests of topic 05 `transfer` (specs/05_transfer.yaml): freezing, batch-norm statistics, new heads, layer-wise
learning rates, gradual unfreezing, the linear probe, and fine-tuning the pretrained ShapesNet on a few labels.

Models under test are built here: harness.pretrained.ShapesNet and torchvision's resnet18 (random initialisation,
nothing downloads), with their batch-norm running statistics moved away from (0, 1) so that normalising with them
and normalising with a batch's own statistics give different numbers. Oracles: torch itself (training steps, eval
mode), scikit-learn's LogisticRegression, and formulas and parameter names read from the spec; the probe also runs on
non-contiguous inputs. Tolerances, thresholds and points come from the spec.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torchvision
from hypothesis import example, given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

from harness.testing import (
    Case,
    CheckFailure,
    MLPWithBatchNorm1d,
    ShapesNet,
    assert_close,
    assert_raises,
    cases,
    check,
    functional_call,
    hooked_forward,
    identity,
    in_layout,
    instance_of,
    layouts,
    seeded_generator,
    seeded_init,
    seeded_rand,
    seeded_randn,
    sgd_steps,
    take,
    training_flags,
)

MODEL_KINDS = ["shapes_net", "resnet18"]
STAGES = {"shapes_net": 4, "resnet18": 5}  # stages below the head (the spec's layouts)
HEAD = {"shapes_net": "head", "resnet18": "fc"}
BATCH_NORM = nn.modules.batchnorm._BatchNorm
IMAGE = (3, 32, 32)  # the models' input: RGB 32x32, values in [0, 1)


# --- models -----------------------------------------------------------------------------------------------------------


def _vary_batch_norm_statistics(model: nn.Module, seed: int) -> None:
    """Running means in +-0.6 and variances in [0.5, 1.5] instead of torch's initial zeros and ones."""
    generator = seeded_generator(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, BATCH_NORM):
                layer.running_mean.copy_((torch.rand(layer.num_features, generator=generator) - 0.5) * 1.2)
                layer.running_var.copy_(0.5 + torch.rand(layer.num_features, generator=generator))
                layer.num_batches_tracked.fill_(100)


@functools.cache
def _prototype(kind: str) -> nn.Module:
    with seeded_init(5):
        model = {"shapes_net": ShapesNet, "resnet18": lambda: torchvision.models.resnet18(num_classes=7), "mlp_bn1d": MLPWithBatchNorm1d}[
            kind
        ]()
    _vary_batch_norm_statistics(model, seed=6)
    return model


def _fresh(kind: str) -> nn.Module:
    """A new copy of one test model (built once: a resnet18 takes a while), in training mode."""
    return copy.deepcopy(_prototype(kind)).train()


def _state(module: nn.Module) -> dict[tuple[str, int], Tensor]:
    """Every parameter and buffer of ``module`` by identity, as a copy of its current value."""
    return {identity(tensor): tensor.detach().clone() for tensor in module.state_dict(keep_vars=True).values()}


def _names(model: nn.Module) -> dict[tuple[str, int], str]:
    return {identity(tensor): name for name, tensor in model.state_dict(keep_vars=True).items()}


# --- freeze -----------------------------------------------------------------------------------------------------------

FREEZE_PARTS = cases(
    Case("shapes_net-first-two-stages", kind="shapes_net", select=lambda model: model.stages[:2]),
    Case("resnet18-layer2", kind="resnet18", select=lambda model: model.layer2),
    Case("resnet18-stem-bn1", kind="resnet18", select=lambda model: model.bn1),
    # a Linear and a BatchNorm1d: freezing that knows only Conv2d or BatchNorm2d misses them
    Case("mlp_bn1d-linear-and-batchnorm1d", kind="mlp_bn1d", select=lambda model: model.layers[1:3]),
)
HEAD_LAYER = {"shapes_net": lambda model: model.head, "resnet18": lambda model: model.fc, "mlp_bn1d": lambda model: model.layers[4]}


@check("freeze_stops_updates")
@FREEZE_PARTS
def test_freeze_stops_updates(impl, tolerance, case):
    kind = case.kind
    model = take(impl, _fresh(kind))
    part = case.select(model)
    inside = {identity(tensor) for tensor in part.state_dict(keep_vars=True).values()}
    returned = impl.freeze(part)
    if returned is not part:
        raise CheckFailure(f"{case.name}: freeze returned {type(returned).__name__}, not the module it froze")
    images = seeded_rand((2, *IMAGE), 12)
    with torch.no_grad():
        what = f"{case.name}: outputs of the model with the part frozen vs the untouched model (eval mode)"
        assert_close(model.eval()(images), _fresh(kind).eval()(images), tolerance, what=what)
    names = _names(model)
    wrong = [names[identity(p)] for p in model.parameters() if p.requires_grad == (identity(p) in inside)]
    if wrong:
        raise CheckFailure(
            f"{case.name}: requires_grad should be False exactly on the frozen part; wrong for {wrong[:4]} ({len(wrong)} in all)"
        )
    before = _state(model)
    sgd_steps(model, steps=3, seed=11, image=IMAGE)
    after = _state(model)
    moved_inside = [names[key] for key in inside if not torch.equal(before[key], after[key])]
    if moved_inside:
        raise CheckFailure(
            f"{case.name}: after model.train() and 3 SGD steps, frozen tensors changed: {moved_inside[:4]} ({len(moved_inside)} in all)"
        )
    outside_running = [key for key, name in names.items() if key not in inside and name.endswith("running_mean")]
    head_weight = identity(HEAD_LAYER[kind](model).weight)
    stuck = [names[key] for key in [*outside_running, head_weight] if torch.equal(before[key], after[key])]
    if stuck:
        raise CheckFailure(
            f"{case.name}: tensors outside the frozen part did not train (freeze reached too far): {stuck[:4]} ({len(stuck)} in all)"
        )


# --- freeze_bn_stats --------------------------------------------------------------------------------------------------


@check("freeze_bn_stats_uses_running_statistics")
@cases(Case("batch-2", seed=0, batch=2), Case("batch-5", seed=1, batch=5))
@pytest.mark.parametrize("kind", ["shapes_net", "mlp_bn1d", "resnet18"])
def test_freeze_bn_stats_uses_running_statistics(impl, dtype, tolerance, kind, case):
    model = take(impl, _fresh(kind).to(dtype))
    returned = impl.freeze_bn_stats(model)
    if returned is not model:
        raise CheckFailure(f"{kind}: freeze_bn_stats returned {type(returned).__name__}, not the module")
    names = _names(model)
    before = _state(model)
    model.train()
    images = seeded_rand((case.batch, *IMAGE), case.seed, dtype)
    outputs = model(images)
    model.train(True)
    model(seeded_rand((case.batch, *IMAGE), case.seed + 1, dtype))
    changed = [names[key] for key, value in _state(model).items() if not torch.equal(value, before[key])]
    if changed:
        raise CheckFailure(f"{kind}: forward passes in training mode changed {changed[:4]} ({len(changed)} in all)")
    batch_norms = {name for name, layer in model.named_modules() if instance_of(layer, BATCH_NORM)}
    evaluating = [name or "the model" for name, training in training_flags(model).items() if name not in batch_norms and not training]
    if evaluating:  # a side effect beyond the batch norms: a dropout there would stop dropping
        raise CheckFailure(
            f"{kind}: after model.train() and a forward pass, layers other than batch norms are in evaluation mode: {evaluating[:4]} ({len(evaluating)} in all)"
        )
    parameters = dict(model.named_parameters())
    frozen = [name for name, p in parameters.items() if not p.requires_grad]
    reached = {}
    if not frozen:  # gradients flow to the batch norms' weights too
        trained = functional_call(model, parameters, (images,))
        reached = dict(zip(parameters, torch.autograd.grad(trained.sum(), list(parameters.values()), allow_unused=True)))
    if frozen or any(reached.get(f"{name}.weight") is None for name in batch_norms):
        raise CheckFailure(f"{kind}: after freeze_bn_stats every parameter (batch-norm weights included) must stay trainable")
    with torch.no_grad():  # the untouched model in eval mode: what normalising with the running statistics computes
        expected = _fresh(kind).to(dtype).eval()(images)
    assert_close(outputs.detach(), expected, tolerance, what=f"{kind} outputs in training mode vs the untouched model in eval mode")


# --- trainable_param_count --------------------------------------------------------------------------------------------


def _shared_layer_model() -> nn.Module:
    shared = nn.Linear(6, 6)
    return nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(6, 2))  # `shared` is one set of parameters


def _head_only() -> nn.Module:
    model = _fresh("shapes_net")
    model.stages.requires_grad_(False)
    return model


def _resnet_partly_frozen() -> nn.Module:
    model = _fresh("resnet18")
    for layer in (model.conv1, model.bn1, model.layer1, model.layer2, model.layer3):
        layer.requires_grad_(False)
    model.layer4[0].bn1.bias.requires_grad_(False)  # a single frozen tensor inside a trainable layer
    return model


def _random_subset_frozen(seed: int) -> nn.Module:
    model = _fresh("shapes_net")
    frozen = torch.rand(len(list(model.parameters())), generator=seeded_generator(seed)) < 0.5
    for parameter, freeze_it in zip(model.parameters(), frozen.tolist()):
        parameter.requires_grad_(not freeze_it)
    return model


COUNT_CASES = cases(
    Case("shapes_net-all-trainable", build=lambda: _fresh("shapes_net")),
    Case("shapes_net-all-frozen", build=lambda: _fresh("shapes_net").requires_grad_(False)),
    Case("shapes_net-head-only", build=_head_only),
    Case("resnet18-partly-frozen", build=_resnet_partly_frozen),
    Case("shared-layer", build=_shared_layer_model),
    *(Case(f"shapes_net-random-subset-{seed}", build=functools.partial(_random_subset_frozen, seed)) for seed in range(6)),
)


@check("trainable_param_count_matches_torch")
@COUNT_CASES
def test_trainable_param_count_matches_torch(impl, case):
    model = case.build()
    expected = sum(p.numel() for p in model.parameters() if p.requires_grad)
    count = impl.trainable_param_count(model)
    if not isinstance(count, int) or isinstance(count, bool):
        raise CheckFailure(f"{case.name}: trainable_param_count returned {type(count).__name__}, expected an int")
    if count != expected:
        raise CheckFailure(f"{case.name}: trainable_param_count = {count}, expected {expected}", {"count": count, "expected": expected})


# --- replace_head -----------------------------------------------------------------------------------------------------


def _check_new_head(model: nn.Module, kind: str, old: nn.Linear, num_classes: int, what: str) -> nn.Linear:
    head = getattr(model, HEAD[kind])
    if head is old or not instance_of(head, nn.Linear):
        raise CheckFailure(
            f"{what}: model.{HEAD[kind]} should be a new nn.Linear, got {'the old layer' if head is old else type(head).__name__}"
        )
    if (head.in_features, head.out_features) != (old.in_features, num_classes) or head.bias is None:
        raise CheckFailure(
            f"{what}: expected Linear({old.in_features}, {num_classes}) with a bias, got Linear({head.in_features}, "
            f"{head.out_features}, bias={head.bias is not None})"
        )
    if not all(p.requires_grad for p in head.parameters()):
        raise CheckFailure(f"{what}: the new head must be trainable")
    if head.weight.dtype != old.weight.dtype or head.bias.dtype != old.weight.dtype:
        raise CheckFailure(f"{what}: the new head is {head.weight.dtype}, the model (and its old head) {old.weight.dtype}")
    return head


def _check_default_initialisation(head: nn.Linear, seed: int, what: str) -> None:
    """The head's weight and bias are those torch's default initialisation draws from the global RNG seeded with
    ``seed``: nn.Linear built under the same seed, in the head's dtype (or in float32 and then cast)."""
    for build_dtype in dict.fromkeys([head.weight.dtype, torch.float32]):
        with seeded_init(seed):
            expected = nn.Linear(head.in_features, head.out_features, dtype=build_dtype).to(head.weight.dtype)
        if torch.equal(head.weight.detach(), expected.weight.detach()) and torch.equal(head.bias.detach(), expected.bias.detach()):
            return
    bound = 1 / head.in_features**0.5
    raise CheckFailure(
        f"{what}: the new head's weight and bias are not nn.Linear's default initialisation drawn from the global RNG "
        f"(uniform in +-{bound:.4f}, kaiming for the weight): weight in [{float(head.weight.min()):.4f}, {float(head.weight.max()):.4f}], "
        f"bias in [{float(head.bias.min()):.4f}, {float(head.bias.max()):.4f}]"
    )


REPLACE_HEAD_CASES = cases(
    *(
        Case(
            f"{kind}-{num_classes}-classes-{'frozen-first' if frozen else 'trainable'}",
            kind=kind,
            num_classes=num_classes,
            frozen=frozen,
            dtype=torch.float32,
        )
        for kind in MODEL_KINDS
        for num_classes in (1, 3, 5, 10)
        for frozen in (False, True)
    ),
    *(
        Case(f"{kind}-{num_classes}-classes-float64", kind=kind, num_classes=num_classes, frozen=False, dtype=torch.float64)
        for kind in MODEL_KINDS
        for num_classes in (3, 5)
    ),
)


@check("replace_head_makes_a_new_classifier")
@REPLACE_HEAD_CASES
def test_replace_head_makes_a_new_classifier(impl, case):
    kind, num_classes, frozen, model_dtype = case.kind, case.num_classes, case.frozen, case.dtype
    what = f"{kind} ({model_dtype}), {num_classes} classes" + (", frozen first" if frozen else "")
    model = take(impl, _fresh(kind).requires_grad_(not frozen).to(model_dtype))
    old = getattr(model, HEAD[kind])
    outside_head = [t for name, t in model.state_dict(keep_vars=True).items() if not name.startswith(f"{HEAD[kind]}.")]
    kept = {identity(t): (t.detach().clone(), t.requires_grad) for t in outside_head}
    with seeded_init(num_classes):
        returned = impl.replace_head(model, num_classes)
    if returned is not model:
        raise CheckFailure(f"{what}: replace_head returned {type(returned).__name__}, not the model")
    head = _check_new_head(model, kind, old, num_classes, what)
    _check_default_initialisation(head, num_classes, what)
    now = {identity(t): t for name, t in model.state_dict(keep_vars=True).items() if not name.startswith(f"{HEAD[kind]}.")}
    if now.keys() != kept.keys():
        raise CheckFailure(f"{what}: parameters or buffers outside the head were replaced, added or removed")
    changed = [key for key, (value, grad) in kept.items() if not torch.equal(now[key].detach(), value) or now[key].requires_grad != grad]
    if changed:
        raise CheckFailure(f"{what}: {len(changed)} tensors outside the head changed value or requires_grad")
    model.eval()
    outputs, seen = hooked_forward(model, HEAD[kind], seeded_rand((3, *IMAGE), num_classes, model_dtype))
    if outputs.shape != (3, num_classes) or outputs.dtype != model_dtype:
        raise CheckFailure(f"{what}: outputs are {outputs.dtype}{list(outputs.shape)}, expected {model_dtype}[3, {num_classes}]")
    if len(seen) != 1 or not torch.equal(seen[0], outputs):
        raise CheckFailure(f"{what}: the model's outputs are not those of its new head")


# --- discriminative_param_groups --------------------------------------------------------------------------------------


def _depth_of(kind: str, name: str) -> int:
    """The spec's depth of a parameter, read from its name: head/fc 0, then the stages from the output side."""
    first = name.split(".")[0]
    if first == HEAD[kind]:
        return 0
    if kind == "shapes_net":
        return STAGES[kind] - int(name.split(".")[1])  # stages.i -> 4 - i
    return STAGES[kind] if first in ("conv1", "bn1") else STAGES[kind] - int(first.removeprefix("layer"))


@functools.cache
def _partly_frozen_prototype(kind: str) -> nn.Module:
    """The test model with its first stage, one tensor of its last stage and the head's bias frozen (as during gradual
    unfreezing): frozen parameters belong in their groups too."""
    model = copy.deepcopy(_prototype(kind))
    first, last = (model.stages[0], model.stages[3]) if kind == "shapes_net" else (model.layer1, model.layer4)
    first.requires_grad_(False)
    next(last.parameters()).requires_grad_(False)
    getattr(model, HEAD[kind]).bias.requires_grad_(False)
    return model


_TAKEN: dict[tuple[int, str, bool], tuple[object, object, list[tuple[str, Tensor]]]] = {}


def _taken(impl, kind: str, frozen: bool) -> tuple[object, list[tuple[str, Tensor]]]:
    """The test model handed to the implementation once per test, and its named parameters (a resnet18 is 45 MB to
    move into a sealed worker and back), as the same prototype is handed to every example in-process."""
    key = (id(impl), kind, frozen)
    if key not in _TAKEN:
        _TAKEN.clear()
        model = take(impl, _partly_frozen_prototype(kind) if frozen else _prototype(kind))
        _TAKEN[key] = (impl, model, list(model.named_parameters()))
    return _TAKEN[key][1], _TAKEN[key][2]


@check("discriminative_param_groups_match_depths")
@pytest.mark.parametrize("frozen", [False, True], ids=["trainable", "partly-frozen"])
@pytest.mark.parametrize("kind", MODEL_KINDS)
@given(base_lr=st.floats(1e-5, 1.0), decay=st.floats(0.05, 1.0))
@example(base_lr=0.01, decay=1.0)  # the boundary: one rate for every depth, valid
def test_discriminative_param_groups_match_depths(impl, dtype, tolerance, kind, frozen, base_lr, decay):
    model, named = _taken(impl, kind, frozen)
    groups = impl.discriminative_param_groups(model, base_lr, decay)
    well_formed = isinstance(groups, list) and all(isinstance(group, dict) and {"params", "lr"} <= set(group) for group in groups)
    if not well_formed or len(groups) != STAGES[kind] + 1:
        got = f"a list of {len(groups)}" if isinstance(groups, list) else type(groups).__name__
        raise CheckFailure(f"{kind}: expected a list of {STAGES[kind] + 1} dicts with 'params' and 'lr', got {got}")
    rates = torch.tensor([float(group["lr"]) for group in groups], dtype=dtype)
    expected = base_lr * decay ** torch.arange(len(groups), dtype=dtype)
    assert_close(rates, expected, tolerance, what=f"{kind} learning rates by depth (base_lr {base_lr}, decay {decay})")
    depth_of = {identity(p): _depth_of(kind, name) for name, p in named}
    placed: dict[int, int] = {}
    for depth, group in enumerate(groups):
        for parameter in group["params"]:
            if identity(parameter) in placed:
                raise CheckFailure(f"{kind}: a parameter is in groups {placed[identity(parameter)]} and {depth}")
            placed[identity(parameter)] = depth
    names = {identity(p): name for name, p in named}
    missing = [names[key] for key in depth_of if key not in placed]
    misplaced = [
        f"{names[key]} in group {placed[key]}, depth {depth}" for key, depth in depth_of.items() if key in placed and placed[key] != depth
    ]
    if missing or misplaced or len(placed) != len(depth_of):
        raise CheckFailure(f"{kind}: parameters missing {missing[:3]}, in the wrong group {misplaced[:3]} ({len(misplaced)} in all)")
    optimizer = torch.optim.SGD(groups, lr=1.0)
    used = torch.tensor([group["lr"] for group in optimizer.param_groups], dtype=dtype)
    assert_close(used, expected, tolerance, what=f"{kind}: the learning rates torch.optim.SGD took from the groups")


# --- progressive_unfreeze_schedule ------------------------------------------------------------------------------------


@check("progressive_unfreeze_schedule_matches_formula")
@given(num_stages=st.integers(0, 8), epochs=st.integers(1, 60), unfreeze_every=st.integers(1, 10))
def test_progressive_unfreeze_schedule_matches_formula(impl, num_stages, epochs, unfreeze_every):
    schedule = impl.progressive_unfreeze_schedule(num_stages, epochs, unfreeze_every)
    expected = [min(num_stages, epoch // unfreeze_every) for epoch in range(epochs)]
    if not isinstance(schedule, list) or any(isinstance(entry, bool) or not isinstance(entry, int) for entry in schedule):
        raise CheckFailure(f"progressive_unfreeze_schedule returned {type(schedule).__name__}, expected a list of ints")
    if schedule != expected:
        first = next((e for e, (got, want) in enumerate(zip(schedule, expected)) if got != want), min(len(schedule), len(expected)))
        raise CheckFailure(
            f"progressive_unfreeze_schedule({num_stages}, {epochs}, {unfreeze_every}) differs from min(num_stages, e // unfreeze_every) "
            f"from epoch {first} on: got {schedule[first : first + 5]}, expected {expected[first : first + 5]} (lengths {len(schedule)}, {epochs})"
        )


# --- linear_probe -----------------------------------------------------------------------------------------------------

PROBE_CASES = cases(  # separation: the spread of the cluster centres, in units of the clusters' own spread
    Case("3-classes-4-features", examples=60, features=4, classes=3, c=1.0, separation=1.0),
    Case("6-classes-24-features-c0.1", examples=240, features=24, classes=6, c=0.1, separation=1.0),
    Case("well-separated", examples=120, features=8, classes=4, c=1.0, separation=6.0),
    Case("overlapping", examples=200, features=16, classes=5, c=1.0, separation=0.5),
)


def _clusters(examples: int, features: int, classes: int, separation: float, seed: int) -> tuple[Tensor, Tensor]:
    """Gaussian clusters, one per class (every class present), float64."""
    generator = seeded_generator(seed)
    labels = torch.cat([torch.arange(classes), torch.randint(0, classes, (examples - classes,), generator=generator)])
    centres = torch.randn(classes, features, generator=generator, dtype=torch.float64) * separation
    return centres[labels] + torch.randn(examples, features, generator=generator, dtype=torch.float64), labels


@check("linear_probe_matches_sklearn")
@PROBE_CASES
@layouts
def test_linear_probe_matches_sklearn(impl, dtype, tolerance, layout, case):
    classes, size = case.classes, case.features
    features, labels = _clusters(case.examples, size, classes, case.separation, seed=case.examples + size)
    features = features.to(dtype)
    result = impl.linear_probe(in_layout(features, layout), in_layout(labels, layout), case.c)
    what = f"{case.name} ({layout} inputs)"
    if not isinstance(result, tuple) or len(result) != 2 or not all(isinstance(t, Tensor) for t in result):
        raise CheckFailure(f"{what}: linear_probe should return (weight, bias) tensors, got {type(result).__name__}")
    weight, bias = result
    if weight.shape != (classes, size) or bias.shape != (classes,) or weight.dtype != dtype or bias.dtype != dtype:
        got = f"{weight.dtype}{list(weight.shape)}, {bias.dtype}{list(bias.shape)}"
        raise CheckFailure(f"{what}: expected weight {dtype}[{classes}, {size}] and bias {dtype}[{classes}], got {got}")
    # the solver's own stopping tolerance (tol) makes the oracle converged; the comparison's tolerance is the spec's
    oracle = LogisticRegression(C=case.c, solver="newton-cholesky", tol=1e-10, max_iter=1000).fit(features.double().numpy(), labels.numpy())
    assert_close(weight, torch.from_numpy(oracle.coef_).to(dtype), tolerance, what=f"{what} weight")
    assert_close(bias, torch.from_numpy(oracle.intercept_).to(dtype), tolerance, what=f"{what} bias")


# --- input validation -------------------------------------------------------------------------------------------------

INVALID_CALLS = cases(
    Case("replace-head-of-a-sequential", error=TypeError, call=lambda impl: impl.replace_head(nn.Sequential(nn.Linear(3, 3)), 2)),
    Case("replace-head-zero-classes", error=ValueError, call=lambda impl: impl.replace_head(_fresh("shapes_net"), 0)),
    Case(
        "groups-of-a-sequential",
        error=TypeError,
        call=lambda impl: impl.discriminative_param_groups(nn.Sequential(nn.Linear(3, 3)), 0.1, 0.5),
    ),
    Case("groups-zero-base-lr", error=ValueError, call=lambda impl: impl.discriminative_param_groups(_prototype("shapes_net"), 0.0, 0.5)),
    Case("groups-zero-decay", error=ValueError, call=lambda impl: impl.discriminative_param_groups(_prototype("shapes_net"), 0.1, 0.0)),
    Case(
        "groups-decay-above-one", error=ValueError, call=lambda impl: impl.discriminative_param_groups(_prototype("shapes_net"), 0.1, 1.5)
    ),
    Case("schedule-negative-stages", error=ValueError, call=lambda impl: impl.progressive_unfreeze_schedule(-1, 10, 2)),
    Case("schedule-zero-epochs", error=ValueError, call=lambda impl: impl.progressive_unfreeze_schedule(4, 0, 2)),
    Case("schedule-zero-every", error=ValueError, call=lambda impl: impl.progressive_unfreeze_schedule(4, 10, 0)),
    Case(
        "probe-integer-features",
        error=TypeError,
        call=lambda impl: impl.linear_probe(torch.ones(6, 2, dtype=torch.int64), torch.arange(6) % 2),
    ),
    Case("probe-1d-features", error=ValueError, call=lambda impl: impl.linear_probe(torch.ones(6), torch.arange(6) % 2)),
    Case("probe-labels-length", error=ValueError, call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), torch.arange(5) % 2)),
    Case(
        "probe-class-without-examples",
        error=ValueError,
        call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), torch.tensor([0, 0, 2, 2, 0, 2])),
    ),
    Case("probe-zero-c", error=ValueError, call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), torch.arange(6) % 2, 0.0)),
    Case("probe-negative-c", error=ValueError, call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), torch.arange(6) % 2, -1.0)),
    Case(
        "probe-labels-as-a-list",
        error=(TypeError, ValueError),
        call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), [0, 1, 0, 1, 0, 1]),
    ),
    Case(
        "probe-2d-labels", error=ValueError, call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), (torch.arange(6) % 2).view(6, 1))
    ),
    Case("replace-head-negative-classes", error=ValueError, call=lambda impl: impl.replace_head(_fresh("resnet18"), -3)),
    Case("replace-head-bool-classes", error=ValueError, call=lambda impl: impl.replace_head(_fresh("shapes_net"), True)),
    Case("probe-no-examples", error=ValueError, call=lambda impl: impl.linear_probe(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64))),
    Case(
        "probe-negative-label",
        error=ValueError,
        call=lambda impl: impl.linear_probe(seeded_randn((6, 2), 0), torch.tensor([0, 1, -1, 0, 1, 0])),
    ),
    Case(
        "groups-of-a-resnet-negative-decay",
        error=ValueError,
        call=lambda impl: impl.discriminative_param_groups(_prototype("resnet18"), 0.1, -0.5),
    ),
    Case(
        "groups-negative-base-lr", error=ValueError, call=lambda impl: impl.discriminative_param_groups(_prototype("shapes_net"), -0.1, 0.5)
    ),
)


@check("invalid_inputs_raise_clear_errors")
@INVALID_CALLS
def test_invalid_inputs_raise_clear_errors(impl, case):
    assert_raises(case.error, lambda: case.call(impl), case.name)


# --- the metric task --------------------------------------------------------------------------------------------------
