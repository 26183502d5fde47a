"""Large record sets, checked in batches of children.

A national extract (ten million records, a hundred million events) does not fit in memory
as loaded tables and facts. Every rule reads one custody record's own rows, and every
check the loader makes across rows (a repeated custody_record_id, an event whose record
is missing or was rejected) compares rows of the same custody_record_id. So the record
set can be cut into batches that each hold whole custody records with all their events,
and each batch is loaded, validated and evaluated exactly as a small record set would be.

Batches are ranges of children (person_id), each about `records_per_batch` records, and
a child's records are never split: the facts, and so the findings, come in child order
within a batch, and the batches follow each other in that same order. Rows without a
custody_record_id, and events whose custody_record_id is in no detentions row, go to the
first batch (or, by a clash of 64-bit hashes, to another), where the loader reports them
as it always does. Row numbers are the file's.

Planning reads the two id columns, then splits each table once, a slice of rows at a time,
into per-batch pieces (Arrow IPC files, with the file's row numbers) in a working folder:
one pass over the data, however many batches. Only Parquet record sets are read this way;
other formats are read whole.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from custody.read.columns import ROW, id_as_read, source_column
from custody.read.sealed import PieceCipher
from custody.read.timeparse import is_nested


@dataclass(frozen=True)
class Batch:
    """One batch of a large Parquet record set (planned by `custody.read.batches`): the pieces
    (Arrow IPC files) of each table holding that batch's rows, with the file's own columns
    and its row numbers in `_row`, in file order."""

    index: int
    detentions: tuple[Path, ...]
    events: tuple[Path, ...]
    cipher: PieceCipher | None = None
    """Set when the pieces are sealed (`custody.read.sealed`): read them through it."""

    def remove_pieces(self) -> None:
        """Delete this batch's pieces (once loaded, they are not needed again)."""
        for piece in (*self.detentions, *self.events):
            piece.unlink(missing_ok=True)


BATCH_RECORDS = 1_000_000
"""Records per batch by default: a million records peak at about 2.5 GB."""

SPLIT_ROWS = 8_000_000
"""Rows of a table read at a time while splitting it into batches."""

TAIL_SHARE = 4
"""A last batch of less than 1/TAIL_SHARE of `records_per_batch` records joins the one before."""

ROUTE_BY_HASH = True
"""Route rows to batches by a hash of their id (False: by the id itself, as when hashes clash)."""

_ID = "custody_record_id"
_SEED = 20261123


def _id_column(schema: pl.Schema, name: str) -> str | None:
    """The file's column read as id column `name`, if it is of a type routed by its text."""
    column = source_column(schema.names(), name)
    if column is None or is_nested(schema[column]) or schema[column] == pl.Binary:
        return None
    return column


