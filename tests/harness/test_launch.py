"""Topic processes start the same way whether forked from the preloaded server or spawned as a new interpreter."""

from __future__ import annotations

import os

import pytest

from harness.grader.launch import NO_FORKSERVER_ENV, start_topic_process

SEES_ITS_SETTING = """
import os
import sys


def test_environment_and_place():
    assert os.environ.get("VISIONBENCH_MARK") == "seen" and "VISIONBENCH_HIDDEN" not in os.environ
    assert os.getcwd() == sys.path[0] == {folder!r}
    assert os.getpgid(0) == os.getpid()  # it leads its own process group
    print("topic process ran")
"""


@pytest.mark.parametrize("forkserver", [True, False], ids=["forked", "spawned"])
def test_a_topic_process_runs_pytest_with_exactly_its_environment(tmp_path, monkeypatch, forkserver):
    monkeypatch.setenv(NO_FORKSERVER_ENV, "" if forkserver else "1")
    monkeypatch.setenv("VISIONBENCH_HIDDEN", "the grader's own")
    (tmp_path / "test_setting.py").write_text(SEES_ITS_SETTING.format(folder=str(tmp_path)))
    log = tmp_path / "output.log"
    environment = {key: value for key, value in os.environ.items() if key != "VISIONBENCH_HIDDEN"} | {"VISIONBENCH_MARK": "seen"}
    process = start_topic_process(["test_setting.py", "-q", "-s", "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=tmp_path, environment=environment, log=log)
    assert process.wait(timeout=300) == 0, log.read_text()
    assert "topic process ran" in log.read_text()


def test_a_hung_topic_process_is_killed_with_its_group(tmp_path):
    (tmp_path / "test_hangs.py").write_text("import time\n\n\ndef test_hangs():\n    time.sleep(600)\n")
    process = start_topic_process(["test_hangs.py", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=tmp_path, environment=dict(os.environ), log=tmp_path / "log")
    assert process.wait(timeout=2) is None
    process.kill()
    assert process.wait(timeout=30) is not None
