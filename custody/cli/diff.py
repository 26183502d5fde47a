"""`custody diff BEFORE AFTER` and `custody rules diff BASE NEW RECORDS` (a thin layer over
custody.compare and custody.impact)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody.cli.options import (
    DateOrder,
    DateOrderOpt,
    OutputFormat,
    RulesOpt,
    output_format_option,
    require_format,
)
from custody.compare import REPORTED_STATUSES, Comparison, Side, compare, is_run_folder, read_run
from custody.errors import InputError, UsageError
from custody.impact import RulesImpact, rules_impact, side_from_records
from custody.pipeline import prepare_rules
from custody.pseudonymise import check_key, key_id
from custody.read.loader import find_tables
from custody.render.junit import Case, Suite, junit_xml

KEY_ENV = "CUSTODY_PSEUDONYMISE_KEY"
DIFF_FORMATS = (OutputFormat.text, OutputFormat.json, OutputFormat.junit)
RULES_DIFF_FORMATS = (OutputFormat.text, OutputFormat.json, OutputFormat.junit, OutputFormat.markdown)


# ---------------------------------------------------------------- custody diff


def _side(path: Path, *, rules: RulesOpt, key: str | None, date_order: DateOrder, name: str) -> Side:
    if is_run_folder(path):
        run = read_run(path)
        # The key promises pseudonymised outputs: a run written without it, or under another
        # key, would put its real ids (or ids that cannot match) in the diff.
        if key is not None and not run.pseudonymised:
            raise UsageError(
                f"{name} {path} was written without a pseudonymisation key, so a diff with --pseudonymise-key "
                "would hold its real ids: give a run checked with that key, or the record set itself."
            )
        if key is not None and run.key_id and run.key_id != key_id(key):
            raise UsageError(
                f"{name} {path} was pseudonymised with another key than the one given, so its ids cannot "
                "match: give a run checked with this --pseudonymise-key, or the record set itself."
            )
        return run
    if path.is_dir():
        try:
            find_tables(path)
        except InputError:
            raise UsageError(
                f"{name} {path} is neither a folder `custody check --out` wrote (summary.json and findings) "
                "nor a record set (detentions and events): give one of those."
            ) from None
        return side_from_records(
            path, rules=prepare_rules(rules), label=str(path), pseudonymise_key=key, date_order=date_order.order
        )
    raise UsageError(f"{name} {path} is not a folder: give a `custody check --out` folder or a record set folder.")


def diff(
    before: Annotated[Path, typer.Argument(help="The earlier run: a `custody check --out` folder, or a record set.")],
    after: Annotated[Path, typer.Argument(help="The later run: a `custody check --out` folder, or a record set.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for diff.csv, diff.parquet, diff.html and diff.json."),
    ] = None,
    rules: RulesOpt = None,
    pseudonymise_key: Annotated[
        str | None,
        typer.Option(
            "--pseudonymise-key",
            envvar=KEY_ENV,
            help="Check record sets with ids replaced under this key (to compare with runs made with it).",
            show_envvar=True,
        ),
    ] = None,
    include_unchanged: Annotated[
        bool, typer.Option("--all", help="List unchanged compliant findings in diff.csv too.")
    ] = False,
    fail_on_new: Annotated[bool, typer.Option("--fail-on-new", help="Exit 1 if any finding is new (for CI).")] = False,
    output_format: Annotated[OutputFormat, output_format_option(*DIFF_FORMATS)] = OutputFormat.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors and gates.")] = False,
    date_order: DateOrderOpt = DateOrder.dmy,
) -> None:
    """Compare two runs: per child, record, rule and occasion, what is new, resolved, continuing or changed.

    BEFORE and AFTER are each a `custody check --out` folder or a record set (checked on the
    fly with the same rules). Findings are matched by custody record, rule and occasion
    (trigger_at). Pseudonymised runs compare only when made with the same key.
    --output-format json prints the counts; junit, one test case per rule with changes,
    failing where findings are new.
    Exit codes: 0 compared; 1 --fail-on-new and a finding is new; 2 a usage or input error.
    """
    require_format(output_format, *DIFF_FORMATS)
    if pseudonymise_key is not None:
        check_key(pseudonymise_key)
    comparison = compare(
        _side(before, rules=rules, key=pseudonymise_key, date_order=date_order, name="BEFORE"),
        _side(after, rules=rules, key=pseudonymise_key, date_order=date_order, name="AFTER"),
    )
    written = _write(comparison, out, include_unchanged=include_unchanged) if out is not None else []
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(comparison.summary(), indent=2, ensure_ascii=False))
    elif output_format is OutputFormat.junit:
        typer.echo(_diff_junit(comparison), nl=False)
    elif not quiet:
        _print_comparison(comparison, written)
    new = comparison.counts()["new"]
    if fail_on_new and new:
        per_rule = {rule: row["new"] for rule, row in comparison.counts_by("rule_id").items() if row["new"]}
        rules_text = ", ".join(f"{rule} {n:,}" for rule, n in per_rule.items())
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"--fail-on-new: {new:,} new finding(s) ({rules_text}): exit 1."
        )
        raise typer.Exit(1)


def _status_table(title: str, first: str, table: dict[str, dict[str, int]]) -> Table:
    rendered = Table(title=title, title_justify="left")
    rendered.add_column(first)
    for status in REPORTED_STATUSES:
        rendered.add_column(status, justify="right")
    for name, row in table.items():
        rendered.add_row(escape(name), *(f"{row[s]:,}" for s in REPORTED_STATUSES))
    return rendered


def _write(comparison: Comparison, out: Path, **options: Any) -> list[Path]:
    """The diff's files (their renderer, with Jinja2, loads only for a diff that writes them)."""
    from custody.diff_outputs import write_diff_outputs

    return write_diff_outputs(comparison, out, **options)


