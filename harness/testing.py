"""The authoring API: everything a topic's graded tests import from the harness, and the only module they import.

    import pytest
    from harness.testing import Case, assert_close, cases, check, seeded_randn

    CONV_CASES = cases(
        Case("1x1-image", x=(2, 3, 1, 1), weight=(4, 3, 1, 1)),
        Case("stride-3", x=(1, 2, 10, 9), weight=(3, 2, 2, 2), stride=3),
    )

    @check("conv2d_matches_torch")
    @CONV_CASES
    def test_conv2d_matches_torch(impl, case, dtype, tolerance):
        x, weight = seeded_randn(case.x, 0, dtype), seeded_randn(case.weight, 1, dtype)
        assert_close(impl.conv2d(x, weight, stride=case.get("stride", 1)), oracle(x, weight), tolerance, what="conv2d")

Fixtures (from the plugin): ``impl`` (the graded topic module), ``spec``, ``spec_check``, ``check_id``, ``dtype``
(parametrized over the dtypes the check's spec gives tolerances for, ids ``float32``...) and ``tolerance`` (that
dtype's tolerance). Metric and latency checks need no test: their items are made from the spec.

What lives here, by job:
- tying a test to its check: :func:`check`;
- inputs: :func:`seeded_generator`, :func:`seeded_randn`, :func:`seeded_rand`, :func:`seeded_init`,
  :func:`random_boxes`, :func:`non_contiguous` with the :data:`layouts` parametrization, and the hypothesis
  strategies of :mod:`harness.topic.strategies` as ``strategies``;
- named case tables: :class:`Case` and :func:`cases`;
- verdicts: :func:`assert_close`, :func:`assert_raises`, :class:`CheckFailure`, :func:`as_numpy`;
- autograd through the implementation: :func:`gradients`, :func:`gradcheck_or_fail`, :func:`functional_call`;
- oracle adaptors: :func:`coco_box_metrics` (pycocotools on per-image dicts); value oracles for modules:
  :func:`randomized` (a ``torch.nn`` network with seeded random weights) and :func:`load_layers` (its weights copied
  into the implementation's layers of the same kind);
- an implementation's modules wherever they live (in its sealed worker, or here): :func:`take` (hand it a module
  the test built, to change in place), :func:`identity`, :func:`instance_of`, :func:`training_flags`, :func:`sgd_steps`,
  :func:`hooked_forward`;
- networks the harness ships, for tests that build one: :class:`ShapesNet` (topic 05's pretrained backbone) and
  :class:`MLPWithBatchNorm1d`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pytest
import torch

from harness.conventions import CHECK_MARKER
from harness.pretrained import ShapesNet
from harness.spec.outcomes import CheckFailure, ForbiddenCall, InterfaceError
from harness.topic import strategies
from harness.topic.autograd import functional_call, gradcheck_or_fail, gradients
from harness.topic.compare import as_numpy, assert_close
from harness.topic.layers import load_layers, randomized
from harness.topic.layouts import LAYOUTS, in_layout, non_contiguous
from harness.topic.modules import MLPWithBatchNorm1d, hooked_forward, identity, instance_of, sgd_steps, take, training_flags

__all__ = [
    "check", "Case", "cases", "layouts", "LAYOUTS",
    "seeded_generator", "seeded_randn", "seeded_rand", "seeded_init", "random_boxes", "non_contiguous", "in_layout", "strategies",
    "assert_close", "assert_raises", "as_numpy", "CheckFailure", "ForbiddenCall",
    "gradients", "gradcheck_or_fail", "functional_call", "coco_box_metrics", "ShapesNet", "randomized", "load_layers",
    "take", "identity", "instance_of", "training_flags", "sgd_steps", "hooked_forward", "MLPWithBatchNorm1d",
]  # fmt: skip

F = TypeVar("F", bound=Callable[..., object])


def check(check_id: str) -> Callable[[F], F]:
    """Tie a test to the spec check ``check_id`` of its topic (points, tolerances, thresholds come from there).

    The test must be named ``test_<check_id>``; ``visionbench spec check`` holds every topic test to it.
    """
    return getattr(pytest.mark, CHECK_MARKER)(check_id)


# --- named case tables ---------------------------------------------------------------------------------------------


class Case:
    """One named boundary case: a name (the test id) and keyword fields read as attributes.

    ``Case("stride-3", x=(1, 2, 10, 9), stride=3).stride == 3``; ``case.get("padding", 0)`` reads an optional field.
    """

    def __init__(self, name: str, **fields: Any) -> None:
        self.name = name
        self.fields = fields

    def __getattr__(self, key: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if key in fields:
            return fields[key]
        raise AttributeError(f"case {self.__dict__.get('name')!r} has no field {key!r} (has: {sorted(fields)})")

    def get(self, key: str, default: Any = None) -> Any:
        """A field, or ``default`` when the case does not set it."""
        return self.fields.get(key, default)

    def __repr__(self) -> str:
        return f"Case({self.name!r}, {', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"


def cases(*table: Case, argname: str = "case") -> pytest.MarkDecorator:
    """Parametrize a test over named cases (ids: the names, which must be unique)."""
    names = [case.name for case in table]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"case names must be unique; repeated: {repeated}")
    return pytest.mark.parametrize(argname, table, ids=names)


# --- inputs ----------------------------------------------------------------------------------------------------------


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: the only randomness a test's inputs should draw from."""
    return torch.Generator().manual_seed(seed)


