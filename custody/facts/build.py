"""Builds the facts table: one row per loaded custody record, only the facts asked for.

A rule that reads a fact whose input row or value was unusable reports `cannot_assess`
for that record: each record carries the data-quality flags its facts' lineage names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from custody.contract import DETENTION_COLUMNS, EVENT_DETAILS
from custody.facts.settings import FactSettings
from custody.facts.specs import (
    DETENTION_FACT_NAMES,
    IN_CUSTODY_EVENTS,
    NEXT_PREFIX,
    NO_DETAIL,
    OCCASION_PREFIX,
    PRIOR_PREFIX,
    event_specs,
    fact_specs,
    next_event_keys,
    taint_column,
    taint_columns,
)
from custody.facts.time import age_on, local_date
from custody.read.taint import INPUTS, UNKNOWN_EVENT, Input, event_input


def _scatter(length: int, name: str, dtype: pl.DataType, at: pl.Series, values: pl.Series) -> pl.Series:
    """A column of `length` nulls with `values` placed at the record positions `at`."""
    column = pl.repeat(None, length, dtype=dtype, eager=True).alias(name)
    return column.scatter(at, values.cast(dtype)) if at.len() else column


_INSTANT = pl.Datetime("us", "UTC")
_EVENT_TYPES = pl.Enum(list(EVENT_DETAILS))
_TYPE_CODE = {event_type: code for code, event_type in enumerate(EVENT_DETAILS)}


def _record_rows(event_record_ids: pl.Series, positions: pl.DataFrame) -> pl.Series | None:
    """Each event's record row (`_rec`, null for an event of no loaded record); None if a
    record id is loaded twice.

    An export lists a record's events together, so the id is looked up once per run of equal
    ids rather than once per event (the same answer, whatever the order of the events).
    """
    run = event_record_ids.rle_id()
    run_ids = pl.DataFrame({"custody_record_id": event_record_ids}).filter(run.ne_missing(run.shift(1)))
    run_rows = run_ids.join(positions, on="custody_record_id", how="left", maintain_order="left")["_rec"]
    if run_rows.len() != run_ids.height:
        return None  # a record id loaded twice: no single row per id
    return run_rows.gather(run).alias("_rec")


EVENT_COLUMNS: tuple[str, ...] = ("event_time", "event_type", "detail", "note")
"""The events' columns the facts read, besides custody_record_id (read only to match each
event to its record when `build_fact_tables` is not given each event's record row)."""


def _located_events(
    events: pl.DataFrame | pl.LazyFrame,
    positions: pl.DataFrame,
    types: set[str] | None,
    with_notes: bool,
    rows: pl.Series | None = None,
) -> pl.DataFrame:
    """The events of the loaded records (of `types` only, unless None), each with its record's
    row `_rec` and its type's and detail's codes (`_type`, `_detail`), each record's events in
    time order: events with no time last, and events at the same instant in the order they
    were read. `rows`, when given, is each event's record row already (as `_rec`); else
    events are matched to `positions` by custody_record_id. Either as read (when an export
    lists each record's events together in time order) or all in time order.

    Every event fact is taken from this one order: a fact's events are filtered out of it (the
    order holds within each record), and re-sorted by record alone where they must be, stably;
    a sort on several columns costs several times as much.
    """
    by_id = ["custody_record_id"] if rows is None else []  # (the id is read only to match by it)
    columns = [*by_id, *(c for c in EVENT_COLUMNS if c != "note" or with_notes)]
    frame = events.lazy().select(columns).collect()
    if rows is not None:
        frame = frame.with_columns(rows.alias("_rec"))
    if frame["event_type"].dtype != _EVENT_TYPES:
        # A type outside the vocabulary has no facts of its own (it still counts as an event).
        frame = frame.with_columns(pl.col("event_type").cast(pl.String).cast(_EVENT_TYPES, strict=False))
    frame = frame.with_columns(_type=pl.col("event_type").to_physical().cast(pl.UInt32))
    if types is not None:
        frame = frame.filter(pl.col("_type").is_in([_TYPE_CODE[t] for t in sorted(types)]))
    rows = frame["_rec"] if rows is not None else _record_rows(frame["custody_record_id"], positions)
    if rows is None:  # each event once per record of its id, as a join gives
        frame = frame.join(positions, on="custody_record_id", how="inner", maintain_order="left_right")
        rows = frame["_rec"]
    detail = frame["detail"]
    if not isinstance(detail.dtype, pl.Enum):  # codes for the details as given
        detail = detail.cast(pl.String)
        detail = detail.cast(pl.Enum(detail.drop_nulls().unique().sort()))
    located = pl.DataFrame(
        [
            rows,
            frame["event_time"],
            detail.alias("detail"),
            *([frame["note"]] if with_notes else []),
            frame["_type"],
            detail.to_physical().cast(pl.UInt32).alias("_detail"),
        ]
    )
    located = located.filter(pl.col("_rec").is_not_null())
    if _by_record_in_time_order(located):
        return located  # as an export lists them: nothing to sort
    return located.sort("event_time", nulls_last=True, maintain_order=True)


