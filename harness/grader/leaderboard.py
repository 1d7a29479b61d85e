"""The leaderboard: result records in, a ranked Markdown table and a static HTML page out.

``leaderboard/results/*.json`` holds result records (:mod:`harness.grader.records`). Runs of one submission (same
submission name) collapse to its latest (by ``created``) or, with ``best``, its best. Rows rank by total points,
then by each topic's headline metric (the ``value`` of the topic's first metric check, in curriculum order,
respecting ``higher_is_better``), then by speed (each topic's latency: ``p50_ms`` of its first latency check where
the spec has one, else ``predict_s`` of its headline metric check; lower first). Rows that tie on all of those
share a rank. The submission named ``reference`` is the baseline row: ranked like any other and marked.

Output is deterministic: the same records give the same bytes (no build time, fixed plot size and no PNG
software metadata).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from harness.grader import plots
from harness.grader.html import asset, data_uri, page
from harness.grader.records import RecordError, ResultRecord, load_record
from harness.spec import CheckKind, TopicSpec, load_specs

__all__ = [
    "BASELINE_NAME",
    "BASELINE_MARKER",
    "Headline",
    "TopicCell",
    "Row",
    "Leaderboard",
    "LoadedRecord",
    "Built",
    "headlines",
    "load_results",
    "collapse",
    "rank",
    "render_markdown",
    "render_html",
    "build",
]

BASELINE_NAME = "reference"
BASELINE_MARKER = "◆"
IN_PROCESS_MARKER = "†"  # graded in-process: the submission ran in the process that wrote its verdicts
RESULTS_PATTERN = "*.json"
MARKDOWN_FILE = "README.md"
HTML_FILE = "index.html"
_MISSING = "—"


@dataclass(frozen=True)
class Headline:
    """How one topic is compared beyond its points: its headline metric and its speed measure."""

    topic: str
    metric_check: str | None  # first metric check in spec order
    metric: str | None  # e.g. "accuracy"
    higher_is_better: bool
    speed_check: str | None  # the check whose numbers hold the speed measure
    speed_field: str | None  # "p50_ms" or "predict_s"

    @property
    def speed_label(self) -> str:
        """Axis/column label of the speed measure, with its unit."""
        return {"p50_ms": "p50 latency (ms)", "predict_s": "predict time (s)"}.get(self.speed_field or "", "speed")


@dataclass(frozen=True)
class TopicCell:
    """One row's numbers for one topic; None where the record has no such number."""

    earned: float | None
    possible: float | None
    value: float | None
    speed: float | None


@dataclass(frozen=True)
class LoadedRecord:
    """A result record with the file it came from."""

    path: Path
    record: ResultRecord


@dataclass(frozen=True)
class Row:
    """One submission on the board."""

    rank: int
    name: str
    created: str
    source: str  # file name of the record
    earned: float
    possible: float
    cells: dict[str, TopicCell]
    sealed: bool = False

    @property
    def baseline(self) -> bool:
        return self.name == BASELINE_NAME


@dataclass(frozen=True)
class Leaderboard:
    """Ranked rows and the columns they fill: topics in curriculum order and their headlines."""

    rows: list[Row]
    topics: list[str]
    headlines: dict[str, Headline]
    best: bool

    @property
    def metric_topics(self) -> list[str]:
        """Topics that have a headline metric (and so a metric column)."""
        return [topic for topic in self.topics if self.headlines[topic].metric is not None]

    @property
    def speed_topics(self) -> list[str]:
        """Topics that have a speed measure (and so a speed column)."""
        return [topic for topic in self.topics if self.headlines[topic].speed_field is not None]


def load_results(results_dir: Path) -> tuple[list[LoadedRecord], list[str]]:
    """Read every ``*.json`` record in ``results_dir``, in file-name order.

    Returns:
        (records, warnings): a file that is corrupt, does not validate or has another ``schema_version`` is
        skipped, with one warning line naming it and saying why.
    """
    records, warnings = [], []
    for path in sorted(Path(results_dir).glob(RESULTS_PATTERN)):
        try:
            record = load_record(path)
            _created(record)
        except RecordError as error:
            warnings.append(f"skipped {error}")
        except ValueError:
            warnings.append(f"skipped {path}: created {record.created!r} is not an ISO 8601 time")
        else:
            records.append(LoadedRecord(path, record))
    return records, warnings


