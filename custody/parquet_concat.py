"""Concatenate Parquet files of one schema into one file without decoding them.

A batched check spills its findings as many Parquet files (one per rule segment and batch
of children) and must deliver them as one `findings.parquet`, in order. Reading them back
and writing them again costs as much as writing them did (about 8 s per million records).
A Parquet file is its column chunks followed by a footer (Thrift compact-encoded
`FileMetaData`) that lists the row groups with the byte offsets of their chunks; so the
files' data can be copied byte for byte, one after another, under one footer that lists
every file's row groups with their offsets moved by where that file's data now starts.

Only the footer is decoded and re-encoded, by a small generic codec for the Thrift compact
protocol: every field is kept as read except the offsets, the row counts and ordinals. The
page indexes (column and offset index) are left out of the new footer, as their page
offsets are absolute: readers then read the pages without them, as they do for files
written without page indexes. Files with encryption, or whose schema or key-value
metadata (polars' own schema, with its enum categories) differ, are refused.

Reference: the Parquet format (parquet.thrift) and the Thrift compact protocol spec.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"PAR1"

# Thrift compact protocol type codes.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# Field ids in parquet.thrift.
_FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_SCHEMA, _FMD_KV, _FMD_ENCRYPTION = 3, 4, 2, 5, 8
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_PATH, _CC_FILE_OFFSET, _CC_META = 1, 2, 3
_CC_PAGE_INDEX = frozenset({4, 5, 6, 7})  # offset_index_offset/length, column_index_offset/length
_CC_ENCRYPTED = frozenset({8, 9})
_CMD_OFFSETS = frozenset({9, 10, 11, 14})  # data, index, dictionary page and bloom filter offsets


class ParquetConcatError(ValueError):
    """The files cannot be concatenated byte for byte (the caller reads them as they are instead)."""


@dataclass
class Struct:
    """A decoded Thrift struct: its fields in the order read, as (id, type, value)."""

    fields: list[tuple[int, int, Any]] = field(default_factory=list)

    def get(self, fid: int) -> Any:
        for f, _, value in self.fields:
            if f == fid:
                return value
        return None

    def encoded(self, fid: int) -> bytes:
        """Field `fid` as written (empty if absent): two fields compare by their encoding."""
        out = bytearray()
        for f, ftype, value in self.fields:
            if f == fid:
                _write_value(ftype, value, out)
        return bytes(out)

    def set(self, fid: int, ftype: int, value: Any) -> None:
        for i, (f, _, _) in enumerate(self.fields):
            if f == fid:
                self.fields[i] = (fid, ftype, value)
                return
        self.fields.append((fid, ftype, value))
        self.fields.sort(key=lambda item: item[0])

    def drop(self, fids: frozenset[int]) -> None:
        self.fields = [item for item in self.fields if item[0] not in fids]


@dataclass
class ThriftList:
    etype: int
    items: list[Any]


@dataclass
class ThriftMap:
    ktype: int
    vtype: int
    items: list[tuple[Any, Any]]


# ---------------------------------------------------------------- decoding


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, ttype: int) -> Any:
        if ttype in (_TRUE, _FALSE):  # inside a list: one byte per value
            return self.byte() == _TRUE
        if ttype == _BYTE:
            return self.byte()
        if ttype in (_I16, _I32, _I64):
            return self.zigzag()
        if ttype == _DOUBLE:
            (number,) = struct.unpack_from("<d", self.data, self.pos)
            self.pos += 8
            return number
        if ttype == _BINARY:
            size = self.varint()
            chunk = self.data[self.pos : self.pos + size]
            self.pos += size
            return chunk
        if ttype in (_LIST, _SET):
            head = self.byte()
            size, etype = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return ThriftList(etype, [self.value(etype) for _ in range(size)])
        if ttype == _MAP:
            size = self.varint()
            if not size:
                return ThriftMap(0, 0, [])
            kinds = self.byte()
            ktype, vtype = kinds >> 4, kinds & 0x0F
            return ThriftMap(ktype, vtype, [(self.value(ktype), self.value(vtype)) for _ in range(size)])
        if ttype == _STRUCT:
            return self.struct()
        raise ParquetConcatError(f"unknown Thrift compact type {ttype}")

    def struct(self) -> Struct:
        out = Struct()
        last = 0
        while True:
            head = self.byte()
            if head == 0:  # stop
                return out
            delta, ftype = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            value = ftype == _TRUE if ftype in (_TRUE, _FALSE) else self.value(ftype)
            out.fields.append((fid, ftype, value))
            last = fid


def decode_struct(data: bytes) -> Struct:
    return _Reader(data).struct()


# ---------------------------------------------------------------- encoding


def _varint(n: int, out: bytearray) -> None:
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _zigzag(n: int, out: bytearray) -> None:
    _varint((n << 1) ^ (n >> 63), out)


def _write_value(ttype: int, value: Any, out: bytearray) -> None:
    if ttype in (_TRUE, _FALSE):
        out.append(_TRUE if value else _FALSE)
    elif ttype == _BYTE:
        out.append(value & 0xFF)
    elif ttype in (_I16, _I32, _I64):
        _zigzag(value, out)
    elif ttype == _DOUBLE:
        out += struct.pack("<d", value)
    elif ttype == _BINARY:
        _varint(len(value), out)
        out += value
    elif ttype in (_LIST, _SET):
        size = len(value.items)
        if size < 15:
            out.append(size << 4 | value.etype)
        else:
            out.append(0xF0 | value.etype)
            _varint(size, out)
        for item in value.items:
            _write_value(value.etype, item, out)
    elif ttype == _MAP:
        _varint(len(value.items), out)
        if value.items:
            out.append(value.ktype << 4 | value.vtype)
            for key, item in value.items:
                _write_value(value.ktype, key, out)
                _write_value(value.vtype, item, out)
    elif ttype == _STRUCT:
        _write_struct(value, out)
    else:
        raise ParquetConcatError(f"unknown Thrift compact type {ttype}")


def _write_struct(value: Struct, out: bytearray) -> None:
    last = 0
    for fid, ftype, item in value.fields:
        wire = (_TRUE if item else _FALSE) if ftype in (_TRUE, _FALSE) else ftype
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | wire)
        else:
            out.append(wire)
            _zigzag(fid, out)
        if ftype not in (_TRUE, _FALSE):
            _write_value(ftype, item, out)
        last = fid
    out.append(0)


def encode_struct(value: Struct) -> bytes:
    out = bytearray()
    _write_struct(value, out)
    return bytes(out)


# ---------------------------------------------------------------- files


@dataclass
class _Part:
    path: Path
    data_end: int  # where the footer starts: the data is bytes [4, data_end)
    meta: Struct


def read_footer(path: Path) -> tuple[Struct, int]:
    """(FileMetaData, the offset where the footer starts) of Parquet file `path`."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < 12:
            raise ParquetConcatError(f"{path.name} is too short to be a Parquet file")
        handle.seek(size - 8)
        tail = handle.read(8)
        if tail[4:] != MAGIC:
            raise ParquetConcatError(f"{path.name} does not end as a Parquet file (encrypted, or not Parquet)")
        (length,) = struct.unpack("<I", tail[:4])
        start = size - 8 - length
        if start < 4:
            raise ParquetConcatError(f"{path.name} has a footer longer than the file")
        handle.seek(0)
        if handle.read(4) != MAGIC:
            raise ParquetConcatError(f"{path.name} does not start as a Parquet file")
        handle.seek(start)
        footer = handle.read(length)
    try:
        return decode_struct(footer), start
    except (IndexError, struct.error) as error:
        raise ParquetConcatError(f"{path.name} has a damaged footer") from error


