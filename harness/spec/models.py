"""The topic spec: pydantic models for ``specs/NN_<topic>.yaml`` and the loader that validates them.

A spec is the contract of one topic: the interfaces a student implements (with their signatures and the
library calls they may not make), the graded checks (kind, points, tolerances, thresholds, budgets) and the
metric tasks (the topic's train/predict entry points and the format of their outputs).
"""

from __future__ import annotations

import builtins
import re
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from harness.conventions import SPECS_DIR

__all__ = [
    "CheckKind",
    "Tolerance",
    "Budget",
    "Interface",
    "InputValue",
    "Variant",
    "Task",
    "Check",
    "TopicSpec",
    "SpecError",
    "load_spec",
    "load_specs",
    "spec_path",
    "json_schema",
]

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
PROVIDER = r"^harness(\.[a-z_][a-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*$"  # 'module:function' inside the harness


class CheckKind(str, Enum):
    """What a check exercises; ``quick`` checks need no training, ``full`` ones do."""

    interface = "interface"
    property = "property"
    oracle = "oracle"
    metric = "metric"
    latency = "latency"

    @builtins.property  # the member named "property" shadows the builtin inside this class
    def tier(self) -> Literal["quick", "full"]:
        return "full" if self in (CheckKind.metric, CheckKind.latency) else "quick"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerance(_Strict):
    """``|actual - expected| <= atol + rtol * |expected|``, elementwise."""

    rtol: Annotated[float, Field(ge=0)]
    atol: Annotated[float, Field(ge=0)]


class Budget(_Strict):
    """Resources a check may use on a hardware profile."""

    profile: str = "cpu-2core"
    train_s: Annotated[float | None, Field(gt=0)] = None
    p50_ms: Annotated[float | None, Field(gt=0)] = None
    p95_ms: Annotated[float | None, Field(gt=0)] = None
    peak_mb: Annotated[float | None, Field(gt=0)] = None


class Interface(_Strict):
    """One function or class a student implements."""

    signature: str | None = Field(
        description="Python parameter list, e.g. '(x, weight, bias=None)'; for a class, of __init__ without self; null for a constant"
    )
    doc: str = Field(description="One-line contract: semantics, shapes, conventions.")
    returns: str | None = Field(
        default=None,
        description=(
            "What comes back, with its dtype: e.g. 'Tensor[N, M], the dtype of boxes1', 'int64 Tensor[K]', 'float', "
            "'None (updates model in place)'; for a class, what calling an instance returns. Required when there is a signature."
        ),
    )
    forbid: list[str] = Field(default_factory=list, description="Dotted library names the interface may not call.")
    mutates: list[str] = Field(
        default_factory=list,
        description="Parameters the interface may change in place; every other Tensor/ndarray argument must come back unchanged.",
    )

    @model_validator(mode="after")
    def _signature_parses(self) -> Interface:
        from harness.spec.signatures import parse_signature

        if self.signature is not None:
            parse_signature(self.signature)  # raises ValueError with the reason
        return self


def _provider_or_literal(value: str | bool | int | float | None) -> str | bool | int | float | None:
    if isinstance(value, str) and re.fullmatch(PROVIDER, value) is None:
        raise ValueError(f"a string input names a harness function 'harness.module:function', got {value!r}")
    return value


InputValue = Annotated[StrictStr | StrictBool | StrictInt | StrictFloat | None, AfterValidator(_provider_or_literal)]
"""What the harness puts into an entry point's input dict: the result of a harness function (``'module:function'``,
called with no arguments each time, e.g. committed pretrained weights) or a literal number, bool or null (None)."""

_INPUT_NAME = Annotated[str, Field(pattern=IDENTIFIER)]


class Variant(_Strict):
    """The same task with some harness inputs changed, e.g. trained without the pretrained weights.

    A metric check names a variant as its ``baseline``; the harness then runs the task both ways in the same process.
    """

    description: str
    train_inputs: dict[_INPUT_NAME, InputValue] = Field(default_factory=dict, description="Replaces or adds entries of the task's train_inputs.")
    predict_inputs: dict[_INPUT_NAME, InputValue] = Field(default_factory=dict, description="Replaces or adds entries of the task's predict_inputs.")

    @model_validator(mode="after")
    def _changes_something(self) -> Variant:
        if not self.train_inputs and not self.predict_inputs:
            raise ValueError("a variant changes at least one of train_inputs and predict_inputs")
        return self


