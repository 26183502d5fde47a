"""The facts do not depend on the order the events were read in (the facts layer reads them as
an export lists them when it can, and sorts them otherwise)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from custody.contract import polars_schema
from custody.facts import FactSettings, FactTables, build_fact_tables
from custody.facts.specs import occasion_specs
from custody.read.loader import load_record_set

DEMO = Path(__file__).resolve().parents[1] / "sample_records" / "demo"
GRAINS = ("bail_refused", "interview_started", "strip_search", "review")


def _tables(detention_rows: pl.DataFrame, event_rows: pl.DataFrame, taint: pl.DataFrame) -> FactTables:
    occasions = {grain: list(occasion_specs(grain)) for grain in GRAINS}
    return build_fact_tables(detention_rows, event_rows, taint, FactSettings(), occasions=occasions)


def _assert_same(left: FactTables, right: FactTables) -> None:
    assert_frame_equal(left.records, right.records, check_exact=True)
    assert sorted(left.occasions) == sorted(right.occasions)
    for grain, table in left.occasions.items():
        assert_frame_equal(table, right.occasions[grain], check_exact=True)


@pytest.mark.parametrize(
    "reorder",
    [
        pytest.param(lambda ev: ev.sample(fraction=1.0, shuffle=True, seed=11), id="shuffled"),
        pytest.param(lambda ev: ev.reverse(), id="reversed"),
        pytest.param(lambda ev: ev.sort("event_time", maintain_order=True), id="by-time"),
        # Each record's events in time order, but a record's events in two places.
        pytest.param(lambda ev: pl.concat([ev.gather_every(2), ev.gather_every(2, offset=1)]), id="split"),
    ],
)
def test_every_fact_is_the_same_whatever_the_order_of_the_events(reorder: object) -> None:
    records = load_record_set(DEMO)
    as_read = _tables(records.detentions, records.events, records.taint())
    assert callable(reorder)
    _assert_same(as_read, _tables(records.detentions, reorder(records.events), records.taint()))


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _events(*rows: tuple[str, str, str, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"custody_record_id": r, "event_time": _at(t), "event_type": kind, "detail": detail, "note": None}
            for r, t, kind, detail in rows
        ],
        schema=polars_schema("events"),
    )


def _first_detail(event_rows: pl.DataFrame) -> str | None:
    schema = polars_schema("detentions")
    record = {"custody_record_id": "R1", "person_id": "P1", "arrival_time": _at("2019-07-01T09:00+01:00")}
    det = pl.DataFrame([{name: record.get(name) for name in schema}], schema=schema)
    taint = pl.DataFrame(schema={"custody_record_id": pl.String, "input": pl.String})
    facts = build_fact_tables(det, event_rows, taint, FactSettings(), columns=["la_requested_detail"]).records
    value = facts["la_requested_detail"][0]
    assert value is None or isinstance(value, str)
    return value


@pytest.mark.parametrize("in_time_order", [True, False], ids=["as-listed", "sorted"])
def test_of_two_events_at_the_same_instant_the_one_read_first_is_the_first(in_time_order: bool) -> None:
    rows = [
        ("R1", "2019-07-01T12:00+01:00", "la_requested", "non_secure"),
        ("R1", "2019-07-01T12:00+01:00", "la_requested", "secure"),
    ]
    # A later event listed first makes the record's events out of time order: they are sorted.
    earlier = [] if in_time_order else [("R1", "2019-07-01T13:00+01:00", "charged", None)]
    assert _first_detail(_events(*earlier, *rows)) == "non_secure"
    assert _first_detail(_events(*earlier, *reversed(rows))) == "secure"