def headlines(topics: Iterable[str], specs: dict[str, TopicSpec]) -> dict[str, Headline]:
    """Each topic's headline metric and speed measure, from its spec (a topic without a spec has neither)."""
    result = {}
    for topic in topics:
        checks = specs[topic].checks if topic in specs else {}
        metric_check = next((check_id for check_id, check in checks.items() if check.kind is CheckKind.metric), None)
        latency_check = next((check_id for check_id, check in checks.items() if check.kind is CheckKind.latency), None)
        if latency_check is not None:
            speed_check, speed_field = latency_check, "p50_ms"
        elif metric_check is not None:
            speed_check, speed_field = metric_check, "predict_s"
        else:
            speed_check, speed_field = None, None
        metric = checks[metric_check] if metric_check is not None else None
        result[topic] = Headline(
            topic=topic,
            metric_check=metric_check,
            metric=metric.metric if metric else None,
            higher_is_better=metric.higher_is_better if metric else True,
            speed_check=speed_check,
            speed_field=speed_field,
        )
    return result


def _number(value: object) -> float | None:
    """A finite float from a record's numbers (which may hold "nan"/"inf" strings), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _cell(record: ResultRecord, headline: Headline) -> TopicCell:
    topic = next((t for t in record.topics if t.topic == headline.topic), None)
    if topic is None:
        return TopicCell(None, None, None, None)
    numbers = {check.check: check.numbers for check in topic.checks}
    value = _number(numbers.get(headline.metric_check or "", {}).get("value"))
    speed = _number(numbers.get(headline.speed_check or "", {}).get(headline.speed_field or ""))
    return TopicCell(topic.earned, topic.possible, value, speed)


def _row(loaded: LoadedRecord, heads: dict[str, Headline]) -> Row:
    """A record's row, unranked (rank 0)."""
    record = loaded.record
    return Row(
        rank=0,
        name=record.submission.name,
        created=record.created,
        source=loaded.path.name,
        earned=record.earned,
        possible=record.possible,
        cells={topic: _cell(record, head) for topic, head in heads.items()},
        sealed=record.grading.mode == "sealed",
    )


def _missing_last(value: float | None) -> tuple[int, float]:
    return (1, 0.0) if value is None else (0, value)


def _merit(row: Row, heads: dict[str, Headline]) -> tuple[float | tuple[int, float], ...]:
    """Sort key, best first: total points, then headline metrics, then speed (missing numbers sort last)."""
    metrics = [
        _missing_last(None if cell.value is None else (-cell.value if heads[topic].higher_is_better else cell.value))
        for topic, cell in row.cells.items()
        if heads[topic].metric is not None
    ]
    speeds = [_missing_last(cell.speed) for topic, cell in row.cells.items() if heads[topic].speed_field is not None]
    return (-row.earned, *metrics, *speeds)


def _created(record: ResultRecord) -> datetime:
    return datetime.fromisoformat(record.created)


def _topics(records: Iterable[LoadedRecord], specs: dict[str, TopicSpec]) -> list[str]:
    """Topics graded in any record: curriculum order, then unknown ones alphabetically."""
    seen = {topic.topic for loaded in records for topic in loaded.record.topics}
    return [t for t in specs if t in seen] + sorted(seen - set(specs))


def collapse(records: list[LoadedRecord], *, best: bool = False, specs: dict[str, TopicSpec] | None = None) -> list[LoadedRecord]:
    """One record per submission name: the latest by ``created`` or, with ``best``, the best ranked (then latest)."""
    specs = load_specs() if specs is None else specs
    heads = headlines(_topics(records, specs), specs)
    groups: dict[str, list[LoadedRecord]] = {}
    for loaded in records:
        groups.setdefault(loaded.record.submission.name, []).append(loaded)

    def latest_first(loaded: LoadedRecord) -> tuple:
        return (-_created(loaded.record).timestamp(), loaded.path.name)

    def choice(loaded: LoadedRecord) -> tuple:
        return (_merit(_row(loaded, heads), heads), *latest_first(loaded)) if best else latest_first(loaded)

    return [min(group, key=choice) for _, group in sorted(groups.items())]


