"""`custody check`, `custody explain` and `custody generate` (a thin layer over the library)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import polars as pl
import typer
from rich.console import Console

from custody.batches import BATCH_RECORDS
from custody.check import PreparedRules, findings_for, prepare_rules, run_check
from custody.contract import UK_TZ
from custody.errors import InputError, UsageError
from custody.facts import fact_specs
from custody.loader import RecordSet, load_record_set
from custody.outputs import parse_formats, write_outputs
from custody.terminal import print_summary

KEY_ENV = "CUSTODY_PSEUDONYMISE_KEY"
UK = ZoneInfo(UK_TZ)


class FailOn(StrEnum):
    breach = "breach"
    cannot_assess = "cannot_assess"


FAIL_ON_OUTCOMES = {FailOn.breach: {"breach"}, FailOn.cannot_assess: {"breach", "cannot_assess"}}

RecordsArg = Annotated[
    Path,
    typer.Argument(
        help="A folder holding detentions.<ext> and events.<ext> (csv, parquet, ndjson, jsonl, xlsx), "
        "or the detentions file (then give --events).",
        show_default=False,
    ),
]
EventsOpt = Annotated[
    Path | None, typer.Option("--events", help="The events file, when RECORDS names the detentions file.")
]
RulesOpt = Annotated[
    Path | None, typer.Option("--rules", help="Folder of rule files to use instead of the shipped rules/.")
]


def _source(records: Path, events: Path | None) -> Path | tuple[Path, Path]:
    if events is not None:
        return (records, events)
    if records.is_file():
        raise UsageError(f"{records} is a file: give the events file too with --events, or pass the folder.")
    return records


def check(
    records: RecordsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the outputs (created if needed).")],
    events: EventsOpt = None,
    rules: RulesOpt = None,
    formats: Annotated[
        str,
        typer.Option(
            "--formats",
            help="Outputs to write: all, or a comma list of parquet, csv, children, exceptions, xlsx, "
            "data_quality, summary, html (summary.json is always written).",
        ),
    ] = "all",
    fail_on: Annotated[
        FailOn | None,
        typer.Option("--fail-on", help="Exit 1 if any finding is at or above this outcome (for CI)."),
    ] = None,
    pseudonymise_key: Annotated[
        str | None,
        typer.Option(
            "--pseudonymise-key",
            envvar=KEY_ENV,
            help=f"Replace person and record ids with keyed HMAC digests (or set {KEY_ENV}).",
            show_envvar=True,
        ),
    ] = None,
    include_notes: Annotated[
        bool, typer.Option("--include-notes", help="Include free-text notes in the evidence (personal data).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    batch_records: Annotated[
        int,
        typer.Option(
            "--batch-records",
            min=1,
            help="Check a Parquet record set with more records than this in batches of children of about "
            "this many records (lower it to use less memory; the findings are the same).",
        ),
    ] = BATCH_RECORDS,
) -> None:
    """Check every custody record against every rule and write the findings.

    Exit codes: 0 the run completed (whatever it found); 1 findings at or above --fail-on;
    2 a usage or input error.
    """
    chosen = parse_formats(formats)
    source = _source(records, events)
    console = Console(stderr=True, quiet=quiet)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder for the outputs.")
    out.mkdir(parents=True, exist_ok=True)
    # The findings are spilled to a hidden folder inside --out while the outputs are
    # written (millions of findings are never held in memory at once), then removed.
    with tempfile.TemporaryDirectory(prefix=".custody-spill-", dir=out) as spill:
        with console.status("Checking…", spinner="dots") as status, _out_folder_errors(out):
            result = run_check(
                source,
                rules=prepare_rules(rules),
                include_notes=include_notes,
                progress=lambda stage: status.update(f"{stage}…"),
                spill_dir=Path(spill),
                batch_records=batch_records,
            )
            status.update("Writing the outputs…")
            written = write_outputs(result, out, formats=chosen, pseudonymise_key=pseudonymise_key)
        if not quiet:
            print_summary(Console(), result, written)
        failing = 0
        if fail_on is not None:
            at_or_above = pl.col("outcome").cast(pl.String).is_in(sorted(FAIL_ON_OUTCOMES[fail_on]))
            failing = result.findings.lazy().filter(at_or_above).select(pl.len()).collect().item()
    if failing:
        Console(stderr=True).print(f"{failing} finding(s) at or above --fail-on {fail_on}: exit 1.", highlight=False)
        raise typer.Exit(1)


@contextlib.contextmanager
def _out_folder_errors(out: Path) -> Iterator[None]:
    """A full or read-only --out folder is the user's to fix: one sentence, not an internal error."""
    try:
        yield
    except OSError as error:
        named = Path(str(error.filename)).resolve() if error.filename else None
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = (
                "free some space there or give another --out folder (a large check needs room for its findings "
                "and, above --batch-records records, a copy of the records while it runs)"
            )
        elif error.errno in (errno.EROFS, errno.EACCES) and named is not None and named.is_relative_to(out.resolve()):
            fix = "give an --out folder you can write to"
        else:
            raise
        raise InputError(f"could not write in {out} ({error.strerror or error}): {fix}.") from error


