"""A submission that hangs, exits or crashes costs only the checks it broke; concurrent graders never clash."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.conventions import REFERENCE_DIR, STUDENT_DIR
from harness.grader.leaderboard import build
from harness.grader.records import load_record
from harness.grader.run import run_topic
from harness.topic.loader import resolve_implementation

HANGS, STILL_GRADED = "output_size_matches_torch", "pad2d_matches_torch"


@pytest.mark.parametrize(
    ("body", "outcome"),
    [("while True:\n        pass", "timeout"), ("import time\n    time.sleep(3600)", "timeout"), ("import os\n    os._exit(0)", "error")],
    ids=["busy-loop", "sleep", "os-exit"],
)
def test_a_hang_or_exit_costs_only_its_check(tmp_path, monkeypatch, body, outcome):
    monkeypatch.setenv("VISIONBENCH_CHECK_LIMIT_S", "2")  # the child's per-check limit
    submission = tmp_path / "submission"
    submission.mkdir()
    source = (REFERENCE_DIR / "convolution.py").read_text()
    (submission / "convolution.py").write_text(f"{source}\n\ndef output_size(size, kernel, padding=0, stride=1, dilation=1):\n    {body}\n")
    run = run_topic(resolve_implementation(submission), "convolution", tier="quick", checks=[HANGS, STILL_GRADED])
    verdicts = {item["check"]: item["outcome"] for item in run.items}
    if outcome == "timeout":  # the child survives: the hung check times out, the next one is graded
        assert verdicts == {HANGS: "timeout", STILL_GRADED: "passed"}, run.items
    else:  # the child is gone: nothing reported, the parent says why for every check it left
        assert run.items == [] and run.problem is not None and "exited with code 0" in run.problem[1]


def test_eight_concurrent_graders_write_eight_valid_records_and_rank_as_eight_rows(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "harness.cli", "grade", str(STUDENT_DIR), "--topics", "convolution", "--tier", "quick"]
    processes = [
        subprocess.Popen([*command, "--name", f"student-{i}", "--out", str(results / f"student-{i}.json")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i in range(8)
    ]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read() if process.stderr else ""
    records = [load_record(path) for path in sorted(results.glob("*.json"))]
    assert sorted(r.submission.name for r in records) == [f"student-{i}" for i in range(8)]
    assert not list(results.glob(".*.tmp")), "temporary files left behind"
    built = build(results, tmp_path / "board")
    assert built.warnings == [] and len(built.board.rows) == 8
