"""The learned ranker: a linear classifier over the features of features.py, one class per
answer (parallel entries share one), intent and "out of scope".

Training uses scikit-learn's SGDClassifier with its defaults (a linear SVM, one-vs-rest; about
a second of CPU for the whole knowledge, where a multinomial logistic regression takes tens and
liblinear's LinearSVC twice as long at the same cross-validated accuracy). A rebuild uses the
second core by forking (cv.py); without fork, the one-vs-rest fits run on two threads.
Inference is a dot product in numpy, so only a cache rebuild imports scikit-learn.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.matching.features import Vectorizer

Sparse = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Ranker:
    vectorizer: Vectorizer
    classes: tuple[str, ...]
    weights: np.ndarray  # (classes, columns) float32
    bias: np.ndarray  # (classes,)
    _by_column: np.ndarray = field(init=False, repr=False, compare=False)

    @classmethod
    def train(
        cls, feats: Sequence[tuple[Counter[str], Counter[str]]], labels: Sequence[str]
    ) -> Ranker:
        vectorizer = Vectorizer.fit(feats)
        return cls.train_on(vectorizer, matrix(vectorizer, feats), labels)

    @classmethod
    def train_on(
        cls, vectorizer: Vectorizer, x: Any, labels: Sequence[str], threads: int = 2
    ) -> Ranker:
        """Train on rows already vectorised (cross-validation slices one matrix). `threads`
        changes only the speed: each class's seed is drawn before the classes are split."""
        from sklearn.linear_model import SGDClassifier

        classes = sorted(set(labels))
        # scikit-learn's defaults (hinge loss, alpha 1e-4, early stop at tol 1e-3): nothing
        # tuned; a fixed seed so the same knowledge always gives the same model.
        svc = SGDClassifier(n_jobs=threads, random_state=0)
        svc.fit(x, list(labels))
        weights = np.asarray(svc.coef_, dtype=np.float32)
        bias = np.asarray(svc.intercept_, dtype=np.float32)
        if len(classes) == 2:  # liblinear keeps one row for two classes
            weights = np.vstack([-weights, weights])
            bias = np.concatenate([-bias, bias])
        order = [list(svc.classes_).index(c) for c in classes]
        return cls(vectorizer, tuple(classes), weights[order], bias[order])

    def scores(self, vec: Sparse) -> np.ndarray:
        cols, vals = vec
        if len(cols) == 0:
            return np.array(self.bias, copy=True)
        out: np.ndarray = vals @ self._by_column[cols] + self.bias
        return out

    def __post_init__(self) -> None:
        # Columns as rows: a message's few hundred columns are then contiguous reads.
        object.__setattr__(self, "_by_column", np.ascontiguousarray(self.weights.T))
        object.__setattr__(self, "weights", self._by_column.T)  # the same memory, one copy

    # ---------------------------------------------------------------- cache

    def save(self, path: Path, with_vocabulary: bool = True) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            weights=self.weights,
            bias=self.bias,
            idf=self.vectorizer.idf,
            meta=np.frombuffer(
                json.dumps(
                    {
                        "classes": self.classes,
                        "names": self.vectorizer.names() if with_vocabulary else [],
                        "char_columns": self.vectorizer.char_columns,
                    },
                    ensure_ascii=False,
                ).encode(),
                dtype=np.uint8,
            ),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, vectorizer: Vectorizer | None = None) -> Ranker:
        """`vectorizer`: the one already loaded, when several rankers share it."""
        with np.load(path) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            if vectorizer is None:
                columns = {name: i for i, name in enumerate(meta["names"])}
                vectorizer = Vectorizer(columns, data["idf"], int(meta["char_columns"]))
            return cls(vectorizer, tuple(meta["classes"]), data["weights"], data["bias"])


def matrix(vectorizer: Vectorizer, feats: Sequence[tuple[Counter[str], Counter[str]]]) -> Any:
    """A scipy CSR matrix of the phrasings (scipy is imported only when training)."""
    return rows_matrix([vectorizer.vector(f) for f in feats], len(vectorizer.columns))


def rows_matrix(vectors: Sequence[Sparse], width: int) -> Any:
    from scipy.sparse import csr_matrix

    indptr = np.cumsum([0, *(len(c) for c, _ in vectors)])
    cols = np.concatenate([c for c, _ in vectors]) if vectors else np.zeros(0, np.intp)
    vals = np.concatenate([v for _, v in vectors]) if vectors else np.zeros(0, np.float32)
    return csr_matrix((vals, cols, indptr), shape=(len(vectors), width))


ALL = "all"  # the scope of the ranker that knows every guide


@dataclass(frozen=True)
class Rankers:
    """One ranker over every guide, and one per guide over that guide's answers (with the
    intents and the out-of-scope class): once the user's guide or the message's own words
    decide the guide, a generic question ("må jeg løbe?") competes only with that guide's
    answers, instead of losing to the same words in another guide's."""

    vectorizer: Vectorizer
    by_scope: dict[str, Ranker]

    def scope(self, guides: set[str]) -> Ranker:
        only = next(iter(guides)) if len(guides) == 1 else ALL
        return self.by_scope.get(only, self.by_scope[ALL])

    @classmethod
    def train(
        cls,
        vectorizer: Vectorizer,
        x: Any,
        labels: Sequence[str],
        guides: Sequence[str | None],
        scopes: Sequence[str],
        threads: int = 2,
    ) -> Rankers:
        by_scope = {ALL: Ranker.train_on(vectorizer, x, labels, threads)}
        for scope in scopes:
            rows = [i for i, g in enumerate(guides) if g in (scope, None)]
            sub = [labels[i] for i in rows]
            by_scope[scope] = Ranker.train_on(vectorizer, x[rows], sub, threads)
        return cls(vectorizer, by_scope)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for scope, ranker in self.by_scope.items():
            ranker.save(folder / f"ranker-{scope}.npz", with_vocabulary=scope == ALL)

    @classmethod
    def load(cls, folder: Path) -> Rankers:
        first = folder / f"ranker-{ALL}.npz"
        if not first.exists():
            raise ValueError(f"no {first.name} in {folder}")
        shared = Ranker.load(first)
        by_scope = {
            path.stem.removeprefix("ranker-"): Ranker.load(path, shared.vectorizer)
            for path in sorted(folder.glob("ranker-*.npz"))
            if path != first
        }
        return cls(shared.vectorizer, {ALL: shared, **by_scope})
