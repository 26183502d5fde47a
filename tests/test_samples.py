"""The shipped sample record sets do what sample_records/README.md says they do."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from custody.findings import CheckResult
from custody.pipeline import prepare_rules, run_check
from custody.read.loader import load_record_set

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_records"


@pytest.fixture(scope="module")
def rules():  # type: ignore[no-untyped-def]
    return prepare_rules()


@pytest.fixture(scope="module")
def demo(rules) -> CheckResult:  # type: ignore[no-untyped-def]
    return run_check(SAMPLES / "demo", rules=rules)


@pytest.fixture(scope="module")
def reinspection(rules) -> CheckResult:  # type: ignore[no-untyped-def]
    return run_check(SAMPLES / "reinspection_2015", rules=rules)


def _outcomes(result: CheckResult, rule_id: str) -> dict[str, int]:
    rows = result.findings.filter(pl.col("rule_id").cast(pl.String) == rule_id)
    return dict(rows.group_by(pl.col("outcome").cast(pl.String)).len().iter_rows())


def test_every_sample_set_has_a_readme_line() -> None:
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        assert f"`{folder.name}/`" in readme, f"{folder.name} is not described in sample_records/README.md"


def test_reinspection_reproduces_the_reports_figures(reinspection: CheckResult) -> None:
    # 12 children charged and refused bail, all under 17: 3 with no request, 2 moved, 2 certificates.
    assert reinspection.headline["charged_and_refused_bail"] == 12
    assert _outcomes(reinspection, "S38-REQUEST") == {"compliant": 9, "breach": 3}
    assert reinspection.headline["moved"] == 2
    assert _outcomes(reinspection, "S38-TRANSFER") == {"compliant": 4, "breach": 8}  # 2 moved + 2 certified
    assert _outcomes(reinspection, "S38-CERTIFICATE") == {"compliant": 2, "breach": 8}  # of the 10 not moved
    assert reinspection.headline["certificates"] == 2


def test_demo_findings_are_the_ones_its_readme_table_lists(demo: CheckResult) -> None:
    """tests/expected/demo_findings.csv is the README's table in machine form."""
    expected = pl.read_csv(ROOT / "tests" / "expected" / "demo_findings.csv")
    actual = demo.findings.select(
        "custody_record_id", pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String)
    ).sort("custody_record_id", "rule_id")
    assert actual.to_dicts() == expected.to_dicts()


def test_demo_touches_every_rule_with_every_outcome(demo: CheckResult) -> None:
    for rule in demo.rules:
        assert set(_outcomes(demo, rule.rule_id)) == {"breach", "compliant", "cannot_assess"}, rule.rule_id


def test_demo_s136_before_the_2017_act_is_guidance_never_unlawful(demo: CheckResult) -> None:
    row = demo.findings.filter(
        (pl.col("custody_record_id") == "DEMO-009") & (pl.col("rule_id").cast(pl.String) == "MHA-POLICE-STATION")
    ).row(0, named=True)
    assert (row["outcome"], row["basis"]) == ("breach", "guidance")
    assert "unlawful" not in row["message"].lower().replace("not unlawful", "")


def test_every_demo_record_is_accounted_for(demo: CheckResult) -> None:
    loaded = load_record_set(SAMPLES / "demo")
    assert demo.records.height == loaded.detentions.height == 43
    no_rule = demo.records.filter(pl.col("rules_applied") == 0)["custody_record_id"].to_list()
    assert sorted(no_rule) == ["DEMO-019", "DEMO-020"]  # the two adults


MESSY_PROBLEMS = [
    ("detentions.csv", 3, "date_of_birth", "not a real date"),
    ("detentions.csv", 4, "detention_power", "missing"),
    ("detentions.csv", 5, "person_id", "missing"),
    ("detentions.csv", 6, "custody_record_id", "different values"),
    ("detentions.csv", 7, "custody_record_id", "different values"),
    ("events.csv", 53, "custody_record_id", "not in detentions"),
    ("events.csv", 54, "custody_record_id", "not in detentions"),
    ("events.csv", 60, "event_time", "occurs twice"),
    ("events.csv", 71, "event_time", "does not exist"),
    ("events.csv", 85, "detail", "not a detail code"),
    ("events.csv", 88, "event_time", "not a real date"),
    ("events.csv", 94, "event_type", "not an allowed event_type"),
    ("events.csv", 96, "event_time", "not a real date"),
]


@pytest.mark.parametrize(("file", "row", "column", "reason"), MESSY_PROBLEMS)
def test_messy_reports_each_planted_problem(file: str, row: int, column: str, reason: str) -> None:
    quality = load_record_set(SAMPLES / "messy").data_quality
    hits = quality.filter(pl.col("file").str.ends_with(file) & (pl.col("row") == row) & (pl.col("column") == column))
    assert hits.height == 1, quality
    assert reason in hits["reason"].item()


def test_messy_accounts_for_every_row() -> None:
    loaded = load_record_set(SAMPLES / "messy")
    for table in ("detentions", "events"):
        assert loaded.rows_read[table] == loaded.rows_used[table] + loaded.rows_rejected[table]


def test_messy_bad_values_make_their_rules_cannot_assess_not_pass(rules) -> None:  # type: ignore[no-untyped-def]
    result = run_check(SAMPLES / "messy", rules=rules)
    by_record = result.findings.filter(pl.col("custody_record_id") == "MSY-003")  # blank detention_power
    assert by_record.height > 0
    assert set(by_record["outcome"].cast(pl.String)) == {"cannot_assess"}
