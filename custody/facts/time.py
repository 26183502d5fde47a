"""Legal time as polars expressions: instants, durations, UK calendar dates and ages.

Every legal period is elapsed time between UTC instants; a UK calendar date is taken only
where the law counts in days (an age, the day a law took effect), and then in Europe/London.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import polars as pl

from custody.contract import UK_TZ

_DURATION_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(d|h|m|s|days?|hours?|minutes?|mins?|seconds?)\s*$")


def parse_duration(text: str) -> dt.timedelta | None:
    """`24h`, `15m`, `2d`, `90 minutes` -> timedelta; anything else -> None."""
    match = _DURATION_RE.match(text)
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2)[0]
    return {
        "d": dt.timedelta(days=amount),
        "h": dt.timedelta(hours=amount),
        "m": dt.timedelta(minutes=amount),
        "s": dt.timedelta(seconds=amount),
    }[unit]


def uk_midnight(day: dt.date) -> dt.datetime:
    """00:00 UK legal time at the start of `day`, as a UTC instant (when laws take effect)."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(UK_TZ))
    return local.astimezone(dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def instant_lit(instant: dt.datetime) -> pl.Expr:
    """A UTC instant as a literal, built from integer microseconds.

    (Built from an int rather than a Python datetime: polars caches the Python classes it
    sees, and a test that froze time with freezegun must not change how later ones run.)
    """
    micros = (instant - _EPOCH) // dt.timedelta(microseconds=1)
    return pl.lit(micros, pl.Int64).cast(pl.Datetime("us", "UTC"))


def duration_lit(delta: dt.timedelta) -> pl.Expr:
    """A duration literal from integer microseconds (see `instant_lit`)."""
    return pl.lit(delta // dt.timedelta(microseconds=1), pl.Int64).cast(pl.Duration("us"))


def local_date(instant: pl.Expr) -> pl.Expr:
    """The UK calendar date of a UTC instant."""
    return instant.dt.convert_time_zone(UK_TZ).dt.date()


def age_years(date_of_birth: pl.Expr, instant: pl.Expr, leap_day_birthday: str = "march_1") -> pl.Expr:
    """Age in whole years at `instant`.

    Family Law Reform Act 1969 s9: an age is attained at 00:00 UK time at the start of the
    birthday, so comparing UK calendar dates is exact. A 29 February birthday is reached on
    1 March in a common year by default (`march_1`, the protective reading, LAW.md: uncertain,
    a parameter); `feb_28` reaches it on 28 February.
    """
    return age_on(date_of_birth, local_date(instant), leap_day_birthday)


def age_on(date_of_birth: pl.Expr, day: pl.Expr, leap_day_birthday: str = "march_1") -> pl.Expr:
    """Age in whole years on the UK calendar date `day` (see `age_years`)."""
    birth_month, birth_day = date_of_birth.dt.month().cast(pl.Int32), date_of_birth.dt.day().cast(pl.Int32)
    if leap_day_birthday == "feb_28":
        birth_day = (
            pl.when((birth_month == 2) & (birth_day == 29) & ~day.dt.is_leap_year()).then(28).otherwise(birth_day)
        )
    # Dates as YYYYMMDD numbers: the difference, in whole ten-thousands (floored), is the
    # difference of the years less one if the birthday is still to come that year.
    on_day = day.dt.year().cast(pl.Int32) * 10_000 + day.dt.month().cast(pl.Int32) * 100 + day.dt.day().cast(pl.Int32)
    born = date_of_birth.dt.year().cast(pl.Int32) * 10_000 + birth_month * 100 + birth_day
    return (on_day - born) // 10_000


def leap_day_dependent(date_of_birth: pl.Expr, instants: Sequence[pl.Expr]) -> pl.Expr:
    """True where a child born on 29 February has an age tested (at one of `instants`) on
    28 February of a common year: the one UK date on which the two readings of the birthday
    (leap_day_birthday `march_1` and `feb_28`) give different ages, so a result resting on it
    depends on the setting (LAW.md, Age: mark results that depend on it). False otherwise,
    also where the instants are unknown."""
    born_29 = (date_of_birth.dt.month() == 2) & (date_of_birth.dt.day() == 29)
    tested: list[pl.Expr] = []
    for instant in instants:
        day = local_date(instant)
        tested.append((day.dt.month() == 2) & (day.dt.day() == 28) & ~day.dt.is_leap_year())
    if not tested:
        return pl.lit(False)
    return (born_29 & pl.any_horizontal(tested)).fill_null(False)


def is_juvenile(
    date_of_birth: pl.Expr, appears_under_18: pl.Expr, instant: pl.Expr, age_limit: pl.Expr, leap: str
) -> pl.Expr:
    """Under `age_limit` at `instant`; with no date of birth, the custody officer's recorded view.

    `appears_under_18` only answers the question for a limit of 18 (PACE from 2015-10-26); for a
    limit of 17 a child who appeared under 18 may still have been 17, so the answer is unknown
    (null), and the rule reports `cannot_assess`.
    """
    from_appearance = (
        pl.when(appears_under_18.not_())
        .then(pl.lit(False))
        .when(appears_under_18 & (age_limit >= 18))
        .then(pl.lit(True))
        .otherwise(pl.lit(None, pl.Boolean))
    )
    return (
        pl.when(date_of_birth.is_not_null())
        .then(age_years(date_of_birth, instant, leap) < age_limit)
        .otherwise(from_appearance)
    )
