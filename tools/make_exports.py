"""Rewrite sample_records/demo/ as two force-export layouts, each with its input profile.

    python3 tools/make_exports.py            # rewrites sample_records/export_wide/ and export_auditlog/

The exports hold exactly the records of demo/ (same children, same instants, same codes),
so that each, read through its profile, gives exactly the findings of demo/
(tests/test_profiles.py checks it). Rerun this script whenever demo/ changes; the test also
fails if the committed exports are not what this script writes.

- export_wide/: one row per detention, as many systems export a custody record: separate UK
  local date (DD/MM/YYYY) and time (HH:MM) columns, force codes for the power and the place of
  safety, yes/no flags with their date and time (AA requested, welfare informed), repeated
  groups (Review_1..Review_n, Cell_In_1..n), and two columns the checker does not need.
  Times the demo gives with an explicit offset (around clock changes) carry BST or GMT.
- export_auditlog/: a custody-record file (arrival as a UTC timestamp) and an audit log of
  entries (UTC time, entry type, free text), with entries that are not events (meals,
  property) that the profile ignores.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custody.contract import EVENT_DETAILS  # noqa: E402
from custody.read.timeparse import parse_datetimes  # noqa: E402

UK = ZoneInfo("Europe/London")

WIDE_LABELS = {
    "detention_authorised": "Det_Auth",
    "aa_requested": "AA_Requested",
    "aa_arrived": "AA_Arrived",
    "aa_left": "AA_Left",
    "welfare_informed": "Welfare_Informed",
    "review": "Review",
    "extension_authorised": "Extension",
    "charged": "Charged",
    "bail_refused": "Bail_Refused",
    "bail_granted": "Bail_Granted",
    "la_requested": "LA_Request",
    "la_response": "LA_Response",
    "transferred_to_la": "Transfer_LA",
    "certificate": "S38_Cert",
    "certificate_to_court": "Cert_To_Court",
    "court_appearance": "Court",
    "cell_placed": "Cell_In",
    "cell_left": "Cell_Out",
    "mha_consultation": "MHA_Consult",
    "mha_assessment_completed": "MHA_Assessed",
    "mha_extension": "MHA_Ext",
    "released": "Released",
    "strip_search": "Strip_Search",
    "interview_started": "Interview_Start",
    "interview_ended": "Interview_End",
}
FLAGGED = ("aa_requested", "welfare_informed")
"""Held as a yes/no flag with its date and time."""

WIDE_POWER = {
    "pace_arrest": "ARREST",
    "warrant": "WARRANT",
    "bail_breach": "BAIL BREACH",
    "court_remand": "REMAND",
    "mha_s136": "S136",
    "mha_s135": "S135",
    "other": "OTHER",
}
WIDE_PLACE = {
    "police_station": "CUSTODY",
    "hospital": "HOSP",
    "health_based": "HBPOS",
    "emergency_department": "A&E",
    "other": "OTHER",
}
LOG_POWER = {
    "pace_arrest": "Arrest (PACE)",
    "warrant": "Arrest on warrant",
    "bail_breach": "Breach of bail",
    "court_remand": "Remand from court",
    "mha_s136": "Mental Health Act s136",
    "mha_s135": "Mental Health Act s135",
    "other": "Other",
}
LOG_PLACE = {
    "police_station": "Police station",
    "hospital": "Hospital",
    "health_based": "Health-based place of safety",
    "emergency_department": "Emergency department",
    "other": "Other",
}


_OFFENCE_WIDE = '{"VIOLENT": violent, "SEXUAL": sexual, "OTHER": other}'
_OFFENCE_LOG = '{"Violent": violent, "Sexual": sexual, "Other": other}'


def _code(detail: str) -> str:
    return detail.upper().replace("_", " ")


def _entry(event_type: str, detail: str | None) -> str:
    name = event_type.upper().replace("_", " ").replace("LA ", "LOCAL AUTHORITY ").replace("AA ", "APPROPRIATE ADULT ")
    return f"{name} - {_code(detail)}" if detail else name


def _read(demo: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    detentions = pl.read_csv(demo / "detentions.csv", infer_schema=False)
    events = pl.read_csv(demo / "events.csv", infer_schema=False)
    detentions = detentions.with_columns(
        _arrival=parse_datetimes(detentions["arrival_time"])["value"],
        _arrival_marked=detentions["arrival_time"].str.contains(r"T|[+-]\d\d:\d\d$|Z$"),
    )
    events = events.with_columns(
        _at=parse_datetimes(events["event_time"])["value"],
        _marked=events["event_time"].str.contains(r"T|[+-]\d\d:\d\d$|Z$"),
    )
    if detentions["_arrival"].null_count() or events["_at"].null_count():
        raise SystemExit("demo/ holds a time the checker cannot read: fix demo/ first")
    return detentions, events


def _local(instant: dt.datetime, marked: bool) -> tuple[str, str]:
    local = instant.astimezone(UK)
    time = local.strftime("%H:%M")
    if marked:  # the demo gave an offset: keep it, as BST or GMT
        time += " BST" if local.utcoffset() == dt.timedelta(hours=1) else " GMT"
    return local.strftime("%d/%m/%Y"), time


def _uk_date(iso: str | None) -> str:
    return "" if not iso else dt.date.fromisoformat(iso).strftime("%d/%m/%Y")


def _yes_no(value: str | None, yes: str = "Y", no: str = "N") -> str:
    return "" if value is None else (yes if value == "true" else no)


def _groups(events: pl.DataFrame) -> dict[str, tuple[int, bool]]:
    """event type -> (most occurrences in one record, whether any has a detail), in vocabulary order."""
    counts = events.group_by("custody_record_id", "event_type").len().group_by("event_type").agg(pl.col("len").max())
    most = dict(counts.iter_rows())
    detailed = set(events.filter(pl.col("detail").is_not_null())["event_type"].to_list())
    return {t: (most[t], t in detailed) for t in [*EVENT_DETAILS, *sorted(set(most) - set(EVENT_DETAILS))] if t in most}


def wide(demo: Path, out: Path) -> None:
    detentions, events = _read(demo)
    groups = _groups(events)
    rows = []
    for record in detentions.iter_rows(named=True):
        date, time = _local(record["_arrival"], record["_arrival_marked"])
        row: dict[str, str] = {
            "Custody_Ref": record["custody_record_id"],
            "Person_URN": record["person_id"],
            "DOB": _uk_date(record["date_of_birth"]),
            "Appears_U18": "Y" if record["appears_under_18"] == "true" else "",
            "Gender": record["sex"] or "",
            "Ethnicity": record["ethnicity"] or "",
            "LAC": _yes_no(record["looked_after"]),
            "Force": record["force"] or "",
            "Suite": record["custody_suite"] or "",
            "Detention_Reason": WIDE_POWER[record["detention_power"]],
            "Date_Arrived": date,
            "Time_Arrived": time,
            "Place_Of_Safety": WIDE_PLACE[record["place_of_safety"]] if record["place_of_safety"] else "",
            "Offence_Type": (record["offence_category"] or "").upper(),
            "Indictable": _yes_no(record["indictable"]),
            "Arresting_Officer": f"PC {4100 + int(record['person_id'][-4:]) % 900}",
            "Record_Status": "CLOSED",
        }
        own = events.filter(pl.col("custody_record_id") == record["custody_record_id"]).sort("_at", maintain_order=True)
        for event_type, (most, detailed) in groups.items():
            label = WIDE_LABELS.get(event_type, event_type.title())
            of_type = own.filter(pl.col("event_type") == event_type).to_dicts()
            for n in range(1, most + 1):
                prefix = f"{label}_{n}" if most > 1 else label
                event = of_type[n - 1] if n <= len(of_type) else None
                if event_type in FLAGGED:
                    row[f"{prefix}_Flag"] = "Y" if event else "N"
                date, time = _local(event["_at"], event["_marked"]) if event else ("", "")
                row[f"{prefix}_Date"], row[f"{prefix}_Time"] = date, time
                if detailed:
                    row[f"{prefix}_Code"] = _code(event["detail"]) if event and event["detail"] else ""
                if event_type == "certificate":
                    row[f"{prefix}_Circumstances"] = (event["note"] or "") if event else ""
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    _blank_as_empty(pl.DataFrame(rows)).write_csv(out / "custody_export.csv")
    (out / "profile.yaml").write_text(_wide_profile(groups), encoding="utf-8")


def _blank_as_empty(frame: pl.DataFrame) -> pl.DataFrame:
    """Empty cells written as nothing, as exports write them (not as "")."""
    return frame.with_columns(pl.when(pl.all().str.len_bytes() > 0).then(pl.all()).name.keep())


def _values(mapping: dict[str, str], indent: str) -> str:
    return "".join(f'{indent}"{code}": {target}\n' for target, code in mapping.items())


def _wide_profile(groups: dict[str, tuple[int, bool]]) -> str:
    text = f"""# Input profile: the wide custody export (one row per detention). Written by
