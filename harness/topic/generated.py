"""Metric and latency checks need no test code: the spec defines them fully, and their items are made from it.

Each metric or latency check of a topic becomes one item ``test_<check id>`` of the topic's test module, tied to its
check like a hand-written test. All checks of one task share one training (the task runner caches it per process),
and under pytest-xdist they are kept in one ``xdist_group`` so that they run in the same worker.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.conventions import CHECK_MARKER, topic_items_module, topic_of_path
from harness.spec import CheckKind, TopicSpec, load_specs

__all__ = ["generated_items", "metric_check", "latency_check", "GENERATED_KINDS"]

GENERATED_KINDS = (CheckKind.metric, CheckKind.latency)


def metric_check(impl: Any, spec: TopicSpec, check_id: str) -> None:
    """Train through the task's entry point, predict the hidden split, and hold the harness's metric to the threshold."""
    from harness.topic.tasks import assert_reaches_threshold, run_metric_task

    check = spec.checks[check_id]
    assert check.task is not None
    result = run_metric_task(impl, spec, check_id)
    assert_reaches_threshold(result, check, f"on the hidden {spec.tasks[check.task].dataset} split")


def latency_check(impl: Any, spec: TopicSpec, check_id: str) -> None:
    """Time the task's predict entry point at batch 1 beside the reference, against the check's budget."""
    from harness.topic.latency import run_latency_task

    run_latency_task(impl, spec, check_id)


_RUNNERS = {CheckKind.metric: metric_check, CheckKind.latency: latency_check}


def generated_items(module: pytest.Module) -> list[pytest.Item]:
    """The items of a topic's metric and latency checks, when ``module`` is the topic's test module (else none)."""
    topic = topic_of_path(module.path)
    if topic is None or module.path != topic_items_module(topic):
        return []
    spec = load_specs().get(topic)
    if spec is None:
        return []
    items = []
    for check_id, check in spec.checks.items():
        if check.kind not in GENERATED_KINDS:
            continue
        item = pytest.Function.from_parent(module, name=f"test_{check_id}", callobj=_RUNNERS[check.kind])
        item.add_marker(getattr(pytest.mark, CHECK_MARKER)(check_id))
        item.add_marker(pytest.mark.xdist_group(f"{topic}.{check.task}"))
        items.append(item)
    return items
