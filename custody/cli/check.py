"""`custody check`, `custody explain` and `custody generate` (a thin layer over the library)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from custody.cli.options import DateOrder, DateOrderOpt, EventsOpt, RecordsArg, RulesOpt, record_source
from custody.explain import explain_record
from custody.outputs import (
    out_folder,
    out_folder_errors,
    parse_formats,
    private_workspace,
    remove_leftovers,
    write_outputs,
)
from custody.pipeline import prepare_rules, run_check
from custody.pseudonymise import check_key
from custody.read.batches import BATCH_RECORDS
from custody.read.loader import load_record_set
from custody.render.terminal import print_summary, progress

KEY_ENV = "CUSTODY_PSEUDONYMISE_KEY"


class FailOn(StrEnum):
    breach = "breach"
    cannot_assess = "cannot_assess"


FAIL_ON_OUTCOMES = {FailOn.breach: {"breach"}, FailOn.cannot_assess: {"breach", "cannot_assess"}}


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
    date_order: DateOrderOpt = DateOrder.dmy,
) -> None:
    """Check every custody record against every rule and write the findings.

    Exit codes: 0 the run completed (whatever it found); 1 findings at or above --fail-on;
    2 a usage or input error.
    """
    chosen = parse_formats(formats)
    if pseudonymise_key is not None:
        check_key(pseudonymise_key)
    source = record_source(records, events)
    console = Console(stderr=True, quiet=quiet)
    out_folder(out)
    remove_leftovers(out)
    # The findings are spilled to a private folder outside --out while the outputs are
    # written (millions of findings are never held in memory at once), then removed, on
    # every way out: an error, Ctrl-C or SIGTERM.
    with _terminate_as_exit(), private_workspace() as work:
        with progress(console) as show, out_folder_errors(out):
            result = run_check(
                source,
                rules=prepare_rules(rules),
                include_notes=include_notes,
                progress=show,
                spill_dir=work,
                batch_records=batch_records,
                date_order=date_order.order,
            )
            show(f"Writing the outputs of {result.records.height:,} records")
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


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (a scheduler ending the job, `kill`) raises SystemExit(143) while the block
    runs, as Ctrl-C raises KeyboardInterrupt, so that every `finally` runs and the private
    temporary folder is removed. Outside the main thread signals cannot be handled: nothing
    is changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def explain(
    custody_record_id: Annotated[str, typer.Argument(help="The custody record to explain.")],
    records: RecordsArg,
    events: EventsOpt = None,
    rules: RulesOpt = None,
    date_order: DateOrderOpt = DateOrder.dmy,
) -> None:
    """Show one record's timeline (UK and UTC), the facts derived and why each rule decided as it did."""
    loaded = load_record_set(record_source(records, events), date_order=date_order.order)
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
