"""The grading side of sealed grading: the topic module of a submission as a proxy to its worker.

:class:`SealedModule` stands where :class:`harness.topic.guard.GradedModule` stands in-process: the ``impl`` fixture
returns it (through a :class:`~harness.topic.guard.CheckView`). Reading an interface asks the worker for it; calling
one sends the arguments by value and returns the result by value. Objects the submission builds come back as
:class:`Remote` proxies whose attributes, methods, calls and iteration go to the worker the same way.

What the grading process does with every call:
- the arguments it sent are compared with what the worker holds after the call: a submission that changes them in
  place (outside the interface's ``mutates``) loses the check, and generators advance as they would in-process;
- torch's random state travels with the call, so ``seeded_init`` and friends seed the submission's constructors;
- a call with inputs that require grad (grad mode on) returns outputs connected to them: their backward asks the
  worker for the input gradients of the call it recorded;
- a worker that dies, hangs (the check's time limit) or breaks the protocol is killed; the check gets an error and
  the next check a new worker.
"""

from __future__ import annotations

import os
import signal
import socket
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.conventions import REFERENCE_DIR, ImplementationError
from harness.sealed.codec import FROM_WORKER, Encoder, Handle, ProtocolError, Ref, decode, receive, send
from harness.sealed.contain import tree_cpu_seconds
from harness.spec import TopicSpec
from harness.spec.outcomes import CheckFailure, ForbiddenCall, InterfaceError

__all__ = ["SealedModule", "Remote", "WorkerLost", "SubmissionError", "is_remote", "beside"]


ZYGOTE: socket.socket | None = None  # set in a topic process that grades sealed (harness.topic.plugin)


class WorkerLost(Exception):
    """The submission's worker process ended, or broke the protocol, while the grader waited for it."""


class SubmissionError(Exception):
    """An exception of the submission's of a class the grading process does not rebuild (named in the message)."""


_REBUILT = {
    cls.__name__: cls
    for cls in (
        NotImplementedError, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError, FloatingPointError,
        ArithmeticError, AttributeError, LookupError, RecursionError, MemoryError, AssertionError, UnicodeError, OSError,
        RuntimeError, CheckFailure, ForbiddenCall, InterfaceError, ImplementationError,
    )
}  # fmt: skip


class RemoteOrigin:
    """Where the worker says an exception was raised."""

    def __init__(self, where: str | None, in_submission: bool, type_name: str) -> None:
        self.where, self.in_submission, self.type_name = where, in_submission, type_name


def _rebuild(error: dict[str, Any]) -> BaseException:
    types = [str(t) for t in error.get("types", [])][:64]
    message = str(error.get("message", ""))[:2000]
    cls = next((_REBUILT[name] for name in types if name in _REBUILT), None)
    if cls is CheckFailure:
        numbers = error.get("numbers") or {}
        rebuilt: BaseException = CheckFailure(message, {str(k): float(v) for k, v in numbers.items() if isinstance(v, (int, float))})
    elif cls is None:
        rebuilt = SubmissionError(message)
    else:
        rebuilt = cls(message)
    rebuilt.remote = RemoteOrigin(error.get("where") if isinstance(error.get("where"), str) else None, bool(error.get("in_submission")), types[0] if types else "")  # type: ignore[attr-defined]
    return rebuilt


def _is_graders_module(value: Any) -> bool:
    return isinstance(value, torch.nn.Module)


