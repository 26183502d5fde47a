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
from custody.engine.compile import CompiledRule, occasion_facts
from custody.engine.evaluate import evaluate
from custody.engine.rulefile import RuleFileError, RuleSet
from custody.facts import build_fact_tables

_TIME_TOKEN = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?$")
SEPARATOR = "~"


@dataclass(frozen=True)
class CaseResult:
    """One case record's result. For a rule with occasions, `expected` and `actual` list one
    outcome per occasion of the record, in order (`breach, compliant`), and `message` joins
    their messages with ` | `."""

    rule_id: str
    case: str
    record: str
    expected: str
    actual: str
    message: str
    trigger_at: dt.datetime | None
    message_contains: str | None = None
    triggers: tuple[dt.datetime | None, ...] = ()
    """The trigger instant of each occasion (one for a rule without occasions)."""
    expected_each: tuple[str, ...] = ()
    """The outcome expected of each occasion."""

    @property
    def passed(self) -> bool:
        if self.expected != self.actual:
            return False
        return self.message_contains is None or self.message_contains in self.message

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
    expected: tuple[str, ...]
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
                expect = tuple(map(str, record.expect if isinstance(record.expect, list) else [record.expect]))
                planned[key] = _Planned(rule.id, case.name, local_id, expect, record.message_contains)
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
    tables = build_fact_tables(
        records.detentions,
        records.events,
        records.taint(),
        rule_set.settings,
        occasions=occasion_facts(rules),
    )
    findings = evaluate(tables, rules).with_columns(pl.col("rule_id").cast(pl.String))
    # Each case record's occasions (one per record for a rule without), with the trigger
    # instant of each, whether or not the rule applied (lint checks the dates cases cover).
    triggers = pl.concat(
        [
            (tables.records if rule.grain is None else tables.occasions[rule.grain])
            .filter(pl.col("custody_record_id").str.starts_with(rule.rule_id + SEPARATOR))
            .select("custody_record_id", pl.lit(rule.rule_id).alias("rule_id"), rule.trigger.expr.alias("trigger_at"))
            for rule in rules
        ]
    )
    # One row per (record, rule, occasion): its finding if the rule applied. An occasion is
    # told apart by its trigger instant (the same key as the findings').
    joined = triggers.join(
        findings.select("custody_record_id", "rule_id", "trigger_at", "outcome", "message"),
        on=["custody_record_id", "rule_id", "trigger_at"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    by_record: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in joined.iter_rows(named=True):
        by_record.setdefault((row["custody_record_id"], row["rule_id"]), []).append(row)
    results = []
    for key, plan in planned.items():
        rows = by_record.get((key, plan.rule_id), [])
        actual = tuple(cast("str | None", r["outcome"]) or "none" for r in rows)
        triggers_of = tuple(cast("dt.datetime | None", r["trigger_at"]) for r in rows)
        messages = [cast("str | None", r["message"]) or "" for r in rows]
        results.append(
            CaseResult(
                rule_id=plan.rule_id,
                case=plan.case,
                record=plan.record,
                expected=", ".join(plan.expected),
                actual=", ".join(actual) or "none",
                message=" | ".join(m for m in messages if m),
                trigger_at=triggers_of[0] if triggers_of else None,
                message_contains=plan.message_contains,
                triggers=triggers_of,
                expected_each=plan.expected,
            )
        )
    return results
