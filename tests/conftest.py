"""Shared test fixtures and helpers: the sample record sets, a CLI runner, the shipped rules
compiled once per session, the demo check run once per session, small record sets written
into tmp_path, and a CheckResult built from plain rows."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import os
import pkgutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import freezegun
import polars as pl
import pytest
from hypothesis import settings
from pydantic import BaseModel
from typer.testing import CliRunner

import custody
from custody.contract import DATA_QUALITY_SCHEMA, FINDINGS_SCHEMA
from custody.findings import CheckResult, RuleInfo

if TYPE_CHECKING:  # the pipeline is imported by the fixtures that run it, not by every test
    from custody.pipeline import PreparedRules
    from custody.read.loader import RecordSet

# freezegun swaps the datetime classes in every loaded module; polars must keep the real
# ones (it caches Python type -> dtype lookups), or frozen tests poison later ones.
freezegun.configure(extend_ignore_list=["polars", "pydantic", "pydantic_core", "yaml"])


def _build_deferred_models() -> None:
    """Build every pydantic model the package defers (`defer_build`) now, before any test
    freezes time: frozen, `datetime.date` is freezegun's class, for which pydantic has no
    schema, so a model first used under freeze_time (a rule folder read with an empty rules
    cache) would fail in that worker, and in the tests that share its fixtures. Every module of
    the package is imported to find them, so a new module's models are built too."""
    modules = [importlib.import_module(info.name) for info in pkgutil.walk_packages(custody.__path__, "custody.")]
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
                and value.model_config.get("defer_build")
            ):
                value.model_rebuild(force=True)


_build_deferred_models()


def _show_polars_the_real_time_types() -> None:
    """polars looks up Python's date and time classes once, on first use, and keeps them: if
    that first use came under freeze_time it would keep freezegun's classes and no longer
    recognise a real date (in every later test of that worker). So it first meets the real
    ones here, both ways: values into polars and out of it."""
    values = {
        "date": dt.date(2000, 1, 2),
        "datetime": dt.datetime(2000, 1, 2, 3, 4),
        "instant": dt.datetime(2000, 1, 2, 3, 4, tzinfo=dt.UTC),
        "time": dt.time(3, 4),
        "duration": dt.timedelta(hours=1),
    }
    frame = pl.from_dicts([values])
    pl.DataFrame({name: [value] for name, value in values.items()}).rows()
    frame.to_dicts()


_show_polars_the_real_time_types()

