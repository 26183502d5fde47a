"""exceptions.xlsx: the exception list as an Excel workbook in which no cell is ever evaluated."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from custody.contract import UK_TZ
from custody.findings import (
    CERTIFICATE_NOTE_LABEL,
    EXCEPTION_COLUMNS,
    HEADLINE_LABELS,
    STATISTICS_COLUMNS,
    CheckResult,
    data_quality_by_issue,
    exceptions_frame_from_table,
    funnel,
    rule_rates,
    statistics_table,
)

WORKBOOK_CREATED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


# Excel's hard limit of rows on one worksheet, header included.
XLSX_MAX_ROWS = 1_048_576


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


EXCEL_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
ZONE_LABEL = "GMT/BST"
"""The zone of the occasion's time: an Excel datetime has none, and in the October repeated
hour 01:30 happens twice."""


def excel_exceptions(table: pl.DataFrame) -> pl.DataFrame:
    """The exception list for the workbook (`table`: `custody.findings.exception_table`):
    the columns of exceptions.csv, but the occasion's time and the arrival as datetimes in
    UK legal time (a spreadsheet filters them as dates), with the zone beside the first,
    and the age as a number."""
    text = exceptions_frame_from_table(table)
    uk = [
        pl.col(name).dt.convert_time_zone(UK_TZ).dt.replace_time_zone(None).alias(EXCEPTION_COLUMNS[label])
        for name, label in (("occasion_at", "when_uk"), ("arrival_at", "arrival_uk"))
    ]
    zone = pl.col("occasion_at").dt.convert_time_zone(UK_TZ).dt.strftime("%Z").alias(ZONE_LABEL)
    typed = table.select(*uk, zone, pl.col("age_at_occasion").alias(EXCEPTION_COLUMNS["age_at_occasion"]))
    replaced = text.with_columns(typed.drop(ZONE_LABEL))
    when = replaced.columns.index(EXCEPTION_COLUMNS["when_uk"])
    order = [*replaced.columns[: when + 1], ZONE_LABEL, *replaced.columns[when + 1 :]]
    return replaced.with_columns(typed.get_column(ZONE_LABEL)).select(order)


@dataclass(frozen=True)
class _Sheet:
    name: str
    frame: pl.DataFrame | None
    """Rows written by the fast path (None: the sheet is written by xlsxwriter itself)."""


def write_exceptions_xlsx(exceptions: pl.DataFrame, path: Path, *, result: CheckResult | None = None) -> None:
    """The exception list as a workbook: frozen header, autofilter, wrapped message column,
    every text a text cell, datetimes and numbers as numbers. Rows beyond Excel's limit go
    on to sheets "Exceptions (2)", ...

    With `result`, the workbook also has a Summary sheet first (coverage, headline figures,
    the s38(6) funnel, outcomes per rule, statistics), one sheet per rule with exceptions,
    and a Data quality sheet (rows counted by column and issue).

    xlsxwriter writes the workbook (styles, column widths, frozen pane, autofilter, header,
    the small sheets). Writing the exception rows through it costs about 15 µs a cell (over
    a minute for 400,000 exceptions), so they are instead rendered in polars, a chunk at a
    time, as the very XML xlsxwriter's `write_string` / `write_number` produce in
    constant_memory mode: inline string cells (`t="inlineStr"`), which a spreadsheet never
    evaluates as a formula, number or link, and number cells for datetimes and ages. A test
    checks the bytes are the same as xlsxwriter's for awkward text.
    """
    import xlsxwriter

    rows_per_sheet = XLSX_MAX_ROWS - 1
    headers = exceptions.columns
    wrapped = {EXCEPTION_COLUMNS["message"], EXCEPTION_COLUMNS["citation"], CERTIFICATE_NOTE_LABEL}
    widths = _column_widths(exceptions)

    def pieces(frame: pl.DataFrame, name: str) -> list[_Sheet]:
        total = frame.height
        ranges = [(start, min(total, start + rows_per_sheet)) for start in range(0, max(total, 1), rows_per_sheet)]
        return [
            _Sheet(name if number == 0 else f"{name} ({number + 1})"[:31], frame.slice(start, stop - start))
            for number, (start, stop) in enumerate(ranges)
        ]

    sheets: list[_Sheet] = []
    if result is not None:
        sheets.append(_Sheet("Summary", None))
    sheets += pieces(exceptions, "Exceptions")
    if result is not None:
        rule_label = EXCEPTION_COLUMNS["rule_id"]
        present = set(exceptions.get_column(rule_label).unique().to_list()) if exceptions.height else set()
        for rule in [r.rule_id for r in result.rules] + sorted(present - {r.rule_id for r in result.rules}):
            if rule in present:
                sheets += pieces(exceptions.filter(pl.col(rule_label) == rule), _sheet_name(rule))
        sheets.append(_Sheet("Data quality", None))

    skeleton = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        skeleton,
        {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False},
    )
    # The workbook's creation date is fixed, so the same exceptions give the same bytes
    # whenever they are written (xlsxwriter would record the time of writing).
    workbook.set_properties({"created": WORKBOOK_CREATED})
    header_format = workbook.add_format(
        {"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    text_format = workbook.add_format({"valign": "top"})
    wrap_format = workbook.add_format({"valign": "top", "text_wrap": True})
    date_format = workbook.add_format({"valign": "top", "num_format": EXCEL_DATETIME_FORMAT})
    fast: dict[int, pl.DataFrame] = {}
    for number, spec in enumerate(sheets, start=1):
        sheet = workbook.add_worksheet(spec.name)
        _print_setup(sheet)
        if spec.frame is None:
            assert result is not None
            if spec.name == "Summary":
                _write_summary(workbook, sheet, result, header_format)
            else:
                _write_data_quality(sheet, result, header_format, wrap_format)
            continue
        fast[number] = spec.frame
        for col, header in enumerate(headers):
            dtype = exceptions.schema[header]
            column_format = (
                date_format if isinstance(dtype, pl.Datetime) else wrap_format if header in wrapped else text_format
            )
            sheet.set_column(col, col, widths[col], column_format)
            sheet.write_string(0, col, header, header_format)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(spec.frame.height, 1), len(headers) - 1)
    workbook.close()

    with (
        zipfile.ZipFile(skeleton) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=_XLSX_COMPRESS_LEVEL) as target,
    ):
        for info in source.infolist():
            match = _XLSX_SHEET.fullmatch(info.filename)
            if match is None or int(match.group(1)) not in fast:
                target.writestr(info, source.read(info))
                continue
            rows = fast[int(match.group(1))]
            _write_sheet(target, info.filename, source.read(info).decode("utf-8"), _excel_text(rows))


def _sheet_name(name: str) -> str:
    """A name Excel accepts for a sheet: at most 31 characters, none of []:*?/\\."""
    return re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Rule"


def _print_setup(sheet: Any) -> None:
    """A4 landscape, one page wide, the header row on every page."""
    sheet.set_paper(9)
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)


def _write_summary(workbook: Any, sheet: Any, result: CheckResult, header: Any) -> None:
    """The Summary sheet: coverage, headline figures, the funnel, outcomes per rule, statistics."""
    bold = workbook.add_format({"bold": True})
    title = workbook.add_format({"bold": True, "font_size": 14})
    percent = workbook.add_format({"num_format": "0%"})
    sheet.set_column(0, 0, 44)
    sheet.set_column(1, 7, 14)
    row = 0
    sheet.write_string(row, 0, "Children in police custody: records checked against the law", title)
    row += 2
    meta = result.meta
    for label, value in (
        ("Tool version", str(meta.get("tool_version", ""))),
        ("Inputs", ", ".join(str(v) for v in (meta.get("inputs") or {}).values())),
        ("Inputs digest", str(meta.get("inputs_digest", ""))),
        ("Rules digest", str(meta.get("rules_digest", ""))),
        ("Held overnight means", str(meta.get("held_overnight", ""))),
    ):
        sheet.write_string(row, 0, label, bold)
        sheet.write_string(row, 1, value)
        row += 1
    row += 1
    sheet.write_string(row, 0, "Headline figures", header)
    row += 1
    for key, figure in result.headline.items():
        sheet.write_string(row, 0, HEADLINE_LABELS.get(key, key.replace("_", " ")))
        sheet.write_number(row, 1, int(figure))
        row += 1
    row += 1
    for col, label in enumerate(("The s38(6) funnel (custody records of children)", "Records", "Share of refused")):
        sheet.write_string(row, col, label, header)
    row += 1
    for step in funnel(result):
        sheet.write_string(row, 0, step.label)
        sheet.write_number(row, 1, step.count)
        if step.rate is not None:
            sheet.write_number(row, 2, step.rate, percent)
        row += 1
    row += 1
    labels = ("Rule", "Records", "Findings", "Breach", "Cannot assess", "Compliant", "Breach rate")
    for col, label in enumerate(labels):
        sheet.write_string(row, col, label, header)
    row += 1
    for rates in rule_rates(result).iter_rows(named=True):
        sheet.write_string(row, 0, rates["rule_id"])
        for col, key in enumerate(("records", "findings", "breach", "cannot_assess", "compliant"), start=1):
            sheet.write_number(row, col, rates[key])
        if rates["breach_rate"] is not None:
            sheet.write_number(row, 6, rates["breach_rate"], percent)
        row += 1
    row += 1
    sheet.write_string(row, 0, "Statistics that are never breaches (children's records)", header)
    row += 1
    overall = statistics_table(result).row(0, named=True)
    for key, label in STATISTICS_COLUMNS.items():
        sheet.write_string(row, 0, label)
        value = overall[key]
        if value is not None:
            sheet.write_number(row, 1, value, percent if key.startswith("aa_wait_over") else None)
        row += 1


def _write_data_quality(sheet: Any, result: CheckResult, header: Any, wrap: Any) -> None:
    """Data quality counted by table, column and issue (every row is in data_quality.csv)."""
    issues = data_quality_by_issue(result.data_quality)
    labels = ("Table", "Column", "Issue", "What happened", "Rows")
    for col, (label, width) in enumerate(zip(labels, (12, 22, 60, 20, 8), strict=True)):
        sheet.set_column(col, col, width, wrap if label == "Issue" else None)
        sheet.write_string(0, col, label, header)
    for row, values in enumerate(issues.iter_rows(), start=1):
        for col, value in enumerate(values[:4]):
            sheet.write_string(row, col, str(value or ""))
        sheet.write_number(row, 4, int(values[4]))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(issues.height, 1), len(labels) - 1)


def _excel_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Each text value as Excel stores a text cell: at most 32,767 UTF-16 units, control
    characters as _xHHHH_, then XML-escaped (`&`, `<`, `>`), as xlsxwriter does; each
    datetime (naive, UK legal time) and number as the text of its cell's number (a
    datetime as Excel's serial day count from 1899-12-30)."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]

    def any_match(pattern: str) -> dict[str, bool]:
        if not texts:
            return {}
        row = frame.select(pl.col(c).str.contains(pattern).any().fill_null(False) for c in texts).row(0)
        return {c: bool(v) for c, v in zip(texts, row, strict=True)}

    # Each step runs only on the columns that need it (usually none need the first two).
    long_text = (
        dict(
            zip(
                texts,
                frame.select(
                    (pl.col(c).str.len_chars() > XLSX_MAX_CELL_CHARS // 2).any().fill_null(False) for c in texts
                ).row(0),
                strict=True,
            )
        )
        if texts
        else {}
    )
    control = any_match(r"[\x00-\x08\x0B-\x1F\x{FFFE}\x{FFFF}]")
    markup = any_match("[&<>]")
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        value = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            days = value.dt.epoch("us").cast(pl.Float64) / 86_400_000_000 + _EXCEL_EPOCH_OFFSET
            exprs.append(days.cast(pl.String).alias(name))
            continue
        if dtype != pl.String:
            exprs.append(value.cast(pl.String).alias(name))
            continue
        if long_text[name]:
            value = value.map_elements(_utf16_truncate, return_dtype=pl.String, skip_nulls=True)
        if control[name]:
            value = value.str.replace_all(r"(_x[0-9a-fA-F]{4}_)", "_x005F${1}")
            for char in _XML_CONTROL:
                value = value.str.replace_all(char, f"_x{ord(char):04X}_", literal=True)
        if markup[name]:
            value = (
                value.str.replace_all("&", "&amp;", literal=True)
                .str.replace_all("<", "&lt;", literal=True)
                .str.replace_all(">", "&gt;", literal=True)
            )
        exprs.append(value.alias(name))
    numeric = [name for name, dtype in frame.schema.items() if dtype != pl.String]
    # Number cells are told apart by their column's name (the header is written separately).
    return frame.select(exprs).rename({name: _NUMERIC_PREFIX + name for name in numeric})


# Days from Excel's day 0 (1899-12-30, the 1900 date system) to the Unix epoch.
_EXCEL_EPOCH_OFFSET = 25_569.0
_NUMERIC_PREFIX = "\x1fn:"


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
        if name.startswith(_NUMERIC_PREFIX):
            cells.append(
                pl.when(value.is_not_null())
                .then(
                    pl.concat_str(
                        pl.lit(f'<c r="{letter}'), row_number, pl.lit(f'"{style}><v>'), value, pl.lit("</v></c>")
                    )
                )
                .otherwise(pl.lit(""))
            )
            continue
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
    """A width per column from its longest value (header included), between 8 and 60
    characters; a datetime column fits "yyyy-mm-dd hh:mm"."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    longest = dict.fromkeys(frame.columns, 0)
    if frame.height and texts:
        longest.update(
            zip(texts, frame.select(pl.col(c).str.len_chars().max().fill_null(0) for c in texts).row(0), strict=True)
        )
    widths: list[float] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            widths.append(float(max(len(name), 16) + 2))
            continue
        cap = 80 if name in (EXCEPTION_COLUMNS["message"], CERTIFICATE_NOTE_LABEL) else 40
        widths.append(float(min(max(len(name), int(longest[name] or 0), 8) + 2, cap)))
    return widths
