"""Compile rule files against the facts schema and evaluate them all in one lazy polars pass.

For each rule and record the decision goes:

1. the trigger instant chooses the version of the law in force (per record, not today's);
2. `applies` (split on its top-level `and`) decides scope: a conjunct that is false on
   usable facts puts the record out of scope (no finding); one that is unknown, or rests on
   input the loader could not use, makes the finding `cannot_assess`;
3. the outcomes are tried in order; the first whose condition holds decides, and one whose
   condition cannot be evaluated (missing evidence) gives `cannot_assess`, never a pass.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from custody.contract import FINDINGS_SCHEMA, UK_TZ, Outcome
from custody.engine.expr import Compiled, ExpressionError, Scope, compile_condition, compile_expression, param_value
from custody.engine.rulefile import Logic, RuleFileError, RuleSet, RuleSource, Version
from custody.facts import UNKNOWN_EVENT_FLAG, fact_specs
from custody.facts.specs import FactSpec, Kind
from custody.facts.time import instant_lit, uk_midnight

NOT_RECORDED = "not recorded"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

# `_step` codes (stage 1); outcome cases use CASE_BASE + 2*j (+1 when decided).
STEP_SCOPE_UNKNOWN, STEP_TAINTED, STEP_TRIGGER_UNKNOWN, CASE_BASE = 0, 1, 2, 10


@dataclass(frozen=True)
class CompiledCase:
    condition: Compiled | None
    outcome: str
    message: pl.Expr
    severity: str


@dataclass(frozen=True)
class CompiledVersion:
    version: Version
    start: Any  # UTC datetime
    end: Any  # UTC datetime or None
    conjuncts: tuple[Compiled, ...]
    cases: tuple[CompiledCase, ...]
    cannot_assess_message: str
    basis: str
    severity: str
    citation: str
    facts: frozenset[str]


@dataclass(frozen=True)
class CompiledRule:
    source: RuleSource
    trigger: Compiled
    versions: tuple[CompiledVersion, ...]
    evidence: tuple[str, ...]

    @property
    def rule_id(self) -> str:
        return self.source.rule.id


def _fail(source: RuleSource, where: tuple[str | int, ...], exc: ExpressionError, text: str) -> RuleFileError:
    column = f" (at '{text.strip()[exc.column :][:30]}')" if exc.column is not None and exc.column > 0 else ""
    return RuleFileError(source.path, f"{'.'.join(map(str, where))}: {exc.message}{column}", source.line(*where))


def _conjuncts(text: str) -> list[str]:
    """Split a condition on its top-level `and`, so each part can put a record out of scope."""
    source = " ".join(text.split("\n")).strip()
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return [text]
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        return [ast.get_source_segment(source, v) or ast.unparse(v) for v in tree.values]
    return [text]


def _format(compiled: Compiled) -> pl.Expr:
    """A value as people read it in a message: UK local times, durations as 5h 07m."""
    expr = compiled.expr
    kind: Kind = compiled.kind
    if kind == "instant":
        text = expr.dt.convert_time_zone(UK_TZ).dt.strftime("%Y-%m-%d %H:%M %Z")
    elif kind == "duration":
        minutes = expr.dt.total_minutes()
        text = pl.concat_str(
            pl.when(minutes < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (minutes.abs() // 60).cast(pl.String),
            pl.lit("h "),
            (minutes.abs() % 60).cast(pl.String).str.zfill(2),
            pl.lit("m"),
        )
    elif kind == "date":
        text = expr.dt.strftime("%Y-%m-%d")
    elif kind == "bool":
        text = pl.when(expr).then(pl.lit("yes")).when(expr.not_()).then(pl.lit("no"))
    elif kind == "float":
        text = expr.round(1).cast(pl.String)
    elif kind == "list":
        text = pl.lit(", ".join(compiled.literal or []))
    else:
        text = expr.cast(pl.String)
    return text.fill_null(NOT_RECORDED)


def compile_message(template: str, scope: Scope) -> tuple[pl.Expr, frozenset[str]]:
    """`"Refused bail at {bail_refused_at}."` -> a string expression (placeholders are expressions)."""
    parts: list[pl.Expr] = []
    facts: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append(pl.lit(template[position : match.start()]))
        compiled = compile_expression(match.group(1), scope)
        facts |= compiled.facts
        parts.append(_format(compiled))
        position = match.end()
    if position < len(template):
        parts.append(pl.lit(template[position:]))
    expr = pl.concat_str(parts) if parts else pl.lit("")
    return expr, frozenset(facts)


def _compile_version(
    source: RuleSource, index: int, version: Version, specs: dict[str, FactSpec], leap: str
) -> CompiledVersion:
    rule = source.rule
    logic: Logic = version.logic or rule.logic
    logic_path: tuple[str | int, ...] = ("versions", index, "logic") if version.logic else ("logic",)
    scope = Scope(specs, version.params, leap)
    for name, value in version.params.items():
        if name in specs:
            raise RuleFileError(
                source.path,
                f"parameter '{name}' has the name of a fact: rename it",
                source.line("versions", index, "params", name),
            )
        try:
            param_value(value)
        except ExpressionError as exc:
            raise _fail(source, ("versions", index, "params", name), exc, "") from None
    facts: set[str] = set()
    conjuncts = []
    for part in _conjuncts(logic.applies):
        try:
            compiled = compile_condition(part, scope)
        except ExpressionError as exc:
            raise _fail(source, (*logic_path, "applies"), exc, logic.applies) from None
        conjuncts.append(compiled)
        facts |= compiled.facts
    cases = []
    severity = (version.severity or rule.severity).value
    for j, case in enumerate(logic.outcomes):
        where = (*logic_path, "outcomes", j)
        condition = None
        if case.when is not None:
            try:
                condition = compile_condition(case.when, scope)
            except ExpressionError as exc:
                raise _fail(source, (*where, "when"), exc, case.when) from None
            facts |= condition.facts
        try:
            message, message_facts = compile_message(case.message, scope)
        except ExpressionError as exc:
            raise _fail(source, (*where, "message"), exc, case.message) from None
        facts |= message_facts
        case_severity = case.severity.value if case.severity else severity
        cases.append(CompiledCase(condition, case.outcome.value, message, case_severity))
    # effective_to is the last day in force: the version ends at 00:00 UK time the day after.
    end = uk_midnight(version.effective_to + dt.timedelta(days=1)) if version.effective_to else None
    return CompiledVersion(
        version=version,
        start=uk_midnight(version.effective_from),
        end=end,
        conjuncts=tuple(conjuncts),
        cases=tuple(cases),
        cannot_assess_message=logic.cannot_assess_message,
        basis=(version.basis or rule.basis).value,
        severity=severity,
        citation="; ".join(version.citations),
        facts=frozenset(facts),
    )


def compile_rule(source: RuleSource, specs: dict[str, FactSpec] | None = None, leap: str = "march_1") -> CompiledRule:
    """Compile a rule against the facts schema; any unknown name or bad expression is refused."""
    specs = specs or fact_specs()
    rule = source.rule
    try:
        trigger = compile_expression(rule.trigger, Scope(specs, rule.versions[-1].params, leap))
    except ExpressionError as exc:
        raise _fail(source, ("trigger",), exc, rule.trigger) from None
    if trigger.kind != "instant":
        raise RuleFileError(source.path, f"trigger: must be an instant, not {trigger.kind}", source.line("trigger"))
    ordered = sorted(rule.versions, key=lambda v: v.effective_from)
    versions = tuple(_compile_version(source, rule.versions.index(v), v, specs, leap) for v in ordered)
    # A version with no end date is in force until the next one starts.
    versions = tuple(
        v if v.end is not None or i == len(versions) - 1 else dataclasses.replace(v, end=versions[i + 1].start)
        for i, v in enumerate(versions)
    )
    read = frozenset().union(*(v.facts for v in versions)) | trigger.facts
    if rule.evidence is not None:
        unknown = [name for name in rule.evidence if name not in specs]
        if unknown:
            raise RuleFileError(source.path, f"evidence: unknown fact(s) {', '.join(unknown)}", source.line("evidence"))
        evidence = tuple(rule.evidence)
    else:
        evidence = tuple(sorted(read - {"custody_record_id", "person_id"}))
    return CompiledRule(source, trigger, versions, evidence)


def compile_rule_set(rule_set: RuleSet) -> list[CompiledRule]:
    specs = fact_specs()
    return [compile_rule(s, specs, rule_set.settings.leap_day_birthday) for s in rule_set.rules]


# ------------------------------------------------------------------ evaluation


def _flags(facts: frozenset[str], specs: dict[str, FactSpec]) -> list[str]:
    return sorted(frozenset().union(*(specs[f].lineage for f in facts if f in specs)))


def _any(flags: list[str]) -> pl.Expr:
    return pl.any_horizontal(*(pl.col(f) for f in flags)) if flags else pl.lit(False)


def _describe_flag(flag: str) -> str:
    if flag == UNKNOWN_EVENT_FLAG:
        return "an event row of unknown type"
    if flag.startswith("_dq_det_"):
        return f"detentions.{flag.removeprefix('_dq_det_')}"
    if flag.startswith("_dq_detail_"):
        return f"the detail code of a '{flag.removeprefix('_dq_detail_')}' event"
    return f"a '{flag.removeprefix('_dq_evt_')}' event row"


def _explain(facts: frozenset[str], specs: dict[str, FactSpec], parts: tuple[Compiled, ...] | None = None) -> pl.Expr:
    """' Not recorded: x, y. Unusable input: z.' for the facts a step needed.

    With `parts` (the conjuncts of `applies`), only the facts of the parts that were not
    settled (unknown, or resting on unusable input) are named.
    """
    names = sorted(f for f in facts if f in specs)

    def relevant(name_or_flag: str, is_flag: bool) -> pl.Expr:
        if parts is None:
            return pl.lit(True)
        unsettled = [
            c.expr.is_null() | _any(_flags(c.facts, specs))
            for c in parts
            if (name_or_flag in _flags(c.facts, specs) if is_flag else name_or_flag in c.facts)
        ]
        return pl.any_horizontal(*unsettled) if unsettled else pl.lit(False)

    missing = pl.concat_str(
        [pl.when(pl.col(n).is_null() & relevant(n, False)).then(pl.lit(n)) for n in names] or [pl.lit(None, pl.String)],
        separator=", ",
        ignore_nulls=True,
    )
    flags = _flags(frozenset(names), specs)
    unusable = pl.concat_str(
        [pl.when(pl.col(f) & relevant(f, True)).then(pl.lit(_describe_flag(f))) for f in flags]
        or [pl.lit(None, pl.String)],
        separator=", ",
        ignore_nulls=True,
    )
    return pl.concat_str(
        pl.when(missing != "").then(pl.lit(" Not recorded: ") + missing + pl.lit(".")).otherwise(pl.lit("")),
        pl.when(unusable != "")
        .then(pl.lit(" Unusable input (see data_quality): ") + unusable + pl.lit("."))
        .otherwise(pl.lit("")),
    )


def _version_index(rule: CompiledRule) -> pl.Expr:
    trigger = rule.trigger.expr
    chain: Any = pl
    for i, version in enumerate(rule.versions):
        in_force = trigger >= instant_lit(version.start)
        if version.end is not None:
            in_force = in_force & (trigger < instant_lit(version.end))
        chain = chain.when(in_force).then(pl.lit(i, pl.Int32))
    return pl.when(trigger.is_null()).then(pl.lit(None, pl.Int32)).otherwise(chain.otherwise(pl.lit(-1, pl.Int32)))


def _step(version: CompiledVersion, specs: dict[str, FactSpec], trigger_known: bool) -> pl.Expr:
    """Stage 1: which step decided (null: no finding)."""
    out_of_scope = pl.any_horizontal(
        *((c.expr.not_().fill_null(False) & ~_any(_flags(c.facts, specs))) for c in version.conjuncts)
    )
    in_scope = pl.all_horizontal(
        *((c.expr.fill_null(False) & ~_any(_flags(c.facts, specs))) for c in version.conjuncts)
    )
    chain: Any = pl.when(out_of_scope).then(pl.lit(None, pl.Int32))
    if not trigger_known:
        return chain.otherwise(pl.lit(STEP_TRIGGER_UNKNOWN, pl.Int32))  # type: ignore[no-any-return]
    case_facts = frozenset().union(*(c.condition.facts for c in version.cases if c.condition))
    chain = chain.when(~in_scope).then(pl.lit(STEP_SCOPE_UNKNOWN, pl.Int32))
    chain = chain.when(_any(_flags(case_facts, specs))).then(pl.lit(STEP_TAINTED, pl.Int32))
    for j, case in enumerate(version.cases):
        if case.condition is None:
            return chain.otherwise(pl.lit(CASE_BASE + 2 * j + 1, pl.Int32))  # type: ignore[no-any-return]
        chain = chain.when(case.condition.expr.is_null()).then(pl.lit(CASE_BASE + 2 * j, pl.Int32))
        chain = chain.when(case.condition.expr).then(pl.lit(CASE_BASE + 2 * j + 1, pl.Int32))
    raise AssertionError("the last outcome has no condition (checked by the rule model)")


def _evidence(rule: CompiledRule, specs: dict[str, FactSpec], include_notes: bool) -> pl.Expr:
    fields: list[pl.Expr] = []
    for name in rule.evidence:
        spec = specs[name]
        if spec.sensitive and not include_notes:
            continue
        column = pl.col(name)
        if spec.kind == "instant":
            fields.append(column.dt.convert_time_zone(UK_TZ).dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias(name))
        elif spec.kind == "duration":
            fields.append(column.dt.total_minutes().alias(f"{name}_minutes"))
        elif spec.kind == "date":
            fields.append(column.dt.strftime("%Y-%m-%d").alias(name))
        elif spec.kind == "str":
            fields.append(column.cast(pl.String).alias(name))
        else:
            fields.append(column.alias(name))
    if not fields:
        return pl.lit("{}")
    return pl.struct(fields).struct.json_encode()


@dataclass(frozen=True)
class _Step:
    code: int
    outcome: str
    severity: str
    message: pl.Expr


def _steps(rule: CompiledRule, version: CompiledVersion, specs: dict[str, FactSpec]) -> list[_Step]:
    """Every step that can decide a finding under `version`, with its outcome and message."""
    cannot = Outcome.cannot_assess.value
    trigger_text = rule.source.rule.trigger.strip()
    case_facts = frozenset().union(*(c.condition.facts for c in version.cases if c.condition))
    scope_facts = frozenset().union(*(c.facts for c in version.conjuncts))
    steps = [
        _Step(
            STEP_SCOPE_UNKNOWN,
            cannot,
            version.severity,
            pl.lit(version.cannot_assess_message) + _explain(scope_facts, specs, version.conjuncts),
        ),
        _Step(
            STEP_TAINTED, cannot, version.severity, pl.lit(version.cannot_assess_message) + _explain(case_facts, specs)
        ),
        _Step(
            STEP_TRIGGER_UNKNOWN,
            cannot,
            version.severity,
            pl.lit(
                f"The time that decides which version of the law applies ({trigger_text}) is not known, "
                "so the rule cannot be assessed."
            )
            + _explain(rule.trigger.facts, specs),
        ),
    ]
    for j, case in enumerate(version.cases):
        if case.condition is not None:
            steps.append(
                _Step(
                    CASE_BASE + 2 * j,
                    cannot,
                    version.severity,
                    pl.lit(version.cannot_assess_message) + _explain(case.condition.facts, specs),
                )
            )
        steps.append(_Step(CASE_BASE + 2 * j + 1, case.outcome, case.severity, case.message))
    return steps


def rule_findings(
    facts: pl.LazyFrame,
    rule: CompiledRule,
    specs: dict[str, FactSpec],
    include_notes: bool = False,
    *,
    materialise: bool = False,
) -> list[pl.LazyFrame | None]:
    """The findings of one rule over every record (lazy), one frame per segment: a version
    in force and the step that decided.

    The records are partitioned by the version in force and then by the step that decided,
    so each record's conditions are evaluated under one version only and its message is
    formatted once, by the template of its own outcome. With `materialise`, each version's
    decisions are computed here, once, so the segments can be run one by one, and a segment
    that holds no record is None.
    """
    rule_model = rule.source.rule
    evidence = _evidence(rule, specs, include_notes)
    decided = facts.with_columns(_version=_version_index(rule), _trigger_at=rule.trigger.expr)
    last = len(rule.versions) - 1
    partitions: list[pl.LazyFrame | None] = []
    for index in (None, *range(len(rule.versions))):
        version = rule.versions[last if index is None else index]
        in_version = pl.col("_version").is_null() if index is None else (pl.col("_version") == index)
        stepped = (
            decided.filter(in_version)
            .with_columns(_step=_step(version, specs, trigger_known=index is not None))
            .filter(pl.col("_step").is_not_null())
            # The evidence is the same whatever the step: built once per version, not per step.
            .with_columns(evidence.alias("_evidence"))
        )
        present = None
        if materialise:
            computed = stepped.collect()
            present = set(computed["_step"].unique().to_list())
            stepped = computed.lazy()
        for step in _steps(rule, version, specs):
            if present is not None and step.code not in present:
                partitions.append(None)
                continue
            partitions.append(
                stepped.filter(pl.col("_step") == step.code).select(
                    pl.col("person_id"),
                    pl.col("custody_record_id"),
                    pl.lit(rule_model.id).cast(FINDINGS_SCHEMA["rule_id"]).alias("rule_id"),
                    pl.lit(step.outcome).cast(FINDINGS_SCHEMA["outcome"]).alias("outcome"),
                    pl.lit(step.severity).cast(FINDINGS_SCHEMA["severity"]).alias("severity"),
                    pl.lit(version.basis).cast(FINDINGS_SCHEMA["basis"]).alias("basis"),
                    pl.lit(version.citation).cast(FINDINGS_SCHEMA["citation"]).alias("citation"),
                    pl.lit(version.version.effective_from.isoformat())
                    .cast(FINDINGS_SCHEMA["rule_version"])
                    .alias("rule_version"),
                    step.message.alias("message"),
                    pl.col("_evidence").alias("evidence"),
                    pl.col("_trigger_at").alias("trigger_at"),
                )
            )
    return partitions


def evaluate(facts: pl.LazyFrame, rules: list[CompiledRule], *, include_notes: bool = False) -> pl.LazyFrame:
    """Findings of every rule over every record: one lazy plan, in the contract's columns.

    Order: by rule id; within a rule by the version and step that decided; then in the order
    of the facts (child, arrival, custody record, as `build_facts` gives them).
    """
    if not rules:
        return pl.LazyFrame(schema=FINDINGS_SCHEMA)
    # The facts come in child order (build_facts); sorting the findings themselves would copy
    # the whole table (a third more memory and time at a million records). The order is
    # deterministic: rule id, then version and outcome step, then child.
    segments = evaluate_segments(facts, rules, include_notes=include_notes)
    return pl.concat([frame for frame in segments if frame is not None], how="vertical")


def evaluate_segments(
    facts: pl.LazyFrame, rules: list[CompiledRule], *, include_notes: bool = False, materialise: bool = False
) -> Iterator[pl.LazyFrame | None]:
    """The findings of `evaluate`, a segment (rule, version, step) at a time, in that order.

    The segments are the same for any facts, so the findings of several batches of children
    can be put in one-pass order segment by segment. With `materialise`, each rule's
    decisions are computed (in memory) as its segments are reached, and each segment is a
    small plan that can be run on its own; a segment that holds no record is then None.
    """
    specs = fact_specs()
    for rule in sorted(rules, key=lambda r: r.rule_id):
        for frame in rule_findings(facts, rule, specs, include_notes, materialise=materialise):
            yield None if frame is None else frame.select(list(FINDINGS_SCHEMA))
