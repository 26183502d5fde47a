"""Typed taint: which inputs of which custody record the loader could not use.

Every data-quality row that makes an input unusable (a rejected event row, an unusable
detention value, an unusable detail code) taints one input of one custody record. The
inputs are a closed vocabulary (`INPUTS`), derived from the contract: a detention column,
the events of one type, the detail codes of one event type, or an event row whose type
could not be read. Facts declare which inputs they rest on (their lineage), so a rule
that reads a fact resting on a tainted input reports `cannot_assess` for that record.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from custody.contract import DETENTION_COLUMNS, EVENT_DETAILS

InputKind = Literal["detention_column", "event", "event_detail", "unknown_event"]


@dataclass(frozen=True, order=True)
class Input:
    """One input a fact can rest on."""

    kind: InputKind
    name: str = ""
    """The detention column or the event type ("" for an event of unknown type)."""

    @property
    def key(self) -> str:
        """Its value in the `input` column of a taint table."""
        match self.kind:
            case "detention_column":
                return f"detentions.{self.name}"
            case "event":
                return f"events.{self.name}"
            case "event_detail":
                return f"events.{self.name}.detail"
            case _:
                return "events.(unknown type)"

    @property
    def label(self) -> str:
        """How a message names it."""
        match self.kind:
            case "detention_column":
                return f"detentions.{self.name}"
            case "event":
                return f"a '{self.name}' event row"
            case "event_detail":
                return f"the detail code of a '{self.name}' event"
            case _:
                return "an event row of unknown type"


def detention_input(column: str) -> Input:
    return Input("detention_column", column)


def event_input(event_type: str) -> Input:
    """An event row of this type could not be used (bad time, or a misspelt type close to it)."""
    return Input("event", event_type)


def detail_input(event_type: str) -> Input:
    """An event of this type was used but its detail code could not be."""
    return Input("event_detail", event_type)


UNKNOWN_EVENT = Input("unknown_event")
"""An event row whose type is close to none of the vocabulary: it could have been any event."""

INPUTS: tuple[Input, ...] = (
    *(detention_input(c.name) for c in DETENTION_COLUMNS),
    *(event_input(t) for t in EVENT_DETAILS),
    *(detail_input(t) for t, details in EVENT_DETAILS.items() if details),
    UNKNOWN_EVENT,
)
INPUT_DTYPE = pl.Enum([i.key for i in INPUTS])
TAINT_SCHEMA = pl.Schema({"custody_record_id": pl.String(), "input": INPUT_DTYPE})


def _likely_types(unknown: Iterable[str]) -> dict[str, str]:
    """A misspelt event type stands for the type it is close to (`aa_arived` -> `aa_arrived`).

    Only which input counts as tainted depends on this: the row itself stays rejected. A
    type close to none of the vocabulary could be any event, and taints every event input.
    """
    known = list(EVENT_DETAILS)
    mapping = {}
    for value in unknown:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.8)
        if close:
            mapping[value] = close[0]
    return mapping


def taint_of(data_quality: pl.DataFrame) -> pl.DataFrame:
    """`TAINT_SCHEMA`: one row per (custody record, input) that a data-quality row made
    unusable. A rejected detentions row taints nothing: its record is not loaded at all."""
    concerned = data_quality.filter(
        pl.col("custody_record_id").is_not_null()
        & pl.col("action").is_in(["row_rejected", "value_unusable"])
        & ~((pl.col("table") == "detentions") & (pl.col("action") == "row_rejected"))
    )
    known_types = list(EVENT_DETAILS)
    as_read = pl.col("event_type").str.strip_chars().str.to_lowercase()
    unknown = concerned.filter(pl.col("table") == "events").select(as_read.alias("t")).drop_nulls().unique()["t"]
    likely = _likely_types(t for t in unknown.to_list() if t not in EVENT_DETAILS)
    event_type = as_read.replace(likely) if likely else as_read
    detentions = pl.lit("detentions.") + pl.col("column")
    events = pl.lit("events.") + event_type
    input_key = (
        pl.when(pl.col("table") == "detentions")
        .then(detentions)
        .when(event_type.is_in(known_types) & (pl.col("column") == "detail") & (pl.col("action") == "value_unusable"))
        .then(events + pl.lit(".detail"))
        .when(event_type.is_in(known_types))
        .then(events)
        .otherwise(pl.lit(UNKNOWN_EVENT.key))
    )
    return (
        concerned.select("custody_record_id", input_key.cast(INPUT_DTYPE, strict=False).alias("input"))
        .drop_nulls()  # a column outside the contract is no input of any fact
        .unique()
        .sort("custody_record_id", "input")
    )
