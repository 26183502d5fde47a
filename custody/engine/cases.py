"""Run the test cases that each rule file carries, without pytest.

All cases of the selected rules become one record set (ids prefixed so they
cannot collide), loaded through the real loader from CSV so that cases see
exactly what users' extracts see, and evaluated in one pass.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import polars as pl

from custody.contract import DETENTION_COLUMNS, EVENT_COLUMNS
from custody.engine.compile import CompiledRule
from custody.engine.evaluate import evaluate
from custody.engine.rulefile import RuleFileError, RuleSet
from custody.facts import build_facts

_TIME_TOKEN = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?$")
SEPARATOR = "~"


@dataclass(frozen=True)
class CaseResult:
    rule_id: str
    case: str
    record: str
    expected: str
    actual: str
    message: str
    trigger_at: dt.datetime | None
    message_contains: str | None = None
    evidence: str = ""
    """The finding's evidence (JSON), shown beside a failure so that its author sees the facts."""

    @property
    def passed(self) -> bool:
        return not self.differences

    @property
    def differences(self) -> list[str]:
        """What differs from the case's expectation, one phrase each (empty when it passed):
        the outcome, and the message when the case says what it must contain."""
        found = []
        if self.expected != self.actual:
            found.append(f"expected {self.expected}, got {self.actual}")
        if self.message_contains is not None and self.message_contains not in self.message:
            same = " (the outcome is as expected)" if self.expected == self.actual else ""
            found.append(f"message lacks {self.message_contains!r}{same}")
        return found

    @property
    def test_id(self) -> str:
        return f"{self.rule_id}::{self.case}::{self.record}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def parse_event_line(line: str) -> dict[str, str]:
    """`2015-07-01 14:00 la_requested secure` -> the events columns."""
    tokens = line.split()
    if len(tokens) >= 2 and _TIME_TOKEN.match(tokens[1]):
        tokens = [f"{tokens[0]} {tokens[1]}", *tokens[2:]]
    if len(tokens) not in (2, 3):
        raise ValueError(f"event line {line!r} is not 'TIME TYPE [DETAIL]'")
    return {"event_time": tokens[0], "event_type": tokens[1], "detail": tokens[2] if len(tokens) == 3 else ""}


@dataclass(frozen=True)
class _Planned:
    rule_id: str
    case: str
    record: str
    expected: str
    message_contains: str | None


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)


def run_cases(rule_set: RuleSet, rules: list[CompiledRule]) -> list[CaseResult]:
    """Run every case of `rules`; one result per case record."""
    from custody.read.loader import load_record_set  # the loader imports nothing of the engine

    detentions: list[dict[str, str]] = []
    events: list[dict[str, str]] = []
    planned: dict[str, _Planned] = {}
    extra_columns: list[str] = []
    for compiled in rules:
        rule = compiled.source.rule
        for c, case in enumerate(rule.cases):
            for r, record in enumerate(case.records):
                row = {k: _text(v) for k, v in {**rule.case_defaults, **record.detention}.items()}
                local_id = row.get("custody_record_id") or f"R{r + 1}"
                key = SEPARATOR.join((rule.id, str(c), local_id))
                row["custody_record_id"] = key
                row["person_id"] = SEPARATOR.join((rule.id, str(c), row.get("person_id") or f"P{r + 1}"))
                extra_columns += [k for k in row if k not in extra_columns]
                detentions.append(row)
                planned[key] = _Planned(rule.id, case.name, local_id, record.expect, record.message_contains)
                for e, event in enumerate(record.events):
                    try:
                        fields = (
                            parse_event_line(event)
                            if isinstance(event, str)
                            else {k: _text(v) for k, v in event.items()}
                        )
                    except ValueError as exc:
                        line = compiled.source.line("cases", c, "records", r, "events", e)
                        raise RuleFileError(compiled.source.path, str(exc), line) from None
                    events.append({**fields, "custody_record_id": key})
    if not planned:
        return []
    detention_columns = [c.name for c in DETENTION_COLUMNS]
    detention_columns += [c for c in extra_columns if c not in detention_columns]
    event_columns = [c.name for c in EVENT_COLUMNS]
    with tempfile.TemporaryDirectory(prefix="custody-cases-") as folder:
        _write(Path(folder) / "detentions.csv", detention_columns, detentions)
        _write(Path(folder) / "events.csv", event_columns, events)
        records = load_record_set(Path(folder))
    facts = build_facts(records.detentions, records.events, records.taint(), rule_set.settings).collect()
    findings = evaluate(facts, rules).with_columns(pl.col("rule_id").cast(pl.String))
    # The trigger instant of every case record, whether or not the rule applied (for lint).
    triggers = pl.concat(
        [
            facts.filter(pl.col("custody_record_id").str.starts_with(rule.rule_id + SEPARATOR)).select(
                "custody_record_id", rule.trigger.expr.alias("case_trigger_at")
            )
            for rule in rules
        ]
    )
    wanted = pl.DataFrame({"custody_record_id": list(planned), "rule_id": [p.rule_id for p in planned.values()]})
    found = wanted.join(findings, on=["custody_record_id", "rule_id"], how="left", maintain_order="left").join(
        triggers, on="custody_record_id", how="left", maintain_order="left"
    )
    results = []
    for row in found.iter_rows(named=True):
        trigger_at = cast("dt.datetime | None", row["case_trigger_at"])
        plan = planned[row["custody_record_id"]]
        results.append(
            CaseResult(
                rule_id=plan.rule_id,
                case=plan.case,
                record=plan.record,
                expected=plan.expected,
                actual=row["outcome"] or "none",
                message=row["message"] or "",
                trigger_at=trigger_at,
                message_contains=plan.message_contains,
                evidence=row["evidence"] or "",
            )
        )
    return results
