"""Pieces of a record set sealed while they wait on disk.

A record set checked in batches is first split into pieces (`custody.read.batches`) in the
run's private working folder. Under a pseudonymisation key no real id or date of birth may
reach any file, temporary ones included, yet the pieces must hold them: the loader matches
events to records by id and the facts need each exact date of birth. So a keyed run seals
its pieces: each is an Arrow IPC stream encrypted with AES-256-GCM (`cryptography`) under a
key made for the run and held only in its memory. A piece left behind (the process killed
before it could remove its folder) cannot be read by anyone, that process included once it
has ended. The piece's file name is bound to its contents, so pieces cannot be swapped.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_SEGMENT_BYTES = 1 << 28
"""Plain text sealed at a time (AES-GCM takes at most 2**31 - 1 bytes in one call)."""
_LENGTH_BYTES = 8


class PieceCipher:
    """Writes and reads a run's sealed pieces (one instance per run: its key dies with it)."""

    def __init__(self) -> None:
        # (Imported here: only a keyed run over a large Parquet set seals anything.)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead: AESGCM = AESGCM(AESGCM.generate_key(bit_length=256))

    def write(self, frame: pl.DataFrame, path: Path) -> None:
        """`frame` to `path` as a sealed Arrow IPC stream (LZ4-compressed before sealing)."""
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="lz4")
        plain = buffer.getbuffer()
        with path.open("wb") as out:
            for number, start in enumerate(range(0, max(len(plain), 1), _SEGMENT_BYTES)):
                nonce = os.urandom(_NONCE_BYTES)
                sealed = self._aead.encrypt(nonce, plain[start : start + _SEGMENT_BYTES], _bound(path, number))
                out.write(nonce + len(sealed).to_bytes(_LENGTH_BYTES, "little") + sealed)

    def read(self, path: Path) -> pl.DataFrame:
        """The frame a `write` sealed to `path` (cryptography's InvalidTag if it was altered)."""
        data = memoryview(path.read_bytes())
        plain = bytearray()
        at, number = 0, 0
        while at < len(data):
            nonce = data[at : at + _NONCE_BYTES]
            length = int.from_bytes(data[at + _NONCE_BYTES : at + _NONCE_BYTES + _LENGTH_BYTES], "little")
            at += _NONCE_BYTES + _LENGTH_BYTES
            plain += self._aead.decrypt(bytes(nonce), data[at : at + length], _bound(path, number))
            at, number = at + length, number + 1
        return pl.read_ipc(io.BytesIO(plain))


def _bound(path: Path, segment: int) -> bytes:
    """What a sealed segment is bound to: its piece's file name and its place in it."""
    return path.name.encode() + b"\0" + segment.to_bytes(4, "little")
