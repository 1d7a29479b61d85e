"""The implementation boundary: interfaces are checked, forbidden calls blocked, exceptions classified."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from harness.spec import TopicSpec
from harness.spec.outcomes import CheckFailure, CheckTimeout, ForbiddenCall, InterfaceError, Outcome
from harness.topic.forbid import forbidding
from harness.topic.guard import CheckView, GradedModule
from harness.topic.loader import resolve_implementation
from harness.topic.verdicts import classify

SPEC = TopicSpec.model_validate(
    {
        "id": "demo",
        "number": 7,
        "title": "Demo",
        "idea": "An idea.",
        "interfaces": {
            "conv": {"signature": "(x, w)", "doc": "conv2d", "forbid": ["torch.nn.functional.conv2d"]},
            "keep": {"signature": "(boxes, scores)", "doc": "nms", "forbid": ["torchvision.ops.nms"]},
            "Layer": {"signature": "(channels)", "doc": "a layer", "forbid": ["torch.nn.functional.conv2d"]},
            "missing": {"signature": "()", "doc": "not implemented at all"},
            "shifted": {"signature": "(x, y)", "doc": "wrong signature below"},
        },
        "checks": {"c": {"kind": "property", "points": 1, "description": "d", "uses": ["conv"]}},
    }
)


def module_from(source: str) -> types.ModuleType:
    module = types.ModuleType("demo_impl")
    exec(source, vars(module))
    return module


SOURCE = """
import torch
import torch.nn.functional as F
from torch.nn.functional import conv2d as aliased
import torchvision

def conv(x, w):
    return F.conv2d(x, w)

def keep(boxes, scores):
    return torchvision.ops.nms(boxes, scores, 0.5)

class Layer(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(channels, channels, 1, 1))
    def forward(self, x):
        return aliased(x, self.weight)

def shifted(y, x):
    return x
"""


@pytest.fixture
def graded():
    return GradedModule(module_from(SOURCE), SPEC)


def test_forbidden_calls_are_blocked_through_any_path(graded):
    x, w = torch.ones(1, 1, 3, 3), torch.ones(1, 1, 1, 1)
    with pytest.raises(ForbiddenCall, match="demo.conv called torch.nn.functional.conv2d"):
        graded.conv(x, w)
    with pytest.raises(ForbiddenCall, match="torchvision.ops.nms"):
        graded.keep(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([1.0]))
    layer = graded.Layer(1)  # a class: constructor and methods guarded, the module itself unchanged
    assert isinstance(layer, torch.nn.Module) and set(layer.state_dict()) == {"weight"}
    with pytest.raises(ForbiddenCall):
        layer(x)
    assert torch.equal(F.conv2d(x, w), x) and torchvision.ops.nms is not None  # restored outside the graded call


def test_swallowed_violation_is_still_reported():
    def sneaky():
        try:
            F.conv2d(torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
        except Exception:
            return "fallback"

    with pytest.raises(ForbiddenCall), forbidding(["torch.nn.functional.conv2d"], "demo.sneaky"):
        sneaky()


def test_missing_and_wrong_signature_are_interface_errors(graded):
    with pytest.raises(InterfaceError, match=r"demo.missing is missing: the spec requires missing\(\)"):
        graded.missing
    with pytest.raises(InterfaceError, match=r"demo.shifted has signature \(y, x\), the spec requires \(x, y\)"):
        graded.shifted
    with pytest.raises(AttributeError, match="not an interface"):
        graded.torch


def raised(error: BaseException, where: str) -> BaseException:
    """``error`` with a traceback whose innermost frame is in file ``where``."""
    namespace: dict = {}
    exec(compile("def fail(e):\n    raise e\n", where, "exec"), namespace)
    try:
        namespace["fail"](error)
    except BaseException as caught:
        return caught
    raise AssertionError("unreachable")


def test_classify_outcomes(tmp_path):
    impl = resolve_implementation(tmp_path)
    inside, outside = str(tmp_path / "demo.py"), "/somewhere/else/library.py"
    stub = raised(NotImplementedError("demo.conv: see specs/07_demo.yaml"), inside)
    assert classify(stub, impl).outcome is Outcome.todo and classify(stub, impl).message == "todo: demo.conv"
    assert classify(raised(NotImplementedError("no kernel"), outside), impl).outcome is Outcome.error
    assert classify(None, impl).outcome is Outcome.passed
    failure = classify(CheckFailure("off", {"max_abs_error": 1.0}), impl)
    assert failure.outcome is Outcome.failed and failure.numbers == {"max_abs_error": 1.0}
    assert classify(AssertionError("wrong"), impl).outcome is Outcome.failed
    assert classify(ForbiddenCall("nope"), impl).outcome is Outcome.forbidden
    assert classify(CheckTimeout("slow"), impl).outcome is Outcome.timeout
    crash = classify(raised(ZeroDivisionError("division by zero"), inside), impl)
    assert crash.outcome is Outcome.error and crash.message.startswith("ZeroDivisionError: division by zero (in fail, demo.py:2)")
    own_assert = classify(raised(AssertionError(), inside), impl)  # a bare `assert` in the submission is its crash
    assert (own_assert.outcome, own_assert.message) == (Outcome.error, "AssertionError (in fail, demo.py:2)")


MUTATING = TopicSpec.model_validate(
    {
        "id": "demo",
        "number": 7,
        "title": "Demo",
        "idea": "An idea.",
        "interfaces": {
            "relu": {"signature": "(x)", "doc": "relu"},
            "clip": {"signature": "(boxes, size)", "doc": "clips boxes", "mutates": ["boxes"]},
            "scale": {"signature": "(batch, factor=2.0)", "doc": "scales a list of arrays"},
            "Norm": {"signature": "()", "doc": "a layer"},
        },
        "checks": {"c": {"kind": "property", "points": 1, "description": "d", "uses": ["relu"]}},
    }
)

MUTATING_SOURCE = """
import numpy as np
import torch

def relu(x):
    return x.clamp_(min=0)

def clip(boxes, size):
    return boxes.clamp_(0, size)

def scale(batch, factor=2.0):
    batch[1] *= factor
    return batch

class Norm(torch.nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.nn.functional.relu(x, inplace=True)
"""


def test_an_argument_changed_in_place_fails_the_check_unless_the_spec_allows_it():
    graded = GradedModule(module_from(MUTATING_SOURCE), MUTATING)
    x = torch.tensor([-1.0, float("nan"), 2.0])
    with pytest.raises(CheckFailure, match=r"demo.relu changed its argument x in place \(1 of 3 values changed\)"):
        graded.relu(x)
    assert torch.equal(graded.clip(torch.tensor([-1.0, 5.0]), 4.0), torch.tensor([0.0, 4.0]))  # `mutates: [boxes]`
    with pytest.raises(CheckFailure, match=r"argument batch\[1\] in place"):
        graded.scale([np.zeros(2), np.ones(2)])
    with pytest.raises(CheckFailure, match="demo.Norm changed its argument x"):
        graded.Norm()(torch.tensor([-1.0, 1.0]))
    assert torch.equal(graded.relu(torch.tensor([float("nan"), 1.0])).isnan(), torch.tensor([True, False]))  # NaN == NaN


def test_a_check_sees_only_the_interfaces_it_uses(graded):
    view = CheckView(graded, "c", ["keep"])
    with pytest.raises(ForbiddenCall):  # guarded like the module's own
        view.keep(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([1.0]))
    with pytest.raises(LookupError, match="the test of check 'c' reads interface 'conv', which the check's `uses` does not list"):
        view.conv
    with pytest.raises(AttributeError, match="not an interface"):
        view.torch
