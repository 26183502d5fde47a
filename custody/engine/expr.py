"""The rule expression language: a small, safe subset of Python syntax compiled to polars.

Rule files hold conditions such as::

    bail_refused_at is not None and is_juvenile(bail_refused_at, juvenile_age_limit)
    released_at - arrival_at > hours(24)

The text is parsed with `ast.parse` (parsing only: nothing is ever executed),
every node is checked against a whitelist, every name against the facts
schema and the rule version's parameters, and the tree is compiled to a polars
expression. Nulls propagate as in SQL (Kleene logic for `and`/`or`): a
condition that is null because evidence is missing makes the finding
`cannot_assess`, never a pass.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from custody.engine import reasons
from custody.facts.specs import FactSpec, Kind
from custody.facts.time import (
    age_years,
    duration_lit,
    instant_lit,
    is_juvenile,
    local_date,
    parse_duration,
    uk_midnight,
)

NUMERIC: frozenset[str] = frozenset({"int", "float"})

# Limits on one expression, far above the shipped rules' (at most 489 characters, nested 7
# deep): beyond them an expression is refused before it is compiled, as deep nesting
# exhausts the parser's and the compiler's recursion and a long one only slows every run.
MAX_EXPRESSION_CHARS = 5_000
MAX_EXPRESSION_DEPTH = 40
MAX_DURATION = dt.timedelta(days=36_525)
"""The longest duration a rule may name (100 years): beyond it is a typing error (`hours(1e999)`)."""


class ExpressionError(ValueError):
    """A rule expression that cannot be compiled; `column` is 0-based within the expression text."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


@dataclass(frozen=True)
class Compiled:
    expr: pl.Expr
    kind: Kind
    facts: frozenset[str] = frozenset()
    """Facts the expression reads (for evidence, null explanations and data-quality taint)."""
    literal: Any = None
    """The Python value, for literals and parameters (lists of phrases, numbers)."""
    is_literal: bool = False


@dataclass
class Scope:
    facts: Mapping[str, FactSpec]
    params: Mapping[str, Any] = field(default_factory=dict)
    leap_day_birthday: str = "march_1"
    age_tests: list[pl.Expr] = field(default_factory=list)
    """The instants at which the expressions compiled in this scope test an age (`age_at`,
    `is_juvenile`): where a child born on 29 February is tested on 28 February of a common
    year, the leap_day_birthday setting decides the age (see `leap_day_mark`)."""


def bounded_duration(amount: float, unit: str) -> dt.timedelta:
    """`amount` of `unit` ("hours", "minutes", "days") as a timedelta, refused beyond MAX_DURATION."""
    try:
        value = dt.timedelta(**{unit: amount}) if math.isfinite(amount) else None
    except OverflowError:
        value = None
    return _within_limit(value, f"{amount:g} {unit}")


def _within_limit(duration: dt.timedelta | None, said: str) -> dt.timedelta:
    """`duration` if it is at most MAX_DURATION long (None: it overflowed)."""
    if duration is None or abs(duration) > MAX_DURATION:
        raise ExpressionError(
            f"{said} is not a duration a rule can use: at most {MAX_DURATION.days:,} days (100 years)"
        )
    return duration


def param_value(value: Any) -> Compiled:
    """A rule-version parameter as a typed literal."""
    if isinstance(value, bool):
        return Compiled(pl.lit(value), "bool", literal=value, is_literal=True)
    if isinstance(value, int):
        return Compiled(pl.lit(value), "int", literal=value, is_literal=True)
    if isinstance(value, float):
        return Compiled(pl.lit(value), "float", literal=value, is_literal=True)
    if isinstance(value, dt.timedelta):
        return Compiled(duration_lit(value), "duration", literal=value, is_literal=True)
    if isinstance(value, dt.date):
        return Compiled(instant_lit(uk_midnight(value)), "instant", literal=value, is_literal=True)
    if isinstance(value, str):
        try:
            duration = parse_duration(value)
        except OverflowError:
            duration = _within_limit(None, f"'{value}'")
        if duration is not None:
            duration = _within_limit(duration, f"'{value}'")
            return Compiled(duration_lit(duration), "duration", literal=duration, is_literal=True)
        return Compiled(pl.lit(value), "str", literal=value, is_literal=True)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Compiled(pl.lit(None), "list", literal=list(value), is_literal=True)
    raise ExpressionError(f"parameter value {value!r} is not a number, text, duration, date or list of text")