class _Worker:
    """One worker process and the connection to it."""

    def __init__(self, zygote: socket.socket, which: bytes) -> None:
        zygote.sendall(which)
        message, fds, _, _ = socket.recv_fds(zygote, 64, 1)
        if not fds:
            raise WorkerLost("the worker could not be started")
        self.pid = int(message)
        self.sock = socket.socket(fileno=fds[0])
        self.alive = True
        self.proxies: weakref.WeakValueDictionary[int, Remote] = weakref.WeakValueDictionary()
        self.methods: set[tuple[str, str]] = set()
        self.released: list[int] = []
        self.released_tapes: list[int] = []
        self.rng: torch.Tensor | None = None  # torch's random state as the worker holds it, when known
        hello, _ = self._exchange(None)
        self.containment: dict[str, str] = {str(k): str(v) for k, v in hello["hello"]["containment"].items()}

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            for kill in (lambda: os.killpg(self.pid, signal.SIGKILL), lambda: os.kill(self.pid, signal.SIGKILL)):
                try:
                    kill()
                    break
                except (ProcessLookupError, PermissionError):
                    continue
            self.sock.close()

    def _exchange(self, message: tuple[dict[str, Any], list[Any]] | None, what: str = "starting") -> tuple[dict[str, Any], list[bytes]]:
        if not self.alive:
            raise WorkerLost(f"the submission's worker had already ended before {what}")
        try:
            if message is not None:
                send(self.sock, *message)
            header, buffers = receive(self.sock, FROM_WORKER)
            if not isinstance(header, dict):
                raise ProtocolError("a reply that is not an object")
        except (EOFError, OSError) as error:
            self.kill()
            raise WorkerLost(f"the submission's worker process ended while {what} ({error})") from None
        except ProtocolError as error:
            self.kill()
            raise WorkerLost(f"the submission's worker broke the protocol while {what}: {error}") from None
        except BaseException:  # the check's time limit, or an interrupt: the worker may be anywhere
            self.kill()
            raise
        return header, buffers

    def request(self, header: dict[str, Any], encoder: Encoder, what: str) -> tuple[dict[str, Any], list[bytes]]:
        header["release"], self.released = self.released, []
        header["release_tapes"], self.released_tapes = self.released_tapes, []
        reply, buffers = self._exchange((header, encoder.buffers), what)
        if "error" in reply:
            error = reply["error"]
            raise _rebuild(error if isinstance(error, dict) else {})
        return reply, buffers

    # --- values ---------------------------------------------------------------------------------------------------

    def proxy(self, handle: Handle) -> Remote:
        proxy = self.proxies.get(handle.id)
        if proxy is None:
            proxy = Remote(self, handle)
            self.proxies[handle.id] = proxy
            weakref.finalize(proxy, self.released.append, handle.id)
        return proxy

    def handle_of(self, value: Any) -> Handle:
        if isinstance(value, Remote):
            if value._worker is not self:
                raise WorkerLost("an object of an earlier worker of the submission (that worker has ended)")
            return value._handle
        raise ProtocolError(f"a {type(value).__qualname__} cannot be sent to the submission's worker")

    def decode(self, node: Any, buffers: list[bytes], visited: list[Any], on_tensor: Callable[[dict, torch.Tensor], None] | None = None) -> Any:
        def resolve_ref(ref: Ref) -> Any:
            if not 0 <= ref.index < len(visited):
                raise ProtocolError(f"a reference to argument {ref.index} of {len(visited)}")
            return visited[ref.index]

        return decode(node, buffers, FROM_WORKER, resolve_handle=self.proxy, resolve_ref=resolve_ref, on_tensor_node=on_tensor)

    def encoder(self) -> Encoder:
        return Encoder(handle_of=self.handle_of, pickle_of=_is_graders_module)

    # --- requests -------------------------------------------------------------------------------------------------

    def simple(self, header: dict[str, Any], what: str) -> Any:
        self.rng = None  # whatever the request runs may draw random numbers
        reply, buffers = self.request(header, self.encoder(), what)
        return reply, self.decode(reply.get("value"), buffers, [])

    def call(
        self, header: dict[str, Any], args: tuple, kwargs: dict[str, Any], names: list[str], mutates: frozenset[str], what: str
    ) -> Any:
        """Send a call; check and apply what it did to its arguments; return its result, connected to autograd."""
        encoder = self.encoder()
        owners: list[str] = []

        def encoded(value: Any, owner: str) -> Any:
            before = len(encoder.visited)
            node = encoder.encode(value)
            owners.extend([owner] * (len(encoder.visited) - before))
            return node

        positional = [encoded(a, names[i] if i < len(names) else f"argument {i + 1}") for i, a in enumerate(args)]
        keywords = [[key, encoded(value, key)] for key, value in kwargs.items()]
        visited = list(encoder.visited)
        leaves = [v for v in visited if isinstance(v, torch.Tensor) and v.requires_grad]
        autograd = torch.is_grad_enabled() and bool(leaves)
        header.update(
            args={"tuple": [{"tuple": positional}, {"dict": keywords}]}, grad=torch.is_grad_enabled(), inference=torch.is_inference_mode_enabled(),
            autograd=autograd,
        )  # fmt: skip
        rng = torch.get_rng_state()
        if self.rng is None or not torch.equal(rng, self.rng):  # the worker's random state follows this process's
            header["rng"] = encoder.buffer(rng.numpy().tobytes())
        self.rng = None  # unknown until the reply
        reply, buffers = self.request(header, encoder, what)
        differentiable: dict[int, torch.Tensor] = {}

        def on_tensor(node: dict, tensor: torch.Tensor) -> None:
            if autograd and isinstance(node.get("differentiable"), int):
                differentiable[node["differentiable"]] = tensor

        value = self.decode(reply.get("value"), buffers, visited, on_tensor)
        after = self.decode(reply.get("after"), buffers, [])
        if not isinstance(after, list) or len(after) != len(visited):
            self.kill()
            raise WorkerLost(f"the submission's worker broke the protocol while {what}: arguments after the call")
        _apply_after(visited, after, owners, mutates, what)
        try:
            if "rng" in reply:  # the call drew random numbers: this process's state moves on as the worker's did
                torch.set_rng_state(torch.frombuffer(bytearray(buffers[reply["rng"]]), dtype=torch.uint8))
            self.rng = torch.get_rng_state()
        except (IndexError, TypeError, RuntimeError) as error:
            self.kill()
            raise WorkerLost(f"the submission's worker broke the protocol while {what}: random state ({error})") from None
        if differentiable and isinstance(reply.get("tape"), int):
            tape = reply["tape"]
            ordered = [differentiable[k] for k in sorted(differentiable)]
            connected = _Connect.apply(self, tape, len(leaves), *leaves, *ordered)
            connected = connected if isinstance(connected, tuple) else (connected,)
            value = _substitute(value, {id(old): new for old, new in zip(ordered, connected)})
        return value

    def vjp(self, tape: int, grads: tuple[torch.Tensor | None, ...], count: int) -> list[torch.Tensor | None]:
        encoder = self.encoder()
        node = encoder.encode(list(grads))
        reply, buffers = self.request({"op": "vjp", "tape": tape, "args": node}, encoder, "computing input gradients")
        found = self.decode(reply.get("value"), buffers, [])
        if not isinstance(found, list) or len(found) != count or not all(g is None or type(g) is torch.Tensor for g in found):
            raise CheckFailure("the submission's backward returned malformed gradients")
        return found


