"""`custody rules ...`: list, explain, test and lint the rule set (a thin layer over custody.engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from custody.cli.diff import rules_diff
from custody.cli.options import OutputFormat, RulesOpt, output_format_option, require_format
from custody.cli.rule_reports import case_report, lint_report
from custody.engine.cache import load_compiled
from custody.engine.cases import run_cases
from custody.engine.compile import CompiledRule
from custody.engine.describe import explain_rule
from custody.engine.expr import FUNCTIONS
from custody.engine.lint import lint_directory
from custody.engine.rulefile import RuleSet, RuleSource, default_rules_dir
from custody.errors import UsageError
from custody.facts import fact_specs
from custody.facts.specs import OCCASION_FACTS

rules_app = typer.Typer(
    name="rules",
    help="List, explain, test and lint the rules (the law as data files in rules/).",
    no_args_is_help=True,
)


def _load(rules_dir: Path | None) -> tuple[RuleSet, list[CompiledRule]]:
    loaded = load_compiled(rules_dir or default_rules_dir())
    return loaded.rule_set, loaded.compiled


def _select(compiled: list[CompiledRule], ids: list[str] | None) -> list[CompiledRule]:
    if not ids:
        return compiled
    known = {c.rule_id: c for c in compiled}
    unknown = [i for i in ids if i.upper() not in known]
    if unknown:
        raise UsageError(f"no rule {', '.join(unknown)}: see `custody rules list` for the ids.")
    return [known[i.upper()] for i in ids]


def _in_force(source: RuleSource) -> str:
    return ", ".join(
        f"{v.effective_from}..{v.effective_to}" if v.effective_to else f"{v.effective_from}.."
        for v in source.rule.versions
    )


@rules_app.command("list")
def list_rules(rules: RulesOpt = None) -> None:
    """One line per rule: id, title, basis, versions in force, current citation."""
    rule_set, _ = _load(rules)
    table = Table(show_lines=False, title=f"{len(rule_set.rules)} rules in {rule_set.directory}")
    for column in ("id", "title", "basis", "versions", "citation"):
        table.add_column(column, overflow="fold")
    for source in rule_set.rules:
        rule = source.rule
        table.add_row(rule.id, rule.title, rule.basis.value, _in_force(source), "; ".join(rule.versions[-1].citations))
    Console(width=200).print(table)


@rules_app.command("show")
def show_rule(
    rule_id: Annotated[str, typer.Argument(help="The rule id, e.g. S38-GROUNDS.")], rules: RulesOpt = None
) -> None:
    """Explain a rule: what it checks and why, its law, versions, logic, cases and file."""
    _, compiled = _load(rules)
    (chosen,) = _select(compiled, [rule_id])
    typer.echo(explain_rule(chosen.source))


RULE_REPORT_FORMATS = (OutputFormat.text, OutputFormat.json, OutputFormat.junit, OutputFormat.github)


@rules_app.command("test")
def run_rule_tests(
    rule_ids: Annotated[list[str] | None, typer.Argument(help="Rule ids to test (default: all).")] = None,
    rules: RulesOpt = None,
    output_format: Annotated[OutputFormat, output_format_option(*RULE_REPORT_FORMATS)] = OutputFormat.text,
) -> None:
    """Run every rule's own test cases (no pytest needed); exit 1 if any fails.

    A failure says what differs: the outcome, or (when the outcome is as expected) the
    message, shown with the finding's evidence.
    """
    require_format(output_format, *RULE_REPORT_FORMATS)
    rule_set, compiled = _load(rules)
    selected = _select(compiled, rule_ids)
    results = run_cases(rule_set, selected)
    sources = {c.rule_id: c.source for c in selected}
    failed = [r for r in results if not r.passed]
    cases = len({(r.rule_id, r.case) for r in results})
    if output_format is OutputFormat.text:
        for result in failed:
            typer.echo(f"FAIL {result.test_id}")
            for difference in result.differences:
                typer.echo(f"     {difference}")
            if result.message:
                typer.echo(f"     message: {result.message}")
            if result.evidence and result.expected == result.actual:
                typer.echo(f"     evidence: {result.evidence}")
        typer.echo(f"{len(selected)} rules, {cases} cases, {len(results)} records")
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    else:
        typer.echo(case_report(output_format, results, sources, rules=len(selected), cases=cases), nl=False)
    if failed:
        raise typer.Exit(1)


@rules_app.command("lint")
def lint_rules(
    rules: RulesOpt = None,
    output_format: Annotated[OutputFormat, output_format_option(*RULE_REPORT_FORMATS)] = OutputFormat.text,
) -> None:
    """Check the rule set: schema, ids, versions, citations, and cases for every outcome and date boundary.

    Every problem in every file is reported in one run. Exit codes: 0 clean; 1 problems;
    2 a file could not be loaded or compiled (each such file is named on stderr, with its line).
    """
    require_format(output_format, *RULE_REPORT_FORMATS)
    report = lint_directory(rules or default_rules_dir())
    for error in report.broken:
        typer.echo(f"error: {error}", err=True)
    total = len(report.broken) + len(report.problems) + len(report.failing)
    if output_format is OutputFormat.text:
        for problem in report.problems:
            typer.echo(str(problem))
        for result in report.failing:
            typer.echo(f"{result.test_id}: {'; '.join(result.differences)} (see `custody rules test`)")
        typer.echo(f"{report.files} rule files checked in {report.directory}: {total} problem(s)")
    else:
        typer.echo(lint_report(output_format, report), nl=False)
    if report.broken:
        raise typer.Exit(2)
    if total:
        raise typer.Exit(1)


rules_app.command("diff")(rules_diff)


@rules_app.command("facts")
def list_facts() -> None:
    """The facts and functions a rule expression may use."""
    table = Table(title="Facts (one row per custody record)")
    for column in ("name", "kind", "meaning"):
        table.add_column(column, overflow="fold")
    for spec in fact_specs().values():
        table.add_row(spec.name, spec.kind, spec.description + (" [sensitive]" if spec.sensitive else ""))
    console = Console(width=160)
    console.print(table)
    occasions = Table(title="Facts of one occasion (a rule with `occasions: <type>`, one row per event of that type)")
    for column in ("name", "kind", "meaning"):
        occasions.add_column(column, overflow="fold")
    for row in (
        *((name, kind, description.format(grain="<type>")) for name, kind, description, _ in OCCASION_FACTS),
        ("occasion_<fact>", "as <fact>", "an event fact above, over the events from this occasion's up to the next"),
        (
            "occasion_prior_<event type>_last_at",
            "instant",
            "the last event of that type at or before this occasion's instant, anywhere earlier on the record",
        ),
        (
            "occasion_next_<event type>[_<detail>]_at",
            "instant",
            "the first event of that type (and detail) at or after this occasion's instant, anywhere later"
            " on the record (past the next occasion too)",
        ),
    ):
        occasions.add_row(*row)
    console.print(occasions)
    functions = Table(title="Functions")
    functions.add_column("function", overflow="fold")
    for description in FUNCTIONS.values():
        functions.add_row(description)
    console.print(functions)
