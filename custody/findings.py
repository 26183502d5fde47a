"""The findings of a check run, and every table and figure derived from them.

A `CheckResult` holds the one findings table (with the records and data quality it was
computed from). Per child, exceptions, counts per rule and the summary are derived here,
once; every output (Parquet, CSV, XLSX, JSON, HTML, terminal) renders these and never
re-derives a fact the engine computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from custody.contract import CONTRACT_VERSION, DATA_QUALITY_SCHEMA, FINDINGS_SCHEMA, UK_TZ, Outcome
from custody.facts.time import age_years


@dataclass(frozen=True)
class RuleInfo:
    """A rule as the outputs describe it (one row of `custody rules list`)."""

    rule_id: str
    title: str
    basis: str
    severity: str
    citation: str
    versions: tuple[str, ...]  # effective_from dates, ISO, oldest first


@dataclass
class CheckResult:
    findings: pl.DataFrame | pl.LazyFrame
    """`custody.contract.FINDINGS_SCHEMA`: one row per (custody record, rule) that applied
    or could not be assessed (a lazy frame when `run_check(spill_dir=...)` spilled it to a
    Parquet file, so that millions of findings are never held at once); by rule, then (within
    the version and step that decided) by child, arrival and custody record. Deterministic for
    the same inputs and rules."""

    data_quality: pl.DataFrame
    """`custody.contract.DATA_QUALITY_SCHEMA`: every input row or value that could not be used."""

    records: pl.DataFrame
    """One row per custody record that was loaded (not rejected): `person_id`,
    `custody_record_id`, `arrival_time` (UTC instant, may be null), `rules_applied` (int:
    how many findings rows it has; 0 means no rule applied to it), and where the run counted
    them `strip_searches` and `interviews` (`strip_search` and `interview_started` events on
    the record; a table without them counts none)."""

    headline: dict[str, int]
    """The inspection's headline figures, computed by the engine from the facts:
    children_detained, records, charged_and_refused_bail, requests_made, moved,
    certificates, s136_police_station_uses."""

    rules: list[RuleInfo]
    meta: dict[str, Any] = field(default_factory=dict)
    """tool_version, rules_digest, inputs_digest, as_of (ISO UTC), run_seconds,
    counts: {detention_rows, event_rows, records_loaded, events_loaded, rows_rejected, persons (distinct
    person_id), children (of them, under 18 at arrival or recorded as appearing so), findings}."""
    strip_searches: pl.DataFrame | None = None
    """`strip_search_figures`: strip searches of children by age, sex and ethnicity (no ids);
    none when the run did not compute them (a result built by hand)."""
    findings_file: Path | None = None
    """The Parquet file `findings` was spilled to, already in the contract's form (columns,
    order, types, compression), so that writing findings.parquet is a file copy."""
    pseudonymised_findings: str | None = None
    """The key id (`custody.pseudonymise.key_id`) when `findings` (and `findings_file`) were
    pseudonymised as they were spilled (`custody.pseudonymise.pseudonymise_findings`: a keyed
    run writes no real id or date of birth to a temporary file); the records and data quality
    are pseudonymised at the end, under the same key."""


HEADLINE_LABELS: dict[str, str] = {
    "children_detained": "Children detained",
    "records": "Custody records",
    "child_records": "Custody records of children",
    "charged_and_refused_bail": "Charged and refused bail",
    "requests_made": "Local authority asked to accommodate",
    "moved": "Moved to local authority accommodation",
    "certificates": "Certificates made (PACE s38(6))",
    "s136_police_station_uses": "s136 detentions in a police station",
}


EXCEPTION_OUTCOMES: tuple[str, ...] = (Outcome.breach.value, Outcome.cannot_assess.value)


# The exception list is for people doing case review, so it has human column names.
# Evidence is left out on purpose: it is the machine-readable JSON behind the message
# (the message is its one-sentence human rendering), it stays in findings.csv/.parquet
# under the same (custody record, rule) key, and leaving it out roughly halves the size
# of the workbook and keeps every row readable in a spreadsheet. The context columns
# (force to looked-after) describe the record, so that a reviewer can filter and sort
# without joining tables.
EXCEPTION_COLUMNS: dict[str, str] = {
    "person_id": "Child",
    "custody_record_id": "Custody record",
    "rule_id": "Rule",
    "outcome": "Outcome",
    "severity": "Severity",
    "when_uk": "When (UK time)",
    "message": "What was found",
    "force": "Force",
    "custody_suite": "Custody suite",
    "arrival_uk": "Arrival (UK time)",
    "age_at_occasion": "Age at the time",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "looked_after": "Looked after",
    "basis": "Basis",
    "citation": "Law",
    "rule_version": "Rule version",
}


CERTIFICATE_NOTE_LABEL = "Circumstances stated on the certificate"
"""The exception list's column of the certificate's free text (only with --include-notes)."""


CONTEXT_COLUMNS: dict[str, pl.DataType] = {
    "force": pl.String(),
    "custody_suite": pl.String(),
    "sex": pl.String(),
    "ethnicity": pl.String(),
    "looked_after": pl.Boolean(),
    "date_of_birth": pl.Date(),
    "age_at_arrival": pl.Int64(),
    "is_child": pl.Boolean(),
    "held_overnight_pre_charge": pl.Boolean(),
    "held_overnight_post_charge": pl.Boolean(),
    "aa_wait": pl.Duration("us"),
    "refusal_to_move": pl.Duration("us"),
}
"""What the outputs describe a record by (`CheckResult.records`), with their types: a result
built without them (an older caller) reads them as unknown."""


CHILDREN_COLUMNS: tuple[str, ...] = (
    "person_id",
    "records",
    "rules_applied",
    "breaches",
    "compliant",
    "cannot_assess",
    "worst_outcome",
    "rules_breached",
    "first_arrival",
    "last_arrival",
    "strip_searches",
    "interviews",
    "held_overnight_pre_charge",
    "held_overnight_post_charge",
    "longest_aa_wait_minutes",
)


UK_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"


# The human lists name the zone (GMT/BST), which tells apart the two 01:30s of an October night.
UK_HUMAN_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def findings_frame(result: CheckResult) -> pl.LazyFrame:
    """The findings with exactly the contract columns, in contract order and types (lazy: the
    findings may be a scan of a spilled Parquet file too large to hold at once)."""
    return result.findings.lazy().select(pl.col(name).cast(dtype) for name, dtype in FINDINGS_SCHEMA.items())


def data_quality_table(data_quality: pl.DataFrame) -> pl.DataFrame:
    """Data-quality rows in exactly the contract's columns, order and types."""
    return data_quality.select(pl.col(name).cast(dtype) for name, dtype in DATA_QUALITY_SCHEMA.items())


