"""Graded tests of topic 04 `classification` (specs/04_classification.yaml): softmax and cross-entropy, augmentation,
confusion matrix and per-class report, expected calibration error, temperature scaling, and a trained classifier.

Oracles: torch.softmax / log_softmax, F.cross_entropy, scikit-learn's confusion_matrix and
precision_recall_fscore_support, torchmetrics' MulticlassCalibrationError, scipy.optimize.minimize_scalar.
Every check of an interface that takes tensors also runs on non-contiguous inputs. Tolerances, thresholds and points
come from the spec.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from harness.testing import (
    Case,
    CheckFailure,
    assert_close,
    assert_raises,
    cases,
    check,
    gradients,
    in_layout,
    layouts,
    seeded_generator,
    seeded_rand,
    seeded_randn,
    strategies,
)

LARGE_LOGIT = 1e4  # the stability scale of the spec: exp(1e4) overflows every float dtype


# --- helpers ----------------------------------------------------------------------------------------------------------


def _soft_targets(count: int, num_classes: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
    """Probability rows: random (normalised exponentials of uniforms cubed), the last two rows one-hot."""
    raw = seeded_rand((count, num_classes), seed, torch.float64) ** 3
    rows = raw / raw.sum(dim=1, keepdim=True)
    rows[-2:] = F.one_hot(torch.tensor([0, num_classes - 1]), num_classes).double()
    return rows.to(dtype)


def _nll(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(F.cross_entropy(logits.double(), target))


def _ece_oracle(probs: torch.Tensor, target: torch.Tensor, n_bins: int = 15) -> float:
    from torchmetrics.classification import MulticlassCalibrationError

    metric = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=n_bins, norm="l1")
    return float(metric(probs, target))


def _miscalibrated(scale: float, seed: int, count: int = 3000, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``scale * z`` of a model whose calibrated logits are ``z``: labels are drawn from ``softmax(z)``."""
    generator = seeded_generator(seed)
    z = 2.0 * torch.randn(count, num_classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=generator).squeeze(1)
    return scale * z, labels


# --- softmax, log_softmax, cross-entropy ------------------------------------------------------------------------------


SOFTMAX_CASES = cases(
    Case("scale_1_last_dim", shape=(5, 7), scale=1.0, dim=-1),
    Case("scale_30_last_dim", shape=(5, 7), scale=30.0, dim=-1),
    Case("scale_1_first_dim", shape=(5, 7), scale=1.0, dim=0),
    Case("scale_30_nchw_class_dim", shape=(2, 5, 3, 4), scale=30.0, dim=1),  # per-pixel class scores, as in segmentation
    Case("scale_1_nchw_dim_-3", shape=(2, 5, 3, 4), scale=1.0, dim=-3),
    Case("scale_1_middle_of_3d", shape=(3, 6, 4), scale=1.0, dim=-2),
    Case("vector", shape=(9,), scale=3.0, dim=0),
    Case("default_dim", shape=(4, 6, 5), scale=1.0, dim=None),  # the argument left out: the last dimension
    Case("scale_1e4", shape=(5, 7), scale=LARGE_LOGIT, dim=-1),  # +-1e4-sized gaps, exp of which overflows every float dtype
    Case("scale_1e4_first_dim", shape=(7, 5), scale=LARGE_LOGIT, dim=0),
)
EXTREME_SLICE = [LARGE_LOGIT, -LARGE_LOGIT, LARGE_LOGIT, 0, 0, -LARGE_LOGIT, 1]  # one slice along dim, in every 1e4 case


def _assert_matches_torch(function, oracle, tolerance, dtype, case: Case, layout: str) -> None:
    logits = seeded_randn(case.shape, 1, dtype, scale=case.scale)
    dim = -1 if case.dim is None else case.dim
    if case.scale == LARGE_LOGIT:
        logits.movedim(dim, -1)[(0,) * (logits.dim() - 1)] = torch.tensor(EXTREME_SLICE, dtype=dtype)
    arguments = {} if case.dim is None else {"dim": case.dim}
    got = function(in_layout(logits, layout), **arguments)
    if not isinstance(got, torch.Tensor) or not torch.isfinite(got).all():
        raise CheckFailure(f"{function.__name__} returned non-finite values for logits of scale {case.scale:g}: subtract the maximum first")
    what = f"{function.__name__} ({case.name}, dim {case.dim}, {str(dtype)[6:]}, {layout} logits)"
    assert_close(got, oracle(logits, dim=dim), tolerance, what=what)


@check("softmax_matches_torch")
@SOFTMAX_CASES
@layouts
def test_softmax_matches_torch(impl, dtype, tolerance, layout, case):
    _assert_matches_torch(impl.softmax, torch.softmax, tolerance, dtype, case, layout)


@check("log_softmax_matches_torch")
@SOFTMAX_CASES
@layouts
def test_log_softmax_matches_torch(impl, dtype, tolerance, layout, case):
    _assert_matches_torch(impl.log_softmax, torch.log_softmax, tolerance, dtype, case, layout)


