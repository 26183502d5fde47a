"""Which way round a column's slash dates are written: never guessed.

The contract reads `DD/MM/YYYY` (UK order). A column of slash dates whose values prove
another order cannot be read safely: a first part over 12 proves day first, a second part
over 12 proves month first (as US-locale spreadsheets write them). A column proven month
first, or proven both ways, stops the run with one sentence naming the file and column:
read as day first, its dates up to the 12th of a month would be silently wrong. A column
where every value is ambiguous (both parts 12 or under) is read day first, as the
contract says.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from custody.errors import InputError

_SLASH = r"^\s*([0-9]{1,2})/([0-9]{1,2})/[0-9]{4}"


def check_slash_order(frame: pl.DataFrame, columns: list[str], path: Path, row: str) -> None:
    """Raise `InputError` if a text column of `columns` holds slash dates proven month first
    or written both ways; `row` names the column of the file's row numbers."""
    for column in columns:
        if column not in frame.columns or frame.schema[column] != pl.String:
            continue
        parts = frame.select(
            pl.col(row),
            pl.col(column).str.extract(_SLASH, 1).cast(pl.Int32, strict=False).alias("first"),
            pl.col(column).str.extract(_SLASH, 2).cast(pl.Int32, strict=False).alias("second"),
        ).drop_nulls(["first", "second"])
        day_first = parts.filter((pl.col("first") > 12) & (pl.col("second") <= 12))
        month_first = parts.filter((pl.col("second") > 12) & (pl.col("first") <= 12))
        if month_first.is_empty():
            continue
        at = int(month_first[row].min())  # type: ignore[arg-type]
        if day_first.is_empty():
            problem = (
                f"has dates written month first (MM/DD/YYYY) in {_rows(month_first.height)}, the first at row {at}"
            )
        else:
            problem = (
                f"mixes dates written day first ({_rows(day_first.height)}) and month first "
                f"({_rows(month_first.height)}, the first at row {at})"
            )
        raise InputError(
            f"{path}: column {column} {problem}; the checker reads DD/MM/YYYY and will not guess: "
            "write the dates as YYYY-MM-DD (or all as DD/MM/YYYY) and check again."
        )


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"