def data_quality_frame(result: CheckResult) -> pl.DataFrame:
    return data_quality_table(result.data_quality)


def record_context(result: CheckResult) -> pl.DataFrame:
    """The records with every context column of `CONTEXT_COLUMNS` (unknown where the result
    has none), the arrival as a UTC instant."""
    return context_of(result).collect()


def context_of(result: CheckResult) -> pl.LazyFrame:
    """`record_context`, lazily: a query that reads a few of its columns (ten million records
    in a large check) converts only those."""
    records = result.records
    missing = [
        pl.lit(None, dtype).alias(name) for name, dtype in CONTEXT_COLUMNS.items() if name not in records.columns
    ]
    return (
        records.lazy()
        .with_columns(missing)
        .with_columns(
            pl.col("arrival_time").cast(pl.Datetime("us", "UTC")),
            *(pl.col(name).cast(dtype) for name, dtype in CONTEXT_COLUMNS.items()),
        )
    )


def _minutes(duration: pl.Expr) -> pl.Expr:
    return (duration.dt.total_seconds() / 60).round(0).cast(pl.Int64)


def children_frame(result: CheckResult) -> pl.DataFrame:
    """One row per child: every person_id among the records and the findings, sorted by id.

    A child whose records no rule applied to (say an adult, or never charged) still has a
    row, with zero counts and worst_outcome `none`. `held_overnight_*` count the child's
    records held overnight (`summary.json` names the definition; empty where no record's
    time of leaving custody is known); `longest_aa_wait_minutes` is the longest wait for the
    appropriate adult across the child's records.
    """
    outcome = pl.col("outcome").cast(pl.String)
    per_child_findings = (
        result.findings.lazy()
        .group_by("person_id")
        .agg(
            pl.len().cast(pl.Int64).alias("rules_applied"),
            (outcome == Outcome.breach.value).sum().cast(pl.Int64).alias("breaches"),
            (outcome == Outcome.compliant.value).sum().cast(pl.Int64).alias("compliant"),
            (outcome == Outcome.cannot_assess.value).sum().cast(pl.Int64).alias("cannot_assess"),
            pl.col("rule_id")
            .cast(pl.String)
            .filter(outcome == Outcome.breach.value)
            .unique()
            .sort()
            .str.join(";")
            .alias("rules_breached"),
        )
        .collect()
    )
    arrival_uk = pl.col("arrival_time").dt.convert_time_zone(UK_TZ)

    def overnight(name: str) -> pl.Expr:
        # A count of records; unknown (empty) only if no record of the child can say.
        return pl.when(pl.col(name).is_not_null().any()).then(pl.col(name).sum().cast(pl.Int64)).alias(name)

    per_child_records = (
        context_of(result)
        .group_by("person_id")
        .agg(
            pl.len().cast(pl.Int64).alias("records"),
            arrival_uk.min().dt.strftime(UK_ISO_FORMAT).alias("first_arrival"),
            arrival_uk.max().dt.strftime(UK_ISO_FORMAT).alias("last_arrival"),
            overnight("held_overnight_pre_charge"),
            overnight("held_overnight_post_charge"),
            _minutes(pl.col("aa_wait").max()).alias("longest_aa_wait_minutes"),
            *_safeguard_counts(result.records),
        )
        .collect()
    )
    counts = ("records", "rules_applied", "breaches", "compliant", "cannot_assess", *SAFEGUARD_COUNTS)
    children = per_child_records.cast({"person_id": pl.String}).join(
        per_child_findings.cast({"person_id": pl.String}),
        on="person_id",
        how="full",
        coalesce=True,
        nulls_equal=True,
    )
    return (
        children.with_columns(pl.col(c).fill_null(0) for c in counts)
        .with_columns(
            pl.when(pl.col("breaches") > 0)
            .then(pl.lit(Outcome.breach.value))
            .when(pl.col("cannot_assess") > 0)
            .then(pl.lit(Outcome.cannot_assess.value))
            .when(pl.col("compliant") > 0)
            .then(pl.lit(Outcome.compliant.value))
            .otherwise(pl.lit("none"))
            .alias("worst_outcome"),
            pl.col("rules_breached").fill_null(""),
        )
        .select(CHILDREN_COLUMNS)
        .sort("person_id", nulls_last=True)
    )


