"""Statistics that are never breaches: held overnight (a named definition, measured on UTC
instants against the UK 00:00-08:00 window, clock changes included) and the wait for the
appropriate adult, per record, per child (children.csv) and per force and suite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from conftest import REINSPECTION, RecordSetFactory

from custody.facts.specs import taint_column
from custody.facts.statistics import (
    HELD_OVERNIGHT,
    STATISTICS_FACTS,
    STATISTICS_TAINT,
    OvernightDefinition,
    longest_night,
    record_statistics,
)
from custody.findings import children_frame, statistics_summary, statistics_table
from custody.pipeline import run_check
from custody.read.taint import UNKNOWN_EVENT, Input, event_input

UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def stats(
    definition: OvernightDefinition = HELD_OVERNIGHT, *, tainted: tuple[Input, ...] = (), **times: str | None
) -> dict[str, object]:
    """The statistics of one record with the given facts (UTC ISO times); others missing.
    `tainted`: the inputs the loader could not use (their taint flags true, the others false)."""
    row: dict[str, object] = {name: utc(times[name]) if times.get(name) else None for name in STATISTICS_FACTS}
    flags = {taint_column(source) for source in tainted}
    assert flags <= set(STATISTICS_TAINT)
    row |= {flag: flag in flags for flag in STATISTICS_TAINT}
    schema = dict.fromkeys(STATISTICS_FACTS, pl.Datetime("us", "UTC")) | dict.fromkeys(STATISTICS_TAINT, pl.Boolean())
    facts = pl.DataFrame([row], schema=schema)
    return record_statistics(facts, definition).row(0, named=True)


def test_four_hours_between_midnight_and_eight_is_held_overnight() -> None:
    # 22:00-04:00 GMT in January: 00:00-04:00 is exactly 4 hours in the window.
    held = stats(arrival_at="2020-01-10T22:00", released_at="2020-01-11T04:00")
    assert held["held_overnight_pre_charge"] is True
    short = stats(arrival_at="2020-01-10T22:00", released_at="2020-01-11T03:59")
    assert short["held_overnight_pre_charge"] is False


def test_the_night_the_clocks_go_back_has_nine_hours_between_midnight_and_eight() -> None:
    # 27 October 2019: 00:00 BST is 23:00 UTC on the 26th; custody from then to 03:00 UTC
    # (03:00 GMT) is 4 hours elapsed, though the wall clock shows 3 (00:00 to 03:00).
    record = stats(arrival_at="2019-10-26T23:00", released_at="2019-10-27T03:00")
    assert record["held_overnight_pre_charge"] is True
    # The day before, the same wall-clock hours are 3 hours elapsed.
    before = stats(arrival_at="2019-10-19T23:00", released_at="2019-10-20T02:00")
    assert before["held_overnight_pre_charge"] is False


def test_the_night_the_clocks_go_forward_has_seven_hours_between_midnight_and_eight() -> None:
    # 31 March 2019: 00:00 GMT to 04:00 BST is 00:00-03:00 UTC, 3 hours elapsed, though the
    # wall clock shows 4.
    record = stats(arrival_at="2019-03-30T23:00", released_at="2019-03-31T03:00")
    assert record["held_overnight_pre_charge"] is False
    # The window ends at 08:00 BST = 07:00 UTC: custody from 03:00 to 07:30 UTC has 4 hours in it.
    late = stats(arrival_at="2019-03-31T03:00", released_at="2019-03-31T07:30")
    assert late["held_overnight_pre_charge"] is True


def test_pre_and_post_charge_are_split_at_the_charge() -> None:
    record = stats(
        arrival_at="2020-01-10T20:00",
        charged_at="2020-01-11T01:00",
        bail_refused_at="2020-01-11T01:10",
        transferred_to_la_at="2020-01-11T09:00",
    )
    assert record["held_overnight_pre_charge"] is False  # 00:00-01:00: one hour
    assert record["held_overnight_post_charge"] is True  # 01:00-08:00: seven hours
    assert record["refusal_to_move"] == dt.timedelta(hours=7, minutes=50)


def test_without_a_time_of_leaving_custody_overnight_is_not_known() -> None:
    record = stats(arrival_at="2020-01-10T20:00", charged_at="2020-01-11T06:00")
    assert record["held_overnight_pre_charge"] is True  # arrival to charge is known: 6 hours
    assert record["held_overnight_post_charge"] is None
    never_left = stats(arrival_at="2020-01-10T20:00")
    assert never_left["held_overnight_pre_charge"] is None
    assert never_left["held_overnight_post_charge"] is False  # never charged: not held after charge


def test_a_stay_of_days_is_held_overnight() -> None:
    record = stats(arrival_at="2020-01-01T10:00", released_at="2020-01-20T10:00")
    assert record["held_overnight_pre_charge"] is True


def test_each_record_is_measured_against_its_own_nights_only() -> None:
    """Records of one run span different numbers of nights: a stay of an afternoon, beside
    stays of several days, is measured against its own night's window alone."""
    spans = [
        ("2019-10-29T14:25", "2019-10-29T19:49", dt.timedelta(0)),  # an afternoon
        ("2019-03-01T14:25", "2019-03-03T19:49", dt.timedelta(hours=8)),  # two whole nights
        ("2019-10-26T23:00", "2019-10-27T09:00", dt.timedelta(hours=9)),  # the night the clocks go back
        ("2019-03-30T23:00", "2019-04-02T12:00", dt.timedelta(hours=8)),  # 7 hours, then whole nights
        ("2019-03-30T23:00", "2019-03-31T12:00", dt.timedelta(hours=7)),  # the night the clocks go forward
        ("2020-01-11T03:00", "2020-01-10T22:00", dt.timedelta(0)),  # left before arriving
        (None, "2020-01-11T04:00", None),
        ("2020-01-10T22:00", None, None),
    ]
    times = pl.DataFrame(
        {
            "start": [utc(a) if a else None for a, _, _ in spans],
            "end": [utc(b) if b else None for _, b, _ in spans],
        },
        schema={"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
    )
    longest = times.select(longest_night(pl.col("start"), pl.col("end"), HELD_OVERNIGHT)).to_series()
    assert longest.to_list() == [expected for _, _, expected in spans]


def test_the_definition_is_a_parameter() -> None:
    two_hours = OvernightDefinition(
        "at least 2 hours between 00:00 and 08:00", dt.time(0), dt.time(8), dt.timedelta(hours=2)
    )
    times = {"arrival_at": "2020-01-10T22:00", "released_at": "2020-01-11T03:00"}
    assert stats(**times)["held_overnight_pre_charge"] is False
    assert stats(two_hours, **times)["held_overnight_pre_charge"] is True
    with pytest.raises(ValueError, match="start before it ends"):
        OvernightDefinition("x", dt.time(8), dt.time(0), dt.timedelta(hours=1))
    with pytest.raises(ValueError, match="clocks change"):
        OvernightDefinition("x", dt.time(1, 30), dt.time(8), dt.timedelta(hours=1))


def test_the_wait_for_the_appropriate_adult_is_request_to_arrival() -> None:
    record = stats(arrival_at="2020-01-10T10:00", aa_requested_at="2020-01-10T10:30", aa_arrived_at="2020-01-10T15:00")
    assert record["aa_wait"] == dt.timedelta(hours=4, minutes=30)
    backwards = stats(aa_requested_at="2020-01-10T12:00", aa_arrived_at="2020-01-10T11:00")
    assert backwards["aa_wait"] is None  # recorded before the request: not a wait


def test_distribution_per_force_and_suite(csv_record_set: RecordSetFactory) -> None:
    header = (
        "custody_record_id",
        "person_id",
        "date_of_birth",
        "detention_power",
        "arrival_time",
        "force",
        "custody_suite",
    )
    detentions = [
        ("R1", "P1", "2005-03-01", "pace_arrest", "2020-01-10 10:00", "North", "A"),
        ("R2", "P2", "2005-03-01", "pace_arrest", "2020-01-10 10:00", "North", "A"),
        ("R3", "P3", "2005-03-01", "pace_arrest", "2020-01-10 10:00", "North", "B"),
        ("R4", "P4", "2005-03-01", "pace_arrest", "2020-01-10 10:00", "South", "C"),
    ]
    waits = {"R1": "10:30", "R2": "12:00", "R3": "19:00", "R4": "11:00"}
    events = [(r, "2020-01-10 10:05", "aa_requested", None, None) for r in waits]
    events += [(r, f"2020-01-10 {t}", "aa_arrived", None, None) for r, t in waits.items()]
    folder = csv_record_set(detentions, events, detention_header=header)
    result = run_check(folder)
    by_force = {row["force"]: row for row in statistics_table(result, ["force"]).iter_rows(named=True)}
    north = by_force["North"]
    assert north["records"] == 3
    assert north["aa_waits"] == 3
    assert north["aa_wait_median_minutes"] == 115  # 25, 115, 535 minutes
    assert north["aa_wait_over_4h"] == pytest.approx(1 / 3)
    assert north["aa_wait_over_8h"] == pytest.approx(1 / 3)
    by_suite = statistics_table(result, ["force", "custody_suite"])
    assert by_suite.select("force", "custody_suite", "records").rows() == [
        ("North", "A", 2),
        ("North", "B", 1),
        ("South", "C", 1),
    ]
    summary = statistics_summary(result)
    assert summary["held_overnight_definition"] == HELD_OVERNIGHT.name
    assert summary["aa_waits"] == 4


def test_children_csv_and_summary_carry_the_statistics(tmp_path: Path) -> None:
    from custody.outputs import parse_formats, write_outputs

    result = run_check(REINSPECTION)
    write_outputs(result, tmp_path, formats=parse_formats("children"))
    children = pl.read_csv(tmp_path / "children.csv", infer_schema_length=0)
    assert children.columns[-3:] == [
        "held_overnight_pre_charge",
        "held_overnight_post_charge",
        "longest_aa_wait_minutes",
    ]
    assert children.filter(pl.col("person_id") == "C-1501").row(0, named=True)["longest_aa_wait_minutes"] == "102"
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["held_overnight"] == HELD_OVERNIGHT.name
    assert summary["statistics"]["records"] == 13
    assert summary["statistics"]["held_overnight_post_charge"] == 10


def test_the_rules_folder_names_the_definition(tmp_path: Path) -> None:
    import shutil

    from custody.engine.rulefile import RuleFileError
    from custody.pipeline import prepare_rules

    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    facts_file = rules / "_facts.yaml"
    shipped = facts_file.read_text()
    edited = shipped.replace('    to: "08:00"\n    at_least: 4h', "    to: 07:00\n    at_least: 2h")
    assert edited != shipped
    facts_file.write_text(edited)
    result = run_check(REINSPECTION, rules=prepare_rules(rules))
    assert result.meta["held_overnight"] == "at least 2 hours in custody between 00:00 and 07:00 UK time"
    assert statistics_summary(result)["held_overnight_pre_charge"] == 1  # none under the default
    facts_file.write_text(shipped.replace("    at_least: 4h", "    at_least: 30h"))
    with pytest.raises(RuleFileError, match="at most 24 hours"):
        prepare_rules(rules)


# ------------------------------------------------- a statistic resting on an unusable row is not known

CHARGED_OVERNIGHT = {
    "arrival_at": "2023-05-16T17:00",
    "charged_at": None,  # its row was rejected (or there was none)
    "released_at": "2023-05-17T09:00",
}


def test_a_rejected_charge_leaves_both_overnight_figures_not_known() -> None:
    """No usable `charged` row is not "never charged" when a `charged` row was rejected:
    pre-charge custody may have ended at any time, post-charge may have covered the night."""
    record = stats(tainted=(event_input("charged"),), **CHARGED_OVERNIGHT)
    assert record["held_overnight_pre_charge"] is None
    assert record["held_overnight_post_charge"] is None
    # Control: no rejected row, so never charged: held overnight before charge, not after.
    control = stats(**CHARGED_OVERNIGHT)
    assert control["held_overnight_pre_charge"] is True
    assert control["held_overnight_post_charge"] is False


def test_a_rejected_release_leaves_the_time_of_leaving_not_known() -> None:
    times = {"arrival_at": "2023-05-16T17:00", "charged_at": "2023-05-16T21:00", "released_at": "2023-05-17T09:00"}
    record = stats(tainted=(event_input("released"),), **times)
    assert record["left_custody_at"] is None
    assert record["held_overnight_pre_charge"] is False  # arrival to charge: both known
    assert record["held_overnight_post_charge"] is None
    assert stats(**times)["held_overnight_post_charge"] is True


def test_a_rejected_arrival_of_the_adult_leaves_the_wait_not_known() -> None:
    times = {"aa_requested_at": "2023-05-16T08:10", "aa_arrived_at": "2023-05-16T15:10"}
    assert stats(tainted=(event_input("aa_arrived"),), **times)["aa_wait"] is None
    assert stats(tainted=(event_input("aa_requested"),), **times)["aa_wait"] is None
    # Control: an unusable input the wait does not rest on leaves it known.
    assert stats(tainted=(event_input("released"),), **times)["aa_wait"] == dt.timedelta(hours=7)
    assert stats(**times)["aa_wait"] == dt.timedelta(hours=7)


def test_an_event_of_unknown_type_leaves_every_event_figure_not_known() -> None:
    times = {
        "arrival_at": "2020-01-10T20:00",
        "charged_at": "2020-01-11T01:00",
        "bail_refused_at": "2020-01-11T01:10",
        "transferred_to_la_at": "2020-01-11T09:00",
        "aa_requested_at": "2020-01-10T20:10",
        "aa_arrived_at": "2020-01-10T21:10",
    }
    record = stats(tainted=(UNKNOWN_EVENT,), **times)
    assert all(value is None for value in record.values())
    control = stats(**times)
    assert all(value is not None for value in control.values())


def test_the_statistics_refuse_facts_without_their_taint() -> None:
    facts = pl.DataFrame(schema=dict.fromkeys(STATISTICS_FACTS, pl.Datetime("us", "UTC")))
    with pytest.raises(ValueError, match="taint"):
        record_statistics(facts)


DETENTION_HEADER = ("custody_record_id", "person_id", "date_of_birth", "detention_power", "arrival_time")


def test_a_rejected_charge_row_is_counted_as_overnight_not_known(csv_record_set: RecordSetFactory) -> None:
    """A `charged` row at an impossible time (25:30) is rejected: the child is neither held
    overnight before charge (as if never charged) nor not held after it."""
    detentions = [(r, p, "2007-09-03", "pace_arrest", "2023-05-16 18:00") for r, p in (("C8", "P8"), ("C9", "P9"))]
    events = []
    for record, charged in (("C8", "2023-05-16 25:30"), ("C9", "2023-05-16 21:30")):
        events += [
            (record, "2023-05-16 18:10", "detention_authorised", None, None),
            (record, charged, "charged", None, None),
            (record, "2023-05-17 10:00", "released", "bail", None),
        ]
    result = run_check(csv_record_set(detentions, events, detention_header=DETENTION_HEADER))
    children = {row["person_id"]: row for row in children_frame(result).iter_rows(named=True)}
    assert children["P8"]["held_overnight_pre_charge"] is None
    assert children["P8"]["held_overnight_post_charge"] is None
    assert (children["P9"]["held_overnight_pre_charge"], children["P9"]["held_overnight_post_charge"]) == (0, 1)
    summary = statistics_summary(result)
    assert summary["overnight_not_known"] == 1
    assert (summary["held_overnight_pre_charge"], summary["held_overnight_post_charge"]) == (0, 1)


def test_a_rejected_arrival_of_the_adult_is_no_wait(csv_record_set: RecordSetFactory) -> None:
    """An `aa_arrived` row at 25:00 is rejected: it may have been the adult's first arrival, so
    the wait to the next one (16:10, 7 hours) is not known and enters no distribution."""
    detentions = [(r, p, "2007-09-03", "pace_arrest", "2023-05-16 09:00") for r, p in (("W1", "V1"), ("W2", "V2"))]
    events = [
        ("W1", "2023-05-16 09:10", "aa_requested", None, None),
        ("W1", "2023-05-16 25:00", "aa_arrived", None, None),
        ("W1", "2023-05-16 12:00", "aa_left", None, None),
        ("W1", "2023-05-16 16:10", "aa_arrived", None, None),
        ("W1", "2023-05-16 18:00", "released", "nfa", None),
        ("W2", "2023-05-16 09:10", "aa_requested", None, None),
        ("W2", "2023-05-16 10:40", "aa_arrived", None, None),
        ("W2", "2023-05-16 18:00", "released", "nfa", None),
    ]
    result = run_check(csv_record_set(detentions, events, detention_header=DETENTION_HEADER))
    children = {row["person_id"]: row for row in children_frame(result).iter_rows(named=True)}
    assert children["V1"]["longest_aa_wait_minutes"] is None
    assert children["V2"]["longest_aa_wait_minutes"] == 90
    summary = statistics_summary(result)
    assert summary["aa_waits"] == 1
    assert summary["aa_wait_median_minutes"] == 90
    assert summary["aa_wait_over_4h"] == 0
