"""report.html: the check's results for people (an inspector, a custody lead, a court).

One self-contained page: inline CSS and inline SVG charts, no scripts, no fonts, images
or anything else fetched from a network (a Content-Security-Policy says so to the
browser), so it can be e-mailed, archived, printed on A4 and opened offline. It is
rendered by Jinja2 from the templates in `custody/render/templates/`, with autoescape:
every value that comes from data is escaped. The first screen is what an inspection
presents: the period and forces covered, the s38(6) funnel, and outcomes per rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined

from custody.contract import UK_TZ, Outcome
from custody.findings import (
    BREAKDOWNS,
    HEADLINE_LABELS,
    STATISTICS_COLUMNS,
    STRIP_SEARCH_RULE,
    UK_HUMAN_FORMAT,
    CheckResult,
    breakdown,
    data_quality_by_issue,
    data_quality_frame,
    duration_bins,
    exception_table,
    funnel,
    rates_over_time,
    record_context,
    record_outcomes,
    records_without_applicable_rule,
    rule_rates,
    statistics_table,
)
from custody.render import charts

MAX_EXCEPTION_ROWS = 100
"""Findings shown in the report's exception list; the rest are in exceptions.csv/.xlsx."""
MAX_DATA_QUALITY_ROWS = 50
"""Data-quality groups (column and issue) shown; all rows are in data_quality.csv."""
FIRST_DATA_QUALITY_ROWS = 20
"""Data-quality rows shown as examples under the groups."""
MAX_GROUP_ROWS = 25
"""Rows of a breakdown table or chart (most records first); the rest are summed as "others"."""

AA_WAIT_EDGES = (1.0, 2.0, 4.0, 8.0, 12.0, 24.0)
REFUSAL_TO_MOVE_EDGES = (2.0, 4.0, 8.0, 16.0, 24.0)

