"""The one calibrated decision: a logistic regression over the candidate features
(candidates.FEATURES) and their pairwise products gives the probability that a candidate is the
right reply, and two thresholds on it choose answer, clarify or fallback.

The products let one measurement change what another is worth (a ranker score counts for more
when the candidate is in the user's guide, fuzzy likeness for more in a short message): on
nested cross-validation over the knowledge's examples they add about two points to every kind
of message over the features alone, where a boosted tree model adds less.

Weights and thresholds are fitted on cross-validated predictions of the knowledge's own
examples and of the out-of-scope examples (cv.py), never by hand and never to an eval file.
The thresholds are chosen by the value of a reply, where a wrong confident answer costs as
much as a right one gains and an honest fallback costs nothing (VALUE below): the lowest answer
threshold whose value the best one's does not beat by more than a standard error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.matching.candidates import FEATURES

# The value of each outcome: the product's judgement of what helps a runner, not a fit.
VALUE = {
    "right_answer": 1.0,
    "wrong_answer": -1.0,
    "clarify_with_right": 0.5,
    "clarify_without": 0.0,
    "fallback_answerable": 0.0,
    "fallback_out_of_scope": 1.0,
}
# Out-of-scope messages as a share of what runners send (the prior the thresholds assume).
OUT_OF_SCOPE_SHARE = 0.2
GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


@dataclass(frozen=True)
class Choice:
    """One answer threshold with its best clarify threshold: their total value and each
    message's (weighted) value."""

    total: float
    answer_at: float
    clarify_at: float
    values: np.ndarray


@dataclass(frozen=True)
class Rows:
    """One message's candidates as the fusion sees them: features and which is right."""

    features: np.ndarray  # (candidates, FEATURES)
    right: np.ndarray  # bool per candidate
    out_of_scope: bool


