"""Per-record statistics that are never breaches (LAW.md, "Statistics that are never breaches").

The Home Office collects whether each child was held overnight, pre- or post-charge, and
the time from calling the appropriate adult to their arrival. Neither is a legal duty, so
no rule decides them: they are reported as figures beside the findings. A figure that the
record cannot support (no time the child left custody, no arrival of the adult) is null,
never a "no"; so is a figure resting on an event row or value the loader could not use (a
rejected `charged` row may have been the charge: the record cannot say it was never charged).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from custody.contract import UK_TZ
from custody.facts.specs import fact_specs, taint_column
from custody.facts.time import duration_lit, local_date


@dataclass(frozen=True)
class OvernightDefinition:
    """What "held overnight" means: at least `minimum` in custody between `window_from` and
    `window_to` (UK legal time) of one night. There is no statutory definition (LAW.md: R),
    so this is a named parameter; the default is the one in use in West Yorkshire (FOI
    1009431-22). The window is measured in elapsed time between UTC instants, so on the
    nights the clocks change 00:00-08:00 lasts 7 hours (March) or 9 hours (October)."""

    name: str
    window_from: dt.time
    window_to: dt.time
    minimum: dt.timedelta

    @classmethod
    def of(cls, window_from: dt.time, window_to: dt.time, minimum: dt.timedelta) -> OvernightDefinition:
        """The definition with its name written out ("at least 4 hours in custody between
        00:00 and 08:00 UK time")."""
        hours = minimum / dt.timedelta(hours=1)
        amount = f"{hours:g} hour{'s' if hours != 1 else ''}"
        span = f"{window_from:%H:%M} and {window_to:%H:%M}"
        return cls(f"at least {amount} in custody between {span} UK time", window_from, window_to, minimum)

    def __post_init__(self) -> None:
        if not self.window_from < self.window_to:
            raise ValueError("the overnight window must start before it ends, within one night")
        if not dt.timedelta(0) < self.minimum <= dt.timedelta(hours=24):
            raise ValueError("the time held overnight must be longer than zero and at most 24 hours")
        for moment in (self.window_from, self.window_to):
            if dt.time(1) <= moment < dt.time(2):
                raise ValueError("the overnight window may not start or end in the hour the clocks change")


HELD_OVERNIGHT = OvernightDefinition.of(dt.time(0, 0), dt.time(8, 0), dt.timedelta(hours=4))
"""The default (rules/_facts.yaml `parameters.held_overnight` sets it for a rules folder)."""


STATISTICS_FACTS: tuple[str, ...] = (
    "arrival_at",
    "charged_at",
    "bail_refused_at",
    "aa_requested_at",
    "aa_arrived_at",
    "transferred_to_la_at",
    "released_at",
    "released_to_la_at",
)
"""The facts `record_statistics` reads."""


def _lineage_flags(fact: str) -> list[str]:
    """The taint columns of the inputs `fact` rests on (`custody.facts.specs`)."""
    return [taint_column(source) for source in sorted(fact_specs()[fact].lineage)]


STATISTICS_TAINT: tuple[str, ...] = tuple(dict.fromkeys(f for n in STATISTICS_FACTS for f in _lineage_flags(n)))
"""The taint columns `record_statistics` reads beside `STATISTICS_FACTS`: a statistic resting
on an input the loader could not use is null."""


STATISTICS_SCHEMA = pl.Schema(
    {
        "left_custody_at": pl.Datetime("us", "UTC"),
        "held_overnight_pre_charge": pl.Boolean(),
        "held_overnight_post_charge": pl.Boolean(),
        "aa_wait": pl.Duration("us"),
        "refusal_to_move": pl.Duration("us"),
    }
)


# Beyond this, an interval certainly covers a whole night's window: no need to look further.
_LONGEST_LOOK = dt.timedelta(days=3)


def _window_edge(day: pl.Expr, moment: dt.time) -> pl.Expr:
    """The UTC instant of `moment` (UK legal time) on the UK date `day`."""
    offset = dt.timedelta(hours=moment.hour, minutes=moment.minute)
    return (
        (day.cast(pl.Datetime("us")) + duration_lit(offset))
        .dt.replace_time_zone(UK_TZ, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def longest_night(start: pl.Expr, end: pl.Expr, definition: OvernightDefinition) -> pl.Expr:
    """The longest time in custody within one night's window, for the interval [start, end)
    (looking at most three days on). Null if either end is unknown."""
    # min_horizontal skips nulls: an unknown end must stay unknown.
    look_until = pl.when(end.is_not_null()).then(pl.min_horizontal(end, start + duration_lit(_LONGEST_LOOK)))
    return (
        pl.struct(
            start.alias("s"),
            look_until.alias("e"),
            local_date(start).alias("first"),
            local_date(look_until).alias("last"),
        )
        .map_batches(lambda s: _longest_night_batch(s, definition), return_dtype=pl.Duration("us"))
        .alias("longest_night")
    )


def _longest_night_batch(rows: pl.Series, definition: OvernightDefinition) -> pl.Series:
    """Per row of (s, e, first, last): the largest overlap of [s, e) with the window of each UK
    date from `first` to `last` (0 when there is none), null where s or e is null.

    Each date's window is placed in UTC once (placing a UK local time is the costly step), in
    a table of the dates from the earliest `first` to the latest `last`; a row's k-th night
    is read from it by position (the interval is at most three days: up to five dates), and
    the overlaps are taken in whole microseconds (numpy: one pass per night, no temporaries
    of polars columns)."""
    frame = rows.struct.unnest()
    unknown = frame["s"].is_null() | frame["e"].is_null()
    low, high = frame["first"].min(), frame["last"].max()
    if not isinstance(low, dt.date) or not isinstance(high, dt.date) or high < low:
        return pl.select(pl.when(pl.lit(unknown)).then(None).otherwise(pl.duration(microseconds=0))).to_series()
    days = pl.date_range(low, high, interval="1d", eager=True).to_frame("d")
    windows = days.select(
        _window_edge(pl.col("d"), definition.window_from).alias("_from"),
        _window_edge(pl.col("d"), definition.window_to).alias("_to"),
    )
    # (Each edge is a UK time outside the hour the clocks change: OvernightDefinition.)
    window_from = windows["_from"].to_physical().to_numpy()
    window_to = windows["_to"].to_physical().to_numpy()
    start = frame["s"].to_physical().fill_null(0).to_numpy()
    end = frame["e"].to_physical().fill_null(0).to_numpy()
    first = (frame["first"] - low).dt.total_days().fill_null(0).to_numpy()
    # A row with no dates (unknown) or whose interval ends before it starts has no night.
    nights = (frame["last"] - frame["first"]).dt.total_days().fill_null(-1).to_numpy()
    longest = np.zeros(frame.height, dtype=np.int64)
    for k in range(int(nights.max(initial=-1)) + 1):
        night = nights >= k
        at = np.where(night, first + k, 0)
        overlap = np.minimum(end, window_to[at]) - np.maximum(start, window_from[at])
        np.maximum(longest, np.where(night, overlap, 0), out=longest)
    return pl.Series(rows.name, longest, dtype=pl.Int64).cast(pl.Duration("us")).set(unknown, None)


def _usable(*facts: str) -> pl.Expr:
    """True where no input of `facts` was unusable (every taint flag of their lineage false)."""
    flags = list(dict.fromkeys(f for fact in facts for f in _lineage_flags(fact)))
    return ~pl.any_horizontal(flags)


def _instant(value: pl.Expr, *facts: str) -> pl.Expr:
    """`value` (an instant computed from `facts`) where all their inputs were usable, else null."""
    return pl.when(_usable(*facts)).then(value.cast(pl.Datetime("us", "UTC")))


def record_statistics(facts: pl.DataFrame, definition: OvernightDefinition = HELD_OVERNIGHT) -> pl.DataFrame:
    """`STATISTICS_SCHEMA` for each row of `facts` (same order), from `STATISTICS_FACTS` and
    the taint columns of their inputs (`STATISTICS_TAINT`, as `build_fact_tables` makes them;
    required: without them an unusable input would pass for an absent one).

    The child leaves custody at the first of: released, moved to local authority
    accommodation. Pre-charge custody runs from arrival to charge (or to leaving, if never
    charged); post-charge custody from charge to leaving. With no time of leaving the
    overnight figures are unknown (null); a child never charged was not held post-charge.
    The wait for the appropriate adult is from the first `aa_requested` to the first
    `aa_arrived` (null without both, or if the arrival is recorded before the request);
    the time from refusal to move from the first `bail_refused` to the first move to local
    authority accommodation after it.

    An instant whose inputs include an unusable row or value (a rejected `charged` row, an
    event of unknown type) is not known, nor is any figure it enters: a rejected `charged`
    row leaves both overnight figures null (the child may have been charged, at any time),
    never "not charged"; a rejected `aa_arrived` row leaves the wait null (it may have been
    the first arrival).
    """
    missing = [n for n in (*STATISTICS_FACTS, *STATISTICS_TAINT) if n not in facts.columns]
    if missing:
        shown = ", ".join(repr(n.replace("\x1f", "")) for n in missing)
        raise ValueError(f"record_statistics needs the facts and taint columns it reads; missing: {shown}")
    if facts.height == 0:
        return pl.DataFrame(schema=STATISTICS_SCHEMA)
    moved_at = pl.min_horizontal("transferred_to_la_at", "released_to_la_at")
    left = pl.min_horizontal("released_at", "transferred_to_la_at")
    work = facts.select(
        _instant(pl.col("arrival_at"), "arrival_at").alias("arrival"),
        _instant(pl.col("charged_at"), "charged_at").alias("charged"),
        # Whether the charge is known: a null `charged` is then "never charged".
        _usable("charged_at").alias("charge_known"),
        _instant(left, "released_at", "transferred_to_la_at").alias("left"),
        _instant(pl.col("aa_requested_at"), "aa_requested_at").alias("aa_requested"),
        _instant(pl.col("aa_arrived_at"), "aa_arrived_at").alias("aa_arrived"),
        _instant(pl.col("bail_refused_at"), "bail_refused_at").alias("refused"),
        _instant(moved_at, "transferred_to_la_at", "released_to_la_at").alias("moved"),
    )
    minimum = duration_lit(definition.minimum)
    pre_end = pl.when(pl.col("charge_known")).then(pl.coalesce("charged", "left"))
    pre = longest_night(pl.col("arrival"), pre_end, definition)
    post = longest_night(pl.col("charged"), pl.col("left"), definition)
    aa_wait = pl.col("aa_arrived") - pl.col("aa_requested")
    to_move = pl.col("moved") - pl.col("refused")
    return work.select(
        pl.col("left").alias("left_custody_at"),
        (pre >= minimum).alias("held_overnight_pre_charge"),
        pl.when(pl.col("charge_known") & pl.col("charged").is_null() & pl.col("arrival").is_not_null())
        .then(pl.lit(False))
        .otherwise(post >= minimum)
        .alias("held_overnight_post_charge"),
        pl.when(aa_wait >= pl.duration(microseconds=0)).then(aa_wait).alias("aa_wait"),
        pl.when(to_move >= pl.duration(microseconds=0)).then(to_move).alias("refusal_to_move"),
    ).cast(dict(STATISTICS_SCHEMA))  # type: ignore[arg-type]
