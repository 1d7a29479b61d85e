"""The submission's side of sealed grading: a zygote that forks contained workers, and the worker's request loop.

The zygote is started before any submission code is loaded anywhere (forked from the grader's clean forkserver, or
a new interpreter) and never imports submission code itself. For each request of the grading process it forks a
worker, which contains itself (:mod:`harness.sealed.contain`), imports the submission's topic module, and then
answers requests until the grading process hangs up: fetch an interface, call a function or method, read an
attribute, iterate, take the grader's own object, run a harness helper, compute input gradients of a recorded call.
Every value goes back by value (:mod:`harness.sealed.codec`); objects stay here behind handles.

The worker is the submission's process: nothing it says is trusted. It is given inputs only; the grading process
checks what comes back.
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import signal
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.conventions import REFERENCE_DIR, ROOT, Implementation
from harness.sealed import contain
from harness.sealed.codec import TO_WORKER, Encoder, Handle, ProtocolError, Ref, decode, receive, send
from harness.topic.guard import changed

__all__ = ["zygote_main", "remove_tree", "HELPER_PREFIXES", "ITERATION_LIMIT"]

HELPER_PREFIXES = ("harness.",)  # modules whose functions the grader may run beside the submission
ITERATION_LIMIT = 100_000
WORKER_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def zygote_main(sock: socket.socket, submission: str, name: str, topic: str, limits: contain.WorkerLimits, root: str) -> None:
    """Serve the grading process's requests for workers on ``sock`` until it hangs up (the body of the zygote).

    A request is one byte: ``S`` for a worker of the submission, ``R`` for one of the reference (timed beside it).
    The answer is the worker's pid as text, with the worker's end of a new socket pair passed alongside.
    """
    from harness.spec import load_specs

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the system
    spec = load_specs()[topic]
    root = Path(root)  # the grader's to remove, even when it has to kill this process
    os.chmod(root, 0o755)
    copies = {b"S": _read_only_copy(Path(submission), root / "submission"), b"R": _read_only_copy(REFERENCE_DIR, root / "reference")}
    names = {b"S": name, b"R": "reference"}
    try:
        for number in itertools.count():
            try:
                request = sock.recv(1)
            except OSError:
                break
            if request not in copies:
                break
            ours, theirs = socket.socketpair()
            home = root / f"worker-{number}"
            home.mkdir(mode=0o700)
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                sock.close()
                ours.close()
                code = 70
                try:
                    _worker_main(theirs, Implementation(names[request], copies[request]), spec, home, limits)
                    code = 0
                finally:
                    os._exit(code)
            theirs.close()
            socket.send_fds(sock, [str(pid).encode()], [ours.fileno()])
            ours.close()
    finally:
        remove_tree(root)
    os._exit(0)


def remove_tree(path: Path) -> None:
    """Remove a directory the zygote made, read-only copies included."""

    def writable_then_retry(function: Any, name: str, _: Any) -> None:
        os.chmod(os.path.dirname(name), 0o700)
        function(name)

    if Path(path).exists():
        shutil.rmtree(path, onerror=writable_then_retry)


def _read_only_copy(source: Path, target: Path) -> Path:
    """A copy of an implementation directory (Python sources and data, no caches) that nobody may change."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
    for directory, _, files in os.walk(target):
        for file in files:
            os.chmod(os.path.join(directory, file), 0o444)
        os.chmod(directory, 0o555)
    return target


def _readable(impl: Implementation) -> list[Path]:
    """What a contained worker may read: the Python installation, the harness, the system's libraries, its copy."""
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    libraries = {Path(p).resolve() for p in sys.path if p and Path(p).is_dir() and "site-packages" in p}
    system = [Path(p) for p in ("/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev", "/bin")]
    return sorted({*prefixes, *libraries, *system, ROOT / "harness", ROOT / "specs", impl.root})


