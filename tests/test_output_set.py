"""The --out folder of `custody check`: nothing un-pseudonymised ever in it, temporary work
removed on every way out, leftovers of killed runs cleared, and a whole output set or one
that says it is not."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO
from typer.testing import CliRunner

from custody import cli, outputs
from custody.cli import check as check_command
from custody.findings import CheckResult
from custody.outputs import FILE_NAMES, parse_formats, write_outputs
from custody.pipeline import run_check

KEY = "a private key of enough length"


class Spy:
    """Wraps run_check: records the folder it spills to, then does `then` (if any)."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.spill_dirs: list[Path] = []
        self.then = then

    def __call__(self, *args: Any, **kwargs: Any) -> CheckResult:
        spill_dir: Path = kwargs["spill_dir"]
        self.spill_dirs.append(spill_dir)
        result = run_check(*args, **kwargs)
        assert (spill_dir / "findings.parquet").is_file()
        if self.then is not None:
            self.then()
        return result


def check(runner: CliRunner, out: Path, *extra: str) -> Any:
    return runner.invoke(cli.app, ["check", str(DEMO), "--out", str(out), "-q", *extra])


def test_temporary_work_is_private_outside_out_and_removed(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy()
    monkeypatch.setattr(check_command, "run_check", spy)
    out = tmp_path / "out"
    result = check(runner, out, "--pseudonymise-key", KEY)
    assert result.exit_code == 0, result.output
    (spill,) = spy.spill_dirs
    assert not spill.resolve().is_relative_to(out.resolve())
    assert not spill.exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_the_private_folder_is_readable_by_this_user_only(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    spy = Spy(then=lambda: modes.append(stat.S_IMODE(spy.spill_dirs[0].stat().st_mode)))
    monkeypatch.setattr(check_command, "run_check", spy)
    assert check(runner, tmp_path / "out").exit_code == 0
    assert modes == [0o700]


def fail() -> None:
    raise RuntimeError("disk on fire")


def terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("then", "exit_code"),
    [(fail, 2), (terminate, 128 + signal.SIGTERM), (interrupt, 130)],
    ids=["error", "SIGTERM", "Ctrl-C"],
)
def test_the_private_folder_is_removed_on_every_way_out(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: Callable[[], None], exit_code: int
) -> None:
    spy = Spy(then=then)
    monkeypatch.setattr(check_command, "run_check", spy)
    previous = signal.getsignal(signal.SIGTERM)
    result = check(runner, tmp_path / "out", "--pseudonymise-key", KEY)
    assert result.exit_code == exit_code, result.output
    (spill,) = spy.spill_dirs
    assert not spill.exists()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_leftovers_of_killed_runs_are_removed(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spill = out / ".custody-spill-abc123"
    spill.mkdir(parents=True)
    (spill / "findings.parquet").write_bytes(b"real ids")
    half_written = out / ".findings.csv.tmp-999999999"
    half_written.write_text("real ids")
    result = check(runner, out)
    assert result.exit_code == 0, result.output
    assert not spill.exists()
    assert not half_written.exists()


# ---------------------------------------------------------------- whole output sets


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_summary_lists_each_file_with_its_size_and_digest(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["manifest"]) == set(FILE_NAMES.values()) - {"summary.json"}
    for name, entry in summary["manifest"].items():
        data = (tmp_path / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert re.fullmatch(r"[0-9a-f]{16}", summary["run_id"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILE_NAMES.values())


def test_a_run_with_fewer_formats_leaves_no_file_of_the_earlier_run(result: CheckResult, tmp_path: Path) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"))
    write_outputs(result, tmp_path, formats=parse_formats("parquet"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.parquet", "summary.json"]


def test_a_run_failing_while_writing_leaves_the_folder_as_it_was(
    result: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"))
    before = snapshot(tmp_path)

    def disk_full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "_write_xlsx", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_outputs(result, tmp_path, formats=parse_formats("all"))
    assert snapshot(tmp_path) == before


def test_a_run_killed_while_moving_its_files_in_says_so(
    result: CheckResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(result, tmp_path, formats=parse_formats("all"))
    moved: list[str] = []
    real_replace = os.replace

    def killed_after_one(source: Path, target: Path) -> None:
        if moved:
            raise KeyboardInterrupt
        moved.append(Path(target).name)
        real_replace(source, target)

    monkeypatch.setattr(outputs.os, "replace", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(result, tmp_path, formats=parse_formats("csv"))
    assert "did not finish" in (tmp_path / outputs.INCOMPLETE).read_text()
    assert moved == ["findings.csv"]
    # the files of the earlier run are gone or replaced: never two runs that look complete
    assert not (tmp_path / "exceptions.csv").exists()

    monkeypatch.setattr(outputs.os, "replace", real_replace)
    write_outputs(result, tmp_path, formats=parse_formats("csv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.csv", "summary.json"]


def test_a_staging_folder_left_by_a_killed_run_is_removed(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = out / ".custody-staging-x1y2"
    staging.mkdir(parents=True)
    (staging / "findings.csv").write_text("half")
    assert check(runner, out).exit_code == 0
    assert not staging.exists()


def test_private_folders_of_killed_runs_are_removed(tmp_path: Path) -> None:
    # A run killed outright (SIGKILL) cannot remove its private folder: the next run does,
    # unless that run is still going.
    import subprocess
    import sys

    from custody.outputs import remove_stale_workspaces

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"custody-run-{int(finished.stdout)}-abc123"
    alive = tmp_path / f"custody-run-{os.getppid()}-def456"
    other = tmp_path / "custody-cases-xyz"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "findings.parquet").write_bytes(b"raw ids")
    assert remove_stale_workspaces(tmp_path) == [dead]
    assert not dead.exists()
    assert alive.exists()
    assert other.exists()
