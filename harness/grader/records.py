"""Result records: one schema-versioned JSON file per graded run, written atomically.

A record says what was graded (submission name, content hash, git commit), against which contracts (spec
hashes), where (environment fingerprint, hardware profile), at which tier, and per check: outcome, points,
duration, message and the numbers behind the verdict (max errors, metric vs threshold, latencies).
``specs/result.schema.json`` is its JSON Schema (``visionbench spec schema --result``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.jsonfiles import json_safe, write_json_atomic
from harness.spec.outcomes import Outcome

__all__ = [
    "SCHEMA_VERSION",
    "CheckRecord",
    "TopicRecord",
    "Submission",
    "Environment",
    "ResultRecord",
    "RecordError",
    "build_record",
    "load_record",
    "write_json_atomic",
    "json_safe",
    "result_json_schema",
]

SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FailingCase(_Record):
    case: str = Field(description="the case's parametrization id: its inputs, dtype and layout")
    outcome: Outcome
    message: str


class CheckRecord(_Record):
    topic: str
    check: str
    kind: str
    outcome: Outcome
    points: float = Field(description="points earned")
    max_points: float
    duration_s: float
    message: str = ""
    numbers: dict[str, Any] = Field(default_factory=dict, description="max abs/rel error, metric vs threshold, latency vs budget, ...")
    hidden: bool = False
    items: int = Field(0, description="test items (parametrizations) behind the verdict")
    cases: list[FailingCase] = Field(default_factory=list, description="the cases that did not pass, most telling first")


class TopicRecord(_Record):
    topic: str
    earned: float
    possible: float
    wall_s: float
    checks: list[CheckRecord]


class Submission(_Record):
    name: str
    path: str
    content_sha256: str = Field(description="sha256 over the submission's Python files (paths and bytes)")
    git_commit: str | None = None


class Environment(_Record):
    python: str
    platform: str
    torch: str
    numpy: str
    cpu: str
    cpu_count: int | None
    torch_threads: int
    cuda: bool
    profile: str = Field(description="hardware profile the budgets were checked against")
    speed_factor: float = Field(1.0, description="machine-speed factor the budgets were scaled by (1.0: as fast as the profile, or scaling off)")
    speed_scaling: bool = Field(True, description="whether budgets were scaled by the measured speed factor (off: --no-speed-scaling)")


class Grading(_Record):
    """How the submission was run while it was graded."""

    mode: Literal["sealed", "in-process"] = Field(
        description="sealed: in contained worker processes, the tests and verdicts in a process that never imported it; "
        "in-process: imported into the process that runs the tests (trusted code only)"
    )
    containment: dict[str, str] = Field(default_factory=dict, description="sealed: each containment feature, 'on' or why not")


class ResultRecord(_Record):
    schema_version: Literal[1]
    created: str
    submission: Submission
    tier: Literal["quick", "full"]
    environment: Environment
    spec_hashes: dict[str, str]
    earned: float
    possible: float
    topics: list[TopicRecord]
    artifacts: list[str] = Field(default_factory=list, description="pictures topics produced, relative to the record")
    grading: Grading = Field(default_factory=lambda: Grading(mode="in-process"))


class RecordError(Exception):
    """A result file that cannot be read, is from an unsupported schema version, or does not validate."""


def content_hash(root: Path) -> str:
    """sha256 over the Python files below ``root``: relative paths and bytes, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit(root: Path) -> str | None:
    """HEAD of the git repository whose top level is ``root`` (a submission that is a repository), else None."""
    command = ["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = completed.stdout.split()
    if completed.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
        return None
    return lines[1]


def environment(profile: str = "cpu-2core") -> Environment:
    """What the numbers in a record depend on: interpreter, libraries, CPU, threads and the machine's speed factor."""
    import numpy
    import torch

    from harness.machine import scaling_enabled, speed_factor

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return Environment(
        python=platform.python_version(), platform=platform.platform(), torch=torch.__version__, numpy=numpy.__version__,
        cpu=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), cuda=torch.cuda.is_available(), profile=profile,
        speed_factor=speed_factor(), speed_scaling=scaling_enabled(),
    )  # fmt: skip


def spec_hashes(topics: list[str]) -> dict[str, str]:
    """sha256 of each graded topic's spec file: a record says which contract it was graded against."""
    from harness.spec import spec_path

    return {topic: hashlib.sha256(spec_path(topic).read_bytes()).hexdigest() for topic in topics}


def build_record(impl: Any, scores: Any, runs: list[Any], *, tier: str, name: str | None = None, sealed: bool = False) -> ResultRecord:
    """The result record of one graded run (``impl``: an Implementation; ``scores``/``runs``: from ``grading.grade``)."""
    from harness.spec import load_specs

    specs = load_specs()
    wall = {run.topic: run.wall_s for run in runs}
    topics = [
        TopicRecord(
            topic=topic.topic,
            earned=topic.earned,
            possible=topic.possible,
            wall_s=round(wall.get(topic.topic, 0.0), 3),
            checks=[
                CheckRecord(
                    topic=c.topic, check=c.check, kind=c.kind, outcome=Outcome(c.outcome), points=c.earned, max_points=c.points,
                    duration_s=c.duration_s, message=c.message, numbers=json_safe(c.numbers), hidden=specs[c.topic].checks[c.check].hidden,
                    items=c.items, cases=[FailingCase(**case) for case in c.cases],
                )  # fmt: skip
                for c in topic.checks
            ],
        )
        for topic in scores.topics
    ]
    return ResultRecord(
        schema_version=SCHEMA_VERSION,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        submission=Submission(name=name or impl.name, path=str(impl.root), content_sha256=content_hash(impl.root), git_commit=git_commit(impl.root)),
        tier=tier,  # type: ignore[arg-type]
        environment=environment(),
        spec_hashes=spec_hashes([run.topic for run in runs]),
        earned=scores.earned,
        possible=scores.possible,
        topics=topics,
        grading=Grading(
            mode="sealed" if sealed else "in-process", containment={k: v for run in runs for k, v in getattr(run, "containment", {}).items()}
        ),
    )


def load_record(path: Path) -> ResultRecord:
    """Read and validate a result file.

    Raises:
        RecordError: unreadable or not JSON, an unsupported ``schema_version``, or fields that do not validate.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RecordError(f"{path}: not a readable JSON file ({error})") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {version!r} is not supported (this visionbench reads {SCHEMA_VERSION}); grade again")
    try:
        return ResultRecord.model_validate(raw)
    except ValidationError as error:
        items = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        raise RecordError(f"{path}: {items}") from None


def result_json_schema() -> dict[str, Any]:
    """JSON Schema of a result record, committed as ``specs/result.schema.json``."""
    schema = ResultRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "visionbench result record"
    return schema
