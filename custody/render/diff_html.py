"""diff.html: two runs compared, for people (an inspector back a year later, a rules owner).

One self-contained page, like report.html: inline CSS, no scripts, nothing fetched (a strict
Content-Security-Policy says so to the browser). Rendered from a Jinja2 template with
autoescape on, so every value that comes from data is escaped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from custody.compare import REPORTED_STATUSES, Comparison
from custody.contract import UK_TZ

MAX_ROWS = 5_000
_TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _funnel(comparison: Comparison) -> list[dict[str, Any]]:
    rows = []
    for key, label, before, after in comparison.headlines():
        rows.append({"key": key, "label": label, "before": before, "after": after, "change": after - before})
    return rows


def _rows(frame: pl.DataFrame, max_rows: int) -> list[dict[str, Any]]:
    shown = frame.head(max_rows).with_columns(
        pl.col("trigger_at").dt.convert_time_zone(UK_TZ).dt.strftime("%Y-%m-%d %H:%M %Z").alias("when_uk")
    )
    return list(shown.iter_rows(named=True))


def render_diff_html(comparison: Comparison, *, title: str | None = None, max_rows: int = MAX_ROWS) -> str:
    """The whole comparison as one self-contained HTML document."""
    reported = comparison.reported()
    children = comparison.children()
    template = _environment().get_template("diff.html.j2")
    return template.render(
        title=title or "Children in police custody: two runs compared",
        css=(_TEMPLATES / "diff.css").read_text(encoding="utf-8"),
        before=comparison.before,
        after=comparison.after,
        counts=comparison.counts(),
        statuses=REPORTED_STATUSES,
        per_rule=comparison.counts_by("rule_id"),
        per_force=comparison.counts_by("force"),
        funnel=_funnel(comparison),
        children=list(children.head(max_rows).iter_rows(named=True)),
        total_children=children.height,
        rows=_rows(reported, max_rows),
        total_rows=reported.height,
        max_rows=max_rows,
        message_only=comparison.changed_messages(),
    )