def _print_comparison(comparison: Comparison, written: list[Path]) -> None:
    console = Console()
    counts = comparison.counts()
    console.print(
        ", ".join(f"{counts[s]:,} {s}" for s in (*REPORTED_STATUSES, "unchanged")) + " finding(s).", highlight=False
    )
    headline = Table(title="Headline figures", title_justify="left")
    for column in ("figure", "before", "after"):
        headline.add_column(column, justify="left" if column == "figure" else "right")
    for _, label, was, now in comparison.headlines():
        headline.add_row(escape(label), f"{was:,}", f"{now:,}")
    console.print(headline)
    per_rule = comparison.counts_by("rule_id")
    if per_rule:
        console.print(_status_table("Per rule", "Rule", per_rule))
        console.print(_status_table("Per force", "Force", comparison.counts_by("force")))
    if written:
        console.print(f"Wrote {', '.join(p.name for p in written)} to {escape(str(written[0].parent))}")


def _diff_junit(comparison: Comparison) -> str:
    cases = []
    for rule_id, row in comparison.counts_by("rule_id").items():
        failure = f"{row['new']:,} new finding(s)" if row["new"] else None
        details = ", ".join(f"{row[s]:,} {s}" for s in REPORTED_STATUSES)
        cases.append(Case(name=rule_id, classname="custody.diff", failure=failure, details=details))
    if not cases:
        cases.append(Case(name="no changes", classname="custody.diff"))
    return junit_xml([Suite("custody diff", cases)], name="custody diff")


# ---------------------------------------------------------------- custody rules diff