# tools/make_exports.py from sample_records/demo/; edit that script, not this file.
profile: 1
name: Anyshire Police and partners, custody export (wide)
version: "2026-11"
description: >-
  One row per custody record; UK local dates (DD/MM/YYYY) and times (HH:MM) in separate
  columns, a time marked BST or GMT where the system marks it; force codes for the power
  and the place of safety; repeated groups for reviews and cells.
date_order: dmy
true_values: ["Y"]
false_values: ["N"]

detentions:
  file: custody_export.csv
  columns:
    custody_record_id: Custody_Ref
    person_id: Person_URN
    date_of_birth: DOB
    appears_under_18: {{column: Appears_U18, values: {{"Y": true}}}}
    sex: Gender
    ethnicity: Ethnicity
    looked_after: {{column: LAC, values: {{"Y": true, "N": false}}}}
    force: Force
    custody_suite: Suite
    detention_power:
      column: Detention_Reason
      values:
{_values(WIDE_POWER, "        ")}    arrival_time: {{date: Date_Arrived, time: Time_Arrived, zone: uk_local}}
    place_of_safety:
      column: Place_Of_Safety
      values:
{_values(WIDE_PLACE, "        ")}    offence_category: {{column: Offence_Type, values: {_OFFENCE_WIDE}}}
    indictable: {{column: Indictable, values: {{"Y": true, "N": false}}}}
  # Knowingly unused: a column not mapped above and not listed here stops the run.
  unused: [Arresting_Officer, Record_Status]

