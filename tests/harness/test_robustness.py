"""A submission that hangs, exits or crashes costs only the checks it broke; concurrent graders never clash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_four_concurrent_graders_write_four_valid_records_and_rank_as_four_rows(tmp_path):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "harness.cli", "grade", str(STUDENT_DIR), "--topics", "convolution", "--tier", "quick"]
    processes = [
        subprocess.Popen([*command, "--name", f"student-{i}", "--out", str(results / f"student-{i}.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for process in processes:
        output, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
        assert "graded convolution:" in output, output  # no terminal (a CI log): a line per topic as it finishes
    records = [load_record(path) for path in sorted(results.glob("*.json"))]
    assert sorted(r.submission.name for r in records) == [f"student-{i}" for i in range(4)]
    assert not list(results.glob(".*.tmp")), "temporary files left behind"
    built = build(results, tmp_path / "board")
    assert built.warnings == [] and len(built.board.rows) == 4


def test_sigterm_to_the_grader_ends_its_topic_processes(tmp_path):
    submission, pid_file = tmp_path / "submission", tmp_path / "topic.pid"
    submission.mkdir()
    source = (REFERENCE_DIR / "convolution.py").read_text()
    hang = f"def output_size(size, kernel, padding=0, stride=1, dilation=1):\n    import os, time\n    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n    time.sleep(600)\n"
    (submission / "convolution.py").write_text(f"{source}\n\n{hang}")
    command = [sys.executable, "-m", "harness.cli", "grade", str(submission), "--topics", "convolution", "--tier", "quick", "--in-process"]
    grader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not pid_file.exists() or not pid_file.read_text():
        assert grader.poll() is None and time.monotonic() < deadline, "the topic process never reached the hanging check"
        time.sleep(0.2)
    topic_pid = int(pid_file.read_text())
    grader.send_signal(signal.SIGTERM)
    assert grader.wait(timeout=60) != 0
    _assert_ends(topic_pid, "the topic process outlived the grader")


def test_sigterm_to_the_grader_ends_its_sealed_workers(tmp_path):
    """Sealed, the submission cannot write outside its scratch directory: it makes itself known by its command line."""
    submission, marker = tmp_path / "submission", "600.515151"
    submission.mkdir()
    source = (REFERENCE_DIR / "convolution.py").read_text()
    hang = f"def output_size(size, kernel, padding=0, stride=1, dilation=1):\n    import os\n    os.execv('/bin/sleep', ['sleep', {marker!r}])\n"
    (submission / "convolution.py").write_text(f"{source}\n\n{hang}")
    command = [sys.executable, "-m", "harness.cli", "grade", str(submission), "--topics", "convolution", "--tier", "quick"]
    grader = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (found := subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout.split()):
        assert grader.poll() is None and time.monotonic() < deadline, "the worker never reached the hanging check"
        time.sleep(0.2)
    grader.send_signal(signal.SIGTERM)
    assert grader.wait(timeout=60) != 0
    for pid in found:
        _assert_ends(int(pid), "a sealed worker outlived the grader")


def _assert_ends(pid: int, message: str) -> None:
    for _ in range(50):  # killed with the grader
        if not _alive(pid):
            return
        time.sleep(0.1)
    assert not _alive(pid), message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")  # a zombie has ended
