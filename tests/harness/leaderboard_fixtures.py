"""Small specs and result records for the leaderboard and report tests, built from the harness models (nothing trains).

Two made-up topics: ``alpha`` (metric ``accuracy``, higher is better; speed from the metric check's ``predict_s``)
and ``beta`` (metric ``error``, lower is better, with a latency check: speed from its ``p50_ms``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.grader.records import SCHEMA_VERSION, CheckRecord, Environment, Grading, ResultRecord, Submission, TopicRecord
from harness.spec import Budget, Check, Interface, Task, TopicSpec

SHAPE_POINTS = 2.0
METRIC_POINTS = 10.0
LATENCY_POINTS = 1.0
CREATED = "2026-01-01T00:00:00+00:00"


def _spec(topic: str, number: int, metric: str, higher_is_better: bool, latency: bool) -> TopicSpec:
    interfaces = {
        "transform": Interface(signature="(x)", doc="a function"),
        "train": Interface(signature="(split, *, seed, budget_s)", doc="trains"),
        "predict": Interface(signature="(model, inputs)", doc="predicts"),
    }
    checks = {
        "shape": Check(kind="property", points=SHAPE_POINTS, description="shape", uses=["transform"]),
        "score": Check(
            kind="metric", points=METRIC_POINTS, description="metric", uses=["train", "predict"], task="task", metric=metric, threshold=0.5,
            higher_is_better=higher_is_better, reference_value=0.9, calibration="made up", budget=Budget(train_s=10),
        ),  # fmt: skip
    }
    if latency:
        checks["speed"] = Check(
            kind="latency", points=LATENCY_POINTS, description="latency", uses=["predict"], task="task", budget=Budget(train_s=10, p50_ms=5)
        )
    task = Task(train="train", predict="predict", dataset="digits32", outputs="labels")
    return TopicSpec(id=topic, number=number, title=topic, idea="made up", interfaces=interfaces, tasks={"task": task}, checks=checks)


def specs() -> dict[str, TopicSpec]:
    """The two made-up topics, in curriculum order."""
    return {"alpha": _spec("alpha", 1, "accuracy", True, latency=False), "beta": _spec("beta", 2, "error", False, latency=True)}


def _check(
    topic: str, check: str, kind: str, max_points: float, passed: bool, message: str = "", numbers: dict | None = None
) -> CheckRecord:
    return CheckRecord(
        topic=topic, check=check, kind=kind, outcome="passed" if passed else "failed", points=max_points if passed else 0.0,
        max_points=max_points, duration_s=0.5, message=message, numbers=numbers or {}, items=1,
    )  # fmt: skip


def topic_record(
    topic: str, *, shape: bool = True, value: float | None = None, speed: float | None = None, message: str = ""
) -> TopicRecord:
    """One topic of a record: ``shape`` passed or not; metric ``value`` (passing when given) and ``speed``."""
    checks = [_check(topic, "shape", "property", SHAPE_POINTS, shape, "" if shape else message or "wrong shape", {"expected": [2, 3]})]
    metric_numbers: dict[str, Any] = {} if value is None else {"value": value}
    if topic == "alpha" and speed is not None:
        metric_numbers["predict_s"] = speed
    metric_message = "" if value is not None else "not trained"
    checks.append(_check(topic, "score", "metric", METRIC_POINTS, value is not None, metric_message, metric_numbers))
    if topic == "beta":
        latency_numbers = {} if speed is None else {"p50_ms": speed}
        checks.append(_check(topic, "speed", "latency", LATENCY_POINTS, speed is not None, numbers=latency_numbers))
    earned = sum(c.points for c in checks)
    return TopicRecord(topic=topic, earned=earned, possible=sum(c.max_points for c in checks), wall_s=1.0, checks=checks)


def record(
    name: str, topics: list[TopicRecord], *, created: str = CREATED, artifacts: list[str] | None = None, sealed: bool = True
) -> ResultRecord:
    """A complete result record of ``topics`` (graded sealed, unless ``sealed`` is False)."""
    environment = Environment(
        python="3.11", platform="linux", torch="2", numpy="2", cpu="cpu", cpu_count=2, torch_threads=2, cuda=False, profile="cpu-2core"
    )
    return ResultRecord(
        schema_version=SCHEMA_VERSION, created=created,
        submission=Submission(name=name, path=f"/submissions/{name}", content_sha256="0" * 64),
        tier="full", environment=environment, spec_hashes={t.topic: "0" * 64 for t in topics}, earned=sum(t.earned for t in topics),
        possible=sum(t.possible for t in topics), topics=topics, artifacts=artifacts or [],
        grading=Grading(mode="sealed" if sealed else "in-process", containment={"namespaces": "on"} if sealed else {}),
    )  # fmt: skip


def write(path: Path, result: ResultRecord) -> Path:
    """Write ``result`` as a record file; returns ``path``."""
    path.write_text(json.dumps(result.model_dump(mode="json"), indent=2), encoding="utf-8")
    return path


def board_records() -> list[ResultRecord]:
    """A board whose rank order differs from name order and from total order reversed-by-name.

    Ranks: reference (all passed) > zeta (alpha 0.95) > beta-team (alpha 0.90) > alpha-team (shape failed).
    """
    return [
        record("reference", [topic_record("alpha", value=0.99, speed=0.2), topic_record("beta", value=0.05, speed=1.0)]),
        record("zeta", [topic_record("alpha", value=0.95, speed=0.3), topic_record("beta", value=0.10, speed=2.0)]),
        record("beta-team", [topic_record("alpha", value=0.90, speed=0.1), topic_record("beta", value=0.10, speed=2.0)]),
        record("alpha-team", [topic_record("alpha", shape=False, value=0.99, speed=0.1), topic_record("beta", value=0.01, speed=0.5)]),
    ]
