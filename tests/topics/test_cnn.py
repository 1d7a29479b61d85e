"""Graded tests of topic 03 `cnn` (specs/03_cnn.yaml): LeNet-5, batch normalisation, VGG and ResNet blocks, ResNet-18.

Oracles: nn.Sequential LeNet-5 written here, torch.nn.BatchNorm2d, torchvision's ResNet blocks and resnet18, and
``Module.parameters``. Every oracle check also runs on non-contiguous inputs. Tolerances, thresholds and points come
from the spec.
"""

import pytest
import torch
import torchvision
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torchvision.models.resnet import conv1x1

from harness.testing import (
    Case,
    CheckFailure,
    ForbiddenCall,
    assert_close,
    assert_raises,
    cases,
    check,
    functional_call,
    gradcheck_or_fail,
    gradients,
    in_layout,
    layouts,
    seeded_generator,
    seeded_init,
    seeded_rand,
    seeded_randn,
    strategies,
)

# LeNet-5 as TOPICS.md defines it (tanh, parameter-free average pooling, biases everywhere) has, for 10 classes,
# 156 + 2,416 (conv1, conv2) + 48,120 + 10,164 + 850 (fc1, fc2, fc3) = 61,706 parameters: a fact of the contract,
# used to keep the test's own nn.Sequential oracle honest.
LENET5_PARAMETERS = 61_706

TORCHVISION_RESNET_CLASSES = (torchvision.models.resnet.ResNet, torchvision.models.resnet.BasicBlock, torchvision.models.resnet.Bottleneck)


# --- helpers ----------------------------------------------------------------------------------------------------------


def _oracle_lenet5(num_classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),  # (N, 6, 14, 14)
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),  # (N, 16, 5, 5)
        nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, num_classes),
    )  # fmt: skip


