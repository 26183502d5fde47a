"""Implausible times are reported in data quality, never turned into breaches: an event
weeks after its record's arrival (a typing error in a month or a year) or long before it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO

from custody.pipeline import PreparedRules, findings_for
from custody.read.loader import load_record_set
from custody.read.plausible import Plausibility


def _with_time(tmp_path: Path, line: int, new_time: str) -> Path:
    """A copy of demo/ with the event on `line` of events.csv (1 = header) at another time."""
    folder = tmp_path / "records"
    shutil.copytree(DEMO, folder)
    events = folder / "events.csv"
    lines = events.read_text().splitlines(keepends=True)
    record, _time, rest = lines[line - 1].split(",", 2)
    lines[line - 1] = f"{record},{new_time},{rest}"
    events.write_text("".join(lines))
    return folder


def _outcome(records: object, rules: PreparedRules, record: str, rule: str) -> str:
    _, findings = findings_for(records, rules)  # type: ignore[arg-type]
    row = findings.filter((pl.col("custody_record_id") == record) & (pl.col("rule_id").cast(pl.String) == rule))
    return str(row["outcome"].cast(pl.String).item())


def test_a_review_a_month_late_is_data_quality_not_a_breach(tmp_path: Path, prepared_rules: PreparedRules) -> None:
    # DEMO-012's post-charge review, typed a month out (04 for 03): read as written, PACE-REVIEW
    # would find it some 43,000 minutes late.
    records = load_record_set(_with_time(tmp_path, 151, "2018-04-02 02:30"))
    problem = records.data_quality.row(0, named=True)
    assert records.data_quality.height == 1
    assert (problem["table"], problem["row"], problem["column"]) == ("events", 151, "event_time")
    assert problem["action"] == "row_rejected"
    assert problem["event_type"] == "review"
    assert problem["reason"].startswith("event_time is 31 days after arrival_time (more than 7 days")
    assert records.issues == {"events.event_time: implausibly long after arrival": 1}
    assert _outcome(records, prepared_rules, "DEMO-012", "PACE-REVIEW") == "cannot_assess"


def test_an_event_years_before_arrival_is_data_quality(tmp_path: Path, prepared_rules: PreparedRules) -> None:
    # DEMO-030's late first review (a breach), typed with the wrong year.
    records = load_record_set(_with_time(tmp_path, 373, "2020-05-12 16:35"))
    problem = records.data_quality.row(0, named=True)
    assert problem["reason"].startswith("event_time is 729 days before arrival_time (more than 24 hours)")
    assert _outcome(records, prepared_rules, "DEMO-030", "PACE-REVIEW") == "cannot_assess"


def test_a_court_hearing_weeks_later_is_plausible(tmp_path: Path) -> None:
    records = load_record_set(_with_time(tmp_path, 154, "2018-03-20 10:30"))
    assert records.data_quality.is_empty()


@pytest.mark.parametrize(("limit_hours", "reported"), [(21, 1), (22, 0)])
def test_the_limits_are_parameters(tmp_path: Path, limit_hours: int, reported: int) -> None:
    # DEMO-012 arrived 2018-03-01 11:50; its post-charge review was 14h40m later.
    folder = _with_time(tmp_path, 151, "2018-03-02 09:10")  # 21h20m after arrival
    plausible = Plausibility(max_after_arrival=dt.timedelta(hours=limit_hours))
    quality = load_record_set(folder, plausible=plausible).data_quality
    assert quality.filter(pl.col("row") == 151).height == reported
