"""Small result records built in memory (no grading), for the tests of exports, regression and the leaderboard."""

from __future__ import annotations

from harness.grader.records import SCHEMA_VERSION, CheckRecord, Environment, ResultRecord, Submission, TopicRecord
from harness.spec import load_specs
from harness.spec.outcomes import Outcome

ENVIRONMENT = Environment(
    python="3.11.7", platform="Linux", torch="2.14.1", numpy="2.4.6", cpu="test CPU", cpu_count=2, torch_threads=2, cuda=False, profile="cpu-2core"
)


def make_record(name: str = "someone", outcomes: dict[str, str] | None = None, metric_value: float | None = None, created: str = "2026-01-01T00:00:00+00:00") -> ResultRecord:
    """A record of topic cnn: every check passed unless ``outcomes`` says otherwise; the metric check measured ``metric_value``."""
    spec = load_specs()["cnn"]
    checks = []
    for check_id, check in spec.checks.items():
        outcome = Outcome((outcomes or {}).get(check_id, "passed"))
        numbers = {"value": metric_value, "threshold": check.threshold} if check.kind.value == "metric" and metric_value is not None else {}
        message = "" if outcome is Outcome.passed else f"{outcome.value} <because> & so"
        checks.append(
            CheckRecord(
                topic="cnn", check=check_id, kind=check.kind.value, outcome=outcome, points=check.points if outcome is Outcome.passed else 0.0,
                max_points=check.points, duration_s=0.25, message=message, numbers=numbers, hidden=check.hidden, items=1,
            )  # fmt: skip
        )
    topic = TopicRecord(topic="cnn", earned=sum(c.points for c in checks), possible=spec.total_points, wall_s=3.0, checks=checks)
    return ResultRecord(
        schema_version=SCHEMA_VERSION, created=created, submission=Submission(name=name, path=f"/submissions/{name}", content_sha256="0" * 64),
        tier="full", environment=ENVIRONMENT, spec_hashes={"cnn": "1" * 64}, earned=topic.earned, possible=topic.possible, topics=[topic],
    )  # fmt: skip