def _layout(state: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {key: (tuple(value.shape), value.dtype) for key, value in state.items()}


def _assert_same_layout(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    """Same state-dict keys, shapes and dtypes, or a CheckFailure naming the differences."""
    got, want = _layout(actual), _layout(expected)
    if got == want:
        return
    missing = [key for key in want if key not in got]
    unexpected = [key for key in got if key not in want]
    differing = [key for key in want if key in got and got[key] != want[key]]
    parts = []
    if missing:
        parts.append(f"missing keys {missing[:6]}")
    if unexpected:
        parts.append(f"unexpected keys {unexpected[:6]}")
    for key in differing[:4]:
        parts.append(f"{key} is {got[key][0]} {got[key][1]}, expected {want[key][0]} {want[key][1]}")
    numbers = {"missing": len(missing), "unexpected": len(unexpected), "differing": len(differing), "expected_keys": len(want)}
    raise CheckFailure(f"{what}: not the oracle's layout: " + "; ".join(parts), numbers)


def _load_checked(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into the implementation's module after checking it has the same layout."""
    _assert_same_layout(module.state_dict(), state, what)
    module.load_state_dict(state)


def _load_affine(batch_norm: nn.Module, oracle: nn.BatchNorm2d) -> None:
    """Copy the oracle's weight and bias into the implementation's BatchNorm2d (parameters named as in the spec)."""
    affine = {key: value for key, value in oracle.state_dict().items() if key in ("weight", "bias")}
    _, unexpected = batch_norm.load_state_dict(affine, strict=False)
    if unexpected:
        raise CheckFailure(f"BatchNorm2d has no parameters {unexpected}; the spec names them weight and bias")


def _randomize_batchnorm(module: nn.Module, seed: int) -> nn.Module:
    """Give every nn.BatchNorm2d in ``module`` random running statistics and affine parameters (in place)."""
    generator = seeded_generator(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):
                size = layer.num_features
                layer.running_mean.copy_(0.2 * torch.randn(size, generator=generator))
                layer.running_var.copy_(0.5 + 1.5 * torch.rand(size, generator=generator))
                if layer.affine:
                    layer.weight.copy_(0.5 + torch.rand(size, generator=generator))
                    layer.bias.copy_(0.2 * torch.randn(size, generator=generator))
    return module


def _input_and_parameter_gradients(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor, what: str) -> dict[str, torch.Tensor | None]:
    """d(sum(module(x) * upstream)) with respect to x ("input") and to each named parameter of the module."""
    names = [name for name, _ in module.named_parameters()]

    def forward(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return functional_call(module, dict(zip(names, values)), (x,))

    found = gradients(forward, (x, *(parameter for _, parameter in module.named_parameters())), upstream, what)
    return {"input": found[0], **dict(zip(names, found[1:]))}


def _refuse_torchvision_resnet(model: nn.Module, what: str) -> None:
    """The interfaces must be built from scratch: no module of torchvision's ResNet classes (or subclasses) inside."""
    borrowed = sorted({type(layer).__name__ for layer in model.modules() if isinstance(layer, TORCHVISION_RESNET_CLASSES)})
    if borrowed:
        raise ForbiddenCall(f"forbidden call: {what} contains torchvision.models.resnet classes {borrowed}, which the spec forbids")


def _torchvision_block(block_class: type, in_channels: int, channels: int, stride: int, seed: int) -> nn.Module:
    """torchvision's block with the downsample torchvision.models.resnet.ResNet._make_layer would give it."""
    out_channels = channels * block_class.expansion
    with seeded_init(seed):
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
        block = block_class(in_channels, channels, stride, downsample)
    return _randomize_batchnorm(block, seed + 1)


def _assert_block_matches(block: nn.Module, oracle: nn.Module, case: Case, mode: str, dtype, tolerance, layout: str, what: str) -> None:
    _refuse_torchvision_resnet(block, what)
    _load_checked(block, oracle.state_dict(), f"{what} state dict")
    block.to(dtype).train(mode == "train")
    oracle.to(dtype).train(mode == "train")
    x = in_layout(seeded_randn((2, case.in_channels, 7, 5), 7, dtype), layout)  # odd, non-square: stride 2 gives 4x3
    with torch.no_grad():
        assert_close(block(x), oracle(x), tolerance, what=f"{what} output ({mode} mode, {layout} input)")


def _assert_computes_per_image(model: nn.Module, images: torch.Tensor, shape: tuple[int, ...], tolerance, what: str) -> None:
    """The anchor of the structure checks: in eval mode the batch's output has ``shape``, each image gets the output it
    gets alone, and two different images different outputs (a constant map fails the last, one adding noise the second)."""
    model.eval()
    with torch.no_grad():
        together = model(images)
    assert tuple(together.shape) == shape, f"{what} on images {tuple(images.shape)}: output {tuple(together.shape)}, expected {shape}"
    with torch.no_grad():
        alone = torch.cat([model(images[i : i + 1]) for i in range(len(images))])
    assert_close(together, alone, tolerance, what=f"{what}: outputs for a batch vs for each of its images alone (eval mode)")
    if torch.equal(together[0], together[1]):
        raise CheckFailure(f"{what} gives two different images the same output (eval mode): it does not compute from its input")


# --- LeNet-5 ----------------------------------------------------------------------------------------------------------


@check("lenet5_parameter_count")
@pytest.mark.parametrize("num_classes", [10, 5], ids=["10_classes", "5_classes"])
def test_lenet5_parameter_count(impl, tolerance, num_classes):
    oracle = _oracle_lenet5(num_classes)
    expected_shapes = [tuple(p.shape) for p in oracle.parameters()]
    expected = sum(p.numel() for p in oracle.parameters())
    if num_classes == 10 and expected != LENET5_PARAMETERS:
        raise RuntimeError(f"the test's LeNet-5 oracle has {expected} parameters, not {LENET5_PARAMETERS}")  # a test bug
    model = impl.LeNet5(num_classes)
    shapes = [tuple(p.shape) for p in model.parameters()]
    total = sum(p.numel() for p in model.parameters())
    if total != expected or shapes != expected_shapes:
        raise CheckFailure(
            f"LeNet5(num_classes={num_classes}) has {total:,} parameters in tensors {shapes}; "
            f"LeNet-5 has {expected:,} in {expected_shapes}",
            {"parameters": total, "expected": expected},
        )
    _assert_computes_per_image(model, seeded_rand((3, 1, 32, 32), 3), (3, num_classes), tolerance, f"LeNet5(num_classes={num_classes})")


@check("lenet5_output_shape")
@given(batch=st.integers(1, 8), num_classes=st.integers(2, 12), seed=strategies.seeds)
def test_lenet5_output_shape(impl, tolerance, batch, num_classes, seed):
    model = impl.LeNet5(num_classes)
    images = seeded_rand((batch, 1, 32, 32), seed)
    with torch.no_grad():
        logits = model(images)
    assert isinstance(logits, torch.Tensor), f"LeNet5 returned {type(logits).__name__}, expected a tensor of logits"
    expected_shape = (batch, num_classes)
    what = f"LeNet5({num_classes}) on {batch} images"
    assert tuple(logits.shape) == expected_shape, f"{what}: logits of shape {tuple(logits.shape)}, expected {expected_shape}"
    assert logits.dtype == torch.float32, f"LeNet5 logits have dtype {logits.dtype}, expected float32 like its input"
    assert torch.isfinite(logits).all(), "LeNet5 returned non-finite logits for images in [0, 1]"
    if batch >= 2:
        _assert_computes_per_image(model, images, expected_shape, tolerance, what)


@check("lenet5_matches_sequential")
@layouts
def test_lenet5_matches_sequential(impl, dtype, tolerance, layout):
    with seeded_init(0):
        oracle = _oracle_lenet5(10).to(dtype)
    model = impl.LeNet5(10).to(dtype)
    keys, values = list(model.state_dict()), list(oracle.state_dict().values())
    shapes = [tuple(value.shape) for value in model.state_dict().values()]
    expected_shapes = [tuple(value.shape) for value in values]
    if shapes != expected_shapes:
        raise CheckFailure(f"LeNet5 state tensors {shapes} in registration order, expected {expected_shapes} (conv1, conv2, fc1, fc2, fc3)")
    model.load_state_dict(dict(zip(keys, values)))
    model.eval()
    images = in_layout(seeded_rand((4, 1, 32, 32), 1, dtype), layout)
    with torch.no_grad():
        assert_close(model(images), oracle(images), tolerance, what=f"LeNet5 logits ({layout} images)")


LENET_BAD_SHAPES = cases(
    Case("28x28_images", shape=(2, 1, 28, 28)),
    Case("64x64_images", shape=(2, 1, 64, 64)),
    Case("non_square_32x36", shape=(2, 1, 32, 36)),
    Case("three_channels", shape=(2, 3, 32, 32)),
    Case("unbatched", shape=(1, 32, 32)),
    Case("five_dims", shape=(2, 1, 1, 32, 32)),
)


@check("lenet5_rejects_other_shapes")
@LENET_BAD_SHAPES
def test_lenet5_rejects_other_shapes(impl, case):
    model = impl.LeNet5(10)
    images = seeded_rand(case.shape, 2)
    with torch.no_grad():
        assert_raises(ValueError, lambda: model(images), f"LeNet5 on an input of shape {case.shape}")


# --- BatchNorm2d ------------------------------------------------------------------------------------------------------


BATCH_SHAPES = cases(
    Case("batch_of_4", shape=(4, 3, 5, 7)),
    Case("single_image", shape=(1, 2, 3, 4)),
    Case("eps_0.1", shape=(3, 4, 2, 6), eps=0.1),  # (x - mean) / (std + eps) is far off here
)


@check("batchnorm2d_train_matches_torch")
@BATCH_SHAPES
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@layouts
def test_batchnorm2d_train_matches_torch(impl, dtype, tolerance, layout, affine, case):
    channels, eps = case.shape[1], case.get("eps", 1e-5)
    oracle = nn.BatchNorm2d(channels, eps=eps, affine=affine).to(dtype)
    if affine:
        _randomize_batchnorm(oracle, seed=3)
    batch_norm = impl.BatchNorm2d(channels, eps=eps, affine=affine).to(dtype)
    _load_affine(batch_norm, oracle)
    x = in_layout(seeded_randn(case.shape, 4, dtype, scale=0.5) + 0.5, layout)  # variances near 0.25: eps matters
    assert_close(batch_norm(x), oracle(x), tolerance, what=f"BatchNorm2d output (train mode, eps {eps:g}, {layout} input)")


@check("batchnorm2d_running_stats_match_torch")
@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.5, 1.0], ids=lambda momentum: f"momentum_{momentum}")
def test_batchnorm2d_running_stats_match_torch(impl, dtype, tolerance, momentum):
    for affine in (True, False):
        what = f"BatchNorm2d(3, affine={affine}).to({str(dtype).removeprefix('torch.')}) state dict"
        _assert_same_layout(
            impl.BatchNorm2d(3, affine=affine).to(dtype).state_dict(), nn.BatchNorm2d(3, affine=affine).to(dtype).state_dict(), what
        )
    oracle = nn.BatchNorm2d(3, momentum=momentum).to(dtype)
    batch_norm = impl.BatchNorm2d(3, momentum=momentum).to(dtype)
    for step in range(3):
        x = seeded_randn((4, 3, 5, 6), 10 + step, dtype, scale=1 + step) + 2 * step - 1  # a different mean and spread each step
        what = f"BatchNorm2d output in train step {step + 1} (momentum {momentum})"
        assert_close(batch_norm(x).detach(), oracle(x).detach(), tolerance, what=what)
        state, expected = batch_norm.state_dict(), oracle.state_dict()
        for key in ("running_mean", "running_var"):
            assert_close(state[key], expected[key], tolerance, what=f"BatchNorm2d {key} after train step {step + 1} (momentum {momentum})")
        count = int(state["num_batches_tracked"])
        assert count == step + 1, f"BatchNorm2d num_batches_tracked is {count} after train step {step + 1}, expected {step + 1}"


EVAL_SETTINGS = cases(Case("defaults", arguments={}), Case("eps_0.1_momentum_0.3", arguments={"eps": 0.1, "momentum": 0.3}))


@check("batchnorm2d_eval_matches_torch")
@EVAL_SETTINGS
@layouts
def test_batchnorm2d_eval_matches_torch(impl, dtype, tolerance, layout, case):
    oracle = _randomize_batchnorm(nn.BatchNorm2d(3, **case.arguments), seed=20).to(dtype)
    oracle.reset_running_stats()
    batch_norm = impl.BatchNorm2d(3, **case.arguments).to(dtype)
    _load_affine(batch_norm, oracle)
    for step in range(3):
        x = seeded_randn((4, 3, 5, 6), 21 + step, dtype, scale=0.5 + step) + 2
        batch_norm(x)
        oracle(x)
    batch_norm.eval()
    oracle.eval()
    before = {key: value.clone() for key, value in batch_norm.state_dict().items()}
    x = in_layout(seeded_randn((2, 3, 4, 3), 30, dtype), layout)  # mean 0, variance 1: far from the running statistics
    with torch.no_grad():
        what = f"BatchNorm2d output (eval mode, {case.name}, after 3 train steps, {layout} input)"
        assert_close(batch_norm(x), oracle(x), tolerance, what=what)
    for key, value in batch_norm.state_dict().items():
        if not torch.equal(value, before[key]):
            raise CheckFailure(f"BatchNorm2d changed {key} in eval mode; eval mode must leave the running statistics as they are")


@check("batchnorm2d_gradients_match_torch")
def test_batchnorm2d_gradients_match_torch(impl, dtype, tolerance):
    oracle = _randomize_batchnorm(nn.BatchNorm2d(3), seed=40).to(dtype)
    batch_norm = impl.BatchNorm2d(3).to(dtype)
    _load_affine(batch_norm, oracle)
    x = seeded_randn((4, 3, 3, 3), 41, dtype, scale=2) - 1
    upstream = seeded_randn((4, 3, 3, 3), 42, dtype)
    got = _input_and_parameter_gradients(batch_norm, x, upstream, "BatchNorm2d (train mode)")
    expected = _input_and_parameter_gradients(oracle, x, upstream, "nn.BatchNorm2d")
    if set(got) != set(expected):
        raise CheckFailure(f"BatchNorm2d has gradients for {sorted(got)}, expected {sorted(expected)}")
    for name, gradient in expected.items():
        if got[name] is None:
            raise CheckFailure(f"BatchNorm2d output does not depend on {name}: no gradient flows to it")
        assert_close(got[name], gradient, tolerance, what=f"BatchNorm2d gradient of {name} (train mode)")


@check("batchnorm2d_gradcheck")
@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed_0", "seed_1", "seed_2"])
def test_batchnorm2d_gradcheck(impl, dtype, tolerance, seed):
    batch_norm = impl.BatchNorm2d(3).to(dtype)
    x = seeded_randn((2, 3, 2, 2), seed, dtype).requires_grad_(True)
    weight = (1 + seeded_randn((3,), seed + 100, dtype, scale=0.5)).requires_grad_(True)
    bias = seeded_randn((3,), seed + 200, dtype).requires_grad_(True)

    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return functional_call(batch_norm, {"weight": weight, "bias": bias}, (x,))

    with torch.no_grad():  # the anchor: a gradient check alone passes a map that returns zeros
        expected = torch.nn.functional.batch_norm(x, None, None, weight, bias, training=True)
        assert_close(forward(x, weight, bias), expected, tolerance, what="BatchNorm2d train-mode output (before the gradient check)")
    what = f"BatchNorm2d gradcheck ({str(dtype).removeprefix('torch.')}, train mode, inputs x, weight, bias)"
    gradcheck_or_fail(forward, (x, weight, bias), tolerance, what)


@check("batchnorm2d_train_normalizes_channels")
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(2, 6), st.integers(2, 6)),
    seed=strategies.seeds,
    scale=st.floats(0.5, 10),
    shift=st.floats(-10, 10),
    eps=st.sampled_from([1e-5, 1e-1]),
)
def test_batchnorm2d_train_normalizes_channels(impl, dtype, tolerance, shape, seed, scale, shift, eps):
    x = seeded_randn(shape, seed, dtype, scale=scale) + shift
    input_variance = x.double().var(dim=(0, 2, 3), correction=0)  # (C,)
    assume(bool((input_variance > 0.05 * scale**2).all()))  # a nearly constant channel says little about normalising
    output = impl.BatchNorm2d(shape[1], eps=eps).to(dtype)(x).detach().double()
    mean = output.mean(dim=(0, 2, 3))
    variance = output.var(dim=(0, 2, 3), correction=0)
    assert_close(mean, torch.zeros_like(mean), tolerance, what=f"per-channel mean of the train-mode output (eps {eps:g})")
    expected_variance = input_variance / (input_variance + eps)
    assert_close(variance, expected_variance, tolerance, what=f"per-channel variance of the train-mode output (eps {eps:g})")


