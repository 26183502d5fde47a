"""Builds the facts table: one row per loaded custody record, only the facts asked for.

A rule that reads a fact whose input row or value was unusable reports `cannot_assess`
for that record: each record carries the data-quality flags its facts' lineage names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from custody.contract import DETENTION_COLUMNS, EVENT_DETAILS
from custody.facts.settings import FactSettings
from custody.facts.specs import (
    DETENTION_FACT_NAMES,
    NO_DETAIL,
    OCCASION_PREFIX,
    PRIOR_PREFIX,
    event_specs,
    fact_specs,
    taint_column,
    taint_columns,
)
from custody.facts.time import age_years
from custody.read.taint import INPUTS, UNKNOWN_EVENT, Input, event_input


def _scatter(length: int, name: str, dtype: pl.DataType, at: pl.Series, values: pl.Series) -> pl.Series:
    """A column of `length` nulls with `values` placed at the record positions `at`."""
    column = pl.repeat(None, length, dtype=dtype, eager=True).alias(name)
    return column.scatter(at, values.cast(dtype)) if at.len() else column


def _runs(located: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per value of `keys`: first and last instant, count, and the detail and note of the first.

    Sorting once by (keys, time) and cutting the sorted rows into runs is much faster than a
    hash group-by when nearly every (record, type) pair is its own group.
    """
    values = [c for c in ("detail", "note") if c not in keys and c in located.columns]
    ordered = located.select(*keys, "event_time", *values).sort(*keys, "event_time", nulls_last=True)
    index = pl.int_range(pl.len(), dtype=pl.Int64)

    def edge(step: int) -> pl.Expr:
        changed = pl.any_horizontal(pl.col(k).ne_missing(pl.col(k).shift(step)) for k in keys)
        return changed | (index == (0 if step > 0 else pl.len() - 1))

    starts = ordered.with_columns(_i=index).filter(edge(1))
    ends = ordered.with_columns(_i=index).filter(edge(-1))
    return starts.select(
        *keys,
        pl.col("event_time").alias("first"),
        ends["event_time"].alias("last"),
        (ends["_i"] - pl.col("_i") + 1).alias("n"),
        *values,
    )


_EVENT_TYPE_OF: dict[str, str] = {
    name: event_type
    for name, spec in event_specs().items()
    for event_type in EVENT_DETAILS
    if event_input(event_type) in spec.lineage
}
"""Each fact made from events by type (and detail): the event type it is made from."""


