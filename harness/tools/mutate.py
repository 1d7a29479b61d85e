"""Mutation testing of a topic's checks: does wrong code lose points?

Each mutant is the reference module with one small change made by `cosmic-ray <https://cosmic-ray.readthedocs.io>`_'s
operators (``<`` for ``<=``, ``-`` for ``+``, a number changed, a condition negated, a loop skipped, ...). It is graded
like any submission (:func:`harness.grader.run.run_topic`, a topic process of its own) on the quick tier, and is
*killed* when any check does not pass. The mutation score is killed / (sampled - equivalent): the share of the
sampled mutants, that the spec can tell from the reference, which lose points.

cosmic-ray supplies the operators and applies them; grading is ours, because a mutant must be graded the way a
submission is (a module loaded from a submission directory, through the implementation boundary), not by re-running
pytest over a project edited in place.

- **Operators.** cosmic-ray's core operators, less those that can only turn tensor and float arithmetic into a
  ``TypeError`` (bitwise and shift operators, ``~``, ``is``/``is not`` comparisons) or that need parameters
  (variable insertion and replacement): any call kills those, and they would inflate the score.
- **Checks run.** Only those that can reach the mutated code: the checks whose ``uses`` name the top-level
  definition the mutant changes, or any interface that refers to it (directly or through other definitions) in
  the reference. A mutant stops at its first lost check. Code that only full-tier (training) checks reach is
  reported apart and left out of the score; code no check reaches counts as surviving.
- **Equivalent mutants** (no behaviour the spec can observe changes, e.g. ``max(x, 0)`` vs ``max(x, -1)`` on
  counts) are listed in ``tests/mutation/<topic>.yaml`` with a one-line reason each; they are left out of the score.
  An entry is matched by the original and the mutated line, so it survives edits elsewhere in the module.
"""

from __future__ import annotations

import ast
import difflib
import functools
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.conventions import REFERENCE_DIR, ROOT, Implementation
from harness.grader.run import run_topic, selected_checks
from harness.spec import TopicSpec, load_specs

__all__ = ["Mutant", "Site", "MutationReport", "EQUIVALENTS_DIR", "operators", "mutation_sites", "mutant_at", "references", "reachable", "checks_reaching", "load_equivalents", "mutate_topic", "scores_table"]

EQUIVALENTS_DIR = ROOT / "tests" / "mutation"
_LEFT_OUT = re.compile(r"BitAnd|BitOr|BitXor|LShift|RShift|Invert|_Is(Not)?\b|_Is_|_IsNot_|Variable")
_MUTANT_CHECK_LIMIT_S = 30.0  # a mutant that loops forever is killed by timeout after this many seconds a check


@functools.cache
def operators() -> list[tuple[str, object]]:
    """(name, instance) of the cosmic-ray operators used, in a fixed order."""
    import cosmic_ray.plugins

    chosen = []
    for name in sorted(cosmic_ray.plugins.operator_names()):
        operator = cosmic_ray.plugins.get_operator(name)
        if name.startswith("core/") and not _LEFT_OUT.search(name) and not operator.arguments():
            chosen.append((name, operator()))
    return chosen


@dataclass(frozen=True)
class Mutant:
    """One mutation of a module: ``source`` is the whole mutated module."""

    operator: str
    occurrence: int
    line: int  # 1-based, in the original module
    definition: str  # the top-level name whose code changes ('<module>' outside any)
    original_line: str
    mutated_line: str
    source: str

    @property
    def name(self) -> str:
        return f"{self.definition}:{self.line}:{self.operator.removeprefix('core/')}#{self.occurrence}"

    def diff(self, original: str, path: str) -> str:
        return "".join(difflib.unified_diff(original.splitlines(True), self.source.splitlines(True), f"a/{path}", f"b/{path}", n=2))


def _defined_by(node: ast.stmt) -> list[str]:
    """The module-level names a top-level statement defines."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    return list(dict.fromkeys(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)))


def _top_level_spans(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of each name a top-level statement defines."""
    spans = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        spans += [(first, node.end_lineno or node.lineno, name) for name in _defined_by(node)]
    return spans