BATCHNORM_BAD_INPUTS = cases(
    Case("three_dims", shape=(4, 3, 5)),
    Case("four_channels", shape=(2, 4, 3, 3)),
    Case("one_value_per_channel_in_train", shape=(1, 3, 1, 1)),
)


@check("batchnorm2d_rejects_invalid_input")
@BATCHNORM_BAD_INPUTS
def test_batchnorm2d_rejects_invalid_input(impl, dtype, tolerance, case):
    x = seeded_randn(case.shape, 90, dtype)
    assert_raises(ValueError, lambda: impl.BatchNorm2d(3).to(dtype)(x), f"BatchNorm2d(3) in train mode on an input of shape {case.shape}")
    # Eval mode normalises with the running statistics: a single value per channel is a valid input there.
    oracle = _randomize_batchnorm(nn.BatchNorm2d(3), seed=91).to(dtype).eval()
    batch_norm = impl.BatchNorm2d(3).to(dtype).eval()
    _load_checked(batch_norm, oracle.state_dict(), "BatchNorm2d state dict")
    single = seeded_randn((1, 3, 1, 1), 92, dtype)
    with torch.no_grad():
        try:
            output = batch_norm(single)
        except ValueError as error:
            raise CheckFailure(f"BatchNorm2d in eval mode rejected one value per channel ({error}); only train mode needs two") from error
        assert_close(output, oracle(single), tolerance, what="BatchNorm2d in eval mode on one value per channel")
    for arguments in ({"num_features": 0}, {"eps": 0.0}, {"eps": -1e-5}, {"momentum": -0.1}, {"momentum": 1.5}):
        assert_raises(
            ValueError, lambda arguments=arguments: impl.BatchNorm2d(**{"num_features": 3, **arguments}), f"BatchNorm2d({arguments})"
        )
    # Two values per channel are enough in train mode (the boundary): a variance exists.
    pair = seeded_randn((2, 3, 1, 1), 93, dtype)
    try:
        output = impl.BatchNorm2d(3).to(dtype)(pair)
    except ValueError as error:
        raise CheckFailure(f"BatchNorm2d in train mode rejected two values per channel ({error}); only one is too few") from error
    assert_close(output, nn.BatchNorm2d(3).to(dtype)(pair), tolerance, what="BatchNorm2d in train mode on two values per channel")