def seeded_randn(shape: Sequence[int], seed: int, dtype: torch.dtype = torch.float32, scale: float = 1.0) -> torch.Tensor:
    """``Tensor[shape]`` of standard-normal values times ``scale``, drawn in float64 from ``seed`` and cast to
    ``dtype`` (so every dtype sees the same numbers, rounded)."""
    return (torch.randn(tuple(shape), generator=seeded_generator(seed), dtype=torch.float64) * scale).to(dtype)


def seeded_rand(shape: Sequence[int], seed: int, dtype: torch.dtype = torch.float32, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """``Tensor[shape]`` uniform in ``[low, high)``, drawn in float64 from ``seed`` and cast to ``dtype``."""
    return (low + (high - low) * torch.rand(tuple(shape), generator=seeded_generator(seed), dtype=torch.float64)).to(dtype)


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build modules with torch's default initialisation from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def random_boxes(count: int, seed: int, *, size: float = 64.0, min_side: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``Tensor[count, 4]`` boxes ``(x1, y1, x2, y2)`` inside a ``size`` x ``size`` image, each side at least
    ``min_side``, drawn in float64 from ``seed`` and cast to ``dtype``."""
    generator = seeded_generator(seed)
    corner = torch.rand(count, 2, generator=generator, dtype=torch.float64) * (size - min_side)
    sides = min_side + torch.rand(count, 2, generator=generator, dtype=torch.float64) * (size - min_side - corner)
    return torch.cat([corner, corner + sides], dim=1).to(dtype)


layouts = pytest.mark.parametrize("layout", LAYOUTS)
"""Parametrize a test over memory layouts; build its tensors with :func:`in_layout`."""


# --- verdicts ------------------------------------------------------------------------------------------------------


def assert_raises(expected: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], object], what: str) -> None:
    """Fail unless ``call()`` raises ``expected`` (an input check's clear error), saying what happened instead.

    The implementation's ``NotImplementedError`` (todo), forbidden calls and interface errors pass through, so they
    get their own verdicts rather than "wrong exception".

    Raises:
        CheckFailure: another exception, or none; the message names what was returned or raised.
    """
    names = " or ".join(e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,)))
    try:
        result = call()
    except expected:
        return
    except (NotImplementedError, ForbiddenCall, InterfaceError):
        raise
    except Exception as error:
        raise CheckFailure(f"{what}: expected {names}, got {type(error).__name__}: {error}") from error
    raise CheckFailure(f"{what}: expected {names}, but nothing was raised (returned {type(result).__name__})")


# --- oracle adaptors -----------------------------------------------------------------------------------------------


def coco_box_metrics(detections: list[dict[str, torch.Tensor]], ground_truths: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """pycocotools' COCOeval (bbox, default parameters) of per-image detections against per-image ground truth.

    Args:
        detections: per image ``{"boxes": Tensor[K, 4] xyxy, "scores": Tensor[K], "labels": Tensor[K] int64}``.
        ground_truths: per image ``{"boxes": Tensor[M, 4] xyxy, "labels": Tensor[M] int64}``.

    Returns:
        COCOeval's twelve statistics by name: ``map``, ``map50``, ``map75``, ..., ``mar_large`` (-1 where undefined).
    """
    from harness.metrics.detection import coco_detection_metrics

    boxes = [as_numpy(image["boxes"]).reshape(-1, 4).astype(np.float64) for image in ground_truths]
    labels = [as_numpy(image["labels"]).reshape(-1).astype(np.int64) for image in ground_truths]
    truth = {
        "boxes": np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float64),
        "classes": np.concatenate(labels) if labels else np.zeros(0, np.int64),
        "object_image": np.concatenate([np.full(len(b), i, np.int64) for i, b in enumerate(boxes)]) if boxes else np.zeros(0, np.int64),
        "counts": np.array([len(b) for b in boxes], np.int64),
    }
    predictions = [{key: torch.as_tensor(as_numpy(value)) for key, value in image.items()} for image in detections]
    return coco_detection_metrics(predictions, truth, backend="pycocotools")