def _shift_row_group(group: Struct, shift: int, ordinal: int) -> Struct:
    for chunk in group.get(_RG_COLUMNS).items:
        if any(fid in _CC_ENCRYPTED for fid, _, _ in chunk.fields) or chunk.get(_CC_FILE_PATH):
            raise ParquetConcatError("a column chunk is encrypted or in another file")
        chunk.drop(_CC_PAGE_INDEX)
        chunk.set(_CC_FILE_OFFSET, _I64, chunk.get(_CC_FILE_OFFSET) + shift)
        meta = chunk.get(_CC_META)
        if meta is None:
            raise ParquetConcatError("a column chunk has no metadata")
        meta.fields = [
            (fid, ftype, value + shift if fid in _CMD_OFFSETS else value) for fid, ftype, value in meta.fields
        ]
    if group.get(_RG_FILE_OFFSET) is not None:
        group.set(_RG_FILE_OFFSET, _I64, group.get(_RG_FILE_OFFSET) + shift)
    if ordinal < 2**15:
        group.set(_RG_ORDINAL, _I16, ordinal)
    else:
        group.drop(frozenset({_RG_ORDINAL}))
    return group


def concat_parquet(files: Sequence[Path], target: Path) -> int:
    """Write `files` (Parquet, one schema) one after another into `target`; the rows written.

    Raises ParquetConcatError, before writing anything, if the files cannot be joined this
    way (different schemas or metadata, encryption, a damaged footer), and after writing if
    a file changed meanwhile (the caller removes `target`).
    """
    if not files:
        raise ParquetConcatError("no files to concatenate")
    parts = []
    for path in files:
        meta, data_end = read_footer(path)
        parts.append(_Part(path, data_end, meta))
    first = parts[0].meta
    for part in parts[1:]:
        for fid in (_FMD_SCHEMA, _FMD_KV):
            if part.meta.encoded(fid) != first.encoded(fid):
                raise ParquetConcatError(f"{part.path.name} has another schema than {parts[0].path.name}")
    if any(part.meta.get(_FMD_ENCRYPTION) is not None for part in parts):
        raise ParquetConcatError("encrypted files are not concatenated")

    groups: list[Struct] = []
    rows = 0
    position = len(MAGIC)
    for part in parts:
        shift = position - len(MAGIC)
        for group in part.meta.get(_FMD_ROW_GROUPS).items:
            groups.append(_shift_row_group(group, shift, len(groups)))
        rows += part.meta.get(_FMD_NUM_ROWS)
        position += part.data_end - len(MAGIC)
    merged = Struct(list(first.fields))
    merged.set(_FMD_NUM_ROWS, _I64, rows)
    merged.set(_FMD_ROW_GROUPS, _LIST, ThriftList(_STRUCT, groups))
    footer = encode_struct(merged)

    # Unbuffered: the copy moves the files' own positions (copy_file_range).
    with target.open("wb", buffering=0) as out:
        _write_all(out, MAGIC)
        for part in parts:
            with part.path.open("rb", buffering=0) as source:
                source.seek(len(MAGIC))
                _copy(source, out, part.data_end - len(MAGIC))
        if out.tell() != position:
            raise ParquetConcatError("a file changed while it was being joined")
        _write_all(out, footer + struct.pack("<I", len(footer)) + MAGIC)
    return rows


def _write_all(out: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[out.write(view) or 0 :]


def _copy(source: BinaryIO, target: BinaryIO, length: int) -> None:
    """Copy the next `length` bytes of `source` to `target` (in the kernel where it can)."""
    remaining = length
    if hasattr(os, "copy_file_range"):
        try:
            while remaining:
                done = os.copy_file_range(source.fileno(), target.fileno(), remaining)
                if not done:
                    break
                remaining -= done
        except OSError:  # not supported here: both files' positions are where the copy stopped
            pass
    if remaining:
        shutil.copyfileobj(_Limited(source, remaining), target, 1 << 22)


class _Limited:
    """A read-only view of the next `length` bytes of a file."""

    def __init__(self, source: BinaryIO, length: int) -> None:
        self.source, self.left = source, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        chunk = self.source.read(size)
        self.left -= len(chunk)
        return chunk
