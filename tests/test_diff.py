"""`custody diff`: two runs compared by custody record, rule and occasion (issue 15)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import REINSPECTION, finding
from typer.testing import CliRunner

from custody import cli
from custody.compare import Side, compare
from custody.contract import FINDINGS_SCHEMA
from custody.pipeline import run_check
from custody.render.diff_html import render_diff_html

KEY = "a-secret-of-at-least-16-characters"

# Two children of reinspection_2015 who were refused bail and kept until court: in the copy
# they are moved to local authority accommodation that night.
MOVED = {
    "ANY-15-03402": ("2015-06-11 08:45,released,to_court,", "2015-06-11 01:10"),
    "ANY-15-04022": ("2015-07-03 08:45,released,to_court,", "2015-07-02 23:30"),
}
MOVED_CHILDREN = {"C-1502", "C-1505"}


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reinspection_2015 with two children moved (transferred_to_la, then released to_la)."""
    folder = tmp_path_factory.mktemp("moved") / "reinspection_moved"
    shutil.copytree(REINSPECTION, folder)
    events = (folder / "events.csv").read_text()
    for record, (released, moved_at) in MOVED.items():
        line = f"{record},{released}\n"
        assert line in events
        events = events.replace(
            line, f"{record},{moved_at},transferred_to_la,non_secure,\n{record},{moved_at},released,to_la,\n"
        )
    (folder / "events.csv").write_text(events)
    return folder


def _before_counts() -> dict[str, int]:
    """The reinspection's own findings, by outcome: what the comparison should carry over."""
    findings = run_check(REINSPECTION).findings
    counts = dict(findings.group_by(pl.col("outcome").cast(pl.String)).len().iter_rows())
    return {"exceptions": counts.get("breach", 0) + counts.get("cannot_assess", 0), "compliant": counts["compliant"]}


def _reported(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "diff.csv", infer_schema=False)


