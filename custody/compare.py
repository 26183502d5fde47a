"""Two sets of findings compared: what is new, resolved, continuing or changed.

The same comparison serves a re-inspection (`custody diff`: last year's run against this
year's, or the same records before and after they were corrected) and a rule change
(`custody rules diff`: the same records checked with two rule sets).

Findings are matched by their stable keys, (custody_record_id, rule_id, trigger_at):
`trigger_at` names the occasion (DATA-CONTRACT v1.1: the s38 rules give one finding per
refusal of bail, so a record may have several rows for one rule), and a null trigger_at
matches a null one. Should two rows ever share a key, they are paired in message order,
so that every row is matched at most once and none is counted twice.

Each matched pair (or lone row) gets one status. An exception is a finding that needs
case review (breach or cannot_assess, as in exceptions.csv):

- `new`: an exception after that was not one before (absent or compliant before);
- `resolved`: an exception before that is not one after (absent or compliant after);
- `continuing`: the same exception outcome before and after;
- `changed`: both exceptions with different outcomes (breach <-> cannot_assess), or a
  compliant finding that appeared or disappeared;
- `unchanged`: compliant before and after.

Whether the message, the evidence or the rule version changed is reported beside the
status, whatever it is (a rule change may reword a message and decide the same).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from custody.contract import FINDINGS_SCHEMA, UK_TZ, Outcome
from custody.errors import InputError, UsageError
from custody.findings import HEADLINE_LABELS

KEYS: tuple[str, ...] = ("custody_record_id", "rule_id", "trigger_at")

STATUSES: tuple[str, ...] = ("new", "resolved", "continuing", "changed", "unchanged")
"""Every status a compared finding can have, in the order the outputs list them."""

REPORTED_STATUSES: tuple[str, ...] = ("new", "resolved", "continuing", "changed")
"""The statuses diff.csv lists by default (unchanged compliant findings are only counted)."""

ABSENT = "none"
"""The outcome column's value on the side where a finding has no row."""

DIFF_SCHEMA = pl.Schema(
    {
        "person_id": pl.String(),
        "custody_record_id": pl.String(),
        "rule_id": pl.String(),
        "trigger_at": pl.Datetime("us", "UTC"),
        "force": pl.String(),
        "status": pl.Enum(list(STATUSES)),
        "outcome_before": pl.String(),
        "outcome_after": pl.String(),
        "outcome_changed": pl.Boolean(),
        "message_changed": pl.Boolean(),
        "evidence_changed": pl.Boolean(),
        "version_changed": pl.Boolean(),
        "rule_version_before": pl.String(),
        "rule_version_after": pl.String(),
        "severity": pl.String(),
        "basis": pl.String(),
        "message_before": pl.String(),
        "message_after": pl.String(),
    }
)
"""diff.csv / diff.parquet: one row per compared finding (the columns, in this order)."""

_COMPARED = ("person_id", "outcome", "severity", "basis", "rule_version", "message", "evidence", "force")
_EXCEPTION = (Outcome.breach.value, Outcome.cannot_assess.value)
NOT_RECORDED = "(not recorded)"


@dataclass
class Side:
    """One side of a comparison: a run's findings and what its summary says about it."""

    label: str
    """How the outputs name it: the folder or record set, as given."""

    findings: pl.DataFrame
    """The contract's findings columns (plus `force` when known)."""

    headline: dict[str, int]
    pseudonymised: bool = False
    key_id: str | None = None
    """The pseudonymisation key's id (summary.json), when recorded."""

    meta: dict[str, Any] = field(default_factory=dict)
    """tool_version, rules_digest, inputs_digest, as_of, counts: as summary.json holds them."""


