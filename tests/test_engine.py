"""Facts and evaluation semantics, on typed frames (no files): versions, scope, taint, reviews."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from custody.contract import DATA_QUALITY_SCHEMA, polars_schema
from custody.engine.compile import compile_rule_set
from custody.engine.evaluate import evaluate
from custody.engine.rulefile import RuleFileError, load_rule_set
from custody.facts import FactSettings, build_facts, taint_column
from custody.read.taint import UNKNOWN_EVENT, detail_input, event_input, taint_of

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def detentions(*rows: dict[str, object]) -> pl.DataFrame:
    schema = polars_schema("detentions")
    base = {"detention_power": "pace_arrest", "date_of_birth": dt.date(2004, 6, 15)}
    data = [{**base, **row} for row in rows]
    return pl.DataFrame([{name: row.get(name) for name in schema} for row in data], schema=schema).with_columns(
        pl.int_range(2, pl.len() + 2).alias("_row")
    )


def events(*rows: tuple[str, str, str, str | None]) -> pl.DataFrame:
    schema = polars_schema("events")
    return pl.DataFrame(
        [
            {"custody_record_id": r, "event_time": at(t), "event_type": kind, "detail": detail, "note": None}
            for r, t, kind, detail in rows
        ],
        schema=schema,
    )


def quality(*rows: dict[str, object]) -> pl.DataFrame:
    return pl.DataFrame([{k: row.get(k) for k in DATA_QUALITY_SCHEMA} for row in rows], schema=DATA_QUALITY_SCHEMA)


def facts_of(det: pl.DataFrame, ev: pl.DataFrame, dq: pl.DataFrame | None = None) -> pl.DataFrame:
    return build_facts(det, ev, taint_of(dq if dq is not None else quality()), FactSettings()).collect()


# ---------------------------------------------------------------- reviews (PACE s40)


def review_facts(*review_times: str, postponed: tuple[str, ...] = ()) -> dict[str, object]:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-07-01T09:00+01:00")})
    rows = [("R1", "2019-07-01T10:00+01:00", "detention_authorised", None)]
    rows += [("R1", t, "review", None) for t in review_times]
    rows += [("R1", t, "review", "postponed") for t in postponed]
    return facts_of(det, events(*rows)).row(0, named=True)


def test_reviews_on_time_then_every_nine_hours() -> None:
    row = review_facts("2019-07-01T15:30+01:00", "2019-07-02T00:00+01:00")
    assert row["reviews_held"] == 2
    assert row["review_first_due_at"] == at("2019-07-01T16:00+01:00")
    # An early review moves the next due time earlier: 15:30 + 9h.
    assert row["review_worst_lateness"] == dt.timedelta(minutes=-30)
    assert row["review_next_due_at"] == at("2019-07-02T09:00+01:00")


def test_a_late_review_does_not_move_later_due_times() -> None:
    # s40(7): first due 16:00, held 17:00 (1h late); the second is still due at 16:00 + 9h = 01:00.
    row = review_facts("2019-07-01T17:00+01:00", "2019-07-02T01:30+01:00")
    assert row["review_worst_lateness"] == dt.timedelta(hours=1)
    assert row["review_worst_at"] == at("2019-07-01T17:00+01:00")
    assert row["review_next_due_at"] == at("2019-07-02T10:00+01:00")


def test_postponed_reviews_are_not_reviews() -> None:
    row = review_facts(postponed=("2019-07-01T15:00+01:00",))
    assert row["reviews_held"] == 0
    assert row["review_next_due_at"] == at("2019-07-01T16:00+01:00")


def test_a_review_postponed_by_its_due_time_is_reported_apart() -> None:
    # First due 16:00; postponed at 15:50, held 17:10. s40(6): the second is still due 01:00.
    row = review_facts("2019-07-01T17:10+01:00", "2019-07-02T01:30+01:00", postponed=("2019-07-01T15:50+01:00",))
    assert row["reviews_held"] == 2
    assert row["review_second_at"] == at("2019-07-02T01:30+01:00")
    assert row["review_postponed_worst_lateness"] == dt.timedelta(minutes=70)
    assert row["review_postponed_worst_postponed_at"] == at("2019-07-01T15:50+01:00")
    assert row["review_postponed_worst_due_at"] == at("2019-07-01T16:00+01:00")
    assert row["review_unpostponed_worst_at"] == at("2019-07-02T01:30+01:00")
    assert row["review_unpostponed_worst_lateness"] == dt.timedelta(minutes=30)
    assert row["review_worst_lateness"] == dt.timedelta(minutes=70)
    assert row["review_next_postponed_at"] is None


def test_a_postponement_after_the_due_time_or_before_the_previous_review_postpones_nothing() -> None:
    late = review_facts("2019-07-01T17:10+01:00", postponed=("2019-07-01T16:05+01:00",))
    assert late["review_postponed_worst_at"] is None
    assert late["review_unpostponed_worst_lateness"] == dt.timedelta(minutes=70)
    # Postponed at 15:00, before the first review at 15:30: the second (due 00:30) is not postponed.
    early = review_facts("2019-07-01T15:30+01:00", "2019-07-02T01:00+01:00", postponed=("2019-07-01T15:00+01:00",))
    assert early["review_postponed_worst_at"] == at("2019-07-01T15:30+01:00")
    assert early["review_unpostponed_worst_lateness"] == dt.timedelta(minutes=30)


def test_the_review_due_after_the_last_one_held_can_be_postponed() -> None:
    row = review_facts("2019-07-01T15:30+01:00", postponed=("2019-07-01T23:00+01:00",))
    assert row["review_next_due_at"] == at("2019-07-02T00:30+01:00")
    assert row["review_next_postponed_at"] == at("2019-07-01T23:00+01:00")
    assert row["review_second_at"] is None
    none_held = review_facts(postponed=("2019-07-01T15:00+01:00",))
    assert none_held["review_next_postponed_at"] == at("2019-07-01T15:00+01:00")


def test_the_second_review_is_known_without_an_authorisation_of_detention() -> None:
    # PACE s42(4)(b) needs the second review whatever the schedule; postponements are not reviews.
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-07-01T09:00+01:00")})
    ev = events(
        ("R1", "2019-07-01T15:00+01:00", "review", None),
        ("R1", "2019-07-01T23:00+01:00", "review", "postponed"),
        ("R1", "2019-07-02T00:30+01:00", "review", "pre_charge"),
        ("R1", "2019-07-02T09:00+01:00", "review", "post_charge"),
    )
    row = facts_of(det, ev).row(0, named=True)
    assert row["review_second_at"] == at("2019-07-02T00:30+01:00")
    assert row["reviews_held"] == 0  # no schedule without an authorisation


def test_the_last_event_on_a_record() -> None:
    row = review_facts("2019-07-01T15:30+01:00", postponed=("2019-07-01T23:00+01:00",))
    assert row["last_event_at"] == at("2019-07-01T23:00+01:00")


def test_review_intervals_are_elapsed_time_across_the_october_change() -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-10-26T21:00+01:00")})
    ev = events(
        ("R1", "2019-10-26T22:00+01:00", "detention_authorised", None),
        # 03:30 GMT is 6h30m after 22:00 BST, though the wall clock shows 5h30m.
        ("R1", "2019-10-27T03:30+00:00", "review", None),
    )
    row = facts_of(det, ev).row(0, named=True)
    assert row["review_worst_lateness"] == dt.timedelta(minutes=30)


# ---------------------------------------------------------------- evaluation semantics

RULE = """
id: TEST-RULE
title: test
basis: statute
severity: high
checks: x
why: y
action: z
citations: [Test Act s1]
trigger: arrival_at
versions:
  - effective_from: 2000-01-01
    citations: [Test Act s1]
    changes: first
    params: {limit: 24h}
  - effective_from: 2017-12-11
    citations: [Test Act s1 as amended]
    changes: shorter
    basis: code
    params: {limit: 12h}
