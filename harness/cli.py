"""The ``visionbench`` command: a thin layer over the harness modules.

Exit codes:
    0  done; for ``grade``: grading ran, whatever the score (unless ``--min-score`` is given)
    1  ``grade``: the score is below ``--min-score``; ``test``: a check did not pass; ``spec check``: problems found
    2  usage error (unknown topic or option value, missing submission)
    3  harness failure: the grader itself broke (not the submission); the message says where
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.conventions import LEADERBOARD_DIR, REFERENCE_DIR, SPECS_DIR, STUDENT_DIR
from harness.grader.records import ResultRecord, build_record, result_json_schema, write_json_atomic
from harness.grader.regress import BASELINE_FILE
from harness.grader.run import TopicRun, grade, run_topic, selected_checks
from harness.machine import NO_SCALING_ENV
from harness.spec import SpecError, json_schema, load_specs
from harness.spec.scoring import Scores, TopicScore, score_items
from harness.topic.loader import ImplementationError, resolve_implementation

__all__ = ["app", "main"]

app = typer.Typer(help="Grade implementations of the visionbench computer-vision curriculum.", no_args_is_help=True, add_completion=False)
spec_app = typer.Typer(help="Validate the specs and export their schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
leaderboard_app = typer.Typer(help="Build the leaderboard from result records.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")
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
    """Run one topic's checks and show each outcome, with the numbers behind a failure.

    Your code runs in-process here, beside the tests (full tracebacks, the fastest loop); `grade` runs it sealed.
    """
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
    console.print("[dim]ran in-process, beside the tests; `visionbench grade` runs a submission sealed in a worker of its own[/]")
    if not all(c.outcome == "passed" for t in scores.topics for c in t.checks):
        raise typer.Exit(1)


def _implementation(impl: str):
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
    gradescope: Annotated[Path | None, typer.Option("--gradescope", help="also write Gradescope results.json here")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="also write JUnit XML here")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", min=0.0, max=1.0, help="exit 1 below this fraction of the points")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="topics graded at once (default: one per core)")] = None,
    no_speed_scaling: Annotated[bool, typer.Option("--no-speed-scaling", help="budgets as the spec states them, not scaled by the machine's measured speed")] = False,
    in_process: Annotated[bool, typer.Option("--in-process", help="import the submission into the test processes (trusted code, debugging) instead of sealed workers")] = False,
) -> None:
    """Grade every topic of an implementation, print the score table and write a result record.

    The submission runs sealed: in contained worker processes, apart from the tests, hidden labels and verdicts
    (README: sealed grading). ``--in-process`` imports it into the test processes instead.
    """
    sealed = not in_process
    if no_speed_scaling:
        os.environ[NO_SCALING_ENV] = "1"
    specs = _specs()
    _validate_choice(tier, ("quick", "full"), "--tier")
    chosen = [t.strip() for t in topics.split(",")] if topics else list(specs)
    unknown = [t for t in chosen if t not in specs]
    if unknown:
        raise _fail(f"unknown topic(s) {unknown}; known: {', '.join(specs)}")
    implementation = _implementation(impl)
    total = sum(len(selected_checks(specs[t], tier)) for t in chosen)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} checks"), TimeElapsedColumn(), console=console)
    with progress if console.is_terminal else contextlib.nullcontext():
        task = progress.add_task(f"grading {implementation.name}", total=total)

        def advance(run: TopicRun) -> None:
            if console.is_terminal:
                progress.update(task, advance=len(run.expected), description=f"graded {run.topic}")
            else:  # CI logs: a line per topic as it finishes
                missing = {run.topic: run.problem} if run.problem else None
                (topic_score,) = score_items(run.items, expected={run.topic: run.expected}, missing=missing).topics
                console.print(f"graded {run.topic}: {topic_score.earned:g}/{topic_score.possible:g} points, {len(run.expected)} checks, {run.wall_s:.0f} s")

        try:
            scores, runs = grade(implementation, chosen, tier=tier, jobs=jobs, on_topic=advance, sealed=sealed)
            record = build_record(implementation, scores, runs, tier=tier, name=name, sealed=sealed)
        except Exception as error:  # the grader broke, not the submission: say so distinctly
            raise _fail(f"harness failure: {type(error).__name__}: {error}", 3) from error
    console.print(_score_table(scores, name or implementation.name))
    _write_outputs(record, out, gradescope, junit)
    fraction = record.earned / record.possible if record.possible else 1.0
    if min_score is not None and fraction < min_score:
        raise _fail(f"score {fraction:.1%} is below --min-score {min_score:.1%}", 1)


def _write_outputs(record: ResultRecord, out: Path | None, gradescope: Path | None, junit: Path | None) -> None:
    from harness.grader.exports import to_gradescope, to_junit

    if out is not None:
        write_json_atomic(out, record.model_dump(mode="json"))
        console.print(f"result record: {out}")
    if gradescope is not None:
        write_json_atomic(gradescope, to_gradescope(record).model_dump(mode="json"))
        console.print(f"gradescope results: {gradescope}")
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(to_junit(record), encoding="utf-8")
        console.print(f"junit xml: {junit}")


@app.command("regress")
def regress_command(
    impl: ImplOption = "reference",
    topics: Annotated[str | None, typer.Option("--topics", help="comma-separated topic ids (default: all)")] = None,
    update: Annotated[bool, typer.Option("--update", help="rewrite the baseline from this run")] = False,
    baseline: Annotated[Path, typer.Option("--baseline", help="baseline file")] = BASELINE_FILE,
    from_record: Annotated[Path | None, typer.Option("--record", help="compare this result record instead of grading again")] = None,
) -> None:
    """Grade the reference (full tier) and compare its metrics with the baseline; exit 1 on any regression."""
    from harness.grader.records import RecordError, load_record
    from harness.grader.regress import compare, load_baseline, write_baseline

    specs = _specs()
    if from_record is not None:
        try:
            record = load_record(from_record)
        except RecordError as error:
            raise _fail(str(error)) from None
    else:
        chosen = [t.strip() for t in topics.split(",")] if topics else list(specs)
        implementation = _implementation(impl)
        with console.status(f"grading {implementation.name} for regressions"):
            scores, runs = grade(implementation, chosen, tier="full")
            record = build_record(implementation, scores, runs, tier="full")
    comparisons = compare(record, load_baseline(baseline))
    table = Table(title=f"{record.submission.name} against {baseline.name}", title_justify="left")
    for column in ("check", "outcome", "value", "baseline", "tolerance", "verdict"):
        table.add_column(column)
    for c in comparisons:
        if c.value is None and not c.regressed:
            continue  # a passing check without a metric: nothing to compare
        number = lambda x: "" if x is None else f"{x:.4f}"  # noqa: E731
        verdict = f"[red]regressed[/] {c.reason}" if c.regressed else f"[green]ok[/] {c.reason}"
        table.add_row(c.name, c.outcome, number(c.value), number(c.baseline), "" if c.tolerance is None else f"{c.tolerance:g}", verdict)
    console.print(table)
    if update:
        write_baseline(record, baseline)
        console.print(f"baseline rewritten: {baseline}")
    elif any(c.regressed for c in comparisons):
        raise _fail(f"{sum(c.regressed for c in comparisons)} regression(s)", 1)


def _metric_cell(result) -> str:
    """A metric value; for a check with a baseline, the difference with both sides and the baseline's training time."""
    if result.baseline is None:
        return f"{result.value:.4f}"
    baseline = f"{result.baseline}: {result.baseline_value:.4f}, trained {result.baseline_train_s:.1f} s"
    return f"{result.value:+.4f} ({result.task_value:.4f} vs {baseline})"