class Task(_Strict):
    """A metric task: the topic's entry points, the format of what they return, and the harness inputs they get."""

    train: str = Field(description="Entry point `train(train_split, *, seed, budget_s) -> model`.")
    predict: str = Field(description="Entry point `predict(model, inputs) -> outputs`.")
    dataset: str = Field(description="Name in datasets.yaml.")
    outputs: str = Field(description="What predict returns, with shapes and dtypes.")
    train_inputs: dict[_INPUT_NAME, InputValue] = Field(
        default_factory=dict, description="Entries the harness adds to the training dict: name -> 'harness.module:function' or a literal."
    )
    predict_inputs: dict[_INPUT_NAME, InputValue] = Field(
        default_factory=dict, description="Entries the harness adds to predict's inputs dict: name -> 'harness.module:function' or a literal."
    )
    predict_fields: list[_INPUT_NAME] = Field(
        default_factory=lambda: ["images"],
        description="Fields of the hidden split predict receives (never its labels); [] for generation from predict_inputs alone.",
    )
    variants: dict[Annotated[str, Field(pattern=IDENTIFIER)], Variant] = Field(
        default_factory=dict, description="The same task with some inputs changed; a metric check's `baseline` names one."
    )

    def inputs(self, variant: str | None = None) -> tuple[dict[str, InputValue], dict[str, InputValue]]:
        """(train_inputs, predict_inputs) of the task, or of one of its variants.

        Raises:
            KeyError: ``variant`` is not one of the task's variants.
        """
        if variant is None:
            return dict(self.train_inputs), dict(self.predict_inputs)
        if variant not in self.variants:
            raise KeyError(f"the task has no variant {variant!r} (has: {sorted(self.variants)})")
        changes = self.variants[variant]
        return {**self.train_inputs, **changes.train_inputs}, {**self.predict_inputs, **changes.predict_inputs}


class Check(_Strict):
    """One graded check; exactly one test in tests/topics carries ``@check(<id>)`` for it."""

    kind: CheckKind
    points: Annotated[float, Field(gt=0)]
    description: str
    uses: list[str] = Field(description="Interfaces the check grades (their forbid lists apply while they run).")
    oracle: str | None = Field(default=None, description="The trusted implementation compared against.")
    tolerance: dict[Literal["float16", "bfloat16", "float32", "float64", "uint8"], Tolerance] | None = None
    significance: Annotated[float | None, Field(gt=0, le=0.01)] = Field(
        default=None,
        description="A statistical check's false-alarm rate: a distribution test fails below this p-value, a count beyond the matching z-score.",
    )
    task: str | None = Field(default=None, description="Key in the spec's tasks (metric and latency checks).")
    metric: str | None = Field(default=None, description="Metric computed by the harness (metric checks).")
    threshold: float | None = Field(default=None, description="Value a student must reach.")
    higher_is_better: bool = True
    reference_value: float | None = Field(default=None, description="What the reference reached when calibrated.")
    calibration: str | None = Field(default=None, description="Seeds, values and margin behind the threshold.")
    regression_tolerance: Annotated[float | None, Field(ge=0)] = Field(
        default=None,
        description="How far the reference may move from its baseline before `visionbench regress` fails (metric units); "
        "default: half the margin between reference_value and threshold.",
    )
    budget: Budget | None = None
    baseline: str | None = Field(
        default=None,
        description="A variant of the task (metric checks): the check's value is then the task's metric minus the same "
        "metric of that variant, both trained and measured in the same run; threshold (the margin to beat it by), "
        "reference_value and higher_is_better apply to that difference.",
    )
    hidden: bool = Field(default=False, description="Details shown to students only after grades are published.")

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> Check:
        if self.kind is CheckKind.oracle and self.oracle is None:
            raise ValueError("an oracle check names its oracle")
        if self.baseline is not None and self.kind is not CheckKind.metric:
            raise ValueError("only a metric check compares with a baseline variant")
        if self.kind is CheckKind.metric:
            required = ("task", "metric", "threshold", "reference_value", "calibration", "budget")
            missing = [f for f in required if getattr(self, f) is None]
            if missing:
                raise ValueError(f"a metric check needs {', '.join(missing)}")
        if self.kind is CheckKind.latency:
            budget = self.budget
            if self.task is None or budget is None or budget.train_s is None:
                raise ValueError("a latency check needs a task and a budget with train_s (the training of the model it times)")
            if budget.p50_ms is None and budget.p95_ms is None and budget.peak_mb is None:
                raise ValueError("a latency check's budget limits p50_ms, p95_ms or peak_mb")
        return self

    def tolerance_for(self, dtype: Any) -> Tolerance:
        """The tolerance for a dtype (a torch/numpy dtype or its name); KeyError names the missing one."""
        name = str(dtype).removeprefix("torch.")
        if not self.tolerance or name not in self.tolerance:
            raise KeyError(f"the spec gives no tolerance for {name} (has: {sorted(self.tolerance or {})})")
        return self.tolerance[name]

    @property
    def training_runs(self) -> int:
        """Trainings the check may wait for: its task's, and for a latency check also the reference's, trained to be
        timed beside it, or for a check with a baseline also the baseline variant's."""
        return 2 if self.kind is CheckKind.latency or self.baseline is not None else 1

    @property
    def regression_allowance(self) -> float | None:
        """``regression_tolerance``, or half the calibrated margin between reference value and threshold."""
        if self.regression_tolerance is not None:
            return self.regression_tolerance
        if self.reference_value is None or self.threshold is None:
            return None
        return abs(self.reference_value - self.threshold) / 2

    def passes(self, value: float) -> bool:
        """Whether a metric value reaches the threshold."""
        assert self.threshold is not None
        return value >= self.threshold if self.higher_is_better else value <= self.threshold


