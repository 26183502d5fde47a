"""Rule files: the law as data. One YAML file per rule in `rules/`, named by its id.

The file is validated by the pydantic models below (unknown keys refused) after
a YAML load that refuses duplicate keys and remembers the line of every value,
so that an error names the file and the line.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from custody.contract import Basis, Outcome, Severity
from custody.facts import FactSettings
from custody.facts.settings import DatedVersion, SettingsError
from custody.read import yamlfile

RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
FACTS_SETTINGS_FILE = "_facts.yaml"

# Limits on what a rule file may be, far above what the shipped rules need (the largest is
# ~34 KB, nests 8 levels and expands its aliases to under 2,000 values): a file beyond them is
# refused with one sentence before it can take the memory or the time of the run.
MAX_RULE_FILE_BYTES = 1_000_000
MAX_YAML_DEPTH = yamlfile.MAX_YAML_DEPTH
MAX_YAML_VALUES = yamlfile.MAX_YAML_VALUES
"""Values (scalars and collections) once every alias is expanded: bounds an alias bomb."""


class RuleFileError(yamlfile.YamlFileError):
    """A rule file that cannot be used: one sentence naming the file (and line)."""


Path_ = yamlfile.KeyPath

# The safe loader that refuses duplicate keys (custody.read.yamlfile): nothing in a rule file is
# ever executed.
_RuleLoader = yamlfile.StrictLoader
_construct_mapping = yamlfile.construct_mapping
_lines = yamlfile.lines_of_nodes


def read_file_bytes(path: Path) -> bytes:
    """The bytes of a rule file (read once: they are parsed and hashed for the rules digest).

    Only a regular file of at most MAX_RULE_FILE_BYTES is read: a FIFO or a device (a link
    to /dev/zero) is refused without being opened.
    """
    return yamlfile.read_file_bytes(path, max_bytes=MAX_RULE_FILE_BYTES, what="rule file", error=RuleFileError)


def parse_yaml(path: Path, raw: bytes) -> tuple[Any, dict[Path_, int], str]:
    """Parse the bytes of a YAML file once: the data, the line of each value by key path, the text."""
    return yamlfile.parse_yaml(path, raw, error=RuleFileError, loader_class=_RuleLoader)


def load_yaml(path: Path) -> tuple[Any, dict[Path_, int]]:
    """Read and parse a YAML file; returns the data and the line of each value by its key path."""
    data, lines, _ = parse_yaml(path, read_file_bytes(path))
    return data, lines


# ------------------------------------------------------------------ models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class OutcomeCase(_Strict):
    """One step of the decision: the first whose `when` holds decides (no `when`: otherwise)."""

    when: str | None = Field(None, description="condition; if it cannot be evaluated the outcome is cannot_assess")
    outcome: Outcome
    message: str = Field(description="one sentence; {expression} placeholders are filled from the record")
    severity: Severity | None = Field(None, description="overrides the rule's severity for this outcome")


class Logic(_Strict):
    applies: str = Field(description="when the rule applies to a record (false: no finding)")
    outcomes: list[OutcomeCase] = Field(min_length=1)
    cannot_assess_message: str = Field(
        "The record lacks the evidence to assess this rule.",
        description="sentence for cannot_assess; the missing or unusable facts are appended",
    )

    @model_validator(mode="after")
    def _last_is_otherwise(self) -> Logic:
        if self.outcomes[-1].when is not None:
            raise ValueError("the last outcome must have no 'when' (it is what happens otherwise)")
        if any(case.when is None for case in self.outcomes[:-1]):
            raise ValueError("only the last outcome may leave out 'when'")
        return self


class Version(DatedVersion):
    params: dict[str, Any] = Field(default_factory=dict)
    basis: Basis | None = None
    severity: Severity | None = None
    logic: Logic | None = Field(None, description="replaces the rule's logic for this version")


class CaseRecord(_Strict):
    """One custody record of a case, in the contract's columns, and the outcome expected of it.

    An event is a mapping of the events columns or a line `TIME TYPE [DETAIL]`, e.g.
    `2015-07-01 14:00 la_requested secure`; the record's id is filled in.
    """

    detention: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any] | str] = Field(default_factory=list)
    expect: Outcome | Literal["none"] | list[Outcome | Literal["none"]] = Field(
        description=(
            "the outcome, or none when the rule must not apply; for a rule with occasions, a list "
            "gives the outcome of each occasion of the record in order"
        )
    )
    message_contains: str | None = None


class RuleCase(_Strict):
    name: str = Field(description="a sentence saying what the case shows")
    records: list[CaseRecord] = Field(min_length=1)


class RuleModel(_Strict):
    id: str
    title: str
    basis: Basis
    severity: Severity
    checks: str = Field(description="what the rule checks, in plain English")
    why: str = Field(description="why it matters")
    action: str = Field(description="what a reviewer should do with a breach")
    notes: str | None = Field(None, description="uncertain points and parameters (LAW.md confidence)")
    citations: list[str] = Field(min_length=1)
    trigger: str = Field(description="the instant that chooses the version of the law")
    occasions: str | None = Field(
        None,
        description=(
            "an event type: the rule is evaluated once per event of this type on a record (each an "
            "occasion, with occasion_* facts); none: once per record"
        ),
    )
    versions: list[Version] = Field(min_length=1)
    logic: Logic
    evidence: list[str] | None = Field(None, description="facts to attach; default: every fact the rule reads")
    case_defaults: dict[str, Any] = Field(default_factory=dict, description="detention fields every case starts from")
    cases: list[RuleCase] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not RULE_ID_RE.match(value):
            raise ValueError(f"rule id {value!r} must look like S38-REQUEST (capitals, digits, hyphens)")
        return value


@dataclass
class RuleSource:
    rule: RuleModel
    path: Path
    lines: dict[Path_, int] = field(default_factory=dict)
    text: str = ""

    def line(self, *path: str | int) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


@dataclass
class RuleSet:
    directory: Path
    rules: list[RuleSource]
    settings: FactSettings
    digest: str

    def get(self, rule_id: str) -> RuleSource | None:
        return next((r for r in self.rules if r.rule.id == rule_id), None)


def _pydantic_error(path: Path, lines: dict[Path_, int], error: ValidationError) -> RuleFileError:
    first = error.errors()[0]
    location = tuple(first["loc"])
    message = first["msg"]
    located = first.get("ctx", {}).get("error")
    if isinstance(located, SettingsError):  # a problem the model placed itself (a version, a citation)
        location, message = (*location, *located.location), located.message
    where = ".".join(str(p) for p in location) or "(top level)"
    line = None
    probe = location
    while probe and line is None:
        line = lines.get(probe)
        probe = probe[:-1]
    if first["type"] == "extra_forbidden":
        message = f"unknown key '{location[-1]}'"
        where = ".".join(str(p) for p in location[:-1]) or "(top level)"
    return RuleFileError(path, f"{where}: {message}", line)


def load_rule_file(path: Path, raw: bytes | None = None) -> RuleSource:
    """Validate one rule file (`raw`: its bytes, when the caller has read them already)."""
    data, lines, text = parse_yaml(path, read_file_bytes(path) if raw is None else raw)
    if not isinstance(data, dict):
        raise RuleFileError(path, "is not a rule: expected a mapping with id, title, versions, logic, cases", 1)
    try:
        rule = RuleModel.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(path, lines, exc) from None
    if path.stem != rule.id:
        raise RuleFileError(path, f"holds rule '{rule.id}': name the file {rule.id}{path.suffix}", lines.get(("id",)))
    return RuleSource(rule, path, lines, text)


def load_fact_settings(path: Path, raw: bytes | None = None) -> FactSettings:
    """Validate `_facts.yaml`: dated legal values (`versions`) and `parameters`; empty: the defaults."""
    data, lines, _ = parse_yaml(path, read_file_bytes(path) if raw is None else raw)
    if data is None:
        return FactSettings()
    if not isinstance(data, dict):
        raise RuleFileError(path, "expected a mapping with 'versions' (dated legal values) and 'parameters'", 1)
    if "settings" in data:
        raise RuleFileError(
            path,
            "'settings' is the old layout: put the legal values in dated 'versions' (effective_from,"
            " citations, changes, values) and leap_day_birthday in 'parameters', as the shipped"
            " rules/_facts.yaml does",
            lines.get(("settings",)),
        )
    try:
        return FactSettings.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(path, lines, exc) from None


def rule_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.y*ml") if not p.name.startswith(("_", ".")))


def load_rule_set(directory: Path) -> RuleSet:
    """Load and validate every rule file; the first broken file stops with its name and line.

    Each file is read once: its bytes are parsed and go into the digest of the rule set.
    """
    if not directory.is_dir():
        raise RuleFileError(directory, "is not a folder of rule files: pass --rules DIR")
    paths = rule_files(directory)
    if not paths:
        raise RuleFileError(directory, "holds no rule files (*.yaml): pass --rules DIR")
    settings = FactSettings()
    settings_path = directory / FACTS_SETTINGS_FILE
    digest = hashlib.sha256()
    if settings_path.exists():
        raw = read_file_bytes(settings_path)
        settings = load_fact_settings(settings_path, raw)
        digest.update(raw)
    sources: list[RuleSource] = []
    seen: dict[str, Path] = {}
    for path in paths:
        raw = read_file_bytes(path)
        source = load_rule_file(path, raw)
        if source.rule.id in seen:
            raise RuleFileError(path, f"rule id {source.rule.id} is also used by {seen[source.rule.id]}")
        seen[source.rule.id] = path
        digest.update(path.name.encode() + b"\0" + raw)
        sources.append(source)
    return RuleSet(directory, sources, settings, digest.hexdigest())


def default_rules_dir() -> Path:
    """The rules shipped with the package (wheel) or, in a source checkout, `rules/`."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_rules"
    if shipped.is_dir():
        return shipped
    return package.parent / "rules"
