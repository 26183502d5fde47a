"""Whatever text the rows hold, loading never raises and accounts for every row."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.contract import DATA_QUALITY_SCHEMA, TABLES
from custody.read.loader import load_record_set

# Any text a CSV can hold (no NUL: a file with NUL bytes is not a text file).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
IDS = st.sampled_from(["R1", "R2", "R3", " r1 ", "", "R1 "])
TIMES = st.sampled_from(["2019-10-27 01:30", "27/10/2019 22:00", "2019-03-31 01:30", "2019-07-01T12:00Z", ""])


def cell(column: str) -> st.SearchStrategy[str]:
    if column == "custody_record_id":
        return st.one_of(IDS, TEXT)
    if column in ("arrival_time", "event_time"):
        return st.one_of(TIMES, TEXT)
    return TEXT


def rows(table: str) -> st.SearchStrategy[list[list[str]]]:
    columns = [spec.name for spec in TABLES[table]]
    return st.lists(st.tuples(*(cell(c) for c in columns)).map(list), max_size=8)


def write(path: Path, table: str, body: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([spec.name.upper() for spec in TABLES[table]])
        writer.writerows(body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detentions=rows("detentions"), events=rows("events"))
def test_any_rows_load_and_are_accounted_for(detentions: list[list[str]], events: list[list[str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write(root / "detentions.csv", "detentions", detentions)
        write(root / "events.csv", "events", events)
        record_set = load_record_set(root)

    assert record_set.data_quality.schema == DATA_QUALITY_SCHEMA
    assert set(record_set.data_quality["action"]) <= {"row_rejected", "value_unusable", "warning"}
    assert record_set.data_quality["reason"].null_count() == 0
    for table, written in (("detentions", detentions), ("events", events)):
        # Every row read is either loaded or listed as rejected in data_quality, never both;
        # only rows with no value at all (blank once trimmed) may be skipped unread.
        loaded: pl.DataFrame = getattr(record_set, table)
        quality = record_set.data_quality.filter(pl.col("table") == table)
        rejected_rows = set(quality.filter(pl.col("action") == "row_rejected")["row"].to_list())
        assert rejected_rows.isdisjoint(loaded["_row"].to_list())
        assert record_set.rows_read[table] == loaded.height + len(rejected_rows)
        with_a_value = sum(any(char.isalnum() for cell in row for char in cell) for row in written)
        assert with_a_value <= record_set.rows_read[table] <= len(written)
        assert record_set.rows_used[table] == loaded.height
        assert record_set.rows_rejected[table] == len(rejected_rows)
    # Every event kept belongs to a record kept; every record id is unique.
    assert record_set.detentions["custody_record_id"].is_unique().all()
    assert set(record_set.events["custody_record_id"]) <= set(record_set.detentions["custody_record_id"])
