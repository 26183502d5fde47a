"""The same record set read from every file format gives the same tables."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import xlsxwriter

from custody.contract import polars_schema
from custody.read.loader import load_record_set

UTC = dt.UTC

DETENTIONS = pl.DataFrame(
    {
        "custody_record_id": ["R1", "R2", "R3"],
        "person_id": ["P1", "P2", "P2"],
        "date_of_birth": ["2005-03-01", "01/04/2006", None],
        "appears_under_18": [None, "yes", "no"],
        "detention_power": ["pace_arrest", "mha_s136", "bail_breach"],
        "arrival_time": ["2019-10-26 22:00", "2019-07-01T12:00:00Z", "27/10/2019 01:30"],
        "place_of_safety": [None, "police_station", None],
        "ward": ["North", None, "South"],
    }
)
EVENTS = pl.DataFrame(
    {
        "custody_record_id": ["R1", "R1", "R2", "R9"],
        "event_time": ["2019-10-27 22:00", "2019-10-27T01:30:00+01:00", "2019-07-01 13:00", "2019-07-01 13:00"],
        "event_type": ["released", "review", "mha_assessment_completed", "charged"],
        "detail": ["nfa", "pre_charge", None, None],
        "note": ["home", None, None, None],
    }
)

EXPECTED_ARRIVALS = [dt.datetime(2019, 10, 26, 21, tzinfo=UTC), dt.datetime(2019, 7, 1, 12, tzinfo=UTC), None]
EXPECTED_EVENT_TIMES = [
    dt.datetime(2019, 10, 27, 22, tzinfo=UTC),
    dt.datetime(2019, 10, 27, 0, 30, tzinfo=UTC),
    dt.datetime(2019, 7, 1, 12, tzinfo=UTC),
]


def write(frame: pl.DataFrame, path: Path) -> None:
    match path.suffix:
        case ".csv":
            frame.write_csv(path)
        case ".parquet":
            frame.write_parquet(path)
        case ".ndjson" | ".jsonl":
            frame.write_ndjson(path)
        case ".xlsx":
            frame.write_excel(path)


def first_record_row(suffix: str) -> int:
    return {".csv": 2, ".xlsx": 2, ".parquet": 1, ".ndjson": 1, ".jsonl": 1}[suffix]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson", ".jsonl", ".xlsx"])
def test_every_format_reads_the_same(tmp_path: Path, suffix: str) -> None:
    write(DETENTIONS, tmp_path / f"detentions{suffix}")
    write(EVENTS, tmp_path / f"events{suffix}")
    record_set = load_record_set(tmp_path)
    first = first_record_row(suffix)

    assert record_set.detentions.columns == [*polars_schema("detentions"), "ward", "_row"]
    assert record_set.detentions["arrival_time"].to_list() == EXPECTED_ARRIVALS
    assert record_set.detentions["date_of_birth"].to_list() == [dt.date(2005, 3, 1), dt.date(2006, 4, 1), None]
    assert record_set.detentions["appears_under_18"].to_list() == [None, True, False]
    assert record_set.detentions["ward"].to_list() == ["North", None, "South"]
    assert record_set.detentions["_row"].to_list() == [first, first + 1, first + 2]
    assert record_set.events["event_time"].to_list() == EXPECTED_EVENT_TIMES
    assert record_set.events["_row"].to_list() == [first, first + 1, first + 2]

    found = record_set.data_quality.select("table", "row", "column", "action").rows()
    assert found == [
        ("detentions", first + 2, "arrival_time", "value_unusable"),
        ("events", first + 3, "custody_record_id", "row_rejected"),
    ]
    assert record_set.data_quality["file"][0] == f"detentions{suffix}"


def test_typed_parquet(tmp_path: Path) -> None:
    london = ZoneInfo("Europe/London")
    detentions = pl.DataFrame(
        {
            "custody_record_id": [1, 2, 3],  # numbers are ids too
            "person_id": ["P1", "P2", "P3"],
            "date_of_birth": [dt.date(2005, 3, 1), None, dt.date(2006, 1, 2)],
            "looked_after": [True, None, False],
            "detention_power": pl.Series(["pace_arrest", "warrant", "Other"], dtype=pl.Categorical),
            "arrival_time": [
                dt.datetime(2019, 10, 27, 1, 30, tzinfo=london),  # aware: the exact instant (BST)
                dt.datetime(2019, 7, 1, 11, tzinfo=UTC),
                None,
            ],
        }
    )
    events = pl.DataFrame(
        {
            "custody_record_id": ["1", "2", "2"],
            "event_time": [
                dt.datetime(2019, 10, 27, 22),
                dt.datetime(2019, 10, 27, 1, 30),
                dt.datetime(2019, 7, 1, 12),
            ],
            "event_type": ["released", "charged", "charged"],
        }
    )
    detentions.write_parquet(tmp_path / "detentions.parquet")
    events.write_parquet(tmp_path / "events.parquet")
    record_set = load_record_set(tmp_path)

    assert record_set.detentions["custody_record_id"].to_list() == ["1", "2", "3"]
    assert record_set.detentions["looked_after"].to_list() == [True, None, False]
    assert record_set.detentions["detention_power"].to_list() == ["pace_arrest", "warrant", "other"]
    assert record_set.detentions["arrival_time"].to_list() == [
        dt.datetime(2019, 10, 27, 0, 30, tzinfo=UTC),
        dt.datetime(2019, 7, 1, 11, tzinfo=UTC),
        None,
    ]
    # Naive date-times are UK local time, with the same rule for the repeated hour.
    assert record_set.events["event_time"].to_list() == [
        dt.datetime(2019, 10, 27, 22, tzinfo=UTC),
        dt.datetime(2019, 7, 1, 11, tzinfo=UTC),
    ]
    quality = record_set.data_quality.select("table", "row", "column", "value", "action").rows()
    assert quality == [
        ("detentions", 3, "arrival_time", None, "value_unusable"),
        ("events", 2, "event_time", "2019-10-27 01:30:00.000000", "row_rejected"),
    ]


def test_ndjson_rows_are_line_numbers_even_with_blank_lines(tmp_path: Path) -> None:
    lines = [
        {"custody_record_id": "R1", "person_id": "P1", "detention_power": "pace_arrest", "arrival_time": "x"},
        {"custody_record_id": "R2", "person_id": "P2", "detention_power": "warrant", "arrival_time": None},
    ]
    text = json.dumps(lines[0]) + "\n\n   \n" + json.dumps(lines[1]) + "\n"
    (tmp_path / "detentions.jsonl").write_text(text)
    (tmp_path / "events.ndjson").write_text("")  # no rows: NDJSON has no header
    record_set = load_record_set(tmp_path)
    assert record_set.detentions["_row"].to_list() == [1, 4]
    assert record_set.data_quality.select("row", "column").rows() == [(1, "arrival_time"), (4, "arrival_time")]
    assert record_set.events.height == 0


def test_ndjson_values_of_any_json_type(tmp_path: Path) -> None:
    lines = [
        {
            "custody_record_id": 7,
            "person_id": "P1",
            "detention_power": "warrant",
            "arrival_time": "2019-07-01 12:00",
            "indictable": 1,
            "sex": {"code": "M"},
        },
        {
            "custody_record_id": "8",
            "person_id": "P1",
            "detention_power": ["warrant"],
            "arrival_time": "2019-07-01 12:00",
            "indictable": True,
        },
    ]
    (tmp_path / "detentions.ndjson").write_text("\n".join(json.dumps(line) for line in lines))
    (tmp_path / "events.ndjson").write_text("")
    record_set = load_record_set(tmp_path)
    assert record_set.detentions["custody_record_id"].to_list() == ["7", "8"]
    assert record_set.detentions["indictable"].to_list() == [True, True]
    assert record_set.detentions["sex"].to_list() == ['{"code": "M"}', None]
    assert record_set.data_quality.select("row", "column", "value").rows() == [(2, "detention_power", '["warrant"]')]


def test_ndjson_typed_values(tmp_path: Path) -> None:
    line = {
        "custody_record_id": "R1",
        "person_id": 12,
        "detention_power": "warrant",
        "arrival_time": "2019-07-01 12:00",
    }
    line |= {"indictable": False, "sex": {"code": "F"}, "tags": [1, 2]}
    (tmp_path / "detentions.ndjson").write_text(json.dumps(line) + "\n")
    (tmp_path / "events.ndjson").write_text("")
    record_set = load_record_set(tmp_path)
    assert record_set.detentions.select("person_id", "indictable", "sex").row(0) == ("12", False, '{"code":"F"}')
    assert record_set.detentions["tags"].to_list() == [[1, 2]]  # extra columns as read


def test_xlsx_date_cells_are_uk_local_time(tmp_path: Path) -> None:
    workbook = xlsxwriter.Workbook(tmp_path / "detentions.xlsx")
    sheet = workbook.add_worksheet()
    stamp = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    sheet.write_row(0, 0, ["Custody_Record_ID", "person_id", "date_of_birth", "detention_power", "arrival_time"])
    sheet.write_row(1, 0, ["R1", "P1"])
    sheet.write_datetime(1, 2, dt.datetime(2005, 3, 1), workbook.add_format({"num_format": "dd/mm/yyyy"}))
    sheet.write_string(1, 3, "pace_arrest")
    sheet.write_datetime(1, 4, dt.datetime(2019, 7, 1, 12, 0), stamp)
    # row 3 left empty; row 4 has a record with an ambiguous time typed as text
    sheet.write_row(3, 0, ["R2", "P2", None, "warrant", "27/10/2019 01:30"])
    workbook.close()
    pl.DataFrame(schema={"custody_record_id": pl.String, "event_time": pl.String, "event_type": pl.String}).write_excel(
        tmp_path / "events.xlsx"
    )
    record_set = load_record_set(tmp_path)
    assert record_set.detentions.select("custody_record_id", "date_of_birth", "arrival_time", "_row").rows() == [
        ("R1", dt.date(2005, 3, 1), dt.datetime(2019, 7, 1, 11, tzinfo=UTC), 2),
        ("R2", None, None, 4),
    ]
    assert record_set.data_quality.select("row", "column", "value").rows() == [(4, "arrival_time", "27/10/2019 01:30")]
    assert record_set.rows_read == {"detentions": 2, "events": 0}
