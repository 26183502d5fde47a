"""`check --fail-on`: gates by outcome, severity, basis, rule id and data quality, each saying
what tripped it (issue 15)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO, MESSY
from typer.testing import CliRunner

from custody import cli
from custody.errors import UsageError
from custody.findings import CheckResult
from custody.gates import evaluate_gates, parse_gates

RULE_IDS = ["S38-REQUEST", "S38-TRANSFER", "PACE-AA", "MHA-DURATION"]


def _counts(result: CheckResult, *gates: str) -> list[tuple[int, dict[str, int]]]:
    return [(v.count, v.per_rule) for v in evaluate_gates(result, parse_gates(list(gates), RULE_IDS))]


def test_each_kind_of_gate_counts_its_findings(result: CheckResult) -> None:
    # The fixture: breaches of S38-REQUEST (high, statute) and PACE-AA (medium, code);
    # cannot_assess of PACE-AA twice.
    assert _counts(result, "breach") == [(2, {"PACE-AA": 1, "S38-REQUEST": 1})]
    assert _counts(result, "cannot_assess") == [(4, {"PACE-AA": 3, "S38-REQUEST": 1})]
    assert _counts(result, "high") == [(1, {"S38-REQUEST": 1})]
    assert _counts(result, "medium") == [(2, {"PACE-AA": 1, "S38-REQUEST": 1})]
    assert _counts(result, "code") == [(1, {"PACE-AA": 1})]
    assert _counts(result, "s38-transfer") == [(0, {})]
    assert _counts(result, "cannot_assess+PACE-AA") == [(3, {"PACE-AA": 3})]
    assert _counts(result, "severity=medium+basis=statute+outcome=cannot_assess") == [(1, {"S38-REQUEST": 1})]
    assert _counts(result, "high,code") == [(1, {"S38-REQUEST": 1}), (1, {"PACE-AA": 1})]


def test_the_data_quality_gate_counts_rejected_rows(result: CheckResult) -> None:
    # The fixture's meta has no loader counts: its two rejected data-quality rows are counted.
    (verdict,) = evaluate_gates(result, parse_gates(["data_quality"], RULE_IDS))
    assert verdict.count == 2
    assert verdict.sentence() == "--fail-on data_quality: 2 input row(s) rejected (see data_quality.csv)."


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("breech", "'breech' is not an outcome"),
        ("S38-NOPE", "'S38-NOPE' is not an outcome"),
        ("rule=S38-NOPE", "no rule S38-NOPE"),
        ("severity=urgent", "severity must be one of high, medium, low"),
        ("high+low", "names two values of severity"),
        ("data_quality+breach", "data_quality is a gate of its own"),
    ],
)
def test_a_gate_that_names_nothing_known_is_refused(value: str, says: str) -> None:
    with pytest.raises(UsageError, match=says.replace("(", r"\(")):
        parse_gates([value], RULE_IDS)


def test_a_tripped_gate_says_which_rules_and_how_many_even_quiet(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["check", str(DEMO), "-o", str(tmp_path), "-q", "--fail-on", "S38-TRANSFER", "--fail-on", "low+guidance"],
    )
    assert result.exit_code == 1
    # What each gate should count, read from the run's own findings.csv.
    found = pl.read_csv(tmp_path / "findings.csv").filter(pl.col("outcome") == "breach")
    transfer = found.filter(pl.col("rule_id") == "S38-TRANSFER").height
    guidance = found.filter(pl.col("basis") == "guidance")
    assert transfer > 0
    assert set(guidance["rule_id"]) == {"MHA-POLICE-STATION"}
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"--fail-on S38-TRANSFER: {transfer} findings at or above breach of S38-TRANSFER (S38-TRANSFER {transfer}).",
        f"--fail-on low+guidance: {guidance.height} findings at or above breach of severity low or higher with basis "
        f"guidance (MHA-POLICE-STATION {guidance.height}).",
        "2 of 2 --fail-on gate(s) tripped: exit 1.",
    ]


def test_a_held_gate_is_said_unless_quiet_and_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    args = ["check", str(DEMO), "-o", str(tmp_path), "--fail-on", "data_quality"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "--fail-on data_quality: held (no input row was rejected)." in result.stderr
    quiet = runner.invoke(cli.app, [*args, "-q"])
    assert quiet.exit_code == 0
    assert quiet.stderr == ""


def test_a_run_whose_inputs_lost_rows_fails_the_data_quality_gate(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(MESSY), "-o", str(tmp_path), "-q", "--fail-on", "data_quality"])
    assert result.exit_code == 1
    assert "--fail-on data_quality: 32 input row(s) rejected (see data_quality.csv)." in result.stderr


def test_an_unknown_gate_stops_before_checking(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["check", str(DEMO), "-o", str(out), "--fail-on", "urgent"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --fail-on urgent: 'urgent' is not an outcome")
    assert not out.exists()