@dataclass
class Comparison:
    before: Side
    after: Side
    rows: pl.DataFrame
    """`DIFF_SCHEMA`: every compared finding (unchanged ones included), by child, record,
    rule and occasion."""

    def reported(self, *, include_unchanged: bool = False) -> pl.DataFrame:
        """The rows diff.csv holds: every status but unchanged (unless asked)."""
        if include_unchanged:
            return self.rows
        return self.rows.filter(pl.col("status").cast(pl.String).is_in(REPORTED_STATUSES))

    def counts(self) -> dict[str, int]:
        """How many findings have each status (every status, zeros included)."""
        found = dict(self.rows.group_by(pl.col("status").cast(pl.String)).len().rows())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def counts_by(self, column: str) -> dict[str, dict[str, int]]:
        """{value of `column`: {status: n}} for the statuses worth reporting, sorted by value;
        a value with only unchanged findings is left out."""
        grouped = (
            self.rows.filter(pl.col("status").cast(pl.String) != "unchanged")
            .group_by(pl.col(column).fill_null(NOT_RECORDED).cast(pl.String), pl.col("status").cast(pl.String))
            .len()
            .rows()
        )
        table: dict[str, dict[str, int]] = {}
        for value, status, n in sorted(grouped):
            table.setdefault(str(value), dict.fromkeys(REPORTED_STATUSES, 0))[str(status)] = int(n)
        return table

    def children(self) -> pl.DataFrame:
        """One row per child with a reported change: how many findings are new, resolved,
        continuing or changed, and the rules involved."""
        reported = self.reported()
        status = pl.col("status").cast(pl.String)
        return (
            reported.group_by("person_id")
            .agg(
                *[(status == s).sum().cast(pl.Int64).alias(s) for s in REPORTED_STATUSES],
                pl.col("rule_id").unique().sort().str.join(";").alias("rules"),
            )
            .sort("person_id", nulls_last=True)
        )

    def changed_messages(self) -> int:
        """Findings whose outcome stayed the same but whose message changed."""
        return int(self.rows.filter(~pl.col("outcome_changed") & pl.col("message_changed")).height)

    def headlines(self) -> list[tuple[str, str, int, int]]:
        """(key, label, before, after) for every headline figure either side has."""
        keys = list(self.before.headline) + [k for k in self.after.headline if k not in self.before.headline]
        return [
            (
                key,
                HEADLINE_LABELS.get(key, key.replace("_", " ").capitalize()),
                int(self.before.headline.get(key, 0)),
                int(self.after.headline.get(key, 0)),
            )
            for key in keys
        ]

    def summary(self) -> dict[str, Any]:
        """The comparison's figures as plain data (the JSON output), with a fixed key order."""
        return {
            "before": _side_summary(self.before),
            "after": _side_summary(self.after),
            "findings": self.counts(),
            "per_rule": self.counts_by("rule_id"),
            "per_force": self.counts_by("force"),
            "message_only_changes": self.changed_messages(),
            "headline": {key: {"before": b, "after": a} for key, _, b, a in self.headlines()},
        }


def _side_summary(side: Side) -> dict[str, Any]:
    return {
        "label": side.label,
        "findings": side.findings.height,
        "pseudonymised": side.pseudonymised,
        "rules_digest": side.meta.get("rules_digest"),
        "inputs_digest": side.meta.get("inputs_digest"),
    }


def check_comparable(before: Side, after: Side) -> None:
    """Refuse, in one sentence, to compare runs whose ids cannot match: a pseudonymised run
    with a plain one, or runs pseudonymised under different keys (when their summaries say)."""
    if before.pseudonymised != after.pseudonymised:
        plain, hidden = (before, after) if after.pseudonymised else (after, before)
        raise UsageError(
            f"{hidden.label} was pseudonymised and {plain.label} was not, so their ids cannot match: "
            "check both with the same --pseudonymise-key (or both without one)."
        )
    if before.key_id and after.key_id and before.key_id != after.key_id:
        raise UsageError(
            f"{before.label} and {after.label} were pseudonymised with different keys, so their ids cannot "
            "match: check both with the same --pseudonymise-key."
        )


def _prepared(findings: pl.DataFrame) -> pl.DataFrame:
    """The compared columns as text, with an occurrence number that tells apart rows sharing a key."""
    frame = findings
    if "force" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("force"))
    return (
        frame.select(
            pl.col("custody_record_id").cast(pl.String),
            pl.col("rule_id").cast(pl.String),
            pl.col("trigger_at").cast(pl.Datetime("us", "UTC")),
            *[pl.col(c).cast(pl.String) for c in _COMPARED],
        )
        .sort([*KEYS, "message", "evidence"], nulls_last=True)
        .with_columns(pl.int_range(pl.len()).over(list(KEYS)).alias("_occurrence"))
    )


