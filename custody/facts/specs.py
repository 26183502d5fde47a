"""The facts a rule may name: one spec per fact, with its kind, meaning and lineage.

Declared once here and checked by the rule compiler when the rules load, so a rule that
names a fact that does not exist is refused before anything runs. Every fact carries its
lineage: the inputs (`custody.read.taint.Input`) it rests on; a record whose input the
loader could not use has that fact unusable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal, Protocol

from custody.contract import DETENTION_COLUMNS, EVENT_DETAILS, ColumnSpec
from custody.read.taint import (
    INPUTS,
    UNKNOWN_EVENT,
    Input,
    detail_input,
    detention_input,
    event_input,
)

Kind = Literal["bool", "int", "float", "str", "instant", "duration", "date", "list", "null"]


@dataclass(frozen=True)
class FactSpec:
    """One column of the facts table, as rule expressions see it."""

    name: str
    kind: Kind
    description: str
    lineage: frozenset[Input] = frozenset()
    """The inputs whose taint makes this fact unusable for a record."""
    sensitive: bool = False
    """Free text that may hold personal data: never exported unless asked."""
    occasion: bool = False
    """Describes one occasion of a rule's grain (`occasion_*`): readable only by a rule that
    declares `occasions:` (see `occasion_specs`)."""


NO_DETAIL = "without_detail"


def taint_column(source: Input) -> str:
    """The facts table's boolean column saying that this input of the record is tainted."""
    return f"\x1ftaint {source.key}"


def _kind(spec: ColumnSpec) -> Kind:
    return {"string": "str", "enum": "str", "date": "date", "datetime": "instant", "bool": "bool"}[spec.kind]  # type: ignore[return-value]


DETENTION_FACT_NAMES: dict[str, str] = {"arrival_time": "arrival_at"}
"""Detention columns whose fact name differs (instants are named `*_at`)."""


OCCASION_PREFIX = "occasion_"
"""Facts of one occasion are named `occasion_<fact>` (`occasion_certificate_at`)."""

PRIOR_PREFIX = OCCASION_PREFIX + "prior_"
"""Facts of the events up to an occasion's instant are named `occasion_prior_<type>_last_at`."""

NEXT_PREFIX = OCCASION_PREFIX + "next_"
"""Facts of the events from an occasion's instant on, to the end of the record, are named
`occasion_next_<type>_at` and `occasion_next_<type>_<detail>_at` (the first such event)."""


@cache
def next_event_keys() -> dict[str, tuple[str, str | None]]:
    """`occasion_next_<key>_at` fact name -> (event type, detail code or None)."""
    keys: dict[str, tuple[str, str | None]] = {}
    for event_type, details in EVENT_DETAILS.items():
        keys[f"{NEXT_PREFIX}{event_type}_at"] = (event_type, None)
        for detail in details:
            keys[f"{NEXT_PREFIX}{event_type}_{detail}_at"] = (event_type, detail)
    return keys


@cache
def fact_specs(grain: str | None = None) -> dict[str, FactSpec]:
    """Every fact a rule may name, with its kind, meaning and lineage; with `grain` (an event
    type), also the facts of one occasion of that grain (`occasion_specs`). Do not modify the
    returned mapping: it is shared."""
    specs = dict(_record_specs())
    if grain is not None:
        specs.update(occasion_specs(grain))
    return specs


OCCASION_FACTS: tuple[tuple[str, Kind, str, bool], ...] = (
    ("occasion_at", "instant", "this occasion: the instant of its '{grain}' event", True),
    ("occasion_number", "int", "this occasion's number among the record's '{grain}' events (1: first)", False),
    ("occasions_in_record", "int", "number of '{grain}' events on the record", True),
    ("occasion_ends_at", "instant", "the next '{grain}' event after this one (none: the last)", True),
)
"""Every occasion's own facts: (name, kind, meaning with `{grain}`, rests on the grain's events)."""


