"""From per-item verdicts to check results and topic scores.

A check may run as several test items (parametrizations); its outcome is the worst of theirs, and it earns
its points only when every item passed.
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


def _combine(topic: TopicSpec, check_id: str, items: list[dict[str, Any]]) -> CheckResult:
    check = topic.checks[check_id]
    worst = max(items, key=lambda item: Outcome(item["outcome"]).severity)
    outcome = Outcome(worst["outcome"])
    failing = sum(1 for item in items if item["outcome"] != Outcome.passed.value)
    message = worst["message"]
    if outcome is not Outcome.todo and len(items) > 1 and failing:
        message = f"{failing} of {len(items)} cases: {message}"
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