INVALID_SOFTMAX_INPUTS = cases(
    Case("int64_logits", logits=torch.arange(6).reshape(2, 3), dim=-1, error=TypeError),
    Case("dim_2_of_a_matrix", logits=seeded_randn((2, 3), 0), dim=2, error=ValueError),
    Case("dim_3_of_a_matrix", logits=seeded_randn((2, 3), 0), dim=3, error=ValueError),
    Case("dim_-3_of_a_matrix", logits=seeded_randn((2, 3), 0), dim=-3, error=ValueError),
    Case("0_dimensional", logits=torch.tensor(1.5), dim=-1, error=ValueError),
)


@check("softmax_rejects_invalid_input")
@INVALID_SOFTMAX_INPUTS
@pytest.mark.parametrize("function", ["softmax", "log_softmax"])
def test_softmax_rejects_invalid_input(impl, case, function):
    shape = tuple(case.logits.shape)
    what = f"{function}({case.logits.dtype} logits of shape {shape}, dim={case.dim})"
    assert_raises(case.error, lambda: getattr(impl, function)(case.logits, dim=case.dim), what)


def _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, what) -> None:
    arguments = {} if smoothing is None else {"label_smoothing": smoothing}  # None: the argument left at its default
    loss = impl.cross_entropy(in_layout(logits, layout), in_layout(target, layout), **arguments)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailure(f"cross_entropy returned {type(loss).__name__} {getattr(loss, 'shape', '')}; expected a 0-dimensional tensor")
    if not torch.isfinite(loss):
        raise CheckFailure(f"cross_entropy is {float(loss)} ({what}): it must stay finite at |logit| = 1e4")
    expected = F.cross_entropy(logits, target, label_smoothing=smoothing or 0.0)
    assert_close(loss, expected, tolerance, what=f"cross_entropy ({what}, {layout} inputs)")


