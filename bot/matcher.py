"""Decide what a message is: red flag, intent, knowledge answer, question back, or fallback.

Every searchable entry scores a message 0-100 from IDF-weighted lemma overlap
(recall of its best example phrasing, precision over everything the entry
says) blended with rapidfuzz similarity. A wrong confident answer is worse
than an honest fallback, so words the knowledge has never seen count against
a match, and close calls become questions (clarify) instead of guesses.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rapidfuzz import fuzz

from bot.knowledge import Knowledge, RedFlag
from bot.textproc import (
    Analysis,
    TextProcessor,
    Token,
    build_processor,
    find_phrase,
    save_analyses,
)

Kind = Literal["answer", "clarify", "fallback", "red_flag", "intent"]

# Tuned on shared/eval/dev.yaml and tests/eval/cases.yaml (see bench/ and tests/).
ANSWER_MIN = 50.0  # below: fallback
CLARIFY_MARGIN = 3.0  # two different topics this close (and neither sure): ask which
SURE = 78.0  # at or above: answer even if another topic is close
PAIR_MARGIN = 6.0  # parallel entries of the two hamstring guides closer than this: ask which guide
CONTEXT_BOOST = 6.0
INTENT_MIN = 50.0
INTENT_SMALL_WORD = 0.35  # weight of small words (jeg, må, for) in intent matching
TITLE_FACTOR = 0.95
BETA = 0.5  # weight of phrasing words the message lacks
ALPHA_MIN = 0.2  # weight of unexplained words in long messages (1.0 in short ones)
ALPHA_SLOPE = 0.08
OFF_TOPIC_ALPHA = 1.0  # weight of off-topic words (synonyms.yaml body parts), at any length
MAX_CHARS = 1500
FOCUS_WEIGHT = 2.0  # a long message's question words against its story
SPEAKER_WEIGHT = 0.5
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
WEEK_WORDS = {"uge": 1.0, "maned": 4.3, "dag": 1 / 7, "ar": 52.0}


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    guide: str
    score: float  # 0-100


@dataclass(frozen=True)
class Decision:
    kind: Kind
    guide: str | None
    entry_id: str | None
    intent_id: str | None
    red_flags: tuple[str, ...]
    score: float
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class _Item:
    key: str
    guide: str | None
    topic: str | None
    docs: tuple[frozenset[str], ...]
    doc_strings: tuple[str, ...]
    bag: frozenset[str]
    text_bag: frozenset[str]
    factors: tuple[float, ...]


@dataclass(frozen=True)
class _Flag:
    flag: RedFlag
    groups: tuple[tuple[tuple[str, ...], ...], ...]
    none_of: tuple[tuple[str, ...], ...]


class Matcher:
    """Built from one Knowledge; build a new one on reload (that also drops the result cache)."""

    def __init__(self, kb: Knowledge, proc: TextProcessor) -> None:
        self.kb = kb
        self.proc = proc
        self.entries = [self._item(eid, kb.entry_guide[eid]) for eid in kb.entries]
        self.intents = [self._intent_item(i.id) for i in kb.intents]
        self.vocab_terms = proc.known_terms
        self.idf, self.idf_unknown = _idf(self.entries)
        # Intents are small talk made of small words: they get all words and their own weights.
        self.intent_idf, self.intent_idf_unknown = _idf(self.intents)
        self.doc_weight = {it.key: tuple(self._weight(d) for d in it.docs) for it in self.entries}
        self.doc_weight.update(
            {it.key: tuple(self._weight(d, True) for d in it.docs) for it in self.intents}
        )
        # Postings: term -> phrasings (entry number, phrasing number), and -> entries.
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.in_bag: dict[str, list[int]] = defaultdict(list)
        self.in_text: dict[str, list[int]] = defaultdict(list)
        for n, it in enumerate(self.entries):
            for i, d in enumerate(it.docs):
                for t in d:
                    self.postings[t].append((n, i))
            for t in it.bag:
                self.in_bag[t].append(n)
            for t in it.text_bag:
                self.in_text[t].append(n)
        self._build_arrays()
        self.context: dict[str, list[tuple[str, ...]]] = {
            g.id: [seq for w in g.context_words if (seq := self._phrase(w))]
            for g in kb.guides.values()
        }
        self.weak_context: dict[str, list[tuple[str, ...]]] = {
            g.id: [seq for w in g.weak_context_words if (seq := self._phrase(w))]
            for g in kb.guides.values()
        }
        # Context words that name the guide itself ("distal" in "Distal hasetendinopati"): a
        # message naming one guide so, and another only by a body part, means the named one.
        self.name_context: dict[str, list[tuple[str, ...]]] = {}
        for g in kb.guides.values():
            title = frozenset(proc.analyse(g.title).vocabulary)
            self.name_context[g.id] = [p for p in self.context[g.id] if set(p) <= title]
        self.flags = [self._compile_flag(rf) for rf in kb.red_flags]
        # Body parts and injuries the synonyms name but no entry speaks of ("knæskal",
        # "skulder"): in a long message they still say the story is about something else.
        said = set(self.in_bag) | set(self.in_text)
        said.update(t for phrases in self.context.values() for p in phrases for t in p)
        self.off_topic = (
            frozenset(t for canon in kb.synonyms for t in proc.terms_of(canon) if t not in said)
            - proc.stop
        )
        self.reporting = frozenset(
            t for w in kb.vocab.words("reporting_verbs") for t in proc.terms_of(w)
        )
        self.question_words = kb.vocab.words("question_words")
        self.subclause_starts = kb.vocab.words("subclause_starts")
        self._cache: dict[tuple[str, str | None], Decision] = {}
        self._wmap_key: tuple[frozenset[str], bool] | None = None
        self._wmap_val: dict[str, float] = {}

    def _build_arrays(self) -> None:
        """Flat arrays over every phrasing, so ranking a message is a few vector operations.

        Entry n's phrasings are contiguous (from `_starts[n]`); per term, the phrasings and
        entries it occurs in are index arrays.
        """
        doc_entry: list[int] = []
        doc_factor: list[float] = []
        doc_wt: list[float] = []
        starts: list[int] = []
        flat: dict[tuple[int, int], int] = {}
        for n, it in enumerate(self.entries):
            starts.append(len(doc_entry))
            for i in range(len(it.docs)):
                flat[(n, i)] = len(doc_entry)
                doc_entry.append(n)
                doc_factor.append(it.factors[i])
                doc_wt.append(self.doc_weight[it.key][i])
        self._doc_entry = np.array(doc_entry, dtype=np.intp)
        self._doc_factor = np.array(doc_factor)
        self._doc_wt = np.array(doc_wt)
        self._starts = np.array(starts, dtype=np.intp)
        self._post_idx = {
            t: np.array([flat[k] for k in keys], dtype=np.intp) for t, keys in self.postings.items()
        }
        self._bag_idx = {t: np.array(ns, dtype=np.intp) for t, ns in self.in_bag.items()}
        self._text_idx = {t: np.array(ns, dtype=np.intp) for t, ns in self.in_text.items()}

    @classmethod
    def build(cls, kb: Knowledge, cache_dir: Path | None = None) -> Matcher:
        matcher = cls(kb, build_processor(kb, cache_dir))
        save_analyses(matcher.proc)
        return matcher

    # ------------------------------------------------------------------ building

    def _terms(self, text: str) -> frozenset[str]:
        return frozenset(self.proc.analyse(text).terms)

    def _phrase(self, text: str) -> tuple[str, ...]:
        return tuple(t.term for t in self.proc.analyse(text).tokens)

    def _item(self, eid: str, guide: str) -> _Item:
        e = self.kb.entries[eid]
        phrasings = [*e.examples, e.title, *e.keywords]
        docs = tuple(self._terms(p) for p in phrasings)
        # Titles and keywords are not how people ask: an example phrasing wins a tie.
        factors = tuple(1.0 if i < len(e.examples) else TITLE_FACTOR for i in range(len(docs)))
        strings = tuple(self.proc.analyse(p).normalized for p in phrasings)
        bag = frozenset().union(*docs)
        return _Item(eid, guide, e.topic, docs, strings, bag, self._terms(e.text) - bag, factors)

    def _intent_item(self, iid: str) -> _Item:
        intent = next(i for i in self.kb.intents if i.id == iid)
        docs = tuple(frozenset(self.proc.analyse(p).all_terms) for p in intent.examples)
        strings = tuple(self.proc.analyse(p).normalized for p in intent.examples)
        ones = tuple(1.0 for _ in docs)
        return _Item(iid, None, None, docs, strings, frozenset().union(*docs), frozenset(), ones)

    def _compile_flag(self, rf: RedFlag) -> _Flag:
        groups = tuple(tuple(s for t in g if (s := self._phrase(t))) for g in rf.all_of)
        return _Flag(rf, groups, tuple(s for t in rf.none_of if (s := self._phrase(t))))

    def _w(self, term: str, intents: bool = False) -> float:
        if intents:
            iw = self.intent_idf.get(term, self.intent_idf_unknown)
            return iw * INTENT_SMALL_WORD if term in self.proc.stop else iw
        w = self.idf.get(term)
        if w is not None:
            return w
        # Words no entry uses point away from the knowledge; never-seen words even more.
        return self.idf_unknown * (0.7 if term in self.vocab_terms else 0.9)

    def _wmap(self, q: frozenset[str], intents: bool) -> dict[str, float]:
        """Weights of the message's terms, computed once per message."""
        key = (q, intents)
        if self._wmap_key != key:
            self._wmap_key = key
            self._wmap_val = {t: self._w(t, intents) for t in q}
        return self._wmap_val

    def _weight(self, terms: frozenset[str], intents: bool = False) -> float:
        return sum(self._w(t, intents) for t in terms) or 1.0

    # ------------------------------------------------------------------ scoring

    def _score(
        self,
        it: _Item,
        q: frozenset[str],
        wq: float,
        qstr: str,
        fuzzy: bool,
        intents: bool = False,
        weights_of: dict[str, float] | None = None,
    ) -> float:
        """Weighted Tversky similarity of the message and the entry's best phrasing, plus fuzz.

        Query words the entry never uses count against it (fully in short messages, less in
        long ones, where context is expected); words of the phrasing the message lacks count
        half.
        """
        w = weights_of if weights_of is not None else self._wmap(q, intents)
        explained = sum(w[t] for t in q & it.bag) + 0.5 * sum(w[t] for t in q & it.text_bag)
        unexplained = max(wq - explained, 0.0)
        alpha = 1.0 if intents else min(1.0, max(ALPHA_MIN, 1.0 - ALPHA_SLOPE * (len(q) - 3)))
        off = 0.0 if intents else sum(w[t] for t in q & self.off_topic)
        penalty = alpha * max(unexplained - off, 0.0) + OFF_TOPIC_ALPHA * off
        best = 0.0
        best_i = -1
        weights = self.doc_weight[it.key]
        factors = it.factors
        for i, d in enumerate(it.docs):
            inter = q & d
            if not inter:
                continue
            ov = sum(w[t] for t in inter)
            sim = factors[i] * ov / (ov + penalty + BETA * (weights[i] - ov))
            if sim > best:
                best, best_i = sim, i
        if best_i < 0:
            return 0.0
        score = 100.0 * best
        if fuzzy:
            score = 0.8 * score + 0.2 * fuzz.token_sort_ratio(qstr, it.doc_strings[best_i])
        return score

    def _query(self, a: Analysis) -> tuple[frozenset[str], float, str]:
        # A compound the knowledge never wrote ("siddeknoglesmerter") counts by its parts, not as
        # a foreign word; named off-topic compounds (synonyms.yaml: "løberknæ") still count.
        q = frozenset(_known_wholes(a.terms, a, self.vocab_terms))
        return q, self._weight(q), a.normalized

    def rank(self, text: str) -> list[tuple[str, float]]:
        """Every entry that shares a term with the message, best first (ids and raw scores)."""
        a = self.proc.analyse(clip(text))
        return self._rank(a)

    def _rank(self, a: Analysis, scale: dict[str, float] | None = None) -> list[tuple[str, float]]:
        """Rank entries for the message; `scale` multiplies some terms' weights (a long
        message's question words up, the story's speakers down)."""
        q, wq, qstr = self._query(a)
        if not q or not self.entries:
            return []
        w = self._wmap(q, False)
        if scale and not scale.keys().isdisjoint(q):
            w = {t: wt * scale.get(t, 1.0) for t, wt in w.items()}
            wq = sum(w.values())
        overlap = np.zeros(len(self._doc_entry))
        explained = np.zeros(len(self.entries))
        for t in q:
            wt = w[t]
            if (idx := self._post_idx.get(t)) is not None:
                overlap[idx] += wt
            if (idx := self._bag_idx.get(t)) is not None:
                explained[idx] += wt
            if (idx := self._text_idx.get(t)) is not None:
                explained[idx] += 0.5 * wt
        alpha = min(1.0, max(ALPHA_MIN, 1.0 - ALPHA_SLOPE * (len(q) - 3)))
        off = sum(w[t] for t in q & self.off_topic)
        penalty = alpha * np.maximum(wq - off - explained, 0.0) + OFF_TOPIC_ALPHA * off
        denominator = overlap + penalty[self._doc_entry] + BETA * (self._doc_wt - overlap)
        sim = np.where(overlap > 0, self._doc_factor * overlap / denominator, 0.0)
        best = np.maximum.reduceat(sim, self._starts)
        order = np.argsort(-best, kind="stable")[:12]
        fine = [
            (self._score(self.entries[n], q, wq, qstr, True, False, w), self.entries[n].key)
            for n in order.tolist()
            if best[n] > 0
        ]
        fine.sort(key=lambda p: -p[0])
        return [(k, s) for s, k in fine]

    def _focused_rank(self, text: str, a: Analysis) -> list[tuple[str, float]]:
        """Rank the message with its question words weighted up: in a long message the story
        ("I run 40 km a week...") drowns the question. The question is never ranked alone: a
        story about a blister makes "how do I heal faster?" no tendon question."""
        focus = self._question_terms(text)
        if not focus:
            return self._rank(a)
        scale = {t: FOCUS_WEIGHT for t in focus}
        scale.update({t: SPEAKER_WEIGHT for t in self._speakers(a)})
        return self._rank(a, scale)

    def _speakers(self, a: Analysis) -> set[str]:
        """Content words before a reporting verb in its clause: "min fysioterapeut nævnte"."""
        found: set[str] = set()
        toks = a.tokens
        for i, tok in enumerate(toks):
            if tok.term not in self.reporting:
                continue
            for before in reversed(toks[:i]):
                if before.clause != tok.clause:
                    break
                if not before.stop:
                    found.add(before.term)
                    found.update(before.parts)
        return found

    def _question_terms(self, text: str) -> frozenset[str]:
        """Content terms of a multi-sentence message's question sentences ("?" or a question
        word first); a question too short to say what it is about ("Er det en god ide?")
        takes the sentence before it along."""
        sentences = [s.strip() for s in _SENTENCE.split(text) if s.strip()]
        if len(sentences) < 2:
            return frozenset()
        focus: set[str] = set()
        for n, sentence in enumerate(sentences):
            first = sentence.split(maxsplit=1)[0].lower().strip(",.;:")
            if not sentence.endswith("?") and first not in self.question_words:
                continue
            sa = self.proc.analyse(sentence)
            focus.update(sa.terms)
            if sa.content_count >= 2:
                continue
            for before in reversed(sentences[:n]):
                ba = self.proc.analyse(before)
                if ba.content_count >= 2:
                    focus.update(ba.terms)
                    break
        return frozenset(focus)

    def _intent(self, a: Analysis) -> tuple[str | None, float]:
        q = frozenset(_known_wholes(a.all_terms, a, self.intent_idf))
        if not q:
            return None, 0.0
        wq, qstr = self._weight(q, True), a.normalized
        best: tuple[str | None, float] = (None, 0.0)
        for it in self.intents:
            s = self._score(it, q, wq, qstr, True, True)
            if s > best[1]:
                best = (it.key, s)
        return best

    # ------------------------------------------------------------------ context

    def _context_guides(self, a: Analysis, weak: bool = False, names: bool = False) -> set[str]:
        found = set()
        table = self.name_context if names else self.weak_context if weak else self.context
        for gid, phrases in table.items():
            if any(p[0] in a.vocabulary and find_phrase(a.tokens, p) for p in phrases):
                found.add(gid)
        return found

    # ------------------------------------------------------------------ red flags

    def red_flags(self, text: str) -> tuple[str, ...]:
        a = self.proc.analyse(clip(text))
        return tuple(f.flag.id for f in self.flags if self._fires(f, a))

    def _fires(self, f: _Flag, a: Analysis) -> bool:
        toks = a.tokens
        vocab = a.vocabulary
        # Quick reject: every group needs a phrase whose words all occur somewhere.
        for group in f.groups:
            if not any(all(t in vocab for t in seq) for seq in group):
                return False
        for seq in f.none_of:
            if seq[0] in vocab and find_phrase(toks, seq):
                return False
        for group in f.groups:
            if not any(all(t in vocab for t in seq) and self._affirmed(toks, seq) for seq in group):
                return False
        if f.flag.min_weeks is not None:
            weeks = _durations(toks)
            if not weeks or max(weeks) < f.flag.min_weeks:
                return False
        return True

    def _affirmed(self, toks: Sequence[Token], seq: tuple[str, ...]) -> bool:
        """The phrase occurs and is not negated nearby in its clause ("det vækker mig ikke")."""
        if any(t in self.proc.negators for t in seq):
            return bool(find_phrase(toks, seq))
        return any(not self._negated(toks, i, len(seq)) for i in find_phrase(toks, seq))

    def _negated(self, toks: Sequence[Token], i: int, n: int) -> bool:
        """A negator up to three words before ("ingen hævelse"), or after across only small words
        ("det vækker mig ikke", but not "knæet aftager ikke"), in the same clause ("om natten at
        jeg ikke kan sove": the "ikke" belongs to the next clause)."""
        clause = toks[i].clause
        for t in toks[max(0, i - 3) : i]:
            if t.clause == clause and t.term in self.proc.negators:
                return True
        for t in toks[i + n : i + n + 3]:
            if t.clause != clause or t.text in self.subclause_starts:
                break
            if t.term in self.proc.negators:
                return True
            if not t.stop:
                break
        return False

    # ------------------------------------------------------------------ decision

    def decide(self, text: str, guide: str | None = None) -> Decision:
        """The decision for one message (cached; the cache lives as long as this Matcher)."""
        if not isinstance(text, str):
            text = ""
        key = (text[:MAX_CHARS], guide)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            hit = self._cache[key] = self._decide(key[0], guide)
        return hit

    def _decide(self, text: str, guide: str | None = None) -> Decision:
        a = self.proc.analyse(clip(text))
        flags = tuple(f.flag.id for f in self.flags if self._fires(f, a))
        ranked = self._focused_rank(clip(text), a)
        know = self._knowledge(a, ranked, guide)
        if flags:
            if know.kind == "answer":
                return Decision(
                    "red_flag", know.guide, know.entry_id, None, flags, know.score, know.candidates
                )
            return Decision("red_flag", None, None, None, flags, know.score, know.candidates)
        intent_id, intent_score = self._intent(a)
        if intent_id is not None and intent_score >= INTENT_MIN and intent_score >= know.score - 5:
            return Decision("intent", None, None, intent_id, (), round(intent_score, 1), ())
        return know

    def _knowledge(
        self, a: Analysis, ranked: list[tuple[str, float]], guide: str | None
    ) -> Decision:
        kb = self.kb
        named = self._context_guides(a)
        if len(named) > 1:
            by_name = self._context_guides(a, names=True)
            named = by_name if len(by_name) == 1 else named
        ctx = next(iter(named)) if len(named) == 1 else None
        if ctx is None and guide in kb.guides and (not named or guide in named):
            ctx = guide
        if ctx is None and not named:
            weak = self._context_guides(a, weak=True)
            ctx = next(iter(weak)) if len(weak) == 1 else None
        best_of: dict[str, float] = {}
        for eid, s in ranked:
            topic = kb.entries[eid].topic
            if topic is not None:
                best_of[topic] = max(best_of.get(topic, 0.0), s)
        scored: list[tuple[float, str]] = []
        for eid, s in ranked:
            g = kb.entry_guide[eid]
            topic = kb.entries[eid].topic
            if ctx is not None and g == ctx:
                # The context picks its own guide's entry of a parallel pair.
                if topic is not None:
                    s = max(s, best_of[topic])
                s += CONTEXT_BOOST
            elif ctx in named and kb.guides[ctx].hamstring and kb.guides[g].hamstring:
                # The message names one hamstring guide: the other one's entries are unlikely.
                s -= CONTEXT_BOOST
            scored.append((s, eid))
        scored.sort(key=lambda p: -p[0])
        cands = tuple(
            Candidate(eid, kb.entry_guide[eid], round(min(s, 100.0), 1)) for s, eid in scored[:6]
        )
        if not scored or scored[0][0] < ANSWER_MIN:
            return Decision(
                "fallback",
                None,
                None,
                None,
                (),
                _clip100(scored[0][0]) if scored else 0.0,
                _distinct(cands, 3),
            )
        top_s, top = scored[0]
        topic = kb.entries[top].topic
        # Parallel entries of the hamstring guides: the context picks one, else the wording must.
        if topic is not None:
            pair = [(s, e) for s, e in scored if kb.entries[e].topic == topic and e != top]
            if pair and ctx is None and top_s - pair[0][0] < PAIR_MARGIN:
                both = (cands_for(kb, top, top_s), cands_for(kb, pair[0][1], pair[0][0]))
                return Decision("clarify", None, None, None, (), _clip100(top_s), both)
        # Two different topics this close: ask which one was meant.
        others = [(s, e) for s, e in scored[1:] if topic is None or kb.entries[e].topic != topic]
        if others and top_s < SURE and top_s - others[0][0] < CLARIFY_MARGIN:
            picks = [cands_for(kb, top, top_s)] + [
                cands_for(kb, e, s) for s, e in others[:2] if top_s - s < CLARIFY_MARGIN
            ]
            return Decision("clarify", None, None, None, (), _clip100(top_s), tuple(picks))
        return Decision("answer", kb.entry_guide[top], top, None, (), _clip100(top_s), cands)


