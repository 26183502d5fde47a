"""`custody profile scan`: what an export holds, column by column, and a draft profile.

    scanned = scan_export(Path("export_folder"))
    print(draft_profile(scanned))

Each column gets a type guess (id, code, yes/no, date, date-time, time of day, number, free
text, empty), its share of missing values and, for code and yes/no columns only, its most
frequent values that occur at least `min_count` times. Ids, dates, times, numbers and free
text never show a value, nor does a column whose name says it holds a name, a date of birth,
an address or a note: what the scan prints is safe to paste into a ticket.

The draft profile guesses which column is which contract column from the names (and the
types), pairs date and time columns by their common stem (`Date_Arrived` + `Time_Arrived`,
`Review_1_Date` + `Review_1_Time`), turns numbered groups into `repeat`, yes/no columns
beside a pair into `flag`, and an audit log (a file whose rows repeat the record id, with an
entry-type code column and a date-time) into `event_log`. What it cannot guess is written as
a `FIXME` comment or left unmapped: the profile then refuses those values by name when it is
tested (`custody profile test`), never guesses them.

The draft lists every code of a code column it maps to a contract value or to events,
whatever its count: a profile cannot work without them, and the codes are the force
system's vocabulary, not a person's data.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from custody.contract import EVENT_DETAILS, TABLES
from custody.errors import InputError
from custody.read.columns import ROW
from custody.read.loader import SUFFIXES
from custody.read.profile import read_export

MIN_COUNT = 5
"""A value is shown only when at least this many rows hold it."""

_MAX_CODES = 60
_PERSONAL_NAME = re.compile(
    r"name|dob|birth|address|post_?code|phone|note|text|comment|narrative|remark|officer|staff|user|collar|"
    r"ref|urn|pnc|(^|_)(id|no|number)$",
    re.I,
)
"""Column names whose values are never shown, whatever the counts: people, ids and free text."""

_DATE = r"(\d{1,2}[/.]\d{1,2}[/.]\d{4}|\d{4}-\d{2}-\d{2})"
_TIME = r"\d{1,2}[:.]?\d{2}(:\d{2}(\.\d+)?)?(\s*(BST|GMT|UTC))?"
_PATTERNS = (
    ("date-time", rf"^{_DATE}[ T]{_TIME}\s*(Z|[+-]\d{{2}}:?\d{{2}})?$"),
    ("date", rf"^{_DATE}$"),
    ("time of day", rf"^{_TIME}$"),
    ("yes/no", r"(?i)^(y|n|yes|no|true|false|1|0)$"),
    ("number", r"^-?\d+(\.\d+)?$"),
)


@dataclass
class Column:
    name: str
    guess: str
    null_share: float
    distinct: int
    top: list[tuple[str, int]] = field(default_factory=list)
    """Most frequent values (at least MIN_COUNT rows each); empty where values are never shown."""
    codes: list[str] = field(default_factory=list)
    """Every distinct value of a code column (for the draft), most frequent first."""
    slash_order: str | None = None
    """"dmy" or "mdy" when the values prove it, "ambiguous" when none does."""


@dataclass
class ScannedFile:
    path: Path
    rows: int
    columns: list[Column]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InputError(f"{source} does not exist: give the export's folder or one of its files.")
    found = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise InputError(f"{source} holds no table file (.csv, .parquet, .ndjson, .jsonl, .xlsx): check the folder.")
    return found


def scan_export(source: Path, min_count: int = MIN_COUNT) -> list[ScannedFile]:
    """Every table file of an export (a folder, or one file), column by column."""
    return [_scan_file(path, min_count) for path in _files(source)]


def _scan_file(path: Path, min_count: int) -> ScannedFile:
    frame = read_export(path).drop(ROW)
    columns = []
    for name in frame.columns:
        text = frame[name].cast(pl.String).str.strip_chars()
        text = text.filter(text.str.len_bytes() > 0)
        null_share = 1 - text.len() / frame.height if frame.height else 1.0
        columns.append(_scan_column(name, text, null_share, frame.height, min_count))
    return ScannedFile(path, frame.height, columns)


_ID_LIKE_MIN_DISTINCT = 10
"""A code vocabulary holds a few values with three digits or more (s135, s136); ids, many."""


def _id_like(text: pl.Series) -> bool:
    """Values that look like ids rather than codes: ten or more distinct values, most of them
    with three digits or more (C-0032, SUS-2014-000001, 40213). Such a column, however it is
    named, is never shown and never taken for the entry type (a small export of a few dozen
    people repeats each id enough to pass for a code)."""
    distinct = text.unique()
    if distinct.len() < _ID_LIKE_MIN_DISTINCT:
        return False
    with_digits = int(distinct.str.count_matches(r"\d").ge(3).sum())
    return with_digits >= 0.8 * distinct.len()


def _scan_column(name: str, text: pl.Series, null_share: float, rows: int, min_count: int) -> Column:
    if text.is_empty():
        return Column(name, "empty", null_share, 0)
    distinct = text.n_unique()
    guess = next((kind for kind, pattern in _PATTERNS if text.str.contains(pattern).all()), None)
    if guess is None:
        longest = int(text.str.len_chars().max() or 0)  # type: ignore[arg-type]
        if distinct > 0.9 * text.len() and text.len() >= 5 and longest <= 24 and " " not in "".join(text.head(50)):
            guess = "id"
        elif distinct <= _MAX_CODES and longest <= 60:
            guess = "code"
        else:
            guess = "free text"
    elif guess == "number" and distinct > 0.9 * text.len() and text.len() >= 5:
        guess = "id"
    if guess in ("code", "free text", "number") and _contract_column(name) in ("custody_record_id", "person_id"):
        guess = "id"  # named as an id: a record id repeats in a log, but is never a code to show
    elif guess == "code" and _id_like(text):
        guess = "id"  # ids under a name no pattern knows (Detainee, Subject): never shown
    column = Column(name, guess, null_share, distinct)
    if guess in ("date", "date-time"):
        column.slash_order = _slash_order(text)
    if guess in ("code", "yes/no") and not _PERSONAL_NAME.search(name):
        counts = text.value_counts(sort=True, name="n")
        column.codes = counts[text.name].to_list()
        column.top = [(value, int(n)) for value, n in counts.filter(pl.col("n") >= min_count).head(10).iter_rows()]
    return column


def _slash_order(text: pl.Series) -> str | None:
    parts = text.str.extract_groups(r"^(\d{1,2})[/.](\d{1,2})[/.]\d{4}").struct.unnest().drop_nulls()
    if parts.is_empty():
        return None
    first, second = parts[:, 0].cast(pl.Int32), parts[:, 1].cast(pl.Int32)
    if (first > 12).any() and not (second > 12).any():
        return "dmy"
    if (second > 12).any() and not (first > 12).any():
        return "mdy"
    return "ambiguous"


# ---------------------------------------------------------------- the draft profile

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "custody_record_id": ("custodyref", "custodyrecordid", "recordref", "custodyno", "custodynumber", "custodyid"),
    "person_id": ("personurn", "personid", "subjectref", "subjectid", "personref", "detaineeid", "urn"),
    "date_of_birth": ("dob", "dateofbirth", "birthdate"),
    "appears_under_18": ("appearsu18", "appearsunder18", "juvenileappearance"),
    "sex": ("sex", "gender"),
    "ethnicity": ("ethnicity", "ethnicgroup", "selfdefinedethnicity"),
    "looked_after": ("lac", "lookedafter", "lookedafterchild"),
    "force": ("force", "policeforce"),
    "custody_suite": ("suite", "custodysuite", "station"),
    "detention_power": ("detentionreason", "detentiontype", "power", "detentionpower", "arrestreason"),
    "arrival_time": ("arrived", "arrival", "arrivaltime", "arrivaldatetime", "datearrived"),
    "place_of_safety": ("placeofsafety", "pos"),
    "offence_category": ("offencetype", "offencecategory"),
    "indictable": ("indictable", "indictableflag"),
}
# Keys as `_key` writes them: "appropriate adult" is "aa" and "local authority" is "la".
_EVENT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "detention_authorised": ("detauth", "detentionauthorised", "authorised"),
    "aa_requested": ("aarequested",),
    "aa_arrived": ("aaarrived",),
    "aa_left": ("aaleft",),
    "welfare_informed": ("welfareinformed", "welfare"),
    "extension_authorised": ("extension", "extensionauthorised"),
    "la_requested": ("larequest", "larequested"),
    "la_response": ("laresponse",),
    "transferred_to_la": ("transferla", "transferredtola"),
    "certificate": ("s38cert", "certificate", "s38certificate"),
    "certificate_to_court": ("certtocourt", "certificatetocourt"),
    "court_appearance": ("court", "courtappearance"),
    "cell_placed": ("cellin", "cellplaced"),
    "cell_left": ("cellout", "cellleft"),
    "mha_consultation": ("mhaconsult", "mhaconsultation"),
    "mha_assessment_completed": ("mhaassessed", "mhaassessmentcompleted"),
    "mha_extension": ("mhaext", "mhaextension"),
    "strip_search": ("stripsearch", "stripsearched", "intimatesearch"),
    "interview_started": ("interviewstart", "interviewstarted", "interviewbegan"),
    "interview_ended": ("interviewend", "interviewended", "interviewfinished"),
}
_ENUM_SPECS = {s.name: s for s in TABLES["detentions"] if s.kind in ("enum", "bool")}
_DATE_WORD = re.compile(r"(?i)(^|_)(date|dte)(_|$)")
_TIME_WORD = re.compile(r"(?i)(^|_)(time|tme)(_|$)")


def _key(text: str) -> str:
    """Lower case letters and digits only, the long forms of `aa` and `la` shortened, whether
    written with spaces or underscores (`LOCAL AUTHORITY` and `local_authority` both give `la`)."""
    words = re.sub(r"[^a-z0-9]+", " ", text.lower())
    words = re.sub(r"\bappropriate adult\b", "aa", words)
    words = re.sub(r"\blocal authority\b", "la", words)
    return words.replace(" ", "")


def _contract_column(name: str) -> str | None:
    key = _key(name)
    return next((column for column, words in _SYNONYMS.items() if key in words), None)


def _event_type(stem: str) -> str | None:
    key = _key(stem)
    for event_type in EVENT_DETAILS:
        if key in (_key(event_type), *_EVENT_SYNONYMS.get(event_type, ())):
            return event_type
    return None


# Words that name a contract value in forces' own codes, most specific first.
_CODE_WORDS: tuple[tuple[str, str], ...] = (
    ("136", "mha_s136"),
    ("135", "mha_s135"),
    ("warrant", "warrant"),
    ("bail", "bail_breach"),
    ("remand", "court_remand"),
    ("arrest", "pace_arrest"),
    ("pace", "pace_arrest"),
    ("healthbased", "health_based"),
    ("hbpos", "health_based"),
    ("emergency", "emergency_department"),
    ("ae", "emergency_department"),
    ("hosp", "hospital"),
    ("custody", "police_station"),
    ("police", "police_station"),
    # who was informed of a child's detention (welfare_informed)
    ("parent", "parent_guardian"),
    ("guardian", "parent_guardian"),
    ("mother", "parent_guardian"),
    ("father", "parent_guardian"),
    ("carer", "parent_guardian"),
    ("socialworker", "local_authority"),
    ("socialservices", "local_authority"),
    ("council", "local_authority"),
    # the appropriate adult at a strip search or an interview (strip_search, interview_started)
    ("declined", "aa_declined"),
    ("urgent", "urgent_authorised"),
    ("urgent", "urgent"),
    ("notpresent", "aa_absent"),
    ("without", "aa_absent"),
    ("absent", "aa_absent"),
    ("present", "aa_present"),
)


def _code_target(code: str, choices: Iterable[str]) -> str | None:
    """The contract value a force code plainly names (`PRE CHARGE` -> pre_charge), else None."""
    key = _key(code)
    options = {_key(choice): choice for choice in choices}
    if key in options:
        return options[key]
    for word, target in _CODE_WORDS:
        if target in options.values() and (key == word or ((len(word) > 3 or word.isdigit()) and word in key)):
            return target
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.85)
    return options[close[0]] if close else None


def _yaml_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values_block(codes: list[str], choices: tuple[str, ...], indent: str, is_bool: bool = False) -> list[str]:
    lines = []
    for code in codes:
        if is_bool:
            word = code.strip().lower()
            target = (
                "true" if word in ("y", "yes", "true", "1") else "false" if word in ("n", "no", "false", "0") else None
            )
        else:
            target = _code_target(code, choices)
        if target is None:
            lines.append(f"{indent}# FIXME {_yaml_text(code)}: map to one of {', '.join(choices) or 'true, false'}")
        else:
            lines.append(f"{indent}{_yaml_text(code)}: {target}")
    return lines


@dataclass
class _Pair:
    stem: str
    date: str
    time: str | None


def _stem(name: str, word: re.Pattern[str]) -> str:
    return re.sub(r"_+", "_", word.sub("_", name)).strip("_")


_ZONE_WORD = re.compile(r"(?i)(^|_)(utc|local|uk)(_|$)")


def _pairs(file: ScannedFile) -> list[_Pair]:
    """Date-times: a date-time column, or a date column and the time column of the same stem (a
    date with no time beside it is no event time, and is left to `unused`)."""
    timed = {
        _stem(c.name, _TIME_WORD).lower(): c.name
        for c in file.columns
        if _TIME_WORD.search(c.name) and c.guess in ("time of day", "empty")
    }
    pairs = []
    for column in file.columns:
        if column.guess == "date-time":
            stem = _stem(_stem(_stem(column.name, _DATE_WORD), _TIME_WORD), _ZONE_WORD)
            pairs.append(_Pair(stem, column.name, None))
        elif column.guess == "date" or (column.guess == "empty" and _DATE_WORD.search(column.name)):
            stem = _stem(column.name, _DATE_WORD)
            if stem.lower() in timed:
                pairs.append(_Pair(stem, column.name, timed[stem.lower()]))
    return pairs


def _numbered(stem: str) -> tuple[str, int | None]:
    match = re.search(r"(^|_)(\d{1,2})(_|$)", stem)
    if not match:
        return stem, None
    return stem[: match.start(2)] + "{n}" + stem[match.end(2) :], int(match.group(2))


def draft_profile(scanned: list[ScannedFile], name: str = "FIXME: name of this export layout") -> str:
    """A profile to edit: what could be guessed filled in, the rest marked FIXME."""
    by_rows = sorted(scanned, key=lambda f: (-len(f.columns), f.path.name))
    log = next((f for f in scanned if _looks_like_log(f)), None) if len(scanned) > 1 else None
    detentions = next(f for f in by_rows if f is not log)
    orders = {c.slash_order for f in scanned for c in f.columns if c.slash_order in ("dmy", "mdy")}
    ambiguous = not orders and any(c.slash_order for f in scanned for c in f.columns)
    date_order = "mdy" if orders == {"mdy"} else "dmy"
    lines = [
        "# Input profile drafted by `custody profile scan`: check every line, fix each FIXME,",
        "# then try it with `custody profile test PROFILE EXPORT`.",
        "profile: 1",
        f"name: {_yaml_text(name)}",
        'version: "1"',
        f"date_order: {date_order}"
        + ("  # FIXME: no date proves its order; dmy is the contract's" if ambiguous else ""),
        "",
        "detentions:",
        f"  file: {detentions.path.name}",
        "  columns:",
    ]
    used: set[str] = set()
    pairs = _pairs(detentions)
    mapped: dict[str, str] = {}
    for column in detentions.columns:
        target = _contract_column(column.name)
        if target and target not in mapped and target != "arrival_time":
            mapped[target] = column.name
    arrival = next((p for p in pairs if _contract_column(p.stem) == "arrival_time"), None)
    for spec in TABLES["detentions"]:
        if spec.name == "arrival_time":
            if arrival is None:
                lines.append("    arrival_time: FIXME  # the arrival date-time column, or {date: ..., time: ...}")
                continue
            lines.append(f"    arrival_time: {_at(arrival, detentions)}")
            used |= {arrival.date, *([arrival.time] if arrival.time else [])}
            continue
        column_name = mapped.get(spec.name)
        if column_name is None:
            if spec.required:
                lines.append(f"    {spec.name}: FIXME  # required: the column holding it")
            continue
        used.add(column_name)
        column = detentions.column(column_name)
        if spec.kind in ("enum", "bool") and column.codes:
            choices = spec.enum_values if spec.kind == "enum" else ()
            lines += [f"    {spec.name}:", f"      column: {column_name}", "      values:"]
            lines += _values_block(column.codes, choices, "        ", is_bool=spec.kind == "bool")
        elif spec.kind == "date" and column.slash_order is None:
            lines.append(f"    {spec.name}: {{column: {column_name}, date_order: ymd}}")
        else:
            lines.append(f"    {spec.name}: {column_name}")
    event_lines = _wide_events(detentions, pairs, arrival, used)
    lines.append(f"  unused: [{', '.join(c.name for c in detentions.columns if c.name not in used)}]")
    if event_lines:
        lines += ["", "events:", *event_lines]
    if log is not None:
        lines += ["", *_event_log(log, detentions)]
    if not event_lines and log is None:
        lines += ["", "events: []  # FIXME: no date and time columns were recognised as events"]
    return "\n".join(lines) + "\n"


def _at(pair: _Pair, file: ScannedFile, probe: str | None = None) -> str:
    zone = "utc" if "utc" in pair.date.lower() else "uk_local"
    column = file.column(probe or pair.date)
    extra = ", date_order: ymd" if column.slash_order is None and column.guess != "empty" else ""
    if pair.time is None:
        return f'{{column: "{pair.date}", zone: {zone}{extra}}}'
    return f'{{date: "{pair.date}", time: "{pair.time}", zone: {zone}{extra}}}'


def _wide_events(file: ScannedFile, pairs: list[_Pair], arrival: _Pair | None, used: set[str]) -> list[str]:
    groups: dict[str, list[tuple[int | None, _Pair]]] = {}
    for pair in pairs:
        if pair is arrival or pair.date in used:
            continue
        pattern, number = _numbered(pair.stem)
        groups.setdefault(pattern, []).append((number, pair))
    lines: list[str] = []
    names = {c.name.lower(): c.name for c in file.columns}
    for pattern, members in groups.items():
        numbers = sorted(n for n, _ in members if n is not None)
        repeat = max(numbers) if numbers else None
        first = members[0][1]
        stem_words = pattern.replace("{n}", "").strip("_")
        event_type = _event_type(stem_words)
        template = _Pair(
            pattern,
            _templated(first.date, first.stem, pattern) or first.date,
            _templated(first.time, first.stem, pattern),
        )
        lines.append(f"  - event_type: {event_type or 'FIXME'}" + ("" if event_type else f"  # columns {pattern}_..."))
        lines.append(f"    at: {_at(template, file, first.date)}")
        for number, pair in members:
            used |= {pair.date, *([pair.time] if pair.time else [])}
            del number
        extras = {
            "flag": ("flag",),
            "detail_from": ("code", "type", "detail"),
            "note": ("circumstances", "note", "text"),
        }
        for key, suffixes in extras.items():
            for suffix in suffixes:
                found = [names.get(f"{pair.stem}_{suffix}".lower()) for _, pair in members]
                if found[0] is None:
                    continue
                used |= {n for n in found if n}
                column = _templated(found[0], members[0][1].stem, pattern)
                if key == "detail_from":
                    codes = [code for n in found if n for code in file.column(n).codes]
                    choices = EVENT_DETAILS.get(event_type or "", ())
                    values = [
                        f"{_yaml_text(code)}: {_code_target(code, choices) or 'FIXME'}" for code in dict.fromkeys(codes)
                    ]
                    lines.append(f'    detail_from: {{column: "{column}", values: {{{", ".join(values)}}}}}')
                else:
                    lines.append(f'    {key}: "{column}"')
                break
        if repeat:
            lines.append(f"    repeat: {repeat}")
    return lines


def _templated(name: str | None, stem: str, pattern: str) -> str | None:
    if name is None or pattern == stem:
        return name
    return name.replace(stem, pattern, 1)


def _looks_like_log(file: ScannedFile) -> bool:
    kinds = [c.guess for c in file.columns]
    return (
        "date-time" in kinds
        and "code" in kinds
        and any(_contract_column(c.name) == "custody_record_id" for c in file.columns)
    )


def _event_log(log: ScannedFile, detentions: ScannedFile) -> list[str]:
    record = next((c.name for c in log.columns if _contract_column(c.name) == "custody_record_id"), "FIXME")
    at = next((c for c in log.columns if c.guess == "date-time"), None)
    entry = next((c for c in log.columns if c.codes and "type" in c.name.lower()), None)
    entry = entry or next((c for c in log.columns if c.codes and c.name != record), None)
    note = next(
        (
            c.name
            for c in log.columns
            if c.guess == "free text" and re.search(r"(?i)note|text|comment|narrative", c.name)
        ),
        None,
    )
    used = {record, *([at.name] if at else []), *([entry.name] if entry else []), *([note] if note else [])}
    lines = ["event_log:", f"  file: {log.path.name}", f"  custody_record_id: {record}"]
    if at is not None:
        zone = "utc" if "utc" in at.name.lower() else "uk_local"
        extra = "" if at.slash_order else ", date_order: ymd"
        lines.append(f"  at: {{column: {at.name}, zone: {zone}{extra}}}")
    else:
        lines.append("  at: FIXME  # the entry's date-time column")
    lines.append(f"  entry_type: {entry.name if entry else 'FIXME'}")
    if note:
        lines.append(f"  note: {note}")
    lines.append("  entries:")
    unknown = []
    for code in entry.codes if entry else []:
        target = _entry_target(code)
        if target is None:
            unknown.append(code)
        else:
            lines.append(f"    {_yaml_text(code)}: {target}")
    if unknown:
        lines.append("  # FIXME: entry types not recognised: map each above, or list it under ignore")
        lines += [f"  #   {_yaml_text(code)}" for code in unknown]
    lines.append("  ignore: []")
    lines.append(f"  unused: [{', '.join(c.name for c in log.columns if c.name not in used)}]")
    return lines


def _entry_target(code: str) -> str | None:
    head, _, tail = code.partition(" - ")
    event_type = _event_type(head) or _code_target(head, EVENT_DETAILS)
    if event_type is None:
        return None
    if not tail:
        return event_type
    detail = _code_target(tail, EVENT_DETAILS[event_type])
    return f"{event_type}/{detail}" if detail else None