@check("cross_entropy_hard_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [None, 0.0, 0.1, 1.0], ids=["default_smoothing", "no_smoothing", "smoothing_0.1", "smoothing_1"])
@layouts
def test_cross_entropy_hard_targets_match_torch(impl, dtype, tolerance, layout, smoothing, scale):
    logits = seeded_randn((6, 5), 2, dtype, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, f"class targets, label_smoothing={smoothing}, scale {scale:g}")


@check("cross_entropy_soft_targets_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("smoothing", [None, 0.2, 0.35], ids=["default_smoothing", "smoothing_0.2", "smoothing_0.35"])
@layouts
def test_cross_entropy_soft_targets_match_torch(impl, dtype, tolerance, layout, smoothing, scale):
    logits = seeded_randn((6, 5), 3, dtype, scale=scale)
    target = _soft_targets(6, 5, seed=4, dtype=dtype)
    what = f"probability targets, label_smoothing={smoothing}, scale {scale:g}"
    _assert_loss_matches(impl, tolerance, logits, target, smoothing, layout, what)


INVALID_CROSS_ENTROPY_INPUTS = cases(
    Case("int64_logits", logits=torch.arange(30).reshape(6, 5), target=torch.tensor([0, 4, 2, 2, 1, 3]), error=TypeError),
    Case("target_-1", target=torch.tensor([0, 4, 2, -1, 1, 3]), error=ValueError),
    Case("target_C", target=torch.tensor([0, 4, 2, 5, 1, 3]), error=ValueError),
    Case("target_C_plus_2", target=torch.tensor([0, 4, 2, 7, 1, 3]), error=ValueError),
    Case("soft_targets_of_another_shape", target=torch.full((6, 6), 1 / 6), error=ValueError),
    Case("smoothing_-0.1", target=torch.tensor([0, 4, 2, 2, 1, 3]), smoothing=-0.1, error=ValueError),
    Case("smoothing_1.5", target=torch.tensor([0, 4, 2, 2, 1, 3]), smoothing=1.5, error=ValueError),
)


@check("cross_entropy_rejects_invalid_input")
@INVALID_CROSS_ENTROPY_INPUTS
def test_cross_entropy_rejects_invalid_input(impl, case):
    logits = case.get("logits", seeded_randn((6, 5), 2))  # 5 classes
    smoothing = case.get("smoothing", 0.0)
    what = f"cross_entropy({case.name}: logits {logits.dtype} {tuple(logits.shape)}, target {tuple(case.target.shape)}, label_smoothing={smoothing})"
    assert_raises(case.error, lambda: impl.cross_entropy(logits, case.target, label_smoothing=smoothing), what)


@check("cross_entropy_gradients_match_torch")
@pytest.mark.parametrize("scale", [1.0, LARGE_LOGIT], ids=["scale_1", "scale_1e4"])
@pytest.mark.parametrize("targets", ["hard", "soft"])
def test_cross_entropy_gradients_match_torch(impl, dtype, tolerance, targets, scale):
    logits = seeded_randn((6, 5), 5, dtype, scale=scale)
    target = torch.tensor([0, 4, 2, 2, 1, 3]) if targets == "hard" else _soft_targets(6, 5, seed=6, dtype=dtype)
    upstream = torch.tensor(1.0, dtype=dtype)
    what = f"cross_entropy ({targets} targets, scale {scale:g})"
    (got,) = gradients(lambda x: impl.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, what)
    (expected,) = gradients(lambda x: F.cross_entropy(x, target, label_smoothing=0.1), (logits,), upstream, "F.cross_entropy")
    if got is None or not torch.isfinite(got).all():
        raise CheckFailure(f"the gradient of cross_entropy w.r.t. the logits is missing or not finite ({targets} targets, scale {scale:g})")
    assert_close(got, expected, tolerance, what=f"d cross_entropy / d logits ({targets} targets, scale {scale:g})")


# --- augmentation -----------------------------------------------------------------------------------------------------


@check("mixup_batch_convex_combination")
@layouts
@given(count=st.integers(1, 8), alpha=st.sampled_from([0.2, 1.0, 4.0]), seed=strategies.seeds, image_seed=strategies.seeds)
def test_mixup_batch_convex_combination(impl, dtype, tolerance, layout, count, alpha, seed, image_seed):
    num_classes = 10
    images = seeded_rand((count, 2, 3, 3), image_seed, dtype)
    labels = torch.randperm(num_classes, generator=seeded_generator(image_seed + 1))[:count]  # distinct: a label names its image
    mixed, targets = impl.mixup_batch(in_layout(images, layout), in_layout(labels, layout), alpha, num_classes, seeded_generator(seed))
    assert tuple(mixed.shape) == tuple(images.shape), (
        f"mixup_batch: mixed images of shape {tuple(mixed.shape)}, expected {tuple(images.shape)}"
    )
    assert tuple(targets.shape) == (count, num_classes), (
        f"mixup_batch: targets of shape {tuple(targets.shape)}, expected {(count, num_classes)}"
    )
    assert targets.dtype == images.dtype, f"mixup_batch: targets of dtype {targets.dtype}, expected the images' {images.dtype}"
    assert targets.min() >= -tolerance.atol, f"mixup_batch: negative target {float(targets.min()):.3g}"
    assert_close(targets.sum(dim=1), torch.ones(count, dtype=dtype), tolerance, what="mixup_batch target row sums")
    image_of_label = {int(label): index for index, label in enumerate(labels)}
    own = targets[torch.arange(count), labels].double()  # lam, or 1 where an image is paired with itself
    partners, lams = [], []
    for i in range(count):
        rest = targets[i].double().clone()
        rest[labels[i]] = 0
        if rest.sum() <= tolerance.atol:  # paired with itself (or lam = 1): the image is unchanged
            partners.append(i)
            continue
        partner_label = int(rest.argmax())
        if partner_label not in image_of_label or abs(float(rest.sum() - rest[partner_label])) > tolerance.atol:
            raise CheckFailure(
                f"mixup_batch: target row {i} puts mass on labels other than its own and one other image's: {targets[i].tolist()}"
            )
        partners.append(image_of_label[partner_label])
        lams.append(float(own[i]))
    if sorted(partners) != list(range(count)):
        raise CheckFailure(f"mixup_batch: partners {partners} are not a permutation of the batch")
    if lams and max(lams) - min(lams) > tolerance.atol:
        raise CheckFailure(f"mixup_batch: one lam per batch expected, the targets show {sorted({round(v, 6) for v in lams})}")
    lam = lams[0] if lams else 1.0
    assert -tolerance.atol <= lam <= 1 + tolerance.atol, f"mixup_batch: lam {lam} outside [0, 1]"
    expected = lam * images + (1 - lam) * images[partners]
    fixed = [i for i in range(count) if partners[i] == i]
    expected[fixed] = images[fixed]
    assert_close(mixed, expected, tolerance, what=f"mixup_batch images (lam {lam:.4f}, from the targets)")
    again_mixed, again_targets = impl.mixup_batch(images, labels, alpha, num_classes, seeded_generator(seed))
    assert torch.equal(again_mixed, mixed) and torch.equal(again_targets, targets), (
        "mixup_batch: the same generator seed gave a different result"
    )


MIXUP_DRAWS = 300  # batches per alpha


@check("mixup_batch_lambda_follows_beta")
@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0], ids=lambda alpha: f"alpha_{alpha:g}")
def test_mixup_batch_lambda_follows_beta(impl, spec_check, dtype, tolerance, alpha):

    count = 8
    images = seeded_rand((count, 1, 2, 2), 14, dtype)
    labels = torch.arange(count)  # distinct: target column j is image j
    for bad_alpha in (0.0, -1.0):
        assert_raises(
            ValueError,
            lambda bad_alpha=bad_alpha: impl.mixup_batch(images, labels, bad_alpha, count, seeded_generator(0)),
            f"mixup_batch(alpha={bad_alpha})",
        )
    _, one_class = impl.mixup_batch(images, torch.zeros(count, dtype=torch.int64), alpha, 1, seeded_generator(0))
    assert_close(one_class, torch.ones(count, 1, dtype=dtype), tolerance, what="mixup_batch targets with a single class (num_classes=1)")
    lams, fixed_points, pairs = [], [], set()
    for seed in range(MIXUP_DRAWS):
        _, targets = impl.mixup_batch(images, labels, alpha, count, seeded_generator(seed))
        own = targets.diagonal().double()  # lam, or 1 where an image is paired with itself
        lams.append(float(own.min()))  # 1 only if lam = 1 or perm is the identity (1 in 40,320)
        others = targets.double() - torch.diag(own)  # (1 - lam) at (i, perm[i]) for perm[i] != i
        if others.sum() > 0:  # the pairing is readable unless lam = 1
            partners = torch.where(others.sum(dim=1) > 0, others.argmax(dim=1), torch.arange(count))
            fixed_points.append(int((partners == torch.arange(count)).sum()))
            pairs |= {(i, int(j)) for i, j in enumerate(partners) if i != int(j)}
    p_value = float(stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue)
    numbers = {"ks_p_value": p_value, "lam_mean": float(np.mean(lams)), "lam_std": float(np.std(lams))}
    if p_value < spec_check.significance:
        expected_std = math.sqrt(1 / (4 * (2 * alpha + 1)))
        raise CheckFailure(
            f"mixup_batch(alpha={alpha:g}): the lam of {MIXUP_DRAWS} batches (mean {np.mean(lams):.3f}, std {np.std(lams):.3f}) do not "
            f"follow Beta({alpha:g}, {alpha:g}) (mean 0.5, std {expected_std:.3f}); Kolmogorov-Smirnov p = {p_value:.2g}",
            numbers,
        )
    mean_fixed = float(np.mean(fixed_points))
    # a uniform permutation has 1 fixed point on average, variance 1
    if abs(mean_fixed - 1) > stats.norm.isf(spec_check.significance / 2) / math.sqrt(len(fixed_points)):
        raise CheckFailure(
            f"mixup_batch: the permutations have {mean_fixed:.2f} fixed points on average, a uniform one has 1",
            {"mean_fixed_points": mean_fixed},
        )
    if len(pairs) != count * (count - 1):
        raise CheckFailure(
            f"mixup_batch: over {MIXUP_DRAWS} batches only {len(pairs)} of the {count * (count - 1)} (image, partner) pairs occurred"
        )


