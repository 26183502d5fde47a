"""Times that cannot be right: an event far outside any detention is reported, not believed.

A typing error in a year, a month or a day (2019 for 2018, 06 for 07) moves an event by
days or years; read as written, it becomes an invented breach ("the review was 43,245
minutes late") or an invented compliance. An event more than `max_after_arrival` after the
record's arrival or more than `max_before_arrival` before it is therefore rejected as a
data-quality row on its `event_time`: the facts resting on events of its type are tainted,
so the rules that read them say cannot_assess for that record, never breach nor compliant.
Court events (a first appearance, a certificate produced at a later hearing) may lawfully
come days or weeks after the detention: they are bounded only before arrival.

The default limit after arrival is 7 days, not the 96 hours PACE allows before charge
(s44; MHA s136 allows at most 36): a detention a few hours over 96 is exactly what
PACE-CLOCK exists to find (its rule cases hold a 97-hour breach), so it must stay a breach;
one over a week is far likelier a wrong date than a detention nobody stopped.

The thresholds are not law but judgement about what is plausible in an extract: they are
parameters (`Plausibility`; an input profile may set them under `plausible:`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custody.contract import DATA_QUALITY_SCHEMA, UK_TZ
from custody.read.columns import ROW

IMPLAUSIBLE_LABELS: dict[str, str] = {
    "implausibly_late": "implausibly long after arrival",
    "implausibly_early": "implausibly long before arrival",
}

_WORK_SCHEMA = pl.Schema({**dict(DATA_QUALITY_SCHEMA.items()), "_issue": pl.String()})


@dataclass(frozen=True)
class Plausibility:
    """How far from the record's arrival an event may be before it is reported."""

    max_after_arrival: dt.timedelta = dt.timedelta(days=7)
    max_before_arrival: dt.timedelta = dt.timedelta(hours=24)
    not_bounded_after: frozenset[str] = frozenset({"court_appearance", "certificate_to_court"})
    """Event types that may fall long after the detention: a court hearing (the first
    appearance, and the certificate produced at a later hearing, are S38-COURT's evidence)."""


def _span(delta: pl.Expr) -> pl.Expr:
    """A duration as a person reads it: "30 days" past ten days, else "113 hours"."""
    hours = delta.abs().dt.total_hours()
    return (
        pl.when(hours >= 240)
        .then(pl.format("{} days", (hours // 24).cast(pl.String)))
        .otherwise(pl.format("{} hours", hours.cast(pl.String)))
    )


def _limit(span: dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 and hours % 24 == 0 else f"{hours:g} hours"


def implausible_events(
    detentions: pl.DataFrame,
    events: pl.DataFrame,
    path: Path,
    plausible: Plausibility,
    *,
    arrival: pl.Series | None = None,
) -> tuple[pl.Series | None, pl.DataFrame]:
    """(which events are kept, None if all; data-quality rows of the events rejected as
    implausible). The caller filters `events` (and anything it carries in their order).

    `arrival`: each event's record's arrival_time, in the order of `events`, when the caller
    has already matched events to records; else each is looked up by custody_record_id."""
    if events.is_empty():
        return None, pl.DataFrame(schema=_WORK_SCHEMA)
    if arrival is None:
        arrival = (
            events.select("custody_record_id")
            .join(
                detentions.select("custody_record_id", "arrival_time"),
                on="custody_record_id",
                how="left",
                maintain_order="left",
            )
            .get_column("arrival_time")
        )
    after = events["event_time"] - arrival
    late = (after > plausible.max_after_arrival).fill_null(False)
    if late.any():
        # Only the events late enough to matter are asked their type (as text: a profile may
        # name any type).
        positions = late.arg_true()
        types = events["event_type"].gather(positions).cast(pl.String)
        late = late.scatter(positions, (~types.is_in(sorted(plausible.not_bounded_after))).fill_null(False))
    early = (after < -plausible.max_before_arrival).fill_null(False)
    rejected = late | early
    if not rejected.any():
        return None, pl.DataFrame(schema=_WORK_SCHEMA)
    after_limit = _limit(plausible.max_after_arrival)
    before_limit = _limit(plausible.max_before_arrival)
    flagged = events.filter(rejected).with_columns(_after=after.filter(rejected), _late=late.filter(rejected))
    local = pl.col("event_time").dt.convert_time_zone(UK_TZ).dt.strftime("%Y-%m-%d %H:%M%:z")
    dq = flagged.select(
        file=pl.lit(path.name),
        table=pl.lit("events"),
        row=pl.col(ROW).cast(pl.Int64),
        column=pl.lit("event_time"),
        value=local,
        reason=pl.when(pl.col("_late"))
        .then(
            pl.format(
                "event_time is {} after arrival_time (more than {}, far beyond the 96 hours PACE allows): check the "
                "dates of both (the rules that need this event cannot be assessed)",
                _span(pl.col("_after")),
                pl.lit(after_limit),
            )
        )
        .otherwise(
            pl.format(
                "event_time is {} before arrival_time (more than {}): check the dates of both (the rules that need "
                "this event cannot be assessed)",
                _span(pl.col("_after")),
                pl.lit(before_limit),
            )
        ),
        action=pl.lit("row_rejected"),
        custody_record_id=pl.col("custody_record_id"),
        event_type=pl.col("event_type").cast(pl.String),
        _issue=pl.when(pl.col("_late")).then(pl.lit("implausibly_late")).otherwise(pl.lit("implausibly_early")),
    ).cast(_WORK_SCHEMA)
    return ~rejected, dq
