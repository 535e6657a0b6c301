"""Clock times and pause lengths from what users type: "7:30", "halv otte", "to uger".

Every word read here comes from the vocabulary (knowledge/lang/time.yaml and
numbers.yaml); tokens are folded with bot/fold.py, so "paamindelse" meets "påmindelse".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache

from bot.fold import fold
from bot.vocabulary import Vocabulary

_NUMERIC_HM = re.compile(r"^(\d{1,2})\s*[:.,]\s*(\d{2})$")
_NUMERIC_SPACED = re.compile(r"^(\d{1,2}) (\d{2})$")
_NUMERIC_COMPACT = re.compile(r"^(\d{3,4})$")
_NUMERIC_HOUR = re.compile(r"^(\d{1,2})$")
_NUMERIC_TOKEN = re.compile(r"[\d:.,]+")
# A minus sign before a digit is not a hyphen ("7-tiden"): it becomes a token nothing accepts.
_MINUS = "\u2212"


@dataclass(frozen=True)
class _Words:
    """The folded word lists one parse needs."""

    numbers: dict[str, int]
    fillers: frozenset[str]
    morning: frozenset[str]
    evening: frozenset[str]
    night: frozenset[str]
    half: frozenset[str]
    quarter: frozenset[str]
    past: frozenset[str]
    to: frozenset[str]
    pause_fillers: frozenset[str]
    couple: frozenset[str]
    alone: frozenset[str]
    unit_days: dict[str, int]
    weak: frozenset[str]

    @classmethod
    def of(cls, vocab: Vocabulary) -> _Words:
        return cls(
            numbers=dict(vocab.folded_mapping("number_words")),
            fillers=vocab.folded("time_fillers"),
            morning=vocab.folded("morning_words"),
            evening=vocab.folded("evening_words"),
            night=vocab.folded("night_words"),
            half=vocab.folded("clock_half"),
            quarter=vocab.folded("clock_quarter"),
            past=vocab.folded("clock_past"),
            to=vocab.folded("clock_to"),
            pause_fillers=vocab.folded("pause_fillers"),
            couple=vocab.folded("couple_words"),
            alone=vocab.folded("unit_alone"),
            unit_days=dict(vocab.folded_mapping("unit_days")),
            weak=vocab.folded("weak_number_words"),
        )


@lru_cache(maxsize=4)
def _words(vocab: Vocabulary) -> _Words:
    return _Words.of(vocab)


def _normalise(text: str) -> list[str]:
    """Folded tokens with digits split from letters ("7am" -> "7 am", "7-tiden")."""
    lowered = text.strip().lower()
    lowered = re.sub(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)", " ", lowered)
    lowered = re.sub(r"(?<!\w)-(?=\d)", f" {_MINUS} ", lowered)
    lowered = lowered.replace("-", " ").replace("!", " ").replace("?", " ")
    # A dot or comma between digits is a separator ("7.30"); elsewhere it is punctuation.
    lowered = re.sub(r"(?<!\d)[.,]|[.,](?!\d)", " ", lowered)
    return [t if t[0].isdigit() or t == _MINUS else fold(t) for t in lowered.split()]


def _number(w: _Words, token: str) -> int | None:
    if token.isascii() and token.isdigit() and len(token) <= 3:  # "¹".isdigit() is true
        return int(token)
    return w.numbers.get(token)


def _base_minutes(w: _Words, rest: list[str]) -> int | None:
    """Minutes after midnight of "<hour>" or "halv <hour>"."""
    if len(rest) == 2:
        if rest[0] not in w.half:
            return None
        hour = _number(w, rest[1])
        return None if hour is None or not 1 <= hour <= 24 else (hour - 1) * 60 + 30
    hour = _number(w, rest[0])
    return None if hour is None else hour * 60


def _word_time(w: _Words, tokens: list[str]) -> tuple[int, int] | None:
    """Spoken Danish clock times: "otte", "halv otte", "kvart over syv", "fem i halv otte"."""
    if len(tokens) == 1:
        hour = w.numbers.get(tokens[0])
        return (hour, 0) if hour is not None else None
    if len(tokens) == 2 and tokens[0] in w.half:
        hour = _number(w, tokens[1])
        return (hour - 1, 30) if hour is not None and 1 <= hour <= 24 else None
    if len(tokens) in (3, 4) and (tokens[1] in w.past or tokens[1] in w.to):
        minutes = 15 if tokens[0] in w.quarter else _number(w, tokens[0])
        if minutes is None or not 1 <= minutes <= 29:
            return None
        base = _base_minutes(w, tokens[2:])
        if base is None:
            return None
        total = (base + minutes if tokens[1] in w.past else base - minutes) % (24 * 60)
        return divmod(total, 60)
    return None


def _numeric_time(joined: str) -> tuple[int, int] | None:
    for pattern in (_NUMERIC_HM, _NUMERIC_SPACED):
        if m := pattern.match(joined):
            return int(m.group(1)), int(m.group(2))
    if m := _NUMERIC_COMPACT.match(joined):
        digits = m.group(1)
        return int(digits[:-2]), int(digits[-2:])
    if m := _NUMERIC_HOUR.match(joined):
        return int(m.group(1)), 0
    return None


def _with_period(hour: int, minute: int, period: str | None) -> time | None:
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if period == "evening" and hour < 12:
        hour += 12
    elif period == "morning" and hour > 12:
        return None  # "19 om morgenen" contradicts itself
    elif period == "night" and hour == 12:
        hour = 0
    elif period == "night" and 8 <= hour <= 11:
        hour += 12  # "11 om natten"
    return time(hour, minute)


def _parse_tokens(w: _Words, tokens: list[str]) -> time | None:
    period: str | None = None
    kept: list[str] = []
    for token in tokens:
        if token in w.morning:
            period = "morning"
        elif token in w.evening:
            period = "evening"
        elif token in w.night:
            period = "night"
        elif token not in w.fillers:
            kept.append(token)
    if not kept:
        return None
    numeric = all(_NUMERIC_TOKEN.fullmatch(t) for t in kept)
    hm = _numeric_time(" ".join(kept)) if numeric else _word_time(w, kept)
    return None if hm is None else _with_period(hm[0], hm[1], period)


def parse_reminder_time(vocab: Vocabulary, text: str) -> time | None:
    """A wall-clock time from what a user typed, or None when it is not clearly a time.

    Accepts "07:30", "7.30", "730", "kl 7", "kl. 19.15", "19", "7.30 om morgenen",
    "7 om aftenen" (19:00), "halv otte" (07:30) and "kvart over syv"; rejects
    impossible times such as 25:00 or 7:61 rather than guessing.
    """
    if not isinstance(text, str) or len(text) > 100:
        return None
    return _parse_tokens(_words(vocab), _normalise(text))


def find_reminder_time(vocab: Vocabulary, text: str, max_window: int = 6) -> time | None:
    """A clock time anywhere in a sentence: "mind mig kl 19.15 hver dag" -> 19:15.

    The whole text first; then every run of up to `max_window` words holding a number,
    longest first, so "kvart over syv" wins over the bare "syv".
    """
    if not isinstance(text, str) or len(text) > 500:
        return None
    w = _words(vocab)
    tokens = _normalise(text)[:40]
    if (whole := _parse_tokens(w, tokens)) is not None:
        return whole
    for size in range(min(max_window, len(tokens)), 0, -1):
        for start in range(len(tokens) - size + 1):
            window = tokens[start : start + size]
            if not any(_number(w, t) is not None or _NUMERIC_TOKEN.fullmatch(t) for t in window):
                continue
            if (found := _parse_tokens(w, window)) is not None:
                return found
    return None


def _pause_tokens(w: _Words, tokens: list[str]) -> int | None:
    tokens = [t for t in tokens if t not in w.pause_fillers]
    if len(tokens) >= 2 and tokens[0] in w.weak and tokens[1] in w.couple:
        tokens = ["2", *tokens[2:]]
    if len(tokens) == 1 and tokens[0] in w.alone:
        tokens = ["1", tokens[0]]
    if len(tokens) not in (1, 2):
        return None
    count = _number(w, tokens[0])
    if count is None:
        return None
    unit = w.unit_days.get(tokens[1]) if len(tokens) == 2 else 1
    if unit is None:
        return None
    days = count * unit
    return days if 1 <= days <= 365 else None


def parse_pause(vocab: Vocabulary, text: str) -> int | None:
    """A pause length in days (1-365) from "3", "3 dage", "en uge", "to uger", "en måned"."""
    if not isinstance(text, str) or len(text) > 100:
        return None
    return _pause_tokens(_words(vocab), _normalise(text))


def find_pause(vocab: Vocabulary, text: str, max_window: int = 3) -> int | None:
    """A pause length anywhere in a sentence: "pause påmindelser i 3 dage" -> 3."""
    if not isinstance(text, str) or len(text) > 500:
        return None
    w = _words(vocab)
    tokens = _normalise(text)[:40]
    if (whole := _pause_tokens(w, tokens)) is not None:
        return whole
    for size in range(min(max_window, len(tokens)), 0, -1):
        for start in range(len(tokens) - size + 1):
            window = tokens[start : start + size]
            if _number(w, window[0]) is None and window[0] not in w.weak:
                continue
            if (found := _pause_tokens(w, window)) is not None:
                return found
    return None


def mentions_reminder(vocab: Vocabulary, text: str) -> bool:
    """Does the message ask for or about a reminder ("mind mig", "påmindelse")?"""
    reminder = vocab.folded("reminder_words")
    return any(t in reminder for t in _normalise(text[:500]))