def rank(records: list[LoadedRecord], *, best: bool = False, specs: dict[str, TopicSpec] | None = None) -> Leaderboard:
    """Rank records (already collapsed): best first; rows that tie on every criterion share a rank, ordered by name.

    ``best`` only labels the board (each submission's best run rather than its latest, see :func:`collapse`).
    """
    specs = load_specs() if specs is None else specs
    topics = _topics(records, specs)
    heads = headlines(topics, specs)
    rows = sorted((_row(loaded, heads) for loaded in records), key=lambda row: (_merit(row, heads), row.name))
    ranked: list[Row] = []
    for position, row in enumerate(rows, start=1):
        tied = ranked and _merit(ranked[-1], heads) == _merit(row, heads)
        ranked.append(replace(row, rank=ranked[-1].rank if tied else position))
    return Leaderboard(rows=ranked, topics=topics, headlines=heads, best=best)


def _score(earned: float | None, possible: float | None) -> str:
    return _MISSING if earned is None or possible is None else f"{earned:g}/{possible:g}"


def _metric(value: float | None) -> str:
    return _MISSING if value is None else f"{value:.4f}"


def _arrow(head: Headline) -> str:
    return "↑" if head.higher_is_better else "↓"


def _display_name(row: Row) -> str:
    name = f"{BASELINE_MARKER} {row.name} (baseline)" if row.baseline else row.name
    return name if row.sealed else f"{name} {IN_PROCESS_MARKER}"


