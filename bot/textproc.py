"""Danish text processing: turn what a runner types into comparable terms.

spaCy's blank Danish pipeline tokenises; lemmas come from the compact lemma table
(bot/lemmas.py). On top: lowercasing, æ/ø/å folding (ae/oe/aa or dropped letters),
lemma fixes from knowledge/lang/lemmas.yaml, compound split/join against the
knowledge vocabulary, synonyms and slang from knowledge/synonyms.yaml, small words
from knowledge/lang/, and rapidfuzz typo correction.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein

from bot.fold import AEOEAA, clean, fold, spell_out, unfold
from bot.fork import beside
from bot.knowledge import Knowledge
from bot.lemmas import (
    LINKS,
    PIPELINE_VERSION,
    CompactTable,
    cached_compact_table,
    lookups_version,
    make_compact_table,
    split_compound,
    write_cache,
)
from bot.vocabulary import Vocabulary

# Punctuation that ends a clause; the words that do ("men") are in knowledge/lang/.
CLAUSE_PUNCT = frozenset({",", ".", "!", "?", ";", ":", "\n"})


def plain_stop_words(vocab: Vocabulary) -> frozenset[str]:
    """spaCy's Danish stop words, corrected by knowledge/lang/small_words.yaml."""
    from spacy.lang.da.stop_words import STOP_WORDS

    # A negator carries meaning: "hvad skal jeg ikke gøre" is not "hvad skal jeg gøre".
    keep = vocab.words("keep_words") | vocab.words("negators")
    extra = vocab.words("english_stop_words") | vocab.words("fillers")
    return frozenset((set(STOP_WORDS) - keep) | extra)


def stop_words(vocab: Vocabulary) -> frozenset[str]:
    words = plain_stop_words(vocab)
    return frozenset(words | {fold(w) for w in words})


# ----------------------------------------------------------------- normalisation

FUZZY_MIN = 4  # shorter words are corrected only when exact
FUZZY_FREE_START = 9  # shorter words must keep their first letter to be corrected


def _light(word: str) -> str:
    return spell_out(word)


def _clashes(typed: str, form: str) -> bool:
    """Both words spell æ/ø/å, and differently ("læst" vs "låst"): not the same word."""
    return (
        not AEOEAA.isdisjoint(typed)
        and not AEOEAA.isdisjoint(form)
        and _light(typed) != _light(form)
    )


# ------------------------------------------------------------------- tokenising

_tokenizer: Any = None


def load_tokenizer() -> Any:
    """spaCy's Danish tokenizer (blank pipeline), loaded once per process."""
    global _tokenizer
    if _tokenizer is None:
        import spacy

        _tokenizer = spacy.blank("da").tokenizer
    return _tokenizer


_GLUED = re.compile(r"([^\W\d_]{2,})(\d+)|(\d+)([^\W\d_]{1,3})")  # "fase3", "10km"


def _tokenize(text: str) -> list[str]:
    words: list[str] = []
    for tok in load_tokenizer()(text):
        t = tok.text
        # "SI-led", "7-9", "proksimal-": keep numbers whole, split words on hyphens and slashes.
        if re.fullmatch(r"[\d.,\-–/]+", t):
            words.append(t)
            continue
        for piece in re.split(r"[-/+']", t):
            # Typed without the space: "fase3", "uge6", "10km" are a word and a number.
            if glued := _GLUED.fullmatch(piece):
                words.extend(p for p in glued.groups() if p)
            elif piece:
                words.append(piece)
    return words


# ------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Token:
    """One word of a message: what was typed and the term it stands for."""

    text: str
    term: str
    parts: tuple[str, ...] = ()
    stop: bool = False
    known: bool = True
    clause: int = 0
    number: float | None = None


