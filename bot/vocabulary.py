"""Every Danish word the code reads, as data: the word lists of knowledge/lang/*.yaml.

Code never spells a Danish word; it asks the vocabulary for a named list ("negators") or
mapping ("number_words"). Each name is declared once below with what it is for, so the
validator can point at a list the code needs and no file defines, a list no code reads, or
a list defined twice (`path:line: message`, like every other knowledge mistake).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.fold import fold
from bot.yamldoc import Collector, walk_yaml

# name -> what the code uses the list for
LISTS: dict[str, str] = {
    "doctor_words": "a red-flag reply names a doctor with one of these (the eval contract)",
    "negators": "words that negate what follows or precedes them (red flags, matching)",
    "negation_bridges": "small words a negator after a phrase may stand behind ('... me not')",
    "forward_negators": "words that negate only what follows them (red flags)",
    "english_forward_negators": "English words that negate only what follows them (red flags)",
    "negation_lists": "words along which a negator before a phrase reaches ('no X or Y')",
    "negation_stops": "words a negator before a phrase does not reach across ('not X and Y')",
    "phrase_fillers": "small intensifiers a red flag's phrase may hold inside it (red flags)",
    "hypothetical_starts": "phrases that open a hypothetical question (red flags)",
    "fear_starts": "phrases that open what someone fears will happen (red flags that opt in)",
    "question_words": "words that start a question sentence (long messages)",
    "reporting_verbs": "verbs that report what someone else said (the speaker is background)",
    "subclause_starts": "words that open a subclause (a negator after them belongs to it)",
    "clause_words": "words that split a sentence into two clauses",
    "runon_breaks": "words that start a new clause in a message dictated without punctuation",
    "wh_words": "question words that open a question wherever they stand in a run-on",
    "subject_words": "subjects after a question_words verb that make it ask (verb first)",
    "keep_words": "spaCy stop words that carry meaning in this domain",
    "fillers": "words that frame a question without saying what it is about",
    "english_stop_words": "English small words",
    "phase_words": "words before a phase's number that name a phase of a guide's plan",
    # the dialogue (bot/dialogs/): answers to the bot's own prompts
    "yes_words": "answers that mean yes at a yes/no prompt",
    "no_words": "answers that mean no at a yes/no prompt",
    "dont_know_words": "answers that mean 'I don't know' at the phase prompt",
    "goal_labels": "the label before a phase's goal in the guides' phase sections",
    # clock times and pauses (bot/timewords.py)
    "time_fillers": "words around a clock time that say nothing about it",
    "morning_words": "words that put a clock time before noon",
    "evening_words": "words that put a clock time after noon",
    "night_words": "words that put a clock time in the night",
    "clock_half": "the word for half an hour before the hour in spoken times",
    "clock_quarter": "the word for a quarter of an hour in spoken times",
    "clock_past": "the word for minutes past the hour in spoken times",
    "clock_to": "the word for minutes to the hour in spoken times",
    "reminder_words": "words that ask for or about a reminder",
    "pause_fillers": "words around a pause length that say nothing about it",
    "couple_words": "the word for 'a couple' (two days)",
    "unit_alone": "units that mean one of themselves when they stand alone",
    "duration_more": "words before a count that make a duration a little longer (red flags)",
    "duration_and": "the word between a unit and its half ('a year and a half')",
    "since_words": "words that start a span from a date to today (red flags)",
    "temperature_before": "words before a whole number that make it a temperature, not an age",
    "decimal_words": "the word between the two parts of a dictated decimal number",
    "count_fillers": "small words between a count and its unit ('a couple of months')",
    # typed check-in answers (bot/checkin.py)
    "morning_better": "typed morning answers: better than usual",
    "morning_same": "typed morning answers: as usual",
    "morning_worse": "typed morning answers: worse than usual",
    "morning_ignore": "phrases in a morning answer that name no option",
    "activity_run": "typed activities: running",
    "activity_strength": "typed activities: strength training",
    "activity_rest": "typed activities: rest",
    "activity_other": "typed activities: anything else",
    "note_skip": "typed answers that skip the note",
    "pain_zero_answers": "typed pain answers that mean 0",
    "weak_number_words": "number words that are also an article: a score only when alone",
    "out_of_words": "the words for 'out of' between a score and 10",
    "range_words": "words between the two numbers of a range",
    "range_starts": "words that open a range of two numbers",
    "half_phrases": "phrases that add a half to a number",
    "number_suffixes": "suffixes after a digit that keep it a number",
    "count_units": "units beside a number that make it a measure: no pain score, no temperature",
}
# name -> what the code uses the mapping (word -> number) for
MAPPINGS: dict[str, str] = {
    "number_words": "Danish number words (pain scores, clock times, durations, phases)",
    "ordinals": "ordinals that name a phase or a step",
    "english_numbers": "English number words and ordinals that name a phase",
    "roman_numerals": "Roman numerals that name a phase after a phase word",
    "unit_days": "time units and their length in days (pauses; how long a red flag has lasted)",
    "duration_counts": "words that count units without being number words ('a couple')",
    "duration_halves": "halves, counted in halves ('half' 1, 'one and a half' 3)",
    "vague_spans": "words that are a vague span on their own, in days ('for months on end')",
    "month_parts": "parts of a month as a day of it ('the end of' 25)",
    "months": "month names and their number",
    "date_points": "fixed days of the year as month*100+day (the 24th of the 12th month is 1224)",
    "easter_days": "holidays that follow Easter, as days after Easter Sunday",
}
# Files in knowledge/lang/ that are not word lists.
NOT_WORD_LISTS = frozenset({"lemmas.yaml"})


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """The loaded word lists; a name the code did not declare is a programming error.

    Compared and hashed by identity, so parsers can cache what they derive from one.
    """

    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mappings: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def words(self, name: str) -> frozenset[str]:
        if name not in LISTS:
            raise KeyError(f"word list {name!r} is not declared in bot/vocabulary.py")
        return frozenset(self.lists.get(name, ()))

    def folded(self, name: str) -> frozenset[str]:
        """The list with æ/ø/å folded, to compare with folded text ("vaerre" meets "værre")."""
        return frozenset(" ".join(fold(w) for w in phrase.split()) for phrase in self.words(name))

    def mapping(self, name: str) -> Mapping[str, int]:
        if name not in MAPPINGS:
            raise KeyError(f"word mapping {name!r} is not declared in bot/vocabulary.py")
        return self.mappings.get(name, {})

    def folded_mapping(self, name: str) -> Mapping[str, int]:
        """The mapping with its words folded like `folded`."""
        return {fold(word): value for word, value in self.mapping(name).items()}


def load(out: Collector, kdir: Path) -> Vocabulary:
    """The word lists of knowledge/lang/, every mistake collected in `out`."""
    lists: dict[str, tuple[str, ...]] = {}
    mappings: dict[str, dict[str, int]] = {}
    where: dict[str, str] = {}
    for path in walk_yaml(kdir / "lang"):
        if path.name in NOT_WORD_LISTS:
            continue
        doc = out.read(path)
        if not doc:
            continue
        if not isinstance(doc.data, dict):
            out.add(doc.rel, 1, "expected a mapping of list names to word lists")
            continue
        for name, value in doc.data.items():
            line = doc.line(name)
            name = str(name)
            if name in where:
                out.add(doc.rel, line, f"word list {name!r} is also defined in {where[name]}")
                continue
            where[name] = doc.rel
            if name in LISTS:
                words = value if isinstance(value, list) else None
                if words and any(isinstance(w, bool) for w in words):
                    out.add(doc.rel, line, f'{name}: YAML read a word as yes/no; quote it: "no"')
                    continue
                if not words or not all(isinstance(w, str) and w.strip() for w in words):
                    out.add(doc.rel, line, f"{name}: must be a non-empty list of words")
                    continue
                bad = [w for w in words if w != w.strip().lower()]
                if bad:
                    out.add(doc.rel, line, f"{name}: words must be lowercase: {bad[:3]}")
                twice = sorted({w for w in words if words.count(w) > 1})
                if twice:
                    out.add(doc.rel, line, f"{name}: listed twice: {twice[:3]}")
                lists[name] = tuple(w.strip().lower() for w in words)
            elif name in MAPPINGS:
                ok = isinstance(value, dict) and all(
                    isinstance(k, str) and k == k.lower() and isinstance(v, int)
                    for k, v in value.items()
                )
                if not ok or not value:
                    out.add(doc.rel, line, f"{name}: must map lowercase words to whole numbers")
                    continue
                mappings[name] = dict(value)
            else:
                out.add(doc.rel, line, f"{name!r} is a word list no code reads")
    rel = out.rel(kdir / "lang")
    for name in [*LISTS, *MAPPINGS]:
        if name not in where:
            out.add(rel, 1, f"word list {name!r} is missing (the code needs it)")
    return Vocabulary(lists, mappings)