def expand(z: np.ndarray) -> np.ndarray:
    """Standardised features and every product of two of them (squares included), in the
    column order of numpy's triu_indices, as one C-ordered array. Built block by block in one
    buffer: a fit expands ~80,000 candidates, where gathering the pairs by fancy indexing took
    25 times as long (and scikit-learn copies any other memory order first)."""
    rows, n = z.shape
    out = np.empty((rows, n + n * (n + 1) // 2))
    out[:, :n] = z
    k = n
    for a in range(n):
        np.multiply(z[:, a : a + 1], z[:, a:], out=out[:, k : k + n - a])
        k += n - a
    return out


@dataclass(frozen=True)
class Fusion:
    mean: np.ndarray  # of the features
    scale: np.ndarray
    mean2: np.ndarray  # of the expanded standardised features
    scale2: np.ndarray
    coef: np.ndarray
    intercept: float
    answer_at: float
    clarify_at: float

    def _expanded(self, features: np.ndarray) -> np.ndarray:
        out: np.ndarray = (expand((features - self.mean) / self.scale) - self.mean2) / self.scale2
        return out

    def probability(self, features: np.ndarray) -> np.ndarray:
        if features.size == 0:
            return np.zeros(0)
        z = self._expanded(features) @ self.coef + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return out

    def outcome(self, p: np.ndarray) -> str:
        """answer, clarify or fallback for a message whose candidates have probabilities p."""
        if p.size == 0:
            return "fallback"
        top = np.sort(p)[::-1]
        if top[0] >= self.answer_at:
            return "answer"
        if top[:3].sum() >= self.clarify_at and len(top) > 1:
            return "clarify"
        return "fallback"

    @classmethod
    def fit(cls, messages: Sequence[Rows]) -> Fusion:
        from sklearn.linear_model import LogisticRegression

        x = np.vstack([m.features for m in messages if len(m.features)])
        y = np.concatenate([m.right for m in messages if len(m.features)])
        weights = _message_weights(messages)
        w = np.concatenate(
            [
                np.full(len(m.features), wt)
                for m, wt in zip(messages, weights, strict=True)
                if len(m.features)
            ]
        )
        mean, scale = _standard(x)
        x2 = expand((x - mean) / scale)
        mean2, scale2 = _standard(x2)
        x2 -= mean2  # in place: 80,000 x 350 doubles are 226 MB a copy
        x2 /= scale2
        # scikit-learn's default C=1. A stopping tolerance of 1e-3 instead of 1e-4: 28
        # iterations instead of 155 over the 350 expanded features (1.1 s of CPU, not 5.6)
        # at the same cross-validated figures (top candidate right 85.9% both ways; decided
        # 81.9% vs 82.0%, inside the +-0.6 that one added example moves it).
        model = LogisticRegression(max_iter=2000, tol=1e-3)
        model.fit(x2, y, sample_weight=w)
        coef, intercept = model.coef_[0], float(model.intercept_[0])
        fusion = cls(mean, scale, mean2, scale2, coef, intercept, 0.5, 1.0)
        # The training matrix is already what probability() would compute again.
        p = 1.0 / (1.0 + np.exp(-(x2 @ coef + intercept)))
        answer_at, clarify_at = _thresholds(messages, weights, p)
        return dataclasses.replace(fusion, answer_at=answer_at, clarify_at=clarify_at)

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": FEATURES,
                "products": True,
                "mean": self.mean.tolist(),
                "scale": self.scale.tolist(),
                "mean2": self.mean2.tolist(),
                "scale2": self.scale2.tolist(),
                "coef": self.coef.tolist(),
                "intercept": self.intercept,
                "answer_at": self.answer_at,
                "clarify_at": self.clarify_at,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Fusion:
        d = json.loads(raw)
        if tuple(d["features"]) != FEATURES or not d.get("products"):
            raise ValueError("fusion was fitted on other features")
        return cls(
            np.array(d["mean"]),
            np.array(d["scale"]),
            np.array(d["mean2"]),
            np.array(d["scale2"]),
            np.array(d["coef"]),
            float(d["intercept"]),
            float(d["answer_at"]),
            float(d["clarify_at"]),
        )


def _standard(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _message_weights(messages: Sequence[Rows]) -> list[float]:
    """Out-of-scope messages weigh OUT_OF_SCOPE_SHARE of the total, whatever their count."""
    n_out = sum(m.out_of_scope for m in messages)
    n_in = len(messages) - n_out
    if not n_out or not n_in:
        return [1.0] * len(messages)
    w_out = OUT_OF_SCOPE_SHARE * n_in / ((1 - OUT_OF_SCOPE_SHARE) * n_out)
    return [w_out if m.out_of_scope else 1.0 for m in messages]


def value(outcome: str, rows: Rows, p: np.ndarray) -> float:
    """What one decision is worth for one message."""
    if outcome == "fallback":
        return VALUE["fallback_out_of_scope" if rows.out_of_scope else "fallback_answerable"]
    order = np.argsort(-p, kind="stable")
    if outcome == "answer":
        return VALUE["right_answer" if rows.right[order[0]] else "wrong_answer"]
    return VALUE["clarify_with_right" if rows.right[order[:3]].any() else "clarify_without"]


def _thresholds(
    messages: Sequence[Rows], weights: Sequence[float], p: np.ndarray
) -> tuple[float, float]:
    """The (answer_at, clarify_at) pair of GRID chosen by _one_standard_error, given `p`, the
    probability of every candidate of the messages in order. The outcome values of every
    message are computed once, in a padded matrix of its candidates; the grid then only
    compares the top probability and the top three's sum with thresholds."""
    sizes = np.array([len(m.features) for m in messages])
    width = max(int(sizes.max(initial=0)), 1)
    filled = np.arange(width) < sizes[:, None]  # (messages, width)
    probs = np.full(filled.shape, -np.inf)
    right = np.zeros(filled.shape, dtype=bool)
    if sizes.sum():
        probs[filled] = p
        right[filled] = np.concatenate([m.right for m in messages if len(m.features)])
    order = np.argsort(-probs, axis=1, kind="stable")  # ties: the first candidate, as value()
    top3 = order[:, :3]
    top_p = np.take_along_axis(probs, top3, axis=1)
    tops = np.where(sizes > 0, top_p[:, 0], 0.0)
    sums = np.where(sizes > 1, np.where(np.isfinite(top_p), top_p, 0.0).sum(axis=1), 0.0)
    right3 = np.take_along_axis(right, top3, axis=1)
    out_of_scope = np.array([m.out_of_scope for m in messages], dtype=bool)
    v_answer = np.where(
        sizes > 0, np.where(right3[:, 0], VALUE["right_answer"], VALUE["wrong_answer"]), 0.0
    )
    v_clarify = np.where(
        sizes > 1,
        np.where(right3.any(axis=1), VALUE["clarify_with_right"], VALUE["clarify_without"]),
        0.0,
    )
    v_fallback = np.where(
        out_of_scope, VALUE["fallback_out_of_scope"], VALUE["fallback_answerable"]
    )
    w = np.asarray(weights)
    clarify_grid = np.array([*GRID, 3.0])  # 3.0: never clarify
    per_answer: list[Choice] = []
    for a in GRID:
        answered = tops >= a
        rest = ~answered
        # Among the unanswered, those whose top-three sum reaches c are clarified: sorted by
        # that sum, each c's total is a prefix of fallbacks plus a suffix of clarifications.
        by_sum = np.argsort(sums[rest], kind="stable")
        s_sorted = sums[rest][by_sum]
        fallback_prefix = np.concatenate([[0.0], np.cumsum((v_fallback * w)[rest][by_sum])])
        clarify_suffix = np.concatenate(
            [np.cumsum((v_clarify * w)[rest][by_sum][::-1])[::-1], [0.0]]
        )
        answered_value = float((v_answer * w)[answered].sum())
        cs = clarify_grid[clarify_grid > a]
        cut = np.searchsorted(s_sorted, cs, side="left")  # first unanswered with sum >= c
        scores = answered_value + fallback_prefix[cut] + clarify_suffix[cut]
        i = int(np.argmax(scores > scores.max() - 1e-9))  # the first best, as before
        c = float(cs[i])
        values = w * np.where(answered, v_answer, np.where(sums >= c, v_clarify, v_fallback))
        per_answer.append(Choice(float(scores[i]), float(a), c, values))
    return _one_standard_error(_smoothed(per_answer))


def _smoothed(per_answer: Sequence[Choice]) -> list[Choice]:
    """Each threshold's per-message values averaged with its two grid neighbours'.

    The value curve has one-step spikes (a handful of messages crossing one grid point: on
    the knowledge, 0.55 stood 34 above 0.54 and 0.56), and the one-standard-error rule
    compares neighbours whose paired differences are small, so a spike or its absence moved
    the chosen threshold by 0.05 when 7 of 8,750 examples were edited. Over three ranker
    seeds on two knowledge states, the choice ranged 0.54-0.60 unsmoothed, 0.54-0.57
    smoothed."""
    values = np.array([c.values for c in per_answer])
    out: list[Choice] = []
    for i, choice in enumerate(per_answer):
        v = values[max(0, i - 1) : i + 2].mean(axis=0)
        out.append(Choice(float(v.sum()), choice.answer_at, choice.clarify_at, v))
    return out


def _one_standard_error(per_answer: Sequence[Choice]) -> tuple[float, float]:
    """The lowest answer threshold whose total value is within one standard error of the
    best one's (and at even odds or more, where answering can pay at all).

    The value is flat around its maximum (on the knowledge's examples, answer thresholds
    0.53-0.66 differ by less than the noise of sampling the messages), so the arg-max
    wandered with every edited example. Among choices the data cannot tell apart, answering
    is what the runner asked for: the lowest of them is taken."""
    best = max(per_answer, key=lambda t: (t.total, -t.answer_at))
    n = len(best.values)
    floor = 0.5 * (1 + VALUE["fallback_answerable"])
    for choice in per_answer:  # GRID order: lowest threshold first
        if choice.answer_at < floor or choice.answer_at > best.answer_at:
            continue
        # The standard error of a sum of n paired per-message differences (what resampling
        # the messages would show, without drawing the resamples).
        se = float(np.sqrt(n) * (choice.values - best.values).std())
        if choice.total >= best.total - se:
            return choice.answer_at, choice.clarify_at
    return best.answer_at, best.clarify_at
