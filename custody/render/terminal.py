"""What `custody check` prints: progress while it runs (on stderr, only on a terminal) and
a compact summary after it (fits 80 columns): headline figures, the s38(6) funnel, outcomes
per rule with the breach rate, data quality by column and issue, and where the outputs went."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from custody.contract import Outcome
from custody.findings import (
    HEADLINE_LABELS,
    CheckResult,
    data_quality_by_issue,
    funnel,
    outcomes_per_rule,
    records_without_applicable_rule,
)

# Data-quality groups listed on the terminal (the rest are counted; all are in the report).
MAX_QUALITY_GROUPS = 5


@contextmanager
def progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A callable that shows the stage of a run (its text carries the counts: records,
    rules, batches) with a spinner and the time elapsed, on `console` while the block runs,
    then clears it. Nothing is shown when the console is not a terminal (a pipe, a log)."""
    if not console.is_terminal or console.quiet:
        yield lambda _stage: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("Starting…", total=None)
        yield lambda stage: bar.update(task, description=escape(f"{stage}…"))


def _count(n: int, style: str) -> str:
    return f"[{style}]{n:,}[/{style}]" if n else "0"


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def print_summary(console: Console, result: CheckResult, written: list[Path]) -> None:
    """Headline figures, the funnel, outcomes per rule (breach red, cannot_assess yellow),
    data quality by column and issue, and where the outputs were written."""
    headline = Table(title="Headline figures", title_justify="left", show_header=False, box=None)
    headline.add_column("figure")
    headline.add_column("n", justify="right")
    for key, value in result.headline.items():
        headline.add_row(escape(HEADLINE_LABELS.get(key, key.replace("_", " "))), f"{int(value):,}")
    headline.add_row("Records no rule applied to", f"{records_without_applicable_rule(result):,}")
    console.print(headline)

    steps = funnel(result)

    def word(label: str) -> str:
        return label if label[:2].isupper() else label.lower()  # "LA asked" keeps its capitals

    parts = [f"[bold]{steps[0].count:,}[/bold] {word(steps[0].short)}"]
    parts += [
        f"[bold]{step.count:,}[/bold] {word(step.short)} ({_rate(step.count, steps[0].count)})" for step in steps[1:]
    ]
    console.print("[bold]s38(6) funnel[/bold] (custody records of children)")
    console.print("  " + " → ".join(parts), highlight=False)

    rules = Table(title="Outcomes per rule", title_justify="left")
    rules.add_column("Rule", no_wrap=True)
    rules.add_column("Breach", justify="right")
    rules.add_column("Cannot assess", justify="right")
    rules.add_column("Compliant", justify="right")
    rules.add_column("Breach rate", justify="right")
    total = {o.value: 0 for o in Outcome}
    for rule_id, counts in outcomes_per_rule(result).items():
        for outcome, n in counts.items():
            total[outcome] += n
        rules.add_row(
            escape(rule_id),
            _count(counts[Outcome.breach.value], "bold red"),
            _count(counts[Outcome.cannot_assess.value], "yellow"),
            f"{counts[Outcome.compliant.value]:,}",
            _rate(counts[Outcome.breach.value], sum(counts.values())),
        )
    rules.add_section()
    rules.add_row(
        "[bold]Total[/bold]",
        _count(total[Outcome.breach.value], "bold red"),
        _count(total[Outcome.cannot_assess.value], "yellow"),
        f"{total[Outcome.compliant.value]:,}",
        _rate(total[Outcome.breach.value], sum(total.values())),
    )
    console.print(rules)

    quality = result.data_quality.height
    if quality:
        console.print(f"[yellow]{quality:,} input rows or values could not be used[/yellow] (see data_quality.csv):")
        groups = data_quality_by_issue(result.data_quality)
        for row in groups.head(MAX_QUALITY_GROUPS).iter_rows(named=True):
            console.print(f"  {row['rows']:>6,}  {escape(row['column'])}: {escape(row['issue'])}", highlight=False)
        if groups.height > MAX_QUALITY_GROUPS:
            console.print(f"  and {groups.height - MAX_QUALITY_GROUPS:,} more issues (see report.html)")
    else:
        console.print("Every input row and value could be used.")

    if written:
        folders = sorted({str(path.parent) for path in written})
        names = ", ".join(escape(path.name) for path in written)
        console.print(f"Wrote {names} to {escape(', '.join(folders))}")
