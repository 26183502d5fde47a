"""The output set of `custody check` (DATA-CONTRACT.md, "Output"): which files, written how.

Each file is a rendering (`custody.render`) of the one findings table in a `CheckResult`.
Three properties hold for every file:

- Safe to open in a spreadsheet (see `custody.render.csv` and `custody.render.xlsx`).
- Atomic. Each file is written under a hidden temporary name in the output folder, flushed
  to disk and renamed over the final name, so a crash never leaves a half-written file
  that looks complete. `summary.json` is written last: it lists the files of its run.
- Deterministic. The same result gives byte-identical findings, children and exceptions
  files (only `summary.json` and `report.html` carry the run time).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from custody.errors import InputError, UsageError
from custody.findings import (
    CheckResult,
    children_frame,
    data_quality_frame,
    data_quality_table,
    exceptions_frame,
    findings_frame,
    summary,
)
from custody.render.csv import write_csv
from custody.render.html import render_html
from custody.render.json import summary_json
from custody.render.parquet import write_findings_parquet
from custody.render.xlsx import write_exceptions_xlsx

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


@contextmanager
def out_folder_errors(out: Path) -> Iterator[None]:
    """A full or read-only --out folder is the user's to fix: one sentence, not an internal error."""
    try:
        yield
    except OSError as error:
        named = Path(str(error.filename)).resolve() if error.filename else None
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        if not full and (named is None or not named.is_relative_to(out.resolve())):
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


def write_outputs(
    result: CheckResult,
    out_dir: Path,
    *,
    formats: frozenset[str],
    pseudonymise_key: str | None = None,
) -> list[Path]:
    """Write the chosen outputs into `out_dir` (created if needed); the paths written, in order.

    `summary.json` is always written, and written last. With `pseudonymise_key`, person and
    custody record ids are replaced by keyed digests in every file (see custody.pseudonymise).
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
    exceptions = exceptions_frame(result) if chosen & {"exceptions", "xlsx", "html"} else pl.DataFrame()
    writers: dict[str, Callable[[Path], None]] = {
        "parquet": lambda path: write_findings_parquet(result, path),
        "csv": lambda path: write_csv(findings_frame(result), path),
        "children": lambda path: write_csv(children_frame(result), path),
        "exceptions": lambda path: write_csv(exceptions, path),
        "xlsx": lambda path: write_exceptions_xlsx(exceptions, path),
        "data_quality": lambda path: write_csv(data_quality_frame(result), path),
        "html": lambda path: _write_text(render_html(result, exceptions=exceptions), path),
    }

    def write(fmt: str) -> Path:
        final = out_dir / FILE_NAMES[fmt]
        with atomic_path(final) as temporary:
            writers[fmt](temporary)
        return final

    # The files are independent renderings of one table: write them side by side (polars
    # and zlib release the GIL), largest first. Each is still atomic; the order of
    # `written` is fixed, and summary.json, which lists them, is written last.
    wanted = [fmt for fmt in FORMATS if fmt != "summary" and fmt in chosen]
    with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as pool:
        futures = {fmt: pool.submit(write, fmt) for fmt in sorted(wanted, key=_WRITE_ORDER.index)}
        written: list[Path] = [futures[fmt].result() for fmt in wanted]

    summary_path = out_dir / FILE_NAMES["summary"]
    content = summary(
        result,
        formats=[f for f in FORMATS if f in chosen],
        files=[path.name for path in (*written, summary_path)],
        pseudonymised=pseudonymise_key is not None,
    )
    with atomic_path(summary_path) as temporary:
        _write_text(summary_json(content), temporary)
    written.append(summary_path)
    return written


def _write_text(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")


# ---------------------------------------------------------------- temporary work


# What earlier runs may have left in --out: the spill folder older versions kept there, and
# files written under a temporary name (`atomic_path`) by a run that was killed.
_LEFTOVER_FOLDERS = ".custody-spill-*"
_LEFTOVER_FILES = ".*.tmp-*"


@contextmanager
def private_workspace() -> Iterator[Path]:
    """A folder for a run's temporary work (spilled findings, batches), outside --out and
    readable by this user only (mode 0700, as `tempfile.mkdtemp` makes it), in the system's
    temporary folder (TMPDIR). It is removed when the block ends, however it ends: the
    un-pseudonymised findings in it never outlive the run."""
    folder = Path(tempfile.mkdtemp(prefix="custody-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_leftovers(out: Path) -> list[Path]:
    """Remove what killed runs left in `out`; the paths removed. A temporary file of a run
    still going (its process id is in the name) is left alone."""
    removed: list[Path] = []
    for folder in out.glob(_LEFTOVER_FOLDERS):
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
