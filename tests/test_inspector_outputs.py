"""What an inspector opens: the workbook (dates filter as dates, a summary, a sheet per
rule), CSVs that Excel reads by double-click, the report's exceptions by child, data
quality by column and issue, the terminal summary, and an --out folder holding one run."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import REINSPECTION, dq_row, make_result
from rich.console import Console

from custody.findings import CheckResult, data_quality_by_issue
from custody.outputs import parse_formats, write_outputs
from custody.pipeline import run_check
from custody.render.html import render_html
from custody.render.terminal import print_summary, progress


@pytest.fixture(scope="module")
def reinspection() -> CheckResult:
    return run_check(REINSPECTION, include_notes=False)


@pytest.fixture(scope="module")
def reinspection_with_notes() -> CheckResult:
    return run_check(REINSPECTION, include_notes=True)


@pytest.fixture(scope="module")
def workbook(reinspection: CheckResult, tmp_path_factory: pytest.TempPathFactory) -> openpyxl.Workbook:
    out = tmp_path_factory.mktemp("xlsx")
    write_outputs(reinspection, out, formats=parse_formats("xlsx"))
    return openpyxl.load_workbook(out / "exceptions.xlsx")


def exception_findings(result: CheckResult) -> pl.DataFrame:
    """The run's breach and cannot_assess findings, read from its findings table."""
    return result.findings.lazy().filter(pl.col("outcome").cast(pl.String) != "compliant").collect()