@dataclass(frozen=True)
class Analysis:
    """A message as tokens; scoring views of it are derived (and cached) from them."""

    tokens: tuple[Token, ...]

    @property
    def terms(self) -> list[str]:
        """Content terms in order (compound parts included), for scoring."""
        out: list[str] = []
        for t in self.tokens:
            if t.stop:
                continue
            out.append(t.term)
            out.extend(t.parts)
        return out

    @functools.cached_property
    def vocabulary(self) -> frozenset[str]:
        """Every term and compound part in the message (a quick filter for phrase search)."""
        return frozenset(self.all_terms)

    @property
    def all_terms(self) -> list[str]:
        """Every word's term, small words included (for short conversational messages)."""
        out: list[str] = []
        for t in self.tokens:
            out.append("<num>" if t.number is not None and t.text[:1].isdigit() else t.term)
            out.extend(t.parts)
        return out

    @property
    def normalized(self) -> str:
        """The message as one string of terms, for fuzzy string comparison."""
        return " ".join(t.term for t in self.tokens)

    @property
    def content_count(self) -> int:
        return sum(1 for t in self.tokens if not t.stop and t.number is None)


_NUM = re.compile(r"^\d+(?:[.,:]\d+)?(?:[-–]\d+(?:[.,:]\d+)?)?$")  # 40, 7-9, 19:30


def number_terms(vocab: Vocabulary) -> dict[str, str]:
    """Number words and ordinals that name a phase or a count, as their digit ("fase to")."""
    numbers = vocab.mapping("number_words")
    return {
        **{word: str(n) for word, n in numbers.items() if 2 <= n <= 6},
        **{word: str(n) for word, n in vocab.mapping("ordinals").items() if n <= 4},
        **{word: str(n) for word, n in vocab.mapping("english_numbers").items()},
    }


