"""From per-item verdicts to check results and topic scores.

A check may run as several test items (parametrizations, "cases"); its outcome is the worst of theirs, and it
earns its points only when every item passed. Its message counts the cases by outcome and quotes the most telling
one: of the worst outcome, a wrong structure (type, shape, dtype: no error size) before wrong values, then the
largest error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.spec import TopicSpec, load_specs
from harness.spec.outcomes import Outcome

__all__ = ["CheckResult", "TopicScore", "Scores", "score_items"]


@dataclass
class CheckResult:
    topic: str
    check: str
    kind: str
    outcome: str
    points: float
    earned: float
    message: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    items: int = 0
    cases: list[dict[str, str]] = field(default_factory=list)  # every case that did not pass: case, outcome, message


@dataclass
class TopicScore:
    topic: str
    checks: list[CheckResult]

    @property
    def earned(self) -> float:
        return sum(c.earned for c in self.checks)

    @property
    def possible(self) -> float:
        return sum(c.points for c in self.checks)


@dataclass
class Scores:
    topics: list[TopicScore]

    @property
    def earned(self) -> float:
        return sum(t.earned for t in self.topics)

    @property
    def possible(self) -> float:
        return sum(t.possible for t in self.topics)

    def as_dict(self) -> dict[str, Any]:
        return {
            "earned": self.earned,
            "possible": self.possible,
            "topics": [{"topic": t.topic, "earned": t.earned, "possible": t.possible, "checks": [asdict(c) for c in t.checks]} for t in self.topics],
        }


MAX_CASES_KEPT = 100  # failing cases a check result lists (the rest are counted)


def case_of(item: dict[str, Any]) -> str:
    """The case an item ran: its parametrization id (``1x1-image-float32-contiguous``), or "" when not parametrized."""
    nodeid = item.get("nodeid", "")
    return nodeid[nodeid.index("[") + 1 : -1] if nodeid.endswith("]") and "[" in nodeid else ""


def _telling(item: dict[str, Any]) -> tuple[int, float, float]:
    """Sort key, most telling first: outcome severity, then a structural failure (no error size), then the largest error."""
    numbers = item.get("numbers") or {}
    error = numbers.get("max_abs_error")
    structural = error is None
    return (-Outcome(item["outcome"]).severity, 0 if structural else 1, -float(error) if error is not None else 0.0)


def _combine(topic: TopicSpec, check_id: str, items: list[dict[str, Any]]) -> CheckResult:
    check = topic.checks[check_id]
    worst = min(items, key=_telling)
    outcome = Outcome(worst["outcome"])
    not_passed = [item for item in items if item["outcome"] != Outcome.passed.value]
    message = worst["message"]
    if outcome is not Outcome.todo and len(items) > 1 and not_passed:
        counts = {o.value: sum(item["outcome"] == o.value for item in items) for o in sorted(Outcome, key=lambda o: -o.severity)}
        tally = ", ".join(f"{n} {name}" for name, n in counts.items() if n and name != Outcome.passed.value)
        case = case_of(worst)
        message = f"{tally} of {len(items)} cases; " + (f"[{case}] " if case else "") + message
    cases = [{"case": case_of(item), "outcome": item["outcome"], "message": item["message"]} for item in sorted(not_passed, key=_telling)]
    return CheckResult(
        topic=topic.id,
        check=check_id,
        kind=check.kind.value,
        outcome=outcome.value,
        points=check.points,
        earned=check.points if outcome is Outcome.passed else 0.0,
        message=message,
        numbers=worst.get("numbers", {}),
        duration_s=round(sum(item.get("duration_s", 0.0) for item in items), 4),
        items=len(items),
        cases=cases[:MAX_CASES_KEPT] if outcome is not Outcome.todo else [],
    )


def score_items(
    items: Iterable[dict[str, Any]], *, expected: dict[str, list[str]] | None = None, missing: dict[str, tuple[Outcome, str]] | None = None
) -> Scores:
    """Group item verdicts (as written by the plugin) by topic and check, in spec order.

    Args:
        items: dicts with topic, check, outcome, message, numbers, duration_s.
        expected: topic -> check ids that should have run; those without items get the topic's ``missing`` verdict.
        missing: topic -> (outcome, message) for its expected checks that produced no item
            (default: error, "the check did not run").
    """
    specs = load_specs()
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for item in items:
        grouped.setdefault(item["topic"], {}).setdefault(item["check"], []).append(item)
    if expected:
        for topic, check_ids in expected.items():
            outcome, message = (missing or {}).get(topic, (Outcome.error, "the check did not run"))
            for check_id in check_ids:
                placeholder = {"outcome": outcome.value, "message": message, "numbers": {}, "duration_s": 0.0}
                grouped.setdefault(topic, {}).setdefault(check_id, [placeholder])
    topics = []
    for topic_id, spec in specs.items():
        if topic_id in grouped:
            checks = [_combine(spec, check_id, grouped[topic_id][check_id]) for check_id in spec.checks if check_id in grouped[topic_id]]
            topics.append(TopicScore(topic_id, checks))
    return Scores(topics)
