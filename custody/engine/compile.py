"""Compile rule files against the facts schema: each rule's trigger, versions, scope
conditions, outcome cases and messages become polars expressions, checked before anything
runs (an unknown fact or a bad expression is refused with the file and line)."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from custody.contract import EVENT_DETAILS, UK_TZ
from custody.engine.expr import (
    SHOWS_NO_FREE_TEXT,
    Compiled,
    ExpressionError,
    Scope,
    compile_condition,
    compile_expression,
    one_line,
    param_value,
    parse_expression,
)
from custody.engine.rulefile import Logic, RuleFileError, RuleSet, RuleSource, Version
from custody.facts import fact_specs
from custody.facts.specs import FactSpec, Kind
from custody.facts.time import leap_day_dependent, uk_midnight

NOT_RECORDED = "not recorded"
MESSAGE_TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


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
    shown: frozenset[str] = frozenset()
    """Instant facts its messages show as they are (formatted once per record)."""
    age_tests: tuple[pl.Expr, ...] = ()
    """The instants at which this version tests an age (`age_at`, `is_juvenile`)."""
    leap_day_birthday: str = "march_1"
    """How a 29 February birthday is read in a common year (rules/_facts.yaml)."""


@dataclass(frozen=True)
class CompiledRule:
    source: RuleSource
    trigger: Compiled
    versions: tuple[CompiledVersion, ...]
    evidence: tuple[str, ...]

    @property
    def rule_id(self) -> str:
        return self.source.rule.id

    @property
    def grain(self) -> str | None:
        """The event type whose every event is an occasion of the rule (none: once per record)."""
        return self.source.rule.occasions

    @property
    def facts(self) -> frozenset[str]:
        """Every fact the rule reads or shows (trigger, versions, evidence)."""
        return frozenset().union(*(v.facts for v in self.versions)) | self.trigger.facts | set(self.evidence)

    @property
    def leap_day_mark(self) -> pl.Expr | None:
        """True for a record (or occasion) whose result may rest on the leap_day_birthday
        reading: a child born on 29 February with an age tested, at an instant any version of
        the rule tests one, on 28 February of a common year (`leap_day_dependent`); None: the
        rule tests no age."""
        tests = {str(e): e for v in self.versions for e in v.age_tests}
        return leap_day_dependent(pl.col("date_of_birth"), list(tests.values())) if tests else None


def _fail(source: RuleSource, where: tuple[str | int, ...], exc: ExpressionError, text: str) -> RuleFileError:
    column = f" (at '{text.strip()[exc.column :][:30]}')" if exc.column is not None and exc.column > 0 else ""
    return RuleFileError(source.path, f"{'.'.join(map(str, where))}: {exc.message}{column}", source.line(*where))


def _conjuncts(text: str) -> list[str]:
    """Split a condition on its top-level `and`, so each part can put a record out of scope."""
    try:
        tree = parse_expression(text).body
    except ExpressionError:
        return [text]  # compiling it reports the problem
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        # Each part sliced by its offsets (UTF-8 bytes of the one line parsed): linear in the
        # number of parts, where ast.get_source_segment re-splits the text for every part.
        source = one_line(text).encode("utf-8")
        return [source[v.col_offset : v.end_col_offset].decode("utf-8") for v in tree.values]
    return [text]


def _format(compiled: Compiled) -> pl.Expr:
    """A value as people read it in a message: UK local times, durations as 5h 07m."""
    expr = compiled.expr
    kind: Kind = compiled.kind
    if kind == "instant" and expr.meta.is_column():
        # A fact shown as it is: formatted once per record by the evaluator, not per finding.
        text = pl.col(shown_column(expr.meta.output_name()))
    elif kind == "instant":
        text = uk_text(expr)
    elif kind == "duration":
        # Whole seconds are shown when there are any: "2h 00m 01s" is past a 2-hour limit,
        # and a message must not make it read as "2h 00m".
        seconds = expr.dt.total_seconds()
        minutes = seconds.abs() // 60
        text = pl.concat_str(
            pl.when(seconds < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (minutes // 60).cast(pl.String),
            pl.lit("h "),
            (minutes % 60).cast(pl.String).str.zfill(2),
            pl.lit("m"),
            pl.when(seconds.abs() % 60 != 0)
            .then(pl.lit(" ") + (seconds.abs() % 60).cast(pl.String).str.zfill(2) + pl.lit("s"))
            .otherwise(pl.lit("")),
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


def shown_column(fact: str) -> str:
    """The column holding an instant fact as messages show it (UK time), made once per record."""
    return f"{fact}\x1fuk"


def uk_text(instant: pl.Expr) -> pl.Expr:
    """An instant as messages show it: UK local time naming the zone (GMT/BST)."""
    return instant.dt.convert_time_zone(UK_TZ).dt.strftime(MESSAGE_TIME_FORMAT)


@dataclass(frozen=True)
class CompiledMessage:
    """A message template as a string expression (its placeholders are expressions)."""

    expr: pl.Expr
    facts: frozenset[str]
    """Facts its placeholders read."""
    shown: frozenset[str]
    """Instant facts it shows as they are (`{bail_refused_at}`): formatted once per record."""


def _refuse_free_text(text: str, compiled: Compiled, scope: Scope) -> None:
    """A message goes to every output, with or without --include-notes: it may show a phrase
    of the rule's own list found in a free-text fact (`phrase(certificate_note, [...])`),
    or the text through `quote()` (shown only in a run that includes notes), never the free
    text itself, which may hold personal data."""
    sensitive = sorted(f for f in compiled.facts if f in scope.facts and scope.facts[f].sensitive)
    if not sensitive or compiled.kind != "str":
        return
    node = ast.parse(text.strip(), mode="eval").body
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SHOWS_NO_FREE_TEXT:
        return
    raise ExpressionError(
        f"shows the free text of {', '.join(sensitive)}, which may hold personal data: "
        f"show a phrase of it instead, e.g. phrase({sensitive[0]}, [...])"
    )


def compile_message(template: str, scope: Scope) -> CompiledMessage:
    """`"Refused bail at {bail_refused_at}."` -> a string expression."""
    parts: list[pl.Expr] = []
    facts: set[str] = set()
    shown: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            parts.append(pl.lit(template[position : match.start()]))
        compiled = compile_expression(match.group(1), scope)
        _refuse_free_text(match.group(1), compiled, scope)
        facts |= compiled.facts
        if compiled.kind == "instant" and compiled.expr.meta.is_column():
            shown.add(compiled.expr.meta.output_name())
        parts.append(_format(compiled))
        position = match.end()
    if position < len(template):
        parts.append(pl.lit(template[position:]))
    expr = pl.concat_str(parts) if parts else pl.lit("")
    return CompiledMessage(expr, frozenset(facts), frozenset(shown))


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
    shown: set[str] = set()
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
            message = compile_message(case.message, scope)
        except ExpressionError as exc:
            raise _fail(source, (*where, "message"), exc, case.message) from None
        facts |= message.facts
        shown |= message.shown
        case_severity = case.severity.value if case.severity else severity
        cases.append(CompiledCase(condition, case.outcome.value, message.expr, case_severity))
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
        shown=frozenset(shown),
        age_tests=tuple(scope.age_tests),
        leap_day_birthday=leap,
    )


def compile_rule(source: RuleSource, specs: dict[str, FactSpec] | None = None, leap: str = "march_1") -> CompiledRule:
    """Compile a rule against the facts schema; any unknown name or bad expression is refused.

    A rule with `occasions:` also reads the facts of one occasion (`occasion_*`)."""
    rule = source.rule
    if rule.occasions is not None:
        if rule.occasions not in EVENT_DETAILS:
            raise RuleFileError(
                source.path,
                f"occasions: '{rule.occasions}' is not an event type (see `custody schema`)",
                source.line("occasions"),
            )
        specs = {**(specs or fact_specs()), **fact_specs(rule.occasions)}
    specs = specs or fact_specs()
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
    return [compile_rule(s, None, rule_set.settings.leap_day_birthday) for s in rule_set.rules]


def occasion_facts(rules: list[CompiledRule]) -> dict[str, list[str]]:
    """For each grain the rules declare (`occasions:`), the facts its rules read: the occasion
    facts to compute, and the record facts its occasions table must carry (only those: a
    grain's table holds a row per record at least, so a copy of every record fact would
    cost as much as the records table again)."""
    wanted: dict[str, set[str]] = {}
    for rule in rules:
        if rule.grain is not None:
            wanted.setdefault(rule.grain, set()).update(rule.facts)
    return {grain: sorted(names) for grain, names in sorted(wanted.items())}
