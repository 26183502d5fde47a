"""Replaces person and custody record ids with keyed digests before anything is written.

A person id becomes `P-` and a custody record id `R-`, each followed by the first 16 hex
characters (64 bits) of HMAC-SHA256(key, kind + NUL + id), where kind is `person_id` or
`custody_record_id`. The same key gives the same pseudonyms on every run, so findings can
be linked across runs and across forces sharing a key; without the key the original ids
cannot be recovered or confirmed by guessing. Putting the kind in the message keeps a
person id and a record id that happen to be the same text from getting the same digest.

Ids are replaced everywhere they occur as values: findings, records, the data-quality
`custody_record_id`, and the data-quality `value` of a row about the `person_id` or
`custody_record_id` column. A finding's message or evidence that quotes its own record's
ids has them replaced too (found with a vectorised test; only such rows are rewritten).

Each distinct id is hashed once; the digests are joined back in polars.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

import polars as pl

from custody.errors import UsageError
from custody.findings import CheckResult

PERSON_PREFIX = "P-"
RECORD_PREFIX = "R-"
DIGEST_HEX_CHARS = 16

_SHA256_BLOCK = 64

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _hmac_sha256(key: bytes, prefix: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 (RFC 2104) under `key` of `prefix + message`, with the padded-key states
    (and the prefix) hashed once.

    Equal to `hmac.new(key, prefix + message, "sha256").digest()`, about twice as fast for
    many short messages, since each id only copies the two prepared hash states.
    """
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_SHA256_BLOCK, b"\0")
    inner_state = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    inner_state.update(prefix)
    inner_copy = inner_state.copy
    outer_copy = hashlib.sha256(bytes(b ^ 0x5C for b in padded)).copy

    def digest(message: bytes) -> bytes:
        inner = inner_copy()
        inner.update(message)
        outer = outer_copy()
        outer.update(inner.digest())
        return outer.digest()

    return digest


def _pseudonyms(values: pl.Series, *, key: bytes, kind: str, prefix: str) -> pl.DataFrame:
    """`original` -> `pseudonym` for every distinct non-null value. An empty id (a missing
    value, as the data-quality table reports it) stays empty rather than looking like an id."""
    originals = values.drop_nulls().unique().rename("original")
    digest = _hmac_sha256(key, kind.encode() + b"\0")
    digests = pl.Series("digest", list(map(digest, originals.cast(pl.Binary).to_list())), dtype=pl.Binary)
    return pl.DataFrame([originals, digests]).select(
        "original",
        pl.when(pl.col("original") == "")
        .then(pl.lit(""))
        .otherwise(pl.lit(prefix) + pl.col("digest").bin.encode("hex").str.slice(0, DIGEST_HEX_CHARS))
        .alias("pseudonym"),
    )


def _distinct(parts: Iterable[pl.Series]) -> pl.Series:
    return pl.concat([p.cast(pl.String).rename("id") for p in parts], how="vertical").unique()


def _with_pseudonym(frame: Frame, column: str, mapping: pl.DataFrame, alias: str) -> Frame:
    """`frame` with column `alias` holding the pseudonym of `column` (a join: faster than
    `replace_strict` for millions of distinct ids; row order kept)."""
    right = mapping.rename({"original": "_original", "pseudonym": alias})
    return frame.join(
        right.lazy() if isinstance(frame, pl.LazyFrame) else right,
        left_on=pl.col(column).cast(pl.String),
        right_on="_original",
        how="left",
        maintain_order="left",
    ).drop("_original", strict=False)


def _replace_ids(frame: Frame, person_map: pl.DataFrame, record_map: pl.DataFrame) -> Frame:
    columns = frame.collect_schema().names()
    frame = _with_pseudonym(frame, "person_id", person_map, "_person")
    frame = _with_pseudonym(frame, "custody_record_id", record_map, "_record")
    return frame.with_columns(
        pl.col("_person").alias("person_id"), pl.col("_record").alias("custody_record_id")
    ).select(columns)


def _quotes_own_id(text_columns: Sequence[str]) -> pl.Expr:
    """True where a message or evidence contains the row's own (non-empty) person or record id."""
    quotes = pl.lit(False)
    for text in text_columns:
        for id_column in ("person_id", "custody_record_id"):
            own_id = pl.col(id_column).cast(pl.String)
            quotes = quotes | (
                (own_id.str.len_chars() > 0) & pl.col(text).str.contains(own_id, literal=True)
            ).fill_null(False)
    return quotes