# ---------------------------------------------------------------- strip searches and interviews
# (contract v1.1, issue 17): per child in children.csv, and the strip-search figures broken down
# as the Home Office collects them, for the report.

SAFEGUARD_COUNTS: tuple[str, ...] = ("strip_searches", "interviews")
"""Columns of `CheckResult.records` (and children.csv): events per record, summed per child."""

STRIP_SEARCH_RULE = "PACE-STRIP-SEARCH-AA"
"""Its findings are one per strip search of a juvenile: the searches the figures count."""

STRIP_SEARCH_DIMENSIONS: tuple[str, ...] = ("age", "sex", "ethnicity")

STRIP_SEARCH_FIGURE_SCHEMA = pl.Schema(
    {
        "dimension": pl.String(),
        "value": pl.String(),
        "searches": pl.Int64(),
        "children": pl.Int64(),
        Outcome.breach.value: pl.Int64(),
        Outcome.compliant.value: pl.Int64(),
        Outcome.cannot_assess.value: pl.Int64(),
    }
)


def _safeguard_counts(records: pl.DataFrame) -> list[pl.Expr]:
    return [
        (pl.col(name).sum() if name in records.columns else pl.lit(0)).cast(pl.Int64).alias(name)
        for name in SAFEGUARD_COUNTS
    ]


