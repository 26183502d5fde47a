"""report.html: the check's results for people (an inspector, a custody lead, a court).

One self-contained page: inline CSS, no scripts, no fonts, images or anything else fetched
from a network, so it can be e-mailed, archived and opened offline. Every value that comes
from data is escaped with `html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from custody.contract import Outcome
from custody.findings import (
    HEADLINE_LABELS,
    STRIP_SEARCH_RULE,
    CheckResult,
    data_quality_by_reason,
    data_quality_frame,
    exceptions_frame,
    outcomes_per_rule,
    records_without_applicable_rule,
)

MAX_EXCEPTION_ROWS = 5_000
MAX_DATA_QUALITY_ROWS = 200


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #1b1f24; margin: 2rem auto; max-width: 78rem; padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; }
p.lead { color: #57606a; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #f0f3f6; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta { width: auto; }
table.meta th { position: static; }
.figures { display: flex; flex-wrap: wrap; gap: .6rem; margin: .5rem 0; }
.figure { border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .8rem; min-width: 10rem; }
.figure .n { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure .label { color: #57606a; font-size: .85rem; }
.breach { color: #b42318; font-weight: 600; }
.cannot_assess { color: #9a6700; font-weight: 600; }
.compliant { color: #1a7f37; }
td.msg { max-width: 40rem; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; word-break: break-all; }
code.id { word-break: normal; white-space: nowrap; }
.note { color: #57606a; font-size: .9rem; }
@media print { th { position: static; } body { margin: 0; max-width: none; } }
"""


