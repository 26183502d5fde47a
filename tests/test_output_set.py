"""The --out folder of `custody check`: nothing un-pseudonymised ever in it, temporary work
removed on every way out, leftovers of killed runs cleared."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO
from typer.testing import CliRunner

from custody import cli
from custody.cli import check as check_command
from custody.findings import CheckResult
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
