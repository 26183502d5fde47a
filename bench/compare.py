"""Compare two findings.parquet files row for row (the tool's and the DuckDB reference's).

    python3 bench/compare.py TOOL_FINDINGS DUCKDB_FINDINGS [--exclude IDS_FILE]

Both are read with polars; the tool's dictionary columns (rule_id, outcome, severity, basis,
citation, rule_version: polars Categorical/Enum) are compared as their string values. A rule
gives one row per refusal of bail, so a (custody_record_id, rule_id) pair may have several
rows: rows are matched on (custody_record_id, rule_id, trigger_at) and, among rows sharing
those (none since refusals of one record at the same instant are one occasion; kept as a
safeguard), by their other columns; every column is compared. The order of the rows is
compared too (by child, record, rule, refusal: the tool's order).
`--exclude` names a file of custody_record_ids (one a line) left out of both sides: the
records the tool's loader reported in data quality, which raw SQL over the files cannot see.
Exit 0 when the rows are equal, 1 (with the first differences) when they are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

KEY = ["custody_record_id", "rule_id", "trigger_at"]
NUMBER = "\x1fnumber"
"""A row's number among the rows sharing its KEY (0 unless two rows share it)."""
POSITION = "\x1fposition"
"""A row's position in its file."""
COLUMNS = [
    "person_id",
    "custody_record_id",
    "rule_id",
    "outcome",
    "severity",
    "basis",
    "citation",
    "rule_version",
    "message",
    "evidence",
    "trigger_at",
]


def _read(path: Path, exclude: frozenset[str]) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or len(frame.columns) != len(COLUMNS):
        raise SystemExit(f"{path}: columns {frame.columns}, expected {COLUMNS}")
    frame = frame.select(
        pl.col(c).cast(pl.String) if isinstance(t, pl.Categorical | pl.Enum) else pl.col(c)
        for c, t in frame.select(COLUMNS).schema.items()
    )
    if exclude:
        frame = frame.filter(~pl.col("custody_record_id").is_in(sorted(exclude)))
    frame = frame.with_row_index(POSITION)
    # Rows sharing a key are told apart by their other columns (then numbered in that order).
    others = [c for c in COLUMNS if c not in KEY]
    return frame.sort([*KEY, *others], nulls_last=False, maintain_order=True).with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).over(KEY).alias(NUMBER)
    )


def compare(tool: Path, duck: Path, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The differences between the two files, as lines (empty: the rows are equal)."""
    a, b = _read(tool, exclude), _read(duck, exclude)
    problems: list[str] = []
    for column in COLUMNS:
        if a.schema[column] != b.schema[column]:
            problems.append(f"type of {column}: tool {a.schema[column]}, duckdb {b.schema[column]}")
    keys = [*KEY, NUMBER]
    joined = a.join(b, on=keys, how="full", suffix="_duckdb", coalesce=True, nulls_equal=True)
    only_tool = joined.filter(pl.col("outcome_duckdb").is_null())
    only_duck = joined.filter(pl.col("outcome").is_null())
    for label, rows in (("only in the tool's output", only_tool), ("only in DuckDB's output", only_duck)):
        if rows.height:
            problems.append(f"{rows.height} rows {label}, e.g. {rows.select(KEY).head(3).rows()}")
    both = joined.filter(pl.col("outcome").is_not_null() & pl.col("outcome_duckdb").is_not_null())
    for column in COLUMNS:
        if column in KEY or a.schema[column] != b.schema[column]:
            continue
        differ = both.filter(pl.col(column).ne_missing(pl.col(f"{column}_duckdb")))
        if differ.height:
            first = differ.row(0, named=True)
            problems.append(
                f"{differ.height} rows differ in {column}, e.g. {first['custody_record_id']} {first['rule_id']}"
                f" {first['trigger_at']}:\n    tool:   {first[column]!r}\n    duckdb: {first[f'{column}_duckdb']!r}"
            )
    if not problems:
        # The same rows: then in the same order (by child, record, rule, refusal)?
        order = both.select(POSITION, f"{POSITION}_duckdb").filter(pl.col(POSITION) != pl.col(f"{POSITION}_duckdb"))
        if order.height:
            at = order.select(pl.col(POSITION).min()).item()
            row = a.filter(pl.col(POSITION) == at).row(0, named=True)
            problems.append(
                f"{order.height} rows in a different order, the first at row {at}: "
                f"{row['custody_record_id']} {row['rule_id']} {row['trigger_at']}"
            )
    return problems


def main(argv: list[str]) -> int:
    args = list(argv)
    exclude: frozenset[str] = frozenset()
    if "--exclude" in args:
        at = args.index("--exclude")
        exclude = frozenset(Path(args[at + 1]).read_text(encoding="utf-8").split())
        del args[at : at + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = compare(Path(args[0]), Path(args[1]), exclude)
    for line in problems:
        print(line)
    if not problems:
        print(f"equal ({len(exclude)} records excluded)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