TITLE = "Children in police custody: records checked against the law"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("custody.render", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["n"] = _n
    environment.filters["pct"] = _pct
    return environment


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return f"{int(value):,}"


def _pct(value: Any) -> str:
    if value is None:
        return "–"
    share = float(value)
    if 0 < share < 0.01:
        return "<1%"
    return f"{share:.0%}"


@dataclass(frozen=True)
class Finding:
    rule_id: str
    outcome: str
    when: str
    message: str
    citation: str
    note: str | None


@dataclass(frozen=True)
class RecordGroup:
    anchor: str
    custody_record_id: str
    description: str
    findings: list[Finding]


@dataclass(frozen=True)
class ChildGroup:
    anchor: str
    person_id: str
    breaches: int
    cannot_assess: int
    records: list[RecordGroup]


def _anchor(prefix: str, value: str, taken: set[str]) -> str:
    """An HTML id for a child or record: its id with anything but letters, digits, `-`, `_`
    and `.` as `_`, numbered if that is already taken."""
    base = f"{prefix}-{re.sub(r'[^A-Za-z0-9_.-]', '_', value)}"
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


def _uk_text(instant: pl.Expr) -> pl.Expr:
    return instant.dt.convert_time_zone(UK_TZ).dt.strftime("%Y-%m-%d %H:%M %Z")


def _exception_groups(table: pl.DataFrame, max_rows: int) -> list[ChildGroup]:
    """The first `max_rows` exceptions grouped by child, then record (in the table's order)."""
    # Times are formatted by polars: no datetime object is made in Python.
    shown = table.head(max_rows).with_columns(
        _uk_text(pl.col("occasion_at")).alias("occasion_at"), _uk_text(pl.col("arrival_at")).alias("arrival_at")
    )
    with_note = "certificate_note" in shown.columns
    children: dict[str, ChildGroup] = {}
    records: dict[tuple[str, str], RecordGroup] = {}
    counts: dict[str, list[int]] = {}
    taken: set[str] = set()
    for row in shown.iter_rows(named=True):
        person = str(row["person_id"])
        record = str(row["custody_record_id"])
        if person not in children:
            children[person] = ChildGroup(_anchor("child", person, taken), person, 0, 0, [])
            counts[person] = [0, 0]
        if (person, record) not in records:
            parts = [str(row[c]) for c in ("force", "custody_suite") if row[c]]
            if row["arrival_at"] is not None:
                parts.append(f"arrived {row['arrival_at']}")
            if row["age_at_occasion"] is not None:
                parts.append(f"aged {row['age_at_occasion']}")
            if row["looked_after"]:
                parts.append("looked after")
            group = RecordGroup(_anchor("record", record, taken), record, " · ".join(parts), [])
            records[(person, record)] = group
            children[person].records.append(group)
        outcome = str(row["outcome"])
        counts[person][0 if outcome == Outcome.breach.value else 1] += 1
        records[(person, record)].findings.append(
            Finding(
                rule_id=str(row["rule_id"]),
                outcome=outcome,
                when=str(row["occasion_at"] or ""),
                message=str(row["message"] or ""),
                citation=str(row["citation"] or ""),
                note=str(row["certificate_note"]) if with_note and row["certificate_note"] else None,
            )
        )
    return [ChildGroup(g.anchor, g.person_id, counts[p][0], counts[p][1], g.records) for p, g in children.items()]


INTERVIEW_RULE = "PACE-INTERVIEW-AA"
STRIP_SEARCH_DIMENSION_LABELS = {"all": "All", "age": "Age at arrival", "sex": "Sex", "ethnicity": "Ethnicity"}


def _safeguards(result: CheckResult, rates: pl.DataFrame) -> dict[str, Any]:
    """Strip searches and interviews of children (contract v1.1): how many, with the outcome
    of each, and the strip searches by age, sex and ethnicity as the Home Office collects them."""
    per_rule = {row["rule_id"]: row for row in rates.iter_rows(named=True)}
    totals = [
        {"rule_id": rule_id, "what": what, **per_rule[rule_id]}
        for rule_id, what in ((STRIP_SEARCH_RULE, "strip searches"), (INTERVIEW_RULE, "interviews"))
        if rule_id in per_rule
    ]
    figures = result.strip_searches
    rows = [
        {**row, "dimension": STRIP_SEARCH_DIMENSION_LABELS.get(str(row["dimension"]), row["dimension"])}
        for row in (figures.iter_rows(named=True) if figures is not None else [])
    ]
    return {"totals": totals, "figures": rows}


def _capped(table: pl.DataFrame, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` rows as dicts, and how many more there are."""
    return table.head(limit).to_dicts(), max(table.height - limit, 0)


def _coverage(result: CheckResult, context: pl.DataFrame) -> dict[str, Any]:
    arrivals = context.select(
        pl.col("arrival_time").dt.convert_time_zone(UK_TZ).min().dt.strftime("%-d %B %Y").alias("first"),
        pl.col("arrival_time").dt.convert_time_zone(UK_TZ).max().dt.strftime("%-d %B %Y").alias("last"),
    ).row(0, named=True)
    forces = context.get_column("force").drop_nulls().unique().sort().to_list()
    suites = context.get_column("custody_suite").drop_nulls().n_unique()
    return {
        "first": arrivals["first"],
        "last": arrivals["last"],
        "forces": forces,
        "suites": suites,
    }


def _rule_chart(rates: pl.DataFrame) -> charts.HorizontalBars:
    rows = []
    for row in rates.iter_rows(named=True):
        total = row["findings"]
        segments = [
            (row["breach"] / total if total else 0.0, "breach", f"{row['breach']:,} breach"),
            (
                row["cannot_assess"] / total if total else 0.0,
                "cannot_assess",
                f"{row['cannot_assess']:,} cannot assess",
            ),
            (row["compliant"] / total if total else 0.0, "compliant", f"{row['compliant']:,} compliant"),
        ]
        text = f"{_pct(row['breach_rate'])} breach of {total:,}" if total else "did not apply"
        rows.append((row["rule_id"], segments, text))
    return charts.horizontal_bars(
        "Outcomes per rule (share of each rule's findings)",
        rows,
        scale_max=1.0,
        legend=(("breach", "breach"), ("cannot_assess", "cannot assess"), ("compliant", "compliant")),
    )


def _share_chart(title: str, table: pl.DataFrame) -> charts.HorizontalBars:
    rows = [
        (
            str(row["group"]),
            [(row["share_records_with_breach"] or 0.0, "breach", f"{row['records_with_breach']:,} records")],
            f"{_pct(row['share_records_with_breach'])} of {row['records']:,}",
        )
        for row in table.iter_rows(named=True)
    ]
    return charts.horizontal_bars(title, rows, scale_max=1.0)


def _funnel_chart(result: CheckResult) -> charts.HorizontalBars:
    steps = funnel(result)
    rows = [
        (
            step.short,
            [(float(step.count), "funnel", f"{step.count:,}")],
            f"{step.count:,} ({_pct(step.rate)})",
        )
        for step in steps
    ]
    return charts.horizontal_bars("The s38(6) funnel (custody records of children)", rows)


def _bins_chart(title: str, bins: list[tuple[str, int]]) -> charts.Columns:
    return charts.columns(title, [(label, float(n), f"{n:,}") for label, n in bins])


def _overnight_chart(overall: dict[str, Any], definition: str) -> charts.HorizontalBars:
    records = int(overall["records"] or 0)
    rows = [
        (
            "Pre-charge",
            [(float(overall["held_overnight_pre_charge"] or 0), "funnel", "")],
            f"{_n(overall['held_overnight_pre_charge'])} of {records:,}",
        ),
        (
            "Post-charge",
            [(float(overall["held_overnight_post_charge"] or 0), "funnel", "")],
            f"{_n(overall['held_overnight_post_charge'])} of {records:,}",
        ),
    ]
    return charts.horizontal_bars(
        f"Children's records held overnight ({definition})", rows, scale_max=float(max(records, 1))
    )


def _others(table: pl.DataFrame, limit: int) -> pl.DataFrame:
    """A breakdown cut to `limit` groups, the rest summed as one "others" row."""
    if table.height <= limit:
        return table
    rest = table.slice(limit)
    summed = rest.select(
        pl.lit(f"{rest.height:,} others").alias("group"),
        *(pl.col(c).sum() for c in ("children", "records", "findings", "breaches", "cannot_assess")),
        pl.col("records_with_breach").sum(),
    ).with_columns(
        (pl.col("breaches") / pl.col("findings")).alias("breach_rate"),
        (pl.col("records_with_breach") / pl.col("records")).alias("share_records_with_breach"),
    )
    return pl.concat([table.head(limit), summed.cast(table.schema)])


def _statistics_rows(table: pl.DataFrame, keys: Iterable[str]) -> list[dict[str, Any]]:
    keys = list(keys)
    return [
        {"group": " · ".join(str(row[k]) for k in keys), **{c: row[c] for c in STATISTICS_COLUMNS}}
        for row in table.head(MAX_GROUP_ROWS).iter_rows(named=True)
    ]


def render_html(
    result: CheckResult,
    *,
    max_exception_rows: int = MAX_EXCEPTION_ROWS,
    max_data_quality_rows: int = MAX_DATA_QUALITY_ROWS,
    exceptions: pl.DataFrame | None = None,
) -> str:
    """The whole report as one self-contained HTML document (`exceptions`: the exception
    table, `custody.findings.exception_table`, when the caller has it already)."""
    table = exception_table(result) if exceptions is None else exceptions
    context = record_context(result)
    outcomes = record_outcomes(result)
    rates = rule_rates(result)
    info = {rule.rule_id: rule for rule in result.rules}
    rules = [{**row, "rule": info.get(row["rule_id"])} for row in rates.iter_rows(named=True)]
    unit, over_time = rates_over_time(result)
    by = {name: breakdown(result, name, outcomes) for name in BREAKDOWNS}
    overall = statistics_table(result).row(0, named=True)
    definition = str(result.meta.get("held_overnight") or "definition not recorded")
    quality = data_quality_frame(result)
    issues, more_issues = _capped(data_quality_by_issue(quality), max_data_quality_rows)
    first_quality, _ = _capped(quality, min(max_data_quality_rows, FIRST_DATA_QUALITY_ROWS))
    total_exceptions = table.height
    exception_children = table.get_column("person_id").n_unique() if total_exceptions else 0
    headline = [
        (HEADLINE_LABELS.get(key, key.replace("_", " ").capitalize()), int(value))
        for key, value in result.headline.items()
    ]
    headline.append(("Records no rule applied to", records_without_applicable_rule(result)))
    page = {
        "title": TITLE,
        "meta": result.meta,
        "counts": result.meta.get("counts") if isinstance(result.meta.get("counts"), dict) else {},
        "coverage": _coverage(result, context),
        "funnel": funnel(result),
        "funnel_chart": _funnel_chart(result),
        "headline": headline,
        "rules": rules,
        "rule_chart": _rule_chart(rates),
        "safeguards": _safeguards(result, rates),
        "records_with_breach": int((outcomes.get_column("breaches") > 0).sum()),
        "records_assessed": int((outcomes.get_column("findings") > 0).sum()),
        "records_cannot_assess": int((outcomes.get_column("cannot_assess") > 0).sum()),
        "force_chart": _share_chart("Share of records with a breach, by force", _others(by["force"], MAX_GROUP_ROWS)),
        "suite_chart": _share_chart(
            "Share of records with a breach, by custody suite", _others(by["custody_suite"], MAX_GROUP_ROWS)
        ),
        "time_unit": unit,
        "time_chart": charts.columns(
            f"Breach rate by {unit} (share of findings, by the time of the occasion)",
            [
                (row["period"], row["breach_rate"] or 0.0, _pct(row["breach_rate"]))
                for row in over_time.iter_rows(named=True)
            ],
            percent_axis=True,
        ),
        "over_time": over_time.to_dicts(),
        "breakdowns": [
            {"key": name, "title": title, "rows": _others(by[name], MAX_GROUP_ROWS).to_dicts()}
            for name, title in BREAKDOWNS.items()
        ],
        "definition": definition,
        "overall": overall,
        "overnight_chart": _overnight_chart(overall, definition),
        "aa_chart": _bins_chart(
            "Time from asking for the appropriate adult to their arrival (children's records)",
            duration_bins(result, "aa_wait", AA_WAIT_EDGES),
        ),
        "move_chart": _bins_chart(
            "Time from refusal of bail to the move to local authority accommodation",
            duration_bins(result, "refusal_to_move", REFUSAL_TO_MOVE_EDGES),
        ),
        "statistics_columns": STATISTICS_COLUMNS,
        "statistics_by_force": _statistics_rows(statistics_table(result, ["force"]), ["force"]),
        "statistics_by_suite": _statistics_rows(
            statistics_table(result, ["force", "custody_suite"]), ["force", "custody_suite"]
        ),
        "exceptions": _exception_groups(table, max_exception_rows),
        "exceptions_total": total_exceptions,
        "exceptions_shown": min(total_exceptions, max_exception_rows),
        "exception_children": exception_children,
        "quality_rows": quality.height,
        "quality_issues": issues,
        "quality_more_issues": more_issues,
        "quality_first": first_quality,
        "max_group_rows": MAX_GROUP_ROWS,
        "uk_format": UK_HUMAN_FORMAT,
    }
    return _environment().get_template("report.html.j2").render(page=page)
