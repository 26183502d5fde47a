"""Replaces person and custody record ids with keyed digests before anything is written.

A person id becomes `P-` and a custody record id `R-`, each followed by the first 16 hex
characters (64 bits) of HMAC-SHA256(key, kind + NUL + id), where kind is `person_id` or
`custody_record_id`. The same key gives the same pseudonyms on every run, so findings can
be linked across runs and across forces sharing a key; without the key the original ids
cannot be recovered or confirmed by guessing. Putting the kind in the message keeps a
person id and a record id that happen to be the same text from getting the same digest.

Ids are carried as keys, so they are replaced in their own columns and nowhere else:
findings, records, the data-quality `custody_record_id`, and the data-quality `value` of a
row about the `person_id` or `custody_record_id` column. No text is searched for ids:
data-quality reasons never quote a value (the value is the row's `value`), and a run
whose rule messages or evidence name an id is refused, and so is a run that includes the
free-text notes (`--include-notes`). Dates of birth become year and month (`YYYY-MM`): in
the evidence and in the data-quality `value` of `date_of_birth`.

Each distinct id is hashed once; the digests are joined back in polars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

import polars as pl

from custody.engine.compile import CompiledRule
from custody.engine.evaluate import LEAP_DAY_MARKS
from custody.errors import UsageError
from custody.findings import CheckResult

PERSON_PREFIX = "P-"
RECORD_PREFIX = "R-"
DIGEST_HEX_CHARS = 16
MIN_KEY_CHARS = 16

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


def _quotes_own_id(text_columns: Sequence[str], *, whole_token: bool) -> pl.Expr:
    """True where a message or evidence contains the row's own (non-empty) person or record
    id: anywhere (a cheap literal test), or as a whole token ("R1" is not in "R10")."""
    quotes = pl.lit(False)
    for text in text_columns:
        for id_column in ("person_id", "custody_record_id"):
            own_id = pl.col(id_column).cast(pl.String)
            pattern = (
                pl.lit(r"(?:^|[^\w-])") + own_id.str.escape_regex() + pl.lit(r"(?:$|[^\w-])") if whole_token else own_id
            )
            contains = pl.col(text).str.contains(pattern, literal=not whole_token)
            # An id of digits alone ("15") is found in any number (an age, a count): such ids
            # are left to the rules' own test (`refuse_rules_naming_ids`).
            worded = own_id.str.contains(r"\D")
            quotes = quotes | ((own_id.str.len_chars() > 0) & worded & contains).fill_null(False)
    return quotes


def _refuse_quoted_ids(findings: pl.LazyFrame) -> None:
    """Ids are replaced in their own columns only, never searched for in text to be rewritten:
    a rule whose message or evidence names its record's or child's id would put the real id
    beside its pseudonym, so such a run is refused (one literal pass over the findings; only
    the rows it finds are tested token by token)."""
    columns = findings.collect_schema().names()
    text_columns = [c for c in ("message", "evidence") if c in columns]
    if not text_columns:
        return
    candidates = findings.filter(_quotes_own_id(text_columns, whole_token=False)).collect()
    quoting = candidates.filter(_quotes_own_id(text_columns, whole_token=True))
    if quoting.height:
        raise UsageError(QUOTED_ID_REFUSED.format(rule=quoting.get_column("rule_id").cast(pl.String)[0]))


_ID_FACTS = frozenset({"custody_record_id", "person_id"})

QUOTED_ID_REFUSED = (
    "Rule {rule}'s message or evidence names the custody record or person id, which --pseudonymise-key "
    "would leave in the outputs: take custody_record_id and person_id out of it."
)


def refuse_rules_naming_ids(rules: Iterable[CompiledRule]) -> None:
    """Refuse (UsageError) a keyed run whose rules show an id in a message or the evidence:
    ids are replaced in their own columns only. Read from the rules themselves, so that an id
    of digits alone, which any number in a message resembles, is still covered."""
    for rule in rules:
        if _ID_FACTS & ({*rule.evidence} | {name for v in rule.versions for name in v.facts}):
            raise UsageError(QUOTED_ID_REFUSED.format(rule=rule.rule_id))


def _year_and_month(text: pl.Expr, date_order: str) -> pl.Expr:
    """A date as read (`YYYY-MM-DD`, or a slash date in the run's `date_order`, real or not)
    cut to `YYYY-MM`; any other text becomes null, so that no full date of birth is written."""
    iso = text.str.extract_groups(r"^\s*([0-9]{4})-([0-9]{1,2})-")
    slash = text.str.extract_groups(r"^\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
    slash_month = slash.struct[0] if date_order == "mdy" else slash.struct[1]
    year = pl.coalesce(iso.struct[0], slash.struct[2])
    month = pl.coalesce(iso.struct[1], slash_month).str.pad_start(2, "0")
    return pl.format("{}-{}", year, month)


# Evidence is compact JSON written by the engine (`struct.json_encode`), dates as "YYYY-MM-DD".
_EVIDENCE_DOB = r'"date_of_birth":"([0-9]{4}-[0-9]{2})-[0-9]{2}"'


def check_key(key: str) -> bytes:
    """The key as bytes; a key shorter than `MIN_KEY_CHARS` characters is refused."""
    if len(key) < MIN_KEY_CHARS:
        raise UsageError(
            f"The pseudonymisation key has {len(key)} characters: give a secret of at least {MIN_KEY_CHARS}."
        )
    return key.encode("utf-8")


def key_id(key: str) -> str:
    """A short id of the key, recorded in summary.json so that two runs can be told to share
    a key (and `custody diff` can refuse runs that do not) without the key itself: the first
    16 hex characters of HMAC-SHA256(key, "custody key id"). It reveals no more than any
    pseudonym does (each is an HMAC under the same key)."""
    return _hmac_sha256(check_key(key), b"custody key id")(b"").hex()[:DIGEST_HEX_CHARS]


NOTES_REFUSED = (
    "--include-notes cannot be used with --pseudonymise-key: notes are free text that can name a child "
    "or give a date of birth, which pseudonymised outputs must not hold; leave out one of the two."
)


def refuse_notes(include_notes: bool) -> None:
    """Free-text notes are never searched for ids or dates: a run that includes them is refused
    a pseudonymisation key (UsageError, `NOTES_REFUSED`)."""
    if include_notes:
        raise UsageError(NOTES_REFUSED)


def _hidden_findings(findings: Frame, person_map: pl.DataFrame, record_map: pl.DataFrame) -> Frame:
    """Findings with their ids replaced and the dates of birth in their evidence cut. The mark
    of a result resting on the 29 February reading is left out: beside a year and month of
    birth it would tell the whole date."""
    in_message, in_evidence = LEAP_DAY_MARKS
    return _replace_ids(findings, person_map, record_map).with_columns(
        pl.col("message").str.replace(in_message, ""),
        pl.col("evidence").str.replace_all(_EVIDENCE_DOB, '"date_of_birth":"${1}"').str.replace(in_evidence, "${1}"),
    )


def pseudonymise_findings(findings: pl.DataFrame, key: str) -> pl.DataFrame:
    """A chunk of findings as `pseudonymise` leaves them (ids replaced, dates of birth cut; a
    rule naming an id refused), for findings spilled to a temporary file while a keyed run
    goes on: no real id or date of birth is written, temporary files included. The same key
    gives every id the same pseudonym in every chunk and in the records."""
    key_bytes = check_key(key)
    _refuse_quoted_ids(findings.lazy())
    person_map = _pseudonyms(
        _distinct([findings.get_column("person_id")]), key=key_bytes, kind="person_id", prefix=PERSON_PREFIX
    )
    record_map = _pseudonyms(
        _distinct([findings.get_column("custody_record_id")]),
        key=key_bytes,
        kind="custody_record_id",
        prefix=RECORD_PREFIX,
    )
    return _hidden_findings(findings, person_map, record_map)


def pseudonymise(result: CheckResult, key: str) -> CheckResult:
    """The same result with every person and custody record id replaced by its keyed digest,
    and every date of birth cut to its year and month. A result that includes notes is
    refused (`refuse_notes`)."""
    key_bytes = check_key(key)
    refuse_notes(bool(result.meta.get("include_notes")))
    # A spilled (lazy) findings table stays lazy: its ids are replaced as it is written out.
    findings, records, quality = result.findings.lazy(), result.records, result.data_quality

    # Read through an input profile, a row names the export's column and then the contract
    # column it is read as, "Person_URN (person_id)": the contract column decides.
    named = pl.col("column").cast(pl.String).str.strip_chars()
    dq_column = pl.coalesce(named.str.extract(r"\(([a-z0-9_]+)\)$", 1), named).str.to_lowercase()
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

    if result.pseudonymised_findings is not None:  # spilled pseudonymised (`pseudonymise_findings`)
        if result.pseudonymised_findings != key_id(key):
            raise ValueError("the findings were pseudonymised under another key than the one given")
        hidden = findings
    else:
        _refuse_quoted_ids(findings)
        hidden = _hidden_findings(findings, person_map, record_map)
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
        .when(dq_column == "date_of_birth")
        .then(_year_and_month(pl.col("value"), str(result.meta.get("date_order", "dmy"))))
        .otherwise(pl.col("value"))
        .alias("value"),
    ).select(columns)
    # findings_file (spilled findings) is copied out as it is only if it was spilled pseudonymised.
    return replace(
        result,
        findings=hidden.collect() if isinstance(result.findings, pl.DataFrame) else hidden,
        records=records,
        data_quality=quality,
        findings_file=None if result.pseudonymised_findings is None else result.findings_file,
    )
