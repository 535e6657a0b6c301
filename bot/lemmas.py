"""The compact lemma table: the slice of spaCy's Danish lookup table (550k forms, from
spacy-lookups-data) that can reach the knowledge, plus the compounds the knowledge writes
split into their parts, cached on disk by the knowledge's fingerprint so a normal start never
loads the full table.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bot.fold import clean, fold
from bot.knowledge import Knowledge

# Bump when the processing changes, so cached tables and analyses are rebuilt.
PIPELINE_VERSION = "17"


def write_cache(path: Path, data: str | bytes) -> None:
    """Write atomically and drop this cache's files for older knowledge (they are never read)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        tmp.replace(path)
        prefix = path.name.split("-", 1)[0] + "-"
        for old in path.parent.glob(prefix + "*" + path.suffix):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def lookups_version() -> str:
    try:
        return metadata.version("spacy-lookups-data")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        return "none"


def load_full_lemma_table() -> dict[str, str]:
    """spaCy's complete Danish lookup table (~550k forms); only used to build the compact one."""
    import spacy_lookups_data

    path = Path(spacy_lookups_data.__file__).parent / "data" / "da_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        table: dict[str, str] = json.load(fh)
    return table


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def vocabulary_words(texts: Iterable[str]) -> Counter[str]:
    """Word frequencies of the knowledge, without spaCy (fast, good enough here)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in _WORD.findall(clean(text)) if not w.isdigit())
    return counts


def example_texts(kb: Knowledge) -> list[str]:
    """How runners ask: their words are known only when they are real words (spaCy's table)
    or written elsewhere too, so a typo written into an example ("hasetendinopsti") is still
    corrected to the word it misspells."""
    texts = [t for e in kb.entries.values() for t in e.examples]
    return texts + [t for examples in kb.out_of_scope.values() for t in examples]


def knowledge_texts(kb: Knowledge) -> list[str]:
    """The texts whose every word the matcher should know."""
    texts: list[str] = list(kb.guide_texts.values())
    for e in kb.entries.values():
        texts += [e.title, e.text, e.source, *e.keywords]
    for i in kb.intents:
        texts += list(i.examples)
        if i.reply:
            texts.append(i.reply)
    for canon, variants in kb.synonyms.items():
        texts += [canon, *variants]
    for rf in kb.red_flags:
        texts += [rf.guide_text, *(t for g in rf.all_of for t in g), *rf.none_of]
    for g in kb.guides.values():
        texts += [g.title, g.short, *g.context_words]
    return texts


def word_hash(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


def english_words() -> set[str]:
    """English words spaCy's English lookup tables know (about 120k): runners mix English in,
    and "socks" is not a typo of "shocks" nor "after" of "aften"."""
    import spacy_lookups_data

    data = Path(spacy_lookups_data.__file__).parent / "data"
    with gzip.open(data / "en_lemma_lookup.json.gz", "rt", encoding="utf-8") as fh:
        lookup: dict[str, str] = json.load(fh)
    with gzip.open(data / "en_lemma_index.json.gz", "rt", encoding="utf-8") as fh:
        index: dict[str, list[str]] = json.load(fh)
    words = set(lookup) | set(lookup.values())
    for forms in index.values():
        words.update(forms)
    return {w for w in words if w.isalpha() and w.islower()}


def real_word_hashes(full: dict[str, str]) -> np.ndarray:
    """The sorted CRC-32s of every Danish form spaCy's table knows and of English words: a
    real word the knowledge does not use is not a typo of one it does ("hvalp" is not "hjalp",
    "trist" not "trust", "socks" not "shocks"). Hashes, not the 670k strings: 2.7 MB that load
    in a millisecond; a collision (about one word in 6,000) only lets a typo be corrected as
    before."""
    words = [*full, *english_words()]
    hashes = np.fromiter(map(word_hash, words), dtype=np.uint32, count=len(words))
    hashes.sort()  # duplicates do no harm to searchsorted (np.unique costs 0.4 s here)
    return hashes


@dataclass
class CompactTable:
    """Forms that can reach the knowledge -> lemma, compound parts, and vocabulary frequency;
    `real`: real_word_hashes (kept beside the JSON, in its own .npy file)."""

    lemmas: dict[str, str]
    compounds: dict[str, list[str]]
    freq: dict[str, int]
    real: np.ndarray | None = None

    def is_real(self, word: str) -> bool:
        if self.real is None or not len(self.real):
            return False
        h = word_hash(word)
        i = int(np.searchsorted(self.real, h))
        return i < len(self.real) and int(self.real[i]) == h

    def to_json(self) -> str:
        return json.dumps({"lemmas": self.lemmas, "compounds": self.compounds, "freq": self.freq})

    @classmethod
    def from_json(cls, raw: str) -> CompactTable:
        data = json.loads(raw)
        return cls(data["lemmas"], data["compounds"], data["freq"])


LINKS = ("", "s", "e")
MIN_PART = 3
SHORT_PART = 3  # both parts this short: the modifier must be a word the knowledge uses


def split_compound(
    word: str, is_form: Any, is_modifier: Any, is_word: Any = None
) -> tuple[str, str] | None:
    """Longest known head with a known modifier (linking -s-/-e- allowed).

    Two tiny parts are only trusted when `is_word` knows the modifier as a word of its own
    ("knæ"+"hul" yes; "dis"+"tal" in "distal", "bur"+"ae" in "bursaen" no).
    """
    for i in range(MIN_PART, len(word) - MIN_PART + 1):
        head = word[i:]
        if not is_form(head):
            continue
        left = word[:i]
        for link in LINKS:
            if link and not left.endswith(link):
                continue
            mod = left[: len(left) - len(link)] if link else left
            if len(mod) < MIN_PART or not is_modifier(mod):
                continue
            tiny = len(mod) <= SHORT_PART and len(head) <= SHORT_PART
            if tiny and (is_word is None or not is_word(mod)):
                continue
            return mod, head
    return None


def build_compact_table(
    words: Counter[str], full: dict[str, str], overrides: dict[str, str]
) -> CompactTable:
    """Slice the full table down to what the knowledge vocabulary can reach."""

    def base_lemma(form: str) -> str | None:
        if form in overrides:
            return overrides[form]
        return full.get(form)

    lemmas: dict[str, str] = {}
    compounds: dict[str, list[str]] = {}
    known_words = set(full) | set(full.values()) | set(overrides) | set(overrides.values())
    for w in words:
        lemma = base_lemma(w)
        if lemma is None:
            split = split_compound(
                w, lambda h: base_lemma(h) is not None, known_words.__contains__, words.__contains__
            )
            if split:
                mod, head = split
                head_lemma = base_lemma(head) or head
                mod_lemma = base_lemma(mod) or mod
                lemma = mod + head_lemma
                compounds[w] = [mod_lemma, head_lemma]
            else:
                lemma = w
        lemmas[w] = lemma
    # Words the knowledge writes without æ/ø/å ("knaeet") take the lemma of the proper form.
    proper: dict[str, str] = {}
    for w, lemma in lemmas.items():
        if w in full or w in overrides:
            proper.setdefault(fold(w), lemma)
    for w, lemma in list(lemmas.items()):
        if lemma == w and w not in full and w not in compounds:
            lemmas[w] = proper.get(fold(w), w)
    for form, lemma in overrides.items():
        lemmas[form] = lemma
        # Domain compounds from the lemma file split too (hasemuskel -> hase + muskel).
        if lemma not in compounds and len(lemma) >= 2 * MIN_PART:
            split = split_compound(
                lemma, known_words.__contains__, known_words.__contains__, words.__contains__
            )
            # A modifier that is another word's inflected form ("bed" of "bide" in "bedring")
            # is no compound's first part ("baglårs" of "baglår" is).
            if split and split[0].startswith(base_lemma(split[0]) or split[0]):
                mod, head = split
                parts = [base_lemma(mod) or mod, base_lemma(head) or head]
                compounds[lemma] = parts
                compounds[form] = parts
    # Compound lemmas of the vocabulary split too (hasesene -> hase + sene).
    for w, parts in list(compounds.items()):
        compounds.setdefault(lemmas[w], parts)
    reach = set(lemmas.values()) | set(lemmas)
    for form, lemma in full.items():
        if form not in lemmas and (lemma in reach) and len(form) > 1:
            lemmas[form] = overrides.get(form, lemma)
    # Lemmas are forms too (so a modifier "sidde" or a typed lemma is known).
    for lemma in set(lemmas.values()):
        lemmas.setdefault(lemma, lemma)
    return CompactTable(lemmas, compounds, dict(words))


def _table_path(kb: Knowledge, cache_dir: Path | None) -> Path | None:
    key = f"lemmas-{PIPELINE_VERSION}-{kb.matching_fingerprint}-{lookups_version()}.json"
    return cache_dir / key if cache_dir else None


def _real_path(cache_dir: Path | None) -> Path | None:
    return cache_dir / f"realwords-{lookups_version()}.npy" if cache_dir else None


def cached_compact_table(kb: Knowledge, cache_dir: Path | None) -> CompactTable | None:
    """The compact table of this knowledge from the cache, or None."""
    path, real = _table_path(kb, cache_dir), _real_path(cache_dir)
    if path is not None and real is not None and path.exists() and real.exists():
        try:
            table = CompactTable.from_json(path.read_text(encoding="utf-8"))
            table.real = np.load(real)
            return table
        except (OSError, ValueError, KeyError):
            pass
    return None


def _real_words(full: dict[str, str], path: Path | None) -> np.ndarray:
    """real_word_hashes, from the cache when there (they depend on spaCy's tables only, not
    on the knowledge), else computed and cached."""
    if path is not None and path.exists():
        try:
            hashes: np.ndarray = np.load(path)
            return hashes
        except (OSError, ValueError):
            pass
    hashes = real_word_hashes(full)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, hashes)
        write_cache(path, buffer.getvalue())
    return hashes


def make_compact_table(kb: Knowledge, cache_dir: Path | None) -> CompactTable:
    """Build the compact table from the full one (about a second) and cache it."""
    overrides = {k.lower(): v.lower() for k, v in kb.lemmas.items()}
    full = load_full_lemma_table()
    words = vocabulary_words(knowledge_texts(kb))
    for word, n in vocabulary_words(example_texts(kb)).items():
        if word in words or word in full or word in overrides:
            words[word] += n
    table = build_compact_table(words, full, overrides)
    table.real = _real_words(full, _real_path(cache_dir))
    path = _table_path(kb, cache_dir)
    if path is not None:
        write_cache(path, table.to_json())
    return table


def load_compact_table(kb: Knowledge, cache_dir: Path | None) -> CompactTable:
    """The cached compact table for this knowledge, built from the full table if missing."""
    return cached_compact_table(kb, cache_dir) or make_compact_table(kb, cache_dir)