def _worker_main(sock: socket.socket, impl: Implementation, spec: Any, home: Path, limits: contain.WorkerLimits) -> None:
    contain.die_with_parent()  # the zygote gone (its topic process ended, or was killed), the worker goes too
    environment = {**WORKER_ENVIRONMENT, "HOME": str(home), "TMPDIR": str(home)}
    output = os.open(home / "output.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # what it prints stays here
    os.dup2(output, 1)
    os.dup2(output, 2)
    keep = sock.fileno()
    os.closerange(3, keep)  # nothing of the zygote's or the grader's stays open in it
    os.closerange(keep + 1, 65536)
    state = contain.enter(home, _readable(impl), limits, environment)
    os.chdir(home)
    tempfile.tempdir = str(home)
    torch.set_num_threads(1)
    Worker(sock, impl, spec, state).serve()


class Worker:
    """The request loop of one worker (see the module docstring)."""

    def __init__(self, sock: socket.socket, impl: Implementation, spec: Any, containment: dict[str, str]) -> None:
        from harness.topic.guard import GradedModule
        from harness.topic.loader import load_topic

        self.sock, self.impl = sock, impl
        self.objects: dict[int, Any] = {}
        self.handles: dict[int, int] = {}  # id(object) -> handle
        self.tapes: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self.next_id = itertools.count(1)
        self.load_error: BaseException | None = None
        self.graded = None
        try:
            self.graded = GradedModule(load_topic(impl, spec.id), spec, check_arguments=False)
        except BaseException as error:  # reported with every request for an interface
            self.load_error = error
        send(sock, {"hello": {"containment": containment, "loaded": self.load_error is None}}, [])

    def serve(self) -> None:
        while True:
            try:
                header, buffers = receive(self.sock, TO_WORKER)
            except (EOFError, OSError):
                return
            encoder = Encoder(handle_of=self.register, identify=True)
            try:
                reply = self.dispatch(header, buffers, encoder)
            except BaseException as error:  # the submission's exceptions, of any kind, go back as data
                encoder = Encoder()
                reply = {"error": self.describe(error)}
            try:
                send(self.sock, reply, encoder.buffers)
            except (OSError, ProtocolError, TypeError, ValueError) as error:
                send(self.sock, {"error": self.describe(error)}, [])

    # --- objects --------------------------------------------------------------------------------------------------

    def register(self, value: Any) -> Handle:
        key = id(value)
        if key not in self.handles:
            handle = next(self.next_id)
            self.handles[key], self.objects[handle] = handle, value
        kind = type(value)
        mro = tuple(f"{k.__module__}.{k.__qualname__}" for k in kind.__mro__)
        return Handle(self.handles[key], mro)

    def resolve(self, handle: Handle) -> Any:
        if handle.id not in self.objects:
            raise ProtocolError(f"no object {handle.id} in this worker")
        return self.objects[handle.id]

    def release(self, handles: list[int], tapes: list[int]) -> None:
        for handle in handles:
            value = self.objects.pop(handle, None)
            if value is not None:
                self.handles.pop(id(value), None)
        for tape in tapes:
            self.tapes.pop(tape, None)

    # --- requests -------------------------------------------------------------------------------------------------

    def decode_arguments(self, node: Any, buffers: list[bytes]) -> tuple[Any, list[Any]]:
        """The request's arguments, and every tensor, array, generator and object in them in the order met."""
        visited: list[Any] = []

        def resolve(handle: Handle) -> Any:
            value = self.resolve(handle)
            visited.append(value)
            return value

        value = decode(node, buffers, TO_WORKER, resolve_handle=resolve, on_value=visited.append)
        return value, visited

    def dispatch(self, header: dict[str, Any], buffers: list[bytes], encoder: Encoder) -> dict[str, Any]:
        self.release(header.get("release", []), header.get("release_tapes", []))
        op = header["op"]
        if op == "interface":
            if self.load_error is not None:
                raise self.load_error
            return {"value": encoder.encode(getattr(self.graded, header["name"]))}
        if op == "getattr":
            target = self.resolve(Handle(header["target"]))
            value = getattr(target, header["name"])
            if callable(value) and getattr(value, "__self__", None) is target:  # a bound method: named, not held
                return {"method": True}
            return {"value": encoder.encode(value)}
        if op == "iterate":
            items = list(itertools.islice(iter(self.resolve(Handle(header["target"]))), ITERATION_LIMIT + 1))
            if len(items) > ITERATION_LIMIT:
                raise ProtocolError(f"an iteration of more than {ITERATION_LIMIT} items")
            return {"value": encoder.encode(items)}
        if op == "take":
            (value,), _ = self.decode_arguments(header["args"], buffers)
            return {"value": encoder.encode(self.register(value))}
        if op == "vjp":
            outputs, inputs = self.tapes[header["tape"]]
            grads, _ = self.decode_arguments(header["args"], buffers)
            pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None]
            if not pairs:
                return {"value": encoder.encode([None] * len(inputs))}
            found = torch.autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs], allow_unused=True, retain_graph=True)
            return {"value": encoder.encode(list(found))}
        if op in ("call", "helper"):
            return self.call(header, buffers, encoder)
        raise ProtocolError(f"unknown request {op!r}")

    def call(self, header: dict[str, Any], buffers: list[bytes], encoder: Encoder) -> dict[str, Any]:
        (args, kwargs), visited = self.decode_arguments(header["args"], buffers)
        if header["op"] == "helper":
            function = _helper(header["function"])
        else:
            function = self.resolve(Handle(header["target"]))
            if header.get("method"):
                function = getattr(function, header["method"])
        if "rng" in header:
            torch.set_rng_state(torch.frombuffer(bytearray(buffers[header["rng"]]), dtype=torch.uint8))
        rng = torch.get_rng_state()
        before = [_snapshot(value) for value in visited]
        inputs = [v for v in visited if isinstance(v, torch.Tensor) and v.requires_grad] if header.get("autograd") else []
        with torch.inference_mode(header.get("inference", False)), torch.set_grad_enabled(header.get("grad", True)):
            result = function(*args, **kwargs)
        seen = {id(value): index for index, value in enumerate(visited)}
        encoder.ref_of = lambda value: Ref(seen[id(value)]) if id(value) in seen else None
        outputs: list[torch.Tensor] = []
        if inputs:
            encoder.on_tensor = lambda tensor, node: _mark_differentiable(tensor, node, outputs)
        reply: dict[str, Any] = {"value": encoder.encode(result)}
        encoder.on_tensor = None
        if outputs:
            tape = next(self.next_id)
            self.tapes[tape] = (outputs, inputs)
            reply["tape"] = tape
        encoder.ref_of = None
        reply["after"] = [_state_if_changed(value, copy, encoder) for value, copy in zip(visited, before)]
        now = torch.get_rng_state()
        if not torch.equal(now, rng):
            reply["rng"] = encoder.buffer(now.numpy().tobytes())
        return reply

    def describe(self, error: BaseException) -> dict[str, Any]:
        """An exception as data: its class names (most derived first), message, and where in the submission."""
        frames = [f for f in traceback.extract_tb(error.__traceback__) if self.impl.owns(f.filename)]
        innermost = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        where = f"{frames[-1].name}, {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else None
        numbers = getattr(error, "numbers", None)
        numbers = {str(k): float(v) for k, v in numbers.items() if isinstance(v, (int, float))} if isinstance(numbers, dict) else {}
        return {
            "types": [k.__name__ for k in type(error).__mro__],
            "message": str(error)[:2000],
            "where": where,
            "in_submission": bool(innermost) and self.impl.owns(innermost[0].filename),
            "numbers": numbers,
        }


