"""The decision (bot/matching/decision.py): a reply quoting an entry and the related entry of
its guide that shares its probability, only when together they are as likely right as one
answer must be."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.answers import render
from bot.knowledge import Knowledge, load_knowledge
from bot.matching.candidates import FEATURES, Option
from bot.matching.decision import decide
from bot.matching.fusion import Fusion
from bot.settings import PROJECT_ROOT

ANSWER_AT = 0.6


@pytest.fixture(scope="module")
def kb() -> Knowledge:
    return load_knowledge(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "intents")


def _fusion() -> Fusion:
    """A fusion whose probability is the logistic of the first feature, nothing else."""
    n = len(FEATURES)
    width = n + n * (n + 1) // 2
    coef = np.zeros(width)
    coef[0] = 1.0
    zeros, ones = np.zeros(n), np.ones(n)
    return Fusion(zeros, ones, np.zeros(width), np.ones(width), coef, 0.0, ANSWER_AT, 0.95)


def _option(entry_id: str, p: float) -> Option:
    features = np.zeros(len(FEATURES))
    features[0] = math.log(p / (1 - p))
    return Option(f"e:{entry_id}", (entry_id,), None, features)


def _related(kb: Knowledge) -> tuple[str, str]:
    for eid, entry in kb.entries.items():
        for other in entry.related:
            if kb.entry_guide[other] == kb.entry_guide[eid]:
                return eid, other
    raise AssertionError("no related entries in one guide")


def _unrelated(kb: Knowledge, first: str) -> str:
    guide = kb.entry_guide[first]
    return next(
        e
        for e in kb.entries
        if e != first
        and kb.entry_guide[e] == guide
        and e not in kb.entries[first].related
        and first not in kb.entries[e].related
    )


def test_two_related_entries_that_split_the_probability_are_quoted_together(
    kb: Knowledge,
) -> None:
    first, second = _related(kb)
    d = decide(kb, _fusion(), [_option(first, 0.35), _option(second, 0.30)])
    assert (d.kind, d.entry_id, d.also, d.guide) == (
        "answer",
        first,
        (second,),
        kb.entry_guide[first],
    )
    assert d.score == pytest.approx(65.0)
    text = render(kb, d).text
    a, b = kb.entries[first].text.strip(), kb.entries[second].text.strip()
    assert a in text and b in text and text.index(a) < text.index(b)
    assert kb.entries[first].source in text and kb.entries[second].source in text


def test_the_pair_must_reach_the_answer_threshold_together(kb: Knowledge) -> None:
    first, second = _related(kb)
    d = decide(kb, _fusion(), [_option(first, 0.32), _option(second, 0.25)])
    assert d.kind != "answer" and d.also == ()


def test_unrelated_entries_are_not_quoted_together(kb: Knowledge) -> None:
    first, _ = _related(kb)
    other = _unrelated(kb, first)
    d = decide(kb, _fusion(), [_option(first, 0.35), _option(other, 0.30)])
    assert d.kind != "answer" and d.also == ()


def test_a_confident_single_answer_quotes_one_entry(kb: Knowledge) -> None:
    first, second = _related(kb)
    d = decide(kb, _fusion(), [_option(first, 0.7), _option(second, 0.2)])
    assert (d.kind, d.entry_id, d.also) == ("answer", first, ())


def test_a_red_flag_keeps_the_pair_after_the_doctor_advice(kb: Knowledge) -> None:
    first, second = _related(kb)
    flag = kb.red_flags[0]
    d = decide(kb, _fusion(), [_option(first, 0.35), _option(second, 0.30)], (flag.id,))
    assert (d.kind, d.entry_id, d.also) == ("red_flag", first, (second,))
    text = render(kb, d).text
    assert text.index(flag.guide_text) < text.index(kb.entries[first].text.strip())
    assert kb.entries[second].text.strip() in text