@contextmanager
def rules_folder(spec: str, name: str) -> Iterator[Path]:
    """A folder of rule files from `spec`: a folder, or a git revision of one (`main:rules`),
    exported with `git archive` into a temporary folder for the block's life."""
    path = Path(spec)
    if path.is_dir():
        yield path
        return
    if ":" not in spec:
        raise UsageError(f"{name} {spec} is not a folder of rule files nor a git revision of one (e.g. main:rules).")
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", spec], capture_output=True, check=False)
    except OSError:
        raise UsageError(f"{name} {spec} looks like a git revision, but git cannot be run here.") from None
    if archive.returncode != 0:
        raise UsageError(
            f"{name} {spec} is not a folder, and git cannot export it as a revision of a folder "
            "(run it inside the repository, and name a revision and path such as main:rules)."
        )
    with tempfile.TemporaryDirectory(prefix="custody-rules-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            # `git archive REV:PATH` puts PATH's files at the top. Only plain files and
            # folders inside the temporary folder are written (the "data" filter).
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(folder, members=_plain_members(tar), filter="data")
            else:
                tar.extractall(folder, members=_plain_members(tar))  # members filtered above
        yield Path(folder)


def _plain_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's files and folders whose paths stay inside the folder they go to."""
    return [
        member
        for member in tar.getmembers()
        if (member.isfile() or member.isdir())
        and not member.name.startswith("/")
        and ".." not in Path(member.name).parts
    ]


def rules_diff(
    base_rules: Annotated[
        str, typer.Argument(help="The rules before: a folder, or a git revision such as main:rules.")
    ],
    new_rules: Annotated[str, typer.Argument(help="The rules after: a folder, or a git revision.")],
    records: Annotated[Path, typer.Argument(help="The reference record set to check with both (a folder).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for diff.csv, diff.parquet, diff.html, diff.json and diff.md."),
    ] = None,
    fail_on_change: Annotated[
        bool,
        typer.Option("--fail-on-change", help="Exit 1 if any finding changes outcome, message or version (for CI)."),
    ] = False,
    output_format: Annotated[OutputFormat, output_format_option(*RULES_DIFF_FORMATS)] = OutputFormat.text,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors and the gate.")] = False,
    date_order: DateOrderOpt = DateOrder.dmy,
) -> None:
    """Show how a rule change moves the findings of a reference record set, and why.

    Checks RECORDS with BASE_RULES and with NEW_RULES and lists every finding whose outcome,
    message or rule version changes, with the rule file and version behind it, counted per
    rule and period. --output-format markdown prints a summary for a pull-request comment;
    junit, one test case per rule with changes, failing where a finding changes.
    Exit codes: 0 compared; 1 --fail-on-change and something changed; 2 a usage or input error.
    """
    require_format(output_format, *RULES_DIFF_FORMATS)
    if not records.is_dir():
        raise UsageError(f"RECORDS {records} is not a folder: give the record set folder (detentions and events).")
    with rules_folder(base_rules, "BASE_RULES") as base_dir, rules_folder(new_rules, "NEW_RULES") as new_dir:
        impact = rules_impact(
            prepare_rules(base_dir),
            prepare_rules(new_dir),
            records,
            base_label=base_rules,
            new_label=new_rules,
            records_label=records.name,
            date_order=date_order.order,
        )
    summary = impact.summary()
    markdown = rules_diff_markdown(impact, summary)
    if out is not None:
        _write(
            impact.comparison,
            out,
            summary=summary,
            title="Children in police custody: the impact of a rule change",
            extra={"diff.md": markdown},
        )
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    elif output_format is OutputFormat.junit:
        typer.echo(_rules_diff_junit(summary), nl=False)
    elif output_format is OutputFormat.markdown:
        typer.echo(markdown, nl=False)
    elif not quiet:
        typer.echo(_rules_diff_text(summary))
    if fail_on_change and impact.changed.height:
        rules_text = ", ".join(
            f"{rule} {row['outcome_changes'] + row['message_only'] + row['version_changes']:,}"
            for rule, row in summary["per_rule"].items()
        )
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"--fail-on-change: {impact.changed.height:,} finding(s) change ({summary['outcome_changes']:,} outcome, "
            f"{summary['message_only_changes']:,} message only; {rules_text}): exit 1.",
            markup=False,
        )
        raise typer.Exit(1)


def _moves(moves: dict[str, int]) -> str:
    return ", ".join(f"{move.replace(' -> ', ' → ')} {n:,}" for move, n in moves.items())


