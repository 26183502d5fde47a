"""`custody validate` and `custody schema`, and how the CLI reports errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from conftest import GOOD, RecordSetFactory
from typer.testing import CliRunner

from custody import cli
from custody.cli import records as record_commands
from custody.contract import DATA_QUALITY_SCHEMA, EVENT_DETAILS


def test_validate_prints_a_summary_and_writes_data_quality(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path
) -> None:
    folder = csv_record_set(
        [GOOD, ("R2", None, None, "pace_arrest", "2019-07-01 12:00")],
        [("R1", "2019-10-27 01:30", "charged", None, None), ("R1", "2019-07-01 12:05", "charged", None, None)],
    )
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["validate", str(folder), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "1 custody records, 1 events, 1 children." in result.stdout
    assert "detentions.person_id: missing" in result.stdout
    assert "events.event_time: local time occurs twice (clocks go back)" in result.stdout
    written = pl.read_csv(out / "data_quality.csv", schema=DATA_QUALITY_SCHEMA)
    assert written.select("table", "row", "column", "action").rows() == [
        ("detentions", 3, "person_id", "row_rejected"),
        ("events", 2, "event_time", "row_rejected"),
    ]


def test_validate_clean_data(runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["validate", str(csv_record_set([GOOD])), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0
    assert "No data-quality issues." in result.stdout
    assert pl.read_csv(tmp_path / "o" / "data_quality.csv").columns == list(DATA_QUALITY_SCHEMA)


def test_validate_two_files(runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path) -> None:
    folder = csv_record_set([GOOD])
    args = ["validate", str(folder / "detentions.csv"), "--events", str(folder / "events.csv")]
    result = runner.invoke(cli.app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output


def test_missing_column_is_one_line_and_exit_2(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path
) -> None:
    folder = csv_record_set([("R1", "P1")], detention_header=["custody_record_id", "person_id"])
    result = runner.invoke(cli.app, ["validate", str(folder), "--out", str(tmp_path / "o")])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {folder}/detentions.csv has no columns 'detention_power', 'arrival_time' (its columns are: "
        "custody_record_id, person_id): add them (column names are case-insensitive), or see `custody schema`."
    ]
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_verbose_shows_the_exception(runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path) -> None:
    folder = csv_record_set([("R1", "P1")], detention_header=["custody_record_id", "person_id"])
    result = runner.invoke(cli.app, ["--verbose", "validate", str(folder), "--out", str(tmp_path / "o")])
    assert "Traceback" in result.stderr
    assert "InputError" in result.stderr
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{folder}/detentions.csv"], "error: {folder}/detentions.csv is a file: name the events file too"),
        (
            ["{folder}", "--events", "{folder}/events.csv"],
            "error: --events names the events file, so RECORDS must be the detentions file, not the folder",
        ),
        (["{folder}/missing"], "error: {folder}/missing does not exist"),
    ],
)
def test_usage_errors(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path, args: list[str], message: str
) -> None:
    folder = csv_record_set([GOOD])
    argv = ["validate", *(a.format(folder=folder) for a in args), "--out", str(tmp_path / "o")]
    result = runner.invoke(cli.app, argv)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(message.format(folder=folder))


def test_out_must_be_a_folder(runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path) -> None:
    (tmp_path / "o").write_text("")
    result = runner.invoke(cli.app, ["validate", str(csv_record_set([GOOD])), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: --out {tmp_path / 'o'} is a file: give a folder for the outputs (it is created if needed).\n"
    )


def test_internal_errors_are_one_line_too(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: object, **options: object) -> None:
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(record_commands, "load_record_set", broken)
    result = runner.invoke(cli.app, ["validate", str(csv_record_set([GOOD])), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr == (
        "internal error: RuntimeError: something unexpected; re-run with --verbose and report it\n"
    )


def test_schema_json_is_json_schema_of_both_tables(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["schema", "--json"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["detentions"]["items"] == {"$ref": "#/$defs/Detention"}
    detention = schema["$defs"]["Detention"]
    assert set(detention["required"]) == {"custody_record_id", "person_id", "detention_power", "arrival_time"}
    assert set(schema["$defs"]["Event"]["required"]) == {"custody_record_id", "event_time", "event_type"}
    assert schema["event_vocabulary"]["review"]["detail"] == ["pre_charge", "post_charge", "postponed"]
    assert set(schema["event_vocabulary"]) == set(EVENT_DETAILS)


def test_schema_lists_columns_and_vocabulary(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["schema"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in ("custody_record_id", "place_of_safety", "la_response", "no_secure_available", "for mha_*"):
        assert word in result.stdout


@pytest.mark.parametrize("command", [["--help"], ["validate", "--help"], ["schema", "--help"]])
def test_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(cli.app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_every_option_of_these_commands_has_help() -> None:
    group = cli.typer.main.get_command(cli.app)
    for name in ("validate", "schema"):
        command = group.commands[name]  # type: ignore[attr-defined]
        assert command.help
        for parameter in command.params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name} has no help"


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("custody ")