# ------------------------------------------------------------------ age (FLRA 1969 s9)


# ------------------------------------------------------------------ compiler


_COMPARE: dict[type[ast.cmpop], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}

FUNCTIONS: dict[str, str] = {
    "hours": "hours(n): a duration of n hours",
    "minutes": "minutes(n): a duration of n minutes",
    "days": "days(n): a duration of n days",
    "as_hours": "as_hours(duration): the duration in hours (decimal)",
    "as_minutes": "as_minutes(duration): the duration in whole minutes",
    "age_at": "age_at(instant): age in whole years at that instant (FLRA 1969 s9)",
    "is_juvenile": "is_juvenile(instant, age_limit): under age_limit at instant; appears_under_18 "
    "when there is no date of birth",
    "date": "date('YYYY-MM-DD'): 00:00 UK time on that day, as an instant",
    "local_date": "local_date(instant): the UK calendar date of an instant (for same-day tests)",
    "coalesce": "coalesce(a, b, ...): the first that is recorded",
    "earliest": "earliest(a, b, ...): the earliest of the recorded instants",
    "latest": "latest(a, b, ...): the latest of the recorded instants",
    "phrase": "phrase(text, phrases): the first phrase of the list found in the text (case-insensitive, "
    "whole words), or null",
    "matches": "matches(text, phrases): whether any phrase of the list is in the text (null when no text)",
    "stated": "stated(text, phrases): whether the text gives a phrase of the list as a reason, not denied "
    "('not aggressive') nor only describing ('behaviour has been calm'), read with the version's reading_* "
    "parameters (null when no text)",
    "stated_phrase": "stated_phrase(text, phrases): the first phrase of the list the text gives as a reason, or null",
    "not_relied_on": "not_relied_on(text, phrases, ...): the phrases of the lists the text mentions without giving "
    "them as a reason, each with how it was read ('none' if there are none)",
    "quote": "quote(free_text_fact): the text quoted in a message when the run includes notes (--include-notes); "
    "otherwise a line saying it is not shown",
}

SHOWS_NO_FREE_TEXT: frozenset[str] = frozenset({"phrase", "stated_phrase", "not_relied_on", "quote"})
"""Functions a message may apply to free text (a sensitive fact): they show phrases of the rule's
own lists, or (`quote`) the text only in a run that includes notes."""

QUOTE_MAX_CHARS = 300
NOT_QUOTED = "wording not shown unless notes are included (--include-notes)"


def quoted_column(fact: str) -> str:
    """The column holding a free-text fact as `quote()` shows it, made by the evaluator."""
    return f"{fact}\x1fquoted"


def quoted_text(text: pl.Expr, include_notes: bool) -> pl.Expr:
    """Free text as a message quotes it: in quotes on one line (at most QUOTE_MAX_CHARS
    characters) when the run includes notes; otherwise never, whatever it holds."""
    if not include_notes:
        return pl.when(text.is_not_null()).then(pl.lit(NOT_QUOTED))
    one_line = text.str.replace_all(r"\s+", " ").str.strip_chars()
    cut = (
        pl.when(one_line.str.len_chars() > QUOTE_MAX_CHARS)
        .then(one_line.str.slice(0, QUOTE_MAX_CHARS - 1) + pl.lit("\u2026"))
        .otherwise(one_line)
    )
    return pl.lit("'") + cut + pl.lit("'")


def _per_text(text: pl.Expr, read: Callable[[str], Any], dtype: pl.DataType) -> pl.Expr:
    """`read` applied to each distinct text (null stays null): the reading of wording is Python,
    as clause scopes are beyond a regular expression, and runs once per distinct note, however
    many records the column holds (most hold none)."""

    def apply(texts: pl.Series) -> pl.Series:
        distinct = texts.drop_nulls().unique()
        if distinct.is_empty():
            return pl.Series(texts.name, [None] * texts.len(), dtype=dtype)
        read_as = pl.Series([read(t) for t in distinct.to_list()], dtype=dtype)
        return texts.replace_strict(distinct, read_as, default=None, return_dtype=dtype)

    return text.map_batches(apply, return_dtype=dtype, is_elementwise=True)


