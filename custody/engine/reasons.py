"""Reading what a certificate gives as its reason: a small classifier whose vocabulary is data.

Code C Note 16D rules out some grounds for keeping a charged child in a cell (the child's
behaviour, the nature of the offence, the lack of secure accommodation). A ground counts
only when the certificate gives it *as a reason*: "his behaviour has been calm", "no concerns
about behaviour" and "not aggressive" mention behaviour without relying on it. This module
says, for each phrase of a list found in a text, whether the text states it, negates it or
only describes the child with it. It follows NegEx (Chapman et al., J Biomed Inform 2001):
negation cues open a scope over the next few words that ends at a clause boundary or a
scope-ending word; pseudo-negations ("not possible") look like cues but are not. Every
word list and window comes from the rule version's parameters (`reading_*`), never from
here, so a rule's readers can see and change how its wording is read.

A text is read as a run of tokens: words (letters and digits, with inner apostrophes and
hyphens: "wasn't", "co-operative") and single punctuation marks. A line break reads as a
full stop. Phrases match whole tokens, case-insensitively; within one list the longest
phrase at a position wins, and matches do not overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

Status = Literal["stated", "negated", "described"]

READING_PARAMS: dict[str, str] = {
    "reading_negations": "words that deny what follows (negation cues: 'not', 'no concerns about')",
    "reading_pseudo_negations": "wordings that look like a negation but are not one ('not possible', 'could not')",
    "reading_scope_ends": "marks and words that end a negation's or a description's reach ('.', ',', 'but', 'due to')",
    "reading_negation_window": "how many words after a negation cue it still reaches",
    "reading_descriptions_after": "words after a phrase that describe rather than rely on it ('calm', 'not an issue')",
    "reading_descriptions_before": "words before a phrase that describe rather than rely on it ('good', 'calm')",
    "reading_description_window": "how many words may stand between a phrase and a description after it",
    "reading_description_before_window": "how many words may stand between a description before a phrase and it",
}
"""The parameters a rule version gives the reading functions (`stated`, `stated_phrase`,
`not_relied_on`), with what each holds."""

_TOKEN = re.compile(r"\w+(?:['-]\w+)*|[^\s\w]|\n")

Span = tuple[int, int]


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-cased words and punctuation marks of `text`; a line break reads as a full stop."""
    lowered = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return tuple("." if t == "\n" else t for t in _TOKEN.findall(lowered))


