"""Values by value: the only things that cross between the grading process and a submission's worker.

A message is a JSON tree plus raw buffers. Data (None, booleans, numbers, strings, bytes, exact ``torch.Tensor`` and
``numpy.ndarray`` of plain dtypes, numpy scalars, dtypes, devices, sizes, slices, generators, and lists, tuples and
dicts of these) is copied; anything else stays where it lives and crosses as a *handle* the other side can only
name, never open. Decoding builds nothing but these types: no pickle, no class named by the sender, no code. The
grading side is stricter still (:data:`FROM_WORKER`): sizes are bounded and the ``pickle`` tag, with which the
grader may send the worker its own objects (a test's ``nn.Module``), is refused.

Wire format of one message: ``u32 header length, u32 buffer count, header JSON, (u64 length, bytes) per buffer``.
"""

from __future__ import annotations

import io
import json
import pickle
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.topic.layouts import non_contiguous

__all__ = ["Handle", "Ref", "ProtocolError", "Encoder", "decode", "send", "receive", "FROM_WORKER", "TO_WORKER", "Limits"]

TORCH_DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
        torch.float32, torch.float64, torch.complex64, torch.complex128,
    )
}  # fmt: skip
NUMPY_KINDS = "biufcUS"  # booleans, integers, floats, complex, fixed-width strings: no objects, no records


class ProtocolError(Exception):
    """A message that breaks the protocol: malformed, too large, or of a type that may not cross."""


@dataclass(frozen=True)
class Handle:
    """An object that stays in the worker, named by ``id``; ``mro`` names its classes (as the worker says)."""

    id: int
    mro: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ref:
    """In a reply: the very object the request passed at position ``index`` of its flattened arguments."""

    index: int


@dataclass(frozen=True)
class Limits:
    """What a decoder accepts."""

    max_bytes: int = 2**31  # one message, buffers included
    max_items: int = 2_000_000  # nodes of the JSON tree
    max_depth: int = 64
    pickle: bool = False  # the grader's own objects; only ever accepted by the worker


FROM_WORKER = Limits()
TO_WORKER = Limits(pickle=True)