def _helper(name: str) -> Any:
    module, _, qualname = name.partition(":")
    if not module.startswith(HELPER_PREFIXES) or not qualname:
        raise ProtocolError(f"{name!r} is not a harness helper")
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _mark_differentiable(tensor: torch.Tensor, node: dict[str, Any], outputs: list[torch.Tensor]) -> None:
    if tensor.requires_grad and tensor.grad_fn is not None:
        node["differentiable"] = len(outputs)
        outputs.append(tensor)


def _snapshot(value: Any) -> Any:
    """A copy of an argument's state before the call: tensors, arrays and generators (None for anything else)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, torch.Generator):
        return value.get_state()
    return None


def _state_if_changed(value: Any, before: Any, encoder: Encoder) -> Any:
    """What an argument holds after the call if the call changed it, else None: the grading process applies it or
    fails the check (a worker that hides a change only keeps its own bug from the grader's copies, which it never holds)."""
    if isinstance(value, torch.Tensor) and isinstance(before, torch.Tensor):
        unchanged = value.shape == before.shape and value.dtype == before.dtype and torch.equal(value.detach(), before)
        return None if unchanged or changed(value, before) is None else encoder.encode(value.detach())
    if isinstance(value, np.ndarray) and isinstance(before, np.ndarray):
        return None if changed(value, before) is None else encoder.encode(value)
    if isinstance(value, torch.Generator) and isinstance(before, torch.Tensor):
        return None if torch.equal(value.get_state(), before) else encoder.encode(value)
    return None


if __name__ == "__main__":  # the zygote as a new interpreter, where the platform cannot fork (see harness.grader.launch)
    descriptor, submission_dir, implementation_name, topic_name, scratch_dir = sys.argv[1:6]
    zygote_main(socket.socket(fileno=int(descriptor)), submission_dir, implementation_name, topic_name, contain.WorkerLimits(), scratch_dir)
