"""Benchmark: `custody check --formats parquet` against a hand-written DuckDB query of the three
core s38(6) rules (S38-REQUEST, S38-TRANSFER, S38-CERTIFICATE) on the same generated Parquet set.

Run by hand (not part of the test suite):

    pip install -e ".[bench]"
    python bench/bench.py --records 100000 1000000 [--repeat 3] [--full]
    python bench/bench.py --records 10000000 --repeat 1     # ~20 minutes; 10M is checked in batches

Generated record sets are kept in bench/data/ (not committed) and reused.

Each measurement runs in a fresh subprocess (so peak memory is that run's own), the two
contenders alternate, and medians are reported with their ratio. The three rules' outcome
counts must agree between the engine and DuckDB, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CORE_RULES = ("S38-REQUEST", "S38-TRANSFER", "S38-CERTIFICATE")

# The three core rules, written by hand in SQL as a skilled analyst would, with the same
# semantics as rules/S38-*.yaml: juvenile status at the refusal of bail (under 17 before
# 2015-10-26, under 18 from then; appears_under_18 without a date of birth; otherwise
# unknown -> cannot_assess), age attained at 00:00 UK time on the birthday.
SQL = """
WITH ev AS (
  SELECT custody_record_id,
    min(event_time) FILTER (WHERE event_type = 'charged') AS charged_at,
    min(event_time) FILTER (WHERE event_type = 'bail_refused') AS bail_refused_at,
    max(event_time) FILTER (WHERE event_type = 'la_requested') AS la_requested_last_at,
    count(*) FILTER (WHERE event_type = 'transferred_to_la') AS moved,
    count(*) FILTER (WHERE event_type = 'certificate') AS certificates
  FROM read_parquet('{events}')
  GROUP BY custody_record_id
),
rec AS (
  SELECT d.custody_record_id, d.detention_power, d.date_of_birth, d.appears_under_18,
    ev.charged_at, ev.bail_refused_at, ev.la_requested_last_at,
    coalesce(ev.moved, 0) AS moved, coalesce(ev.certificates, 0) AS certificates,
    CAST(timezone('Europe/London', ev.bail_refused_at) AS DATE) AS refused_day,
    CASE WHEN ev.bail_refused_at < TIMESTAMPTZ '2015-10-26 00:00:00+00' THEN 17 ELSE 18 END AS age_limit
  FROM read_parquet('{detentions}') d LEFT JOIN ev USING (custody_record_id)
  WHERE d.detention_power IN ('pace_arrest', 'other')
    AND ev.charged_at IS NOT NULL AND ev.bail_refused_at IS NOT NULL
),
juv AS (
  SELECT *,
    CASE
      WHEN date_of_birth IS NOT NULL THEN
        (year(refused_day) - year(date_of_birth)
          - CASE WHEN (month(refused_day), day(refused_day)) < (month(date_of_birth), day(date_of_birth))
                 THEN 1 ELSE 0 END) < age_limit
      WHEN appears_under_18 = false THEN false
      WHEN appears_under_18 AND age_limit >= 18 THEN true
      ELSE NULL
    END AS is_juvenile
  FROM rec
),
scoped AS (SELECT * FROM juv WHERE is_juvenile IS NOT FALSE)
SELECT 'S38-REQUEST' AS rule_id,
  CASE WHEN is_juvenile IS NULL THEN 'cannot_assess'
       WHEN la_requested_last_at IS NULL OR la_requested_last_at < bail_refused_at THEN 'breach'
       ELSE 'compliant' END AS outcome, count(*) AS n
FROM scoped GROUP BY ALL
UNION ALL
SELECT 'S38-TRANSFER',
  CASE WHEN is_juvenile IS NULL THEN 'cannot_assess'
       WHEN moved = 0 AND certificates = 0 THEN 'breach' ELSE 'compliant' END, count(*)
FROM scoped GROUP BY ALL
UNION ALL
SELECT 'S38-CERTIFICATE',
  CASE WHEN is_juvenile IS NULL THEN 'cannot_assess'
       WHEN certificates = 0 THEN 'breach' ELSE 'compliant' END, count(*)
