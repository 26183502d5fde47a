"""Spreadsheet formulas in an .xlsx record set are reported, not read as data: a formula with
no saved result, or one the workbook asks to recalculate (its saved result may be stale), is
a data-quality row and a missing value; a result Excel itself saved is read, with a warning."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from conftest import DEMO

from custody.pipeline import PreparedRules, findings_for
from custody.read.loader import load_record_set

RECORD = "DEMO-030"  # its first review, 6h50m after detention was authorised, is a breach


def _workbook(path: Path, frame: pl.DataFrame, formulas: dict[tuple[int, str], tuple[str, str | None]]) -> None:
    """`frame` as a sheet; `formulas` {(frame row, column): (formula, cached value or None)}."""
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, frame.columns)
    for index, row in enumerate(frame.iter_rows()):
        for column, value in enumerate(row):
            name = frame.columns[column]
            if (index, name) in formulas:
                formula, cached = formulas[(index, name)]
                sheet.write_formula(index + 1, column, formula, None, cached if cached is not None else 0)
            elif value is not None:
                sheet.write_string(index + 1, column, value)
    book.close()


def _set_recalculation(path: Path, on: bool) -> None:
    """xlsxwriter asks for recalculation on load (Excel's own files do not), and always saves a
    result (0 when given none; programs that do not compute formulas save none)."""
    rewritten = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/workbook.xml" and not on:
                data = data.replace(b' fullCalcOnLoad="1"', b"")
            if info.filename.startswith("xl/worksheets/"):
                data = data.replace(b"</f><v>0</v>", b"</f>")
            target.writestr(info, data)
    rewritten.replace(path)


def _records(tmp_path: Path, cached: str | None, recalculate: bool) -> tuple[Path, int]:
    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copy(DEMO / "detentions.csv", folder / "detentions.csv")
    events = pl.read_csv(DEMO / "events.csv", infer_schema=False)
    index = events.with_row_index().filter(
        (pl.col("custody_record_id") == RECORD) & (pl.col("event_type") == "review")
    )["index"][0]
    _workbook(folder / "events.xlsx", events, {(index, "event_time"): ('=TEXT(NOW(),"yyyy-mm-dd hh:mm")', cached)})
    _set_recalculation(folder / "events.xlsx", recalculate)
    return folder, index + 2


@pytest.mark.parametrize(
    ("cached", "recalculate", "kind"),
    [("2022-05-12 16:35", True, "may be stale"), (None, False, "no saved result")],
)
def test_an_untrusted_formula_is_reported_and_not_read(
    tmp_path: Path, prepared_rules: PreparedRules, cached: str | None, recalculate: bool, kind: str
) -> None:
    folder, row = _records(tmp_path, cached, recalculate)
    records = load_record_set(folder)
    formula = records.data_quality.filter(pl.col("reason").str.contains("formula"))
    assert formula.height == 1
    problem = formula.row(0, named=True)
    assert (problem["file"], problem["row"], problem["column"]) == ("events.xlsx", row, "event_time")
    assert problem["action"] == "value_unusable"
    assert kind in problem["reason"]
    assert problem["custody_record_id"] == RECORD
    _, findings = findings_for(records, prepared_rules)
    review = findings.filter(
        (pl.col("custody_record_id") == RECORD) & (pl.col("rule_id").cast(pl.String) == "PACE-REVIEW")
    )
    assert review["outcome"].cast(pl.String).to_list() == ["cannot_assess"]


def test_a_result_excel_saved_is_read_with_a_warning(tmp_path: Path, prepared_rules: PreparedRules) -> None:
    folder, row = _records(tmp_path, "2022-05-12 16:35", recalculate=False)
    records = load_record_set(folder)
    problem = records.data_quality.row(0, named=True)
    assert records.data_quality.height == 1
    assert (problem["row"], problem["action"], problem["value"]) == (row, "warning", "2022-05-12 16:35")
    _, findings = findings_for(records, prepared_rules)
    review = findings.filter(
        (pl.col("custody_record_id") == RECORD) & (pl.col("rule_id").cast(pl.String) == "PACE-REVIEW")
    )
    assert review["outcome"].cast(pl.String).to_list() == ["breach"]


def test_through_a_profile_a_formula_is_reported_in_the_exports_terms(
    tmp_path: Path, prepared_rules: PreparedRules
) -> None:
    from custody.read.profile import load_profile, load_with_profile

    folder = tmp_path / "wide"
    folder.mkdir()
    source = DEMO.parent / "export_wide"
    export = pl.read_csv(source / "custody_export.csv", infer_schema=False)
    index = export.with_row_index().filter(pl.col("Custody_Ref") == RECORD)["index"][0]
    _workbook(folder / "custody_export.xlsx", export, {(index, "Review_1_Time"): ("=TIME(16,35,0)", "16:35")})
    profile = (source / "profile.yaml").read_text().replace("custody_export.csv", "custody_export.xlsx")
    (folder / "profile.yaml").write_text(profile)
    records = load_with_profile(load_profile(folder / "profile.yaml"), folder)
    problem = records.data_quality.row(0, named=True)
    assert records.data_quality.height == 1
    assert (problem["file"], problem["row"], problem["column"]) == (
        "custody_export.xlsx",
        index + 2,
        "Review_1_Date + Review_1_Time (event_time)",
    )
    assert problem["value"] == "12/05/2022 16:35"
    assert problem["reason"].startswith("Review_1_Time is a spreadsheet formula")
    _, findings = findings_for(records, prepared_rules)
    review = findings.filter(
        (pl.col("custody_record_id") == RECORD) & (pl.col("rule_id").cast(pl.String) == "PACE-REVIEW")
    )
    assert review["outcome"].cast(pl.String).to_list() == ["cannot_assess"]
