"""The fused decision (bot/matching/fusion.py): fitted, not set, and able to learn that one
measurement changes what another is worth."""

from __future__ import annotations

import numpy as np

from bot.matching.candidates import FEATURES
from bot.matching.fusion import Fusion, Rows


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