class TopicSpec(_Strict):
    """The contract of one topic."""

    id: Annotated[str, Field(pattern=IDENTIFIER)]
    number: Annotated[int, Field(ge=1, le=99)]
    title: str
    idea: str
    prerequisites: list[str] = Field(default_factory=list)
    interfaces: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], Interface]
    tasks: dict[Annotated[str, Field(pattern=IDENTIFIER)], Task] = Field(default_factory=dict)
    checks: dict[Annotated[str, Field(pattern=IDENTIFIER)], Check]

    @model_validator(mode="after")
    def _references_resolve(self) -> TopicSpec:
        for check_id, check in self.checks.items():
            unknown = [name for name in check.uses if name not in self.interfaces]
            if unknown:
                raise ValueError(f"check {check_id!r} uses unknown interfaces {unknown}")
            if check.task is not None and check.task not in self.tasks:
                raise ValueError(f"check {check_id!r} names unknown task {check.task!r}")
            if check.baseline is not None and check.baseline not in self.tasks[check.task].variants:
                variants = sorted(self.tasks[check.task].variants)
                raise ValueError(f"check {check_id!r} names baseline {check.baseline!r}, not a variant of task {check.task!r} (has: {variants})")
        for task_id in self.tasks:  # the checks of a task share one training, so one training budget
            budgets = {c.budget.train_s for c in self.checks.values() if c.task == task_id and c.budget is not None}
            if len(budgets) > 1:
                raise ValueError(f"the checks of task {task_id!r} give different training budgets {sorted(budgets)}")
        for task_id, task in self.tasks.items():
            for entry in (task.train, task.predict):
                if entry not in self.interfaces:
                    raise ValueError(f"task {task_id!r} entry point {entry!r} is not an interface")
        return self

    @property
    def total_points(self) -> float:
        return sum(check.points for check in self.checks.values())


class SpecError(Exception):
    """A spec file that cannot be read or does not validate; the message names the file and the item."""


def spec_path(topic: str, specs_dir: Path = SPECS_DIR) -> Path:
    matches = sorted(specs_dir.glob(f"[0-9][0-9]_{topic}.yaml"))
    if len(matches) != 1:
        raise SpecError(f"{specs_dir}: expected one spec file NN_{topic}.yaml, found {len(matches)}")
    return matches[0]


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, ten times faster, when PyYAML has it


def load_spec(path: Path) -> TopicSpec:
    """Read and validate one spec file.

    Raises:
        SpecError: the YAML does not parse (message gives the line), the content does not validate
            (message gives each failing item's path), or the file name does not match ``NN_<id>.yaml``.
    """
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(f"{path}: invalid YAML at {where}: {error.problem}") from None
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"{path}: {error}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        spec = TopicSpec.model_validate(raw)
    except ValidationError as error:
        items = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in error.errors())
        raise SpecError(f"{path}: {items}") from None
    expected = f"{spec.number:02d}_{spec.id}.yaml"
    if path.name != expected:
        raise SpecError(f"{path}: file name must be {expected} (from number and id)")
    return spec


@cache
def _load_specs_cached(specs_dir: Path) -> dict[str, TopicSpec]:
    specs = [load_spec(path) for path in sorted(specs_dir.glob("[0-9][0-9]_*.yaml"))]
    return {spec.id: spec for spec in specs}


def load_specs(specs_dir: Path = SPECS_DIR) -> dict[str, TopicSpec]:
    """All specs, by topic id, in curriculum order (cached; raises SpecError on the first bad file)."""
    return _load_specs_cached(Path(specs_dir).resolve())


def json_schema() -> dict[str, Any]:
    """JSON Schema of a topic spec, for editors and for ``specs/schema.json``."""
    schema = TopicSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "visionbench topic spec"
    return schema