@app.command("calibrate")
def calibrate_command(
    topic: Annotated[str, typer.Argument(help="topic id")],
    check_ids: Annotated[str, typer.Argument(help="metric or latency checks of the topic, comma-separated (one training per seed)")],
    seeds: Annotated[str, typer.Option("--seeds", help="comma-separated task seeds")] = "0,1,2",
    impl: ImplOption = "reference",
) -> None:
    """Run metric tasks and time their predictions over several seeds: what thresholds and budgets are calibrated from."""
    from harness.topic.guard import GradedModule
    from harness.topic.latency import run_latency_task
    from harness.topic.loader import load_topic
    from harness.topic.tasks import run_metric_task

    specs = _specs()
    chosen = [c.strip() for c in check_ids.split(",")]
    if topic not in specs or any(specs[topic].checks.get(c) is None or specs[topic].checks[c].kind.value not in ("metric", "latency") for c in chosen):
        raise _fail(f"{topic}: {check_ids} are not all metric or latency checks of the topic")
    checks = {c: specs[topic].checks[c] for c in chosen}
    metric_ids = [c for c in chosen if checks[c].kind.value == "metric"]
    latency_ids = [c for c in chosen if checks[c].kind.value == "latency"]
    module = GradedModule(load_topic(_implementation(impl), topic), specs[topic])
    table = Table(title=f"{topic} ({impl})", title_justify="left")
    columns = ["seed", *(f"{c}: {checks[c].metric}" for c in metric_ids), *(f"{c}: p50 / p95 ms, peak MB" for c in latency_ids)]
    for column in (*columns, "train CPU s", "predict s"):
        table.add_column(column, justify="right")
    values: dict[str, list[float]] = {c: [] for c in chosen}
    for seed in (int(s) for s in seeds.split(",")):
        with console.status(f"seed {seed}"):
            results = [run_metric_task(module, specs[topic], c, seed=seed) for c in metric_ids]
            timings = [run_latency_task(module, specs[topic], c, seed=seed).graded for c in latency_ids]
        for c, result in zip(metric_ids, results):
            values[c].append(result.value)
        for c, stats in zip(latency_ids, timings):
            values[c].append(stats.p50_ms)
        times = (f"{results[0].train_s:.1f}", f"{results[0].predict_s:.2f}") if results else ("-", "-")
        cells = [*(_metric_cell(r) for r in results), *(f"{t.p50_ms:.2f} / {t.p95_ms:.2f}, {'-' if t.peak_mb is None else f'{t.peak_mb:.1f}'}" for t in timings)]
        table.add_row(str(seed), *cells, *times)
    console.print(table)
    for c in metric_ids:
        check = checks[c]
        worst = min(values[c]) if check.higher_is_better else max(values[c])
        console.print(f"{c}: mean {sum(values[c]) / len(values[c]):.4f}, worst {worst:.4f}; spec threshold {check.threshold}, reference_value {check.reference_value}")
    for c in latency_ids:
        budget = checks[c].budget
        console.print(f"{c}: p50 mean {sum(values[c]) / len(values[c]):.2f} ms, worst {max(values[c]):.2f} ms; spec budget p50 {budget.p50_ms} ms, p95 {budget.p95_ms} ms on {budget.profile}")


