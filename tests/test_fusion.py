"""The fused decision (bot/matching/fusion.py): fitted, not set, and able to learn that one
measurement changes what another is worth."""

from __future__ import annotations

import dataclasses

import numpy as np

from bot.matching.candidates import FEATURES
from bot.matching.fusion import (
    GRID,
    Choice,
    Fusion,
    Rows,
    _message_weights,
    _one_standard_error,
    _smoothed,
    expand,
    value,
)


def _messages(seed: int, n: int) -> list[Rows]:
    """Two candidates a message; the right one is the one whose first two features agree in
    sign (an interaction: neither feature alone says anything)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.normal(size=(2, len(FEATURES)))
        agree = np.sign(x[:, 0]) == np.sign(x[:, 1])
        if agree[0] == agree[1]:
            x[1, 1] = -x[1, 1]
            agree = np.sign(x[:, 0]) == np.sign(x[:, 1])
        out.append(Rows(x, agree, False))
    return out


def test_the_fusion_learns_an_interaction_of_two_measurements() -> None:
    # Messages in proportion to the features: with 400 the products of 21-25 features (each
    # added feature adds as many products) left too few rows per weight to find the one pair.
    fusion = Fusion.fit(_messages(0, 40 * len(FEATURES)))
    test = _messages(1, 200)
    right = sum(bool(m.right[int(np.argmax(fusion.probability(m.features)))]) for m in test)
    assert right / len(test) > 0.9


def test_the_fusion_round_trips_through_its_cache_json() -> None:
    fusion = Fusion.fit(_messages(0, 100))
    again = Fusion.from_json(fusion.to_json())
    x = _messages(2, 1)[0].features
    assert np.allclose(fusion.probability(x), again.probability(x))
    assert (again.answer_at, again.clarify_at) == (fusion.answer_at, fusion.clarify_at)


def test_the_products_are_every_pair_in_the_order_a_cached_fusion_expects() -> None:
    z = np.random.default_rng(3).normal(size=(4, 5))
    pairs = [(i, j) for i in range(5) for j in range(i, 5)]  # numpy's triu_indices order
    want = np.hstack([z, np.column_stack([z[:, i] * z[:, j] for i, j in pairs])])
    assert np.array_equal(expand(z), want)


def _mixed_messages(seed: int, n: int) -> list[Rows]:
    """Messages of 0-4 candidates, a fifth of them out of scope, rights at random."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        size = int(rng.integers(0, 5))
        oos = bool(rng.random() < 0.2)
        right = np.zeros(size, bool) if oos or not size else rng.random(size) < 0.4
        out.append(Rows(rng.normal(size=(size, len(FEATURES))), right, oos))
    return out


def test_the_fitted_clarify_threshold_is_the_best_for_the_chosen_answer_threshold() -> None:
    """Brute force over the grid with value(), message by message: no clarify threshold is
    better for the chosen answer threshold, and no pair beats the chosen one by much."""
    messages = _mixed_messages(4, 300)
    fusion = Fusion.fit(messages)
    weights = _message_weights(messages)
    probs = [fusion.probability(m.features) for m in messages]

    def total(a: float, c: float) -> float:
        t = dataclasses.replace(fusion, answer_at=a, clarify_at=c)
        return sum(
            w * value(t.outcome(p), m, p) for m, p, w in zip(messages, probs, weights, strict=True)
        )

    chosen = total(fusion.answer_at, fusion.clarify_at)
    a = fusion.answer_at
    assert chosen >= max(total(a, c) for c in (*GRID, 3.0) if c > a) - 1e-9
    best = max(total(a, c) for a in GRID[::3] for c in (*GRID[::3], 3.0) if c > a)
    assert chosen >= best - 0.1 * len(messages)  # within the noise, not just anywhere
    assert chosen > total(0.95, 3.0)  # a real choice, not the grid's corner


def _candidates(thresholds_and_values: list[tuple[float, np.ndarray]]) -> list[Choice]:
    return [Choice(float(v.sum()), a, a + 0.01, v) for a, v in thresholds_and_values]


def test_among_thresholds_the_data_cannot_tell_apart_the_lowest_is_taken() -> None:
    best = np.random.default_rng(5).choice([-1.0, 1.0], size=2000)
    near = best.copy()
    near[:100] += 1.0  # better on 100 messages, worse on 103: 3 worse in all, where
    near[100:203] -= 1.0  # sampling the messages moves the difference by about 14
    pairs = _candidates([(0.45, near), (0.55, near), (0.60, best), (0.70, near)])
    # 0.45 is below even odds; 0.55 is as good as the data can tell.
    assert _one_standard_error(pairs) == (0.55, 0.56)


def test_a_threshold_clearly_worse_than_the_best_is_not_taken() -> None:
    best = np.random.default_rng(6).choice([-1.0, 1.0], size=2000)
    worse = best.copy()
    worse[:100] += 1.0  # better on 100 messages, worse on 200: many standard errors worse
    worse[100:300] -= 1.0
    pairs = _candidates([(0.55, worse), (0.60, best), (0.70, worse)])
    assert _one_standard_error(pairs) == (0.60, 0.61)


def test_answering_below_even_odds_is_never_chosen() -> None:
    values = np.ones(100)
    best = values.copy()
    best[0] += 1.0  # better on one message, worse on another: the best by a hair, and every
    best[1] -= 0.99  # lower threshold is as good as the data can tell
    pairs = _candidates([(0.30, values), (0.49, values), (0.62, best)])
    assert _one_standard_error(pairs) == (0.62, 0.63)


def test_a_one_step_spike_in_the_value_curve_does_not_decide_the_threshold() -> None:
    """0.56 stands above its neighbours by a few messages crossing one grid point; the curve
    around it is lower than around 0.60, so the smoothed rule does not take the spike."""
    rng = np.random.default_rng(7)
    base = rng.choice([-1.0, 1.0], size=2000)

    def shifted(better: int, worse: int) -> np.ndarray:
        v = base.copy()
        v[:better] += 1.0
        v[better : better + worse] -= 1.0
        return v

    curve = [
        (0.54, shifted(0, 60)),
        (0.55, shifted(0, 60)),
        (0.56, shifted(30, 0)),  # the spike
        (0.57, shifted(0, 60)),
        (0.58, shifted(0, 0)),
        (0.59, shifted(10, 0)),
        (0.60, shifted(12, 0)),
        (0.61, shifted(10, 0)),
    ]
    pairs = _candidates(curve)
    assert _one_standard_error(pairs)[0] == 0.56  # unsmoothed, the spike wins
    smooth = _smoothed(pairs)
    assert [c.answer_at for c in smooth] == [a for a, _ in curve]
    assert smooth[2].total == sum(c.total for c in pairs[1:4]) / 3
    assert _one_standard_error(smooth)[0] > 0.57
