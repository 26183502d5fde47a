"""The input tables of the data contract (../shared/DATA-CONTRACT.md), described once.

The pydantic models below are the single description of the input tables.
Everything else is derived from them: the polars schema the loader casts to,
the required-column checks, the enum checks, `custody schema` and its JSON
Schema. Validation itself is vectorised in polars (see `custody.read.loader`); the
models are never instantiated per row on the hot path.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = "1.1"
UK_TZ = "Europe/London"


class DetentionPower(StrEnum):
    pace_arrest = "pace_arrest"
    warrant = "warrant"
    bail_breach = "bail_breach"
    court_remand = "court_remand"
    mha_s136 = "mha_s136"
    mha_s135 = "mha_s135"
    other = "other"


class PlaceOfSafety(StrEnum):
    police_station = "police_station"
    hospital = "hospital"
    health_based = "health_based"
    emergency_department = "emergency_department"
    other = "other"


class OffenceCategory(StrEnum):
    violent = "violent"
    sexual = "sexual"
    other = "other"


# Event vocabulary: event_type -> allowed `detail` codes (empty: no detail expected).
EVENT_DETAILS: dict[str, tuple[str, ...]] = {
    "detention_authorised": (),
    "aa_requested": (),
    "aa_arrived": (),
    "aa_left": (),
    "welfare_informed": ("parent_guardian", "local_authority", "other"),
    "review": ("pre_charge", "post_charge", "postponed"),
    "extension_authorised": ("s42", "s43", "s44"),
    "charged": (),
    "bail_refused": (),
    "bail_granted": (),
    "la_requested": ("non_secure", "secure"),
    "la_response": ("accepted", "refused", "no_secure_available", "no_response"),
    "transferred_to_la": ("non_secure", "secure"),
    "certificate": ("impracticable", "no_secure_accommodation"),
    "certificate_to_court": (),
    "court_appearance": (),
    "cell_placed": ("no_alternative", "supervision", "comfort", "other"),
    "cell_left": (),
    "mha_consultation": ("doctor", "nurse", "amhp", "paramedic", "other"),
    "mha_assessment_completed": (),
    "mha_extension": (),
    "released": ("nfa", "bail", "rui", "to_court", "to_la", "to_hospital", "other"),
    # v1.1 (DATA-CONTRACT.md): strip searches and interviews of juveniles (Code C Annex A 11(c), 11.15).
    "strip_search": ("aa_present", "aa_declined", "urgent", "aa_absent"),
    "interview_started": ("aa_present", "urgent_authorised", "aa_absent"),
    "interview_ended": (),
}

EVENT_MEANINGS: dict[str, str] = {
    "detention_authorised": "custody officer authorises detention (PACE s37)",
    "aa_requested": "appropriate adult informed and asked to attend (Code C 3.15)",
    "aa_arrived": "appropriate adult arrived",
    "aa_left": "appropriate adult left the station",
    "welfare_informed": "person responsible for welfare informed (Code C 3.13); the detail says who, where known",
    "review": "PACE s40 review of detention",
    "extension_authorised": "extension of the pre-charge clock",
    "charged": "charged with an offence",
    "bail_refused": "custody officer authorises detention after charge (PACE s38(1))",
    "bail_granted": "released on bail after charge",
    "la_requested": "local authority asked to accommodate (PACE s38(6))",
    "la_response": "local authority's answer",
    "transferred_to_la": "child left custody for local authority accommodation",
    "certificate": "s38(6) certificate made; the note holds the circumstances stated",
    "certificate_to_court": "certificate produced to the court (s38(7))",
    "court_appearance": "first appearance before a court",
    "cell_placed": "juvenile placed in a cell (Code C 8.8)",
    "cell_left": "left the cell",
    "mha_consultation": "health professional consulted before s136 removal (MHA s136(1C))",
    "mha_assessment_completed": "mental health assessment completed",
    "mha_extension": "s136B extension authorised (up to 12 hours)",
    "released": "left police detention",
    "strip_search": (
        "search exposing intimate parts (Code C Annex A 11): with the AA present; without, because the child"
        " said so in the AA's presence and the AA agreed; without, under the urgency exception; without, for no"
        " recorded reason"
    ),
    "interview_started": (
        "interview about an offence begins (Code C 11.15); with no detail, AA presence is taken from aa_arrived/aa_left"
    ),
    "interview_ended": "the interview ends",
}

EventType = StrEnum("EventType", {name: name for name in EVENT_DETAILS})  # type: ignore[misc]
ALL_DETAIL_CODES: tuple[str, ...] = tuple(sorted({d for ds in EVENT_DETAILS.values() for d in ds}))
EventDetail = StrEnum("EventDetail", {code: code for code in ALL_DETAIL_CODES})  # type: ignore[misc]


class Detention(BaseModel):
    """One row per custody record (one episode in police detention)."""

    model_config = ConfigDict(extra="allow", title="detentions", defer_build=True)

    custody_record_id: str = Field(description="unique id of the custody record")
    person_id: str = Field(description="stable (pseudonymous) id of the detained person across records; the child")
    date_of_birth: dt.date | None = Field(
        None, description="YYYY-MM-DD or DD/MM/YYYY; age is computed at the instant each duty arises"
    )
    appears_under_18: bool | None = Field(None, description="the custody officer's recorded view where age is unknown")
    sex: str | None = Field(None, description="as recorded")
    ethnicity: str | None = Field(None, description="as recorded")
    looked_after: bool | None = Field(None, description="the child is looked after by a local authority")
    force: str | None = Field(None, description="police force")
    custody_suite: str | None = Field(None, description="custody suite / station")
    detention_power: DetentionPower = Field(description="the power under which the person is held")
    arrival_time: dt.datetime = Field(
        description="arrival at the station precincts; for mha_* powers, at the place of safety"
    )
    place_of_safety: PlaceOfSafety | None = Field(None, description="required for mha_* powers")
    offence_category: OffenceCategory | None = Field(None, description="PACE s38(6A) serious-harm meaning")
    indictable: bool | None = Field(None, description="the offence is indictable or either-way (PACE s42)")


class Event(BaseModel):
    """One row per timed entry on a custody record."""

    model_config = ConfigDict(extra="allow", title="events", defer_build=True)

    custody_record_id: str = Field(description="the record it belongs to")
    event_time: dt.datetime = Field(description="when it happened")
    event_type: EventType = Field(description="see the event vocabulary")
    detail: EventDetail | None = Field(
        None, description="a code qualifying the event; allowed codes depend on event_type"
    )
    note: str | None = Field(
        None, description="free text as written by the officer; may hold personal data, never exported"
    )


ColumnKind = Literal["string", "date", "datetime", "bool", "enum"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    required: bool
    description: str
    enum_values: tuple[str, ...] = ()

    @property
    def dtype(self) -> pl.DataType:
        """The polars type of the column once loaded (datetimes become UTC instants)."""
        match self.kind:
            case "date":
                return pl.Date()
            case "datetime":
                return pl.Datetime("us", "UTC")
            case "bool":
                return pl.Boolean()
            case "enum":
                return pl.Enum(list(self.enum_values))
            case _:
                return pl.String()


def _column_specs(model: type[BaseModel]) -> tuple[ColumnSpec, ...]:
    specs = []
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        required = field.is_required()
        if get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        kind: ColumnKind
        values: tuple[str, ...] = ()
        if isinstance(annotation, type) and issubclass(annotation, StrEnum):
            kind, values = "enum", tuple(m.value for m in annotation)
        elif annotation is dt.datetime:
            kind = "datetime"
        elif annotation is dt.date:
            kind = "date"
        elif annotation is bool:
            kind = "bool"
        else:
            kind = "string"
        specs.append(ColumnSpec(name, kind, required, field.description or "", values))
    return tuple(specs)


DETENTION_COLUMNS: tuple[ColumnSpec, ...] = _column_specs(Detention)
EVENT_COLUMNS: tuple[ColumnSpec, ...] = _column_specs(Event)
TABLES: dict[str, tuple[ColumnSpec, ...]] = {"detentions": DETENTION_COLUMNS, "events": EVENT_COLUMNS}
MHA_POWERS: frozenset[str] = frozenset({"mha_s136", "mha_s135"})


def polars_schema(table: str) -> pl.Schema:
    """The polars schema of a loaded table (contract columns only, in contract order)."""
    return pl.Schema({c.name: c.dtype for c in TABLES[table]})
