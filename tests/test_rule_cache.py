"""Compiled rules kept between runs (custody.engine.cache): a hit gives exactly what compiling
gives, any change to the files is a miss, and a bad or foreign entry is never trusted."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import DEMO, RULES_DIR
from polars.testing import assert_frame_equal

from custody.engine import cache
from custody.engine.rulefile import RuleFileError
from custody.pipeline import check, prepare_rules


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


@pytest.fixture
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    return folder


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("rules-*.pickle"))


def test_a_hit_gives_the_findings_of_a_fresh_compile(
    rules_copy: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prepare_rules(rules_copy)
    assert len(_entries(cache_folder)) == 1
    written = _entries(cache_folder)[0].stat().st_mtime_ns
    cached = prepare_rules(rules_copy)
    assert _entries(cache_folder)[0].stat().st_mtime_ns == written  # read, not rewritten
    assert cached is not first
    # The evaluation plans come back with the rules they plan (so evaluation uses them as they are).
    assert cached.plans is not None
    assert [id(plan.rule) for plan in cached.plans] == [id(r) for r in sorted(cached.compiled, key=lambda r: r.rule_id)]
    assert cached.rule_set.digest == first.rule_set.digest
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    fresh = prepare_rules(rules_copy)
    from_cache = check(DEMO, rules=cached).findings
    compiled = check(DEMO, rules=fresh).findings
    assert isinstance(from_cache, pl.DataFrame)
    assert isinstance(compiled, pl.DataFrame)
    assert from_cache.height > 100
    assert_frame_equal(from_cache, compiled)


def test_a_changed_rule_file_is_compiled_again(rules_copy: Path, cache_folder: Path) -> None:
    before = prepare_rules(rules_copy)
    path = rules_copy / "PACE-AA.yaml"
    path.write_text(path.read_text().replace("aa_delay_threshold: 2h", "aa_delay_threshold: 3h"))
    after = prepare_rules(rules_copy)
    assert len(_entries(cache_folder)) == 2
    assert after.rule_set.digest != before.rule_set.digest
    params = [v.params["aa_delay_threshold"] for v in after.rule_set.get("PACE-AA").rule.versions]  # type: ignore[union-attr]
    assert params == ["3h", "3h"]


@pytest.mark.parametrize("library", ["polars", "pydantic", "cloudpickle"])
def test_another_version_of_what_reads_an_entry_is_a_miss(
    rules_copy: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    """polars stores a rule's Python functions with cloudpickle inside its expressions, and
    reads them back only when a check runs them: an entry another version wrote would load,
    then fail in the middle of a check. Each version is part of the key."""
    prepare_rules(rules_copy)
    module = {"polars": cache.pl, "pydantic": cache.pydantic, "cloudpickle": cache.cloudpickle}[library]
    attribute = "VERSION" if library == "pydantic" else "__version__"
    monkeypatch.setattr(module, attribute, "0.0.1")
    prepare_rules(rules_copy)
    assert len(_entries(cache_folder)) == 2


def test_a_broken_rule_file_is_reported_and_never_cached(rules_copy: Path, cache_folder: Path) -> None:
    (rules_copy / "PACE-AA.yaml").write_text("id: PACE-AA\ntitle: [unclosed\n")
    with pytest.raises(RuleFileError, match=r"PACE-AA\.yaml"):
        prepare_rules(rules_copy)
    assert _entries(cache_folder) == []


def test_an_unreadable_entry_is_compiled_again_and_replaced(rules_copy: Path, cache_folder: Path) -> None:
    prepare_rules(rules_copy)
    (entry,) = _entries(cache_folder)
    entry.write_bytes(b"not a pickle")
    again = prepare_rules(rules_copy)
    assert len(again.compiled) == len(again.rule_set.rules) > 10
    assert entry.read_bytes() != b"not a pickle"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="file modes are POSIX")
def test_an_entry_others_may_write_is_not_trusted(
    rules_copy: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_rules(rules_copy)
    (entry,) = _entries(cache_folder)
    entry.chmod(0o666)
    loaded: list[Path] = []
    monkeypatch.setattr(cache.pickle, "load", lambda handle: loaded.append(Path(handle.name)))
    prepare_rules(rules_copy)
    assert loaded == []  # compiled again, never unpickled


def test_no_cache_writes_nothing(rules_copy: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    prepare_rules(rules_copy)
    assert not cache_folder.exists()


def test_the_cache_keeps_only_the_newest_entries(
    rules_copy: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "KEEP", 2)
    path = rules_copy / "PACE-AA.yaml"
    text = path.read_text()
    for hours in (3, 4, 5):
        path.write_text(text.replace("aa_delay_threshold: 2h", f"aa_delay_threshold: {hours}h"))
        prepare_rules(rules_copy)
    assert len(_entries(cache_folder)) == 2


def test_without_a_home_folder_the_rules_load_uncached(rules_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (cache.CACHE_DIR_ENV, "XDG_CACHE_HOME", cache.NO_CACHE_ENV):
        monkeypatch.delenv(name, raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(cache.Path, "home", no_home)
    assert cache.cache_dir() is None
    assert len(prepare_rules(rules_copy).compiled) > 10
