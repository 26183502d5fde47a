"""What a check run produces: one findings table and what is needed to render it.

Every output (CSV, Parquet, XLSX, JSON, HTML, terminal) is a rendering of a
`CheckResult`; nothing downstream re-derives a fact the engine computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl


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
    how many findings rows it has; 0 means no rule applied to it)."""

    headline: dict[str, int]
    """The inspection's headline figures, computed by the engine from the facts:
    children_detained, records, charged_and_refused_bail, requests_made, moved,
    certificates, s136_police_station_uses."""

    rules: list[RuleInfo]
    meta: dict[str, Any] = field(default_factory=dict)
    findings_file: Path | None = None
    """The Parquet file `findings` was spilled to, already in the contract's form (columns,
    order, types, compression), so that writing findings.parquet is a file copy."""
    """tool_version, rules_digest, inputs_digest, as_of (ISO UTC), run_seconds,
    counts: {detention_rows, event_rows, records_loaded, events_loaded, rows_rejected, persons (distinct
    person_id), children (of them, under 18 at arrival or recorded as appearing so), findings}."""
