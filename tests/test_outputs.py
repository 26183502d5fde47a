"""The files of `custody check`: contract columns, per-child roll-up, exception list, spreadsheet
safety, atomic and deterministic writes (DATA-CONTRACT.md, "Output")."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest
from conftest import FORMULA_MESSAGE, FORMULA_PERSON, FORMULA_RECORD, RULES, finding, make_result

from custody import outputs
from custody.contract import DATA_QUALITY_SCHEMA, FINDINGS_SCHEMA
from custody.errors import UsageError
from custody.findings import CHILDREN_COLUMNS, EXCEPTION_COLUMNS, CheckResult
from custody.outputs import FORMATS, parse_formats, write_outputs
from custody.render import xlsx
from custody.render.csv import csv_safe


def read_csv_rows(path: Path) -> list[list[str]]:
    # utf-8-sig: exceptions.csv and children.csv start with a byte order mark (for Excel).
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def read_csv_dicts(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def excel_columns() -> list[str]:
    """The exception sheet's columns: exceptions.csv's, with the zone after the occasion's time."""
    labels = list(EXCEPTION_COLUMNS.values())
    when = labels.index(EXCEPTION_COLUMNS["when_uk"])
    return [*labels[: when + 1], xlsx.ZONE_LABEL, *labels[when + 1 :]]


