"""Shared test helpers: small record sets written into tmp_path."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import freezegun
import pytest
from hypothesis import settings

# freezegun swaps the datetime classes in every loaded module; polars must keep the real
# ones (it caches Python type -> dtype lookups), or frozen tests poison later ones.
freezegun.configure(extend_ignore_list=["polars", "pydantic", "pydantic_core", "yaml"])

# Property tests are judged on what they find, never on how long an example takes (speed is
# the benchmark's business): no deadline. The parent keeps Hypothesis's own CI profile
# (derandomised, no example database) when it runs under CI=true.
settings.register_profile("custody", parent=settings(), deadline=None)
settings.load_profile("custody")

Rows = Sequence[Sequence[str | None]]
DETENTION_HEADER = ("custody_record_id", "person_id", "date_of_birth", "detention_power", "arrival_time")
EVENT_HEADER = ("custody_record_id", "event_time", "event_type", "detail", "note")


def write_csv(path: Path, header: Sequence[str], rows: Rows) -> Path:
    """A CSV exactly as a spreadsheet would export it (None -> empty field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    return path


RecordSetFactory = Callable[..., Path]


@pytest.fixture
def csv_record_set(tmp_path: Path) -> RecordSetFactory:
    """Write `records/detentions.csv` and `records/events.csv`; returns the folder."""

    def make(
        detentions: Rows,
        events: Rows = (),
        *,
        detention_header: Sequence[str] = DETENTION_HEADER,
        event_header: Sequence[str] = EVENT_HEADER,
        folder: str = "records",
    ) -> Path:
        root = tmp_path / folder
        write_csv(root / "detentions.csv", detention_header, detentions)
        write_csv(root / "events.csv", event_header, events)
        return root

    return make
