"""Parameters of the facts layer, read from `rules/_facts.yaml` (legal values, cited there)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from custody.facts.time import parse_duration


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