def _by_record_in_time_order(located: pl.DataFrame) -> bool:
    """Whether each record's events are listed together, in time order (events with no time
    last), as an export usually lists them: `located`'s order is then already one that every
    event fact reads (each record's events in time order, equal times in the order read)."""
    record, time = pl.col("_rec"), pl.col("event_time")
    same_record = record.eq_missing(record.shift(1))
    out_of_order = same_record & ((time < time.shift(1)) | (time.is_not_null() & time.shift(1).is_null()))
    found = located.select(
        out_of_order.any().alias("out_of_order"),
        record.filter(~same_record).is_duplicated().any().alias("split"),
    )
    return not (found["out_of_order"][0] or found["split"][0])


def _detail_codes(located: pl.DataFrame) -> dict[str | None, int]:
    """Each detail value's code in `_detail`, and None (no detail code) -> its own code."""
    detail = located.schema["detail"]
    values: list[str] = detail.categories.to_list() if isinstance(detail, pl.Enum) else []
    return {**{value: code for code, value in enumerate(values)}, None: len(values)}


_EVENT_TYPE_OF: dict[str, str] = {
    name: event_type
    for name, spec in event_specs().items()
    for event_type in EVENT_DETAILS
    if event_input(event_type) in spec.lineage
}
"""Each fact made from events by type (and detail): the event type it is made from."""


class _Runs:
    """Per record (`length` rows), of a set of events in time order: how many, and the values
    of `located` at the first and the last of them (null: none). Each is computed when asked."""

    def __init__(self, rows: npt.NDArray[np.int64], records: npt.NDArray[np.int64], length: int) -> None:
        """`rows`: the events' positions in `located`, ascending (so in time order);
        `records`: the record each belongs to."""
        self.rows, self.records, self.length = rows, records, length

    @cached_property
    def count(self) -> npt.NDArray[np.int64]:
        return np.bincount(self.records, minlength=self.length).astype(np.int64)

    def at(self, values: pl.Series, which: Literal["first", "last"], name: str, dtype: pl.DataType) -> pl.Series:
        """`values` (a column of `located`, with one null row appended) at each record's first
        or last event."""
        missing = values.len() - 1  # the appended null
        if which == "first":
            position = np.full(self.length, missing, dtype=np.int64)
            np.minimum.at(position, self.records, self.rows)
        else:
            position = np.where(self.count > 0, -1, missing)
            np.maximum.at(position, self.records, self.rows)
        return values.gather(pl.Series(position)).cast(dtype).alias(name)


def _slices(codes: npt.NDArray[np.integer[Any]], rows: npt.NDArray[np.int64]) -> dict[int, npt.NDArray[np.int64]]:
    """`rows` grouped by their `codes`, each group still in the order of `rows` (a stable
    counting sort: a radix sort on small integer codes, no comparison of times)."""
    order = np.argsort(codes, kind="stable")
    ordered_codes = codes[order]
    present = np.unique(ordered_codes)
    starts = np.searchsorted(ordered_codes, present, side="left")
    ends = np.searchsorted(ordered_codes, present, side="right")
    return {int(c): rows[order[lo:hi]] for c, lo, hi in zip(present, starts, ends, strict=True)}


def _event_facts(located: pl.DataFrame, length: int, wanted: set[str]) -> list[pl.Series]:
    """Per-record event facts, computed only for the names in `wanted`, from `located` (in time
    order, see `_located_events`; `_rec` is the row a fact belongs to, below `length`).

    The events are grouped by type (and by type and detail) with a counting sort that keeps
    their time order; within a group, each record's count and its first and last event come
    from one pass each over the group (no sort by record, no join), and every wanted fact is
    read off those positions.
    """
    columns: list[pl.Series] = []
    records = located["_rec"].to_numpy().astype(np.int64)
    if "event_count" in wanted:
        counts = np.bincount(records, minlength=length)
        columns.append(pl.Series("event_count", counts, dtype=pl.Int64))
    for name in ("last_event_at", "in_custody_last_at"):
        if name not in wanted:
            continue
        timed = located["event_time"].cast(_INSTANT).is_not_null().to_numpy()
        if name == "in_custody_last_at":  # only the events recorded while the person is held
            held = [_TYPE_CODE[t] for t in IN_CUSTODY_EVENTS]
            timed &= located["_type"].is_in(held).fill_null(False).to_numpy()
        micros = located["event_time"].cast(_INSTANT).to_physical().to_numpy()
        latest = np.full(length, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, records[timed], micros[timed])
        latest_at = pl.Series(name, latest, dtype=pl.Int64)
        latest_at = latest_at.set(latest_at == np.iinfo(np.int64).min, None)
        columns.append(latest_at.cast(_INSTANT))
    types = {t for name, t in _EVENT_TYPE_OF.items() if name in wanted}
    if not types:
        return columns
    # An event of a type outside the vocabulary has a code of its own (it has no facts).
    type_codes = located["_type"].fill_null(len(EVENT_DETAILS)).to_numpy().astype(np.uint8)
    by_type = _slices(type_codes, np.arange(located.height, dtype=np.int64))
    codes = _detail_codes(located)
    detail_codes = located["_detail"].fill_null(codes[None]).to_numpy()
    detail_codes = detail_codes.astype(np.uint8 if len(codes) <= 256 else np.uint32)
    padded: dict[str, pl.Series] = {}

    def column(name: str) -> pl.Series:
        """A column of `located` read at a record's first or last event, with a null row
        appended for "no event"."""
        if name not in padded:
            padded[name] = located[name].extend_constant(None, 1)
        return padded[name]

    none = np.zeros(0, dtype=np.int64)
    for event_type, details in EVENT_DETAILS.items():
        if event_type not in types:
            continue
        rows = by_type.get(_TYPE_CODE[event_type], none)
        of_type = _Runs(rows, records[rows], length)
        if f"{event_type}_at" in wanted:
            columns.append(of_type.at(column("event_time"), "first", f"{event_type}_at", _INSTANT))
        if f"{event_type}_last_at" in wanted:
            # Events with no time come last: a record with one has no known last event.
            columns.append(of_type.at(column("event_time"), "last", f"{event_type}_last_at", _INSTANT))
        if f"{event_type}_count" in wanted:
            columns.append(pl.Series(f"{event_type}_count", of_type.count, dtype=pl.Int64))
        if f"{event_type}_detail" in wanted:
            columns.append(of_type.at(column("detail"), "first", f"{event_type}_detail", pl.String()))
        if event_type == "certificate" and "certificate_note" in wanted:
            columns.append(of_type.at(column("note"), "first", "certificate_note", pl.String()))
        detail_names = [
            f"{event_type}_{code}_{end}" for code in (*details, NO_DETAIL) for end in ("at", "last_at", "count")
        ]
        if not details or not wanted.intersection(detail_names):
            continue
        by_detail = _slices(detail_codes[rows], rows)
        for code in (*details, NO_DETAIL):
            count_name, at_name = f"{event_type}_{code}_count", f"{event_type}_{code}_at"
            last_name = f"{event_type}_{code}_last_at"
            if count_name not in wanted and at_name not in wanted and last_name not in wanted:
                continue
            # An event whose detail is missing, or was unusable, has no detail code.
            detail_code = codes.get(None if code == NO_DETAIL else code)
            with_code = by_detail.get(detail_code, none) if detail_code is not None else none
            runs = _Runs(with_code, records[with_code], length)
            if count_name in wanted:
                columns.append(pl.Series(count_name, runs.count, dtype=pl.Int64))
            if at_name in wanted:
                columns.append(runs.at(column("event_time"), "first", at_name, _INSTANT))
            if last_name in wanted:
                columns.append(runs.at(column("event_time"), "last", last_name, _INSTANT))
    return columns


