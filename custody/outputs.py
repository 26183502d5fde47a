"""Writes the files of `custody check` (DATA-CONTRACT.md, "Output"): every one a rendering
of the one findings table in a `CheckResult`.

Three properties hold for every file:

- Safe to open in a spreadsheet. A text cell that begins with `=`, `+`, `-`, `@`, tab or
  carriage return is one Excel and LibreOffice would run as a formula, so in CSV it is
  prefixed with a single quote (OWASP "CSV injection"); in XLSX every text value is
  written as a string cell, which is never evaluated.
- Atomic. Each file is written under a hidden temporary name in the output folder, flushed
  to disk and renamed over the final name, so a crash never leaves a half-written file
  that looks complete. `summary.json` is written last: it lists the files of its run.
- Deterministic. The same result gives byte-identical findings, children and exceptions
  files (only `summary.json` and `report.html` carry the run time).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from custody.contract import CONTRACT_VERSION, DATA_QUALITY_SCHEMA, FINDINGS_SCHEMA, UK_TZ, Outcome
from custody.errors import UsageError
from custody.results import CheckResult

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

FORMATS: tuple[str, ...] = (
    "parquet",
    "csv",
    "children",
    "exceptions",
    "xlsx",
    "data_quality",
    "summary",
    "html",
)

FILE_NAMES: dict[str, str] = {
    "parquet": "findings.parquet",
    "csv": "findings.csv",
    "children": "children.csv",
    "exceptions": "exceptions.csv",
    "xlsx": "exceptions.xlsx",
    "data_quality": "data_quality.csv",
    "summary": "summary.json",
    "html": "report.html",
}

# Excel's hard limit of rows on one worksheet, header included.
XLSX_MAX_ROWS = 1_048_576

EXCEPTION_OUTCOMES: tuple[str, ...] = (Outcome.breach.value, Outcome.cannot_assess.value)

# The exception list is for people doing case review, so it has human column names.
# Evidence is left out on purpose: it is the machine-readable JSON behind the message
# (the message is its one-sentence human rendering), it stays in findings.csv/.parquet
# under the same (custody record, rule) key, and leaving it out roughly halves the size
# of the workbook and keeps every row readable in a spreadsheet.
EXCEPTION_COLUMNS: dict[str, str] = {
    "person_id": "Child",
    "custody_record_id": "Custody record",
    "rule_id": "Rule",
    "outcome": "Outcome",
    "severity": "Severity",
    "basis": "Basis",
    "when_uk": "When (UK time)",
    "message": "What was found",
    "citation": "Law",
    "rule_version": "Rule version",
}

CHILDREN_COLUMNS: tuple[str, ...] = (
    "person_id",
    "records",
    "rules_applied",
    "breaches",
    "compliant",
    "cannot_assess",
    "worst_outcome",
    "rules_breached",
    "first_arrival",
    "last_arrival",
)

# ISO 8601: UTC instants with `Z`; UK local times with their offset (GMT +00:00 or BST +01:00).
UTC_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
UK_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"
# The human lists name the zone (GMT/BST), which tells apart the two 01:30s of an October night.
UK_HUMAN_FORMAT = "%Y-%m-%d %H:%M:%S %Z"

_FORMULA_START = r"^[=+\-@\t\r]"
# A fixed codec and level, so the same findings always give the same bytes.
FINDINGS_PARQUET_LEVEL = 1  # zstd: level 1 is ~10% faster than 3 for a file <1% larger
_WRITER_THREADS = 2
_WRITE_ORDER = ("csv", "xlsx", "parquet", "exceptions", "children", "html", "data_quality")


# ---------------------------------------------------------------- formats


def parse_formats(text: str) -> frozenset[str]:
    """The output formats named by `--formats` ("all" or a comma list); summary is always written."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    valid = ", ".join(("all", *FORMATS))
    if not names:
        raise UsageError(f"--formats names no format; use 'all' or a comma list of: {valid}.")
    unknown = sorted(names - {"all", *FORMATS})
    if unknown:
        raise UsageError(
            f"Unknown output format {', '.join(repr(u) for u in unknown)} in --formats; valid formats are: {valid}."
        )
    chosen = set(FORMATS) if "all" in names else names
    return frozenset(chosen | {"summary"})


