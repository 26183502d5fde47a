"""Input profiles: a force's own export, read through its profile, is checked exactly as the
same records in contract form; what cannot be used is reported in the export's own terms."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
import yaml
from conftest import DEMO, ROOT, SAMPLES
from typer.testing import CliRunner

from custody import cli
from custody.contract import EVENT_DETAILS
from custody.errors import InputError
from custody.pipeline import PreparedRules, findings_for
from custody.read.loader import RecordSet, load_record_set
from custody.read.profile import ProfileError, load_profile, load_with_profile
from custody.read.scan import draft_profile, scan_export

LAYOUTS = ("export_wide", "export_auditlog")


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_exports", ROOT / "tools" / "make_exports.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two export layouts, written afresh from whatever demo/ holds now."""
    root = tmp_path_factory.mktemp("exports")
    tool = _tool()
    tool.wide(DEMO, root / "export_wide")
    tool.auditlog(DEMO, root / "export_auditlog")
    return root


def _findings(records: RecordSet, rules: PreparedRules) -> pl.DataFrame:
    _, findings = findings_for(records, rules)
    return findings.sort("custody_record_id", "rule_id", "trigger_at", nulls_last=True)


def _profiled(folder: Path) -> RecordSet:
    return load_with_profile(load_profile(folder / "profile.yaml"), folder)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_profiled_export_gives_exactly_the_findings_of_demo(
    layout: str, exports: Path, prepared_rules: PreparedRules
) -> None:
    contract = load_record_set(DEMO)
    profiled = _profiled(exports / layout)
    assert profiled.data_quality.is_empty()
    assert profiled.detentions.height == contract.detentions.height
    assert profiled.events.height == contract.events.height
    expected = _findings(contract, prepared_rules)
    assert expected.height > 200
    assert _findings(profiled, prepared_rules).equals(expected)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_committed_exports_are_what_the_script_writes_from_demo(layout: str, exports: Path) -> None:
    written = sorted(p.name for p in (exports / layout).iterdir())
    assert written == sorted(p.name for p in (SAMPLES / layout).iterdir())
    for name in written:
        assert (SAMPLES / layout / name).read_bytes() == (exports / layout / name).read_bytes(), (
            f"sample_records/{layout}/{name} is out of step with demo/: run python3 tools/make_exports.py"
        )


def test_check_with_a_profile_writes_the_same_findings_as_demo(runner: CliRunner, tmp_path: Path) -> None:
    folder = SAMPLES / "export_wide"
    result = runner.invoke(
        cli.app, ["check", str(folder), "--profile", str(folder / "profile.yaml"), "--out", str(tmp_path / "p")]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "findings.csv").read_bytes() == (tmp_path / "d" / "findings.csv").read_bytes()
    summary = (tmp_path / "p" / "summary.json").read_text()
    assert '"profile"' in summary
    assert "custody export (wide)" in summary


def test_the_wide_export_can_be_named_as_its_one_file(exports: Path, prepared_rules: PreparedRules) -> None:
    folder = exports / "export_wide"
    records = load_with_profile(load_profile(folder / "profile.yaml"), folder / "custody_export.csv")
    assert records.detentions.height == load_record_set(DEMO).detentions.height


def test_events_or_date_order_with_a_profile_are_usage_errors(runner: CliRunner, tmp_path: Path) -> None:
    folder = SAMPLES / "export_wide"
    profile = str(folder / "profile.yaml")
    for extra in (["--events", str(folder / "custody_export.csv")], ["--date-order", "mdy"]):
        result = runner.invoke(cli.app, ["validate", str(folder), "--profile", profile, "--out", str(tmp_path), *extra])
        assert result.exit_code == 2
        assert "--profile" in result.output


# ---------------------------------------------------------------- data quality in the export's terms


