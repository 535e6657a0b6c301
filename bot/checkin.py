"""The daily traffic-light check-in (lyskrydsmodellen) as a pure state machine.

No Telegram, no database: the dialogue engine loads the user's open `Draft`, calls
`answer()`, stores the returned draft and sends the reply (`prompt()` for the next
question, `summary()` when the draft is done). Every word the user sees, and every
word the user may type instead of pressing a button, from knowledge/texts/checkin.yaml
and knowledge/lang/checkin.yaml; thresholds and advice from knowledge/traffic_light.yaml.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Literal, get_args

from rapidfuzz import fuzz, process

from bot import protocol, trend
from bot.fold import fold as fold_word
from bot.knowledge import TELEGRAM_TEXT_LIMIT, Entry, Knowledge, Zone
from bot.records import DayRecord, Morning
from bot.replies import Button, Reply
from bot.vocabulary import Vocabulary

Activity = Literal["run", "strength", "rest", "other"]
MORNINGS: tuple[Morning, ...] = get_args(Morning)
ACTIVITIES: tuple[Activity, ...] = get_args(Activity)
# Notes are free text kept as health data; a cap keeps one message from filling the row.
NOTE_MAX_CHARS = 500
# Typos are forgiven only in short answers, where a near-miss is clearly meant as one.
FUZZY_MAX_WORDS = 3
FUZZY_MIN_SCORE = 80
FUZZY_MIN_LENGTH = 4


class Step(StrEnum):
    PAIN = "pain"
    MORNING = "morning"
    ACTIVITY = "activity"
    NOTE = "note"
    DONE = "done"


# The step a check-in button answers, as its first field ("ci:p:4:17.5f3a9c2e"); the last
# field is the check-in's key, so a button of another check-in answers nothing.
_STEP_CODES = {Step.PAIN: "p", Step.MORNING: "m", Step.ACTIVITY: "a", Step.NOTE: "n"}


@dataclass(frozen=True)
class Draft:
    """The check-in so far; the engine stores it between messages."""

    step: Step
    pain: int | None = None
    morning: Morning | None = None
    activity: str | None = None
    note: str | None = None
    key: str | None = None  # names the stored check-in on its buttons (bot/dialogs/checkin.py)


@dataclass(frozen=True)
class StepResult:
    draft: Draft
    understood: bool
    reply: Reply | None


def new_draft() -> Draft:
    return Draft(step=Step.PAIN)


# ------------------------------------------------------------------ questions


def _data(draft: Draft, value: object) -> str:
    keys = () if draft.key is None else (draft.key,)
    return protocol.encode(protocol.CHECKIN, _STEP_CODES[draft.step], value, *keys)


def _buttons(kb: Knowledge, draft: Draft) -> tuple[tuple[Button, ...], ...]:
    step = draft.step
    if step is Step.PAIN:

        def pain(n: int) -> Button:
            return Button(kb.text("checkin_btn_pain", n=n), _data(draft, n))

        return (tuple(pain(n) for n in range(6)), tuple(pain(n) for n in range(6, 11)))
    if step is Step.MORNING:
        return (
            tuple(Button(kb.text(f"checkin_btn_morning_{m}"), _data(draft, m)) for m in MORNINGS),
        )
    if step is Step.ACTIVITY:
        row = [Button(kb.text(f"checkin_btn_activity_{a}"), _data(draft, a)) for a in ACTIVITIES]
        return (tuple(row[:2]), tuple(row[2:]))
    if step is Step.NOTE:
        return ((Button(kb.text("checkin_btn_note_skip"), _data(draft, "skip")),),)
    return ()


def prompt(kb: Knowledge, draft: Draft) -> Reply:
    """The question for the draft's current step, with its buttons."""
    return Reply(kb.text(f"checkin_q_{draft.step.value}"), _buttons(kb, draft))


def _again(kb: Knowledge, draft: Draft, hint_key: str) -> StepResult:
    question = prompt(kb, draft)
    if draft.step is Step.DONE:
        return StepResult(draft, False, Reply(kb.text("checkin_hint_done")))
    return StepResult(
        draft, False, Reply(f"{kb.text(hint_key)}\n\n{question.text}", question.buttons)
    )


# ------------------------------------------------------------------ typed words


def fold(text: str) -> str:
    """Lower case, æ/ø/å folded (bot/fold.py), punctuation to spaces."""
    text = unicodedata.normalize("NFC", text).lower()
    return " ".join(fold_word(w) for w in re.sub(r"[\W_]+", " ", text).split())


