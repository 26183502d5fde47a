"""findings.parquet: the findings table in the contract's columns and types."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from custody.contract import FINDINGS_SCHEMA
from custody.findings import CheckResult, findings_frame

# A fixed codec and level, so the same findings always give the same bytes.
FINDINGS_PARQUET_LEVEL = 1  # zstd: level 1 is ~10% faster than 3 for a file <1% larger


def write_findings_parquet(result: CheckResult, path: Path) -> None:
    if result.findings_file is not None:
        # Spilled by run_check in exactly this form (columns, types, zstd level): link it
        # (the spill is removed after the outputs are written), or copy it.
        try:
            os.link(result.findings_file, path)
        except OSError:
            shutil.copyfile(result.findings_file, path)
        return
    findings_frame(result).sink_parquet(
        path, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL, statistics=True
    )


class FindingsWriter:
    """Appends findings, in order, to one Parquet file as they are computed (pyarrow's
    ParquetWriter): the file is in the contract's form (columns, types, compression), so
    findings.parquet is this file as it is. Used as a context or closed with `close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, findings: pl.DataFrame) -> None:
        table = findings.select(pl.col(name).cast(dtype) for name, dtype in FINDINGS_SCHEMA.items()).to_arrow()
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(
                self.path,
                table.schema,
                compression="zstd",
                compression_level=FINDINGS_PARQUET_LEVEL,
                write_statistics=True,
            )
        self._writer.write_table(table.cast(self._schema) if table.schema != self._schema else table)

    def close(self) -> None:
        """Finish the file; with no findings written, an empty file of the contract's columns."""
        if self._writer is None:
            pl.DataFrame(schema=FINDINGS_SCHEMA).write_parquet(
                self.path, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL
            )
            return
        self._writer.close()