def sheet_rows(workbook: openpyxl.Workbook, name: str) -> list[dict[str, object]]:
    rows = list(workbook[name].iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_the_workbook_has_a_summary_the_exceptions_a_sheet_per_rule_and_data_quality(
    workbook: openpyxl.Workbook, reinspection: CheckResult
) -> None:
    found = exception_findings(reinspection)
    with_exceptions = sorted(set(found["rule_id"].cast(pl.String)))
    assert {"S38-CERTIFICATE", "S38-COURT", "S38-GROUNDS", "S38-REQUEST", "S38-TRANSFER"} <= set(with_exceptions)
    assert workbook.sheetnames == ["Summary", "Exceptions", *with_exceptions, "Data quality"]
    exceptions = sheet_rows(workbook, "Exceptions")
    assert len(exceptions) == found.height
    for rule in ("S38-CERTIFICATE", "S38-REQUEST", "S38-TRANSFER"):
        assert {row["Rule"] for row in sheet_rows(workbook, rule)} == {rule}
    assert sum(len(sheet_rows(workbook, name)) for name in workbook.sheetnames[2:-1]) == found.height


def test_the_occasion_and_arrival_are_excel_datetimes_in_uk_time(workbook: openpyxl.Workbook) -> None:
    first = sheet_rows(workbook, "Exceptions")[0]
    # C-1502: bail refused at 22:50 UTC on 10 June 2015, 23:50 BST; arrived 16:20 UTC, 17:20 BST
    assert first["Child"] == "C-1502"
    assert first["When (UK time)"] == dt.datetime(2015, 6, 10, 23, 50)
    assert first["GMT/BST"] == "BST"
    assert first["Arrival (UK time)"] == dt.datetime(2015, 6, 10, 17, 20)
    assert first["Age at the time"] == 16
    assert first["Force"] == "Anyshire Police"
    assert first["Looked after"] == "no"
    cell = workbook["Exceptions"]["F2"]
    assert cell.is_date
    assert cell.number_format == "yyyy-mm-dd hh:mm"


def test_the_exception_sheet_is_ready_to_filter_and_print(
    workbook: openpyxl.Workbook, reinspection: CheckResult
) -> None:
    sheet = workbook["Exceptions"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:R{exception_findings(reinspection).height + 1}"  # header and every row
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.paperSize == 9  # A4
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.column_dimensions["H"].width > 40  # what was found


def test_the_summary_sheet_has_the_funnel_and_the_rules(workbook: openpyxl.Workbook) -> None:
    rows = [row for row in workbook["Summary"].iter_rows(values_only=True) if row[0] is not None]
    funnel = {row[0]: row[1:3] for row in rows if row[0] in ("Charged and refused bail", "Local authority asked")}
    assert funnel["Charged and refused bail"] == (12, 1)
    assert funnel["Local authority asked"] == (9, 0.75)
    rules = {row[0]: row for row in rows if str(row[0]).startswith("S38-")}
    assert rules["S38-REQUEST"][1:6] == (12, 12, 3, 0, 9)


def test_with_notes_the_certificate_circumstances_have_their_own_column(
    reinspection_with_notes: CheckResult, reinspection: CheckResult, tmp_path: Path
) -> None:
    write_outputs(reinspection_with_notes, tmp_path / "with", formats=parse_formats("exceptions,xlsx,html"))
    write_outputs(reinspection, tmp_path / "without", formats=parse_formats("exceptions,xlsx,html"))
    label = "Circumstances stated on the certificate"
    book = openpyxl.load_workbook(tmp_path / "with" / "exceptions.xlsx")
    notes = {row["Custody record"]: row[label] for row in sheet_rows(book, "Exceptions")}
    assert notes["ANY-15-03518"] == "No beds available"
    with_csv = pl.read_csv(tmp_path / "with" / "exceptions.csv", infer_schema_length=0)
    assert label in with_csv.columns
    assert "No beds available" in (tmp_path / "with" / "report.html").read_text()
    # Without --include-notes, no note reaches any file.
    for name in ("exceptions.csv", "report.html"):
        text = (tmp_path / "without" / name).read_text(encoding="utf-8-sig")
        assert "No beds available" not in text
        assert label not in text
    plain = openpyxl.load_workbook(tmp_path / "without" / "exceptions.xlsx")
    assert label not in next(plain["Exceptions"].iter_rows(values_only=True))


def test_csvs_for_people_open_in_excel_and_machine_files_stay_plain(reinspection: CheckResult, tmp_path: Path) -> None:
    write_outputs(reinspection, tmp_path, formats=parse_formats("all"))
    bom = "\ufeff".encode()
    assert (tmp_path / "exceptions.csv").read_bytes().startswith(bom + b"Child,")
    assert (tmp_path / "children.csv").read_bytes().startswith(bom + b"person_id,")
    assert (tmp_path / "findings.csv").read_bytes().startswith(b"person_id,")
    assert (tmp_path / "data_quality.csv").read_bytes().startswith(b"file,")


def test_the_report_groups_exceptions_by_child_then_record_with_link_targets(reinspection: CheckResult) -> None:
    page = render_html(reinspection)
    assert '<section class="child" id="child-C-1502">' in page
    assert '<div class="record" id="record-ANY-15-03402">' in page
    assert 'href="#record-ANY-15-03402"' in page
    # One heading per child, however many findings they have.
    assert page.count('id="child-C-1502"') == 1
    found = exception_findings(reinspection)
    assert f"{found.height} findings need case review ({found['person_id'].n_unique()} children)" in page
    assert "Records as of" not in page


def test_data_quality_is_counted_by_column_and_issue_not_by_value_or_row() -> None:
    quality = pl.DataFrame(
        [
            dq_row(
                table="detentions",
                column="custody_record_id",
                value="A",
                action="row_rejected",
                reason="custody_record_id appears on rows 6 and 7 with different values; fix the extract",
            ),
            dq_row(
                table="detentions",
                column="custody_record_id",
                value="B",
                action="row_rejected",
                reason="custody_record_id appears on rows 16 and 27 with different values; fix the extract",
            ),
            dq_row(
                table="events",
                column="event_time",
                value="31/02/2020",
                action="row_rejected",
                reason="event_time is not a real date and time: check the day, month, hour and minute",
            ),
        ]
    )
    groups = data_quality_by_issue(quality)
    assert groups.rows() == [
        ("detentions", "custody_record_id", "appears on rows # and # with different values", "row_rejected", 2),
        ("events", "event_time", "is not a real date and time", "row_rejected", 1),
    ]
    result = make_result([], [], [dict(r) for r in quality.to_dicts()])
    page = render_html(result)
    assert "appears on rows # and # with different values" in page


def test_the_terminal_summary_fits_80_columns_and_shows_the_funnel(reinspection: CheckResult) -> None:
    console = Console(record=True, width=80, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    print_summary(console, reinspection, [Path("out/summary.json")])
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "12 refused bail → 9 LA asked (75%) → 2 moved (17%) → 2 certificate (17%)" in text
    assert "Breach rate" in text


def test_progress_shows_only_on_a_terminal() -> None:
    piped = Console(file=io.StringIO(), force_terminal=False)
    with progress(piped) as show:
        show("Evaluating 13 rules over 1,000 records")
    assert piped.file.getvalue() == ""  # type: ignore[attr-defined]
    terminal = Console(file=io.StringIO(), force_terminal=True, width=80)
    with progress(terminal) as show:
        show("Evaluating 13 rules over 1,000 records")
    # The live display is drawn on the terminal while the block runs (then cleared).
    assert "Evaluating 13 rules over 1,000 records" in terminal.file.getvalue()  # type: ignore[attr-defined]


def test_out_holds_one_run_files_an_earlier_run_listed_are_removed(reinspection: CheckResult, tmp_path: Path) -> None:
    write_outputs(reinspection, tmp_path, formats=parse_formats("all"))
    # An earlier run (another version, say) also wrote diff.html and listed it in its manifest.
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary["manifest"]["diff.html"] = {"bytes": 1, "sha256": "0"}
    summary["manifest"]["../outside.txt"] = {"bytes": 1, "sha256": "0"}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "diff.html").write_text("earlier run")
    (tmp_path / "notes-of-mine.txt").write_text("not written by a run")
    (tmp_path.parent / "outside.txt").write_text("never touched")
    write_outputs(reinspection, tmp_path, formats=parse_formats("csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.csv", "notes-of-mine.txt", "summary.json"]
    assert (tmp_path.parent / "outside.txt").exists()