class TextProcessor:
    """Analyses messages into terms; build once per Knowledge (it caches per word)."""

    def __init__(
        self,
        table: CompactTable,
        synonyms: dict[str, list[str]],
        vocab: Vocabulary,
        preloaded: dict[str, str] | None = None,
    ) -> None:
        self.table = table
        # Base analyses of the knowledge's own phrasings, cached on disk with the table, each
        # kept as its JSON text: a start uses a third of them, so each is decoded when first
        # used (plain strings also cost the garbage collector nothing to keep).
        self.preloaded: dict[str, str] = preloaded or {}
        self.recorded: dict[str, list[Token]] = {}
        self.cache_path: Path | None = None
        self.vocab = vocab
        self.negators = vocab.words("negators")
        self.clause_breaks = CLAUSE_PUNCT | vocab.words("clause_words")
        self.numbers = vocab.mapping("number_words")
        self.number_terms = number_terms(vocab)
        english = vocab.words("english_stop_words")
        self.stop = stop_words(vocab)
        self._stop_exact = plain_stop_words(vocab)
        self._skel: dict[str, str] = {}
        for form in sorted(table.lemmas, key=lambda f: (-table.freq.get(f, 0), f)):
            self._skel.setdefault(fold(form), form)
        # Typo candidates: the knowledge's own words, by skeleton length.
        self._by_len: dict[int, list[tuple[str, str]]] = {}
        for w in sorted(table.freq, key=lambda f: (-table.freq[f], f)):
            if len(w) >= 4 and not w.isdigit():
                self._by_len.setdefault(len(fold(w)), []).append((fold(w), w))
        self.known_terms = {fold(lemma) for lemma in table.lemmas.values()}
        self._resolve = lru_cache(maxsize=32768)(self._resolve_uncached)
        # Stop words by their terms too ("må" -> "måtte"), so inflected small words stay small.
        self.stop = self.stop | {
            self._resolve(w)[0] for w in self.stop if w in table.lemmas and w not in english
        }
        self.synonyms: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._max_syn = 1
        self._syn_len: dict[str, int] = {}  # first term of a variant -> longest variant
        for canon, variants in synonyms.items():
            target = tuple(t.term for t in self._base(canon))
            for v in [canon, *variants]:
                seq = tuple(t.term for t in self._base(v))
                if seq and target and seq != target:
                    self.synonyms[seq] = target
                    self._max_syn = max(self._max_syn, len(seq))
                    self._syn_len[seq[0]] = max(self._syn_len.get(seq[0], 0), len(seq))
        # Large enough for every phrasing of the knowledge: training reads each several times.
        self.analyse = lru_cache(maxsize=65536)(self._analyse_uncached)

    # -- words

    def _lemma_of(self, form: str) -> tuple[str, tuple[str, ...]]:
        lemma = self.table.lemmas.get(form, form)
        parts = self.table.compounds.get(form) or self.table.compounds.get(lemma) or []
        return lemma, tuple(fold(p) for p in parts)

    def _known_form(self, word: str) -> str | None:
        if word in self.table.lemmas:
            return word
        form = self._skel.get(fold(word))
        # Typed æ/ø/å are meant: "læst" is not "låst", though both fold to "last".
        if form is not None and _clashes(word, form):
            return None
        return form

    def _fuzzy(self, word: str) -> str | None:
        """Nearest knowledge word within a length-aware edit distance (short words: exact only)."""
        sk = fold(word)
        # "massgae": folding "ae" first would hide a plain swap of two letters.
        light = spell_out(word)
        lower = word.lower()
        typed_aeoeaa = not AEOEAA.isdisjoint(lower)
        n = len(sk)
        if n < FUZZY_MIN:
            return None
        limit = 1 if n < 10 else (2 if n < 14 else 3)
        best: tuple[int, int, str] | None = None
        for length in range(n - limit, n + limit + 2):
            for rank, (cand_sk, cand) in enumerate(self._by_len.get(length, ())):
                # A wrong first letter is rare in typos and common between real words
                # ("nakken" is not "bakken").
                if n < FUZZY_FREE_START and cand_sk[0] != sk[0]:
                    continue
                # Four letters leave little room: only the last may differ ("søvm", not "heat").
                if n == FUZZY_MIN and cand_sk[:3] != sk[:3]:
                    continue
                d = DamerauLevenshtein.distance(sk, cand_sk, score_cutoff=limit)
                if d > limit and light != sk:
                    d = DamerauLevenshtein.distance(light, cand_sk, score_cutoff=limit)
                if d <= limit and typed_aeoeaa:
                    # Typed æ/ø/å count as letters of their own ("læst" is not "laast").
                    raw = unfold(cand)
                    d = DamerauLevenshtein.distance(lower, raw, score_cutoff=limit)
                    if n == FUZZY_MIN and raw[:3] != lower[:3]:
                        d = limit + 1
                if d <= limit and (best is None or (d, rank) < best[:2]):
                    best = (d, rank, cand)
        return best[2] if best else None

    def _resolve_uncached(self, word: str) -> tuple[str, tuple[str, ...], bool]:
        """word -> (term, compound part terms, known?). A real Danish word the knowledge does
        not use stays itself, unknown: only a word no dictionary has is a typo to correct."""
        form = self._known_form(word)
        if form is None:
            split = split_compound(
                word,
                lambda h: self._known_form(h) is not None,
                lambda m: self._known_form(m) is not None,
                lambda m: m in self.table.freq,
            )
            if split:
                mod, head = split
                mod_lemma, _ = self._lemma_of(self._known_form(mod) or mod)
                head_lemma, _ = self._lemma_of(self._known_form(head) or head)
                return fold(mod + head_lemma), (fold(mod_lemma), fold(head_lemma)), True
            if self.table.is_real(word):
                return fold(word), (), False
            form = self._fuzzy(word)
        if form is None:
            return fold(word), (), False
        lemma, parts = self._lemma_of(form)
        return fold(lemma), parts, True

    def _is_stop(self, raw: str, term: str) -> bool:
        """Small words by their typed form or term; a word typed with æ/ø/å only by itself or
        its lemma (the folded "øm" is "om", which is small; "øm" is not)."""
        if raw in self.stop:
            return True
        if not AEOEAA.isdisjoint(raw):
            form = self._known_form(raw) or raw
            return self.table.lemmas.get(form, form) in self._stop_exact
        return term in self.stop

    def _base(self, text: str) -> list[Token]:
        """Tokens with lemmas, before synonyms (memoised for the knowledge's phrasings)."""
        hit = self.recorded.get(text)
        if hit is None:
            hit = _tokens_of(self.preloaded.get(text)) or self._base_uncached(text)
        self.recorded[text] = hit
        return hit

    def stop_recording(self) -> dict[str, list[Token]]:
        """The base analyses done so far (the knowledge's phrasings), for the disk cache."""
        done, self.recorded = self.recorded, {}
        self._base = self._base_uncached  # type: ignore[method-assign]
        return done

    def _base_uncached(self, text: str) -> list[Token]:
        tokens: list[Token] = []
        clause = 0
        for raw in _tokenize(clean(text)):
            if raw in self.clause_breaks or not any(c.isalnum() for c in raw):
                if raw in self.clause_breaks:
                    clause += 1
                continue
            if _NUM.match(raw):
                head = re.split(r"[-–]", raw)[0].replace(",", ".").replace(":", ".")
                # "fase 2" needs its digit; other numbers (40 km, 7-9 timer) are noise for matching.
                small = raw.isdigit() and len(raw) == 1
                tokens.append(Token(raw, raw, (), not small, True, clause, float(head)))
                continue
            term, parts, known = self._resolve(raw)
            number = self.numbers.get(raw)
            stop = self._is_stop(raw, term)
            if raw in self.number_terms:
                term, stop = self.number_terms[raw], False
            tokens.append(
                Token(
                    raw, term, parts, stop, known, clause, None if number is None else float(number)
                )
            )
        return self._join(tokens)

    def _join(self, tokens: list[Token]) -> list[Token]:
        """Split compounds typed as two words ("hase sene", "sidde knoglen") become one term."""
        out: list[Token] = []
        i = 0
        while i < len(tokens):
            a = tokens[i]
            if i + 1 < len(tokens) and not a.stop and a.number is None:
                b = tokens[i + 1]
                if b.number is None and a.clause == b.clause:
                    joined = self._join_pair(a, b)
                    if joined:
                        out.append(joined)
                        i += 2
                        continue
            out.append(a)
            i += 1
        return out

    def _join_pair(self, a: Token, b: Token) -> Token | None:
        """Join when the two words typed together are a known word ("sidde knoglen"), or the
        first is an uninflected modifier of a known compound ("hase sene"); never an inflected
        verb and its object ("sidder smerten")."""
        for link in LINKS:
            surface = a.text + link + b.text
            if surface in self.table.lemmas and len(surface) > 5:
                term, parts, _ = self._resolve(surface)
                return Token(
                    a.text + b.text, term, parts or (a.term, b.term), False, True, a.clause
                )
            if fold(a.text) != a.term:
                continue
            cand = a.term + link + b.term
            if cand in self.known_terms and len(cand) > 5:
                return Token(a.text + b.text, cand, (a.term, b.term), False, True, a.clause)
        return None

    def _analyse_uncached(self, text: str) -> Analysis:
        base = self._base(text)
        out: list[Token] = []
        i = 0
        while i < len(base):
            longest = self._syn_len.get(base[i].term, 0)
            for size in range(min(longest, len(base) - i), 0, -1):
                seq = tuple(t.term for t in base[i : i + size])
                target = self.synonyms.get(seq)
                if target is not None and all(t.number is None for t in base[i : i + size]):
                    first = base[i]
                    text_ = " ".join(t.text for t in base[i : i + size])
                    for term in target:
                        stop = term in self.stop
                        parts = self._parts_of_term(term)
                        out.append(Token(text_, term, parts, stop, True, first.clause))
                    i += size
                    break
            else:
                out.append(self._part_synonyms(base[i]))
                i += 1
        return Analysis(tuple(out))

    def _parts_of_term(self, term: str) -> tuple[str, ...]:
        return self._resolve(term)[1] if term else ()

    def _part_synonyms(self, tok: Token) -> Token:
        """A compound's head gets its synonym too ("knæhaseøvelse": øvelse -> træning); the
        modifier keeps its own word ("glutebridge" is an exercise, not a place that hurts)."""
        if not tok.parts:
            return tok
        *mods, head = tok.parts
        parts = (*mods, self.synonyms.get((head,), (head,))[-1])
        return tok if parts == tok.parts else dataclasses.replace(tok, parts=parts)

    def terms_of(self, text: str) -> tuple[str, ...]:
        """The term sequence of a short phrase (all tokens, stop words included)."""
        return tuple(t.term for t in self.analyse(text).tokens)


