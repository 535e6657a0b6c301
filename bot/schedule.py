"""Reminder time arithmetic: parse what users type, and find the next due instant.

Reminders are stored as a local wall-clock time plus the user's time zone, and
the due instant is recomputed in UTC after every firing. Doing that right across
daylight-saving changes is the whole point of this module: a wall time that does
not exist (spring forward) fires when the clocks jump past it, and a wall time
that happens twice (fall back) fires only at its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.lexicon import NUMBER_WORDS as _NUMBER_WORDS

# Words that say nothing about the time itself ("kl. 7", "hver dag ved 7-tiden").
_TIME_FILLER = frozenset(
    {
        "kl",
        "klokken",
        "klok",
        "ca",
        "cirka",
        "omkring",
        "ved",
        "tiden",
        "præcis",
        "præcist",
        "lige",
        "hver",
        "dag",
        "daglig",
        "dagligt",
        "om",
        "på",
        "til",
        "gerne",
        "tak",
        "ja",
        "helst",
        "sæt",
        "påmindelse",
        "påmindelsen",
        "påmind",
        "mig",
    }
)
_MORNING = frozenset({"morgen", "morgenen", "formiddag", "formiddagen", "am", "morges"})
_EVENING = frozenset(
    {"aften", "aftenen", "eftermiddag", "eftermiddagen", "pm", "aftes", "middag", "middagen"}
)
_NIGHT = frozenset({"nat", "natten"})

_NUMERIC_HM = re.compile(r"^(\d{1,2})\s*[:.,]\s*(\d{2})$")
_NUMERIC_SPACED = re.compile(r"^(\d{1,2}) (\d{2})$")
_NUMERIC_COMPACT = re.compile(r"^(\d{3,4})$")
_NUMERIC_HOUR = re.compile(r"^(\d{1,2})$")
_NUMERIC_TOKEN = re.compile(r"[\d:.,]+")


def _fold_ascii(text: str) -> str:
    """Users without a Danish keyboard write ae/oe/aa; map the words we look for back."""
    replacements = {"praecis": "præcis", "paa": "på", "paamind": "påmind", "saet": "sæt"}
    words = text.split()
    out = []
    for word in words:
        for plain, danish in replacements.items():
            if word.startswith(plain):
                word = danish + word[len(plain) :]
                break
        out.append(word)
    return " ".join(out)


def _normalise(text: str) -> list[str]:
    """Lower-case tokens with digits split from letters ("7am" -> "7 am", "7-tiden")."""
    lowered = text.strip().lower()
    lowered = re.sub(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)", " ", lowered)
    # A minus sign is not a hyphen ("7-tiden"): keep it as a word nothing will accept.
    lowered = re.sub(r"(?<!\w)-(?=\d)", " minus ", lowered)
    lowered = lowered.replace("-", " ").replace("!", " ").replace("?", " ")
    # A dot or comma between digits is a separator ("7.30"); elsewhere it is punctuation.
    lowered = re.sub(r"(?<!\d)[.,]|[.,](?!\d)", " ", lowered)
    return _fold_ascii(" ".join(lowered.split())).split()


def _number(token: str) -> int | None:
    if token.isascii() and token.isdigit() and len(token) <= 3:  # "¹".isdigit() is true
        return int(token)
    return _NUMBER_WORDS.get(token)


def _word_time(tokens: list[str]) -> tuple[int, int] | None:
    """Spoken Danish clock times: "otte", "halv otte", "kvart over syv", "fem i halv otte"."""
    if not tokens:
        return None
    if len(tokens) == 1:
        hour = _NUMBER_WORDS.get(tokens[0])
        return (hour, 0) if hour is not None else None
    if tokens[0] == "halv" and len(tokens) == 2:
        hour = _number(tokens[1])
        return (hour - 1, 30) if hour is not None and 1 <= hour <= 24 else None
    # "<minutes> over|i <hour>" or "<minutes> over|i halv <hour>".
    if len(tokens) in (3, 4) and tokens[1] in ("over", "i"):
        if tokens[0] == "kvart":
            minutes: int | None = 15
        else:
            minutes = _number(tokens[0])
        if minutes is None or not 1 <= minutes <= 29:
            return None
        rest = tokens[2:]
        if len(rest) == 2:
            if rest[0] != "halv":
                return None
            base_hour = _number(rest[1])
            if base_hour is None or not 1 <= base_hour <= 24:
                return None
            base = (base_hour - 1) * 60 + 30
        else:
            base_hour = _number(rest[0])
            if base_hour is None:
                return None
            base = base_hour * 60
        total = base + minutes if tokens[1] == "over" else base - minutes
        total %= 24 * 60
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


def parse_reminder_time(text: str) -> time | None:
    """A wall-clock time from what a user typed, or None when it is not clearly a time.

    Accepts "07:30", "7.30", "730", "kl 7", "kl. 19.15", "19", "7.30 om morgenen",
    "7 om aftenen" (19:00), "halv otte" (07:30) and "kvart over syv"; rejects
    impossible times such as 25:00 or 7:61 rather than guessing.
    """
    if not isinstance(text, str) or len(text) > 100:
        return None
    tokens = _normalise(text)
    period: str | None = None
    kept: list[str] = []
    for token in tokens:
        if token in _MORNING:
            period = "am"
        elif token in _EVENING:
            period = "pm"
        elif token in _NIGHT:
            period = "night"
        elif token not in _TIME_FILLER:
            kept.append(token)
    if not kept:
        return None
    numeric = all(_NUMERIC_TOKEN.fullmatch(t) for t in kept)
    hm = _numeric_time(" ".join(kept)) if numeric else _word_time(kept)
    if hm is None:
        return None
    hour, minute = hm
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if period == "pm" and hour < 12:
        hour += 12
    elif period == "am" and hour > 12:
        return None  # "19 om morgenen" contradicts itself
    elif period == "night" and hour == 12:
        hour = 0
    elif period == "night" and 8 <= hour <= 11:
        hour += 12  # "11 om natten"
    return time(hour, minute)


def find_reminder_time(text: str, max_window: int = 6) -> time | None:
    """A clock time anywhere in a sentence: "mind mig kl 19.15 hver dag" -> 19:15.

    The whole text first; then every run of up to `max_window` words holding a number,
    longest first, so "kvart over syv" wins over the bare "syv".
    """
    if not isinstance(text, str) or len(text) > 500:
        return None
    if (whole := parse_reminder_time(text)) is not None:
        return whole
    tokens = _normalise(text)[:40]
    for size in range(min(max_window, len(tokens)), 0, -1):
        for start in range(len(tokens) - size + 1):
            window = tokens[start : start + size]
            if not any(_number(t) is not None or _NUMERIC_TOKEN.fullmatch(t) for t in window):
                continue
            if (found := parse_reminder_time(" ".join(window))) is not None:
                return found
    return None


_UNIT_DAYS: dict[str, int] = {
    "dag": 1,
    "dage": 1,
    "døgn": 1,
    "doegn": 1,
    "d": 1,
    "uge": 7,
    "uger": 7,
    "u": 7,
    "måned": 30,
    "måneder": 30,
    "maaned": 30,
    "maaneder": 30,
    "mdr": 30,
    "md": 30,
    "år": 365,
    "aar": 365,
}
_PAUSE_FILLER = frozenset(
    {"i", "pause", "pas", "stop", "ca", "cirka", "omkring", "bare", "lige", "gerne", "tak", "ja"}
)


def parse_pause(text: str) -> int | None:
    """A pause length in days (1-365) from "3", "3 dage", "en uge", "to uger", "en måned"."""
    if not isinstance(text, str) or len(text) > 100:
        return None
    tokens = [t for t in _normalise(text) if t not in _PAUSE_FILLER]
    if tokens[:2] == ["et", "par"]:
        tokens = ["2", *tokens[2:]]
    if len(tokens) == 1 and tokens[0] in ("dag", "døgn", "doegn", "uge", "måned", "maaned", "år"):
        tokens = ["1", tokens[0]]
    if len(tokens) not in (1, 2):
        return None
    count = _number(tokens[0])
    if count is None:
        return None
    unit = _UNIT_DAYS.get(tokens[1]) if len(tokens) == 2 else 1
    if unit is None:
        return None
    days = count * unit
    return days if 1 <= days <= 365 else None


def _as_utc(instant: datetime) -> datetime:
    """Naive datetimes (SQLite drops the zone) are taken to be UTC."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date on the user's wall clock at `instant` (naive means UTC)."""
    return _as_utc(instant).astimezone(tz).date()


