"""Reruns give the same bytes: only summary.json's run fields (as_of, run_seconds, and the
run_id and manifest that follow from them) may differ."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import freezegun
import polars as pl
import pytest
from conftest import MESSY, RULES_DIR
from typer.testing import CliRunner

from custody import cli
from custody.render.xlsx import write_exceptions_xlsx


def test_the_workbook_does_not_record_when_it_was_written(tmp_path: Path) -> None:
    exceptions = pl.DataFrame({"Child": ["P-1"], "What was found": ["No request."], "Law": ["PACE 1984 s38(6)"]})
    with freezegun.freeze_time("2021-01-01 09:00:00"):
        write_exceptions_xlsx(exceptions, tmp_path / "first.xlsx")
    with freezegun.freeze_time("2024-06-30 23:59:59"):
        write_exceptions_xlsx(exceptions, tmp_path / "second.xlsx")
    assert (tmp_path / "first.xlsx").read_bytes() == (tmp_path / "second.xlsx").read_bytes()


RUN_FIELDS = ("as_of", "run_seconds", "run_id")


def test_a_rerun_by_another_path_gives_the_same_bytes(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice on messy (every output, data quality included): once named by its absolute path,
    once by a relative one; only summary.json's run fields differ."""
    copy, rules = tmp_path / "records", tmp_path / "rules"
    shutil.copytree(MESSY, copy)
    shutil.copytree(RULES_DIR, rules)
    first, second = tmp_path / "first", tmp_path / "second"
    with freezegun.freeze_time("2026-01-01 09:00:00"):
        args = ["check", str(copy), "--out", str(first), "--rules", str(rules), "-q"]
        assert runner.invoke(cli.app, args).exit_code == 0
    monkeypatch.chdir(tmp_path)
    with freezegun.freeze_time("2026-02-02 10:30:00"):
        assert runner.invoke(cli.app, ["check", "records", "--out", "second", "--rules", "rules", "-q"]).exit_code == 0

    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        if name != "summary.json":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (first, second)]
    assert [{k: v for k, v in s.items() if k not in RUN_FIELDS} for s in summaries] == [
        {k: v for k, v in summaries[1].items() if k not in RUN_FIELDS}
    ] * 2
    assert summaries[0]["as_of"] != summaries[1]["as_of"]
    assert summaries[0]["inputs"] == {"detentions": "detentions.csv", "events": "events.csv"}
    assert summaries[0]["rules_dir"] == "rules"
