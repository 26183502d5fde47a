"""Checking a large Parquet record set in batches of children gives exactly the one-pass result."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import RULES_DIR
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import custody.engine.evaluate as evaluate_module
import custody.read.batches as batches_module
from custody import cli
from custody.engine.evaluate import evaluate_chunks
from custody.facts import in_child_order
from custody.generate import generate_record_set
from custody.pipeline import CheckResult, facts_for, prepare_rules, run_check
from custody.pseudonymise import pseudonymise
from custody.read.batches import plan_batches
from custody.read.loader import load_record_set

ROOT = Path(__file__).resolve().parent.parent
MESSY = ROOT / "sample_records" / "messy"
runner = CliRunner()


@pytest.fixture(scope="module")
def messy_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The messy sample (duplicates, orphans, rejected parents, bad values) as Parquet text columns."""
    folder = tmp_path_factory.mktemp("messy")
    for table in ("detentions", "events"):
        pl.read_csv(MESSY / f"{table}.csv", infer_schema=False).write_parquet(folder / f"{table}.parquet")
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    generate_record_set(folder, 400, seed=11)
    return folder


def _check(source: Path, spill: Path, batch_records: int) -> CheckResult:
    spill.mkdir()
    return run_check(source, spill_dir=spill, batch_records=batch_records)


def _assert_same(whole: CheckResult, batched: CheckResult) -> None:
    findings = whole.findings.lazy().collect()
    assert findings.height > 0
    assert_frame_equal(findings, batched.findings.lazy().collect())
    assert_frame_equal(whole.data_quality, batched.data_quality)
    assert_frame_equal(whole.records, batched.records)
    assert whole.headline == batched.headline
    assert whole.meta["counts"] == batched.meta["counts"]


