"""Stages 4-6, run in the grading process, which never imports submission code.

:mod:`~harness.grader.run` starts one topic process per topic (in parallel) and collects their item verdicts;
:mod:`harness.spec.scoring` turns them into points; :mod:`~harness.grader.records` writes the result record
(stage 5); :mod:`~harness.grader.exports`, :mod:`~harness.grader.report`, :mod:`~harness.grader.leaderboard` and
:mod:`~harness.grader.regress` read records (stage 6).
"""