def _windows(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Every size x size window of a (C, H, W) image: (positions, C, size, size)."""
    patches = padded.unfold(1, size, 1).unfold(2, size, 1)  # (C, H', W', size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, padded.shape[0], size, size)


@check("random_crop_takes_padded_windows")
@layouts
@given(
    count=st.integers(1, 4),
    height=st.integers(4, 9),
    width=st.integers(4, 9),
    padding=st.integers(0, 3),
    data=st.data(),
    seed=strategies.seeds,
)
def test_random_crop_takes_padded_windows(impl, layout, count, height, width, padding, data, seed):
    side = min(height, width)
    size = data.draw(st.integers(1, side + 2 * padding), label="size")
    images = seeded_rand((count, 2, height, width), seed + 1, low=0.5, high=1.5)  # > 0, so padding zeros stand out
    crops = impl.random_crop(in_layout(images, layout), size, padding, seeded_generator(seed))
    assert tuple(crops.shape) == (count, 2, size, size), f"random_crop: shape {tuple(crops.shape)}, expected {(count, 2, size, size)}"
    assert crops.dtype == images.dtype, f"random_crop: dtype {crops.dtype}, expected the images' {images.dtype}"
    for i in range(count):
        windows = _windows(F.pad(images[i], (padding,) * 4), size)
        if not (windows == crops[i]).flatten(1).all(dim=1).any():
            raise CheckFailure(
                f"random_crop(size={size}, padding={padding}): crop {i} is not a window of its zero-padded {height}x{width} image"
            )
    assert torch.equal(impl.random_crop(images, size, padding, seeded_generator(seed)), crops), (
        "random_crop: the same generator seed gave a different result"
    )
    square = images[:, :, :side, :side].contiguous()
    assert torch.equal(impl.random_crop(in_layout(square, layout), side, 0, seeded_generator(seed)), square), (
        "random_crop(size=H=W, padding=0) must return the images"
    )
    many = torch.arange(64, dtype=torch.float32)[:, None, None, None] + 1 + seeded_rand((64, 1, 6, 6), seed + 2)
    offsets = set()
    for i, crop in enumerate(impl.random_crop(many, 6, 2, seeded_generator(seed))):
        matches = (_windows(F.pad(many[i], (2,) * 4), 6) == crop).flatten(1).all(dim=1).nonzero()
        offsets.add(int(matches[0]) if len(matches) else -1)
    assert len(offsets) > 1, "random_crop: 64 images all got the same offset; each image needs its own"


CROP_HEIGHT, CROP_WIDTH, CROP_PADDING, CROP_SIZE = 7, 5, 2, 4  # offsets: top in [0, 7], left in [0, 5]
CROPS_PER_OFFSET = 40


@check("random_crop_offsets_cover_every_position")
def test_random_crop_offsets_cover_every_position(impl, spec_check, dtype, tolerance):

    rows, columns = CROP_HEIGHT + 2 * CROP_PADDING - CROP_SIZE + 1, CROP_WIDTH + 2 * CROP_PADDING - CROP_SIZE + 1
    count = CROPS_PER_OFFSET * rows * columns
    codes = 1 + torch.arange(2 * CROP_HEIGHT * CROP_WIDTH, dtype=dtype).reshape(1, 2, CROP_HEIGHT, CROP_WIDTH)  # distinct, non-zero
    images = codes.repeat(count, 1, 1, 1)
    for size, padding in ((4, -1), (0, 2), (min(CROP_HEIGHT, CROP_WIDTH) + 2 * 2 + 1, 2), (min(CROP_HEIGHT, CROP_WIDTH) + 1, 0)):
        assert_raises(
            ValueError,
            lambda size=size, padding=padding: impl.random_crop(images[:2], size, padding, seeded_generator(0)),
            f"random_crop(size={size}, padding={padding})",
        )
    crops = impl.random_crop(images, CROP_SIZE, CROP_PADDING, seeded_generator(15))
    expected_shape = (count, 2, CROP_SIZE, CROP_SIZE)
    assert tuple(crops.shape) == expected_shape, f"random_crop: shape {tuple(crops.shape)}, expected {expected_shape}"
    if crops.dtype != dtype:
        raise CheckFailure(f"random_crop of {dtype} images returned {crops.dtype}; the crops keep the images' dtype")
    windows = _windows(F.pad(codes[0], (CROP_PADDING,) * 4), CROP_SIZE)  # (rows * columns, 2, size, size): top * columns + left
    matches = (crops[:, None] == windows[None]).flatten(2).all(dim=2)  # (count, positions)
    if not (matches.sum(dim=1) == 1).all():
        bad = int((matches.sum(dim=1) != 1).nonzero()[0])
        raise CheckFailure(
            f"random_crop: crop {bad} is not a window of its zero-padded {CROP_HEIGHT}x{CROP_WIDTH} image (padding {CROP_PADDING} on every side)"
        )
    counts = matches.sum(dim=0).reshape(rows, columns)  # how often each (top, left) occurred
    missing = [tuple(int(v) for v in offset) for offset in (counts == 0).nonzero()]
    if missing:
        raise CheckFailure(
            f"random_crop(size={CROP_SIZE}, padding={CROP_PADDING}) on {CROP_HEIGHT}x{CROP_WIDTH} images: of the {rows} x {columns} (top, left) "
            f"offsets, {len(missing)} never occurred in {count} crops, e.g. {missing[:6]}; the last is ({rows - 1}, {columns - 1})",
            {"missing": len(missing), "positions": rows * columns},
        )
    p_value = float(stats.chisquare(counts.flatten().numpy()).pvalue)
    if p_value < spec_check.significance:
        raise CheckFailure(
            f"random_crop: offsets not uniform over the {rows} x {columns} positions (counts {counts.tolist()}, chi-square p = {p_value:.2g})"
        )


@check("random_hflip_flips_whole_images")
@layouts
@given(count=st.integers(1, 6), p=st.sampled_from([0.0, 0.5, 1.0]), seed=strategies.seeds)
def test_random_hflip_flips_whole_images(impl, spec_check, layout, count, p, seed):
    images = seeded_rand((count, 2, 3, 4), seed + 1)
    flipped = impl.random_hflip(in_layout(images, layout), p, seeded_generator(seed))
    assert tuple(flipped.shape) == tuple(images.shape), f"random_hflip: shape {tuple(flipped.shape)}, expected {tuple(images.shape)}"
    assert flipped.dtype == images.dtype, f"random_hflip: dtype {flipped.dtype}, expected the images' {images.dtype}"
    same = (flipped == images).flatten(1).all(dim=1)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    if not (same | mirrored).all():
        raise CheckFailure(
            f"random_hflip(p={p}): image {int((~(same | mirrored)).nonzero()[0])} is neither its input nor its left-right mirror"
        )
    if p == 0.0 and not same.all():
        raise CheckFailure("random_hflip(p=0) changed an image")
    if p == 1.0 and not mirrored.all():
        raise CheckFailure("random_hflip(p=1) left an image unflipped")
    assert torch.equal(impl.random_hflip(images, p, seeded_generator(seed)), flipped), (
        "random_hflip: the same generator seed gave a different result"
    )
    flipped64 = impl.random_hflip(images.double(), p, seeded_generator(seed))
    assert flipped64.dtype == torch.float64, f"random_hflip of float64 images returned {flipped64.dtype}"
    assert torch.equal(flipped64, flipped.double()), "random_hflip: float64 images flipped differently from the same images in float32"
    for bad_p in (-0.1, 1.5):
        assert_raises(ValueError, lambda bad_p=bad_p: impl.random_hflip(images, bad_p, seeded_generator(seed)), f"random_hflip(p={bad_p})")
    many = torch.arange(4 * 4000, dtype=torch.float32).reshape(4000, 1, 1, 4)  # every row differs from its mirror
    fraction = float((impl.random_hflip(many, 0.3, seeded_generator(seed)) != many).flatten(1).any(dim=1).float().mean())
    bound = stats.norm.isf(spec_check.significance / 2) * math.sqrt(0.3 * 0.7 / 4000)
    if abs(fraction - 0.3) > bound:
        raise CheckFailure(f"random_hflip(p=0.3) flipped {fraction:.3f} of 4,000 images; expected 0.3 +- {bound:.3f}", {"fraction": fraction})


# --- evaluation -------------------------------------------------------------------------------------------------------


CONFUSION_CASES = cases(
    Case(
        "random",
        predictions=torch.randint(0, 5, (200,), generator=seeded_generator(7)),
        targets=torch.randint(0, 5, (200,), generator=seeded_generator(8)),
        num_classes=5,
    ),
    Case("absent_classes", predictions=torch.tensor([0, 2, 2, 0, 5]), targets=torch.tensor([2, 2, 0, 0, 5]), num_classes=7),
    Case("single_example", predictions=torch.tensor([1]), targets=torch.tensor([2]), num_classes=3),
    Case("one_class", predictions=torch.tensor([0, 0, 0]), targets=torch.tensor([0, 0, 0]), num_classes=1),
    Case("target_-1", predictions=torch.tensor([0, 1, 2]), targets=torch.tensor([0, -1, 2]), num_classes=3, error=ValueError),
    Case("prediction_num_classes", predictions=torch.tensor([0, 3, 2]), targets=torch.tensor([0, 1, 2]), num_classes=3, error=ValueError),
    Case("different_lengths", predictions=torch.tensor([0, 1]), targets=torch.tensor([0, 1, 2]), num_classes=3, error=ValueError),
)


@check("confusion_matrix_matches_sklearn")
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn's note on the one_class case; labels= is given
@CONFUSION_CASES
@layouts
def test_confusion_matrix_matches_sklearn(impl, layout, case):
    from sklearn.metrics import confusion_matrix

    num_classes = case.num_classes
    if case.get("error"):
        predictions, targets = in_layout(case.predictions, layout), in_layout(case.targets, layout)
        assert_raises(case.error, lambda: impl.confusion_matrix(predictions, targets, num_classes), f"confusion_matrix({case.name})")
        return
    expected = confusion_matrix(case.targets.numpy(), case.predictions.numpy(), labels=list(range(num_classes)))
    got = impl.confusion_matrix(in_layout(case.predictions, layout), in_layout(case.targets, layout), num_classes)
    if not isinstance(got, torch.Tensor) or got.dtype != torch.int64:
        raise CheckFailure(f"confusion_matrix returned {getattr(got, 'dtype', type(got).__name__)}, expected an int64 tensor")
    if tuple(got.shape) != expected.shape or not np.array_equal(got.numpy(), expected):
        raise CheckFailure(
            f"confusion_matrix ({case.name}, {layout} inputs; rows true, columns predicted) is\n{got.numpy()}\nexpected\n{expected}"
        )


REPORT_CASES = cases(
    Case("random", cm=torch.randint(0, 20, (6, 6), generator=seeded_generator(9))),
    Case("asymmetric", cm=torch.tensor([[5, 0, 0], [4, 1, 0], [3, 0, 2]])),  # class 0 over-predicted: precision 5/12, recall 1
    Case("never_predicted_never_present", cm=torch.tensor([[3, 0, 1, 0], [2, 0, 0, 0], [1, 0, 4, 0], [0, 0, 0, 0]])),
    Case("float32_counts", cm=torch.tensor([[7.0, 2.0, 0.0], [1.0, 3.0, 5.0], [0.0, 4.0, 6.0]])),  # the report is float64 all the same
    Case("not_square", cm=torch.ones(2, 3, dtype=torch.int64), error=ValueError),
    Case("empty", cm=torch.zeros(0, 0, dtype=torch.int64), error=ValueError),
    Case("negative_entry", cm=torch.tensor([[3, -1], [0, 2]]), error=ValueError),
)


@check("per_class_report_matches_sklearn")
@REPORT_CASES
@layouts
def test_per_class_report_matches_sklearn(impl, dtype, tolerance, layout, case):
    from sklearn.metrics import precision_recall_fscore_support

    cm = case.cm
    if case.get("error"):
        assert_raises(
            case.error, lambda: impl.per_class_report(in_layout(cm, layout)), f"per_class_report({case.name}: shape {tuple(cm.shape)})"
        )
        return
    num_classes = cm.shape[0]
    pairs = [(t, p) for t in range(num_classes) for p in range(num_classes) for _ in range(int(cm[t, p]))]
    targets, predictions = zip(*pairs)
    precision, recall, f1, _ = precision_recall_fscore_support(targets, predictions, labels=list(range(num_classes)), zero_division=0)
    report = impl.per_class_report(in_layout(cm, layout))
    if not isinstance(report, tuple) or len(report) != 3:
        raise CheckFailure(f"per_class_report returned {type(report).__name__}; expected a tuple (precision, recall, f1)")
    for name, got, expected in zip(("precision", "recall", "f1"), report, (precision, recall, f1)):
        what = f"per_class_report {name} ({case.name}, confusion matrix rows true, {layout})"
        assert_close(got, torch.from_numpy(expected).to(dtype), tolerance, what=what)


# --- calibration ------------------------------------------------------------------------------------------------------


# Rows built so that each convention of the spec changes the ECE (8 bins: boundaries k / 8, exact in every dtype):
# (probability row, target, copies).
BUILT_CALIBRATION_ROWS = [
    ([1, 0, 0, 0], 0, 6),  # confidence exactly 1, right: a bin of its own...
    ([0, 1, 0, 0], 2, 3),  # ... with these wrong ones (accuracy below confidence)
    ([0.9375, 0.0625, 0, 0], 0, 5),  # 15/16, in the last bin [7/8, 1), right (accuracy above confidence)
    ([0.5, 0.25, 0.125, 0.125], 0, 4),  # exactly on the boundary 4/8: bin [4/8, 5/8), right
    ([0.4375, 0.3125, 0.25, 0], 1, 4),  # 7/16, in the bin [3/8, 4/8) below it, wrong
    ([0.75, 0.125, 0.125, 0], 0, 3),  # exactly on the boundary 6/8, right
    ([0.6875, 0.3125, 0, 0], 1, 3),  # 11/16, in the bin [5/8, 6/8) below it, wrong
    ([0.375, 0.375, 0.125, 0.125], 1, 4),  # tie at 3/8: the prediction is class 0, the target the other tied class
    ([0.3125, 0.3125, 0.3125, 0.0625], 2, 3),  # three-way tie, the target the third tied class: wrong
    ([0.375, 0.375, 0.25, 0], 0, 2),  # tie, the target the first tied class: right
    ([0.34375, 0.3125, 0.3125, 0.03125], 0, 3),  # 11/32, in the bin [2/8, 3/8), right
]


def _built_calibration_rows(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.tensor([row for row, _, copies in BUILT_CALIBRATION_ROWS for _ in range(copies)], dtype=dtype)
    target = torch.tensor([label for _, label, copies in BUILT_CALIBRATION_ROWS for _ in range(copies)])
    confidences, first = probs.amax(dim=1), probs.argmax(dim=1)
    boundaries = torch.linspace(0, 1, 9, dtype=dtype)
    tied_target = (probs[torch.arange(len(probs)), target] == confidences) & (first != target)
    # The named situations really occur in the built data (a test bug otherwise).
    if not ((confidences == 1).any() and ((confidences >= boundaries[7]) & (confidences < 1)).any()):
        raise RuntimeError("the built rows need confidences of exactly 1 beside confidences in the last bin")
    if not torch.isin(confidences, boundaries[1:-1]).any() or not tied_target.any():
        raise RuntimeError("the built rows need confidences on inner bin boundaries and targets tied with the first maximum")
    if not (probs.sum(dim=1) == 1).all():
        raise RuntimeError("the built rows must be exact probability rows")
    return probs, target


def _ece_float64(probs: torch.Tensor, target: torch.Tensor, n_bins: int) -> float:
    """The spec's ECE written out in float64: bins [k / n, (k + 1) / n), confidence 1 alone, first class on a tie."""
    probs = probs.double()
    confidences, predictions = probs.amax(dim=1), probs.argmax(dim=1)  # argmax: the first maximal class
    correct = (predictions == target).double()
    boundaries = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64).tolist() + [math.inf]  # the last bin: exactly 1
    total = 0.0
    for low, high in zip(boundaries[:-1], boundaries[1:]):
        members = (confidences >= low) & (confidences < high)
        if members.any():
            total += float(members.sum()) / len(probs) * abs(float(correct[members].mean() - confidences[members].mean()))
    return total


