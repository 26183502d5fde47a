"""Parquet files joined byte for byte under one footer (custody.parquet_concat)."""

from __future__ import annotations

import datetime as dt
import errno
import itertools
import os
import struct
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from custody.parquet_concat import (
    ParquetConcatError,
    Struct,
    ThriftList,
    ThriftMap,
    concat_parquet,
    decode_struct,
    encode_struct,
    read_footer,
)


def _frame(rows: int, start: int = 0) -> pl.DataFrame:
    """Every kind of column the findings have, with nulls, and values that sort apart."""
    index = pl.int_range(start, start + rows, eager=True)
    return pl.DataFrame(
        {
            "id": index.cast(pl.String).str.zfill(8),
            "rule": (index % 3)
            .replace_strict({0: "S38-REQUEST", 1: "S38-MOVE", 2: "PACE-REVIEW"})
            .cast(pl.Categorical),
            "outcome": (index % 3)
            .replace_strict({0: "breach", 1: "compliant", 2: "cannot_assess"})
            .cast(pl.Enum(["breach", "compliant", "cannot_assess"])),
            "message": pl.Series([None if i % 7 == 0 else f"message {i} " * (i % 5) for i in index]),
            "minutes": (index * 37 % 1000).cast(pl.Int64),
            "ratio": index.cast(pl.Float64) / 3,
            "flag": index % 2 == 0,
            "at": pl.Series(
                [dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=int(i)) for i in index],
                dtype=pl.Datetime("us", "UTC"),
            ),
        },
        schema_overrides={"message": pl.String},
    )


def _write(frame: pl.DataFrame, path: Path, *, row_group_size: int | None = None) -> Path:
    frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True, row_group_size=row_group_size)
    return path


def test_a_polars_footer_decodes_and_encodes_to_the_same_bytes(tmp_path: Path) -> None:
    path = _write(_frame(500), tmp_path / "one.parquet", row_group_size=40)
    meta, start = read_footer(path)
    data = path.read_bytes()
    (length,) = struct.unpack("<I", data[-8:-4])
    assert start == len(data) - 8 - length
    assert encode_struct(meta) == data[start : start + length]


def test_parts_join_into_the_frame_they_were_cut_from(tmp_path: Path) -> None:
    whole = _frame(1000)
    cuts = [(0, 1), (1, 0), (1, 300), (301, 599), (900, 100)]  # includes an empty part
    parts = [
        _write(whole.slice(offset, length), tmp_path / f"part-{i}.parquet", row_group_size=64)
        for i, (offset, length) in enumerate(cuts)
    ]
    target = tmp_path / "joined.parquet"
    assert concat_parquet(parts, target) == 1000
    assert_frame_equal(pl.read_parquet(target), whole)
    # The row count is read from the new footer, and statistics still prune correctly.
    assert pl.scan_parquet(target).select(pl.len()).collect().item() == 1000
    wanted = whole.filter(pl.col("id").is_in(["00000000", "00000450", "00000999"]) | (pl.col("minutes") == 37))
    got = pl.scan_parquet(target).filter(
        pl.col("id").is_in(["00000000", "00000450", "00000999"]) | (pl.col("minutes") == 37)
    )
    assert_frame_equal(got.collect(), wanted)
    # Every row group's column chunks point inside the file, at a page of their own column.
    meta, data_end = read_footer(target)
    groups = meta.get(4).items
    assert len(groups) > 15  # the long list-header form
    assert [group.get(7) for group in groups] == list(range(len(groups)))
    for group in groups:
        for chunk in group.get(1).items:
            offset = chunk.get(3).get(9)
            assert 4 <= offset < data_end
            assert not {4, 5, 6, 7} & {fid for fid, _, _ in chunk.fields}  # page indexes dropped


