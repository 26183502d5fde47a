"""Pseudonymised outputs: keyed, stable with one key, different with another, and everywhere."""

from __future__ import annotations

import csv
import hmac
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from conftest import FORMULA_PERSON, FORMULA_RECORD, dq_row, finding, make_result

from custody.errors import UsageError
from custody.findings import CheckResult
from custody.outputs import parse_formats, write_outputs
from custody.pseudonymise import _year_and_month, pseudonymise

KEY = "a secret key of some length"

ORIGINAL_IDS = {"C1", "C2", "C3", "R1", "R2", "R3", "R4", "R6", FORMULA_PERSON, FORMULA_RECORD}


@pytest.fixture
def result() -> CheckResult:
    return make_result(
        [
            finding(
                "C1",
                "R1",
                "S38-REQUEST",
                "breach",
                "2019-10-26T22:00:00",
                message="No request; see R10.",
                evidence='{"date_of_birth":"2004-03-14","age_at_arrival":15}',
            ),
            finding("C1", "R2", "PACE-AA", "compliant", "2019-10-27T01:35:00", message="Asked."),
            finding("C2", "R3", "PACE-AA", "cannot_assess", None, message="Not known."),
            finding(FORMULA_PERSON, FORMULA_RECORD, "PACE-AA", "breach", "2021-06-01T12:00:00", message="Not asked."),
        ],
        [
            ("C1", "R1", "2019-10-26T20:00:00", 1),
            ("C1", "R2", "2019-10-27T01:30:00", 1),
            ("C2", "R3", "2020-03-01T09:00:00", 1),
            ("C3", "R4", "2022-02-02T02:02:00", 0),
            (FORMULA_PERSON, FORMULA_RECORD, "2021-06-01T11:00:00", 1),
        ],
        [
            dq_row(
                file="detentions.csv",
                table="detentions",
                row=2,
                column="person_id",
                value="C2",
                reason="duplicate",
                action="warning",
                custody_record_id="R3",
            ),
            dq_row(
                file="events.csv",
                table="events",
                row=9,
                column="custody_record_id",
                value="R6",
                reason="no such custody record",
                action="row_rejected",
                custody_record_id="R6",
            ),
            dq_row(
                file="events.csv",
                table="events",
                row=10,
                column="event_time",
                value="R1",
                reason="bad date",
                action="row_rejected",
                custody_record_id="R1",
            ),
            dq_row(
                file="detentions.csv",
                table="detentions",
                row=3,
                column="date_of_birth",
                value="29/02/2005",
                reason="date_of_birth is not a real date: check the day and month",
                action="value_unusable",
                custody_record_id="R2",
            ),
        ],
    )


def all_values(result: CheckResult) -> set[str]:
    values: set[str] = set()
    for frame in (result.findings, result.records, result.data_quality):
        for column in ("person_id", "custody_record_id", "value"):
            if column in frame.columns:
                values |= {v for v in frame.get_column(column).to_list() if v is not None}
    return values


def test_ids_are_replaced_everywhere(result: CheckResult) -> None:
    hidden = pseudonymise(result, "a secret key of some length")
    persons = set(hidden.findings.get_column("person_id")) | set(hidden.records.get_column("person_id"))
    records = set(hidden.findings.get_column("custody_record_id")) | set(hidden.records.get_column("custody_record_id"))
    assert all(p.startswith("P-") and len(p) == 18 for p in persons)
    assert all(r.startswith("R-") and len(r) == 18 for r in records)
    assert len(persons) == 4
    assert len(records) == 5
    quality = hidden.data_quality
    assert quality.get_column("custody_record_id").str.starts_with("R-").all()
    # the value of a row about the person_id / custody_record_id column is an id too
    assert quality.get_column("value").to_list()[:2] == [
        hidden.findings.filter(pl.col("rule_id") == "PACE-AA").get_column("person_id")[1],
        quality.get_column("custody_record_id")[1],
    ]
    # a value in another column is left as it was read
    assert quality.get_column("value")[2] == "R1"
    assert not (all_values(hidden) - {"R1"}) & ORIGINAL_IDS


def test_the_same_id_links_across_tables(result: CheckResult) -> None:
    hidden = pseudonymise(result, "k" * 20)
    joined = hidden.findings.join(hidden.records, on="custody_record_id", how="inner")
    assert joined.height == hidden.findings.height
    assert (joined.get_column("person_id") == joined.get_column("person_id_right")).all()


def test_stable_with_the_same_key_and_different_with_another(result: CheckResult) -> None:
    first = pseudonymise(result, "key one, long enough")
    again = pseudonymise(result, "key one, long enough")
    other = pseudonymise(result, "key two, long enough")
    assert first.findings.equals(again.findings)
    assert first.records.equals(again.records)
    assert first.data_quality.equals(again.data_quality)
    assert set(first.records.get_column("person_id")).isdisjoint(set(other.records.get_column("person_id")))


def test_the_digest_is_hmac_sha256_of_kind_and_id(result: CheckResult) -> None:
    for key in ("sixteen chars ok", "x" * 100):  # a key longer than the SHA-256 block is hashed first
        hidden = pseudonymise(result, key)
        expected = "P-" + hmac.new(key.encode(), b"person_id\0C3", "sha256").hexdigest()[:16]
        assert hidden.records.filter(pl.col("rules_applied") == 0).get_column("person_id").to_list() == [expected]


