"""The output set of `custody check` (DATA-CONTRACT.md, "Output"): which files, written how.

Each file is a rendering (`custody.render`) of the one findings table in a `CheckResult`.
Three properties hold for every file:

- Safe to open in a spreadsheet (see `custody.render.csv` and `custody.render.xlsx`).
- Whole sets. The files of a run are staged in a hidden folder inside the output folder,
  then moved into place together (`write_outputs`): a folder never holds files of two runs
  that look complete, and `summary.json` (moved last) lists each file with its size and
  SHA-256 under the run's id.
- Deterministic. The same result gives byte-identical findings, children and exceptions
  files (only `summary.json` and `report.html` carry the run time).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from custody.errors import InputError, UsageError
from custody.findings import (
    CheckResult,
    children_frame,
    data_quality_frame,
    data_quality_table,
    exception_table,
    exceptions_frame,
    findings_frame,
    summary,
)
from custody.render.csv import write_csv
from custody.render.json import summary_json
from custody.render.parquet import write_findings_parquet

FORMATS: tuple[str, ...] = (
    "parquet",
    "csv",
    "children",
    "exceptions",
    "xlsx",
    "data_quality",
    "summary",
    "html",
)

FILE_NAMES: dict[str, str] = {
    "parquet": "findings.parquet",
    "csv": "findings.csv",
    "children": "children.csv",
    "exceptions": "exceptions.csv",
    "xlsx": "exceptions.xlsx",
    "data_quality": "data_quality.csv",
    "summary": "summary.json",
    "html": "report.html",
}


_WRITER_THREADS = 2
_WRITE_ORDER = ("csv", "xlsx", "parquet", "exceptions", "children", "html", "data_quality")


# ---------------------------------------------------------------- formats and folder


def out_folder(out: Path) -> Path:
    """The --out folder, created if it does not exist; refused in one sentence if it is a file,
    a link to nowhere, or cannot be written (checked with a nameless file created and removed)."""
    if out.is_symlink() and not out.exists():
        raise UsageError(
            f"--out {out} is a link to {os.readlink(out)}, which does not exist: create that folder, "
            "or give another --out folder."
        )
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: give a folder for the outputs (it is created if needed).")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise _out_problem(error, out) from error
    return out


def parse_formats(text: str) -> frozenset[str]:
    """The output formats named by `--formats` ("all" or a comma list); summary is always written."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    valid = ", ".join(("all", *FORMATS))
    if not names:
        raise UsageError(f"--formats names no format; use 'all' or a comma list of: {valid}.")
    unknown = sorted(names - {"all", *FORMATS})
    if unknown:
        raise UsageError(
            f"Unknown output format {', '.join(repr(u) for u in unknown)} in --formats; valid formats are: {valid}."
        )
    chosen = set(FORMATS) if "all" in names else names
    return frozenset(chosen | {"summary"})


_DISK_FULL_TEXT = ("os error 28", "No space left on device", "os error 122", "Disk quota exceeded")
"""How a full disk shows in an error that carries no errno (polars' writers, some OSErrors)."""


def _disk_full(error: BaseException) -> bool:
    """Whether `error` says a disk (or quota) is full, however the library raising it said so."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(error, (OSError, pl.exceptions.PolarsError)) and any(t in str(error) for t in _DISK_FULL_TEXT)


@contextmanager
def out_folder_errors(out: Path) -> Iterator[None]:
    """A full disk, or a read-only --out folder, is the user's to fix: one sentence, not an
    internal error. A full disk may be --out's or that of the temporary folder the run works
    in (TMPDIR): the sentence names both."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError) as error:
        if _disk_full(error):
            raise InputError(
                f"could not write in {out} or in the temporary folder {tempfile.gettempdir()} "
                f"({os.strerror(errno.ENOSPC)}): free some space there or give another --out folder (or set "
                "TMPDIR to a folder with room; a large check needs room for its findings and, above "
                "--batch-records records, a copy of the records while it runs)."
            ) from error
        if not isinstance(error, OSError):
            raise
        named = Path(str(error.filename)).resolve() if error.filename else None
        if named is None or not named.is_relative_to(out.resolve()):
            raise  # not about --out: not the user's to fix there
        raise _out_problem(error, out) from error


