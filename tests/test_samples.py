"""The shipped sample record sets do what sample_records/README.md says they do."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import MESSY, REINSPECTION, ROOT, SAMPLES

from custody.findings import CheckResult
from custody.pipeline import PreparedRules, run_check
from custody.read.loader import RecordSet

V1_1_RULES = ("PACE-INTERVIEW-AA", "PACE-LOOKED-AFTER", "PACE-STRIP-SEARCH-AA")
"""Rules of the data contract v1.1 (strip searches, interviews, looked-after children)."""


@pytest.fixture(scope="module")
def reinspection(prepared_rules: PreparedRules) -> CheckResult:
    return run_check(REINSPECTION, rules=prepared_rules)


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


def test_demo_findings_are_the_ones_its_readme_table_lists(demo_result: CheckResult) -> None:
    """tests/expected/demo_findings.csv is the README's table in machine form."""
    expected = pl.read_csv(ROOT / "tests" / "expected" / "demo_findings.csv")
    actual = demo_result.findings.select(
        "custody_record_id", pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String)
    ).sort("custody_record_id", "rule_id", "outcome")
    assert actual.to_dicts() == expected.sort("custody_record_id", "rule_id", "outcome").to_dicts()


def test_demo_touches_every_rule_with_every_outcome(demo_result: CheckResult) -> None:
    for rule in demo_result.rules:
        assert set(_outcomes(demo_result, rule.rule_id)) == {"breach", "compliant", "cannot_assess"}, rule.rule_id


def test_v1_demo_records_get_only_the_v1_1_findings_their_records_support(demo_result: CheckResult) -> None:
    # The demo records written in contract v1 (DEMO-001..065) have no strip search or
    # interview; three looked-after children were notified with no detail code (v1 had none)
    # or not at all.
    v1 = pl.col("custody_record_id").str.slice(5).cast(pl.Int32) <= 65
    rows = (
        demo_result.findings.filter(pl.col("rule_id").cast(pl.String).is_in(V1_1_RULES) & v1)
        .select("custody_record_id", pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String))
        .rows()
    )
    assert rows == [
        ("DEMO-006", "PACE-LOOKED-AFTER", "cannot_assess"),
        ("DEMO-025", "PACE-LOOKED-AFTER", "breach"),
        ("DEMO-029", "PACE-LOOKED-AFTER", "cannot_assess"),
    ]


def test_an_urgent_search_and_interview_are_compliant_for_review(demo_result: CheckResult) -> None:
    urgent = demo_result.findings.filter(
        (pl.col("custody_record_id") == "DEMO-068") & pl.col("rule_id").cast(pl.String).is_in(V1_1_RULES)
    )
    assert urgent["outcome"].cast(pl.String).to_list() == ["compliant", "compliant"]
    assert urgent["severity"].cast(pl.String).to_list() == ["medium", "medium"]
    assert all(m.startswith("For review") for m in urgent["message"].to_list())


def test_demo_s136_before_the_2017_act_is_guidance_never_unlawful(demo_result: CheckResult) -> None:
    row = demo_result.findings.filter(
        (pl.col("custody_record_id") == "DEMO-009") & (pl.col("rule_id").cast(pl.String) == "MHA-POLICE-STATION")
    ).row(0, named=True)
    assert (row["outcome"], row["basis"]) == ("breach", "guidance")
    assert "unlawful" not in row["message"].lower().replace("not unlawful", "")


def test_every_demo_record_is_accounted_for(demo_result: CheckResult) -> None:
    assert demo_result.records.height == 77
    no_rule = demo_result.records.filter(pl.col("rules_applied") == 0)["custody_record_id"].to_list()
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
    ("events.csv", 94, "event_type", "event_type is not an allowed value"),
    ("events.csv", 96, "event_time", "not a real date"),
]


@pytest.mark.parametrize(("file", "row", "column", "reason"), MESSY_PROBLEMS)
def test_messy_reports_each_planted_problem(
    messy_records: RecordSet, file: str, row: int, column: str, reason: str
) -> None:
    quality = messy_records.data_quality
    hits = quality.filter(pl.col("file").str.ends_with(file) & (pl.col("row") == row) & (pl.col("column") == column))
    assert hits.height == 1, quality
    assert reason in hits["reason"].item()


def test_messy_accounts_for_every_row(messy_records: RecordSet) -> None:
    # detentions.csv: 11 rows; MSY-004 (no person_id) and both MSY-005 rows are rejected.
    # events.csv: 104 rows; rejected are MSY-004's 13 and MSY-005's 9 events (their records
    # were rejected), the 2 orphans (MSY-011) and the 5 with an unusable time or type
    # (rows 60, 71, 88, 94, 96): 29.
    assert messy_records.rows_read == {"detentions": 11, "events": 104}
    assert messy_records.rows_used == {"detentions": 8, "events": 75}
    assert messy_records.rows_rejected == {"detentions": 3, "events": 29}
    assert messy_records.detentions.height == 8
    assert messy_records.events.height == 75
    rejected = messy_records.data_quality.filter(pl.col("action") == "row_rejected")
    assert dict(rejected.group_by("table").agg(pl.col("row").n_unique()).iter_rows()) == {
        "detentions": 3,
        "events": 29,
    }


def test_messy_bad_values_make_their_rules_cannot_assess_not_pass(prepared_rules: PreparedRules) -> None:
    result = run_check(MESSY, rules=prepared_rules)
    by_record = result.findings.filter(pl.col("custody_record_id") == "MSY-003")  # blank detention_power
    assert by_record.height > 0
    assert set(by_record["outcome"].cast(pl.String)) == {"cannot_assess"}