def _without_quoted_ids(findings: pl.LazyFrame, person_map: pl.DataFrame, record_map: pl.DataFrame) -> pl.LazyFrame:
    """Message and evidence with the row's own ids replaced, where they quote them.

    The engine is not expected to write ids into messages; this is a safety net. The test
    for it is vectorised (one pass over the findings), and only rows that do quote an id
    are rewritten in Python.
    """
    columns = findings.collect_schema().names()
    text_columns = [c for c in ("message", "evidence") if c in columns]
    if not text_columns:
        return findings
    indexed = findings.with_row_index("_row")
    quoting = indexed.filter(_quotes_own_id(text_columns)).collect()
    if quoting.height == 0:
        return findings
    persons = _as_dict(person_map.filter(pl.col("original").is_in(quoting.get_column("person_id").implode())))
    records = _as_dict(record_map.filter(pl.col("original").is_in(quoting.get_column("custody_record_id").implode())))
    rewritten: dict[str, list[str | None]] = {c: [] for c in text_columns}
    for row in quoting.select("person_id", "custody_record_id", *text_columns).iter_rows(named=True):
        swaps = {
            own_id: pseudonym
            for own_id, pseudonym in (
                (row["person_id"], persons.get(row["person_id"] or "")),
                (row["custody_record_id"], records.get(row["custody_record_id"] or "")),
            )
            if own_id and pseudonym
        }
        for text in text_columns:
            value = row[text]
            rewritten[text].append(None if value is None else _replace_tokens(value, swaps))
    patch = pl.DataFrame(
        {"_row": quoting.get_column("_row"), **{f"_new_{c}": rewritten[c] for c in text_columns}},
        schema={"_row": pl.UInt32, **{f"_new_{c}": pl.String for c in text_columns}},
    ).with_columns(pl.lit(True).alias("_patched"))
    return (
        indexed.join(patch.lazy(), on="_row", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_patched")).then(pl.col(f"_new_{c}")).otherwise(pl.col(c)).alias(c) for c in text_columns
        )
        .select(columns)
    )


def _replace_tokens(text: str, swaps: dict[str, str]) -> str:
    """`text` with each key of `swaps` replaced where it stands as a whole token (longest
    first), so that "R1" never rewrites part of "R10" or of a time."""
    if not swaps:
        return text
    alternatives = "|".join(re.escape(token) for token in sorted(swaps, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")
    return pattern.sub(lambda match: swaps[match.group(1)], text)


def _as_dict(mapping: pl.DataFrame) -> dict[str, str]:
    return dict(zip(mapping.get_column("original").to_list(), mapping.get_column("pseudonym").to_list(), strict=True))


def pseudonymise(result: CheckResult, key: str) -> CheckResult:
    """The same result with every person and custody record id replaced by its keyed digest."""
    if not key:
        raise UsageError("The pseudonymisation key is empty; give a secret of at least 16 characters.")
    key_bytes = key.encode("utf-8")
    # A spilled (lazy) findings table stays lazy: its ids are replaced as it is written out.
    findings, records, quality = result.findings.lazy(), result.records, result.data_quality

    dq_column = pl.col("column").cast(pl.String).str.strip_chars().str.to_lowercase()
    dq_person_values = quality.filter(dq_column == "person_id").get_column("value")
    dq_record_values = quality.filter(dq_column == "custody_record_id").get_column("value")

    # Every finding is about a loaded record, so the records hold every id the findings do.
    person_map = _pseudonyms(
        _distinct([records.get_column("person_id"), dq_person_values]),
        key=key_bytes,
        kind="person_id",
        prefix=PERSON_PREFIX,
    )
    record_map = _pseudonyms(
        _distinct(
            [
                records.get_column("custody_record_id"),
                quality.get_column("custody_record_id"),
                dq_record_values,
            ]
        ),
        key=key_bytes,
        kind="custody_record_id",
        prefix=RECORD_PREFIX,
    )

    hidden = _replace_ids(_without_quoted_ids(findings, person_map, record_map), person_map, record_map)
    records = _replace_ids(records, person_map, record_map)
    columns = quality.columns
    quality = _with_pseudonym(quality, "custody_record_id", record_map, "_record")
    quality = _with_pseudonym(quality, "value", person_map, "_value_person")
    quality = _with_pseudonym(quality, "value", record_map, "_value_record")
    quality = quality.with_columns(
        pl.col("_record").alias("custody_record_id"),
        pl.when(dq_column == "person_id")
        .then(pl.col("_value_person"))
        .when(dq_column == "custody_record_id")
        .then(pl.col("_value_record"))
        .otherwise(pl.col("value"))
        .alias("value"),
    ).select(columns)
    # findings_file (the spilled, un-pseudonymised findings) must not be copied out as it is.
    return replace(
        result,
        findings=hidden.collect() if isinstance(result.findings, pl.DataFrame) else hidden,
        records=records,
        data_quality=quality,
        findings_file=None,
    )