ECE_CASES = cases(
    Case("overconfident_15_bins", scale=4.0, n_bins=15),
    Case("underconfident_15_bins", scale=0.3, n_bins=15),
    Case("calibrated_10_bins", scale=1.0, n_bins=10),
    Case("one_bin", scale=2.0, n_bins=1),
    Case("default_bins", scale=4.0, n_bins=None),  # the argument left out: 15 bins
    Case("one_hot_rows", scale=1.0, n_bins=15, one_hot=True),
    Case("ones_boundaries_and_ties_8_bins", n_bins=8, built=True),
)


@check("expected_calibration_error_matches_torchmetrics")
@ECE_CASES
@layouts
def test_expected_calibration_error_matches_torchmetrics(impl, dtype, tolerance, layout, case):
    n_bins = case.n_bins or 15
    if case.get("built", False):
        probs, target = _built_calibration_rows(dtype)
    else:
        logits, target = _miscalibrated(case.scale, seed=11, count=600, num_classes=6)
        probs = torch.softmax(logits, dim=1).to(dtype)
        if case.get("one_hot", False):
            probs = F.one_hot(logits.argmax(dim=1), 6).to(dtype)
    arguments = {} if case.n_bins is None else {"n_bins": case.n_bins}
    got = impl.expected_calibration_error(in_layout(probs, layout), in_layout(target, layout), **arguments)
    if isinstance(got, torch.Tensor):
        got = got.item() if got.numel() == 1 else got
    if not isinstance(got, float):
        raise CheckFailure(f"expected_calibration_error returned {type(got).__name__}, expected a float")
    expected = _ece_oracle(probs, target, n_bins)  # torchmetrics rounds confidences to float32
    if dtype == torch.float64:
        written_out = _ece_float64(probs, target, n_bins)
        if abs(written_out - expected) > 1e-5:
            raise RuntimeError(f"the test's float64 ECE {written_out} disagrees with torchmetrics' {expected}")  # a test bug
        expected = written_out
    assert_close(got, expected, tolerance, what=f"expected_calibration_error ({case.name}, {n_bins} bins, {layout} inputs)")


