"""Where things live: the repository root and its fixed top-level folders."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "SPECS_DIR", "REFERENCE_DIR", "STUDENT_DIR", "TOPIC_TESTS_DIR", "DATASETS_FILE", "LEADERBOARD_DIR"]

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = ROOT / "specs"
REFERENCE_DIR = ROOT / "reference"
STUDENT_DIR = ROOT / "student"
TOPIC_TESTS_DIR = ROOT / "tests" / "topics"
DATASETS_FILE = ROOT / "datasets.yaml"
LEADERBOARD_DIR = ROOT / "leaderboard"
