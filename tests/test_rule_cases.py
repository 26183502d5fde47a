"""Every rule's own cases, collected by pytest: `pytest -k S38-GROUNDS` runs exactly that rule's cases."""

from __future__ import annotations

import pytest

from custody.engine.cases import CaseResult, run_cases
from custody.engine.rulefile import default_rules_dir, load_rule_set
from custody.pipeline import PreparedRules

# The cases are read at collection time (one test each); they run against the session's
# compiled rules.
CASES = [
    (source.rule.id, case.name, index, ", ".join(record.expect) if isinstance(record.expect, list) else record.expect)
    for source in load_rule_set(default_rules_dir()).rules
    for case in source.rule.cases
    for index, record in enumerate(case.records)
]


@pytest.fixture(scope="module")
def results(prepared_rules: PreparedRules) -> dict[tuple[str, str, int], CaseResult]:
    outcome: dict[tuple[str, str, int], CaseResult] = {}
    counters: dict[tuple[str, str], int] = {}
    for result in run_cases(prepared_rules.rule_set, prepared_rules.compiled):
        key = (result.rule_id, result.case)
        index = counters.get(key, 0)
        counters[key] = index + 1
        outcome[(result.rule_id, result.case, index)] = result
    return outcome


def test_every_rule_has_cases(prepared_rules: PreparedRules) -> None:
    assert prepared_rules.compiled, "no rules were loaded"
    for rule in prepared_rules.compiled:
        assert rule.source.rule.cases, f"{rule.rule_id} has no cases"


@pytest.mark.parametrize(
    ("rule_id", "case", "index", "expected"),
    CASES,
    ids=[f"{r}::{c}::{i}" for r, c, i, _ in CASES],
)
def test_rule_case(
    results: dict[tuple[str, str, int], CaseResult], rule_id: str, case: str, index: int, expected: str
) -> None:
    result = results[(rule_id, case, index)]
    assert result.actual == expected, f"{result.test_id}: expected {expected}, got {result.actual}: {result.message}"
    if result.message_contains:
        assert result.message_contains in result.message
