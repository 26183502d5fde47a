"""Facts: one row per custody record with everything the rules read.

Built once, lazily, in polars, from the loaded tables; rules never re-derive
them. The names and kinds of the facts are declared here (`fact_specs`) and
checked by the rule compiler when the rules load, so a rule that names a fact
that does not exist is refused before anything runs.

Every fact carries its lineage: the data-quality flags (`_dq_*` columns) that
make it unusable for a record. A rule that reads a fact whose input row or
value was unusable reports `cannot_assess` for that record.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from custody.contract import ALL_DETAIL_CODES, DETENTION_COLUMNS, EVENT_DETAILS, MHA_POWERS, ColumnSpec
from custody.engine.expr import FactSpec, Kind, age_years, duration_lit, parse_duration

UNKNOWN_EVENT_FLAG = "_dq_evt_unknown"
NO_DETAIL = "without_detail"


class FactSettings(BaseModel):
    """Parameters of the facts layer, from `rules/_facts.yaml` (legal values, cited there)."""

    model_config = ConfigDict(extra="forbid")

    review_first_after: dt.timedelta = Field(
        dt.timedelta(hours=6), description="PACE s40(3)(a): first review after detention first authorised"
    )
    review_interval: dt.timedelta = Field(
        dt.timedelta(hours=9), description="PACE s40(3)(b),(c): later reviews at intervals of at most this"
    )
    leap_day_birthday: Literal["march_1", "feb_28"] = Field(
        "march_1", description="when a 29 February birthday is reached in a common year (LAW.md: uncertain)"
    )

    @field_validator("review_first_after", "review_interval", mode="before")
    @classmethod
    def _duration_text(cls, value: object) -> object:
        if isinstance(value, str):
            parsed = parse_duration(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not a duration such as '6h' or '90m'")
            return parsed
        return value


def det_flag(column: str) -> str:
    return f"_dq_det_{column}"


def evt_flag(event_type: str) -> str:
    """An event row of this type could not be used (bad time, or a misspelt type close to it)."""
    return f"_dq_evt_{event_type}"


def detail_flag(event_type: str) -> str:
    """An event of this type was used but its detail code could not be."""
    return f"_dq_detail_{event_type}"


def _kind(spec: ColumnSpec) -> Kind:
    return {"string": "str", "enum": "str", "date": "date", "datetime": "instant", "bool": "bool"}[spec.kind]  # type: ignore[return-value]


DETENTION_FACT_NAMES: dict[str, str] = {"arrival_time": "arrival_at"}
"""Detention columns whose fact name differs (instants are named `*_at`)."""


def fact_specs() -> dict[str, FactSpec]:
    """Every fact a rule may name, with its kind, meaning and lineage."""
    specs: dict[str, FactSpec] = {}

    def add(name: str, kind: Kind, description: str, lineage: Iterable[str], sensitive: bool = False) -> None:
        specs[name] = FactSpec(name, kind, description, frozenset(lineage), sensitive)

    for column in DETENTION_COLUMNS:
        name = DETENTION_FACT_NAMES.get(column.name, column.name)
        add(name, _kind(column), f"detentions.{column.name}: {column.description}", [det_flag(column.name)])

    for event_type, details in EVENT_DETAILS.items():
        lineage = [evt_flag(event_type), UNKNOWN_EVENT_FLAG]
        add(f"{event_type}_at", "instant", f"first '{event_type}' event", lineage)
        add(f"{event_type}_last_at", "instant", f"last '{event_type}' event", lineage)
        add(f"{event_type}_count", "int", f"number of '{event_type}' events", lineage)
        if details:
            detail_lineage = [*lineage, detail_flag(event_type)]
            add(f"{event_type}_detail", "str", f"detail code of the first '{event_type}' event", detail_lineage)
            for detail in (*details, NO_DETAIL):
                label = "with no detail code" if detail == NO_DETAIL else f"with detail '{detail}'"
                add(f"{event_type}_{detail}_count", "int", f"number of '{event_type}' events {label}", detail_lineage)
                if detail != NO_DETAIL:
                    add(f"{event_type}_{detail}_at", "instant", f"first '{event_type}' event {label}", detail_lineage)

    add(
        "certificate_note",
        "str",
        "the circumstances stated on the first certificate (free text)",
        [evt_flag("certificate"), UNKNOWN_EVENT_FLAG],
        sensitive=True,
    )
    age_lineage = [det_flag("date_of_birth")]
    add("dob_is_29_february", "bool", "born on 29 February (age then depends on a parameter)", age_lineage)
    add("age_at_arrival", "int", "age in whole years at arrival", [*age_lineage, det_flag("arrival_time")])
    review_lineage = [evt_flag("review"), detail_flag("review"), evt_flag("detention_authorised"), UNKNOWN_EVENT_FLAG]
    for name, kind, description in (
        ("reviews_held", "int", "reviews carried out (review events not marked postponed)"),
        ("review_first_due_at", "instant", "latest time for the first review (authorised + first interval)"),
        ("review_worst_lateness", "duration", "largest lateness of a review against its due time (negative: early)"),
        ("review_worst_at", "instant", "when the latest-running review took place"),
        ("review_worst_due_at", "instant", "when that review was due (s40(7): postponed ones do not move it)"),
        ("review_next_due_at", "instant", "when the review after the last one held fell due"),
    ):
        add(name, kind, description, review_lineage)  # type: ignore[arg-type]
    add("event_count", "int", "number of usable events on the record", [UNKNOWN_EVENT_FLAG])
    return specs


def dq_flag_columns() -> list[str]:
    return [
        *(det_flag(c.name) for c in DETENTION_COLUMNS),
        *(evt_flag(t) for t in EVENT_DETAILS),
        *(detail_flag(t) for t, details in EVENT_DETAILS.items() if details),
        UNKNOWN_EVENT_FLAG,
    ]


def _scatter(length: int, name: str, dtype: pl.DataType, at: pl.Series, values: pl.Series) -> pl.Series:
    """A column of `length` nulls with `values` placed at the record positions `at`."""
    column = pl.repeat(None, length, dtype=dtype, eager=True).alias(name)
    return column.scatter(at, values.cast(dtype)) if at.len() else column


_TYPE_CODES: dict[str, int] = {name: code for code, name in enumerate(EVENT_DETAILS)}
_DETAIL_CODES: dict[str, int] = {name: code for code, name in enumerate(ALL_DETAIL_CODES)}
_NO_DETAIL_CODE = len(ALL_DETAIL_CODES)


def _runs(located: pl.DataFrame, key: pl.Expr) -> pl.DataFrame:
    """Per value of `key`: first and last instant, count, and the detail and note of the first.

    Sorting once by (key, time) and cutting the sorted rows into runs is much faster than a
    hash group-by when nearly every (record, type) pair is its own group.
    """
    ordered = located.select(key.alias("k"), "event_time", "detail", "note").sort("k", "event_time")
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = ordered.with_columns(_i=index).filter((pl.col("k") != pl.col("k").shift(1)).fill_null(True))
    ends = ordered.with_columns(_i=index).filter((pl.col("k") != pl.col("k").shift(-1)).fill_null(True))
    return starts.select(
        "k",
        pl.col("event_time").alias("first"),
        ends["event_time"].alias("last"),
        (ends["_i"] - pl.col("_i") + 1).alias("n"),
        "detail",
        "note",
    )


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
    type_code = pl.col("event_type").cast(pl.String).replace_strict(_TYPE_CODES, return_dtype=pl.UInt64)
    by_type = _runs(located, pl.col("_rec").cast(pl.UInt64) * 32 + type_code).with_columns(
        _rec=(pl.col("k") // 32).cast(pl.UInt32), _type=(pl.col("k") % 32)
    )
    detail_types = [t for t, details in EVENT_DETAILS.items() if details and any(n.startswith(f"{t}_") for n in wanted)]
    detail_code = (
        pl.col("detail").cast(pl.String).replace_strict(_DETAIL_CODES, default=_NO_DETAIL_CODE, return_dtype=pl.UInt64)
    )
    by_detail = _runs(
        located.filter(pl.col("event_type").cast(pl.String).is_in(detail_types)),
        (pl.col("_rec").cast(pl.UInt64) * 32 + type_code) * 64 + detail_code,
    ).with_columns(_rec=(pl.col("k") // 2048).cast(pl.UInt32), _type=(pl.col("k") // 64) % 32, _detail=pl.col("k") % 64)
    for event_type, details in EVENT_DETAILS.items():
        of_type = by_type.filter(pl.col("_type") == _TYPE_CODES[event_type])
        for suffix, field, dtype in (
            ("at", "first", instant),
            ("last_at", "last", instant),
            ("count", "n", pl.Int64()),
        ):
            name = f"{event_type}_{suffix}"
            if name in wanted:
                columns.append(_scatter(length, name, dtype, of_type["_rec"], of_type[field]))
        if f"{event_type}_detail" in wanted:
            columns.append(
                _scatter(
                    length, f"{event_type}_detail", pl.String(), of_type["_rec"], of_type["detail"].cast(pl.String)
                )
            )
        if event_type == "certificate" and "certificate_note" in wanted:
            columns.append(_scatter(length, "certificate_note", pl.String(), of_type["_rec"], of_type["note"]))
        for code in (*details, NO_DETAIL) if details else ():
            count_name, at_name = f"{event_type}_{code}_count", f"{event_type}_{code}_at"
            if count_name not in wanted and at_name not in wanted:
                continue
            code_number = _NO_DETAIL_CODE if code == NO_DETAIL else _DETAIL_CODES[code]
            with_code = by_detail.filter(
                (pl.col("_type") == _TYPE_CODES[event_type]) & (pl.col("_detail") == code_number)
            )
            if count_name in wanted:
                columns.append(_scatter(length, count_name, pl.Int64(), with_code["_rec"], with_code["n"]))
            if at_name in wanted:
                columns.append(_scatter(length, at_name, instant, with_code["_rec"], with_code["first"]))
    return columns


def _review_schedule(located: pl.DataFrame, authorised: pl.DataFrame, settings: FactSettings) -> pl.DataFrame:
    """PACE s40 review due times, vectorised; one row per record (`_rec`) with detention authorised.

    s40(3): first review no later than `first` after detention was first authorised, then at
    intervals of at most `interval`. s40(7) (R in LAW.md): a late review does not move later
    due times: due(1) = authorised + first; due(n+1) = min(actual(n), due(n)) + interval.
    Unrolled: due(n) = interval * n + min(x_0, ..., x_{n-1}) with x_0 = authorised + first -
    interval and x_k = actual(k) - interval * k, a running minimum per record.
    """
    interval = settings.review_interval
    first_offset = settings.review_first_after - interval
    held = (
        located.lazy()
        .filter((pl.col("event_type") == "review") & (pl.col("detail").cast(pl.String) != "postponed").fill_null(True))
        .select("_rec", pl.col("event_time").alias("review_at"))
        .join(authorised.lazy(), on="_rec", how="inner")
        .sort("_rec", "review_at")
        .with_columns(n=pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_rec"))
        .with_columns(shifted=pl.col("review_at") - pl.duration(microseconds=pl.col("n") * _us(interval)))
        .with_columns(
            floor=pl.min_horizontal(
                pl.col("authorised_at") + duration_lit(first_offset),
                pl.col("shifted").cum_min().shift(1).over("_rec"),
            )
        )
        .with_columns(due_at=pl.col("floor") + pl.duration(microseconds=pl.col("n") * _us(interval)))
        .with_columns(lateness=pl.col("review_at") - pl.col("due_at"))
    )
    per_record = held.group_by("_rec").agg(
        pl.len().cast(pl.Int64).alias("reviews_held"),
        pl.col("lateness").max().alias("review_worst_lateness"),
        pl.col("review_at").sort_by("lateness", "review_at").last().alias("review_worst_at"),
        pl.col("due_at").sort_by("lateness", "review_at").last().alias("review_worst_due_at"),
        (
            pl.min_horizontal(pl.col("floor").last(), pl.col("shifted").last())
            + pl.duration(microseconds=(pl.col("n").last() + 1) * _us(interval))
        ).alias("review_next_due_at"),
    )
    first_due = pl.col("authorised_at") + duration_lit(settings.review_first_after)
    return (
        authorised.lazy()
        .join(per_record, on="_rec", how="left")
        .select(
            "_rec",
            pl.col("reviews_held").fill_null(0),
            first_due.alias("review_first_due_at"),
            "review_worst_lateness",
            "review_worst_at",
            "review_worst_due_at",
            pl.coalesce("review_next_due_at", first_due).alias("review_next_due_at"),
        )
        .collect()
    )


def _us(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() * 1_000_000)


def _likely_types(unknown: Iterable[str]) -> dict[str, str]:
    """A misspelt event type stands for the type it is close to (`aa_arived` -> `aa_arrived`).

    Only which facts count as touched depends on this: the row itself stays rejected. A type
    close to none of the vocabulary could be any event, and touches every event fact.
    """
    known = list(EVENT_DETAILS)
    mapping = {}
    for value in unknown:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.8)
        if close:
            mapping[value] = close[0]
    return mapping


def _dq_flags(data_quality: pl.LazyFrame) -> pl.LazyFrame:
    """One row per custody record with a true flag for each input a data-quality row touched."""
    known_types = list(EVENT_DETAILS)
    event_type = pl.col("event_type").str.strip_chars().str.to_lowercase()
    unknown = (
        data_quality.filter(pl.col("table") == "events")
        .select(event_type.alias("t"))
        .filter(pl.col("t").is_not_null() & ~pl.col("t").is_in(known_types))
        .unique()
        .collect()["t"]
        .to_list()
    )
    likely = _likely_types(unknown)
    event_type = event_type.replace(likely) if likely else event_type
    flag = (
        pl.when(pl.col("table") == "detentions")
        .then(pl.lit("_dq_det_") + pl.col("column"))
        .when(event_type.is_in(known_types) & (pl.col("column") == "detail") & (pl.col("action") == "value_unusable"))
        .then(pl.lit("_dq_detail_") + event_type)
        .when(event_type.is_in(known_types))
        .then(pl.lit("_dq_evt_") + event_type)
        .otherwise(pl.lit(UNKNOWN_EVENT_FLAG))
    )
    touched = (
        data_quality.filter(
            pl.col("custody_record_id").is_not_null() & pl.col("action").is_in(["row_rejected", "value_unusable"])
        )
        .filter(~((pl.col("table") == "detentions") & (pl.col("action") == "row_rejected")))
        .select("custody_record_id", flag.alias("flag"))
        .unique()
    )
    return touched.group_by("custody_record_id").agg(
        *(pl.col("flag").is_in([name]).any().alias(name) for name in dq_flag_columns())
    )


def build_facts(
    detentions: pl.DataFrame | pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    data_quality: pl.DataFrame | pl.LazyFrame,
    settings: FactSettings | None = None,
    columns: Iterable[str] | None = None,
) -> pl.LazyFrame:
    """The facts table, one row per loaded custody record, by child, arrival and record.

    `columns` names the facts (and `_dq_*` flags) wanted; only those are computed (default:
    all). The result is returned as a lazy frame over the computed table.
    """
    settings = settings or FactSettings()
    specs = fact_specs()
    wanted = set(columns) if columns is not None else {*specs, *dq_flag_columns()}
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
    review_names = {n for n, spec in specs.items() if evt_flag("review") in spec.lineage and n.startswith("review")}
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
    flags = [f for f in dq_flag_columns() if f in wanted]
    if flags:
        dq = _dq_flags(data_quality.lazy()).collect()
        facts = facts.join(
            dq.select("custody_record_id", *flags), on="custody_record_id", how="left", maintain_order="left"
        )
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
    ordered = [n for n in (*specs, *dq_flag_columns()) if n in wanted and n in facts.columns]
    return facts.select(ordered).lazy()


HEADLINE_FACTS: tuple[str, ...] = (
    "person_id",
    "custody_record_id",
    "arrival_at",
    "age_at_arrival",
    "appears_under_18",
    "charged_count",
    "bail_refused_count",
    "la_requested_count",
    "transferred_to_la_count",
    "certificate_count",
    "detention_power",
    "place_of_safety",
)
"""The facts `headline_figures` reads (and `run_check` keeps per record): computed whatever the rules need."""


def headline_figures(facts: pl.LazyFrame) -> dict[str, int]:
    """The inspection's headline figures (the seed report's funnel), from the facts.

    A child here is a person under 18 at arrival by date of birth or, without one, recorded
    as appearing under 18; the rules apply the dated PACE thresholds themselves.
    """
    child = pl.coalesce(pl.col("age_at_arrival") < 18, pl.col("appears_under_18")).fill_null(False)
    refused = child & (pl.col("charged_count") > 0) & (pl.col("bail_refused_count") > 0)
    row = (
        facts.select(
            pl.len().alias("records"),
            pl.col("person_id").filter(child).n_unique().alias("children_detained"),
            child.sum().alias("child_records"),
            refused.sum().alias("charged_and_refused_bail"),
            (refused & (pl.col("la_requested_count") > 0)).sum().alias("requests_made"),
            (refused & (pl.col("transferred_to_la_count") > 0)).sum().alias("moved"),
            (refused & (pl.col("certificate_count") > 0)).sum().alias("certificates"),
            (
                child
                & pl.col("detention_power").cast(pl.String).is_in(sorted(MHA_POWERS))
                & (pl.col("place_of_safety").cast(pl.String) == "police_station")
            )
            .sum()
            .alias("s136_police_station_uses"),
        )
        .collect()
        .row(0, named=True)
    )
    return {key: int(value or 0) for key, value in row.items()}
