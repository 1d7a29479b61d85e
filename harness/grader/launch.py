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
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["PRELOAD", "NO_FORKSERVER_ENV", "TopicProcess", "start_topic_process", "start_zygote"]

PRELOAD = [
    "numpy", "torch", "torchvision", "torchmetrics", "scipy.ndimage", "sklearn.metrics", "skimage", "cv2", "PIL.Image",
    "hypothesis", "pytest", "pycocotools.coco", "harness.topic.plugin", "harness.testing", "harness.metrics", "harness.sealed.worker", "harness.sealed.client",
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
            _start_without_secrets()
            _context = context
    return _context


def _run_pytest(arguments: list[str], cwd: str, environment: dict[str, str], log: str, sealed: socket.socket | None = None) -> None:
    """The body of a forked topic process: become ``python -m pytest arguments`` run in ``cwd`` with ``environment``
    (``{sealed_fd}`` in an argument: the descriptor of ``sealed``, the socket to the submission's zygote)."""
    if sealed is not None:
        fd = sealed.detach()
        arguments = [a.replace("{sealed_fd}", str(fd)) for a in arguments]
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


def _start_without_secrets() -> None:
    """Start the forkserver with no secret in its environment: sealed workers are forked from it, and a process's
    initial environment stays readable in its memory (/proc/self/environ) after ``os.environ`` is cleared."""
    from multiprocessing import forkserver

    from harness.datasets import SECRET_ENV

    secret = os.environ.pop(SECRET_ENV, None)
    try:
        forkserver.ensure_running()
    finally:
        if secret is not None:
            os.environ[SECRET_ENV] = secret


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


def start_topic_process(
    arguments: list[str], *, cwd: Path, environment: dict[str, str], log: Path, sealed: socket.socket | None = None
) -> TopicProcess:
    """Start ``python -m pytest arguments`` in ``cwd`` with exactly ``environment``, its output into ``log``.

    ``sealed``: a socket the process inherits; ``{sealed_fd}`` in an argument becomes its descriptor there.
    """
    context = _forkserver()
    if context is not None:
        process = context.Process(target=_run_pytest, args=(arguments, str(cwd), environment, str(log), sealed), daemon=False)
        process.start()
        return _Forked(process)
    fds = [sealed.fileno()] if sealed is not None else []
    arguments = [a.replace("{sealed_fd}", str(fds[0])) for a in arguments] if fds else arguments
    with open(log, "wb") as output:
        spawned = subprocess.Popen(
            [sys.executable, "-m", "pytest", *arguments], cwd=cwd, env=environment, stdout=output, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=fds,
        )  # fmt: skip
    return _Spawned(spawned)


def start_zygote(sock: socket.socket, submission: Path, name: str, topic: str, *, cwd: Path, log: Path, scratch: Path) -> TopicProcess:
    """Start the zygote of a submission's sealed workers (:func:`harness.sealed.worker.zygote_main`) on ``sock``,
    with an environment of its own (nothing of the grader's: no secret seed); ``scratch``: an empty directory of the
    caller's for the workers' copies and homes (the caller removes it)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    context = _forkserver()
    if context is not None:
        process = context.Process(
            target=_run_zygote, args=(sock, str(submission), name, topic, str(cwd), environment, str(log), str(scratch)), daemon=False
        )  # fmt: skip
        process.start()
        return _Forked(process)
    with open(log, "wb") as output:
        spawned = subprocess.Popen(
            [sys.executable, "-m", "harness.sealed.worker", str(sock.fileno()), str(submission), name, topic, str(scratch)], cwd=cwd, env=environment,
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=[sock.fileno()],
        )  # fmt: skip
    return _Spawned(spawned)


def _run_zygote(sock: socket.socket, submission: str, name: str, topic: str, cwd: str, environment: dict[str, str], log: str, scratch: str) -> None:
    os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environment)
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(output, 1)
    os.dup2(output, 2)
    from harness.sealed.contain import WorkerLimits
    from harness.sealed.worker import zygote_main

    zygote_main(sock, submission, name, topic, WorkerLimits(), scratch)
