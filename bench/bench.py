"""Benchmark: `custody check` against a like-for-like DuckDB reference on generated records.

Run by hand (not part of the test suite), from the repository root:

    python3 -m pip install -e ".[bench]"
    python3 bench/bench.py --records 100000 1000000 [--repeat 3] [--full]
    python3 bench/bench.py --records 10000000 --repeat 1     # 10M: ~20 minutes, checked in batches

Record sets are made with `custody generate DIR --records N --seed 20261123 --format
parquet` and kept in bench/data/ (git-ignored). For each size it times, as whole
processes and alternating A B C A B C (so drift in the machine hits all alike), medians:

  A  the DuckDB reference: bench/duckdb_core.py runs bench/core_rules.sql, a hand-written
     query that reads detentions.parquet and events.parquet and writes findings.parquet
     with the same rows as `check` for the three core rules (S38-REQUEST, S38-TRANSFER,
     S38-CERTIFICATE): same columns, outcomes, messages, evidence, versions, citations;
  B  `custody check RECORDS --out DIR --formats parquet --rules CORE`, CORE a folder
     holding only those three rules and _facts.yaml, copied from rules/;
  C  `custody check RECORDS --out DIR --formats parquet --rules rules/` (all rules).

Then, once per size, a floor under C: the time to write C's own findings (read back into
memory, untimed) to Parquet and nothing else, with polars in the contract's form and with
DuckDB (bench/write_floor.py), beside the size of their message and evidence text.

The findings of A and B are compared row for row (bench/compare.py); the benchmark fails
(exit 1) if they differ. Records the tool reports in data quality (rows its loader could
not use, which raw SQL cannot see) are left out of that comparison and counted. Then the
start-up: `custody check sample_records/messy --out DIR --formats parquet` against
`python3 -c "import polars"` (alternating, median of at least 5). `--full` adds one run of
`check --formats all` (every output) per size.

Every timed run starts as a user's second run does: the package is byte-compiled first
(`compileall`, as `pip install` does) and each rule folder compiled once, untimed, into the
rules cache (custody.engine.cache); the start-up figure is also given with that cache off.

Peak memory is each child process's own maximum resident set (os.wait4); the driver
itself stays small (it imports neither polars nor DuckDB), as a child's peak on Linux
starts from its parent's. The benchmark drives the tool only through its command line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RULES = REPO / "rules"
MESSY = REPO / "sample_records" / "messy"
DATA = HERE / "data"
SEED = 20261123
CORE_RULES = ("S38-REQUEST", "S38-TRANSFER", "S38-CERTIFICATE")
PYTHON = sys.executable


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


def run(command: list[str], attempts: int = 3, env: dict[str, str] | None = None) -> Run:
    """Run one command as a child process: wall time and the child's own peak RSS.

    A failed run is reported and, after a minute, tried again (up to `attempts` in all):
    the package may be being changed while a long benchmark runs. It is never timed.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _run_once(command, env)
        except RuntimeError as exc:
            if attempt == attempts:
                raise SystemExit(str(exc)) from None
            print(f"  (failed, retrying in 60 s: {str(exc).strip().splitlines()[-1]})", flush=True)
            time.sleep(60)
    raise AssertionError("unreachable")


def _run_once(command: list[str], env: dict[str, str] | None = None) -> Run:
    # On Linux a child's ru_maxrss starts from this process's own peak (the memory the
    # child had before exec), so this driver stays small: it never imports polars or
    # duckdb (the comparison runs in a child too) and reports its own peak as the floor.
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} exited {child.returncode}:\n{tail}")
    return Run(seconds, usage.ru_maxrss / 1024)  # Linux: KiB


def custody(*args: str) -> list[str]:
    return [PYTHON, "-m", "custody", *args]


def dataset(records: int) -> Path:
    folder = DATA / f"records-{records}"
    if not (folder / "events.parquet").exists():
        made = run(
            custody("generate", str(folder), "--records", str(records), "--seed", str(SEED), "--format", "parquet")
        )
        print(f"generated {records:,} records in {made.seconds:.1f} s", flush=True)
    return folder


