"""Reruns give the same bytes: only summary.json's run fields (as_of, run_seconds, and the
run_id and manifest that follow from them) may differ."""

from __future__ import annotations

from pathlib import Path

import freezegun
import polars as pl

from custody.render.xlsx import write_exceptions_xlsx


def test_the_workbook_does_not_record_when_it_was_written(tmp_path: Path) -> None:
    exceptions = pl.DataFrame({"Child": ["P-1"], "What was found": ["No request."], "Law": ["PACE 1984 s38(6)"]})
    with freezegun.freeze_time("2021-01-01 09:00:00"):
        write_exceptions_xlsx(exceptions, tmp_path / "first.xlsx")
    with freezegun.freeze_time("2024-06-30 23:59:59"):
        write_exceptions_xlsx(exceptions, tmp_path / "second.xlsx")
    assert (tmp_path / "first.xlsx").read_bytes() == (tmp_path / "second.xlsx").read_bytes()
