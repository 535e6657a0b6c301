"""Every Danish word the code reads, as data: the word lists of knowledge/lang/*.yaml.

Code never spells a Danish word; it asks the vocabulary for a named list ("negators") or
mapping ("number_words"). Each name is declared once below with what it is for, so the
validator can point at a list the code needs and no file defines, a list no code reads, or
a list defined twice (`path:line: message`, like every other knowledge mistake).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# name -> what the code uses the list for
LISTS: dict[str, str] = {
    "negators": "words that negate what follows or precedes them (red flags, matching)",
    "question_words": "words that start a question sentence (long messages)",
    "reporting_verbs": "verbs that report what someone else said (the speaker is background)",
    "subclause_starts": "words that open a subclause (a negator after them belongs to it)",
    "clause_words": "words that split a sentence into two clauses",
    "keep_words": "spaCy stop words that carry meaning in this domain",
    "fillers": "words that frame a question without saying what it is about",
    "english_stop_words": "English small words",
}
# name -> what the code uses the mapping (word -> number) for
MAPPINGS: dict[str, str] = {
    "number_words": "Danish number words (pain scores, clock times, durations, phases)",
    "ordinals": "ordinals that name a phase or a step",
    "english_numbers": "English number words and ordinals that name a phase",
    "duration_days": "time units in days, to measure durations a red flag asks for",
}
# Files in knowledge/lang/ that are not word lists.
NOT_WORD_LISTS = frozenset({"lemmas.yaml"})


@dataclass(frozen=True)
class Vocabulary:
    """The loaded word lists; a name the code did not declare is a programming error."""

    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mappings: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def words(self, name: str) -> frozenset[str]:
        if name not in LISTS:
            raise KeyError(f"word list {name!r} is not declared in bot/vocabulary.py")
        return frozenset(self.lists.get(name, ()))

    def mapping(self, name: str) -> Mapping[str, int]:
        if name not in MAPPINGS:
            raise KeyError(f"word mapping {name!r} is not declared in bot/vocabulary.py")
        return self.mappings.get(name, {})
