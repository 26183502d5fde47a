"""Large record sets, checked in batches of children.

A national extract (ten million records, a hundred million events) does not fit in memory
as loaded tables and facts. Every rule reads one custody record's own rows, and every
check the loader makes across rows (a repeated custody_record_id, an event whose record
is missing or was rejected) compares rows of the same custody_record_id. So the record
set can be cut into batches that each hold whole custody records with all their events,
and each batch is loaded, validated and evaluated exactly as a small record set would be.

Batches are ranges of children (person_id), each about `records_per_batch` records, and
a child's records are never split: the facts, and so the findings, come in child order
within a batch, and the batches follow each other in that same order. Rows without a
custody_record_id, and events whose custody_record_id is in no detentions row, go to the
first batch, where the loader reports them as it always does. Row numbers are the file's.

Only Parquet record sets are read this way (a filter is pushed into the scan of each
table); other formats are read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custody.timeparse import is_nested

BATCH_RECORDS = 1_000_000
"""Records per batch by default: a million records peak at about 2.5 GB."""

_ID = "custody_record_id"


@dataclass(frozen=True)
class Batch:
    """Which rows of each table belong to one batch: a filter over the file's own columns."""

    index: int
    detentions: pl.Expr
    events: pl.Expr


def _clean_id(column: str) -> pl.Expr:
    """An id as the loader reads it: as text, trimmed, blank as missing."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


def _column(schema: pl.Schema, name: str) -> str | None:
    """The file's column that the loader reads as contract column `name` (None if absent or odd)."""
    for column, dtype in schema.items():
        if column.replace("\ufeff", "").strip().lower() == name:
            return None if is_nested(dtype) or dtype == pl.Binary else column
    return None


def plan_batches(files: dict[str, Path], records_per_batch: int = BATCH_RECORDS) -> list[Batch] | None:
    """The batches to check `files` in, or None to read the record set whole.

    None when either table is not Parquet, when detentions has at most `records_per_batch`
    rows, or when the files cannot be planned (the loader then reports the problem).
    """
    if records_per_batch < 1:
        raise ValueError(f"records_per_batch must be 1 or more, not {records_per_batch}")
    if any(path.suffix.lower() != ".parquet" for path in files.values()):
        return None
    try:
        detentions = pl.scan_parquet(files["detentions"])
        if detentions.select(pl.len()).collect().item() <= records_per_batch:
            return None
        det_schema = detentions.collect_schema()
        ev_schema = pl.scan_parquet(files["events"]).collect_schema()
    except Exception:  # a damaged file: the loader says what is wrong with it
        return None
    det_id, person, ev_id = _column(det_schema, _ID), _column(det_schema, "person_id"), _column(ev_schema, _ID)
    if det_id is None or person is None or ev_id is None:
        return None

    rows = detentions.select(_clean_id(det_id).alias("id"), _clean_id(person).alias("person")).collect()
    # A record belongs to its child; rows repeating an id with different children go with the
    # first of them, so that the loader sees every row of that id together.
    records = rows.drop_nulls("id").group_by("id").agg(pl.col("person").min())
    children = (
        records.group_by("person")
        .len()
        .sort("person", nulls_last=False)
        .with_columns(part=((pl.col("len").cum_sum() - pl.col("len")) // records_per_batch).cast(pl.UInt32))
    )
    parts = (
        records.join(children.select("person", "part"), on="person", how="left", nulls_equal=True)
        .group_by("part")
        .agg("id")
        .sort("part")
    )
    every_id = records["id"].implode()
    batches = []
    for index, ids in enumerate(parts["id"]):
        mine = ids.implode()
        det_keep = _clean_id(det_id).is_in(mine)
        ev_keep = _clean_id(ev_id).is_in(mine)
        if index == 0:
            det_keep = det_keep | _clean_id(det_id).is_null()
            ev_keep = ev_keep | _clean_id(ev_id).is_null() | ~_clean_id(ev_id).is_in(every_id)
        batches.append(Batch(index=index, detentions=det_keep, events=ev_keep))
    return batches if len(batches) > 1 else None
