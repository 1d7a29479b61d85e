"""The per-run HTML report: every check with its outcome, failures first by topic, messages escaped, pictures embedded."""

from __future__ import annotations

import re

from leaderboard_fixtures import record, topic_record, write
from typer.testing import CliRunner

from harness.cli import app
from harness.grader.records import CheckRecord, FailingCase
from harness.grader.report import HIDDEN_NOTE, render_report, write_report

# the smallest valid PNG: 1x1, one grey pixel
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000376ef9240000000a49444154789c6360000000020001e221bc330000000049454e44ae426082"
)


def _record(message: str = "max abs error 0.5 at [0, 1] (atol 1e-06)", artifacts: list[str] | None = None):
    return record(
        "student",
        [topic_record("alpha", value=0.9, speed=0.1), topic_record("beta", shape=False, value=None, message=message)],
        artifacts=artifacts,
    )


def _check_order(page: str) -> list[tuple[str, str]]:
    """(topic, check) in page order."""
    order = []
    for section in re.finditer(r'<section class="topic" data-topic="([^"]+)">(.*?)</section>', page, re.DOTALL):
        order += [(section.group(1), check) for check in re.findall(r'data-check="([^"]+)"', section.group(2))]
    return order


def test_report_lists_every_check_failures_first_grouped_by_topic(tmp_path):
    page = render_report(_record(), tmp_path)
    assert _check_order(page) == [
        ("beta", "shape"), ("beta", "score"), ("beta", "speed"),  # needs attention: only beta failed
        ("alpha", "shape"), ("alpha", "score"),  # passed
    ]  # fmt: skip
    assert page.index('id="attention"') < page.index('id="passed"')
    assert "0/13 points" in page and "12/12 points" in page
    assert "2 passed, 3 failed" in page and "12/25 points" in page


def test_report_shows_the_message_and_numbers_of_a_failure(tmp_path):
    page = render_report(_record(), tmp_path)
    failed = re.search(r'<div class="check failed" data-check="shape">.*?</div>', page, re.DOTALL).group(0)
    assert "max abs error 0.5 at [0, 1] (atol 1e-06)" in failed
    assert "<th>expected</th><td>[2, 3]</td>" in failed


def test_report_escapes_messages(tmp_path):
    page = render_report(_record(message='got <Tensor> & "nan" </pre><script>alert(1)</script>'), tmp_path)
    assert "&lt;Tensor&gt; &amp; &quot;nan&quot; &lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_report_withholds_hidden_details_unless_asked(tmp_path):
    result = _record()
    hidden = result.topics[1].checks[0].model_copy(update={"hidden": True})
    result.topics[1].checks[0] = CheckRecord.model_validate(hidden.model_dump())
    assert HIDDEN_NOTE in render_report(result, tmp_path) and "max abs error" not in render_report(result, tmp_path)
    assert "max abs error" in render_report(result, tmp_path, show_hidden=True)


def test_report_embeds_pictures_beside_the_record_and_names_missing_ones(tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "kernel.png").write_bytes(PNG)
    page = render_report(_record(artifacts=["pictures/kernel.png", "pictures/gone.png"]), tmp_path)
    assert page.count("data:image/png;base64,") == 1
    assert '<figure class="missing"><figcaption>pictures/gone.png</figcaption>' in page


def test_report_command_writes_beside_the_record_and_rejects_bad_files(tmp_path):
    path = write(tmp_path / "run.json", _record())
    outcome = CliRunner().invoke(app, ["report", str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / "run.html").read_text(encoding="utf-8") == write_report(path, tmp_path / "again.html").read_text(encoding="utf-8")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    assert CliRunner().invoke(app, ["report", str(tmp_path / "bad.json")]).exit_code == 2


def test_report_lists_every_failing_case_of_a_check_with_its_inputs(tmp_path):
    report = _record()
    shape = next(check for check in report.topics[1].checks if check.check == "shape")
    shape.items = 5
    shape.cases = [
        FailingCase(case="odd-float32-non_contiguous", outcome="failed", message="shape (2,) but the oracle's is (3,)"),
        FailingCase(case="ties-float64-contiguous", outcome="error", message="ZeroDivisionError (in f, m.py:3)"),
    ]
    page = render_report(report, tmp_path)
    card = re.search(r'<div class="check failed" data-check="shape">.*?</div>', page, re.DOTALL).group(0)
    assert "2 of 5 cases did not pass" in card
    assert card.index("odd-float32-non_contiguous") < card.index("ties-float64-contiguous")
    assert "ZeroDivisionError (in f, m.py:3)" in card
