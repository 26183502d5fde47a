"""Slash dates are never read the wrong way round: a column proven month first (a second
part over 12), or written both ways, stops the run in one sentence naming it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REINSPECTION
from typer.testing import CliRunner

from custody import cli

ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _rewrite(folder: Path, table: str, order: str) -> None:
    """Every ISO date of one table rewritten as MM/DD/YYYY (`mdy`) or DD/MM/YYYY (`dmy`)."""
    path = folder / f"{table}.csv"
    text = path.read_text()

    def swap(match: re.Match[str]) -> str:
        year, month, day = match.groups()
        return f"{month}/{day}/{year}" if order == "mdy" else f"{day}/{month}/{year}"

    path.write_text(ISO.sub(swap, text))


@pytest.fixture
def records(tmp_path: Path) -> Path:
    folder = tmp_path / "records"
    shutil.copytree(REINSPECTION, folder)
    return folder


@pytest.mark.parametrize("command", ["check", "validate"])
def test_a_month_first_copy_of_the_reinspection_stops_naming_the_column(
    runner: CliRunner, records: Path, tmp_path: Path, command: str
) -> None:
    _rewrite(records, "events", "mdy")
    result = runner.invoke(cli.app, [command, str(records), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "events.csv: column event_time has dates written month first (MM/DD/YYYY)" in result.stderr
    assert "will not guess: add --date-order mdy" in result.stderr
    assert not (tmp_path / "out" / "findings.csv").exists()


def test_declared_month_first_gives_the_findings_of_the_iso_records(
    runner: CliRunner, records: Path, tmp_path: Path
) -> None:
    iso = tmp_path / "iso"
    assert runner.invoke(cli.app, ["check", str(REINSPECTION), "--out", str(iso), "-q"]).exit_code == 0
    for table in ("detentions", "events"):
        _rewrite(records, table, "mdy")
    declared = tmp_path / "declared"
    result = runner.invoke(cli.app, ["check", str(records), "--out", str(declared), "-q", "--date-order", "mdy"])
    assert result.exit_code == 0, result.stderr
    for name in ("findings.csv", "children.csv", "exceptions.csv"):
        assert (iso / name).read_bytes() == (declared / name).read_bytes(), name
    summary = json.loads((declared / "summary.json").read_text())
    assert summary["date_order"] == "mdy"
    # The report's figures: 12 charged and refused bail, 9 asked, 2 moved (the seed inspection).
    assert summary["headline"]["charged_and_refused_bail"] == 12
    assert summary["headline"]["requests_made"] == 9
    assert summary["headline"]["moved"] == 2


def test_declared_month_first_with_a_day_first_date_stops(runner: CliRunner, records: Path, tmp_path: Path) -> None:
    _rewrite(records, "events", "dmy")
    result = runner.invoke(cli.app, ["validate", str(records), "--out", str(tmp_path / "o"), "--date-order", "mdy"])
    assert result.exit_code == 2
    assert "column event_time has dates written day first (DD/MM/YYYY)" in result.stderr
    assert "leave out --date-order mdy" in result.stderr


def test_a_column_written_both_ways_stops(runner: CliRunner, records: Path, tmp_path: Path) -> None:
    path = records / "detentions.csv"
    lines = path.read_text().splitlines()
    # Row 2 day first (a day over 12), row 3 month first (a month position over 12).
    lines[1] = lines[1].replace("2015-06-03 15:40", "23/06/2015 15:40")
    lines[2] = lines[2].replace("2015-06-10 17:20", "06/23/2015 17:20")
    path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(cli.app, ["validate", str(records), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "column arrival_time mixes dates written day first (1 row) and month first" in result.stderr


def test_day_first_slash_dates_give_the_same_findings_as_iso(runner: CliRunner, records: Path, tmp_path: Path) -> None:
    iso = tmp_path / "iso"
    assert runner.invoke(cli.app, ["check", str(REINSPECTION), "--out", str(iso), "-q"]).exit_code == 0
    for table in ("detentions", "events"):
        _rewrite(records, table, "dmy")
    slashed = tmp_path / "slashed"
    result = runner.invoke(cli.app, ["check", str(records), "--out", str(slashed), "-q"])
    assert result.exit_code == 0, result.stderr
    assert (iso / "findings.csv").read_bytes() == (slashed / "findings.csv").read_bytes()
