"""`custody check`, `custody explain` and `custody generate` (a thin layer over the library)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from custody.cli.gating import check_report, report_gates
from custody.cli.options import (
    DateOrder,
    DateOrderOpt,
    EventsOpt,
    OutputFormat,
    ProfileOpt,
    RecordsArg,
    RulesOpt,
    output_format_option,
    records_input,
    require_format,
)
from custody.explain import explain_record
from custody.gates import evaluate_gates, parse_gates
from custody.outputs import (
    out_folder,
    out_folder_errors,
    parse_formats,
    private_workspace,
    remove_leftovers,
    write_outputs,
)
from custody.pipeline import prepare_rules, run_check
from custody.pseudonymise import check_key, refuse_notes, refuse_rules_naming_ids
from custody.read.batches import BATCH_RECORDS
from custody.read.loader import load_record_set
from custody.read.profile import load_with_profile
from custody.render.terminal import print_summary, progress

KEY_ENV = "CUSTODY_PSEUDONYMISE_KEY"


CHECK_FORMATS = (OutputFormat.text, OutputFormat.json, OutputFormat.junit)


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
        list[str] | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 if a gate trips (for CI); repeat it or give a comma list. A gate is an outcome "
            "(breach, cannot_assess: at or above), a severity (high, medium, low: at or above), a basis "
            "(statute, code, guidance) or a rule id, several joined by + (all must hold; breaches unless an "
            "outcome is named), or data_quality (the inputs lost rows). E.g. breach, high+statute, "
            "cannot_assess+S38-TRANSFER, data_quality.",
        ),
    ] = None,
    output_format: Annotated[OutputFormat, output_format_option(*CHECK_FORMATS)] = OutputFormat.text,
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
    profile: ProfileOpt = None,
) -> None:
    """Check every custody record against every rule and write the findings.

    Exit codes: 0 the run completed (whatever it found); 1 a --fail-on gate tripped (each
    tripped gate says what tripped it on stderr, even with -q); 2 a usage or input error.
    With --output-format json or junit, standard output holds the run's summary and gates
    as JSON, or one JUnit test case per rule (failing where a gate tripped on it; with no
    --fail-on, where it has breaches).
    """
    chosen = parse_formats(formats)
    require_format(output_format, *CHECK_FORMATS)
    prepared = prepare_rules(rules)
    gates = parse_gates(fail_on or [], [rule.rule_id for rule in prepared.compiled])
    if pseudonymise_key is not None:
        check_key(pseudonymise_key)
        refuse_notes(include_notes)
        refuse_rules_naming_ids(prepared.compiled)
    source, loaded_profile = records_input(records, events, profile, date_order)
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
                rules=prepared,
                include_notes=include_notes,
                progress=show,
                spill_dir=work,
                batch_records=batch_records,
                date_order=date_order.order,
                profile=loaded_profile,
                pseudonymise_key=pseudonymise_key,
            )
            show(f"Writing the outputs of {result.records.height:,} records")
            written = write_outputs(result, out, formats=chosen, pseudonymise_key=pseudonymise_key)
        if not quiet and output_format is OutputFormat.text:
            print_summary(Console(), result, written)
        verdicts = evaluate_gates(result, gates)
        if output_format is not OutputFormat.text:
            summary = json.loads(written[-1].read_text(encoding="utf-8"))  # summary.json is written last
            typer.echo(check_report(output_format, result, verdicts, summary), nl=False)
    report_gates(verdicts, quiet=quiet)


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
    profile: ProfileOpt = None,
) -> None:
    """Show one record's timeline (UK and UTC), the facts derived and why each rule decided as it did."""
    source, loaded_profile = records_input(records, events, profile, date_order)
    loaded = (
        load_record_set(source, date_order=date_order.order)
        if loaded_profile is None
        else load_with_profile(loaded_profile, records)
    )
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