def _match(
    kb: Knowledge, text: str, prefix: str, options: Sequence[str], *, first_wins: bool
) -> str | None:
    """Which option the typed text names, by the word lists `<prefix>_<option>`.

    Longest phrases claim their words first ("ikke værre" before "værre"); a phrase
    right after a negation word, or listed under `<prefix>_ignore` ("end normalt"),
    names nothing. Different options in one message are ambiguous unless `first_wins`.
    """
    folded = fold(text)
    if not folded:
        return None
    negations = kb.vocab.folded("negators")
    known = [*options, *(["ignore"] if f"{prefix}_ignore" in kb.vocab.lists else [])]
    phrases = sorted(
        ((phrase, option) for option in known for phrase in kb.vocab.folded(f"{prefix}_{option}")),
        key=lambda po: -len(po[0]),
    )
    tokens = folded.split()
    claimed = [False] * len(tokens)
    hits: list[tuple[int, str]] = []
    for phrase, option in phrases:
        size = len(phrase.split())
        for i in range(len(tokens) - size + 1):
            if any(claimed[i : i + size]) or " ".join(tokens[i : i + size]) != phrase:
                continue
            claimed[i : i + size] = [True] * size
            if option == "ignore" or (i > 0 and tokens[i - 1] in negations and not claimed[i - 1]):
                continue
            hits.append((i, option))
    if hits:
        chosen = {option for _, option in hits}
        if len(chosen) == 1 or first_wins:
            return min(hits)[1]
        return None
    if any(claimed) or len(tokens) > FUZZY_MAX_WORDS:
        return None  # a negated or ignored phrase was read; a near miss would second-guess it
    choices = {
        phrase: option
        for phrase, option in phrases
        if option != "ignore" and len(phrase) >= FUZZY_MIN_LENGTH
    }
    best = process.extractOne(
        folded, list(choices), scorer=fuzz.ratio, score_cutoff=FUZZY_MIN_SCORE
    )
    return choices[best[0]] if best else None


def parse_morning(kb: Knowledge, text: str) -> Morning | None:
    """Typed morning answers ("bedre", "som normalt", "vaerre") -> better/same/worse, else None."""
    found = _match(kb, text, "morning", MORNINGS, first_wins=False)
    return next((m for m in MORNINGS if m == found), None)


def parse_activity(kb: Knowledge, text: str) -> Activity | None:
    """Typed activities ("løb", "lob", "styrke", "hvile", "cykling") -> run/strength/rest/other."""
    found = _match(kb, text, "activity", ACTIVITIES, first_wins=True)
    return next((a for a in ACTIVITIES if a == found), None)


def _is_skip(kb: Knowledge, text: str) -> bool:
    return fold(text) in kb.vocab.folded("note_skip")


# ------------------------------------------------------------------ pain

_NUM = r"\d+(?:[.,]\d+)?"
_NEGATIVE = re.compile(r"(?:^|[^\d\s])\s*[-−]\s*\d")


def _alternatives(words: frozenset[str]) -> str:
    """A regex alternation of phrases, longest first, spaces matching any whitespace."""
    ordered = sorted(words, key=len, reverse=True)
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in ordered)


@dataclass(frozen=True)
class _PainWords:
    numbers: dict[str, int]
    weak: frozenset[str]
    zero: frozenset[str]
    units: frozenset[str]
    out_of_ten: re.Pattern[str]
    range_: re.Pattern[str]
    half: re.Pattern[str]
    half_word: str
    suffix: re.Pattern[str]
    number: re.Pattern[str]


@lru_cache(maxsize=4)
def _pain_words(vocab: Vocabulary) -> _PainWords:
    out_of = _alternatives(vocab.words("out_of_words") | {"/"})
    between = _alternatives(vocab.words("range_words") | {"-", "–", "—"})
    starts = _alternatives(vocab.words("range_starts"))
    halves = vocab.words("half_phrases")
    suffixes = _alternatives(vocab.words("number_suffixes"))
    return _PainWords(
        numbers=dict(vocab.mapping("number_words")),
        weak=vocab.words("weak_number_words"),
        zero=vocab.words("pain_zero_answers"),
        units=vocab.folded("count_units"),
        out_of_ten=re.compile(rf"({_NUM})\s*(?:{out_of})\s*10(?![\d.,])"),
        range_=re.compile(rf"(?:(?:{starts})\s+)?({_NUM})\s*(?:{between})\s*({_NUM})(?![\d.,])"),
        half=re.compile(rf"({_NUM})\s*(?:{_alternatives(halves)}|½)"),
        half_word=min(halves, key=len).split()[-1],
        suffix=re.compile(rf"(\d)\s*'\s*({suffixes})\b"),
        number=re.compile(rf"(?<![\w.,])(-?)({_NUM})(?:\s*({suffixes}|\w+))?"),
    )


