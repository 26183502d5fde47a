"""Evaluate compiled rules over the facts: decide first, then write findings only for the
steps that occur.

For each rule and record the decision goes:

1. the trigger instant chooses the version of the law in force (per record, not today's);
2. `applies` (split on its top-level `and`) decides scope: a conjunct that is false on
   usable facts puts the record out of scope (no finding); one that is unknown, or rests on
   input the loader could not use, makes the finding `cannot_assess`;
3. the outcomes are tried in order; the first whose condition holds decides, and one whose
   condition cannot be evaluated (missing evidence) gives `cannot_assess`, never a pass.

Evaluation is one path whatever the size of the record set:

- decide: one pass over the facts gives, for every rule, the version in force and the step
  that decided (an index into that version's list of steps), or none;
- write: for each (rule, version, step) that occurs, that step's message is built on those
  records only; instants shown in messages or evidence are formatted once per record;
- order: findings come by child, record (as the facts do: person, arrival, custody record)
  and rule id. This order is part of the output contract and does not depend on how the
  work is split (`evaluate_chunks` gives the same rows in the same order as `evaluate`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from custody.contract import FINDINGS_SCHEMA, UK_TZ, Outcome
from custody.engine.compile import CompiledRule, CompiledVersion, shown_column, uk_text
from custody.engine.expr import Compiled, quoted_column, quoted_text
from custody.facts import OCCASION_ROW, FactTables, fact_specs
from custody.facts.specs import FactSpec, taint_column
from custody.facts.time import instant_lit
from custody.read.taint import Input

EVIDENCE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%:z"
TRIGGER_SHOWN_CHARS = 80
"""A trigger expression up to this long is named in the message when its instant is unknown."""
CHUNK_CELLS = 15_000_000
"""Values (rows x columns) of the frames the rules are decided on, evaluated at a time: bounds
the memory a chunk holds (those frames, and the findings made from them) before its findings
are written. With every shipped rule that is about 35,000 records at a time (a million
generated records peak at about 2.2 GiB; 19 million values, about 44,000 records, peaked at
2.35 GiB and were about 5% faster); a few rules read fewer columns and take more records at
a time, and so fewer chunks (each costs some 40 ms of query planning however small it is)."""

_ROW = "\x1frow"
_RULE = "\x1frule"
_OCCASION = "\x1foccasion"


def _evidence_column(fact: str) -> str:
    """The column holding an instant fact as evidence shows it (ISO 8601 with the UK offset)."""
    return f"{fact}\x1fiso"


def _decision_columns(rule_id: str) -> tuple[str, str]:
    return f"{rule_id}\x1fversion", f"{rule_id}\x1fstep"


def _trigger_column(rule_id: str) -> str:
    return f"{rule_id}\x1ftrigger"


class _Parts:
    """The parts of a rule's decision (its trigger, each conjunct of `applies`, each outcome's
    condition), each computed once per record as a column of its own before the decision
    reads them: a condition is used by several steps (out of scope, cannot assess, the
    message's explanation), and an expression tree that repeats it would be planned, for
    every chunk of records, once per use."""

    def __init__(self, rule_id: str) -> None:
        self.rule_id = rule_id
        self.made: dict[str, pl.Expr] = {}

    def column(self, compiled: Compiled, name: str) -> Compiled:
        """`compiled` read from its own column (made once, in `columns`)."""
        if compiled.expr.meta.is_column() or compiled.is_literal:
            return compiled
        column = f"{self.rule_id}\x1f{name}"
        self.made.setdefault(column, compiled.expr.alias(column))
        return dataclasses.replace(compiled, expr=pl.col(column))

    @property
    def columns(self) -> list[pl.Expr]:
        return list(self.made.values())


def _flags(facts: frozenset[str], specs: dict[str, FactSpec]) -> list[Input]:
    """The inputs `facts` rest on (their lineage), in vocabulary order."""
    return sorted(frozenset().union(*(specs[f].lineage for f in facts if f in specs)))


def _any(inputs: list[Input]) -> pl.Expr:
    """True where any of `inputs` is tainted for the record."""
    return pl.any_horizontal(*(pl.col(taint_column(i)) for i in inputs)) if inputs else pl.lit(False)


def _explain(
    facts: frozenset[str],
    specs: dict[str, FactSpec],
    parts: tuple[Compiled, ...] | None = None,
    *,
    name_missing: bool = True,
) -> pl.Expr:
    """' Not recorded: x, y. Unusable input: z.' for the facts a step needed.

    With `parts` (the conjuncts of `applies`), only the facts of the parts that were not
    settled (unknown, or resting on unusable input) are named. Without `name_missing` (a step
    taken because some input was unusable), an empty fact is named only when its own input
    is unusable: the others are mostly events that simply did not happen, not gaps.
    """
    names = sorted(f for f in facts if f in specs)

    def relevant(uses: Callable[[Compiled], bool], name: str | None = None) -> pl.Expr:
        if not name_missing and name is not None:  # an empty fact: named if its input is unusable
            return _any(_flags(frozenset({name}), specs))
        if parts is None:
            return pl.lit(True)
        unsettled = [c.expr.is_null() | _any(_flags(c.facts, specs)) for c in parts if uses(c)]
        return pl.any_horizontal(*unsettled) if unsettled else pl.lit(False)

    missing = pl.concat_str(
        [pl.when(pl.col(n).is_null() & relevant(lambda c, n=n: n in c.facts, n)).then(pl.lit(n)) for n in names]  # type: ignore[misc]
        or [pl.lit(None, pl.String)],
        separator=", ",
        ignore_nulls=True,
    )
    inputs = _flags(frozenset(names), specs)
    unusable = pl.concat_str(
        [
            pl.when(pl.col(taint_column(i)) & relevant(lambda c, i=i: i in _flags(c.facts, specs))).then(  # type: ignore[misc]
                pl.lit(i.label)
            )
            for i in inputs
        ]
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
    trigger = pl.col(_trigger_column(rule.rule_id))
    chain: Any = pl
    for i, version in enumerate(rule.versions):
        in_force = trigger >= instant_lit(version.start)
        if version.end is not None:
            in_force = in_force & (trigger < instant_lit(version.end))
        chain = chain.when(in_force).then(pl.lit(i, pl.Int32))
    return pl.when(trigger.is_null()).then(pl.lit(None, pl.Int32)).otherwise(chain.otherwise(pl.lit(-1, pl.Int32)))


@dataclass(frozen=True, eq=False)
class Message:
    """A step's message, made into an expression only for a step that decides some record:
    a case's template, or a sentence followed by which of `facts` were not recorded or
    rested on unusable input (see `_explain`). Plain data, so a plan can be kept between runs
    with the compiled rules (custody.engine.cache)."""

    template: pl.Expr | None = None
    sentence: str = ""
    facts: frozenset[str] = frozenset()
    specs: dict[str, FactSpec] | None = None
    parts: tuple[Compiled, ...] | None = None
    name_missing: bool = True

    def __call__(self) -> pl.Expr:
        if self.template is not None:
            return self.template
        assert self.specs is not None
        return pl.lit(self.sentence) + _explain(self.facts, self.specs, self.parts, name_missing=self.name_missing)


@dataclass(frozen=True, eq=False)
class Step:
    """One way a version of a rule can decide: the outcome, its severity and its message
    (built only for a step that decides some record: most steps of most rules never do)."""

    outcome: str
    severity: str
    message: Message


@dataclass(frozen=True)
class Branch:
    """One version of a rule as evaluated: the steps it can decide by, and the expression
    giving each record's step (an index into `steps`; null: no finding)."""

    version: CompiledVersion
    steps: tuple[Step, ...]
    decide: pl.Expr


def _branch(
    rule: CompiledRule,
    version: CompiledVersion,
    specs: dict[str, FactSpec],
    trigger_known: bool,
    parts: _Parts,
    index: int,
) -> Branch:
    """The steps of `version` in the order they are tried, and the expression that picks one.
    Its conditions are read from the columns `parts` makes (`index`: the version's)."""
    cannot = Outcome.cannot_assess.value
    steps: list[Step] = []

    def step(outcome: str, severity: str, message: Message) -> pl.Expr:
        steps.append(Step(outcome, severity, message))
        return pl.lit(len(steps) - 1, pl.Int16)

    conjuncts = tuple(parts.column(c, f"v{index}\x1fapplies{j}") for j, c in enumerate(version.conjuncts))
    out_of_scope = pl.any_horizontal(
        *((c.expr.not_().fill_null(False) & ~_any(_flags(c.facts, specs))) for c in conjuncts)
    )
    chain: Any = pl.when(out_of_scope).then(pl.lit(None, pl.Int16))
    if not trigger_known:
        trigger_text = " ".join(rule.source.rule.trigger.split())
        # A short trigger (a fact, a simple expression) is named; a long one would bury the message.
        named = f" ({trigger_text})" if len(trigger_text) <= TRIGGER_SHOWN_CHARS else ""
        text = (
            f"The time that decides which version of the law applies{named} is not known,"
            " so the rule cannot be assessed."
        )
        decide = chain.otherwise(step(cannot, version.severity, Message(None, text, rule.trigger.facts, specs)))
        return Branch(version, tuple(steps), decide)
    conditions = [
        None if case.condition is None else parts.column(case.condition, f"v{index}\x1fwhen{j}")
        for j, case in enumerate(version.cases)
    ]
    in_scope = pl.all_horizontal(*((c.expr.fill_null(False) & ~_any(_flags(c.facts, specs))) for c in conjuncts))
    scope_facts = frozenset().union(*(c.facts for c in conjuncts))
    case_facts = frozenset().union(*(c.condition.facts for c in version.cases if c.condition))

    def cannot_message(
        facts: frozenset[str], parts: tuple[Compiled, ...] | None = None, *, name_missing: bool = True
    ) -> Message:
        return Message(None, version.cannot_assess_message, facts, specs, parts, name_missing)

    def case_message(message: pl.Expr) -> Message:
        return Message(message)

    chain = chain.when(~in_scope).then(step(cannot, version.severity, cannot_message(scope_facts, conjuncts)))
    tainted_case = cannot_message(case_facts, name_missing=False)
    chain = chain.when(_any(_flags(case_facts, specs))).then(step(cannot, version.severity, tainted_case))
    for case, condition in zip(version.cases, conditions, strict=True):
        if condition is None:
            decide = chain.otherwise(step(case.outcome, case.severity, case_message(case.message)))
            return Branch(version, tuple(steps), decide)
        unknown = step(cannot, version.severity, cannot_message(condition.facts))
        chain = chain.when(condition.expr.is_null()).then(unknown)
        chain = chain.when(condition.expr).then(step(case.outcome, case.severity, case_message(case.message)))
    raise AssertionError("the last outcome has no condition (checked by the rule model)")


@dataclass(frozen=True)
class RulePlan:
    """A rule ready to evaluate: a branch per version, then one for records whose trigger
    instant is unknown (decided under the latest version's scope)."""

    rule: CompiledRule
    branches: tuple[Branch, ...]
    parts: tuple[pl.Expr, ...]
    """The trigger and the conditions the branches read, as named columns (made first)."""

    @property
    def decide(self) -> tuple[pl.Expr, pl.Expr]:
        """(version, step) of every record: the version's index into `branches` (the last one
        when the trigger is unknown) and the step's index into that branch's steps."""
        version = _version_index(self.rule)
        unknown_trigger = len(self.branches) - 1
        version = pl.when(version.is_null()).then(pl.lit(unknown_trigger, pl.Int32)).otherwise(version)
        step: Any = pl
        for index, branch in enumerate(self.branches):
            step = step.when(version == index).then(branch.decide)
        version_name, step_name = _decision_columns(self.rule.rule_id)
        return version.alias(version_name), step.otherwise(pl.lit(None, pl.Int16)).alias(step_name)


def plan_rules(rules: list[CompiledRule]) -> list[RulePlan]:
    """Every rule's branches, in rule id order (the order of findings within a record)."""
    plans = []
    for rule in sorted(rules, key=lambda r: r.rule_id):
        specs = fact_specs(rule.grain)
        parts = _Parts(rule.rule_id)
        branches = [_branch(rule, version, specs, True, parts, index) for index, version in enumerate(rule.versions)]
        last = len(rule.versions) - 1
        branches.append(_branch(rule, rule.versions[-1], specs, False, parts, last))
        trigger = rule.trigger.expr.alias(_trigger_column(rule.rule_id))
        plans.append(RulePlan(rule, tuple(branches), (trigger, *parts.columns)))
    return plans


def _evidence(rule: CompiledRule, specs: dict[str, FactSpec], include_notes: bool) -> pl.Expr:
    fields: list[pl.Expr] = []
    for name in rule.evidence:
        spec = specs[name]
        if spec.sensitive and not include_notes:
            continue
        column = pl.col(name)
        if spec.kind == "instant":
            fields.append(pl.col(_evidence_column(name)).alias(name))
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


GMT_BST_ONLY_FROM = dt.datetime(1972, 1, 1, tzinfo=dt.UTC)
"""From this instant UK time is only ever GMT (+00:00) or BST (+01:00) (British Standard Time,
+01:00 all year, ended in 1971; double summer time, +02:00, in 1947)."""


def _formatted_instants(
    plans: Sequence[RulePlan], specs: dict[str, FactSpec], table: pl.DataFrame
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Instant facts as messages and evidence show them, one column each, made once per record
    (or occasion): (the columns made first, the columns made from them).

    Evidence shows an instant in ISO 8601 with its UK offset, messages as UK local time with
    the zone's name. An instant shown both ways is formatted once, as ISO, and its message
    text cut from that (the offset names the zone) when every value of the column is late
    enough for the offset to say GMT or BST; otherwise both are formatted."""
    shown = sorted({name for p in plans for b in p.branches for name in b.version.shown})
    in_evidence = sorted({n for p in plans for n in p.rule.evidence if specs[n].kind == "instant"})
    present = set(table.columns)
    first = [
        pl.col(name).dt.convert_time_zone(UK_TZ).dt.strftime(EVIDENCE_TIME_FORMAT).alias(_evidence_column(name))
        for name in in_evidence
        if name in present
    ]
    then = []
    for name in shown:
        if name not in present:
            continue
        earliest = table[name].min()
        if name in in_evidence and (earliest is None or earliest >= GMT_BST_ONLY_FROM):  # type: ignore[operator]
            iso = pl.col(_evidence_column(name))
            zone = pl.when(iso.str.ends_with("+01:00")).then(pl.lit(" BST")).otherwise(pl.lit(" GMT"))
            text = pl.concat_str(iso.str.slice(0, 10), pl.lit(" "), iso.str.slice(11, 5), zone)
            then.append(text.alias(shown_column(name)))
        else:
            first.append(uk_text(pl.col(name)).alias(shown_column(name)))
    return first, then


_READINGS = {"march_1": ("1 March", "28 February"), "feb_28": ("28 February", "1 March")}
"""leap_day_birthday -> (the birthday it reads in a common year, the other reading's)."""


def _leap_day_clause(reading: str) -> str:
    """What a message adds when its result may rest on the 29 February reading in use."""
    used, other = _READINGS[reading]
    return (
        f" Born on 29 February, the child had an age tested on 28 February of a common year: it is read"
        f" with the birthday on {used} (the setting leap_day_birthday in rules/_facts.yaml, as no statute"
        f" settles it); with the birthday on {other} the result may differ."
    )


def _leap_day_key(reading: str) -> str:
    """What the evidence gains (its last key) in that case."""
    return f'"leap_day_birthday":"{reading}"'


LEAP_DAY_MARKS = (
    "(?:" + "|".join(re.escape(_leap_day_clause(r)) for r in _READINGS) + ")$",
    ",?(?:" + "|".join(re.escape(_leap_day_key(r)) for r in _READINGS) + r")(\}$)",
)
"""Patterns of the 29 February mark at the end of a message, and in the evidence (the last
key): a pseudonymised output leaves the mark out, as it would tell a birthday
(`custody.pseudonymise`)."""


def _leap_column(rule_id: str) -> str:
    """The column marking a rule's records (or occasions) whose result may rest on the 29
    February reading (`CompiledRule.leap_day_mark`; see `_with_leap_day_marks`)."""
    return f"{rule_id}\x1fleap"


def _with_leap_day_marks(frame: pl.DataFrame, plans: list[tuple[int, RulePlan]]) -> pl.DataFrame:
    """`frame` (a chunk's decided rows of one grain) with, for each rule that marks any of them,
    a column `_leap_column` true on the rows whose result may rest on the 29 February reading.
    The marks are worked out on the rows of children born on 29 February only (one in about
    1,461), so the many instants they test cost nothing for everyone else; a rule none of
    whose rows is marked gets no column."""
    if "date_of_birth" not in frame.columns:
        return frame
    born = pl.col("date_of_birth")
    rows = frame.select(pl.arg_where((born.dt.month() == 2) & (born.dt.day() == 29))).to_series()
    if rows.is_empty():
        return frame
    few = frame[rows]
    marks = []
    for _, plan in plans:
        mark = plan.rule.leap_day_mark
        if mark is None:
            continue
        hits = few.select(mark.fill_null(False)).to_series()
        if hits.any():
            column = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).alias(_leap_column(plan.rule.rule_id))
            marks.append(column.scatter(rows.filter(hits), True))
    return frame.with_columns(marks) if marks else frame


def _leap_day_marked(
    message: pl.Expr, evidence: pl.Expr, rule: CompiledRule, version: CompiledVersion, active: bool
) -> tuple[pl.Expr, pl.Expr]:
    """The message and evidence of a finding, marked where its result may rest on how a 29
    February birthday is read (LAW.md, Age: no statute settles it; mark results that depend on
    it): the message says so, and the evidence gains `leap_day_birthday`, the reading used.
    `active` False: no row of the frame is marked."""
    if rule.leap_day_mark is None or not active:
        return message.alias("message"), evidence.alias("evidence")
    reading = version.leap_day_birthday
    said = _leap_day_clause(reading)
    marked_evidence = pl.concat_str(
        evidence.str.strip_suffix("}"),
        pl.when(evidence == "{}").then(pl.lit("")).otherwise(pl.lit(",")),
        pl.lit(_leap_day_key(reading) + "}"),
    )
    mark = pl.col(_leap_column(rule.rule_id))
    return (
        pl.when(mark).then(pl.concat_str(message, pl.lit(said))).otherwise(message).alias("message"),
        pl.when(mark).then(marked_evidence).otherwise(evidence).alias("evidence"),
    )


def _any_leap_day_mark(frame: pl.DataFrame, plan: RulePlan) -> bool:
    """Whether any record (or occasion) of `frame` is marked for the 29 February reading (almost
    never: the marking is then left out of the plan, which costs nothing to leave out)."""
    column = _leap_column(plan.rule.rule_id)
    return column in frame.columns and bool(frame[column].any())


def _findings_of(
    frame: pl.LazyFrame,
    plan: RulePlan,
    rule_order: int,
    version: int,
    step: int,
    evidence: pl.Expr,
    leap_day_marks: bool,
) -> pl.LazyFrame:
    branch = plan.branches[version]
    decided = branch.steps[step]
    version_name, step_name = _decision_columns(plan.rule.rule_id)
    return frame.filter((pl.col(version_name) == version) & (pl.col(step_name) == step)).select(
        pl.col(_ROW),
        pl.lit(rule_order, pl.UInt16).alias(_RULE),
        pl.col(_OCCASION),
        pl.col("person_id"),
        pl.col("custody_record_id"),
        pl.lit(plan.rule.rule_id).cast(FINDINGS_SCHEMA["rule_id"]).alias("rule_id"),
        pl.lit(decided.outcome).cast(FINDINGS_SCHEMA["outcome"]).alias("outcome"),
        pl.lit(decided.severity).cast(FINDINGS_SCHEMA["severity"]).alias("severity"),
        pl.lit(branch.version.basis).cast(FINDINGS_SCHEMA["basis"]).alias("basis"),
        pl.lit(branch.version.citation).cast(FINDINGS_SCHEMA["citation"]).alias("citation"),
        pl.lit(branch.version.version.effective_from.isoformat())
        .cast(FINDINGS_SCHEMA["rule_version"])
        .alias("rule_version"),
        *_leap_day_marked(decided.message(), evidence, plan.rule, branch.version, leap_day_marks),
        pl.col(_trigger_column(plan.rule.rule_id)).alias("trigger_at"),
    )


@dataclass(frozen=True)
class _Grain:
    """The rules evaluated over one table: the records (grain None) or one grain's occasions."""

    grain: str | None
    plans: list[tuple[int, RulePlan]]
    """(order among all rules, plan)."""
    evidence: list[pl.Expr]
    parts: list[pl.Expr]
    decisions: list[pl.Expr]
    formatted: list[pl.Expr]
    derived: list[pl.Expr]
    """Columns made from `formatted` (message text cut from evidence text)."""


def _grains(plans: list[RulePlan], tables: FactTables, include_notes: bool) -> list[_Grain]:
    grains: list[_Grain] = []
    for grain in sorted({p.rule.grain for p in plans}, key=lambda g: (g is not None, g or "")):
        if grain is not None and grain not in tables.occasions:
            raise ValueError(f"the facts hold no occasions of '{grain}', which a rule declares")
        specs = fact_specs(grain)
        mine = [(order, p) for order, p in enumerate(plans) if p.rule.grain == grain]
        table = tables.records if grain is None else tables.occasions[grain]
        formatted, derived = _formatted_instants([p for _, p in mine], specs, table)
        grains.append(
            _Grain(
                grain,
                mine,
                [_evidence(p.rule, specs, include_notes) for _, p in mine],
                [expr for _, p in mine for expr in p.parts],
                [expr for _, p in mine for expr in p.decide],
                [
                    *formatted,
                    # Free text a message may quote (`quote()`): the text itself only when the
                    # run includes notes.
                    *(
                        quoted_text(pl.col(name), include_notes).alias(quoted_column(name))
                        for name, spec in specs.items()
                        if spec.sensitive and name in table.columns
                    ),
                ],
                derived,
            )
        )
    return grains


def _slice(tables: FactTables, grain: str | None, start: int, length: int) -> tuple[pl.DataFrame, pl.Expr, pl.Expr]:
    """The rows of `grain` for records `start` to `start + length`, with each row's record
    (within the slice) and occasion number expressions."""
    if grain is None:
        return tables.records.slice(start, length), pl.int_range(pl.len(), dtype=pl.UInt32), pl.lit(0, pl.Int64)
    occasions = tables.occasions[grain]
    rows = occasions[OCCASION_ROW]
    low = int(rows.search_sorted(start, "left"))
    high = int(rows.search_sorted(start + length, "left"))
    record = (pl.col(OCCASION_ROW) - start).cast(pl.UInt32)
    return occasions.slice(low, high - low), record, pl.col("occasion_number").fill_null(0)


def _chunk_records(grains: list[_Grain], tables: FactTables) -> int:
    """Records per chunk so that a chunk's decided frames hold about `CHUNK_CELLS` values:
    each grain's columns (its facts and the columns the rules add) times its rows per record."""
    height = tables.records.height
    if height == 0:
        return 1
    cells = 0
    for grain in grains:
        table = tables.records if grain.grain is None else tables.occasions[grain.grain]
        added = len(grain.formatted) + len(grain.derived) + len(grain.parts) + len(grain.decisions)
        cells += (table.width + added) * table.height
    return max(1, min(height, CHUNK_CELLS * height // max(cells, 1)))


def evaluate_chunks(
    facts: FactTables | pl.DataFrame,
    rules: list[CompiledRule],
    *,
    include_notes: bool = False,
    chunk_records: int | None = None,
    plans: list[RulePlan] | None = None,
) -> Iterator[pl.DataFrame]:
    """The findings of `evaluate`, `chunk_records` records at a time (by default as many as
    keep a chunk near `CHUNK_CELLS` values), in order: each chunk holds whole records (with all
    their occasions), so the chunks one after another are the findings of `evaluate`.
    `plans`: `plan_rules(rules)`, when it was made before (they are kept with the compiled
    rules)."""
    if chunk_records is not None and chunk_records < 1:
        raise ValueError(f"chunk_records must be 1 or more, not {chunk_records}")
    tables = facts if isinstance(facts, FactTables) else FactTables(facts)
    if plans is None or [id(p.rule) for p in plans] != [id(r) for r in sorted(rules, key=lambda r: r.rule_id)]:
        plans = plan_rules(rules)  # (the plans given are `plan_rules(rules)` kept from an earlier run)
    grains = _grains(plans, tables, include_notes)
    height = tables.records.height
    if chunk_records is None:
        chunk_records = _chunk_records(grains, tables)
    for start in range(0, max(height, 1), chunk_records):
        if height == 0 or not plans:
            yield pl.DataFrame(schema=FINDINGS_SCHEMA)
            return
        # Every grain at once, so that polars works on them side by side (a small record set
        # costs mostly the planning of each grain's columns).
        lazy: list[pl.LazyFrame] = []
        for grain in grains:
            chunk, record, occasion = _slice(tables, grain.grain, start, chunk_records)
            # Lazily, so that what the rules share (a UK date, an age) is computed once.
            lazy.append(
                chunk.lazy()
                .with_columns(*grain.formatted, *grain.parts, record.alias(_ROW), occasion.alias(_OCCASION))
                .with_columns(*grain.derived, *grain.decisions)
            )
        decided = [
            _with_leap_day_marks(frame, grain.plans) for grain, frame in zip(grains, pl.collect_all(lazy), strict=True)
        ]
        # Each rule's (version, step) pairs that occur, for every rule of every grain at once.
        work = [
            (frame, plan, evidence)
            for grain, frame in zip(grains, decided, strict=True)
            for plan, evidence in zip(grain.plans, grain.evidence, strict=True)
        ]
        present = pl.collect_all(
            [
                frame.lazy().select(pl.col(name) for name in _decision_columns(p.rule.rule_id)).drop_nulls().unique()
                for frame, (_, p), _ in work
            ]
        )
        frames = [
            _findings_of(frame.lazy(), plan, order, version, step, evidence, _any_leap_day_mark(frame, plan))
            for (frame, (order, plan), evidence), seen in zip(work, present, strict=True)
            for version, step in seen.sort(seen.columns).iter_rows()
        ]
        if not frames:
            yield pl.DataFrame(schema=FINDINGS_SCHEMA)
            continue
        found = pl.concat(pl.collect_all(frames), how="vertical")
        yield found.sort(_ROW, _RULE, _OCCASION).select(list(FINDINGS_SCHEMA))


def evaluate(
    facts: FactTables | pl.DataFrame, rules: list[CompiledRule], *, include_notes: bool = False
) -> pl.DataFrame:
    """Findings of every rule over every record, in the contract's columns: one row per
    (custody record, rule, occasion) that applied or could not be assessed, by child, record,
    rule and occasion."""
    height = facts.records.height if isinstance(facts, FactTables) else facts.height
    chunks = list(evaluate_chunks(facts, rules, include_notes=include_notes, chunk_records=max(height, 1)))
    return chunks[0] if len(chunks) == 1 else pl.concat(chunks)
