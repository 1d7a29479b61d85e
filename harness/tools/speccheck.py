"""``visionbench spec check``: the specs, the implementations and the tests agree.

- every spec file parses and validates, and its file name matches its number and id;
- every interface exists in ``reference/`` and ``student/`` with the spec's signature;
- ``student/<topic>.py`` is exactly the stub generated from the reference;
- every check but metric and latency ones (made from the spec) has exactly one test tied by ``@check(id)`` and
  named ``test_<check id>``, and every test is tied to one check;
- topic tests import only the authoring API (``harness.testing``) from the harness and re-define none of its helpers;
- every topic has its canaries (``tests/harness/test_canaries_<topic>.py``) and every metric check a value in the
  reference baseline (``leaderboard/baselines/reference.json``);
- ruff finds nothing to complain about in the project;
- every task names a known dataset and every metric check a known metric; every forbid name resolves, and so
  does every harness function a task's inputs name.

Tests are found by reading the test files (no import), so the check is fast and safe.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import harness.testing
from harness.conventions import LEADERBOARD_DIR, MIN_LEARNER_BUGS, ROOT, SPECS_DIR, STUDENT_DIR, canary_test_path, topic_test_path
from harness.datasets import registry
from harness.metrics import METRICS
from harness.spec import CheckKind, SpecError, Task, TopicSpec, load_spec
from harness.spec.signatures import signature_mismatch
from harness.tools.stubgen import stub_source
from harness.topic.forbid import resolve_name
from harness.topic.generated import GENERATED_KINDS
from harness.topic.loader import ImplementationError, load_topic, resolve_implementation

__all__ = ["Problem", "check_all", "tests_by_check"]


@dataclass(frozen=True)
class Problem:
    file: str
    item: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.item}: {self.message}"


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _test_files(topic: str) -> list[Path]:
    path = topic_test_path(topic)
    if path.is_dir():
        return sorted(path.rglob("test_*.py"))
    return [path] if path.exists() else []


def _check_ids(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    ids = []
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", getattr(decorator.func, "attr", None)) == "check":
            if decorator.args and isinstance(decorator.args[0], ast.Constant):
                ids.append(str(decorator.args[0].value))
    return ids


def tests_by_check(topic: str) -> tuple[dict[str, list[str]], list[str]]:
    """(check id -> test names tied to it, names of tests tied to no check) for a topic's test files."""
    by_check: dict[str, list[str]] = {}
    untied: list[str] = []
    for file in _test_files(topic):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")):
            functions += [n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for function in functions:
            if not function.name.startswith("test"):
                continue
            ids = _check_ids(function)
            if len(ids) != 1:
                untied.append(f"{function.name} (tied to {len(ids)} checks)")
            for check_id in ids:
                by_check.setdefault(check_id, []).append(function.name)
    return by_check, untied


def _check_tests(spec: TopicSpec) -> list[Problem]:
    files = _test_files(spec.id)
    where = _relative(files[0] if files else topic_test_path(spec.id))
    if not files:
        return [Problem(where, spec.id, "no test file for this topic")]
    by_check, untied = tests_by_check(spec.id)
    problems = [Problem(where, name, "every test must be tied to exactly one check with @check(id)") for name in untied]
    for check_id, check in spec.checks.items():
        tests = by_check.get(check_id, [])
        if check.kind in GENERATED_KINDS:
            if tests:
                problems.append(Problem(where, check_id, f"a {check.kind.value} check's test is made from the spec; remove {tests}"))
        elif len(tests) != 1:
            problems.append(Problem(where, check_id, f"check has {len(tests)} tests (needs exactly one): {tests}"))
        elif tests[0] != f"test_{check_id}":
            problems.append(Problem(where, tests[0], f"a test is named after its check: rename it test_{check_id}"))
    for check_id, tests in by_check.items():
        if check_id not in spec.checks:
            problems.append(Problem(where, ", ".join(tests), f"@check({check_id!r}) is not a check of the spec"))
    for file in files:
        problems += _check_authoring(file)
    return problems


AUTHORING_API = {name.lower(): name for name in harness.testing.__all__}  # matched case-insensitively, without leading "_"
# Names under which topic tests used to re-type what the authoring API provides.
RETYPED = {"dtypes": "the `dtype` fixture", "dtype_ids": "the `dtype` fixture", "generator": "seeded_generator", "random": "seeded_randn",
           "expect_value_error": "assert_raises", "cocoeval": "coco_box_metrics"}  # fmt: skip


def _check_authoring(file: Path) -> list[Problem]:
    """A topic test imports only the authoring API from the harness and re-types none of its helpers."""
    where = _relative(file)
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    problems = []
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
        for name in names:
            key = name.lstrip("_").lower()
            if key in AUTHORING_API and not name.startswith("test"):
                problems.append(Problem(where, name, f"re-defines the authoring helper harness.testing.{AUTHORING_API[key]}; use it instead"))
            elif key in RETYPED:
                problems.append(Problem(where, name, f"re-types what the authoring API provides: use {RETYPED[key]} (harness.testing)"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] == "harness" and module != "harness.testing":
                    problems.append(Problem(where, f"line {node.lineno}", f"imports {module}: topic tests import only harness.testing"))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.Generator":
            problems.append(Problem(where, f"line {node.lineno}", "builds a torch.Generator: use harness.testing.seeded_generator"))
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("mark.parametrize") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and first.value == "dtype":
                problems.append(Problem(where, f"line {node.lineno}", "parametrizes dtype by hand: the `dtype` fixture comes from the spec"))
    return problems


def _check_canaries_and_baseline(spec: TopicSpec, baseline: dict[str, dict]) -> list[Problem]:
    problems = []
    canaries = canary_test_path(spec.id)
    if not canaries.exists():
        problems.append(Problem(_relative(canaries), spec.id, "every topic has canaries: wrong implementations that must lose points"))
    elif (bugs := _learner_bug_count(canaries)) < MIN_LEARNER_BUGS:
        problems.append(Problem(_relative(canaries), spec.id, f"the learner-bug catalogue has {bugs} LearnerBug entries; a topic needs {MIN_LEARNER_BUGS}"))
    for check_id, check in spec.checks.items():
        if check.kind is CheckKind.metric and check_id not in baseline.get(spec.id, {}):
            problems.append(Problem("leaderboard/baselines/reference.json", f"{spec.id}.{check_id}", "no baseline value: run `visionbench regress --update`"))
    return problems


def _learner_bug_count(canaries: Path) -> int:
    """How many ``LearnerBug(...)`` entries a canary file's catalogue holds."""
    tree = ast.parse(canaries.read_text())
    return sum(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LearnerBug" for node in ast.walk(tree))


# A `returns:` names the output's dtype, or says there is no tensor (None, a number, a module...).
_NAMES_A_DTYPE = re.compile(r"\b(dtype|u?int(8|16|32|64)?|float(16|32|64)?|bfloat16|bool|complex\w*|None|str|dict|list|tuple|Module|the input's)\b")


def _check_returns(spec: TopicSpec, file: str) -> list[Problem]:
    """Every interface with a signature states what it returns, with the dtype."""
    problems = []
    for name, interface in spec.interfaces.items():
        if interface.signature is None:
            continue
        if not interface.returns:
            problems.append(Problem(file, f"interfaces.{name}", "states no `returns:` (what comes back, with its dtype)"))
        elif not _NAMES_A_DTYPE.search(interface.returns):
            problems.append(Problem(file, f"interfaces.{name}", f"`returns: {interface.returns}` names no dtype"))
    return problems


def _baseline() -> dict[str, dict]:
    """Topic -> check id -> recorded value, from the reference baseline (empty when there is none)."""
    path = LEADERBOARD_DIR / "baselines" / "reference.json"
    if not path.exists():
        return {}
    by_topic: dict[str, dict] = {}
    for key, value in json.loads(path.read_text()).get("metrics", {}).items():
        topic, check_id = key.split(".", 1)
        by_topic.setdefault(topic, {})[check_id] = value
    return by_topic


def check_lint(root: Path = ROOT) -> list[Problem]:
    """ruff over the project, with the settings of pyproject.toml."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        return [Problem("pyproject.toml", "ruff", "ruff is not installed: pip install -e '.[dev]'")]
    completed = subprocess.run([ruff, "check", "--quiet", "--output-format=concise", str(root)], cwd=root, capture_output=True, text=True)
    lines = [line for line in completed.stdout.splitlines() if line.strip() and not line.startswith("Found")]
    return [Problem(line.split(":")[0], "ruff", ":".join(line.split(":")[1:]).strip()) for line in lines]


def _check_implementation(spec: TopicSpec, name: str) -> list[Problem]:
    impl = resolve_implementation(name)
    file = f"{name}/{spec.id}.py"
    try:
        module = load_topic(impl, spec.id)
    except ImplementationError as error:
        return [Problem(file, spec.id, str(error))]
    problems = []
    for interface_name, interface in spec.interfaces.items():
        if not hasattr(module, interface_name):
            problems.append(Problem(file, interface_name, "missing"))
        elif interface.signature is not None:
            mismatch = signature_mismatch(getattr(module, interface_name), interface.signature)
            if mismatch:
                problems.append(Problem(file, interface_name, mismatch))
    return problems


def _check_references(spec: TopicSpec, file: str) -> list[Problem]:
    problems = []
    for name, interface in spec.interfaces.items():
        for forbidden in interface.forbid:
            try:
                resolve_name(forbidden)
            except ValueError as error:
                problems.append(Problem(file, f"interfaces.{name}.forbid", str(error)))
    datasets = registry()
    for task_id, task in spec.tasks.items():
        if task.dataset not in datasets:
            problems.append(Problem(file, f"tasks.{task_id}.dataset", f"unknown dataset {task.dataset!r} (datasets.yaml)"))
        problems += _check_providers(task, f"tasks.{task_id}", file)
    for check_id, check in spec.checks.items():
        if check.metric is not None and check.metric not in METRICS:
            problems.append(Problem(file, f"checks.{check_id}.metric", f"unknown metric {check.metric!r}; known: {sorted(METRICS)}"))
    return problems


def _check_providers(task: Task, where: str, file: str) -> list[Problem]:
    """Every harness function a task's (or its variants') inputs name can be imported and called."""
    named = [(f"{where}.{kind}.{name}", value) for kind in ("train_inputs", "predict_inputs") for name, value in getattr(task, kind).items()]
    for variant_id, variant in task.variants.items():
        for kind in ("train_inputs", "predict_inputs"):
            named += [(f"{where}.variants.{variant_id}.{kind}.{name}", value) for name, value in getattr(variant, kind).items()]
    problems = []
    for item, value in named:
        if not isinstance(value, str):
            continue
        module, function = value.split(":")
        try:
            provider = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError) as error:
            problems.append(Problem(file, item, f"{value} does not resolve: {error}"))
            continue
        if not callable(provider):
            problems.append(Problem(file, item, f"{value} is not a function"))
    return problems


def _check_stub(spec: TopicSpec) -> list[Problem]:
    stub = STUDENT_DIR / f"{spec.id}.py"
    if stub.exists() and stub.read_text(encoding="utf-8") != stub_source(spec):
        return [Problem(_relative(stub), spec.id, f"out of date with reference/{spec.id}.py: run `visionbench stub {spec.id}`")]
    return []


def check_all(specs_dir: Path = SPECS_DIR) -> tuple[list[TopicSpec], list[Problem]]:
    """Validate every spec and its implementations and tests; returns the valid specs and all problems found."""
    specs: list[TopicSpec] = []
    problems: list[Problem] = []
    for path in sorted(specs_dir.glob("*.yaml")):
        try:
            specs.append(load_spec(path))
        except SpecError as error:
            problems.append(Problem(_relative(path), "spec", str(error).removeprefix(f"{path}: ")))
    seen: dict[int, str] = {}
    baseline = _baseline()
    for spec in specs:
        file = _relative(specs_dir / f"{spec.number:02d}_{spec.id}.yaml")
        if spec.number in seen:
            problems.append(Problem(file, "number", f"{spec.number} is also used by {seen[spec.number]}"))
        seen[spec.number] = spec.id
        problems += _check_references(spec, file)
        problems += _check_returns(spec, file)
        problems += _check_implementation(spec, "reference") + _check_implementation(spec, "student")
        problems += _check_stub(spec)
        problems += _check_tests(spec)
        problems += _check_canaries_and_baseline(spec, baseline)
    return specs, problems + check_lint()