def _number_value(raw: str) -> float:
    return float(raw.replace(",", "."))


def parse_pain(vocab: Vocabulary, text: str) -> int | None:
    """A pain score 0-10 from a typed answer; a range or a fraction rounds up (be conservative).

    "4", "fire", "4/10", "4 ud af 10", "ca 3", "3-4" -> 4, "3,5" -> 4, "nul", "ti".
    None for nonsense, several unrelated numbers, numbers with units (5 km) or out of range.
    """
    if not isinstance(text, str) or len(text) > 300:
        return None
    w = _pain_words(vocab)
    half = next(iter(sorted(vocab.words("half_phrases"))))
    lowered = unicodedata.normalize("NFC", text).lower().replace("½", f" {half}")
    tokens = re.findall(r"\d+(?:[.,]\d+)?|[^\W\d_]+|[^\w\s]", lowered)
    if _NEGATIVE.search(lowered):
        return None
    if " ".join(t for t in tokens if t.isalpha()) in w.zero and not any(
        t[0].isdigit() for t in tokens
    ):
        return 0
    strong = [t for t in tokens if t in w.numbers and t not in w.weak]
    has_digits = any(t[0].isdigit() for t in tokens)
    converted: list[str] = []
    for i, tok in enumerate(tokens):
        weak_ok = not strong and not has_digits
        if tok in w.numbers and (tok not in w.weak or weak_ok):
            # "en halv" after a number is a half, not the number one
            if tok in w.weak and i + 1 < len(tokens) and tokens[i + 1] == w.half_word:
                converted.append(tok)
            else:
                converted.append(str(w.numbers[tok]))
        else:
            converted.append(tok)
    line = " ".join(converted)
    line = re.sub(r"(\d)\s+([.,])\s+(\d)", r"\1\2\3", line)  # "3 , 5" back to "3,5"
    line = w.suffix.sub(r"\1 \2", line)  # "3'er"
    line = re.sub(r"(\d)\s*-\s*(\d)", r"\1-\2", line)
    line = re.sub(r"(\d)\s*/\s*(\d)", r"\1/\2", line)
    line = w.out_of_ten.sub(r"\1", line)
    line = w.half.sub(lambda m: str(_number_value(m.group(1)) + 0.5), line)
    line = w.range_.sub(
        lambda m: str(max(_number_value(m.group(1)), _number_value(m.group(2)))), line
    )
    values: list[float] = []
    for match in w.number.finditer(line):
        sign, raw, unit = match.groups()
        if unit and fold_word(unit) in w.units:
            continue
        if sign or "/" in line[match.end() : match.end() + 1]:
            return None  # negative, or a fraction of something other than 10
        values.append(_number_value(raw))
    if len(set(values)) != 1:
        return None
    score = math.ceil(values[0])
    return score if 0 <= score <= 10 else None


# ------------------------------------------------------------------ answers


_PAIN_VALUES = {str(n): n for n in range(11)}


def _apply(kb: Knowledge, draft: Draft, value: str, typed: bool) -> Draft | None:
    """The draft after a value for the current step, or None when it is not understood."""
    if draft.step is Step.PAIN:
        pain = parse_pain(kb.vocab, value) if typed else _PAIN_VALUES.get(value)
        if pain is None or not 0 <= pain <= 10:
            return None
        return replace(draft, step=Step.MORNING, pain=pain)
    if draft.step is Step.MORNING:
        morning = (
            parse_morning(kb, value) if typed else next((m for m in MORNINGS if m == value), None)
        )
        return None if morning is None else replace(draft, step=Step.ACTIVITY, morning=morning)
    if draft.step is Step.ACTIVITY:
        activity = (
            parse_activity(kb, value)
            if typed
            else next((a for a in ACTIVITIES if a == value), None)
        )
        return None if activity is None else replace(draft, step=Step.NOTE, activity=activity)
    if draft.step is Step.NOTE:
        if not typed:
            return replace(draft, step=Step.DONE, note=None) if value == "skip" else None
        note = " ".join(value.split())
        if not note:
            return None
        if not fold(note) or _is_skip(kb, note):  # "-", "..." or a skip word
            return replace(draft, step=Step.DONE, note=None)
        return replace(draft, step=Step.DONE, note=note[:NOTE_MAX_CHARS])
    return None


