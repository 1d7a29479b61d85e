"""Starting a topic process: ``python -m pytest`` on one topic's tests, fresh, in a process group of its own.

Importing torch, torchvision, torchmetrics and the rest costs a new interpreter about five seconds, more than many
topics' quick checks take. Where the platform can fork, topic processes are therefore forked from a server process
that imported those libraries once and has run nothing else (:mod:`multiprocessing`'s ``forkserver``): each child
starts from that clean state, with the environment, working directory and arguments it is given, and runs pytest
as ``python -m pytest`` would. Elsewhere, or with ``VISIONBENCH_NO_FORKSERVER=1``, it is a new interpreter.

Either way the child leads a new session (so it and whatever it starts are killed together), its standard input is
empty and its output goes to a file the caller names. The server never imports submission code: only the libraries
in :data:`PRELOAD`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["PRELOAD", "NO_FORKSERVER_ENV", "TopicProcess", "start_topic_process"]

PRELOAD = [
    "numpy", "torch", "torchvision", "torchmetrics", "scipy.ndimage", "sklearn.metrics", "skimage", "cv2", "PIL.Image",
    "hypothesis", "pytest", "pycocotools.coco", "harness.topic.plugin", "harness.testing", "harness.metrics",
]  # fmt: skip
NO_FORKSERVER_ENV = "VISIONBENCH_NO_FORKSERVER"

_CONTEXT_LOCK = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None


class TopicProcess(Protocol):
    """What the caller needs of a started topic process."""

    pid: int

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if it is still running after ``timeout`` seconds."""

    def kill(self) -> None:
        """Kill it and everything in its process group."""


def _forkserver() -> multiprocessing.context.BaseContext | None:
    global _context
    if os.environ.get(NO_FORKSERVER_ENV, "") not in ("", "0") or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    with _CONTEXT_LOCK:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            _context = context
    return _context


def _run_pytest(arguments: list[str], cwd: str, environment: dict[str, str], log: str) -> None:
    """The body of a forked topic process: become ``python -m pytest arguments`` run in ``cwd`` with ``environment``."""
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environment)
    sys.dont_write_bytecode = environment.get("PYTHONDONTWRITEBYTECODE", "") != ""
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.path.insert(0, cwd)  # as `python -m` puts the working directory first
    import pytest

    try:
        code = int(pytest.main(arguments))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class _Forked:
    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process
        self.pid = int(process.pid or 0)

    def wait(self, timeout: float | None) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self) -> None:
        _kill_group(self.pid)
        self.process.join(5)


class _Spawned:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pid = process.pid

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        _kill_group(self.pid)
        self.process.wait()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_topic_process(arguments: list[str], *, cwd: Path, environment: dict[str, str], log: Path) -> TopicProcess:
    """Start ``python -m pytest arguments`` in ``cwd`` with exactly ``environment``, its output into ``log``."""
    context = _forkserver()
    if context is not None:
        process = context.Process(target=_run_pytest, args=(arguments, str(cwd), environment, str(log)), daemon=False)
        process.start()
        return _Forked(process)
    with open(log, "wb") as output:
        spawned = subprocess.Popen(
            [sys.executable, "-m", "pytest", *arguments], cwd=cwd, env=environment, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return _Spawned(spawned)