def _event_facts(located: pl.DataFrame, length: int, wanted: set[str]) -> list[pl.Series]:
    """Per-record event facts, computed only for the names in `wanted`.

    Events are cut into runs per (record, type) and per (record, type, detail), and each
    wanted fact is scattered into place by record position.
    """
    instant = pl.Datetime("us", "UTC")
    columns: list[pl.Series] = []
    if "event_count" in wanted:
        counts = located.group_by("_rec").len()
        columns.append(_scatter(length, "event_count", pl.Int64(), counts["_rec"], counts["len"]))
    if "last_event_at" in wanted:
        latest = located.group_by("_rec").agg(pl.col("event_time").max())
        columns.append(_scatter(length, "last_event_at", instant, latest["_rec"], latest["event_time"]))
    # Only the events of the types whose facts are wanted, and only the columns those facts
    # read: sorting fewer, narrower rows is most of the cost.
    types = sorted({t for name, t in _EVENT_TYPE_OF.items() if name in wanted})
    by_type_columns = ["_rec", "event_type", "event_time"]
    if any(f"{t}_detail" in wanted for t in types):
        by_type_columns.append("detail")
    if "certificate_note" in wanted:
        by_type_columns.append("note")
    of_types = located.filter(pl.col("event_type").cast(pl.String).is_in(types)).select(by_type_columns)
    by_type = _runs(of_types, ["_rec", "event_type"]).partition_by("event_type", as_dict=True, include_key=False)
    detail_types = [
        t
        for t, details in EVENT_DETAILS.items()
        if any(f"{t}_{code}_{end}" in wanted for code in (*details, NO_DETAIL) for end in ("at", "last_at", "count"))
    ]
    with_detail = located.filter(pl.col("event_type").cast(pl.String).is_in(detail_types))
    by_detail = _runs(
        with_detail.select("_rec", "event_type", "detail", "event_time"), ["_rec", "event_type", "detail"]
    ).partition_by("event_type", "detail", as_dict=True, include_key=False)
    no_runs = pl.DataFrame(
        schema={
            "_rec": pl.UInt32,
            "first": instant,
            "last": instant,
            "n": pl.Int64,
            "detail": pl.String,
            "note": pl.String,
        }
    )
    for event_type, details in EVENT_DETAILS.items():
        of_type = by_type.get((event_type,), no_runs)
        for suffix, field, dtype in (
            ("at", "first", instant),
            ("last_at", "last", instant),
            ("count", "n", pl.Int64()),
        ):
            name = f"{event_type}_{suffix}"
            if name in wanted:
                columns.append(_scatter(length, name, dtype, of_type["_rec"], of_type[field]))
        if f"{event_type}_detail" in wanted:
            detail = (
                of_type["detail"].cast(pl.String) if "detail" in of_type.columns else pl.Series([], dtype=pl.String)
            )
            columns.append(_scatter(length, f"{event_type}_detail", pl.String(), of_type["_rec"], detail))
        if event_type == "certificate" and "certificate_note" in wanted:
            columns.append(_scatter(length, "certificate_note", pl.String(), of_type["_rec"], of_type["note"]))
        for code in (*details, NO_DETAIL) if details else ():
            count_name, at_name = f"{event_type}_{code}_count", f"{event_type}_{code}_at"
            last_name = f"{event_type}_{code}_last_at"
            if count_name not in wanted and at_name not in wanted and last_name not in wanted:
                continue
            # An event whose detail is missing, or was unusable, has no detail code.
            with_code = by_detail.get((event_type, None if code == NO_DETAIL else code), no_runs)
            if count_name in wanted:
                columns.append(_scatter(length, count_name, pl.Int64(), with_code["_rec"], with_code["n"]))
            if at_name in wanted:
                columns.append(_scatter(length, at_name, instant, with_code["_rec"], with_code["first"]))
            if last_name in wanted:
                columns.append(_scatter(length, last_name, instant, with_code["_rec"], with_code["last"]))
    return columns


