"""Regression of the reference: its metric values against the recorded baseline, within each spec's tolerance.

``leaderboard/baselines/reference.json`` holds ``{"metrics": {"<topic>.<check>": value}}``. A regression is a
metric that moved past its check's ``regression_tolerance`` in the bad direction, or any check that did not pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.conventions import LEADERBOARD_DIR
from harness.grader.records import ResultRecord
from harness.jsonfiles import write_json_atomic
from harness.spec import load_specs

__all__ = ["BASELINE_FILE", "Comparison", "compare", "load_baseline", "baseline_from"]

BASELINE_FILE = LEADERBOARD_DIR / "baselines" / "reference.json"


@dataclass(frozen=True)
class Comparison:
    """One check of the graded run against the baseline."""

    name: str  # "<topic>.<check>"
    outcome: str
    value: float | None
    baseline: float | None
    tolerance: float | None
    regressed: bool
    reason: str


def load_baseline(path: Path = BASELINE_FILE) -> dict[str, float]:
    """Metric values by ``<topic>.<check>`` (empty when there is no baseline yet)."""
    return json.loads(path.read_text(encoding="utf-8"))["metrics"] if path.exists() else {}


def baseline_from(record: ResultRecord) -> dict[str, float]:
    """The metric values a graded run measured, by ``<topic>.<check>``."""
    return {
        f"{topic.topic}.{check.check}": float(check.numbers["value"])
        for topic in record.topics
        for check in topic.checks
        if check.kind == "metric" and isinstance(check.numbers.get("value"), (int, float))
    }


def write_baseline(record: ResultRecord, path: Path = BASELINE_FILE) -> None:
    """Replace the baseline values of the topics the record graded; those of other topics are kept."""
    graded = {topic.topic for topic in record.topics}
    kept = {key: value for key, value in load_baseline(path).items() if key.partition(".")[0] not in graded}
    metrics = dict(sorted({**kept, **baseline_from(record)}.items()))
    write_json_atomic(path, {"submission": record.submission.name, "created": record.created, "metrics": metrics})


def compare(record: ResultRecord, baseline: dict[str, float]) -> list[Comparison]:
    """Every check of the record, with its metric against the baseline where there is one."""
    specs = load_specs()
    measured = baseline_from(record)
    comparisons = []
    for topic in record.topics:
        for check in topic.checks:
            name = f"{topic.topic}.{check.check}"
            spec_check = specs[topic.topic].checks[check.check]
            value, expected, tolerance = measured.get(name), baseline.get(name), spec_check.regression_allowance
            if check.outcome.value != "passed":
                regressed, reason = True, f"{check.outcome.value}: {check.message}"
            elif value is not None and expected is not None and tolerance is not None:
                drop = (expected - value) if spec_check.higher_is_better else (value - expected)
                regressed = drop > tolerance
                reason = f"moved {-drop:+.4f} (tolerance {tolerance:g})"
            else:
                regressed, reason = False, "no baseline" if value is not None else ""
            comparisons.append(Comparison(name, check.outcome.value, value, expected, tolerance, regressed, reason))
    return comparisons