logic:
  applies: detention_power == 'pace_arrest' and age_at(arrival_at) < 18
  outcomes:
    - when: released_at - arrival_at > limit
      outcome: breach
      message: "Held {released_at - arrival_at} against a limit of {limit}."
    - outcome: compliant
      message: "Held {released_at - arrival_at}."
"""


@pytest.fixture
def rules(tmp_path: Path) -> list[object]:
    (tmp_path / "TEST-RULE.yaml").write_text(RULE)
    return compile_rule_set(load_rule_set(tmp_path))  # type: ignore[return-value]


def run(rules: list[object], det: pl.DataFrame, ev: pl.DataFrame, dq: pl.DataFrame | None = None) -> dict[str, dict]:
    findings = evaluate(facts_of(det, ev, dq), rules)  # type: ignore[arg-type]
    return {row["custody_record_id"]: row for row in findings.iter_rows(named=True)}


def test_the_version_is_chosen_by_the_trigger_instant_not_today(rules: list[object]) -> None:
    det = detentions(
        # 2017-12-10 23:30 GMT is before the 2017-12-11 version; 00:30 is after.
        {"custody_record_id": "OLD", "person_id": "P1", "arrival_time": at("2017-12-10T23:30+00:00")},
        {"custody_record_id": "NEW", "person_id": "P2", "arrival_time": at("2017-12-11T00:30+00:00")},
    )
    ev = events(
        ("OLD", "2017-12-11T14:00+00:00", "released", None), ("NEW", "2017-12-11T15:00+00:00", "released", None)
    )
    found = run(rules, det, ev)
    assert (found["OLD"]["outcome"], found["OLD"]["rule_version"], found["OLD"]["basis"]) == (
        "compliant",
        "2000-01-01",
        "statute",
    )
    assert (found["NEW"]["outcome"], found["NEW"]["rule_version"], found["NEW"]["basis"]) == (
        "breach",
        "2017-12-11",
        "code",
    )
    assert found["NEW"]["message"] == "Held 14h 30m against a limit of 12h 00m."
    assert found["NEW"]["citation"] == "Test Act s1 as amended"


def test_a_duration_shows_its_seconds_when_it_has_any(rules: list[object]) -> None:
    # One second past the 12-hour limit is a breach, and its message must not read "12h 00m".
    det = detentions(
        {"custody_record_id": "OVER", "person_id": "P1", "arrival_time": at("2018-01-01T00:00:00+00:00")},
        {"custody_record_id": "EXACT", "person_id": "P2", "arrival_time": at("2018-01-01T00:00:00+00:00")},
    )
    ev = events(
        ("OVER", "2018-01-01T12:00:01+00:00", "released", None),
        ("EXACT", "2018-01-01T12:00:00+00:00", "released", None),
    )
    found = run(rules, det, ev)
    assert found["OVER"]["outcome"] == "breach"
    assert found["OVER"]["message"] == "Held 12h 00m 01s against a limit of 12h 00m."
    assert found["EXACT"]["outcome"] == "compliant"
    assert found["EXACT"]["message"] == "Held 12h 00m."


def test_out_of_scope_writes_nothing_and_unknown_scope_cannot_be_assessed(rules: list[object]) -> None:
    det = detentions(
        {
            "custody_record_id": "ADULT",
            "person_id": "P1",
            "date_of_birth": dt.date(1980, 1, 1),
            "arrival_time": at("2019-01-01T10:00+00:00"),
        },
        {
            "custody_record_id": "NODOB",
            "person_id": "P2",
            "date_of_birth": None,
            "arrival_time": at("2019-01-01T10:00+00:00"),
        },
        {
            "custody_record_id": "MHA",
            "person_id": "P3",
            "detention_power": "mha_s136",
            "date_of_birth": None,
            "arrival_time": at("2019-01-01T10:00+00:00"),
        },
    )
    found = run(rules, det, events())
    # A false conjunct on usable facts puts the record out of scope: no finding.
    assert "ADULT" not in found
    assert "MHA" not in found
    assert found["NODOB"]["outcome"] == "cannot_assess"
    assert "date_of_birth" in found["NODOB"]["message"]


def test_missing_evidence_is_cannot_assess_never_a_pass(rules: list[object]) -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-01-01T10:00+00:00")})
    found = run(rules, det, events())
    assert found["R1"]["outcome"] == "cannot_assess"
    assert "Not recorded: released_at" in found["R1"]["message"]


def test_an_unusable_input_row_makes_the_rule_cannot_assess(rules: list[object]) -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-01-01T10:00+00:00")})
    ev = events(("R1", "2019-01-01T12:00+00:00", "released", None))
    dq = quality(
        {
            "file": "events.csv",
            "table": "events",
            "row": 3,
            "column": "event_time",
            "value": "25:00",
            "reason": "bad time",
            "action": "row_rejected",
            "custody_record_id": "R1",
            "event_type": "Released",
        }
    )
    found = run(rules, det, ev, dq)
    assert found["R1"]["outcome"] == "cannot_assess"
    assert "a 'released' event row" in found["R1"]["message"]
    # An unusable row of an event type the rule does not read changes nothing.
    dq_other = dq.with_columns(pl.lit("review").alias("event_type"))
    assert run(rules, det, ev, dq_other)["R1"]["outcome"] == "compliant"


def test_a_bad_detail_code_touches_only_detail_facts() -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-01-01T10:00+00:00")})
    ev = events(("R1", "2019-01-01T12:00+00:00", "la_requested", None))
    dq = quality(
        {
            "file": "e.csv",
            "table": "events",
            "row": 2,
            "column": "detail",
            "value": "accepted",
            "reason": "x",
            "action": "value_unusable",
            "custody_record_id": "R1",
            "event_type": "la_requested",
        }
    )
    assert taint_of(dq)["input"].cast(pl.String).to_list() == ["events.la_requested.detail"]
    row = facts_of(det, ev, dq).row(0, named=True)
    assert row[taint_column(detail_input("la_requested"))] is True
    assert row[taint_column(event_input("la_requested"))] is False


def test_a_misspelt_event_type_touches_the_type_it_is_close_to() -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-01-01T10:00+00:00")})
    dq = quality(
        {
            "file": "e.csv",
            "table": "events",
            "row": 2,
            "column": "event_type",
            "value": "aa_arived",
            "reason": "x",
            "action": "row_rejected",
            "custody_record_id": "R1",
            "event_type": "aa_arived",
        },
    )
    assert taint_of(dq)["input"].cast(pl.String).to_list() == ["events.aa_arrived"]
    row = facts_of(det, events(), dq).row(0, named=True)
    assert row[taint_column(event_input("aa_arrived"))] is True
    assert row[taint_column(UNKNOWN_EVENT)] is False
    far = dq.with_columns(pl.lit("something_else").alias("event_type"))
    assert taint_of(far)["input"].cast(pl.String).to_list() == ["events.(unknown type)"]
    assert facts_of(det, events(), far).row(0, named=True)[taint_column(UNKNOWN_EVENT)] is True


def test_trigger_unknown_is_cannot_assess(rules: list[object]) -> None:
    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": None})
    dq = quality(
        {
            "file": "d.csv",
            "table": "detentions",
            "row": 2,
            "column": "arrival_time",
            "value": "x",
            "reason": "bad",
            "action": "value_unusable",
            "custody_record_id": "R1",
        }
    )
    found = run(rules, det, events(), dq)
    assert found["R1"]["outcome"] == "cannot_assess"
    assert "which version of the law" in found["R1"]["message"]


def test_evidence_is_json_with_uk_offsets(rules: list[object]) -> None:
    import json

    det = detentions({"custody_record_id": "R1", "person_id": "P1", "arrival_time": at("2019-07-01T10:00+01:00")})
    found = run(rules, det, events(("R1", "2019-07-01T12:00+01:00", "released", None)))
    evidence = json.loads(found["R1"]["evidence"])
    assert evidence["arrival_at"] == "2019-07-01T10:00:00+01:00"
    assert evidence["released_at"] == "2019-07-01T12:00:00+01:00"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("released_at - arrival_at > limit", "released_att - arrival_at > limit"), "unknown name 'released_att'"),
        (("citations: [Test Act s1]\n    changes: first", "citations: []\n    changes: first"), "citations"),
        (("title: test", "title: test\ntitle: again"), "duplicate key 'title'"),
        (("why: y", "why: y\nsurprise: 1"), "unknown key 'surprise'"),
        (("applies: detention_power", "applies: : detention_power"), "not valid YAML"),
    ],
)
def test_broken_rule_files_name_the_file_and_line(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    (tmp_path / "TEST-RULE.yaml").write_text(RULE.replace(*change))
    with pytest.raises(RuleFileError) as error:
        compile_rule_set(load_rule_set(tmp_path))
    assert fragment in str(error.value)
    assert str(error.value).startswith(f"{tmp_path / 'TEST-RULE.yaml'}:")
    assert error.value.line is not None


def test_rules_files_written_as_text_are_dedented() -> None:
    assert textwrap.dedent(RULE).startswith("\nid: TEST-RULE")


# TEST-RULE's header (id, title, citations...) with one version from 1900 and one outcome.
SHOWS_ARRIVAL = (
    RULE.split("versions:")[0].replace("id: TEST-RULE", "id: TEST-SHOWN")
    + """versions:
  - effective_from: 1900-01-01
    citations: [Test Act s1]
    changes: first