def _phrase_pattern(phrases: Sequence[str]) -> str:
    # Longest first, so that "no secure accommodation" wins over "secure accommodation".
    ordered = sorted({p.strip().lower() for p in phrases if p.strip()}, key=lambda p: (-len(p), p))
    return r"(?i)\b(" + "|".join(pl.escape_regex(p) for p in ordered) + r")\b"


class _Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, getattr(node, "col_offset", None))

    def compile(self, node: ast.AST) -> Compiled:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"'{ast.unparse(node)}' is not allowed in a rule expression")
        result: Compiled = method(node)
        return result

    # -- leaves
    def _Constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if value is None:
            return Compiled(pl.lit(None), "null", is_literal=True)
        if isinstance(value, bool | int | float | str):
            return param_value(value)
        raise self.fail(node, f"the constant {value!r} is not allowed")

    def _Name(self, node: ast.Name) -> Compiled:
        name = node.id
        if name in self.scope.params:
            try:
                return param_value(self.scope.params[name])
            except ExpressionError as exc:
                raise self.fail(node, f"parameter '{name}': {exc.message}") from None
        spec = self.scope.facts.get(name)
        if spec is None:
            known = [*self.scope.facts, *self.scope.params]
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see `custody rules facts` for the names"
            if name.startswith("occasion") and not any(s.occasion for s in self.scope.facts.values()):
                hint = "; occasion facts exist only in a rule that declares `occasions:` (an event type)"
            raise self.fail(node, f"unknown name '{name}'{hint}")
        return Compiled(pl.col(name), spec.kind, frozenset({name}))

    def _List(self, node: ast.List) -> Compiled:
        items = [self.compile(e) for e in node.elts]
        if not all(i.is_literal for i in items):
            raise self.fail(node, "a list may hold only constants")
        return Compiled(pl.lit(None), "list", literal=[i.literal for i in items], is_literal=True)

    _Tuple = _List

    # -- logic
    def _BoolOp(self, node: ast.BoolOp) -> Compiled:
        parts = [self._as_bool(v) for v in node.values]
        expr = parts[0].expr
        for part in parts[1:]:
            expr = (expr & part.expr) if isinstance(node.op, ast.And) else (expr | part.expr)
        return Compiled(expr, "bool", frozenset().union(*(p.facts for p in parts)))

    def _IfExp(self, node: ast.IfExp) -> Compiled:
        """`a if condition else b`; a condition that is unknown gives an unknown value (never `b`)."""
        condition = self._as_bool(node.test)
        chosen, otherwise = self.compile(node.body), self.compile(node.orelse)
        kinds = {chosen.kind, otherwise.kind} - {"null"}
        if len(kinds) > 1 and not kinds <= NUMERIC:
            raise self.fail(
                node, f"both values of '{ast.unparse(node)}' must be of one kind, not {' and '.join(sorted(kinds))}"
            )
        kind: Kind = kinds.pop() if len(kinds) == 1 else ("float" if kinds else "null")
        expr = (
            pl.when(condition.expr.is_null())
            .then(pl.lit(None))
            .when(condition.expr)
            .then(chosen.expr)
            .otherwise(otherwise.expr)
        )
        return Compiled(expr, kind, condition.facts | chosen.facts | otherwise.facts)

    def _UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            operand = self._as_bool(node.operand, operand)
            return Compiled(operand.expr.not_(), "bool", operand.facts)
        if isinstance(node.op, ast.USub) and operand.kind in (*NUMERIC, "duration"):
            literal = -operand.literal if operand.is_literal else None
            return Compiled(-operand.expr, operand.kind, operand.facts, literal, operand.is_literal)
        raise self.fail(node, f"'{ast.unparse(node)}' is not allowed")

    def _as_bool(self, node: ast.AST, compiled: Compiled | None = None) -> Compiled:
        compiled = compiled or self.compile(node)
        if compiled.kind not in ("bool", "null"):
            raise self.fail(node, f"'{ast.unparse(node)}' is {compiled.kind}, not a condition (true/false)")
        return compiled

    def _Compare(self, node: ast.Compare) -> Compiled:
        left = self.compile(node.left)
        result: pl.Expr | None = None
        facts = set(left.facts)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.compile(right_node)
            facts |= right.facts
            part = self._compare_one(node, op, left, right)
            result = part if result is None else (result & part)
            left = right
        assert result is not None
        return Compiled(result, "bool", frozenset(facts))

    def _compare_one(self, node: ast.AST, op: ast.cmpop, left: Compiled, right: Compiled) -> pl.Expr:
        if isinstance(op, ast.Is | ast.IsNot):
            if right.kind != "null":
                raise self.fail(node, "use 'is None' / 'is not None' only to test for a missing value")
            return left.expr.is_null() if isinstance(op, ast.Is) else left.expr.is_not_null()
        if isinstance(op, ast.In | ast.NotIn):
            if right.kind != "list":
                raise self.fail(node, "'in' needs a list, e.g. x in ['a', 'b']")
            values = right.literal
            expr = left.expr.cast(pl.String).is_in(values) if values else pl.lit(False)
            return expr if isinstance(op, ast.In) else expr.not_()
        compare = _COMPARE.get(type(op))
        if compare is None:
            raise self.fail(node, f"comparison '{ast.unparse(node)}' is not allowed")
        self._check_comparable(node, left, right)
        left_expr, right_expr = left.expr, right.expr
        if "str" in (left.kind, right.kind):
            left_expr, right_expr = left_expr.cast(pl.String), right_expr.cast(pl.String)
        return compare(left_expr, right_expr)

    def _check_comparable(self, node: ast.AST, left: Compiled, right: Compiled) -> None:
        kinds = {left.kind, right.kind} - {"null"}
        if len(kinds) <= 1 or kinds <= NUMERIC:
            return
        raise self.fail(node, f"cannot compare {left.kind} with {right.kind} in '{ast.unparse(node)}'")

    # -- arithmetic
    def _BinOp(self, node: ast.BinOp) -> Compiled:
        left, right = self.compile(node.left), self.compile(node.right)
        facts = left.facts | right.facts
        kinds = (left.kind, right.kind)
        if isinstance(node.op, ast.Sub):
            if kinds == ("instant", "instant"):
                return Compiled(left.expr - right.expr, "duration", facts)
            if kinds in (("instant", "duration"), ("duration", "duration")):
                return Compiled(left.expr - right.expr, left.kind, facts)
        if isinstance(node.op, ast.Add):
            if kinds in (("instant", "duration"), ("duration", "duration")):
                return Compiled(left.expr + right.expr, left.kind, facts)
            if kinds == ("duration", "instant"):
                return Compiled(left.expr + right.expr, "instant", facts)
        if isinstance(node.op, ast.Add | ast.Sub | ast.Mult) and set(kinds) <= NUMERIC:
            kind: Kind = "float" if "float" in kinds else "int"
            ops = {ast.Add: left.expr + right.expr, ast.Sub: left.expr - right.expr}
            expr = ops.get(type(node.op), left.expr * right.expr)
            return Compiled(expr, kind, facts)
        if isinstance(node.op, ast.Mult) and kinds in (("duration", "int"), ("int", "duration")):
            duration, count = (left, right) if left.kind == "duration" else (right, left)
            return Compiled(duration.expr * count.expr, "duration", facts)
        if isinstance(node.op, ast.Div) and set(kinds) <= NUMERIC:
            return Compiled(left.expr / right.expr, "float", facts)
        raise self.fail(node, f"cannot compute '{ast.unparse(node)}' ({left.kind} and {right.kind})")

    # -- functions
    def _Call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise self.fail(node, "only plain calls of the rule functions are allowed, e.g. hours(24)")
        name = node.func.id
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(name, FUNCTIONS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; functions: {', '.join(FUNCTIONS)}"
            raise self.fail(node, f"unknown function '{name}'{hint}")
        args = [self.compile(a) for a in node.args]
        facts = frozenset().union(*(a.facts for a in args)) if args else frozenset()
        return getattr(self, f"_fn_{name}")(node, args, facts)  # type: ignore[no-any-return]

    def _arity(self, node: ast.Call, args: list[Compiled], *kinds: tuple[str, ...]) -> None:
        name = node.func.id  # type: ignore[attr-defined]
        if len(args) != len(kinds):
            raise self.fail(node, f"{FUNCTIONS[name]}: takes {len(kinds)} argument(s), got {len(args)}")
        for i, (arg, allowed) in enumerate(zip(args, kinds, strict=True)):
            if arg.kind not in allowed and arg.kind != "null":
                raise self.fail(node, f"{name}(): argument {i + 1} is {arg.kind}, expected {' or '.join(allowed)}")

    def _duration(self, node: ast.Call, args: list[Compiled], facts: frozenset[str], unit: str) -> Compiled:
        self._arity(node, args, ("int", "float"))
        arg = args[0]
        if arg.is_literal:
            try:
                value = bounded_duration(float(arg.literal), unit)
            except ExpressionError as exc:
                raise self.fail(node, exc.message) from None
            return Compiled(duration_lit(value), "duration", literal=value, is_literal=True)
        amounts: dict[str, pl.Expr] = {unit: arg.expr}
        return Compiled(pl.duration(**amounts), "duration", facts)  # type: ignore[arg-type]

    def _fn_hours(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        return self._duration(node, args, facts, "hours")

    def _fn_minutes(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        return self._duration(node, args, facts, "minutes")

    def _fn_days(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        return self._duration(node, args, facts, "days")

    def _fn_as_hours(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("duration",))
        return Compiled(args[0].expr.dt.total_minutes() / 60.0, "float", facts)

    def _fn_as_minutes(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("duration",))
        return Compiled(args[0].expr.dt.total_minutes(), "int", facts)

    def _needs(self, node: ast.Call, *names: str) -> frozenset[str]:
        missing = [n for n in names if n not in self.scope.facts]
        if missing:
            raise self.fail(node, f"{node.func.id}() needs the fact(s) {', '.join(missing)}")  # type: ignore[attr-defined]
        return frozenset(names)

    def _fn_age_at(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("instant",))
        needs = self._needs(node, "date_of_birth")
        self.scope.age_tests.append(args[0].expr)
        expr = age_years(pl.col("date_of_birth"), args[0].expr, self.scope.leap_day_birthday)
        return Compiled(expr, "int", facts | needs)

    def _fn_is_juvenile(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("instant",), ("int",))
        needs = self._needs(node, "date_of_birth", "appears_under_18")
        self.scope.age_tests.append(args[0].expr)
        expr = is_juvenile(
            pl.col("date_of_birth"),
            pl.col("appears_under_18"),
            args[0].expr,
            args[1].expr,
            self.scope.leap_day_birthday,
        )
        return Compiled(expr, "bool", facts | needs)

    def _fn_date(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        if len(args) != 1 or args[0].kind != "str" or not args[0].is_literal:
            raise self.fail(node, "date() takes one constant 'YYYY-MM-DD'")
        try:
            day = dt.date.fromisoformat(args[0].literal)
        except ValueError:
            raise self.fail(node, f"date({args[0].literal!r}) is not a YYYY-MM-DD date") from None
        return param_value(day)

    def _fn_local_date(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("instant",))
        return Compiled(local_date(args[0].expr), "date", facts)

    def _same_kind(self, node: ast.Call, args: list[Compiled], allowed: tuple[str, ...]) -> Kind:
        kinds: set[Kind] = {a.kind for a in args} - {"null"}
        if not args or len(kinds) > 1 or not kinds <= set(allowed):
            name = node.func.id  # type: ignore[attr-defined]
            raise self.fail(node, f"{name}() needs one or more values of the same kind ({', '.join(allowed)})")
        return kinds.pop() if kinds else "null"

    def _fn_coalesce(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        kind = self._same_kind(node, args, ("bool", "int", "float", "str", "instant", "duration", "date"))
        return Compiled(pl.coalesce([a.expr for a in args]), kind, facts)

    def _fn_earliest(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        kind = self._same_kind(node, args, ("instant", "duration", "int", "float"))
        return Compiled(pl.min_horizontal([a.expr for a in args]), kind, facts)

    def _fn_latest(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        kind = self._same_kind(node, args, ("instant", "duration", "int", "float"))
        return Compiled(pl.max_horizontal([a.expr for a in args]), kind, facts)

    def _phrases(self, node: ast.Call, args: list[Compiled]) -> str:
        self._arity(node, args, ("str",), ("list",))
        phrases = args[1].literal
        if not phrases:
            raise self.fail(node, "the phrase list is empty")
        return _phrase_pattern(phrases)

    def _fn_phrase(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        pattern = self._phrases(node, args)
        return Compiled(args[0].expr.str.extract(pattern, 1).str.to_lowercase(), "str", facts)

    def _fn_matches(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        pattern = self._phrases(node, args)
        return Compiled(args[0].expr.str.contains(pattern), "bool", facts)

    # -- reading what a text gives as a reason (custody.engine.reasons)
    def _reading(self, node: ast.Call) -> reasons.Reading:
        name = node.func.id  # type: ignore[attr-defined]
        try:
            return reasons.Reading.from_params(self.scope.params)
        except KeyError as exc:
            raise self.fail(node, f"{name}() reads wording with the version's parameters: add {exc.args[0]}") from None
        except ValueError as exc:
            raise self.fail(node, f"{name}(): {exc}") from None

    def _phrase_list(self, node: ast.Call, arg: Compiled) -> tuple[str, ...]:
        if not arg.literal:
            raise self.fail(node, "the phrase list is empty")
        return tuple(arg.literal)

    def _fn_stated(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("str",), ("list",))
        reading, phrases = self._reading(node), self._phrase_list(node, args[1])
        expr = _per_text(args[0].expr, lambda t: reasons.stated_phrase(t, phrases, reading) is not None, pl.Boolean())
        return Compiled(expr, "bool", facts)

    def _fn_stated_phrase(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("str",), ("list",))
        reading, phrases = self._reading(node), self._phrase_list(node, args[1])
        return Compiled(
            _per_text(args[0].expr, lambda t: reasons.stated_phrase(t, phrases, reading), pl.String()), "str", facts
        )

    def _fn_not_relied_on(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        if len(args) < 2:
            raise self.fail(node, f"{FUNCTIONS['not_relied_on']}: takes a text and one or more phrase lists")
        self._arity(node, args, ("str",), *(("list",),) * (len(args) - 1))
        reading = self._reading(node)
        lists = tuple(self._phrase_list(node, a) for a in args[1:])
        expr = _per_text(args[0].expr, lambda t: reasons.not_relied_on(t, lists, reading), pl.String())
        return Compiled(expr, "str", facts)

    def _fn_quote(self, node: ast.Call, args: list[Compiled], facts: frozenset[str]) -> Compiled:
        self._arity(node, args, ("str",))
        if not args[0].expr.meta.is_column() or len(args[0].facts) != 1:
            raise self.fail(node, "quote() takes one free-text fact, e.g. quote(certificate_note)")
        (fact,) = args[0].facts
        if not self.scope.facts[fact].sensitive:
            raise self.fail(node, f"quote() is for free text: show '{fact}' as {{{fact}}}")
        return Compiled(pl.col(quoted_column(fact)), "str", facts)


def compile_expression(text: str, scope: Scope) -> Compiled:
    """Compile one rule expression; raises ExpressionError with a column where possible."""
    tree = parse_expression(text)
    return _Compiler(scope).compile(tree.body)


def one_line(text: str) -> str:
    """An expression as it is parsed: its lines joined by spaces (offsets refer to this text)."""
    return " ".join(text.split("\n")).strip()


def parse_expression(text: str) -> ast.Expression:
    """Parse one rule expression (`one_line`), bounded in length and nesting depth."""
    source = one_line(text)
    if not source:
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"the expression is {len(source):,} characters long, more than {MAX_EXPRESSION_CHARS:,}:"
            " split the rule, or name a list in the version's params"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        column = (exc.offset - 1) if exc.offset else None
        raise ExpressionError(f"not a valid expression: {exc.msg}", column) from None
    except (RecursionError, MemoryError):  # the parser's own recursion, on very deep nesting
        raise _too_deep() from None
    if _depth(tree.body) > MAX_EXPRESSION_DEPTH:
        raise _too_deep()
    return tree


def _too_deep() -> ExpressionError:
    return ExpressionError(f"the expression nests more than {MAX_EXPRESSION_DEPTH} levels deep: simplify it")


def _depth(root: ast.AST) -> int:
    """How deeply the tree nests (walked without recursion, so any depth can be measured)."""
    deepest, pending = 0, [(root, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def compile_condition(text: str, scope: Scope) -> Compiled:
    compiled = compile_expression(text, scope)
    if compiled.kind not in ("bool", "null"):
        raise ExpressionError(f"'{text.strip()}' is {compiled.kind}, not a condition (true/false)")
    return compiled