def _apply_after(visited: list[Any], after: list[Any], owners: list[str], mutates: frozenset[str], what: str) -> None:
    from harness.topic.guard import changed

    for value, now, owner in zip(visited, after, owners):  # ``now``: None where the call left the argument as it was
        if isinstance(value, torch.Tensor) and isinstance(now, torch.Tensor):
            change = changed(now, value.detach())
            if change and owner in mutates:
                with torch.no_grad():
                    value.copy_(now)
            elif change:
                raise CheckFailure(f"{what} changed its argument {owner} in place ({change}); the spec leaves it unchanged")
        elif isinstance(value, np.ndarray) and isinstance(now, np.ndarray):
            change = changed(now, value)
            if change and owner in mutates:
                value[...] = now
            elif change:
                raise CheckFailure(f"{what} changed its argument {owner} in place ({change}); the spec leaves it unchanged")
        elif isinstance(value, torch.Generator) and isinstance(now, torch.Generator):
            value.set_state(now.get_state())


def _substitute(value: Any, replace: dict[int, torch.Tensor]) -> Any:
    if id(value) in replace:
        return replace[id(value)]
    if type(value) is list:
        return [_substitute(v, replace) for v in value]
    if type(value) is tuple:
        return tuple(_substitute(v, replace) for v in value)
    if type(value) is dict:
        return {k: _substitute(v, replace) for k, v in value.items()}
    return value


class _Connect(torch.autograd.Function):
    """Outputs computed by the worker, connected to the grader's inputs: backward asks the worker for the
    gradients of its recorded call."""

    @staticmethod
    def forward(ctx: Any, worker: _Worker, tape: int, count: int, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.worker, ctx.tape, ctx.count = worker, tape, count
        weakref.finalize(ctx, worker.released_tapes.append, tape)
        return tuple(t.clone() for t in tensors[count:])

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:
        found = ctx.worker.vjp(ctx.tape, grads, ctx.count)
        return (None, None, None, *found, *([None] * len(grads)))


class Remote:
    """An object that lives in the submission's worker; what it returns comes back by value."""

    __slots__ = ("_worker", "_handle", "__weakref__")

    def __init__(self, worker: _Worker, handle: Handle) -> None:
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_handle", handle)

    def __repr__(self) -> str:
        kind = self._handle.mro[0].rsplit(".", 1)[-1] if self._handle.mro else "object"
        return f"<{kind} in the submission's worker>"

    @property
    def remote_classes(self) -> tuple[str, ...]:
        """The qualified names of its class and the classes above it, as the worker reports them."""
        return self._handle.mro

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in ("__name__", "__qualname__", "__doc__"):
            raise AttributeError(name)
        key = (self._handle.mro[0] if self._handle.mro else "", name)
        if key in self._worker.methods:
            return _Method(self, name)
        reply, value = self._worker.simple({"op": "getattr", "target": self._handle.id, "name": name}, f"reading .{name}")
        if reply.get("method"):
            self._worker.methods.add(key)
            return _Method(self, name)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self!r}: set its state through its methods (e.g. load_state_dict), not attributes")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self, None, args, kwargs)

    def __iter__(self) -> Any:
        _, items = self._worker.simple({"op": "iterate", "target": self._handle.id}, "iterating")
        return iter(items)

    def __len__(self) -> int:
        try:
            return _call(self, "__len__", (), {})
        except AttributeError:  # as for a local object without a length (list() then only iterates)
            raise TypeError(f"{self!r} has no len()") from None

    def __getitem__(self, key: Any) -> Any:
        return _call(self, "__getitem__", (key,), {})

    def __contains__(self, key: Any) -> bool:
        return bool(_call(self, "__contains__", (key,), {}))

    def __bool__(self) -> bool:
        return True


