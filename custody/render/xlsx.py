"""exceptions.xlsx: the exception list as an Excel workbook in which no cell is ever evaluated."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import polars as pl

from custody.findings import EXCEPTION_COLUMNS

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
    # The workbook's creation date is fixed, so the same exceptions give the same bytes
    # whenever they are written (xlsxwriter would record the time of writing).
    workbook.set_properties({"created": WORKBOOK_CREATED})
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