# --- VGG and ResNet blocks --------------------------------------------------------------------------------------------


@check("vggblock_shapes_and_parameters")
@given(
    batch=st.integers(1, 2),
    in_channels=st.integers(1, 4),
    out_channels=st.integers(1, 6),
    num_convs=st.integers(1, 3),
    height=st.integers(2, 12),
    width=st.integers(2, 12),
    seed=strategies.seeds,
)
def test_vggblock_shapes_and_parameters(impl, tolerance, batch, in_channels, out_channels, num_convs, height, width, seed):
    assert_raises(ValueError, lambda: impl.VGGBlock(in_channels, out_channels, 0), f"VGGBlock({in_channels}, {out_channels}, num_convs=0)")
    block = impl.VGGBlock(in_channels, out_channels, num_convs)
    expected_parameters = sum((c_in * 9 + 1) * out_channels for c_in in [in_channels] + [out_channels] * (num_convs - 1))
    parameters = sum(p.numel() for p in block.parameters())
    what = f"VGGBlock({in_channels}, {out_channels}, num_convs={num_convs})"
    if parameters != expected_parameters:
        raise CheckFailure(f"{what} has {parameters} parameters, expected {expected_parameters} (3x3 convolutions with bias)")
    with torch.no_grad():
        output = block(seeded_randn((batch, in_channels, height, width), seed))
    expected_shape = (batch, out_channels, height // 2, width // 2)
    assert tuple(output.shape) == expected_shape, f"{what} on {height}x{width}: output {tuple(output.shape)}, expected {expected_shape}"
    assert output.dtype == torch.float32, f"{what} output dtype {output.dtype}, expected float32"
    assert (output >= 0).all(), f"{what} output has negative values (min {output.min().item():.3g}); ReLU comes before the max-pool"
    with seeded_init(82):  # four channels at a fixed initialisation: ReLU cannot zero every output (it can with one)
        wide = impl.VGGBlock(in_channels, 4, num_convs)
    images = seeded_randn((2, in_channels, 4, 6), seed + 1)
    _assert_computes_per_image(wide, images, (2, 4, 2, 3), tolerance, f"VGGBlock({in_channels}, 4, num_convs={num_convs})")


VGG_CASES = cases(
    Case("one_conv_7x10", in_channels=3, out_channels=4, num_convs=1, size=(7, 10)),
    Case("two_convs_8x6", in_channels=2, out_channels=5, num_convs=2, size=(8, 6)),
    Case("three_convs_9x5", in_channels=4, out_channels=3, num_convs=3, size=(9, 5)),
)


def _oracle_vgg_block(in_channels: int, out_channels: int, num_convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index in range(num_convs):
        layers += [nn.Conv2d(in_channels if index == 0 else out_channels, out_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2, stride=2))


@check("vggblock_matches_sequential")
@VGG_CASES
@layouts
def test_vggblock_matches_sequential(impl, dtype, tolerance, layout, case):
    with seeded_init(80):
        oracle = _oracle_vgg_block(case.in_channels, case.out_channels, case.num_convs).to(dtype)
    block = impl.VGGBlock(case.in_channels, case.out_channels, case.num_convs).to(dtype)
    keys, values = list(block.state_dict()), list(oracle.state_dict().values())
    shapes, expected_shapes = [tuple(value.shape) for value in block.state_dict().values()], [tuple(value.shape) for value in values]
    if shapes != expected_shapes:
        raise CheckFailure(f"VGGBlock state tensors {shapes} in registration order, expected {expected_shapes} (each conv's weight, bias)")
    block.load_state_dict(dict(zip(keys, values)))
    x = in_layout(seeded_randn((2, case.in_channels, *case.size), 81, dtype), layout)
    with torch.no_grad():
        what = f"VGGBlock({case.in_channels}, {case.out_channels}, num_convs={case.num_convs}) on {case.size[0]}x{case.size[1]} ({layout} input)"
        assert_close(block(x), oracle(x), tolerance, what=what)


BLOCK_MODES = pytest.mark.parametrize("mode", ["eval", "train"])
BASIC_BLOCK_CASES = cases(
    Case("identity", in_channels=8, channels=8, stride=1),
    Case("strided_projection", in_channels=8, channels=16, stride=2),
    Case("projection", in_channels=8, channels=16, stride=1),
    Case("one_input_channel", in_channels=1, channels=4, stride=2),  # a grey image straight into a block
)
BOTTLENECK_CASES = cases(
    Case("identity", in_channels=16, channels=4, stride=1),  # 4 * 4 = 16 output channels
    Case("projection", in_channels=8, channels=4, stride=1),
    Case("strided_projection", in_channels=16, channels=8, stride=2),
    Case("width_1", in_channels=4, channels=1, stride=1),  # a 1-channel 3x3 stage, identity (4 = 4 * 1)
)


@check("basicblock_matches_torchvision")
@BLOCK_MODES
@BASIC_BLOCK_CASES
@layouts
def test_basicblock_matches_torchvision(impl, dtype, tolerance, layout, case, mode):
    oracle = _torchvision_block(torchvision.models.resnet.BasicBlock, case.in_channels, case.channels, case.stride, seed=50)
    block = impl.BasicBlock(case.in_channels, case.channels, case.stride)
    what = f"BasicBlock({case.in_channels}, {case.channels}, stride={case.stride})"
    _assert_block_matches(block, oracle, case, mode, dtype, tolerance, layout, what)


@check("bottleneck_matches_torchvision")
@BLOCK_MODES
@BOTTLENECK_CASES
@layouts
def test_bottleneck_matches_torchvision(impl, dtype, tolerance, layout, case, mode):
    oracle = _torchvision_block(torchvision.models.resnet.Bottleneck, case.in_channels, case.channels, case.stride, seed=60)
    block = impl.Bottleneck(case.in_channels, case.channels, case.stride)
    what = f"Bottleneck({case.in_channels}, {case.channels}, stride={case.stride})"
    _assert_block_matches(block, oracle, case, mode, dtype, tolerance, layout, what)


# --- ResNet-18 --------------------------------------------------------------------------------------------------------


@check("resnet18_state_dict_matches_torchvision")
@pytest.mark.parametrize("num_classes", [1000, 10], ids=["1000_classes", "10_classes"])
def test_resnet18_state_dict_matches_torchvision(impl, tolerance, num_classes):
    with torch.device("meta"):  # keys, shapes and dtypes only: no memory, no initialisation cost
        oracle = torchvision.models.resnet18(num_classes=num_classes)
    model = impl.resnet18(num_classes)
    _refuse_torchvision_resnet(model, "resnet18")
    _assert_same_layout(model.state_dict(), oracle.state_dict(), f"resnet18(num_classes={num_classes}) state dict")
    _assert_computes_per_image(model, seeded_rand((2, 3, 32, 32), 4), (2, num_classes), tolerance, f"resnet18(num_classes={num_classes})")


@check("resnet18_logits_match_torchvision")
@layouts
def test_resnet18_logits_match_torchvision(impl, dtype, tolerance, layout):
    with seeded_init(70):
        oracle = torchvision.models.resnet18()
    _randomize_batchnorm(oracle, seed=71)
    model = impl.resnet18(1000)
    _refuse_torchvision_resnet(model, "resnet18")
    _load_checked(model, oracle.state_dict(), "resnet18 state dict")
    model.to(dtype).eval()
    oracle.to(dtype).eval()
    images = in_layout(seeded_randn((2, 3, 64, 96), 72, dtype), layout)  # the last feature map is 2x3
    with torch.no_grad():
        assert_close(model(images), oracle(images), tolerance, what=f"resnet18 logits (eval mode, {layout} images)")


# --- count_parameters -------------------------------------------------------------------------------------------------


def _partly_frozen() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Conv2d(2, 5, 3))
    model[2].requires_grad_(False)
    model[3].weight.requires_grad_(False)  # its bias stays trainable
    return model


def _shared_weights() -> nn.Module:
    shared = nn.Linear(5, 5)
    return nn.Sequential(shared, nn.Tanh(), shared, nn.Linear(5, 2))  # `shared` is one set of parameters


COUNT_CASES = cases(
    Case("conv_and_batchnorm", build=lambda: nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())),  # buffers are not parameters
    Case("partly_frozen", build=_partly_frozen),
    Case("shared_weights", build=_shared_weights),
    Case("all_frozen", build=lambda: nn.Linear(6, 3).requires_grad_(False)),
    Case("no_parameters", build=lambda: nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))),
    Case("list_of_parameters", build=lambda: list(nn.Linear(3, 2).parameters()), raises=TypeError),  # not an nn.Module
)


@check("count_parameters_matches_torch")
@pytest.mark.parametrize("trainable_only", [True, False], ids=["trainable_only", "all_parameters"])
@COUNT_CASES
def test_count_parameters_matches_torch(impl, case, trainable_only):
    model = case.build()
    if case.get("raises"):
        assert_raises(case.raises, lambda: impl.count_parameters(model, trainable_only=trainable_only), f"count_parameters({case.name})")
        return
    expected = sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    count = impl.count_parameters(model, trainable_only=trainable_only)
    if not isinstance(count, int) or isinstance(count, bool):
        raise CheckFailure(f"count_parameters returned {type(count).__name__}, expected an int")
    if count != expected:
        message = f"count_parameters({case.name}, trainable_only={trainable_only}) = {count}, expected {expected}"
        raise CheckFailure(message, {"count": count, "expected": expected})


# --- the metric task --------------------------------------------------------------------------------------------------
