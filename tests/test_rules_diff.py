"""`custody rules diff`: the impact of a rule change on a reference record set (issue 15)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO, RULES_DIR
from typer.testing import CliRunner

from custody import cli
from custody.impact import rules_impact
from custody.pipeline import PreparedRules, prepare_rules, run_check

# PACE-AA's delay threshold from 27 Oct 2013 (the version in force for most demo records).
OLD_PARAM, NEW_PARAM = "aa_delay_threshold: 2h", "aa_delay_threshold: 4h"


@pytest.fixture
def changed_rules(tmp_path: Path) -> Path:
    """A copy of rules/ with one parameter of one rule's current version changed."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    path = target / "PACE-AA.yaml"
    text = path.read_text()
    head, current = text.split("effective_from: 2013-10-27", 1)
    assert OLD_PARAM in current
    path.write_text(head + "effective_from: 2013-10-27" + current.replace(OLD_PARAM, NEW_PARAM, 1))
    return target


def _outcomes(rules: PreparedRules) -> dict[tuple[str, str, object], str]:
    findings = run_check(DEMO, rules=rules).findings.lazy().collect()
    return {
        (row["custody_record_id"], str(row["rule_id"]), row["trigger_at"]): str(row["outcome"])
        for row in findings.iter_rows(named=True)
    }


def test_a_changed_parameter_names_exactly_the_findings_whose_outcome_changes(
    runner: CliRunner, changed_rules: Path, prepared_rules: PreparedRules
) -> None:
    result = runner.invoke(cli.app, ["rules", "diff", str(RULES_DIR), str(changed_rules), str(DEMO), "-q",
                                     "--output-format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    named = {
        (c["custody_record_id"], c["rule_id"]) for c in summary["changes"] if c["outcome_before"] != c["outcome_after"]
    }

    # The same records checked with each rule set, compared here row by row.
    before, after = _outcomes(prepared_rules), _outcomes(prepare_rules(changed_rules))
    moved = {(key[0], key[1]) for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert named == moved == {("DEMO-025", "PACE-AA")}
    assert summary["outcome_changes"] == 1
    assert summary["per_rule"]["PACE-AA"]["reason"] == "PACE-AA.yaml changed"
    assert summary["per_rule"]["PACE-AA"]["outcome_moves"] == {"breach -> compliant": 1}
    assert summary["files_changed"] == ["PACE-AA.yaml changed"]
    assert set(summary["per_rule"]) == {"PACE-AA"}  # messages that state the threshold change too


def test_fail_on_change_exits_1_naming_the_rule(runner: CliRunner, changed_rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "impact"
    result = runner.invoke(
        cli.app,
        ["rules", "diff", str(RULES_DIR), str(changed_rules), str(DEMO), "--fail-on-change", "-q", "-o", str(out)],
    )
    assert result.exit_code == 1
    # One PACE-AA finding changes outcome; the others whose message states the threshold
    # change message only, and every change is PACE-AA's.
    said = re.search(
        r"--fail-on-change: (\d+) finding\(s\) change \(1 outcome, (\d+) message only; PACE-AA (\d+)\): exit 1\.",
        result.stderr,
    )
    assert said is not None, result.stderr
    total, message_only, of_rule = map(int, said.groups())
    assert total == message_only + 1 == of_rule
    assert message_only > 0
    markdown = (out / "diff.md").read_text()
    assert "| `PACE-AA` | PACE-AA.yaml changed | 1 (breach → compliant 1) |" in markdown
    assert "| `DEMO-025` | `PACE-AA` | " in markdown
    for name in ("diff.csv", "diff.parquet", "diff.html", "diff.json"):
        assert (out / name).is_file()


def test_the_same_rules_change_nothing(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["rules", "diff", str(RULES_DIR), str(RULES_DIR), str(DEMO), "--fail-on-change"])
    assert result.exit_code == 0, result.output
    assert "0 change outcome" in result.stdout
    assert "No finding changes." in result.stdout


def test_a_facts_change_is_named_as_the_reason(prepared_rules: PreparedRules, tmp_path: Path) -> None:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    facts = target / "_facts.yaml"
    facts.write_text(facts.read_text() + "\n# a comment changes the file, not the law\n")
    impact = rules_impact(
        prepared_rules, prepare_rules(target), DEMO, base_label="rules", new_label="copy", records_label="demo"
    )
    assert set(impact.reasons.values()) == {"_facts.yaml changed"}
    assert set(impact.reasons) == {source.rule.id for source in prepared_rules.rule_set.rules}
    assert impact.changed.height == 0  # a comment moves no finding
    assert impact.summary()["files_changed"] == ["_facts.yaml changed"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_git_revision_of_rules_is_compared(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "force-rules"
    shutil.copytree(RULES_DIR, repo / "rules")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "rules"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "rules"], check=True)
    path = repo / "rules" / "PACE-AA.yaml"
    head, current = path.read_text().split("effective_from: 2013-10-27", 1)
    path.write_text(head + "effective_from: 2013-10-27" + current.replace(OLD_PARAM, NEW_PARAM, 1))
    monkeypatch.chdir(repo)
    result = runner.invoke(cli.app, ["rules", "diff", "main:rules", "rules", str(DEMO), "--output-format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "`main:rules` → `rules`" in result.stdout
    assert "**1 finding(s) change outcome**" in result.stdout
    missing = runner.invoke(cli.app, ["rules", "diff", "nobranch:rules", "rules", str(DEMO)])
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: BASE_RULES nobranch:rules is not a folder")
