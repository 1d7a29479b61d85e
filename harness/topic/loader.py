"""Loading implementations: ``reference``, ``student`` or any submission directory with the same layout.

Each implementation is imported under a package name of its own (``visionbench_impl_<name>_<hash>``), so two
implementations of one topic can live in one process without clashing, and no submission can shadow a
library. Topics are loaded one at a time: a syntax error, a missing module or an exception at import time
becomes an :class:`ImplementationError` for that topic only.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
import types
from pathlib import Path

from harness.conventions import Implementation, ImplementationError, resolve_implementation

__all__ = ["Implementation", "ImplementationError", "resolve_implementation", "load_topic"]


def _parent_package(impl: Implementation) -> types.ModuleType:
    package = sys.modules.get(impl.package)
    if package is None:
        package = types.ModuleType(impl.package, f"visionbench implementation {impl.name!r} at {impl.root}")
        package.__path__ = [str(impl.root)]
        sys.modules[impl.package] = package
    return package


def load_topic(impl: Implementation, topic: str) -> types.ModuleType:
    """Import ``<impl.root>/<topic>.py`` (or the package ``<topic>/``) once, and return the module.

    Raises:
        ImplementationError: the module is missing, has a syntax error, or raised while being imported.
    """
    name = f"{impl.package}.{topic}"
    if name in sys.modules:
        return sys.modules[name]
    file, package_dir = impl.root / f"{topic}.py", impl.root / topic
    if file.is_file():
        spec = importlib.util.spec_from_file_location(name, file)
    elif (package_dir / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)])
    else:
        raise ImplementationError(f"{impl.name}: no module {topic}.py (or package {topic}/) in {impl.root}")
    assert spec is not None and spec.loader is not None
    _parent_package(impl)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        del sys.modules[name]
        raise ImplementationError(f"{impl.name}: syntax error in {error.filename}, line {error.lineno}: {error.msg}") from None
    except BaseException as error:  # an import-time crash must not stop grading of other topics
        del sys.modules[name]
        if isinstance(error, KeyboardInterrupt):
            raise
        where = _innermost_owned_frame(impl, error)
        raise ImplementationError(f"{impl.name}: importing {topic} raised {type(error).__name__}: {error}{where}") from None
    return module


def _innermost_owned_frame(impl: Implementation, error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if impl.owns(f.filename)]
    return f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