def plan_batches(
    files: dict[str, Path],
    work_dir: Path,
    records_per_batch: int = BATCH_RECORDS,
    cipher: PieceCipher | None = None,
) -> list[Batch] | None:
    """Split `files` into batches of about `records_per_batch` records, written under
    `work_dir`; or None to read the record set whole. With `cipher`, every piece is sealed
    (`custody.read.sealed`: a pseudonymised run writes no real id or date of birth).

    None when either table is not Parquet, when detentions has at most `records_per_batch`
    rows, or when the files cannot be planned (the loader then reports the problem).
    """
    if records_per_batch < 1:
        raise ValueError(f"records_per_batch must be 1 or more, not {records_per_batch}")
    if any(path.suffix.lower() != ".parquet" for path in files.values()):
        return None
    try:
        scans = {table: pl.scan_parquet(path) for table, path in files.items()}
        if scans["detentions"].select(pl.len()).collect().item() <= records_per_batch:
            return None
        schemas = {table: scan.collect_schema() for table, scan in scans.items()}
    except Exception:  # a damaged file: the loader says what is wrong with it
        return None
    if any(source_column(schema.names(), ROW) is not None for schema in schemas.values()):
        return None  # the loader refuses a column of that name
    det_id, ev_id = _id_column(schemas["detentions"], _ID), _id_column(schemas["events"], _ID)
    person = _id_column(schemas["detentions"], "person_id")
    if det_id is None or ev_id is None or person is None:
        return None

    rows = (
        scans["detentions"]
        .select(id_as_read(det_id).alias("id"), id_as_read(person).alias("person"))
        .collect()
        .drop_nulls("id")
    )
    # Rows are routed by a 64-bit hash of their id (a join on integers is several times faster
    # than on text). All rows of one id share its hash, so they stay together; an id in no
    # detentions row that happens to share a hash goes to that batch and is reported there.
    # Only if two detentions ids share a hash are the ids themselves compared.
    hashes = rows.get_column("id").hash(_SEED)
    key = _hashed_id
    if ROUTE_BY_HASH and hashes.n_unique() == rows.height:
        # The usual export: each id once, and no two ids share a hash. Every row is a record:
        # in child order, the records without a child first.
        records = rows.with_columns(hashes.alias("id")).sort("person", nulls_last=False)
        del rows, hashes
    else:
        del hashes
        # A record belongs to its child; rows repeating an id with different children go with
        # the first of them in child order, so that the loader sees every row of that id
        # together. Sorted by child (nulls last: an id with a child on any of its rows goes
        # with a child), the first row of each id holds its child; then the records without a
        # child come first. (Sorting the rows and
        # keeping each id's first is several times faster than grouping ten million text ids
        # and sorting the groups, whose text lies scattered in memory.)
        first_rows = rows.sort("person", "id", nulls_last=True).unique("id", keep="first", maintain_order=True)
        del rows
        no_child = first_rows["person"].is_null()
        records = pl.concat([first_rows.filter(no_child), first_rows.filter(~no_child)])
        del first_rows, no_child
        hashed = records.get_column("id").hash(_SEED)
        if ROUTE_BY_HASH and hashed.n_unique() == records.height:
            records = records.with_columns(hashed.alias("id"))
        else:
            key = id_as_read
        del hashed
    # In child order, each child's batch is the number of records before its first one,
    # divided by the batch size: a child's records are never split.
    first = pl.col("person").ne_missing(pl.col("person").shift(1)) | (pl.int_range(pl.len()) == 0)
    before = pl.when(first).then(pl.int_range(pl.len())).forward_fill()
    parts = records.select("id", part=(before // records_per_batch).cast(pl.UInt32))
    del records  # free it before splitting (it holds every child's id as text)
    count = int(parts.select(pl.col("part").max()).item() or 0) + 1
    if count > 1 and parts.filter(pl.col("part") == count - 1).height * TAIL_SHARE < records_per_batch:
        # A last batch of a few records would cost a whole batch's fixed work: fold it into
        # the one before.
        count -= 1
        parts = parts.with_columns(pl.col("part").clip(upper_bound=count - 1))
    if count < 2:
        return None
    # Each table is split a slice of rows at a time, both tables' slices on two threads (polars
    # lets go of the interpreter while it works): the events, ten times the rows, would
    # otherwise keep one thread busy long after the detentions are done. A batch's pieces are
    # kept in file order, slice by slice.
    tasks = [
        (table, column, number, start)
        for table, column in (("detentions", det_id), ("events", ev_id))
        for number, start in enumerate(range(0, scans[table].select(pl.len()).collect().item(), SPLIT_ROWS))
    ]
    tasks.sort(key=lambda task: (task[2], task[0]))  # slice by slice, a detentions slice beside an events one
    for table in files:
        (work_dir / table).mkdir(parents=True, exist_ok=True)
    lookup = parts.lazy()

    def split(task: tuple[str, str, int, int]) -> list[tuple[int, Path]]:
        table, column, number, start = task
        return _split_slice(scans[table], column, key(column), lookup, work_dir / table, number, start, cipher)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="split") as pool:
        written = pool.map(split, tasks)
        pieces: dict[str, list[list[Path]]] = {table: [[] for _ in range(count)] for table in files}
        for (table, _, _, _), of_slice in zip(tasks, written, strict=True):  # (in slice order)
            for part, piece in of_slice:
                pieces[table][part].append(piece)
    return [
        Batch(index=k, detentions=tuple(pieces["detentions"][k]), events=tuple(pieces["events"][k]), cipher=cipher)
        for k in range(count)
    ]


def _hashed_id(column: str) -> pl.Expr:
    clean = id_as_read(column)
    return pl.when(clean.is_not_null()).then(clean.hash(_SEED))


def _split_slice(
    scan: pl.LazyFrame,
    column: str,
    key: pl.Expr,
    lookup: pl.LazyFrame,
    folder: Path,
    number: int,
    start: int,
    cipher: PieceCipher | None = None,
) -> list[tuple[int, Path]]:
    """Slice `number` of a table (`SPLIT_ROWS` rows from `start`), written as one piece per batch
    it holds rows of: (batch, piece), in batch order. Rows without an id, or with an id in no
    detentions row, go to the first batch (the loader reports them there); `key` is the id of
    `column`, or its hash; `lookup` each detentions id (or hash) and its batch (`part`)."""
    chunk = scan.with_row_index(ROW, offset=1).slice(start, SPLIT_ROWS).collect()
    # Each row's batch, from its key alone (joining the whole chunk would copy every column).
    # An export lists a record's rows together: the key of each run of equal ids is made
    # and looked up once, and the run's rows take its batch (equal ids, equal keys).
    raw = chunk.get_column(column)
    starts = raw.ne_missing(raw.shift(1)).fill_null(True)
    # An inner join (polars hashes the smaller side, not every id of the record set) and
    # the batches placed by run: a run whose id matched nothing stays in batch 0.
    run_keys = chunk.lazy().filter(starts).select(key.alias("_key")).with_row_index("_run")
    found = run_keys.join(lookup, left_on="_key", right_on="id", how="inner").select("_run", "part").collect()
    runs = int(starts.sum())
    per_run = pl.repeat(0, runs, dtype=pl.UInt32, eager=True).scatter(found["_run"], found["part"])
    part = per_run.gather(starts.cast(pl.UInt32).cum_sum() - 1)
    chunk = chunk.with_columns(pl.col(ROW).cast(pl.Int64))
    written = []
    for value in part.unique().sort():
        piece = folder / f"{value:05d}-{number:05d}.arrow"
        if cipher is None:
            chunk.filter(part == value).write_ipc(piece, compression="lz4")
        else:
            cipher.write(chunk.filter(part == value), piece)
        written.append((int(value), piece))
    return written
