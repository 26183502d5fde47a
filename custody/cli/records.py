"""`custody validate` and `custody schema`: what the checker reads, and what it could not use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody.cli.options import DateOrder, DateOrderOpt, EventsOpt, ProfileOpt, RecordsArg, records_input
from custody.contract import EVENT_DETAILS, EVENT_MEANINGS, TABLES, ColumnSpec
from custody.outputs import out_folder_errors, write_data_quality
from custody.read.loader import SUFFIXES, RecordSet, load_record_set
from custody.read.profile import load_with_profile
from custody.read.schema import contract_json_schema
from custody.read.timeparse import DATE_FORMS, DATETIME_FORMS


def validate(
    records: RecordsArg,
    events: EventsOpt = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write data_quality.csv into (created if needed)."),
    ] = Path("out"),
    date_order: DateOrderOpt = DateOrder.dmy,
    profile: ProfileOpt = None,
) -> None:
    """Read a record set and report what could not be used; writes data_quality.csv.

    Exits 0 whatever the data quality (2 if the input cannot be read at all).
    """
    source, loaded_profile = records_input(records, events, profile, date_order)
    record_set = (
        load_record_set(source, date_order=date_order.order)
        if loaded_profile is None
        else load_with_profile(loaded_profile, records)
    )
    with out_folder_errors(out):
        written = write_data_quality(record_set.data_quality, out)
    _print_validation(Console(highlight=False), record_set, written)


def _print_validation(console: Console, record_set: RecordSet, written: Path) -> None:
    summary = record_set.summary()
    counts = Table(show_header=True, box=None, title_justify="left", title="Record set")
    counts.add_column("table")
    counts.add_column("file")
    counts.add_column("rows read", justify="right")
    counts.add_column("used", justify="right")
    counts.add_column("rejected", justify="right")
    for table, path in record_set.files.items():
        rejected = record_set.rows_rejected[table]
        counts.add_row(
            table,
            escape(str(path)),
            f"{record_set.rows_read[table]:,}",
            f"{record_set.rows_used[table]:,}",
            f"[red]{rejected:,}[/red]" if rejected else "0",
        )
    console.print(counts)
    console.print(
        f"{summary['records']:,} custody records, {summary['events']:,} events, {summary['children']:,} children."
    )
    issues: dict[str, int] = summary["issues"]
    if issues:
        listing = Table(title="Data-quality issues", title_justify="left", box=None)
        listing.add_column("where: issue")
        listing.add_column("rows", justify="right")
        for issue, count in issues.items():
            listing.add_row(escape(issue), f"{count:,}")
        console.print(listing)
    else:
        console.print("No data-quality issues.")
    console.print(f"Wrote {escape(str(written))} ({record_set.data_quality.height:,} rows).")


def _type_text(spec: ColumnSpec) -> str:
    if spec.kind == "enum":
        return "enum: " + ", ".join(spec.enum_values) if len(spec.enum_values) <= 8 else "enum (see vocabulary)"
    return spec.kind


def schema(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON Schema of both tables and the event vocabulary instead."),
    ] = False,
) -> None:
    """Show the input contract: the two tables, their columns, and the event vocabulary."""
    if as_json:
        typer.echo(json.dumps(contract_json_schema(), indent=2))
        return
    console = Console(highlight=False)
    for table_name, specs in TABLES.items():
        table = Table(title=f"{table_name}.<ext>", title_justify="left")
        table.add_column("column")
        table.add_column("type", overflow="fold")
        table.add_column("required")
        table.add_column("meaning", overflow="fold")
        for spec in specs:
            required = "yes" if spec.required else ("for mha_*" if spec.name == "place_of_safety" else "")
            table.add_row(spec.name, escape(_type_text(spec)), required, escape(spec.description))
        console.print(table)
    vocabulary = Table(title="Event vocabulary (event_type -> allowed detail codes)", title_justify="left")
    vocabulary.add_column("event_type")
    vocabulary.add_column("detail codes", overflow="fold")
    vocabulary.add_column("meaning", overflow="fold")
    for event_type, codes in EVENT_DETAILS.items():
        vocabulary.add_row(event_type, ", ".join(codes), escape(EVENT_MEANINGS.get(event_type, "")))
    console.print(vocabulary)
    console.print(
        f"Files: {', '.join(sorted(s.lstrip('.') for s in SUFFIXES))}; column names are case-insensitive and "
        "extra columns are kept.\n"
        f"Dates: {escape(DATE_FORMS)}. Date-times: {escape(DATETIME_FORMS)}; without an offset a time is "
        "UK local time.\nBooleans: true/false, yes/no, y/n, 1/0. Enum values are case-insensitive."
    )
