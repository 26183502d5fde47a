"""One custody record explained (`custody explain`): its timeline in UK time and UTC, the
facts derived from it, and why each rule decided as it did, with the law."""

from __future__ import annotations

import dataclasses
from zoneinfo import ZoneInfo

import polars as pl

from custody.contract import UK_TZ
from custody.errors import UsageError
from custody.facts import fact_specs
from custody.pipeline import PreparedRules, findings_for
from custody.read.loader import RecordSet

UK = ZoneInfo(UK_TZ)


def _local(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:%Y-%m-%d %H:%M %Z}"


def explain_record(record_id: str, records: RecordSet, rules: PreparedRules) -> str:
    """The record's timeline, the facts derived and each rule's outcome with its reason and law."""
    detention = records.detentions.filter(pl.col("custody_record_id") == record_id)
    if detention.is_empty():
        rejected = records.data_quality.filter(pl.col("custody_record_id") == record_id)
        if rejected.height:
            reasons = "; ".join(sorted(set(rejected["reason"].to_list())))
            raise UsageError(f"Custody record {record_id} was not loaded ({reasons}): see data_quality.csv.")
        raise UsageError(f"There is no custody record {record_id} in these records: check the id.")
    events = records.events.filter(pl.col("custody_record_id") == record_id).sort("event_time", "_row")
    quality = records.data_quality.filter(pl.col("custody_record_id") == record_id)
    subset = dataclasses.replace(records, detentions=detention, events=events, data_quality=quality)
    facts, findings = findings_for(subset, rules)
    row = detention.row(0, named=True)
    lines = [f"Custody record {record_id} (child {row['person_id']})", ""]
    for name in ("date_of_birth", "appears_under_18", "detention_power", "place_of_safety", "force", "custody_suite"):
        if row.get(name) is not None:
            lines.append(f"  {name}: {row[name]}")
    lines += ["", "Timeline (UK time | UTC)"]
    arrival = row["arrival_time"]
    timeline = [(arrival, "arrival", "", "")]
    timeline += [(e["event_time"], e["event_type"], e["detail"] or "", "") for e in events.iter_rows(named=True)]
    for instant, kind, detail, _ in sorted(timeline, key=lambda t: (t[0] is None, t[0] or arrival)):
        utc = f"{instant:%Y-%m-%d %H:%M}Z" if instant else "-"
        local = _local(instant.astimezone(UK) if instant else None)
        lines.append(f"  {local:<22} | {utc:<18} {kind} {detail}".rstrip())
    if quality.height:
        lines += ["", "Data-quality problems on this record"]
        for q in quality.iter_rows(named=True):
            lines.append(f"  {q['file']} row {q['row']} {q['column'] or ''}: {q['reason']} ({q['action']})")
    specs = fact_specs()
    lines += ["", "Facts derived (recorded values only)"]
    fact_row = facts.records.row(0, named=True)
    for name, value in fact_row.items():
        spec = specs.get(name)
        if spec is None or spec.sensitive or value in (None, 0, False) or name in ("custody_record_id", "person_id"):
            continue
        shown = _local(value.astimezone(UK)) if spec.kind == "instant" else value
        lines.append(f"  {name}: {shown}")
    lines += ["", "Rules"]
    for compiled in rules.compiled:
        found = findings.filter(pl.col("rule_id").cast(pl.String) == compiled.rule_id)
        if found.is_empty():
            lines.append(f"  {compiled.rule_id}: does not apply to this record")
            continue
        occasions = len(facts.occasions[compiled.grain]) if compiled.grain else 0
        for finding in found.iter_rows(named=True):
            heading = f"  {compiled.rule_id}"
            if compiled.grain is not None and finding["trigger_at"] is not None:
                number = _occasion_number(facts.occasions[compiled.grain], finding["trigger_at"])
                at = _local(finding["trigger_at"].astimezone(UK))
                heading += f", occasion {number} of {occasions} ({compiled.grain} at {at})"
            lines.append(f"{heading}: {finding['outcome'].upper()} ({finding['basis']}, {finding['severity']})")
            lines.append(f"      {finding['message']}")
            lines.append(f"      law: {finding['citation']} (version of {finding['rule_version']})")
    return "\n".join(lines)


def _occasion_number(occasions: pl.DataFrame, at: object) -> int:
    """The number of the occasion whose instant is `at` (the first such)."""
    numbers = occasions.filter(pl.col("occasion_at") == at)["occasion_number"]
    return int(numbers[0]) if len(numbers) else 0
