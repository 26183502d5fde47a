"""Arguments and options shared by several commands, declared once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from custody.errors import UsageError
from custody.read.profile import LoadedProfile, load_profile
from custody.read.timeparse import DateOrder as SlashOrder

RecordsArg = Annotated[
    Path,
    typer.Argument(
        help="A folder holding detentions.<ext> and events.<ext> (csv, parquet, ndjson, jsonl, xlsx), "
        "or the detentions file (then name the events file with --events).",
        show_default=False,
    ),
]


EventsOpt = Annotated[
    Path | None,
    typer.Option("--events", help="The events file, when RECORDS names the detentions file.", show_default=False),
]


def record_source(records: Path, events: Path | None) -> Path | tuple[Path, Path]:
    """What `load_record_set` takes, from RECORDS and --events."""
    if events is not None:
        if records.is_dir():
            raise UsageError(
                f"--events names the events file, so RECORDS must be the detentions file, not the folder {records}."
            )
        return (records, events)
    if records.is_file():
        raise UsageError(
            f"{records} is a file: name the events file too with --events, or give the folder holding both tables."
        )
    return records


RulesOpt = Annotated[
    Path | None,
    typer.Option("--rules", help="Folder of rule files to use instead of the shipped rules/.", show_default=False),
]


class DateOrder(StrEnum):
    dmy = "dmy"
    mdy = "mdy"

    @property
    def order(self) -> SlashOrder:
        return "mdy" if self is DateOrder.mdy else "dmy"


DateOrderOpt = Annotated[
    DateOrder,
    typer.Option(
        "--date-order",
        help="How slash dates are written: dmy (DD/MM/YYYY, the contract's) or mdy (MM/DD/YYYY, as US-locale "
        "spreadsheets write them). A column that proves the other order stops the run; dates are never guessed.",
    ),
]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"
    markdown = "markdown"


def output_format_option(*allowed: OutputFormat) -> object:
    """`--output-format`, offering the formats a command has (text, for people, by default)."""
    names = ", ".join(f.value for f in allowed)
    return typer.Option(
        "--output-format",
        help=f"What to print on standard output: {names} (text for people; the others for CI and scripts).",
        case_sensitive=False,
    )


def require_format(chosen: OutputFormat, *allowed: OutputFormat) -> None:
    if chosen not in allowed:
        raise UsageError(
            f"--output-format {chosen.value} is not offered here: use one of {', '.join(f.value for f in allowed)}."
        )


ProfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        help="An input profile (YAML) for a force's own export layout: RECORDS is then the export (its folder, "
        "or its one file). See `custody profile scan` to draft one.",
        show_default=False,
    ),
]


def records_input(
    records: Path, events: Path | None, profile: Path | None, date_order: DateOrder
) -> tuple[Path | tuple[Path, Path], LoadedProfile | None]:
    """(what the loader reads, the profile if one was given) from RECORDS, --events, --profile."""
    if profile is None:
        return record_source(records, events), None
    if events is not None:
        raise UsageError("--events does not go with --profile: the profile names the export's files.")
    if date_order is DateOrder.mdy:
        raise UsageError("--date-order does not go with --profile: declare date_order in the profile instead.")
    return records, load_profile(profile)
