"""The check pipeline: records -> facts -> findings -> one CheckResult.

Data flows one way: the loader reads and validates the tables, the facts layer builds
one row per custody record, the engine evaluates every rule, and every output renders
the resulting findings table. One path for every size: a large Parquet record set is
read in batches of children (`custody.read.batches`), and each batch's findings are
appended, in order, to one findings file; the findings of a record set come by child,
record and rule whether or not it was batched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custody.contract import FINDINGS_SCHEMA
from custody.engine.cache import load_compiled
from custody.engine.compile import CompiledRule, occasion_facts
from custody.engine.evaluate import RulePlan, evaluate, evaluate_chunks
from custody.engine.rulefile import RuleSet, default_rules_dir
from custody.facts import (
    EVENT_COLUMNS,
    HEADLINE_FACTS,
    FactTables,
    build_fact_tables,
    fact_specs,
    headline_figures,
    in_child_order,
    taint_column,
)
from custody.facts.headline import is_child
from custody.facts.statistics import STATISTICS_FACTS, OvernightDefinition, record_statistics
from custody.findings import STRIP_SEARCH_RULE, CheckResult, RuleInfo, strip_search_figures
from custody.pseudonymise import key_id, pseudonymise_findings
from custody.read.batches import BATCH_RECORDS, Batch, plan_batches
from custody.read.loader import RecordSet, find_tables, load_record_set, sort_data_quality
from custody.read.profile import LoadedProfile, export_files, load_with_profile
from custody.read.sealed import PieceCipher
from custody.read.timeparse import DateOrder
from custody.render.parquet import FindingsWriter
from custody.version import __version__

Progress = Callable[[str], None]


CONTEXT_FACTS: tuple[str, ...] = (
    "force",
    "custody_suite",
    "sex",
    "ethnicity",
    "looked_after",
    "date_of_birth",
)
"""Facts kept per record to describe it in the outputs (the exception list's context columns,
the report's breakdowns): computed whatever the rules need. The date of birth stays in
memory (for the age at each occasion) and is never written."""


def _record_facts(include_notes: bool) -> list[str]:
    names = [*HEADLINE_FACTS, *CONTEXT_FACTS, *STATISTICS_FACTS]
    if include_notes:
        names.append("certificate_note")  # free text: only when the run was asked for notes
    return list(dict.fromkeys(names))


@dataclass
class PreparedRules:
    rule_set: RuleSet
    compiled: list[CompiledRule]
    plans: list[RulePlan] | None = None
    """How `compiled` is evaluated (made from it when not given)."""

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
    """The rules of a folder, validated and compiled (once per set of files: see custody.engine.cache)."""
    return PreparedRules(*load_compiled(rules_dir or default_rules_dir()))


def load_rules(rules_dir: Path | str | None = None) -> PreparedRules:
    """The rules of a folder (default: the shipped rules/), loaded, validated and compiled."""
    return prepare_rules(Path(rules_dir) if rules_dir is not None else None)


def check(
    source: Path | str | tuple[Path | str, Path | str],
    *,
    rules: PreparedRules | None = None,
    include_notes: bool = False,
    date_order: DateOrder = "dmy",
    profile: LoadedProfile | None = None,
) -> CheckResult:
    """Check a record set in memory: the library's entry point (the CLI's `check` spills to disk).
    With `profile` (`custody.read.profile.load_profile`), `source` is an export in that layout."""
    path = (Path(source[0]), Path(source[1])) if isinstance(source, tuple) else Path(source)
    return run_check(path, rules=rules, include_notes=include_notes, date_order=date_order, profile=profile)


SAFEGUARD_FACTS: dict[str, str] = {"strip_searches": "strip_search_count", "interviews": "interview_started_count"}
"""`CheckResult.records` columns counted per record (and summed per child in children.csv)."""

SEARCHED_FACTS: tuple[str, ...] = ("custody_record_id", "person_id", "age_at_arrival", "sex", "ethnicity")
"""Kept for the records with a strip search only: the strip-search figures' breakdown."""


