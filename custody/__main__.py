"""`python -m custody`: the same as the `custody` command."""

from custody.cli import main

main()