def strip_search_figures(searched: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    """Strip searches of children, in total and by age at arrival, sex and ethnicity as
    recorded (the breakdown the Home Office collects), with the outcome of each search.

    `searched`: the records with a strip search (`custody_record_id`, `person_id`,
    `age_at_arrival`, `sex`, `ethnicity`); `findings`: the `custody_record_id` and `outcome`
    of every STRIP_SEARCH_RULE finding (one per search of a juvenile). A search counts here
    when the rule found it was of a juvenile, or could not tell (cannot_assess). No ids leave.
    """
    outcome = pl.col("outcome").cast(pl.String)
    searches = findings.select("custody_record_id", outcome).join(
        searched.select(
            "custody_record_id",
            "person_id",
            pl.col("age_at_arrival").cast(pl.String).fill_null("not recorded").alias("age"),
            pl.col("sex").cast(pl.String).str.strip_chars().replace("", None).fill_null("not recorded").alias("sex"),
            pl.col("ethnicity")
            .cast(pl.String)
            .str.strip_chars()
            .replace("", None)
            .fill_null("not recorded")
            .alias("ethnicity"),
        ),
        on="custody_record_id",
        how="left",
    )
    counts = [
        pl.len().cast(pl.Int64).alias("searches"),
        pl.col("person_id").n_unique().cast(pl.Int64).alias("children"),
        *(
            (outcome == o.value).sum().cast(pl.Int64).alias(o.value)
            for o in (Outcome.breach, Outcome.compliant, Outcome.cannot_assess)
        ),
    ]
    total = searches.select(pl.lit("all").alias("dimension"), pl.lit("all").alias("value"), *counts)
    parts = [total.filter(pl.col("searches") > 0)]
    for dimension in STRIP_SEARCH_DIMENSIONS:
        by = (
            searches.group_by(pl.col(dimension).fill_null("not recorded").alias("value"))
            .agg(*counts)
            .with_columns(pl.lit(dimension).alias("dimension"))
        )
        # Ages in number order (a search of a child of unknown age last), the rest by name.
        order = pl.col("value").cast(pl.Int64, strict=False) if dimension == "age" else pl.col("value")
        parts.append(by.sort(order, pl.col("value"), nulls_last=True))
    return pl.concat([p.select(STRIP_SEARCH_FIGURE_SCHEMA.names()) for p in parts]).cast(STRIP_SEARCH_FIGURE_SCHEMA)


def exception_table(result: CheckResult) -> pl.DataFrame:
    """Breach and cannot_assess findings with the record's context, typed, by child then time.

    `occasion_at` is the finding's occasion: its `trigger_at`, else the record's arrival
    (UTC instant); `age_at_occasion` the child's age then, in whole years (from the date of
    birth, which is not itself a column). With notes included in the run (--include-notes),
    `certificate_note` holds the circumstances stated on the record's first certificate.
    """
    context = context_of(result)
    with_note = bool(result.meta.get("include_notes")) and "certificate_note" in context.collect_schema()
    extra = ["certificate_note"] if with_note else []
    exceptions = (
        findings_frame(result)
        .filter(pl.col("outcome").cast(pl.String).is_in(EXCEPTION_OUTCOMES))
        .drop("evidence")
        .collect()
    )
    described = context.select(
        "custody_record_id",
        pl.col("arrival_time").alias("arrival_at"),
        *(name for name in CONTEXT_COLUMNS if name not in ("age_at_arrival",)),
        *extra,
    ).collect()
    joined = exceptions.join(described, on="custody_record_id", how="left", maintain_order="left").with_columns(
        pl.coalesce("trigger_at", "arrival_at").alias("occasion_at")
    )
    leap = str(result.meta.get("leap_day_birthday", "march_1"))
    return (
        joined.with_columns(
            age_years(pl.col("date_of_birth"), pl.col("occasion_at"), leap).cast(pl.Int64).alias("age_at_occasion")
        )
        .select(
            "person_id",
            "custody_record_id",
            "rule_id",
            "outcome",
            "severity",
            "occasion_at",
            "message",
            "force",
            "custody_suite",
            "arrival_at",
            "age_at_occasion",
            "sex",
            "ethnicity",
            "looked_after",
            "basis",
            "citation",
            "rule_version",
            *extra,
        )
        .sort(["person_id", "occasion_at", "custody_record_id", "rule_id"], nulls_last=True)
    )


def _uk_text(instant: pl.Expr) -> pl.Expr:
    return instant.dt.convert_time_zone(UK_TZ).dt.strftime(UK_HUMAN_FORMAT)


def exceptions_frame(result: CheckResult, table: pl.DataFrame | None = None) -> pl.DataFrame:
    """The exception list as text with human column names (exceptions.csv): times in UK
    time naming the zone, looked-after as yes/no (`table`: `exception_table`, when the
    caller has it already)."""
    return exceptions_frame_from_table(exception_table(result) if table is None else table)


def exceptions_frame_from_table(table: pl.DataFrame) -> pl.DataFrame:
    """`exceptions_frame` of an `exception_table`."""
    yes_no = pl.when(pl.col("looked_after")).then(pl.lit("yes")).when(~pl.col("looked_after")).then(pl.lit("no"))
    columns = [
        pl.col(name).cast(pl.String).alias(label)
        for name, label in EXCEPTION_COLUMNS.items()
        if name not in ("when_uk", "arrival_uk", "looked_after")
    ]
    labelled = table.select(
        *columns,
        _uk_text(pl.col("occasion_at")).alias(EXCEPTION_COLUMNS["when_uk"]),
        _uk_text(pl.col("arrival_at")).alias(EXCEPTION_COLUMNS["arrival_uk"]),
        yes_no.alias(EXCEPTION_COLUMNS["looked_after"]),
        *([pl.col("certificate_note").alias(CERTIFICATE_NOTE_LABEL)] if "certificate_note" in table.columns else []),
    )
    order = [
        *EXCEPTION_COLUMNS.values(),
        *([CERTIFICATE_NOTE_LABEL] if CERTIFICATE_NOTE_LABEL in labelled.columns else []),
    ]
    return labelled.select(order)


def outcomes_per_rule(result: CheckResult) -> dict[str, dict[str, int]]:
    """{rule_id: {breach, compliant, cannot_assess}} for every rule in the registry (zeros
    included), in registry order; a rule id found only in the findings follows, sorted."""
    counts = (
        result.findings.lazy()
        .group_by(pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String))
        .len()
        .collect()
        .rows()
    )
    table: dict[str, dict[str, int]] = {rule.rule_id: {o.value: 0 for o in Outcome} for rule in result.rules}
    for rule_id in sorted({str(rule_id) for rule_id, _, _ in counts} - table.keys()):
        table[rule_id] = {o.value: 0 for o in Outcome}
    for rule_id, outcome, n in counts:
        table[str(rule_id)][str(outcome)] = int(n)
    return table