@app.command("stub")
def stub_command(
    topics: Annotated[list[str] | None, typer.Argument(help="topic ids (default: all)")] = None,
    check: Annotated[bool, typer.Option("--check", help="only report stubs that are out of date")] = False,
) -> None:
    """Generate student/<topic>.py from reference/<topic>.py (bodies replaced by NotImplementedError)."""
    from harness.tools.stubgen import stub_source

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


@app.command("mutate")
def mutate_command(
    topics: Annotated[list[str] | None, typer.Argument(help="topic ids (default: all)")] = None,
    sample: Annotated[int, typer.Option("--sample", help="mutants graded per topic, drawn with --seed (0: all)")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="seed of the sample")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", help="mutants graded at once (default: one per core)")] = 0,
    table: Annotated[Path | None, typer.Option("--table", help="also write the scores as a Markdown table to this file")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="exit 1 when a topic scores below this (0..1)")] = None,
) -> None:
    """Grade sampled mutants of the reference on the quick tier: the mutation score, and every survivor's diff."""
    from harness.grader.run import default_jobs
    from harness.tools.mutate import mutate_topic, scores_table

    specs = _specs()
    chosen = topics or list(specs)
    for topic in chosen:
        if topic not in specs:
            raise _fail(f"unknown topic {topic!r}")
    reports = []
    for topic in chosen:
        console.print(f"[bold]{topic}[/]: grading mutants of reference/{topic}.py on the quick tier")
        report = mutate_topic(
            topic,
            sample=sample or None,
            seed=seed,
            jobs=jobs or default_jobs(),
            on_mutant=lambda mutant, verdict: console.print(f"  {verdict:>14}  {mutant.name}"),
        )
        reports.append(report)
        source = (REFERENCE_DIR / f"{topic}.py").read_text()
        for mutant in report.survived + report.unreached:
            console.print(f"\n[red]survived[/] {mutant.name}" + (" (no check reaches it)" if mutant in report.unreached else ""))
            print(mutant.diff(source, f"reference/{topic}.py"), end="")  # as it is: no wrapping, so it applies as a patch
        for equivalent in report.stale_equivalents:
            console.print(
                f"[yellow]stale equivalent entry[/] in tests/mutation/{topic}.yaml: {equivalent.original!r} -> {equivalent.mutated!r}"
            )
        console.print(
            f"[bold]{topic}[/]: mutation score {report.score:.0%} ({len(report.killed)} killed of {report.sampled} sampled, seed {seed}) in {report.wall_s:.0f} s\n"
        )
    markdown = scores_table(reports)
    print(markdown)
    if table:
        table.write_text(markdown)
    if min_score is not None and any(report.score < min_score for report in reports):
        raise _fail(f"mutation score below {min_score:.0%}: " + ", ".join(r.topic for r in reports if r.score < min_score), 1)