# ---------------------------------------------------------------- derived tables


def findings_frame(result: CheckResult) -> pl.LazyFrame:
    """The findings with exactly the contract columns, in contract order and types (lazy: the
    findings may be a scan of a spilled Parquet file too large to hold at once)."""
    return result.findings.lazy().select(pl.col(name).cast(dtype) for name, dtype in FINDINGS_SCHEMA.items())


def data_quality_frame(result: CheckResult) -> pl.DataFrame:
    return result.data_quality.select(pl.col(name).cast(dtype) for name, dtype in DATA_QUALITY_SCHEMA.items())


def children_frame(result: CheckResult) -> pl.DataFrame:
    """One row per child: every person_id among the records and the findings, sorted by id.

    A child whose records no rule applied to (say an adult, or never charged) still has a
    row, with zero counts and worst_outcome `none`.
    """
    outcome = pl.col("outcome").cast(pl.String)
    per_child_findings = (
        result.findings.lazy()
        .group_by("person_id")
        .agg(
            pl.len().cast(pl.Int64).alias("rules_applied"),
            (outcome == Outcome.breach.value).sum().cast(pl.Int64).alias("breaches"),
            (outcome == Outcome.compliant.value).sum().cast(pl.Int64).alias("compliant"),
            (outcome == Outcome.cannot_assess.value).sum().cast(pl.Int64).alias("cannot_assess"),
            pl.col("rule_id")
            .cast(pl.String)
            .filter(outcome == Outcome.breach.value)
            .unique()
            .sort()
            .str.join(";")
            .alias("rules_breached"),
        )
        .collect()
    )
    arrival_uk = pl.col("arrival_time").cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(UK_TZ)
    per_child_records = result.records.group_by("person_id").agg(
        pl.len().cast(pl.Int64).alias("records"),
        arrival_uk.min().dt.strftime(UK_ISO_FORMAT).alias("first_arrival"),
        arrival_uk.max().dt.strftime(UK_ISO_FORMAT).alias("last_arrival"),
    )
    counts = ("records", "rules_applied", "breaches", "compliant", "cannot_assess")
    children = per_child_records.cast({"person_id": pl.String}).join(
        per_child_findings.cast({"person_id": pl.String}),
        on="person_id",
        how="full",
        coalesce=True,
        nulls_equal=True,
    )
    return (
        children.with_columns(pl.col(c).fill_null(0) for c in counts)
        .with_columns(
            pl.when(pl.col("breaches") > 0)
            .then(pl.lit(Outcome.breach.value))
            .when(pl.col("cannot_assess") > 0)
            .then(pl.lit(Outcome.cannot_assess.value))
            .when(pl.col("compliant") > 0)
            .then(pl.lit(Outcome.compliant.value))
            .otherwise(pl.lit("none"))
            .alias("worst_outcome"),
            pl.col("rules_breached").fill_null(""),
        )
        .select(CHILDREN_COLUMNS)
        .sort("person_id", nulls_last=True)
    )


def exceptions_frame(result: CheckResult) -> pl.DataFrame:
    """Breach and cannot_assess findings, by child then time, with human column names."""
    findings = findings_frame(result)
    return (
        findings.filter(pl.col("outcome").cast(pl.String).is_in(EXCEPTION_OUTCOMES))
        .drop("evidence")
        .collect()
        .sort(["person_id", "trigger_at", "custody_record_id", "rule_id"], nulls_last=True)
        .with_columns(pl.col("trigger_at").dt.convert_time_zone(UK_TZ).dt.strftime(UK_HUMAN_FORMAT).alias("when_uk"))
        .select(pl.col(name).cast(pl.String).alias(label) for name, label in EXCEPTION_COLUMNS.items())
    )