def _by_record(events: pl.DataFrame, *, untimed_first: bool = False) -> pl.DataFrame:
    """`events` (in time order, see `_located_events`) by record, then time: a stable sort on
    the record alone. Events with no time come last in a record, or first if `untimed_first`."""
    if untimed_first:
        untimed = pl.col("event_time").is_null()
        events = pl.concat([events.filter(untimed), events.filter(~untimed)])
    return events.sort("_rec", maintain_order=True)


def _review_schedule(located: pl.DataFrame, authorised: pl.DataFrame, settings: FactSettings) -> pl.DataFrame:
    """The s40 review facts (`_review_columns`) of each record of `authorised` (`_rec`, and
    `authorised_at`: when detention was first authorised), one row each with its `_rec`, from
    `located` (`_rec`, `event_type`, `detail`, `event_time`)."""
    if "_type" not in located.columns:
        event_type = pl.col("event_type").cast(pl.String).cast(_EVENT_TYPES, strict=False)
        located = located.with_columns(_type=event_type.to_physical().cast(pl.UInt32))
    located = located.sort("event_time", nulls_last=True, maintain_order=True)
    last = pl.concat([located["_rec"], authorised["_rec"]]).max()
    length = (last if isinstance(last, int) else -1) + 1
    at = authorised["_rec"]
    authorised_at = _scatter(length, "authorised_at", _INSTANT, at, authorised["authorised_at"])
    has_authorisation = _scatter(length, "_authorised", pl.Boolean(), at, pl.repeat(True, at.len(), eager=True))
    columns = _review_columns(located, authorised_at, has_authorisation.fill_null(False), settings)
    return columns.select(pl.int_range(length, dtype=pl.UInt32).alias("_rec"), pl.all())[at]


def _first_authorisations(located: pl.DataFrame, length: int) -> tuple[pl.Series, pl.Series]:
    """Per record (`length` rows): when detention was first authorised (null: never, or at no
    known time), and whether an authorisation is recorded at all."""
    authorisations = _by_record(located.filter(pl.col("_type") == _TYPE_CODE["detention_authorised"]))
    # The first authorisation (its time: the events of a record are in time order, untimed last).
    first = authorisations.filter(_first_of_record())
    authorised_at = _scatter(length, "authorised_at", _INSTANT, first["_rec"], first["event_time"])
    recorded = _scatter(length, "_authorised", pl.Boolean(), first["_rec"], pl.repeat(True, first.height, eager=True))
    return authorised_at, recorded.fill_null(False)


