"""`custody check`, `custody explain`, `custody generate` and `custody rules` as a user runs them."""

from __future__ import annotations

import csv
import errno
import json
import os
import zipfile
from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO, RULES_DIR, RecordSetFactory
from typer.testing import CliRunner

from custody import cli
from custody.contract import FINDINGS_COLUMNS
from custody.outputs import FILE_NAMES

CONTRACT_FILES = tuple(FILE_NAMES.values())
KEY = "k" * 32


@pytest.fixture(scope="module")
def pseudonymised_out(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`custody check sample_records/demo --pseudonymise-key KEY`; tests only read it."""
    out = tmp_path_factory.mktemp("pseudonymised")
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q", "--pseudonymise-key", KEY])
    assert result.exit_code == 0, result.output
    return out


def test_check_writes_every_output_with_the_contract_columns(demo_out: Path) -> None:
    for name in CONTRACT_FILES:
        assert (demo_out / name).is_file(), name
    names = [name for name, _ in FINDINGS_COLUMNS]
    assert pl.read_csv(demo_out / "findings.csv").columns == names
    assert pl.read_parquet(demo_out / "findings.parquet").columns == names


def test_children_csv_has_one_row_per_child(demo_out: Path) -> None:
    children = pl.read_csv(demo_out / "children.csv")
    assert children.height == 77  # the 77 demo records are 77 people (sample_records/README.md)
    assert children["person_id"].is_unique().all()


def test_summary_states_the_run_and_the_headline_figures(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    assert summary["as_of"] == "2026-11-23T09:00:00Z"
    assert summary["counts"]["records_loaded"] == 77
    assert len(summary["rules_digest"]) == 64
    assert len(summary["inputs_digest"]) == 64
    assert set(summary["outcomes_per_rule"]) == {p.stem for p in RULES_DIR.glob("[A-Z]*.yaml")}
    for key in ("children_detained", "charged_and_refused_bail", "requests_made", "moved", "certificates"):
        assert key in summary["headline"]


def test_findings_are_deterministic(runner: CliRunner, demo_out: Path, tmp_path: Path) -> None:
    assert runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "-q"]).exit_code == 0
    for name in ("findings.csv", "findings.parquet", "children.csv", "exceptions.csv"):
        assert (tmp_path / name).read_bytes() == (demo_out / name).read_bytes(), name


def test_notes_are_left_out_unless_asked(runner: CliRunner, demo_out: Path, tmp_path: Path) -> None:
    notes = [n for n in pl.read_csv(DEMO / "events.csv")["note"].drop_nulls().to_list() if len(n) > 20]
    assert notes
    findings = (demo_out / "findings.csv").read_text()
    assert not any(note in findings for note in notes)
    runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "-q", "--include-notes"])
    assert any(note.replace('"', '""') in (tmp_path / "findings.csv").read_text() for note in notes)


def test_fail_on_breach_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "-q", "--fail-on", "breach"])
    assert result.exit_code == 1, result.stderr
    # The demo's breaches, as its golden findings list them (sample_records/README.md).
    golden = pl.read_csv(Path(__file__).parent / "expected" / "demo_findings.csv")
    breaches = golden.filter(pl.col("outcome") == "breach")
    top_rule, top_count = breaches.group_by("rule_id").len().sort("len", "rule_id", descending=[True, False]).row(0)
    assert f"--fail-on breach: {breaches.height} findings at or above breach ({top_rule} {top_count}," in result.stderr


def test_formats_picks_the_outputs(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "-q", "--formats", "parquet"])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.parquet", "summary.json"]


def test_unknown_format_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "--formats", "pdf"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


FORMULA_ID = '=HYPERLINK("http://evil.example","x")'


def test_formula_text_in_ids_is_inert(runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path) -> None:
    folder = csv_record_set(
        [(FORMULA_ID, "+44123", "2005-03-01", "pace_arrest", "2019-07-01 12:00")],
        [(FORMULA_ID, "2019-07-01 12:05", "detention_authorised", None, None)],
    )
    out = tmp_path / "out"
    assert runner.invoke(cli.app, ["check", str(folder), "--out", str(out), "-q"]).exit_code == 0
    exceptions = (out / "exceptions.csv").read_text()
    assert f"'{FORMULA_ID}".replace('"', '""') in exceptions
    assert "\n=" not in exceptions
    assert ",=" not in exceptions
    with zipfile.ZipFile(out / "exceptions.xlsx") as book:
        sheets = [book.read(name).decode() for name in book.namelist() if name.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in sheet or "<f " in sheet for sheet in sheets)
    assert "HYPERLINK" in sheets[1]  # the exception sheet, after the summary: present, as text


@pytest.mark.parametrize("command", ["check", "validate"])
@pytest.mark.parametrize("separator", [";", "\t"])
def test_no_csv_cell_opens_as_a_formula_whatever_the_separator(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path, command: str, separator: str
) -> None:
    # Where Excel's list separator is ';', C-0002;=1+1 opens as two cells, the second =1+1.
    record_id = "C-0002;=1+1"
    folder = csv_record_set(
        [(record_id, "P-1", "2005-03-01", "pace_arrest", "2019-07-01 12:00")],
        [(record_id, "2019-07-01 12:05", "detention_authorised", None, None), ("R-9\t@x", "bad", "x", None, None)],
    )
    out = tmp_path / "out"
    result = runner.invoke(cli.app, [command, str(folder), "--out", str(out), *(["-q"] if command == "check" else [])])
    assert result.exit_code == 0, result.output
    written = sorted(out.glob("*.csv"))
    assert "data_quality.csv" in {p.name for p in written}
    for path in written:
        with path.open(newline="") as handle:
            for row in csv.reader(handle, delimiter=separator):
                for cell in row:
                    assert not cell.lstrip('"').startswith(("=", "+", "-", "@")), (path.name, cell)


def test_pseudonymised_ids_are_stable_per_key(runner: CliRunner, pseudonymised_out: Path, tmp_path: Path) -> None:
    def ids(out: Path) -> list[str]:
        return pl.read_csv(out / "findings.csv")["person_id"].to_list()

    def check(key: str, folder: str) -> Path:
        out = tmp_path / folder
        result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q", "--pseudonymise-key", key])
        assert result.exit_code == 0, result.output
        return out

    first, again, other = ids(pseudonymised_out), ids(check(KEY, "again")), ids(check("x" * 32, "other"))
    assert first == again
    assert first != other
    assert not any(p.startswith("C-") for p in first)


@pytest.mark.parametrize("by_env", [False, True])
def test_notes_and_a_pseudonymisation_key_are_refused_together(
    runner: CliRunner, tmp_path: Path, by_env: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Notes are free text (a name, a date of birth): pseudonymised outputs cannot hold them.
    out = tmp_path / "out"
    key = [] if by_env else ["--pseudonymise-key", KEY]
    if by_env:
        monkeypatch.setenv("CUSTODY_PSEUDONYMISE_KEY", KEY)
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q", "--include-notes", *key])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --include-notes cannot be used with --pseudonymise-key: notes are free text that can name a "
        "child or give a date of birth, which pseudonymised outputs must not hold; leave out one of the two."
    )
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_explain_shows_the_timeline_facts_and_reasons(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["explain", "DEMO-021", str(DEMO)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Timeline (UK time | UTC)" in text
    assert "BST" in text
    assert "GMT" in text
    assert "PACE-REVIEW: BREACH" in text
    assert "law: PACE 1984" in text
    assert "does not apply" in text


def test_explain_an_unknown_record_is_one_line_exit_2(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["explain", "NOPE", str(DEMO)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: There is no custody record NOPE")


def test_generate_then_check(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["generate", str(tmp_path / "g"), "--records", "300", "--seed", "7"])
    assert result.exit_code == 0, result.output
    check = runner.invoke(cli.app, ["check", str(tmp_path / "g"), "--out", str(tmp_path / "o"), "-q"])
    assert check.exit_code == 0, check.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["counts"]["records_loaded"] == 300


def test_rules_commands(runner: CliRunner) -> None:
    listed = runner.invoke(cli.app, ["rules", "list"])
    assert listed.exit_code == 0
    assert "S38-GROUNDS" in listed.stdout
    shown = runner.invoke(cli.app, ["rules", "show", "S38-GROUNDS"])
    assert shown.exit_code == 0
    for section in ("What it checks", "Why it matters", "Law", "Versions", "Logic", "Test cases", "File:"):
        assert section in shown.stdout
    assert runner.invoke(cli.app, ["rules", "show", "NOPE-1"]).exit_code == 2
    assert runner.invoke(cli.app, ["rules", "test", "S38-REQUEST"]).exit_code == 0


def test_pseudonymised_parquet_holds_no_raw_ids(pseudonymised_out: Path) -> None:
    findings = pl.read_parquet(pseudonymised_out / "findings.parquet")
    assert not findings["custody_record_id"].str.starts_with("DEMO-").any()
    assert not findings["person_id"].str.starts_with("C-").any()


def test_no_spill_is_left_in_the_output_folder(demo_out: Path) -> None:
    assert not [p for p in demo_out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("code", "inside_out", "says"),
    [
        (errno.ENOSPC, False, "error: could not write in"),
        (errno.EACCES, True, "error: could not write in"),
        (errno.EACCES, False, "internal error: PermissionError"),  # not --out's: not the user's to fix there
    ],
)
def test_a_full_or_refused_out_folder_is_one_sentence_exit_2(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, inside_out: bool, says: str
) -> None:
    import custody.cli.check as cli_check

    out = tmp_path / "out"
    where = out / "findings.csv" if inside_out else tmp_path / "elsewhere" / "x"

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(where) if code != errno.ENOSPC else None)

    monkeypatch.setattr(cli_check, "write_outputs", fail)
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(says)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    if code == errno.ENOSPC:
        assert "free some space there or give another --out folder" in result.stderr
    if code == errno.EACCES and inside_out:
        assert "give an --out folder you can write to" in result.stderr
    assert not list(out.glob(".custody-spill-*"))  # the spill is removed however the run ends


@pytest.mark.parametrize(
    "error",
    [
        pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
        ),
        OSError("No space left on device (os error 28)"),  # no errno, as polars' writers raise it
    ],
    ids=["polars", "no-errno"],
)
def test_a_full_disk_however_a_library_reports_it_is_one_sentence_exit_2(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import custody.cli.check as cli_check

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(cli_check, "write_outputs", fail)
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: could not write in {out} or in the temporary folder ")
    assert "free some space there or give another --out folder (or set TMPDIR" in line
    assert "internal error" not in line


def test_a_reader_that_stops_early_is_not_an_internal_error() -> None:
    """`custody explain ... | head -1`: the pipe closes before the output is written; the
    command stops quietly (no "internal error", no traceback)."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with subprocess.Popen(
        [sys.executable, "-m", "custody", "explain", "DEMO-044", str(DEMO)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # the reader goes away before anything is written
        errors = process.stderr.read().decode()
        process.wait(timeout=60)
    assert errors == ""


def test_the_console_script_runs_the_command_with_the_collector_back_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `custody` script (pyproject's entry point) pauses garbage collection while it
    imports the command, and must turn it back on before the command runs."""
    import gc
    import tomllib

    import custody.__main__ as entry

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["custody"] == "custody.__main__:main"
    seen: list[bool] = []
    monkeypatch.setattr(cli, "main", lambda: seen.append(gc.isenabled()))
    entry.main()
    assert seen == [True]
    assert gc.isenabled()
    monkeypatch.undo()
    monkeypatch.setattr("sys.argv", ["custody", "--version"])
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("custody ")