def needed_facts(rules: Iterable[CompiledRule], *, include_notes: bool = False) -> list[str]:
    """The record facts (and the taint columns of their inputs) the rules, the headline figures
    and the per-record context and statistics read: only these are computed. Occasion facts
    are named by `custody.engine.compile.occasion_facts`."""
    rules = list(rules)
    specs = fact_specs()
    names: set[str] = set(_record_facts(include_notes)) | set(SAFEGUARD_FACTS.values()) | set(SEARCHED_FACTS)
    inputs = set()
    for rule in rules:
        grain_specs = fact_specs(rule.grain)
        read = rule.facts
        names |= {n for n in read if n in specs}
        inputs |= set().union(*(grain_specs[n].lineage for n in read))
    inputs |= set().union(*(specs[n].lineage for n in names))
    ordered = [n for n in specs if n in names]
    return ordered + [taint_column(source) for source in sorted(inputs)]


def inputs_digest(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def facts_for(records: RecordSet, rules: PreparedRules, *, include_notes: bool = False) -> FactTables:
    """The facts the rules read: one row per loaded custody record, and per occasion of the
    rules that declare occasions."""
    return _facts(_FactInputs.of(records), rules, include_notes)


@dataclass
class _FactInputs:
    """What the facts read of a loaded record set: the detentions, the events' columns the
    facts read (all of them when each event's record row is not known), the taint."""

    detentions: pl.DataFrame
    events: pl.DataFrame
    taint: pl.DataFrame
    event_rows: pl.Series | None

    @classmethod
    def of(cls, records: RecordSet) -> _FactInputs:
        rows = records.event_rows()
        events = records.events if rows is None else records.events.select(EVENT_COLUMNS)
        return cls(records.detentions, events, records.taint(), rows)


def _facts(inputs: _FactInputs, rules: PreparedRules, include_notes: bool) -> FactTables:
    return build_fact_tables(
        inputs.detentions,
        inputs.events,
        inputs.taint,
        rules.rule_set.settings,
        columns=needed_facts(rules.compiled, include_notes=include_notes),
        occasions=occasion_facts(rules.compiled),
        event_rows=inputs.event_rows,
    )


_APPLIED_SCHEMA = pl.Schema({"custody_record_id": pl.String(), "rules_applied": pl.UInt32()})


def record_table(facts: pl.DataFrame, *, include_notes: bool, overnight: OvernightDefinition) -> pl.DataFrame:
    """What is kept of each record once its rules are evaluated: the headline facts, the
    context the outputs describe it by, and its statistics (held overnight, waits).
    `facts` carries the taint columns of the statistics' inputs (`needed_facts` asks for them):
    a statistic resting on an unusable row is null."""
    kept = facts.select(_record_facts(include_notes)).with_columns(is_child().alias("is_child"))
    statistics = record_statistics(facts, overnight)
    # Kept for every record of the run (ten million at a time): only what the outputs read,
    # in the narrowest types. The instants the statistics were computed from are dropped;
    # the descriptive text becomes categorical; counts fit 32 bits.
    inputs_only = [n for n in STATISTICS_FACTS if n not in (*HEADLINE_FACTS, *CONTEXT_FACTS)]
    narrow = [
        *(pl.col(n).cast(pl.Categorical) for n in ("force", "custody_suite", "sex", "ethnicity")),
        *(pl.col(n).cast(pl.Int32) for n in HEADLINE_FACTS if n.endswith("_count")),
    ]
    return pl.concat(
        [kept.drop(inputs_only).with_columns(narrow), statistics.drop("left_custody_at")], how="horizontal"
    )


def findings_for(
    records: RecordSet, rules: PreparedRules, *, include_notes: bool = False
) -> tuple[FactTables, pl.DataFrame]:
    """(facts, findings) for a loaded record set."""
    facts = facts_for(records, rules, include_notes=include_notes)
    return facts, evaluate(facts, rules.compiled, include_notes=include_notes)


def profile_meta(profile: LoadedProfile) -> dict[str, str]:
    """What summary.json records of the input profile a run read its export through."""
    return {
        "file": profile.path.name,
        "name": profile.profile.name,
        "version": profile.profile.version,
        "digest": profile.digest,
    }


def run_check(
    source: Path | tuple[Path, Path],
    *,
    rules: PreparedRules | None = None,
    include_notes: bool = False,
    progress: Progress | None = None,
    spill_dir: Path | None = None,
    batch_records: int = BATCH_RECORDS,
    date_order: DateOrder = "dmy",
    profile: LoadedProfile | None = None,
    overnight: OvernightDefinition | None = None,
    pseudonymise_key: str | None = None,
) -> CheckResult:
    """Load, evaluate every rule over every record, and return the findings and what renders them.

    With `spill_dir`, the findings are written there to one Parquet file as they are
    computed, and the result holds a lazy scan of it (the folder must outlive the result's
    use); a Parquet record set of more than `batch_records` records is then read in batches
    of children, each loaded, validated and evaluated on its own. Without it, the findings
    are held in memory. With `profile`, `source` is an export in that profile's layout (read
    whole, never in batches).

    With `pseudonymise_key` (a run whose outputs will be pseudonymised with it), nothing this
    run writes to `spill_dir` holds a real id or date of birth: the spilled findings are
    pseudonymised as they are written (`CheckResult.pseudonymised_findings`; the records and
    data quality, held in memory, are pseudonymised as the outputs are written) and the
    batches' pieces are sealed (`custody.read.sealed`).
    """
    started = time.perf_counter()
    say = progress or (lambda _stage: None)
    say("Reading the rules")
    rules = rules or prepare_rules()
    # The rules folder's definition (rules/_facts.yaml parameters.held_overnight) unless given.
    overnight = overnight or rules.rule_set.settings.parameters.held_overnight.definition()
    files = find_tables(source) if profile is None else export_files(profile, Path(str(source)))
    # The inputs' digest (summary.json) is hashed on a thread of its own while the records are
    # checked: hashing lets go of the interpreter, and a large extract takes a while to hash.
    hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inputs-digest")
    digest = hashing.submit(inputs_digest, list(files.values()))
    hashing.shutdown(wait=False)
    batches: list[Batch] | None = None
    if spill_dir is not None and profile is None:  # batches need somewhere to put their pieces and findings
        say("Sizing up the records")
        cipher = PieceCipher() if pseudonymise_key is not None else None
        batches = plan_batches(files, spill_dir / "batches", batch_records, cipher)
    parts: list[Batch | None] = list(batches) if batches else [None]

    kept, quality, in_memory = [], [], []
    findings_total = 0
    searched: list[pl.DataFrame] = []
    searches: list[pl.DataFrame] = []
    rows_read = {"detentions": 0, "events": 0}
    rows_used = {"detentions": 0, "events": 0}
    findings_file = spill_dir / "findings.parquet" if spill_dir is not None else None
    writer = FindingsWriter(findings_file) if findings_file is not None else None
    try:
        for batch in parts:
            if batch is None:
                say("Loading the records")
            else:
                say(f"Checking children in batch {batch.index + 1} of {len(parts)}")
            records = (
                load_record_set(source, batch=batch, date_order=date_order)
                if profile is None
                else load_with_profile(profile, Path(str(source)))
            )
            if batch is not None:
                batch.remove_pieces()
            say(f"Deriving the facts of {records.rows_used['detentions']:,} records")
            quality.append(records.data_quality)
            for table in rows_read:
                rows_read[table] += records.rows_read[table]
                rows_used[table] += records.rows_used[table]
            # Only what the facts read is kept of the loaded tables while they are built (not
            # each event's id, row number or extra columns: some 230 MB per million records).
            inputs = _FactInputs.of(records)
            del records
            facts = _facts(inputs, rules, include_notes)
            del inputs  # free the loaded tables before evaluating
            kept.append(
                pl.concat(
                    [
                        record_table(facts.records, include_notes=include_notes, overnight=overnight),
                        facts.records.select(pl.col(f).cast(pl.Int32).alias(n) for n, f in SAFEGUARD_FACTS.items()),
                    ],
                    how="horizontal",
                )
            )
            searched.append(facts.records.filter(pl.col("strip_search_count") > 0).select(SEARCHED_FACTS))
            say(f"Evaluating {len(rules.compiled)} rules over {facts.records.height:,} records")
            applied = []
            for chunk in evaluate_chunks(facts, rules.compiled, include_notes=include_notes, plans=rules.plans):
                applied.append(chunk.group_by("custody_record_id").agg(pl.len().alias("rules_applied")))
                searches.append(
                    chunk.filter(pl.col("rule_id").cast(pl.String) == STRIP_SEARCH_RULE).select(
                        "custody_record_id", "outcome"
                    )
                )
                if writer is not None:
                    writer.write(chunk if pseudonymise_key is None else pseudonymise_findings(chunk, pseudonymise_key))
                else:
                    in_memory.append(chunk)
            # Each record's count of findings joins its kept row now, batch by batch, so that
            # no table of every record's id is held twice at the end.
            per_record = pl.concat(applied) if applied else pl.DataFrame(schema=_APPLIED_SCHEMA)
            findings_total += int(per_record["rules_applied"].sum() or 0)
            kept[-1] = (
                kept[-1]
                .join(per_record, on="custody_record_id", how="left", maintain_order="left")
                .with_columns(pl.col("rules_applied").fill_null(0).cast(pl.Int64))
            )
            del facts, applied, per_record
    finally:
        if writer is not None:
            writer.close()

    say("Summarising")
    findings: pl.DataFrame | pl.LazyFrame
    if findings_file is not None:
        findings = pl.scan_parquet(findings_file)
    else:
        findings = pl.concat(in_memory) if in_memory else pl.DataFrame(schema=FINDINGS_SCHEMA)
    everyone = pl.concat(kept, rechunk=False)
    del kept
    records_kept = in_child_order(
        everyone.select(
            "person_id",
            "custody_record_id",
            pl.col("arrival_at").alias("arrival_time"),
            pl.all().exclude("person_id", "custody_record_id", "arrival_at"),
        )
    )
    headline = headline_figures(everyone.lazy())
    meta = {
        "tool_version": __version__,
        "rules_digest": rules.rule_set.digest,
        # The folder's name only, as for the inputs: the same rules give the same bytes
        # however the folder was named on the command line (rules_digest identifies them).
        "rules_dir": rules.rule_set.directory.name,
        "inputs_digest": digest.result(),
        "inputs": {table: path.name for table, path in files.items()},
        "as_of": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "run_seconds": round(time.perf_counter() - started, 3),
        "include_notes": include_notes,
        "date_order": date_order,
        **({} if profile is None else {"profile": profile_meta(profile)}),
        "held_overnight": overnight.name,
        "leap_day_birthday": rules.rule_set.settings.leap_day_birthday,
        "batches": len(parts),
        "counts": {
            "detention_rows": rows_read["detentions"],
            "event_rows": rows_read["events"],
            "records_loaded": rows_used["detentions"],
            "events_loaded": rows_used["events"],
            "rows_rejected": sum(rows_read.values()) - sum(rows_used.values()),
            "persons": everyone["person_id"].n_unique(),
            "children": headline["children_detained"],
            "findings": findings_total,
        },
    }
    return CheckResult(
        findings=findings,
        data_quality=sort_data_quality(pl.concat(quality)),
        records=records_kept,
        headline=headline,
        rules=rules.info,
        meta=meta,
        strip_searches=strip_search_figures(pl.concat(searched), pl.concat(searches)),
        findings_file=findings_file,
        pseudonymised_findings=key_id(pseudonymise_key)
        if pseudonymise_key is not None and findings_file is not None
        else None,
    )
