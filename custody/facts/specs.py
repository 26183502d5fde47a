"""The facts a rule may name: one spec per fact, with its kind, meaning and lineage.

Declared once here and checked by the rule compiler when the rules load, so a rule that
names a fact that does not exist is refused before anything runs. Every fact carries its
lineage: the data-quality flags (`_dq_*` columns) that make it unusable for a record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from custody.contract import DETENTION_COLUMNS, EVENT_DETAILS, ColumnSpec

Kind = Literal["bool", "int", "float", "str", "instant", "duration", "date", "list", "null"]


@dataclass(frozen=True)
class FactSpec:
    """One column of the facts table, as rule expressions see it."""

    name: str
    kind: Kind
    description: str
    lineage: frozenset[str] = frozenset()
    """Data-quality flag columns (`_dq_*`) whose truth makes this fact unusable for a record."""
    sensitive: bool = False
    """Free text that may hold personal data: never exported unless asked."""


UNKNOWN_EVENT_FLAG = "_dq_evt_unknown"


NO_DETAIL = "without_detail"


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