def _edit_csv(path: Path, row: int, column: str, value: str) -> None:
    """Set one cell (row numbered as a spreadsheet shows it: header is row 1)."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 2).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    frame.write_csv(path)


@pytest.fixture
def wide(exports: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "wide"
    shutil.copytree(exports / "export_wide", folder)
    return folder


@pytest.fixture
def auditlog(exports: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "auditlog"
    shutil.copytree(exports / "export_auditlog", folder)
    return folder


def _row_of(path: Path, column: str, value: str) -> int:
    frame = pl.read_csv(path, infer_schema=False)
    return int(frame.with_row_index().filter(pl.col(column) == value)["index"][0]) + 2


def test_a_bad_time_is_reported_with_the_exports_file_row_and_columns(wide: Path) -> None:
    export = wide / "custody_export.csv"
    row = _row_of(export, "Custody_Ref", "DEMO-030")
    _edit_csv(export, row, "Review_1_Time", "25:61")
    records = _profiled(wide)
    problem = records.data_quality.row(0, named=True)
    assert problem["file"] == "custody_export.csv"
    assert problem["row"] == row
    assert problem["column"] == "Review_1_Date + Review_1_Time (event_time)"
    assert problem["value"].endswith(" 25:61")
    assert problem["event_type"] == "review"
    assert problem["custody_record_id"] == "DEMO-030"


def test_an_unmapped_code_keeps_its_raw_text_and_is_refused_naming_the_profile(
    wide: Path, prepared_rules: PreparedRules
) -> None:
    export = wide / "custody_export.csv"
    row = _row_of(export, "Custody_Ref", "DEMO-002")
    _edit_csv(export, row, "Detention_Reason", "PACE ARR")
    records = _profiled(wide)
    problem = records.data_quality.row(0, named=True)
    assert (problem["file"], problem["row"], problem["column"], problem["value"]) == (
        "custody_export.csv",
        row,
        "Detention_Reason (detention_power)",
        "PACE ARR",
    )
    assert problem["action"] == "value_unusable"
    assert re.search(r"not a code in the values of profile profile\.yaml:\d+ for detention_power", problem["reason"])
    outcomes = _findings(records, prepared_rules).filter(pl.col("custody_record_id") == "DEMO-002")
    assert set(outcomes["outcome"].cast(pl.String)) <= {"cannot_assess", "compliant"}
    s38 = outcomes.filter(pl.col("rule_id").cast(pl.String).str.starts_with("S38"))
    assert "breach" not in set(s38["outcome"].cast(pl.String))


def test_an_unmapped_entry_type_is_refused_and_its_record_cannot_be_assessed(
    auditlog: Path, prepared_rules: PreparedRules
) -> None:
    log = auditlog / "custody_log.csv"
    frame = pl.read_csv(log, infer_schema=False)
    row = int(frame.with_row_index().filter(pl.col("Entry_Type") == "BAIL REFUSED")["index"][0]) + 2
    record = frame["RecordRef"][row - 2]
    _edit_csv(log, row, "Entry_Type", "REFUSED BAIL (CUSTODY SGT)")
    records = _profiled(auditlog)
    problem = records.data_quality.row(0, named=True)
    assert (problem["file"], problem["row"], problem["column"]) == ("custody_log.csv", row, "Entry_Type (event_type)")
    assert problem["value"] == "REFUSED BAIL (CUSTODY SGT)"
    assert problem["action"] == "row_rejected"
    assert "not an entry type of profile" in problem["reason"]
    assert problem["event_type"] is None
    findings = _findings(records, prepared_rules).filter(pl.col("custody_record_id") == record)
    assert "cannot_assess" in set(findings["outcome"].cast(pl.String))


def test_a_flag_that_is_neither_yes_nor_no_is_reported(wide: Path) -> None:
    export = wide / "custody_export.csv"
    row = _row_of(export, "Custody_Ref", "DEMO-024")
    # the first welfare-informed flag, whether the demo holds it once (Welfare_Informed_Flag) or repeated
    header = pl.read_csv(export, n_rows=0).columns
    flag = next(c for c in header if re.fullmatch(r"Welfare_Informed(_1)?_Flag", c))
    _edit_csv(export, row, flag, "maybe")
    problem = _profiled(wide).data_quality.row(0, named=True)
    assert (problem["row"], problem["column"], problem["value"]) == (row, f"{flag} (event_time)", "maybe")
    assert "neither a true nor a false word" in problem["reason"]


def test_a_new_column_in_the_export_stops_the_run_naming_it(wide: Path) -> None:
    export = wide / "custody_export.csv"
    pl.read_csv(export, infer_schema=False).with_columns(Custody_Officer_Notes=pl.lit("x")).write_csv(export)
    with pytest.raises(InputError, match=r"column 'Custody_Officer_Notes' that profile profile\.yaml:\d+ neither maps"):
        _profiled(wide)


def test_a_mapped_column_missing_from_the_export_stops_the_run(wide: Path) -> None:
    export = wide / "custody_export.csv"
    pl.read_csv(export, infer_schema=False).drop("Time_Arrived").write_csv(export)
    with pytest.raises(InputError, match=r"has no column 'Time_Arrived', which profile profile\.yaml:\d+ maps"):
        _profiled(wide)


# ---------------------------------------------------------------- dates and zones


def test_month_first_dates_declared_in_the_profile_are_read_so(wide: Path, prepared_rules: PreparedRules) -> None:
    export = wide / "custody_export.csv"
    frame = pl.read_csv(export, infer_schema=False)
    dated = [c for c in frame.columns if c.endswith("_Date") or c in ("DOB", "Date_Arrived")]
    swapped = frame.with_columns(pl.col(dated).str.replace(r"^(\d\d)/(\d\d)/", "$2/$1/"))
    swapped.write_csv(export)
    profile = wide / "profile.yaml"
    # As written (day first): a column proven month first stops the run, naming the profile.
    with pytest.raises(
        InputError,
        match=r"column \w+ has dates written month first, the first at row \d+, but profile profile\.yaml "
        r"declares date_order: dmy",
    ):
        _profiled(wide)
    profile.write_text(profile.read_text().replace("date_order: dmy", "date_order: mdy"))
    assert _findings(_profiled(wide), prepared_rules).equals(_findings(load_record_set(DEMO), prepared_rules))


def test_utc_and_offset_zones_give_the_same_instants(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "records.csv").write_text(
        "Ref,Person,Power,Arrived_UTC,Authorised_Local,Reviewed_Offset\n"
        "R1,P1,ARREST,2019-07-01 12:00:00,01/07/2019 13:10,2019-07-01 19:00\n"
    )
    (folder / "profile.yaml").write_text(
        """profile: 1
