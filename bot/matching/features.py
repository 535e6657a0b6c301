"""What the learned ranker sees of a message: character n-grams within word boundaries of the
folded text plus word unigrams and bigrams of its lemmas, TF-IDF weighted (Rasa's default
featurizers). Character n-grams carry typos, ae/oe/aa and unseen compounds; the lemma n-grams
carry spaCy's lemmas, the knowledge's synonyms and its split compounds.

The same code featurizes training phrasings and incoming messages, and needs only numpy, so a
warm start never imports scikit-learn.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from bot.fold import clean, fold
from bot.textproc import Analysis

CHAR_NGRAMS = range(2, 6)  # Rasa's CountVectorsFeaturizer char_wb recipe: 2-5
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def raw_features(text: str, analysis: Analysis) -> tuple[Counter[str], Counter[str]]:
    """Counts of the two feature blocks: character n-grams and lemma n-grams."""
    grams: list[str] = []  # in the order a loop would count them, so columns keep their order
    for word in _WORD.findall(clean(text)):
        padded = f" {fold(word)} "
        size = len(padded)
        for n in CHAR_NGRAMS:
            grams += [padded[i : i + n] for i in range(size - n + 1)]
    chars: Counter[str] = Counter(grams)
    terms = analysis.terms
    words: Counter[str] = Counter(terms)
    words.update(f"{a} {b}" for a, b in pairwise(terms))
    return chars, words


@dataclass(frozen=True)
class Vectorizer:
    """Feature strings -> columns, with their inverse document frequencies."""

    columns: dict[str, int]
    idf: np.ndarray  # float32, one per column
    char_columns: int  # columns below this index are character n-grams
    _idf: list[float] = field(init=False, repr=False, compare=False)
    _blocks: tuple[dict[str, int], dict[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Plain floats: a message's few hundred look-ups stay out of numpy's scalar overhead.
        object.__setattr__(self, "_idf", self.idf.tolist())
        # Each block's columns by the bare feature string (no prefix to build per look-up).
        chars = {n[1:]: i for n, i in self.columns.items() if n[0] == "c"}
        words = {n[1:]: i for n, i in self.columns.items() if n[0] == "w"}
        object.__setattr__(self, "_blocks", (chars, words))

    @classmethod
    def fit(cls, docs: Sequence[tuple[Counter[str], Counter[str]]]) -> Vectorizer:
        df_chars: Counter[str] = Counter()
        df_words: Counter[str] = Counter()
        for chars, words in docs:
            df_chars.update(chars.keys())
            df_words.update(words.keys())
        names = sorted(df_chars) + sorted(df_words)
        n = len(docs)
        # scikit-learn's smooth idf: ln((1 + n) / (1 + df)) + 1
        idf = [math.log((1 + n) / (1 + df_chars[c])) + 1 for c in sorted(df_chars)]
        idf += [math.log((1 + n) / (1 + df_words[w])) + 1 for w in sorted(df_words)]
        columns = {("c" if i < len(df_chars) else "w") + name: i for i, name in enumerate(names)}
        return cls(columns, np.array(idf, dtype=np.float32), len(df_chars))

    def names(self) -> list[str]:
        out = [""] * len(self.columns)
        for name, i in self.columns.items():
            out[i] = name
        return out

    def vector(self, feats: tuple[Counter[str], Counter[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Sparse (columns, values): sublinear TF-IDF, each block of unit length, the two
        blocks weighing the same."""
        cols: list[int] = []
        vals: list[float] = []
        idf = self._idf
        for columns, counts in zip(self._blocks, feats, strict=True):
            block_cols: list[int] = []
            block_vals: list[float] = []
            for name, count in counts.items():
                col = columns.get(name)
                if col is not None:
                    block_cols.append(col)
                    tf = 1.0 if count == 1 else 1.0 + math.log(count)  # 1 + ln 1 is 1.0
                    block_vals.append(tf * idf[col])
            norm = math.sqrt(sum([v * v for v in block_vals])) * math.sqrt(2.0)
            if norm > 0:
                cols += block_cols
                vals += [v / norm for v in block_vals]
        return np.array(cols, dtype=np.intp), np.array(vals, dtype=np.float32)


def combine(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The sum of several sparse vectors, renormalised (a long message and its question)."""
    acc: dict[int, float] = {}
    for cols, vals in parts:
        for c, v in zip(cols.tolist(), vals.tolist(), strict=True):
            acc[c] = acc.get(c, 0.0) + v
    if not acc:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32)
    cols_out = np.fromiter(acc.keys(), dtype=np.intp, count=len(acc))
    vals_out = np.fromiter(acc.values(), dtype=np.float32, count=len(acc))
    norm = float(np.linalg.norm(vals_out))
    return cols_out, vals_out / norm if norm > 0 else vals_out
