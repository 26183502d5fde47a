"""Contract v1.1 safeguards: the facts of events before an occasion (`occasion_prior_*`), and
the rules PACE-STRIP-SEARCH-AA, PACE-INTERVIEW-AA and PACE-LOOKED-AFTER as lint sees them."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import RULES_DIR
from typer.testing import CliRunner

from custody import cli
from custody.contract import DATA_QUALITY_SCHEMA, EVENT_DETAILS, polars_schema
from custody.engine.compile import compile_rule_set
from custody.engine.lint import lint_rule_set
from custody.engine.rulefile import load_rule_set
from custody.facts import FactSettings, build_fact_tables, fact_specs, taint_column
from custody.findings import CheckResult, children_frame
from custody.pipeline import PreparedRules, run_check
from custody.read.taint import UNKNOWN_EVENT, detention_input, event_input, taint_of
from custody.render.html import render_html

UTC = dt.UTC
V1_1_RULES = ("PACE-INTERVIEW-AA", "PACE-LOOKED-AFTER", "PACE-STRIP-SEARCH-AA")
PRIOR = ["occasion_prior_aa_arrived_last_at", "occasion_prior_aa_left_last_at"]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def detentions(*ids: str) -> pl.DataFrame:
    schema = polars_schema("detentions")
    rows = [
        {
            "custody_record_id": i,
            "person_id": f"P-{i}",
            "detention_power": "pace_arrest",
            "arrival_time": at("2023-05-16 08:00"),
        }
        for i in ids
    ]
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in rows], schema=schema)


def events(*rows: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"custody_record_id": r, "event_time": at(t), "event_type": kind, "detail": None, "note": None}
            for r, t, kind in rows
        ],
        schema=polars_schema("events"),
    )


def occasions(det: pl.DataFrame, ev: pl.DataFrame, names: list[str]) -> list[dict[str, object]]:
    taint = taint_of(pl.DataFrame(schema=DATA_QUALITY_SCHEMA))
    tables = build_fact_tables(det, ev, taint, FactSettings(), occasions={"interview_started": names})
    return tables.occasions["interview_started"].select("custody_record_id", "occasion_at", *names).to_dicts()


def test_prior_facts_are_the_last_event_of_the_type_at_or_before_each_occasion() -> None:
    ev = events(
        ("A", "2023-05-16 09:00", "aa_arrived"),
        ("A", "2023-05-16 09:30", "aa_left"),
        ("A", "2023-05-16 10:00", "aa_arrived"),
        ("A", "2023-05-16 10:00", "interview_started"),  # an arrival at the same minute counts
        ("A", "2023-05-16 11:00", "aa_left"),
        ("A", "2023-05-16 12:00", "interview_started"),
        ("A", "2023-05-16 13:00", "aa_arrived"),  # after every interview: no occasion sees it
        ("B", "2023-05-16 09:45", "aa_left"),  # another record's events never leak
        ("B", "2023-05-16 10:30", "interview_started"),
    )
    rows = occasions(detentions("A", "B", "C"), ev, PRIOR)
    assert rows == [
        {
            "custody_record_id": "A",
            "occasion_at": at("2023-05-16 10:00"),
            "occasion_prior_aa_arrived_last_at": at("2023-05-16 10:00"),
            "occasion_prior_aa_left_last_at": at("2023-05-16 09:30"),
        },
        {
            "custody_record_id": "A",
            "occasion_at": at("2023-05-16 12:00"),
            "occasion_prior_aa_arrived_last_at": at("2023-05-16 10:00"),
            "occasion_prior_aa_left_last_at": at("2023-05-16 11:00"),
        },
        {
            "custody_record_id": "B",
            "occasion_at": at("2023-05-16 10:30"),
            "occasion_prior_aa_arrived_last_at": None,
            "occasion_prior_aa_left_last_at": at("2023-05-16 09:45"),
        },
        # C: a record with no interview (and no event it could not use) has no occasion row.
    ]


def test_prior_facts_sit_beside_the_occasions_own_window_facts() -> None:
    ev = events(
        ("A", "2023-05-16 09:00", "aa_arrived"),
        ("A", "2023-05-16 10:00", "interview_started"),
        ("A", "2023-05-16 10:20", "aa_left"),
        ("A", "2023-05-16 10:40", "interview_ended"),
    )
    names = ["occasion_aa_left_at", "occasion_interview_ended_at", "occasion_prior_aa_left_last_at"]
    (row,) = occasions(detentions("A"), ev, names)
    assert row["occasion_aa_left_at"] == at("2023-05-16 10:20")  # within the interview's window
    assert row["occasion_interview_ended_at"] == at("2023-05-16 10:40")
    assert row["occasion_prior_aa_left_last_at"] is None  # the adult left only after it started


def test_prior_facts_exist_for_every_event_type_with_their_lineage() -> None:
    specs = fact_specs("interview_started")
    for event_type in EVENT_DETAILS:
        spec = specs[f"occasion_prior_{event_type}_last_at"]
        assert spec.kind == "instant"
        assert spec.occasion
        assert {event_input(event_type), event_input("interview_started"), UNKNOWN_EVENT} <= spec.lineage
    assert "occasion_prior_aa_left_last_at" not in fact_specs()  # only a rule with occasions reads them


def _without_cases(rules_dir: Path, rule_id: str, drop: str) -> None:
    path = rules_dir / f"{rule_id}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["cases"] = [c for c in data["cases"] if drop not in c["name"] and drop not in str(c["records"])]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize("rule_id", V1_1_RULES)
@pytest.mark.parametrize(
    ("drop", "problem"),
    [
        ("cannot_assess", "no case expects 'cannot_assess'"),
        ("breach", "no case expects 'breach'"),
        ("2013-10-26", "no case is triggered on 2013-10-26 (the day before the 2013-10-27 version)"),
        ("2013-10-27", "no case is triggered on 2013-10-27 (the day of the 2013-10-27 version)"),
    ],
)
def test_lint_wants_every_outcome_and_both_sides_of_2013_10_27_for_the_new_rules(
    tmp_path: Path, rule_id: str, drop: str, problem: str
) -> None:
    # The shipped rules lint clean (test_rules_cli); without those cases each rule is flagged.
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules_dir)
    _without_cases(rules_dir, rule_id, drop)
    rule_set = load_rule_set(rules_dir)
    problems, _ = lint_rule_set(rule_set, compile_rule_set(rule_set))
    assert problem in [p.message.split(": add one")[0] for p in problems if p.rule_id == rule_id]


@pytest.fixture(scope="module")
def safeguards(prepared_rules: PreparedRules) -> CheckResult:
    return run_check(Path(__file__).parent / "data" / "safeguards", rules=prepared_rules)


def test_children_csv_counts_strip_searches_and_interviews_per_child(safeguards: CheckResult) -> None:
    children = {row["person_id"]: row for row in children_frame(safeguards).iter_rows(named=True)}
    assert (children["C-SG02"]["strip_searches"], children["C-SG02"]["interviews"]) == (1, 1)
    assert (children["C-SG07"]["strip_searches"], children["C-SG07"]["interviews"]) == (0, 2)
    # A 17-year-old searched the day before Code C 2013 still had a search recorded.
    assert (children["C-SG11"]["strip_searches"], children["C-SG11"]["interviews"]) == (1, 0)


def test_strip_search_figures_break_down_each_search_of_a_child_by_age_sex_and_ethnicity(
    safeguards: CheckResult,
) -> None:
    figures = safeguards.strip_searches
    assert figures is not None
    rows = {(r["dimension"], r["value"]): r for r in figures.iter_rows(named=True)}
    # Six searches of juveniles (DEMO-SG-011's 17-year-old in 2013-10-26 was not one).
    assert rows["all", "all"] == {
        "dimension": "all",
        "value": "all",
        "searches": 6,
        "children": 6,
        "breach": 2,
        "compliant": 3,
        "cannot_assess": 1,
    }
    for dimension in ("age", "sex", "ethnicity"):
        assert sum(r["searches"] for (d, _), r in rows.items() if d == dimension) == 6
    assert rows["sex", "F"]["searches"] == 1
    assert rows["age", "17"]["breach"] == 1
    assert rows["ethnicity", "Black British"]["cannot_assess"] == 1
    assert [v for d, v in rows if d == "age"] == ["14", "15", "17"]


def test_the_report_shows_the_strip_search_figures(safeguards: CheckResult) -> None:
    report = render_html(safeguards)
    assert "<h2>Strip searches and interviews of children</h2>" in report
    text = " ".join(re.sub(r"<[^>]+>", "", report).split())  # as a reader sees it
    assert "6 strip searches of children (2 without the appropriate adult" in text
    assert "11 interviews of children (3 without the appropriate adult" in text
    assert "DEMO-SG" not in report.split("<h2>Strip searches")[1].split("<h2>Exceptions")[0]  # figures hold no ids


def test_an_occasions_table_carries_only_the_record_facts_its_rules_read() -> None:
    ev = events(("A", "2023-05-16 10:00", "interview_started"))
    taint = taint_of(pl.DataFrame(schema=DATA_QUALITY_SCHEMA))
    names = ["occasion_at", "date_of_birth", "occasion_prior_aa_arrived_last_at"]
    tables = build_fact_tables(detentions("A"), ev, taint, FactSettings(), occasions={"interview_started": names})
    table = tables.occasions["interview_started"]
    assert "date_of_birth" in table.columns
    assert "arrival_at" not in tables.occasions["interview_started"].columns  # read by no rule of the grain
    assert "arrival_at" in tables.records.columns
    # and the taint column of every input those facts rest on, so unusable input still tells
    assert taint_column(event_input("aa_arrived")) in table.columns
    assert taint_column(detention_input("date_of_birth")) in table.columns


def test_rules_facts_lists_the_facts_of_one_occasion(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["rules", "facts"])
    assert result.exit_code == 0
    assert "occasion_prior_<event type>_last_at" in result.stdout
    assert "occasions_in_record" in result.stdout