def answer(
    kb: Knowledge, draft: Draft, text: str | None = None, callback: str | None = None
) -> StepResult:
    """Apply a typed answer or a button press to the current step.

    Not understood (nonsense, a stale button from another step, nothing at all) leaves
    the draft as it was and re-asks the question with a hint.
    """
    if draft.step is Step.DONE:
        return _again(kb, draft, "checkin_hint_done")
    hint = f"checkin_hint_{draft.step.value}"
    if callback is not None:
        press = protocol.decode(callback)
        keys = () if draft.key is None else (draft.key,)
        valid = press is not None and press.route == protocol.CHECKIN and press.fields[2:] == keys
        if (
            press is None
            or not valid
            or len(press.fields) < 2
            or press.field(0) != _STEP_CODES[draft.step]
        ):
            return _again(kb, draft, "checkin_hint_stale")
        new = _apply(kb, draft, press.field(1), typed=False)
    elif text is not None:
        new = _apply(kb, draft, text, typed=True)
    else:
        new = None
    if new is None:
        return _again(kb, draft, hint)
    return StepResult(new, True, None)


# ------------------------------------------------------------------ result


def _pain(draft: Draft) -> int:
    if draft.pain is None:
        raise ValueError("the draft has no pain score yet")
    return draft.pain


def zone_of(kb: Knowledge, draft: Draft) -> Zone:
    """The day's zone: the pain score, overridden by a morning worse than usual."""
    return kb.traffic_light.zone_for(_pain(draft), draft.morning == "worse")


def record_of(kb: Knowledge, draft: Draft, day: date) -> DayRecord:
    """The finished check-in as the day's record (for storage and the trend)."""
    zone = zone_of(kb, draft)
    return DayRecord(day, _pain(draft), zone.id, draft.morning, draft.activity)


def _phase_entry(kb: Knowledge, guide: str, phase: int) -> Entry | None:
    """The guide's entry for a phase, preferring a section over a FAQ answer."""
    found = [
        (kb.entry_kind.get(e.id) != "section", e) for e in kb.entries_of(guide) if e.phase == phase
    ]
    return min(found, key=lambda fe: fe[0])[1] if found else None


def _exercises(
    kb: Knowledge, guide: str | None, phase: int | None, history: Sequence[DayRecord], today: date
) -> tuple[str, str, str] | None:
    """(heading, quoted text, source line) for the phase, or the next phase after a green streak."""
    if guide is None or phase is None or guide not in kb.guides:
        return None
    current = _phase_entry(kb, guide, phase)
    greens = trend.streak(history, today, "green")
    following = _phase_entry(kb, guide, phase + 1)
    if greens >= kb.traffic_light.trend.green_streak_days and following is not None:
        entry = following
        head = kb.text("checkin_exercises_next", days=greens, phase=phase + 1, title=entry.title)
    elif current is not None:
        entry = current
        head = kb.text("checkin_exercises_current", phase=phase, title=entry.title)
    else:
        return None
    source = kb.text("checkin_source", source=kb.guides[guide].source, section=entry.source)
    return head, entry.text, source


def _fit(text: str, limit: int) -> str:
    """Cut a quote at a line end so the whole message fits one Telegram message."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    if "\n" in cut:
        cut = cut[: cut.rindex("\n")]
    return cut.rstrip() + "…"


def summary(
    kb: Knowledge,
    draft: Draft,
    guide: str | None,
    phase: int | None,
    history: Sequence[DayRecord],
    today: date,
) -> Reply:
    """The day's zone and advice, the phase's exercises when the zone allows it, and the trend.

    `history` may or may not hold today's record; the draft is today's check-in either way.
    """
    zone = zone_of(kb, draft)
    pain = _pain(draft)
    records = [r for r in history if r.day != today] + [record_of(kb, draft, today)]
    parts = [kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=pain)]
    if draft.morning == "worse":
        by_pain = kb.traffic_light.zone_for(pain, morning_worse=False)
        if by_pain.id != zone.id:
            parts.append(
                kb.text("checkin_summary_morning_override", symbol=zone.symbol, label=zone.label)
            )
    parts.append(zone.advice.get(guide or "default", zone.advice["default"]))
    tail = [
        trend.trend_text(kb, records, today, guide),
        kb.text("checkin_model_source", source=kb.traffic_light.source),
    ]
    if zone.progression and (exercises := _exercises(kb, guide, phase, records, today)):
        head, quote, source = exercises
        room = TELEGRAM_TEXT_LIMIT - len("\n\n".join([*parts, *tail, head, source])) - 4
        parts.append(f"{head}\n{_fit(quote, room)}\n{source}")
    return Reply("\n\n".join([*parts, *tail]))
