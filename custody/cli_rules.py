"""`custody rules ...`: list, explain, test and lint the rule set (a thin layer over custody.engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from custody.engine.cases import run_cases
from custody.engine.evaluate import CompiledRule, compile_rule_set
from custody.engine.expr import FUNCTIONS
from custody.engine.lint import lint_rule_set
from custody.engine.rulefile import RuleSet, RuleSource, default_rules_dir, load_rule_set
from custody.errors import UsageError
from custody.facts import fact_specs

rules_app = typer.Typer(
    name="rules",
    help="List, explain, test and lint the rules (the law as data files in rules/).",
    no_args_is_help=True,
)

RulesDir = Annotated[
    Path | None,
    typer.Option("--rules", help="Folder of rule files to use instead of the shipped rules/.", show_default=False),
]


def _load(rules_dir: Path | None) -> tuple[RuleSet, list[CompiledRule]]:
    rule_set = load_rule_set(rules_dir or default_rules_dir())
    return rule_set, compile_rule_set(rule_set)


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
def list_rules(rules: RulesDir = None) -> None:
    """One line per rule: id, title, basis, versions in force, current citation."""
    rule_set, _ = _load(rules)
    table = Table(show_lines=False, title=f"{len(rule_set.rules)} rules in {rule_set.directory}")
    for column in ("id", "title", "basis", "versions", "citation"):
        table.add_column(column, overflow="fold")
    for source in rule_set.rules:
        rule = source.rule
        table.add_row(rule.id, rule.title, rule.basis.value, _in_force(source), "; ".join(rule.versions[-1].citations))
    Console(width=200).print(table)


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> str:
    paragraphs = text.strip().split("\n\n")
    return "\n".join(
        textwrap.fill(p, width=100, initial_indent=first if (first and i == 0) else indent, subsequent_indent=indent)
        for i, p in enumerate(paragraphs)
    )


def explain_rule(source: RuleSource) -> str:
    """The full explanation of a rule, in fixed sections (like `ruff rule`)."""
    rule = source.rule
    out = [f"{rule.id}: {rule.title}", "", f"Basis: {rule.basis.value}    Severity: {rule.severity.value}"]
    out += ["", "What it checks", _wrap(rule.checks), "", "Why it matters", _wrap(rule.why)]
    out += ["", "What to do with a breach", _wrap(rule.action)]
    if rule.notes:
        out += ["", "Notes and uncertain points", _wrap(rule.notes)]
    out += ["", "Law", *(f"  - {c}" for c in rule.citations)]
    out += ["", f"Versions (chosen per record by: {rule.trigger.strip()})"]
    for version in rule.versions:
        until = f" to {version.effective_to}" if version.effective_to else " onwards"
        out.append(f"  {version.effective_from}{until}" + (f" [{version.basis.value}]" if version.basis else ""))
        out.append(_wrap(version.changes, "      "))
        out += [f"      cites: {c}" for c in version.citations]
        for name, value in version.params.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out.append(textwrap.fill(f"{name} = {shown}", 100, initial_indent="      ", subsequent_indent="        "))
    logic = rule.logic
    out += ["", "Logic", "  applies when:", _wrap(" ".join(logic.applies.split()), "    ")]
    for case in logic.outcomes:
        condition = " ".join(case.when.split()) if case.when else "otherwise"
        out.append(f"  {case.outcome.value} when: {condition}")
        out.append(_wrap(case.message, "               ", "      message: "))
    out.append("  cannot_assess when any condition it needs is unknown or rests on unusable input:")
    out.append(_wrap(logic.cannot_assess_message, "               ", "      message: "))
    if rule.cases:
        out += ["", f"Test cases ({len(rule.cases)})"]
        for rule_case in rule.cases:
            expected = ", ".join(r.expect for r in rule_case.records)
            out.append(f"  - {rule_case.name} -> {expected}")
    out += ["", f"File: {source.path}"]
    return "\n".join(out)


@rules_app.command("show")
def show_rule(
    rule_id: Annotated[str, typer.Argument(help="The rule id, e.g. S38-GROUNDS.")], rules: RulesDir = None
) -> None:
    """Explain a rule: what it checks and why, its law, versions, logic, cases and file."""
    _, compiled = _load(rules)
    (chosen,) = _select(compiled, [rule_id])
    typer.echo(explain_rule(chosen.source))


@rules_app.command("test")
def run_rule_tests(
    rule_ids: Annotated[list[str] | None, typer.Argument(help="Rule ids to test (default: all).")] = None,
    rules: RulesDir = None,
) -> None:
    """Run every rule's own test cases (no pytest needed); exit 1 if any fails."""
    rule_set, compiled = _load(rules)
    selected = _select(compiled, rule_ids)
    results = run_cases(rule_set, selected)
    failed = [r for r in results if not r.passed]
    for result in failed:
        typer.echo(f"FAIL {result.test_id}")
        typer.echo(f"     expected {result.expected}, got {result.actual}")
        if result.message_contains and result.message_contains not in result.message:
            typer.echo(f"     message lacks {result.message_contains!r}")
        if result.message:
            typer.echo(f"     message: {result.message}")
    cases = len({(r.rule_id, r.case) for r in results})
    typer.echo(f"{len(selected)} rules, {cases} cases, {len(results)} records")
    typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@rules_app.command("lint")
def lint_rules(rules: RulesDir = None) -> None:
    """Check the rule set: schema, ids, versions, citations, and cases for every outcome and date boundary."""
    rule_set, compiled = _load(rules)
    problems, results = lint_rule_set(rule_set, compiled)
    failing = [r for r in results if not r.passed]
    for problem in problems:
        typer.echo(str(problem))
    for result in failing:
        typer.echo(f"{result.test_id}: case expects {result.expected}, got {result.actual} (see `custody rules test`)")
    total = len(problems) + len(failing)
    typer.echo(f"{len(rule_set.rules)} rules checked in {rule_set.directory}: {total} problem(s)")
    if total:
        raise typer.Exit(1)


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
    functions = Table(title="Functions")
    functions.add_column("function", overflow="fold")
    for description in FUNCTIONS.values():
        functions.add_row(description)
    console.print(functions)


if __name__ == "__main__":  # `python -m custody.cli_rules test` works before the main CLI is wired
    rules_app()