logic:
  applies: detention_power == 'pace_arrest'
  outcomes:
    - outcome: compliant
      message: "Arrived {arrival_at}."
"""
)


@pytest.mark.parametrize(
    "instants",
    [
        # Either side of both 2018 clock changes: GMT to BST at 01:00 UTC on 25 March, back on 28 October.
        (
            "2018-03-25T00:59:59+00:00",
            "2018-03-25T01:00:00+00:00",
            "2018-10-28T00:59:59+00:00",
            "2018-10-28T01:00+00:00",
        ),
        # British Standard Time (+01:00 all year, 1968-1971) and double summer time (+02:00, 1947)
        # in the same column as a recent instant: the zone's name comes from the time zone data.
        ("1970-01-15T12:00+00:00", "1947-06-01T12:00+00:00", "2018-07-01T12:00+00:00"),
    ],
)
def test_an_instant_reads_the_same_in_a_message_and_in_the_evidence(tmp_path: Path, instants: tuple[str, ...]) -> None:
    (tmp_path / "TEST-SHOWN.yaml").write_text(SHOWS_ARRIVAL)
    rules = compile_rule_set(load_rule_set(tmp_path))
    det = detentions(
        *({"custody_record_id": f"R{i}", "person_id": f"P{i}", "arrival_time": at(t)} for i, t in enumerate(instants))
    )
    found = {row["custody_record_id"]: row for row in evaluate(facts_of(det, events()), rules).iter_rows(named=True)}
    for i, text in enumerate(instants):
        uk = at(text).astimezone(ZoneInfo("Europe/London"))
        assert found[f"R{i}"]["message"] == f"Arrived {uk.strftime('%Y-%m-%d %H:%M %Z')}."
        assert json.loads(found[f"R{i}"]["evidence"])["arrival_at"] == uk.isoformat(timespec="seconds")
