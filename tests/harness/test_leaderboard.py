"""The leaderboard without a browser: loading, collapsing, ranking and tie-breaks, Markdown, HTML and the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from leaderboard_fixtures import board_records, record, specs, topic_record, write
from typer.testing import CliRunner

from harness import cli
from harness.cli import app
from harness.grader.leaderboard import (
    BASELINE_MARKER,
    IN_PROCESS_MARKER,
    LoadedRecord,
    build,
    collapse,
    load_results,
    rank,
    render_html,
    render_markdown,
)


def _loaded(*records) -> list[LoadedRecord]:
    return [LoadedRecord(Path(f"{index:02d}-{r.submission.name}.json"), r) for index, r in enumerate(records)]


def _names(records) -> list[str]:
    return [row.name for row in rank(_loaded(*records), specs=specs()).rows]


def test_rank_orders_by_total_points_first():
    low = record("low", [topic_record("alpha", shape=False, value=0.99, speed=0.1)])
    high = record("high", [topic_record("alpha", value=0.50, speed=9.0)])
    assert _names([low, high]) == ["high", "low"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (topic_record("alpha", value=0.9, speed=5.0), topic_record("alpha", value=0.8, speed=0.1)),
        (topic_record("beta", value=0.1, speed=5.0), topic_record("beta", value=0.2, speed=0.1)),
    ],
    ids=["higher_is_better", "lower_is_better"],
)
def test_rank_breaks_point_ties_by_metric_respecting_direction(first, second):
    assert _names([record("second", [second]), record("first", [first])]) == ["first", "second"]


def test_rank_breaks_metric_ties_by_speed():
    slow = record("slow", [topic_record("beta", value=0.1, speed=3.0)])
    fast = record("fast", [topic_record("beta", value=0.1, speed=1.0)])
    assert _names([slow, fast]) == ["fast", "slow"]


def test_rank_puts_missing_numbers_last():
    measured = record("measured", [topic_record("alpha", value=0.9, speed=0.5), topic_record("beta", value=0.1, speed=1.0)])
    # same points (metric passed in both) but no latency number for beta
    unmeasured = record("unmeasured", [topic_record("alpha", value=0.9, speed=None), topic_record("beta", value=0.1, speed=1.0)])
    assert _names([unmeasured, measured]) == ["measured", "unmeasured"]


def test_rank_full_ties_share_a_rank_in_name_order():
    topics = [topic_record("alpha", value=0.9, speed=0.5)]
    board = rank(_loaded(record("b", topics), record("a", topics), record("c", [topic_record("alpha", shape=False)])), specs=specs())
    assert [(row.rank, row.name) for row in board.rows] == [(1, "a"), (1, "b"), (3, "c")]


def test_rank_orders_the_fixture_board():
    assert _names(board_records()) == ["reference", "zeta", "beta-team", "alpha-team"]


def test_collapse_keeps_the_latest_run_by_default_and_the_best_with_best():
    good = record("team", [topic_record("alpha", value=0.9)], created="2026-01-01T10:00:00+00:00")
    worse_later = record("team", [topic_record("alpha", value=0.6)], created="2026-01-02T09:00:00+01:00")
    other = record("other", [topic_record("alpha", value=0.7)])
    loaded = _loaded(good, worse_later, other)
    latest = {item.record.submission.name: item.record for item in collapse(loaded, specs=specs())}
    best = {item.record.submission.name: item.record for item in collapse(loaded, best=True, specs=specs())}
    assert latest["team"] is worse_later and best["team"] is good
    assert latest["other"] is best["other"] is other


def test_load_results_skips_corrupt_files_and_other_schema_versions_with_a_warning(tmp_path):
    write(tmp_path / "good.json", record("good", [topic_record("alpha", value=0.9)]))
    (tmp_path / "corrupt.json").write_text("{not json", encoding="utf-8")
    old = record("old", [topic_record("alpha", value=0.9)]).model_dump(mode="json") | {"schema_version": 0}
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    write(tmp_path / "undated.json", record("undated", [topic_record("alpha", value=0.9)], created="yesterday"))
    (tmp_path / "notes.txt").write_text("not a record", encoding="utf-8")
    records, warnings = load_results(tmp_path)
    assert [item.record.submission.name for item in records] == ["good"]
    assert len(warnings) == 3
    corrupt, schema, undated = warnings
    assert "corrupt.json" in corrupt and "not a readable JSON file" in corrupt
    assert "old.json" in schema and "schema_version 0 is not supported" in schema
    assert "undated.json" in undated and "'yesterday' is not an ISO 8601 time" in undated


def test_markdown_table_has_ranks_scores_metrics_and_the_baseline_marker():
    text = render_markdown(rank(_loaded(*board_records()[:2]), specs=specs()))
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == [
        "| rank | name | total | alpha | beta | alpha: accuracy ↑ | beta: error ↓ |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        f"| 1 | {BASELINE_MARKER} reference (baseline) | 25/25 | 12/12 | 13/13 | 0.9900 | 0.0500 |",
        "| 2 | zeta | 25/25 | 12/12 | 13/13 | 0.9500 | 0.1000 |",
    ]


def test_markdown_escapes_names_and_shows_missing_topics():
    records = [record("a|b <c>", [topic_record("alpha", value=0.9)]), record("d", [topic_record("beta", value=0.1)])]
    board = rank(_loaded(*records), specs=specs())
    rows = [line for line in render_markdown(board).splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert "a\\|b &lt;c&gt;" in rows[0] or "a\\|b &lt;c&gt;" in rows[1]
    assert all("—" in row for row in rows)


def test_html_marks_the_baseline_escapes_names_and_is_self_contained():
    records = board_records() + [record("<script>&", [topic_record("alpha", shape=False)])]
    page = render_html(rank(_loaded(*records), specs=specs()))
    baseline_row = r'<tr data-name="reference" class="baseline" data-baseline="true"[^>]*><td[^>]*>1</td><td[^>]*>'
    assert re.search(baseline_row + BASELINE_MARKER, page)
    assert 'data-name="&lt;script&gt;&amp;"' in page and "<script>&" not in page
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert 'data-column="metric:beta"' in page and "beta: p50 latency (ms)" in page and "alpha: predict time (s)" in page


def test_html_is_deterministic():
    board = rank(_loaded(*board_records()), specs=specs())
    assert render_html(board) == render_html(board)


def test_leaderboard_build_command_writes_both_files_and_warns(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "load_specs", specs)
    results = tmp_path / "results"
    results.mkdir()
    for index, result in enumerate(board_records()):
        write(results / f"{index}.json", result)
    (results / "broken.json").write_text("[", encoding="utf-8")
    out = tmp_path / "board"
    outcome = CliRunner().invoke(app, ["leaderboard", "build", "--results", str(results), "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "warning:" in outcome.output and "broken.json" in outcome.output
    assert "zeta" in (out / "README.md").read_text(encoding="utf-8")
    assert 'id="leaderboard"' in (out / "index.html").read_text(encoding="utf-8")


def test_leaderboard_build_command_fails_without_records(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["leaderboard", "build", "--results", str(tmp_path / "missing")]).exit_code == 2
    empty = runner.invoke(app, ["leaderboard", "build", "--results", str(tmp_path), "--out", str(tmp_path / "out")])
    assert empty.exit_code == 1 and not (tmp_path / "out").exists()


def test_runs_graded_in_process_are_marked_and_left_out_with_sealed_only(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write(results / "trusted.json", record("trusted", [topic_record("alpha", value=0.9)], sealed=False))
    write(results / "sealed.json", record("sealed", [topic_record("alpha", value=0.8)]))
    text = build(results, tmp_path / "all", specs=specs()).written[0].read_text()
    assert f"| trusted {IN_PROCESS_MARKER} |" in text and "| sealed |" in text
    only = build(results, tmp_path / "sealed-only", specs=specs(), sealed_only=True)
    assert [row.name for row in only.board.rows] == ["sealed"]
    assert any("trusted.json: graded in-process" in warning for warning in only.warnings)
