"""The lemma and fuzzy evidence beside the ranker's score: how much of a message an answer's
phrasings explain (spaCy lemmas, IDF-weighted), how alike they read (rapidfuzz), how much of
the message the knowledge has never seen, off-topic body parts, and which guide it names.

These are measurements, not decisions: the fusion model (fusion.py) learns what they are worth.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from bot.knowledge import Knowledge
from bot.matching.dataset import OOS, Phrasing, intent_of
from bot.matching.vectors import clauses_of
from bot.textproc import Analysis, TextProcessor, Token, find_phrase


@dataclass(frozen=True)
class Message:
    """What the evidence needs of one message, computed once."""

    analysis: Analysis
    terms: frozenset[str]
    weight: dict[str, float]
    total: float
    unseen: float  # share of the message's weight no phrasing uses
    foreign: float  # share of its weight the knowledge never wrote at all
    off_topic: float  # share of its weight that names a body part no entry speaks of
    size: int  # content words
    every: frozenset[str]  # every word's term, small words too (what intents are made of)
    named: frozenset[str]  # guides the message names by their context words
    hinted: frozenset[str]  # guides only its weak context words point to
    phases: frozenset[int] = frozenset()  # phases it names by number ("fase 2", "første fase")
    # The content terms of the clauses that ask, in a message where some clauses do not
    # (a story around its question); empty when the whole message is the question.
    question: frozenset[str] = frozenset()
    question_unseen: float = 0.0  # `unseen` of the question clauses alone (else the whole's)
    question_tokens: tuple[Token, ...] = ()  # the clauses that ask (none: all of it asks)


class Evidence:
    """Built from the phrasings a ranker was trained on (per fold when cross-validating)."""

    def __init__(
        self,
        kb: Knowledge,
        proc: TextProcessor,
        items: Sequence[Phrasing],
        state: dict[str, Any] | None = None,
    ) -> None:
        """`state`: what `state()` saved for this knowledge, so a warm start analyses nothing."""
        self.kb = kb
        self.proc = proc
        if state is not None:
            self.text_bags = {eid: frozenset(ts) for eid, ts in state["text_bags"].items()}
            self.written_by_guides = set(state["written_by_guides"])
        else:
            self.text_bags = {
                eid: frozenset(proc.analyse(e.text).terms) for eid, e in kb.entries.items()
            }
            self.written_by_guides = {t for text in _written(kb) for t in proc.analyse(text).terms}
        self.context = {g.id: self._phrases(g.context_words) for g in kb.guides.values()}
        self.phase_words = frozenset(
            terms[0] for w in kb.vocab.words("phase_words") if (terms := proc.terms_of(w))
        )
        self.roman = kb.vocab.mapping("roman_numerals")
        self.weak_context = {g.id: self._phrases(g.weak_context_words) for g in kb.guides.values()}
        # Context words that name the guide itself ("distal" in "Distal hasetendinopati").
        self.name_context: dict[str, list[tuple[str, ...]]] = {}
        for g in kb.guides.values():
            title = frozenset(proc.analyse(g.title).vocabulary)
            self.name_context[g.id] = [p for p in self.context[g.id] if set(p) <= title]
        if state is not None:
            self.docs = {label: [frozenset(d) for d in ds] for label, ds in state["docs"].items()}
            self.strings = {label: list(ss) for label, ss in state["strings"].items()}
            self.written = set(state["written"])
            self._derive()
        else:
            self._learn(items)

    def state(self) -> dict[str, Any]:
        """The analysed phrasings as JSON-able data, for the matcher's cache."""
        return {
            "text_bags": {eid: sorted(ts) for eid, ts in self.text_bags.items()},
            "written_by_guides": sorted(self.written_by_guides),
            "docs": {label: [sorted(d) for d in ds] for label, ds in self.docs.items()},
            "strings": self.strings,
            "written": sorted(self.written),
        }

    def with_phrasings(self, items: Sequence[Phrasing]) -> Evidence:
        """The same evidence over other phrasings (a cross-validation fold)."""
        other = copy.copy(self)
        other._learn(items)
        return other

    def _learn(self, items: Sequence[Phrasing]) -> None:
        proc = self.proc
        docs: dict[str, list[frozenset[str]]] = defaultdict(list)
        strings: dict[str, list[str]] = defaultdict(list)
        # Words written anywhere the model learns from: a held-out example's own words must
        # not count as known, or cross-validation would teach that known words mean in scope.
        self.written = set(self.written_by_guides)
        for p in items:
            self.written.update(proc.analyse(p.text).terms)
            if p.label == OOS:
                continue
            a = proc.analyse(p.text)
            terms = frozenset(a.all_terms if _by_every_word(p.label, a.terms) else a.terms)
            if terms:
                docs[p.label].append(terms)
                strings[p.label].append(a.normalized)
        self.docs = dict(docs)
        self.strings = dict(strings)
        self._derive()

    def _derive(self) -> None:
        """Everything that follows from the analysed phrasings without analysing again."""
        proc = self.proc
        self.bags = {label: frozenset().union(*ds) for label, ds in self.docs.items()}
        df: dict[str, int] = defaultdict(int)
        for bag in self.bags.values():
            for t in bag:
                df[t] += 1
        n = max(len(self.bags), 1)
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self.idf_unseen = math.log((n + 1) / 0.5)
        self.doc_weights = {
            label: [math.fsum(self.idf[t] for t in d) for d in ds]
            for label, ds in self.docs.items()
        }
        said = set(self.idf) | {t for bag in self.text_bags.values() for t in bag}
        said.update(t for phrases in self.context.values() for p in phrases for t in p)
        # Body parts and injuries the synonyms name but no entry speaks of ("skulder").
        self.off_topic = (
            frozenset(
                t for canon in self.kb.synonyms for t in proc.terms_of(canon) if t not in said
            )
            - proc.stop
        )

    def _phrases(self, words: Sequence[str]) -> list[tuple[str, ...]]:
        return [seq for w in words if (seq := self.proc.terms_of(w))]

    # ------------------------------------------------------------------ messages

    def message(self, a: Analysis) -> Message:
        # A compound nobody wrote ("siddeknoglesmerter") counts by its parts alone.
        drop = {t.term for t in a.tokens if t.parts and t.term not in self.idf}
        terms = frozenset(t for t in a.terms if t not in drop)
        weight = {t: self.idf.get(t, self.idf_unseen) for t in terms}
        total = math.fsum(weight.values())

        def share(ts: Iterable[str]) -> float:
            return math.fsum(weight[t] for t in ts) / total if total else 0.0

        asking = tuple(clauses_of(self.proc.vocab).question_tokens(a))
        question = self._question(asking, terms)
        q_weight = math.fsum(weight[t] for t in question)
        q_unseen = share([t for t in terms if t not in self.idf])
        if q_weight:
            q_unseen = math.fsum(weight[t] for t in question if t not in self.idf) / q_weight
        return Message(
            analysis=a,
            terms=terms,
            weight=weight,
            total=total,
            unseen=share([t for t in terms if t not in self.idf]),
            foreign=share([t for t in terms if t not in self.idf and t not in self.written]),
            off_topic=share(terms & self.off_topic),
            size=a.content_count,
            every=frozenset(a.all_terms),
            named=frozenset(self.named_guides(a)),
            hinted=frozenset(self._find(a, self.weak_context)),
            phases=frozenset(self._phases(a)),
            question=question,
            question_unseen=q_unseen,
            question_tokens=asking if question else (),
        )

    @staticmethod
    def _question(asking: Sequence[Token], terms: frozenset[str]) -> frozenset[str]:
        found = {x for t in asking if not t.stop for x in (t.term, *t.parts)} & terms
        return frozenset(found) if found != terms else frozenset()

    def _phases(self, a: Analysis) -> set[int]:
        """Phase numbers after a phase word ("fase 2", "fase nummer et", "fase III") or as an
        ordinal before it ("første fase")."""
        toks = a.tokens
        found: set[int] = set()
        for i, t in enumerate(toks):
            if t.term not in self.phase_words:
                continue
            after = (self._number(n) for n in toks[i + 1 : i + 3])
            if (n := next((x for x in after if x is not None), None)) is not None:
                found.add(n)
            elif i and toks[i - 1].number is None and toks[i - 1].term.isdigit():
                found.add(int(toks[i - 1].term))  # an ordinal, read as its digit
        return found

    def _number(self, t: Token) -> int | None:
        if t.number is not None:
            return int(t.number)
        if t.term.isdigit():
            return int(t.term)
        return self.roman.get(t.text.lower())

    def named_guides(self, a: Analysis) -> set[str]:
        """Guides the message points to by context words; when several, the ones named by
        their own name ("distal" beats "balle")."""
        named = self._find(a, self.context)
        if len(named) > 1:
            by_name = self._find(a, self.name_context)
            return by_name if len(by_name) == 1 else named
        return named

    @staticmethod
    def _find(a: Analysis, table: dict[str, list[tuple[str, ...]]]) -> set[str]:
        return {
            gid
            for gid, phrases in table.items()
            if any(p[0] in a.vocabulary and find_phrase(a.tokens, p) for p in phrases)
        }

    # ------------------------------------------------------------------ candidates

    def support(self, m: Message, label: str, entry_id: str | None) -> tuple[float, ...]:
        """(cover, best phrasing overlap, answer-text cover, fuzzy likeness, question cover,
        question's best phrasing overlap) of one class: the last two measure the clauses that
        ask alone (the whole message's values when all of it asks), so a long story's other
        clauses neither add nor dilute.

        Intents are small talk made of small words ("hvad kan du?"), so they are compared on
        every word; answers on the content words, unless the message has none ("hvorfor har
        jeg fået det?" from a user whose guide says what "det" is)."""
        terms, total, w = m.terms, m.total, m.weight
        if _by_every_word(label, m.terms):
            terms = m.every
            w = {t: self.idf.get(t, self.idf_unseen) for t in terms}
            total = math.fsum(w.values())
        if not total:
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        bag = self.bags.get(label, frozenset())
        cover = math.fsum(w[t] for t in terms & bag) / total
        text = self.text_bags.get(entry_id or "", frozenset())
        text_cover = math.fsum(w[t] for t in terms & text) / total
        best, best_i = self._best_overlap(terms, w, total, label)
        like = 0.0
        if best_i >= 0:
            like = fuzz.token_sort_ratio(m.analysis.normalized, self.strings[label][best_i]) / 100
        q_cover, q_best = cover, best
        q_terms = m.question if not _by_every_word(label, m.terms) else frozenset()
        if q_total := math.fsum(w[t] for t in q_terms):
            q_cover = math.fsum(w[t] for t in q_terms & bag) / q_total
            q_best, _ = self._best_overlap(q_terms, w, q_total, label)
        return (cover, best, text_cover, like, q_cover, q_best)

    def _best_overlap(
        self, terms: frozenset[str], w: dict[str, float], total: float, label: str
    ) -> tuple[float, int]:
        """The best weighted Jaccard overlap of `terms` with one of the class's phrasings,
        and that phrasing's index (-1: none shares a term)."""
        best, best_i = 0.0, -1
        docs = zip(self.docs.get(label, ()), self.doc_weights.get(label, ()), strict=True)
        for i, (d, d_weight) in enumerate(docs):
            inter = terms & d
            if inter:
                ov = math.fsum(w[t] for t in inter)
                union = total + d_weight - ov  # weighted Jaccard: |m ∪ d| = |m|+|d|-|m ∩ d|
                if ov / union > best:
                    best, best_i = ov / union, i
        return best, best_i


def _by_every_word(label: str, content: frozenset[str] | Sequence[str]) -> bool:
    """Small talk, and a question made of small words only, is compared on every word."""
    return intent_of(label) is not None or not content


def _written(kb: Knowledge) -> list[str]:
    """What the knowledge writes besides its phrasings: guides, titles, answers, keywords."""
    texts = list(kb.guide_texts.values())
    for e in kb.entries.values():
        texts += [e.title, e.text, *e.keywords]
    return texts
