"""How the loader names and reads columns: shared by the loader and the batch planner, so
that both see a file's columns and ids exactly alike."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

ROW = "_row"
"""Name of the row-number column in the loaded tables."""


def clean_name(name: str) -> str:
    return name.replace("\ufeff", "").strip()


def looks_like_a_name(text: str) -> bool:
    """Whether a header cell can be quoted in an error as a column name: short, of few words
    and without digits. A file without a header row has a record in its place (an id, a
    date, a note), which an error must never quote."""
    return bool(text.strip()) and len(text) <= 40 and len(text.split()) <= 4 and not any(c.isdigit() for c in text)


def source_column(names: Iterable[str], name: str) -> str | None:
    """The file's column (of `names`) that is read as column `name`: names match once trimmed,
    case-insensitively, as `_normalise_columns` matches them. None if there is none."""
    return next((column for column in names if clean_name(column).lower() == name), None)


def id_as_read(column: str) -> pl.Expr:
    """An id column's values as the loader reads them (`as_text`, then `_clean_values`): as
    text, trimmed, blank as missing. For a file column of a scalar type."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)