def outcomes_per_rule(result: CheckResult) -> dict[str, dict[str, int]]:
    """{rule_id: {breach, compliant, cannot_assess}} for every rule in the registry (zeros
    included), in registry order; a rule id found only in the findings follows, sorted."""
    counts = (
        result.findings.lazy()
        .group_by(pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String))
        .len()
        .collect()
        .rows()
    )
    table: dict[str, dict[str, int]] = {rule.rule_id: {o.value: 0 for o in Outcome} for rule in result.rules}
    for rule_id in sorted({str(rule_id) for rule_id, _, _ in counts} - table.keys()):
        table[rule_id] = {o.value: 0 for o in Outcome}
    for rule_id, outcome, n in counts:
        table[str(rule_id)][str(outcome)] = int(n)
    return table


def data_quality_by_reason(result: CheckResult) -> dict[str, int]:
    """How many data-quality rows there are for each reason, most frequent first."""
    rows = (
        result.data_quality.group_by(pl.col("reason").fill_null("(no reason given)"))
        .len()
        .sort(["len", "reason"], descending=[True, False])
        .rows()
    )
    return {str(reason): int(n) for reason, n in rows}


def records_without_applicable_rule(result: CheckResult) -> int:
    return int(result.records.filter(pl.col("rules_applied") == 0).height)


# ---------------------------------------------------------------- spreadsheet safety


def _inert_text(text: pl.Expr) -> pl.Expr:
    """Text with a value a spreadsheet would run as a formula made plain text."""
    return pl.when(text.str.contains(_FORMULA_START)).then(pl.lit("'") + text).otherwise(text)


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


