"""Events are matched to their custody records by id, whatever the order of the events and
even when two different ids share a hash (the loader matches by 64-bit hash, then by text);
and Parquet files load alike however many row groups they were written in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from conftest import GOOD, RecordSetFactory

import custody.read.loader as loader
from custody.read.loader import RecordSet, load_record_set

DETENTIONS = [
    GOOD,
    ("R2", "P2", "2006-01-01", "pace_arrest", "2019-07-02 09:00"),
    ("R2", "P2", "2006-01-01", "pace_arrest", "2019-07-02 09:00"),  # an exact copy: R2 is loaded
    ("R3", "P3", "2006-01-01", "pace_arrest", "2019-07-03 09:00"),
    ("R3", "P3", "2006-01-01", "warrant", "2019-07-03 09:00"),  # conflicting: R3 is rejected
    ("LONGER-4", "P4", "2006-01-01", "pace_arrest", "2019-07-04 09:00"),
]
# The same records with one row per id: R3 is rejected for its missing person_id.
ONE_ROW_EACH = [
    GOOD,
    ("R2", "P2", "2006-01-01", "pace_arrest", "2019-07-02 09:00"),
    ("R3", None, "2006-01-01", "pace_arrest", "2019-07-03 09:00"),
    ("LONGER-4", "P4", "2006-01-01", "pace_arrest", "2019-07-04 09:00"),
]
BOTH = pytest.mark.parametrize("detentions", [DETENTIONS, ONE_ROW_EACH], ids=["repeated ids", "one row per id"])
# Events not grouped by record, one id padded with spaces, one missing, one in no record (R9),
# and two of the rejected record R3.
EVENTS = [
    ("R1", "2019-07-01 12:05", "detention_authorised", None, None),
    ("R2", "2019-07-02 09:05", "detention_authorised", None, None),
    ("R3", "2019-07-03 09:05", "detention_authorised", None, None),
    (" R1 ", "2019-07-01 13:00", "review", "pre_charge", None),
    ("LONGER-4", "2019-07-04 09:05", "detention_authorised", None, None),
    ("R9", "2019-07-01 12:05", "detention_authorised", None, None),
    ("R2", "2019-07-02 10:00", "released", "nfa", None),
    (None, "2019-07-01 12:05", "released", "nfa", None),
    ("R3", "2019-07-03 10:00", "released", "nfa", None),
    ("R1", "2019-07-01 14:00", "released", "nfa", None),
]


def _outcome(record_set: RecordSet) -> tuple[list[tuple[str, int]], list[tuple[int, str | None, str]]]:
    events = record_set.events.select("custody_record_id", "_row").rows()
    rejected = record_set.data_quality.filter(pl.col("table") == "events").select("row", "custody_record_id", "reason")
    return events, rejected.rows()


@BOTH
def test_events_in_any_order_are_matched_to_their_records(
    csv_record_set: RecordSetFactory, detentions: list[tuple[str | None, ...]]
) -> None:
    record_set = load_record_set(csv_record_set(detentions, EVENTS))
    events, rejected = _outcome(record_set)

    assert record_set.detentions["custody_record_id"].to_list() == ["R1", "R2", "LONGER-4"]
    assert events == [("R1", 2), ("R2", 3), ("R1", 5), ("LONGER-4", 6), ("R2", 8), ("R1", 11)]
    assert [(row, record_id) for row, record_id, _ in rejected] == [(4, "R3"), (7, "R9"), (9, None), (10, "R3")]
    assert "rejected in detentions" in rejected[0][2]
    assert "not in detentions" in rejected[1][2]


def _all_equal(ids: pl.Series) -> pl.Series:
    return pl.repeat(0, ids.len(), dtype=pl.UInt64, eager=True)


def _by_length(ids: pl.Series) -> pl.Series:
    return ids.str.len_bytes().cast(pl.UInt64)


def _nine_as_one(ids: pl.Series) -> pl.Series:
    """R9 (in no record) shares its hash with R1 alone."""
    return ids.str.replace_all("9", "1").hash()


@pytest.mark.parametrize(
    "hashes", [_all_equal, _by_length, _nine_as_one], ids=["every id one hash", "hash by length", "R9 as R1"]
)
@BOTH
def test_ids_sharing_a_hash_are_told_apart(
    csv_record_set: RecordSetFactory,
    monkeypatch: pytest.MonkeyPatch,
    hashes: Callable[[pl.Series], pl.Series],
    detentions: list[tuple[str | None, ...]],
) -> None:
    expected = load_record_set(csv_record_set(detentions, EVENTS, folder="expected"))
    monkeypatch.setattr(loader, "_id_hashes", hashes)
    record_set = load_record_set(csv_record_set(detentions, EVENTS, folder="colliding"))

    assert record_set.detentions.equals(expected.detentions)
    assert record_set.events.equals(expected.events)
    assert record_set.data_quality.drop("file").equals(expected.data_quality.drop("file"))
    assert record_set.taint().equals(expected.taint())


def test_parquet_of_many_row_groups_loads_as_one_of_few(tmp_path: Path) -> None:
    """A Parquet file written in many small row groups (an export streamed out in pieces)
    loads exactly as the same rows in one row group, problems included (implausible times
    both ways, an orphan): polars 2.1 can panic on the many-chunk tables such a file reads as."""
    detentions = pl.DataFrame(
        {
            "custody_record_id": [f"R{n}" for n in range(40)],
            "person_id": [f"P{n}" for n in range(40)],
            "detention_power": ["pace_arrest"] * 40,
            "arrival_time": [dt.datetime(2019, 7, 1, 12, tzinfo=dt.UTC) + dt.timedelta(hours=n) for n in range(40)],
        }
    )
    events = pl.DataFrame(
        {
            "custody_record_id": [f"R{n // 3}" for n in range(120)] + ["R99"],
            "event_time": [dt.datetime(2019, 7, 1, 13, tzinfo=dt.UTC) + dt.timedelta(hours=n // 3) for n in range(120)]
            + [dt.datetime(2019, 7, 1, 13, tzinfo=dt.UTC)],
            "event_type": ["review"] * 121,
            "detail": ["pre_charge"] * 121,
            "note": [None] * 121,
        }
    ).with_columns(  # one review a month late and one three days early: implausible
        event_time=pl.when(pl.int_range(pl.len()) == 50)
        .then(pl.col("event_time") + dt.timedelta(days=30))
        .when(pl.int_range(pl.len()) == 70)
        .then(pl.col("event_time") - dt.timedelta(days=3))
        .otherwise(pl.col("event_time"))
    )
    loaded = {}
    for name, row_group_size in (("one", None), ("many", 4)):
        folder = tmp_path / name
        folder.mkdir()
        detentions.write_parquet(folder / "detentions.parquet", row_group_size=row_group_size)
        events.write_parquet(folder / "events.parquet", row_group_size=row_group_size)
        loaded[name] = load_record_set(folder)

    assert loaded["many"].events.equals(loaded["one"].events)
    assert loaded["many"].detentions.equals(loaded["one"].detentions)
    assert loaded["many"].data_quality.equals(loaded["one"].data_quality)
    assert loaded["many"].data_quality["row"].to_list() == [51, 71, 121]
