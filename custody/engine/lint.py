"""`custody rules lint`: checks that a rule set is fit to ship.

A file that cannot be loaded or compiled raises RuleFileError (exit 2, naming
the file and line). Everything else is a list of problems (exit 1 if any).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from custody.contract import UK_TZ
from custody.engine.cases import CaseResult, run_cases
from custody.engine.compile import CompiledRule
from custody.engine.rulefile import RuleSet, RuleSource

REQUIRED_OUTCOMES = ("breach", "compliant", "cannot_assess")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    rule_id: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.rule_id}: {self.message}"


def _versions(source: RuleSource) -> list[Problem]:
    rule, problems = source.rule, []

    def problem(index: int, message: str) -> None:
        problems.append(Problem(str(source.path), source.line("versions", index), rule.id, message))

    for i, version in enumerate(rule.versions):
        if not version.citations or not all(c.strip() for c in version.citations):
            problem(i, f"version {version.effective_from} has no citation")
        if version.effective_to is not None and version.effective_to < version.effective_from:
            problem(i, f"version {version.effective_from} ends ({version.effective_to}) before it starts")
        if i == 0:
            continue
        previous = rule.versions[i - 1]
        if version.effective_from <= previous.effective_from:
            problem(i, f"versions are not in date order ({previous.effective_from} then {version.effective_from})")
        elif previous.effective_to is not None and previous.effective_to >= version.effective_from:
            problem(
                i, f"version {previous.effective_from} (to {previous.effective_to}) overlaps {version.effective_from}"
            )
    return problems


def _local_day(instant: dt.datetime | None) -> dt.date | None:
    return instant.astimezone(ZoneInfo(UK_TZ)).date() if instant else None


def _cases(source: RuleSource, results: list[CaseResult]) -> list[Problem]:
    rule, problems = source.rule, []
    where = (str(source.path), source.line("cases"), rule.id)
    expected = {outcome for r in results for outcome in r.expected_each}
    for outcome in REQUIRED_OUTCOMES:
        if outcome not in expected:
            problems.append(Problem(*where, f"no case expects '{outcome}': add one"))
    days = {_local_day(t) for r in results for t in r.triggers}
    for version in rule.versions[1:]:
        boundary = version.effective_from
        before = boundary - dt.timedelta(days=1)
        for day, label in ((before, "the day before"), (boundary, "the day of")):
            if day not in days:
                problems.append(
                    Problem(*where, f"no case is triggered on {day} ({label} the {boundary} version): add one")
                )
    return problems


def lint_rule_set(rule_set: RuleSet, compiled: list[CompiledRule]) -> tuple[list[Problem], list[CaseResult]]:
    """Problems with the rule set, and the case results it ran to find them."""
    problems: list[Problem] = []
    results = run_cases(rule_set, compiled)
    for rule in compiled:
        source = rule.source
        problems += _versions(source)
        problems += _cases(source, [r for r in results if r.rule_id == rule.rule_id])
        names = [c.name for c in source.rule.cases]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        for name in duplicates:
            problems.append(
                Problem(str(source.path), source.line("cases"), rule.rule_id, f"two cases are named {name!r}")
            )
    return problems, results
