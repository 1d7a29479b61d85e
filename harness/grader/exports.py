"""Result records in the formats CI and course platforms read: Gradescope ``results.json`` and JUnit XML.

Both are derived from a :class:`~harness.grader.records.ResultRecord` and nothing else, so any record can be exported
again later.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.grader.records import CheckRecord, ResultRecord

__all__ = ["GradescopeResults", "to_gradescope", "to_junit", "headline_metrics"]

Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GradescopeTest(_Model):
    name: str
    number: str
    score: float
    max_score: float
    output: str
    tags: list[str]
    visibility: Visibility


class GradescopeLeaderboardEntry(_Model):
    name: str
    value: float
    order: Literal["asc", "desc"]


class GradescopeResults(_Model):
    """Gradescope's autograder ``results.json`` (the fields visionbench fills)."""

    score: float
    execution_time: float
    output: str
    visibility: Visibility
    stdout_visibility: Visibility
    tests: list[GradescopeTest]
    leaderboard: list[GradescopeLeaderboardEntry]


def _details(check: CheckRecord) -> str:
    outcome = check.outcome.value
    lines = [check.message if check.message.startswith(outcome) else f"{outcome}: {check.message}" if check.message else outcome]
    lines += [f"{key} = {value}" for key, value in check.numbers.items()]
    return "\n".join(lines)


def headline_metrics(record: ResultRecord) -> list[tuple[str, float, bool]]:
    """(``topic.metric``, value, higher is better) of every metric check that measured a value."""
    from harness.spec import load_specs

    specs = load_specs()
    metrics = []
    for topic in record.topics:
        for check in topic.checks:
            value = check.numbers.get("value")
            if check.kind == "metric" and isinstance(value, (int, float)):
                spec_check = specs[topic.topic].checks[check.check]
                metrics.append((f"{topic.topic}.{spec_check.metric}", float(value), spec_check.higher_is_better))
    return metrics


def to_gradescope(record: ResultRecord) -> GradescopeResults:
    """Gradescope results: one test per check (hidden checks visible after publication), total on the leaderboard."""
    from harness.spec import load_specs

    specs = load_specs()
    tests = []
    for topic in record.topics:
        number = specs[topic.topic].number
        for index, check in enumerate(topic.checks, start=1):
            tests.append(
                GradescopeTest(
                    name=f"{topic.topic}: {check.check}",
                    number=f"{number}.{index}",
                    score=check.points,
                    max_score=check.max_points,
                    output=_details(check),
                    tags=[topic.topic, check.kind, check.outcome.value],
                    visibility="after_published" if check.hidden else "visible",
                )
            )
    summary = "\n".join(f"{t.topic}: {t.earned:g}/{t.possible:g}" for t in record.topics)
    leaderboard = [GradescopeLeaderboardEntry(name="total", value=record.earned, order="desc")]
    leaderboard += [GradescopeLeaderboardEntry(name=name, value=value, order="desc" if higher else "asc") for name, value, higher in headline_metrics(record)]
    return GradescopeResults(
        score=sum(test.score for test in tests),
        execution_time=round(sum(t.wall_s for t in record.topics), 3),
        output=f"{record.submission.name}: {record.earned:g}/{record.possible:g} points ({record.tier} tier)\n{summary}",
        visibility="visible",
        stdout_visibility="hidden",
        tests=tests,
        leaderboard=leaderboard,
    )


def to_junit(record: ResultRecord) -> str:
    """JUnit XML: a test suite per topic, a test case per check; todo is reported as skipped."""
    suites = ElementTree.Element("testsuites", name=f"visionbench {record.submission.name}")
    for topic in record.topics:
        counts: dict[str, Any] = {o: sum(1 for c in topic.checks if c.outcome.value == o) for o in ("failed", "todo")}
        errors = sum(1 for c in topic.checks if c.outcome.value in ("error", "timeout", "forbidden"))
        suite = ElementTree.SubElement(
            suites, "testsuite", name=topic.topic, tests=str(len(topic.checks)), failures=str(counts["failed"]),
            errors=str(errors), skipped=str(counts["todo"]), time=f"{topic.wall_s:.3f}",
        )  # fmt: skip
        for check in topic.checks:
            case = ElementTree.SubElement(suite, "testcase", classname=f"visionbench.{topic.topic}", name=check.check, time=f"{check.duration_s:.3f}")
            properties = ElementTree.SubElement(case, "properties")
            ElementTree.SubElement(properties, "property", name="points", value=f"{check.points:g}/{check.max_points:g}")
            outcome = check.outcome.value
            if outcome == "failed":
                ElementTree.SubElement(case, "failure", message=check.message).text = _details(check)
            elif outcome == "todo":
                ElementTree.SubElement(case, "skipped", message=check.message)
            elif outcome != "passed":
                ElementTree.SubElement(case, "error", message=check.message, type=outcome).text = _details(check)
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