def _definition_at(spans: list[tuple[int, int, str]], line: int) -> str:
    return next((name for first, last, name in spans if first <= line <= last), "<module>")


@dataclass(frozen=True)
class Site:
    """Where an operator can mutate a module: its ``occurrence``-th position, on ``line``."""

    operator: str
    occurrence: int
    line: int


def mutation_sites(source: str) -> list[Site]:
    """Every place the operators can mutate ``source``, in a fixed order (cheap: nothing is mutated yet)."""
    from cosmic_ray.ast import ast_nodes, get_ast

    nodes = list(ast_nodes(get_ast(source)))
    return [
        Site(name, occurrence, line)
        for name, operator in operators()
        for occurrence, (line, _) in enumerate(start for node in nodes for start, _ in operator.mutation_positions(node))
    ]


def mutant_at(source: str, site: Site) -> Mutant | None:
    """The mutant ``site`` makes of ``source`` (None when the operator changes nothing there)."""
    from cosmic_ray.mutating import mutate_code

    operator = dict(operators())[site.operator]
    mutated = mutate_code(source, operator, site.occurrence)
    if mutated is None or mutated == source:
        return None
    lines, mutated_lines = source.splitlines(), mutated.splitlines()
    same_length = len(lines) == len(mutated_lines)
    mutated_line = mutated_lines[site.line - 1].strip() if same_length else ""
    definition = _definition_at(_top_level_spans(ast.parse(source)), site.line)
    return Mutant(site.operator, site.occurrence, site.line, definition, lines[site.line - 1].strip(), mutated_line, mutated)


def references(source: str) -> dict[str, set[str]]:
    """Each module-level name ``source`` defines -> every name its defining statement mentions (itself left out)."""
    graph: dict[str, set[str]] = {}
    for node in ast.parse(source).body:
        mentioned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for name in _defined_by(node):
            graph.setdefault(name, set()).update(mentioned - {name})
    return graph


def reachable(graph: dict[str, set[str]], starts: Iterable[str]) -> set[str]:
    """``starts`` and every name they refer to in ``graph``, directly or through other names."""
    seen, frontier = set(starts), list(starts)
    while frontier:
        for name in graph.get(frontier.pop(), ()):
            if name not in seen:
                seen.add(name)
                frontier.append(name)
    return seen


def checks_reaching(spec: TopicSpec, source: str, definition: str, tier: str = "quick") -> list[str]:
    """The checks of ``tier`` that can run the code of ``definition``: those whose ``uses`` name it or an
    interface that refers to it, directly or through other top-level definitions (all checks for module-level
    code outside any definition)."""
    candidates = selected_checks(spec, tier)
    if definition == "<module>":
        return candidates
    graph = references(source)
    return [check_id for check_id in candidates if definition in reachable(graph, spec.checks[check_id].uses)]


@dataclass(frozen=True)
class Equivalent:
    original: str
    mutated: str
    why: str


def load_equivalents(topic: str, directory: Path = EQUIVALENTS_DIR) -> list[Equivalent]:
    """The topic's equivalent mutants: ``tests/mutation/<topic>.yaml``, a list of {original, mutated, why}."""
    path = directory / f"{topic}.yaml"
    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    problems = [entry for entry in entries if not {"original", "mutated", "why"} <= set(entry) or not str(entry["why"]).strip()]
    if problems:
        raise ValueError(f"{path}: every entry needs original, mutated and a non-empty why; not: {problems}")
    return [Equivalent(str(e["original"]).strip(), str(e["mutated"]).strip(), str(e["why"]).strip()) for e in entries]


@dataclass
class MutationReport:
    """The outcome of one topic's mutation run."""

    topic: str
    generated: int
    sampled: int
    seed: int
    killed: list[Mutant] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)
    equivalent: list[tuple[Mutant, str]] = field(default_factory=list)
    unreached: list[Mutant] = field(default_factory=list)  # no check at all reaches the mutated code
    full_only: list[Mutant] = field(default_factory=list)  # only full-tier (training) checks reach it: not scored
    stale_equivalents: list[Equivalent] = field(default_factory=list)  # their original line is gone
    wall_s: float = 0.0

    @property
    def score(self) -> float:
        judged = len(self.killed) + len(self.survived) + len(self.unreached)
        return len(self.killed) / judged if judged else 1.0


