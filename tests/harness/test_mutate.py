"""`visionbench mutate`: cosmic-ray's operators make the mutants, the harness grades them like submissions."""

from __future__ import annotations

import pytest

from harness.spec import TopicSpec, load_specs
from harness.tools.mutate import (
    EQUIVALENTS_DIR,
    checks_reaching,
    load_equivalents,
    mutant_at,
    mutate_topic,
    mutation_sites,
    operators,
    scores_table,
)

SOURCE = '''"""A module to mutate."""

LIMIT = 3


def _helper(x):
    return x + 1


def api(x):
    return _helper(x) * LIMIT


def other(y):
    return y < 2
'''

SPEC = TopicSpec.model_validate(
    {
        "id": "demo",
        "number": 7,
        "title": "Demo",
        "idea": "An idea.",
        "interfaces": {"api": {"signature": "(x)", "doc": "api"}, "other": {"signature": "(y)", "doc": "other"}},
        "checks": {
            "api_value": {"kind": "property", "points": 1, "description": "d", "uses": ["api"]},
            "other_value": {"kind": "property", "points": 1, "description": "d", "uses": ["other"]},
        },
    }
)


def test_operators_leave_out_those_that_only_make_type_errors():
    names = [name for name, _ in operators()]
    assert {"core/NumberReplacer", "core/ReplaceComparisonOperator_Lt_LtE", "core/ReplaceBinaryOperator_Add_Sub", "core/AddNot"} <= set(
        names
    )
    assert not [name for name in names if any(word in name for word in ("BitOr", "LShift", "Invert", "_Is_", "Variable"))]


def test_sites_are_listed_in_a_fixed_order_and_each_makes_one_mutant():
    sites = mutation_sites(SOURCE)
    assert sites == mutation_sites(SOURCE) and len(sites) > 10
    plus = next(site for site in sites if site.operator == "core/ReplaceBinaryOperator_Add_Sub")
    mutant = mutant_at(SOURCE, plus)
    assert (mutant.definition, mutant.line, mutant.original_line, mutant.mutated_line) == ("_helper", 7, "return x + 1", "return x - 1")
    diff = mutant.diff(SOURCE, "reference/demo.py")
    assert "-    return x + 1\n+    return x - 1\n" in diff and diff.startswith("--- a/reference/demo.py")
    less = next(site for site in sites if site.operator == "core/ReplaceComparisonOperator_Lt_LtE")
    assert mutant_at(SOURCE, less).mutated_line == "return y <= 2"


def test_a_mutant_is_graded_on_the_checks_that_can_reach_its_code():
    assert checks_reaching(SPEC, SOURCE, "api") == ["api_value"]
    assert checks_reaching(SPEC, SOURCE, "_helper") == ["api_value"]  # api calls it
    assert checks_reaching(SPEC, SOURCE, "LIMIT") == ["api_value"]  # api reads it
    assert checks_reaching(SPEC, SOURCE, "other") == ["other_value"]
    assert checks_reaching(SPEC, SOURCE, "<module>") == ["api_value", "other_value"]


def test_equivalent_mutants_need_a_reason(tmp_path):
    (tmp_path / "demo.yaml").write_text("- original: return x + 1\n  mutated: return x - 1\n  why: ''\n")
    with pytest.raises(ValueError, match="non-empty why"):
        load_equivalents("demo", tmp_path)
    (tmp_path / "demo.yaml").write_text("- {original: 'return x + 1', mutated: 'return x - 1', why: x is never read}\n")
    (entry,) = load_equivalents("demo", tmp_path)
    assert (entry.original, entry.mutated, entry.why) == ("return x + 1", "return x - 1", "x is never read")


@pytest.mark.parametrize("topic", list(load_specs()))
def test_every_listed_equivalent_mutant_is_still_in_the_reference(topic):
    from harness.conventions import REFERENCE_DIR

    lines = {line.strip() for line in (REFERENCE_DIR / f"{topic}.py").read_text().splitlines()}
    stale = [entry.original for entry in load_equivalents(topic) if entry.original not in lines]
    assert not stale, f"{EQUIVALENTS_DIR.name}/{topic}.yaml lists mutants of lines no longer in reference/{topic}.py: {stale}"


def test_mutants_of_a_real_topic_are_graded_and_reported():
    report = mutate_topic("convolution", sample=2, seed=11, jobs=2)
    assert report.sampled == 2 and report.generated > 1000
    assert len(report.killed) + len(report.survived) + len(report.unreached) + len(report.equivalent) + len(report.full_only) == 2
    table = scores_table([report])
    assert table.splitlines()[2].startswith("| convolution | ") and table.splitlines()[2].endswith(f"| {report.wall_s:.0f} |")
