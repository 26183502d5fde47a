"""Vectorised parsing of dates, date-times and booleans as the data contract reads them.

Each `parse_*` function takes one column (a `pl.Series` of any type: text as read
from CSV/XLSX/NDJSON, or typed values from Parquet) and returns a frame of the
same length with three columns:

- `value`: the parsed value (`Datetime("us", "UTC")`, `Date` or `Boolean`), null
  when the input was missing or could not be used;
- `reason`: null when the value is fine or missing, otherwise the rest of a short
  sentence about the column a person can act on ("is not a real date: check the day
  and month"); it never quotes the value (that is the data-quality row's `value`), so
  reasons group by kind of problem, and an id or date of birth never hides in one;
- `issue`: a stable code for the kind of problem (the keys of `ISSUE_LABELS`), for
  counting.

Times (DATA-CONTRACT.md, "Times"): ISO 8601 (`2019-10-27 03:30`,
`2019-10-27T03:30:00.5+01:00`, `...Z`) or UK `DD/MM/YYYY HH:MM[:SS]`, never
`MM/DD`. A time with an offset is that exact instant. A time without one is UK
legal time (Europe/London) and becomes the instant it denotes; a local time in
the October repeated hour (it occurs twice) or in the March gap (it never
occurs) is not guessed: the value is null and the reason says which.

Speed: the common case costs one `str.to_datetime` pass with the format most of
the column uses (picked from a sample), then one time zone conversion. Only the
values that format does not read go through the slower, general regex reader,
so a column of ten million well-formed times parses in about a second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import polars as pl

from custody.contract import UK_TZ

INSTANT = pl.Datetime("us", "UTC")
LOCAL = pl.Datetime("us")

# Years outside this range are typing errors (e.g. a two-digit year read as year 19),
# not custody records or dates of birth of children.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2099

ISSUE_LABELS: dict[str, str] = {
    "bad_datetime": "not a date and time",
    "no_time": "a date without a time of day",
    "not_real": "not a real date or time",
    "ambiguous_time": "local time occurs twice (clocks go back)",
    "nonexistent_time": "local time does not exist (clocks go forward)",
    "implausible_year": "year outside 1900-2099",
    "bad_date": "not a date",
    "not_real_date": "not a real date",
    "bad_bool": "not true or false",
}

DATETIME_FORMS = "YYYY-MM-DD HH:MM (ISO 8601, optionally with an offset such as +01:00 or Z) or DD/MM/YYYY HH:MM"
DATE_FORMS = "YYYY-MM-DD or DD/MM/YYYY"

_REASON_TEMPLATES: dict[str, str] = {
    "bad_datetime": "is not a date and time: use " + DATETIME_FORMS,
    "no_time": "has no time of day: give the date and time, e.g. 2019-10-27 03:30",
    "not_real": "is not a real date and time: check the day, month, hour and minute",
    "ambiguous_time": "occurs twice in UK time (clocks go back); give the offset, e.g. +01:00 or +00:00",
    "nonexistent_time": (
        "does not exist in UK time (clocks go forward); check the time, or give the offset, e.g. +00:00"
    ),
    "implausible_year": "is outside the years 1900 to 2099: check the year (use four digits)",
    "bad_date": "is not a date: use " + DATE_FORMS,
    "not_real_date": "is not a real date: check the day and month",
    "bad_bool": "is not true or false: use true/false, yes/no, y/n or 1/0",
}

# Fast formats (chrono syntax) tried on a sample; the best one reads the whole column.
_DATETIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M%#z",
)
_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%d/%m/%Y")

# The general readers. ASCII digits only: `\d` would also match other scripts' digits.
_TIME = r"(?:[Tt]|\s+)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
_OFFSET = r"\s*([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_ISO_DATETIME = r"^\s*([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})" + _TIME + _OFFSET + r"\s*$"
_UK_DATETIME = r"^\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})" + _TIME + _OFFSET + r"\s*$"
_DATE_ONLY = r"^\s*(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})\s*$"
# A date may carry a midnight time (spreadsheets store dates as midnight date-times).
_MIDNIGHT = r"(?:(?:[Tt]|\s+)00:00(?::00(?:[.,]0+)?)?)?"
_DATE = r"^\s*(?:([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})|([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}))" + _MIDNIGHT + r"\s*$"

_TRUE = ("true", "yes", "y", "1")
_FALSE = ("false", "no", "n", "0")
_BOOLS: dict[str, bool] = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}

_SAMPLE_SIZE = 500


# ---------------------------------------------------------------- helpers


def is_nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def as_text(values: pl.Series) -> pl.Series:
    """The values as strings, as a person would read them (nested JSON values as JSON text)."""
    dtype = values.dtype
    if dtype == pl.String:
        return values
    if is_nested(dtype):
        # json-encode a one-field struct, then cut the `{"name":` wrapper off.
        name = values.name or "v"
        frame = pl.DataFrame({name: values})
        encoded = frame.select(pl.struct(name).struct.json_encode())[name]
        prefix = len(f'{{"{name}":'.encode())
        text = encoded.str.slice(prefix).str.head(-1)
        return pl.select(pl.when(values.is_not_null()).then(text)).to_series().rename(values.name)
    if dtype == pl.Binary:
        return values.cast(pl.String, strict=False)
    return values.cast(pl.String)


def _pick_format(text: pl.Series, formats: Sequence[str], *, to_date: bool) -> str | None:
    """The format that reads most of a sample of the column (None if none reads any)."""
    sample = text.head(_SAMPLE_SIZE).drop_nulls()
    if sample.is_empty():
        sample = text.drop_nulls().head(_SAMPLE_SIZE)
    best, best_count = None, 0
    for fmt in formats:
        parsed = sample.str.to_date(fmt, strict=False) if to_date else _to_datetime(sample, fmt)
        count = len(parsed) - parsed.null_count()
        if count > best_count:
            best, best_count = fmt, count
    return best


def _to_datetime(text: pl.Series, fmt: str) -> pl.Series:
    return text.str.to_datetime(fmt, time_unit="us", strict=False)


def _scatter(target: pl.Series, positions: pl.Series, values: pl.Series) -> pl.Series:
    if positions.len() == 0:
        return target
    return target.scatter(positions, values)


def _reasons(issue: pl.Series) -> pl.Series:
    """The reason for each issue code (the value itself is never quoted)."""
    return issue.replace_strict(_REASON_TEMPLATES, return_dtype=pl.String)


class _Result:
    """Full-length value / issue columns, filled in stages."""

    def __init__(self, length: int, dtype: pl.DataType) -> None:
        self.value = pl.repeat(None, length, dtype=dtype, eager=True)
        self.issue = pl.repeat(None, length, dtype=pl.String, eager=True)

    def flag(self, positions: pl.Series, issue: pl.Series | str) -> None:
        if positions.len() == 0:
            return
        codes = pl.repeat(issue, positions.len(), eager=True) if isinstance(issue, str) else issue
        self.issue = self.issue.scatter(positions, codes)

    def frame(self) -> pl.DataFrame:
        positions = self.issue.is_not_null().arg_true()
        value = self.value
        reason = pl.repeat(None, len(value), dtype=pl.String, eager=True)
        if positions.len():
            value = value.scatter(positions, pl.repeat(None, positions.len(), dtype=value.dtype, eager=True))
            reason = reason.scatter(positions, _reasons(self.issue.gather(positions)))
        return pl.DataFrame({"value": value, "reason": reason, "issue": self.issue})


_FIRST_INSTANT = dt.datetime(EARLIEST_YEAR, 1, 1)
_END_INSTANT = dt.datetime(LATEST_YEAR + 1, 1, 1)


def _flag_implausible(result: _Result, values: pl.Series) -> None:
    """Flag dates / date-times outside the plausible years (compared without extracting the year)."""
    if isinstance(values.dtype, pl.Datetime):
        first: dt.date = _FIRST_INSTANT
        end: dt.date = _END_INSTANT
        if values.dtype.time_zone is not None:
            first, end = _FIRST_INSTANT.replace(tzinfo=dt.UTC), _END_INSTANT.replace(tzinfo=dt.UTC)
    else:
        first, end = _FIRST_INSTANT.date(), _END_INSTANT.date()
    implausible = (values < first) | (values >= end)
    result.flag(implausible.fill_null(False).arg_true(), "implausible_year")


# ---------------------------------------------------------------- date-times


def _read_datetimes_slowly(text: pl.Series) -> pl.DataFrame:
    """The general reader, for the few values the fast format did not read.

    Returns `local` (naive wall-clock time, when no offset was given), `instant`
    (UTC, when an offset was given) and `issue`.
    """
    frame = pl.DataFrame({"text": text})
    iso = pl.col("text").str.extract_groups(_ISO_DATETIME)
    uk = pl.col("text").str.extract_groups(_UK_DATETIME)
    frame = frame.with_columns(
        year=pl.coalesce(iso.struct[0], uk.struct[2]),
        month=pl.coalesce(iso.struct[1], uk.struct[1]),
        day=pl.coalesce(iso.struct[2], uk.struct[0]),
        hour=pl.coalesce(iso.struct[3], uk.struct[3]),
        minute=pl.coalesce(iso.struct[4], uk.struct[4]),
        second=pl.coalesce(iso.struct[5], uk.struct[5]).fill_null("00"),
        fraction=pl.coalesce(iso.struct[6], uk.struct[6]).fill_null("0"),
        offset=pl.coalesce(iso.struct[7], uk.struct[7]).str.to_uppercase(),
        date_only=pl.col("text").str.contains(_DATE_ONLY),
    )
    canonical = pl.format(
        "{}-{}-{} {}:{}:{}.{}",
        "year",
        pl.col("month").str.pad_start(2, "0"),
        pl.col("day").str.pad_start(2, "0"),
        pl.col("hour").str.pad_start(2, "0"),
        "minute",
        "second",
        "fraction",
    )
    offset_digits = pl.col("offset").str.replace(":", "", literal=True)
    offset_hours = offset_digits.str.slice(1, 2).cast(pl.Int32, strict=False).fill_null(0)
    offset_mins = offset_digits.str.slice(3, 2).cast(pl.Int32, strict=False).fill_null(0)
    offset_minutes = (
        pl.when(pl.col("offset") == "Z")
        .then(pl.lit(0))
        .otherwise(
            (offset_hours * 60 + offset_mins) * pl.when(offset_digits.str.starts_with("-")).then(-1).otherwise(1)
        )
    )
    frame = frame.with_columns(
        naive=canonical.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False),
        offset_minutes=pl.when(pl.col("offset").is_not_null()).then(offset_minutes),
    )
    # Real offsets lie within +/-14 hours, and their minutes within the hour.
    bad_offset = (pl.col("offset_minutes").abs() > 14 * 60) | (offset_mins >= 60)
    return frame.select(
        local=pl.when(pl.col("offset").is_null()).then(pl.col("naive")),
        instant=(pl.col("naive") - pl.duration(minutes=pl.col("offset_minutes"))).dt.replace_time_zone("UTC"),
        issue=pl.when(pl.col("text").str.strip_chars() == "")
        .then(None)
        .when(pl.col("year").is_null() & pl.col("date_only"))
        .then(pl.lit("no_time"))
        .when(pl.col("year").is_null())
        .then(pl.lit("bad_datetime"))
        .when(pl.col("naive").is_null() | bad_offset.fill_null(False))
        .then(pl.lit("not_real")),
    )


_US_PER_HOUR = 3_600_000_000
_OK, _AMBIGUOUS, _NONEXISTENT = 0, 1, 2


def _uk_hours(first_hour: int, last_hour: int) -> pl.DataFrame:
    """For each local clock hour (hours since 1970-01-01 00:00 on the UK wall clock): its UTC
    offset in microseconds, and whether that hour occurs twice or never."""
    hours = pl.int_range(first_hour, last_hour + 1, dtype=pl.Int64, eager=True)
    local = (hours * _US_PER_HOUR).cast(LOCAL)
    in_uk = local.dt.replace_time_zone(UK_TZ, ambiguous="null", non_existent="null")
    earliest = local.dt.replace_time_zone(UK_TZ, ambiguous="earliest", non_existent="null")
    utc_wall = in_uk.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return pl.DataFrame(
        {
            "offset_us": local.cast(pl.Int64) - utc_wall.cast(pl.Int64),
            "status": pl.select(
                pl.when(in_uk.is_not_null())
                .then(pl.lit(_OK))
                .when(earliest.is_not_null())
                .then(pl.lit(_AMBIGUOUS))
                .otherwise(pl.lit(_NONEXISTENT))
                .cast(pl.UInt8)
            ).to_series(),
        }
    )


def _localise(result: _Result, local: pl.Series) -> pl.Series:
    """UK wall-clock times -> UTC instants; the repeated and the missing hour are flagged, not guessed.

    Europe/London: on the last Sunday of March the clock hour from 01:00 never occurs;
    on the last Sunday of October the hour from 01:00 occurs twice (BST, then GMT).
    Without an offset there is no way to know which instant was meant, so neither is
    guessed. Every UK change (back to 1900) happens on the hour, so one lookup per
    clock hour gives the offset: much faster than a time zone conversion per value.
    """
    micros = local.cast(pl.Int64)
    hour = micros // _US_PER_HOUR
    data_low, data_high = hour.min(), hour.max()
    if not (isinstance(data_low, int) and isinstance(data_high, int)):
        return pl.repeat(None, len(local), dtype=INSTANT, eager=True)
    # Hours outside the plausible years are flagged by _flag_implausible; here they get no offset.
    low = max(data_low, _hours_since_epoch(_FIRST_INSTANT))
    high = min(data_high, _hours_since_epoch(_END_INSTANT) - 1)
    if low > high:
        return pl.repeat(None, len(local), dtype=INSTANT, eager=True)
    table = _uk_hours(low, high)
    if (low, high) == (data_low, data_high):
        index = hour - low
    else:
        index = pl.select(pl.when((hour >= low) & (hour <= high)).then(hour - low)).to_series()
    offset = table["offset_us"].gather(index)
    status = table["status"].gather(index)
    flagged = status.fill_null(_OK) != _OK
    if flagged.any():
        positions = flagged.arg_true()
        kinds = pl.select(
            pl.when(status.gather(positions) == _AMBIGUOUS)
            .then(pl.lit("ambiguous_time"))
            .otherwise(pl.lit("nonexistent_time"))
        ).to_series()
        result.flag(positions, kinds)
    return (micros - offset).cast(INSTANT)


def _hours_since_epoch(moment: dt.datetime) -> int:
    return int((moment - dt.datetime(1970, 1, 1)).total_seconds()) // 3600


DateOrder = Literal["dmy", "mdy"]
_SLASH_PARTS = r"^(\s*)([0-9]{1,2})/([0-9]{1,2})/"


def _day_first(text: pl.Series, order: DateOrder) -> pl.Series:
    """Slash dates as DD/MM/YYYY: written month first (`mdy`, declared), their first two
    parts are swapped before anything is read. ISO dates are not slash dates."""
    return text if order == "dmy" else text.str.replace(_SLASH_PARTS, "${1}${3}/${2}/")


def parse_datetimes(values: pl.Series, order: DateOrder = "dmy") -> pl.DataFrame:
    """Date-times -> `value` (UTC instant), `reason`, `issue` (see the module docstring);
    slash dates are read in the declared `order` (day first by default)."""
    length = len(values)
    result = _Result(length, INSTANT)
    dtype = values.dtype

    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            result.value = values.dt.convert_time_zone("UTC").cast(INSTANT)
        else:
            local = values.cast(LOCAL)
            _flag_implausible(result, local)
            result.value = _localise(result, local)
        _flag_implausible(result, result.value)
        return result.frame()
    if dtype == pl.Date:
        result.flag(values.is_not_null().arg_true(), "no_time")
        return result.frame()

    text = _day_first(as_text(values), order)
    local = pl.repeat(None, length, dtype=LOCAL, eager=True)
    instant = result.value
    fmt = _pick_format(text, _DATETIME_FORMATS, to_date=False)
    if fmt is not None:
        fast = _to_datetime(text, fmt)
        if isinstance(fast.dtype, pl.Datetime) and fast.dtype.time_zone is not None:
            instant = fast.dt.convert_time_zone("UTC")
        else:
            local = fast
        unread = (text.is_not_null() & fast.is_null()).arg_true()
    else:
        unread = text.is_not_null().arg_true()
    if unread.len():
        slow = _read_datetimes_slowly(text.gather(unread))
        local = _scatter(local, unread, slow["local"])
        instant = _scatter(instant, unread, slow["instant"])
        result.flag(unread, slow["issue"])
    _flag_implausible(result, local)
    _flag_implausible(result, instant)
    result.value = instant.fill_null(_localise(result, local))
    return result.frame()


# ---------------------------------------------------------------- dates


def _read_dates_slowly(text: pl.Series) -> pl.DataFrame:
    frame = pl.DataFrame({"text": text})
    parts = pl.col("text").str.extract_groups(_DATE)
    frame = frame.with_columns(
        year=pl.coalesce(parts.struct[0], parts.struct[5]),
        month=pl.coalesce(parts.struct[1], parts.struct[4]),
        day=pl.coalesce(parts.struct[2], parts.struct[3]),
    )
    date = pl.format(
        "{}-{}-{}", "year", pl.col("month").str.pad_start(2, "0"), pl.col("day").str.pad_start(2, "0")
    ).str.to_date("%Y-%m-%d", strict=False)
    return frame.select(
        value=date,
        issue=pl.when(pl.col("text").str.strip_chars() == "")
        .then(None)
        .when(pl.col("year").is_null())
        .then(pl.lit("bad_date"))
        .when(date.is_null())
        .then(pl.lit("not_real_date")),
    )


def parse_dates(values: pl.Series, order: DateOrder = "dmy") -> pl.DataFrame:
    """Dates -> `value` (Date), `reason`, `issue` (see the module docstring); slash dates
    are read in the declared `order` (day first by default)."""
    result = _Result(len(values), pl.Date())
    dtype = values.dtype
    if dtype == pl.Date:
        result.value = values
    elif isinstance(dtype, pl.Datetime):
        # A date stored as a date-time: its calendar date on the UK clock.
        local = values if dtype.time_zone is None else values.dt.convert_time_zone(UK_TZ)
        result.value = local.dt.date()
    else:
        text = _day_first(as_text(values), order)
        value = result.value
        fmt = _pick_format(text, _DATE_FORMATS, to_date=True)
        if fmt is not None:
            value = text.str.to_date(fmt, strict=False)
            unread = (text.is_not_null() & value.is_null()).arg_true()
        else:
            unread = text.is_not_null().arg_true()
        if unread.len():
            slow = _read_dates_slowly(text.gather(unread))
            value = _scatter(value, unread, slow["value"])
            result.flag(unread, slow["issue"])
        result.value = value
    _flag_implausible(result, result.value)
    return result.frame()


# ---------------------------------------------------------------- booleans


def parse_bools(values: pl.Series) -> pl.DataFrame:
    """Booleans -> `value` (Boolean), `reason`, `issue`.

    Accepted (case-insensitive, trimmed): true/false, yes/no, y/n, 1/0.
    """
    result = _Result(len(values), pl.Boolean())
    if values.dtype == pl.Boolean:
        result.value = values
        return result.frame()
    text = as_text(values)
    key = text.str.strip_chars().str.to_lowercase()
    result.value = key.replace_strict(_BOOLS, default=None, return_dtype=pl.Boolean)
    result.flag((result.value.is_null() & (key.str.len_bytes() > 0)).arg_true(), "bad_bool")
    return result.frame()
