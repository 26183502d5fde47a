"""Checks run for a comparison: a record set checked on the fly as one side of `custody
diff`, and the impact of a rule change (`custody rules diff`): the same records checked
with two rule sets, every finding whose outcome, message or version changes, and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from custody.compare import Comparison, Side, compare
from custody.contract import UK_TZ
from custody.findings import CheckResult
from custody.pipeline import PreparedRules, run_check
from custody.read.loader import load_record_set
from custody.read.timeparse import DateOrder

FACTS_FILE = "_facts.yaml"


def side_from_records(
    source: Path | tuple[Path, Path],
    *,
    rules: PreparedRules,
    label: str,
    pseudonymise_key: str | None = None,
    date_order: DateOrder = "dmy",
) -> Side:
    """A record set checked in memory as one side of a comparison (with each record's force)."""
    result = run_check(source, rules=rules, date_order=date_order)
    forces = load_record_set(source, date_order=date_order).detentions.select(
        pl.col("custody_record_id").cast(pl.String), pl.col("force").cast(pl.String)
    )
    return side_from_result(result, label=label, forces=forces, pseudonymise_key=pseudonymise_key)


def side_from_result(
    result: CheckResult,
    *,
    label: str,
    forces: pl.DataFrame | None = None,
    pseudonymise_key: str | None = None,
) -> Side:
    """A check's result as one side of a comparison; ids replaced under `pseudonymise_key`."""
    findings = result.findings.lazy().collect()
    if forces is not None:
        findings = findings.join(
            forces.unique("custody_record_id"), on="custody_record_id", how="left", maintain_order="left"
        )
    result = CheckResult(
        findings=findings,
        data_quality=result.data_quality,
        records=result.records,
        headline=result.headline,
        rules=result.rules,
        meta=result.meta,
    )
    key_id = None
    if pseudonymise_key is not None:
        from custody.pseudonymise import key_id as make_key_id
        from custody.pseudonymise import pseudonymise

        result = pseudonymise(result, pseudonymise_key)
        key_id = make_key_id(pseudonymise_key)
    return Side(
        label=label,
        findings=result.findings.lazy().collect(),
        headline=dict(result.headline),
        pseudonymised=pseudonymise_key is not None,
        key_id=key_id,
        meta=dict(result.meta),
    )


# ---------------------------------------------------------------- rule changes


def _file_digests(rules: PreparedRules) -> dict[str, tuple[str, str]]:
    """rule id -> (file name, SHA-256 of its text); _facts.yaml under its own name."""
    digests = {
        source.rule.id: (source.path.name, hashlib.sha256(source.path.read_bytes()).hexdigest())
        for source in rules.rule_set.rules
    }
    facts = rules.rule_set.directory / FACTS_FILE
    digests[FACTS_FILE] = (FACTS_FILE, hashlib.sha256(facts.read_bytes()).hexdigest() if facts.is_file() else "")
    return digests


@dataclass
class RulesImpact:
    """What a rule change does to the findings of one record set."""

    comparison: Comparison
    base_label: str
    new_label: str
    records_label: str
    reasons: dict[str, str]
    """rule id -> why its findings may differ (which file changed, or none)."""

    @property
    def changed(self) -> pl.DataFrame:
        """The findings whose outcome, message or rule version changes, with `reason`."""
        rows = self.comparison.rows.filter(
            pl.col("outcome_changed") | pl.col("message_changed") | pl.col("version_changed")
        )
        reason = pl.col("rule_id").replace_strict(self.reasons, default="no rule file changed", return_dtype=pl.String)
        return rows.with_columns(
            pl.when(pl.col("version_changed"))
            .then(
                pl.format("{} (version {} -> {})", reason, pl.col("rule_version_before"), pl.col("rule_version_after"))
            )
            .otherwise(reason)
            .alias("reason")
        )

    def per_rule(self) -> dict[str, dict[str, Any]]:
        """Per rule: why, how many findings change outcome (and how), message only, version,
        and the period of the records affected (first and last UK day), by year too."""
        changed = self.changed.with_columns(
            pl.col("trigger_at").dt.convert_time_zone(UK_TZ).dt.date().alias("day"),
            pl.format("{} -> {}", "outcome_before", "outcome_after").alias("move"),
        )
        table: dict[str, dict[str, Any]] = {}
        for (rule_id,), rows in sorted(changed.group_by("rule_id"), key=lambda item: str(item[0][0])):
            outcome = rows.filter(pl.col("outcome_changed"))
            days = [d for d in rows.get_column("day").to_list() if d is not None]
            years: dict[str, int] = {}
            for day in days:
                years[str(day.year)] = years.get(str(day.year), 0) + 1
            table[str(rule_id)] = {
                "reason": self.reasons.get(str(rule_id), "no rule file changed"),
                "outcome_changes": outcome.height,
                "outcome_moves": dict(sorted(outcome.group_by("move").len().rows())),
                "message_only": rows.filter(~pl.col("outcome_changed") & pl.col("message_changed")).height,
                "version_changes": rows.filter(pl.col("version_changed")).height,
                "first_day": min(days).isoformat() if days else None,
                "last_day": max(days).isoformat() if days else None,
                "by_year": dict(sorted(years.items())),
            }
        return table

    def summary(self) -> dict[str, Any]:
        changed = self.changed
        return {
            "base_rules": self.base_label,
            "new_rules": self.new_label,
            "records": self.records_label,
            "base_rules_digest": self.comparison.before.meta.get("rules_digest"),
            "new_rules_digest": self.comparison.after.meta.get("rules_digest"),
            "findings_compared": self.comparison.rows.height,
            "outcome_changes": changed.filter(pl.col("outcome_changed")).height,
            "message_only_changes": changed.filter(~pl.col("outcome_changed") & pl.col("message_changed")).height,
            "version_changes": changed.filter(pl.col("version_changed")).height,
            "files_changed": sorted({r for r in self.reasons.values() if r != "no rule file changed"}),
            "per_rule": self.per_rule(),
            "changes": [_change(row) for row in changed.iter_rows(named=True)],
        }


def _change(row: dict[str, Any]) -> dict[str, Any]:
    trigger = row["trigger_at"]
    return {
        "custody_record_id": row["custody_record_id"],
        "rule_id": row["rule_id"],
        "trigger_at": trigger.isoformat().replace("+00:00", "Z") if isinstance(trigger, dt.datetime) else None,
        "outcome_before": row["outcome_before"],
        "outcome_after": row["outcome_after"],
        "rule_version_before": row["rule_version_before"],
        "rule_version_after": row["rule_version_after"],
        "message_changed": row["message_changed"],
        "reason": row["reason"],
    }


def _reasons(base: PreparedRules, new: PreparedRules) -> dict[str, str]:
    before, after = _file_digests(base), _file_digests(new)
    facts_changed = before[FACTS_FILE][1] != after[FACTS_FILE][1]
    reasons: dict[str, str] = {}
    for rule_id in sorted((set(before) | set(after)) - {FACTS_FILE}):
        if rule_id not in before:
            reasons[rule_id] = f"{after[rule_id][0]} added"
        elif rule_id not in after:
            reasons[rule_id] = f"{before[rule_id][0]} removed"
        elif before[rule_id][1] != after[rule_id][1]:
            reasons[rule_id] = f"{after[rule_id][0]} changed" + (f"; {FACTS_FILE} changed" if facts_changed else "")
        elif facts_changed:
            reasons[rule_id] = f"{FACTS_FILE} changed"
    return reasons


def rules_impact(
    base: PreparedRules,
    new: PreparedRules,
    records: Path | tuple[Path, Path],
    *,
    base_label: str,
    new_label: str,
    records_label: str,
    date_order: DateOrder = "dmy",
) -> RulesImpact:
    """The records checked with `base` and with `new`, and every finding that changes."""
    loaded = load_record_set(records, date_order=date_order)
    forces = loaded.detentions.select(pl.col("custody_record_id").cast(pl.String), pl.col("force").cast(pl.String))
    del loaded
    before = side_from_result(run_check(records, rules=base, date_order=date_order), label=base_label, forces=forces)
    after = side_from_result(run_check(records, rules=new, date_order=date_order), label=new_label, forces=forces)
    return RulesImpact(compare(before, after), base_label, new_label, records_label, _reasons(base, new))
