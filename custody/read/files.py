"""What kind of thing a path names, checked before it is opened: only regular files are read.

A FIFO blocks the reader until something writes to it, and a device (`/dev/zero`) never
ends, so both are refused by what `stat` says, without opening them.
"""

from __future__ import annotations

import stat
from pathlib import Path

FOLDER = "a folder"
_KINDS = (
    (stat.S_ISDIR, FOLDER),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def not_a_regular_file(path: Path) -> str | None:
    """None for a regular file (or a link to one); otherwise what the path is, e.g. "a FIFO (named pipe)".

    Raises OSError (FileNotFoundError for a missing file or a dangling link) as `stat` does.
    """
    mode = path.stat().st_mode
    if stat.S_ISREG(mode):
        return None
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "not a regular file")