def _out_problem(error: OSError, out: Path) -> InputError:
    """An OS error writing in --out as one sentence with the fix."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = (
            "free some space there or give another --out folder (a large check needs room for its findings "
            "and, above --batch-records records, a copy of the records while it runs)"
        )
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "give an --out folder you can write to"
    elif error.errno == errno.ENOTDIR:
        fix = "part of that path is a file: give a folder path"
    else:
        fix = "check the path, or give another --out folder"
    return InputError(f"could not write in {out} ({error.strerror or error}): {fix}.")


def write_data_quality(data_quality: pl.DataFrame, out_dir: Path) -> Path:
    """data_quality.csv alone (`custody validate`), exactly as `check` writes it."""
    final = out_folder(out_dir) / FILE_NAMES["data_quality"]
    with atomic_path(final) as temporary:
        write_csv(data_quality_table(data_quality), temporary)
    return final


# ---------------------------------------------------------------- atomic files


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final`; renamed over it once the block ends without error.

    On any error the temporary file is removed and `final` is left as it was (absent, or
    the previous complete file).
    """
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


# ---------------------------------------------------------------- all outputs


def _write_xlsx(result: CheckResult, table: pl.DataFrame, path: Path) -> None:
    # The workbook's and the report's renderers (xlsxwriter, Jinja2) load only for a run that
    # writes them: a check that writes Parquet starts without them.
    from custody.render.xlsx import excel_exceptions, write_exceptions_xlsx

    write_exceptions_xlsx(excel_exceptions(table), path, result=result)


def _write_html(result: CheckResult, table: pl.DataFrame, path: Path) -> None:
    from custody.render.html import render_html

    _write_text(render_html(result, exceptions=table), path)


def write_outputs(
    result: CheckResult,
    out_dir: Path,
    *,
    formats: frozenset[str],
    pseudonymise_key: str | None = None,
) -> list[Path]:
    """Write the chosen outputs into `out_dir` (created if needed), as one set; the paths
    written, in order, summary.json last.

    With `pseudonymise_key`, person and custody record ids are replaced by keyed digests in
    every file (see custody.pseudonymise) before anything is written.

    The set is whole or marked. Every file is first written to a hidden staging folder in
    `out_dir`; summary.json records the run id and a manifest (size and SHA-256 of each
    file). Only then is the set moved into place: an `INCOMPLETE` file is written first,
    the files of an earlier run that this run does not write are removed, the new files are
    renamed over the old ones (summary.json last), and `INCOMPLETE` is removed last. A run
    that fails while staging leaves the folder as it was; one killed while moving leaves
    `INCOMPLETE`, which says so.
    """
    unknown = formats - set(FORMATS)
    if unknown:
        raise UsageError(
            f"Unknown output format {', '.join(sorted(unknown))}; valid formats are: {', '.join(FORMATS)}."
        )
    if pseudonymise_key is not None:
        from custody.pseudonymise import pseudonymise

        result = pseudonymise(result, pseudonymise_key)
    out_dir = out_folder(Path(out_dir))
    chosen = formats | {"summary"}

    # The exception list is rendered three ways (CSV, XLSX, HTML): build it once.
    table = exception_table(result) if chosen & {"exceptions", "xlsx", "html"} else pl.DataFrame()
    # exceptions.csv and children.csv are for people as well as programs: they start with a
    # UTF-8 byte order mark, so that Excel on Windows opens them (accents and all) by
    # double-click. findings.csv and data_quality.csv are machine files: no mark.
    writers: dict[str, Callable[[Path], None]] = {
        "parquet": lambda path: write_findings_parquet(result, path),
        "csv": lambda path: write_csv(findings_frame(result), path),
        "children": lambda path: write_csv(children_frame(result), path, for_excel=True),
        "exceptions": lambda path: write_csv(exceptions_frame(result, table), path, for_excel=True),
        "xlsx": lambda path: _write_xlsx(result, table, path),
        "data_quality": lambda path: write_csv(data_quality_frame(result), path),
        "html": lambda path: _write_html(result, table, path),
    }

    with _staging_folder(out_dir) as staging:

        def write(fmt: str) -> dict[str, Any]:
            path = staging / FILE_NAMES[fmt]
            writers[fmt](path)
            return _manifest_entry(path)

        # The files are independent renderings of one table: write them side by side (polars,
        # zlib and hashlib release the GIL), largest first; the order of `written` is fixed.
        wanted = [fmt for fmt in FORMATS if fmt != "summary" and fmt in chosen]
        with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as pool:
            futures = {fmt: pool.submit(write, fmt) for fmt in sorted(wanted, key=_WRITE_ORDER.index)}
            manifest = {FILE_NAMES[fmt]: futures[fmt].result() for fmt in wanted}

        names = [*manifest, FILE_NAMES["summary"]]
        content = summary(
            result,
            formats=[f for f in FORMATS if f in chosen],
            files=names,
            pseudonymised=pseudonymise_key is not None,
        )
        if pseudonymise_key is not None:
            from custody.pseudonymise import key_id

            content["pseudonymisation_key_id"] = key_id(pseudonymise_key)
        content["manifest"] = manifest
        # The run's id is the digest of its summary (run time and manifest included): each
        # run has its own, and the same result always gives the same bytes.
        content["run_id"] = hashlib.sha256(summary_json(content).encode()).hexdigest()[:16]
        _write_text(summary_json(content), staging / FILE_NAMES["summary"])
        _move_into_place(staging, out_dir, names, run_id=content["run_id"])
    return [out_dir / name for name in names]