def _data_quality_issue(reason: pl.Expr, column: pl.Expr) -> pl.Expr:
    """What is wrong, without the advice, the row numbers or the column name: "is missing",
    "is not a real date", "appears on rows # and # with different values"."""
    what = reason.fill_null("(no reason given)").str.split_exact(": ", 1).struct.field("field_0")
    what = what.str.split_exact("; ", 1).struct.field("field_0")
    what = what.str.replace_all(r"\d+", "#")
    prefix = column.fill_null("") + pl.lit(" ")
    return (
        pl.when(what.str.starts_with(prefix))
        .then(what.str.slice(prefix.str.len_chars()))
        .otherwise(what)
        .str.strip_chars()
    )


def data_quality_by_issue(data_quality: pl.DataFrame) -> pl.DataFrame:
    """Data-quality rows counted by table, column and issue (never by value or row), with
    what happened to them; most frequent first. Columns: table, column, issue, action, rows."""
    if data_quality.height == 0:
        return pl.DataFrame(
            schema={"table": pl.String, "column": pl.String, "issue": pl.String, "action": pl.String, "rows": pl.Int64}
        )
    return (
        data_quality.with_columns(_data_quality_issue(pl.col("reason"), pl.col("column")).alias("issue"))
        .group_by(pl.col("table").fill_null(""), pl.col("column").fill_null(""), "issue")
        .agg(
            pl.col("action").drop_nulls().unique().sort().str.join(", ").alias("action"),
            pl.len().cast(pl.Int64).alias("rows"),
        )
        .sort(["rows", "table", "column", "issue"], descending=[True, False, False, False])
    )


def records_without_applicable_rule(result: CheckResult) -> int:
    return int(result.records.filter(pl.col("rules_applied") == 0).height)


def summary(result: CheckResult, *, formats: list[str], files: list[str], pseudonymised: bool) -> dict[str, Any]:
    """The content of summary.json, with a fixed key order."""
    meta = dict(result.meta)
    known = ("tool_version", "rules_digest", "inputs_digest", "as_of", "run_seconds", "counts")
    run: dict[str, Any] = {key: _sorted_keys(meta.get(key)) for key in known}
    for key in sorted(set(meta) - set(known)):
        run[key] = _sorted_keys(meta[key])
    run.setdefault("contract_version", CONTRACT_VERSION)
    findings_by_outcome = {o.value: 0 for o in Outcome}
    for outcome, n in result.findings.lazy().group_by(pl.col("outcome").cast(pl.String)).len().collect().rows():
        findings_by_outcome[str(outcome)] = int(n)
    return {
        **run,
        "headline": {key: int(value) for key, value in result.headline.items()},
        "findings": {"rows": sum(findings_by_outcome.values()), **findings_by_outcome},
        "outcomes_per_rule": outcomes_per_rule(result),
        "records": result.records.height,
        "records_without_applicable_rule": records_without_applicable_rule(result),
        "data_quality": {
            "rows": result.data_quality.height,
            "by_column_and_issue": data_quality_by_issue(result.data_quality).to_dicts(),
        },
        "statistics": statistics_summary(result),
        "pseudonymised": pseudonymised,
        "formats": list(formats),
        "files": files,
    }


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value, key=str)}
    return value


