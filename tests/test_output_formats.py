"""--output-format json, junit and github on check, rules test, rules lint and both diffs
(issue 15); lint reports every broken file; rules test says what differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import xmlschema
from conftest import DEMO, MESSY, REINSPECTION, RULES_DIR
from typer.testing import CliRunner

from custody import cli

SCHEMA_FILE = Path(__file__).parent / "schemas" / "junit.xsd"


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMA_FILE)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def _break_a_case_message(rules_dir: Path) -> None:
    """PACE-CELL's breach case now wants a phrase its message lacks (the outcome still matches)."""
    path = rules_dir / "PACE-CELL.yaml"
    text = path.read_text()
    broken = text.replace("message_contains: 1 of the 2 cell placement(s)", "message_contains: no such phrase", 1)
    assert broken != text
    path.write_text(broken)


def _commands(tmp_path: Path, rules_dir: Path) -> dict[str, list[str]]:
    return {
        "check": ["check", str(MESSY), "-o", str(tmp_path / "out"), "-q", "--fail-on", "breach,data_quality"],
        "rules test": ["rules", "test", "--rules", str(rules_dir)],
        "rules lint": ["rules", "lint", "--rules", str(rules_dir)],
        "diff": ["diff", str(REINSPECTION), str(DEMO)],
        "rules diff": ["rules", "diff", str(RULES_DIR), str(rules_dir), str(REINSPECTION)],
    }


@pytest.mark.parametrize("command", ["check", "rules test", "rules lint", "diff", "rules diff"])
def test_junit_output_validates_against_the_junit_schema(
    runner: CliRunner, tmp_path: Path, rules_dir: Path, junit_schema: xmlschema.XMLSchema, command: str
) -> None:
    _break_a_case_message(rules_dir)  # so that test and lint have a failure to report
    result = runner.invoke(cli.app, [*_commands(tmp_path, rules_dir)[command], "--output-format", "junit"])
    assert result.exit_code in (0, 1), result.output
    junit_schema.validate(result.stdout)
    assert "<testcase" in result.stdout
    if result.exit_code == 1:
        assert "<failure" in result.stdout


def test_the_schema_refuses_what_ci_systems_would_not_read(junit_schema: xmlschema.XMLSchema) -> None:
    assert not junit_schema.is_valid(
        '<testsuites><testsuite name="x" tests="one" failures="0" errors="0"/></testsuites>'
    )
    assert not junit_schema.is_valid('<testsuites><testcase name="x"/></testsuites>')
    assert junit_schema.is_valid('<testsuites><testsuite name="x" tests="0" failures="0" errors="0"/></testsuites>')


@pytest.mark.parametrize("command", ["check", "rules test", "rules lint", "diff", "rules diff"])
def test_json_output_is_one_document(runner: CliRunner, tmp_path: Path, rules_dir: Path, command: str) -> None:
    result = runner.invoke(cli.app, [*_commands(tmp_path, rules_dir)[command], "--output-format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert isinstance(json.loads(result.stdout), dict)


def test_check_json_holds_the_summary_and_each_gate(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.app,
        ["check", str(MESSY), "-o", str(tmp_path), "--fail-on", "breach,data_quality", "--output-format", "json"],
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["counts"] == json.loads((tmp_path / "summary.json").read_text())["counts"]
    gates = {gate["gate"]: gate for gate in report["gates"]}
    assert gates["data_quality"]["tripped"] is True
    assert gates["data_quality"]["count"] == report["counts"]["rows_rejected"] > 0
    assert report["failed"] is True


def test_a_format_a_command_does_not_offer_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(DEMO), "-o", str(tmp_path), "--output-format", "github"])
    assert result.exit_code == 2
    assert "--output-format github is not offered here" in result.stderr


# ---------------------------------------------------------------- rules test and lint


def test_rules_test_says_what_differs_when_only_the_message_does(runner: CliRunner, rules_dir: Path) -> None:
    _break_a_case_message(rules_dir)
    result = runner.invoke(cli.app, ["rules", "test", "PACE-CELL", "--rules", str(rules_dir)])
    assert result.exit_code == 1
    assert "message lacks 'no such phrase' (the outcome is as expected)" in result.stdout
    assert "expected breach, got breach" not in result.stdout
    assert "     evidence: {" in result.stdout
    linted = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert linted.exit_code == 1
    assert "message lacks 'no such phrase'" in linted.stdout
    assert "expects breach, got breach" not in linted.stdout


def test_rules_test_github_annotations_point_at_the_case(runner: CliRunner, rules_dir: Path) -> None:
    _break_a_case_message(rules_dir)
    result = runner.invoke(cli.app, ["rules", "test", "--rules", str(rules_dir), "--output-format", "github"])
    assert result.exit_code == 1
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert "PACE-CELL.yaml,line=" in line
    assert "::message lacks 'no such phrase'" in line


def test_lint_with_two_broken_files_reports_both(runner: CliRunner, rules_dir: Path) -> None:
    cell, court = rules_dir / "PACE-CELL.yaml", rules_dir / "S38-COURT.yaml"
    cell.write_text(cell.read_text().replace("trigger:", "trigger: [", 1))
    court.write_text(court.read_text().replace("basis: statute", "basis: statue", 1))
    result = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir)])
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {cell}:")
    assert errors[1].startswith(f"error: {court}:")
    assert "Traceback" not in result.output
    # The other eleven rules were still linted and their cases run.
    shipped = len([p for p in RULES_DIR.glob("*.yaml") if not p.name.startswith("_")])
    assert f"{shipped} rule files checked" in result.stdout
    assert "2 problem(s)" in result.stdout
    annotated = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir), "--output-format", "github"])
    annotations = [line for line in annotated.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2
    assert any("PACE-CELL.yaml,line=" in line for line in annotations)
    assert any("S38-COURT.yaml,line=" in line for line in annotations)


def test_lint_reports_problems_in_good_files_beside_a_broken_one(runner: CliRunner, rules_dir: Path) -> None:
    cell = rules_dir / "PACE-CELL.yaml"
    cell.write_text(cell.read_text().replace("trigger:", "trigger: [", 1))
    aa = rules_dir / "PACE-AA.yaml"
    text = aa.read_text()
    aa.write_text(
        text.replace('message_contains: "No appropriate adult', 'message_contains: "zzz No appropriate adult', 1)
    )
    result = runner.invoke(cli.app, ["rules", "lint", "--rules", str(rules_dir), "--output-format", "json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["broken_files"] == [str(cell)]
    (item,) = [item for item in report["items"] if item["rule"] == "PACE-AA"]
    assert "message lacks 'zzz No appropriate adult" in item["message"]
    assert item["file"] == str(aa)
    assert "- name:" in aa.read_text().splitlines()[item["line"] - 1]  # the line of the failing case


def test_annotations_and_junit_escape_what_they_carry(junit_schema: xmlschema.XMLSchema) -> None:
    from custody.render.github import annotation
    from custody.render.junit import Case, Suite, junit_xml

    line = annotation("50% done\nnext", file="rules/A,B.yaml", line=3, title="S38-X::case")
    assert line == "::error file=rules/A%2CB.yaml,line=3,title=S38-X%3A%3Acase::50%25 done%0Anext"
    text = junit_xml([Suite("s", [Case("a <b> & \x01c", "k", failure='say "x"', details="]]>")])], name="n")
    junit_schema.validate(text)
    assert "a &lt;b&gt; &amp; c" in text
