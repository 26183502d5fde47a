"""Reading what a text gives as a reason (custody/engine/reasons.py, and stated(), stated_phrase(),
not_relied_on(), quote() in the expression language): denials and descriptions are not reliance,
and free text reaches a message only in a run that includes notes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import RecordSetFactory
from typer.testing import CliRunner

from custody import cli
from custody.engine import reasons
from custody.engine.expr import ExpressionError, Scope, compile_expression
from custody.facts import fact_specs

# A small vocabulary, independent of the shipped rule files.
PARAMS: dict[str, Any] = {
    "reading_negations": ["not", "no", "never", "no concerns", "not due to"],
    "reading_pseudo_negations": ["not possible", "could not"],
    "reading_scope_ends": [".", ",", ";", "but", "and", "due to"],
    "reading_negation_window": 2,
    "reading_descriptions_after": ["calm", "good", "not an issue", "no concerns"],
    "reading_descriptions_before": ["good"],
    "reading_description_window": 2,
    "reading_description_before_window": 0,
}
READING = reasons.Reading.from_params(PARAMS)
BEHAVIOUR = ["behaviour", "aggressive", "violent"]
ABSENCES = ["no secure bed", "no transport"]


def read(text: str, phrases: list[str] = BEHAVIOUR) -> list[tuple[str, str]]:
    return [(m.phrase, m.status) for m in reasons.mentions(text, phrases, READING)]


def test_tokens_are_whole_words_and_marks_and_a_line_break_ends_a_sentence() -> None:
    assert reasons.tokenize("Wasn\u2019t CO-OPERATIVE,\nsnow") == ("wasn't", "co-operative", ",", ".", "snow")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aggressive towards staff", [("aggressive", "stated")]),
        ("Not aggressive", [("aggressive", "negated")]),
        ("No concerns about behaviour", [("behaviour", "negated")]),
        ("Behaviour has been calm", [("behaviour", "described")]),
        ("Behaviour not an issue", [("behaviour", "described")]),
        ("Good behaviour", [("behaviour", "described")]),
        # A denial between the phrase and its description takes the description back.
        ("Behaviour not good", [("behaviour", "stated")]),
        # A denial reaches every phrase of its clause within the window.
        ("Not aggressive or violent", [("aggressive", "negated"), ("violent", "negated")]),
        # A clause ends at a mark or a scope-ending word.
        ("Not calm, aggressive", [("aggressive", "stated")]),
        ("Never aggressive but violent", [("aggressive", "negated"), ("violent", "stated")]),
        ("Not moved due to behaviour", [("behaviour", "stated")]),
        # ... unless the scope-ending word is part of a longer negation.
        ("Not due to behaviour", [("behaviour", "negated")]),
        # A pseudo-negation denies nothing.
        ("Not possible to move, violent", [("violent", "stated")]),
        ("Could not move aggressive child", [("aggressive", "stated")]),
        # The window: two words between the cue and the phrase, then three.
        ("Not at all aggressive", [("aggressive", "negated")]),
        ("Not at all very aggressive", [("aggressive", "stated")]),
        ("Snowdonia", []),
    ],
)
def test_a_phrase_is_read_as_stated_denied_or_described(text: str, expected: list[tuple[str, str]]) -> None:
    assert read(text) == expected


def test_a_phrase_that_opens_with_a_negation_states_an_absence() -> None:
    assert read("No transport and no secure bed", ABSENCES) == [("no transport", "stated"), ("no secure bed", "stated")]
    assert read("Never no secure bed", ABSENCES) == [("no secure bed", "stated")]


def test_a_wording_in_two_lists_plays_both_roles() -> None:
    # 'no concerns' denies what follows and describes what comes before.
    assert read("No concerns about behaviour") == [("behaviour", "negated")]
    assert read("Behaviour no concerns") == [("behaviour", "described")]


def test_the_longest_phrase_of_a_list_wins_and_matches_do_not_overlap() -> None:
    phrases = ["secure bed", "no secure bed"]
    assert read("No secure bed tonight", phrases) == [("no secure bed", "stated")]


def test_stated_phrase_and_not_relied_on() -> None:
    assert reasons.stated_phrase("Good behaviour; violent", BEHAVIOUR, READING) == "violent"
    assert reasons.stated_phrase("Not violent", BEHAVIOUR, READING) is None
    said = reasons.not_relied_on("Behaviour calm. Not aggressive. No transport", [BEHAVIOUR, ABSENCES], READING)
    assert said == "'behaviour' (a description), 'aggressive' (denied)"
    assert reasons.not_relied_on("Heavy snow", [BEHAVIOUR], READING) == "none"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"reading_negations": None}, "reading_negations"),
        ({"reading_negation_window": -1}, "reading_negation_window must be a whole number"),
        ({"reading_description_window": True}, "reading_description_window must be a whole number"),
        ({"reading_scope_ends": "but"}, "reading_scope_ends must be a list of text"),
    ],
)
def test_a_reading_needs_every_parameter_well_formed(change: dict[str, Any], fragment: str) -> None:
    params = {k: v for k, v in {**PARAMS, **change}.items() if v is not None}
    with pytest.raises((KeyError, ValueError), match=fragment):
        reasons.Reading.from_params(params)


# ---------------------------------------------------------------- the expression language

SCOPE = Scope(fact_specs(), {**PARAMS, "behaviour_phrases": BEHAVIOUR, "absences": ABSENCES})


def evaluate(text: str, notes: list[str | None]) -> list[object]:
    frame = pl.DataFrame({"certificate_note": notes}, schema={"certificate_note": pl.String})
    return frame.select(compile_expression(text, SCOPE).expr.alias("value"))["value"].to_list()


def test_stated_is_null_without_text_so_the_rule_cannot_assess() -> None:
    notes = ["Not aggressive", "Aggressive", None]
    assert evaluate("stated(certificate_note, behaviour_phrases)", notes) == [False, True, None]
    assert evaluate("stated_phrase(certificate_note, behaviour_phrases)", notes) == [None, "aggressive", None]
    assert evaluate("not_relied_on(certificate_note, behaviour_phrases, absences)", notes) == [
        "'aggressive' (denied)",
        "none",
        None,
    ]


@pytest.mark.parametrize(
    ("text", "dropped", "fragment"),
    [
        ("stated(certificate_note, behaviour_phrases)", "reading_negation_window", "add reading_negation_window"),
        ("stated(certificate_note, [])", None, "the phrase list is empty"),
        ("not_relied_on(certificate_note)", None, "takes a text and one or more phrase lists"),
        ("quote(detention_power)", None, "quote() is for free text"),
        ("quote('words')", None, "quote() takes one free-text fact"),
    ],
)
def test_reading_functions_refuse_what_they_cannot_read(text: str, dropped: str | None, fragment: str) -> None:
    scope = Scope(fact_specs(), {k: v for k, v in SCOPE.params.items() if k != dropped})
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        compile_expression(text, scope)


# ---------------------------------------------------------------- quote(): notes only when asked


@pytest.mark.parametrize("include_notes", [False, True])
def test_unrecognised_wording_is_quoted_only_when_the_run_includes_notes(
    runner: CliRunner, csv_record_set: RecordSetFactory, tmp_path: Path, include_notes: bool
) -> None:
    wording = "Inspector Smith authorised detention overnight"
    folder = csv_record_set(
        [("R1", "P1", "2003-03-01", "pace_arrest", "2019-07-01 12:00")],
        [
            ("R1", "2019-07-01 18:00", "charged", "", ""),
            ("R1", "2019-07-01 18:05", "bail_refused", "", ""),
            ("R1", "2019-07-01 18:40", "certificate", "impracticable", f"{wording}\nfor the night"),
        ],
    )
    out = tmp_path / "out"
    options = ["--include-notes"] if include_notes else []
    result = runner.invoke(cli.app, ["check", str(folder), "--out", str(out), "-q", *options])
    assert result.exit_code == 0, result.output
    grounds = pl.read_csv(out / "findings.csv").filter(pl.col("rule_id") == "S38-GROUNDS").row(0, named=True)
    assert grounds["outcome"] == "cannot_assess"
    every_output = "".join(
        p.read_text(errors="replace") for p in out.iterdir() if p.suffix in (".csv", ".json", ".html")
    )
    if include_notes:
        assert f"states, '{wording} for the night', give none" in grounds["message"]
    else:
        assert "wording not shown unless notes are included (--include-notes)" in grounds["message"]
        assert "Smith" not in every_output
