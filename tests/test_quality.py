"""The package stays lint-clean (ruff) and type-clean (mypy --strict), as CI requires."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "custody"],
        [sys.executable, "-m", "ruff", "format", "--check", "custody"],
        [sys.executable, "-m", "mypy", "custody"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_package_is_clean(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
