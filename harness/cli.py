"""The ``visionbench`` command: a thin layer over the harness modules.

Exit codes: 0 done (for ``grade``: grading ran, whatever the score; for ``test``: every check passed),
1 checks failed (``test``) or problems found (``spec check``), 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.grading import TopicRun, grade, run_topic, selected_checks
from harness.loader import ImplementationError, resolve_implementation
from harness.paths import SPECS_DIR, STUDENT_DIR
from harness.records import build_record, write_json_atomic
from harness.scoring import Scores, TopicScore, score_items
from harness.spec import SpecError, json_schema, load_specs

__all__ = ["app", "main"]

app = typer.Typer(help="Grade implementations of the visionbench computer-vision curriculum.", no_args_is_help=True, add_completion=False)
spec_app = typer.Typer(help="Validate the specs and export their schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
console = Console(highlight=False)

ImplOption = Annotated[str, typer.Option("--impl", help="reference, student, or a submission directory")]
TierOption = Annotated[str, typer.Option("--tier", help="quick (no training) or full")]
ProfileOption = Annotated[str, typer.Option("--profile", help="hypothesis profile: grading (derandomized) or practice")]

_STYLE = {"passed": "green", "failed": "red", "todo": "yellow", "error": "bold red", "timeout": "magenta", "forbidden": "bold magenta"}


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _specs() -> dict:
    try:
        return load_specs()
    except SpecError as error:
        raise _fail(str(error)) from None


def _validate_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise _fail(f"{option} must be one of {', '.join(choices)}, not {value!r}")


def _check_table(topic: TopicScore) -> Table:
    table = Table(title=f"{topic.topic}: {topic.earned:g}/{topic.possible:g} points", title_justify="left")
    for column in ("check", "kind", "outcome", "points", "details"):
        table.add_column(column, overflow="fold")
    for result in topic.checks:
        style = _STYLE.get(result.outcome, "")
        details = result.message if result.outcome != "passed" else ""
        table.add_row(result.check, result.kind, f"[{style}]{result.outcome}[/]", f"{result.earned:g}/{result.points:g}", details)
    return table


def _score_table(scores: Scores, name: str) -> Table:
    table = Table(title=f"{name}: {scores.earned:g}/{scores.possible:g} points", title_justify="left")
    for column in ("topic", "score", "passed", "todo", "failed", "other"):
        table.add_column(column, justify="right" if column != "topic" else "left")
    for topic in scores.topics:
        counts = {o: sum(1 for c in topic.checks if c.outcome == o) for o in ("passed", "todo", "failed")}
        other = len(topic.checks) - sum(counts.values())
        percent = 100 * topic.earned / topic.possible if topic.possible else 0.0
        table.add_row(
            topic.topic, f"{topic.earned:g}/{topic.possible:g} ({percent:.0f}%)", str(counts["passed"]), str(counts["todo"]),
            str(counts["failed"]), f"[bold red]{other}[/]" if other else "0",
        )  # fmt: skip
    return table


@app.command("list")
def list_topics() -> None:
    """List the topics with their checks and points."""
    table = Table(title="visionbench topics", title_justify="left")
    for column in ("#", "topic", "title", "checks", "quick", "full", "points"):
        table.add_column(column)
    for spec in _specs().values():
        quick = sum(1 for c in spec.checks.values() if c.kind.tier == "quick")
        table.add_row(
            f"{spec.number:02d}", spec.id, spec.title, str(len(spec.checks)), str(quick), str(len(spec.checks) - quick), f"{spec.total_points:g}"
        )
    console.print(table)


@app.command("test")
def test_topic(
    topic: Annotated[str, typer.Argument(help="topic id, e.g. convolution")],
    impl: ImplOption = "student",
    tier: TierOption = "full",
    profile: ProfileOption = "practice",
) -> None:
    """Run one topic's checks and show each outcome, with the numbers behind a failure."""
    specs = _specs()
    if topic not in specs:
        raise _fail(f"unknown topic {topic!r}; known: {', '.join(specs)}")
    _validate_choice(tier, ("quick", "full"), "--tier")
    _validate_choice(profile, ("grading", "practice"), "--profile")
    implementation = _implementation(impl)
    with console.status(f"testing {topic} ({implementation.name}, {tier} tier)"):
        run = run_topic(implementation, topic, tier=tier, profile=profile)
    scores = score_items(run.items, expected={topic: run.expected}, missing={topic: run.problem} if run.problem else None)
    for topic_score in scores.topics:
        console.print(_check_table(topic_score))
    if not all(c.outcome == "passed" for t in scores.topics for c in t.checks):
        raise typer.Exit(1)


def _implementation(impl: str):  # noqa: ANN202 - Implementation
    try:
        return resolve_implementation(impl)
    except ImplementationError as error:
        raise _fail(str(error)) from None