def compare(before: Side, after: Side) -> Comparison:
    """Every finding of either side, matched by (custody_record_id, rule_id, trigger_at)."""
    check_comparable(before, after)
    keys = [*KEYS, "_occurrence"]
    joined = _prepared(before.findings).join(
        _prepared(after.findings), on=keys, how="full", coalesce=True, nulls_equal=True, suffix="_after"
    )
    was, now = pl.col("outcome").fill_null(ABSENT), pl.col("outcome_after").fill_null(ABSENT)
    was_exception, now_exception = was.is_in(_EXCEPTION), now.is_in(_EXCEPTION)
    status = (
        pl.when(now_exception & ~was_exception)
        .then(pl.lit("new"))
        .when(was_exception & ~now_exception)
        .then(pl.lit("resolved"))
        .when(was_exception & (was == now))
        .then(pl.lit("continuing"))
        .when(was != now)
        .then(pl.lit("changed"))
        .otherwise(pl.lit("unchanged"))
    )

    def differs(column: str) -> pl.Expr:
        both = pl.col("outcome").is_not_null() & pl.col("outcome_after").is_not_null()
        return (both & pl.col(column).ne_missing(pl.col(f"{column}_after"))).fill_null(False)

    rows = joined.select(
        pl.coalesce("person_id_after", "person_id").alias("person_id"),
        "custody_record_id",
        "rule_id",
        "trigger_at",
        pl.coalesce("force_after", "force").alias("force"),
        status.cast(DIFF_SCHEMA["status"]).alias("status"),
        was.alias("outcome_before"),
        now.alias("outcome_after"),
        (was != now).alias("outcome_changed"),
        differs("message").alias("message_changed"),
        differs("evidence").alias("evidence_changed"),
        differs("rule_version").alias("version_changed"),
        pl.col("rule_version").alias("rule_version_before"),
        pl.col("rule_version_after"),
        pl.coalesce("severity_after", "severity").alias("severity"),
        pl.coalesce("basis_after", "basis").alias("basis"),
        pl.col("message").alias("message_before"),
        pl.col("message_after"),
    ).sort(["person_id", "custody_record_id", "rule_id", "trigger_at"], nulls_last=True)
    return Comparison(before, after, rows.select(pl.col(n).cast(t) for n, t in DIFF_SCHEMA.items()))


# ---------------------------------------------------------------- a run's output folder


SUMMARY_FILE = "summary.json"


def is_run_folder(path: Path) -> bool:
    """True for a folder `custody check --out` wrote (its summary.json and findings)."""
    return (path / SUMMARY_FILE).is_file() and any((path / n).is_file() for n in ("findings.parquet", "findings.csv"))


def read_run(folder: Path) -> Side:
    """A `custody check --out` folder as one side of a comparison (findings.parquet, or
    findings.csv when the run wrote no Parquet, and summary.json)."""
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(
            f"{folder / SUMMARY_FILE} cannot be read as a check's summary: give a folder `custody check --out` wrote."
        ) from None
    if not isinstance(summary, dict):
        raise InputError(
            f"{folder / SUMMARY_FILE} is not a check's summary: give a folder `custody check --out` wrote."
        )
    findings = _read_findings(folder)
    headline = summary.get("headline") if isinstance(summary.get("headline"), dict) else {}
    return Side(
        label=str(folder),
        findings=findings,
        headline={str(k): int(v) for k, v in (headline or {}).items() if isinstance(v, int)},
        pseudonymised=bool(summary.get("pseudonymised", False)),
        key_id=summary.get("pseudonymisation_key_id") or None,
        meta={k: summary.get(k) for k in ("tool_version", "rules_digest", "inputs_digest", "as_of", "counts")},
    )


def _read_findings(folder: Path) -> pl.DataFrame:
    parquet, text = folder / "findings.parquet", folder / "findings.csv"
    try:
        if parquet.is_file():
            frame = pl.read_parquet(parquet)
        else:
            frame = pl.read_csv(text, infer_schema=False)
            frame = frame.with_columns(
                pl.col("trigger_at").replace("", None).str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
            )
    except (OSError, pl.exceptions.PolarsError):
        raise InputError(f"the findings in {folder} cannot be read: run `custody check` into it again.") from None
    missing = [c for c in FINDINGS_SCHEMA if c not in frame.columns]
    if missing:
        raise InputError(f"the findings in {folder} lack the column {missing[0]}: run `custody check` into it again.")
    return frame


def uk_day(instant: dt.datetime | None) -> str:
    """The UK calendar day of an instant (for counting changes by period), or '' when none."""
    if instant is None:
        return ""
    from zoneinfo import ZoneInfo

    return instant.astimezone(ZoneInfo(UK_TZ)).date().isoformat()
