"""The legal values of the facts layer are dated: the value in force when the duty arises is used."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from custody.engine.rulefile import (
    FACTS_SETTINGS_FILE,
    RuleFileError,
    default_rules_dir,
    load_fact_settings,
    load_rule_set,
)
from custody.facts import FactSettings
from custody.facts.build import _review_schedule

SHIPPED = default_rules_dir()
UK = ZoneInfo("Europe/London")

# A made-up change of law, for the tests only: reviews every 8 hours from 1 June 2020.
TWO_VERSIONS = """\
versions:
  - effective_from: 1986-01-01
    effective_to: 2020-05-31
    citations: [PACE 1984 s40(3)]
    changes: PACE Part IV in force.
    values:
      review_first_after: 6h
      review_interval: 9h
  - effective_from: 2020-06-01
    citations: [An imaginary amendment]
    changes: reviews every 8 hours (made up for this test).
    values:
      review_first_after: 5h
      review_interval: 8h
parameters:
  leap_day_birthday: feb_28
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / FACTS_SETTINGS_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _uk(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UK).astimezone(dt.UTC)


def _values_at(settings: FactSettings, instants: list[dt.datetime | None]) -> list[dt.timedelta | None]:
    frame = pl.DataFrame({"at": instants}, schema={"at": pl.Datetime("us", "UTC")})
    values: list[dt.timedelta | None] = frame.select(settings.value_at("review_interval", pl.col("at")).alias("at"))[
        "at"
    ].to_list()
    return values


def test_the_shipped_file_holds_the_defaults_dated_and_cited() -> None:
    settings = load_fact_settings(SHIPPED / FACTS_SETTINGS_FILE)
    assert settings == FactSettings()
    (version,) = settings.versions
    assert version.effective_from == dt.date(1986, 1, 1)
    assert version.effective_to is None
    assert version.values.review_first_after == dt.timedelta(hours=6)
    assert version.values.review_interval == dt.timedelta(hours=9)
    assert any("s40(3)(a)" in c for c in version.citations)
    assert settings.leap_day_birthday == "march_1"


def test_the_value_in_force_is_chosen_by_the_instant_at_uk_midnight(tmp_path: Path) -> None:
    settings = load_fact_settings(_write(tmp_path, TWO_VERSIONS))
    assert settings.leap_day_birthday == "feb_28"
    # 1 June 2020 00:00 BST is 31 May 23:00 UTC: the new value starts then, not at 00:00 UTC.
    instants = [
        _uk(1985, 12, 31, 23, 59),
        _uk(1986, 1, 1, 0, 0),
        _uk(2020, 5, 31, 23, 59),
        dt.datetime(2020, 5, 31, 23, 0, tzinfo=dt.UTC),
        _uk(2020, 6, 1, 0, 0),
        None,
    ]
    hours = [None if v is None else v / dt.timedelta(hours=1) for v in _values_at(settings, instants)]
    assert hours == [None, 9, 9, 8, 8, None]
    assert settings.version_on(_uk(2020, 5, 31, 23, 59)) == settings.versions[0]
    assert settings.version_on(_uk(2020, 6, 1, 0, 0)) == settings.versions[1]
    assert settings.version_on(_uk(1985, 12, 31, 12, 0)) is None


def _schedule(settings: FactSettings, authorised: dt.datetime, reviews: list[dt.datetime]) -> dict[str, object]:
    located = pl.DataFrame(
        {
            "_rec": [0] * len(reviews),
            "event_type": ["review"] * len(reviews),
            "detail": [None] * len(reviews),
            "event_time": reviews,
        },
        schema={
            "_rec": pl.UInt32,
            "event_type": pl.String,
            "detail": pl.String,
            "event_time": pl.Datetime("us", "UTC"),
        },
    )
    authorised_frame = pl.DataFrame(
        {"_rec": [0], "authorised_at": [authorised]},
        schema={"_rec": pl.UInt32, "authorised_at": pl.Datetime("us", "UTC")},
    )
    rows = _review_schedule(located, authorised_frame, settings).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_reviews_are_due_by_the_values_in_force_when_detention_was_first_authorised(tmp_path: Path) -> None:
    settings = load_fact_settings(_write(tmp_path, TWO_VERSIONS))
    # Authorised the day before the change: 6h then 9h, even for reviews after the change.
    before = _uk(2020, 5, 31, 20, 0)
    row = _schedule(settings, before, [before + dt.timedelta(hours=6), before + dt.timedelta(hours=16)])
    assert row["review_first_due_at"] == before + dt.timedelta(hours=6)
    assert row["review_worst_lateness"] == dt.timedelta(hours=1)
    assert row["review_worst_due_at"] == before + dt.timedelta(hours=15)
    assert row["review_next_due_at"] == before + dt.timedelta(hours=24)
    # Authorised on the day of the change: 5h then 8h.
    on = _uk(2020, 6, 1, 0, 30)
    row = _schedule(settings, on, [on + dt.timedelta(hours=5), on + dt.timedelta(hours=14)])
    assert row["review_first_due_at"] == on + dt.timedelta(hours=5)
    assert row["review_worst_lateness"] == dt.timedelta(hours=1)
    assert row["review_worst_due_at"] == on + dt.timedelta(hours=13)
    assert row["review_next_due_at"] == on + dt.timedelta(hours=21)


