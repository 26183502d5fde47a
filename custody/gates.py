"""`--fail-on`: the gates a CI job sets on a check, and what tripped each one.

A gate is one or more terms joined by `+` (all must hold); several gates (repeated
`--fail-on`, or a comma list) fail the run if any trips. A term is:

- an outcome, `breach` or `cannot_assess`: findings at or above it (cannot_assess
  includes breach, as before); a gate naming no outcome counts breaches;
- a severity, `high`, `medium` or `low`: findings of at least that severity;
- a basis, `statute`, `code` or `guidance`;
- a rule id, e.g. `S38-TRANSFER` (any case);
- `data_quality`, alone: the run's inputs lost rows (a row rejected by the loader, so some
  record or event was not checked as written).

Each term may also be written `outcome=`, `severity=`, `basis=` or `rule=` and its value.
Examples: `--fail-on breach`, `--fail-on high+statute`, `--fail-on cannot_assess+S38-TRANSFER`,
`--fail-on breach,data_quality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from custody.contract import Basis, Outcome, Severity
from custody.errors import UsageError
from custody.findings import CheckResult

DATA_QUALITY = "data_quality"

# At or above: the outcomes and severities each one includes.
_OUTCOMES_AT_OR_ABOVE = {
    Outcome.breach.value: (Outcome.breach.value,),
    Outcome.cannot_assess.value: (Outcome.breach.value, Outcome.cannot_assess.value),
}
_SEVERITIES_AT_OR_ABOVE = {
    Severity.high.value: (Severity.high.value,),
    Severity.medium.value: (Severity.high.value, Severity.medium.value),
    Severity.low.value: (Severity.high.value, Severity.medium.value, Severity.low.value),
}
_BASES = tuple(b.value for b in Basis)
_KEYS = ("outcome", "severity", "basis", "rule")


@dataclass(frozen=True)
class Gate:
    text: str
    """As written on the command line."""
    outcome: str = Outcome.breach.value
    severity: str | None = None
    basis: str | None = None
    rules: tuple[str, ...] = ()
    data_quality: bool = False

    def describe(self) -> str:
        """What the gate counts, in words."""
        if self.data_quality:
            return "input rows rejected"
        words = ["findings"]
        words.append(f"at or above {self.outcome}")
        if self.severity:
            words.append(f"of severity {self.severity} or higher" if self.severity != "high" else "of severity high")
        if self.basis:
            words.append(f"with basis {self.basis}")
        if self.rules:
            words.append(f"of {', '.join(self.rules)}")
        return " ".join(words)

    def condition(self) -> pl.Expr:
        condition = pl.col("outcome").cast(pl.String).is_in(_OUTCOMES_AT_OR_ABOVE[self.outcome])
        if self.severity:
            condition &= pl.col("severity").cast(pl.String).is_in(_SEVERITIES_AT_OR_ABOVE[self.severity])
        if self.basis:
            condition &= pl.col("basis").cast(pl.String) == self.basis
        if self.rules:
            condition &= pl.col("rule_id").cast(pl.String).is_in(self.rules)
        return condition


@dataclass
class GateResult:
    gate: Gate
    count: int
    per_rule: dict[str, int] = field(default_factory=dict)
    """For finding gates: how many findings of each rule tripped it, most first."""

    @property
    def tripped(self) -> bool:
        return self.count > 0

    def sentence(self) -> str:
        """What tripped the gate (or that it held), in one sentence for the terminal."""
        if self.gate.data_quality:
            if not self.tripped:
                return f"--fail-on {self.gate.text}: held (no input row was rejected)."
            return f"--fail-on {self.gate.text}: {self.count:,} input row(s) rejected (see data_quality.csv)."
        if not self.tripped:
            return f"--fail-on {self.gate.text}: held (no {self.gate.describe()})."
        rules = ", ".join(f"{rule_id} {n:,}" for rule_id, n in self.per_rule.items())
        return f"--fail-on {self.gate.text}: {self.count:,} {self.gate.describe()} ({rules})."


def parse_gates(values: list[str], rule_ids: list[str]) -> list[Gate]:
    """The gates named by `--fail-on` values (each a comma list); a term that names nothing
    known is refused in one sentence listing what is."""
    known_rules = {r.upper(): r for r in rule_ids}
    gates = []
    for value in values:
        for text in (part.strip() for part in value.split(",")):
            if text:
                gates.append(_parse_gate(text, known_rules))
    return gates


def _parse_gate(text: str, known_rules: dict[str, str]) -> Gate:
    fields: dict[str, str] = {}
    rules: list[str] = []
    terms = [t.strip() for t in text.split("+")]
    if DATA_QUALITY in (t.lower() for t in terms):
        if len(terms) > 1:
            raise UsageError(f"--fail-on {text}: data_quality is a gate of its own; give it as a separate --fail-on.")
        return Gate(text=text, data_quality=True)
    for term in terms:
        key, _, value = term.partition("=") if "=" in term else ("", "", term)
        key, value = key.strip().lower(), value.strip()
        kind = key or _kind_of(value, known_rules)
        if kind not in _KEYS or kind is None:
            raise UsageError(
                f"--fail-on {text}: {term!r} is not an outcome (breach, cannot_assess), severity (high, medium, "
                f"low), basis ({', '.join(_BASES)}), rule id or data_quality; see `custody rules list` for the ids."
            )
        if kind == "rule":
            if value.upper() not in known_rules:
                raise UsageError(f"--fail-on {text}: no rule {value}; see `custody rules list` for the ids.")
            rules.append(known_rules[value.upper()])
            continue
        value = value.lower()
        valid = {"outcome": _OUTCOMES_AT_OR_ABOVE, "severity": _SEVERITIES_AT_OR_ABOVE, "basis": _BASES}[kind]
        if value not in valid:
            raise UsageError(f"--fail-on {text}: {kind} must be one of {', '.join(valid)}.")
        if kind in fields and fields[kind] != value:
            raise UsageError(f"--fail-on {text}: names two values of {kind}; give them as separate gates.")
        fields[kind] = value
    return Gate(
        text=text,
        outcome=fields.get("outcome", Outcome.breach.value),
        severity=fields.get("severity"),
        basis=fields.get("basis"),
        rules=tuple(rules),
    )


def _kind_of(value: str, known_rules: dict[str, str]) -> str | None:
    lowered = value.lower()
    if lowered in _OUTCOMES_AT_OR_ABOVE:
        return "outcome"
    if lowered in _SEVERITIES_AT_OR_ABOVE:
        return "severity"
    if lowered in _BASES:
        return "basis"
    if value.upper() in known_rules:
        return "rule"
    return None


def evaluate_gates(result: CheckResult, gates: list[Gate]) -> list[GateResult]:
    """Each gate against a check's findings and data quality."""
    results = []
    for gate in gates:
        if gate.data_quality:
            counts = result.meta.get("counts") or {}
            rejected = counts.get("rows_rejected")
            if rejected is None:  # a result made without the loader's counts: count the rows it reported
                rejected = result.data_quality.filter(pl.col("action") == "row_rejected").height
            results.append(GateResult(gate, int(rejected)))
            continue
        per_rule = (
            result.findings.lazy()
            .filter(gate.condition())
            .group_by(pl.col("rule_id").cast(pl.String))
            .len()
            .collect()
            .sort(["len", "rule_id"], descending=[True, False])
            .rows()
        )
        per = {str(rule_id): int(n) for rule_id, n in per_rule}
        results.append(GateResult(gate, sum(per.values()), per))
    return results
