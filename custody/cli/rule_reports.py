"""`rules test` and `rules lint` results as JSON, JUnit XML or GitHub annotations (for CI)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from custody.cli.options import OutputFormat
from custody.engine.cases import CaseResult
from custody.engine.lint import LintReport
from custody.engine.rulefile import RuleSource
from custody.render.github import annotation
from custody.render.junit import Case, Suite, junit_xml


def _case_line(result: CaseResult, sources: dict[str, RuleSource]) -> tuple[str | None, int | None]:
    source = sources.get(result.rule_id)
    if source is None:
        return None, None
    index = next((i for i, case in enumerate(source.rule.cases) if case.name == result.case), None)
    line = source.line("cases", index) if index is not None else source.line("cases")
    return str(source.path), line


def _case_json(result: CaseResult, sources: dict[str, RuleSource]) -> dict[str, Any]:
    file, line = _case_line(result, sources)
    return {
        "test_id": result.test_id,
        "rule_id": result.rule_id,
        "case": result.case,
        "record": result.record,
        "expected": result.expected,
        "actual": result.actual,
        "passed": result.passed,
        "differences": result.differences,
        "message": result.message,
        "evidence": result.evidence,
        "file": file,
        "line": line,
    }


def _details(result: CaseResult, file: str | None, line: int | None) -> str:
    where = f"{file}:{line}" if file and line else (file or "")
    parts = [*result.differences, f"message: {result.message}" if result.message else "", where]
    if result.evidence:
        parts.append(f"evidence: {result.evidence}")
    return "\n".join(p for p in parts if p)


def case_report(
    output_format: OutputFormat, results: list[CaseResult], sources: dict[str, RuleSource], *, rules: int, cases: int
) -> str:
    failed = [r for r in results if not r.passed]
    if output_format is OutputFormat.json:
        content = {
            "rules": rules,
            "cases": cases,
            "records": len(results),
            "passed": len(results) - len(failed),
            "failed": len(failed),
            "results": [_case_json(r, sources) for r in results],
        }
        return json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    if output_format is OutputFormat.junit:
        suites: dict[str, Suite] = {}
        for result in results:
            file, line = _case_line(result, sources)
            suite = suites.setdefault(result.rule_id, Suite(result.rule_id))
            suite.cases.append(
                Case(
                    name=f"{result.case}::{result.record}",
                    classname=result.rule_id,
                    failure=None if result.passed else "; ".join(result.differences),
                    details="" if result.passed else _details(result, file, line),
                )
            )
        return junit_xml(list(suites.values()), name="custody rules test")
    lines = []
    for result in failed:
        file, line = _case_line(result, sources)
        message = "; ".join(result.differences) + (f" (message: {result.message})" if result.message else "")
        lines.append(annotation(message, file=_relative(file), line=line, title=f"{result.test_id} fails"))
    lines.append(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return "\n".join(lines) + "\n"


def _relative(file: str | None) -> str | None:
    """A path as GitHub wants it in an annotation: relative to the working folder when inside it."""
    if file is None:
        return None
    path = Path(file)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return file


def _lint_items(report: LintReport) -> Iterable[tuple[str, int | None, str, str]]:
    """(file, line, rule or file name, message) for every problem of the report."""
    for error in report.broken:
        yield str(error.path), error.line, Path(error.path).name, error.message
    for problem in report.problems:
        yield problem.path, problem.line, problem.rule_id, problem.message
    for result in report.failing:
        file, line = _case_line(result, report.sources)
        yield file or "", line, result.rule_id, f"{result.test_id}: {'; '.join(result.differences)}"


def lint_report(output_format: OutputFormat, report: LintReport) -> str:
    items = list(_lint_items(report))
    if output_format is OutputFormat.json:
        content = {
            "directory": report.directory,
            "files": report.files,
            "problems": len(items),
            "broken_files": [str(e.path) for e in report.broken],
            "items": [{"file": f or None, "line": n, "rule": r, "message": m} for f, n, r, m in items],
        }
        return json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    if output_format is OutputFormat.junit:
        by_name: dict[str, list[tuple[str, int | None, str]]] = {}
        for file, line, rule, message in items:
            by_name.setdefault(rule, []).append((file, line, message))
        names = sorted(set(by_name) | {Path(p).stem for p in _rule_paths(report)})
        cases = []
        for name in names:
            found = by_name.get(name, [])
            details = "\n".join(f"{f}:{n}: {m}" if f and n else (f"{f}: {m}" if f else m) for f, n, m in found)
            failure = f"{len(found)} problem(s): {found[0][2]}" if found else None
            cases.append(Case(name=name, classname="custody.rules.lint", failure=failure, details=details))
        return junit_xml([Suite("custody rules lint", cases)], name="custody rules lint")
    lines = [
        annotation(message, file=_relative(file) if file else None, line=line, title=f"{rule}: rules lint")
        for file, line, rule, message in items
    ]
    lines.append(f"{report.files} rule files checked in {report.directory}: {len(items)} problem(s)")
    return "\n".join(lines) + "\n"


def _rule_paths(report: LintReport) -> list[str]:
    from custody.engine.rulefile import rule_files

    return [str(p) for p in rule_files(Path(report.directory))]