def _passes(topic: str, source: str, checks: list[str], directory: Path) -> bool:
    """Whether ``source`` as a submission passes every one of ``checks`` (graded in a topic process)."""
    directory.mkdir()
    (directory / f"{topic}.py").write_text(source)
    run = run_topic(Implementation(directory.name, directory), topic, tier="quick", checks=checks, stop_early=True)
    return run.problem is None and bool(run.items) and all(item.get("outcome") == "passed" for item in run.items)


def mutate_topic(
    topic: str,
    *,
    sample: int | None = 40,
    seed: int = 0,
    jobs: int = 1,
    on_mutant: Callable[[Mutant, str], None] | None = None,
) -> MutationReport:
    """Grade a seeded sample of ``sample`` mutants (all when None) of ``reference/<topic>.py`` on the quick tier.

    The unmutated reference is graded first and must pass every quick check (a harness that fails everything would
    otherwise score 100%).
    """
    spec = load_specs()[topic]
    source = (REFERENCE_DIR / f"{topic}.py").read_text()
    sites = mutation_sites(source)
    drawn = sites if sample is None or sample >= len(sites) else random.Random(seed).sample(sites, sample)
    chosen = [mutant for mutant in (mutant_at(source, site) for site in drawn) if mutant is not None]
    equivalents = load_equivalents(topic)
    report = MutationReport(topic, len(sites), len(chosen), seed)
    start = time.perf_counter()
    # which checks reach each definition, worked out here: ast.parse is not thread-safe in CPython 3.11
    reaching = {
        definition: (checks_reaching(spec, source, definition), checks_reaching(spec, source, definition, tier="full"))
        for definition in {mutant.definition for mutant in chosen}
    }

    def judge(mutant: Mutant) -> str:
        known = next((e for e in equivalents if e.original == mutant.original_line and e.mutated == mutant.mutated_line), None)
        if known is not None:
            report.equivalent.append((mutant, known.why))
            return "equivalent"
        checks, full_tier_checks = reaching[mutant.definition]
        if not checks:
            reached_by_full_tier = bool(full_tier_checks)
            (report.full_only if reached_by_full_tier else report.unreached).append(mutant)
            return "full tier only" if reached_by_full_tier else "unreached"
        directory = scratch / f"mutant-{mutant.operator.removeprefix('core/')}-{mutant.occurrence}"
        verdict = "survived" if _passes(topic, mutant.source, checks, directory) else "killed"
        (report.killed if verdict == "killed" else report.survived).append(mutant)
        return verdict

    os.environ.setdefault("VISIONBENCH_CHECK_LIMIT_S", str(_MUTANT_CHECK_LIMIT_S))
    with tempfile.TemporaryDirectory(prefix="visionbench-mutants-") as directory:
        scratch = Path(directory)
        if not _passes(topic, source, selected_checks(spec, "quick"), scratch / "reference"):  # else every mutant "dies"
            raise RuntimeError(f"reference/{topic}.py does not pass its own quick tier: fix that before measuring mutants")
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for mutant, verdict in zip(chosen, pool.map(judge, chosen)):
                if on_mutant:
                    on_mutant(mutant, verdict)
    present = {line.strip() for line in source.splitlines()}
    report.stale_equivalents = [e for e in equivalents if e.original not in present]
    for bucket in (report.killed, report.survived, report.unreached):
        bucket.sort(key=lambda m: (m.line, m.operator, m.occurrence))
    report.wall_s = time.perf_counter() - start
    return report


def scores_table(reports: Iterable[MutationReport]) -> str:
    """A Markdown table of mutation scores."""
    rows = [
        "| topic | mutants | sampled (seed) | killed | survived | no check reaches | equivalent | full tier only | score | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        rows.append(
            f"| {r.topic} | {r.generated} | {r.sampled} ({r.seed}) | {len(r.killed)} | {len(r.survived)} | {len(r.unreached)} | "
            f"{len(r.equivalent)} | {len(r.full_only)} | {r.score:.0%} | {r.wall_s:.0f} |"
        )
    return "\n".join(rows) + "\n"