@check("fit_temperature_matches_brute_force")
@pytest.mark.parametrize(
    "scale", [3.0, 0.4, 40.0, 0.02], ids=["overconfident", "underconfident", "very_overconfident", "very_underconfident"]
)
@layouts
def test_fit_temperature_matches_brute_force(impl, dtype, tolerance, layout, scale):
    from scipy.optimize import minimize_scalar

    logits, target = _miscalibrated(scale, seed=12, count=1000)
    logits = logits.to(dtype)
    result = minimize_scalar(
        lambda t: _nll(logits / math.exp(t), target), bounds=(math.log(0.01), math.log(100)), method="bounded", options={"xatol": 1e-8}
    )
    temperature = impl.fit_temperature(in_layout(logits, layout), in_layout(target, layout))
    if not isinstance(temperature, (float, int)) or isinstance(temperature, bool):
        raise CheckFailure(f"fit_temperature returned {type(temperature).__name__}, expected a float")
    assert_close(float(temperature), math.exp(result.x), tolerance, what=f"temperature (logits scaled x{scale}, {layout} inputs)")


@check("fit_temperature_improves_calibration")
@pytest.mark.parametrize("scale", [3.0, 0.4], ids=["overconfident", "underconfident"])
def test_fit_temperature_improves_calibration(impl, scale):
    logits, target = _miscalibrated(scale, seed=13)
    temperature = float(impl.fit_temperature(logits.float(), target))
    if not math.isfinite(temperature) or temperature <= 0:
        raise CheckFailure(f"fit_temperature returned {temperature}; a temperature must be a positive number")
    before_nll, after_nll = _nll(logits, target), _nll(logits / temperature, target)
    before_ece = _ece_oracle(torch.softmax(logits, dim=1), target)
    after_ece = _ece_oracle(torch.softmax(logits / temperature, dim=1), target)
    numbers = {
        "temperature": temperature,
        "nll_before": before_nll,
        "nll_after": after_nll,
        "ece_before": before_ece,
        "ece_after": after_ece,
    }
    if not (after_nll < before_nll and after_ece < before_ece):
        raise CheckFailure(
            f"temperature {temperature:.4g} on logits scaled x{scale}: NLL {before_nll:.4f} -> {after_nll:.4f}, ECE {before_ece:.4f} -> "
            f"{after_ece:.4f}; both must go down",
            numbers,
        )
    if (temperature > 1) != (scale > 1):
        raise CheckFailure(
            f"temperature {temperature:.4g} for {'over' if scale > 1 else 'under'}confident logits: expected T {'>' if scale > 1 else '<'} 1",
            numbers,
        )
    if not torch.equal((logits / temperature).argmax(dim=1), logits.argmax(dim=1)):
        raise CheckFailure("dividing by the temperature changed a prediction", numbers)
    # fitted, not merely better than 1: the NLL is lowest at T, not 2% away from it (a guess near the optimum is not a fit)
    for neighbour in (temperature * 1.02, temperature / 1.02):
        if _nll(logits / neighbour, target) < after_nll:
            raise CheckFailure(
                f"temperature {temperature:.4g} on logits scaled x{scale} does not minimise the NLL: {after_nll:.6f} at T, "
                f"{_nll(logits / neighbour, target):.6f} at {neighbour:.4g}",
                numbers,
            )
