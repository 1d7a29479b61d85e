"""Auditing the checks with degenerate implementations: does any check give points to code that does nothing useful?

Each degenerate is a submission directory generated from the reference (nothing is written per topic) and graded
like any submission (:func:`harness.grader.run.run_topic`, a topic process of its own):

- ``zeros``: every interface returns the reference's output with every tensor, array and number zeroed (same
  structure, shapes and dtypes); a class's instances return their ``forward`` (or ``__call__``) output zeroed, and a
  returned ``nn.Module`` is zeroed the same way (a forward hook);
- ``constant``: the same with a constant (0.5 for floats, 1 for integers, True for booleans);
- ``echo``: every interface returns its first tensor or array argument (else its first argument) unchanged, without
  running the reference; a class's instances return the first tensor their ``forward`` gets;
- ``noise``: the reference's output plus noise far above any tolerance (each float times 1 +- 5% plus +-0.01, signs
  drawn from a fixed seed; +1 on integers; about one boolean in ten flipped), same dtype;
- ``stub:<interface>``: the reference with that one interface replaced by its student stub (``raise
  NotImplementedError``, :mod:`harness.tools.stubgen`), graded on the checks whose ``uses`` name it.

Every degenerate changes only what the tests see: the reference's own definitions keep calling each other unchanged
(its functions, and the methods of its classes, run on a snapshot of the module's namespace, as the canaries'
``REPLACE`` prelude does), so each interface is degenerate on its own. A check that passes ``stub:X`` therefore never
calls X, whatever its ``uses`` says.

A check that gives a degenerate ``passed`` is a *finding*: a check that cannot tell that implementation from a right
one. Interface checks (a signature, an error raised) are left out: a degenerate wrapped around the reference passes
them by construction. Metric and latency checks (training) are graded at ``tier="full"`` only.

Cost: each boundary degenerate of a topic is graded on every audited check of the tier in one topic process; the stubs
of a topic share topic processes, each check graded once, when no check uses two of them (:func:`plan_batches`). In
those processes this module is also a pytest plugin that stops a check at its first lost item and does not shrink
failing hypothesis examples (see the end of the module): whether a check passes is all the audit needs to know.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest

from harness.conventions import CHECK_MARKER, QUICK_CHECK_LIMIT_ENV, REFERENCE_DIR, Implementation
from harness.grader.run import TopicRun, run_topic, selected_checks
from harness.machine import speed_factor
from harness.spec import CheckKind, TopicSpec, load_specs

__all__ = [
    "BOUNDARY_KINDS", "AUDITED_KINDS", "Degenerate", "Finding", "AuditReport", "PRELUDE", "degenerate_source", "stub_definition",
    "boundary_degenerates", "stub_degenerates", "plan_batches", "audit", "findings_table",
]  # fmt: skip

BOUNDARY_KINDS = ("zeros", "constant", "echo", "noise")
PLUGIN_ENV = "PYTEST_ADDOPTS"  # how the audit's topic processes load this module as a pytest plugin (see the end)
AUDITED_KINDS = frozenset(kind for kind in CheckKind if kind is not CheckKind.interface)
_AUDIT_CHECK_LIMIT_S = 30.0  # a degenerate that makes a test loop is stopped after this many seconds a check

# Appended to the reference module, then `_audit_degenerate(names, kind)`. Names start with `_audit_` so that they
# cannot clash with the reference's own.
PRELUDE = '''
import functools as _audit_functools
import inspect as _audit_inspect
import types as _audit_types

import numpy as _audit_np
import torch as _audit_torch


def _audit_rebound(function, namespace):
    copy = _audit_types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__dict__.update(function.__dict__)
    copy.__qualname__, copy.__doc__, copy.__annotations__ = function.__qualname__, function.__doc__, function.__annotations__
    return copy


def _audit_own(value):
    code = getattr(value, "__code__", None)
    return isinstance(value, _audit_types.FunctionType) and code is not None and code.co_filename == __file__


# The reference as it is now: its functions, and the methods of its classes, look names up here from now on, so the
# degenerate interfaces bound below are what the tests see and nothing inside the reference.
_audit_reference = dict(globals())
for _audit_name, _audit_value in list(_audit_reference.items()):
    if _audit_own(_audit_value):
        _audit_reference[_audit_name] = _audit_rebound(_audit_value, _audit_reference)
    elif isinstance(_audit_value, type) and _audit_value.__module__ == __name__:
        for _audit_key, _audit_member in list(vars(_audit_value).items()):
            if _audit_own(_audit_member):
                setattr(_audit_value, _audit_key, _audit_rebound(_audit_member, _audit_reference))
            elif isinstance(_audit_member, (staticmethod, classmethod)) and _audit_own(_audit_member.__func__):
                setattr(_audit_value, _audit_key, type(_audit_member)(_audit_rebound(_audit_member.__func__, _audit_reference)))


def _audit_first(arguments):
    """The first Tensor or ndarray argument, else the first argument (None without arguments)."""
    found = next((a for a in arguments if isinstance(a, (_audit_torch.Tensor, _audit_np.ndarray))), None)
    return found if found is not None else (arguments[0] if arguments else None)


def _audit_tensor(value, kind):
    if kind in ("zeros", "constant"):
        fill = 0 if kind == "zeros" else (True if value.dtype == _audit_torch.bool else 0.5 if value.is_floating_point() or value.is_complex() else 1)
        if value.requires_grad:  # still connected to the graph, with zero gradients
            return (value * 0).nan_to_num(0.0, 0.0, 0.0) + fill
        return _audit_torch.full_like(value, fill)
    generator = _audit_torch.Generator().manual_seed(0)
    if value.dtype == _audit_torch.bool:
        flip = _audit_torch.rand(value.shape, generator=generator) < 0.1
        if value.numel():
            flip.view(-1)[0] = True
        return value ^ flip.to(value.device)
    if value.is_floating_point():
        sign = (_audit_torch.randint(0, 2, value.shape, generator=generator) * 2 - 1).to(value.device, value.dtype)
        return value * (1 + 0.05 * sign) + 0.01 * sign
    return value + 1


def _audit_array(value, kind):
    if value.dtype.kind not in "biuf":
        return value
    if kind in ("zeros", "constant"):
        fill = 0 if kind == "zeros" else (True if value.dtype.kind == "b" else 0.5 if value.dtype.kind == "f" else 1)
        return _audit_np.full_like(value, fill)
    generator = _audit_np.random.default_rng(0)
    if value.dtype.kind == "b":
        flip = generator.random(value.shape) < 0.1
        if value.size:
            flip.reshape(-1)[0] = True
        return value ^ flip
    if value.dtype.kind == "f":
        sign = (generator.integers(0, 2, value.shape) * 2 - 1).astype(value.dtype)
        return (value * (1 + 0.05 * sign) + 0.01 * sign).astype(value.dtype)
    return (value + 1).astype(value.dtype)


def _audit_number(value, kind):
    if isinstance(value, bool) or isinstance(value, _audit_np.bool_):
        return type(value)({"zeros": False, "constant": True}.get(kind, not value))
    floating = isinstance(value, (float, _audit_np.floating))
    if kind == "zeros":
        return type(value)(0)
    if kind == "constant":
        return type(value)(0.5 if floating else 1)
    return type(value)(value * 1.05 + 0.01 if floating else value + 1)


def _audit_transform(value, kind):
    """``value`` made degenerate: the same structure, shapes and dtypes, with every number changed as ``kind`` says."""
    if isinstance(value, _audit_torch.Tensor):
        return _audit_tensor(value, kind)
    if isinstance(value, _audit_np.ndarray):
        return _audit_array(value, kind)
    if isinstance(value, (bool, int, float, _audit_np.number, _audit_np.bool_)):
        return _audit_number(value, kind)
    if isinstance(value, _audit_torch.nn.Module):  # a model: what it returns is made degenerate
        value.register_forward_hook(lambda module, inputs, output: _audit_transform(output, kind))
        return value
    if isinstance(value, dict):
        return type(value)((key, _audit_transform(item, kind)) for key, item in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_audit_transform(item, kind) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_audit_transform(item, kind) for item in value)
    return value


def _audit_function(original, kind, skip=0):
    signature = _audit_inspect.signature(original)

    @_audit_functools.wraps(original)  # keeps the signature the spec checks
    def degenerate(*args, **kwargs):
        try:
            arguments = list(signature.bind(*args, **kwargs).arguments.values())[skip:]
        except TypeError:  # a wrong call: the reference says so
            return original(*args, **kwargs)
        if kind == "echo":
            return _audit_first(arguments)
        return _audit_transform(original(*args, **kwargs), kind)

    return degenerate


def _audit_class(cls, kind):
    method = "forward" if hasattr(cls, "forward") else "__call__"
    members = {method: _audit_function(getattr(cls, method), kind, skip=1), "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    return type(cls.__name__, (cls,), members)


def _audit_degenerate(names, kind):
    """Bind each interface of ``names`` to its degenerate of ``kind`` ("reference": the reference's snapshot itself)."""
    for name in names:
        value = _audit_reference[name]
        if kind == "reference":
            globals()[name] = value
        elif isinstance(value, type):
            globals()[name] = _audit_class(value, kind)
        elif callable(value):
            globals()[name] = _audit_function(value, kind)
        elif kind != "echo":  # a constant
            globals()[name] = _audit_transform(value, kind)
'''


@dataclass(frozen=True)
class Degenerate:
    """One generated implementation of a topic: ``kind`` is a boundary kind or ``stub:<interface>``."""

    topic: str
    kind: str

    @property
    def stubbed(self) -> str | None:
        """The interface a ``stub:`` degenerate replaces (None for the boundary kinds)."""
        return self.kind.removeprefix("stub:") if self.kind.startswith("stub:") else None

    def checks(self, spec: TopicSpec, tier: str, kinds: frozenset[CheckKind] = AUDITED_KINDS) -> list[str]:
        """The checks it is graded on: those of the tier and of ``kinds`` (for a stub, those whose ``uses`` name it)."""
        return [
            check_id
            for check_id in selected_checks(spec, tier)
            if spec.checks[check_id].kind in kinds and (self.stubbed is None or self.stubbed in spec.checks[check_id].uses)
        ]


@dataclass(frozen=True)
class Finding:
    """A check that gave a degenerate ``passed``."""

    degenerate: str
    topic: str
    check: str
    kind: str


def stub_definition(spec: TopicSpec, interface: str) -> str:
    """The student stub's definition of ``interface`` (its body ``raise NotImplementedError``), as source."""
    from harness.tools.stubgen import stub_source

    source = stub_source(spec)
    node = next((n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == interface), None)
    if node is None:
        raise ValueError(f"the stub of topic {spec.id!r} has no definition {interface!r} (a constant cannot be stubbed)")
    lines = source.splitlines(keepends=True)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "".join(lines[first - 1 : node.end_lineno])


def degenerate_source(spec: TopicSpec, kinds: list[str]) -> str:
    """``reference/<topic>.py`` made degenerate: one boundary kind, or one or more ``stub:<interface>`` (stubs share a
    module when no audited check uses two of them, :func:`plan_batches`). Either way the reference's own definitions
    keep calling each other unchanged: only what the tests see is degenerate."""
    source = (REFERENCE_DIR / f"{spec.id}.py").read_text(encoding="utf-8")
    boundary = [kind for kind in kinds if not kind.startswith("stub:")]
    if boundary:
        if len(kinds) != 1 or boundary[0] not in BOUNDARY_KINDS:
            raise ValueError(f"one boundary kind per module, one of {BOUNDARY_KINDS}; got {kinds}")
        call = f"_audit_degenerate({list(spec.interfaces)!r}, {boundary[0]!r})"
        return f"{source}\n\n# --- visionbench audit: degenerate {boundary[0]!r} ---\n{PRELUDE}\n{call}\n"
    stubs = "\n\n".join(f"# --- visionbench audit: {kind} ---\n{stub_definition(spec, kind.removeprefix('stub:'))}" for kind in kinds)
    call = f"_audit_degenerate({list(spec.interfaces)!r}, 'reference')"
    return f"{source}\n\n# --- visionbench audit: the reference's own calls stay on the reference ---\n{PRELUDE}\n{call}\n\n{stubs}\n"


def boundary_degenerates(topic: str) -> list[Degenerate]:
    return [Degenerate(topic, kind) for kind in BOUNDARY_KINDS]


def stub_degenerates(spec: TopicSpec) -> list[Degenerate]:
    """A ``stub:`` degenerate for every interface that is a function or a class (a constant has no stub)."""
    return [Degenerate(spec.id, f"stub:{name}") for name, interface in spec.interfaces.items() if interface.signature is not None]


def plan_batches(
    spec: TopicSpec, degenerates: list[Degenerate], tier: str, kinds: frozenset[CheckKind] = AUDITED_KINDS
) -> list[list[Degenerate]]:
    """Groups of degenerates graded in one submission: each boundary kind alone; stubs together when no audited check
    uses two of them (a verdict is then caused by the one stub its check names; the reference's own calls never reach
    a stub). Stubs that no audited check uses are left out."""
    batches: list[list[Degenerate]] = []
    for degenerate in degenerates:
        if degenerate.stubbed is None:
            batches.append([degenerate])
            continue
        checks = set(degenerate.checks(spec, tier, kinds))
        if not checks:
            continue
        home = next(
            (
                batch
                for batch in batches
                if batch[0].stubbed is not None and not any(checks & set(other.checks(spec, tier, kinds)) for other in batch)
            ),
            None,
        )
        if home is None:
            batches.append([degenerate])
        else:
            home.append(degenerate)
    return batches


@dataclass
class AuditReport:
    tier: str
    topics: list[str]
    findings: list[Finding] = field(default_factory=list)
    graded: dict[str, int] = field(default_factory=dict)  # degenerate kind (stubs as 'stub') -> (degenerate, check) pairs graded
    processes: int = 0
    problems: list[str] = field(default_factory=list)  # what kept the audit from a verdict: it is incomplete
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "topics": self.topics,
            "findings": [vars(f) for f in self.findings],
            "graded": self.graded,
            "processes": self.processes,
            "problems": self.problems,
            "wall_s": round(self.wall_s, 1),
        }


Runner = Callable[..., TopicRun]


def _grade_batch(
    spec: TopicSpec, batch: list[Degenerate], tier: str, directory: Path, speed: float, runner: Runner, kinds: frozenset[CheckKind], sealed: bool
) -> tuple[list[Finding], dict[str, int], list[str]]:
    owner = {check_id: d for d in batch for check_id in d.checks(spec, tier, kinds)}  # a check of a batch names one stub
    if not owner:
        return [], {}, []
    directory.mkdir(parents=True)
    (directory / f"{spec.id}.py").write_text(degenerate_source(spec, [d.kind for d in batch]), encoding="utf-8")
    options = {"sealed": True} if sealed else {}
    run = runner(Implementation(directory.name, directory), spec.id, tier=tier, checks=list(owner), speed=speed, **options)
    label = f"{spec.id} [{', '.join(d.kind for d in batch)}]"
    problems = sorted({f"{label}: {item['message']}" for item in run.items if _generation_failure(spec, item)})
    if run.problem:  # a degenerate could hang or kill a topic process, but none of these does: the audit is incomplete
        problems.append(f"{label}: {run.problem[1]}")
    outcomes: dict[str, str] = {}
    for item in run.items:  # a check passes when every one of its items passed
        outcomes[item["check"]] = item["outcome"] if outcomes.get(item["check"], "passed") == "passed" else outcomes[item["check"]]
    missing = [c for c in owner if c not in outcomes]
    if missing and not run.problem:
        problems.append(f"{label}: no verdict for {', '.join(missing)}")
    findings = [Finding(owner[c].kind, spec.id, c, spec.checks[c].kind.value) for c in owner if outcomes.get(c) == "passed"]
    graded: dict[str, int] = {}
    for degenerate in owner.values():
        key = "stub" if degenerate.stubbed else degenerate.kind
        graded[key] = graded.get(key, 0) + 1
    return findings, graded, problems


def _generation_failure(spec: TopicSpec, item: dict[str, Any]) -> bool:
    """Whether an item's error says the generated module is broken: it did not import, or lost an interface or a
    signature (what the audit must never produce, unlike the crashes a degenerate may cause in a test)."""
    message = str(item.get("message", ""))
    if item.get("outcome") != "error":
        return False
    broken_interface = any(message.startswith(f"{spec.id}.{name} ") and (" is missing: " in message or " the spec requires " in message) for name in spec.interfaces)
    return broken_interface or f": importing {spec.id} raised " in message or ": syntax error in " in message


def audit(
    topics: Iterable[str] | None = None,
    *,
    tier: str = "quick",
    jobs: int = 1,
    degenerates: Iterable[str] | None = None,
    on_batch: Callable[[str, list[Degenerate], list[Finding]], None] | None = None,
    runner: Runner = run_topic,
    kinds: Iterable[CheckKind] | None = None,
    sealed: bool = False,
) -> AuditReport:
    """Grade the degenerates of every (or each named) topic; every non-interface check one of them passes is a finding.

    Args:
        degenerates: only these kinds (``zeros``, ..., ``stub``); default: all.
        sealed: grade them sealed, as ``grade`` does (same findings, about a fifth slower: a degenerate is the trusted
            reference with a few generated lines, so containing it protects nothing).
        runner: grades one submission (:func:`run_topic`; a test may pass a fake).
        kinds: the check kinds audited (default: every kind but interface); a test of the audit widens it to see it fail.
    """
    specs = load_specs()
    chosen = list(topics or specs)
    wanted = set(degenerates) if degenerates else None
    wanted_kinds = frozenset(kinds) if kinds is not None else AUDITED_KINDS
    report = AuditReport(tier, chosen)
    start = time.perf_counter()
    work: list[tuple[TopicSpec, list[Degenerate]]] = []
    for topic in chosen:
        spec = specs[topic]
        generated = [d for d in boundary_degenerates(topic) + stub_degenerates(spec) if wanted is None or (d.kind if d.stubbed is None else "stub") in wanted]
        work += [(spec, batch) for batch in plan_batches(spec, generated, tier, wanted_kinds)]
    speed = speed_factor()
    previous = {name: os.environ.get(name) for name in (QUICK_CHECK_LIMIT_ENV, PLUGIN_ENV)}
    os.environ.setdefault(QUICK_CHECK_LIMIT_ENV, str(_AUDIT_CHECK_LIMIT_S))
    if f"-p {__name__}" not in (previous[PLUGIN_ENV] or ""):
        os.environ[PLUGIN_ENV] = f"{previous[PLUGIN_ENV] or ''} -p {__name__}".strip()
    try:
        with TemporaryDirectory(prefix="visionbench-audit-") as scratch, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:

            def grade(index: int, spec: TopicSpec, batch: list[Degenerate]) -> tuple[list[Degenerate], tuple]:
                directory = Path(scratch) / f"{index:03d}-{spec.id}"
                return batch, _grade_batch(spec, batch, tier, directory, speed, runner, wanted_kinds, sealed)

            futures = [pool.submit(grade, index, spec, batch) for index, (spec, batch) in enumerate(work)]
            for future in futures:
                batch, (findings, graded, problems) = future.result()
                report.findings += findings
                report.problems += problems
                report.processes += 1 if graded else 0
                for key, count in graded.items():
                    report.graded[key] = report.graded.get(key, 0) + count
                if on_batch:
                    on_batch(batch[0].topic, batch, findings)
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    order = {topic: i for i, topic in enumerate(chosen)}
    kind_order = {kind: i for i, kind in enumerate(BOUNDARY_KINDS)}
    report.findings.sort(key=lambda f: (order[f.topic], kind_order.get(f.degenerate, len(kind_order)), f.degenerate, f.check))
    report.wall_s = time.perf_counter() - start
    return report


def findings_table(report: AuditReport) -> str:
    """A Markdown table of the findings (an empty table's line says there are none)."""
    if not report.findings:
        return f"No {report.tier}-tier check passes a degenerate ({sum(report.graded.values())} degenerate-check pairs graded).\n"
    rows = ["| degenerate | topic | check | kind |", "|---|---|---|---|"]
    rows += [f"| {f.degenerate} | {f.topic} | {f.check} | {f.kind} |" for f in report.findings]
    return "\n".join(rows) + "\n"


# --- in an audit's topic processes -------------------------------------------------------------------------------------
# Loaded there as a pytest plugin (`-p harness.tools.audit`, through PYTEST_ADDOPTS), after the visionbench plugin: a
# degenerate only has to lose each check once, so a check's items after its first lost one are skipped (a skip is never
# a pass: the visionbench plugin makes it an error), and a failing hypothesis example is not shrunk. Neither changes
# whether a check passes; together they make grading a degenerate several times cheaper than grading the reference.
_LOST: set[str] = set()  # checks with an item that did not pass, in this topic process


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    from hypothesis import Phase, settings

    settings.register_profile("visionbench-audit", parent=settings.default, phases=[p for p in settings.default.phases if p is not Phase.shrink])
    settings.load_profile("visionbench-audit")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker(CHECK_MARKER)
    if marker is not None and marker.args and marker.args[0] in _LOST:
        pytest.skip(f"visionbench audit: check {marker.args[0]!r} already lost an item")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, record in report.user_properties:
        if key == "visionbench" and record.get("outcome") != "passed":
            _LOST.add(record["check"])