class _Method:
    __slots__ = ("_owner", "_name")

    def __init__(self, owner: Remote, name: str) -> None:
        self._owner, self._name = owner, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _call(self._owner, self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<method {self._name} of {self._owner!r}>"


_INTERFACES: weakref.WeakKeyDictionary[Remote, tuple[str, list[str], frozenset[str]]] = weakref.WeakKeyDictionary()


def _call(target: Remote, method: str | None, args: tuple, kwargs: dict[str, Any]) -> Any:
    name, names, mutates = _INTERFACES.get(target, ("", [], frozenset()))
    what = name if method is None and name else f"{repr(target).strip('<>').split(' in ')[0]}.{method or '__call__'}"
    header = {"op": "call", "target": target._handle.id, "method": method}
    return target._worker.call(header, args, kwargs, names if method is None else [], mutates if method is None else frozenset(), what)


def is_remote(value: Any) -> bool:
    return isinstance(value, Remote)


def beside(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, run next to the implementation's objects among the arguments: in their worker
    when they are :class:`Remote` (``function`` must then be a harness module's top-level function), else here."""
    worker = next((a._worker for a in [*args, *kwargs.values()] if isinstance(a, Remote)), None)
    if worker is None:
        return function(*args, **kwargs)
    name = f"{function.__module__}:{function.__qualname__}"
    header = {"op": "helper", "function": name}
    return worker.call(header, args, kwargs, [], frozenset(), function.__name__)


class SealedModule:
    """A submission's topic module seen through its worker (see the module docstring)."""

    def __init__(self, zygote: socket.socket, spec: TopicSpec, which: bytes = b"S", source: Path | None = None) -> None:
        """``which``: ``b"S"`` the submission, ``b"R"`` the reference (timed beside it); ``source``: its directory."""
        self._zygote, self._spec, self._which = zygote, spec, which
        self.source = REFERENCE_DIR if which == b"R" else source
        self._current: _Worker | None = None
        self._cache: dict[str, Any] = {}
        self.containment: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"SealedModule(topic={self._spec.id!r}, {'reference' if self._which == b'R' else 'submission'})"

    @property
    def _worker(self) -> _Worker:
        if self._current is None or not self._current.alive:
            self._current = _Worker(self._zygote, self._which)
            self.containment = self._current.containment
            self._cache.clear()
        return self._current

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        interface = self._spec.interfaces.get(name)
        if interface is None:
            raise AttributeError(f"{name!r} is not an interface of topic {self._spec.id!r}")
        worker = self._worker
        if name not in self._cache:
            _, value = worker.simple({"op": "interface", "name": name}, f"loading {self._spec.id}.{name}")
            if isinstance(value, Remote):
                from harness.spec.signatures import parse_signature

                names = [p.name for p in parse_signature(interface.signature)] if interface.signature else []
                _INTERFACES[value] = (f"{self._spec.id}.{name}", names, frozenset(interface.mutates))
            self._cache[name] = value
        return self._cache[name]

    def take(self, value: Any) -> Any:
        """``value`` (the grader's own object, e.g. a module a test built) moved into the worker: the proxy to it."""
        encoder = self._worker.encoder()
        node = encoder.encode(value)
        reply, buffers = self._worker.request({"op": "take", "args": {"tuple": [node]}}, encoder, "taking an object")
        return self._worker.decode(reply.get("value"), buffers, [])

    @property
    def worker_pid(self) -> int:
        """The pid (as the grading process sees it) of the process the submission's code runs in: the worker, or,
        in a PID namespace of its own, the one process below it."""
        pid = self._worker.pid
        try:
            children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return pid
        return children[0] if len(children) == 1 else pid

    def cpu_seconds(self) -> float:
        """CPU seconds the current worker (and all it started) has used."""
        seconds = tree_cpu_seconds(self._worker.pid)
        if seconds is None:
            raise RuntimeError("the worker's CPU time cannot be read on this system (no /proc)")
        return seconds

    def close(self) -> None:
        if self._current is not None:
            self._current.kill()

