"""Which way round a column's slash dates are written: never guessed.

The contract reads `DD/MM/YYYY` (UK order) unless `--date-order mdy` declares the record
set's slash dates month first. A first part over 12 proves day first, a second part over 12
proves month first (as US-locale spreadsheets write them). A column proven the other way
from the order in force, or proven both ways, stops the run with one sentence naming the
file, the column and the option: read the wrong way round, its dates up to the 12th of a
month would be silently wrong. A column where every value is ambiguous (both parts 12 or
under) is read in the order in force.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from custody.errors import InputError
from custody.read.timeparse import DateOrder

_SLASH = r"^\s*([0-9]{1,2})/([0-9]{1,2})/[0-9]{4}"


def check_slash_order(frame: pl.DataFrame, columns: list[str], path: Path, row: str, order: DateOrder = "dmy") -> None:
    """Raise `InputError` if a text column of `columns` holds slash dates proven the other
    way round from `order`, or written both ways; `row` names the file's row numbers."""
    for column in columns:
        if column not in frame.columns or frame.schema[column] != pl.String:
            continue
        if not frame[column].str.contains("/", literal=True).any():
            continue  # no slash dates (ISO dates): nothing to tell apart, and no pattern to run
        parts = frame.select(
            pl.col(row),
            pl.col(column).str.extract(_SLASH, 1).cast(pl.Int32, strict=False).alias("first"),
            pl.col(column).str.extract(_SLASH, 2).cast(pl.Int32, strict=False).alias("second"),
        ).drop_nulls(["first", "second"])
        day_first = parts.filter((pl.col("first") > 12) & (pl.col("second") <= 12))
        month_first = parts.filter((pl.col("second") > 12) & (pl.col("first") <= 12))
        if not day_first.is_empty() and not month_first.is_empty():
            raise InputError(
                f"{path}: column {column} mixes dates written day first ({_rows(day_first.height)}) and month "
                f"first ({_rows(month_first.height)}, the first at row {_first_row(month_first, row)}); the "
                "checker will not guess: write them all one way (YYYY-MM-DD is safest) and check again."
            )
        if order == "dmy" and not month_first.is_empty():
            raise InputError(
                f"{path}: column {column} has dates written month first (MM/DD/YYYY) in "
                f"{_rows(month_first.height)}, the first at row {_first_row(month_first, row)}; the checker "
                "reads DD/MM/YYYY and will not guess: add --date-order mdy if the record set writes its dates "
                "month first."
            )
        if order == "mdy" and not day_first.is_empty():
            raise InputError(
                f"{path}: column {column} has dates written day first (DD/MM/YYYY) in "
                f"{_rows(day_first.height)}, the first at row {_first_row(day_first, row)}, but --date-order mdy "
                "says month first: leave out --date-order mdy, or correct those dates."
            )


def _first_row(rows: pl.DataFrame, row: str) -> int:
    return int(rows[row].min())  # type: ignore[arg-type]


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"