# Each event type's columns: a date and a time (UK local), a code for the detail, a flag
# for AA requested and welfare informed, and repeated groups ({{n}} = 1, 2, ...).
events:
"""
    for event_type, (most, detailed) in groups.items():
        label = WIDE_LABELS.get(event_type, event_type.title())
        prefix = f"{label}_{{n}}" if most > 1 else label
        text += f"  - event_type: {event_type}\n"
        text += f'    at: {{date: "{prefix}_Date", time: "{prefix}_Time"}}\n'
        if event_type in FLAGGED:
            text += f'    flag: "{prefix}_Flag"\n'
        if detailed:
            codes = ", ".join(f'"{_code(d)}": {d}' for d in EVENT_DETAILS.get(event_type, ()))
            text += f'    detail_from: {{column: "{prefix}_Code", values: {{{codes}}}}}\n'
        if event_type == "certificate":
            text += f'    note: "{prefix}_Circumstances"\n'
        if most > 1:
            text += f"    repeat: {most}\n"
    return text


def auditlog(demo: Path, out: Path) -> None:
    detentions, events = _read(demo)
    records = []
    for record in detentions.iter_rows(named=True):
        records.append(
            {
                "RecordRef": record["custody_record_id"],
                "SubjectRef": record["person_id"],
                "BirthDate": record["date_of_birth"] or "",
                "Juvenile_Appearance": "Y" if record["appears_under_18"] == "true" else "",
                "Sex": {"M": "Male", "F": "Female"}.get(record["sex"] or "", record["sex"] or ""),
                "Ethnicity": record["ethnicity"] or "",
                "Looked_After": _yes_no(record["looked_after"], "Yes", "No"),
                "Force": record["force"] or "",
                "Custody_Suite": record["custody_suite"] or "",
                "Detention_Type": LOG_POWER[record["detention_power"]],
                "UTC_ARRIVAL_DTE_TME": record["_arrival"].strftime("%Y-%m-%dT%H:%M:%S"),
                "Place_Of_Safety": LOG_PLACE[record["place_of_safety"]] if record["place_of_safety"] else "",
                "Offence_Category": (record["offence_category"] or "").title(),
                "Indictable_Flag": {"true": "1", "false": "0"}.get(record["indictable"] or "", ""),
                "Extract_Date": "2026-11-30",
            }
        )
    entries = []
    for record in detentions.iter_rows(named=True):
        own = events.filter(pl.col("custody_record_id") == record["custody_record_id"])
        listed = [(e["_at"], e["event_type"], e["detail"], e["note"] or "") for e in own.iter_rows(named=True)]
        # Entries that are not events, as real audit logs hold them: the profile ignores them.
        listed.append((record["_arrival"] + dt.timedelta(minutes=3), None, "PROPERTY RECORDED", "Property bagged"))
        listed.append((record["_arrival"] + dt.timedelta(hours=2), None, "MEAL OFFERED", "Meal and drink offered"))
        listed.sort(key=lambda item: item[0])
        for at, event_type, detail, text in listed:
            entries.append(
                {
                    "Entry_No": str(len(entries) + 1),
                    "RecordRef": record["custody_record_id"],
                    "Entry_UTC": at.strftime("%Y-%m-%d %H:%M:%S"),
                    "Entry_Type": _entry(event_type, detail) if event_type else detail,
                    "Entry_Text": text,
                    "Officer": f"PS {2300 + len(entries) % 40}",
                }
            )
    out.mkdir(parents=True, exist_ok=True)
    _blank_as_empty(pl.DataFrame(records)).write_csv(out / "custody_records.csv")
    _blank_as_empty(pl.DataFrame(entries)).write_csv(out / "custody_log.csv")
    pairs = sorted(
        {(e, d) for e, d in events.select("event_type", "detail").iter_rows()},
        key=lambda pair: (list(EVENT_DETAILS).index(pair[0]) if pair[0] in EVENT_DETAILS else 99, pair[1] or ""),
    )
    (out / "profile.yaml").write_text(_log_profile(pairs), encoding="utf-8")


def _log_profile(pairs: list[tuple[str, str | None]]) -> str:
    entries = "".join(
        f'    "{_entry(event_type, detail)}": {event_type}{"/" + detail if detail else ""}\n'
        for event_type, detail in pairs
    )
    return f"""# Input profile: the audit-log custody export (a record file and a log of entries).