def _sequences(words: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Each wording as its tokens, longest first (so 'no concerns about' beats 'no')."""
    unique = {tokenize(w) for w in words if w.strip()}
    return tuple(sorted((s for s in unique if s), key=lambda s: (-len(s), s)))


def _find(tokens: Sequence[str], sequences: Sequence[tuple[str, ...]]) -> list[tuple[int, int, tuple[str, ...]]]:
    """Non-overlapping matches, left to right, the longest at each position."""
    found, i = [], 0
    while i < len(tokens):
        for sequence in sequences:
            if tuple(tokens[i : i + len(sequence)]) == sequence:
                found.append((i, i + len(sequence), sequence))
                i += len(sequence)
                break
        else:
            i += 1
    return found


@dataclass(frozen=True)
class Reading:
    """How wording is read: the vocabulary and windows of one rule version (`reading_*`)."""

    negations: tuple[tuple[str, ...], ...]
    pseudo_negations: tuple[tuple[str, ...], ...]
    scope_ends: tuple[tuple[str, ...], ...]
    negation_window: int
    descriptions_after: tuple[tuple[str, ...], ...]
    descriptions_before: tuple[tuple[str, ...], ...]
    description_window: int
    description_before_window: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Reading:
        """The reading a rule version's parameters give; KeyError/ValueError if one is missing or wrong."""
        missing = [name for name in READING_PARAMS if name not in params]
        if missing:
            raise KeyError(", ".join(missing))

        def words(name: str) -> tuple[tuple[str, ...], ...]:
            value = params[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of text")
            return _sequences(value)

        def window(name: str) -> int:
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of words, 0 or more")
            return value

        return cls(
            negations=words("reading_negations"),
            pseudo_negations=words("reading_pseudo_negations"),
            scope_ends=words("reading_scope_ends"),
            negation_window=window("reading_negation_window"),
            descriptions_after=words("reading_descriptions_after"),
            descriptions_before=words("reading_descriptions_before"),
            description_window=window("reading_description_window"),
            description_before_window=window("reading_description_before_window"),
        )

    @property
    def cues(self) -> tuple[tuple[str, ...], ...]:
        """Every wording the reading knows, longest first (a wording may play several roles)."""
        every = {
            *self.negations,
            *self.pseudo_negations,
            *self.scope_ends,
            *self.descriptions_after,
            *self.descriptions_before,
        }
        return tuple(sorted(every, key=lambda s: (-len(s), s)))


@dataclass(frozen=True)
class Mention:
    """A phrase of a list found in a text, and whether the text gives it as a reason."""

    phrase: str
    start: int
    """Index of its first token."""
    status: Status


def _between(spans: Iterable[Span], start: int, end: int) -> bool:
    """Whether any span begins in [start, end)."""
    return any(start <= s < end for s, _ in spans)


def _overlaps(span: Span, others: Iterable[Span]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in others)


@lru_cache(maxsize=65_536)
def _mentions(text: str, phrases: tuple[str, ...], reading: Reading) -> tuple[Mention, ...]:
    tokens = tokenize(text)
    found = _find(tokens, _sequences(phrases))
    spans = [(s, e) for s, e, _ in found]
    cues = _find(tokens, reading.cues)
    # A wording's roles are the lists it is in; one inside a phrase of the list read is part
    # of that phrase ("no" in "no secure bed"), and a pseudo-negation is never a negation.
    ends = [(s, e) for s, e, w in cues if w in reading.scope_ends]
    negations = [
        (s, e)
        for s, e, w in cues
        if w in reading.negations and w not in reading.pseudo_negations and not _overlaps((s, e), spans)
    ]
    after = [(s, e) for s, e, w in cues if w in reading.descriptions_after and not _overlaps((s, e), spans)]
    before = [(s, e) for s, e, w in cues if w in reading.descriptions_before and not _overlaps((s, e), spans)]
    mentions = []
    for start, end, words in found:
        # A phrase that itself opens with a negation ("no secure bed", "no transport") states
        # an absence: an earlier cue in the same clause lists absences, it does not deny this one.
        opens_negated = any(words[: len(w)] == w for w in reading.negations)
        negated = not opens_negated and any(
            cue_end <= start and start - cue_end <= reading.negation_window and not _between(ends, cue_end, start)
            for _, cue_end in negations
        )
        described_after = any(
            end <= d_start
            and d_start - end <= reading.description_window
            and not _between(ends, end, d_start)
            and not _between(negations, end, d_start)  # "behaviour has not been good" relies on it
            for d_start, _ in after
        )
        described_before = any(
            d_end <= start and start - d_end <= reading.description_before_window and not _between(ends, d_end, start)
            for _, d_end in before
        )
        status: Status = "negated" if negated else "described" if described_after or described_before else "stated"
        mentions.append(Mention(" ".join(words), start, status))
    return tuple(mentions)


def mentions(text: str, phrases: Sequence[str], reading: Reading) -> tuple[Mention, ...]:
    """Every phrase of `phrases` in `text`, in text order, each stated, negated or described."""
    return _mentions(text, tuple(phrases), reading)


def stated_phrase(text: str, phrases: Sequence[str], reading: Reading) -> str | None:
    """The first phrase of the list that the text gives as a reason, or None."""
    return next((m.phrase for m in mentions(text, phrases, reading) if m.status == "stated"), None)


_READ_AS = {"negated": "denied", "described": "a description"}


def not_relied_on(text: str, lists: Sequence[Sequence[str]], reading: Reading) -> str:
    """The phrases of `lists` that the text mentions without giving them as a reason, in text
    order ("'behaviour' (a description), 'aggressive' (denied)"), or 'none'."""
    seen: dict[tuple[int, str], str] = {}
    for phrases in lists:
        for mention in mentions(text, phrases, reading):
            if mention.status != "stated":
                seen.setdefault((mention.start, mention.phrase), _READ_AS[mention.status])
    if not seen:
        return "none"
    return ", ".join(f"'{phrase}' ({how})" for (_, phrase), how in sorted(seen.items()))
