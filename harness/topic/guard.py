"""The implementation as tests see it: a topic module whose interfaces are checked and guarded.

``GradedModule`` is what the ``impl`` fixture returns. Reading an interface from it
- raises :class:`InterfaceError` when the module lacks it or its signature differs from the spec's;
- returns the function wrapped so that the spec's ``forbid`` list applies while it runs, and so that a call that
  changes a Tensor or ndarray argument in place (one the spec's ``mutates`` does not name) fails the check
  (a class is returned as a subclass whose constructor and methods are guarded the same way).
Names that are not interfaces of the spec are not reachable: tests grade the contract, nothing else.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any

import numpy as np
import torch

from harness.spec import Interface, TopicSpec
from harness.spec.outcomes import CheckFailure, ForbiddenCall, InterfaceError
from harness.spec.signatures import signature_mismatch
from harness.topic.forbid import forbidding

__all__ = ["GradedModule", "CheckView", "changed"]


class GradedModule:
    """Attribute access to a topic module's spec interfaces, checked and guarded."""

    def __init__(self, module: types.ModuleType, spec: TopicSpec, *, check_arguments: bool = True) -> None:
        self._module, self._spec = module, spec
        self._check_arguments = check_arguments  # off in a sealed worker: the grading process compares them itself
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"GradedModule({self._module.__name__!r}, topic={self._spec.id!r})"

    @property
    def module(self) -> types.ModuleType:
        """The raw module (for harness helpers that need it, never for tests)."""
        return self._module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> Any:
        interface = self._spec.interfaces.get(name)
        if interface is None:
            raise AttributeError(f"{name!r} is not an interface of topic {self._spec.id!r}")
        qualified = f"{self._spec.id}.{name}"
        if not hasattr(self._module, name):
            raise InterfaceError(f"{qualified} is missing: the spec requires {name}{interface.signature or ''}")
        value = getattr(self._module, name)
        mismatch = signature_mismatch(value, interface.signature) if interface.signature is not None else None
        if mismatch:
            raise InterfaceError(f"{qualified} {mismatch}")
        inherited = _forbidden_base(value, interface.forbid)
        if inherited is not None:
            return _forbidden(f"forbidden call: {qualified} is a subclass of {inherited}, which the spec forbids for it")
        return _guard(value, interface, qualified, vars(self._module), self._check_arguments)


class CheckView:
    """What one check's test sees of a :class:`GradedModule`: the interfaces its spec ``uses`` lists, and no others.

    A test that reads another interface is wrong about what its check grades (a verdict could then be caused by
    code the check does not name): that is an error of the test, raised as ``LookupError``.
    """

    def __init__(self, graded: GradedModule, check_id: str, uses: list[str]) -> None:
        self._graded, self._check_id, self._uses = graded, check_id, frozenset(uses)

    def __repr__(self) -> str:
        return f"CheckView({self._graded!r}, check={self._check_id!r})"

    @property
    def module(self) -> types.ModuleType:
        return self._graded.module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._uses and name in self._graded._spec.interfaces:
            raise LookupError(f"the test of check {self._check_id!r} reads interface {name!r}, which the check's `uses` does not list")
        return getattr(self._graded, name)


def _forbidden_base(value: Any, names: list[str]) -> str | None:
    """The forbidden class ``value`` inherits from (its behaviour comes with it), if it is a class and has one."""
    if not inspect.isclass(value):
        return None
    from harness.topic.forbid import resolve_name

    for name in names:
        forbidden = resolve_name(name)[2]
        if inspect.isclass(forbidden) and issubclass(value, forbidden):
            return name
    return None


def _forbidden(message: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenCall(message)

    return refuse


def _guard(value: Any, interface: Interface, qualified: str, namespace: dict[str, Any], check_arguments: bool = True) -> Any:
    if inspect.isclass(value):
        return _guarded_class(value, interface, qualified, namespace, check_arguments)
    if callable(value):
        return _guarded_function(value, interface, qualified, namespace, check_arguments)
    return value


def _guarded_function(function: Any, interface: Interface, qualified: str, namespace: dict[str, Any], check_arguments: bool = True) -> Any:
    signature = inspect.signature(function)
    may_change = {"self", *interface.mutates}

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs).arguments if check_arguments else {}
        except TypeError:  # the call itself is wrong: let the function say so
            bound = {}
        before = [
            (path, value, _copy(value))
            for name, argument in bound.items()
            if name not in may_change
            for path, value in _arrays(name, argument)
        ]
        with forbidding(interface.forbid, qualified, namespace):
            result = function(*args, **kwargs)
        for path, value, copy in before:
            change = changed(value, copy)
            if change:
                raise CheckFailure(f"{qualified} changed its argument {path} in place ({change}); the spec leaves it unchanged")
        return result

    return guarded


def _arrays(path: str, value: Any) -> list[tuple[str, Any]]:
    """The Tensors and ndarrays of an argument, with where they sit in it (lists, tuples and dicts are searched)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return [(path, value)]
    if isinstance(value, (list, tuple)):
        return [found for i, item in enumerate(value) for found in _arrays(f"{path}[{i}]", item)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _arrays(f"{path}[{key!r}]", item)]
    return []


def _copy(value: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value.copy()


def changed(value: torch.Tensor | np.ndarray, before: torch.Tensor | np.ndarray) -> str | None:
    """How ``value`` differs from its copy ``before`` (shape, dtype or values; NaNs equal), or None."""
    if value.shape != before.shape or value.dtype != before.dtype:
        return f"{tuple(before.shape)} {before.dtype} became {tuple(value.shape)} {value.dtype}"
    if isinstance(value, torch.Tensor):
        value = value.detach()
        same = (value == before) | (value.isnan() & before.isnan()) if value.is_floating_point() or value.is_complex() else value == before
        count = int((~same).sum())
    else:
        try:
            count = value.size - int(
                np.sum(np.isclose(value, before, rtol=0, atol=0, equal_nan=True) if value.dtype.kind in "fc" else value == before)
            )
        except TypeError:  # object arrays
            count = 0 if np.array_equal(value, before) else value.size
    return f"{count} of {before.numel() if isinstance(before, torch.Tensor) else before.size} values changed" if count else None


def _guarded_class(cls: type, interface: Interface, qualified: str, namespace: dict[str, Any], check_arguments: bool = True) -> type:
    """A subclass with the same name whose own methods (constructor included) are guarded like functions."""
    methods = {}
    for klass in reversed([k for k in cls.__mro__ if k.__module__ == cls.__module__]):
        for name, member in vars(klass).items():
            if inspect.isfunction(member) and (not name.startswith("__") or name in ("__init__", "__call__")):
                methods[name] = _guarded_function(member, interface, qualified, namespace, check_arguments)
    if "forward" not in methods and inspect.isfunction(getattr(cls, "forward", None)):  # inherited: its calls count too
        methods["forward"] = _guarded_function(cls.forward, interface, qualified, namespace, check_arguments)
    guarded = type(cls.__name__, (cls,), {**methods, "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return guarded
