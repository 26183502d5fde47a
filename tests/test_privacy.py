"""Under --pseudonymise-key no input id and no full date of birth reaches any output file.

Each output is read as a person or a program would: CSV, JSON and HTML as text, Parquet
decoded, XLSX unzipped (every part of the workbook).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO, MESSY, REINSPECTION, RecordSetFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from custody import cli
from custody.engine.rulefile import default_rules_dir

KEY = "a private key of enough length"
LAW_DATES = {
    match for path in default_rules_dir().glob("*.yaml") for match in re.findall(r"\d{4}-\d{2}-\d{2}", path.read_text())
}
"""Dates written in the shipped rule files (version dates, boundaries): public, not personal."""


def output_text(path: Path) -> str:
    """Everything an output file holds, as text."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path).write_csv()
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as workbook:
            return "\n".join(workbook.read(name).decode("utf-8") for name in workbook.namelist())
    return path.read_text(encoding="utf-8")


def read_raw(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    return frame.rename({c: c.strip().lower() for c in frame.columns}).with_columns(pl.all().str.strip_chars())


def secrets_of(folder: Path) -> set[str]:
    """Every id in the record set, and every date of birth as written and as ISO."""
    detentions, events = read_raw(folder / "detentions.csv"), read_raw(folder / "events.csv")
    values = {
        *detentions["custody_record_id"].drop_nulls(),
        *detentions["person_id"].drop_nulls(),
        *events["custody_record_id"].drop_nulls(),
    }
    for dob in detentions["date_of_birth"].drop_nulls():
        values.add(dob)
        if uk := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", dob):
            values.add(f"{uk[3]}-{int(uk[2]):02d}-{int(uk[1]):02d}")
    return {value for value in values if value}


def leaks(out: Path, secrets: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(out.iterdir()):
        text = output_text(path)
        if hits := sorted(secret for secret in secrets if secret in text):
            found[path.name] = hits
    return found


@pytest.mark.parametrize("records", [MESSY, DEMO, REINSPECTION], ids=lambda p: p.name)
def test_no_id_or_date_of_birth_reaches_any_output(runner: CliRunner, tmp_path: Path, records: Path) -> None:
    plain = runner.invoke(cli.app, ["check", str(records), "--out", str(tmp_path / "plain"), "-q"])
    assert plain.exit_code == 0, plain.output
    secrets = secrets_of(records)
    assert leaks(tmp_path / "plain", secrets)  # the test would see a leak

    result = runner.invoke(
        cli.app,
        ["check", str(records), "--out", str(tmp_path / "out"), "--formats", "all", "-q", "--pseudonymise-key", KEY],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in (tmp_path / "plain").iterdir()
    )
    assert leaks(tmp_path / "out", secrets) == {}


IDS = st.from_regex(r"[A-Z][A-Z0-9]{5,9}", fullmatch=True)


@settings(max_examples=10, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    record_ids=st.lists(IDS, min_size=3, max_size=3, unique=True),
    person_ids=st.lists(IDS, min_size=3, max_size=3, unique=True),
    orphan=IDS,
    dobs=st.lists(st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2018, 12, 31)), min_size=3, max_size=3),
)
def test_no_id_or_date_of_birth_of_any_record_set_reaches_any_output(
    runner: CliRunner,
    csv_record_set: RecordSetFactory,
    tmp_path: Path,
    record_ids: list[str],
    person_ids: list[str],
    orphan: str,
    dobs: list[dt.date],
) -> None:
    """Any ids and dates of birth, including a duplicated record, an orphan event and a bad date."""
    if orphan in record_ids or set(record_ids) & set(person_ids):
        return
    first, second, third = record_ids
    folder = csv_record_set(
        [
            (first, person_ids[0], f"{dobs[0]:%d/%m/%Y}", "pace_arrest", "2019-07-01 12:00"),
            (second, person_ids[1], f"{dobs[1]}", "pace_arrest", "2019-07-02 12:00"),
            (second, person_ids[1], f"{dobs[1]}", "mha_s136", "2019-07-02 13:00"),  # conflicting duplicate
            (third, person_ids[2], f"31/02/{dobs[2]:%Y}", "pace_arrest", "2019-07-03 12:00"),  # not a real date
        ],
        [
            (first, "2019-07-01 12:05", "charged"),
            (first, "2019-07-01 12:06", "bail_refused"),
            (second, "2019-07-02 12:05", "charged"),
            (orphan, "2019-07-02 12:05", "charged"),
        ],
        detention_header=["custody_record_id", "person_id", "date_of_birth", "detention_power", "arrival_time"],
    )
    out = folder.parent / "out"
    result = runner.invoke(cli.app, ["check", str(folder), "--out", str(out), "-q", "--pseudonymise-key", KEY])
    assert result.exit_code == 0, result.output
    secrets = {*record_ids, *person_ids, orphan, f"{dobs[0]:%d/%m/%Y}", f"{dobs[0]}", f"{dobs[1]}"}
    secrets |= {f"{dobs[1]:%d/%m/%Y}", f"31/02/{dobs[2]:%Y}"}
    # A date of birth that is also a date of the law (a rule version's, shown in the report)
    # is public text, not a leak.
    assert leaks(out, secrets - LAW_DATES) == {}
    shutil.rmtree(out)


