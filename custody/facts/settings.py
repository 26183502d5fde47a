"""Parameters of the facts layer, read from `rules/_facts.yaml`.

Legal values are dated like every rule (`versions`: effective_from, optional
effective_to, citations, changes, values); the facts layer takes, for each record, the
version in force at the instant the duty arises (`value_at`). `parameters` hold what
is not law that changes by date: readings where the law is uncertain.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from custody.facts.statistics import OvernightDefinition
from custody.facts.time import duration_lit, instant_lit, parse_duration, uk_midnight

DatedValueName = Literal["review_first_after", "review_interval"]


class SettingsError(ValueError):
    """A problem with the dated versions, located by key path (e.g. `("versions", 1)`)."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.location, self.message = location, message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def duration_from_text(value: object) -> object:
    """A duration written as text ('6h', '90m') read for a pydantic field; other values as given."""
    if isinstance(value, str):
        parsed = parse_duration(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not a duration such as '6h' or '90m'")
        return parsed
    return value


class DatedValues(_Strict):
    """The legal values in force under one version; every version states every one."""

    review_first_after: dt.timedelta = Field(
        description="PACE s40(3)(a): the first review no later than this after detention first authorised"
    )
    review_interval: dt.timedelta = Field(
        description="PACE s40(3)(b),(c): later reviews at intervals of not more than this"
    )

    @field_validator("review_first_after", "review_interval", mode="before")
    @classmethod
    def _duration_text(cls, value: object) -> object:
        return duration_from_text(value)

    @field_validator("review_first_after", "review_interval")
    @classmethod
    def _positive(cls, value: dt.timedelta) -> dt.timedelta:
        if value <= dt.timedelta(0):
            raise ValueError("must be a period longer than zero, such as '6h'")
        return value


EARLIEST_EFFECTIVE_DATE = dt.date(1800, 1, 1)
LATEST_EFFECTIVE_DATE = dt.date(2999, 12, 31)


class DatedVersion(_Strict):
    """What every dated version of the law states, in rule files and in `_facts.yaml` alike:
    when it took effect (00:00 UK time), its last day in force if it has ended, its
    citations and what changed."""

    effective_from: dt.date
    effective_to: dt.date | None = Field(None, description="last day in force (inclusive)")
    citations: list[str] = Field(min_length=1)
    changes: str = Field(description="what changed at this date, in plain English")

    @field_validator("effective_from", "effective_to")
    @classmethod
    def _within_bounds(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not EARLIEST_EFFECTIVE_DATE <= value <= LATEST_EFFECTIVE_DATE:
            raise ValueError(
                f"{value} is outside {EARLIEST_EFFECTIVE_DATE} to {LATEST_EFFECTIVE_DATE}: give the real date"
                " (leave effective_to out while a version is in force)"
            )
        return value


class SettingsVersion(DatedVersion):
    """The legal values of the facts layer from one date (00:00 UK time) until the next."""

    values: DatedValues

    def start(self) -> dt.datetime:
        """The instant this version takes effect: 00:00 UK time on effective_from."""
        return uk_midnight(self.effective_from)

    def end(self) -> dt.datetime | None:
        """The instant it ceases: 00:00 UK time the day after effective_to (None: still in force)."""
        return uk_midnight(self.effective_to + dt.timedelta(days=1)) if self.effective_to else None


class HeldOvernight(_Strict):
    """What "held overnight" means for the statistics (LAW.md: no statutory definition, R)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    window_from: dt.time = Field(dt.time(0), alias="from", description="the night's window starts (UK time)")
    window_to: dt.time = Field(dt.time(8), alias="to", description="the night's window ends (UK time)")
    at_least: dt.timedelta = Field(dt.timedelta(hours=4), description="time in custody within one night's window")

    @field_validator("window_from", "window_to", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return dt.time(value // 60, value % 60)  # YAML reads an unquoted 08:00 as sexagesimal 480
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a time of day such as '08:00'") from None
        return value

    @field_validator("at_least", mode="before")
    @classmethod
    def _duration_text(cls, value: object) -> object:
        return duration_from_text(value)

    def definition(self) -> OvernightDefinition:
        return OvernightDefinition.of(self.window_from, self.window_to, self.at_least)

    @model_validator(mode="after")
    def _valid(self) -> HeldOvernight:
        self.definition()  # raises ValueError with the reason
        return self


class FactParameters(_Strict):
    """Not law that changes by date: readings of uncertain law (LAW.md confidence R)."""

    leap_day_birthday: Literal["march_1", "feb_28"] = Field(
        "march_1", description="when a 29 February birthday is reached in a common year (LAW.md: uncertain)"
    )
    held_overnight: HeldOvernight = Field(
        default_factory=HeldOvernight,
        description="the statistics' definition of held overnight (no statutory definition: LAW.md R)",
    )


def _pace_1986() -> list[SettingsVersion]:
    """As shipped in rules/_facts.yaml (a test keeps them equal); for a rules folder without one."""
    return [
        SettingsVersion(
            effective_from=dt.date(1986, 1, 1),
            citations=[
                "PACE 1984 s40(3)(a) (first review no later than 6 hours after detention first authorised)",
                "PACE 1984 s40(3)(b), (c) (later reviews at intervals of not more than 9 hours)",
            ],
            changes="PACE Part IV in force.",
            values=DatedValues(review_first_after=dt.timedelta(hours=6), review_interval=dt.timedelta(hours=9)),
        )
    ]


class FactSettings(_Strict):
    """Parameters of the facts layer, from `rules/_facts.yaml` (legal values dated and cited there)."""

    versions: list[SettingsVersion] = Field(default_factory=_pace_1986, min_length=1)
    parameters: FactParameters = Field(default_factory=FactParameters)

    @model_validator(mode="after")
    def _versions_in_order(self) -> FactSettings:
        for index, version in enumerate(self.versions):
            where = ("versions", index)
            for number, citation in enumerate(version.citations):
                if not citation.strip():
                    raise SettingsError(
                        (*where, "citations", number), f"version {version.effective_from}: empty citation"
                    )
            if version.effective_to is not None and version.effective_to < version.effective_from:
                raise SettingsError(
                    (*where, "effective_to"),
                    f"version {version.effective_from} ends ({version.effective_to}) before it starts",
                )
            if index == 0:
                continue
            previous = self.versions[index - 1]
            if version.effective_from <= previous.effective_from:
                raise SettingsError(
                    (*where, "effective_from"),
                    f"versions are not in date order ({previous.effective_from} then {version.effective_from})",
                )
            if previous.effective_to is not None and previous.effective_to >= version.effective_from:
                raise SettingsError(
                    (*where, "effective_from"),
                    f"version {previous.effective_from} (to {previous.effective_to}) overlaps {version.effective_from}",
                )
            if previous.effective_to is None:
                raise SettingsError(
                    (*where, "effective_from"),
                    f"version {previous.effective_from} has no effective_to, so it overlaps {version.effective_from}:"
                    f" give it effective_to: {version.effective_from - dt.timedelta(days=1)}",
                )
        return self

    @property
    def leap_day_birthday(self) -> Literal["march_1", "feb_28"]:
        return self.parameters.leap_day_birthday

    def version_on(self, instant: dt.datetime) -> SettingsVersion | None:
        """The version in force at `instant` (a timezone-aware datetime), if any."""
        for version in self.versions:
            end = version.end()
            if version.start() <= instant and (end is None or instant < end):
                return version
        return None

    def value_at(self, name: DatedValueName, instant: pl.Expr) -> pl.Expr:
        """The value of `name` in force at `instant` (a UTC instant expression), per row.

        A version is in force from 00:00 UK time on effective_from until 00:00 UK time the
        day after effective_to; an instant outside every version, or a null instant, gives null.
        """
        chosen: pl.Expr | None = None
        for version in reversed(self.versions):
            end = version.end()
            in_force = instant >= instant_lit(version.start())
            if end is not None:
                in_force = in_force & (instant < instant_lit(end))
            value = duration_lit(getattr(version.values, name))
            chosen = pl.when(in_force).then(value).otherwise(chosen if chosen is not None else pl.lit(None))
        assert chosen is not None  # versions has min_length=1
        return chosen