# Compiled rules are kept between runs (custody.engine.cache): the suite keeps its own cache,
# shared by its workers, never the user's. Its key covers the package source, so a change to
# the compiler is never served a stale entry.
os.environ.setdefault("CUSTODY_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"custody-test-cache-{os.getuid()}"))

# Property tests are judged on what they find, never on how long an example takes (speed is
# the benchmark's business): no deadline. The parent keeps Hypothesis's own CI profile
# (derandomised, no example database) when it runs under CI=true.
settings.register_profile("custody", parent=settings(), deadline=None)
settings.load_profile("custody")

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
SAMPLES = ROOT / "sample_records"
DEMO = SAMPLES / "demo"
MESSY = SAMPLES / "messy"
REINSPECTION = SAMPLES / "reinspection_2015"

# The instant the shared demo check runs at (summary.json's as_of).
DEMO_AS_OF = "2026-11-23 09:00:00"


# ---------------------------------------------------------------- CLI and sample record sets


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def prepared_rules() -> PreparedRules:
    """The shipped rules, loaded and compiled once for the whole run (compiling is slow)."""
    from custody.pipeline import prepare_rules

    return prepare_rules()


@pytest.fixture(scope="session")
def demo_result(prepared_rules: PreparedRules) -> CheckResult:
    """sample_records/demo checked in memory with the shipped rules; tests only read it."""
    from custody.pipeline import run_check

    return run_check(DEMO, rules=prepared_rules)


@pytest.fixture(scope="session")
def demo_out(runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `custody check sample_records/demo --out DIR` writes (every output), as of
    DEMO_AS_OF; tests only read it."""
    from custody import cli

    out = tmp_path_factory.mktemp("demo")
    with freezegun.freeze_time(DEMO_AS_OF):
        result = runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def messy_records() -> RecordSet:
    """sample_records/messy as loaded (tables and data quality); tests only read it."""
    from custody.read.loader import load_record_set

    return load_record_set(MESSY)


# ---------------------------------------------------------------- record sets written as CSV

Rows = Sequence[Sequence[str | None]]
DETENTION_HEADER = ("custody_record_id", "person_id", "date_of_birth", "detention_power", "arrival_time")
EVENT_HEADER = ("custody_record_id", "event_time", "event_type", "detail", "note")
# A complete detention row under DETENTION_HEADER: a 14-year-old arrested in July 2019.
GOOD = ("R1", "P1", "2005-03-01", "pace_arrest", "2019-07-01 12:00")


def write_csv(path: Path, header: Sequence[str], rows: Rows) -> Path:
    """A CSV exactly as a spreadsheet would export it (None -> empty field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    return path


RecordSetFactory = Callable[..., Path]


@pytest.fixture
def csv_record_set(tmp_path: Path) -> RecordSetFactory:
    """Write `records/detentions.csv` and `records/events.csv`; returns the folder."""

    def make(
        detentions: Rows,
        events: Rows = (),
        *,
        detention_header: Sequence[str] = DETENTION_HEADER,
        event_header: Sequence[str] = EVENT_HEADER,
        folder: str = "records",
    ) -> Path:
        root = tmp_path / folder
        write_csv(root / "detentions.csv", detention_header, detentions)
        write_csv(root / "events.csv", event_header, events)
        return root

    return make


# ---------------------------------------------------------------- a CheckResult from plain rows

FORMULA_PERSON = '=HYPERLINK("http://evil.example/x","click")'
FORMULA_RECORD = "+1"
FORMULA_MESSAGE = "@SUM(A1:A9) the custody officer wrote <script>alert(1)</script>"

RULES = [
    RuleInfo(
        "S38-REQUEST", "Local authority asked to accommodate", "statute", "high", "PACE 1984 s38(6)", ("1984-01-01",)
    ),
    RuleInfo(
        "S38-TRANSFER", "Moved to local authority accommodation", "statute", "high", "PACE 1984 s38(6)", ("1984-01-01",)
    ),
    RuleInfo("PACE-AA", "Appropriate adult informed", "code", "medium", "PACE Code C 3.15", ("2019-07-31",)),
    RuleInfo(
        "MHA-DURATION",
        "s136 detention within the permitted period",
        "statute",
        "high",
        "MHA 1983 s136(2A)",
        ("1983-09-30", "2017-12-11"),
    ),
]
RULE_INFO = {r.rule_id: r for r in RULES}


def at(text: str) -> dt.datetime:
    """A UTC instant from ISO text without an offset."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def finding(
    person: str, record: str, rule: str, outcome: str, trigger: str | None, message: str = "", evidence: str = "{}"
) -> dict[str, Any]:
    """One findings row of a rule in RULES; the message quotes the record id unless given."""
    info = RULE_INFO[rule]
    return {
        "person_id": person,
        "custody_record_id": record,
        "rule_id": rule,
        "outcome": outcome,
        "severity": info.severity,
        "basis": info.basis,
        "citation": info.citation,
        "rule_version": info.versions[-1],
        "message": message or f"{rule} was {outcome} on record {record}.",
        "evidence": evidence,
        "trigger_at": at(trigger) if trigger else None,
    }


def dq_row(**values: Any) -> dict[str, Any]:
    """One data-quality row: the columns given, the others missing."""
    row: dict[str, Any] = dict.fromkeys(DATA_QUALITY_SCHEMA.names())
    row.update(values)
    return row


def make_result(
    findings: list[dict[str, Any]],
    records: list[tuple[str, str, str | None, int]],
    data_quality: list[dict[str, Any]] | None = None,
    rules: list[RuleInfo] | None = None,
) -> CheckResult:
    """A CheckResult from plain rows, in the contract schemas. `records` rows are
    (person_id, custody_record_id, arrival UTC ISO or None, rules_applied)."""
    findings_frame = pl.DataFrame(findings, schema=FINDINGS_SCHEMA)
    records_frame = pl.DataFrame(
        [
            {"person_id": p, "custody_record_id": r, "arrival_time": at(a) if a else None, "rules_applied": n}
            for p, r, a, n in records
        ],
        schema={
            "person_id": pl.String,
            "custody_record_id": pl.String,
            "arrival_time": pl.Datetime("us", "UTC"),
            "rules_applied": pl.Int64,
        },
    )
    quality = pl.DataFrame(data_quality or [], schema=DATA_QUALITY_SCHEMA)
    return CheckResult(
        findings=findings_frame,
        data_quality=quality,
        records=records_frame,
        headline={
            "children_detained": 4,
            "records": len(records),
            "charged_and_refused_bail": 1,
            "requests_made": 0,
            "moved": 1,
            "certificates": 0,
            "s136_police_station_uses": 0,
        },
        rules=list(RULES if rules is None else rules),
        meta={
            "tool_version": "0.1.0",
            "rules_digest": "sha256:rules",
            "inputs_digest": "sha256:inputs",
            "as_of": "2024-01-01T00:00:00Z",
            "run_seconds": 0.5,
            "counts": {"detention_rows": len(records), "event_rows": 10, "children": 4},
        },
    )


@pytest.fixture
def result() -> CheckResult:
    """Seven findings for four children (C1 across the October 2019 clock change, C2 with
    only compliant and cannot_assess, C3 an adult no rule applied to, and a child whose ids
    and message hold formula text), and three data-quality rows."""
    findings = [
        # C1, first record: arrival in BST (the night before the October 2019 clock change)
        finding("C1", "R1", "S38-REQUEST", "breach", "2019-10-26T22:00:00"),
        finding("C1", "R1", "S38-TRANSFER", "compliant", "2019-10-26T22:00:00"),
        finding("C1", "R1", "PACE-AA", "cannot_assess", "2019-10-26T20:05:00"),
        # C1, second record: after the change, GMT
        finding("C1", "R2", "PACE-AA", "compliant", "2019-10-27T01:35:00"),
        # C2: compliant and cannot_assess only
        finding("C2", "R3", "PACE-AA", "compliant", "2020-03-01T10:00:00"),
        finding("C2", "R6", "PACE-AA", "cannot_assess", None),
        # formula text in ids and message
        finding(
            FORMULA_PERSON, FORMULA_RECORD, "PACE-AA", "breach", "2021-06-01T12:00:00", FORMULA_MESSAGE, '{"a": "-2"}'
        ),
    ]
    records = [
        ("C1", "R1", "2019-10-26T20:00:00", 3),
        ("C1", "R2", "2019-10-27T01:30:00", 1),
        ("C2", "R3", "2020-03-01T09:00:00", 1),
        ("C2", "R6", None, 1),
        ("C3", "R4", "2022-02-02T02:02:00", 0),  # an adult: no rule applied
        (FORMULA_PERSON, FORMULA_RECORD, "2021-06-01T11:00:00", 1),
    ]
    quality = [
        dq_row(
            file="detentions.csv",
            table="detentions",
            row=7,
            column="date_of_birth",
            value="-2",
            reason="bad date",
            action="value_unusable",
            custody_record_id="R3",
        ),
        dq_row(
            file="events.csv",
            table="events",
            row=3,
            column="event_type",
            value="=cmd|' /C calc'!A0",
            reason="unknown event type",
            action="row_rejected",
            custody_record_id="R1",
            event_type="=cmd",
        ),
        dq_row(
            file="events.csv",
            table="events",
            row=4,
            column="event_time",
            value="31/02/2020 10:00",
            reason="bad date",
            action="row_rejected",
            custody_record_id="R9",
            event_type="review",
        ),
    ]
    return make_result(findings, records, quality)