def occasion_specs(grain: str) -> dict[str, FactSpec]:
    """The facts of one occasion of `grain`: a rule with `occasions: bail_refused` is evaluated
    once per `bail_refused` event of a record (a record with none has no finding, unless its
    events of that type could not be used: then once, with no occasion, cannot_assess). The
    occasion runs from its event up to the next event of the same type on the record (or
    open-ended for the last); `occasion_<fact>` is `<fact>` computed over the
    events inside that window only (`occasion_certificate_at`: the first certificate made at
    or after this refusal and before the next). Record facts keep their whole-record meaning.
    """
    if grain not in EVENT_DETAILS:
        raise ValueError(f"unknown event type {grain!r}")
    grain_lineage = frozenset({event_input(grain), UNKNOWN_EVENT})
    specs: dict[str, FactSpec] = {}

    def add(name: str, kind: Kind, description: str, lineage: Iterable[Input]) -> None:
        specs[name] = FactSpec(name, kind, description, frozenset(lineage), occasion=True)

    for name, kind, description, on_grain in OCCASION_FACTS:
        add(name, kind, description.format(grain=grain), grain_lineage if on_grain else [])
    for name, base in event_specs().items():
        specs[OCCASION_PREFIX + name] = replace(
            base,
            name=OCCASION_PREFIX + name,
            description=f"{base.description}, within this occasion (from its '{grain}' event to the next)",
            lineage=base.lineage | grain_lineage,
            occasion=True,
        )
    for event_type in EVENT_DETAILS:
        add(
            f"{PRIOR_PREFIX}{event_type}_last_at",
            "instant",
            f"last '{event_type}' event at or before this occasion's '{grain}' event (anywhere earlier on the record)",
            [event_input(event_type), UNKNOWN_EVENT, *grain_lineage],
        )
    for name, (event_type, detail) in next_event_keys().items():
        label = "" if detail is None else f" with detail '{detail}'"
        add(
            name,
            "instant",
            f"first '{event_type}' event{label} at or after this occasion's '{grain}' event "
            "(anywhere later on the record, past the next occasion too)",
            [
                event_input(event_type),
                UNKNOWN_EVENT,
                *grain_lineage,
                *([] if detail is None else [detail_input(event_type)]),
            ],
        )
    return specs


class _Add(Protocol):
    def __call__(
        self, name: str, kind: Kind, description: str, lineage: Iterable[Input], sensitive: bool = False
    ) -> None: ...


def _adder(specs: dict[str, FactSpec]) -> _Add:
    """`add(name, kind, description, lineage, sensitive=False)`: declares a fact into `specs`."""

    def add(name: str, kind: Kind, description: str, lineage: Iterable[Input], sensitive: bool = False) -> None:
        specs[name] = FactSpec(name, kind, description, frozenset(lineage), sensitive)

    return add


@cache
def event_specs() -> dict[str, FactSpec]:
    """The facts made from events by type and detail: whole-record facts, and per occasion."""
    specs: dict[str, FactSpec] = {}
    add = _adder(specs)

    for event_type, details in EVENT_DETAILS.items():
        lineage = [event_input(event_type), UNKNOWN_EVENT]
        add(f"{event_type}_at", "instant", f"first '{event_type}' event", lineage)
        add(f"{event_type}_last_at", "instant", f"last '{event_type}' event", lineage)
        add(f"{event_type}_count", "int", f"number of '{event_type}' events", lineage)
        if details:
            detail_lineage = [*lineage, detail_input(event_type)]
            add(f"{event_type}_detail", "str", f"detail code of the first '{event_type}' event", detail_lineage)
            for detail in (*details, NO_DETAIL):
                label = "with no detail code" if detail == NO_DETAIL else f"with detail '{detail}'"
                add(f"{event_type}_{detail}_count", "int", f"number of '{event_type}' events {label}", detail_lineage)
                if detail != NO_DETAIL:
                    add(f"{event_type}_{detail}_at", "instant", f"first '{event_type}' event {label}", detail_lineage)
                    add(
                        f"{event_type}_{detail}_last_at",
                        "instant",
                        f"last '{event_type}' event {label}",
                        detail_lineage,
                    )

    add(
        "certificate_note",
        "str",
        "the circumstances stated on the first certificate (free text)",
        [event_input("certificate"), UNKNOWN_EVENT],
        sensitive=True,
    )
    return specs


