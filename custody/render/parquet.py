"""findings.parquet: the findings table in the contract's columns and types."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

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
    """Appends findings, in order, to one Parquet file as they are computed: the file is in
    the contract's form (columns, types, compression), so findings.parquet is this file.

    The findings of a small record set come in one piece and are written by polars; once a
    second piece comes, pyarrow's ParquetWriter appends them all (imported only then: it
    is a tenth of a second of a small check's start-up). Each piece is encoded and
    compressed on a thread of its own while the next is computed (pyarrow releases the
    GIL); at most one piece waits, so memory stays bounded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: pl.DataFrame | None = None
        self._writer: Any = None
        self._schema: Any = None
        self._thread: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None

    def write(self, findings: pl.DataFrame) -> None:
        findings = findings.select(pl.col(name).cast(dtype) for name, dtype in FINDINGS_SCHEMA.items())
        if self._writer is None and self._pending is None:
            self._pending = findings
            return
        if self._writer is None:
            import pyarrow.parquet as pq

            assert self._pending is not None
            first = self._pending.to_arrow()
            self._schema = first.schema
            self._writer = pq.ParquetWriter(
                self.path,
                first.schema,
                compression="zstd",
                compression_level=FINDINGS_PARQUET_LEVEL,
                write_statistics=True,
            )
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="findings-writer")
            self._append(first)
            self._pending = None
        self._append(findings.to_arrow())

    def _append(self, table: Any) -> None:
        """Queue `table` behind the piece being written (waiting for it first: one at a time)."""
        self._wait()
        if table.schema != self._schema:
            table = table.cast(self._schema)
        assert self._thread is not None
        self._writing = self._thread.submit(self._writer.write_table, table)

    def _wait(self) -> None:
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()  # a failure to write is raised here, in the caller's thread

    def close(self) -> None:
        """Finish the file; with no findings written, an empty file of the contract's columns."""
        if self._writer is not None:
            try:
                self._wait()
            finally:
                assert self._thread is not None
                self._thread.shutdown(wait=True)
                self._writer.close()
            return
        pending = self._pending if self._pending is not None else pl.DataFrame(schema=FINDINGS_SCHEMA)
        pending.write_parquet(self.path, compression="zstd", compression_level=FINDINGS_PARQUET_LEVEL, statistics=True)
        self._pending = None
