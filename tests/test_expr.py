"""The rule expression language: safe, typed, null-propagating, with errors people can act on."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from custody.engine.expr import ExpressionError, Scope, compile_condition, compile_expression
from custody.facts import fact_specs
from custody.facts.time import age_years, is_juvenile, parse_duration, uk_midnight

UTC = dt.UTC
SCOPE = Scope(fact_specs(), {"limit": "24h", "age_limit": 18, "words": ["violent behaviour", "snow"]})


def evaluate(text: str, **columns: list[object]) -> list[object]:
    instants = {name: pl.Datetime("us", "UTC") for name in columns if name.endswith("_at")}
    frame = pl.DataFrame(columns, schema_overrides=instants) if columns else pl.DataFrame({"_": [0]})
    compiled = compile_expression(text, SCOPE)
    return frame.select(compiled.expr.alias("value"))["value"].to_list()


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_instant_arithmetic_gives_elapsed_durations() -> None:
    arrival = [at(2019, 10, 26, 21, 0)]  # 22:00 BST
    release = [at(2019, 10, 27, 22, 0)]  # 22:00 GMT next day: 25 hours of elapsed time
    values = evaluate("released_at - arrival_at > limit", arrival_at=arrival, released_at=release)
    assert values == [True]
    assert evaluate("as_hours(released_at - arrival_at)", arrival_at=arrival, released_at=release) == [25.0]


def test_missing_evidence_propagates_null_not_false() -> None:
    values = evaluate("released_at - arrival_at > limit", arrival_at=[at(2020, 1, 1)], released_at=[None])
    assert values == [None]
    # Kleene logic: a known true/false still decides `or`/`and`.
    assert evaluate("charged_at is None or released_at > charged_at", charged_at=[None], released_at=[None]) == [True]


def test_local_date_is_the_uk_calendar_day() -> None:
    # 23:30 UTC on 1 July is 00:30 BST on 2 July.
    values = evaluate(
        "local_date(released_at) == local_date(charged_at)",
        released_at=[at(2019, 7, 1, 23, 30)],
        charged_at=[at(2019, 7, 2, 10, 0)],
    )
    assert values == [True]


def test_in_list_and_is_none() -> None:
    assert evaluate("detention_power in ['pace_arrest', 'other']", detention_power=["pace_arrest", "warrant"]) == [
        True,
        False,
    ]
    assert evaluate("date_of_birth is not None", date_of_birth=[dt.date(2000, 1, 1), None]) == [True, False]


def test_phrase_returns_the_deciding_phrase_case_insensitively() -> None:
    notes = ["Due to the child's VIOLENT BEHAVIOUR", "heavy snow overnight", "snowfall", None]
    assert evaluate("phrase(certificate_note, words)", certificate_note=notes) == [
        "violent behaviour",
        "snow",
        None,  # whole words only: "snowfall" is not "snow"
        None,
    ]


def test_a_conditional_value_is_unknown_when_its_condition_is() -> None:
    # `a if c else b`: an unknown condition never silently picks `b`.
    values = evaluate(
        "charged_at if released_at > charged_at else released_at",
        charged_at=[at(2020, 1, 1, 10), at(2020, 1, 1, 10), None],
        released_at=[at(2020, 1, 1, 12), at(2020, 1, 1, 9), at(2020, 1, 1, 9)],
    )
    assert values == [at(2020, 1, 1, 10), at(2020, 1, 1, 9), None]
    with pytest.raises(ExpressionError, match="must be of one kind"):
        compile_expression("arrival_at if charged_at is None else limit", SCOPE)
    with pytest.raises(ExpressionError, match="not a condition"):
        compile_expression("arrival_at if limit else arrival_at", SCOPE)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bail_refused_att is None", "did you mean bail_refused_at"),
        ("__import__('os')", "unknown function '__import__'"),
        ("arrival_at.year", "is not allowed"),
        ("arrival_at > 3", "cannot compare instant with int"),
        ("arrival_at +", "not a valid expression"),
        ("[x for x in y]", "is not allowed"),
        ("hours(24)", None),
    ],
)
def test_bad_expressions_are_refused_with_a_reason(text: str, fragment: str | None) -> None:
    if fragment is None:
        compile_expression(text, SCOPE)
        return
    with pytest.raises(ExpressionError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        compile_expression(text, SCOPE)


def test_a_condition_must_be_true_or_false() -> None:
    with pytest.raises(ExpressionError, match="not a condition"):
        compile_condition("released_at - arrival_at", SCOPE)


def test_durations_and_law_dates() -> None:
    assert parse_duration("24h") == dt.timedelta(hours=24)
    assert parse_duration("15m") == dt.timedelta(minutes=15)
    assert parse_duration("a while") is None
    # Laws take effect at 00:00 UK time: in BST that is 23:00 UTC the day before.
    assert uk_midnight(dt.date(2018, 7, 31)) == at(2018, 7, 30, 23, 0)
    assert uk_midnight(dt.date(2015, 12, 1)) == at(2015, 12, 1, 0, 0)


@pytest.mark.parametrize(
    ("born", "instant", "leap_rule", "age"),
    [
        # FLRA 1969 s9: the age is attained at 00:00 UK time on the birthday.
        (dt.date(2001, 7, 2), at(2019, 7, 1, 22, 59), "march_1", 17),  # 23:59 BST on 1 July
        (dt.date(2001, 7, 2), at(2019, 7, 1, 23, 0), "march_1", 18),  # 00:00 BST on 2 July
        (dt.date(2004, 2, 29), at(2022, 2, 28, 12, 0), "march_1", 17),
        (dt.date(2004, 2, 29), at(2022, 3, 1, 0, 0), "march_1", 18),
        (dt.date(2004, 2, 29), at(2022, 2, 28, 12, 0), "feb_28", 18),
        (dt.date(2004, 2, 29), at(2024, 2, 29, 0, 0), "march_1", 20),
    ],
)
def test_age_in_whole_years(born: dt.date, instant: dt.datetime, leap_rule: str, age: int) -> None:
    frame = pl.DataFrame({"dob": [born], "t": [instant]})
    result = frame.select(age_years(pl.col("dob"), pl.col("t"), leap_rule).alias("age"))["age"].item()
    assert result == age


@pytest.mark.parametrize(
    ("born", "appears", "limit", "expected"),
    [
        (dt.date(1998, 1, 1), None, 18, True),
        (dt.date(1998, 1, 1), None, 17, False),
        (None, True, 18, True),
        (None, True, 17, None),  # appearing under 18 does not show appearing under 17
        (None, False, 18, False),
        (None, None, 18, None),
    ],
)
def test_juvenile_status(born: dt.date | None, appears: bool | None, limit: int, expected: bool | None) -> None:
    frame = pl.DataFrame(
        {"dob": [born], "appears": [appears], "t": [at(2015, 7, 1)]},
        schema={"dob": pl.Date, "appears": pl.Boolean, "t": pl.Datetime("us", "UTC")},
    )
    expr = is_juvenile(pl.col("dob"), pl.col("appears"), pl.col("t"), pl.lit(limit), "march_1")
    assert frame.select(expr.alias("j"))["j"].item() is expected
