"""Grading end to end, through child processes: broken submissions cost only their own topic."""

from __future__ import annotations

import shutil

from harness.conventions import REFERENCE_DIR
from harness.grader.run import grade
from harness.spec import load_specs
from harness.topic.loader import resolve_implementation

TOPICS = [t for t in ("image_basics", "convolution", "cnn") if t in load_specs()]


def verdicts(scores):
    return {(c.topic, c.check): (c.outcome, c.earned, c.message) for t in scores.topics for c in t.checks}


def test_broken_topics_are_errors_and_the_rest_is_graded(tmp_path):
    submission = tmp_path / "broken"
    submission.mkdir()
    (submission / "image_basics.py").write_text("def to_float(image:\n")
    (submission / "cnn.py").write_text("import torch\nraise RuntimeError('boom at import')\n")
    source = (REFERENCE_DIR / "convolution.py").read_text()
    exit_early = "def output_size(size, kernel, padding=0, stride=1, dilation=1):\n    import os\n    os._exit(0)\n"
    (submission / "convolution.py").write_text(f"{source}\n{exit_early}")
    scores, runs = grade(resolve_implementation(submission), TOPICS, tier="quick")
    results = {(c.topic, c.check): c for t in scores.topics for c in t.checks}
    specs = load_specs()
    for topic in TOPICS:
        assert {check for (t, check) in results if t == topic} == {c for c, k in specs[topic].checks.items() if k.kind.tier == "quick"}
    if "image_basics" in TOPICS:
        assert all(c.outcome == "error" and "syntax error" in c.message and "line 1" in c.message for (t, _), c in results.items() if t == "image_basics")
    if "cnn" in TOPICS:
        assert all(c.outcome == "error" and "importing cnn raised RuntimeError: boom at import" in c.message for (t, _), c in results.items() if t == "cnn")
    exited = [c for (t, _), c in results.items() if t == "convolution" and c.outcome == "error"]
    assert exited and all("exited with code 0" in c.message for c in exited)


def test_grading_twice_gives_identical_verdicts():
    reference = resolve_implementation("reference")
    first, _ = grade(reference, ["convolution"], tier="quick")
    second, _ = grade(reference, ["convolution"], tier="quick")
    assert verdicts(first) == verdicts(second)
    assert first.earned == first.possible > 0


def test_copied_reference_topic_scores_full_marks_and_stubs_are_todo(tmp_path):
    submission = tmp_path / "student_copy"
    shutil.copytree(REFERENCE_DIR.parent / "student", submission)
    shutil.copy(REFERENCE_DIR / "convolution.py", submission / "convolution.py")
    scores, _ = grade(resolve_implementation(submission), TOPICS, tier="full")
    for topic in scores.topics:
        outcomes = {c.outcome for c in topic.checks}
        if topic.topic == "convolution":
            assert outcomes == {"passed"} and topic.earned == topic.possible
        else:
            assert outcomes == {"todo"} and topic.earned == 0
