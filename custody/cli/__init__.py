"""The `custody` command: a thin layer over the library.

Errors for people: an `InputError` (or `UsageError`) prints one sentence to stderr,
"error: ...", and exits with code 2; anything unexpected prints one line, "internal
error: ...", and also exits 2. `--verbose` prints the full traceback first; the exit
code is the same.

Each command lives in a module of this package as a plain function; this file builds the
one `app` from them, so the list below is the whole command set.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from custody.cli import check as check_commands
from custody.cli import diff as diff_commands
from custody.cli import records as record_commands
from custody.cli.profile import profile_app
from custody.cli.rules import rules_app
from custody.contract import CONTRACT_VERSION
from custody.errors import InputError
from custody.version import __version__

EXIT_INPUT_ERROR = 2


class _CustodyGroup(TyperGroup):
    """Turns errors into one line on stderr and exit code 2 (after the traceback with --verbose)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own flow: exits, usage errors, --help
        except BrokenPipeError:
            # The reader went away (`custody explain ... | head`): stop quietly, as Unix tools do.
            # Point stdout at nothing so that flushing it at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as error:
            verbose = bool(ctx.params.get("verbose"))
            if verbose:
                traceback.print_exception(error, file=sys.stderr)
            typer.echo(_one_line(error, verbose=verbose), err=True)
            raise typer.Exit(EXIT_INPUT_ERROR) from None


def _one_line(error: Exception, *, verbose: bool = False) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, InputError):
        return f"error: {text}"
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    then = "report it with the traceback above" if verbose else "re-run with --verbose and report it"
    return f"internal error: {detail}; {then}"


app = typer.Typer(
    name="custody",
    cls=_CustodyGroup,
    help="Check children's police custody records (England & Wales) against PACE, Code C and the Mental Health Act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"custody {__version__} (data contract v{CONTRACT_VERSION})")
        raise typer.Exit()


@app.callback()
def _options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the full traceback when something goes wrong.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Check children's police custody records (England & Wales) against the law.

    Start with `custody schema` (what the input must look like) and
    `custody validate RECORDS` (what the checker can and cannot use).
    """


app.command("check")(check_commands.check)
app.command("explain")(check_commands.explain)
app.command("validate")(record_commands.validate)
app.command("schema")(record_commands.schema)
app.command("generate")(check_commands.generate)
app.command("diff")(diff_commands.diff)
app.add_typer(rules_app)
app.add_typer(profile_app)


def main() -> None:
    """Entry point of the `custody` console script."""
    app()
