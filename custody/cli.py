"""The `custody` command: a thin layer over the library.

Errors for people: an `InputError` (or `UsageError`) prints one sentence to stderr,
"error: ...", and exits with code 2; anything unexpected prints one line, "internal
error: ...", and also exits 2. `--verbose` shows the full traceback instead.

Commands from other modules are registered at the end of this file (see
`_register_commands`): a module there defines `register(app)`, or module-level
`typer.Typer` sub-apps that are added as command groups.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.json_schema import models_json_schema
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from custody import __version__
from custody.contract import (
    CONTRACT_VERSION,
    EVENT_DETAILS,
    EVENT_MEANINGS,
    TABLES,
    ColumnSpec,
    Detention,
    Event,
)
from custody.errors import InputError, UsageError
from custody.loader import SUFFIXES, RecordSet, load_record_set
from custody.timeparse import DATE_FORMS, DATETIME_FORMS

EXIT_INPUT_ERROR = 2


class _CustodyGroup(TyperGroup):
    """Turns errors into one line on stderr and exit code 2 (unless --verbose)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own flow: exits, usage errors, --help
        except Exception as error:
            if ctx.params.get("verbose"):
                raise
            typer.echo(_one_line(error), err=True)
            raise typer.Exit(EXIT_INPUT_ERROR) from None


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, InputError):
        return f"error: {text}"
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return f"internal error: {detail}; re-run with --verbose and report it"


app = typer.Typer(
    name="custody",
    cls=_CustodyGroup,
    help="Check children's police custody records (England & Wales) against PACE, Code C and the Mental Health Act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"custody {__version__} (data contract v{CONTRACT_VERSION})")
        raise typer.Exit()


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the full traceback when something goes wrong.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Check children's police custody records (England & Wales) against the law.

    Start with `custody schema` (what the input must look like) and
    `custody validate RECORDS` (what the checker can and cannot use).
    """


# ---------------------------------------------------------------- validate

RecordsArgument = Annotated[
    Path,
    typer.Argument(
        help="A folder holding detentions.<ext> and events.<ext> (csv, parquet, ndjson, jsonl, xlsx), "
        "or the detentions file (then name the events file with --events).",
        show_default=False,
    ),
]
EventsOption = Annotated[
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


@app.command()
def validate(
    records: RecordsArgument,
    events: EventsOption = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder to write data_quality.csv into (created if needed)."),
    ] = Path("out"),
) -> None:
    """Read a record set and report what could not be used; writes data_quality.csv.

    Exits 0 whatever the data quality (2 if the input cannot be read at all).
    """
    record_set = load_record_set(record_source(records, events))
    written = _write_data_quality(record_set, out)
    _print_validation(Console(highlight=False), record_set, written)


def _write_data_quality(record_set: RecordSet, out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder.")
    path = out / "data_quality.csv"
    try:
        out.mkdir(parents=True, exist_ok=True)
        record_set.data_quality.write_csv(path)
    except OSError as error:
        raise InputError(f"could not write {path} ({error.strerror or error}): check the --out folder.") from error
    return path


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


# ---------------------------------------------------------------- schema


def contract_json_schema() -> dict[str, Any]:
    """JSON Schema of a record set (both tables, from the pydantic models) plus the event vocabulary."""
    _, schema = models_json_schema([(Detention, "validation"), (Event, "validation")])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "custody record set",
        "description": (
            "Two tables, detentions and events, as files named detentions.<ext> and events.<ext> "
            f"({', '.join(sorted(s.lstrip('.') for s in SUFFIXES))}). Column names are case-insensitive. "
            f"Dates: {DATE_FORMS}. Date-times: {DATETIME_FORMS}; without an offset, UK local time."
        ),
        "contract_version": CONTRACT_VERSION,
        "type": "object",
        "properties": {
            "detentions": {"type": "array", "items": {"$ref": "#/$defs/Detention"}},
            "events": {"type": "array", "items": {"$ref": "#/$defs/Event"}},
        },
        "required": ["detentions", "events"],
        "$defs": schema["$defs"],
        "event_vocabulary": {
            event_type: {"meaning": EVENT_MEANINGS.get(event_type, ""), "detail": list(codes)}
            for event_type, codes in EVENT_DETAILS.items()
        },
    }


def _type_text(spec: ColumnSpec) -> str:
    if spec.kind == "enum":
        return "enum: " + ", ".join(spec.enum_values) if len(spec.enum_values) <= 8 else "enum (see vocabulary)"
    return spec.kind


@app.command()
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


def main() -> None:
    """Entry point of the `custody` console script."""
    app()


# ---------------------------------------------------------------- other commands
# Other modules add their commands here without editing this file: each module listed
# defines `register(app)`, or module-level `typer.Typer` sub-apps (added as groups).

_COMMAND_MODULES = ("custody.cli_rules", "custody.cli_check")


def _register_commands() -> None:
    for module_name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue  # not written yet
            raise
        register = getattr(module, "register", None)
        if callable(register):
            register(app)
            continue
        for value in vars(module).values():
            if isinstance(value, typer.Typer) and value is not app:
                app.add_typer(value)


_register_commands()