# ---------------------------------------------------------------- figures for people


@dataclass(frozen=True)
class FunnelStep:
    key: str
    label: str
    count: int
    rate: float | None
    """Share of the children charged and refused bail (None when there are none)."""
    short: str = ""
    """The step in a word or two (charts, the terminal)."""


FUNNEL_KEYS: tuple[str, ...] = ("charged_and_refused_bail", "requests_made", "moved", "certificates")

FUNNEL_LABELS: dict[str, str] = {
    "charged_and_refused_bail": "Charged and refused bail",
    "requests_made": "Local authority asked",
    "moved": "Moved to local authority accommodation",
    "certificates": "Certificate made",
}


FUNNEL_SHORT_LABELS: dict[str, str] = {
    "charged_and_refused_bail": "Refused bail",
    "requests_made": "LA asked",
    "moved": "Moved",
    "certificates": "Certificate",
}


def funnel(result: CheckResult) -> list[FunnelStep]:
    """The s38(6) funnel as the inspections report it: custody records of children charged
    and refused bail, then of those the local authority asked to accommodate, moved, and
    with a certificate; from the headline figures (the facts), never from the findings."""
    refused = int(result.headline.get("charged_and_refused_bail", 0))
    steps = []
    for key in FUNNEL_KEYS:
        n = int(result.headline.get(key, 0))
        steps.append(FunnelStep(key, FUNNEL_LABELS[key], n, n / refused if refused else None, FUNNEL_SHORT_LABELS[key]))
    return steps


def _rate(numerator: str, denominator: str) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def rule_rates(result: CheckResult) -> pl.DataFrame:
    """Per rule (registry order, zeros included): findings, outcomes, records assessed and
    the breach and cannot-assess rates (shares of the rule's findings)."""
    outcome = pl.col("outcome").cast(pl.String)
    records = (
        result.findings.lazy()
        .group_by(pl.col("rule_id").cast(pl.String))
        .agg(pl.col("custody_record_id").n_unique().cast(pl.Int64).alias("records"))
        .collect()
    )
    per_record = dict(records.rows())
    rows = []
    for rule_id, counts in outcomes_per_rule(result).items():
        rows.append(
            {
                "rule_id": rule_id,
                "records": int(per_record.get(rule_id, 0)),
                "findings": sum(counts.values()),
                "breach": counts[Outcome.breach.value],
                "cannot_assess": counts[Outcome.cannot_assess.value],
                "compliant": counts[Outcome.compliant.value],
            }
        )
    del outcome
    schema = dict.fromkeys(("records", "findings", "breach", "cannot_assess", "compliant"), pl.Int64)
    table = pl.DataFrame(rows, schema={"rule_id": pl.String, **schema})
    return table.with_columns(
        _rate("breach", "findings").alias("breach_rate"),
        _rate("cannot_assess", "findings").alias("cannot_assess_rate"),
    )


def record_outcomes(result: CheckResult) -> pl.DataFrame:
    """Each record with its context and its findings counted by outcome (zero where none)."""
    outcome = pl.col("outcome").cast(pl.String)
    per_record = (
        result.findings.lazy()
        .group_by("custody_record_id")
        .agg(
            pl.len().cast(pl.Int64).alias("findings"),
            (outcome == Outcome.breach.value).sum().cast(pl.Int64).alias("breaches"),
            (outcome == Outcome.cannot_assess.value).sum().cast(pl.Int64).alias("cannot_assess"),
        )
        .collect()
    )
    return (
        context_of(result)
        .drop("findings", "breaches", "cannot_assess", strict=False)
        .join(per_record.lazy(), on="custody_record_id", how="left", maintain_order="left")
        .with_columns(pl.col("findings", "breaches", "cannot_assess").fill_null(0))
        .collect()
    )


AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("under 14", 0, 13),
    ("14-15", 14, 15),
    ("16", 16, 16),
    ("17", 17, 17),
    ("18 and over", 18, 200),
)


def _age_band(age: pl.Expr) -> pl.Expr:
    band: pl.Expr = pl.lit("not known")
    for label, low, high in reversed(AGE_BANDS):
        band = pl.when(age.is_between(low, high)).then(pl.lit(label)).otherwise(band)
    return band


BREAKDOWNS: dict[str, str] = {
    "force": "Force",
    "custody_suite": "Custody suite",
    "year": "Year of arrival",
    "age_band": "Age at arrival",
    "sex": "Sex",
    "ethnicity": "Ethnicity",
    "looked_after": "Looked after",
}


