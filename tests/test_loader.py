"""Loading a record set: what is kept, what is rejected and why, and what stops the run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import DETENTION_HEADER, GOOD, RecordSetFactory, write_csv

from custody.contract import DATA_QUALITY_SCHEMA, polars_schema
from custody.errors import InputError
from custody.read.loader import RecordSet, load_record_set

UTC = dt.UTC


def dq_rows(record_set: RecordSet, **where: Any) -> list[dict[str, Any]]:
    frame = record_set.data_quality
    for column, value in where.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.drop("file").to_dicts()


def assert_accounted(record_set: RecordSet) -> None:
    """Every row read is either in the loaded table or listed as rejected (with why) in
    data_quality, never both, and the counts reported say so."""
    for table in ("detentions", "events"):
        loaded: pl.DataFrame = getattr(record_set, table)
        rejected = record_set.data_quality.filter((pl.col("table") == table) & (pl.col("action") == "row_rejected"))
        assert rejected["reason"].null_count() == 0
        assert set(loaded["_row"]).isdisjoint(rejected["row"])
        assert record_set.rows_read[table] == loaded.height + rejected["row"].n_unique()
        assert record_set.rows_used[table] == loaded.height
        assert record_set.rows_rejected[table] == rejected["row"].n_unique()


# ---------------------------------------------------------------- a clean record set


def test_clean_record_set(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [GOOD, ("R2", "P1", "01/03/2005", "mha_s136", "27/10/2019 22:00")],
        [("R1", "2019-07-01 12:05", "detention_authorised", None, "free text")],
        detention_header=[*DETENTION_HEADER[:5]],
    )
    record_set = load_record_set(folder)

    assert record_set.detentions.schema == pl.Schema({**polars_schema("detentions"), "_row": pl.Int64})
    assert record_set.events.schema == pl.Schema({**polars_schema("events"), "_row": pl.Int64})
    assert record_set.data_quality.schema == DATA_QUALITY_SCHEMA
    assert record_set.detentions["_row"].to_list() == [2, 3]
    assert record_set.detentions["arrival_time"].to_list() == [
        dt.datetime(2019, 7, 1, 11, 0, tzinfo=UTC),
        dt.datetime(2019, 10, 27, 22, 0, tzinfo=UTC),
    ]
    assert record_set.events["note"].to_list() == ["free text"]
    assert record_set.files == {"detentions": folder / "detentions.csv", "events": folder / "events.csv"}
    # place_of_safety is missing for an mha_s136 detention: the only issue.
    assert dq_rows(record_set) == [
        {
            "table": "detentions",
            "row": 3,
            "column": "place_of_safety",
            "value": None,
            "reason": "place_of_safety is missing: it is required for mha_s136 and mha_s135 detentions",
            "action": "value_unusable",
            "custody_record_id": "R2",
            "event_type": None,
        }
    ]
    assert record_set.summary() == {
        "records": 2,
        "events": 1,
        "children": 1,
        "rows_read": {"detentions": 2, "events": 1},
        "rows_used": {"detentions": 2, "events": 1},
        "rows_rejected": {"detentions": 0, "events": 0},
        "issues": {"detentions.place_of_safety: missing": 1},
    }


def test_column_names_are_case_insensitive_and_extras_kept(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [(" local ref ", "R1", "P1", "pace_arrest", "2019-07-01 12:00")],
        [("R1", "2019-07-01 12:05", "Detention_Authorised ")],
        detention_header=["Local Ref", " Custody_Record_ID ", "PERSON_ID", "Detention_Power", "arrival_time "],
        event_header=["Custody_record_id", "EVENT_TIME", "event_type"],
    )
    record_set = load_record_set(folder)
    assert record_set.detentions.columns == [*polars_schema("detentions"), "Local Ref", "_row"]
    assert record_set.detentions.row(0, named=True)["Local Ref"] == "local ref"
    assert record_set.events["event_type"].to_list() == ["detention_authorised"]
    assert record_set.data_quality.is_empty()


def test_string_values_are_trimmed_and_blank_is_missing(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set([("  R1 ", " P1", "", " Pace_Arrest ", " 2019-07-01 12:00 ")], [(" R1", "", "charged")])
    record_set = load_record_set(folder)
    row = record_set.detentions.row(0, named=True)
    assert (row["custody_record_id"], row["person_id"], row["detention_power"]) == ("R1", "P1", "pace_arrest")
    assert row["date_of_birth"] is None
    assert row["arrival_time"] == dt.datetime(2019, 7, 1, 11, tzinfo=UTC)
    assert dq_rows(record_set, table="events")[0]["reason"] == (
        "event_time is missing: an event without it cannot be used"
    )


def test_blank_lines_are_skipped_but_row_numbers_are_the_file_lines(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "detentions.csv").write_text(
        "custody_record_id,person_id,detention_power,arrival_time\n"
        "R1,P1,pace_arrest,2019-07-01 12:00\n"
        "\n"
        ",,,\n"
        "R2,,pace_arrest,2019-07-01 12:00\n"
    )
    (folder / "events.csv").write_text("custody_record_id,event_time,event_type\n")
    record_set = load_record_set(folder)
    assert record_set.rows_read["detentions"] == 2
    assert dq_rows(record_set)[0]["row"] == 5
    assert_accounted(record_set)


# ---------------------------------------------------------------- detentions


def test_detention_rows_rejected(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [
            GOOD,  # row 2
            (None, "P2", "2005-03-01", "pace_arrest", "2019-07-01 12:00"),  # 3: no id
            ("R3", None, "2005-03-01", "pace_arrest", "2019-07-01 12:00"),  # 4: no person
            GOOD,  # 5: exact copy of row 2
            ("R4", "P4", "2005-03-01", "pace_arrest", "2019-07-01 12:00"),  # 6
            ("R5", "P5", "2005-03-01", "pace_arrest", "2019-07-01 12:00"),  # 7
            ("R4", "P4", "2005-03-02", "pace_arrest", "2019-07-01 12:00"),  # 8: conflicts with 6
            ("R4", "P4", "2005-03-01", "pace_arrest", "2019-07-01 12:00"),  # 9: copy of 6, still conflicting
        ],
        [("R4", "2019-07-01 12:05", "charged"), ("R3", "2019-07-01 12:05", "charged")],
    )
    record_set = load_record_set(folder)
    assert record_set.detentions["custody_record_id"].to_list() == ["R1", "R5"]
    conflict = "custody_record_id appears on rows 6, 8 and 9 with different values; fix the extract"
    expected = [
        (3, "custody_record_id", None, "custody_record_id is missing: every record needs one", None),
        (4, "person_id", None, "person_id is missing: the record cannot be attributed to a child", "R3"),
        (5, "custody_record_id", "R1", "exact duplicate of row 2", "R1"),
        (6, "custody_record_id", "R4", conflict, "R4"),
        (8, "custody_record_id", "R4", conflict, "R4"),
        (9, "custody_record_id", "R4", conflict, "R4"),
    ]
    assert [
        (r["row"], r["column"], r["value"], r["reason"], r["custody_record_id"])
        for r in dq_rows(record_set, table="detentions")
    ] == expected
    assert set(record_set.data_quality.filter(pl.col("table") == "detentions")["action"]) == {"row_rejected"}
    # Their events cannot be attributed either.
    assert [r["reason"] for r in dq_rows(record_set, table="events")] == [
        "custody_record_id was rejected in detentions (see its rows there), so its events are not used",
        "custody_record_id was rejected in detentions (see its rows there), so its events are not used",
    ]
    assert_accounted(record_set)


def test_many_conflicting_rows_are_listed_briefly(csv_record_set: RecordSetFactory) -> None:
    rows = [("R1", "P1", f"2005-03-{day:02d}", "pace_arrest", "2019-07-01 12:00") for day in range(1, 9)]
    record_set = load_record_set(csv_record_set(rows))
    assert dq_rows(record_set)[0]["reason"] == (
        "custody_record_id appears on rows 2, 3, 4, 5, 6 and 3 more with different values; fix the extract"
    )


BAD_VALUES = [
    (
        "date_of_birth",
        "31/02/2005",
        "date_of_birth is not a real date: check the day and month",
    ),
    ("date_of_birth", "2005/03/01", "date_of_birth is not a date: use YYYY-MM-DD or DD/MM/YYYY"),
    (
        "arrival_time",
        "2019-07-01",
        "arrival_time has no time of day: give the date and time, e.g. 2019-10-27 03:30",
    ),
    (
        "arrival_time",
        "27/10/2019 01:30",
        "arrival_time occurs twice in UK time (clocks go back); give the offset, e.g. +01:00 or +00:00",
    ),
    (
        "arrival_time",
        "31/03/2019 01:30",
        "arrival_time does not exist in UK time (clocks go forward); check the time, or give the offset, e.g. +00:00",
    ),
    (
        "arrival_time",
        None,
        "arrival_time is missing: the rules that need it cannot be assessed for this record",
    ),
    (
        "detention_power",
        "arrested",
        "detention_power is not an allowed value: use one of pace_arrest, warrant, bail_breach, "
        "court_remand, mha_s136, mha_s135, other",
    ),
    (
        "detention_power",
        None,
        "detention_power is missing: the rules that need it cannot be assessed for this record",
    ),
    ("looked_after", "perhaps", "looked_after is not true or false: use true/false, yes/no, y/n or 1/0"),
    (
        "offence_category",
        "Theft",
        "offence_category is not an allowed value: use one of violent, sexual, other",
    ),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_unusable_detention_values_keep_the_row(
    csv_record_set: RecordSetFactory, column: str, value: str | None, reason: str
) -> None:
    header = ["custody_record_id", "person_id", "date_of_birth", "detention_power", "arrival_time"]
    good = {"custody_record_id": "R1", "person_id": "P1", "detention_power": "pace_arrest"}
    good |= {"date_of_birth": "2005-03-01", "arrival_time": "2019-07-01 12:00"}
    if column not in header:
        header.append(column)
    row = [good.get(name) for name in header]
    row[header.index(column)] = value
    record_set = load_record_set(csv_record_set([row], detention_header=header))

    assert record_set.detentions.height == 1
    assert record_set.detentions[column].to_list() == [None]
    assert dq_rows(record_set) == [
        {
            "table": "detentions",
            "row": 2,
            "column": column,
            "value": value,
            "reason": reason,
            "action": "value_unusable",
            "custody_record_id": "R1",
            "event_type": None,
        }
    ]
    assert record_set.data_quality["file"].to_list() == ["detentions.csv"]


def test_enum_values_are_case_insensitive_and_trimmed(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [("R1", "P1", "MHA_S136 ", "Police_Station", "2019-07-01 12:00")],
        [("R1", "2019-07-01 12:05", " Bail_Refused ", None), ("R1", "2019-07-01 12:06", "REVIEW", "Pre_Charge")],
        detention_header=["custody_record_id", "person_id", "detention_power", "place_of_safety", "arrival_time"],
        event_header=["custody_record_id", "event_time", "event_type", "detail"],
    )
    record_set = load_record_set(folder)
    assert record_set.detentions.select("detention_power", "place_of_safety").row(0) == (
        "mha_s136",
        "police_station",
    )
    assert record_set.events.select("event_type", "detail").rows() == [
        ("bail_refused", None),
        ("review", "pre_charge"),
    ]
    assert record_set.data_quality.is_empty()


# ---------------------------------------------------------------- events


def test_event_rows_rejected_and_values_unusable(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [GOOD, ("R2", None, "2005-03-01", "pace_arrest", "2019-07-01 12:00")],
        [
            ("R1", "2019-07-01 12:05", "review", "pre_charge", "fine"),  # 2
            (None, "2019-07-01 12:05", "charged", None, None),  # 3
            ("R9", "2019-07-01 12:05", "charged", None, None),  # 4
            ("R2", "2019-07-01 12:05", "charged", None, None),  # 5
            ("R1", None, "charged", None, None),  # 6
            ("R1", "27/10/2019 01:15", "Charged", None, None),  # 7
            ("R1", "2019-07-01 12:05", "arrested", None, "secret note"),  # 8
            ("R1", "2019-07-01 12:05", None, None, None),  # 9
            ("R1", "2019-07-01 12:05", "review", "secure", "secret note"),  # 10
            ("R1", "2019-07-01 12:05", "charged", "nfa", None),  # 11
        ],
    )
    record_set = load_record_set(folder)
    found = [
        (r["row"], r["column"], r["value"], r["action"], r["custody_record_id"], r["event_type"], r["reason"])
        for r in dq_rows(record_set, table="events")
    ]
    assert found == [
        (
            3,
            "custody_record_id",
            None,
            "row_rejected",
            None,
            "charged",
            "custody_record_id is missing: the event cannot be matched to a custody record",
        ),
        (
            4,
            "custody_record_id",
            "R9",
            "row_rejected",
            "R9",
            "charged",
            "custody_record_id is not in detentions: add the record, or correct the id",
        ),
        (
            5,
            "custody_record_id",
            "R2",
            "row_rejected",
            "R2",
            "charged",
            "custody_record_id was rejected in detentions (see its rows there), so its events are not used",
        ),
        (
            6,
            "event_time",
            None,
            "row_rejected",
            "R1",
            "charged",
            "event_time is missing: an event without it cannot be used",
        ),
        (
            7,
            "event_time",
            "27/10/2019 01:15",
            "row_rejected",
            "R1",
            "charged",
            "event_time occurs twice in UK time (clocks go back); give the offset, e.g. +01:00 or +00:00",
        ),
        (
            8,
            "event_type",
            "arrested",
            "row_rejected",
            "R1",
            "arrested",
            "event_type is not an allowed value: see `custody schema` for the list",
        ),
        (
            9,
            "event_type",
            None,
            "row_rejected",
            "R1",
            None,
            "event_type is missing: an event without it cannot be used",
        ),
        (
            10,
            "detail",
            "secure",
            "value_unusable",
            "R1",
            "review",
            "detail is not a detail code for review: use one of pre_charge, post_charge, postponed",
        ),
        (
            11,
            "detail",
            "nfa",
            "value_unusable",
            "R1",
            "charged",
            "detail is not used: charged takes no detail code",
        ),
    ]
    assert record_set.events.select("_row", "detail").rows() == [(2, "pre_charge"), (10, None), (11, None)]
    # Free-text notes are never copied into the data-quality output.
    assert not record_set.data_quality.select(pl.all().cast(pl.String).str.contains("secret").any()).row(0)[0]
    assert_accounted(record_set)


# ---------------------------------------------------------------- encodings


def test_windows_1252_text_is_read_with_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "detentions.csv").write_bytes(
        b"custody_record_id,person_id,detention_power,arrival_time,custody_suite\n"
        b"R1,P1,pace_arrest,2019-07-01 12:00,Caf\xe9 Street\n"
        b"R2,P2,pace_arrest,2019-07-01 12:00,Na\xc3\xafve Road\n"
    )
    (folder / "events.csv").write_bytes(
        b"custody_record_id,event_time,event_type,note\nR2,2019-07-01 12:05,charged,\x93hi\x94\n"
    )
    record_set = load_record_set(folder)
    assert record_set.detentions["custody_suite"].to_list() == ["Café Street", "Naïve Road"]
    assert record_set.events["note"].to_list() == ["\u201chi\u201d"]
    assert dq_rows(record_set) == [
        {
            "table": "detentions",
            "row": 2,
            "column": "custody_suite",
            "value": None,
            "reason": "not valid UTF-8; read as Windows-1252: check the text",
            "action": "warning",
            "custody_record_id": "R1",
            "event_type": None,
        },
        {
            "table": "events",
            "row": 2,
            "column": "note",
            "value": None,
            "reason": "not valid UTF-8; read as Windows-1252: check the text",
            "action": "warning",
            "custody_record_id": "R2",
            "event_type": "charged",
        },
    ]
    assert_accounted(record_set)


# ---------------------------------------------------------------- structural problems


def test_missing_required_column_stops_the_run(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set(
        [("R1", "P1", "pace_arrest")], detention_header=["custody_record_id", "person_id", "detention_power"]
    )
    with pytest.raises(InputError) as raised:
        load_record_set(folder)
    assert str(raised.value) == (
        f"{folder}/detentions.csv has no column 'arrival_time' (its columns are: custody_record_id, person_id, "
        "detention_power): add it (column names are case-insensitive), or see `custody schema`."
    )


def test_missing_required_columns_are_all_named(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set([GOOD], [("R1",)], event_header=["custody_record_id"])
    with pytest.raises(InputError, match=r"events.csv has no columns 'event_time', 'event_type' \(its columns"):
        load_record_set(folder)


def test_a_file_without_its_header_row_is_named_without_quoting_a_record(tmp_path: Path) -> None:
    """Its first row is a record: the error never quotes its id, time or note."""
    write_csv(tmp_path / "detentions.csv", DETENTION_HEADER, [GOOD])
    (tmp_path / "events.csv").write_text("R1,2019-07-01 12:05,charged,,Told her mother Jane Doe\n", encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_record_set(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}/events.csv has no columns 'custody_record_id', 'event_time', 'event_type': its first row "
        "does not look like column names (is the header row missing?): give the file a header row with the "
        "contract's column names (see `custody schema`)."
    )
    # Two equal cells in that row are not quoted either.
    (tmp_path / "events.csv").write_text("R1,,,\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"has two columns with the same name: its first row does not look like"):
        load_record_set(tmp_path)


def test_a_row_with_more_fields_than_the_header_is_reported_not_fatal(tmp_path: Path) -> None:
    """An unquoted comma in a note gives one row an extra field: that row is reported (file,
    row, reason) and none of its values is read; every other row is read as usual."""
    write_csv(tmp_path / "detentions.csv", DETENTION_HEADER, [GOOD])
    (tmp_path / "events.csv").write_text(
        "custody_record_id,event_time,event_type,detail,note\n"
        "R1,2019-07-01 12:05,charged,,\n"
        "R1,2019-07-01 12:06,bail_refused,,Refused, as before\n"
        "R1,2019-07-01 12:30,la_requested,secure,\n",
        encoding="utf-8",
    )
    records = load_record_set(tmp_path)
    assert records.rows_read["events"] == 3
    assert records.rows_used["events"] == 2
    assert records.events["event_type"].to_list() == ["charged", "la_requested"]
    ragged = records.data_quality.filter(pl.col("reason").str.contains("fields"))
    assert ragged.select("file", "row", "custody_record_id", "reason", "action").rows() == [
        (
            "events.csv",
            3,
            "R1",
            "has 6 fields where the header has 5: none of its values is read (is a comma inside a value not in "
            "quotes?)",
            "row_rejected",
        )
    ]


def test_semicolon_separated_files_are_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "detentions.csv").write_text("custody_record_id;person_id;detention_power;arrival_time\n")
    write_csv(tmp_path / "events.csv", ("custody_record_id", "event_time", "event_type"), [])
    with pytest.raises(InputError) as raised:
        load_record_set(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path}/detentions.csv is separated by semicolons, not commas: save it as comma-separated CSV."
    )


def test_repeated_column_names_stop_the_run(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set([(*GOOD, "P1")], detention_header=[*DETENTION_HEADER, "Person_ID"])
    with pytest.raises(InputError, match="has two columns named 'person_id' and 'Person_ID'"):
        load_record_set(folder)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        load_record_set(tmp_path / "nowhere")
    assert str(raised.value) == (
        f"{tmp_path}/nowhere does not exist: give the folder holding detentions and events files, or the two files."
    )


def test_folder_without_events(tmp_path: Path) -> None:
    write_csv(tmp_path / "detentions.csv", DETENTION_HEADER, [GOOD])
    with pytest.raises(InputError) as raised:
        load_record_set(tmp_path)
    assert str(raised.value) == (
        f"{tmp_path} has no events file: add events.csv (or .parquet, .ndjson, .jsonl, .xlsx), "
        "or name the files one by one."
    )


def test_two_detentions_files_are_ambiguous(csv_record_set: RecordSetFactory) -> None:
    folder = csv_record_set([GOOD])
    pl.read_csv(folder / "detentions.csv").write_parquet(folder / "detentions.parquet")
    with pytest.raises(InputError) as raised:
        load_record_set(folder)
    assert str(raised.value) == (
        f"{folder} has both detentions.csv and detentions.parquet: keep only one of them, or name the files one by one."
    )


def test_file_names_are_case_insensitive(tmp_path: Path) -> None:
    write_csv(tmp_path / "Detentions.CSV", DETENTION_HEADER, [GOOD])
    write_csv(tmp_path / "EVENTS.csv", ("custody_record_id", "event_time", "event_type"), [])
    record_set = load_record_set(tmp_path)
    assert record_set.files["detentions"].name == "Detentions.CSV"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "detentions.csv",
            bytes(range(256)) * 4,
            "detentions.csv is not a text file (it holds binary data): export the table as CSV.",
        ),
        (
            "detentions.csv",
            b"",
            "detentions.csv is empty: it needs a header row naming the columns (see `custody schema`), "
            "even with no rows.",
        ),
        (
            "detentions.parquet",
            b"PAR1 this is not really parquet",
            "detentions.parquet could not be read as Parquet (",
        ),
        ("detentions.xlsx", b"not a workbook", "detentions.xlsx could not be read as an Excel workbook ("),
        ("detentions.ndjson", b'{"custody_record_id": "R1"}\n[1, 2]\n', "line 2 is not a JSON object"),
        # A row with more fields than its header no longer makes the file unreadable (that row is
        # reported): here the header is the file's problem.
        ("detentions.csv", b"a,b\n1,2,3\n", "detentions.csv has no columns 'custody_record_id', "),
    ],
)
def test_files_that_are_not_tables_stop_the_run(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    write_csv(tmp_path / "events.csv", ("custody_record_id", "event_time", "event_type"), [])
    with pytest.raises(InputError) as raised:
        load_record_set(tmp_path)
    assert message in str(raised.value)
    assert str(raised.value).startswith(str(tmp_path / name))
    assert "\n" not in str(raised.value)


def test_header_only_files_are_empty_tables(csv_record_set: RecordSetFactory) -> None:
    record_set = load_record_set(csv_record_set([]))
    assert record_set.detentions.height == 0
    assert record_set.events.height == 0
    assert record_set.summary()["children"] == 0
    assert record_set.detentions.schema == pl.Schema({**polars_schema("detentions"), "_row": pl.Int64})


def test_two_named_files(tmp_path: Path) -> None:
    detentions = write_csv(tmp_path / "a" / "custody.csv", DETENTION_HEADER, [GOOD])
    events = write_csv(tmp_path / "b" / "timeline.csv", ("custody_record_id", "event_time", "event_type"), [])
    record_set = load_record_set((detentions, events))
    assert record_set.files == {"detentions": detentions, "events": events}
    text = tmp_path / "b" / "timeline.txt"
    text.write_text("custody_record_id,event_time,event_type\n")
    with pytest.raises(InputError, match=r"timeline\.txt is not a file type the checker reads"):
        load_record_set((detentions, text))
