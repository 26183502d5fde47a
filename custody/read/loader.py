"""Reads a record set as the data contract describes it, and says what it could not use.

    record_set = load_record_set(Path("sample"))            # a folder
    record_set = load_record_set((detentions, events))      # or the two files

A record set is two tables, `detentions` and `events`, each a CSV, Parquet,
NDJSON/JSONL or XLSX file (DATA-CONTRACT.md). Reading is one vectorised pass per
table; nothing here runs Python per row. polars works outside the interpreter lock, so the
two tables are read, and the events' columns parsed while detentions are checked, on two
threads.

What happens to a problem (the `action` column of `data_quality`):

- `row_rejected`: the row is not used at all. Detentions: no custody_record_id,
  no person_id, a repeated custody_record_id. Events: no custody_record_id, one
  not among the loaded detentions, an unusable event_time or event_type.
- `value_unusable`: the row is used and that value is treated as missing (set to
  null), so the rules that need it report `cannot_assess` for that record.
- `warning`: the row is used as read, but a person should look at it (a line
  that was not valid UTF-8).

A problem with the input as a whole (no such file, a missing required column, a
file that is not a table) raises `InputError` instead.

Row numbers (`row` in data_quality, `_row` in the loaded tables) are the ones a
person sees in the file: CSV and XLSX count the header as row 1, so the first
record is row 2; NDJSON/JSONL rows are line numbers; Parquet rows count from 1.
Rows with no value at all (blank lines, empty spreadsheet rows) are skipped and
not counted.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from custody.contract import (
    DATA_QUALITY_SCHEMA,
    EVENT_DETAILS,
    MHA_POWERS,
    TABLES,
    ColumnSpec,
    polars_schema,
)
from custody.errors import InputError
from custody.read.batches import Batch
from custody.read.columns import ROW, clean_name, looks_like_a_name
from custody.read.dates import check_slash_order
from custody.read.files import FOLDER, not_a_regular_file
from custody.read.plausible import IMPLAUSIBLE_LABELS, Plausibility, implausible_events
from custody.read.sealed import PieceCipher
from custody.read.taint import taint_of
from custody.read.timeparse import ISSUE_LABELS as VALUE_ISSUE_LABELS
from custody.read.timeparse import DateOrder, as_text, parse_bools, parse_dates, parse_datetimes
from custody.read.xlsx_formulas import formula_cells

SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".xlsx": "xlsx",
}
_SUFFIX_LIST = ".csv, .parquet, .ndjson, .jsonl or .xlsx"
_FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet", "ndjson": "NDJSON", "xlsx": "an Excel workbook"}

REJECTED = "row_rejected"
UNUSABLE = "value_unusable"
WARNING = "warning"

NOT_UTF8 = "not valid UTF-8; read as Windows-1252: check the text"

ISSUE_LABELS: dict[str, str] = {
    **VALUE_ISSUE_LABELS,
    "missing_id": "missing",
    "missing_person": "missing",
    "exact_duplicate": "exact duplicate of an earlier row",
    "conflicting_duplicate": "repeated with different values",
    "orphan": "not in detentions",
    "parent_rejected": "record rejected in detentions",
    "missing_value": "missing",
    "unknown_value": "not an allowed value",
    "detail_not_allowed": "not allowed for the event_type",
    "not_utf8": "not valid UTF-8 (read as Windows-1252)",
    "ragged_row": "more fields than the header (not read)",
    "formula_absent": "a spreadsheet formula with no saved result",
    "formula_stale": "a spreadsheet formula whose result may be stale",
    "formula_saved": "a spreadsheet formula (saved result read)",
    **IMPLAUSIBLE_LABELS,
}
"""Every `issue` code the loader counts, with a short label (the keys of `RecordSet.issues`)."""

_ID = "custody_record_id"
_DQ_WORK_SCHEMA = pl.Schema({**dict(DATA_QUALITY_SCHEMA.items()), "_issue": pl.String()})
_MAX_ROWS_LISTED = 5
_HASH_SEED = 20261202


# ---------------------------------------------------------------- the result


@dataclass
class RecordSet:
    """A loaded record set: the usable rows of both tables, and every problem found."""

    detentions: pl.DataFrame
    """`polars_schema("detentions")` columns in contract order (datetimes as UTC instants),
    then any extra columns as read, then `_row` (Int64). One row per custody record."""

    events: pl.DataFrame
    """`polars_schema("events")` columns, then extra columns, then `_row`. Every event
    belongs to a record in `detentions`."""

    data_quality: pl.DataFrame
    """Exactly `DATA_QUALITY_SCHEMA`: one row per rejected row, unusable value or warning."""

    files: dict[str, Path]
    """Table name -> the file read."""

    rows_read: dict[str, int]
    rows_used: dict[str, int]
    rows_rejected: dict[str, int]
    """Per table; rows_read == rows_used + rows_rejected."""

    issues: dict[str, int] = field(default_factory=dict)
    """Data-quality rows counted by kind, keyed "table.column: label" (most frequent first)."""

    _matched: tuple[pl.DataFrame, pl.DataFrame, pl.Series] | None = field(default=None, repr=False, compare=False)
    """(detentions, events, each event's row in those detentions) as the loader matched them."""

    def event_rows(self) -> pl.Series | None:
        """Each event's record: its row in `detentions` (UInt32), as the loader matched them
        while checking the events; None once either table is not the one loaded (a subset,
        say, or a copy), whose events the facts then match to their records again."""
        if self._matched is None:
            return None
        detentions, events, rows = self._matched
        return rows if detentions is self.detentions and events is self.events else None

    def taint(self) -> pl.DataFrame:
        """Which inputs of which custody record could not be used (`custody.read.taint`)."""
        return taint_of(self.data_quality)

    def summary(self) -> dict[str, Any]:
        """Headline counts: records, events, children, rows read/used/rejected, issues."""
        return {
            "records": self.detentions.height,
            "events": self.events.height,
            "children": self.detentions["person_id"].n_unique() if self.detentions.height else 0,
            "rows_read": dict(self.rows_read),
            "rows_used": dict(self.rows_used),
            "rows_rejected": dict(self.rows_rejected),
            "issues": dict(self.issues),
        }


def load_record_set(
    source: Path | str | tuple[Path | str, Path | str],
    *,
    batch: Batch | None = None,
    date_order: DateOrder = "dmy",
    plausible: Plausibility | None = None,
) -> RecordSet:
    """Load a record set from a folder (holding `detentions.<ext>` and `events.<ext>`) or
    from two files (detentions first). Raises `InputError` for structural problems.

    With `batch` (from `custody.read.batches.plan_batches`, Parquet only), only that batch's rows
    are read, from its pieces; row numbers and the files reported stay those of the record set.
    `plausible`: how far from arrival an event may be before it is reported (default: 7 days
    after, court events excepted, and 24 hours before)."""
    files = find_tables(source)
    # polars lets go of the interpreter while it works: the two files are read at once, on two
    # cores. A problem with detentions is still reported before one with events.
    with ThreadPoolExecutor(max_workers=1) as pool:
        cipher = None if batch is None else batch.cipher
        reading_events = pool.submit(
            _read_table, files["events"], "events", None if batch is None else batch.events, cipher
        )
        detentions_raw = _read_table(
            files["detentions"], "detentions", None if batch is None else batch.detentions, cipher
        )
        events_raw = reading_events.result()
    for raw in (detentions_raw, events_raw):
        dated = [spec.name for spec in TABLES[raw.table] if spec.kind in ("date", "datetime")]
        check_slash_order(raw.frame, dated, raw.path, ROW, date_order)
    return _load(detentions_raw, events_raw, files, date_order, plausible)


def load_tables(
    detentions: pl.DataFrame,
    events: pl.DataFrame,
    files: dict[str, Path],
    *,
    plausible: Plausibility | None = None,
) -> RecordSet:
    """A record set from two tables already in memory in the contract's form (text columns
    named as the contract names them, and `_row`), as an input profile produces them: checked
    exactly as the same tables read from files. `files` names the file each table came from."""
    raws = [
        _RawTable(path=files[table], table=table, frame=_clean_values(frame, table), warnings=_empty_dq())
        for table, frame in (("detentions", detentions), ("events", events))
    ]
    return _load(raws[0], raws[1], files, "dmy", plausible)


def _load(
    detentions_raw: _RawTable,
    events_raw: _RawTable,
    files: dict[str, Path],
    date_order: DateOrder,
    plausible: Plausibility | None,
) -> RecordSet:
    # The events' own columns are parsed (on a second core) while events are matched to the
    # detentions rows and those are checked.
    with ThreadPoolExecutor(max_workers=1) as pool:
        parsing_events = pool.submit(_parse_events, events_raw, date_order)
        id_runs = events_raw.id_runs or _IdRuns.of(events_raw.frame[_ID])
        rows = _match_rows(id_runs, detentions_raw.frame[_ID])
        detentions, detention_dq, records = _check_detentions(detentions_raw, date_order)
        events_parsed = parsing_events.result()
    events, event_dq, record = _check_events(events_raw, events_parsed, _record_of_events(id_runs, rows, records))
    # Times far outside any detention (a typing error in a year or a month) are reported, not
    # turned into breaches: custody.read.plausible.
    plausible_kept, implausible_dq = implausible_events(
        detentions,
        events,
        events_raw.path,
        plausible or Plausibility(),
        arrival=detentions["arrival_time"].gather(record),
    )
    if plausible_kept is not None:
        events, record = events.filter(plausible_kept), record.filter(plausible_kept)

    data_quality = sort_data_quality(
        pl.concat(
            [detentions_raw.warnings, detention_dq, events_raw.warnings, event_dq, implausible_dq], how="vertical"
        )
    )
    issues = _count_issues(data_quality)

    rows_read = {"detentions": detentions_raw.frame.height, "events": events_raw.frame.height}
    rows_used = {"detentions": detentions.height, "events": events.height}
    return RecordSet(
        detentions=detentions,
        events=events,
        data_quality=data_quality.drop("_issue"),
        files=files,
        rows_read=rows_read,
        rows_used=rows_used,
        rows_rejected={table: rows_read[table] - rows_used[table] for table in rows_read},
        issues=issues,
        _matched=(detentions, events, record),
    )


def load_records(source: Path | str | tuple[Path | str, Path | str]) -> RecordSet:
    """A record set (a folder, or the detentions and events files) read and validated: the
    library's name for `load_record_set`."""
    return load_record_set(source)


def read_table_file(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]:
    """One table file as read, whatever its columns (for an input profile's export): CSV and
    XLSX cells as text, Parquet and NDJSON as typed, and `_row` as the loader numbers rows;
    for a workbook, its formula cells whose saved result cannot be trusted (`_row`, `column`
    as named in the file, `_cached`), else None; and the cells that were not valid UTF-8
    (read as Windows-1252: `_row`, `column`), else None."""
    _check_file(path)
    kind = SUFFIXES[path.suffix.lower()]
    frame, lossy = _READERS[kind](path)
    formulas = _formulas(path, frame) if kind == "xlsx" else None
    if formulas is not None:
        formulas = formulas.filter(pl.col("_issue") != "formula_saved")
    not_utf8 = _affected_rows(frame, lossy) if lossy is not None else None
    return (
        frame,
        formulas if formulas is not None and formulas.height else None,
        not_utf8 if not_utf8 is not None and not_utf8.height else None,
    )


def sort_data_quality(data_quality: pl.DataFrame) -> pl.DataFrame:
    """Data-quality rows in report order: detentions then events, by row (stable within a row)."""
    order = {"detentions": 0, "events": 1}
    return data_quality.sort(pl.col("table").replace_strict(order, return_dtype=pl.UInt8), "row", maintain_order=True)


# ---------------------------------------------------------------- finding the files


def find_tables(source: Path | str | tuple[Path | str, Path | str]) -> dict[str, Path]:
    """The detentions and events files of a source (a folder, or the two files)."""
    if isinstance(source, tuple):
        files = {"detentions": Path(source[0]), "events": Path(source[1])}
        for path in files.values():
            _check_file(path)
        return files

    folder = Path(source)
    if not folder.exists():
        raise InputError(
            f"{folder} does not exist: give the folder holding detentions and events files, or the two files."
        )
    _check_regular(folder, folder_allowed=True)
    if not folder.is_dir():
        raise InputError(
            f"{folder} is a file, not a folder: give the folder holding both tables, or name the events file too."
        )
    found: dict[str, list[Path]] = {table: [] for table in TABLES}
    for child in sorted(folder.iterdir()):
        table = child.stem.lower()
        if table in found and child.suffix.lower() in SUFFIXES and not child.is_dir():
            _check_file(child)  # a FIFO or a device of that name is refused, not passed over
            found[table].append(child)
    missing = [table for table, paths in found.items() if not paths]
    if missing:
        tables = " or ".join(missing)
        raise InputError(
            f"{folder} has no {tables} file: add {missing[0]}.csv (or .parquet, .ndjson, .jsonl, .xlsx)"
            f"{' and events.csv' if len(missing) == 2 else ''}, or name the files one by one."
        )
    for paths in found.values():
        if len(paths) > 1:
            names = " and ".join(path.name for path in paths)
            raise InputError(f"{folder} has both {names}: keep only one of them, or name the files one by one.")
    return {table: paths[0] for table, paths in found.items()}


def _check_file(path: Path) -> None:
    _check_regular(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{path} is not a file type the checker reads: save it as {_SUFFIX_LIST}.")


def _check_regular(path: Path, *, folder_allowed: bool = False) -> None:
    """A table must be a regular file: a FIFO would block the reader and a device never ends,
    so what `stat` says is checked before the file is ever opened."""
    try:
        kind = not_a_regular_file(path)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: check the path.") from None
    except OSError as error:
        raise InputError(f"{path} cannot be read ({error.strerror}): check the path and its permissions.") from None
    if kind == FOLDER and not folder_allowed:
        raise InputError(f"{path} is a folder: name a file, or give only the folder.")
    if kind not in (None, FOLDER):
        raise InputError(f"{path} is {kind}, not a file: save the table to a file and give that.")


# ---------------------------------------------------------------- reading one table


@dataclass
class _RawTable:
    """A table as read: contract columns (text unless the file typed them), extras, `_row`."""

    path: Path
    table: str
    frame: pl.DataFrame
    warnings: pl.DataFrame  # DATA_QUALITY_SCHEMA + _issue
    id_runs: _IdRuns | None = None
    """Events: custody_record_id as runs of equal ids, when found while cleaning."""


def _read_table(
    path: Path, table: str, pieces: tuple[Path, ...] | None = None, cipher: PieceCipher | None = None
) -> _RawTable:
    kind = SUFFIXES[path.suffix.lower()]
    if pieces is None:
        frame, lossy = _READERS[kind](path)
    elif kind == "parquet":
        frame, lossy = _read_pieces(path, pieces, cipher), None
    else:
        raise ValueError(f"only Parquet tables are read in batches, not {path.name}")
    formulas = _formulas(path, frame) if kind == "xlsx" and pieces is None else None
    if formulas is not None:
        frame = _without_formulas(frame, formulas)
    ragged = frame.select(ROW, _RAGGED) if _RAGGED in frame.columns else None
    frame = _normalise_columns(frame if ragged is None else frame.drop(_RAGGED), path, table)
    ragged_dq = None
    if ragged is not None:
        frame, ragged_dq = _without_ragged_rows(frame.join(ragged, on=ROW, how="left"), path, table)
    frame, id_runs = _cleaned(frame, table, id_runs=table == "events")
    # Rows without any value (blank lines, empty spreadsheet rows) hold no record: skip them.
    if frame[_ID].null_count():
        frame = frame.filter(pl.any_horizontal(pl.all().exclude(ROW).is_not_null()))
        id_runs = None
    warnings = _empty_dq() if formulas is None else _formula_dq(frame, formulas, path, table)
    if ragged_dq is not None:
        warnings = pl.concat([warnings, ragged_dq])
    if lossy is not None:
        lossy = _clean_values(_normalise_columns(lossy, path, table), table)
        affected = _affected_rows(frame, lossy.filter(pl.col(ROW).is_in(frame[ROW].implode())))
        if affected.height:
            warnings = _dq(
                affected.join(frame.select(ROW, _ID, *_event_type_col(table)), on=ROW, how="left"),
                path=path,
                table=table,
                column=pl.col("column"),
                value=None,
                reason=pl.lit(NOT_UTF8),
                action=WARNING,
                issue="not_utf8",
            )
    return _RawTable(path=path, table=table, frame=frame, warnings=warnings, id_runs=id_runs)


_FORMULA_REASONS = {
    "formula_absent": "is a spreadsheet formula with no saved result: type the value itself (it is not read)",
    "formula_stale": "is a spreadsheet formula whose saved result may be stale (the workbook asks to be "
    "recalculated when opened): type the value itself (it is not read)",
    "formula_saved": "is a spreadsheet formula: the result the spreadsheet saved is read; check it",
}


def _formulas(path: Path, frame: pl.DataFrame) -> pl.DataFrame | None:
    """The formula cells of an .xlsx table: `_row`, the file's column name, the cached value
    as read, and the issue (`custody.read.xlsx_formulas`). None if there are none."""
    cells = formula_cells(path)
    names = [c for c in frame.columns if c != ROW]
    found = [(cell.row, names[cell.column], f"formula_{cell.state}") for cell in cells if cell.column < len(names)]
    if not found:
        return None
    located = pl.DataFrame(found, schema={ROW: pl.Int64, "column": pl.String, "_issue": pl.String}, orient="row")
    values = frame.unpivot(index=ROW, on=sorted(set(located["column"])), variable_name="column", value_name="_cached")
    return located.join(values.with_columns(pl.col("_cached").cast(pl.String)), on=[ROW, "column"], how="left")


def _without_formulas(frame: pl.DataFrame, formulas: pl.DataFrame) -> pl.DataFrame:
    """Formula cells whose saved result cannot be trusted set to missing: they are not the record."""
    unread = formulas.filter(pl.col("_issue") != "formula_saved")
    blanks = [
        pl.when(pl.col(ROW).is_in(rows[ROW].implode())).then(None).otherwise(pl.col(column)).alias(column)
        for (column,), rows in unread.group_by("column")
    ]
    return frame.with_columns(blanks) if blanks else frame


def _formula_dq(frame: pl.DataFrame, formulas: pl.DataFrame, path: Path, table: str) -> pl.DataFrame:
    contract = {spec.name for spec in TABLES[table]}
    names = {
        name: clean_name(name).lower() if clean_name(name).lower() in contract else clean_name(name)
        for name in formulas["column"].unique()
    }
    named = formulas.with_columns(pl.col("column").replace_strict(names))
    located = named.join(frame.select(ROW, _ID, *_event_type_col(table)), on=ROW, how="inner")
    return _dq(
        located,
        path=path,
        table=table,
        column=pl.col("column"),
        value="_cached",
        reason=pl.col("column") + " " + pl.col("_issue").replace_strict(_FORMULA_REASONS),
        action=UNUSABLE,
        issue=pl.col("_issue"),
    ).with_columns(
        action=pl.when(pl.col("_issue") == "formula_saved").then(pl.lit(WARNING)).otherwise(pl.lit(UNUSABLE))
    )


def _event_type_col(table: str) -> list[str]:
    return ["event_type"] if table == "events" else []


_Reader = Callable[[Path], tuple[pl.DataFrame, pl.DataFrame | None]]
"""path -> (frame with `_row`, and when the file was not valid UTF-8 the same table read with
the bad bytes replaced by U+FFFD (same shape and column names), else None)."""


# polars and fastexcel quote the offending value in their errors (`...`, "..."): a cell of
# children's data, which must never reach a one-line error. Quoted spans are cut out
# (an unclosed one to the end: the value may run over many lines).
_QUOTED_VALUE = re.compile(r"`[^`]*(?:`|$)|\"[^\"]*(?:\"|$)")
_COLUMN_NAMED = re.compile(r"at column '([^'\n]*)'")


def _polars_problem(error: Exception) -> str:
    """The reader's error as a short phrase that names no value from the file."""
    text = str(error)
    if "not properly escaped" in text:
        column = _COLUMN_NAMED.search(text)
        return f"a quoted value{f' in column {column.group(1)!r}' if column else ''} is not closed"
    scrubbed = _QUOTED_VALUE.sub("(a value)", text)
    lines = [line.strip() for line in scrubbed.strip().splitlines() if line.strip()]
    problem = lines[0] if lines else type(error).__name__
    return problem.rstrip(".")[:200]


def _not_readable(path: Path, kind: str, error: Exception | str, fix: str) -> InputError:
    problem = error if isinstance(error, str) else _polars_problem(error)
    return InputError(f"{path} could not be read as {_FORMAT_NAMES[kind]} ({problem}): {fix}.")


def _sniff_text(path: Path, kind: str) -> None:
    """Check the file is a non-empty text file (from its first 64 KiB)."""
    with path.open("rb") as file:
        data = file.read(65536)
    if not data.strip() and path.stat().st_size <= len(data):
        if kind == "ndjson":
            return  # NDJSON has no header: an empty file is a table with no rows.
        raise _empty(path)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{path} is UTF-16 text: save it as UTF-8 ({_FORMAT_NAMES[kind]}) and try again.")
    if b"\x00" in data[:65536]:
        raise InputError(
            f"{path} is not a text file (it holds binary data): export the table as {_FORMAT_NAMES[kind]}."
        )


# Bytes that are not valid UTF-8 are read as Windows-1252 (what older UK systems
# export); the five bytes Windows-1252 leaves undefined are read as Latin-1.
def _windows_1252(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    text = "".join(bytes([byte]).decode("cp1252", errors="replace").replace("\ufffd", chr(byte)) for byte in bad)
    return text, error.end


codecs.register_error("custody-windows-1252", _windows_1252)


def _decode_mixed(data: bytes) -> tuple[bytes, bytes]:
    """(data with non-UTF-8 bytes read as Windows-1252, data with them replaced by U+FFFD), as UTF-8."""
    fixed = data.decode("utf-8", errors="custody-windows-1252").encode("utf-8")
    lossy = data.decode("utf-8", errors="replace").encode("utf-8")
    return fixed, lossy


def _same_names(lossy: pl.DataFrame, fixed: pl.DataFrame) -> pl.DataFrame:
    return lossy.rename(dict(zip(lossy.columns, fixed.columns, strict=True)))


def _affected_rows(fixed: pl.DataFrame, lossy: pl.DataFrame) -> pl.DataFrame:
    """Rows (and their first column) where the two decodings differ."""
    columns = [c for c in fixed.columns if c != ROW and fixed[c].dtype == pl.String]
    if not columns:
        return pl.DataFrame(schema={ROW: pl.Int64, "column": pl.String})
    differs = [fixed[c].ne_missing(lossy[c]) for c in columns]
    first = pl.select(
        pl.coalesce([pl.when(d).then(pl.lit(c)) for c, d in zip(columns, differs, strict=True)])
    ).to_series()
    return pl.DataFrame({ROW: fixed[ROW], "column": first}).filter(pl.col("column").is_not_null())


def _with_row_numbers(frame: pl.DataFrame, first: int) -> pl.DataFrame:
    return frame.with_row_index(ROW, offset=first).with_columns(pl.col(ROW).cast(pl.Int64))


def _check_reserved(frame: pl.DataFrame, path: Path) -> None:
    for name in frame.columns:
        if clean_name(name).lower() == ROW:
            raise InputError(f"{path} has a column named '{name}', which the checker uses itself: rename it.")
        # polars renames a repeated header name to NAME_duplicated_N
        repeated = name.rsplit("_duplicated_", 1)[0]
        if repeated != name and repeated in frame.columns:
            if not looks_like_a_name(clean_name(repeated)):
                raise InputError(f"{path} has two columns with the same name: {_NOT_A_HEADER}")
            raise InputError(f"{path} has two columns named '{repeated}': keep one.")


def _read_csv(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    fix = "check it is a comma-separated table with a header row, or export it again"
    _sniff_text(path, "csv")
    try:
        frame = pl.read_csv(path, infer_schema=False, raise_if_empty=True)
    except pl.exceptions.NoDataError as error:
        raise _empty(path) from error
    except pl.exceptions.ComputeError as error:
        if "more fields than defined" in str(error):
            return _read_ragged_csv(path, fix), None
        if "utf-8" not in str(error).lower():
            raise _not_readable(path, "csv", error, fix) from error
        fixed, lossy = _decode_mixed(path.read_bytes())
        try:
            frame = pl.read_csv(fixed, infer_schema=False)
            lossy_frame = pl.read_csv(lossy, infer_schema=False)
        except pl.exceptions.PolarsError as error2:
            raise _not_readable(path, "csv", error2, fix) from error2
        _check_reserved(frame, path)
        return _with_row_numbers(frame, 2), _with_row_numbers(_same_names(lossy_frame, frame), 2)
    except pl.exceptions.PolarsError as error:
        raise _not_readable(path, "csv", error, fix) from error
    _check_reserved(frame, path)
    return _with_row_numbers(frame, 2), None


_RAGGED = "\x1fragged"
"""On a CSV row with more fields than the header, what is wrong with it (`_read_ragged_csv`)."""


def _read_ragged_csv(path: Path, fix: str) -> pl.DataFrame:
    """A CSV file some of whose rows have more fields than its header (a comma inside a value
    that is not in quotes, most often): read whole, each such row marked in `_RAGGED` with its
    number of fields. Which value the extra field belongs to cannot be known, so none of that
    row's values is used (`_without_ragged_rows`); the rest of the file is read as usual."""
    try:
        frame = pl.read_csv(path, infer_schema=False, raise_if_empty=True, truncate_ragged_lines=True)
        # Polars and Python's csv module count the same records (blank lines and quoted line
        # breaks alike); the first is the header.
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            fields = [len(record) for record in csv.reader(handle)][1:]
    except (pl.exceptions.PolarsError, csv.Error) as error:
        raise _not_readable(path, "csv", error, fix) from error
    if len(fields) != frame.height:
        raise _not_readable(path, "csv", ValueError("rows could not be matched"), fix)
    _check_reserved(frame, path)
    counts = pl.Series(_RAGGED, fields, dtype=pl.Int64)
    said = pl.format("has {} fields where the header has {}", counts, pl.lit(frame.width))
    return _with_row_numbers(frame, 2).with_columns(pl.when(counts > frame.width).then(said).alias(_RAGGED))


def _without_ragged_rows(frame: pl.DataFrame, path: Path, table: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` (normalised) with every value of its ragged rows but the id set to missing,
    and a data-quality row for each: the row is then reported, and rejected, as any row
    missing its values is, never read with its values shifted."""
    ragged = pl.col(_RAGGED).is_not_null()
    rows = frame.filter(ragged)
    warnings = _dq(
        rows.with_columns(pl.lit(None, dtype=pl.String).alias("event_type")) if table == "events" else rows,
        path=path,
        table=table,
        column=None,
        value=None,
        reason=pl.col(_RAGGED) + ": none of its values is read (is a comma inside a value not in quotes?)",
        action=REJECTED,
        issue="ragged_row",
    )
    blanked = [
        pl.when(ragged).then(None).otherwise(pl.col(c)).alias(c) for c in frame.columns if c not in (ROW, _ID, _RAGGED)
    ]
    return frame.with_columns(blanked).drop(_RAGGED), warnings


def _empty(path: Path) -> InputError:
    return InputError(
        f"{path} is empty: it needs a header row naming the columns (see `custody schema`), even with no rows."
    )


def _read_parquet(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    if path.stat().st_size == 0:
        raise _empty(path)
    fix = "check the file is complete, or export it again"
    try:
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
        if any(clean_name(name).lower() == ROW for name in names):
            frame = pl.read_parquet(path)  # refused below, once read, as any other file
        else:
            # Row groups decoded and numbered on all cores, then made one chunk per column:
            # a select or a filter would otherwise copy mismatched chunks into line again and
            # again, and polars 2.1 can panic on some many-chunk frames (as _read_pieces).
            numbered = (
                scan.with_row_index(ROW, offset=1)
                .with_columns(pl.col(ROW).cast(pl.Int64))
                .collect(engine="streaming")
                .rechunk()
            )
            _check_reserved(numbered.drop(ROW), path)
            return numbered, None
    except InputError:
        raise
    except Exception as error:  # polars and arrow raise several kinds for a damaged file
        raise _not_readable(path, "parquet", error, fix) from error
    _check_reserved(frame, path)
    return _with_row_numbers(frame, 1), None


def _read_pieces(path: Path, pieces: tuple[Path, ...], cipher: PieceCipher | None = None) -> pl.DataFrame:
    """One batch's rows of Parquet table `path`, from the pieces the planner split it into
    (sealed ones through `cipher`)."""
    try:
        schema = pl.scan_parquet(path).collect_schema()
    except Exception as error:
        raise _not_readable(path, "parquet", error, "check the file is complete, or export it again") from error
    _check_reserved(pl.DataFrame(schema=schema), path)
    if not pieces:
        return pl.DataFrame(schema={**schema, ROW: pl.Int64()})
    if cipher is not None:
        return pl.concat([cipher.read(piece) for piece in pieces]).rechunk()
    return pl.scan_ipc(list(pieces)).collect().rechunk()  # polars 2.1 can panic on some multi-chunk frames


def _read_ndjson(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    _sniff_text(path, "ndjson")
    data = path.read_bytes()
    if not data.strip():
        # NDJSON has no header: an empty file is a table with no rows.
        return pl.DataFrame(schema={ROW: pl.Int64}), None
    try:
        return _parse_ndjson(path, data), None
    except _NotUtf8:
        fixed, lossy = _decode_mixed(data)
        frame = _parse_ndjson(path, fixed)
        return frame, _same_names(_parse_ndjson(path, lossy), frame)


class _NotUtf8(Exception):
    pass


def _parse_ndjson(path: Path, data: bytes) -> pl.DataFrame:
    try:
        frame = pl.read_ndjson(data, infer_schema_length=None)
    except pl.exceptions.PolarsError as error:
        if "utf-8" in str(error).lower():
            raise _NotUtf8 from error
        # Either a line is not a JSON object, or a key holds values of different JSON types
        # on different lines (e.g. 7 and "8"): then read every value as text.
        keys = _json_keys(path, data, error)
        frame = pl.read_ndjson(data, schema=dict.fromkeys(keys, pl.String()))
    _check_reserved(frame, path)
    # Row numbers are line numbers; polars skips blank lines, so count them back in.
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    if lines == frame.height:
        return _with_row_numbers(frame, 1)
    text = pl.Series([data.decode("utf-8", errors="replace")]).str.split("\n").explode()
    line_numbers = (text.str.strip_chars().str.len_bytes() > 0).arg_true().cast(pl.Int64) + 1
    if line_numbers.len() != frame.height:
        raise _not_readable(path, "ndjson", "its lines could not be matched to records", _NDJSON_FIX)
    return frame.with_columns(line_numbers.alias(ROW))


_NDJSON_FIX = 'each line must be one JSON object, e.g. {"custody_record_id": "R1", ...}'


def _json_keys(path: Path, data: bytes, error: Exception) -> list[str]:
    """Only when polars could not read the file: its keys, or which line is not a JSON object
    (Python, line by line)."""
    keys: dict[str, None] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise _not_readable(path, "ndjson", f"line {number} is not valid JSON", _NDJSON_FIX) from error
        if not isinstance(value, dict):
            raise _not_readable(path, "ndjson", f"line {number} is not a JSON object", _NDJSON_FIX) from error
        keys.update(dict.fromkeys(value))
    return list(keys)


# Excel's own limit of rows on a worksheet; and the most sheet XML read (uncompressed): a
# workbook claiming more is refused before it is loaded (loading it whole took 3.5 GB).
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_SHEET_BYTES = 1 << 30
_XLSX_DIMENSION = re.compile(rb'<dimension ref="[A-Z]+[0-9]+(?::[A-Z]+([0-9]+))?"')


def _check_xlsx_size(path: Path) -> None:
    """Refuse a workbook whose first sheet holds more rows than Excel allows, or more XML
    than `XLSX_MAX_SHEET_BYTES`, reading only the zip directory and the sheet's first bytes."""
    fix = "export the records as CSV or Parquet instead"
    try:
        with zipfile.ZipFile(path) as book:
            sheets = sorted(
                (i for i in book.infolist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", i.filename)),
                key=lambda i: int(re.sub(r"\D", "", i.filename.rsplit("/", 1)[1])),
            )
            if not sheets:
                return
            if sheets[0].file_size > XLSX_MAX_SHEET_BYTES:
                raise InputError(f"{path} is larger than an .xlsx record set can be read: {fix}.")
            with book.open(sheets[0]) as sheet:
                head = sheet.read(4096)
    except (zipfile.BadZipFile, OSError):
        return  # the reader says what is wrong with it
    dimension = _XLSX_DIMENSION.search(head)
    if dimension and dimension.group(1) and int(dimension.group(1)) > XLSX_MAX_ROWS:
        raise InputError(f"{path} claims more rows than Excel allows ({XLSX_MAX_ROWS:,}): {fix}.")


def _read_xlsx(path: Path) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    # The first sheet, with its header in row 1; every cell as text (dates as ISO text).
    _check_xlsx_size(path)
    try:
        frame = pl.read_excel(path, infer_schema_length=0, drop_empty_rows=False, raise_if_empty=True)
    except pl.exceptions.NoDataError as error:
        raise _empty(path) from error
    except Exception as error:  # fastexcel raises its own errors for damaged workbooks
        raise _not_readable(path, "xlsx", error, "check it is an .xlsx workbook, or save it again") from error
    assert isinstance(frame, pl.DataFrame)
    _check_reserved(frame, path)
    return _with_row_numbers(frame, 2), None


_READERS: dict[str, _Reader] = {
    "csv": _read_csv,
    "parquet": _read_parquet,
    "ndjson": _read_ndjson,
    "xlsx": _read_xlsx,
}


# ---------------------------------------------------------------- columns and values


_NOT_A_HEADER = (
    "its first row does not look like column names (is the header row missing?): give the file a header "
    "row with the contract's column names (see `custody schema`)."
)
"""The end of an error about a header whose cells look like a record's values: never quoted."""


def _normalise_columns(frame: pl.DataFrame, path: Path, table: str) -> pl.DataFrame:
    """Contract column names matched case-insensitively; extras keep their (trimmed) names."""
    specs = TABLES[table]
    contract = {spec.name for spec in specs}
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in frame.columns:
        if name == ROW:
            continue
        clean = clean_name(name)
        new = clean.lower() if clean.lower() in contract else clean
        key = new.lower()
        if key in seen:
            if looks_like_a_name(clean):
                raise InputError(
                    f"{path} has two columns named '{seen[key]}' and '{clean}' (column names are "
                    "case-insensitive): keep one."
                )
            raise InputError(f"{path} has two columns with the same name: {_NOT_A_HEADER}")
        seen[key] = clean
        renames[name] = new
    frame = frame.rename(renames)

    missing = [spec.name for spec in specs if spec.required and spec.name not in frame.columns]
    if frame.columns == [ROW]:
        missing = []  # an empty NDJSON file: no rows, so nothing is missing
    if missing:
        listed = ", ".join(f"'{name}'" for name in missing)
        found = [c for c in frame.columns if c != ROW]
        for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if len(found) == 1 and separator in found[0]:
                raise InputError(f"{path} is separated by {name}, not commas: save it as comma-separated CSV.")
        if found and not all(looks_like_a_name(clean_name(name)) for name in found):
            raise InputError(f"{path} has no {'column' if len(missing) == 1 else 'columns'} {listed}: {_NOT_A_HEADER}")
        found_text = f" (its columns are: {', '.join(found)})" if 0 < len(found) <= 12 else ""
        noun, pronoun = ("column", "it") if len(missing) == 1 else ("columns", "them")
        raise InputError(
            f"{path} has no {noun} {listed}{found_text}: add {pronoun} (column names are case-insensitive), "
            "or see `custody schema`."
        )
    absent = [pl.lit(None, dtype=pl.String).alias(spec.name) for spec in specs if spec.name not in frame.columns]
    extras = [c for c in frame.columns if c not in contract and c != ROW]
    return frame.with_columns(absent).select(*(spec.name for spec in specs), *extras, ROW)


def _clean_values(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Contract text columns as text whatever the file typed; free text trimmed, blank text missing.

    Columns that are parsed (dates, times, booleans, enums) are left as read: their
    parsers ignore surrounding white space and read blank as missing, which spares a
    pass over the largest columns.
    """
    return _cleaned(frame, table)[0]


def _cleaned(frame: pl.DataFrame, table: str, *, id_runs: bool = False) -> tuple[pl.DataFrame, _IdRuns | None]:
    """`_clean_values`, and with `id_runs` the custody_record_id column as runs of equal ids
    (`_IdRuns`, as cleaned), whose ids stand for the whole column when it is checked."""
    specs = {spec.name: spec for spec in TABLES[table]}
    as_read = [
        as_text(frame[spec.name])
        for spec in specs.values()
        if spec.kind in ("string", "enum") and frame[spec.name].dtype != pl.String
    ]
    if as_read:
        frame = frame.with_columns(as_read)
    free_text = [
        name
        for name in frame.columns
        if frame[name].dtype == pl.String and (name not in specs or specs[name].kind == "string")
    ]
    # Rewrite only the columns that need it: on a clean extract of millions of rows, copying
    # every id to trim nothing would be the loader's largest allocation. Which columns need it
    # is asked of all of them at once (one parallel pass): a value trimming would shorten, or blank.
    runs = _IdRuns.of(frame[_ID]) if id_runs and _ID in free_text else None
    if not free_text:
        return frame, runs

    def needs_trim(values: pl.Expr) -> pl.Expr:
        present = values.drop_nulls()
        return ((present.str.strip_chars().str.len_bytes() != present.str.len_bytes()) | (present == "")).any()

    # Each run of equal ids is one value to check: a million records' ids, not their events'.
    checks = frame.select(needs_trim(pl.col(name)).alias(name) for name in free_text if runs is None or name != _ID)
    untidy = [name for name in checks.columns if checks[name].item()]
    if runs is not None and runs.run_ids.to_frame().select(needs_trim(pl.col(_ID))).item():
        untidy.append(_ID)
        runs = None  # the ids change: their runs are found again once they are clean
    if not untidy:
        return frame, runs
    trimmed = pl.col(untidy).str.strip_chars()
    return frame.with_columns(pl.when(trimmed.str.len_bytes() > 0).then(trimmed).name.keep()), runs


# ---------------------------------------------------------------- parsing values


def _parse_enum(values: pl.Series, spec: ColumnSpec) -> pl.DataFrame:
    """Case-insensitive, trimmed match against the allowed values (`Bail_Refused ` -> bail_refused)."""
    dtype = pl.Enum(list(spec.enum_values))
    parsed = values.cast(dtype, strict=False)  # exact matches: the common case, one cheap pass
    reason = pl.repeat(None, len(values), dtype=pl.String, eager=True)
    issue = pl.repeat(None, len(values), dtype=pl.String, eager=True)
    unread = (values.is_not_null() & parsed.is_null()).arg_true()
    if unread.len():
        key = values.gather(unread).str.strip_chars()
        matched = key.str.to_lowercase().cast(dtype, strict=False)
        parsed = parsed.scatter(unread, matched)
        unknown = matched.is_null() & (key.str.len_bytes() > 0)
        if unknown.any():
            allowed = ", ".join(spec.enum_values)
            hint = "see `custody schema` for the list" if len(spec.enum_values) > 8 else f"use one of {allowed}"
            positions = unread.filter(unknown)
            reason = reason.scatter(
                positions, pl.repeat(f"is not an allowed value: {hint}", positions.len(), eager=True)
            )
            issue = issue.scatter(positions, pl.repeat("unknown_value", positions.len(), eager=True))
    return pl.DataFrame({"value": parsed, "reason": reason, "issue": issue})


def _parse_column(values: pl.Series, spec: ColumnSpec, date_order: DateOrder = "dmy") -> pl.DataFrame:
    """-> `value` (the contract type), `reason` and `issue` (null when fine or missing)."""
    match spec.kind:
        case "datetime":
            return parse_datetimes(values, date_order)
        case "date":
            return parse_dates(values, date_order)
        case "bool":
            return parse_bools(values)
        case "enum":
            return _parse_enum(values, spec)
        case _:
            nothing = pl.repeat(None, len(values), dtype=pl.String, eager=True)
            return pl.DataFrame({"value": values, "reason": nothing, "issue": nothing})


def _is_missing(parsed: pl.DataFrame) -> pl.Series:
    """Missing (or blank) in the file, as opposed to present but unusable."""
    return parsed["value"].is_null() & parsed["reason"].is_null()


def _output(raw: pl.DataFrame, parsed: dict[str, pl.DataFrame], table: str, kept: pl.Series) -> pl.DataFrame:
    """Kept rows: contract columns (parsed, in contract order and types), extras as read, `_row`."""
    schema = polars_schema(table)
    contract = [parsed[name]["value"].alias(name).cast(dtype) for name, dtype in schema.items()]
    extras = [c for c in raw.columns if c not in schema and c != ROW]
    table_out = pl.DataFrame(contract).hstack(raw.select(*extras, ROW))
    # Filtering copies every column: skip it when no row was rejected (a clean extract).
    return table_out if kept.all() else table_out.filter(kept)


# ---------------------------------------------------------------- data-quality rows


def _empty_dq() -> pl.DataFrame:
    return pl.DataFrame(schema=_DQ_WORK_SCHEMA)


def _dq(
    frame: pl.DataFrame,
    *,
    path: Path,
    table: str,
    column: str | pl.Expr | None,
    value: str | None,
    reason: pl.Expr,
    action: str,
    issue: str | pl.Expr,
) -> pl.DataFrame:
    """Data-quality rows for every row of `frame` (already filtered to the rows concerned).

    `frame` has `_row`, `custody_record_id` and, for events, `event_type` (as read) and
    optionally `_type` (the event type as recognised). `value` names the column whose
    text (trimmed) is the value as read.
    """
    if frame.is_empty():
        return _empty_dq()
    value_text = (
        as_text(frame[value]).str.strip_chars()
        if value is not None
        else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    )
    columns = {
        # The file's name, not the path as typed: the same records give the same bytes
        # whether they were named by an absolute or a relative path.
        "file": pl.lit(path.name),
        "table": pl.lit(table),
        "row": pl.col(ROW).cast(pl.Int64),
        "column": column if isinstance(column, pl.Expr) else pl.lit(column, dtype=pl.String),
        "value": pl.lit(value_text),
        "reason": reason,
        "action": pl.lit(action),
        "custody_record_id": pl.col(_ID),
        "event_type": _event_type_as_read(frame) if table == "events" else pl.lit(None, dtype=pl.String),
        "_issue": issue if isinstance(issue, pl.Expr) else pl.lit(issue),
    }
    return frame.select(**columns).cast(_DQ_WORK_SCHEMA)


def _event_type_as_read(frame: pl.DataFrame) -> pl.Expr:
    """The event type as recognised (`Review ` -> review) when `_type` (parsed) is there, else as read."""
    as_read = pl.col("event_type").str.strip_chars()
    if "_type" in frame.columns:
        return pl.coalesce(pl.col("_type").cast(pl.String), as_read)
    return as_read


def _value_problems(
    work: pl.DataFrame, name: str, parsed: pl.DataFrame, where: pl.Series, *, path: Path, table: str, action: str
) -> pl.DataFrame:
    """One data-quality row per row in `where` whose value in column `name` could not be used."""
    flagged = where & parsed["reason"].is_not_null()
    if not flagged.any():
        return _empty_dq()
    # The reason names the column, never the value: that is the row's `value`.
    subset = work.filter(flagged).with_columns(
        _reason=f"{name} " + parsed["reason"].filter(flagged), _code=parsed["issue"].filter(flagged)
    )
    return _dq(
        subset,
        path=path,
        table=table,
        column=name,
        value=name,
        reason=pl.col("_reason"),
        action=action,
        issue=pl.col("_code"),
    )


def _missing_values(
    work: pl.DataFrame, name: str, where: pl.Series, *, path: Path, table: str, action: str, reason: str
) -> pl.DataFrame:
    return _dq(
        work.filter(where),
        path=path,
        table=table,
        column=name,
        value=None,
        reason=pl.lit(reason),
        action=action,
        issue="missing_value",
    )


def _count_issues(data_quality: pl.DataFrame) -> dict[str, int]:
    if data_quality.is_empty():
        return {}
    counts = (
        data_quality.group_by("table", "column", "_issue")
        .len()
        .sort(["len", "table", "column", "_issue"], descending=[True, False, False, False], nulls_last=True)
    )
    issues: dict[str, int] = {}
    for table, column, issue, count in counts.iter_rows():
        where = f"{table}.{column}" if column else table
        issues[f"{where}: {ISSUE_LABELS.get(issue, issue)}"] = count
    return issues


# ---------------------------------------------------------------- detentions


def _row_list(rows: pl.Expr) -> pl.Expr:
    """[4, 9, 12] -> "4, 9 and 12"; long lists end "... and 7 more"."""
    count = rows.list.len()
    shown = rows.list.head(_MAX_ROWS_LISTED).cast(pl.List(pl.String))
    return (
        pl.when(count <= _MAX_ROWS_LISTED)
        .then(pl.concat_str(shown.list.head(count - 1).list.join(", "), pl.lit(" and "), shown.list.last()))
        .otherwise(
            pl.concat_str(
                shown.list.join(", "),
                pl.lit(" and "),
                (count - _MAX_ROWS_LISTED).cast(pl.String),
                pl.lit(" more"),
            )
        )
    )


def _id_hashes(ids: pl.Series) -> pl.Series:
    """64-bit hashes of ids: equal ids have equal hashes (unequal ids almost never do)."""
    return ids.hash(_HASH_SEED)


def _duplicate_rows(raw: pl.DataFrame, path: Path) -> tuple[pl.Series, pl.DataFrame]:
    """Rows rejected because their custody_record_id is repeated, and their data-quality rows.

    A later exact copy of an earlier row is dropped on its own ("exact duplicate of row N").
    Rows sharing an id with different values are all rejected: there is no telling which
    is right, nor which of them the events belong to.
    """
    ids = raw[_ID]
    # Equal ids have equal hashes, so ids whose 64-bit hashes all differ all differ: on a clean
    # extract that settles it several times faster than comparing the text.
    if not _id_hashes(ids.drop_nulls()).is_duplicated().any():
        return pl.repeat(False, raw.height, eager=True), _empty_dq()
    repeated = ids.is_not_null() & ids.is_duplicated()
    if not repeated.any():
        return pl.repeat(False, raw.height, eager=True), _empty_dq()
    content = pl.struct(pl.all().exclude(ROW))
    groups = raw.filter(repeated).with_columns(
        _first_copy=pl.col(ROW).min().over(content),
        _variants=content.n_unique().over(_ID),
        _rows=pl.col(ROW).over(_ID, mapping_strategy="join"),
    )
    conflicting = groups.filter(pl.col("_variants") > 1)
    copies = groups.filter((pl.col("_variants") == 1) & (pl.col(ROW) != pl.col("_first_copy")))
    common: dict[str, Any] = {"path": path, "table": "detentions", "column": _ID, "value": _ID, "action": REJECTED}
    dq = pl.concat(
        [
            _dq(
                copies,
                reason=pl.format("exact duplicate of row {}", pl.col("_first_copy")),
                issue="exact_duplicate",
                **common,
            ),
            _dq(
                conflicting,
                reason=pl.format(
                    "custody_record_id appears on rows {} with different values; fix the extract",
                    _row_list(pl.col("_rows")),
                ),
                issue="conflicting_duplicate",
                **common,
            ),
        ]
    )
    rejected_rows = pl.concat([copies[ROW], conflicting[ROW]])
    return raw[ROW].is_in(rejected_rows.implode()), dq


@dataclass
class _CheckedRecords:
    """Which detentions rows were loaded, for matching events to them."""

    ids: pl.Series
    """The loaded records' custody_record_id, in order."""
    kept: pl.Series
    """Per row read: loaded or not."""
    rejected_ids: pl.Series
    """Ids none of whose rows could be used."""


def _check_detentions(
    raw_table: _RawTable, date_order: DateOrder
) -> tuple[pl.DataFrame, pl.DataFrame, _CheckedRecords]:
    """-> (loaded detentions, data-quality rows, which rows and ids were loaded)."""
    raw, path, table = raw_table.frame, raw_table.path, raw_table.table
    specs = {spec.name: spec for spec in TABLES[table]}
    parsed = {name: _parse_column(raw[name], spec, date_order) for name, spec in specs.items()}

    missing_id = raw[_ID].is_null()
    # A record that cannot be attributed to a child cannot be reported per child.
    missing_person = raw["person_id"].is_null() & ~missing_id
    duplicate, duplicate_dq = _duplicate_rows(raw, path)
    kept = ~(missing_id | missing_person | duplicate)

    common: dict[str, Any] = {"path": path, "table": table, "value": None, "action": REJECTED}
    dq_parts = [
        _dq(
            raw.filter(missing_id),
            column=_ID,
            reason=pl.lit("custody_record_id is missing: every record needs one"),
            issue="missing_id",
            **common,
        ),
        _dq(
            raw.filter(missing_person),
            column="person_id",
            reason=pl.lit("person_id is missing: the record cannot be attributed to a child"),
            issue="missing_person",
            **common,
        ),
        duplicate_dq,
    ]
    # Every other problem leaves the row in use with that value treated as missing, so the
    # rules that need it report cannot_assess for this record.
    for name, spec in specs.items():
        dq_parts.append(_value_problems(raw, name, parsed[name], kept, path=path, table=table, action=UNUSABLE))
        if spec.required and name not in (_ID, "person_id"):
            dq_parts.append(
                _missing_values(
                    raw,
                    name,
                    kept & _is_missing(parsed[name]),
                    path=path,
                    table=table,
                    action=UNUSABLE,
                    reason=f"{name} is missing: the rules that need it cannot be assessed for this record",
                )
            )
    # DATA-CONTRACT.md: place_of_safety is required for the Mental Health Act powers.
    power = parsed["detention_power"]["value"].cast(pl.String)
    mha = power.is_in(pl.Series(sorted(MHA_POWERS)).implode()).fill_null(False)
    dq_parts.append(
        _missing_values(
            raw,
            "place_of_safety",
            kept & mha & _is_missing(parsed["place_of_safety"]),
            path=path,
            table=table,
            action=UNUSABLE,
            reason="place_of_safety is missing: it is required for mha_s136 and mha_s135 detentions",
        )
    )

    detentions = _output(raw, parsed, table, kept)
    # An id is rejected when none of its rows is used (an exact copy is dropped, its first row used).
    candidates = raw[_ID].filter(~kept).drop_nulls().unique()
    rejected_ids = candidates.filter(~candidates.is_in(detentions[_ID].implode())) if candidates.len() else candidates
    return detentions, pl.concat(dq_parts), _CheckedRecords(ids=detentions[_ID], kept=kept, rejected_ids=rejected_ids)


# ---------------------------------------------------------------- events

_EVENT_SPECS = {spec.name: spec for spec in TABLES["events"]}
_EVENT_TYPES: tuple[str, ...] = _EVENT_SPECS["event_type"].enum_values
_DETAIL_CODES: tuple[str, ...] = _EVENT_SPECS["detail"].enum_values


_ALLOWED_PAIRS = pl.Series(
    [code in EVENT_DETAILS[event_type] for event_type in _EVENT_TYPES for code in _DETAIL_CODES], dtype=pl.Boolean
)
"""Whether the event vocabulary allows each (event_type, detail) pair, at position
type * len(_DETAIL_CODES) + detail (the positions of both in their vocabularies)."""


def _detail_allowed(event_type: pl.Series, detail: pl.Series) -> pl.Series:
    """Whether each (event_type, detail) pair is allowed; False where either is null. Both are
    the vocabularies' enums: the pair is looked up by their codes, not compared as text."""
    position = event_type.to_physical().cast(pl.UInt32) * len(_DETAIL_CODES) + detail.to_physical().cast(pl.UInt32)
    return _ALLOWED_PAIRS.gather(position).fill_null(False)


@dataclass
class _IdRuns:
    """An id column as runs of equal values: each run's id, and each row's run."""

    run_ids: pl.Series
    run_of_row: pl.Series

    @classmethod
    def of(cls, ids: pl.Series) -> _IdRuns:
        starts_run = pl.col(_ID).ne_missing(pl.col(_ID).shift(1)) | (pl.int_range(pl.len()) == 0)
        starts = ids.to_frame(_ID).select(starts_run).to_series()
        return cls(run_ids=ids.filter(starts), run_of_row=starts.cum_sum().cast(pl.UInt32) - 1)


@dataclass
class _ParsedEvents:
    """The events' columns parsed (`_parse_column`)."""

    columns: dict[str, pl.DataFrame]
    detail_not_allowed: pl.Series
    """A detail code given (usable or not) that the vocabulary does not allow for the event's type."""


def _parse_events(raw_table: _RawTable, date_order: DateOrder) -> _ParsedEvents:
    raw = raw_table.frame
    columns = {name: _parse_column(raw[name], spec, date_order) for name, spec in _EVENT_SPECS.items()}
    # DATA-CONTRACT.md event vocabulary: each event type allows only its own detail codes.
    detail = columns["detail"]
    not_allowed = ~_is_missing(detail) & ~_detail_allowed(columns["event_type"]["value"], detail["value"])
    return _ParsedEvents(columns=columns, detail_not_allowed=not_allowed)


def _match_rows(runs: _IdRuns, ids: pl.Series) -> pl.Series | None:
    """For each event's custody_record_id (as runs), the position of the one detentions row
    (of `ids`, as read) holding it, else null; None if an event's id is on several rows.

    An extract lists a record's events together, so each run of equal ids is looked up once
    (events in any order are still matched, one lookup per run). Ids are matched by their
    64-bit hashes (several times faster than by text), and every match is then confirmed on
    the text. None too if ids of several rows share a hash that an event's id has."""
    run_ids = runs.run_ids
    positions = pl.int_range(ids.len(), dtype=pl.UInt32, eager=True).alias("_position")
    by_hash = pl.DataFrame([_id_hashes(ids).alias("_key"), positions]).filter(ids.is_not_null())
    per_run = _id_hashes(run_ids).to_frame("_key").join(by_hash, on="_key", how="left", maintain_order="left")
    if per_run.height != run_ids.len():
        return None  # repeated ids (or ids sharing a hash): matched once detentions are checked
    candidate = per_run["_position"]
    confirmed = ids.gather(candidate) == run_ids
    return pl.select(pl.when(confirmed).then(candidate)).to_series().gather(runs.run_of_row)


@dataclass
class _EventRecords:
    """Each event's custody record: its position among the loaded detentions (null if none),
    and whether its id was rejected in detentions (none of its rows loaded)."""

    position: pl.Series
    parent_rejected: pl.Series


def _record_of_events(runs: _IdRuns, rows: pl.Series | None, records: _CheckedRecords) -> _EventRecords:
    """Each event's record, from the detentions row matched to it (`_match_rows`) when there is
    one row per id, else from the records loaded."""
    if rows is not None:
        # One row per id: a matched row not loaded is a rejected record.
        if records.kept.all():
            return _EventRecords(position=rows, parent_rejected=pl.repeat(False, rows.len(), eager=True))
        loaded_position = pl.select(pl.when(records.kept).then(records.kept.cum_sum().cast(pl.UInt32) - 1)).to_series()
        position = loaded_position.gather(rows)
        return _EventRecords(position=position, parent_rejected=rows.is_not_null() & position.is_null())
    position = _record_positions(runs, records.ids)
    parent_rejected = pl.repeat(False, position.len(), eager=True)
    unmatched = position.is_null()
    if records.rejected_ids.len() and unmatched.any():
        where = unmatched.arg_true()
        ids = runs.run_ids.gather(runs.run_of_row.gather(where))
        parent_rejected = parent_rejected.scatter(where, ids.is_in(records.rejected_ids.implode()).fill_null(False))
    return _EventRecords(position=position, parent_rejected=parent_rejected)


def _record_positions(runs: _IdRuns, record_ids: pl.Series) -> pl.Series:
    """For each event's custody_record_id (as runs), the position of that id in `record_ids`
    (distinct ids), else null: by hash, confirmed on the text, as `_match_rows`; only if two
    records' ids share a hash, and an event has it, are the ids themselves matched."""
    run_ids = runs.run_ids
    positions = pl.int_range(record_ids.len(), dtype=pl.UInt32, eager=True).alias("_position")
    by_hash = pl.DataFrame([_id_hashes(record_ids).alias("_key"), positions])
    per_run = _id_hashes(run_ids).to_frame("_key").join(by_hash, on="_key", how="left", maintain_order="left")
    if per_run.height == run_ids.len():
        candidate = per_run["_position"]
        confirmed = record_ids.gather(candidate) == run_ids
        per_run_position = pl.select(pl.when(confirmed).then(candidate)).to_series()
    else:
        by_text = pl.DataFrame([record_ids, positions])
        per_run_position = run_ids.to_frame(_ID).join(by_text, on=_ID, how="left", maintain_order="left")["_position"]
    return per_run_position.gather(runs.run_of_row)


def _detail_hints() -> dict[str, str]:
    hints = {}
    for event_type, codes in EVENT_DETAILS.items():
        if codes:
            hints[event_type] = f"is not a detail code for {event_type}: use one of {', '.join(codes)}"
        else:
            hints[event_type] = f"is not used: {event_type} takes no detail code"
    return hints


def _check_events(
    raw_table: _RawTable, events: _ParsedEvents, records: _EventRecords
) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """-> (loaded events, data-quality rows, the position of each loaded event's record among
    the loaded detentions). `note` is never validated nor copied."""
    raw, path, table = raw_table.frame, raw_table.path, raw_table.table
    parsed = dict(events.columns)
    event_type = parsed["event_type"]["value"]
    work = raw.with_columns(_type=event_type)

    record, parent_rejected = records.position, records.parent_rejected
    missing_id = raw[_ID].is_null()
    orphan = ~missing_id & record.is_null() & ~parent_rejected
    # An event without a usable time or type cannot be placed on the record's timeline.
    no_time = parsed["event_time"]["value"].is_null()
    no_type = event_type.is_null()
    kept = ~(missing_id | orphan | parent_rejected | no_time | no_type)

    common: dict[str, Any] = {"path": path, "table": table, "column": _ID, "action": REJECTED}
    dq_parts = [
        _dq(
            work.filter(missing_id),
            value=None,
            reason=pl.lit("custody_record_id is missing: the event cannot be matched to a custody record"),
            issue="missing_id",
            **common,
        ),
        _dq(
            work.filter(orphan),
            value=_ID,
            reason=pl.lit("custody_record_id is not in detentions: add the record, or correct the id"),
            issue="orphan",
            **common,
        ),
        _dq(
            work.filter(parent_rejected),
            value=_ID,
            reason=pl.lit(
                "custody_record_id was rejected in detentions (see its rows there), so its events are not used"
            ),
            issue="parent_rejected",
            **common,
        ),
    ]
    everywhere = pl.repeat(True, raw.height, eager=True)
    for name in ("event_time", "event_type"):
        dq_parts.append(_value_problems(work, name, parsed[name], everywhere, path=path, table=table, action=REJECTED))
        dq_parts.append(
            _missing_values(
                work,
                name,
                _is_missing(parsed[name]),
                path=path,
                table=table,
                action=REJECTED,
                reason=f"{name} is missing: an event without it cannot be used",
            )
        )

    detail = parsed["detail"]
    bad_detail = kept & events.detail_not_allowed
    if bad_detail.any():
        subset = work.filter(bad_detail).with_columns(
            _hint=pl.col("_type").cast(pl.String).replace_strict(_detail_hints())
        )
        dq_parts.append(
            _dq(
                subset,
                path=path,
                table=table,
                column="detail",
                value="detail",
                reason=pl.format("detail {}", pl.col("_hint")),
                action=UNUSABLE,
                issue="detail_not_allowed",
            )
        )
        parsed["detail"] = detail.with_columns(value=pl.when(bad_detail).then(None).otherwise(pl.col("value")))

    loaded = _output(raw, parsed, table, kept)
    return loaded, pl.concat(dq_parts), record if kept.all() else record.filter(kept)
