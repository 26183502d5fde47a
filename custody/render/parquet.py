"""findings.parquet: the findings table in the contract's columns and types."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
