"""Compiled rules, kept between runs: a rule folder is read, validated and compiled once, and
later runs over the same files load the result (as Python keeps the bytecode of a module).

The key is a SHA-256 over everything the compiled rules depend on: the bytes and names of
the rule files and `_facts.yaml`, the folder's path as given and resolved (messages name files by it), the
source of this package (a changed compiler is a new key) and the versions of Python, polars,
pydantic and cloudpickle. A changed file is therefore a miss; nothing is ever invalidated by time.

The cache lives in `$CUSTODY_CACHE_DIR`, else `$XDG_CACHE_HOME/custody`, else
`~/.cache/custody`, in a folder only its owner may read. `CUSTODY_NO_CACHE=1` turns it off.
A rule set that does not load (a broken file) is never cached: the error comes as without
a cache. Rule files hold no personal data; the cache holds nothing else.

Entries are pickles that this package wrote; one is loaded only from a folder and a file
owned by the user running the check and not writable by others. An entry that cannot be
read (truncated, from another build) is ignored and rewritten. The newest `KEEP` entries are
kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import cloudpickle  # type: ignore[import-untyped]
import polars as pl
import pydantic

from custody.engine.compile import CompiledRule, compile_rule_set
from custody.engine.evaluate import RulePlan, plan_rules
from custody.engine.rulefile import FACTS_SETTINGS_FILE, RuleSet, load_rule_set, rule_files

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "CUSTODY_CACHE_DIR"
NO_CACHE_ENV = "CUSTODY_NO_CACHE"
KEEP = 32
"""Entries kept in the cache folder (the newest by modification time)."""
_FORMAT = b"custody-rules-cache-2"
_PACKAGE = Path(__file__).resolve().parent.parent

_package_digest: str | None = None


class CompiledSet(NamedTuple):
    """A rule folder ready to evaluate: its rules, compiled, and their evaluation plans."""

    rule_set: RuleSet
    compiled: list[CompiledRule]
    plans: list[RulePlan]


def compile_set(rule_set: RuleSet) -> CompiledSet:
    compiled = compile_rule_set(rule_set)
    return CompiledSet(rule_set, compiled, plan_rules(compiled))


def cache_dir() -> Path | None:
    """Where compiled rules are kept, or None when the cache is turned off."""
    if os.environ.get(NO_CACHE_ENV, "").strip() not in ("", "0"):
        return None
    chosen = os.environ.get(CACHE_DIR_ENV)
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "custody"
    try:
        return Path.home() / ".cache" / "custody"
    except RuntimeError:  # no home folder to be found (a service account): no cache
        return None


def _source_digest() -> str:
    """A digest of this package's Python source (once per process)."""
    global _package_digest
    if _package_digest is None:
        digest = hashlib.sha256()
        for path in sorted(_PACKAGE.rglob("*.py")):
            digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
        _package_digest = digest.hexdigest()
    return _package_digest


def _versions() -> str:
    """The versions of what writes and reads an entry, as the modules give them (reading the
    installed packages' metadata costs a check more time than loading its rules from here):
    polars and pydantic, and cloudpickle, with which polars stores a rule's Python functions
    inside its expressions (read back only when a check runs them: an entry written by
    another cloudpickle loads, then fails in the middle of the check)."""
    return f"polars {pl.__version__}, pydantic {pydantic.VERSION}, cloudpickle {cloudpickle.__version__}"


def cache_key(directory: Path) -> str | None:
    """The key of a rule folder's compiled rules, or None when its files cannot all be read
    (loading it then reports the problem)."""
    digest = hashlib.sha256(_FORMAT)
    for part in (
        sys.version,
        _versions(),
        _source_digest(),
        str(directory),
        str(directory.resolve()),
    ):
        digest.update(part.encode() + b"\0")
    try:
        paths = rule_files(directory)
        settings = directory / FACTS_SETTINGS_FILE
        for path in ([settings] if settings.exists() else []) + paths:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()


def _private(path: Path, *, directory: bool) -> bool:
    """Owned by this user and writable by nobody else (and, for a file, a regular file)."""
    try:
        info = path.lstat()
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if directory else stat.S_ISREG(info.st_mode)
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return kind_ok and owner_ok and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(entry: Path) -> CompiledSet | None:
    if not (_private(entry.parent, directory=True) and _private(entry, directory=False)):
        return None
    try:
        with entry.open("rb") as handle:
            loaded = pickle.load(handle)  # written by this package, in a private folder
    except Exception:  # a truncated or foreign entry: compiled again and rewritten
        log.debug("unreadable rules cache entry %s", entry.name)
        return None
    if not (isinstance(loaded, tuple) and len(loaded) == 3 and isinstance(loaded[0], RuleSet)):
        return None
    return CompiledSet(*loaded)


def _write(folder: Path, entry: Path, value: CompiledSet) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(folder, directory=True):
            return
        handle, temporary = tempfile.mkstemp(prefix=".rules-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                pickle.dump(tuple(value), out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, entry)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        entries = sorted(folder.glob("rules-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except Exception as error:  # a cache that cannot be written only costs the next run the compile
        log.debug("rules cache not written in %s: %s", folder, type(error).__name__)


def load_compiled(directory: Path) -> CompiledSet:
    """The rule set of `directory`, validated, compiled and planned: from the cache when these
    exact files were compiled before by this exact build, else loaded, compiled and cached."""
    folder = cache_dir()
    key = cache_key(directory) if folder is not None else None
    if folder is None or key is None:
        return compile_set(load_rule_set(directory))
    entry = folder / f"rules-{key}.pickle"
    cached = _read(entry) if entry.exists() else None
    if cached is not None:
        return cached
    compiled = compile_set(load_rule_set(directory))
    _write(folder, entry, compiled)
    return compiled