name: test layout
version: "1"
detentions:
  file: records.csv
  columns:
    custody_record_id: Ref
    person_id: Person
    detention_power: {column: Power, values: {ARREST: pace_arrest}}
    arrival_time: {column: Arrived_UTC, zone: utc}
  unused: []
events:
  - event_type: detention_authorised
    at: Authorised_Local
  - event_type: review
    detail: pre_charge
    at: {column: Reviewed_Offset, zone: "+01:00"}
"""
    )
    records = _profiled(folder)
    assert records.data_quality.is_empty()
    assert str(records.detentions["arrival_time"][0]) == "2019-07-01 12:00:00+00:00"
    times = dict(zip(records.events["event_type"].cast(pl.String), records.events["event_time"], strict=True))
    assert str(times["detention_authorised"]) == "2019-07-01 12:10:00+00:00"
    assert str(times["review"]) == "2019-07-01 18:00:00+00:00"
    assert records.events["detail"].cast(pl.String).to_list() == [None, "pre_charge"]


# ---------------------------------------------------------------- the profile file itself


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("  - event_type: charged\n", "  - event_type: charge\n"), r"'charge' is not an event type of the contract"),
        (
            ("    person_id: Person_URN\n", "    person_id: Person_URN\n    persn: X\n"),
            r"'persn' is not a detentions col",
        ),
        (('version: "2026-11"\n', 'version: "2026-11"\nverison: 2\n'), r"unknown key 'verison'"),
        (("  unused: [Arresting_Officer, Record_Status]\n", ""), r"detentions\.unused: Field required"),
        (("profile: 1\n", "profile: 2\n"), r"profile language 2"),
        (("    detention_power:\n", "    detention_power:\n  bad: [\n"), r"is not valid YAML"),
    ],
)
def test_a_profile_error_names_the_file_and_line(wide: Path, edit: tuple[str, str], message: str) -> None:
    profile = wide / "profile.yaml"
    text = profile.read_text()
    assert edit[0] in text
    profile.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ProfileError, match=rf"profile\.yaml(:\d+)?: .*{message}") as caught:
        load_profile(profile)
    assert "\n" not in str(caught.value)
    if "Field required" not in message:
        assert caught.value.line is not None


def test_a_value_mapped_to_no_contract_value_is_refused_with_its_line(wide: Path) -> None:
    profile = wide / "profile.yaml"
    profile.write_text(profile.read_text().replace('"S136": mha_s136', '"S136": mha_136'))
    with pytest.raises(ProfileError, match=r"'S136' maps to 'mha_136'"):
        load_profile(profile)


def test_the_cli_says_a_profile_problem_in_one_sentence(runner: CliRunner, wide: Path, tmp_path: Path) -> None:
    profile = wide / "profile.yaml"
    profile.write_text(profile.read_text().replace("  - event_type: charged\n", "  - event_type: charge\n"))
    result = runner.invoke(cli.app, ["check", str(wide), "--profile", str(profile), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert re.search(r"profile\.yaml:\d+: events\.\d+", result.output)


# ---------------------------------------------------------------- profile scan and profile test

NAMED_EDITS = {
    # The draft needs only these edits to read each sample exactly as demo/ holds it.
    "export_wide": [
        ('name: "FIXME: name of this export layout"', "name: Anyshire wide export"),
    ],
    "export_auditlog": [
        ('name: "FIXME: name of this export layout"', "name: Northmoor audit-log export"),
        # Entry types that are not events: the scan cannot know, and refuses to guess.
        ("  ignore: []", '  ignore: ["PROPERTY RECORDED", "MEAL OFFERED"]'),
    ],
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_scanned_draft_needs_only_the_named_edits(
    layout: str, exports: Path, tmp_path: Path, runner: CliRunner, prepared_rules: PreparedRules
) -> None:
    draft = tmp_path / "draft.yaml"
    result = runner.invoke(cli.app, ["profile", "scan", str(exports / layout), "--draft", str(draft)])
    assert result.exit_code == 0, result.output
    text = draft.read_text()
    if layout == "export_auditlog":  # as drafted, the meals and property entries are refused, not guessed
        unedited = _findings_quality(draft, exports / layout)
        assert set(unedited["value"]) == {"PROPERTY RECORDED", "MEAL OFFERED"}
        assert set(unedited["action"]) == {"row_rejected"}
    for old, new in NAMED_EDITS[layout]:
        assert old in text
        text = text.replace(old, new)
    draft.write_text(text)
    records = load_with_profile(load_profile(draft), exports / layout)
    assert records.data_quality.is_empty()
    assert _findings(records, prepared_rules).equals(_findings(load_record_set(DEMO), prepared_rules))


def _findings_quality(profile: Path, export: Path) -> pl.DataFrame:
    return load_with_profile(load_profile(profile), export).data_quality


def test_scan_shows_codes_but_never_ids_dates_or_free_text(runner: CliRunner, exports: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["profile", "scan", str(exports / "export_wide"), "--draft", str(tmp_path / "d.yaml")],
        terminal_width=250,
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the table wraps a value at any width
    assert "ARREST (" in out  # a code held by many rows
    assert "Detention_Reason" in out
    for never in ("DEMO-0", "C-00", "/2014", "2014-", "PC 41", "Heavy snow", "16:42"):
        assert never not in out, never
        assert never not in result.output, never
    assert "S135" not in out  # one row holds it: below the minimum count
    assert "rarer" in out


def test_scan_never_shows_record_ids_that_repeat_in_a_log(runner: CliRunner, exports: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["profile", "scan", str(exports / "export_auditlog"), "--draft", str(tmp_path / "d.yaml")],
        terminal_width=250,
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the table wraps a value at any width
    assert "DETENTION AUTHORISED (" in out
    for never in ("DEMO-0", "C-00", "PS 23", "Mother"):
        assert never not in result.output, never
        assert never not in out, never


def test_scan_never_shows_ids_under_a_name_it_does_not_know(tmp_path: Path) -> None:
    """A person id column named Detainee in a small log (each id repeated like a code) and an
    entry-type column named Action: the ids are neither shown nor taken for the entry type."""
    export = tmp_path / "export"
    export.mkdir()
    people = [f"C-{n:04d}" for n in range(1, 31)]
    records = [f"R{n}" for n in range(1, 31)]
    pl.DataFrame({"RecordRef": records, "Arrival_UTC": ["2026-01-01 10:00:00"] * 30}).write_csv(export / "records.csv")
    rows = [
        (record, person, action)
        for record, person in zip(records, people, strict=True)
        for action in ("BOOKED IN", "CHARGED")
    ]
    pl.DataFrame(
        {
            "RecordRef": [r for r, _, _ in rows for _ in range(3)],
            "Entry_UTC": ["2026-01-01 11:00:00"] * len(rows) * 3,
            "Detainee": [p for _, p, _ in rows for _ in range(3)],
            "Action": [a for _, _, a in rows for _ in range(3)],
        }
    ).write_csv(export / "log.csv")
    scanned = scan_export(export)
    draft = draft_profile(scanned)
    assert "entry_type: Action" in draft
    assert "C-00" not in draft
    detainee = next(c for f in scanned for c in f.columns if c.name == "Detainee")
    assert detainee.guess == "id"
    assert not detainee.codes


def _drafted_entries(tmp_path: Path, entry_types: list[str]) -> dict[str, str]:
    """The `entries:` a scan drafts for an audit log holding these entry types (three rows each)."""
    export = tmp_path / "export"
    export.mkdir()
    pl.DataFrame({"RecordRef": ["R1", "R2"], "Arrival_UTC": ["2026-01-01 10:00:00"] * 2}).write_csv(
        export / "records.csv"
    )
    log = [entry for entry in entry_types for _ in range(3)]
    pl.DataFrame(
        {"RecordRef": ["R1"] * len(log), "Entry_UTC": ["2026-01-01 11:00:00"] * len(log), "Entry_Type": log}
    ).write_csv(export / "log.csv")
    draft = draft_profile(scan_export(export))
    entries: dict[str, str] = yaml.safe_load(draft)["event_log"]["entries"] or {}
    return entries


@pytest.mark.parametrize("event_type", list(EVENT_DETAILS))
def test_scan_knows_every_event_type_and_detail_code_of_the_contract(event_type: str, tmp_path: Path) -> None:
    def written(code: str) -> str:  # as a force system writes it: upper case, spaces
        return code.upper().replace("_", " ")

    expected = {written(event_type): event_type}
    expected |= {f"{written(event_type)} - {written(d)}": f"{event_type}/{d}" for d in EVENT_DETAILS[event_type]}
    assert _drafted_entries(tmp_path, list(expected)) == expected


def test_scan_guesses_detail_codes_from_the_words_forces_use(tmp_path: Path) -> None:
    expected = {
        "WELFARE INFORMED - LOCAL AUTHORITY": "welfare_informed/local_authority",
        "WELFARE INFORMED - SOCIAL WORKER": "welfare_informed/local_authority",
        "WELFARE INFORMED - MOTHER": "welfare_informed/parent_guardian",
        "STRIP SEARCH - APPROPRIATE ADULT PRESENT": "strip_search/aa_present",
        "STRIP SEARCH - AA NOT PRESENT": "strip_search/aa_absent",
        "STRIP SEARCH - URGENT": "strip_search/urgent",
        "INTERVIEW START - URGENT": "interview_started/urgent_authorised",
        "INTERVIEW END": "interview_ended",
        "APPROPRIATE ADULT LEFT": "aa_left",
    }
    assert _drafted_entries(tmp_path, list(expected)) == expected


def test_scan_never_overwrites_a_draft(runner: CliRunner, exports: Path, tmp_path: Path) -> None:
    draft = tmp_path / "mine.yaml"
    draft.write_text("kept")
    result = runner.invoke(cli.app, ["profile", "scan", str(exports / "export_wide"), "--draft", str(draft)])
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert draft.read_text() == "kept"


def test_profile_test_shows_records_as_the_contract_sees_them(runner: CliRunner, wide: Path) -> None:
    export = wide / "custody_export.csv"
    row = _row_of(export, "Custody_Ref", "DEMO-001")
    _edit_csv(export, row, "Review_1_Code", "PRE-CHG")
    result = runner.invoke(
        cli.app, ["profile", "test", str(wide / "profile.yaml"), str(wide), "-n", "1"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "DEMO-001: person C-0001, age on arrival 15" in out
    assert "2014-05-17 16:42 BST | 2014-05-17 15:42Z" in out
    assert "detention_authorised" in out
    assert "DEMO-002" not in out
    assert f"custody_export.csv row {row} Review_1_Code (detail): Review_1_Code is not a code in the values" in out
    for never in ("1998", "White British", "PRE-CHG", "Mother", "Robbery"):
        assert never not in out, never


# ---------------------------------------------------------------- privacy

KEY = "a private key of enough length"


def _output_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return pl.read_parquet(path).write_csv()
    if path.suffix == ".xlsx":
        import zipfile

        with zipfile.ZipFile(path) as workbook:
            return "\n".join(workbook.read(name).decode("utf-8") for name in workbook.namelist())
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_under_a_key_no_id_or_date_of_birth_of_an_export_reaches_any_output(
    layout: str, exports: Path, tmp_path: Path, runner: CliRunner
) -> None:
    folder = tmp_path / layout
    shutil.copytree(exports / layout, folder)
    if layout == "export_wide":
        export = folder / "custody_export.csv"
        frame = pl.read_csv(export, infer_schema=False)
        # An impossible date of birth, and a record repeated with different values: both are
        # data-quality rows whose values are the export's own.
        frame = frame.with_columns(
            DOB=pl.when(pl.col("Custody_Ref") == "DEMO-002").then(pl.lit("31/02/1998")).otherwise("DOB")
        )
        pl.concat(
            [frame, frame.filter(pl.col("Custody_Ref") == "DEMO-003").with_columns(Gender=pl.lit("F"))]
        ).write_csv(export)
        secrets = {*frame["Custody_Ref"], *frame["Person_URN"], "31/02/1998", "1998-02-31"}
        dobs = frame["DOB"].drop_nulls()
        secrets |= set(dobs) | set(dobs.str.replace(r"^(\d\d)/(\d\d)/(\d{4})$", "$3-$2-$1"))
    else:
        log = folder / "custody_log.csv"
        frame = pl.read_csv(log, infer_schema=False)
        orphan = frame.filter(pl.col("Entry_Type") == "CHARGED").head(1).with_columns(RecordRef=pl.lit("ORPHAN-77"))
        pl.concat([frame, orphan]).write_csv(log)
        records = pl.read_csv(folder / "custody_records.csv", infer_schema=False)
        secrets = {*records["RecordRef"], *records["SubjectRef"], *records["BirthDate"].drop_nulls(), "ORPHAN-77"}
    profile = str(folder / "profile.yaml")
    plain = runner.invoke(cli.app, ["check", str(folder), "--profile", profile, "--out", str(tmp_path / "plain"), "-q"])
    assert plain.exit_code == 0, plain.output
    quality = pl.read_csv(tmp_path / "plain" / "data_quality.csv", infer_schema=False)
    assert quality.height >= 1
    assert any(s in (tmp_path / "plain" / "data_quality.csv").read_text() for s in secrets)  # the test would see it
    result = runner.invoke(
        cli.app,
        ["check", str(folder), "--profile", profile, "--out", str(tmp_path / "out"), "-q", "--pseudonymise-key", KEY],
    )
    assert result.exit_code == 0, result.output
    for path in sorted((tmp_path / "out").iterdir()):
        text = _output_text(path)
        assert not [s for s in secrets if s in text], path.name


def test_the_readme_workflow_runs_as_written(runner: CliRunner, exports: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A force's own export: input profiles", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    commands = [line.split("#", 1)[0].split() for line in block.strip().splitlines()]
    assert [c[:3] for c in commands] == [
        ["custody", "profile", "scan"],
        ["custody", "profile", "test"],
        ["custody", "check", "export/"],
    ]
    swap = {
        "export/": str(exports / "export_wide"),
        "anyshire.yaml": str(tmp_path / "anyshire.yaml"),
        "out": str(tmp_path / "out"),
    }
    for command in commands:
        result = runner.invoke(cli.app, [swap.get(word, word) for word in command[1:]])
        assert result.exit_code == 0, (command, result.output)
    demo = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path / "demo"), "-q"])
    assert demo.exit_code == 0, demo.output
    assert (tmp_path / "out" / "findings.csv").read_bytes() == (tmp_path / "demo" / "findings.csv").read_bytes()


def test_constants_missing_values_and_compact_times(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "records.csv").write_text(
        "Ref,Person,Power,Arrived_Date,Arrived_Time,DOB,Auth_Date,Auth_Time\n"
        "R1,P1,ARREST,01/07/2019,1200,N/A,01/07/2019,12.10\n"
    )
    (folder / "profile.yaml").write_text(
        """profile: 1