def test_two_children_moved_are_resolved_and_nothing_else(runner: CliRunner, moved: Path, tmp_path: Path) -> None:
    out = tmp_path / "diff"
    result = runner.invoke(cli.app, ["diff", str(REINSPECTION), str(moved), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _reported(out)
    changes = rows.filter(pl.col("status") != "continuing")
    assert set(changes["status"]) == {"resolved"}
    assert set(changes["person_id"]) == MOVED_CHILDREN
    assert set(changes["custody_record_id"]) == set(MOVED)
    # Moved: S38-TRANSFER becomes compliant; S38-CERTIFICATE (only for children not moved) no longer applies.
    assert sorted(zip(changes["rule_id"], changes["outcome_after"], strict=True)) == [
        ("S38-CERTIFICATE", "none"),
        ("S38-CERTIFICATE", "none"),
        ("S38-TRANSFER", "compliant"),
        ("S38-TRANSFER", "compliant"),
    ]
    summary = json.loads((out / "diff.json").read_text())
    assert summary["findings"]["new"] == 0
    assert summary["findings"]["changed"] == 0
    assert summary["findings"]["resolved"] == 4
    # Every other exception of the reinspection continues.
    continuing = _before_counts()["exceptions"] - 4
    assert summary["per_force"] == {
        "Anyshire Police": {"new": 0, "resolved": 4, "continuing": continuing, "changed": 0}
    }
    assert summary["headline"]["moved"] == {"before": 2, "after": 4}
    assert "4 resolved" in result.stdout


def test_out_folders_compare_as_the_record_sets_do(runner: CliRunner, moved: Path, tmp_path: Path) -> None:
    for name, records in (("before", REINSPECTION), ("after", moved)):
        checked = runner.invoke(cli.app, ["check", str(records), "--out", str(tmp_path / name), "-q"])
        assert checked.exit_code == 0, checked.output
    from_folders = runner.invoke(
        cli.app, ["diff", str(tmp_path / "before"), str(tmp_path / "after"), "--output-format", "json"]
    )
    from_records = runner.invoke(cli.app, ["diff", str(REINSPECTION), str(moved), "--output-format", "json"])
    assert from_folders.exit_code == from_records.exit_code == 0, from_folders.output
    folders, records = json.loads(from_folders.stdout), json.loads(from_records.stdout)
    assert folders["findings"] == records["findings"]
    assert folders["per_rule"] == records["per_rule"]
    assert folders["headline"] == records["headline"]
    # A run's output folder does not record each record's force.
    assert set(folders["per_force"]) == {"(not recorded)"}


def test_a_run_that_wrote_only_findings_csv_compares_the_same(runner: CliRunner, moved: Path, tmp_path: Path) -> None:
    before = tmp_path / "before"
    checked = runner.invoke(cli.app, ["check", str(REINSPECTION), "-o", str(before), "-q", "--formats", "csv"])
    assert checked.exit_code == 0, checked.output
    assert not (before / "findings.parquet").exists()
    result = runner.invoke(cli.app, ["diff", str(before), str(moved), "--output-format", "json"])
    assert result.exit_code == 0, result.output
    before_counts = _before_counts()
    assert json.loads(result.stdout)["findings"] == {
        "new": 0,
        "resolved": 4,
        "continuing": before_counts["exceptions"] - 4,
        "changed": 0,
        "unchanged": before_counts["compliant"],
    }


def test_fail_on_new_names_the_rules(runner: CliRunner, moved: Path) -> None:
    # Compared the other way round, the two moves are undone: their findings are new.
    result = runner.invoke(cli.app, ["diff", str(moved), str(REINSPECTION), "--fail-on-new", "-q"])
    assert result.exit_code == 1
    assert "--fail-on-new: 4 new finding(s) (S38-CERTIFICATE 2, S38-TRANSFER 2): exit 1." in result.stderr
    assert runner.invoke(cli.app, ["diff", str(REINSPECTION), str(moved), "--fail-on-new", "-q"]).exit_code == 0


def test_a_pseudonymised_run_is_not_compared_with_a_plain_one(runner: CliRunner, tmp_path: Path) -> None:
    hidden, plain = tmp_path / "hidden", tmp_path / "plain"
    for folder, key in ((hidden, ["--pseudonymise-key", KEY]), (plain, [])):
        checked = runner.invoke(cli.app, ["check", str(REINSPECTION), "-o", str(folder), "-q", *key])
        assert checked.exit_code == 0, checked.output
    result = runner.invoke(cli.app, ["diff", str(hidden), str(plain)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert "was pseudonymised and" in line
    other_key = runner.invoke(cli.app, ["diff", str(hidden), str(REINSPECTION), "--pseudonymise-key", KEY + "x"])
    assert other_key.exit_code == 2
    assert "was pseudonymised with another key than the one given" in other_key.stderr


def test_a_key_never_lets_a_plain_run_into_the_diff(runner: CliRunner, tmp_path: Path) -> None:
    """--pseudonymise-key (or the environment's key) promises pseudonymised outputs: two runs
    written without it are refused, not diffed with their real ids."""
    plain = tmp_path / "plain"
    checked = runner.invoke(cli.app, ["check", str(REINSPECTION), "-o", str(plain), "-q"])
    assert checked.exit_code == 0, checked.output
    out = tmp_path / "diff"
    for how in (["--pseudonymise-key", KEY], []):
        env = {} if how else {"CUSTODY_PSEUDONYMISE_KEY": KEY}
        result = runner.invoke(cli.app, ["diff", str(plain), str(plain), "-o", str(out), *how], env=env)
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert "was written without a pseudonymisation key" in line
        assert not out.exists()


def test_runs_pseudonymised_with_one_key_compare_without_real_ids(
    runner: CliRunner, moved: Path, tmp_path: Path
) -> None:
    hidden = tmp_path / "hidden"
    checked = runner.invoke(cli.app, ["check", str(REINSPECTION), "-o", str(hidden), "-q", "--pseudonymise-key", KEY])
    assert checked.exit_code == 0
    summary = json.loads((hidden / "summary.json").read_text())
    assert len(summary["pseudonymisation_key_id"]) == 16
    assert KEY not in (hidden / "summary.json").read_text()
    out = tmp_path / "diff"
    result = runner.invoke(cli.app, ["diff", str(hidden), str(moved), "--pseudonymise-key", KEY, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "diff.json").read_text())["findings"]["resolved"] == 4
    for name in ("diff.csv", "diff.html", "diff.json"):
        text = (out / name).read_text()
        assert "ANY-15-" not in text, name
        assert "C-15" not in text, name


# ---------------------------------------------------------------- matching by stable keys


def _side(rows: list[dict[str, object]], label: str) -> Side:
    return Side(label=label, findings=pl.DataFrame(rows, schema=FINDINGS_SCHEMA), headline={})


def test_several_occasions_of_one_rule_are_matched_by_trigger_at() -> None:
    first, second = "2019-10-26T22:00:00", "2019-10-27T09:00:00"
    before = _side(
        [
            finding("C1", "R1", "S38-REQUEST", "breach", first),
            finding("C1", "R1", "S38-REQUEST", "compliant", second),
            finding("C1", "R1", "PACE-AA", "cannot_assess", None),
        ],
        "before",
    )
    after = _side(
        [
            finding("C1", "R1", "S38-REQUEST", "compliant", first),
            finding("C1", "R1", "S38-REQUEST", "breach", second),
            finding("C1", "R1", "PACE-AA", "cannot_assess", None),
        ],
        "after",
    )
    rows = compare(before, after).rows
    by_occasion = {(r["rule_id"], str(r["trigger_at"])): r["status"] for r in rows.iter_rows(named=True)}
    assert by_occasion == {
        ("S38-REQUEST", "2019-10-26 22:00:00+00:00"): "resolved",
        ("S38-REQUEST", "2019-10-27 09:00:00+00:00"): "new",
        ("PACE-AA", "None"): "continuing",  # a null trigger_at matches a null one
    }


def test_every_status_and_change_flag() -> None:
    before = _side(
        [
            finding("C1", "R1", "PACE-AA", "breach", "2020-01-01T10:00:00"),
            finding("C1", "R2", "PACE-AA", "compliant", "2020-02-01T10:00:00", message="Asked at 10:05."),
            finding("C2", "R3", "PACE-AA", "compliant", "2020-03-01T10:00:00"),
            finding("C2", "R4", "PACE-AA", "breach", "2020-04-01T10:00:00"),
        ],
        "before",
    )
    after = _side(
        [
            finding("C1", "R1", "PACE-AA", "cannot_assess", "2020-01-01T10:00:00"),
            finding("C1", "R2", "PACE-AA", "compliant", "2020-02-01T10:00:00", message="Asked at 10:06."),
            finding("C2", "R4", "PACE-AA", "breach", "2020-04-01T10:00:00"),
            finding("C2", "R5", "PACE-AA", "compliant", "2020-05-01T10:00:00"),
        ],
        "after",
    )
    comparison = compare(before, after)
    rows = {r["custody_record_id"]: r for r in comparison.rows.iter_rows(named=True)}
    assert {record: row["status"] for record, row in rows.items()} == {
        "R1": "changed",  # breach -> cannot_assess
        "R2": "unchanged",
        "R3": "changed",  # a compliant finding disappeared
        "R4": "continuing",
        "R5": "changed",  # a compliant finding appeared
    }
    assert rows["R2"]["message_changed"]
    assert not rows["R2"]["outcome_changed"]
    assert rows["R3"]["outcome_after"] == "none"
    assert comparison.changed_messages() == 1
    assert comparison.counts() == {"new": 0, "resolved": 0, "continuing": 1, "changed": 3, "unchanged": 1}


def test_rows_sharing_a_key_are_each_matched_once() -> None:
    twice = [finding("C1", "R1", "PACE-AA", "breach", "2020-01-01T10:00:00", message=m) for m in ("a.", "b.")]
    comparison = compare(_side(twice, "before"), _side(twice[:1], "after"))
    assert comparison.rows.height == 2
    assert sorted(comparison.rows["status"].cast(pl.String)) == ["continuing", "resolved"]


def test_diff_html_is_self_contained_and_escapes_the_data() -> None:
    evil = "<script>alert(1)</script>"
    before = _side([finding("C1", "R1", "PACE-AA", "breach", "2020-01-01T10:00:00", message=evil)], "<b>before</b>")
    after = _side([], "after")
    page = render_diff_html(compare(before, after))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;before&lt;/b&gt;" in page
    assert "default-src 'none'" in page
    assert '"Segoe UI"' in page  # the stylesheet is the project's own, not escaped as data
    assert "http://" not in page
    assert "https://" not in page
