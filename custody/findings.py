"""The findings of a check run, and every table and figure derived from them.

A `CheckResult` holds the one findings table (with the records and data quality it was
computed from). Per child, exceptions, counts per rule and the summary are derived here,
once; every output (Parquet, CSV, XLSX, JSON, HTML, terminal) renders these and never
re-derives a fact the engine computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from custody.contract import CONTRACT_VERSION, DATA_QUALITY_SCHEMA, FINDINGS_SCHEMA, UK_TZ, Outcome


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
    strip_searches: pl.DataFrame | None = None
    """`strip_search_figures`: strip searches of children by age, sex and ethnicity (no ids);
    none when the run did not compute them (a result built by hand)."""
    findings_file: Path | None = None
    """The Parquet file `findings` was spilled to, already in the contract's form (columns,
    order, types, compression), so that writing findings.parquet is a file copy."""
    """tool_version, rules_digest, inputs_digest, as_of (ISO UTC), run_seconds,
    counts: {detention_rows, event_rows, records_loaded, events_loaded, rows_rejected, persons (distinct
    person_id), children (of them, under 18 at arrival or recorded as appearing so), findings}."""


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
# of the workbook and keeps every row readable in a spreadsheet.
EXCEPTION_COLUMNS: dict[str, str] = {
    "person_id": "Child",
    "custody_record_id": "Custody record",
    "rule_id": "Rule",
    "outcome": "Outcome",
    "severity": "Severity",
    "basis": "Basis",
    "when_uk": "When (UK time)",
    "message": "What was found",
    "citation": "Law",
    "rule_version": "Rule version",
}


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


def children_frame(result: CheckResult) -> pl.DataFrame:
    """One row per child: every person_id among the records and the findings, sorted by id.

    A child whose records no rule applied to (say an adult, or never charged) still has a
    row, with zero counts and worst_outcome `none`.
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
    arrival_uk = pl.col("arrival_time").cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(UK_TZ)
    per_child_records = result.records.group_by("person_id").agg(
        pl.len().cast(pl.Int64).alias("records"),
        arrival_uk.min().dt.strftime(UK_ISO_FORMAT).alias("first_arrival"),
        arrival_uk.max().dt.strftime(UK_ISO_FORMAT).alias("last_arrival"),
        *_safeguard_counts(result.records),
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


def exceptions_frame(result: CheckResult) -> pl.DataFrame:
    """Breach and cannot_assess findings, by child then time, with human column names."""
    findings = findings_frame(result)
    return (
        findings.filter(pl.col("outcome").cast(pl.String).is_in(EXCEPTION_OUTCOMES))
        .drop("evidence")
        .collect()
        .sort(["person_id", "trigger_at", "custody_record_id", "rule_id"], nulls_last=True)
        .with_columns(pl.col("trigger_at").dt.convert_time_zone(UK_TZ).dt.strftime(UK_HUMAN_FORMAT).alias("when_uk"))
        .select(pl.col(name).cast(pl.String).alias(label) for name, label in EXCEPTION_COLUMNS.items())
    )


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


def data_quality_by_reason(result: CheckResult) -> dict[str, int]:
    """How many data-quality rows there are for each reason, most frequent first."""
    rows = (
        result.data_quality.group_by(pl.col("reason").fill_null("(no reason given)"))
        .len()
        .sort(["len", "reason"], descending=[True, False])
        .rows()
    )
    return {str(reason): int(n) for reason, n in rows}


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
            "by_reason": data_quality_by_reason(result),
        },
        "pseudonymised": pseudonymised,
        "formats": list(formats),
        "files": files,
    }


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value, key=str)}
    return value