@app.command("grade")
def grade_command(
    impl: Annotated[str, typer.Argument(help="reference, student, or a submission directory")],
    out: Annotated[Path | None, typer.Option("--out", help="write the JSON result record here")] = None,
    topics: Annotated[str | None, typer.Option("--topics", help="comma-separated topic ids (default: all)")] = None,
    tier: TierOption = "full",
    name: Annotated[str | None, typer.Option("--name", help="submission name in the record (default: the directory name)")] = None,
) -> None:
    """Grade every topic of an implementation, print the score table and write a result record."""
    specs = _specs()
    _validate_choice(tier, ("quick", "full"), "--tier")
    chosen = [t.strip() for t in topics.split(",")] if topics else list(specs)
    unknown = [t for t in chosen if t not in specs]
    if unknown:
        raise _fail(f"unknown topic(s) {unknown}; known: {', '.join(specs)}")
    implementation = _implementation(impl)
    total = sum(len(selected_checks(specs[t], tier)) for t in chosen)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} checks"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"grading {implementation.name}", total=total)

        def advance(run: TopicRun) -> None:
            bar.update(task, advance=len(run.expected), description=f"graded {run.topic}")

        scores, runs = grade(implementation, chosen, tier=tier, on_topic=advance)
    console.print(_score_table(scores, name or implementation.name))
    if out is not None:
        write_json_atomic(out, build_record(implementation, scores, runs, tier=tier, name=name))
        console.print(f"result record: {out}")


@app.command("calibrate")
def calibrate_command(
    topic: Annotated[str, typer.Argument(help="topic id")],
    check_id: Annotated[str, typer.Argument(help="a metric check of the topic")],
    seeds: Annotated[str, typer.Option("--seeds", help="comma-separated task seeds")] = "0,1,2",
    impl: ImplOption = "reference",
) -> None:
    """Run a metric task over several seeds: the values and times a spec's threshold is calibrated from."""
    from harness.graded import GradedModule
    from harness.loader import load_topic
    from harness.tasks import run_metric_task

    specs = _specs()
    if topic not in specs or check_id not in specs[topic].checks or specs[topic].checks[check_id].kind.value != "metric":
        raise _fail(f"{topic}.{check_id} is not a metric check")
    check = specs[topic].checks[check_id]
    module = GradedModule(load_topic(_implementation(impl), topic), specs[topic])
    table = Table(title=f"{topic}.{check_id} ({impl})", title_justify="left")
    for column in ("seed", check.metric or "value", "train s", "predict s"):
        table.add_column(column, justify="right")
    values = []
    for seed in (int(s) for s in seeds.split(",")):
        with console.status(f"seed {seed}"):
            result = run_metric_task(module, specs[topic], check_id, seed=seed)
        values.append(result.value)
        table.add_row(str(seed), f"{result.value:.4f}", f"{result.train_s:.1f}", f"{result.predict_s:.2f}")
    console.print(table)
    console.print(f"mean {sum(values) / len(values):.4f}, worst {min(values) if check.higher_is_better else max(values):.4f}; "
                  f"the spec has threshold {check.threshold}, reference_value {check.reference_value}")


@app.command("stub")
def stub_command(
    topics: Annotated[list[str] | None, typer.Argument(help="topic ids (default: all)")] = None,
    check: Annotated[bool, typer.Option("--check", help="only report stubs that are out of date")] = False,
) -> None:
    """Generate student/<topic>.py from reference/<topic>.py (bodies replaced by NotImplementedError)."""
    from harness.stubgen import stub_source

    specs = _specs()
    stale = []
    for topic in topics or list(specs):
        if topic not in specs:
            raise _fail(f"unknown topic {topic!r}")
        path, source = STUDENT_DIR / f"{topic}.py", stub_source(specs[topic])
        if path.exists() and path.read_text(encoding="utf-8") == source:
            continue
        stale.append(topic)
        if not check:
            path.write_text(source, encoding="utf-8")
            console.print(f"wrote {path}")
    if check and stale:
        raise _fail(f"stubs out of date: {', '.join(stale)} (run `visionbench stub`)", 1)


@spec_app.command("check")
def spec_check_command() -> None:
    """Every spec validates, every interface exists with its signature, every check has exactly one test."""
    from harness.speccheck import check_all

    specs, problems = check_all()
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise _fail(f"{len(problems)} problem(s) in {SPECS_DIR.name}/", 1)
    checks = sum(len(s.checks) for s in specs)
    console.print(f"[green]✓[/] {len(specs)} specs, {checks} checks: specs, implementations and tests agree")


@spec_app.command("schema")
def spec_schema_command(out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None) -> None:
    """Print (or write) the JSON Schema of a topic spec."""
    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


def main() -> None:
    """Console-script entry point."""
    app()