def test_files_with_other_schemas_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    first = _write(_frame(10), tmp_path / "a.parquet")
    renamed = _write(_frame(10).rename({"minutes": "mins"}), tmp_path / "b.parquet")
    retyped = _write(_frame(10).with_columns(pl.col("outcome").cast(pl.String)), tmp_path / "c.parquet")
    target = tmp_path / "joined.parquet"
    for other in (renamed, retyped):
        with pytest.raises(ParquetConcatError, match="another schema"):
            concat_parquet([first, other], target)
        assert not target.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "too short"),
        (b"not a parquet file at all", "does not end as a Parquet file"),
        (b"XXXX" + b"\x00" * 20 + struct.pack("<I", 4) + b"PAR1", "does not start as a Parquet file"),
        (b"PAR1" + struct.pack("<I", 1000) + b"PAR1", "footer longer than the file"),
    ],
)
def test_what_is_not_parquet_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(content)
    with pytest.raises(ParquetConcatError, match=reason):
        concat_parquet([_write(_frame(3), tmp_path / "good.parquet"), bad], tmp_path / "joined.parquet")
    with pytest.raises(ParquetConcatError, match="no files"):
        concat_parquet([], tmp_path / "joined.parquet")


def test_the_thrift_codec_round_trips_every_type() -> None:
    value = Struct(
        [
            (1, 1, True),
            (2, 2, False),
            (3, 3, 200),
            (4, 4, -12),
            (5, 5, 2**31 - 1),
            (6, 6, -(2**62)),
            (7, 7, 2.5),
            (8, 8, b"text \xff"),
            (9, 9, ThriftList(5, list(range(-20, 20)))),
            (10, 9, ThriftList(1, [True, False, True])),
            (11, 11, ThriftMap(8, 6, [(b"a", 1), (b"b", -1)])),
            (12, 11, ThriftMap(0, 0, [])),
            (40, 12, Struct([(1, 8, b"nested"), (300, 6, 7)])),  # field ids that jump: the long form
        ]
    )
    encoded = encode_struct(value)
    assert decode_struct(encoded) == value
    assert encode_struct(decode_struct(encoded)) == encoded


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=6), rows=st.integers(0, 120))
def test_any_cut_of_a_frame_joins_back(tmp_path_factory: pytest.TempPathFactory, cuts: list[int], rows: int) -> None:
    folder = tmp_path_factory.mktemp("cuts")
    whole = _frame(rows, start=5)
    bounds = sorted({0, rows, *(min(c, rows) for c in cuts)})
    parts = [
        _write(whole.slice(a, b - a), folder / f"{i}.parquet", row_group_size=17)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ] or [_write(whole, folder / "all.parquet")]
    target = folder / "joined.parquet"
    assert concat_parquet(parts, target) == rows
    assert_frame_equal(pl.read_parquet(target), whole)


@pytest.mark.parametrize("kernel_copy", ["unsupported", "stops_early", "absent"])
def test_the_data_is_copied_whether_or_not_the_kernel_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_copy: str
) -> None:
    import custody.parquet_concat as module

    real = os.copy_file_range
    calls = []

    def flaky(source: int, target: int, count: int) -> int:
        calls.append(count)
        if kernel_copy == "unsupported":
            raise OSError(errno.EXDEV, "cross-device")
        if len(calls) > 1:  # copies a little, then fails part-way
            raise OSError(errno.EIO, "interrupted")
        return real(source, target, min(count, 1000))

    if kernel_copy == "absent":
        monkeypatch.delattr(module.os, "copy_file_range")
    else:
        monkeypatch.setattr(module.os, "copy_file_range", flaky)
    whole = _frame(3000)
    parts = [_write(whole.slice(0, 1200), tmp_path / "a.parquet"), _write(whole.slice(1200), tmp_path / "b.parquet")]
    assert concat_parquet(parts, tmp_path / "joined.parquet") == 3000
    assert_frame_equal(pl.read_parquet(tmp_path / "joined.parquet"), whole)


def test_a_file_that_shrinks_while_being_joined_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import custody.parquet_concat as module

    parts = [_write(_frame(500), tmp_path / "a.parquet"), _write(_frame(500, start=500), tmp_path / "b.parquet")]
    real_copy = module._copy

    def short_copy(source: Any, target: Any, length: int) -> None:
        real_copy(source, target, length - 10)

    monkeypatch.setattr(module, "_copy", short_copy)
    with pytest.raises(ParquetConcatError, match="changed while"):
        concat_parquet(parts, tmp_path / "joined.parquet")