def written_names(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


# ---------------------------------------------------------------- formats


def test_all_formats_are_parsed_and_summary_is_always_written() -> None:
    assert parse_formats("all") == frozenset(FORMATS)
    assert parse_formats(" Parquet , csv ") == frozenset({"parquet", "csv", "summary"})
    assert parse_formats("summary") == frozenset({"summary"})


@pytest.mark.parametrize("text", ["parquet,pdf", "", " , "])
def test_an_unknown_or_empty_format_is_a_usage_error_naming_the_valid_ones(text: str) -> None:
    with pytest.raises(UsageError) as error:
        parse_formats(text)
    message = str(error.value)
    assert all(name in message for name in FORMATS)
    assert message.count(".") >= 1
    assert "\n" not in message


def test_a_subset_of_formats_writes_only_those_files_and_the_summary(result: CheckResult, tmp_path: Path) -> None:
    written = write_outputs(result, tmp_path / "out", formats=parse_formats("parquet"))
    assert [p.name for p in written] == ["findings.parquet", "summary.json"]
    assert written_names(tmp_path / "out") == {"findings.parquet", "summary.json"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["formats"] == ["parquet", "summary"]
    assert summary["files"] == ["findings.parquet", "summary.json"]


# ---------------------------------------------------------------- columns


def test_every_file_exists_with_exactly_the_contract_columns_in_order(result: CheckResult, tmp_path: Path) -> None:
    written = write_outputs(result, tmp_path, formats=parse_formats("all"))
    assert written_names(tmp_path) == {
        "findings.parquet",
        "findings.csv",
        "children.csv",
        "exceptions.csv",
        "exceptions.xlsx",
        "data_quality.csv",
        "summary.json",
        "report.html",
    }
    assert written[-1].name == "summary.json"

    parquet = pl.read_parquet(tmp_path / "findings.parquet")
    assert parquet.schema == FINDINGS_SCHEMA
    assert parquet.height == 7
    assert read_csv_rows(tmp_path / "findings.csv")[0] == FINDINGS_SCHEMA.names()
    assert read_csv_rows(tmp_path / "children.csv")[0] == list(CHILDREN_COLUMNS)
    assert read_csv_rows(tmp_path / "exceptions.csv")[0] == list(EXCEPTION_COLUMNS.values())
    assert read_csv_rows(tmp_path / "data_quality.csv")[0] == DATA_QUALITY_SCHEMA.names()
    assert len(read_csv_rows(tmp_path / "data_quality.csv")) == 1 + 3


def test_findings_csv_gives_trigger_at_as_utc_with_z(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("csv"))
    rows = read_csv_dicts(tmp_path / "findings.csv")
    assert rows[0]["trigger_at"] == "2019-10-26T22:00:00Z"
    assert [r["trigger_at"] for r in rows if r["custody_record_id"] == "R6"] == [""]


def test_extra_engine_columns_are_not_written(result: CheckResult, tmp_path: Path) -> None:
    result.findings = result.findings.with_columns(pl.lit(1).alias("internal_debug"))
    write_outputs(result, tmp_path, formats=parse_formats("csv,parquet"))
    assert read_csv_rows(tmp_path / "findings.csv")[0] == FINDINGS_SCHEMA.names()
    assert pl.read_parquet_schema(tmp_path / "findings.parquet") == FINDINGS_SCHEMA


# ---------------------------------------------------------------- children


def test_children_has_one_row_per_child_including_one_no_rule_applied_to(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("children"))
    children = {row["person_id"]: row for row in read_csv_dicts(tmp_path / "children.csv")}
    assert len(children) == 4
    assert children["C1"] == {
        "person_id": "C1",
        "records": "2",
        "rules_applied": "4",
        "breaches": "1",
        "compliant": "2",
        "cannot_assess": "1",
        "worst_outcome": "breach",
        "rules_breached": "S38-REQUEST",
        # arrival 20:00 UTC on 26 October 2019 is 21:00 BST; 01:30 UTC on the 27th is 01:30 GMT
        "first_arrival": "2019-10-26T21:00:00+01:00",
        "last_arrival": "2019-10-27T01:30:00+00:00",
        # a result built without the per-record counts counts no search and no interview
        "strip_searches": "0",
        "interviews": "0",
        # these records carry no times of leaving custody or of the appropriate adult: unknown
        "held_overnight_pre_charge": "",
        "held_overnight_post_charge": "",
        "longest_aa_wait_minutes": "",
    }
    assert children["C2"]["worst_outcome"] == "cannot_assess"
    assert children["C2"]["records"] == "2"
    assert children["C3"] == {
        "person_id": "C3",
        "records": "1",
        "rules_applied": "0",
        "breaches": "0",
        "compliant": "0",
        "cannot_assess": "0",
        "worst_outcome": "none",
        "rules_breached": "",
        "first_arrival": "2022-02-02T02:02:00+00:00",
        "last_arrival": "2022-02-02T02:02:00+00:00",
        "strip_searches": "0",
        "interviews": "0",
        "held_overnight_pre_charge": "",
        "held_overnight_post_charge": "",
        "longest_aa_wait_minutes": "",
    }


def test_rules_breached_are_sorted_and_distinct(tmp_path: Path) -> None:
    result = make_result(
        [
            finding("C1", "R1", "S38-TRANSFER", "breach", "2020-01-01T00:00:00"),
            finding("C1", "R1", "S38-REQUEST", "breach", "2020-01-01T00:00:00"),
            finding("C1", "R2", "S38-REQUEST", "breach", "2020-02-01T00:00:00"),
            finding("C1", "R2", "PACE-AA", "compliant", "2020-02-01T00:00:00"),
        ],
        [("C1", "R1", "2020-01-01T00:00:00", 2), ("C1", "R2", "2020-02-01T00:00:00", 2)],
    )
    write_outputs(result, tmp_path, formats=parse_formats("children"))
    (child,) = read_csv_dicts(tmp_path / "children.csv")
    assert child["rules_breached"] == "S38-REQUEST;S38-TRANSFER"
    assert child["breaches"] == "3"


def test_a_child_with_only_compliant_findings_is_compliant(tmp_path: Path) -> None:
    result = make_result(
        [finding("C1", "R1", "PACE-AA", "compliant", "2020-01-01T00:00:00")],
        [("C1", "R1", "2020-01-01T00:00:00", 1)],
    )
    write_outputs(result, tmp_path, formats=parse_formats("children"))
    (child,) = read_csv_dicts(tmp_path / "children.csv")
    assert child["worst_outcome"] == "compliant"


# ---------------------------------------------------------------- exceptions


def test_exceptions_are_breaches_and_cannot_assess_by_child_then_time(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("exceptions"))
    rows = read_csv_dicts(tmp_path / "exceptions.csv")
    # sorted by the id as recorded: "=" sorts before "C"
    assert [(r["Child"], r["Custody record"], r["Rule"], r["Outcome"]) for r in rows] == [
        ("'" + FORMULA_PERSON, "'" + FORMULA_RECORD, "PACE-AA", "breach"),
        ("C1", "R1", "PACE-AA", "cannot_assess"),  # 20:05 UTC before 22:00 UTC
        ("C1", "R1", "S38-REQUEST", "breach"),
        ("C2", "R6", "PACE-AA", "cannot_assess"),
    ]
    assert rows[1]["When (UK time)"] == "2019-10-26 21:05:00 BST"
    assert rows[0]["When (UK time)"] == "2021-06-01 13:00:00 BST"
    assert rows[3]["When (UK time)"] == ""
    assert rows[2]["Law"] == "PACE 1984 s38(6)"
    assert rows[2]["Rule version"] == "1984-01-01"
    assert "Evidence" not in rows[0]


# ---------------------------------------------------------------- spreadsheet safety


def test_formula_text_is_inert_in_every_csv(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("csv,children,exceptions,data_quality"))
    findings = read_csv_dicts(tmp_path / "findings.csv")
    bad = next(r for r in findings if r["outcome"] == "breach" and r["rule_id"] == "PACE-AA")
    assert bad["person_id"] == "'" + FORMULA_PERSON
    assert bad["custody_record_id"] == "'+1"
    assert bad["message"] == "'" + FORMULA_MESSAGE
    children = read_csv_dicts(tmp_path / "children.csv")
    assert "'" + FORMULA_PERSON in {c["person_id"] for c in children}
    quality = read_csv_dicts(tmp_path / "data_quality.csv")
    assert quality[0]["value"] == "'-2"
    assert quality[0]["row"] == "7"
    assert quality[1]["value"].startswith("'=cmd")
    assert quality[1]["event_type"] == "'=cmd"
    for name in ("findings.csv", "children.csv", "exceptions.csv", "data_quality.csv"):
        for row in read_csv_rows(tmp_path / name):
            for cell in row:
                assert not re.match(r"[=+\-@\t\r]", cell), (name, cell)


def test_numbers_are_not_neutralised_but_numeric_looking_text_is() -> None:
    frame = pl.DataFrame({"n": [-2, 3], "text": ["-2", "\tx"], "tab": ["\ry", "ok"]})
    safe = csv_safe(frame)
    assert safe.get_column("n").to_list() == [-2, 3]
    assert safe.get_column("text").to_list() == ["'-2", "'\tx"]
    assert safe.get_column("tab").to_list() == ["'\ry", "ok"]


def xlsx_parts(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist() if name.endswith(".xml")}


def test_xlsx_cells_are_strings_with_frozen_header_and_autofilter(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("xlsx"))
    parts = xlsx_parts(tmp_path / "exceptions.xlsx")
    sheet = parts["xl/worksheets/sheet2.xml"]  # after the Summary sheet
    assert "<f>" not in sheet
    assert "<f " not in sheet
    assert re.search(r'<pane [^>]*ySplit="1"[^>]*state="frozen"', sheet)
    assert '<autoFilter ref="A1:R5"' in sheet
    assert "<cols>" in sheet
    assert "wrapText" in parts["xl/styles.xml"]
    frame = pl.read_excel(tmp_path / "exceptions.xlsx", sheet_name="Exceptions", infer_schema_length=0)
    assert frame.columns == excel_columns()
    assert frame.height == 4
    first = frame.row(0, named=True)
    # A string cell is never evaluated, so the XLSX keeps the text exactly as recorded.
    assert first["Child"] == FORMULA_PERSON
    assert first["Custody record"] == FORMULA_RECORD
    assert first["What was found"] == FORMULA_MESSAGE


def test_xlsx_continues_on_further_sheets_beyond_the_row_limit(
    result: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "XLSX_MAX_ROWS", 3)  # header + 2 rows per sheet
    write_outputs(result, tmp_path, formats=parse_formats("xlsx"))
    sheets = pl.read_excel(tmp_path / "exceptions.xlsx", sheet_id=0, infer_schema_length=0)
    assert list(sheets) == [
        "Summary",
        "Exceptions",
        "Exceptions (2)",
        "S38-REQUEST",  # one sheet per rule with exceptions, in the rules' order
        "PACE-AA",
        "PACE-AA (2)",
        "Data quality",
    ]
    exception_sheets = [sheets["Exceptions"], sheets["Exceptions (2)"]]
    assert [s.height for s in exception_sheets] == [2, 2]
    assert all(s.columns == excel_columns() for s in exception_sheets)
    combined = pl.concat(exception_sheets)
    assert combined.get_column("Rule").to_list() == ["PACE-AA", "PACE-AA", "S38-REQUEST", "PACE-AA"]
    assert [sheets[name].height for name in ("S38-REQUEST", "PACE-AA", "PACE-AA (2)")] == [1, 2, 1]


def test_an_empty_exception_list_still_has_a_header(tmp_path: Path) -> None:
    result = make_result(
        [finding("C1", "R1", "PACE-AA", "compliant", "2020-01-01T00:00:00")],
        [("C1", "R1", "2020-01-01T00:00:00", 1)],
    )
    write_outputs(result, tmp_path, formats=parse_formats("exceptions,xlsx"))
    assert read_csv_rows(tmp_path / "exceptions.csv") == [list(EXCEPTION_COLUMNS.values())]
    frame = pl.read_excel(tmp_path / "exceptions.xlsx", sheet_name="Exceptions", infer_schema_length=0)
    assert frame.columns == excel_columns()
    assert frame.height == 0
    assert "<autoFilter" in xlsx_parts(tmp_path / "exceptions.xlsx")["xl/worksheets/sheet2.xml"]


AWKWARD_TEXT = [
    "plain",
    " leading and trailing space ",
    "tab\tand\nnew line",
    "ampersand & <angle> \"quotes\" 'single'",
    "control \x00\x01\x1f and \x0b",
    "a literal _x0041_ escape and _xFFFF_",
    "emoji 🚓 and accents é ü",
    "\ufffe non-character \uffff",
    "=SUM(A1:A2)",
    "+44 20 7946 0000",
    "-1",
    "@cmd",
    "0012345",
    "1E10",
    "https://example.org/x",
    "x" * 40_000,
    "🚓" * 20_000,
    "",
]


def test_xlsx_rows_are_the_bytes_xlsxwriter_write_string_produces(tmp_path: Path) -> None:
    """The rows are rendered in polars for speed; they must be exactly what xlsxwriter's
    own `write_string` writes in constant_memory mode (inline string cells)."""
    import xlsxwriter

    labels = list(EXCEPTION_COLUMNS.values())
    values = [AWKWARD_TEXT[(i + j) % len(AWKWARD_TEXT)] for i in range(len(AWKWARD_TEXT)) for j in range(1)]
    frame = pl.DataFrame({label: [*values[j:], *values[:j]] for j, label in enumerate(labels)}).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col(labels[2])).alias(labels[2])
    )
    ours = tmp_path / "ours.xlsx"
    xlsx.write_exceptions_xlsx(frame, ours)

    reference = tmp_path / "reference.xlsx"
    workbook = xlsxwriter.Workbook(str(reference), {"constant_memory": True, "strings_to_formulas": False})
    header_format = workbook.add_format(
        {"bold": True, "bg_color": "#DDE4EE", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    text_format = workbook.add_format({"valign": "top"})
    wrap_format = workbook.add_format({"valign": "top", "text_wrap": True})
    sheet = workbook.add_worksheet("Exceptions")
    for col, label in enumerate(labels):
        sheet.set_column(col, col, 10, wrap_format if label in ("What was found", "Law") else text_format)
        sheet.write_string(0, col, label, header_format)
    for row, values_in_row in enumerate(frame.iter_rows(), start=1):
        for col, value in enumerate(values_in_row):
            if value is not None:
                sheet.write_string(row, col, value)
    workbook.close()

    def data_rows(path: Path) -> str:
        xml = xlsx_parts(path)["xl/worksheets/sheet1.xml"]
        return xml[xml.index('<row r="2"') : xml.index("</sheetData>")]

    # Style numbers are the workbook's own (xlsxwriter numbers them differently in its two
    # modes); which style each cell has is checked below.
    def without_styles(xml: str) -> str:
        return re.sub(r' s="\d+"', "", xml)

    assert without_styles(data_rows(ours)) == without_styles(data_rows(reference))
    parts = xlsx_parts(ours)
    cell_formats = re.findall(r"<xf [^>]*?(?:/>|>.*?</xf>)", parts["xl/styles.xml"].split("<cellXfs", 1)[1])
    sheet = parts["xl/worksheets/sheet1.xml"]
    message_column = chr(ord("A") + labels.index("What was found"))
    message_style = int(re.search(rf'<c r="{message_column}2" s="(\d+)"', sheet).group(1))  # type: ignore[union-attr]
    child_style = int(re.search(r'<c r="A2" s="(\d+)"', sheet).group(1))  # type: ignore[union-attr]
    assert 'wrapText="1"' in cell_formats[message_style]
    assert 'vertical="top"' in cell_formats[child_style]
    assert "wrapText" not in cell_formats[child_style]
    # Read back, the text is as written (the two Unicode non-characters excepted: the
    # reader leaves Excel's _xFFFE_ escape as it is).
    back = pl.read_excel(ours, infer_schema_length=0).get_column("Child").to_list()
    written = frame.get_column("Child").to_list()
    assert [b for b, w in zip(back, written, strict=True) if "\ufffe" not in w and len(w) < 1000] == [
        w for w in written if "\ufffe" not in w and len(w) < 1000
    ]


def test_xlsx_text_that_looks_like_markup_stays_text(tmp_path: Path) -> None:
    # xlsxwriter itself would pass "<r>...</r>" through as raw rich-text XML; we never do.
    frame = pl.DataFrame({label: ["<r><t>x</t></r>"] for label in EXCEPTION_COLUMNS.values()})
    xlsx.write_exceptions_xlsx(frame, tmp_path / "x.xlsx")
    back = pl.read_excel(tmp_path / "x.xlsx", infer_schema_length=0)
    assert back.row(0) == tuple(["<r><t>x</t></r>"] * len(EXCEPTION_COLUMNS))


# ---------------------------------------------------------------- atomic, deterministic


def test_no_temporary_files_are_left_behind(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path / "new" / "folder", formats=parse_formats("all"))
    assert not [p for p in (tmp_path / "new" / "folder").iterdir() if ".tmp-" in p.name]


def test_a_failure_mid_write_leaves_no_partial_file_under_the_final_name(
    result: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(frame: pl.DataFrame, path: Path) -> None:
        path.write_text("person_id,custody_rec")
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "write_csv", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(result, tmp_path, formats=parse_formats("parquet,csv"))
    # the folder as it was (empty): the files are moved into place only once all are written
    assert written_names(tmp_path) == set()


def test_a_failure_keeps_the_previous_complete_file(
    result: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("csv"))
    before = (tmp_path / "findings.csv").read_bytes()

    def failing(frame: pl.DataFrame, path: Path) -> None:
        path.write_text("partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(outputs, "write_csv", failing)
    with pytest.raises(RuntimeError):
        write_outputs(result, tmp_path, formats=parse_formats("csv"))
    assert (tmp_path / "findings.csv").read_bytes() == before
    assert written_names(tmp_path) == {"findings.csv", "summary.json"}


def test_the_same_result_gives_byte_identical_files(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path / "a", formats=parse_formats("all"))
    write_outputs(result, tmp_path / "b", formats=parse_formats("all"))
    for name in (
        "findings.parquet",
        "findings.csv",
        "children.csv",
        "exceptions.csv",
        "data_quality.csv",
        "summary.json",
        "report.html",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# ---------------------------------------------------------------- summary


def test_summary_has_every_rule_even_with_zeros(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary["outcomes_per_rule"]) == [r.rule_id for r in RULES]
    assert summary["outcomes_per_rule"]["MHA-DURATION"] == {"breach": 0, "compliant": 0, "cannot_assess": 0}
    assert summary["outcomes_per_rule"]["PACE-AA"] == {"breach": 1, "compliant": 2, "cannot_assess": 2}
    assert summary["records_without_applicable_rule"] == 1
    assert summary["data_quality"]["rows"] == 3
    # Counted by column and issue, never by value or row.
    assert [(g["column"], g["issue"], g["rows"]) for g in summary["data_quality"]["by_column_and_issue"]] == [
        ("date_of_birth", "bad date", 1),
        ("event_time", "bad date", 1),
        ("event_type", "unknown event type", 1),
    ]
    assert summary["findings"] == {"rows": 7, "breach": 2, "compliant": 3, "cannot_assess": 2}
    assert summary["headline"]["children_detained"] == 4
    for key in ("tool_version", "rules_digest", "inputs_digest", "as_of", "run_seconds", "counts"):
        assert key in summary
    assert summary["formats"] == list(FORMATS)
    assert summary["pseudonymised"] is False
    assert summary["contract_version"] == "1.1"
    text = (tmp_path / "summary.json").read_text()
    assert text.startswith('{\n  "tool_version"')


def test_output_folder_is_created(result: CheckResult, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    write_outputs(result, out, formats=parse_formats("summary"))
    assert written_names(out) == {"summary.json"}


def test_an_output_path_that_is_a_file_is_a_usage_error(result: CheckResult, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(UsageError, match="is a file"):
        write_outputs(result, tmp_path / "out", formats=parse_formats("all"))


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 1000])
def test_a_lazy_frame_is_written_in_batches_as_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    # The findings are written a batch of rows at a time: the file is the one a single write
    # gives, header once, whatever the batch size (an empty frame: the header alone).
    from custody.render import csv as csv_render

    frame = pl.DataFrame(
        {
            "id": ["A", "=B", "C;-1", None, "E"],
            "n": [1, 2, 3, 4, 5],
            "at": pl.Series([None, *["2024-03-31T01:30:00+00:00"] * 4]).str.to_datetime(time_zone="UTC"),
        }
    )
    for rows in (frame, frame.clear()):
        whole, batched = tmp_path / "whole.csv", tmp_path / "batched.csv"
        csv_render.write_csv(rows, whole)
        monkeypatch.setattr(csv_render, "BATCH_ROWS", batch_rows)
        csv_render.write_csv(rows.lazy(), batched)
        assert batched.read_bytes() == whole.read_bytes()
        assert whole.read_text().count("id,n,at") == 1
