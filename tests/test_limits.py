"""Bounded inputs and one-sentence errors (issue 16): rule files, rule expressions, record-set
files and --out folders that are hostile or faulty are refused in one sentence, exit 2, before
they can hang the run or take its memory; the sentence never quotes a record's contents."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO, RULES_DIR
from typer.testing import CliRunner

from custody import cli, outputs
from custody.engine import compile as rule_compile
from custody.engine import expr
from custody.engine.expr import MAX_EXPRESSION_CHARS, ExpressionError, Scope, compile_condition
from custody.engine.rulefile import MAX_RULE_FILE_BYTES, RuleFileError, load_rule_set
from custody.facts import fact_specs

APPLIES = "applies: >\n    cell_placed_count > 0\n"


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A test that would block (a FIFO read) fails after 20 s instead of hanging the suite."""

    def timed_out(signum: int, frame: object) -> None:
        raise TimeoutError("the command blocked")

    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _error_line(result: object, *names: str) -> str:
    """The one stderr line of a refused command (exit 2), which names each of `names`."""
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines[0]
    for name in names:
        assert name in lines[0]
    return str(lines[0])


def _rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    return folder


def _edit_rule(folder: Path, old: str, new: str, name: str = "PACE-CELL.yaml") -> Path:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _lint(runner: CliRunner, folder: Path) -> object:
    return runner.invoke(cli.app, ["rules", "lint", "--rules", str(folder)])


# ---------------------------------------------------------------- 1. rule files


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "folder"])
def test_a_rule_file_that_is_not_a_regular_file_is_refused_unread(runner: CliRunner, tmp_path: Path, kind: str) -> None:
    folder = _rules(tmp_path)
    path = folder / "ODD-RULE.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    line = _error_line(_lint(runner, folder), str(path))
    assert {"fifo": "a FIFO", "dev_zero": "a character device", "folder": "a folder"}[kind] in line


