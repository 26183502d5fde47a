"""Errors a person can act on.

An `InputError` stops the run: the input cannot be read as the data contract
describes (a missing file or column, a file that is not a table). Its text is
one sentence that names the file (or option) and says what to do; the CLI
prints it as is, with no traceback, and exits with code 2.

Problems with single rows or values are never errors: they go to the
data-quality table (see `custody.read.loader`).
"""

from __future__ import annotations


class InputError(Exception):
    """A structural problem with the input. `str(error)` is one sentence naming the file and the fix."""


class UsageError(InputError):
    """A bad combination of command-line options or arguments."""
