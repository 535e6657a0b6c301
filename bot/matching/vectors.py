"""A message as the ranker's vector: the whole message, and in a long message its question
again, so a story does not drown the question inside it.

The question is found by sentences ("?" or a question word first) or, in a message dictated
without punctuation, by clauses: a run-on is cut before each question word ("... hvad gør
jeg"), before a verb that takes its subject after it ("... må jeg løbe") and before the words
that start a new clause ("men", "og så", "for" — knowledge/lang/sentences.yaml).
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

from bot.matching.features import Vectorizer, combine, raw_features, sentences
from bot.matching.model import Sparse
from bot.textproc import Analysis, TextProcessor, Token
from bot.vocabulary import Vocabulary

_PUNCT = re.compile(r"[.,;:!?\n]")
_STRIP = ",.;:!?\"'()"


def _words(text: str) -> list[str]:
    return [w.lower().strip(_STRIP) for w in text.split()]


class Clauses:
    """The vocabulary a run-on is cut by, read once per vocabulary."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.starts = vocab.words("question_words")
        self.wh = vocab.words("wh_words")
        self.subjects = vocab.words("subject_words")
        breaks = vocab.words("runon_breaks")
        self.breaks = {tuple(b.split()) for b in breaks}
        self.longest = max((len(b) for b in self.breaks), default=1)

    def _break_at(self, w: list[str], i: int) -> int:
        """The length of the break phrase starting at word i (0: none)."""
        for n in range(self.longest, 0, -1):
            if i + n <= len(w) and tuple(w[i : i + n]) in self.breaks:
                return n
        return 0

    def _asks(self, w: list[str], i: int) -> bool:
        """Word i opens a question: a question word, or a verb with its subject after it."""
        if w[i] in self.wh:
            return True
        return w[i] in self.starts and i + 1 < len(w) and w[i + 1] in self.subjects

    def split(self, text: str) -> list[str]:
        """A run-on's clauses; one part for a message with punctuation or nothing to cut.

        A clause starts at a question word, at a verb with its subject after it when a break
        word stands before it ("men altså må jeg"; after anything else it is a statement's
        word order: "i dag er det"), or at a break word before a subject ("for jeg har");
        the break words before a start belong to the clause they open."""
        if _PUNCT.search(text):
            return [text.strip()] if text.strip() else []
        raw = text.split()
        return [" ".join(raw[a:b]) for a, b in self.spans(_words(text))]

    def spans(self, w: list[str]) -> list[tuple[int, int]]:
        """The clauses of a run-on's (lower-case) words as (start, end) word ranges."""
        after_break = [False] * (len(w) + 1)
        i = 0
        while i < len(w):
            n = self._break_at(w, i)
            if n:
                for k in range(i + 1, i + n + 1):
                    after_break[k] = True
                i += n
            else:
                i += 1
        starts: set[int] = set()
        for i in range(1, len(w)):
            asks_here = w[i] in self.wh and w[i - 1] not in self.wh
            if asks_here or (after_break[i] and (self._asks(w, i) or w[i] in self.subjects)):
                starts.add(i)
        cuts: set[int] = set()
        for i in sorted(starts):
            j = i
            while j > 0 and after_break[j]:
                j -= 1  # back over the break words that open this clause
            if j > 0:
                cuts.add(j)
        bounds = [0, *sorted(cuts), len(w)]
        return [(a, b) for a, b in pairwise(bounds) if b > a]

    def asks(self, clause: str) -> bool:
        """The clause is a question once the words that open it are passed."""
        return self.asks_words(_words(clause))

    def asks_words(self, w: list[str]) -> bool:
        i = 0
        while i < len(w) and (n := self._break_at(w, i)):
            i += n
        return i < len(w) and self._asks(w, i)

    def question_tokens(self, a: Analysis) -> list[Token]:
        """The tokens of the clauses that ask, when some but not all do (else none): the
        analysis's own clauses (punctuation, "men"), a run-on's by `spans`."""
        toks = a.tokens
        groups: list[list[Token]] = []
        for t in toks:
            if not groups or t.clause != groups[-1][-1].clause:
                groups.append([])
            groups[-1].append(t)
        if len(groups) == 1:
            words = [t.text.lower() for t in toks]
            groups = [list(toks[b:e]) for b, e in self.spans(words)]
        if len(groups) < 2:
            return []
        asking = [g for g in groups if self.asks_words([t.text.lower() for t in g])]
        asking += [g for g in groups if g not in asking and g[0].text.lower() in self.starts]
        if not asking or len(asking) == len(groups):
            return []
        return [t for g in groups if g in asking for t in g]


@lru_cache(maxsize=4)
def clauses_of(vocab: Vocabulary) -> Clauses:
    """One Clauses per vocabulary (hashed by identity, as timewords caches its words); keyed
    by the object itself, so a reloaded vocabulary never meets an old one's cut words."""
    return Clauses(vocab)


def question_sentences(proc: TextProcessor, text: str) -> list[str]:
    """Sentences that ask ("?" or a question word first); a question too short to say what it
    is about ("Er det en god ide?") takes the sentence before it along. A message without
    punctuation is read as clauses, and only a clause that asks counts."""
    parts = sentences(text)
    runon = len(parts) == 1 and not _PUNCT.search(text)
    cut = clauses_of(proc.vocab)
    if runon:
        parts = cut.split(text)
    if len(parts) < 2:
        return []
    starts = proc.vocab.words("question_words")
    found: list[str] = []
    for n, sentence in enumerate(parts):
        if runon:
            if not cut.asks(sentence):
                continue
        else:
            first = sentence.split(maxsplit=1)[0].lower().strip(",.;:")
            if not sentence.endswith("?") and first not in starts:
                continue
        if proc.analyse(sentence).content_count < 2 and n > 0:
            found.append(parts[n - 1])
        found.append(sentence)
    return found if len(found) < len(parts) else []


def message_vector(
    vectorizer: Vectorizer,
    proc: TextProcessor,
    text: str,
    a: Analysis,
    whole: Sparse | None = None,
) -> Sparse:
    """`whole`: the message's own vector when already computed (training rows)."""
    if whole is None:
        whole = vectorizer.vector(raw_features(text, a))
    questions = question_sentences(proc, text)
    if not questions:
        return whole
    q = " ".join(questions)
    return combine([whole, vectorizer.vector(raw_features(q, proc.analyse(q)))])
