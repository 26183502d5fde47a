"""Run the hand-written DuckDB reference (bench/core_rules.sql) on a record set.

    python3 bench/duckdb_core.py RECORDS_DIR FINDINGS_PARQUET

RECORDS_DIR holds detentions.parquet and events.parquet (as `custody generate --format
parquet` writes them); FINDINGS_PARQUET is written with the rows `custody check --formats
parquet` writes for the three core rules: one row per refusal of bail, in the tool's order.
Prints the number of rows written. Uses only DuckDB and the standard library (the benchmark
times this script as a whole process).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

SQL_FILE = Path(__file__).resolve().parent / "core_rules.sql"


def sql_for(records: Path, findings: Path) -> str:
    text = SQL_FILE.read_text(encoding="utf-8")
    for name, path in (
        ("detentions", records / "detentions.parquet"),
        ("events", records / "events.parquet"),
        ("findings", findings),
    ):
        text = text.replace("{" + name + "}", str(path).replace("'", "''"))
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    records, findings = Path(argv[0]), Path(argv[1])
    connection = duckdb.connect()
    written = connection.execute(sql_for(records, findings)).fetchall()  # COPY returns the row count
    print(written[0][0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