def test_a_rule_file_larger_than_the_cap_is_refused_before_it_is_read(runner: CliRunner, tmp_path: Path) -> None:
    folder = _rules(tmp_path)
    path = folder / "BIG-RULE.yaml"
    path.write_bytes(b"# padding\n" * (MAX_RULE_FILE_BYTES // 10 + 1))
    assert f"larger than {MAX_RULE_FILE_BYTES:,} bytes" in _error_line(_lint(runner, folder), str(path))


def test_a_yaml_alias_bomb_is_refused_with_its_line(runner: CliRunner, tmp_path: Path) -> None:
    folder = _rules(tmp_path)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10^10 values
    path = folder / "BOMB-RULE.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    line = _error_line(_lint(runner, folder), f"{path}:6:")
    assert "aliases" in line


@pytest.mark.parametrize("depth", [100, 50_000])
def test_yaml_nested_beyond_the_cap_is_refused_not_a_crash(tmp_path: Path, depth: int) -> None:
    # 50,000 levels used to crash the interpreter (libyaml composes recursively). Beyond our
    # cap the file is refused with its line; PyYAML 6.0.4 and later also refuse very deep
    # nesting in their own parser, with their own words: either is one sentence, no crash.
    path = tmp_path / "DEEP-RULE.yaml"
    path.write_text("a: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    ours = r"nests more than \d+ levels deep"
    either = ours if depth < 1000 else rf"({ours}|is not valid YAML: exceeded maximum nesting depth)"
    with pytest.raises(RuleFileError, match=rf"DEEP-RULE.yaml:1: {either}"):
        load_rule_set(tmp_path)


def test_the_shipped_aliases_are_within_the_bounds() -> None:
    assert load_rule_set(RULES_DIR).get("S38-GROUNDS") is not None  # it uses &anchors and *aliases


def test_an_unhashable_yaml_key_is_one_sentence_with_its_line(runner: CliRunner, tmp_path: Path) -> None:
    folder = _rules(tmp_path)
    path = _edit_rule(
        folder, "      juvenile_age_limit: 18\n", "      juvenile_age_limit: 18\n      ? [a, b]\n      : 1\n"
    )
    line = _error_line(_lint(runner, folder), str(path))
    assert "unhashable key" in line
    assert f"{path}:" in line


@pytest.mark.parametrize("date", ["9999-12-31", "0001-01-01"])
def test_an_extreme_effective_date_is_one_sentence(runner: CliRunner, tmp_path: Path, date: str) -> None:
    folder = _rules(tmp_path)
    path = _edit_rule(folder, "effective_to: 2013-10-26", f"effective_to: {date}")
    line = _error_line(_lint(runner, folder), f"{path}:", "effective_to")
    assert "leave effective_to out" in line


# ---------------------------------------------------------------- 2. rule expressions


def _applies(runner: CliRunner, tmp_path: Path, condition: str) -> str:
    folder = _rules(tmp_path)
    path = _edit_rule(folder, APPLIES, f"applies: >\n    {condition}\n")
    return _error_line(_lint(runner, folder), f"{path}:", "logic.applies")


def test_an_expression_longer_than_the_cap_is_refused_naming_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    line = _applies(runner, tmp_path, " and ".join(["cell_placed_count > 0"] * 3_000))
    assert f"more than {MAX_EXPRESSION_CHARS:,}" in line


@pytest.mark.parametrize(
    "condition",
    [
        "not " * 3_000 + "cell_placed_count > 0",  # RecursionError in the parser, before
        "not " * 1_000 + "cell_placed_count > 0",
        "-" * 3_000 + "cell_placed_count > 0",
        " - ".join(["cell_placed_count"] * 500) + " > 0",
    ],
    ids=["not-3000", "not-1000", "minus-3000", "subtractions-500"],
)
def test_an_expression_nested_too_deeply_is_refused(condition: str) -> None:
    with pytest.raises(ExpressionError, match=r"levels deep|characters long"):
        compile_condition(condition, Scope(fact_specs()))


def test_deep_nesting_in_a_rule_file_is_one_sentence(runner: CliRunner, tmp_path: Path) -> None:
    assert "levels deep" in _applies(runner, tmp_path, "not " * 1_000 + "cell_placed_count > 0")


def test_a_long_flat_and_chain_is_split_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 terms took 84 s: every part was found by ast.get_source_segment, which re-splits the text.
    monkeypatch.setattr(expr, "MAX_EXPRESSION_CHARS", 1_000_000)
    terms = [f"cell_placed_count > {i}" for i in range(3_000)]
    started = time.perf_counter()
    parts = rule_compile._conjuncts("\n and ".join(terms))
    assert time.perf_counter() - started < 5
    assert parts == terms


@pytest.mark.parametrize("duration", ["hours(1e999)", "days(1e12)", "minutes(-1e999)", "hours(big)", "hours(inf)"])
def test_a_non_finite_or_absurd_duration_is_refused(duration: str) -> None:
    scope = Scope(fact_specs(), {"big": "99999999999999999999h", "inf": float("inf")})
    with pytest.raises(ExpressionError, match="not a duration a rule can use"):
        compile_condition(f"released_at - arrival_at > {duration}", scope)


def test_hours_1e999_in_a_rule_file_is_one_sentence(runner: CliRunner, tmp_path: Path) -> None:
    line = _applies(runner, tmp_path, "hours(1e999) > hours(1) and cell_placed_count > 0")
    assert "not a duration a rule can use" in line


# ---------------------------------------------------------------- 3. record-set files


def _special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
@pytest.mark.parametrize("how", ["events_option", "detentions_argument", "in_the_folder"])
def test_a_fifo_socket_or_device_as_a_table_is_refused_before_opening(runner: CliRunner, kind: str, how: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lim") as short:  # a socket's path must be short
        folder = Path(short)
        special = folder / "events.csv"
        _special(special, kind)
        detentions = folder / "detentions.csv"
        shutil.copy(DEMO / "detentions.csv", detentions)
        source = {
            "events_option": [str(detentions), "--events", str(special)],
            "detentions_argument": [str(special), "--events", str(DEMO / "events.csv")],
            "in_the_folder": [str(folder)],
        }[how]
        result = runner.invoke(cli.app, ["validate", *source, "--out", str(folder / "out")])
        line = _error_line(result, str(special))
    assert {"fifo": "a FIFO", "device": "a character device", "socket": "a socket"}[kind] in line


def test_a_missing_events_file_is_still_named(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "events.csv"
    result = runner.invoke(cli.app, ["validate", str(DEMO / "detentions.csv"), "--events", str(missing)])
    assert "does not exist" in _error_line(result, str(missing))


# ---------------------------------------------------------------- 4. --out


@pytest.mark.parametrize("command", ["check", "validate"])
def test_a_dangling_link_as_out_is_one_sentence(runner: CliRunner, tmp_path: Path, command: str) -> None:
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "nowhere" / "folder")
    result = runner.invoke(cli.app, [command, str(DEMO), "--out", str(out)])
    assert "which does not exist: create that folder" in _error_line(result, str(out))


@pytest.mark.parametrize("command", ["check", "validate"])
def test_an_out_below_a_file_is_one_sentence(runner: CliRunner, tmp_path: Path, command: str) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out"
    result = runner.invoke(cli.app, [command, str(DEMO), "--out", str(out)])
    assert "give a folder path" in _error_line(result, str(out))


@pytest.mark.parametrize("command", ["check", "validate"])
@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.EROFS, "give an --out folder you can write to"),
        (errno.EACCES, "give an --out folder you can write to"),
        (errno.EPERM, "give an --out folder you can write to"),
        (errno.ENOSPC, "free some space there"),
    ],
    ids=["read-only", "EACCES", "EPERM", "full"],
)
def test_an_out_folder_that_cannot_be_written_is_one_sentence(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, code: int, fix: str
) -> None:
    out = tmp_path / "out"

    def refuse(*args: object, dir: Path, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(Path(dir) / "probe"))

    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", refuse)
    result = runner.invoke(cli.app, [command, str(DEMO), "--out", str(out)])
    assert fix in _error_line(result, str(out), os.strerror(code))


def test_a_disk_that_fills_while_validate_writes_is_one_sentence(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs, "write_csv", full)
    out = tmp_path / "out"
    result = runner.invoke(cli.app, ["validate", str(DEMO), "--out", str(out)])
    assert "free some space there" in _error_line(result, str(out))
    assert not list(out.iterdir())


# ---------------------------------------------------------------- 5. --verbose keeps exit codes


def test_verbose_prints_the_traceback_and_keeps_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(cli.app, ["--verbose", "validate", str(missing), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {missing} does not exist")


def test_verbose_keeps_exit_2_for_an_internal_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import custody.cli.records as record_commands

    def broken(source: object, **options: object) -> None:
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(record_commands, "load_record_set", broken)
    result = runner.invoke(cli.app, ["--verbose", "validate", str(DEMO), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "internal error: RuntimeError: something unexpected; report it with the traceback above"
    )


# ---------------------------------------------------------------- 6. no cell contents in errors


@pytest.mark.parametrize(
    "bad_line",
    [
        '"R-9",2015-07-01T10:00:00,note,"SECRET NOTE about the child, who said\n',  # unclosed, at the end
        '"R-9",2015-07-01T10:00:00,note,"SECRET NOTE about the child\nR-10,SECRET x,y\n',
    ],
    ids=["at-the-end", "running-on"],
)
def test_an_unterminated_quote_never_prints_the_note(runner: CliRunner, tmp_path: Path, bad_line: str) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    shutil.copy(DEMO / "detentions.csv", folder)
    (folder / "events.csv").write_text(
        "custody_record_id,event_time,event_type,note\nR-1,2015-07-01T09:00:00,arrival,fine\n" + bad_line,
        encoding="utf-8",
    )
    result = runner.invoke(cli.app, ["validate", str(folder), "--out", str(tmp_path / "o")])
    line = _error_line(result, str(folder / "events.csv"))
    assert "SECRET" not in result.output
    assert "quoted value in column 'note' is not closed" in line


# ---------------------------------------------------------------- XLSX record sets


def _xlsx_record_set(folder: Path) -> Path:
    import polars as pl

    folder.mkdir()
    for table in ("detentions", "events"):
        pl.read_csv(DEMO / f"{table}.csv", infer_schema=False).head(3).write_excel(folder / f"{table}.xlsx")
    return folder


def _claim_rows(workbook: Path, rows: int) -> None:
    """Rewrite the first sheet's <dimension> to claim `rows` rows (as a hostile file could)."""
    import re
    import zipfile

    members = {}
    with zipfile.ZipFile(workbook) as book:
        for info in book.infolist():
            members[info.filename] = book.read(info)
    sheet = "xl/worksheets/sheet1.xml"
    members[sheet] = re.sub(
        rb'<dimension ref="A1:([A-Z]+)[0-9]+"', rb'<dimension ref="A1:\g<1>' + str(rows).encode() + b'"', members[sheet]
    )
    with zipfile.ZipFile(workbook, "w", zipfile.ZIP_DEFLATED) as book:
        for name, data in members.items():
            book.writestr(name, data)


def test_an_xlsx_claiming_more_rows_than_excel_allows_is_refused_unread(runner: CliRunner, tmp_path: Path) -> None:
    folder = _xlsx_record_set(tmp_path / "records")
    assert runner.invoke(cli.app, ["validate", str(folder), "--out", str(tmp_path / "ok")]).exit_code == 0
    _claim_rows(folder / "events.xlsx", 15_000_000)
    result = runner.invoke(cli.app, ["validate", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = _error_line(result, "events.xlsx")
    assert "more rows than Excel allows (1,048,576)" in line
    assert "CSV or Parquet" in line


def test_an_xlsx_sheet_beyond_the_size_cap_is_refused_unread(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from custody.read import loader

    folder = _xlsx_record_set(tmp_path / "records")
    monkeypatch.setattr(loader, "XLSX_MAX_SHEET_BYTES", 100)
    result = runner.invoke(cli.app, ["validate", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "larger than an .xlsx record set can be read" in _error_line(result, "detentions.xlsx")