def cands_for(kb: Knowledge, eid: str, score: float) -> Candidate:
    return Candidate(eid, kb.entry_guide[eid], round(min(score, 100.0), 1))


def _known_wholes(terms: list[str], a: Analysis, idf: Container[str]) -> list[str]:
    """A compound nobody wrote ("byebye", "arbejdsstress") stands for its parts only."""
    drop = {t.term for t in a.tokens if t.parts and t.term not in idf}
    return [t for t in terms if t not in drop]


def _clip100(score: float) -> float:
    return round(min(max(score, 0.0), 100.0), 1)


def _idf(items: Sequence[_Item]) -> tuple[dict[str, float], float]:
    """Inverse document frequency over items (an item's phrasings are one document)."""
    df: dict[str, int] = defaultdict(int)
    for it in items:
        for t in it.bag:
            df[t] += 1
    n = max(len(items), 1)
    return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}, math.log((n + 1) / 0.5)


def _distinct(cands: tuple[Candidate, ...], n: int) -> tuple[Candidate, ...]:
    return cands[:n]


def clip(text: str) -> str:
    """Long messages are cut (the question is rarely after 1,500 characters)."""
    return text[:MAX_CHARS] if isinstance(text, str) else ""


def _durations(toks: Sequence[Token]) -> list[float]:
    """Weeks mentioned in the message ("7 uger", "to måneder"; "flere måneder" = 8)."""
    weeks: list[float] = []
    for i, t in enumerate(toks):
        unit = WEEK_WORDS.get(t.term)
        if unit is None:
            continue
        for back in (1, 2):
            if i - back >= 0 and toks[i - back].number is not None:
                weeks.append(float(toks[i - back].number or 0) * unit)
                break
        else:
            if unit >= 4 and re.fullmatch(r"m[aå]+neder|months|years|år", t.text):
                weeks.append(8.0 * (unit / 4.3))
    return weeks
