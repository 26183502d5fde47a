"""What `custody check` says about its gates: the sentences on stderr, the exit code, and
the JSON or JUnit report on stdout (for CI)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

from custody.cli.options import OutputFormat
from custody.findings import CheckResult, outcomes_per_rule
from custody.gates import Gate, GateResult
from custody.render.junit import Case, Suite, junit_xml

# With no --fail-on, a JUnit report still needs a meaning for "failed": a rule with breaches.
REPORT_GATE = Gate(text="breach")


def report_gates(verdicts: list[GateResult], *, quiet: bool) -> None:
    """Each tripped gate's sentence on stderr (also with -q), each held one unless quiet;
    exit 1 if any tripped."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    tripped = [v for v in verdicts if v.tripped]
    for verdict in verdicts:
        if verdict.tripped or not quiet:
            console.print(verdict.sentence(), markup=False)
    if tripped:
        console.print(f"{len(tripped)} of {len(verdicts)} --fail-on gate(s) tripped: exit 1.", markup=False)
        raise typer.Exit(1)


def _gate_json(verdict: GateResult) -> dict[str, Any]:
    return {
        "gate": verdict.gate.text,
        "counts": verdict.gate.describe(),
        "tripped": verdict.tripped,
        "count": verdict.count,
        "per_rule": verdict.per_rule,
        "message": verdict.sentence(),
    }


def check_report(
    output_format: OutputFormat, result: CheckResult, verdicts: list[GateResult], summary: dict[str, Any]
) -> str:
    """The machine-readable report of a check: JSON (summary.json's content with the gates)
    or JUnit (a test case per rule and one for data quality)."""
    if output_format is OutputFormat.json:
        content = {
            **summary,
            "gates": [_gate_json(v) for v in verdicts],
            "failed": any(v.tripped for v in verdicts),
        }
        return json.dumps(content, indent=2, ensure_ascii=False) + "\n"
    return _check_junit(result, verdicts)


def _check_junit(result: CheckResult, verdicts: list[GateResult]) -> str:
    from custody.gates import evaluate_gates

    finding_gates = [v for v in verdicts if not v.gate.data_quality] or evaluate_gates(result, [REPORT_GATE])
    per_rule = outcomes_per_rule(result)
    cases = []
    for rule_id, counts in per_rule.items():
        trips = [(v, v.per_rule[rule_id]) for v in finding_gates if v.per_rule.get(rule_id)]
        failure = None
        details = ""
        if trips:
            failure = "; ".join(f"--fail-on {v.gate.text}: {n:,} {v.gate.describe()}" for v, n in trips)
            details = (
                f"{rule_id}: {counts['breach']:,} breach, {counts['cannot_assess']:,} cannot_assess, "
                f"{counts['compliant']:,} compliant. See exceptions.csv for the records."
            )
        cases.append(Case(name=rule_id, classname="custody.check.rules", failure=failure, details=details))
    quality = [v for v in verdicts if v.gate.data_quality]
    rejected = quality[0].count if quality else 0
    cases.append(
        Case(
            name="data_quality",
            classname="custody.check.inputs",
            failure=quality[0].sentence() if quality and quality[0].tripped else None,
            details=f"{rejected:,} input row(s) rejected; every row is listed in data_quality.csv.",
        )
    )
    return junit_xml([Suite("custody check", cases)], name="custody check")
