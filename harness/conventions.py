"""Every convention of the project in one place: where things live, how tests are tied to checks, time limits.

Both processes read this module (the grading process and the topic process), so a rule written here is the same
rule in both.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.spec import Check

__all__ = [
    "ROOT", "SPECS_DIR", "REFERENCE_DIR", "STUDENT_DIR", "TOPIC_TESTS_DIR", "DATASETS_FILE", "LEADERBOARD_DIR",
    "CANARY_TESTS_DIR", "CHECK_MARKER", "topic_test_path", "topic_items_module", "topic_of_path", "canary_test_path", "topic_of_canary_path", "MIN_LEARNER_BUGS",
    "QUICK_CHECK_LIMIT_ENV", "quick_check_limit_s", "TASK_OVERHEAD_S", "STARTUP_S", "BUDGET_GRACE", "WALL_PER_CPU_S", "check_time_limit", "topic_time_limit",
    "Implementation", "ImplementationError", "resolve_implementation",
]  # fmt: skip

# --- where things live ---------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "specs"
REFERENCE_DIR = ROOT / "reference"
STUDENT_DIR = ROOT / "student"
TOPIC_TESTS_DIR = ROOT / "tests" / "topics"
CANARY_TESTS_DIR = ROOT / "tests" / "harness"
DATASETS_FILE = ROOT / "datasets.yaml"
LEADERBOARD_DIR = ROOT / "leaderboard"


def topic_test_path(topic: str, tests_dir: Path = TOPIC_TESTS_DIR) -> Path:
    """A topic's graded tests: the package ``tests/topics/<topic>/`` if there is one, else ``test_<topic>.py``."""
    folder = tests_dir / topic
    return folder if folder.is_dir() else tests_dir / f"test_{topic}.py"


def topic_items_module(topic: str, tests_dir: Path = TOPIC_TESTS_DIR) -> Path:
    """The test module that holds the items made from a topic's spec: ``test_<topic>.py``, in the topic's package if
    it has one."""
    path = topic_test_path(topic, tests_dir)
    return path if path.suffix == ".py" else path / f"test_{topic}.py"


MIN_LEARNER_BUGS = 12
"""The least number of ``LearnerBug`` entries a topic's canary file catalogues (``visionbench spec check``)."""


def canary_test_path(topic: str) -> Path:
    """A topic's canaries: ``tests/harness/test_canaries_<topic>.py``."""
    return CANARY_TESTS_DIR / f"test_canaries_{topic}.py"


def topic_of_canary_path(path: Path) -> str | None:
    """The topic whose canaries a test file holds, or None."""
    path = Path(path)
    return path.stem.removeprefix("test_canaries_") if path.parent == CANARY_TESTS_DIR and path.stem.startswith("test_canaries_") else None


def topic_of_path(path: Path, tests_dir: Path = TOPIC_TESTS_DIR) -> str | None:
    """The topic a test file belongs to (``tests/topics/test_<topic>.py`` or ``tests/topics/<topic>/...``), or None."""
    path = Path(path)
    if not path.is_relative_to(tests_dir):
        return None
    return path.relative_to(tests_dir).parts[0].removeprefix("test_").removesuffix(".py")


# --- tying tests to checks -----------------------------------------------------------------------------------------
CHECK_MARKER = "visionbench_check"  # @check(id) is pytest.mark.visionbench_check(id)

# --- time ----------------------------------------------------------------------------------------------------------
# A training budget is an amount of work: CPU seconds of the topic process (one torch thread) on the spec's hardware
# profile, scaled by the machine-speed factor (harness.machine). The wall-clock limits below only catch hangs, so
# they are generous: a machine busy with other work stretches wall time, never CPU time.
QUICK_CHECK_LIMIT_ENV = "VISIONBENCH_CHECK_LIMIT_S"  # overrides the wall-clock limit of a check without training (120 s)
BUDGET_GRACE = 1.10  # training may overrun its CPU budget by 10% (one last step) before it is a timeout
WALL_PER_CPU_S = 3.0  # wall-clock seconds allowed per CPU second of budget (other load on the machine)
TASK_OVERHEAD_S = 120.0  # wall-clock seconds for data, prediction and scoring on top of a task's training
STARTUP_S = 30.0  # interpreter and library start-up of a topic process


def quick_check_limit_s() -> float:
    """Wall-clock limit of a check without training: 120 s, or ``VISIONBENCH_CHECK_LIMIT_S`` (read at each call)."""
    return float(os.environ.get(QUICK_CHECK_LIMIT_ENV, "120"))


def check_time_limit(check: Check, speed: float = 1.0) -> float:
    """Wall-clock limit of one check's test: its trainings' scaled CPU budget, stretched for load, plus overhead."""
    if check.budget is not None and check.budget.train_s is not None:
        return check.budget.train_s * speed * BUDGET_GRACE * WALL_PER_CPU_S * check.training_runs + TASK_OVERHEAD_S
    return quick_check_limit_s()


def topic_time_limit(checks: list[Check], speed: float = 1.0) -> float:
    """Wall-clock limit of a topic process that runs ``checks``.

    Quick checks count a quarter of their own limit each: the limit is for one hung check, and a topic that hangs
    in many of them is stopped as a whole.
    """
    total = STARTUP_S
    for check in checks:
        limit = check_time_limit(check, speed)
        total += limit if check.budget is not None and check.budget.train_s is not None else limit / 4
    return total


# --- implementations -----------------------------------------------------------------------------------------------
class ImplementationError(Exception):
    """An implementation that cannot be used: not a directory, or a topic module that cannot be imported."""


@dataclass(frozen=True)
class Implementation:
    """A directory laid out like ``reference/``: one module (or package) per topic."""

    name: str
    root: Path

    @property
    def package(self) -> str:
        """The package name its topic modules are imported under (unique per directory)."""
        slug = re.sub(r"\W", "_", self.name)[:40]
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:8]
        return f"visionbench_impl_{slug}_{digest}"

    def owns(self, filename: str) -> bool:
        """Whether a source file belongs to this implementation (used to attribute exceptions)."""
        try:
            return Path(filename).resolve().is_relative_to(self.root)
        except (OSError, ValueError):
            return False


_BUILTIN = {"reference": REFERENCE_DIR, "student": STUDENT_DIR}


def resolve_implementation(impl: str | Path) -> Implementation:
    """``"reference"``, ``"student"`` or a path to a submission directory.

    Raises:
        ImplementationError: the path is not a directory.
    """
    text = str(impl)
    if text in _BUILTIN:
        return Implementation(text, _BUILTIN[text].resolve())
    root = Path(text).expanduser().resolve()
    if not root.is_dir():
        raise ImplementationError(f"implementation {text!r} is neither 'reference', 'student' nor a directory")
    return Implementation(root.name, root)