def _markdown_text(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return html.escape(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(board: Leaderboard) -> str:
    """The board as a Markdown document: one table, one row per submission."""
    metrics = [f"{topic}: {board.headlines[topic].metric} {_arrow(board.headlines[topic])}" for topic in board.metric_topics]
    header = ["rank", "name", "total", *board.topics, *metrics]
    align = ["---:", "---", "---:"] + ["---:"] * (len(header) - 3)
    lines = [
        "# visionbench leaderboard",
        "",
        f"{len(board.rows)} submission(s), {'best' if board.best else 'latest'} run of each; ranked by total points, then each "
        "topic's headline metric, then speed. "
        f"{BASELINE_MARKER} marks the reference baseline; {IN_PROCESS_MARKER} a run graded in-process (trusted code only: "
        "the submission ran in the process that wrote its verdicts). Built by `visionbench leaderboard build`; the page with sortable "
        f"tables and plots is [`{HTML_FILE}`]({HTML_FILE}).",
        "",
        "| " + " | ".join(_markdown_text(cell) for cell in header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    for row in board.rows:
        cells = [str(row.rank), _display_name(row), _score(row.earned, row.possible)]
        cells += [_score(row.cells[t].earned, row.cells[t].possible) for t in board.topics]
        cells += [_metric(row.cells[t].value) for t in board.metric_topics]
        lines.append("| " + " | ".join(_markdown_text(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Column:
    key: str  # data-column, the name the self-test hook clicks
    label: str
    numeric: bool
    descending_first: bool  # first click puts the largest value on top


def _columns(board: Leaderboard) -> list[_Column]:
    columns = [_Column("rank", "rank", True, False), _Column("name", "name", False, False), _Column("total", "total", True, True)]
    columns += [_Column(f"topic:{t}", t, True, True) for t in board.topics]
    for topic in board.metric_topics:
        head = board.headlines[topic]
        columns.append(_Column(f"metric:{topic}", f"{topic}: {head.metric} {_arrow(head)}", True, head.higher_is_better))
    columns += [_Column(f"speed:{t}", f"{t}: {board.headlines[t].speed_label}", True, False) for t in board.speed_topics]
    return columns


def _sort_value(value: float | None) -> str:
    """A cell's data-value: the exact number, or empty (sorts last) when there is none."""
    return "" if value is None else repr(value)


def _topic_cell(cell: TopicCell) -> tuple[str, str]:
    fraction = None if cell.earned is None or not cell.possible else cell.earned / cell.possible
    return _sort_value(fraction), _score(cell.earned, cell.possible)


def _cells(row: Row, board: Leaderboard) -> list[tuple[str, str]]:
    """(sort value, shown text) for each column of :func:`_columns`; an empty sort value sorts last."""
    cells = [(str(row.rank), str(row.rank)), (row.name, _display_name(row)), (repr(row.earned), _score(row.earned, row.possible))]
    cells += [_topic_cell(row.cells[topic]) for topic in board.topics]
    cells += [(_sort_value(row.cells[topic].value), _metric(row.cells[topic].value)) for topic in board.metric_topics]
    for topic in board.speed_topics:
        speed = row.cells[topic].speed
        cells.append((_sort_value(speed), _MISSING if speed is None else f"{speed:.3g}"))
    return cells


def _table(board: Leaderboard) -> str:
    head = "".join(
        f'<th data-column="{html.escape(c.key)}" data-numeric="{str(c.numeric).lower()}" '
        f'data-first="{"descending" if c.descending_first else "ascending"}" tabindex="0">{html.escape(c.label)}</th>'
        for c in _columns(board)
    )
    body = []
    for row in board.rows:
        attributes = ' class="baseline" data-baseline="true"' if row.baseline else ' data-baseline="false"'
        cells = "".join(f'<td data-value="{html.escape(value)}">{html.escape(text)}</td>' for value, text in _cells(row, board))
        title = html.escape(f"{row.source}, graded {row.created}")
        body.append(f'<tr data-name="{html.escape(row.name)}"{attributes} title="{title}">{cells}</tr>')
    return f'<table id="leaderboard">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table>"


def _figure(title: str, png: bytes | None, empty: str) -> str:
    if png is None:
        return f"<figure><figcaption>{html.escape(title)}</figcaption><p class=\"empty\">{html.escape(empty)}</p></figure>"
    image = f'<img alt="{html.escape(title)}" src="{data_uri(png, "image/png")}">'
    return f"<figure>{image}<figcaption>{html.escape(title)}</figcaption></figure>"


def render_html(board: Leaderboard) -> str:
    """The board as a self-contained page: sortable table (click a header; click again to reverse) and two plots."""
    scores = plots.topic_scores_png(board)
    tradeoff = plots.metric_vs_speed_png(board)
    body = "\n".join([
        "<h1>visionbench leaderboard</h1>",
        f"<p>{len(board.rows)} submission(s), {'best' if board.best else 'latest'} run of each; ranked by total points, then each "
        f"topic's headline metric, then speed. <span class=\"marker\">{BASELINE_MARKER}</span> marks the reference baseline. "
        "Click a column header to sort; click it again to reverse.</p>",
        _table(board),
        _figure("Per-topic score (% of the topic's points)", scores, "no topics graded"),
        _figure("Headline metric vs speed, per topic", tradeoff, "no metric checks graded"),
    ])  # fmt: skip
    return page("visionbench leaderboard", body, style=asset("leaderboard.css"), script=asset("leaderboard.js"))


@dataclass(frozen=True)
class Built:
    """What :func:`build` wrote, and the warnings about records it skipped."""

    board: Leaderboard
    written: list[Path]
    warnings: list[str]


def build(
    results_dir: Path, out_dir: Path, *, best: bool = False, specs: dict[str, TopicSpec] | None = None, sealed_only: bool = False
) -> Built:
    """Load, collapse and rank the records in ``results_dir``; write ``README.md`` and ``index.html`` to ``out_dir``.

    ``sealed_only``: records graded in-process are left out, each with a warning. Nothing is written when no record
    could be read (``Built.written`` is empty).
    """
    records, warnings = load_results(results_dir)
    if sealed_only:
        warnings += [f"skipped {loaded.path}: graded in-process (--sealed-only)" for loaded in records if loaded.record.grading.mode != "sealed"]
        records = [loaded for loaded in records if loaded.record.grading.mode == "sealed"]
    specs = load_specs() if specs is None else specs
    board = rank(collapse(records, best=best, specs=specs), best=best, specs=specs)
    if not board.rows:
        return Built(board, [], warnings)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / MARKDOWN_FILE, out_dir / HTML_FILE]
    written[0].write_text(render_markdown(board), encoding="utf-8")
    written[1].write_text(render_html(board), encoding="utf-8")
    return Built(board, written, warnings)