def _review_columns(
    located: pl.DataFrame, authorised_at: pl.Series, has_authorisation: pl.Series, settings: FactSettings
) -> pl.DataFrame:
    """PACE s40 review due times: one row per record (the rows of `authorised_at`, when
    detention was first authorised), null for a record with no authorisation recorded.

    s40(3): first review no later than `first` after detention was first authorised, then at
    intervals of at most `interval`. s40(6): a postponed (or late) review does not move later
    due times: due(1) = authorised + first; due(n+1) = min(actual(n), due(n)) + interval.
    Unrolled: due(n) = interval * n + min(x_0, ..., x_{n-1}) with x_0 = authorised + first -
    interval and x_k = actual(k) - interval * k, a running minimum per record.

    s40(4)(b), (5): a review may be postponed, and is then held as soon as practicable after
    it was due. A `review` entry with detail `postponed` made after the review before (or at
    any time before the first) and no later than a review's due time postpones that review;
    the reviews so postponed and the others are reported apart (`review_postponed_worst_*`,
    `review_unpostponed_worst_*`), and a postponement of the review due after the last one
    held is `review_next_postponed_at`. How soon is soon enough is the rule's parameter.

    `first` and `interval` are the values (rules/_facts.yaml) in force when detention was first
    authorised, the instant the s40 duty arises: one pair per record, so the arithmetic holds.
    The reviews are sorted once by record and time; the running minimum is then taken review
    number by review number (a handful of passes over arrays), with no window functions; a
    record's values are placed at its row, never joined.
    """
    length = authorised_at.len()
    schedule = pl.DataFrame([authorised_at]).with_columns(
        _first=settings.value_at("review_first_after", pl.col("authorised_at")),
        _interval=settings.value_at("review_interval", pl.col("authorised_at")),
    )
    is_postponed = (pl.col("detail").cast(pl.String) == "postponed").fill_null(False)
    reviews = located.filter(pl.col("_type") == _TYPE_CODE["review"])
    held = _by_record(reviews.filter(~is_postponed), untimed_first=True).select(
        "_rec", pl.col("event_time").alias("review_at")
    )
    held = held.filter(has_authorisation.gather(held["_rec"]))
    held = held.with_columns(schedule[held["_rec"]])
    postponements = _by_record(reviews.filter(is_postponed & pl.col("event_time").is_not_null())).select(
        "_rec", pl.col("event_time").alias("postponed_at")
    )
    per_record = _reviews_per_record(held, postponements, length)
    first_due = pl.col("authorised_at") + pl.col("_first")
    schedule = pl.concat([schedule, per_record], how="horizontal").select(
        pl.int_range(length, dtype=pl.UInt32).alias("_rec"),
        pl.col("reviews_held").fill_null(0),
        first_due.alias("review_first_due_at"),
        "review_worst_lateness",
        "review_worst_at",
        "review_worst_due_at",
        *(f"review_{part}_worst_{field}" for part in ("unpostponed", "postponed") for field in _WORST_FIELDS),
        "review_postponed_worst_postponed_at",
        pl.coalesce("review_next_due_at", first_due).alias("review_next_due_at"),
        "_last_held_at",
    )
    # The review due after the last one held was postponed if an entry says so after that
    # review (or, with none held, at any time) and no later than its due time (s40(4)(b)).
    next_postponed = _postponement_by(schedule, postponements, "review_next_due_at", "_last_held_at")
    return schedule.with_columns(review_next_postponed_at=next_postponed).drop("_rec", "_last_held_at")


_WORST_FIELDS = ("lateness", "at", "due_at")


def _first_of_record() -> pl.Expr:
    """True on the first row of each record of a frame sorted by record (`_rec`)."""
    return pl.col("_rec").ne_missing(pl.col("_rec").shift(1))


def _last_of_record() -> pl.Expr:
    """True on the last row of each record of a frame sorted by record (`_rec`)."""
    return pl.col("_rec").ne_missing(pl.col("_rec").shift(-1))


def _postponement_by(frame: pl.DataFrame, postponements: pl.DataFrame, due: str, previous: str) -> pl.Series:
    """Per row of `frame` (sorted by `_rec` and, within a record, by `due`): the latest
    postponement of the record made no later than `due` and after `previous` (the review
    before; null: none), or null. An as-of join, not a window function."""
    found = frame.select("_rec", due, previous).join_asof(
        postponements,
        left_on=due,
        right_on="postponed_at",
        by="_rec",
        strategy="backward",
        check_sortedness=False,  # sorted within each record, which is what `by` needs
    )
    made_after_previous = found[previous].is_null() | (found["postponed_at"] > found[previous])
    return found.select(pl.when(made_after_previous).then(pl.col("postponed_at")))["postponed_at"]


def _placed(frame: pl.DataFrame, length: int) -> pl.DataFrame:
    """`frame` (at most one row per `_rec`) as `length` rows, each at its record's row (null
    rows for the others), without `_rec`."""
    return pl.DataFrame(
        [
            _scatter(length, name, dtype, frame["_rec"], frame[name])
            for name, dtype in frame.schema.items()
            if name != "_rec"
        ]
    )


def _worst(reviews: pl.DataFrame, length: int) -> pl.DataFrame:
    """Per record of `reviews` (sorted by record and time), its worst review: the largest
    lateness, the latest review among equals (the last review when no lateness is known)."""
    lateness = reviews["lateness"].to_physical()
    known = lateness.is_not_null().to_numpy()
    records = reviews["_rec"].to_numpy()
    smallest = np.iinfo(np.int64).min
    largest = np.full(length, smallest, dtype=np.int64)
    np.maximum.at(largest, records[known], lateness.to_numpy()[known])
    worst_lateness = pl.Series(largest[records], dtype=pl.Int64)
    worst_lateness = pl.select(pl.when(pl.lit(worst_lateness) != smallest).then(pl.lit(worst_lateness))).to_series()
    is_worst = ((lateness == worst_lateness) | worst_lateness.is_null()).fill_null(False)
    return reviews.filter(is_worst).filter(_last_of_record())