def _local(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M %Z}"


def explain_record(record_id: str, records: RecordSet, rules: PreparedRules) -> str:
    """The record's timeline, the facts derived and each rule's outcome with its reason and law."""
    detention = records.detentions.filter(pl.col("custody_record_id") == record_id)
    if detention.is_empty():
        rejected = records.data_quality.filter(pl.col("custody_record_id") == record_id)
        if rejected.height:
            reasons = "; ".join(sorted(set(rejected["reason"].to_list())))
            raise UsageError(f"Custody record {record_id} was not loaded ({reasons}): see data_quality.csv.")
        raise UsageError(f"There is no custody record {record_id} in these records: check the id.")
    events = records.events.filter(pl.col("custody_record_id") == record_id).sort("event_time", "_row")
    quality = records.data_quality.filter(pl.col("custody_record_id") == record_id)
    subset = dataclasses.replace(records, detentions=detention, events=events, data_quality=quality)
    facts, findings = findings_for(subset, rules)
    row = detention.row(0, named=True)
    lines = [f"Custody record {record_id} (child {row['person_id']})", ""]
    for name in ("date_of_birth", "appears_under_18", "detention_power", "place_of_safety", "force", "custody_suite"):
        if row.get(name) is not None:
            lines.append(f"  {name}: {row[name]}")
    lines += ["", "Timeline (UK time | UTC)"]
    arrival = row["arrival_time"]
    timeline = [(arrival, "arrival", "", "")]
    timeline += [(e["event_time"], e["event_type"], e["detail"] or "", "") for e in events.iter_rows(named=True)]
    for instant, kind, detail, _ in sorted(timeline, key=lambda t: (t[0] is None, t[0] or arrival)):
        utc = f"{instant:%Y-%m-%d %H:%M}Z" if instant else "-"
        local = _local(instant.astimezone(UK) if instant else None)
        lines.append(f"  {local:<22} | {utc:<18} {kind} {detail}".rstrip())
    if quality.height:
        lines += ["", "Data-quality problems on this record"]
        for q in quality.iter_rows(named=True):
            lines.append(f"  {q['file']} row {q['row']} {q['column'] or ''}: {q['reason']} ({q['action']})")
    specs = fact_specs()
    lines += ["", "Facts derived (recorded values only)"]
    fact_row = facts.row(0, named=True)
    for name, value in fact_row.items():
        spec = specs.get(name)
        if spec is None or spec.sensitive or value in (None, 0, False) or name in ("custody_record_id", "person_id"):
            continue
        shown = _local(value.astimezone(UK)) if spec.kind == "instant" else value
        lines.append(f"  {name}: {shown}")
    lines += ["", "Rules"]
    by_rule = {f["rule_id"]: f for f in findings.iter_rows(named=True)}
    for compiled in rules.compiled:
        finding = by_rule.get(compiled.rule_id)
        if finding is None:
            lines.append(f"  {compiled.rule_id}: does not apply to this record")
            continue
        lines.append(f"  {compiled.rule_id}: {finding['outcome'].upper()} ({finding['basis']}, {finding['severity']})")
        lines.append(f"      {finding['message']}")
        lines.append(f"      law: {finding['citation']} (version of {finding['rule_version']})")
    return "\n".join(lines)


def explain(
    custody_record_id: Annotated[str, typer.Argument(help="The custody record to explain.")],
    records: RecordsArg,
    events: EventsOpt = None,
    rules: RulesOpt = None,
) -> None:
    """Show one record's timeline (UK and UTC), the facts derived and why each rule decided as it did."""
    loaded = load_record_set(_source(records, events))
    typer.echo(explain_record(custody_record_id, loaded, prepare_rules(rules)))


class GenerateFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write detentions.<fmt> and events.<fmt> into.")],
    records: Annotated[int, typer.Option("--records", "-n", min=0, help="How many custody records.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives identical files.")] = 0,
    fmt: Annotated[GenerateFormat, typer.Option("--format", help="File format.")] = GenerateFormat.parquet,
) -> None:
    """Write a realistic synthetic record set of children's custody records (for benchmarks and demos)."""
    from custody.generate import generate_record_set

    counts = generate_record_set(out_dir, records, seed=seed, fmt=fmt.value)
    typer.echo(
        f"Wrote {counts['records']:,} records, {counts['events']:,} events of {counts['children']:,} children "
        f"to {out_dir}"
    )


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("explain")(explain)
    app.command("generate")(generate)
