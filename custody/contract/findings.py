"""What the checker writes (../shared/DATA-CONTRACT.md, "Output"): the findings and
data-quality tables and the vocabularies of a finding. Declarations only, no logic."""

from __future__ import annotations

from enum import StrEnum

import polars as pl


class Outcome(StrEnum):
    breach = "breach"
    compliant = "compliant"
    cannot_assess = "cannot_assess"


class Severity(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


class Basis(StrEnum):
    statute = "statute"
    code = "code"
    guidance = "guidance"


FINDINGS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("person_id", "the child"),
    ("custody_record_id", "the custody record"),
    ("rule_id", "stable rule id"),
    ("outcome", "breach, compliant or cannot_assess"),
    ("severity", "high, medium, low"),
    ("basis", "statute, code, guidance (what kind of duty it is)"),
    ("citation", "the provision"),
    ("rule_version", "the version of the rule applied (the date it took effect)"),
    ("message", "one sentence with the facts and times behind the outcome"),
    ("evidence", "JSON object of the facts used (times in ISO 8601 with offset)"),
    ("trigger_at", "the instant that chose the rule version (UTC), when known"),
)

FINDINGS_SCHEMA = pl.Schema(
    {
        "person_id": pl.String(),
        "custody_record_id": pl.String(),
        # Repeated on every finding: categorical (dictionary-encoded in Parquet, text in CSV).
        "rule_id": pl.Categorical(),
        "outcome": pl.Enum([o.value for o in Outcome]),
        "severity": pl.Enum([s.value for s in Severity]),
        "basis": pl.Enum([b.value for b in Basis]),
        "citation": pl.Categorical(),
        "rule_version": pl.Categorical(),
        "message": pl.String(),
        "evidence": pl.String(),
        "trigger_at": pl.Datetime("us", "UTC"),
    }
)

DATA_QUALITY_SCHEMA = pl.Schema(
    {
        "file": pl.String(),
        "table": pl.String(),
        "row": pl.Int64(),
        "column": pl.String(),
        "value": pl.String(),
        "reason": pl.String(),
        "action": pl.String(),
        "custody_record_id": pl.String(),
        "event_type": pl.String(),
    }
)
"""`action` says what happened to the row: `row_rejected` (not used at all),
`value_unusable` (the row is used, that value is treated as missing), or
`warning` (used as read, but worth a look). `event_type` is the row's event
type as read (events table only), so that the engine knows which facts a bad
event row could have touched."""