def _e(value: Any) -> str:
    """The value as escaped HTML text; a missing value as an empty cell."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    column_class: dict[int, str] | None = None,
    css_class: str = "",
    header: bool = True,
) -> str:
    """A table from already-escaped cell HTML; `column_class` styles columns by position."""
    classes = column_class or {}

    def cell(tag: str, i: int, content: str) -> str:
        return f'<{tag} class="{classes[i]}">{content}</{tag}>' if i in classes else f"<{tag}>{content}</{tag}>"

    head = "<thead><tr>" + "".join(cell("th", i, _e(h)) for i, h in enumerate(headers)) + "</tr></thead>"
    body = "\n".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    class_attr = f' class="{css_class}"' if css_class else ""
    return f"<table{class_attr}>{head if header else ''}\n<tbody>\n{body}\n</tbody></table>"


def _outcome(value: Any) -> str:
    text = _e(value)
    if value in (Outcome.breach.value, Outcome.cannot_assess.value, Outcome.compliant.value):
        return f'<span class="{text}">{text}</span>'
    return text


def _metadata(result: CheckResult) -> str:
    meta = result.meta
    rows: list[tuple[str, str]] = [
        ("Tool version", _e(meta.get("tool_version"))),
        ("Rules digest", f"<code>{_e(meta.get('rules_digest'))}</code>"),
        ("Inputs digest", f"<code>{_e(meta.get('inputs_digest'))}</code>"),
    ]
    counts = meta.get("counts")
    if isinstance(counts, dict):
        for key in sorted(counts, key=str):
            rows.append((str(key).replace("_", " ").capitalize(), _e(counts[key])))
    return _table(("", ""), ((f"<strong>{_e(k)}</strong>", v) for k, v in rows), css_class="meta", header=False)


def _headline(result: CheckResult) -> str:
    figures = []
    for key, value in result.headline.items():
        label = HEADLINE_LABELS.get(key, key.replace("_", " ").capitalize())
        figures.append(
            f'<div class="figure"><div class="n">{_e(_n(int(value)))}</div><div class="label">{_e(label)}</div></div>'
        )
    without_rule = records_without_applicable_rule(result)
    figures.append(
        f'<div class="figure"><div class="n">{_e(_n(without_rule))}</div>'
        f'<div class="label">Records no rule applied to</div></div>'
    )
    return f'<div class="figures">{"".join(figures)}</div>'


def _rules(result: CheckResult) -> str:
    per_rule = outcomes_per_rule(result)
    info = {rule.rule_id: rule for rule in result.rules}
    rows = []
    for rule_id, counts in per_rule.items():
        rule = info.get(rule_id)
        breach = counts[Outcome.breach.value]
        cannot = counts[Outcome.cannot_assess.value]
        rows.append(
            (
                f'<code class="id">{_e(rule_id)}</code>',
                _e(rule.title if rule else ""),
                _e(rule.basis if rule else ""),
                _e(rule.severity if rule else ""),
                _e(rule.citation if rule else ""),
                _e(", ".join(rule.versions) if rule else ""),
                f'<span class="breach">{_n(breach)}</span>' if breach else "0",
                f'<span class="cannot_assess">{_n(cannot)}</span>' if cannot else "0",
                _n(counts[Outcome.compliant.value]),
            )
        )
    return _table(
        ("Rule", "Checks", "Basis", "Severity", "Law", "Versions", "Breach", "Cannot assess", "Compliant"),
        rows,
        column_class={6: "num", 7: "num", 8: "num"},
    )


INTERVIEW_RULE = "PACE-INTERVIEW-AA"
STRIP_SEARCH_DIMENSION_LABELS = {"all": "All", "age": "Age at arrival", "sex": "Sex", "ethnicity": "Ethnicity"}


def _strip_searches_and_interviews(result: CheckResult) -> str:
    """Strip searches and interviews of children (contract v1.1): how many, with the outcome
    of each, and the strip searches by age, sex and ethnicity as the Home Office collects them."""
    per_rule = outcomes_per_rule(result)
    lines = []
    for rule_id, what in ((STRIP_SEARCH_RULE, "strip searches"), (INTERVIEW_RULE, "interviews")):
        counts = per_rule.get(rule_id)
        if counts is None:
            continue
        lines.append(
            f"{_n(sum(counts.values()))} {what} of children ({_n(counts[Outcome.breach.value])} without the"
            f" appropriate adult and no lawful exception, {_n(counts[Outcome.cannot_assess.value])} that could not be"
            f' assessed; <code class="id">{_e(rule_id)}</code>).'
        )
    intro = f'<p class="note">{" ".join(lines)} Per child: children.csv (strip_searches, interviews).</p>'
    figures = result.strip_searches
    if figures is None or figures.height == 0:
        return intro + '\n<p class="note">No strip search of a child is recorded.</p>'
    rows = [
        (
            _e(STRIP_SEARCH_DIMENSION_LABELS.get(str(row["dimension"]), row["dimension"])),
            _e(row["value"]),
            _n(int(row["searches"])),
            _n(int(row["children"])),
            f'<span class="breach">{_n(int(row["breach"]))}</span>' if row["breach"] else "0",
            f'<span class="cannot_assess">{_n(int(row["cannot_assess"]))}</span>' if row["cannot_assess"] else "0",
            _n(int(row["compliant"])),
        )
        for row in figures.iter_rows(named=True)
    ]
    table = _table(
        ("By", "Group", "Strip searches", "Children", "Breach", "Cannot assess", "Compliant"),
        rows,
        column_class={2: "num", 3: "num", 4: "num", 5: "num", 6: "num"},
    )
    return intro + "\n" + table


def _exceptions(result: CheckResult, max_rows: int, exceptions: pl.DataFrame | None = None) -> str:
    exceptions = exceptions_frame(result) if exceptions is None else exceptions
    total = exceptions.height
    if total == 0:
        return '<p class="note">No breaches and nothing that could not be assessed.</p>'
    shown = exceptions.head(max_rows)
    outcome_col = shown.columns.index("Outcome")
    message_col = shown.columns.index("What was found")
    rows = []
    for row in shown.iter_rows():
        cells = [_e(v) for v in row]
        cells[outcome_col] = _outcome(row[outcome_col])
        rows.append(cells)
    table = _table(shown.columns, rows, column_class={message_col: "msg"})
    intro = f'<p class="note">{_n(total)} findings need case review, by child then time.'
    if total > max_rows:
        intro += (
            f" The first {_n(max_rows)} are shown here; the other {_n(total - max_rows)} are in"
            " exceptions.csv and exceptions.xlsx (and every finding is in findings.csv)."
        )
    return intro + "</p>\n" + table


def _data_quality(result: CheckResult, max_rows: int) -> str:
    quality = data_quality_frame(result)
    if quality.height == 0:
        return '<p class="note">Every input row and value could be used.</p>'
    actions = (
        quality.group_by(pl.col("reason").fill_null("(no reason given)"))
        .agg(pl.col("action").drop_nulls().unique().sort().str.join(", "))
        .rows()
    )
    action_by_reason = {str(reason): str(action) for reason, action in actions}
    by_reason = _table(
        ("Reason", "Rows", "What happened"),
        (
            (_e(reason), _n(n), _e(action_by_reason.get(reason, "")))
            for reason, n in data_quality_by_reason(result).items()
        ),
        column_class={1: "num"},
    )
    shown = quality.head(max_rows)
    first = _table(shown.columns, ([_e(v) for v in row] for row in shown.iter_rows()))
    more = ""
    if quality.height > max_rows:
        more = (
            f'<p class="note">The first {_n(max_rows)} of {_n(quality.height)} rows are shown;'
            " all are in data_quality.csv.</p>"
        )
    return (
        f'<p class="note">{_n(quality.height)} input rows or values could not be used as given.</p>\n'
        f"{by_reason}\n<h3>First rows</h3>\n{more}{first}"
    )


def render_html(
    result: CheckResult,
    *,
    max_exception_rows: int = MAX_EXCEPTION_ROWS,
    max_data_quality_rows: int = MAX_DATA_QUALITY_ROWS,
    exceptions: pl.DataFrame | None = None,
) -> str:
    """The whole report as one self-contained HTML document (`exceptions`: the exception list,
    when the caller has it already)."""
    title = "Children in police custody: records checked against the law"
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="lead">PACE 1984, PACE Code C and the Mental Health Act 1983, applied to each custody record
in the version in force at the time. Findings are for case review: a breach is what the record shows,
not a finding of fact.</p>

<h2>Run</h2>
{_metadata(result)}

<h2>Headline figures</h2>
{_headline(result)}

<h2>Outcomes per rule</h2>
{_rules(result)}

<h2>Strip searches and interviews of children</h2>
{_strip_searches_and_interviews(result)}

<h2>Exceptions</h2>
{_exceptions(result, max_exception_rows, exceptions)}

<h2>Data quality</h2>
{_data_quality(result, max_data_quality_rows)}
</body>
</html>
"""
