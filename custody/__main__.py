"""`python -m custody` and the `custody` console script."""

from __future__ import annotations

import gc


def main() -> None:
    """Run the `custody` command.

    Importing the command's modules (polars, pydantic, typer, rich and ours) makes some
    110,000 objects that live as long as the process, and the garbage collector scans
    them again and again while they are being made: about a tenth of a small check's
    time. So collection is paused during those imports, and what they made is then
    frozen (`gc.freeze`: never scanned again, never freed before exit). The collector
    runs as usual for everything the command itself makes.
    """
    gc.disable()
    try:
        from custody.cli import main as run_command
    finally:
        gc.freeze()
        gc.enable()
    run_command()


if __name__ == "__main__":
    main()