@pytest.mark.parametrize("column", ["message", "evidence"])
def test_a_rule_naming_an_id_in_its_text_is_refused_not_scrubbed(result: CheckResult, column: str) -> None:
    quoting = result.findings.with_columns(
        pl.when(pl.col("custody_record_id") == "R2")
        .then(pl.format("record {}", pl.col("custody_record_id")))
        .otherwise(pl.col(column))
        .alias(column)
    )
    with pytest.raises(UsageError, match="PACE-AA's message or evidence names the custody record or person id"):
        pseudonymise(replace(result, findings=quoting), KEY)


def test_a_message_that_only_resembles_an_id_is_left_as_it_is(result: CheckResult) -> None:
    hidden = pseudonymise(result, KEY)
    assert hidden.findings.get_column("message").to_list() == result.findings.get_column("message").to_list()


def test_dates_of_birth_become_year_and_month(result: CheckResult) -> None:
    hidden = pseudonymise(result, KEY)
    assert hidden.findings.get_column("evidence")[0] == '{"date_of_birth":"2004-03","age_at_arrival":15}'
    quality = hidden.data_quality.filter(pl.col("column") == "date_of_birth")
    assert quality.get_column("value").to_list() == ["2005-02"]
    # the same cut for both forms a date is read in; other text is withheld
    values = pl.DataFrame({"value": ["2005-3-01", "1/3/2005", "yesterday", None]})
    assert values.select(_year_and_month(pl.col("value"), "dmy")).to_series().to_list() == [
        "2005-03",
        "2005-03",
        None,
        None,
    ]


def test_a_missing_id_stays_missing(result: CheckResult) -> None:
    result.data_quality = result.data_quality.with_columns(
        pl.when(pl.col("column") == "person_id").then(pl.lit("")).otherwise(pl.col("value")).alias("value")
    )
    hidden = pseudonymise(result, "a secret key of some length")
    assert hidden.data_quality.get_column("value")[0] == ""


@pytest.mark.parametrize("key", ["", "x", "fifteen chars!!"])
def test_a_key_shorter_than_16_characters_is_refused(result: CheckResult, key: str) -> None:
    with pytest.raises(UsageError, match=f"has {len(key)} characters: give a secret of at least 16"):
        pseudonymise(result, key)
    pseudonymise(result, key.ljust(16, "k"))


def test_a_result_with_notes_is_never_pseudonymised(result: CheckResult, tmp_path: Path) -> None:
    with_notes = replace(result, meta={**result.meta, "include_notes": True})
    with pytest.raises(UsageError, match="--include-notes cannot be used with --pseudonymise-key"):
        pseudonymise(with_notes, KEY)
    with pytest.raises(UsageError, match="notes are free text"):
        write_outputs(with_notes, tmp_path / "out", formats=parse_formats("all"), pseudonymise_key=KEY)
    assert not (tmp_path / "out" / "summary.json").exists()
    pseudonymise(replace(result, meta={**result.meta, "include_notes": False}), KEY)


def test_write_outputs_pseudonymises_every_file(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"), pseudonymise_key=KEY)
    for name in ("findings.csv", "children.csv", "exceptions.csv", "data_quality.csv"):
        with (tmp_path / name).open(newline="") as handle:
            cells = {cell for row in csv.reader(handle) for cell in row}
        assert not (cells & {i for i in ORIGINAL_IDS if i != "R1"} | (cells & {"'+1", "'" + FORMULA_PERSON})), name
    parquet = pl.read_parquet(tmp_path / "findings.parquet")
    assert parquet.get_column("person_id").str.starts_with("P-").all()
    html = (tmp_path / "report.html").read_text()
    assert "C1" not in html
    assert "HYPERLINK" not in html
    assert json.loads((tmp_path / "summary.json").read_text())["pseudonymised"] is True


def test_many_ids_are_hashed_once_each_and_joined_back() -> None:
    n = 200_000  # 400,000 distinct ids
    ids = pl.select(pl.format("R{}", pl.int_range(n))).to_series()
    result = make_result([], [])
    result.records = pl.DataFrame(
        {
            "person_id": ids.str.replace("R", "P"),
            "custody_record_id": ids,
            "arrival_time": pl.Series([None] * n, dtype=pl.Datetime("us", "UTC")),
            "rules_applied": [0] * n,
        }
    )
    hidden = pseudonymise(result, KEY)
    assert hidden.records.get_column("custody_record_id").n_unique() == n
    assert hidden.records.get_column("person_id").n_unique() == n
    # each digest is joined back to the row of its own id
    for row in (0, 123_456, n - 1):
        digest = hmac.new(KEY.encode(), f"custody_record_id\0R{row}".encode(), "sha256").hexdigest()[:16]
        assert hidden.records.get_column("custody_record_id")[row] == "R-" + digest


def test_spilled_findings_are_pseudonymised_lazily(result: CheckResult) -> None:
    """A spilled findings table (a lazy scan, millions of rows) is not read back whole."""
    eager = pseudonymise(result, "a secret key of some length")
    lazy = pseudonymise(replace(result, findings=result.findings.lazy()), "a secret key of some length")
    assert isinstance(lazy.findings, pl.LazyFrame)
    collected = lazy.findings.collect()
    assert collected.equals(eager.findings)
    assert collected.get_column("person_id").null_count() == 0
    assert not {*collected.get_column("person_id"), *collected.get_column("custody_record_id")} & ORIGINAL_IDS
