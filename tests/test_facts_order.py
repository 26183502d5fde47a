"""The facts do not depend on the order the events were read in (the facts layer reads them as
an export lists them when it can, and sorts them otherwise)."""

from __future__ import annotations

import dataclasses
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


MESSY = DEMO.parent / "messy"


@pytest.mark.parametrize("sample", [DEMO, MESSY], ids=["demo", "messy"])
def test_the_loaders_match_of_events_to_records_gives_the_facts_a_match_by_id_gives(sample: Path) -> None:
    records = load_record_set(sample)
    rows = records.event_rows()
    assert rows is not None
    assert rows.len() == records.events.height
    # Each event's row holds its record's id: the match the facts would otherwise make.
    assert (records.detentions["custody_record_id"].gather(rows) == records.events["custody_record_id"]).all()
    occasions = {grain: list(occasion_specs(grain)) for grain in GRAINS}
    by_id = _tables(records.detentions, records.events, records.taint())
    matched = build_fact_tables(
        records.detentions, records.events, records.taint(), FactSettings(), occasions=occasions, event_rows=rows
    )
    _assert_same(by_id, matched)
    # Records listed out of child order: their events' rows follow them.
    order = pl.int_range(records.detentions.height, dtype=pl.UInt32, eager=True).shuffle(seed=7)
    new_row = pl.Series(range(order.len()), dtype=pl.UInt32).scatter(order, pl.int_range(order.len(), eager=True))
    shuffled = build_fact_tables(
        records.detentions[order],
        records.events,
        records.taint(),
        FactSettings(),
        occasions=occasions,
        event_rows=new_row.gather(rows),
    )
    _assert_same(by_id, shuffled)


def test_a_record_set_whose_tables_were_replaced_has_its_events_matched_again() -> None:
    records = load_record_set(DEMO)
    one = records.detentions.head(1)
    subset = dataclasses.replace(records, detentions=one, events=records.events.filter(pl.col("_row") < 3))
    assert records.event_rows() is not None
    assert subset.event_rows() is None
