"""The cost of writing a findings table, and nothing else: a floor under any check that must write it.

    python3 bench/write_floor.py FINDINGS_PARQUET SCRATCH_DIR

Reads FINDINGS_PARQUET (a check's own findings.parquet) into memory, untimed, then times
writing those same rows to Parquet from memory: with polars' writer in the contract's form
(zstd at the tool's level, with statistics; `check` itself appends its chunks through
pyarrow's ParquetWriter, which takes as much processor time or more), and with DuckDB
(`COPY ... TO ... (FORMAT parquet)` from the same rows in memory). Prints one JSON object:
rows, the bytes of text in the `message` and `evidence` columns, and the seconds of each
write (the benchmark runs it as a child process).

A check of all rules must write every one of these rows, with their messages and evidence
(DATA-CONTRACT.md): whatever it computes, it cannot finish sooner than this.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

from custody.render.parquet import FINDINGS_PARQUET_LEVEL


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, scratch = Path(argv[0]), Path(argv[1])
    findings = pl.read_parquet(source)
    text = findings.select(pl.col("message", "evidence").str.len_bytes().cast(pl.Int64).sum())
    target = scratch / "floor.parquet"

    started = time.perf_counter()
    findings.write_parquet(target, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL, statistics=True)
    polars_seconds = time.perf_counter() - started
    target.unlink()

    arrow = findings.to_arrow()  # noqa: F841 (DuckDB reads this local by name)
    connection = duckdb.connect()
    started = time.perf_counter()
    quoted = str(target).replace("'", "''")
    connection.execute(f"COPY arrow TO '{quoted}' (FORMAT parquet)")
    duckdb_seconds = time.perf_counter() - started
    target.unlink()

    print(
        json.dumps(
            {
                "rows": findings.height,
                "message_bytes": text["message"].item(),
                "evidence_bytes": text["evidence"].item(),
                "polars_write_seconds": round(polars_seconds, 3),
                "duckdb_write_seconds": round(duckdb_seconds, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
