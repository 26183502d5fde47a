"""Reading dates, times and booleans: ISO and UK forms, UK legal time, the clock changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.read.timeparse import parse_bools, parse_dates, parse_datetimes

UTC = dt.UTC


def instant(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def parse_one(value: object) -> tuple[dt.datetime | None, str | None]:
    row = parse_datetimes(pl.Series([value])).row(0, named=True)
    return row["value"], row["reason"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # No offset: UK legal time. BST (UTC+1) in summer, GMT in winter.
        ("2019-07-01 12:00", instant(2019, 7, 1, 11, 0)),
        ("2019-12-01 12:00", instant(2019, 12, 1, 12, 0)),
        ("2019-07-01T12:00", instant(2019, 7, 1, 11, 0)),
        ("2019-07-01 12:00:30", instant(2019, 7, 1, 11, 0, 30)),
        ("2019-07-01T12:00:30.25", instant(2019, 7, 1, 11, 0, 30, 250000)),
        ("01/07/2019 12:00", instant(2019, 7, 1, 11, 0)),
        ("1/7/2019 12:00:05", instant(2019, 7, 1, 11, 0, 5)),
        ("  2019-07-01 12:00  ", instant(2019, 7, 1, 11, 0)),
        # An offset gives the exact instant.
        ("2019-07-01T12:00:00+01:00", instant(2019, 7, 1, 11, 0)),
        ("2019-07-01T12:00:00+0100", instant(2019, 7, 1, 11, 0)),
        ("2019-07-01T12:00:00Z", instant(2019, 7, 1, 12, 0)),
        ("2019-07-01 12:00Z", instant(2019, 7, 1, 12, 0)),
        ("2019-07-01T12:00:00-05:00", instant(2019, 7, 1, 17, 0)),
        ("2019-07-01T12:00:00.5+00:00", instant(2019, 7, 1, 12, 0, 0, 500000)),
        # The October repeated hour is fine with an offset: each reading is one instant.
        ("2019-10-27T01:30:00+01:00", instant(2019, 10, 27, 0, 30)),
        ("2019-10-27T01:30:00+00:00", instant(2019, 10, 27, 1, 30)),
        ("27/10/2019 01:30 +00:00", instant(2019, 10, 27, 1, 30)),
    ],
)
def test_datetime_forms(text: str, expected: dt.datetime) -> None:
    assert parse_one(text) == (expected, None)


def test_mixed_forms_in_one_column_are_each_read() -> None:
    values = pl.Series(["2019-07-01 12:00", "01/07/2019 12:00", "2019-07-01T11:00:00Z", "2019-07-01 12:00:00.0"])
    parsed = parse_datetimes(values)
    assert parsed["value"].to_list() == [instant(2019, 7, 1, 11, 0)] * 4
    assert parsed["reason"].null_count() == 4


def test_october_repeated_hour_without_offset_is_not_guessed() -> None:
    value, reason = parse_one("27/10/2019 01:30")
    assert value is None
    assert reason == ("occurs twice in UK time (clocks go back); give the offset, e.g. +01:00 or +00:00")


def test_march_gap_without_offset_is_not_guessed() -> None:
    value, reason = parse_one("2019-03-31 01:30")
    assert value is None
    assert reason == ("does not exist in UK time (clocks go forward); check the time, or give the offset, e.g. +00:00")


@pytest.mark.parametrize(
    ("text", "instant_expected"),
    [
        ("2019-10-27 00:59", instant(2019, 10, 26, 23, 59)),  # BST, before the repeated hour
        ("2019-10-27 02:00", instant(2019, 10, 27, 2, 0)),  # GMT, after it
        ("2019-03-31 00:59", instant(2019, 3, 31, 0, 59)),  # GMT, before the gap
        ("2019-03-31 02:00", instant(2019, 3, 31, 1, 0)),  # BST, after it
    ],
)
def test_either_side_of_the_clock_changes(text: str, instant_expected: dt.datetime) -> None:
    assert parse_one(text) == (instant_expected, None)


def test_elapsed_time_across_the_clock_changes_is_real_time() -> None:
    parsed = parse_datetimes(
        pl.Series(["2019-10-26 22:00", "2019-10-27 22:00", "2019-03-30 22:00", "2019-03-31 22:00"])
    )["value"]
    assert parsed[1] - parsed[0] == dt.timedelta(hours=25)
    assert parsed[3] - parsed[2] == dt.timedelta(hours=23)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("31/02/2019 10:00", "is not a real date and time: check the day, month, hour and minute"),
        # Never MM/DD: 10/27 would be the 10th day of month 27.
        ("10/27/2019 10:00", "is not a real date and time: check the day, month, hour and minute"),
        ("2019-06-01 25:00", "is not a real date and time: check the day, month, hour and minute"),
        ("2019-10-27", "has no time of day: give the date and time, e.g. 2019-10-27 03:30"),
        (
            "yesterday",
            "is not a date and time: use YYYY-MM-DD HH:MM (ISO 8601, optionally with an offset "
            "such as +01:00 or Z) or DD/MM/YYYY HH:MM",
        ),
        ("19-10-27 10:00", "is outside the years 1900 to 2099: check the year (use four digits)"),
    ],
)
def test_bad_datetimes_have_a_reason(text: str, reason: str) -> None:
    assert parse_one(text) == (None, reason)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_is_not_a_problem_here(blank: str | None) -> None:
    assert parse_one(blank) == (None, None)


def test_typed_datetimes() -> None:
    naive = pl.Series([dt.datetime(2019, 7, 1, 12), dt.datetime(2019, 10, 27, 1, 30), None])
    parsed = parse_datetimes(naive)
    assert parsed["value"].to_list() == [instant(2019, 7, 1, 11), None, None]
    assert parsed["issue"].to_list() == [None, "ambiguous_time", None]
    assert parsed["reason"][1].startswith("occurs twice in UK time")

    paris = pl.Series([dt.datetime(2019, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))])
    assert parse_datetimes(paris)["value"].to_list() == [instant(2019, 7, 1, 10)]
    assert parse_datetimes(paris)["value"].dtype == pl.Datetime("us", "UTC")

    dates = parse_datetimes(pl.Series([dt.date(2019, 7, 1)]))
    assert dates["value"].to_list() == [None]
    assert dates["issue"].to_list() == ["no_time"]


def test_result_has_one_row_per_value_and_utc_type() -> None:
    parsed = parse_datetimes(pl.Series(["2019-07-01 12:00", "x", None], dtype=pl.String))
    assert parsed.schema == pl.Schema({"value": pl.Datetime("us", "UTC"), "reason": pl.String, "issue": pl.String})
    assert parsed.height == 3


@pytest.mark.parametrize(
    ("text", "expected", "reason"),
    [
        ("2005-03-01", dt.date(2005, 3, 1), None),
        ("01/03/2005", dt.date(2005, 3, 1), None),
        ("1/3/2005", dt.date(2005, 3, 1), None),
        ("2005-03-01 00:00:00", dt.date(2005, 3, 1), None),  # spreadsheets' dates
        ("29/02/2004", dt.date(2004, 2, 29), None),
        ("29/02/2005", None, "is not a real date: check the day and month"),
        ("03/13/2005", None, "is not a real date: check the day and month"),
        ("March 2005", None, "is not a date: use YYYY-MM-DD or DD/MM/YYYY"),
        ("  ", None, None),
    ],
)
def test_dates(text: str, expected: dt.date | None, reason: str | None) -> None:
    row = parse_dates(pl.Series([text])).row(0, named=True)
    assert (row["value"], row["reason"]) == (expected, reason)


def test_typed_dates() -> None:
    assert parse_dates(pl.Series([dt.date(2005, 3, 1)]))["value"].to_list() == [dt.date(2005, 3, 1)]
    midnight = pl.Series([dt.datetime(2005, 3, 1)])
    assert parse_dates(midnight)["value"].to_list() == [dt.date(2005, 3, 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("FALSE", False),
        ("Yes", True),
        ("no", False),
        ("Y", True),
        ("n", False),
        ("1", True),
        ("0", False),
        (" yes ", True),
    ],
)
def test_bools(text: str, expected: bool) -> None:
    assert parse_bools(pl.Series([text])).row(0) == (expected, None, None)


def test_bad_bools() -> None:
    parsed = parse_bools(pl.Series(["maybe", "", None, "2"]))
    assert parsed["value"].to_list() == [None, None, None, None]
    assert parsed["reason"].to_list() == [
        "is not true or false: use true/false, yes/no, y/n or 1/0",
        None,
        None,
        "is not true or false: use true/false, yes/no, y/n or 1/0",
    ]
    assert parse_bools(pl.Series([True, None]))["value"].to_list() == [True, None]
    assert parse_bools(pl.Series([1, 0]))["value"].to_list() == [True, False]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=40))
def test_any_text_gets_a_value_or_a_reason(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    blanks = (series.str.strip_chars().str.len_bytes() == 0).fill_null(True).to_list()
    for parse in (parse_datetimes, parse_dates, parse_bools):
        parsed = parse(series)
        assert parsed.height == len(values)
        for blank, (parsed_value, reason, issue) in zip(blanks, parsed.iter_rows(), strict=True):
            assert (parsed_value is None) == (blank or reason is not None)
            assert (reason is None) == (issue is None)
            if blank:
                assert reason is None
