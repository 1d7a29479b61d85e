"""``visionbench spec check``: the specs, the implementations and the tests agree.

- every spec file parses and validates, and its file name matches its number and id;
- every interface exists in ``reference/`` and ``student/`` with the spec's signature;
- ``student/<topic>.py`` is exactly the stub generated from the reference;
- every check has exactly one test tied by ``@check(id)``, and every test is tied to one check;
- every task names a known dataset and every metric check a known metric; every forbid name resolves, and so
  does every harness function a task's inputs name.

Tests are found by reading the test files (no import), so the check is fast and safe.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

from harness.datasets import registry
from harness.forbid import resolve_name
from harness.loader import ImplementationError, load_topic, resolve_implementation
from harness.metrics import METRICS
from harness.paths import ROOT, SPECS_DIR, STUDENT_DIR, TOPIC_TESTS_DIR
from harness.signatures import signature_mismatch
from harness.spec import SpecError, Task, TopicSpec, load_spec
from harness.stubgen import stub_source

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
    folder = TOPIC_TESTS_DIR / topic
    if folder.is_dir():
        return sorted(folder.rglob("test_*.py"))
    file = TOPIC_TESTS_DIR / f"test_{topic}.py"
    return [file] if file.exists() else []


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
    where = _relative(files[0]) if files else f"tests/topics/test_{spec.id}.py"
    if not files:
        return [Problem(where, spec.id, "no test file for this topic")]
    by_check, untied = tests_by_check(spec.id)
    problems = [Problem(where, name, "every test must be tied to exactly one check with @check(id)") for name in untied]
    for check_id in spec.checks:
        tests = by_check.get(check_id, [])
        if len(tests) != 1:
            problems.append(Problem(where, check_id, f"check has {len(tests)} tests (needs exactly one): {tests}"))
    for check_id, tests in by_check.items():
        if check_id not in spec.checks:
            problems.append(Problem(where, ", ".join(tests), f"@check({check_id!r}) is not a check of the spec"))
    return problems


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
    for spec in specs:
        file = _relative(specs_dir / f"{spec.number:02d}_{spec.id}.yaml")
        if spec.number in seen:
            problems.append(Problem(file, "number", f"{spec.number} is also used by {seen[spec.number]}"))
        seen[spec.number] = spec.id
        problems += _check_references(spec, file)
        problems += _check_implementation(spec, "reference") + _check_implementation(spec, "student")
        problems += _check_stub(spec)
        problems += _check_tests(spec)
    return specs, problems