def core_rules_dir() -> Path:
    """A rule folder holding only the three core rules and the facts settings, from rules/."""
    target = Path(tempfile.mkdtemp(prefix="core-rules-"))
    for name in (*CORE_RULES, "_facts"):
        shutil.copy(RULES / f"{name}.yaml", target / f"{name}.yaml")
    return target


def data_quality_records(folder: Path, scratch: Path) -> frozenset[str]:
    """custody_record_ids the tool's loader reports in data quality (`custody validate`)."""
    out = scratch / "validate"
    run(custody("validate", str(folder), "--out", str(out)))
    with (out / "data_quality.csv").open(encoding="utf-8", newline="") as handle:
        ids = {row.get("custody_record_id") or "" for row in csv.DictReader(handle)}
    shutil.rmtree(out)
    return frozenset(ids - {""})


def compare(tool: Path, duck: Path, excluded: frozenset[str], scratch: Path) -> list[str]:
    """bench/compare.py in a child process: the differences, as lines (none: the rows are equal).

    (In a child, so that this process stays small: see `run`.)
    """
    command = [PYTHON, str(HERE / "compare.py"), str(tool), str(duck)]
    if excluded:
        ids = scratch / "excluded.txt"
        ids.write_text("\n".join(sorted(excluded)), encoding="utf-8")
        command += ["--exclude", str(ids)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode == 0:
        return []
    return (done.stdout + done.stderr).strip().splitlines() or [f"compare.py exited {done.returncode}"]


def write_floor(findings: Path, scratch: Path) -> dict[str, float]:
    """bench/write_floor.py in a child process (see `compare`): the seconds of writing the
    all-rule findings from memory, and the size of their text. Removes `findings`."""
    done = subprocess.run(
        [PYTHON, str(HERE / "write_floor.py"), str(findings), str(scratch)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    findings.unlink()
    floor: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return floor


def median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def peak_gb(runs: list[Run]) -> float:
    """The largest peak of `runs`, in GiB (2^30 bytes; 2.5 GB is 2.33 GiB)."""
    return max(r.peak_mb for r in runs) / 1024


def bench_size(records: int, repeat: int, full: bool, core: Path, scratch: Path) -> bool:
    folder = dataset(records)
    duck: list[Run] = []
    core_runs: list[Run] = []
    every: list[Run] = []
    same = True
    for i in range(repeat):
        duck_out = scratch / "duckdb-findings.parquet"
        core_out, all_out = scratch / "core", scratch / "all"
        duck.append(run([PYTHON, str(HERE / "duckdb_core.py"), str(folder), str(duck_out)]))
        core_runs.append(
            run(custody("check", str(folder), "--out", str(core_out), "--formats", "parquet", "--rules", str(core)))
        )
        if i == 0:  # the like-for-like check: the same rows, or the benchmark fails
            summary = json.loads((core_out / "summary.json").read_text(encoding="utf-8"))
            excluded = data_quality_records(folder, scratch) if summary["data_quality"]["rows"] else frozenset()
            problems = compare(core_out / "findings.parquet", duck_out, excluded, scratch)
            same = not problems
            rows = summary["findings"]["rows"]
        every.append(
            run(custody("check", str(folder), "--out", str(all_out), "--formats", "parquet", "--rules", str(RULES)))
        )
        if i == 0:
            all_rows = json.loads((all_out / "summary.json").read_text(encoding="utf-8"))["findings"]["rows"]
            shutil.copy(all_out / "findings.parquet", scratch / "all-findings.parquet")
        for path in (duck_out, core_out, all_out):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    d, c, a = median(duck), median(core_runs), median(every)
    print(f"\n{records:,} records, median of {repeat} (alternating):")
    print(f"  DuckDB reference, 3 core rules     : {d:7.2f} s   peak {peak_gb(duck):5.2f} GiB   {rows:,} findings")
    print(
        f"  check --rules (3 core rules)       : {c:7.2f} s   peak {peak_gb(core_runs):5.2f} GiB   ratio {c / d:5.2f}"
    )
    print(
        f"  check (all rules)                  : {a:7.2f} s   peak {peak_gb(every):5.2f} GiB"
        f" ({peak_gb(every) * 2**30 / 1e9:.2f} GB)   ratio {a / d:5.2f}"
        f"   {all_rows:,} findings"
    )
    print(
        f"  runs (s): duckdb {[round(r.seconds, 2) for r in duck]}, core {[round(r.seconds, 2) for r in core_runs]},"
        f" all {[round(r.seconds, 2) for r in every]}"
    )
    floor = write_floor(scratch / "all-findings.parquet", scratch)
    text_gb = (floor["message_bytes"] + floor["evidence_bytes"]) / 1e9
    print(
        f"  writing all-rule findings, alone   : {floor['polars_write_seconds']:7.2f} s   (polars, contract's form;"
        f" ratio {floor['polars_write_seconds'] / d:5.2f}); DuckDB {floor['duckdb_write_seconds']:.2f} s;"
        f" {text_gb:.2f} GB of message and evidence text"
    )
    if same:
        print(f"  DuckDB rows equal to check's       : yes ({len(excluded):,} records in data quality left out)")
    else:
        print(f"  DuckDB rows equal to check's       : NO ({len(excluded):,} records in data quality left out)")
        for line in problems:
            print(f"    {line}")
    if full:
        out = scratch / "full"
        full_run = run(custody("check", str(folder), "--out", str(out), "--formats", "all"))
        shutil.rmtree(out)
        print(
            f"  check --formats all (every output) : {full_run.seconds:7.2f} s"
            f"   peak {full_run.peak_mb / 1024:5.2f} GiB"
        )
    sys.stdout.flush()
    return same


def bench_startup(repeat: int, scratch: Path) -> None:
    """`check` on the messy sample against a bare `import polars`. The rules cache
    (custody.engine.cache) is warm, as on any run after the first with the same rules; the
    same check with the cache off (every rule file read, validated and compiled) is timed
    too and reported beside it."""
    out = scratch / "messy"
    command = custody("check", str(MESSY), "--out", str(out), "--formats", "parquet")
    run(command)  # warms the rules cache (and the file cache), not timed
    shutil.rmtree(out)
    checks: list[Run] = []
    imports: list[Run] = []
    cold: list[Run] = []
    for _ in range(repeat):
        checks.append(run(command))
        shutil.rmtree(out)
        imports.append(run([PYTHON, "-c", "import polars"]))
        cold.append(run(command, env={**os.environ, "CUSTODY_NO_CACHE": "1"}))
        shutil.rmtree(out)
    c, p, k = median(checks), median(imports), median(cold)
    print(f"\nstart-up, median of {repeat} (alternating):")
    print(f"  check sample_records/messy         : {c:7.2f} s   peak {peak_gb(checks):5.2f} GiB")
    print(f'  python3 -c "import polars"         : {p:7.2f} s   peak {peak_gb(imports):5.2f} GiB   ratio {c / p:5.2f}')
    print(f"  the same check, rules cache off    : {k:7.2f} s   ratio {k / p:5.2f}")


def versions() -> str:
    code = "import polars, duckdb; print(polars.__version__, duckdb.__version__)"
    polars_version, duckdb_version = subprocess.check_output([PYTHON, "-c", code], text=True).split()
    return f"polars {polars_version}, duckdb {duckdb_version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time one run writing every output format")
    args = parser.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {versions()}")
    print(f"date: {time.strftime('%Y-%m-%d')}, commit {commit.stdout.strip() or '?'}")
    # The package's bytecode, as an installed package has it (pip compiles it on install): a
    # source checkout run with PYTHONDONTWRITEBYTECODE set would otherwise compile every
    # module on every run, which `import polars` (installed) never does.
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(REPO / "custody")], check=True)
    same = True
    with tempfile.TemporaryDirectory(prefix="custody-bench-") as scratch:
        core = core_rules_dir()
        try:
            # Compile both rule folders once (custody.engine.cache), untimed: every timed run
            # then starts as a user's second run does.
            for rules in (core, RULES):
                run(
                    custody(
                        "check",
                        str(MESSY),
                        "--out",
                        str(Path(scratch) / "warm"),
                        "--formats",
                        "parquet",
                        "--rules",
                        str(rules),
                    )
                )
                shutil.rmtree(Path(scratch) / "warm")
            for records in args.records:
                same &= bench_size(records, args.repeat, args.full, core, Path(scratch))
            bench_startup(max(5, args.repeat), Path(scratch))
        finally:
            shutil.rmtree(core)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this driver's own peak, the floor of every peak above: {own:.0f} MiB)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
