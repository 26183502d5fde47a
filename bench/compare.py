"""Compare two findings.parquet files row for row (the tool's and the DuckDB reference's).

    python3 bench/compare.py TOOL_FINDINGS DUCKDB_FINDINGS [--exclude IDS_FILE]

Both are read with polars; the tool's dictionary columns (rule_id, outcome, severity, basis,
citation, rule_version: polars Categorical/Enum) are compared as their string values. Rows
are matched on (custody_record_id, rule_id) and every column is compared. `--exclude` names
a file of custody_record_ids (one a line) left out of both sides: the records the tool's
loader reported in data quality, which raw SQL over the files cannot see. Exit 0 when the
rows are equal, 1 (with the first differences) when they are not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

KEY = ["custody_record_id", "rule_id"]
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
    return frame.sort(KEY)


def compare(tool: Path, duck: Path, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The differences between the two files, as lines (empty: the rows are equal)."""
    a, b = _read(tool, exclude), _read(duck, exclude)
    problems: list[str] = []
    for column in COLUMNS:
        if a.schema[column] != b.schema[column]:
            problems.append(f"type of {column}: tool {a.schema[column]}, duckdb {b.schema[column]}")
    if a.select(KEY).is_duplicated().any() or b.select(KEY).is_duplicated().any():
        problems.append("a (custody_record_id, rule_id) pair occurs twice")
    joined = a.join(b, on=KEY, how="full", suffix="_duckdb", coalesce=True)
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
                f"{differ.height} rows differ in {column}, e.g. {first['custody_record_id']} {first['rule_id']}:\n"
                f"    tool:   {first[column]!r}\n    duckdb: {first[f'{column}_duckdb']!r}"
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
