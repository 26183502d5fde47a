"""A rule explained in words (`custody rules show`), in fixed sections like `ruff rule`."""

from __future__ import annotations

import textwrap

from custody.engine.rulefile import RuleSource


def _wrap(text: str, indent: str = "  ", first: str | None = None) -> str:
    paragraphs = text.strip().split("\n\n")
    return "\n".join(
        textwrap.fill(p, width=100, initial_indent=first if (first and i == 0) else indent, subsequent_indent=indent)
        for i, p in enumerate(paragraphs)
    )


def explain_rule(source: RuleSource) -> str:
    """The full explanation of a rule, in fixed sections (like `ruff rule`)."""
    rule = source.rule
    out = [f"{rule.id}: {rule.title}", "", f"Basis: {rule.basis.value}    Severity: {rule.severity.value}"]
    out += ["", "What it checks", _wrap(rule.checks), "", "Why it matters", _wrap(rule.why)]
    out += ["", "What to do with a breach", _wrap(rule.action)]
    if rule.notes:
        out += ["", "Notes and uncertain points", _wrap(rule.notes)]
    out += ["", "Law", *(f"  - {c}" for c in rule.citations)]
    out += ["", f"Versions (chosen per record by: {rule.trigger.strip()})"]
    for version in rule.versions:
        until = f" to {version.effective_to}" if version.effective_to else " onwards"
        out.append(f"  {version.effective_from}{until}" + (f" [{version.basis.value}]" if version.basis else ""))
        out.append(_wrap(version.changes, "      "))
        out += [f"      cites: {c}" for c in version.citations]
        for name, value in version.params.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            out.append(textwrap.fill(f"{name} = {shown}", 100, initial_indent="      ", subsequent_indent="        "))
    logic = rule.logic
    out += ["", "Logic", "  applies when:", _wrap(" ".join(logic.applies.split()), "    ")]
    for case in logic.outcomes:
        condition = " ".join(case.when.split()) if case.when else "otherwise"
        out.append(f"  {case.outcome.value} when: {condition}")
        out.append(_wrap(case.message, "               ", "      message: "))
    out.append("  cannot_assess when any condition it needs is unknown or rests on unusable input:")
    out.append(_wrap(logic.cannot_assess_message, "               ", "      message: "))
    if rule.cases:
        out += ["", f"Test cases ({len(rule.cases)})"]
        for rule_case in rule.cases:
            expected = ", ".join(
                "[" + ", ".join(r.expect) + "]" if isinstance(r.expect, list) else r.expect for r in rule_case.records
            )
            out.append(f"  - {rule_case.name} -> {expected}")
    out += ["", f"File: {source.path}"]
    return "\n".join(out)