# Written by tools/make_exports.py from sample_records/demo/; edit that script, not this file.
profile: 1
name: Northmoor custody system, record and audit-log export
version: "2026-11"
description: >-
  custody_records.csv: one row per custody record, arrival as a UTC timestamp.
  custody_log.csv: one row per custody-record entry (UTC time, entry type, free text).

detentions:
  file: custody_records.csv
  columns:
    custody_record_id: RecordRef
    person_id: SubjectRef
    date_of_birth: {{column: BirthDate, date_order: ymd}}
    appears_under_18: {{column: Juvenile_Appearance, values: {{"Y": true}}}}
    sex: Sex
    ethnicity: Ethnicity
    looked_after: {{column: Looked_After, values: {{"Yes": true, "No": false}}}}
    force: Force
    custody_suite: Custody_Suite
    detention_power:
      column: Detention_Type
      values:
{_values(LOG_POWER, "        ")}    arrival_time: {{column: UTC_ARRIVAL_DTE_TME, zone: utc}}
    place_of_safety:
      column: Place_Of_Safety
      values:
{_values(LOG_PLACE, "        ")}    offence_category: {{column: Offence_Category, values: {_OFFENCE_LOG}}}
    indictable: Indictable_Flag
  unused: [Extract_Date]

event_log:
  file: custody_log.csv
  custody_record_id: RecordRef
  at: {{column: Entry_UTC, zone: utc}}
  entry_type: Entry_Type
  note: Entry_Text
  # Entry type as written (case-insensitive) -> event_type or event_type/detail.
  entries:
{entries}  # Entry types that are knowingly not events; any other type is refused, never guessed.
  ignore: ["PROPERTY RECORDED", "MEAL OFFERED"]
  unused: [Entry_No, Officer]
"""


def main(root: Path = ROOT) -> None:
    demo = root / "sample_records" / "demo"
    wide(demo, root / "sample_records" / "export_wide")
    auditlog(demo, root / "sample_records" / "export_auditlog")


if __name__ == "__main__":
    main()
