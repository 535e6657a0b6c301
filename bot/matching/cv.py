"""Cross-validation over the knowledge's own examples: retrain the ranker without a fold, then
decide every held-out example as the bot would, with no guide context and with the user's
guide set to the example's own guide (parallel entries count as right for their class).

Its rows fit the fusion model (fusion.py); its decisions are what `eval --cv` prints and what
`validate` reports as examples the bot would answer with another entry.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.fork import beside, can_fork
from bot.knowledge import Knowledge
from bot.matching.candidates import Classes, Option, allowed_guides, options
from bot.matching.dataset import OOS, Phrasing, split
from bot.matching.evidence import Evidence
from bot.matching.features import Vectorizer, raw_features
from bot.matching.fusion import Rows
from bot.matching.model import Rankers, Sparse, rows_matrix
from bot.matching.vectors import message_vector
from bot.textproc import TextProcessor

Feats = tuple[Counter[str], Counter[str]]


@dataclass(frozen=True)
class HeldOut:
    """One held-out example decided by a model that never saw it."""

    item: Phrasing
    context: str | None  # the user's guide in this trial
    candidates: tuple[Option, ...]
    rows: Rows


def _contexts(kb: Knowledge, item: Phrasing) -> list[str | None]:
    if item.guide is not None:
        return [None, item.guide]
    # Intents and out-of-scope messages come from users with and without a guide.
    guides = sorted(kb.guides)
    pick = int(hashlib.sha1(item.text.encode()).hexdigest(), 16) % len(guides)
    return [None, guides[pick]]


def _right(c: Option, item: Phrasing, context: str | None) -> bool:
    if item.label == OOS or c.label != item.label:
        return False
    if c.intent_id is not None or context is None:
        return True
    return item.owner in c.entries


def cross_validate(
    kb: Knowledge,
    proc: TextProcessor,
    items: Sequence[Phrasing],
    feats: Sequence[Feats],
    k: int,
    vectors: Sequence[Sparse] | None = None,
    vectorizer: Vectorizer | None = None,
    also: Callable[[], object] | None = None,
) -> list[HeldOut]:
    """The held-out decisions of every fold, in fold order. The first half of the folds run
    in a forked child, the rest and then `also` (the final rankers) here, so both cores
    train; the result is the same as one by one."""
    # One vocabulary and IDF for all folds (they use no labels); the classifier and the
    # lemma evidence are rebuilt without the held-out fold.
    if vectorizer is None or vectors is None:
        vectorizer = Vectorizer.fit(feats)
        vectors = [vectorizer.vector(f) for f in feats]
    x = rows_matrix(vectors, len(vectorizer.columns))
    base = Evidence(kb, proc, ())
    splits = list(split(list(items), k))
    threads = 1 if can_fork() else 2
    if can_fork():
        import sklearn.linear_model  # noqa: F401  (once here, not once in each process)

    def folds(which: Sequence[int]) -> list[HeldOut]:
        out: list[HeldOut] = []
        for f in which:
            train, test = splits[f]
            out += _fold(kb, proc, items, vectors, vectorizer, x, base, train, test, threads)
        return out

    first = list(range((k + 1) // 2))
    rest = list(range(len(first), k))

    def here() -> list[HeldOut]:
        mine = folds(rest)
        if also is not None:
            also()
        return mine

    position = {id(p): i for i, p in enumerate(items)}
    there, mine = beside(lambda: _pack(folds(first), position), here)
    return _unpack(there, items) + mine


# A fold's decisions as they cross the pipe from a forked child: one features matrix and one
# array of rights for all of them, and per trial only indices and strings. Pickling every
# candidate's own small array took longer than deciding the fold.
Packed = tuple[
    list[tuple[int, str | None, tuple[tuple[str, tuple[str, ...], str | None], ...], bool]],
    np.ndarray,
    np.ndarray,
]


def _pack(held: list[HeldOut], position: dict[int, int]) -> Packed:
    trials = [
        (
            position[id(h.item)],
            h.context,
            tuple((c.label, c.entries, c.intent_id) for c in h.candidates),
            h.rows.out_of_scope,
        )
        for h in held
    ]
    with_rows = [h.rows for h in held if len(h.rows.features)]
    features = np.vstack([r.features for r in with_rows]) if with_rows else np.zeros((0, 0))
    right = np.concatenate([r.right for r in with_rows]) if with_rows else np.zeros(0, bool)
    return trials, features, right


def _unpack(packed: Packed, items: Sequence[Phrasing]) -> list[HeldOut]:
    trials, features, right = packed
    out: list[HeldOut] = []
    at = 0
    for i, context, cands, out_of_scope in trials:
        n = len(cands)
        feats = features[at : at + n] if n else np.zeros((0, 0))
        options_ = tuple(
            Option(label, entries, intent, feats[k])
            for k, (label, entries, intent) in enumerate(cands)
        )
        rows = Rows(feats, right[at : at + n], out_of_scope)
        out.append(HeldOut(items[i], context, options_, rows))
        at += n
    return out


def _fold(
    kb: Knowledge,
    proc: TextProcessor,
    items: Sequence[Phrasing],
    vectors: Sequence[Sparse],
    vectorizer: Vectorizer,
    x: Any,
    base: Evidence,
    train: list[int],
    test: list[int],
    threads: int,
) -> list[HeldOut]:
    rankers = Rankers.train(
        vectorizer,
        x[train],
        [items[i].label for i in train],
        [items[i].guide for i in train],
        sorted(kb.guides),
        threads,
    )
    evidence = base.with_phrasings([items[i] for i in train])
    classes = {id(r): Classes(kb, r) for r in rankers.by_scope.values()}
    out: list[HeldOut] = []
    for i in test:
        item = items[i]
        a = proc.analyse(item.text)
        m = evidence.message(a)
        vec = message_vector(vectorizer, proc, item.text, a, vectors[i])
        memo: dict[tuple[str, str | None], tuple[float, ...]] = {}
        for context in _contexts(kb, item):
            ranker = rankers.scope(allowed_guides(kb, m, context))
            cands = options(classes[id(ranker)], evidence, ranker.scores(vec), m, context, memo)
            feats_m = np.vstack([c.features for c in cands]) if cands else np.zeros((0, 0))
            right = np.array([_right(c, item, context) for c in cands], dtype=bool)
            rows = Rows(feats_m, right, item.label == OOS)
            out.append(HeldOut(item, context, tuple(cands), rows))
    return out


def features_of(proc: TextProcessor, items: Sequence[Phrasing]) -> list[Feats]:
    return [raw_features(p.text, proc.analyse(p.text)) for p in items]
