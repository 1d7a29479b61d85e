"""Hypothesis profiles: ``grading`` is derandomized (same verdicts every run), ``practice`` explores."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

__all__ = ["load_profile", "GRADING_EXAMPLES", "PRACTICE_EXAMPLES"]

GRADING_EXAMPLES = 30
PRACTICE_EXAMPLES = 100
# The visionbench fixtures (impl, spec, spec_check) are read-only, so function scope under @given is safe.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.differing_executors, HealthCheck.function_scoped_fixture]

# No "explain" phase: it re-runs a failing example hundreds of times to annotate it, seconds per failed check.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

settings.register_profile(
    "grading",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=GRADING_EXAMPLES,
    print_blob=False,
    suppress_health_check=_RELAXED,
    report_multiple_bugs=False,  # one failure per check, not an exception group
    phases=_PHASES,
)
settings.register_profile("practice", derandomize=False, deadline=None, max_examples=PRACTICE_EXAMPLES, suppress_health_check=_RELAXED)


def load_profile(name: str) -> None:
    """Activate ``grading`` or ``practice``."""
    settings.load_profile(name)