def _reviews_per_record(held: pl.DataFrame, postponements: pl.DataFrame, length: int) -> pl.DataFrame:
    """Per record (`length` rows), from its reviews sorted by (record, time): how many, the
    worst lateness with the review and due time it belongs to (the latest review among equals)
    over all reviews, over those postponed by their due time and over the others, and the
    next due time, by the s40(6) arithmetic of `_review_schedule`.

    Each review's floor comes from the one before it, review number by review number (a few
    passes: records have a handful of reviews); no window function, no group-by, no sort.
    """
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    interval, number = pl.col("_interval"), pl.col("number")
    reviews = held.with_columns(number=index - pl.when(_first_of_record()).then(index).forward_fill() + 1).with_columns(
        shifted=pl.col("review_at") - interval * number,
        floor=pl.when(number == 1).then(pl.col("authorised_at") + pl.col("_first") - interval),
        previous_at=pl.when(number > 1).then(pl.col("review_at").shift(1)),
        # No legal value in force (before the first dated version): due times unknown, reviews counted.
        known=pl.col("_first").is_not_null() & interval.is_not_null(),
    )
    most = reviews["number"].max()
    for n in range(2, int(most) + 1 if isinstance(most, int) else 2):
        previous = pl.min_horizontal(pl.col("floor").shift(1), pl.col("shifted").shift(1))
        reviews = reviews.with_columns(floor=pl.when(number == n).then(previous).otherwise(pl.col("floor")))
    reviews = reviews.with_columns(due=pl.col("floor") + interval * number).with_columns(
        lateness=pl.col("review_at") - pl.col("due")
    )
    # Due times never decrease within a record (s40(6)), so the rows stay sorted for the as-of join.
    reviews = reviews.with_columns(postponed_at=_postponement_by(reviews, postponements, "due", "previous_at"))
    last = reviews.filter(_last_of_record()).select(
        "_rec",
        "known",
        number.cast(pl.Int64).alias("reviews_held"),
        (pl.min_horizontal("floor", "shifted") + interval * (number + 1)).alias("review_next_due_at"),
        pl.col("review_at").alias("_last_held_at"),
    )

    def worst(subset: pl.DataFrame, prefix: str, extra: tuple[str, ...] = ()) -> pl.DataFrame:
        return _placed(
            _worst(subset, length).select(
                "_rec",
                pl.col("lateness").alias(f"{prefix}_lateness"),
                pl.col("review_at").alias(f"{prefix}_at"),
                pl.col("due").alias(f"{prefix}_due_at"),
                *(pl.col(c).alias(f"{prefix}_{c}") for c in extra),
            ),
            length,
        )

    was_postponed = pl.col("postponed_at").is_not_null()
    per_record = pl.concat(
        [
            _placed(last, length),
            worst(reviews, "review_worst"),
            worst(reviews.filter(~was_postponed), "review_unpostponed_worst"),
            worst(reviews.filter(was_postponed), "review_postponed_worst", ("postponed_at",)),
        ],
        how="horizontal",
    )
    unknown_when_no_value = [
        "review_next_due_at",
        *(
            f"review_{part}_{field}"
            for part in ("worst", "unpostponed_worst", "postponed_worst")
            for field in _WORST_FIELDS
        ),
        "review_postponed_worst_postponed_at",
    ]
    return per_record.with_columns(
        pl.when(pl.col("known")).then(pl.col(c)).alias(c) for c in unknown_when_no_value
    ).drop("known")


def _second_review(located: pl.DataFrame) -> pl.DataFrame:
    """Per record with two reviews held (not postponed): when the second was held (PACE s42(4)(b):
    no s42 extension before it). Whether or not an authorisation of detention is recorded."""
    reviews = located.filter(pl.col("_type") == _TYPE_CODE["review"])
    held = _by_record(
        reviews.filter(
            (pl.col("detail").cast(pl.String) != "postponed").fill_null(True) & pl.col("event_time").is_not_null()
        ).select("_rec", "event_time")
    )
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    same_as = pl.col("_rec").eq_missing(pl.col("_rec").shift(1))
    second = same_as & ~pl.col("_rec").eq_missing(pl.col("_rec").shift(2)).fill_null(False) & (index >= 1)
    return held.filter(second).select("_rec", pl.col("event_time").alias("review_second_at"))


def _taint_flags(taint: pl.DataFrame, wanted: list[Input]) -> pl.DataFrame:
    """One row per tainted custody record, with a true column for each wanted input tainted."""
    return taint.group_by("custody_record_id").agg(
        pl.col("input").is_in([source.key]).any().alias(taint_column(source)) for source in wanted
    )


OCCASION_ROW = "\x1frecord row"
"""In an occasions table: the row of the occasion's record in the records table."""


