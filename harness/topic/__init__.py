"""Stages 2-4, run in the topic process: the child process in which one topic's graded tests run.

The submission's code is imported here and nowhere else. In order: :mod:`~harness.topic.loader` imports an
implementation and :mod:`~harness.topic.guard` exposes its spec interfaces with their ``forbid`` lists enforced
(stage 2); :mod:`~harness.topic.plugin` (the pytest plugin) runs the graded tests, which reach the implementation
through the authoring API :mod:`harness.testing` and the helpers here: comparisons, autograd, strategies, metric
tasks, latency (stage 3); :mod:`~harness.topic.verdicts` turns what each test raised into an outcome (stage 4).
The items' verdicts leave the process as a JSON file that the grading process reads.
"""
