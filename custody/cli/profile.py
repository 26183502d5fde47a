"""`custody profile scan` and `custody profile test`: draft an input profile for a force's own
export layout, and see the first records as the contract sees them through it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody.contract import UK_TZ
from custody.errors import UsageError
from custody.read.loader import RecordSet
from custody.read.profile import load_profile, load_with_profile
from custody.read.scan import MIN_COUNT, ScannedFile, draft_profile, scan_export

UK = ZoneInfo(UK_TZ)

profile_app = typer.Typer(
    name="profile",
    help="Input profiles for a force's own export layout: draft one from an export (scan), try one (test).",
    no_args_is_help=True,
)


@profile_app.command("scan")
def scan(
    export: Annotated[Path, typer.Argument(help="The export: its folder, or one of its files.", show_default=False)],
    draft: Annotated[
        Path, typer.Option("--draft", help="Where to write the draft profile (never overwritten).")
    ] = Path("profile.draft.yaml"),
    min_count: Annotated[
        int,
        typer.Option("--min-count", min=2, help="Show a value only if at least this many rows hold it."),
    ] = MIN_COUNT,
) -> None:
    """Describe each column of an export (type guess, share missing, most frequent codes) and
    write a draft profile to edit.

    Only codes and yes/no values held by at least --min-count rows are shown; ids, dates,
    times, numbers and free text never are.
    """
    if draft.exists():
        raise UsageError(f"{draft} already exists: give another --draft, or move it away first.")
    scanned = scan_export(export, min_count)
    console = Console(highlight=False)
    for file in scanned:
        _print_file(console, file, min_count)
    try:
        draft.write_text(draft_profile(scanned), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{draft} could not be written ({error.strerror}): give another --draft.") from None
    console.print(
        f"Wrote the draft profile {escape(str(draft))}: check it, fix each FIXME, then "
        f"`custody profile test {escape(str(draft))} {escape(str(export))}`."
    )


def _print_file(console: Console, file: ScannedFile, min_count: int) -> None:
    table = Table(title=f"{file.path.name}: {file.rows:,} rows", title_justify="left", box=None)
    table.add_column("column")
    table.add_column("looks like")
    table.add_column("missing", justify="right")
    table.add_column(f"most frequent values (at least {min_count} rows each)", overflow="fold")
    for column in file.columns:
        shown = ", ".join(f"{value} ({count:,})" for value, count in column.top)
        if column.codes and len(column.top) < len(column.codes):
            shown += (", " if shown else "") + f"{len(column.codes) - len(column.top)} rarer"
        table.add_row(escape(column.name), column.guess, f"{column.null_share:.0%}", escape(shown))
    console.print(table)


@profile_app.command("test")
def try_profile(
    profile: Annotated[Path, typer.Argument(help="The input profile (YAML).", show_default=False)],
    export: Annotated[Path, typer.Argument(help="The export: its folder, or its one file.", show_default=False)],
    records: Annotated[int, typer.Option("--records", "-n", min=1, help="How many records to show.")] = 3,
) -> None:
    """Read an export through a profile and show its first records as the contract sees them,
    and what could not be used.

    Shown: the ids, codes and times the findings themselves show, and age on arrival instead of
    the date of birth; never notes, sex or ethnicity.
    """
    loaded = load_profile(profile)
    record_set = load_with_profile(loaded, export)
    console = Console(highlight=False, soft_wrap=True)
    summary = record_set.summary()
    console.print(
        f"{escape(loaded.profile.name)} (version {escape(loaded.profile.version)}): "
        f"{summary['records']:,} custody records, {summary['events']:,} events, {summary['children']:,} "
        f"children; {record_set.data_quality.height:,} data-quality rows."
    )
    for detention in record_set.detentions.head(records).iter_rows(named=True):
        _print_record(console, detention, record_set)
    _print_quality(console, record_set)


def _age(date_of_birth: dt.date | None, arrival: dt.datetime | None) -> str:
    if date_of_birth is None or arrival is None:
        return "unknown"
    on = arrival.astimezone(UK).date()
    years = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    return str(years)


def _when(instant: dt.datetime | None) -> str:
    if instant is None:
        return "-"
    return f"{instant.astimezone(UK):%Y-%m-%d %H:%M %Z} | {instant:%Y-%m-%d %H:%M}Z"


def _print_record(console: Console, detention: dict[str, object], record_set: RecordSet) -> None:
    arrival = detention["arrival_time"]
    assert arrival is None or isinstance(arrival, dt.datetime)
    born = detention["date_of_birth"]
    assert born is None or isinstance(born, dt.date)
    facts = [
        f"person {detention['person_id']}",
        f"age on arrival {_age(born, arrival)}",
        *(
            f"{name} {str(detention[name]).lower()}"
            for name in ("appears_under_18", "looked_after", "detention_power", "place_of_safety", "offence_category")
            if detention[name] is not None
        ),
    ]
    console.print(f"\n[bold]{escape(str(detention['custody_record_id']))}[/bold]: {escape(', '.join(facts))}")
    console.print(f"  {_when(arrival):<42} arrival")
    events = record_set.events.filter(pl.col("custody_record_id") == detention["custody_record_id"]).sort(
        "event_time", maintain_order=True
    )
    for event in events.iter_rows(named=True):
        detail = f" {event['detail']}" if event["detail"] else ""
        note = " (note)" if event["note"] else ""
        console.print(f"  {_when(event['event_time']):<42} {event['event_type']}{detail}{note}")


def _print_quality(console: Console, record_set: RecordSet) -> None:
    quality = record_set.data_quality
    if quality.is_empty():
        console.print("\nNo data-quality problems.")
        return
    console.print(f"\nData quality (first {min(quality.height, 10)} of {quality.height:,}; values not shown):")
    for row in quality.head(10).iter_rows(named=True):
        console.print(
            f"  {escape(row['file'])} row {row['row']} {escape(row['column'] or '')}: {escape(row['reason'])} "
            f"({row['action']})"
        )
