"""Writing result files so that a crash mid-write never leaves a broken one."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_json_atomic", "json_safe", "build_record", "environment", "spec_hashes", "SCHEMA_VERSION"]


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON can hold it: non-finite floats (an infinite relative error) become strings."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2, sort_keys=False, allow_nan=False, default=str)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


SCHEMA_VERSION = 1


def environment() -> dict[str, Any]:
    """What the numbers in a record depend on: interpreter, libraries, CPU and threads."""
    import platform

    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def spec_hashes(topics: list[str]) -> dict[str, str]:
    """sha256 of each graded topic's spec file: a record says which contract it was graded against."""
    import hashlib

    from harness.spec import spec_path

    return {topic: hashlib.sha256(spec_path(topic).read_bytes()).hexdigest() for topic in topics}


def build_record(impl: Any, scores: Any, runs: list[Any], *, tier: str, name: str | None = None) -> dict[str, Any]:
    """The result record of one graded run (schema version :data:`SCHEMA_VERSION`)."""
    from datetime import datetime, timezone

    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "submission": {"name": name or impl.name, "path": str(impl.root)},
        "tier": tier,
        "environment": environment(),
        "spec_hashes": spec_hashes([run.topic for run in runs]),
        "topic_wall_s": {run.topic: round(run.wall_s, 3) for run in runs},
        **scores.as_dict(),
    }
