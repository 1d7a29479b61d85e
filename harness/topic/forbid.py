"""Blocking forbidden library calls while a graded interface runs.

Three mechanisms, so that neither an alias nor an import style nor a direct operator call escapes:
- a :class:`torch.overrides.TorchFunctionMode` that sees every torch function call by identity
  (``F.conv2d`` and ``torch.conv2d`` are the same object; ``from torch.nn.functional import unfold`` too);
- a :class:`torch.utils._python_dispatch.TorchDispatchMode` for forbidden operators (``torch.ops.aten.*`` names):
  it sees them however they are reached, ``torch.ops.aten.convolution(...)`` called directly included;
- the named attributes (and any alias of them in the implementation module's namespace) are replaced by a
  function that raises, for calls torch's dispatch does not route through the mode (torchvision, scipy, ...).

A violation is remembered even when the implementation swallows the exception, and is raised again when
the graded call returns.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from torch._ops import OpOverloadPacket
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from harness.spec.outcomes import ForbiddenCall

__all__ = ["resolve_name", "forbidding"]


@functools.cache
def resolve_name(dotted: str) -> tuple[Any, str, Any]:
    """``"torch.nn.functional.conv2d"`` -> (the module or class holding it, attribute name, the object).

    Raises:
        ValueError: no importable prefix, or the attribute does not exist.
    """
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:-1]:
                owner = getattr(owner, attribute)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            break
    raise ValueError(f"forbidden name {dotted!r} does not resolve to an attribute of an importable module")


class _Violations(list[str]):
    def hit(self, name: str, interface: str) -> ForbiddenCall:
        message = f"forbidden call: {interface} called {name}, which the spec forbids for it"
        self.append(message)
        return ForbiddenCall(message)


class _ForbidTorchFunctions(TorchFunctionMode):
    def __init__(self, blocked: dict[int, str], interface: str, violations: _Violations) -> None:
        super().__init__()
        self.blocked, self.interface, self.violations = blocked, interface, violations

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = self.blocked.get(id(func))
        if name is not None:
            raise self.violations.hit(name, self.interface)
        return func(*args, **(kwargs or {}))


class _ForbidOperators(TorchDispatchMode):
    """Sees every operator dispatched (``torch.ops.aten.convolution`` called directly too) by its overload packet."""

    def __init__(self, blocked: dict[int, str], interface: str, violations: _Violations) -> None:
        super().__init__()
        self.blocked, self.interface, self.violations = blocked, interface, violations

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = self.blocked.get(id(getattr(func, "overloadpacket", None)))
        if name is not None:
            raise self.violations.hit(name, self.interface)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def forbidding(names: list[str], interface: str, namespace: MutableMapping[str, Any] | None = None) -> Iterator[None]:
    """Within the block, calling any of ``names`` raises :class:`ForbiddenCall`.

    Args:
        names: dotted library names, as in a spec's ``forbid`` list.
        interface: "<topic>.<name>" of the graded interface, for the message.
        namespace: the implementation module's globals; aliases of forbidden objects in it are blocked too.
    """
    if not names:
        yield
        return
    violations = _Violations()
    targets = [(name, *resolve_name(name)) for name in names]
    patches: list[tuple[Any, str, Any]] = []

    def raiser(name: str) -> Callable[..., Any]:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            raise violations.hit(name, interface)

        return blocked

    originals = {id(obj): name for name, _, _, obj in targets}
    with contextlib.ExitStack() as stack:
        for name, owner, attribute, _ in targets:
            patches.append((owner, attribute, getattr(owner, attribute)))
            setattr(owner, attribute, raiser(name))
        aliases = [key for key, value in (namespace or {}).items() if id(value) in originals]
        for key in aliases:
            patches.append((namespace, key, namespace[key]))  # type: ignore[arg-type]
            namespace[key] = raiser(originals[id(namespace[key])])  # type: ignore[index]
        stack.callback(_restore, patches)
        stack.enter_context(_ForbidTorchFunctions(originals, interface, violations))
        operators = {id(obj): name for name, _, _, obj in targets if isinstance(obj, OpOverloadPacket)}
        if operators:
            stack.enter_context(_ForbidOperators(operators, interface, violations))
        try:
            yield
        except ForbiddenCall:
            raise
        except BaseException as error:
            if violations:  # the implementation swallowed the violation and then failed otherwise
                raise ForbiddenCall(violations[0]) from error
            raise
    if violations:
        raise ForbiddenCall(violations[0])


def _restore(patches: list[tuple[Any, str, Any]]) -> None:
    for owner, attribute, original in reversed(patches):
        if isinstance(owner, MutableMapping):
            owner[attribute] = original
        else:
            setattr(owner, attribute, original)