IN_CUSTODY_EVENTS: tuple[str, ...] = (
    "detention_authorised",
    "review",
    "extension_authorised",
    "charged",
    "bail_refused",
    "la_requested",
    "certificate",
    "cell_placed",
    "cell_left",
    "strip_search",
    "interview_started",
    "interview_ended",
)
"""Event types recorded only while the person is held at the police station (the fact
`in_custody_last_at`): not a release, a move, a court event, a consultation or an answer that
may come after the person left, nor an appropriate adult's or welfare contact."""


@cache
def _record_specs() -> dict[str, FactSpec]:
    specs: dict[str, FactSpec] = {}
    add = _adder(specs)

    for column in DETENTION_COLUMNS:
        name = DETENTION_FACT_NAMES.get(column.name, column.name)
        add(name, _kind(column), f"detentions.{column.name}: {column.description}", [detention_input(column.name)])
    specs.update(event_specs())
    age_lineage = [detention_input("date_of_birth")]
    add("dob_is_29_february", "bool", "born on 29 February (age then depends on a parameter)", age_lineage)
    add("age_at_arrival", "int", "age in whole years at arrival", [*age_lineage, detention_input("arrival_time")])
    review_lineage = [
        event_input("review"),
        detail_input("review"),
        event_input("detention_authorised"),
        UNKNOWN_EVENT,
    ]
    for name, kind, description in (
        ("reviews_held", "int", "reviews carried out (review events not marked postponed)"),
        ("review_first_due_at", "instant", "latest time for the first review (authorised + first interval)"),
        ("review_worst_lateness", "duration", "largest lateness of a review against its due time (negative: early)"),
        ("review_worst_at", "instant", "when the latest-running review took place"),
        ("review_worst_due_at", "instant", "when that review was due (s40(6): postponed ones do not move it)"),
        ("review_next_due_at", "instant", "when the review after the last one held fell due"),
        ("review_second_at", "instant", "when the second review was held (PACE s42(4)(b): no s42 extension before it)"),
        (
            "review_unpostponed_worst_lateness",
            "duration",
            "largest lateness of a review not postponed by its due time (negative: early)",
        ),
        ("review_unpostponed_worst_at", "instant", "when that review took place"),
        ("review_unpostponed_worst_due_at", "instant", "when that review was due"),
        (
            "review_postponed_worst_lateness",
            "duration",
            "largest lateness of a review postponed by its due time (s40(4)(b), (5))",
        ),
        ("review_postponed_worst_at", "instant", "when that postponed review was held"),
        ("review_postponed_worst_due_at", "instant", "when that postponed review was due"),
        ("review_postponed_worst_postponed_at", "instant", "when the postponement of that review was recorded"),
        (
            "review_next_postponed_at",
            "instant",
            "a postponement of the review due after the last one held, recorded by its due time",
        ),
    ):
        add(name, kind, description, review_lineage)  # type: ignore[arg-type]
    add("event_count", "int", "number of usable events on the record", [UNKNOWN_EVENT])
    add(
        "last_event_at",
        "instant",
        "the latest usable event on the record (the child was still on the record then)",
        [UNKNOWN_EVENT, *(event_input(t) for t in EVENT_DETAILS)],
    )
    add(
        "in_custody_last_at",
        "instant",
        "the latest event of a kind recorded only while the person is held at the police station ("
        + ", ".join(IN_CUSTODY_EVENTS)
        + "): the person was still detained then",
        [UNKNOWN_EVENT, *(event_input(t) for t in IN_CUSTODY_EVENTS)],
    )
    return specs


def taint_columns() -> list[str]:
    """Every input's taint column, in vocabulary order."""
    return [taint_column(source) for source in INPUTS]
