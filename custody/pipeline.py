"""The check pipeline: records -> facts -> findings -> one CheckResult.

Data flows one way: the loader reads and validates the tables, the facts layer
builds one row per custody record, every rule is evaluated in one lazy pass,
and every output renders the resulting findings table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custody.contract import FINDINGS_SCHEMA
from custody.engine.evaluate import CompiledRule, compile_rule_set, evaluate, evaluate_segments
from custody.engine.rulefile import RuleSet, default_rules_dir, load_rule_set
from custody.facts import HEADLINE_FACTS, build_facts, fact_specs, headline_figures
from custody.findings import CheckResult, RuleInfo
from custody.parquet_concat import ParquetConcatError, concat_parquet
from custody.read.batches import BATCH_RECORDS, Batch, plan_batches
from custody.read.loader import RecordSet, find_tables, load_record_set, sort_data_quality
from custody.render.parquet import FINDINGS_PARQUET_LEVEL
from custody.version import __version__

Progress = Callable[[str], None]


@dataclass
class PreparedRules:
    rule_set: RuleSet
    compiled: list[CompiledRule]

    @property
    def info(self) -> list[RuleInfo]:
        return [
            RuleInfo(
                rule_id=c.rule_id,
                title=c.source.rule.title,
                basis=c.source.rule.basis.value,
                severity=c.source.rule.severity.value,
                citation="; ".join(c.source.rule.citations),
                versions=tuple(v.version.effective_from.isoformat() for v in c.versions),
            )
            for c in self.compiled
        ]


def prepare_rules(rules_dir: Path | None = None) -> PreparedRules:
    rule_set = load_rule_set(rules_dir or default_rules_dir())
    return PreparedRules(rule_set, compile_rule_set(rule_set))


def load_rules(rules_dir: Path | str | None = None) -> PreparedRules:
    """The rules of a folder (default: the shipped rules/), loaded, validated and compiled."""
    return prepare_rules(Path(rules_dir) if rules_dir is not None else None)


def check(
    source: Path | str | tuple[Path | str, Path | str],
    *,
    rules: PreparedRules | None = None,
    include_notes: bool = False,
) -> CheckResult:
    """Check a record set in memory: the library's entry point (the CLI's `check` spills to disk)."""
    if isinstance(source, tuple):
        return run_check((Path(source[0]), Path(source[1])), rules=rules, include_notes=include_notes)
    return run_check(Path(source), rules=rules, include_notes=include_notes)


def needed_facts(rules: Iterable[CompiledRule]) -> list[str]:
    """The facts (and their data-quality flags) the rules and headline figures read: only these are computed."""
    specs = fact_specs()
    names: set[str] = set(HEADLINE_FACTS)
    for rule in rules:
        names |= rule.trigger.facts | set(rule.evidence)
        for version in rule.versions:
            names |= version.facts
    flags = set().union(*(specs[n].lineage for n in names))
    ordered = [n for n in specs if n in names]
    return ordered + sorted(flags)


def inputs_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def facts_for(records: RecordSet, rules: PreparedRules) -> pl.DataFrame:
    """The facts the rules read, one row per loaded custody record."""
    return build_facts(
        records.detentions,
        records.events,
        records.data_quality,
        rules.rule_set.settings,
        columns=needed_facts(rules.compiled),
    ).collect()


def findings_for(
    records: RecordSet, rules: PreparedRules, *, include_notes: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(facts, findings) for a loaded record set."""
    facts = facts_for(records, rules)
    return facts, evaluate(facts.lazy(), rules.compiled, include_notes=include_notes).collect()


def run_check(
    source: Path | tuple[Path, Path],
    *,
    rules: PreparedRules | None = None,
    include_notes: bool = False,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
    batch_records: int = BATCH_RECORDS,
) -> CheckResult:
    """Load, evaluate every rule over every record, and return the findings and what renders them.

    With `spill_dir`, the findings are written there as Parquet while they are computed and the
    result holds a lazy scan of them (the folder must outlive the result's use). A Parquet
    record set of more than `batch_records` records is then checked in batches of children
    (`custody.read.batches`), each loaded, validated and evaluated on its own; the findings are
    the same, in the same order, as from one pass.
    """
    started = time.perf_counter()
    say = progress or (lambda _stage: None)
    say("Reading the rules")
    rules = rules or prepare_rules()
    files = find_tables(source)
    batches = None
    if spill_dir is not None:  # batches spill their findings: only a spilling check can use them
        say("Sizing up the records")
        batches = plan_batches(files, spill_dir / "batches", batch_records)
    if spill_dir is not None and batches is not None:
        run = _check_batches(source, batches, rules, include_notes, say, spill_dir)
    else:
        run = _check_whole(source, rules, include_notes, say, spill_dir)

    say("Summarising")
    findings, kept = run.findings, run.kept
    applied = _count_per_record(findings.lazy()) if run.applied is None else run.applied
    record_table = (
        kept.select("person_id", "custody_record_id", pl.col("arrival_at").alias("arrival_time"))
        .join(applied, on="custody_record_id", how="left")
        .with_columns(pl.col("rules_applied").fill_null(0).cast(pl.Int64))
        .sort("person_id", "arrival_time", "custody_record_id", nulls_last=True)
    )
    headline = headline_figures(kept.lazy())
    rows_read, rows_used = run.rows_read, run.rows_used
    meta = {
        "tool_version": __version__,
        "rules_digest": rules.rule_set.digest,
        "rules_dir": str(rules.rule_set.directory),
        "inputs_digest": inputs_digest(files.values()),
        "inputs": {table: str(path) for table, path in files.items()},
        "as_of": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "run_seconds": round(time.perf_counter() - started, 3),
        "include_notes": include_notes,
        "batches": 1 if batches is None else len(batches),
        "counts": {
            "detention_rows": rows_read["detentions"],
            "event_rows": rows_read["events"],
            "records_loaded": rows_used["detentions"],
            "events_loaded": rows_used["events"],
            "rows_rejected": sum(rows_read.values()) - sum(rows_used.values()),
            "persons": kept["person_id"].n_unique(),
            "children": headline["children_detained"],
            "findings": int(applied["rules_applied"].sum()),
        },
    }
    return CheckResult(
        findings=findings,
        data_quality=run.data_quality,
        records=record_table,
        headline=headline,
        rules=rules.info,
        meta=meta,
        findings_file=run.findings_file,
    )