def _occurrence(day: date, local_time: time, tz: ZoneInfo) -> datetime:
    """The UTC instant `local_time` happens on `day`: first occurrence, or the end of a gap."""
    naive = datetime.combine(day, local_time.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first  # exists; fold=0 is the earlier of two occurrences on a fall-back day
    # Inside a spring-forward gap: fold=0 reads the wall time with the old offset (at or
    # after the jump), fold=1 with the new offset (before the jump). The jump lies between;
    # find the first instant that carries the new offset.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    old_offset = lo.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(tz).utcoffset() == old_offset:
            lo = mid
        else:
            hi = mid
    return hi


def next_due(
    local_time: time,
    tz: ZoneInfo,
    after: datetime,
    *,
    skip_date: date | None = None,
) -> datetime:
    """The next UTC instant strictly after `after` when the wall clock in `tz` shows `local_time`.

    `skip_date` is a local date to leave out (the user has already checked in that day).
    A naive `after` is taken to be UTC.
    """
    start = _as_utc(after)
    day = local_date(start, tz) - timedelta(days=1)
    for _ in range(10):
        if day != skip_date:
            due = _occurrence(day, local_time, tz)
            if due > start:
                return due
        day += timedelta(days=1)
    raise RuntimeError("no reminder instant found within ten days")  # pragma: no cover


def find_pause(text: str, max_window: int = 3) -> int | None:
    """A pause length anywhere in a sentence: "pause påmindelser i 3 dage" -> 3."""
    if not isinstance(text, str) or len(text) > 500:
        return None
    if (whole := parse_pause(text)) is not None:
        return whole
    tokens = _normalise(text)[:40]
    for size in range(min(max_window, len(tokens)), 0, -1):
        for start in range(len(tokens) - size + 1):
            window = tokens[start : start + size]
            if _number(window[0]) is None and window[0] not in {"en", "et"}:
                continue
            if (found := parse_pause(" ".join(window))) is not None:
                return found
    return None