@dataclass
class Encoder:
    """Turns a value into (JSON tree, buffers).

    Args:
        handle_of: called for a value that is not data: returns the Handle it crosses as (the worker registers the
            object), or raises ProtocolError (the grader sends only data, handles and its own picklable objects).
        ref_of: called for every tensor, array, generator or handle first: a Ref when it is one of the request's
            arguments, else None.
        pickle_of: the grader's objects it may send by pickle (e.g. a test's module), or None.
    """

    handle_of: Callable[[Any], Handle] | None = None
    ref_of: Callable[[Any], Ref | None] | None = None
    pickle_of: Callable[[Any], bool] | None = None
    on_tensor: Callable[[torch.Tensor, dict[str, Any]], None] | None = None  # sees each tensor node it writes
    identify: bool = False  # name each tensor object (the worker does: parameters keep an identity across copies)
    buffers: list[bytes | memoryview] = field(default_factory=list)
    visited: list[Any] = field(default_factory=list)  # tensors, arrays, generators and objects, in the order met

    def buffer(self, data: bytes | memoryview) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if type(value) is int or type(value) is float:
            return value
        if self.ref_of is not None and isinstance(value, (torch.Tensor, np.ndarray, torch.Generator, torch.nn.Module, Handle)):
            ref = self.ref_of(value)
            if ref is not None:
                return {"ref": ref.index}
        if isinstance(value, Handle):
            return {"handle": value.id, "mro": list(value.mro)}
        if isinstance(value, torch.Tensor):
            self.visited.append(value)
            node = self._tensor(value)
            if self.identify:
                node["id"] = id(value)
            if self.on_tensor is not None:
                self.on_tensor(value, node)
            return node
        if type(value) is np.ndarray:
            self.visited.append(value)
            return self._array(value)
        if isinstance(value, np.generic) and value.dtype.kind in NUMPY_KINDS:
            return {"npscalar": self.buffer(np.ascontiguousarray(value).tobytes()), "dtype": value.dtype.str}
        if isinstance(value, (list, tuple)) and type(value) in (list, tuple, torch.Size) or _is_plain_tuple(value):
            items = [self.encode(item) for item in value]
            if type(value) is list:
                return items
            return {"size": items} if isinstance(value, torch.Size) else {"tuple": items}
        if isinstance(value, dict) and (type(value) is dict or _is_plain_dict(value)):
            return {"dict": [[self.encode(key), self.encode(item)] for key, item in value.items()]}
        if isinstance(value, int) and not isinstance(value, bool):  # IntEnum and the like: the number
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, complex):
            return {"complex": [value.real, value.imag]}
        if isinstance(value, bytes):
            return {"bytes": self.buffer(value)}
        if isinstance(value, torch.dtype):
            return {"torch_dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"device": str(value)}
        if isinstance(value, slice):
            return {"slice": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}
        if value is Ellipsis:
            return {"ellipsis": True}
        if isinstance(value, torch.Generator):
            self.visited.append(value)
            return {"generator": self.buffer(value.get_state().numpy().tobytes()), "device": str(value.device)}
        if self.pickle_of is not None and self.pickle_of(value):
            self.visited.append(value)
            data = io.BytesIO()
            storages: list[memoryview] = []
            _StoragePickler(data, storages).dump(value)
            return {"pickle": self.buffer(data.getvalue()), "storages": [self.buffer(storage) for storage in storages]}
        if self.handle_of is not None:
            handle = self.handle_of(value)
            self.visited.append(value)
            return self.encode(handle)
        raise ProtocolError(f"a {type(value).__module__}.{type(value).__qualname__} cannot cross to the submission's worker")

    def _tensor(self, tensor: torch.Tensor) -> dict[str, Any]:
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in TORCH_DTYPES or tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise ProtocolError(f"a {tensor.dtype} {tensor.layout} tensor on {tensor.device} cannot cross")
        order = _dense_order(tensor.stride(), tuple(tensor.shape)) if not tensor.is_contiguous() else None
        data = tensor.detach().permute(order) if order is not None else tensor.detach().contiguous()
        if data.dtype == torch.bfloat16:  # numpy has no bfloat16: send its bits
            data = data.view(torch.int16)
        node = {
            "tensor": self.buffer(memoryview(data.numpy()).cast("B") if data.numel() else b""),  # no copy: sent as is
            "dtype": dtype,
            "shape": list(tensor.shape),
            "contiguous": tensor.is_contiguous() or order is not None,
            "requires_grad": bool(tensor.requires_grad),
        }
        if order is not None:  # a permuted dense layout (channels-last images, a transpose) crosses as it is
            node["order"] = order
        return node

    def _array(self, array: np.ndarray) -> dict[str, Any]:
        if array.dtype.kind not in NUMPY_KINDS or array.dtype.fields is not None:
            raise ProtocolError(f"an array of dtype {array.dtype} cannot cross")
        contiguous = array.flags.c_contiguous
        return {
            "array": self.buffer(np.ascontiguousarray(array).tobytes() if array.dtype.kind in "US" else memoryview(np.ascontiguousarray(array)).cast("B")),
            "dtype": array.dtype.str,
            "shape": list(array.shape),
            "contiguous": contiguous,
            "writeable": bool(array.flags.writeable),
        }


def _dense_order(strides: tuple[int, ...], shape: tuple[int, ...]) -> list[int] | None:
    """The dimensions from outermost to innermost if the layout is a contiguous block in some order (a permutation
    of a C-contiguous tensor, e.g. channels-last); None if it has gaps or overlaps."""
    order = sorted(range(len(shape)), key=lambda d: (-strides[d], -shape[d]))
    expected = 1
    for d in reversed(order):
        if shape[d] != 1 and strides[d] != expected:
            return None
        expected *= shape[d]
    return order


def _is_plain_tuple(value: Any) -> bool:
    """A namedtuple or torch's structseq (``torch.return_types.max``) crosses as a plain tuple."""
    return isinstance(value, tuple) and (hasattr(value, "_fields") or type(value).__module__ == "torch.return_types")


def _is_plain_dict(value: Any) -> bool:
    """OrderedDict (state dicts) and defaultdict cross as plain dicts."""
    import collections

    return type(value) in (collections.OrderedDict, collections.defaultdict)


@dataclass
class _Decoder:
    buffers: list[bytes]
    limits: Limits
    resolve_handle: Callable[[Handle], Any] | None
    resolve_ref: Callable[[Ref], Any] | None
    on_value: Callable[[Any], None] | None
    on_tensor_node: Callable[[dict[str, Any], torch.Tensor], None] | None = None
    items: int = 0
    used: set[int] = field(default_factory=set)

    def seen(self, value: Any) -> Any:
        if self.on_value is not None:
            self.on_value(value)
        return value

    def decode(self, node: Any, depth: int = 0) -> Any:
        self.items += 1
        if self.items > self.limits.max_items or depth > self.limits.max_depth:
            raise ProtocolError("a message nested too deep or with too many items")
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(item, depth + 1) for item in node]
        if not isinstance(node, dict) or not node:
            raise ProtocolError(f"malformed node {str(node)[:80]}")
        tag = next(iter(node))
        if tag == "tuple":
            return tuple(self.decode(item, depth + 1) for item in node["tuple"])
        if tag == "size":
            return torch.Size([_int(v) for v in node["size"]])
        if tag == "dict":
            return {self._key(self.decode(k, depth + 1)): self.decode(v, depth + 1) for k, v in node["dict"]}
        if tag == "tensor":
            tensor = self._tensor(node)
            if self.on_tensor_node is not None:
                self.on_tensor_node(node, tensor)
            return self.seen(tensor)
        if tag == "array":
            return self.seen(self._array(node))
        if tag == "npscalar":
            dtype = _numpy_dtype(node["dtype"])
            return np.frombuffer(self._buffer(node["npscalar"]), dtype=dtype, count=1)[0].copy()
        if tag == "complex":
            real, imag = node["complex"]
            return complex(float(real), float(imag))
        if tag == "bytes":
            return bytes(self._buffer(node["bytes"]))
        if tag == "torch_dtype":
            return _torch_dtype(node["torch_dtype"])
        if tag == "device":
            if node["device"] != "cpu":
                raise ProtocolError(f"device {node['device']!r}: only cpu crosses")
            return torch.device("cpu")
        if tag == "slice":
            return slice(*(self.decode(item, depth + 1) for item in node["slice"]))
        if tag == "ellipsis":
            return Ellipsis
        if tag == "generator":
            generator = torch.Generator()
            generator.set_state(torch.frombuffer(self._buffer(node["generator"]), dtype=torch.uint8))
            return self.seen(generator)
        if tag == "handle":
            handle = Handle(_int(node["handle"]), tuple(str(n) for n in node.get("mro", ())))
            if self.resolve_handle is None:
                raise ProtocolError("a handle where none may be")
            return self.resolve_handle(handle)
        if tag == "ref":
            if self.resolve_ref is None:
                raise ProtocolError("a reference where none may be")
            return self.resolve_ref(Ref(_int(node["ref"])))
        if tag == "pickle" and self.limits.pickle:
            storages = [self._buffer(index) for index in node.get("storages", [])]
            return self.seen(_StorageUnpickler(io.BytesIO(self._buffer(node["pickle"])), storages).load())
        raise ProtocolError(f"a value tagged {tag!r} may not cross")

    def _key(self, key: Any) -> Any:
        try:
            hash(key)
        except TypeError:
            raise ProtocolError(f"an unhashable dict key of type {type(key).__name__}") from None
        return key

    def _buffer(self, index: Any) -> bytearray | memoryview:
        """A buffer, used once: values built on it share its memory, so none may share it with another."""
        index = _int(index)
        if not 0 <= index < len(self.buffers) or index in self.used:
            raise ProtocolError(f"buffer {index} of {len(self.buffers)} (each may be used once)")
        self.used.add(index)
        return self.buffers[index]

    def _tensor(self, node: dict[str, Any]) -> torch.Tensor:
        dtype = _torch_dtype(node["dtype"])
        shape = [_int(s) for s in node["shape"]]
        if any(s < 0 for s in shape):
            raise ProtocolError(f"negative shape {shape}")
        data = self._buffer(node["tensor"])
        wire = torch.int16 if dtype == torch.bfloat16 else dtype
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if len(data) != count * wire.itemsize:
            raise ProtocolError(f"a {dtype} tensor of shape {shape} needs {count * wire.itemsize} bytes, got {len(data)}")
        tensor = torch.frombuffer(data, dtype=wire) if count else torch.empty(0, dtype=wire)
        order = node.get("order")
        if order is not None:
            if not isinstance(order, list) or sorted(order) != list(range(len(shape))):
                raise ProtocolError(f"dimension order {order!r} for shape {shape}")
            tensor = tensor.view(dtype).reshape([shape[d] for d in order]).permute(*np.argsort(order).tolist())
        else:
            tensor = tensor.view(dtype).reshape(shape)
        if not node.get("contiguous", True):
            tensor = non_contiguous(tensor)
        if "id" in node:
            tensor._visionbench_id = _int(node["id"])  # type: ignore[attr-defined]  # see harness.topic.modules.identity
        return tensor.requires_grad_(True) if node.get("requires_grad") and (dtype.is_floating_point or dtype.is_complex) else tensor

    def _array(self, node: dict[str, Any]) -> np.ndarray:
        dtype = _numpy_dtype(node["dtype"])
        shape = [_int(s) for s in node["shape"]]
        data = self._buffer(node["array"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if any(s < 0 for s in shape) or len(data) != count * dtype.itemsize:
            raise ProtocolError(f"an array {dtype} {shape} with {len(data)} bytes")
        array = np.frombuffer(data, dtype=dtype, count=count).reshape(shape) if count else np.empty(shape, dtype=dtype)
        if not node.get("contiguous", True):
            array = non_contiguous(array)
        array.flags.writeable = bool(node.get("writeable", True))
        return array


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ProtocolError(f"expected an integer, got {type(value).__name__}")
    return value


def _torch_dtype(name: Any) -> torch.dtype:
    if name not in TORCH_DTYPES:
        raise ProtocolError(f"dtype {name!r} may not cross")
    return TORCH_DTYPES[name]


def _numpy_dtype(text: Any) -> np.dtype:
    if not isinstance(text, str) or len(text) > 16:
        raise ProtocolError("malformed numpy dtype")
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise ProtocolError(f"numpy dtype {text!r}") from None
    if dtype.kind not in NUMPY_KINDS or dtype.fields is not None:
        raise ProtocolError(f"numpy dtype {text!r} may not cross")
    return dtype


def decode(
    header: Any,
    buffers: list[bytes],
    limits: Limits,
    *,
    resolve_handle: Callable[[Handle], Any] | None = None,
    resolve_ref: Callable[[Ref], Any] | None = None,
    on_value: Callable[[Any], None] | None = None,
    on_tensor_node: Callable[[dict[str, Any], torch.Tensor], None] | None = None,
) -> Any:
    """The value a JSON tree and its buffers stand for (see the module's docstring for what may appear).

    ``on_value`` sees every tensor, array, generator and unpickled object as it is built, in the order the encoder
    met them (its ``visited``), so that both sides can name an argument by its position.
    """
    return _Decoder(buffers, limits, resolve_handle, resolve_ref, on_value, on_tensor_node).decode(header)


_HEAD = struct.Struct("<II")
_LENGTH = struct.Struct("<Q")


class _StoragePickler(pickle.Pickler):
    """Pickles the grader's own object with each tensor storage out of band: its bytes become a raw buffer of the
    message, sent uncopied (``torch.save`` would zip and checksum them, several times slower for a ResNet)."""

    def __init__(self, file: io.BytesIO, storages: list[memoryview]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.storages, self.index_of = storages, {}

    def persistent_id(self, value: Any) -> Any:
        if not isinstance(value, torch.storage.TypedStorage):
            return None
        untyped = value._untyped_storage
        if untyped.device.type != "cpu":
            raise ProtocolError(f"a {untyped.device.type} tensor cannot be sent to the worker")
        key = (untyped.data_ptr(), untyped.nbytes())
        if key not in self.index_of:  # storages shared by several tensors (views) cross once
            self.index_of[key] = len(self.storages)
            raw = torch.empty(0, dtype=torch.uint8).set_(untyped, 0, (untyped.nbytes(),))
            self.storages.append(memoryview(raw.numpy()))
        return ("storage", self.index_of[key], str(value.dtype).removeprefix("torch."))


class _StorageUnpickler(pickle.Unpickler):
    """The worker's side of :class:`_StoragePickler`: storages built on the received buffers (each used once)."""

    def __init__(self, file: io.BytesIO, storages: list[bytearray | memoryview]) -> None:
        super().__init__(file)
        self.storages, self.built = storages, {}

    def persistent_load(self, pid: Any) -> Any:
        _, index, dtype = pid
        if index not in self.built:
            data = self.storages[index]
            self.built[index] = torch.frombuffer(data, dtype=torch.uint8).untyped_storage() if len(data) else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=self.built[index], dtype=_torch_dtype(dtype), _internal=True)


def send(sock: socket.socket, header: Any, buffers: list[bytes | memoryview]) -> None:
    """Write one message (a JSON-able header and its buffers); large buffers go out as they are, uncopied."""
    text = json.dumps(header, separators=(",", ":")).encode()
    small: list[bytes | memoryview] = [_HEAD.pack(len(text), len(buffers)), text]
    for buffer in buffers:
        size = memoryview(buffer).nbytes
        small.append(_LENGTH.pack(size))
        if size < 1 << 16:
            small.append(buffer)
        else:
            sock.sendall(b"".join(small))
            sock.sendall(buffer)
            small = []
    if small:
        sock.sendall(b"".join(small))


def _exactly(sock: socket.socket, count: int, aligned: bool = False) -> bytearray | memoryview:
    """``count`` bytes from ``sock``; ``aligned``: in memory allocated as torch allocates tensors (64-byte aligned), so
    that values built on it take the same kernel paths, and give the same bits, as the sender's."""
    data: bytearray | memoryview = memoryview(torch.empty(count, dtype=torch.uint8).numpy()) if aligned and count else bytearray(count)
    view, got = memoryview(data), 0
    while got < count:
        n = sock.recv_into(view[got:], count - got)
        if n == 0:
            raise EOFError("the other side closed the connection")
        got += n
    return data


def receive(sock: socket.socket, limits: Limits) -> tuple[Any, list[bytearray | memoryview]]:
    """Read one message: (header, buffers). Raises EOFError when the peer is gone, ProtocolError when it is bad."""
    length, count = _HEAD.unpack(_exactly(sock, _HEAD.size))
    total = length
    if length > limits.max_bytes or count > limits.max_items:
        raise ProtocolError(f"a message of {length} header bytes and {count} buffers")
    try:
        header = json.loads(_exactly(sock, length))
    except (ValueError, RecursionError) as error:
        raise ProtocolError(f"malformed header: {error}") from None
    buffers = []
    for _ in range(count):
        (size,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
        total += size
        if total > limits.max_bytes:
            raise ProtocolError(f"a message over {limits.max_bytes} bytes")
        buffers.append(_exactly(sock, size, aligned=True))
    return header, buffers

