"""The input contract as JSON Schema (`custody schema --json`), for the teams that write extracts."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from custody.contract import CONTRACT_VERSION, EVENT_DETAILS, EVENT_MEANINGS, Detention, Event
from custody.read.loader import SUFFIXES
from custody.read.timeparse import DATE_FORMS, DATETIME_FORMS


def contract_json_schema() -> dict[str, Any]:
    """JSON Schema of a record set (both tables, from the pydantic models) plus the event vocabulary."""
    _, schema = models_json_schema([(Detention, "validation"), (Event, "validation")])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "custody record set",
        "description": (
            "Two tables, detentions and events, as files named detentions.<ext> and events.<ext> "
            f"({', '.join(sorted(s.lstrip('.') for s in SUFFIXES))}). Column names are case-insensitive. "
            f"Dates: {DATE_FORMS}. Date-times: {DATETIME_FORMS}; without an offset, UK local time."
        ),
        "contract_version": CONTRACT_VERSION,
        "type": "object",
        "properties": {
            "detentions": {"type": "array", "items": {"$ref": "#/$defs/Detention"}},
            "events": {"type": "array", "items": {"$ref": "#/$defs/Event"}},
        },
        "required": ["detentions", "events"],
        "$defs": schema["$defs"],
        "event_vocabulary": {
            event_type: {"meaning": EVENT_MEANINGS.get(event_type, ""), "detail": list(codes)}
            for event_type, codes in EVENT_DETAILS.items()
        },
    }
