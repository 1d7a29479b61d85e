"""The leaderboard page in headless Chromium: the sort script runs, reorders the rows and keeps the baseline marked.

The page's self-test hook (``#selftest=<column>[,<column>...]``) clicks those headers and writes the row order
before and after into ``<pre id="selftest">``; ``--dump-dom`` prints the DOM once the scripts have run.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest
from leaderboard_fixtures import board_records, specs

from harness.grader.leaderboard import BASELINE_MARKER, LoadedRecord, rank, render_html

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--virtual-time-budget=2000",
]  # fmt: skip
CHROMIUM_TIMEOUT_S = 60
RANK_ORDER = ["reference", "zeta", "beta-team", "alpha-team"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    records = [LoadedRecord(Path(f"{r.submission.name}.json"), r) for r in board_records()]
    path = tmp_path_factory.mktemp("board") / "index.html"
    path.write_text(render_html(rank(records, specs=specs())), encoding="utf-8")
    return path


def _dump_dom(page: Path, fragment: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, with ``#fragment`` in the URL."""
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", f"{page.as_uri()}#{fragment}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert completed.returncode == 0, f"chromium exited {completed.returncode}: {completed.stderr[-2000:]}"
    return completed.stdout


def _selftest(dom: str) -> dict:
    match = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.DOTALL)
    assert match, f"no <pre id=selftest> in the DOM: the script did not run ({dom[:300]!r}...)"
    return json.loads(html.unescape(match.group(1)))


def test_clicking_name_sorts_rows_by_name(page, tmp_path):
    result = _selftest(_dump_dom(page, "selftest=name", tmp_path))
    assert result["before"] == RANK_ORDER
    assert result["clicked"] == ["name:ascending"]
    assert result["after"] == sorted(RANK_ORDER)
    assert result["baseline"] == ["reference"]


def test_clicking_a_header_again_reverses_the_order(page, tmp_path):
    result = _selftest(_dump_dom(page, "selftest=metric:beta,metric:beta", tmp_path))
    # beta's metric is an error (lower is better): first click ascending, second descending; ties keep their order
    assert result["clicked"] == ["metric:beta:ascending", "metric:beta:descending"]
    assert result["after"] == ["zeta", "beta-team", "reference", "alpha-team"]


def test_page_without_the_hook_keeps_rank_order_and_marks_the_baseline(page, tmp_path):
    dom = _dump_dom(page, "", tmp_path)
    assert 'id="selftest"' not in dom
    names = re.findall(r'<tr data-name="([^"]+)"', dom)
    assert names == RANK_ORDER
    baseline = re.search(r'<tr data-name="reference" class="baseline" data-baseline="true".*?</tr>', dom, re.DOTALL)
    assert baseline and BASELINE_MARKER in baseline.group(0)