FROM scoped WHERE moved = 0 GROUP BY ALL
"""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _core_rules_dir() -> Path:
    """A rule folder holding only the three core rules (the same files as rules/)."""
    import shutil

    from custody.engine.rulefile import default_rules_dir

    source, target = default_rules_dir(), Path(tempfile.mkdtemp(prefix="core-rules-"))
    for name in (*CORE_RULES, "_facts"):
        shutil.copy(source / f"{name}.yaml", target / f"{name}.yaml")
    return target


def run_engine(folder: Path, formats: str, core_only: bool = False) -> dict[str, object]:
    """One `custody check` run in this process (called in a subprocess by the driver)."""
    import polars as pl

    from custody.check import prepare_rules, run_check
    from custody.outputs import parse_formats, write_outputs

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:  # as `custody check` does: findings spilled beside the outputs
        spill = Path(out) / ".spill"
        spill.mkdir()
        result = run_check(folder, rules=prepare_rules(_core_rules_dir() if core_only else None), spill_dir=spill)
        write_outputs(result, Path(out), formats=parse_formats(formats))
        seconds = time.perf_counter() - started
        core = (
            result.findings.lazy()
            .filter(pl.col("rule_id").cast(pl.String).is_in(CORE_RULES))
            .group_by(pl.col("rule_id").cast(pl.String), pl.col("outcome").cast(pl.String))
            .len()
            .collect()
        )
        findings = result.findings.lazy().select(pl.len()).collect().item()
    counts = {f"{r}/{o}": n for r, o, n in core.iter_rows()}
    return {"seconds": seconds, "peak_mb": _peak_mb(), "counts": counts, "findings": findings}


def run_duckdb(folder: Path) -> dict[str, object]:
    import duckdb

    started = time.perf_counter()
    connection = duckdb.connect()
    query = SQL.format(events=folder / "events.parquet", detentions=folder / "detentions.parquet")
    rows = connection.sql(query).fetchall()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": _peak_mb(), "counts": {f"{r}/{o}": n for r, o, n in rows}}


def _measure(kind: str, folder: Path, formats: str) -> dict[str, object]:
    """kind: engine (all rules), core (the engine with the three core rules only), duckdb."""
    command = [sys.executable, __file__, "--one", kind, str(folder), "--formats", formats]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _dataset(records: int) -> Path:
    folder = DATA / f"records-{records}"
    if not (folder / "events.parquet").exists():
        from custody.generate import generate_record_set

        started = time.perf_counter()
        counts = generate_record_set(folder, records, seed=20261123)
        print(f"generated {counts} in {time.perf_counter() - started:.1f}s", flush=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time a run writing every output format")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--formats", default="parquet", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        kind, folder = args.one
        if kind == "duckdb":
            result = run_duckdb(Path(folder))
        else:
            result = run_engine(Path(folder), args.formats, core_only=kind == "core")
        print(json.dumps(result))
        return 0

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"date: {time.strftime('%Y-%m-%d')}")
    failed = False
    for records in args.records:
        folder = _dataset(records)
        engine_runs, duck_runs, core_runs = [], [], []
        for _ in range(args.repeat):  # alternate, so drift in the machine hits all alike
            engine_runs.append(_measure("engine", folder, "parquet"))
            duck_runs.append(_measure("duckdb", folder, "parquet"))
            core_runs.append(_measure("core", folder, "parquet"))
        engine_s = statistics.median(float(r["seconds"]) for r in engine_runs)  # type: ignore[arg-type]
        duck_s = statistics.median(float(r["seconds"]) for r in duck_runs)  # type: ignore[arg-type]
        engine_mb = max(float(r["peak_mb"]) for r in engine_runs)  # type: ignore[arg-type]
        duck_mb = max(float(r["peak_mb"]) for r in duck_runs)  # type: ignore[arg-type]
        core_s = statistics.median(float(r["seconds"]) for r in core_runs)  # type: ignore[arg-type]
        core_mb = max(float(r["peak_mb"]) for r in core_runs)  # type: ignore[arg-type]
        agree = engine_runs[0]["counts"] == duck_runs[0]["counts"] == core_runs[0]["counts"]
        failed |= not agree
        print(f"\n{records:,} records ({engine_runs[0]['findings']:,} findings), median of {args.repeat}:")
        print(f"  custody check --formats parquet : {engine_s:8.2f} s   peak {engine_mb:8.0f} MB")
        print(f"  DuckDB SQL, three core rules    : {duck_s:8.2f} s   peak {duck_mb:8.0f} MB")
        print(f"  ratio engine / DuckDB           : {engine_s / duck_s:8.2f}")
        print(
            f"  same, three core rules only     : {core_s:8.2f} s   peak {core_mb:8.0f} MB"
            f"   ratio {core_s / duck_s:.2f}"
        )
        print(f"  three-rule counts agree         : {'yes' if agree else 'NO'}")
        if not agree:
            print(f"    engine: {json.dumps(engine_runs[0]['counts'], sort_keys=True)}")
            print(f"    duckdb: {json.dumps(duck_runs[0]['counts'], sort_keys=True)}")
        if args.full:
            full = _measure("engine", folder, "all")
            print(
                f"  custody check, all outputs      : {float(full['seconds']):8.2f} s   peak "  # type: ignore[arg-type]
                f"{float(full['peak_mb']):8.0f} MB"
            )  # type: ignore[arg-type]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