def test_a_record_with_no_review_is_first_due_by_the_value_in_force(tmp_path: Path) -> None:
    settings = load_fact_settings(_write(tmp_path, TWO_VERSIONS))
    on = _uk(2020, 6, 2, 10, 0)
    row = _schedule(settings, on, [])
    assert row["reviews_held"] == 0
    assert row["review_first_due_at"] == on + dt.timedelta(hours=5)
    assert row["review_next_due_at"] == on + dt.timedelta(hours=5)


def test_before_any_version_the_due_times_are_unknown() -> None:
    authorised = _uk(1985, 6, 1, 10, 0)
    row = _schedule(FactSettings(), authorised, [authorised + dt.timedelta(hours=3)])
    assert row["review_first_due_at"] is None
    assert row["review_next_due_at"] is None
    assert row["review_worst_lateness"] is None


def test_the_rules_digest_covers_the_facts_settings(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED, rules)
    before = load_rule_set(rules).digest
    path = rules / FACTS_SETTINGS_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("review_interval: 9h", "review_interval: 8h"))
    after = load_rule_set(rules)
    assert after.digest != before
    assert after.settings.versions[0].values.review_interval == dt.timedelta(hours=8)


def _error(tmp_path: Path, text: str) -> RuleFileError:
    path = _write(tmp_path, text)
    with pytest.raises(RuleFileError) as caught:
        load_fact_settings(path)
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: ")
    return caught.value


def _line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    found = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return found[occurrence - 1]


def test_versions_out_of_date_order_are_refused_at_the_later_one(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("effective_from: 2020-06-01", "effective_from: 1980-06-01").replace(
        "    effective_to: 2020-05-31\n", ""
    )
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "effective_from: 1980-06-01")
    assert "versions.1.effective_from: versions are not in date order (1986-01-01 then 1980-06-01)" in error.message


def test_overlapping_versions_are_refused(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("effective_to: 2020-05-31", "effective_to: 2020-06-01")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "effective_from: 2020-06-01")
    assert "overlaps 2020-06-01" in error.message


def test_an_open_ended_version_before_another_is_refused_with_the_fix(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("    effective_to: 2020-05-31\n", "")
    error = _error(tmp_path, text)
    assert "give it effective_to: 2020-05-31" in error.message


def test_a_version_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("effective_to: 2020-05-31", "effective_to: 1985-05-31")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "effective_to: 1985-05-31")


def test_a_version_without_a_citation_is_refused(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("citations: [An imaginary amendment]", "citations: []")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "citations: []")
    assert error.message.startswith("versions.1.citations:")
    text = TWO_VERSIONS.replace("citations: [An imaginary amendment]", "citations: ['  ']")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "citations: ['  ']")
    assert "empty citation" in error.message
    text = TWO_VERSIONS.replace("    citations: [An imaginary amendment]\n", "")
    error = _error(tmp_path, text)
    assert error.message == "versions.1.citations: Field required"


def test_a_bad_or_unknown_value_names_its_line(tmp_path: Path) -> None:
    text = TWO_VERSIONS.replace("review_interval: 8h", "review_interval: eight hours")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "review_interval: eight hours")
    assert "not a duration" in error.message
    text = TWO_VERSIONS.replace("review_interval: 8h", "review_interval: 0h")
    assert _error(tmp_path, text).line == _line_of(text, "review_interval: 0h")
    text = TWO_VERSIONS.replace("review_interval: 8h", "review_interval: 8h\n      review_intervals: 8h")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, "review_intervals: 8h")
    assert error.message == "versions.1.values: unknown key 'review_intervals'"
    text = TWO_VERSIONS.replace("leap_day_birthday: feb_28", "leap_day_birthday: feb_29")
    assert _error(tmp_path, text).line == _line_of(text, "leap_day_birthday: feb_29")


def test_the_old_undated_layout_is_refused_with_what_to_do(tmp_path: Path) -> None:
    text = "settings:\n  review_first_after: 6h\n  review_interval: 9h\n"
    error = _error(tmp_path, text)
    assert error.line == 2  # where the value of `settings` starts
    assert "dated 'versions'" in error.message


def test_an_empty_facts_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_fact_settings(_write(tmp_path, "# nothing\n")) == FactSettings()


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01"])
def test_an_extreme_date_is_one_sentence_with_its_line(tmp_path: Path, date: str) -> None:
    text = TWO_VERSIONS.replace("effective_to: 2020-05-31", f"effective_to: {date}")
    error = _error(tmp_path, text)
    assert error.line == _line_of(text, f"effective_to: {date}")
    assert "leave effective_to out while a version is in force" in error.message