# ---------------------------------------------------------------- atomic files


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final`; renamed over it once the block ends without error.

    On any error the temporary file is removed and `final` is left as it was (absent, or
    the previous complete file).
    """
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _write_csv(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    # No BOM: these files are read by pipelines as well as people, and a BOM would become
    # part of the first column name for many readers. exceptions.xlsx is the Excel rendering.
    # A lazy frame is streamed to the file in batches (the findings can be millions of rows).
    if isinstance(frame, pl.LazyFrame):
        csv_safe(frame).sink_csv(path, include_header=True, line_terminator="\n", null_value="")
    else:
        csv_safe(frame).write_csv(path, include_header=True, line_terminator="\n", null_value="")


# ---------------------------------------------------------------- XLSX

# Excel's limit on one cell's text, in UTF-16 code units.
XLSX_MAX_CELL_CHARS = 32_767
# Rows of sheet XML built per polars pass (bounds memory whatever the number of rows).
_XLSX_CHUNK_ROWS = 50_000
# Deflate level of the sheet XML: level 1 is several times faster than the default 6 on
# hundreds of megabytes of XML, for a file about 15% larger.
_XLSX_COMPRESS_LEVEL = 1
_XLSX_SHEET = re.compile(r"xl/worksheets/sheet(\d+)\.xml")
# Characters XML 1.0 cannot carry; Excel writes them as _xHHHH_ (and a literal _xHHHH_ as
# _x005F_xHHHH_ so that it reads back as written).
_XML_CONTROL = "".join(chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20))) + "\ufffe\uffff"


def write_exceptions_xlsx(exceptions: pl.DataFrame, path: Path) -> None:
    """The exception list as a workbook: frozen header, autofilter, wrapped message column,
    every value a text cell. Rows beyond Excel's limit go on to sheets "Exceptions (2)", ...

    xlsxwriter writes the workbook (styles, column widths, frozen pane, autofilter, header).
    Writing the data rows through it costs about 15 µs a cell (over a minute for 400,000
    exceptions), so the rows are instead rendered in polars, a chunk at a time, as the very
    XML xlsxwriter's `write_string` produces in constant_memory mode: inline string cells
    (`t="inlineStr"`), which a spreadsheet never evaluates as a formula, number or link.
    A test checks the bytes are the same as xlsxwriter's for awkward text.
    """
    import xlsxwriter

    rows_per_sheet = XLSX_MAX_ROWS - 1
    headers = exceptions.columns
    total = exceptions.height
    sheet_ranges = [(start, min(total, start + rows_per_sheet)) for start in range(0, max(total, 1), rows_per_sheet)]
    wrapped = {EXCEPTION_COLUMNS["message"], EXCEPTION_COLUMNS["citation"]}
    widths = _column_widths(exceptions)

    skeleton = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        skeleton,
        {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    header_format = workbook.add_format(
        {"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    text_format = workbook.add_format({"valign": "top"})
    wrap_format = workbook.add_format({"valign": "top", "text_wrap": True})
    for number, (start, stop) in enumerate(sheet_ranges):
        sheet = workbook.add_worksheet("Exceptions" if number == 0 else f"Exceptions ({number + 1})")
        for col, header in enumerate(headers):
            sheet.set_column(col, col, widths[col], wrap_format if header in wrapped else text_format)
            sheet.write_string(0, col, header, header_format)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(stop - start, 1), len(headers) - 1)
    workbook.close()

    text = _excel_text(exceptions)
    with (
        zipfile.ZipFile(skeleton) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=_XLSX_COMPRESS_LEVEL) as target,
    ):
        for info in source.infolist():
            match = _XLSX_SHEET.fullmatch(info.filename)
            if match is None:
                target.writestr(info, source.read(info))
                continue
            start, stop = sheet_ranges[int(match.group(1)) - 1]
            _write_sheet(target, info.filename, source.read(info).decode("utf-8"), text.slice(start, stop - start))


def _excel_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Each value as Excel stores a text cell: at most 32,767 UTF-16 units, control
    characters as _xHHHH_, then XML-escaped (`&`, `<`, `>`), as xlsxwriter does."""

    def any_match(pattern: str) -> tuple[bool, ...]:
        return tuple(
            bool(v)
            for v in frame.select(pl.col(c).str.contains(pattern).any().fill_null(False) for c in frame.columns).row(0)
        )

    # Each step runs only on the columns that need it (usually none need the first two).
    long_text = frame.select(
        (pl.col(c).str.len_chars() > XLSX_MAX_CELL_CHARS // 2).any().fill_null(False) for c in frame.columns
    ).row(0)
    control = any_match(r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]")
    markup = any_match("[&<>]")
    exprs: list[pl.Expr] = []
    for name, is_long, has_control, has_markup in zip(frame.columns, long_text, control, markup, strict=True):
        value = pl.col(name)
        if is_long:
            value = value.map_elements(_utf16_truncate, return_dtype=pl.String, skip_nulls=True)
        if has_control:
            value = value.str.replace_all(r"(_x[0-9a-fA-F]{4}_)", "_x005F${1}")
            for char in _XML_CONTROL:
                value = value.str.replace_all(char, f"_x{ord(char):04X}_", literal=True)
        if has_markup:
            value = (
                value.str.replace_all("&", "&amp;", literal=True)
                .str.replace_all("<", "&lt;", literal=True)
                .str.replace_all(">", "&gt;", literal=True)
            )
        exprs.append(value.alias(name))
    return frame.select(exprs)


def _utf16_truncate(value: str) -> str:
    """The value cut to Excel's cell limit, counted in UTF-16 units (an emoji counts 2)."""
    units = value.encode("utf-16-le")
    if len(units) <= 2 * XLSX_MAX_CELL_CHARS:
        return value
    return units[: 2 * XLSX_MAX_CELL_CHARS].decode("utf-16-le", errors="ignore")


def _write_sheet(target: zipfile.ZipFile, name: str, skeleton_xml: str, text: pl.DataFrame) -> None:
    """The skeleton sheet (header row only) with the rows of `text` added after the header."""
    from xlsxwriter.utility import xl_col_to_name

    head, tail = skeleton_xml.split("</sheetData>", 1)
    last_column = xl_col_to_name(text.width - 1)
    if text.height:
        head = re.sub(
            r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last_column}{text.height + 1}"/>', head, count=1
        )
    # Each data cell carries its column's format (wrap, alignment), as xlsxwriter writes it.
    styles = {
        column: style
        for match in re.finditer(r'<col min="(\d+)" max="(\d+)"[^>]*? style="(\d+)"', head)
        for column, style in dict.fromkeys(range(int(match.group(1)), int(match.group(2)) + 1), match.group(3)).items()
    }
    columns = [
        (name, xl_col_to_name(i), f' s="{styles[i + 1]}"' if i + 1 in styles else "")
        for i, name in enumerate(text.columns)
    ]
    estimated = text.select(pl.sum_horizontal(pl.col(c).str.len_bytes().sum() for c in text.columns)).item() or 0
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with target.open(info, "w", force_zip64=estimated + 80 * text.height * text.width > 2**31) as out:
        out.write(head.encode("utf-8"))
        for offset in range(0, text.height, _XLSX_CHUNK_ROWS):
            chunk = text.slice(offset, _XLSX_CHUNK_ROWS)
            out.write(_rows_xml(chunk, columns, first_row=offset + 2).encode("utf-8"))
        out.write(("</sheetData>" + tail).encode("utf-8"))


def _rows_xml(chunk: pl.DataFrame, columns: list[tuple[str, str, str]], *, first_row: int) -> str:
    """`<row>` elements of inline string cells; a null is an empty (absent) cell."""
    row_number = (pl.int_range(pl.len()) + first_row).cast(pl.String)
    # Leading or trailing white space is kept only with xml:space="preserve".
    edge_space = r"^\s|\s$"
    spaced = chunk.select(pl.col(name).str.contains(edge_space).any().fill_null(False) for name, _, _ in columns).row(0)
    cells = []
    for (name, letter, style), has_space in zip(columns, spaced, strict=True):
        value = pl.col(name)
        preserve = (
            pl.when(value.str.contains(edge_space)).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
            if has_space
            else pl.lit("")
        )
        cells.append(
            pl.when(value.is_not_null())
            .then(
                pl.concat_str(
                    pl.lit(f'<c r="{letter}'),
                    row_number,
                    pl.lit(f'"{style} t="inlineStr"><is><t'),
                    preserve,
                    pl.lit(">"),
                    value,
                    pl.lit("</t></is></c>"),
                )
            )
            .otherwise(pl.lit(""))
        )
    row = pl.concat_str(pl.lit('<row r="'), row_number, pl.lit('">'), *cells, pl.lit("</row>"))
    return str(chunk.select(row.str.join("")).item())


def _column_widths(frame: pl.DataFrame) -> list[float]:
    """A width per column from its longest value (header included), between 8 and 60 characters."""
    if frame.height:
        longest = frame.select(pl.col(c).str.len_chars().max().fill_null(0) for c in frame.columns).row(0)
    else:
        longest = tuple(0 for _ in frame.columns)
    widths: list[float] = []
    for name, value_len in zip(frame.columns, longest, strict=True):
        cap = 80 if name == EXCEPTION_COLUMNS["message"] else 40
        widths.append(float(min(max(len(name), int(value_len or 0), 8) + 2, cap)))
    return widths


# ---------------------------------------------------------------- summary


def summary(result: CheckResult, *, formats: frozenset[str], files: list[str], pseudonymised: bool) -> dict[str, Any]:
    """The content of summary.json, with a fixed key order."""
    meta = dict(result.meta)
    known = ("tool_version", "rules_digest", "inputs_digest", "as_of", "run_seconds", "counts")
    run: dict[str, Any] = {key: _sorted_keys(meta.get(key)) for key in known}
    for key in sorted(set(meta) - set(known)):
        run[key] = _sorted_keys(meta[key])
    run.setdefault("contract_version", CONTRACT_VERSION)
    findings_by_outcome = {o.value: 0 for o in Outcome}
    for outcome, n in result.findings.lazy().group_by(pl.col("outcome").cast(pl.String)).len().collect().rows():
        findings_by_outcome[str(outcome)] = int(n)
    return {
        **run,
        "headline": {key: int(value) for key, value in result.headline.items()},
        "findings": {"rows": sum(findings_by_outcome.values()), **findings_by_outcome},
        "outcomes_per_rule": outcomes_per_rule(result),
        "records": result.records.height,
        "records_without_applicable_rule": records_without_applicable_rule(result),
        "data_quality": {
            "rows": result.data_quality.height,
            "by_reason": data_quality_by_reason(result),
        },
        "pseudonymised": pseudonymised,
        "formats": [f for f in FORMATS if f in formats],
        "files": files,
    }


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted_keys(value[k]) for k in sorted(value, key=str)}
    return value


def _json_default(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return str(value)


# ---------------------------------------------------------------- all outputs


def write_outputs(
    result: CheckResult,
    out_dir: Path,
    *,
    formats: frozenset[str],
    pseudonymise_key: str | None = None,
) -> list[Path]:
    """Write the chosen outputs into `out_dir` (created if needed); the paths written, in order.

    `summary.json` is always written, and written last. With `pseudonymise_key`, person and
    custody record ids are replaced by keyed digests in every file (see custody.pseudonymise).
    """
    unknown = formats - set(FORMATS)
    if unknown:
        raise UsageError(
            f"Unknown output format {', '.join(sorted(unknown))}; valid formats are: {', '.join(FORMATS)}."
        )
    if pseudonymise_key is not None:
        from custody.pseudonymise import pseudonymise

        result = pseudonymise(result, pseudonymise_key)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; name a folder (it is created if it does not exist).")
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = formats | {"summary"}

    # The exception list is rendered three ways (CSV, XLSX, HTML): build it once.
    exceptions = exceptions_frame(result) if chosen & {"exceptions", "xlsx", "html"} else pl.DataFrame()
    writers: dict[str, Callable[[Path], None]] = {
        "parquet": lambda path: _write_findings_parquet(result, path),
        "csv": lambda path: _write_csv(findings_frame(result), path),
        "children": lambda path: _write_csv(children_frame(result), path),
        "exceptions": lambda path: _write_csv(exceptions, path),
        "xlsx": lambda path: write_exceptions_xlsx(exceptions, path),
        "data_quality": lambda path: _write_csv(data_quality_frame(result), path),
        "html": lambda path: _write_text(_render_html(result, exceptions), path),
    }

    def write(fmt: str) -> Path:
        final = out_dir / FILE_NAMES[fmt]
        with atomic_path(final) as temporary:
            writers[fmt](temporary)
        return final

    # The files are independent renderings of one table: write them side by side (polars
    # and zlib release the GIL), largest first. Each is still atomic; the order of
    # `written` is fixed, and summary.json, which lists them, is written last.
    wanted = [fmt for fmt in FORMATS if fmt != "summary" and fmt in chosen]
    with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as pool:
        futures = {fmt: pool.submit(write, fmt) for fmt in sorted(wanted, key=_WRITE_ORDER.index)}
        written: list[Path] = [futures[fmt].result() for fmt in wanted]

    summary_path = out_dir / FILE_NAMES["summary"]
    content = summary(
        result,
        formats=chosen,
        files=[path.name for path in (*written, summary_path)],
        pseudonymised=pseudonymise_key is not None,
    )
    with atomic_path(summary_path) as temporary:
        _write_text(json.dumps(content, indent=2, ensure_ascii=False, default=_json_default) + "\n", temporary)
    written.append(summary_path)
    return written


def _write_findings_parquet(result: CheckResult, path: Path) -> None:
    if result.findings_file is not None:
        # Spilled by run_check in exactly this form (columns, types, zstd level): link it
        # (the spill is removed after the outputs are written), or copy it.
        try:
            os.link(result.findings_file, path)
        except OSError:
            shutil.copyfile(result.findings_file, path)
        return
    findings_frame(result).sink_parquet(
        path, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL, statistics=True
    )


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


def _render_html(result: CheckResult, exceptions: pl.DataFrame) -> str:
    from custody.report import render_html

    return render_html(result, exceptions=exceptions)
