"""Input profiles: a force's own export layout mapped onto the contract's two tables.

    profile = load_profile(Path("profiles/anyshire_wide.yaml"))
    record_set = load_with_profile(profile, Path("export_folder"))

A profile is a versioned YAML file (DATA-CONTRACT.md, "Input profiles"), one per export
layout. It says which file holds the custody records and which column is which contract
column (`detentions.columns`), how each date and time is written (a date-time column, or a
date column and a time column; the date order; the time zone: UK local time, UTC or an
explicit offset), value maps from the force's codes to the contract's values, which columns
become which events (`events`: one column or a flag-and-time pair per event type, `repeat`
for a repeated group such as Review_1..Review_6), or an audit log whose entry types map to
events (`event_log`), and the columns it knowingly leaves unused. Like Recidiviz's ingest
mappings (`unused_columns`), every column of the export must be either mapped or listed as
unused: a new column in next month's export stops the run with one sentence instead of going
unnoticed; like Frictionless Table Schema, missing values and true/false words are declared.

How it works: the profile rewrites the export, in one vectorised pass per event source, into
the contract's tables as text (`YYYY-MM-DD HH:MM` local times, `...Z` for UTC, `+01:00`
offsets), and the loader then checks those tables exactly as it checks contract files, so a
record read through a profile is checked exactly as the same record in contract form. The
data-quality rows are then put back in the export's terms: its file, its row and its column
and the contract column it is read as (`Date_Arrived + Time_Arrived (arrival_time)`), the
value as written there, and for a code the profile does not map, a reason naming the profile
(the raw text is kept, and the value is refused as the contract refuses an unknown value,
never guessed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from custody.contract import DATA_QUALITY_SCHEMA, EVENT_DETAILS, TABLES, ColumnSpec
from custody.errors import InputError
from custody.read.columns import ROW, clean_name, looks_like_a_name
from custody.read.dates import check_slash_order
from custody.read.loader import NOT_UTF8, SUFFIXES, RecordSet, load_tables, read_table_file, sort_data_quality
from custody.read.plausible import Plausibility
from custody.read.yamlfile import KeyPath, YamlFileError, line_of, parse_yaml, pydantic_problem, read_file_bytes

PROFILE_LANGUAGE = 1
"""The version of the profile language this checker reads (`profile: 1` in the file)."""

MAX_PROFILE_BYTES = 1_000_000
UNMAPPED = "(not in the profile's map)"
"""What an unmapped code becomes before the loader checks it: no contract value is this, so
the loader refuses it as it refuses any unknown value; the data-quality row then shows the
code as written and a reason naming the profile."""

DETENTION_SPECS = {spec.name: spec for spec in TABLES["detentions"]}
EVENT_SPECS = {spec.name: spec for spec in TABLES["events"]}
_REQUIRED_MAPPED = ("custody_record_id", "person_id", "detention_power", "arrival_time")

DateOrderName = Literal["dmy", "mdy", "ymd"]
_ZONE = re.compile(r"^(uk_local|utc|[+-](0\d|1[0-4]):[0-5]\d)$")


class ProfileError(YamlFileError):
    """A profile that cannot be used: one sentence naming the file (and line)."""


# ---------------------------------------------------------------- the profile language


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Source(_Strict):
    """Where one contract value comes from: a column, a date (and time) column pair, or a value."""

    column: str | None = Field(None, description="the export's column")
    date: str | None = Field(None, description="a date column (with `time`, the time of day column)")
    time: str | None = Field(None, description="the time of day column that goes with `date`")
    zone: str | None = Field(
        None, description="uk_local (default: UK legal time, GMT or BST), utc, or an offset such as +01:00"
    )
    date_order: DateOrderName | None = Field(None, description="how slash dates are written (default: the profile's)")
    value: str | bool | None = Field(None, description="the same value for every row")
    values: dict[str, str | bool] | None = Field(None, description="the export's codes -> contract values")

    @field_validator("values", mode="before")
    @classmethod
    def _codes_are_text(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for code in values:
                if not isinstance(code, str):
                    raise ValueError(
                        f'the code {code!r} is not text: quote it ("Yes", "1"); unquoted, YAML reads '
                        "Yes, No, On, Off and numbers as something else"
                    )
        return values

    @field_validator("zone")
    @classmethod
    def _zone(cls, zone: str | None) -> str | None:
        if zone is not None and not _ZONE.match(zone):
            raise ValueError("must be uk_local, utc or an offset such as +01:00")
        return zone

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        origins = [name for name in ("column", "date", "value") if getattr(self, name) is not None]
        if len(origins) != 1:
            raise ValueError("give exactly one of column, date (with time) or value")
        if self.time is not None and self.date is None:
            raise ValueError("time goes with date: name the date column too")
        if self.values is not None and self.column is None:
            raise ValueError("values maps the codes of a column: name the column")
        return self

    def columns(self) -> list[str]:
        return [name for name in (self.column, self.date, self.time) if name is not None]


def _shorthand(value: Any) -> Any:
    """`arrival_time: Arrived` is short for `arrival_time: {column: Arrived}`."""
    return {"column": value} if isinstance(value, str) else value


SourceField = Annotated[Source, BeforeValidator(_shorthand)]


class TableFile(_Strict):
    file: str = Field(description="the file's name in the export folder (case-insensitive)")
    unused: list[str] = Field(
        description="every column of the file the profile knowingly leaves unused (required, may be [])"
    )


class Detentions(TableFile):
    columns: dict[str, SourceField] = Field(description="contract detentions column -> where it comes from")

    @field_validator("columns")
    @classmethod
    def _contract_columns(cls, columns: dict[str, Source]) -> dict[str, Source]:
        unknown = [name for name in columns if name not in DETENTION_SPECS]
        if unknown:
            raise ValueError(f"'{unknown[0]}' is not a detentions column of the contract (see `custody schema`)")
        missing = [name for name in _REQUIRED_MAPPED if name not in columns]
        if missing:
            raise ValueError(f"map the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        for name, source in columns.items():
            _check_source(name, source, DETENTION_SPECS[name])
        return columns


def _check_source(name: str, source: Source, spec: ColumnSpec) -> None:
    if spec.kind == "datetime":
        if source.value is not None:
            raise ValueError(f"{name}: a time cannot be one value for every row")
    elif source.date is not None or source.zone is not None:
        raise ValueError(f"{name} is not a date and time: map it with column")
    if spec.kind != "date" and spec.kind != "datetime" and source.date_order is not None:
        raise ValueError(f"{name} is not a date: date_order does not apply")
    if source.values is not None:
        for code, target in source.values.items():
            _check_target(name, spec, code, target)
    if source.value is not None:
        _check_target(name, spec, "value", source.value)


def _check_target(name: str, spec: ColumnSpec, code: str, target: str | bool) -> None:
    if spec.kind == "bool" and not isinstance(target, bool):
        raise ValueError(f"{name}: '{code}' must map to true or false")
    if spec.kind == "enum" and target not in spec.enum_values:
        raise ValueError(f"{name}: '{code}' maps to '{target}', which is not one of {', '.join(spec.enum_values)}")


def _check_event(event_type: str, detail: str | None, where: str) -> None:
    if event_type not in EVENT_DETAILS:
        raise ValueError(f"{where}: '{event_type}' is not an event type of the contract (see `custody schema`)")
    if detail is not None and detail not in EVENT_DETAILS[event_type]:
        codes = ", ".join(EVENT_DETAILS[event_type]) or "none"
        raise ValueError(f"{where}: '{detail}' is not a detail code of {event_type} (its codes: {codes})")


class WideEvent(_Strict):
    """An event held in columns of the detentions file (one per row, or `repeat` of them)."""

    event_type: str
    at: SourceField = Field(description="when: a date-time column, or date and time columns")
    detail: str | None = Field(None, description="the detail code of every such event")
    detail_from: SourceField | None = Field(None, description="a column holding the detail (with values)")
    note: str | None = Field(None, description="a free-text column (never exported unless asked)")
    flag: str | None = Field(None, description="a yes/no column: the event happened only where it says yes")
    repeat: int | None = Field(None, ge=1, le=99, description="a repeated group: {n} in the names runs 1..repeat")

    @model_validator(mode="after")
    def _valid(self) -> WideEvent:
        _check_event(self.event_type, self.detail, "event_type")
        if self.detail is not None and self.detail_from is not None:
            raise ValueError("give detail or detail_from, not both")
        if self.at.value is not None:
            raise ValueError("at: an event's time cannot be one value for every row")
        if self.detail_from is not None:
            for code, target in (self.detail_from.values or {}).items():
                _check_event(self.event_type, str(target), f"detail_from: '{code}'")
        names = self.column_names()
        numbered = [name for name in names if "{n}" in name]
        if self.repeat is None and numbered:
            raise ValueError(f"'{numbered[0]}' has {{n}} but repeat is not given")
        if self.repeat is not None and not numbered:
            raise ValueError("repeat needs {n} in the column names (e.g. Review_{n}_Date)")
        return self

    def column_names(self) -> list[str]:
        names = [*self.at.columns(), *(self.detail_from.columns() if self.detail_from else [])]
        return names + [name for name in (self.note, self.flag) if name is not None]


def _entry_shorthand(value: Any) -> Any:
    """`review/pre_charge` is short for `{event_type: review, detail: pre_charge}`."""
    if isinstance(value, str):
        event_type, _, detail = value.partition("/")
        return {"event_type": event_type.strip(), "detail": detail.strip() or None}
    return value


class Entry(_Strict):
    event_type: str
    detail: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> Entry:
        _check_event(self.event_type, self.detail, "event_type")
        return self


class EventLog(TableFile):
    """An audit log: one row per custody-record entry, its type mapped to an event."""

    custody_record_id: str = Field(description="the column holding the custody record's id")
    at: SourceField
    entry_type: str = Field(description="the column holding the entry's type")
    entries: dict[str, Annotated[Entry, BeforeValidator(_entry_shorthand)]] = Field(
        description="entry type as written (case-insensitive) -> event_type or event_type/detail"
    )
    ignore: list[str] = Field(default_factory=list, description="entry types that are knowingly not events")
    detail_from: SourceField | None = Field(None, description="a column holding detail codes (with values)")
    note: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> EventLog:
        mapped = {key.strip().lower() for key in self.entries}
        both = [entry for entry in self.ignore if entry.strip().lower() in mapped]
        if both:
            raise ValueError(f"'{both[0]}' is both mapped in entries and listed in ignore")
        if self.at.value is not None:
            raise ValueError("at: an event's time cannot be one value for every row")
        return self

    def column_names(self) -> list[str]:
        names = [self.custody_record_id, self.entry_type, *self.at.columns()]
        names += self.detail_from.columns() if self.detail_from else []
        return names + ([self.note] if self.note else [])


class PlausibleLimits(_Strict):
    max_hours_after_arrival: float = Field(168, gt=0)
    max_hours_before_arrival: float = Field(24, ge=0)


class Profile(_Strict):
    profile: Literal[1] = Field(description="the profile language version")
    name: str = Field(min_length=1, description="the export layout, e.g. 'Anyshire Police custody export'")
    version: str = Field(min_length=1, description="this layout's version, e.g. 2026-11")
    description: str = ""
    date_order: DateOrderName = "dmy"
    missing_values: list[str] = Field(default_factory=lambda: [""])
    true_values: list[str] = Field(default_factory=lambda: ["true", "yes", "y", "1"])
    false_values: list[str] = Field(default_factory=lambda: ["false", "no", "n", "0"])
    detentions: Detentions
    events: list[WideEvent] = Field(default_factory=list)
    event_log: EventLog | None = None
    plausible: PlausibleLimits = Field(default_factory=PlausibleLimits)

    @model_validator(mode="after")
    def _some_events(self) -> Profile:
        if not self.events and self.event_log is None:
            raise ValueError("map some events: give events (columns of the detentions file) or event_log")
        return self


@dataclass(frozen=True)
class LoadedProfile:
    path: Path
    profile: Profile
    lines: dict[KeyPath, int]
    digest: str

    def line(self, *location: str | int) -> int | None:
        return line_of(self.lines, location)

    def where(self, *location: str | int) -> str:
        line = self.line(*location)
        return f"{self.path.name}:{line}" if line else self.path.name

    @property
    def plausibility(self) -> Plausibility:
        limits = self.profile.plausible
        return Plausibility(
            max_after_arrival=dt.timedelta(hours=limits.max_hours_after_arrival),
            max_before_arrival=dt.timedelta(hours=limits.max_hours_before_arrival),
        )


def load_profile(path: Path | str) -> LoadedProfile:
    """Read and validate a profile; `ProfileError` (file:line and what to change) if it cannot be used."""
    path = Path(path)
    raw = read_file_bytes(path, max_bytes=MAX_PROFILE_BYTES, what="profile", error=ProfileError)
    data, lines, _ = parse_yaml(path, raw, error=ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(path, "is not a profile: it must be a YAML mapping with profile: 1, name, detentions, ...")
    if data.get("profile") not in (None, PROFILE_LANGUAGE):
        raise ProfileError(
            path,
            f"is written in profile language {data.get('profile')!r}; this checker reads profile: {PROFILE_LANGUAGE}",
            lines.get(("profile",)),
        )
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        message, line = pydantic_problem(lines, exc)
        raise ProfileError(path, message, line) from None
    return LoadedProfile(path, profile, lines, hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------- the export's files


def export_files(loaded: LoadedProfile, source: Path) -> dict[str, Path]:
    """The export's files: `detentions` (the custody records) and `events` (the audit log, or
    the detentions file again when every event is held in its columns)."""
    profile = loaded.profile
    names = {"detentions": profile.detentions.file}
    if profile.event_log is not None:
        names["events"] = profile.event_log.file
    if source.is_file():
        if len(set(names.values())) > 1:
            raise InputError(
                f"{source} is one file, but profile {loaded.path.name} reads {' and '.join(names.values())}: "
                "give the folder holding them."
            )
        found = dict.fromkeys(names, source)
    elif source.is_dir():
        present = {child.name.lower(): child for child in source.iterdir() if child.is_file()}
        found = {}
        for table, name in names.items():
            key = "detentions" if table == "detentions" else "event_log"
            if name.lower() not in present:
                raise InputError(
                    f"{source} has no file {name}, which profile {loaded.where(key, 'file')} "
                    "reads: check the folder, or the profile's file name."
                )
            found[table] = present[name.lower()]
    else:
        raise InputError(f"{source} does not exist: give the export's folder (or its file).")
    for path in found.values():
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(
                f"{path} is not a file type the checker reads: save it as .csv, .parquet, .ndjson or .xlsx."
            )
    found.setdefault("events", found["detentions"])
    return found


def read_export(path: Path) -> pl.DataFrame:
    """One file of an export: its columns named as written (trimmed), and `_row`."""
    return _read_export(path)[0]


def _read_export(path: Path) -> tuple[pl.DataFrame, dict[str, pl.Series], pl.DataFrame | None]:
    """(the file as read, for a workbook the rows of each column whose cell is a formula with
    no trustworthy saved result, and the cells that were not valid UTF-8)."""
    frame, formulas, not_utf8 = read_table_file(path)
    frame = _flatten(frame, path)
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in frame.columns:
        if name == ROW:
            continue
        clean = clean_name(name)
        if clean.lower() in seen:
            if not looks_like_a_name(clean):
                raise InputError(
                    f"{path} has two columns with the same name, and its first row does not look like column "
                    "names (is the header row missing?): give the export its header row."
                )
            raise InputError(
                f"{path} has two columns named '{seen[clean.lower()]}' and '{clean}' (names are case-insensitive): "
                "keep one."
            )
        seen[clean.lower()] = clean
        renames[name] = clean
    untrusted = {}
    if formulas is not None:
        for (column,), rows in formulas.group_by("column"):
            untrusted[renames.get(str(column), str(column))] = rows[ROW]
    if not_utf8 is not None:
        not_utf8 = not_utf8.with_columns(pl.col("column").replace(renames))
    return frame.rename(renames), untrusted, not_utf8


MAX_REPEATS = 99
"""The most items of a nested list (e.g. a record's reviews) a profile reads."""


def _flatten(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Nested records (NDJSON, Parquet) as flat columns a profile can name: a field of an
    object is `parent.field`, the items of a list `parent.1`, `parent.2`, ... (so a list of
    reviews maps as a repeated group: `reviews.{n}.time`)."""
    while True:
        nested = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Struct | pl.List | pl.Array)]
        if not nested:
            return frame
        for name in nested:
            dtype = frame.schema[name]
            if isinstance(dtype, pl.Struct):
                parts = [pl.col(name).struct.field(f.name).alias(f"{name}.{f.name}") for f in dtype.fields]
            else:
                assert isinstance(dtype, pl.List | pl.Array)
                as_list = pl.col(name).cast(pl.List(dtype.inner))
                longest = frame.select(as_list.list.len().max()).item() if frame.height else 0
                count = int(longest or 0)
                if count > MAX_REPEATS:
                    raise InputError(
                        f"{path}: {name} holds lists of up to {count:,} items; a profile reads at most {MAX_REPEATS}."
                    )
                parts = [as_list.list.get(i, null_on_oob=True).alias(f"{name}.{i + 1}") for i in range(count)]
            at = frame.columns.index(name)
            pieces = [frame.select(frame.columns[:at]), frame.select(parts), frame.select(frame.columns[at + 1 :])]
            frame = pl.concat([piece for piece in pieces if piece.width], how="horizontal")


# ---------------------------------------------------------------- building the contract's tables


@dataclass
class _Value:
    """One contract value for every row of a frame: the text the loader reads, the text as
    written in the export, the export's column(s), and a reason when a code is not mapped."""

    text: pl.Expr
    raw: pl.Expr
    label: pl.Expr
    why: pl.Expr


_NOTHING = pl.lit(None, dtype=pl.String)
_SLASH_DATE = r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(.*)$"


class _Builder:
    """Expressions over one export file, in the profile's terms."""

    def __init__(
        self,
        loaded: LoadedProfile,
        path: Path,
        read: tuple[pl.DataFrame, dict[str, pl.Series], pl.DataFrame | None],
        table_key: str,
    ) -> None:
        self.loaded, self.profile, self.path = loaded, loaded.profile, path
        self.frame, self.formulas, self.not_utf8 = _non_blank(read[0]), read[1], read[2]
        self.table_key = table_key
        self.by_lower = {name.lower(): name for name in self.frame.columns if name != ROW}
        self.used: set[str] = set()
        self.missing_values = {value.strip().lower() for value in self.profile.missing_values}
        self.true_values = {value.strip().lower() for value in self.profile.true_values}
        self.false_values = {value.strip().lower() for value in self.profile.false_values}
        self.dated: dict[str, DateOrderName] = {}

    def name(self, column: str, location: KeyPath) -> str:
        actual = self.by_lower.get(column.strip().lower())
        if actual is None:
            raise InputError(
                f"{self.path} has no column '{column}', which profile {self.loaded.where(*location)} maps: "
                "correct the profile, or export that column again."
            )
        self.used.add(actual)
        return actual

    def cell(self, column: str, location: KeyPath) -> pl.Expr:
        """A column's values as text, trimmed; blank and the profile's missing values as missing."""
        actual = self.name(column, location)
        text = pl.col(actual).cast(pl.String).str.strip_chars()
        missing = text.str.len_bytes().eq(0) | text.str.to_lowercase().is_in(sorted(self.missing_values))
        return pl.when(~missing).then(text)

    def formula(self, *columns: str | None) -> pl.Expr | None:
        """Where any of the (actual) columns holds a formula whose saved result cannot be trusted."""
        rows = [self.formulas[c] for c in columns if c is not None and c in self.formulas]
        if not rows:
            return None
        return pl.col(ROW).is_in(pl.concat(rows).implode())

    def untrusted(self, value: _Value, columns: list[str | None], *, parsed: bool = True) -> _Value:
        """A value whose cell is an untrusted spreadsheet formula: refused as the contract refuses a
        bad value (a missing one for free text), with a reason; the saved result stays the raw text."""
        where = self.formula(*columns)
        if where is None:
            return value
        names = " or ".join(c for c in columns if c is not None and c in self.formulas)
        reason = (
            f"{names} is a spreadsheet formula with no saved result, or one the workbook asks to recalculate "
            "(it may be stale): type the value itself (it is not read)"
        )
        return _Value(
            pl.when(where).then(pl.lit(UNMAPPED) if parsed else None).otherwise(value.text),
            value.raw,
            value.label,
            pl.when(where).then(pl.lit(reason)).otherwise(value.why),
        )

    def value(self, source: Source, spec: ColumnSpec, location: KeyPath) -> _Value:
        if source.value is None and source.column is not None:
            parsed = spec.kind != "string" or source.values is not None
            return self.untrusted(
                self._value(source, spec, location), [self.name(source.column, location)], parsed=parsed
            )
        if source.value is None and source.date is not None:
            columns = [source.date, source.time]
            names = [self.name(c, location) if c else None for c in columns]
            return self.untrusted(self._value(source, spec, location), names)
        return self._value(source, spec, location)

    def _value(self, source: Source, spec: ColumnSpec, location: KeyPath) -> _Value:
        if source.value is not None:
            constant = _as_text(source.value)
            return _Value(pl.lit(constant), pl.lit(constant), pl.lit("profile"), _NOTHING)
        if spec.kind == "datetime":
            return self._datetime(source, location)
        assert source.column is not None
        cell = self.cell(source.column, (*location, "column"))
        label = pl.lit(self.name(source.column, location))
        if source.values is not None:
            mapping = {code.strip().lower(): _as_text(target) for code, target in source.values.items()}
            mapped = cell.str.to_lowercase().replace_strict(mapping, default=None, return_dtype=pl.String)
            why = pl.when(cell.is_not_null() & mapped.is_null()).then(
                pl.lit(
                    f"{source.column} is not a code in the values of profile {self.loaded.where(*location, 'values')} "
                    f"for {spec.name}: add it there (the value is not used)"
                )
            )
            text = (
                pl.when(cell.is_null()).then(None).when(mapped.is_not_null()).then(mapped).otherwise(pl.lit(UNMAPPED))
            )
            return _Value(text, cell, label, why)
        if spec.kind == "date":
            order = source.date_order or self.profile.date_order
            self.dated[self.name(source.column, location)] = order
            # The date as the contract reads it (YYYY-MM-DD in the profile's order), not as
            # written: a pseudonymisation key then cuts a date of birth to its year and month
            # whatever order the export writes it in.
            iso = _iso_date(cell, order)
            return _Value(iso, iso, label, _NOTHING)
        return _Value(cell, cell, label, _NOTHING)

    def datetime(self, source: Source, location: KeyPath) -> _Value:
        names = [self.name(c, location) if c else None for c in (source.column, source.date, source.time)]
        return self.untrusted(self._datetime(source, location), names)

    def _datetime(self, source: Source, location: KeyPath) -> _Value:
        order = source.date_order or self.profile.date_order
        zone = source.zone or "uk_local"
        if source.column is not None:
            cell = self.cell(source.column, (*location, "column"))
            self.dated[self.name(source.column, location)] = order
            text, raw, label = _iso_date(cell, order), cell, pl.lit(self.name(source.column, location))
        else:
            assert source.date is not None
            date = self.cell(source.date, (*location, "date"))
            self.dated[self.name(source.date, location)] = order
            names = [self.name(source.date, location)]
            if source.time is not None:
                time = self.cell(source.time, (*location, "time"))
                names.append(self.name(source.time, location))
                text = pl.concat_str([_iso_date(date, order), _clock(time)], separator=" ", ignore_nulls=True)
                raw = pl.when(date.is_not_null() | time.is_not_null()).then(
                    pl.concat_str([date, time], separator=" ", ignore_nulls=True)
                )
            else:
                text, raw = _iso_date(date, order), date
            text = pl.when(date.is_not_null()).then(text)
            label = pl.lit(" + ".join(names))
        return _Value(_in_zone(text, zone), raw, label, _NOTHING)

    def flag(self, column: str, location: KeyPath) -> tuple[pl.Expr, pl.Expr]:
        """(yes, neither yes nor no) for a flag column."""
        word = self.cell(column, location).str.to_lowercase()
        yes = word.is_in(sorted(self.true_values)).fill_null(False)
        unknown = (word.is_not_null() & ~word.is_in(sorted(self.true_values | self.false_values))).fill_null(False)
        return yes, unknown

    def check_date_orders(self) -> None:
        for column, order in self.dated.items():
            if order == "ymd":
                continue
            try:
                check_slash_order(self.frame, [column], self.path, ROW, order)
            except InputError as error:
                text = str(error)
                if " mixes " in text:
                    raise
                first = re.search(r"the first at row (\d+)", text)
                proven = "mdy" if order == "dmy" else "dmy"
                at_row = f", the first at row {first.group(1)}" if first else ""
                raise InputError(
                    f"{self.path}: column {column} has dates written {'month' if proven == 'mdy' else 'day'} first"
                    f"{at_row}"
                    f", but profile {self.loaded.path.name} declares date_order: {order} for it: set date_order: "
                    f"{proven} in the profile if the export writes them so, or correct those dates."
                ) from None

    def not_utf8_warnings(self, table: str, id_column: str | None) -> pl.DataFrame:
        """A warning for each row whose text was not valid UTF-8 (read as Windows-1252)."""
        if self.not_utf8 is None:
            return pl.DataFrame(schema=DATA_QUALITY_SCHEMA)
        actual = self.by_lower.get((id_column or "").strip().lower())
        record = pl.col(actual).cast(pl.String).str.strip_chars() if actual else _NOTHING
        located = self.not_utf8.join(self.frame.select(ROW, record.alias("_id")), on=ROW, how="inner")
        return located.select(
            file=pl.lit(self.path.name),
            table=pl.lit(table),
            row=pl.col(ROW).cast(pl.Int64),
            column=pl.col("column"),
            value=_NOTHING,
            reason=pl.lit(NOT_UTF8),
            action=pl.lit("warning"),
            custody_record_id=pl.col("_id"),
            event_type=_NOTHING,
        ).cast(DATA_QUALITY_SCHEMA)

    def check_unused(self, unused: list[str], location: KeyPath) -> None:
        listed = {name.strip().lower() for name in unused}
        unknown = [name for name in self.by_lower.values() if name not in self.used and name.lower() not in listed]
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown[:5]) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            raise InputError(
                f"{self.path} has column{'s' if len(unknown) > 1 else ''} {names} that profile "
                f"{self.loaded.where(*location)} neither maps nor lists as unused: map "
                f"{'them' if len(unknown) > 1 else 'it'}, or add {'them' if len(unknown) > 1 else 'it'} to "
                f"{self.table_key}.unused (a new column is never passed over unnoticed)."
            )


def _as_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _iso_date(text: pl.Expr, order: DateOrderName) -> pl.Expr:
    """Slash (or dot) dates rewritten as ISO in the declared order, whatever the numbers: a
    wrong day or month is then refused by the loader as not a real date, never read the other
    way round. Other text is left as written (ISO passes, anything else is refused)."""
    if order == "ymd":
        # Declared ISO: a slash date is refused (marked so that no reader takes it day first).
        return pl.when(text.str.contains(_SLASH_DATE)).then(pl.lit("?") + text).otherwise(text)
    first = text.str.extract(_SLASH_DATE, 1).str.zfill(2)
    second = text.str.extract(_SLASH_DATE, 2).str.zfill(2)
    day, month = (first, second) if order == "dmy" else (second, first)
    iso = pl.concat_str([text.str.extract(_SLASH_DATE, 3), month, day], separator="-") + text.str.extract(
        _SLASH_DATE, 4
    )
    return pl.when(text.str.contains(_SLASH_DATE)).then(iso).otherwise(text)


def _clock(time: pl.Expr) -> pl.Expr:
    """A time of day as the loader reads it: 1430 and 14.30 -> 14:30; a trailing BST or GMT
    (as some systems mark the October repeated hour) -> the offset it names."""
    text = time.str.replace(r"^(\d{2})\.?(\d{2})(\s|$)", "$1:$2$3")
    text = text.str.replace(r"(?i)\s*BST$", "+01:00").str.replace(r"(?i)\s*(GMT|UTC)$", "+00:00")
    return text


def _in_zone(text: pl.Expr, zone: str) -> pl.Expr:
    """A date-time's text with the profile's zone: UK local stays as written (the loader reads
    it as Europe/London, refusing the March gap and the October repeat); UTC and offsets are
    appended unless the value carries its own."""
    if zone == "uk_local":
        return text
    suffix = "Z" if zone == "utc" else zone
    has_offset = text.str.contains(r"(Z|[+-]\d{2}:?\d{2})$")
    return pl.when(has_offset).then(text).otherwise(text + suffix)


def _provenance(table: str, values: dict[str, _Value], file: str) -> list[pl.Expr]:
    exprs = [pl.lit(file).alias("_file"), pl.col(ROW).alias("_src_row")]
    for spec in TABLES[table]:
        value = values.get(spec.name)
        exprs += [
            (value.raw if value else _NOTHING).cast(pl.String).alias(f"_raw.{spec.name}"),
            (value.label if value else _NOTHING).cast(pl.String).alias(f"_label.{spec.name}"),
            (value.why if value else _NOTHING).cast(pl.String).alias(f"_why.{spec.name}"),
        ]
    return exprs


def _contract_columns(table: str, values: dict[str, _Value]) -> list[pl.Expr]:
    return [
        (values[s.name].text if s.name in values else _NOTHING).cast(pl.String).alias(s.name) for s in TABLES[table]
    ]


def _non_blank(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with no value at all (blank lines, empty spreadsheet rows) hold no record."""
    columns = [c for c in frame.columns if c != ROW]
    if not columns:
        return frame
    text = [pl.col(c).cast(pl.String).str.strip_chars().str.len_bytes().gt(0).fill_null(False) for c in columns]
    return frame.filter(pl.any_horizontal(text))


def _detentions(loaded: LoadedProfile, builder: _Builder) -> tuple[pl.DataFrame, dict[str, _Value]]:
    values = {
        name: builder.value(source, DETENTION_SPECS[name], ("detentions", "columns", name))
        for name, source in loaded.profile.detentions.columns.items()
    }
    frame = builder.frame.select(
        *_contract_columns("detentions", values), pl.col(ROW), *_provenance("detentions", values, builder.path.name)
    )
    return frame, values


def _wide_events(loaded: LoadedProfile, builder: _Builder, record_id: _Value) -> Iterator[pl.DataFrame]:
    for index, event in enumerate(loaded.profile.events):
        numbers: list[int | None] = list(range(1, event.repeat + 1)) if event.repeat else [None]
        for number in numbers:
            item = _numbered(event, number)
            location: KeyPath = ("events", index)
            values = {"custody_record_id": record_id, "event_type": _literal(item.event_type)}
            values["event_time"] = builder.datetime(item.at, (*location, "at"))
            present = values["event_time"].raw.is_not_null()
            if item.detail is not None:
                values["detail"] = _literal(item.detail)
            elif item.detail_from is not None:
                values["detail"] = builder.value(item.detail_from, EVENT_SPECS["detail"], (*location, "detail_from"))
                present = present | values["detail"].raw.is_not_null()
            if item.note is not None:
                note = builder.cell(item.note, (*location, "note"))
                values["note"] = _Value(note, note, pl.lit(builder.name(item.note, location)), _NOTHING)
            if item.flag is not None:
                yes, unknown = builder.flag(item.flag, (*location, "flag"))
                present = yes | unknown
                time = values["event_time"]
                values["event_time"] = _Value(
                    pl.when(unknown).then(pl.lit(UNMAPPED)).otherwise(time.text),
                    pl.when(unknown).then(builder.cell(item.flag, location)).otherwise(time.raw),
                    pl.when(unknown).then(pl.lit(builder.name(item.flag, location))).otherwise(time.label),
                    pl.when(unknown).then(
                        pl.lit(
                            f"{item.flag} is neither a true nor a false word of profile "
                            f"{loaded.where(*location, 'flag')}: whether and when {item.event_type} happened "
                            "cannot be read"
                        )
                    ),
                )
            block = builder.frame.filter(present.fill_null(False)).select(
                *_contract_columns("events", values), *_provenance("events", values, builder.path.name)
            )
            yield block.with_columns(_order=pl.lit(index * 100 + (number or 0)))


def _numbered(event: WideEvent, number: int | None) -> WideEvent:
    if number is None:
        return event
    data = event.model_dump()

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{n}", str(number))
        if isinstance(value, dict):
            return {key: fill(item) if key != "values" else item for key, item in value.items()}
        return value

    return WideEvent.model_validate({key: fill(value) for key, value in data.items() if key != "repeat"})


def _literal(text: str) -> _Value:
    return _Value(pl.lit(text), pl.lit(text), pl.lit("profile"), _NOTHING)


def _log_events(loaded: LoadedProfile, builder: _Builder) -> pl.DataFrame:
    log = loaded.profile.event_log
    assert log is not None
    location: KeyPath = ("event_log",)
    record = builder.cell(log.custody_record_id, (*location, "custody_record_id"))
    entry = builder.cell(log.entry_type, (*location, "entry_type"))
    key = entry.str.to_lowercase()
    ignored = key.is_in(sorted({name.strip().lower() for name in log.ignore})).fill_null(False)
    types = {name.strip().lower(): mapped.event_type for name, mapped in log.entries.items()}
    details = {name.strip().lower(): mapped.detail for name, mapped in log.entries.items() if mapped.detail}
    event_type = key.replace_strict(types, default=None, return_dtype=pl.String)
    entry_label = pl.lit(builder.name(log.entry_type, location))
    values = {
        "custody_record_id": _Value(record, record, pl.lit(builder.name(log.custody_record_id, location)), _NOTHING),
        "event_time": builder.datetime(log.at, (*location, "at")),
        "event_type": _Value(
            pl.when(entry.is_null())
            .then(None)
            .when(event_type.is_not_null())
            .then(event_type)
            .otherwise(pl.lit(UNMAPPED)),
            entry,
            entry_label,
            pl.when(entry.is_not_null() & event_type.is_null()).then(
                pl.lit(
                    f"{log.entry_type} is not an entry type of profile {loaded.where(*location, 'entries')}: map it "
                    "to an event in entries, or list it under ignore (the entry is not used)"
                )
            ),
        ),
    }
    detail = key.replace_strict(details, default=None, return_dtype=pl.String) if details else _NOTHING
    if log.detail_from is not None:
        from_column = builder.value(log.detail_from, EVENT_SPECS["detail"], (*location, "detail_from"))
        values["detail"] = _Value(
            pl.coalesce(detail, from_column.text), from_column.raw, from_column.label, from_column.why
        )
    else:
        values["detail"] = _Value(detail, detail, entry_label, _NOTHING)
    if log.note is not None:
        note = builder.cell(log.note, (*location, "note"))
        values["note"] = _Value(note, note, pl.lit(builder.name(log.note, location)), _NOTHING)
    return (
        _non_blank(builder.frame)
        .filter(~ignored)
        .select(*_contract_columns("events", values), *_provenance("events", values, builder.path.name))
        .with_columns(_order=pl.lit(0))
    )


def contract_tables(loaded: LoadedProfile, files: dict[str, Path]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The export as the contract's two tables, text as the loader reads it, each row with its
    provenance (`_file`, `_src_row`, and `_raw.<column>`, `_label.<column>`, `_why.<column>`);
    and the data-quality warnings of text that was not valid UTF-8."""
    profile = loaded.profile
    detention_builder = _Builder(loaded, files["detentions"], _read_export(files["detentions"]), "detentions")
    detentions, values = _detentions(loaded, detention_builder)
    blocks = list(_wide_events(loaded, detention_builder, values["custody_record_id"]))
    if profile.event_log is not None:
        if files["events"] == files["detentions"]:
            raise InputError(
                f"profile {loaded.path.name} reads its event log from its detentions file: name two files."
            )
        log_builder = _Builder(loaded, files["events"], _read_export(files["events"]), "event_log")
        blocks.append(_log_events(loaded, log_builder))
        log_builder.check_date_orders()
        log_builder.check_unused(profile.event_log.unused, ("event_log", "unused"))
    detention_builder.check_date_orders()
    detention_builder.check_unused(profile.detentions.unused, ("detentions", "unused"))
    events = pl.concat(blocks, how="vertical") if blocks else pl.DataFrame()
    events = events.sort("_src_row", "_order", maintain_order=True).drop("_order")
    events = events.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    id_source = profile.detentions.columns["custody_record_id"]
    warnings = [detention_builder.not_utf8_warnings("detentions", id_source.column)]
    if profile.event_log is not None:
        warnings.append(log_builder.not_utf8_warnings("events", profile.event_log.custody_record_id))
    return detentions, events, pl.concat(warnings)


def load_with_profile(loaded: LoadedProfile, source: Path | str) -> RecordSet:
    """Read an export through its profile and check it as the contract's record set; its data
    quality names the export's own files, rows and columns."""
    files = export_files(loaded, Path(source))
    detentions, events, not_utf8 = contract_tables(loaded, files)
    contract = [*TABLES["detentions"]], [*TABLES["events"]]
    record_set = load_tables(
        detentions.select(*(s.name for s in contract[0]), ROW),
        events.select(*(s.name for s in contract[1]), ROW),
        files,
        plausible=loaded.plausibility,
    )
    provenance = {
        "detentions": detentions.drop(*(s.name for s in contract[0])),
        "events": events.drop(*(s.name for s in contract[1])),
    }
    data_quality = _in_export_terms(record_set.data_quality, provenance)
    if not_utf8.height:
        data_quality = sort_data_quality(pl.concat([data_quality, not_utf8]))
    rows = events.select(ROW, "_src_row")
    record_set.events = record_set.events.with_columns(
        pl.col(ROW).replace_strict(rows[ROW], rows["_src_row"], return_dtype=pl.Int64)
    )
    return dataclasses.replace(record_set, data_quality=data_quality)


def _in_export_terms(data_quality: pl.DataFrame, provenance: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Each data-quality row put back in the export's terms: file, row, column(s), the value as
    written, and for an unmapped code the profile's reason."""
    parts = []
    for table, origin in provenance.items():
        part = data_quality.filter(pl.col("table") == table)
        if part.is_empty():
            continue
        joined = part.join(origin, left_on="row", right_on=ROW, how="left", maintain_order="left")
        names = [spec.name for spec in TABLES[table]]

        def pick(kind: str, names: list[str] = names) -> pl.Expr:
            return pl.coalesce([pl.when(pl.col("column") == name).then(pl.col(f"_{kind}.{name}")) for name in names])

        why = pick("why")
        unmapped_type = pl.col("_why.event_type").is_not_null() if table == "events" else pl.lit(False)
        parts.append(
            joined.select(
                file=pl.coalesce("_file", "file"),
                table="table",
                row=pl.coalesce("_src_row", "row"),
                # The export's column(s), then the contract column they are read as:
                # "DOB (date_of_birth)", "Date_Arrived + Time_Arrived (arrival_time)".
                column=pl.when(pick("label").is_not_null())
                .then(pl.format("{} ({})", pick("label"), pl.col("column")))
                .otherwise(pl.col("column")),
                value=pl.when(pl.col("value").is_not_null()).then(pl.coalesce(pick("raw"), "value")),
                reason=pl.coalesce(why, "reason"),
                action="action",
                custody_record_id="custody_record_id",
                event_type=pl.when(unmapped_type).then(None).otherwise(pl.col("event_type")),
            )
        )
    if not parts:
        return data_quality
    return sort_data_quality(pl.concat(parts, how="vertical").cast(data_quality.schema))
