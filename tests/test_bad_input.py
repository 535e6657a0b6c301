"""Whatever arrives, the matcher decides and the reply renders: never an exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.answers import render
from bot.ask import shared
from bot.knowledge import TELEGRAM_TEXT_LIMIT

KB, MATCHER = shared()

NASTY = [
    "",
    " ",
    "\n\n\t",
    "a" * 5000,
    "ondt under ballen " * 300,
    "😀🏃‍♂️🔥💨",
    "\x00\x01\x02\x1b[31m",
    "\u202e\u200b\ufeff",
    "Привет, как дела? у меня болит колено",
    "مرحبا كيف حالك",
    "膝の裏が痛い 跑步 膝盖后面疼",
    "'; DROP TABLE users; --",
    "SELECT * FROM entries WHERE 1=1",
    "{placeholder} {0} %s %(x)s",
    "<script>alert(1)</script>",
    "pick:p_faq_loebe",
    "/start",
    "1234567890",
    "7-9 uger 40km 19:30",
    "ÆØÅ æøå ÉÜÖ",
    "\ud800" if False else "\U0010ffff",
]


def _check(text: str, guide: str | None = None) -> None:
    decision = MATCHER.decide(text, guide)
    rendered = render(KB, decision)
    assert rendered.text.strip()
    assert len(rendered.text) <= TELEGRAM_TEXT_LIMIT
    assert 0.0 <= decision.score <= 100.0
    for row in rendered.buttons:
        for button in row:
            assert len(button.data.encode()) <= 64


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("guide", [None, "proximal", "distal", "hip", "no_such_guide"])
def test_nasty_input_gets_a_reply(text: str, guide: str | None) -> None:
    _check(text, guide)


def test_empty_input_falls_back() -> None:
    assert MATCHER.decide("").kind == "fallback"
    assert MATCHER.decide("😀😀").kind == "fallback"


def test_non_string_input_does_not_crash() -> None:
    assert MATCHER.decide(None).kind == "fallback"  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_gets_a_reply(text: str) -> None:
    _check(text)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "ondt",
                "ballen",
                "knæ",
                "ikke",
                "nat",
                "7",
                "uger",
                "😀",
                "hase",
                "sene",
                "løb",
                ",",
                "men",
                "massage",
                "?",
                "hej",
                "tak",
            ]
        ),
        max_size=25,
    )
)
def test_random_domain_word_salad_gets_a_reply(words: list[str]) -> None:
    _check(" ".join(words))
