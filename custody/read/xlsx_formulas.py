"""Spreadsheet formulas in an .xlsx record set: reported, not read as data.

A cell holding a formula stores the formula and, if the program that saved the workbook
computed it, the result it computed then (the cached value); the reader (fastexcel) reads
that cached value as if it had been typed. A workbook written by a program that does not
compute formulas holds none (or a placeholder 0) and asks the spreadsheet to recalculate on
opening (`fullCalcOnLoad`); a cached value can also be stale, computed before the cells it
refers to changed. Either way it is not the record: such a cell is reported in data quality
and treated as missing. A formula whose result Excel itself saved (no recalculation pending)
is read, with a warning.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REF = re.compile(r"^([A-Z]+)([0-9]+)$")
_SHEET = re.compile(r"xl/worksheets/sheet(\d+)\.xml")

FormulaState = Literal["absent", "stale", "saved"]


@dataclass(frozen=True)
class FormulaCell:
    row: int
    """The sheet's row number (the header is row 1)."""
    column: int
    """0-based, counted from the sheet's first used column."""
    state: FormulaState


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index - 1


def _has_formula(book: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether the sheet holds any formula, from its bytes (no XML parsing: most do not)."""
    tail = b""
    with book.open(info) as sheet:
        while chunk := sheet.read(1 << 20):
            if b"<f>" in tail + chunk or b"<f " in tail + chunk:
                return True
            tail = chunk[-3:]
    return False


def formula_cells(path: Path) -> list[FormulaCell]:
    """The formula cells of the first worksheet (the one the loader reads); [] if none, or if
    the workbook cannot be opened (the reader then says what is wrong with it)."""
    try:
        with zipfile.ZipFile(path) as book:
            sheets = sorted(
                (i for i in book.infolist() if _SHEET.fullmatch(i.filename)),
                key=lambda i: int(_SHEET.fullmatch(i.filename).group(1)),  # type: ignore[union-attr]
            )
            if not sheets or not _has_formula(book, sheets[0]):
                return []
            workbook = book.read("xl/workbook.xml") if "xl/workbook.xml" in book.namelist() else b""
            recalculate = re.search(rb'fullCalcOnLoad="(1|true)"', workbook) is not None
            return _cells(book, sheets[0], recalculate)
    except (zipfile.BadZipFile, OSError, ElementTree.ParseError, KeyError):
        return []


def _cells(book: zipfile.ZipFile, info: zipfile.ZipInfo, recalculate: bool) -> list[FormulaCell]:
    found: list[FormulaCell] = []
    first_column: int | None = None
    with book.open(info) as sheet:
        for _event, element in ElementTree.iterparse(sheet, events=("end",)):
            if element.tag == f"{_MAIN}dimension":
                start = _REF.match(element.get("ref", "").split(":")[0])
                first_column = _column_index(start.group(1)) if start else 0
            elif element.tag == f"{_MAIN}c":
                if element.find(f"{_MAIN}f") is not None:
                    ref = _REF.match(element.get("r", ""))
                    if ref:
                        cached = element.find(f"{_MAIN}v")
                        state: FormulaState = (
                            "absent"
                            if cached is None or not (cached.text or "").strip()
                            else "stale"
                            if recalculate
                            else "saved"
                        )
                        column = _column_index(ref.group(1)) - (first_column or 0)
                        found.append(FormulaCell(int(ref.group(2)), column, state))
                element.clear()
            elif element.tag == f"{_MAIN}row":
                element.clear()
    return found
