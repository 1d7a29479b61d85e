"""Canary submissions: the reference with one function replaced by a wrong one, graded for real.

Each canary is written to a fresh submission directory as the reference module's source followed by the
canary's overrides (which may refer to the reference's own definitions by name), then graded through
:func:`harness.grading.run_topic`, the same path ``visionbench grade`` takes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from harness.grading import run_topic
from harness.loader import resolve_implementation
from harness.paths import REFERENCE_DIR
from harness.scoring import score_items

__all__ = ["grade_canary"]


def grade_canary(tmp_path: Path, topic: str, overrides: str, checks: list[str]) -> dict[str, str]:
    """Grade ``checks`` of ``topic`` for the reference with ``overrides`` appended; returns check id -> outcome."""
    submission = tmp_path / "submission"
    submission.mkdir()
    source = (REFERENCE_DIR / f"{topic}.py").read_text()
    (submission / f"{topic}.py").write_text(f"{source}\n\n# --- canary overrides ---\n{textwrap.dedent(overrides)}\n")
    run = run_topic(resolve_implementation(submission), topic, tier="full", checks=checks)
    scores = score_items(run.items, expected={topic: run.expected}, missing={topic: run.problem} if run.problem else None)
    return {result.check: result.outcome for topic_score in scores.topics for result in topic_score.checks}