def _review_schedule(located: pl.DataFrame, authorised: pl.DataFrame, settings: FactSettings) -> pl.DataFrame:
    """PACE s40 review due times; one row per record (`_rec`) with detention authorised.

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
    number by review number (a handful of passes over arrays), with no window functions.
    """
    schedule = authorised.with_columns(
        _first=settings.value_at("review_first_after", pl.col("authorised_at")),
        _interval=settings.value_at("review_interval", pl.col("authorised_at")),
    )
    is_postponed = (pl.col("detail").cast(pl.String) == "postponed").fill_null(False)
    reviews = located.lazy().filter(pl.col("event_type") == "review")
    held = (
        reviews.filter(~is_postponed)
        .select("_rec", pl.col("event_time").alias("review_at"))
        .join(schedule.lazy(), on="_rec", how="inner")
        .sort("_rec", "review_at")
        .collect()
    )
    postponements = (
        reviews.filter(is_postponed & pl.col("event_time").is_not_null())
        .select("_rec", pl.col("event_time").alias("postponed_at"))
        .sort("_rec", "postponed_at")
        .collect()
    )
    per_record = _reviews_per_record(held, postponements)
    first_due = pl.col("authorised_at") + pl.col("_first")
    schedule = schedule.join(per_record, on="_rec", how="left").select(
        "_rec",
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
    return schedule.with_columns(review_next_postponed_at=next_postponed).drop("_last_held_at")


_WORST_FIELDS = ("lateness", "at", "due_at")


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


def _reviews_per_record(held: pl.DataFrame, postponements: pl.DataFrame) -> pl.DataFrame:
    """Per record, from its reviews sorted by (record, time): how many, the worst lateness with
    the review and due time it belongs to (the latest review among equals) over all reviews,
    over those postponed by their due time and over the others, and the next due time, by the
    s40(6) arithmetic of `_review_schedule`.

    Each review's floor comes from the one before it, review number by review number (a few
    passes: records have a handful of reviews); no window function, no group-by.
    """
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.col("_rec").ne_missing(pl.col("_rec").shift(1)) | (index == 0)
    interval, number = pl.col("_interval"), pl.col("number")
    reviews = held.with_columns(number=index - pl.when(starts).then(index).forward_fill() + 1).with_columns(
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
    last_of_record = pl.col("_rec").ne_missing(pl.col("_rec").shift(-1)) | (index == pl.len() - 1)
    last = reviews.filter(last_of_record).select(
        "_rec",
        "known",
        number.cast(pl.Int64).alias("reviews_held"),
        (pl.min_horizontal("floor", "shifted") + interval * (number + 1)).alias("review_next_due_at"),
        pl.col("review_at").alias("_last_held_at"),
    )

    def worst(subset: pl.DataFrame, prefix: str, extra: tuple[str, ...] = ()) -> pl.DataFrame:
        return (
            subset.sort("_rec", "lateness", "review_at", nulls_last=False)
            .filter(last_of_record)
            .select(
                "_rec",
                pl.col("lateness").alias(f"{prefix}_lateness"),
                pl.col("review_at").alias(f"{prefix}_at"),
                pl.col("due").alias(f"{prefix}_due_at"),
                *(pl.col(c).alias(f"{prefix}_{c}") for c in extra),
            )
        )

    was_postponed = pl.col("postponed_at").is_not_null()
    per_record = (
        last.join(worst(reviews, "review_worst"), on="_rec", how="left", maintain_order="left")
        .join(
            worst(reviews.filter(~was_postponed), "review_unpostponed_worst"),
            on="_rec",
            how="left",
            maintain_order="left",
        )
        .join(
            worst(reviews.filter(was_postponed), "review_postponed_worst", ("postponed_at",)),
            on="_rec",
            how="left",
            maintain_order="left",
        )
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
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    held = (
        located.lazy()
        .filter(
            (pl.col("event_type") == "review")
            & (pl.col("detail").cast(pl.String) != "postponed").fill_null(True)
            & pl.col("event_time").is_not_null()
        )
        .select("_rec", "event_time")
        .sort("_rec", "event_time")
        .collect()
    )
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
    held = (
        located.lazy()
        .filter(pl.col("event_type") == grain)
        .select("_rec", pl.col("event_time").alias("occasion_at"))
        # The same event entered twice at the same instant is one occasion, not two.
        .unique()
        .sort("_rec", "occasion_at")
        .with_columns(
            occasion_number=(index - pl.when(starts).then(index).forward_fill() + 1),
            occasion_ends_at=pl.when(same_record_next).then(pl.col("occasion_at").shift(-1)),
        )
        .collect()
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
        pl.concat([held, none], how="diagonal_relaxed")
        .sort("_rec", "occasion_number", nulls_last=False)
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
        n[len(OCCASION_PREFIX) :] for n in wanted if n.startswith(OCCASION_PREFIX) and not n.startswith(PRIOR_PREFIX)
    }
    # Only the events the wanted facts are made of (the occasion's window is found per event).
    types = sorted({_EVENT_TYPE_OF[n] for n in names if n in _EVENT_TYPE_OF})
    within = (
        located.filter(pl.col("event_time").is_not_null() & pl.col("event_type").cast(pl.String).is_in(types))
        .sort("event_time")
        .join_asof(
            windows,
            left_on="event_time",
            right_on="occasion_at",
            by="_rec",
            strategy="backward",
            check_sortedness=False,  # both sorted by time just above
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
    occasion_columns = ["occasion_at", "occasion_number", "occasions_in_record", "occasion_ends_at"]
    return pl.concat(
        [
            records.select(_record_columns(records, grain, wanted))[table["_rec"]],
            table.select(*occasion_columns, pl.col("_rec").alias(OCCASION_ROW)),
            own,
            prior,
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
    the last event of that type on its record at or before the occasion's instant, by one
    as-of join per event type (null for a row with no occasion, or no such event)."""
    columns: list[pl.Series] = []
    if not names:
        return pl.DataFrame()
    instant = pl.Datetime("us", "UTC")
    occasions = (
        table.select("_rec", "occasion_at", pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
        .filter(pl.col("occasion_at").is_not_null())
        .sort("occasion_at")
    )
    for name in names:
        event_type = name[len(PRIOR_PREFIX) : -len("_last_at")]
        events = (
            located.filter((pl.col("event_type") == event_type) & pl.col("event_time").is_not_null())
            .select("_rec", pl.col("event_time").cast(instant).alias(name))
            .sort(name)
        )
        found = occasions.join_asof(
            events,
            left_on="occasion_at",
            right_on=name,
            by="_rec",
            strategy="backward",
            check_sortedness=False,  # both sorted by time just above
        )
        columns.append(_scatter(table.height, name, instant, found["_row"], found[name]))
    return pl.DataFrame(columns)


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


def build_fact_tables(
    detentions: pl.DataFrame | pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    taint: pl.DataFrame,
    settings: FactSettings | None = None,
    columns: Iterable[str] | None = None,
    occasions: Mapping[str, Iterable[str]] | None = None,
) -> FactTables:
    """The records' facts as `build_facts` makes them, and for each grain in `occasions` (an
    event type -> the occasion facts wanted, `occasion_*`), the occasions table."""
    settings = settings or FactSettings()
    specs = fact_specs()
    wanted = set(columns) if columns is not None else {*specs, *taint_columns()}
    wanted |= {"custody_record_id", "person_id"}
    # In child order (person, arrival, record): everything downstream keeps this order.
    base = (
        detentions.lazy()
        .select(*(pl.col(c.name).alias(DETENTION_FACT_NAMES.get(c.name, c.name)) for c in DETENTION_COLUMNS))
        .sort("person_id", "arrival_at", "custody_record_id", nulls_last=True)
        .collect()
    )
    length = base.height
    positions = base.select("custody_record_id", pl.int_range(length, dtype=pl.UInt32).alias("_rec"))
    located = (
        events.lazy()
        .select("custody_record_id", "event_time", "event_type", "detail", "note")
        .join(positions.lazy(), on="custody_record_id", how="inner")
        .drop("custody_record_id")
        .collect()
    )
    facts = base.with_columns(_event_facts(located, length, wanted))
    review_names = {n for n, spec in specs.items() if event_input("review") in spec.lineage and n.startswith("review")}
    if wanted & review_names:
        authorised = (
            located.lazy()
            .filter(pl.col("event_type") == "detention_authorised")
            .group_by("_rec")
            .agg(pl.col("event_time").min().alias("authorised_at"))
            .collect()
        )
        reviews = _review_schedule(located, authorised, settings)
        facts = facts.with_columns(
            _scatter(length, name, dtype, reviews["_rec"], reviews[name])
            for name, dtype in reviews.schema.items()
            if name != "_rec"
        )
    if "review_second_at" in wanted:
        second = _second_review(located)
        facts = facts.with_columns(
            _scatter(length, "review_second_at", pl.Datetime("us", "UTC"), second["_rec"], second["review_second_at"])
        )
    tainted = [source for source in INPUTS if taint_column(source) in wanted]
    flags = [taint_column(source) for source in tainted]
    if flags:
        facts = facts.join(_taint_flags(taint, tainted), on="custody_record_id", how="left", maintain_order="left")
    count_columns = [n for n in facts.columns if (n.endswith("_count") and n in specs) or n == "reviews_held"]
    derived = {
        "dob_is_29_february": (pl.col("date_of_birth").dt.month() == 2) & (pl.col("date_of_birth").dt.day() == 29),
        "age_at_arrival": age_years(pl.col("date_of_birth"), pl.col("arrival_at"), settings.leap_day_birthday),
    }
    facts = facts.with_columns(
        *(pl.col(name).fill_null(0) for name in count_columns),
        *(pl.col(flag).fill_null(False) for flag in flags),
        *(expr.alias(name) for name, expr in derived.items() if name in wanted),
    )
    ordered = [n for n in (*specs, *taint_columns()) if n in wanted and n in facts.columns]
    records = facts.select(ordered)
    tables = {grain: _occasions(records, located, grain, set(names)) for grain, names in (occasions or {}).items()}
    return FactTables(records, tables)