def breakdown(result: CheckResult, dimension: str, outcomes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Children's records (and any other record a rule applied to) by one dimension of
    `BREAKDOWNS`: group, children, records, findings, breaches, cannot_assess, records with
    a breach, and the breach rate (share of findings) and share of records with a breach;
    most records first. A missing value is its own group, "not recorded"."""
    records = record_outcomes(result) if outcomes is None else outcomes
    records = records.filter(pl.col("is_child").fill_null(False) | (pl.col("findings") > 0))
    groups = {
        "year": pl.col("arrival_time").dt.convert_time_zone(UK_TZ).dt.year().cast(pl.String),
        "age_band": _age_band(pl.col("age_at_arrival")),
        "looked_after": pl.when(pl.col("looked_after"))
        .then(pl.lit("yes"))
        .when(~pl.col("looked_after"))
        .then(pl.lit("no")),
    }
    group = groups.get(dimension, pl.col(dimension).cast(pl.String))
    sort_by = ["group"] if dimension in ("year", "age_band") else ["records", "group"]
    table = (
        records.group_by(group.fill_null("not recorded").alias("group"))
        .agg(
            pl.col("person_id").n_unique().cast(pl.Int64).alias("children"),
            pl.len().cast(pl.Int64).alias("records"),
            pl.col("findings").sum(),
            pl.col("breaches").sum(),
            pl.col("cannot_assess").sum(),
            (pl.col("breaches") > 0).sum().cast(pl.Int64).alias("records_with_breach"),
        )
        .with_columns(
            _rate("breaches", "findings").alias("breach_rate"),
            _rate("records_with_breach", "records").alias("share_records_with_breach"),
        )
    )
    if dimension == "age_band":
        order = {label: i for i, (label, _, _) in enumerate(AGE_BANDS)}
        return table.sort(pl.col("group").replace_strict(order, default=len(order), return_dtype=pl.Int64))
    descending = [True, False] if len(sort_by) == 2 else [False]
    return table.sort(sort_by, descending=descending)


def rates_over_time(result: CheckResult) -> tuple[str, pl.DataFrame]:
    """Findings by the month (or, over more than three years, the quarter) of their occasion
    in UK time: ("month" | "quarter", table of period, findings, breaches, cannot_assess,
    breach_rate), in time order. A finding with no occasion time and no arrival is left out."""
    arrivals = result.records.lazy().select(
        pl.col("custody_record_id").cast(pl.String), pl.col("arrival_time").cast(pl.Datetime("us", "UTC"))
    )
    outcome = pl.col("outcome").cast(pl.String)
    local = (
        result.findings.lazy()
        .select(pl.col("custody_record_id").cast(pl.String), "trigger_at", "outcome")
        .join(arrivals, on="custody_record_id", how="left")
        .select(
            pl.coalesce(pl.col("trigger_at").cast(pl.Datetime("us", "UTC")), "arrival_time")
            .dt.convert_time_zone(UK_TZ)
            .alias("at"),
            outcome.alias("outcome"),
        )
        .drop_nulls("at")
    )
    months = (
        local.group_by(pl.col("at").dt.year().alias("year"), pl.col("at").dt.month().alias("month"))
        .agg(
            pl.len().cast(pl.Int64).alias("findings"),
            (pl.col("outcome") == Outcome.breach.value).sum().cast(pl.Int64).alias("breaches"),
            (pl.col("outcome") == Outcome.cannot_assess.value).sum().cast(pl.Int64).alias("cannot_assess"),
        )
        .collect()
        .sort("year", "month")
    )
    if months.height == 0:
        return "month", pl.DataFrame(
            schema={"period": pl.String, "findings": pl.Int64, "breaches": pl.Int64, "cannot_assess": pl.Int64}
        ).with_columns(pl.lit(None, pl.Float64).alias("breach_rate"))
    first, last = months.select(
        (pl.col("year").cast(pl.Int64) * 12 + pl.col("month").cast(pl.Int64)).min().alias("first"),
        (pl.col("year").cast(pl.Int64) * 12 + pl.col("month").cast(pl.Int64)).max().alias("last"),
    ).row(0)
    span = int(last) - int(first)
    if span >= 36:
        unit = "quarter"
        period = pl.format("{} Q{}", pl.col("year"), ((pl.col("month") - 1) // 3 + 1))
    else:
        unit = "month"
        period = pl.format("{}-{}", pl.col("year"), pl.col("month").cast(pl.String).str.zfill(2))
    table = (
        months.group_by(period.alias("period"), maintain_order=True)
        .agg(pl.col("findings", "breaches", "cannot_assess").sum())
        .with_columns(_rate("breaches", "findings").alias("breach_rate"))
    )
    return unit, table


STATISTICS_COLUMNS: dict[str, str] = {
    "records": "Children's records",
    "held_overnight_pre_charge": "Held overnight pre-charge",
    "held_overnight_post_charge": "Held overnight post-charge",
    "overnight_not_known": "Overnight not known",
    "aa_waits": "AA waits recorded",
    "aa_wait_median_minutes": "AA wait median (min)",
    "aa_wait_p90_minutes": "AA wait 90th percentile (min)",
    "aa_wait_over_4h": "AA waits over 4h",
    "aa_wait_over_8h": "AA waits over 8h",
}


def statistics_table(result: CheckResult, by: Sequence[str] = ()) -> pl.DataFrame:
    """Statistics that are never breaches, over children's records, overall or by `by`
    (force, custody_suite): records held overnight pre- and post-charge (`summary.json`
    names the definition) and the wait for the appropriate adult (median, 90th percentile,
    shares over 4 and 8 hours of the waits recorded). Columns: `by`, then STATISTICS_COLUMNS."""
    records = context_of(result).filter(pl.col("is_child").fill_null(False))
    hours = pl.col("aa_wait").dt.total_seconds() / 3600
    minutes = pl.col("aa_wait").dt.total_seconds() / 60
    aggregations = [
        pl.len().cast(pl.Int64).alias("records"),
        pl.col("held_overnight_pre_charge").sum().cast(pl.Int64),
        pl.col("held_overnight_post_charge").sum().cast(pl.Int64),
        (pl.col("held_overnight_pre_charge").is_null() | pl.col("held_overnight_post_charge").is_null())
        .sum()
        .cast(pl.Int64)
        .alias("overnight_not_known"),
        pl.col("aa_wait").count().cast(pl.Int64).alias("aa_waits"),
        minutes.median().round(0).alias("aa_wait_median_minutes"),
        minutes.quantile(0.9, "linear").round(0).alias("aa_wait_p90_minutes"),
        (hours > 4).mean().alias("aa_wait_over_4h"),
        (hours > 8).mean().alias("aa_wait_over_8h"),
    ]
    keys = [pl.col(k).cast(pl.String).fill_null("not recorded").alias(k) for k in by]
    if keys:
        table = records.group_by(keys).agg(aggregations).sort(["records", *by], descending=[True, *[False] * len(by)])
    else:
        table = records.select(aggregations)
    return table.select(*by, *STATISTICS_COLUMNS).collect()


def duration_bins(result: CheckResult, column: str, edges_hours: Sequence[float]) -> list[tuple[str, int]]:
    """How many children's records have `column` (aa_wait, refusal_to_move) in each band
    between the edges (hours): [("under 1h", n), ("1-2h", n), ..., ("24h or more", n)]."""
    records = context_of(result).filter(pl.col("is_child").fill_null(False) & pl.col(column).is_not_null())
    hours = records.select(pl.col(column).dt.total_seconds() / 3600).collect().to_series()
    labels = [f"under {_h(edges_hours[0])}"]
    labels += [f"{_h(low)}-{_h(high)}" for low, high in itertools.pairwise(edges_hours)]
    labels.append(f"{_h(edges_hours[-1])} or more")
    counts = [0] * len(labels)
    for value in hours.to_list():
        index = sum(1 for edge in edges_hours if value >= edge)
        counts[index] += 1
    return list(zip(labels, counts, strict=True))


def _h(hours: float) -> str:
    return f"{hours:g}h" if hours >= 1 else f"{round(hours * 60)}m"


def statistics_summary(result: CheckResult) -> dict[str, Any]:
    """summary.json's statistics: the overnight definition and the overall figures."""
    overall = statistics_table(result).row(0, named=True)
    refusal = (
        context_of(result).filter(pl.col("is_child").fill_null(False)).select("refusal_to_move").collect().to_series()
    )
    minutes = (refusal.dt.total_seconds() / 60).drop_nulls()
    return {
        "held_overnight_definition": result.meta.get("held_overnight"),
        **{key: _plain(value) for key, value in overall.items()},
        "refusal_to_move_recorded": int(minutes.len()),
        "refusal_to_move_median_minutes": _plain(minutes.median() if minutes.len() else None),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return value
