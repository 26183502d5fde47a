"""Issue acceptance for the rule engine: rules are data; broken rules are caught by `rules test`/`lint`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DEMO, RULES_DIR
from typer.testing import CliRunner

from custody import cli

NEW_RULE = """\
id: TEST-LONG-STAY
title: A child held more than 48 hours in all (an example rule written only as data)
basis: guidance
severity: low
checks: Flags custody records of children longer than a limit, measured from arrival to release.
why: Shows that a rule written only as a YAML file is loaded, tested, linted and evaluated.
action: None; this is an example.
citations: [Example only]
trigger: arrival_at
versions:
  - effective_from: 2000-01-01
    effective_to: 2017-12-10
    citations: [Example only, before]
    changes: the first limit
    params: {limit: 48h}
  - effective_from: 2017-12-11
    citations: [Example only, after]
    changes: a shorter limit
    params: {limit: 36h}
logic:
  applies: age_at(arrival_at) < 18
  outcomes:
    - when: released_at - arrival_at > limit
      outcome: breach
      message: "Held {released_at - arrival_at}, over {limit}."
    - outcome: compliant
      message: "Held {released_at - arrival_at}."
case_defaults: {detention_power: pace_arrest, date_of_birth: 2005-01-01}
cases:
  - name: a long stay the day before the change is judged against 48 hours
    records:
      - detention: {arrival_time: 2017-12-10 10:00}
        events: ["2017-12-12 00:00 released"]
        expect: compliant
  - name: the same stay from the day of the change breaches 36 hours
    records:
      - detention: {arrival_time: 2017-12-11 10:00}
        events: ["2017-12-13 00:00 released"]
        expect: breach
  - name: with no release the stay cannot be measured
    records:
      - detention: {arrival_time: 2019-01-01 10:00}
        expect: cannot_assess
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def test_a_rule_written_only_as_data_is_tested_linted_and_evaluated(
    runner: CliRunner, rules_dir: Path, tmp_path: Path
) -> None:
    (rules_dir / "TEST-LONG-STAY.yaml").write_text(NEW_RULE)
    listed = runner.invoke(cli.app, ["rules", "list", "--rules", str(rules_dir)])
    assert "TEST-LONG-STAY" in listed.stdout
    tested = runner.invoke(cli.app, ["rules", "test", "TEST-LONG-STAY", "--rules", str(rules_dir)])
    assert tested.exit_code == 0, tested.stdout
    assert "3 passed, 0 failed" in tested.stdout
    linted = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert linted.exit_code == 0, linted.stdout
    out = tmp_path / "out"
    checked = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q", "--rules", str(rules_dir)])
    assert checked.exit_code == 0, checked.output
    assert "TEST-LONG-STAY" in (out / "findings.csv").read_text()


def test_breaking_a_rules_logic_fails_its_cases(runner: CliRunner, rules_dir: Path) -> None:
    path = rules_dir / "S38-REQUEST.yaml"
    text = path.read_text()
    broken = text.replace("la_requested_at >= occasion_ends_at", "la_requested_at < occasion_ends_at")
    assert broken != text
    path.write_text(broken)
    result = runner.invoke(cli.app, ["rules", "test", "--rules", str(rules_dir)])
    assert result.exit_code == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failures
    assert all(line.startswith("FAIL S38-REQUEST::") for line in failures)
    assert "expected" in result.stdout


def test_broken_syntax_makes_lint_exit_2_naming_the_file_and_line(runner: CliRunner, rules_dir: Path) -> None:
    path = rules_dir / "PACE-CELL.yaml"
    path.write_text(path.read_text().replace("trigger:", "trigger: [", 1))
    result = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}:" in line
    assert "Traceback" not in result.output


def test_an_unknown_fact_is_refused_with_the_valid_names(runner: CliRunner, rules_dir: Path) -> None:
    path = rules_dir / "PACE-CELL.yaml"
    path.write_text(path.read_text().replace("cell_placed_count", "cell_placed_cnt", 1))
    result = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert result.exit_code == 2
    assert "unknown name 'cell_placed_cnt'; did you mean cell_placed_count" in result.stderr


def test_lint_wants_a_case_each_side_of_every_boundary(runner: CliRunner, rules_dir: Path) -> None:
    new_rule = NEW_RULE.split("cases:")[0] + "cases:\n" + NEW_RULE.split("cases:")[1].split("  - name: the same")[0]
    (rules_dir / "TEST-LONG-STAY.yaml").write_text(new_rule)
    result = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert result.exit_code == 1
    assert "no case is triggered on 2017-12-11 (the day of the 2017-12-11 version)" in result.stdout
    assert "no case expects 'breach'" in result.stdout


def test_the_shipped_rules_lint_clean(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["rules", "lint"])
    assert result.exit_code == 0, result.stdout