# What a folder holds while a run moves its outputs in; its presence means the run did not finish.
INCOMPLETE = "INCOMPLETE"


@contextmanager
def _staging_folder(out_dir: Path) -> Iterator[Path]:
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=out_dir))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _manifest_entry(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
        os.fsync(handle.fileno())
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _move_into_place(staging: Path, out_dir: Path, names: list[str], *, run_id: str) -> None:
    """The staged files renamed into `out_dir`, summary.json last, between writing and
    removing the INCOMPLETE marker; the contract's files this run did not write are removed."""
    _fsync_file(staging / FILE_NAMES["summary"])
    marker = out_dir / INCOMPLETE
    marker.write_text(
        f"custody check run {run_id} was replacing the outputs in this folder and did not finish: "
        "they may come from two runs. Run the check again.\n",
        encoding="utf-8",
    )
    _fsync_file(marker)
    _fsync_dir(out_dir)
    for stale in sorted((set(FILE_NAMES.values()) | _earlier_run_files(out_dir)) - set(names)):
        (out_dir / stale).unlink(missing_ok=True)
    for name in names:  # summary.json is the last name
        os.replace(staging / name, out_dir / name)
    _fsync_dir(out_dir)
    marker.unlink()
    _fsync_dir(out_dir)


def _earlier_run_files(out_dir: Path) -> set[str]:
    """The files the earlier run in `out_dir` wrote, as its summary.json's manifest lists
    them (a name only, never a path): so that a folder never mixes two runs, whatever the
    earlier run's version or formats. Nothing if there is no readable summary."""
    import json

    try:
        earlier = json.loads((out_dir / FILE_NAMES["summary"]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    manifest = earlier.get("manifest") if isinstance(earlier, dict) else None
    if not isinstance(manifest, dict):
        return set()
    return {
        name
        for name in manifest
        if isinstance(name, str)
        and name == Path(name).name
        and not name.startswith(".")
        and name not in ("", INCOMPLETE)
        and (out_dir / name).is_file()
        and not (out_dir / name).is_symlink()
    }


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


# ---------------------------------------------------------------- temporary work


# What earlier runs may have left in --out: the spill folder older versions kept there, the
# staging folder of a run killed while writing its outputs, and files written under a
# temporary name (`atomic_path`) by a run that was killed.
_STAGING_PREFIX = ".custody-staging-"
_LEFTOVER_FOLDERS = (".custody-spill-*", f"{_STAGING_PREFIX}*")
_LEFTOVER_FILES = ".*.tmp-*"


@contextmanager
def private_workspace() -> Iterator[Path]:
    """A folder for a run's temporary work (spilled findings, batches), outside --out and
    readable by this user only (mode 0700, as `tempfile.mkdtemp` makes it), in the system's
    temporary folder (TMPDIR). It is removed when the block ends, however it ends: the
    un-pseudonymised findings in it never outlive the run."""
    remove_stale_workspaces()
    folder = Path(tempfile.mkdtemp(prefix=f"{_WORKSPACE_PREFIX}{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_WORKSPACE_PREFIX = "custody-run-"


def _user_id() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def remove_stale_workspaces(temporary: Path | None = None) -> list[Path]:
    """Remove the private folders of runs that were killed outright (SIGKILL, a crash), so
    their un-pseudonymised findings do not outlive them: this user's folders in the
    temporary folder whose process (its id is in the name) no longer runs."""
    removed = []
    for folder in Path(temporary or tempfile.gettempdir()).glob(f"{_WORKSPACE_PREFIX}*-*"):
        pid = folder.name.removeprefix(_WORKSPACE_PREFIX).split("-", 1)[0]
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == _user_id()
        except OSError:
            continue
        if mine and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_leftovers(out: Path) -> list[Path]:
    """Remove what killed runs left in `out`; the paths removed. A temporary file of a run
    still going (its process id is in the name) is left alone."""
    removed: list[Path] = []
    for folder in (found for pattern in _LEFTOVER_FOLDERS for found in out.glob(pattern)):
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    for path in out.glob(_LEFTOVER_FILES):
        pid = path.name.rsplit("-", 1)[-1]
        if path.is_file() and not (pid.isdigit() and _running(int(pid))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if os.name != "posix":
        return False  # os.kill(pid, 0) would end the process on Windows
    if pid == os.getpid():
        return False  # this run has nothing under way yet: an earlier process had the same id
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True
