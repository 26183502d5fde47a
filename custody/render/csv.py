"""CSV files, safe to open in a spreadsheet.

A text cell that begins with `=`, `+`, `-`, `@`, tab or carriage return is one Excel and
LibreOffice would run as a formula, so it is prefixed with a single quote (OWASP "CSV
injection"). A spreadsheet whose list separator is `;` (or that splits on tabs) cuts a
cell at those characters whatever the quoting, so `C-0002;=1+1` would open as two cells,
the second the formula `=1+1`: a formula character just after a `;` or a tab gets the
same quote (`C-0002;'=1+1`). Datetimes are ISO 8601 UTC with `Z`; numbers stay numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import polars as pl

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


# ISO 8601: UTC instants with `Z`; UK local times with their offset (GMT +00:00 or BST +01:00).
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


BATCH_ROWS = 250_000
"""Rows of a lazy frame written at a time."""

_FORMULA_START = r"^[=+\-@\t\r]"
# A formula character right after a character some spreadsheets split cells at.
_FORMULA_AFTER_SEPARATOR = r"([;\t])([=+\-@])"


def _inert_text(text: pl.Expr) -> pl.Expr:
    """Text with a value a spreadsheet would run as a formula made plain text."""
    inner = text.str.replace_all(_FORMULA_AFTER_SEPARATOR, "${1}'${2}")
    return pl.when(inner.str.contains(_FORMULA_START)).then(pl.lit("'") + inner).otherwise(inner)


def csv_safe(frame: FrameT) -> FrameT:
    """Every text column made inert; datetimes as ISO 8601 UTC with `Z`; numbers left as numbers."""
    schema = frame.collect_schema()
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            utc = pl.col(name).dt.convert_time_zone("UTC") if dtype.time_zone else pl.col(name)
            exprs.append(utc.dt.strftime(UTC_FORMAT).alias(name))
        elif isinstance(dtype, pl.String | pl.Enum | pl.Categorical):
            exprs.append(_inert_text(pl.col(name).cast(pl.String)).alias(name))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


def write_csv(frame: pl.DataFrame | pl.LazyFrame, path: Path, *, for_excel: bool = False) -> None:
    """The frame as CSV (UTF-8, `\\n` line ends). `for_excel`: with a UTF-8 byte order mark
    first, which Excel on Windows needs to read the file as UTF-8 when it is opened by
    double-click (without it, "é" shows as "Ã©"); machine files go without, since many
    readers would make the mark part of the first column's name.
    A lazy frame (a scan of the findings, which can be millions of rows) is written
    `BATCH_ROWS` rows at a time: polars' own streaming sink held several times more in
    memory (4.9 GB for the findings of a million records, against 1.1 GB) and was no faster."""
    if isinstance(frame, pl.DataFrame):
        csv_safe(frame).write_csv(path, include_header=True, line_terminator="\n", null_value="", include_bom=for_excel)
        return
    rows = frame.select(pl.len()).collect().item()
    with path.open("wb") as out:
        for start in range(0, max(rows, 1), BATCH_ROWS):
            first = start == 0
            csv_safe(frame.slice(start, BATCH_ROWS).collect()).write_csv(
                out, include_header=first, line_terminator="\n", null_value="", include_bom=for_excel and first
            )