def test_a_short_key_is_refused_in_one_sentence(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(tmp_path), "--pseudonymise-key", "x" * 15])
    assert result.exit_code == 2
    assert "has 15 characters: give a secret of at least 16" in result.output
    assert not list(tmp_path.iterdir())


def test_ids_of_digits_alone_are_pseudonymised_not_mistaken_for_numbers(runner: CliRunner, tmp_path: Path) -> None:
    """Person ids 1, 2, ... resemble every age and count in the findings: a keyed run is not
    refused for it (the rules do not name ids), and no id is left as it was."""
    folder = tmp_path / "numeric"
    folder.mkdir()
    detentions = pl.read_csv(DEMO / "detentions.csv", infer_schema=False)
    numbered = {old: str(n) for n, old in enumerate(detentions["person_id"].unique(maintain_order=True), start=1)}
    detentions.with_columns(pl.col("person_id").replace_strict(numbered)).write_csv(folder / "detentions.csv")
    shutil.copy(DEMO / "events.csv", folder / "events.csv")
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["check", str(folder), "--out", str(out), "-q", "--pseudonymise-key", KEY])
    assert result.exit_code == 0, result.output
    people = pl.read_csv(out / "findings.csv")["person_id"]
    assert people.str.starts_with("P-").all()


def test_a_rule_naming_an_id_is_refused_whatever_the_ids_look_like(runner: CliRunner, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), rules)
    rule = rules / "PACE-CLOCK.yaml"
    rule.write_text(rule.read_text().replace("evidence:\n", "evidence:\n  - person_id\n", 1))
    result = runner.invoke(
        cli.app,
        ["check", str(DEMO), "--out", str(tmp_path / "out"), "--rules", str(rules), "--pseudonymise-key", KEY],
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "error: Rule PACE-CLOCK's message or evidence names the custody record or person id, which "
        "--pseudonymise-key would leave in the outputs: take custody_record_id and person_id out of it."
    )


@pytest.mark.parametrize(
    ("shown", "refused"),
    [
        ("{occasion_certificate_note}", True),
        ("{coalesce(occasion_certificate_note, 'none')}", True),
        ("{phrase(occasion_certificate_note, offence_phrases)}", False),
        ("{stated_phrase(occasion_certificate_note, offence_phrases)}", False),
        ("{quote(occasion_certificate_note)}", False),
        ("{occasion_certificate_note is None}", False),
    ],
)
def test_a_message_never_shows_free_text(runner: CliRunner, tmp_path: Path, shown: str, refused: bool) -> None:
    # A message reaches every output with or without --include-notes: a phrase of the rule's
    # own list found in a note may be shown, and the note through quote() (shown only in a run
    # that includes notes), the note itself never.
    rules = tmp_path / "rules"
    rules.mkdir()
    source = default_rules_dir()
    for name in ("S38-GROUNDS.yaml", "_facts.yaml"):
        shutil.copy(source / name, rules / name)
    path = rules / "S38-GROUNDS.yaml"
    text = path.read_text()
    assert "{stated_phrase(occasion_certificate_note, offence_phrases)}" in text
    path.write_text(text.replace("{stated_phrase(occasion_certificate_note, offence_phrases)}", shown, 1))
    result = runner.invoke(cli.app, ["rules", "test", "S38-GROUNDS", "--rules", str(rules)])
    if refused:
        assert result.exit_code == 2
        assert f"{path}:" in result.stderr
        assert "shows the free text of occasion_certificate_note" in result.stderr
    else:
        assert "shows the free text" not in result.stderr


@pytest.mark.parametrize(
    ("written", "order", "kept"),
    [("2005-02-31", "dmy", "2005-02"), ("31/02/2005", "dmy", "2005-02"), ("02/31/2005", "mdy", "2005-02")],
)
def test_an_unusable_date_of_birth_keeps_its_year_and_month_in_the_declared_order(
    written: str, order: str, kept: str
) -> None:
    from custody.pseudonymise import _year_and_month

    value = pl.select(_year_and_month(pl.lit(written), order)).item()
    assert value == kept
