"""The compact terminal summary printed after `custody check`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custody.contract import Outcome
from custody.findings import HEADLINE_LABELS, CheckResult, outcomes_per_rule, records_without_applicable_rule


def _count(n: int, style: str) -> str:
    return f"[{style}]{n:,}[/{style}]" if n else "0"


def print_summary(console: Console, result: CheckResult, written: list[Path]) -> None:
    """Headline figures, outcomes per rule (breach red, cannot_assess yellow), data quality,
    and where the outputs were written."""
    headline = Table(title="Headline figures", title_justify="left", show_header=False, box=None)
    headline.add_column("figure")
    headline.add_column("n", justify="right")
    for key, value in result.headline.items():
        headline.add_row(escape(HEADLINE_LABELS.get(key, key.replace("_", " "))), f"{int(value):,}")
    headline.add_row("Records no rule applied to", f"{records_without_applicable_rule(result):,}")
    console.print(headline)

    rules = Table(title="Outcomes per rule", title_justify="left")
    rules.add_column("Rule")
    rules.add_column("Breach", justify="right")
    rules.add_column("Cannot assess", justify="right")
    rules.add_column("Compliant", justify="right")
    total = {o.value: 0 for o in Outcome}
    for rule_id, counts in outcomes_per_rule(result).items():
        for outcome, n in counts.items():
            total[outcome] += n
        rules.add_row(
            escape(rule_id),
            _count(counts[Outcome.breach.value], "bold red"),
            _count(counts[Outcome.cannot_assess.value], "yellow"),
            f"{counts[Outcome.compliant.value]:,}",
        )
    rules.add_section()
    rules.add_row(
        "[bold]Total[/bold]",
        _count(total[Outcome.breach.value], "bold red"),
        _count(total[Outcome.cannot_assess.value], "yellow"),
        f"{total[Outcome.compliant.value]:,}",
    )
    console.print(rules)

    quality = result.data_quality.height
    if quality:
        console.print(f"[yellow]{quality:,} input rows or values could not be used[/yellow] (see data_quality.csv).")
    else:
        console.print("Every input row and value could be used.")

    if written:
        folders = sorted({str(path.parent) for path in written})
        names = ", ".join(escape(path.name) for path in written)
        console.print(f"Wrote {names} to {escape(', '.join(folders))}")