@dataclass(frozen=True)
class FactTables:
    """The facts of a record set: one row per custody record, and for each grain a rule
    declares (`occasions:`), one row per occasion (see `custody.facts.specs.occasion_specs`).

    An occasions table holds the record facts of its record (the same columns as `records`),
    the occasion's own facts, and `OCCASION_ROW`, the record's row in `records`; it is in the
    order of `records`, then by occasion. A record with no usable event of the grain has no row,
    unless events of that type (or of an unreadable type) could not be used: then one row whose
    `occasion_at` and `occasion_number` are null (its rules say cannot_assess).
    """

    records: pl.DataFrame
    occasions: Mapping[str, pl.DataFrame] = dataclasses.field(default_factory=dict)


def _occasions(records: pl.DataFrame, located: pl.DataFrame, grain: str, wanted: set[str]) -> pl.DataFrame:
    """One row per `grain` event of each record (one row for a record with none): the record's
    facts, `occasion_at`, its number, the next occasion's instant, and the wanted facts of the
    events from this occasion's event up to the next (named `occasion_<fact>`)."""
    instant = pl.Datetime("us", "UTC")
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.col("_rec").ne_missing(pl.col("_rec").shift(1)) | (index == 0)
    same_record_next = pl.col("_rec").eq_missing(pl.col("_rec").shift(-1))
    of_grain = _by_record(located.filter(pl.col("_type") == _TYPE_CODE[grain]), untimed_first=True)
    same_as_before = pl.col("_rec").eq_missing(pl.col("_rec").shift(1)) & pl.col("occasion_at").eq_missing(
        pl.col("occasion_at").shift(1)
    )
    held = (
        of_grain.select("_rec", pl.col("event_time").alias("occasion_at"))
        # The same event entered twice at the same instant is one occasion, not two.
        .filter(~same_as_before)
        .with_columns(
            occasion_number=(index - pl.when(starts).then(index).forward_fill() + 1),
            occasion_ends_at=pl.when(same_record_next).then(pl.col("occasion_at").shift(-1)),
        )
    )
    counts = held.group_by("_rec").agg(pl.len().cast(pl.Int64).alias("occasions_in_record"))
    # A record with no usable event of the grain has no occasion, and the rule writes nothing
    # for it, unless events of that type (or of an unreadable type) could not be used: then
    # one row with no occasion, so that the rule says cannot_assess.
    flags = [c for c in (taint_column(event_input(grain)), taint_column(UNKNOWN_EVENT)) if c in records.columns]
    unusable = pl.any_horizontal(pl.col(c).fill_null(False) for c in flags) if flags else pl.lit(True, pl.Boolean)
    none = (
        records.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_rec"), unusable.alias("_unusable"))
        .filter(pl.col("_unusable"))
        .select("_rec")
        .join(held.select("_rec").unique(), on="_rec", how="anti")
    )
    table = (
        # `none` holds only records with no occasion: by record, each record's occasions in order.
        pl.concat([held, none], how="diagonal_relaxed")
        .sort("_rec", maintain_order=True)
        .join(counts, on="_rec", how="left", maintain_order="left")
        .with_columns(
            pl.col("occasion_at").cast(instant),
            pl.col("occasion_ends_at").cast(instant),
            pl.col("occasions_in_record").fill_null(0),
        )
    )
    # Each event belongs to the latest occasion at or before it (events before the first
    # occasion belong to none): an as-of join per record on the event's time.
    windows = (
        table.filter(pl.col("occasion_at").is_not_null())
        .select("_rec", "occasion_at", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_occ"))
        .sort("occasion_at")
    )
    positions = table.select("_rec", "occasion_number", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row")).filter(
        pl.col("occasion_number").is_not_null()
    )
    names = {
        n[len(OCCASION_PREFIX) :]
        for n in wanted
        if n.startswith(OCCASION_PREFIX) and not n.startswith((PRIOR_PREFIX, NEXT_PREFIX))
    }
    # Only the events the wanted facts are made of (the occasion's window is found per event).
    types = sorted({_EVENT_TYPE_OF[n] for n in names if n in _EVENT_TYPE_OF})
    within = (
        located.filter(pl.col("event_time").is_not_null() & pl.col("_type").is_in([_TYPE_CODE[t] for t in types]))
        .join_asof(
            windows,
            left_on="event_time",
            right_on="occasion_at",
            by="_rec",
            strategy="backward",
            check_sortedness=False,  # both sorted by time (`located` always is)
        )
        .filter(pl.col("_occ").is_not_null())
    )
    # `_occ` counts the occasions with an instant; their rows in `table` are `positions`.
    within = within.with_columns(_rec=positions["_row"].gather(within["_occ"])).drop("_occ", "occasion_at")
    own = pl.DataFrame(_event_facts(within, table.height, names)) if names else pl.DataFrame()
    counts_in_window = [n for n in own.columns if n.endswith("_count")]
    own = own.with_columns(pl.col(n).fill_null(0) for n in counts_in_window)
    own = own.rename({n: OCCASION_PREFIX + n for n in own.columns})
    prior = _prior_events(table, located, sorted(n for n in wanted if n.startswith(PRIOR_PREFIX)))
    following = _next_events(table, located, sorted(n for n in wanted if n.startswith(NEXT_PREFIX)))
    occasion_columns = ["occasion_at", "occasion_number", "occasions_in_record", "occasion_ends_at"]
    return pl.concat(
        [
            records.select(_record_columns(records, grain, wanted))[table["_rec"]],
            table.select(*occasion_columns, pl.col("_rec").alias(OCCASION_ROW)),
            own,
            prior,
            following,
        ],
        how="horizontal",
    )


def _record_columns(records: pl.DataFrame, grain: str, wanted: set[str]) -> list[str]:
    """The record columns an occasions table carries: the ids, the record facts in `wanted`
    and the taint columns of the inputs every wanted fact rests on; every record column when
    `wanted` names no record fact (a caller that asks for occasion facts only)."""
    specs = fact_specs(grain)
    record_facts = {n for n in wanted if n in specs and not specs[n].occasion}
    if not record_facts:
        return records.columns
    inputs = frozenset().union(*(specs[n].lineage for n in wanted if n in specs))
    keep = {"custody_record_id", "person_id", *record_facts, *(taint_column(i) for i in inputs)}
    return [c for c in records.columns if c in keep]


def _prior_events(table: pl.DataFrame, located: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """`occasion_prior_<type>_last_at` for each wanted name: per occasion (a row of `table`),
    the last event of that type on its record at or before the occasion's instant."""
    chosen = {name: (name[len(PRIOR_PREFIX) : -len("_last_at")], None) for name in names}
    return _events_as_of(table, located, chosen, "backward")


def _next_events(table: pl.DataFrame, located: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """`occasion_next_<type>_at` / `occasion_next_<type>_<detail>_at` for each wanted name: per
    occasion (a row of `table`), the first event of that type (and detail) on its record at or
    after the occasion's instant, wherever the next occasion falls."""
    keys = next_event_keys()
    return _events_as_of(table, located, {name: keys[name] for name in names}, "forward")


def _events_as_of(
    table: pl.DataFrame,
    located: pl.DataFrame,
    chosen: Mapping[str, tuple[str, str | None]],
    strategy: Literal["backward", "forward"],
) -> pl.DataFrame:
    """For each name -> (event type, detail code or None): per occasion (a row of `table`), the
    instant of the nearest such event on its record at or before (`backward`) or at or after
    (`forward`) the occasion's instant, by one as-of join per name (null for a row with no
    occasion, or no such event)."""
    if not chosen:
        return pl.DataFrame()
    instant = pl.Datetime("us", "UTC")
    occasions = (
        table.select("_rec", "occasion_at", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
        .filter(pl.col("occasion_at").is_not_null())
        .sort("occasion_at")
    )
    columns: list[pl.Series] = []
    for name, (event_type, detail) in chosen.items():
        wanted = (pl.col("_type") == _TYPE_CODE[event_type]) & pl.col("event_time").is_not_null()
        if detail is not None:
            wanted = wanted & (pl.col("detail").cast(pl.String) == detail)
        events = located.filter(wanted).select("_rec", pl.col("event_time").cast(instant).alias(name))
        found = occasions.join_asof(
            events,
            left_on="occasion_at",
            right_on=name,
            by="_rec",
            strategy=strategy,
            check_sortedness=False,  # both sorted by time (`located` always is)
        )
        columns.append(_scatter(table.height, name, instant, found["_row"], found[name]))
    return pl.DataFrame(columns)


_REVIEW_FACTS = {
    n for n, spec in fact_specs().items() if event_input("review") in spec.lineage and n.startswith("review")
}
"""The facts of the PACE s40 review schedule (`_review_schedule`)."""


def _event_types_read(wanted: set[str], occasions: Mapping[str, set[str]]) -> set[str] | None:
    """The event types the wanted facts (of the records and of each grain's occasions) are
    made from; None: every event (a fact counts or dates them all)."""
    if wanted & {"event_count", "last_event_at"}:
        return None
    types = {_EVENT_TYPE_OF[n] for n in wanted if n in _EVENT_TYPE_OF}
    if "in_custody_last_at" in wanted:
        types |= set(IN_CUSTODY_EVENTS)
    if wanted & _REVIEW_FACTS:
        types |= {"review", "detention_authorised"}
    for grain, names in occasions.items():
        types.add(grain)
        for name in names:
            own = name[len(OCCASION_PREFIX) :]
            if name.startswith(PRIOR_PREFIX):
                types.add(name[len(PRIOR_PREFIX) : -len("_last_at")])
            elif name.startswith(NEXT_PREFIX):
                types.add(next_event_keys()[name][0])
            elif name.startswith(OCCASION_PREFIX) and own in _EVENT_TYPE_OF:
                types.add(_EVENT_TYPE_OF[own])
    return types


def _notes_read(wanted: set[str], occasions: Mapping[str, set[str]]) -> bool:
    """Whether a wanted fact holds an event's note (free text, carried only then)."""
    return "certificate_note" in wanted or any(OCCASION_PREFIX + "certificate_note" in n for n in occasions.values())


def build_facts(
    detentions: pl.DataFrame | pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    taint: pl.DataFrame,
    settings: FactSettings | None = None,
    columns: Iterable[str] | None = None,
) -> pl.LazyFrame:
    """The facts table, one row per loaded custody record, by child, arrival and record.

    `taint` (`custody.read.taint.TAINT_SCHEMA`) names the inputs of each record the loader
    could not use. `columns` names the facts (and taint columns) wanted; only those are
    computed (default: all). The result is returned as a lazy frame over the computed table.
    """
    return build_fact_tables(detentions, events, taint, settings, columns).records.lazy()


def in_child_order(records: pl.DataFrame, arrival: str = "arrival_time") -> pl.DataFrame:
    """`records` by child (`person_id`), arrival (the column `arrival`) and record
    (`custody_record_id`), nulls last: the order of the facts and of every output. A table
    already in that order (each batch of a large check is; an export may be) is found so,
    row against the row before it, and returned as it is; only one out of order is sorted
    (a sort on a text key costs a quarter of a second per million records, and holds a
    second copy of them)."""
    person, arrived, record = pl.col("person_id"), pl.col(arrival), pl.col("custody_record_id")
    before = [expr.shift(1) for expr in (person, arrived, record)]
    # Within a child: arrival, nulls last, then record id.
    arrival_after = (
        pl.when(before[1].is_null())
        .then(arrived.is_null() & (record >= before[2]))
        .when(arrived.is_null())
        .then(True)
        .otherwise((arrived > before[1]) | ((arrived == before[1]) & (record >= before[2])))
    )
    in_order = (
        pl.when(before[0].is_null())
        .then(pl.int_range(pl.len()) == 0)  # (after a record without a child, only the first row)
        .when(person.is_null())
        .then(True)
        .otherwise((person > before[0]) | ((person == before[0]) & arrival_after))
    )
    if records.select(in_order.fill_null(False).all()).item():
        return records
    # (Lazily: polars then sorts the three keys and gathers the other columns, in about
    # two thirds of the time of the eager sort.)
    return records.lazy().sort("person_id", arrival, "custody_record_id", nulls_last=True).collect()


def build_fact_tables(
    detentions: pl.DataFrame | pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    taint: pl.DataFrame,
    settings: FactSettings | None = None,
    columns: Iterable[str] | None = None,
    occasions: Mapping[str, Iterable[str]] | None = None,
    event_rows: pl.Series | None = None,
) -> FactTables:
    """The records' facts as `build_facts` makes them, and for each grain in `occasions` (an
    event type -> the occasion facts wanted, `occasion_*`), the occasions table.

    `event_rows`: each event's record as its row in `detentions` (as the loader matched them,
    `RecordSet.event_rows`), sparing the facts a second match by id; None to match by id."""
    settings = settings or FactSettings()
    specs = fact_specs()
    wanted = set(columns) if columns is not None else {*specs, *taint_columns()}
    wanted |= {"custody_record_id", "person_id"}
    selected = (
        detentions.lazy()
        .select(*(pl.col(c.name).alias(DETENTION_FACT_NAMES.get(c.name, c.name)) for c in DETENTION_COLUMNS))
        .with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_given"))
        .collect()
    )
    # In child order (person, arrival, record): everything downstream keeps this order.
    base = in_child_order(selected, arrival="arrival_at")
    length = base.height
    if event_rows is not None and base is not selected:  # the records were re-ordered: so are their rows
        now_at = np.empty(length, dtype=np.uint32)
        now_at[base["_given"].to_numpy()] = np.arange(length, dtype=np.uint32)
        event_rows = pl.Series(now_at).gather(event_rows)
    base = base.drop("_given")
    positions = base.select("custody_record_id", pl.int_range(length, dtype=pl.UInt32).alias("_rec"))
    by_grain = {grain: set(names) for grain, names in (occasions or {}).items()}
    located = _located_events(
        events, positions, _event_types_read(wanted, by_grain), _notes_read(wanted, by_grain), event_rows
    )
    facts = base.with_columns(_event_facts(located, length, wanted))
    if wanted & _REVIEW_FACTS:
        facts = facts.with_columns(_review_columns(located, *_first_authorisations(located, length), settings))
    if "review_second_at" in wanted:
        second = _second_review(located)
        facts = facts.with_columns(
            _scatter(length, "review_second_at", pl.Datetime("us", "UTC"), second["_rec"], second["review_second_at"])
        )
    tainted = [source for source in INPUTS if taint_column(source) in wanted]
    flags = [taint_column(source) for source in tainted]
    if flags:
        # Placed at each tainted record's row: few records are tainted, so no join over them all.
        rows = _taint_flags(taint, tainted).join(positions, on="custody_record_id", how="inner")
        facts = facts.with_columns(_scatter(length, flag, pl.Boolean(), rows["_rec"], rows[flag]) for flag in flags)
    count_columns = [n for n in facts.columns if (n.endswith("_count") and n in specs) or n == "reviews_held"]
    derived = {
        "dob_is_29_february": (pl.col("date_of_birth").dt.month() == 2) & (pl.col("date_of_birth").dt.day() == 29),
        # On the UK date of arrival, converted once (`age_years` of the arrival instant).
        "age_at_arrival": age_on(pl.col("date_of_birth"), pl.col("_arrival_day"), settings.leap_day_birthday),
    }
    if "age_at_arrival" in wanted:
        facts = facts.with_columns(_arrival_day=local_date(pl.col("arrival_at")))
    facts = facts.with_columns(
        *(pl.col(name).fill_null(0) for name in count_columns),
        *(pl.col(flag).fill_null(False) for flag in flags),
        *(expr.alias(name) for name, expr in derived.items() if name in wanted),
    )
    ordered = [n for n in (*specs, *taint_columns()) if n in wanted and n in facts.columns]
    records = facts.select(ordered)
    tables = {grain: _occasions(records, located, grain, names) for grain, names in by_grain.items()}
    return FactTables(records, tables)