@pytest.mark.parametrize("batch_records", [3])
def test_messy_records_in_batches_match_one_pass(
    messy_parquet: Path, tmp_path: Path, batch_records: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tables are split a slice of rows at a time: slices of 7 rows keep the row numbers exact.
    monkeypatch.setattr(batches_module, "SPLIT_ROWS", 7)
    files = {t: messy_parquet / f"{t}.parquet" for t in ("detentions", "events")}
    batches = plan_batches(files, tmp_path / "plan", batch_records)
    assert batches is not None
    assert len(batches) > 2
    whole = _check(messy_parquet, tmp_path / "whole", 10**9)
    batched = _check(messy_parquet, tmp_path / "batched", batch_records)
    _assert_same(whole, batched)
    # The planted problems are all still reported, once each.
    issues = set(
        batched.data_quality["reason"].str.extract(r"(with different values|not in detentions|rejected in detentions)")
    )
    assert {"with different values", "not in detentions", "rejected in detentions"} <= issues


def test_generated_records_in_batches_match_one_pass(generated: Path, tmp_path: Path) -> None:
    whole = _check(generated, tmp_path / "whole", 10**9)
    assert whole.findings_file is not None  # one pass: the findings are written as computed
    batched = _check(generated, tmp_path / "batched", 200)
    assert batched.meta["batches"] == 2
    # Every batch appends its findings to the one findings file: nothing else is left.
    assert batched.findings_file == tmp_path / "batched" / "findings.parquet"
    assert [p.name for p in (tmp_path / "batched").iterdir() if p.is_file()] == ["findings.parquet"]
    assert_frame_equal(pl.read_parquet(batched.findings_file), pl.read_parquet(whole.findings_file))
    _assert_same(whole, batched)


def test_findings_come_by_child_record_and_rule_however_the_work_is_split(generated: Path) -> None:
    rules = prepare_rules()
    facts = facts_for(load_record_set(generated), rules)
    whole = pl.concat(list(evaluate_chunks(facts, rules.compiled, chunk_records=10**9)))
    pieces = list(evaluate_chunks(facts, rules.compiled, chunk_records=7))
    assert len(pieces) > 50
    assert_frame_equal(pl.concat(pieces), whole)
    # The order users are promised: child, then the child's records by arrival, then rule id
    # (then occasion).
    order = facts.records.select("custody_record_id", pl.int_range(pl.len()).alias("position"))
    placed = whole.with_columns(pl.col("rule_id").cast(pl.String)).join(
        order, on="custody_record_id", how="left", maintain_order="left"
    )
    assert placed["position"].is_sorted()
    assert placed.sort("position", "rule_id", "trigger_at", maintain_order=True).equals(placed)
    assert placed["person_id"].is_sorted()


def test_chunks_are_sized_by_the_columns_the_rules_add(generated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default a chunk holds about CHUNK_CELLS values: a rule folder with fewer rules (fewer
    columns to decide on) takes more records at a time, and the chunks still make the same
    findings as one pass."""
    records = load_record_set(generated)
    every, core = prepare_rules(), prepare_rules(_core_rules(generated.parent))
    facts = facts_for(records, every)
    core_facts = facts_for(records, core)
    whole = pl.concat(list(evaluate_chunks(facts, every.compiled, chunk_records=10**9)))
    core_whole = pl.concat(list(evaluate_chunks(core_facts, core.compiled, chunk_records=10**9)))
    monkeypatch.setattr(evaluate_module, "CHUNK_CELLS", 5_000)
    pieces = list(evaluate_chunks(facts, every.compiled))
    core_pieces = list(evaluate_chunks(core_facts, core.compiled))
    assert 1 < len(core_pieces) < len(pieces)
    assert_frame_equal(pl.concat(pieces), whole)
    assert_frame_equal(pl.concat(core_pieces), core_whole)


def _core_rules(folder: Path) -> Path:
    """A rules folder holding the three S38 rules and the facts settings."""
    target = folder / "core-rules"
    target.mkdir(exist_ok=True)
    for name in ("S38-REQUEST", "S38-TRANSFER", "S38-CERTIFICATE", "_facts"):
        shutil.copy(RULES_DIR / f"{name}.yaml", target / f"{name}.yaml")
    return target


@pytest.mark.parametrize("by_hash", [True, False])
def test_every_row_is_in_exactly_one_batch(tmp_path: Path, by_hash: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches_module, "ROUTE_BY_HASH", by_hash)
    pl.DataFrame(
        {
            "custody_record_id": ["R1", "R2", " R3", "R3", None, "R5", "R6", "R7"],
            "person_id": ["P2", "P1", "P3", "P9", "P4", None, "P1", "P2"],
        }
    ).write_parquet(tmp_path / "detentions.parquet")
    pl.DataFrame(
        {"custody_record_id": ["R1 ", "R2", "R3", "R4", None, "R5", "R6", "R7", "R7", ""]},
    ).write_parquet(tmp_path / "events.parquet")
    files = {t: tmp_path / f"{t}.parquet" for t in ("detentions", "events")}
    batches = plan_batches(files, tmp_path / "plan", 2)
    assert batches is not None
    member = {
        table: pl.concat(
            pl.read_ipc(piece).select(pl.col("_row") - 1, pl.lit(batch.index).alias("batch"))
            for batch in batches
            for piece in getattr(batch, table)
        ).sort("_row")
        for table in files
    }
    assert member["detentions"]["_row"].to_list() == list(range(8))
    assert member["events"]["_row"].to_list() == list(range(10))
    # Each piece holds the file's columns, in file order.
    first = pl.read_ipc(batches[0].events[0])
    assert set(first.columns) == {"custody_record_id", "_row"}
    assert first["_row"].is_sorted()
    det = dict(zip(member["detentions"]["_row"], member["detentions"]["batch"], strict=True))
    ev = dict(zip(member["events"]["_row"], member["events"]["batch"], strict=True))
    # A child's records stay together (P1: R2 and R6; P2: R1 and R7), with their events;
    # the rows of a repeated id go together whatever their child; ids trimmed as the loader does.
    assert det[1] == det[6] == ev[1] == ev[6]
    assert det[0] == det[7] == ev[0] == ev[7] == ev[8]
    assert det[2] == det[3] == ev[2]
    # No id, no child, or an id in no detentions row: the first batch.
    assert det[4] == det[5] == ev[3] == ev[4] == ev[5] == ev[9] == 0


def test_unique_ids_are_batched_as_by_the_general_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each id once (the usual export): the rows are sorted by child alone and routed by hash;
    # the batches are those the general path (ids compared as text) makes.
    persons = ["P5", "P1", None, "P3", "P1", "P9", "P2", None, "P3", "P4", "P6", "P5"]
    pl.DataFrame({"custody_record_id": [f"R{i:02d}" for i in range(len(persons))], "person_id": persons}).write_parquet(
        tmp_path / "detentions.parquet"
    )
    pl.DataFrame({"custody_record_id": [f"R{i:02d}" for i in (3, 3, 0, 11, 7, 1, 4, 99)]}).write_parquet(
        tmp_path / "events.parquet"
    )
    files = {t: tmp_path / f"{t}.parquet" for t in ("detentions", "events")}

    def membership(by_hash: bool) -> dict[str, list[tuple[int, int]]]:
        monkeypatch.setattr(batches_module, "ROUTE_BY_HASH", by_hash)
        batches = plan_batches(files, tmp_path / f"plan-{by_hash}", 3)
        assert batches is not None
        return {
            table: sorted(
                (row, batch.index)
                for batch in batches
                for piece in getattr(batch, table)
                for row in pl.read_ipc(piece)["_row"].to_list()
            )
            for table in files
        }

    fast, general = membership(True), membership(False)
    assert fast == general
    det = dict(fast["detentions"])
    # The records without a child first; then by child, a child's records together (P1, P3, P5).
    assert det[3] == det[8] == 0
    assert det[2] == det[5] <= det[7] <= det[4] == det[9] <= det[10] <= det[1] == det[12] <= det[11] <= det[6]
    assert len({batch for _, batch in fast["detentions"]}) > 2


def test_small_or_non_parquet_sets_are_read_whole(generated: Path, tmp_path: Path) -> None:
    files = {t: generated / f"{t}.parquet" for t in ("detentions", "events")}
    assert plan_batches(files, tmp_path, 400) is None
    assert plan_batches({t: MESSY / f"{t}.csv" for t in ("detentions", "events")}, tmp_path, 1) is None
    with pytest.raises(ValueError, match="1 or more"):
        plan_batches(files, tmp_path, 0)
    assert not list(tmp_path.iterdir())


def test_check_cli_batches_give_identical_outputs(generated: Path, tmp_path: Path) -> None:
    outs = {}
    for name, batch in (("whole", "1000000"), ("batched", "200")):
        outs[name] = tmp_path / name
        args = ["check", str(generated), "--out", str(outs[name]), "--batch-records", batch, "-q"]
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, result.output
    for name in ("findings.csv", "children.csv", "exceptions.csv", "data_quality.csv"):
        assert (outs["whole"] / name).read_bytes() == (outs["batched"] / name).read_bytes(), name
    assert_frame_equal(
        pl.read_parquet(outs["whole"] / "findings.parquet"), pl.read_parquet(outs["batched"] / "findings.parquet")
    )
    assert not list(outs["batched"].glob(".custody-spill-*"))
    summaries = {name: json.loads((out / "summary.json").read_text()) for name, out in outs.items()}
    assert summaries["whole"]["batches"] == 1
    assert summaries["batched"]["batches"] == 2
    assert summaries["whole"]["counts"] == summaries["batched"]["counts"]


@pytest.mark.parametrize("can_link", [True, False])
def test_the_spilled_findings_file_is_linked_or_copied_into_the_outputs(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, can_link: bool
) -> None:
    import custody.outputs as outputs_module
    import custody.render.parquet as parquet_module

    batched = _check(generated, tmp_path / "spill", 200)
    assert batched.findings_file is not None

    def no_link(source: Path, target: Path) -> None:
        raise OSError("cross-device link")

    def no_copy(source: Path, target: Path) -> None:
        raise AssertionError("copied although it could be linked")

    if can_link:
        monkeypatch.setattr(parquet_module.shutil, "copyfile", no_copy)
    else:
        monkeypatch.setattr(parquet_module.os, "link", no_link)
    outputs_module.write_outputs(batched, tmp_path / "out", formats=frozenset({"parquet"}))
    written = tmp_path / "out" / "findings.parquet"
    assert written.read_bytes() == batched.findings_file.read_bytes()
    assert (written.stat().st_ino == batched.findings_file.stat().st_ino) is can_link


def test_a_last_batch_of_a_few_records_joins_the_one_before(generated: Path, tmp_path: Path) -> None:
    files = {t: generated / f"{t}.parquet" for t in ("detentions", "events")}
    records = pl.read_parquet(files["detentions"]).height
    assert records == 400
    # 400 records in batches of 190: 190, 190 and a last batch of about 20 (a child's
    # records are never split), which is less than a quarter of a batch.
    batches = plan_batches(files, tmp_path / "plan", 190)
    assert batches is not None
    assert len(batches) == 2
    rows = [pl.scan_ipc(list(batch.detentions)).select(pl.len()).collect().item() for batch in batches]
    assert sum(rows) == records
    assert rows[1] > 190  # the tail is in the second batch
    # A last batch of at least a quarter of a batch stays a batch of its own.
    kept = plan_batches(files, tmp_path / "plan-kept", 150)
    assert kept is not None
    assert len(kept) == 3


@pytest.mark.parametrize("seed", range(6))
def test_the_records_table_comes_by_child_arrival_and_record(seed: int) -> None:
    # The records kept of every batch are usually in child order already, and are then used as
    # they are; any other order (ties, missing children or arrivals) is sorted.
    rng = random.Random(seed)
    size = 60
    arrivals = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=rng.randrange(4)) for _ in range(size)]
    frame = pl.DataFrame(
        {
            "person_id": [rng.choice(["P1", "P2", "P3", None]) for _ in range(size)],
            "custody_record_id": [f"R{n:03d}" for n in rng.sample(range(1000), size)],
            "arrival_time": [rng.choice([a, None]) for a in arrivals],
            "n": range(size),
        }
    )
    ordered = frame.sort("person_id", "arrival_time", "custody_record_id", nulls_last=True)
    expected = ordered.drop("n")
    assert_frame_equal(in_child_order(frame.drop("n")), expected)
    assert_frame_equal(in_child_order(expected), expected)
    with_children = ordered.filter(pl.col("person_id").is_not_null()).drop("n")
    assert in_child_order(with_children) is with_children  # already in order: not copied
    swapped = pl.concat([with_children.slice(1, 1), with_children.slice(0, 1), with_children.slice(2)])
    if not swapped.equals(with_children):
        assert_frame_equal(in_child_order(swapped), with_children)


KEY = "a private key of enough length"


def test_a_keyed_run_writes_no_id_or_date_of_birth_to_its_temporary_files(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a pseudonymisation key the batches' pieces are sealed and the spilled findings
    pseudonymised; the outputs are those of the same run pseudonymised at the end."""
    pieces: list[bytes] = []
    remove = batches_module.Batch.remove_pieces

    def keep_a_copy(batch: batches_module.Batch) -> None:
        pieces.extend(piece.read_bytes() for piece in (*batch.detentions, *batch.events))
        remove(batch)

    monkeypatch.setattr(batches_module.Batch, "remove_pieces", keep_a_copy)
    spill = tmp_path / "keyed"
    spill.mkdir()
    keyed = run_check(generated, spill_dir=spill, batch_records=200, pseudonymise_key=KEY)
    assert len(pieces) >= 4

    detentions = pl.read_parquet(generated / "detentions.parquet")
    secrets = {
        *detentions["custody_record_id"],
        *detentions["person_id"],
        *(f"{day}" for day in detentions["date_of_birth"].drop_nulls()),
    }
    notes = {*pl.read_parquet(generated / "events.parquet")["note"].drop_nulls()} - {""}
    for data in pieces:
        with pytest.raises(pl.exceptions.ComputeError):  # sealed: not an Arrow file at all
            pl.read_ipc(data)
        assert not any(secret.encode() in data for secret in (*secrets, *notes))
    spilled = pl.read_parquet(spill / "findings.parquet")
    assert spilled.height > 0
    text = spilled.write_csv()
    assert not [secret for secret in secrets if secret in text]

    plain = pseudonymise(_check(generated, tmp_path / "plain", 200), KEY)
    hidden = pseudonymise(keyed, KEY)
    assert_frame_equal(hidden.findings.lazy().collect(), plain.findings.lazy().collect())
    assert_frame_equal(hidden.records, plain.records)
    assert_frame_equal(hidden.data_quality, plain.data_quality)
    assert hidden.findings_file == spill / "findings.parquet"  # copied out as it is
    with pytest.raises(ValueError, match="another key"):
        pseudonymise(keyed, KEY + " but another")
