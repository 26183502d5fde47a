"""`custody rules lint`: checks that a rule set is fit to ship.

`lint_directory` reports every problem in every file in one run: a file that cannot be
loaded or compiled is one `RuleFileError` (naming the file and line; the CLI exits 2), and
the other files are still loaded, compiled, their cases run and linted. Everything else
is a list of problems (exit 1 if any).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from custody.contract import UK_TZ
from custody.engine.cases import CaseResult, run_cases
from custody.engine.compile import CompiledRule, compile_rule
from custody.engine.rulefile import (
    FACTS_SETTINGS_FILE,
    RuleFileError,
    RuleSet,
    RuleSource,
    load_fact_settings,
    load_rule_file,
    read_file_bytes,
    rule_files,
)
from custody.facts import FactSettings, fact_specs

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


@dataclass
class LintReport:
    directory: str
    files: int
    """Rule files found (broken ones included)."""
    broken: list[RuleFileError]
    """Files that could not be loaded or compiled (or whose cases could not be read), each once."""
    problems: list[Problem]
    results: list[CaseResult]
    sources: dict[str, RuleSource] = field(default_factory=dict)
    """The rules that loaded and compiled, by id (for the file and line of a failing case)."""

    @property
    def failing(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]


def lint_directory(directory: Path) -> LintReport:
    """Lint every rule file in `directory`, going on past broken ones (see the module's doc)."""
    if not directory.is_dir():
        raise RuleFileError(directory, "is not a folder of rule files: pass --rules DIR")
    paths = rule_files(directory)
    if not paths:
        raise RuleFileError(directory, "holds no rule files (*.yaml): pass --rules DIR")
    broken: list[RuleFileError] = []
    settings = FactSettings()
    settings_path = directory / FACTS_SETTINGS_FILE
    if settings_path.exists():
        try:
            settings = load_fact_settings(settings_path, read_file_bytes(settings_path))
        except RuleFileError as error:
            broken.append(error)
    sources: list[RuleSource] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            source = load_rule_file(path, read_file_bytes(path))
        except RuleFileError as error:
            broken.append(error)
            continue
        if source.rule.id in seen:
            broken.append(RuleFileError(path, f"rule id {source.rule.id} is also used by {seen[source.rule.id]}"))
            continue
        seen[source.rule.id] = path
        sources.append(source)
    specs = fact_specs()
    compiled: list[CompiledRule] = []
    for source in sources:
        try:
            compiled.append(compile_rule(source, specs, settings.leap_day_birthday))
        except RuleFileError as error:
            broken.append(error)
    rule_set = RuleSet(directory, [c.source for c in compiled], settings, digest="")
    # A case that cannot be read stops its rule's run: run the rules one by one only then,
    # so that each broken case is reported and every other rule's cases still run.
    try:
        runnable = compiled
        problems, results = lint_rule_set(rule_set, runnable)
    except RuleFileError:
        runnable = []
        for rule in compiled:
            try:
                run_cases(rule_set, [rule])
            except RuleFileError as error:
                broken.append(error)
                continue
            runnable.append(rule)
        problems, results = lint_rule_set(rule_set, runnable)
    broken.sort(key=lambda e: (str(e.path), e.line or 0))
    by_id = {rule.rule_id: rule.source for rule in runnable}
    return LintReport(str(directory), len(paths), broken, problems, results, by_id)