ANALYSES_FORMAT = 2  # 2: each phrasing's rows as one JSON string, decoded when used


def _analyses_path(kb: Knowledge, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    version = f"{PIPELINE_VERSION}.{ANALYSES_FORMAT}"
    return cache_dir / f"analyses-{version}-{kb.matching_fingerprint}-{lookups_version()}.json"


def build_processor(
    kb: Knowledge, cache_dir: Path | None = None, meanwhile: Callable[[], object] | None = None
) -> TextProcessor:
    """A processor for this knowledge, with cached analyses of its phrasings when available.

    A missing lemma table is built in a forked child while this process loads spaCy's
    tokenizer and runs `meanwhile` (the matcher's imports for training), both cores busy."""
    preloaded: dict[str, str] = {}
    path = _analyses_path(kb, cache_dir)
    if path is not None and path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
                raise ValueError("analyses cache has the wrong shape")
            preloaded = raw
        except (OSError, ValueError):
            preloaded = {}
    table = cached_compact_table(kb, cache_dir)
    if table is None:

        def warm_up() -> None:
            load_tokenizer()
            if meanwhile is not None:
                meanwhile()

        built, _ = beside(lambda: make_compact_table(kb, cache_dir), warm_up)
        table = built
    proc = TextProcessor(table, kb.synonyms, kb.vocab, preloaded)
    proc.cache_path = None if preloaded else path
    return proc


def _stored(tokens: Sequence[Token]) -> str:
    """One phrasing's tokens as the JSON rows the analyses cache keeps."""
    rows = [[t.text, t.term, list(t.parts), t.stop, t.known, t.clause, t.number] for t in tokens]
    return json.dumps(rows, ensure_ascii=False)


def _tokens_of(stored: str | None) -> list[Token] | None:
    """Tokens from their cached JSON rows (the inverse of `_stored`); None when they are
    missing or damaged, so that the phrasing is analysed afresh."""
    if stored is None:
        return None
    try:
        rows = json.loads(stored)
        return [Token(t[0], t[1], tuple(t[2]), t[3], t[4], t[5], t[6]) for t in rows] or None
    except (ValueError, IndexError, KeyError, TypeError):
        return None


def save_analyses(proc: TextProcessor) -> None:
    """Store the knowledge's base analyses next to the compact table (after the matcher built)."""
    recorded = proc.stop_recording()
    path = getattr(proc, "cache_path", None)
    if path is None:
        return
    data = {text: _stored(toks) for text, toks in recorded.items()}
    write_cache(path, json.dumps(data, ensure_ascii=False))


def find_phrase(tokens: Sequence[Token], phrase: Sequence[str]) -> list[int]:
    """Start positions where a term sequence occurs (one-term phrases also match compound parts)."""
    n = len(phrase)
    if n == 0:
        return []
    first = phrase[0]
    hits: list[int] = []
    for i in range(len(tokens) - n + 1):
        tok = tokens[i]
        if tok.term == first:
            if n == 1 or all(tokens[i + k].term == phrase[k] for k in range(1, n)):
                hits.append(i)
        elif n == 1 and first in tok.parts:
            hits.append(i)
    return hits
