"""Findings whose result may rest on how a 29 February birthday is read are marked (LAW.md, Age:
"make it a parameter and mark results that depend on it")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

import custody
from custody.facts.time import leap_day_dependent

ROOT = Path(__file__).resolve().parent.parent
DETENTIONS = (
    "custody_record_id,person_id,date_of_birth,appears_under_18,sex,ethnicity,looked_after,force,"
    "custody_suite,detention_power,arrival_time,place_of_safety,offence_category,indictable\n"
)
EVENTS = "custody_record_id,event_time,event_type,detail,note\n"


def _rules(tmp_path: Path, reading: str) -> custody.PreparedRules:
    """A rule folder of the shipped strip-search rule and facts settings, read `reading`."""
    folder = tmp_path / f"rules-{reading}"
    folder.mkdir()
    shutil.copy(ROOT / "rules" / "PACE-STRIP-SEARCH-AA.yaml", folder)
    settings = (ROOT / "rules" / "_facts.yaml").read_text(encoding="utf-8")
    assert "leap_day_birthday: march_1" in settings
    (folder / "_facts.yaml").write_text(settings.replace("leap_day_birthday: march_1", f"leap_day_birthday: {reading}"))
    return custody.load_rules(folder)


def _records(tmp_path: Path, rows: dict[str, tuple[str, str]]) -> Path:
    """One record per id: (date of birth, UK local time of arrival); a strip search without the
    appropriate adult an hour after arrival."""
    folder = tmp_path / "records"
    folder.mkdir()
    detentions, events = [DETENTIONS], [EVENTS]
    for record, (born, arrived) in rows.items():
        detentions.append(f"{record},P-{record},{born},,F,,,Anyshire,Suite,pace_arrest,{arrived},,other,true\n")
        day, clock = arrived.split(" ")
        searched = f"{day} {int(clock[:2]) + 1:02d}{clock[2:]}"
        events.append(f"{record},{searched},strip_search,aa_absent,\n")
    (folder / "detentions.csv").write_text("".join(detentions), encoding="utf-8")
    (folder / "events.csv").write_text("".join(events), encoding="utf-8")
    return folder


def _findings(tmp_path: Path, reading: str, rows: dict[str, tuple[str, str]]) -> dict[str, dict[str, object]]:
    result = custody.check(_records(tmp_path, rows), rules=_rules(tmp_path, reading))
    findings = result.findings.collect() if isinstance(result.findings, pl.LazyFrame) else result.findings
    return {row["custody_record_id"]: row for row in findings.to_dicts()}


def test_an_age_tested_on_28_february_of_a_common_year_is_marked(tmp_path: Path) -> None:
    found = _findings(
        tmp_path,
        "march_1",
        {
            "ON-28-FEB": ("2004-02-29", "2022-02-28 20:00"),  # 17 read as 1 March, 18 read as 28 February
            "DAY-BEFORE": ("2004-02-29", "2022-02-27 20:00"),  # 17 either way
            "LEAP-YEAR": ("2008-02-29", "2024-02-28 20:00"),  # 15 either way: 29 February exists
            "NOT-29-FEB": ("2004-03-01", "2022-02-28 20:00"),
        },
    )
    assert {r: f["outcome"] for r, f in found.items()} == dict.fromkeys(
        ("ON-28-FEB", "DAY-BEFORE", "LEAP-YEAR", "NOT-29-FEB"), "breach"
    )
    marked = found["ON-28-FEB"]
    assert str(marked["message"]).endswith(
        "Born on 29 February, the child had an age tested on 28 February of a common year: it is read with"
        " the birthday on 1 March (the setting leap_day_birthday in rules/_facts.yaml, as no statute settles"
        " it); with the birthday on 28 February the result may differ."
    )
    evidence = json.loads(str(marked["evidence"]))
    assert evidence["leap_day_birthday"] == "march_1"
    assert evidence["date_of_birth"] == "2004-02-29"
    for record in ("DAY-BEFORE", "LEAP-YEAR", "NOT-29-FEB"):
        assert "29 February" not in str(found[record]["message"]), record
        assert "leap_day_birthday" not in json.loads(str(found[record]["evidence"])), record


def test_the_mark_names_the_reading_in_use(tmp_path: Path) -> None:
    # 16 read as 1 March, 17 read as 28 February: a juvenile either way, marked under both readings.
    rows = {"ON-28-FEB": ("2008-02-29", "2025-02-28 20:00")}
    found = _findings(tmp_path, "feb_28", rows)["ON-28-FEB"]
    assert "it is read with the birthday on 28 February" in str(found["message"])
    assert "with the birthday on 1 March the result may differ" in str(found["message"])
    assert json.loads(str(found["evidence"]))["leap_day_birthday"] == "feb_28"


@pytest.mark.parametrize(
    ("born", "instants", "expected"),
    [
        ("2004-02-29", ["2022-02-28 00:00"], True),  # 00:00 GMT is 28 February in the UK
        ("2004-02-29", ["2022-02-27 23:59"], False),
        ("2004-02-29", ["2022-03-01 00:00"], False),
        ("2004-02-29", [None, "2022-02-28 12:00"], True),  # any age test on the day
        ("2004-02-29", [None], False),  # an unknown instant is no mark
        ("2008-02-29", ["2024-02-28 12:00"], False),  # a leap year
        ("2004-02-28", ["2022-02-28 12:00"], False),
        (None, ["2022-02-28 12:00"], False),
    ],
)
def test_leap_day_dependent(born: str | None, instants: list[str | None], expected: bool) -> None:
    columns = {f"at{i}": [value] for i, value in enumerate(instants)}
    frame = pl.DataFrame({"born": [born], **columns}, schema=dict.fromkeys(["born", *columns], pl.String)).with_columns(
        pl.col("born").str.to_date(),
        *(pl.col(c).str.to_datetime("%Y-%m-%d %H:%M").dt.replace_time_zone("UTC") for c in columns),
    )
    got = frame.select(leap_day_dependent(pl.col("born"), [pl.col(c) for c in columns])).item()
    assert got is expected


def test_a_pseudonymised_output_leaves_the_mark_out(tmp_path: Path) -> None:
    """Beside a year and month of birth, the mark would tell the whole date of birth."""
    from typer.testing import CliRunner

    from custody import cli

    records = _records(tmp_path, {"ON-28-FEB": ("2004-02-29", "2022-02-28 20:00")})
    runner = CliRunner()
    for key, marked in ((None, True), ("a private key of enough length", False)):
        out = tmp_path / ("plain" if key is None else "keyed")
        args = ["check", str(records), "--out", str(out), "-q", *(["--pseudonymise-key", key] if key else [])]
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, result.output
        findings = pl.read_parquet(out / "findings.parquet")
        assert findings.height > 0
        messages, evidence = "\n".join(findings["message"]), "\n".join(findings["evidence"])
        assert ("29 February" in messages) is marked
        assert ("leap_day_birthday" in evidence) is marked
        for text in findings["evidence"]:
            json.loads(text)  # still JSON with the key taken out
        if not marked:
            everything = "".join(p.read_text(errors="replace") for p in out.iterdir() if p.suffix in (".csv", ".html"))
            assert "29 February" not in everything
            assert "leap_day_birthday" not in everything