@dataclass
class _Run:
    findings: pl.DataFrame | pl.LazyFrame
    kept: pl.DataFrame
    """The headline facts of every loaded record (person_id, custody_record_id, arrival_at, ...)."""
    data_quality: pl.DataFrame
    rows_read: dict[str, int]
    rows_used: dict[str, int]
    findings_file: Path | None
    applied: pl.DataFrame | None = None
    """Findings per custody_record_id (rules_applied), if counted while checking."""


def _spill(plan: pl.LazyFrame, path: Path) -> None:
    plan.sink_parquet(path, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL, statistics=True)


def _check_whole(
    source: Path | tuple[Path, Path],
    rules: PreparedRules,
    include_notes: bool,
    say: Progress,
    spill_dir: Path | None,
) -> _Run:
    say("Loading the records")
    records = load_record_set(source)
    say("Deriving the facts")
    facts = facts_for(records, rules)
    quality, rows_read, rows_used = records.data_quality, records.rows_read, records.rows_used
    del records  # the loaded tables are not needed any more: free them before evaluating
    say("Evaluating the rules")
    plan = evaluate(facts.lazy(), rules.compiled, include_notes=include_notes)
    findings: pl.DataFrame | pl.LazyFrame
    spilled = None
    if spill_dir is None:
        findings = plan.collect()
    else:
        # Streamed to disk as it is computed: a million records give ~5M findings (~3 GB of
        # messages and evidence) that need never be in memory at once. Outputs read the file.
        spilled = spill_dir / "findings.parquet"
        _spill(plan, spilled)
        findings = pl.scan_parquet(spilled)
    return _Run(
        findings=findings,
        kept=facts.select(HEADLINE_FACTS),
        data_quality=quality,
        rows_read=rows_read,
        rows_used=rows_used,
        findings_file=spilled,
    )


def _check_batches(
    source: Path | tuple[Path, Path],
    batches: list[Batch],
    rules: PreparedRules,
    include_notes: bool,
    say: Progress,
    spill_dir: Path,
) -> _Run:
    """Each batch loaded, validated and evaluated on its own. Its findings are spilled a
    segment (rule, version, step) at a time, to one file per segment and batch, so that the
    files read in (segment, batch) order are the findings in one-pass order."""
    kept, quality = [], []
    rows_read = {"detentions": 0, "events": 0}
    rows_used = {"detentions": 0, "events": 0}
    segments: dict[int, list[Path]] = {}
    applied = []
    for batch in batches:
        say(f"Checking children in batch {batch.index + 1} of {len(batches)}")
        records = load_record_set(source, batch=batch)
        for piece in (*batch.detentions, *batch.events):
            piece.unlink()
        facts = facts_for(records, rules)
        quality.append(records.data_quality)
        for table in rows_read:
            rows_read[table] += records.rows_read[table]
            rows_used[table] += records.rows_used[table]
        del records
        kept.append(facts.select(HEADLINE_FACTS))
        frames = evaluate_segments(facts.lazy(), rules.compiled, include_notes=include_notes, materialise=True)
        spilled_now = []
        for number, frame in enumerate(frames):
            if frame is None:
                continue
            spilled = spill_dir / f"findings-{number:05d}-{batch.index:05d}.parquet"
            _spill(frame, spilled)
            segments.setdefault(number, []).append(spilled)
            spilled_now.append(spilled)
        del facts
        # A custody_record_id is in one batch only: each batch counts its own records' findings
        # while its files are fresh (one count over every finding at the end is slower).
        if spilled_now:
            applied.append(_count_per_record(pl.scan_parquet(spilled_now)))
    data_quality = sort_data_quality(pl.concat(quality))
    files = [path for number in sorted(segments) for path in segments[number]]
    findings: pl.LazyFrame = pl.LazyFrame(schema=FINDINGS_SCHEMA)
    findings_file = None
    if files:
        say("Joining the findings into one file")
        # The spilled files, joined byte for byte under one footer: no decoding, no re-encoding
        # (a rewrite of 47M findings took ~75 s at 10M records).
        findings_file = spill_dir / "findings.parquet"
        try:
            concat_parquet(files, findings_file)
        except ParquetConcatError:  # not expected for files polars wrote: read them as they are
            findings_file.unlink(missing_ok=True)
            findings, findings_file = pl.scan_parquet(files), None
        else:
            for path in files:
                path.unlink()
            findings = pl.scan_parquet(findings_file)
    return _Run(
        findings=findings,
        kept=pl.concat(kept),
        data_quality=data_quality,
        rows_read=rows_read,
        rows_used=rows_used,
        findings_file=findings_file,
        applied=pl.concat(applied) if applied else _count_per_record(findings),
    )


def _count_per_record(findings: pl.LazyFrame) -> pl.DataFrame:
    return findings.group_by("custody_record_id").agg(pl.len().alias("rules_applied")).collect()