name: test layout
version: "1"
missing_values: ["", "N/A"]
detentions:
  file: records.csv
  columns:
    custody_record_id: Ref
    person_id: Person
    force: {value: Anyshire Police}
    date_of_birth: DOB
    detention_power: {column: Power, values: {ARREST: pace_arrest}}
    arrival_time: {date: Arrived_Date, time: Arrived_Time}
  unused: []
events:
  - event_type: detention_authorised
    at: {date: Auth_Date, time: Auth_Time}
"""
    )
    records = _profiled(folder)
    assert records.data_quality.is_empty()
    row = records.detentions.row(0, named=True)
    assert (row["force"], row["date_of_birth"]) == ("Anyshire Police", None)
    assert str(row["arrival_time"]) == "2019-07-01 11:00:00+00:00"  # 12:00 BST
    assert str(records.events["event_time"][0]) == "2019-07-01 11:10:00+00:00"


def test_a_code_yaml_reads_as_a_boolean_must_be_quoted(wide: Path) -> None:
    profile = wide / "profile.yaml"
    profile.write_text(
        profile.read_text().replace('values: {"Y": true, "N": false}', "values: {Yes: true, No: false}", 1)
    )
    with pytest.raises(ProfileError, match=r"profile\.yaml:\d+: .*the code True is not text: quote it"):
        load_profile(profile)


def test_a_slash_date_where_the_profile_declares_iso_is_refused(auditlog: Path) -> None:
    records = auditlog / "custody_records.csv"
    row = _row_of(records, "RecordRef", "DEMO-010")
    _edit_csv(records, row, "BirthDate", "05/06/2002")
    problem = _profiled(auditlog).data_quality.row(0, named=True)
    assert (problem["row"], problem["column"]) == (row, "BirthDate (date_of_birth)")
    assert problem["reason"].startswith("date_of_birth is not a date")


def test_text_that_is_not_utf8_is_read_as_windows_1252_with_a_warning(wide: Path) -> None:
    export = wide / "custody_export.csv"
    row = _row_of(export, "Custody_Ref", "DEMO-005")
    data = export.read_bytes().split(b"\n")
    data[row - 1] = data[row - 1].replace(b"White British", b"White Irish \xe9", 1)
    export.write_bytes(b"\n".join(data))
    records = _profiled(wide)
    problem = records.data_quality.row(0, named=True)
    assert (problem["file"], problem["row"], problem["column"]) == ("custody_export.csv", row, "Ethnicity")
    assert (problem["action"], problem["custody_record_id"]) == ("warning", "DEMO-005")
    assert records.detentions.filter(pl.col("custody_record_id") == "DEMO-005")["ethnicity"][0] == "White Irish é"


def test_nested_records_map_by_dotted_names_and_lists_as_repeated_groups(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "records.ndjson").write_text(
        '{"ref": "R1", "subject": {"id": "P1", "dob": "2004-03-01"}, "power": "PACE",'
        ' "UTC_ARRIVAL_DTE_TME": "2019-07-01T11:00:00",'
        ' "reviews": [{"at": "2019-07-01T16:00:00", "kind": "PRE"}, {"at": "2019-07-02T01:00:00", "kind": "PRE"}]}\n'
        '{"ref": "R2", "subject": {"id": "P2", "dob": null}, "power": "PACE",'
        ' "UTC_ARRIVAL_DTE_TME": "2019-08-01T11:00:00", "reviews": []}\n'
    )
    (folder / "profile.yaml").write_text(
        """profile: 1
name: nested layout
version: "1"
detentions:
  file: records.ndjson
  columns:
    custody_record_id: ref
    person_id: subject.id
    date_of_birth: {column: subject.dob, date_order: ymd}
    detention_power: {column: power, values: {PACE: pace_arrest}}
    arrival_time: {column: UTC_ARRIVAL_DTE_TME, zone: utc}
  unused: []
events:
  - event_type: review
    repeat: 2
    at: {column: "reviews.{n}.at", zone: utc}
    detail_from: {column: "reviews.{n}.kind", values: {PRE: pre_charge}}
"""
    )
    records = _profiled(folder)
    assert records.data_quality.is_empty()
    assert records.detentions["person_id"].to_list() == ["P1", "P2"]
    assert records.events["custody_record_id"].to_list() == ["R1", "R1"]
    assert [str(t) for t in records.events["event_time"]] == ["2019-07-01 16:00:00+00:00", "2019-07-02 01:00:00+00:00"]
    assert records.events["detail"].cast(pl.String).to_list() == ["pre_charge", "pre_charge"]