@app.command("audit")
def audit_command(
    topics: Annotated[list[str] | None, typer.Argument(help="topic ids (default: all)")] = None,
    tier: TierOption = "quick",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="degenerate submissions graded at once")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the findings as JSON here")] = None,
) -> None:
    """Grade generated degenerate implementations (zeros, constant, echo, noise, one stub per interface) and list every
    non-interface check one of them passes; exit 1 if there is any (see docs/audit.md)."""
    from harness.tools.audit import audit

    specs = _specs()
    _validate_choice(tier, ("quick", "full"), "--tier")
    unknown = [t for t in topics or [] if t not in specs]
    if unknown:
        raise _fail(f"unknown topic(s) {unknown}; known: {', '.join(specs)}")
    with console.status(f"grading degenerate implementations ({tier} tier)"):
        report = audit(topics or None, tier=tier, jobs=jobs)
    table = Table(title=f"checks that pass a degenerate implementation ({tier} tier, {report.wall_s:.0f} s)", title_justify="left")
    for column in ("degenerate", "topic", "check", "kind"):
        table.add_column(column)
    for finding in report.findings:
        table.add_row(finding.degenerate, finding.topic, finding.check, finding.kind)
    console.print(table if report.findings else f"[green]✓[/] no check passes a degenerate ({sum(report.graded.values())} degenerate-check pairs, {report.wall_s:.0f} s)")
    for problem in report.problems:
        console.print(f"[bold red]not graded:[/] {escape(problem)}", soft_wrap=True)
    if json_out is not None:
        write_json_atomic(json_out, report.as_json())
    if report.problems:
        raise _fail(f"{len(report.problems)} degenerate submission(s) could not be graded: the audit is incomplete", 3)
    if report.findings:
        raise _fail(f"{len(report.findings)} check(s) pass a degenerate implementation", 1)


@spec_app.command("check")
def spec_check_command() -> None:
    """Every spec validates, every interface exists with its signature, every check has exactly one test."""
    from harness.tools.speccheck import check_all

    specs, problems = check_all()
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise _fail(f"{len(problems)} problem(s) in {SPECS_DIR.name}/", 1)
    checks = sum(len(s.checks) for s in specs)
    console.print(f"[green]✓[/] {len(specs)} specs, {checks} checks: specs, implementations and tests agree")


@spec_app.command("schema")
def spec_schema_command(
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
    result: Annotated[bool, typer.Option("--result", help="the schema of a result record instead of a topic spec")] = False,
) -> None:
    """Print (or write) the JSON Schema of a topic spec (or, with --result, of a result record)."""
    text = json.dumps(result_json_schema() if result else json_schema(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@leaderboard_app.command("build")
def leaderboard_build_command(
    results: Annotated[Path, typer.Option("--results", help="folder of result records (*.json)")] = LEADERBOARD_DIR / "results",
    out: Annotated[Path, typer.Option("--out", help="folder for README.md and index.html")] = LEADERBOARD_DIR,
    best: Annotated[bool, typer.Option("--best", help="each submission's best run instead of its latest")] = False,
    sealed_only: Annotated[bool, typer.Option("--sealed-only", help="leave out records graded in-process")] = False,
) -> None:
    """Rank the result records and write the Markdown table and the static HTML page."""
    from harness.grader.leaderboard import build

    if not results.is_dir():
        raise _fail(f"--results {results} is not a folder")
    built = build(results, out, best=best, specs=_specs(), sealed_only=sealed_only)
    for warning in built.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if not built.board.rows:
        raise _fail(f"no readable result records in {results}", 1)
    for path in built.written:
        console.print(f"wrote {path}")


@app.command("report")
def report_command(
    result: Annotated[Path, typer.Argument(help="a result record (JSON)")],
    out: Annotated[Path | None, typer.Option("--out", help="HTML file to write (default: beside the record, .html)")] = None,
    show_hidden: Annotated[bool, typer.Option("--show-hidden", help="include hidden checks' messages and numbers")] = False,
) -> None:
    """Write a static HTML report of one graded run: every check, failures first, with messages and numbers."""
    from harness.grader.records import RecordError
    from harness.grader.report import write_report

    try:
        path = write_report(result, out, show_hidden=show_hidden)
    except RecordError as error:
        raise _fail(str(error)) from None
    console.print(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
