"""The per-run HTML report: one static page that shows a student every check of a graded run and why it failed.

Checks that did not pass come first, grouped by topic, each with its outcome, points, message, the numbers
behind the verdict and every case that did not pass (its inputs, named by the case id); the passed ones follow, also grouped by topic. Pictures listed in the record's
``artifacts`` (paths relative to the record) are embedded. Hidden checks keep their message and numbers out of
the page unless ``show_hidden`` is set (grades published).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from harness.grader.html import asset, image_data_uri, page
from harness.grader.records import CheckRecord, ResultRecord, TopicRecord, load_record
from harness.spec.outcomes import Outcome

__all__ = ["HIDDEN_NOTE", "render_report", "write_report"]

HIDDEN_NOTE = "hidden check: details are shown once grades are published"
REPORT_SUFFIX = ".html"


def _format(value: Any) -> str:
    """A number from a record, readable: floats to 6 significant digits, containers as compact JSON."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _numbers_table(numbers: dict[str, Any]) -> str:
    if not numbers:
        return ""
    rows = "".join(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_format(value))}</td></tr>" for key, value in numbers.items())
    return f'<table class="numbers">{rows}</table>'


def _check(check: CheckRecord, show_hidden: bool) -> str:
    """One check as a card: heading line, then message and numbers (withheld for a hidden check)."""
    heading = (
        f'<h4><span class="outcome">{html.escape(check.outcome.value)}</span> {html.escape(check.check)} '
        f'<span class="meta">{html.escape(check.kind)} · {check.points:g}/{check.max_points:g} points · '
        f"{check.duration_s:.2f} s · {check.items} item(s)</span></h4>"
    )
    if check.hidden and not show_hidden:
        details = f'<p class="note">{html.escape(HIDDEN_NOTE)}</p>'
    else:
        message = f'<pre class="message">{html.escape(check.message)}</pre>' if check.message else ""
        details = message + _numbers_table(check.numbers) + _cases_table(check)
    return f'<div class="check {html.escape(check.outcome.value)}" data-check="{html.escape(check.check)}">{heading}{details}</div>'


def _cases_table(check: CheckRecord) -> str:
    """Every case that did not pass, most telling first: its inputs (the case id), outcome and message."""
    if len(check.cases) < 2:  # one failing case is the message already
        return ""
    rows = "".join(
        f"<tr><td><code>{html.escape(case.case or '-')}</code></td><td>{html.escape(case.outcome.value)}</td><td>{html.escape(case.message)}</td></tr>"
        for case in check.cases
    )
    caption = f"<caption>{len(check.cases)} of {check.items} cases did not pass</caption>"
    return f'<table class="cases">{caption}<tr><th>case</th><th>outcome</th><th>message</th></tr>{rows}</table>'


def _by_severity(checks: list[CheckRecord]) -> list[CheckRecord]:
    """Worst outcome first (error, timeout, forbidden, failed, todo); record order within an outcome."""
    return sorted(checks, key=lambda check: -Outcome(check.outcome).severity)


def _topic_section(topic: TopicRecord, checks: list[CheckRecord], show_hidden: bool) -> str:
    cards = "\n".join(_check(check, show_hidden) for check in checks)
    return (
        f'<section class="topic" data-topic="{html.escape(topic.topic)}">'
        f"<h3>{html.escape(topic.topic)} <span class=\"meta\">{topic.earned:g}/{topic.possible:g} points</span></h3>\n{cards}</section>"
    )


def _part(title: str, record: ResultRecord, passed: bool, show_hidden: bool) -> str:
    """The checks that passed (or did not), grouped by topic in record order; empty when there are none."""
    sections = []
    for topic in record.topics:
        checks = [c for c in topic.checks if (c.outcome is Outcome.passed) == passed]
        if checks:
            sections.append(_topic_section(topic, _by_severity(checks), show_hidden))
    if not sections:
        return ""
    return f'<h2 id="{"passed" if passed else "attention"}">{html.escape(title)}</h2>\n' + "\n".join(sections)


def _summary(record: ResultRecord) -> str:
    counts: dict[str, int] = {}
    for topic in record.topics:
        for check in topic.checks:
            counts[check.outcome.value] = counts.get(check.outcome.value, 0) + 1
    outcomes = ", ".join(f"{counts[o.value]} {o.value}" for o in Outcome if o.value in counts) or "no checks"
    facts = [
        ("submission", record.submission.name),
        ("graded", record.created),
        ("tier", record.tier),
        ("profile", record.environment.profile),
        ("score", f"{record.earned:g}/{record.possible:g} points"),
        ("checks", outcomes),
    ]
    return '<table class="summary">' + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in facts) + "</table>"


def _pictures(record: ResultRecord, record_dir: Path) -> str:
    if not record.artifacts:
        return ""
    items = []
    for artifact in record.artifacts:
        uri = image_data_uri(record_dir / artifact)
        caption = f"<figcaption>{html.escape(artifact)}</figcaption>"
        if uri is None:
            items.append(f'<figure class="missing">{caption}<p class="note">not found beside the record, or not a picture</p></figure>')
        else:
            items.append(f'<figure><img alt="{html.escape(artifact)}" src="{uri}">{caption}</figure>')
    return '<h2 id="pictures">Pictures</h2>\n' + "\n".join(items)


def render_report(record: ResultRecord, record_dir: Path, *, show_hidden: bool = False) -> str:
    """The report page of one record.

    Args:
        record: a validated result record.
        record_dir: the folder the record's ``artifacts`` paths are relative to.
        show_hidden: include the message and numbers of hidden checks.
    """
    title = f"visionbench report: {record.submission.name}"
    body = "\n".join(
        part
        for part in (
            f"<h1>{html.escape(title)}</h1>",
            _summary(record),
            _part("Needs attention", record, passed=False, show_hidden=show_hidden),
            _part("Passed", record, passed=True, show_hidden=show_hidden),
            _pictures(record, record_dir),
        )
        if part
    )
    return page(title, body, style=asset("report.css"))


def write_report(result: Path, out: Path | None = None, *, show_hidden: bool = False) -> Path:
    """Read a result record and write its report (default: beside it, ``.html``); returns the path written.

    Raises:
        RecordError: the record cannot be read or does not validate.
    """
    result = Path(result)
    out = result.with_suffix(REPORT_SUFFIX) if out is None else Path(out)
    text = render_report(load_record(result), result.parent, show_hidden=show_hidden)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