def _period(row: dict[str, Any]) -> str:
    if not row["first_day"]:
        return ""
    return row["first_day"] if row["first_day"] == row["last_day"] else f"{row['first_day']} to {row['last_day']}"


def _rules_diff_text(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['records']}: {summary['findings_compared']:,} findings compared, "
        f"{summary['outcome_changes']:,} change outcome, {summary['message_only_changes']:,} change message only, "
        f"{summary['version_changes']:,} change rule version."
    ]
    for rule_id, row in summary["per_rule"].items():
        lines.append(
            f"  {rule_id} ({row['reason']}): {row['outcome_changes']:,} outcome"
            + (f" ({_moves(row['outcome_moves'])})" if row["outcome_moves"] else "")
            + f", {row['message_only']:,} message only, {row['version_changes']:,} version; records of {_period(row)}"
        )
    if not summary["per_rule"]:
        lines.append("  No finding changes.")
    return "\n".join(lines)


def rules_diff_markdown(impact: RulesImpact, summary: dict[str, Any]) -> str:
    """A summary for a pull-request comment: counts per rule, then the findings that change outcome."""

    def cell(text: Any) -> str:
        return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")

    lines = [
        "### Impact of the rule change on the findings",
        "",
        f"`{cell(summary['base_rules'])}` → `{cell(summary['new_rules'])}` on the record set "
        f"`{cell(summary['records'])}`: {summary['findings_compared']:,} findings compared.",
        "",
        f"**{summary['outcome_changes']:,} finding(s) change outcome**, {summary['message_only_changes']:,} change "
        f"message only, {summary['version_changes']:,} change rule version.",
        "",
    ]
    if summary["per_rule"]:
        lines += [
            "| Rule | Why | Outcome changes | Message only | Version | Records of |",
            "|---|---|---|---|---|---|",
        ]
        for rule_id, row in summary["per_rule"].items():
            moves = f" ({cell(_moves(row['outcome_moves']))})" if row["outcome_moves"] else ""
            lines.append(
                f"| `{cell(rule_id)}` | {cell(row['reason'])} | {row['outcome_changes']:,}{moves} | "
                f"{row['message_only']:,} | {row['version_changes']:,} | {cell(_period(row))} |"
            )
        lines.append("")
    outcome_rows = [c for c in summary["changes"] if c["outcome_before"] != c["outcome_after"]]
    if outcome_rows:
        lines += [
            f"<details><summary>Findings that change outcome ({len(outcome_rows):,})</summary>",
            "",
            "| Custody record | Rule | Occasion (UTC) | Before | After | Why |",
            "|---|---|---|---|---|---|",
        ]
        for change in outcome_rows:
            lines.append(
                f"| `{cell(change['custody_record_id'])}` | `{cell(change['rule_id'])}` | "
                f"{cell(change['trigger_at'] or '')} | {cell(change['outcome_before'])} | "
                f"{cell(change['outcome_after'])} | {cell(change['reason'])} |"
            )
        lines += ["", "</details>", ""]
    if not summary["per_rule"]:
        lines += ["No finding changes outcome, message or rule version.", ""]
    del impact
    return "\n".join(lines)


def _rules_diff_junit(summary: dict[str, Any]) -> str:
    cases = []
    for rule_id, row in summary["per_rule"].items():
        changed = row["outcome_changes"] + row["message_only"] + row["version_changes"]
        failure = None
        if changed:
            failure = (
                f"{row['outcome_changes']:,} outcome, {row['message_only']:,} message only, "
                f"{row['version_changes']:,} version change(s) ({row['reason']})"
            )
        details = f"{rule_id}: {_moves(row['outcome_moves'])}; records of {_period(row)}"
        cases.append(Case(name=rule_id, classname="custody.rules.diff", failure=failure, details=details))
    if not cases:
        cases.append(Case(name="no changes", classname="custody.rules.diff"))
    return junit_xml([Suite("custody rules diff", cases)], name="custody rules diff")
