"""Onboarding and /fase: consent, guide and phase, typed or pressed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine import Engine
from bot.storage import Database, User
from tests.engine_helpers import Chat, Clock, make_engine


@pytest.fixture
def engine(database: Database, tmp_path: Path) -> Engine:
    return make_engine(database, tmp_path / "cache", Clock())


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return Chat(engine)


def _phase(db: Database) -> int | None:
    with db.session() as s:
        user = s.get(User, 1001)
        assert user is not None
        return user.phase


def test_onboarding_by_tapping_labels(chat: Chat, database: Database) -> None:
    chat.say("/start")
    chat.tap("Ja, det må du")
    chat.tap("Bag knæet (distal)")
    chat.tap("Fase 2")
    with database.session() as s:
        user = s.get(User, 1001)
        assert user is not None and (user.consent, user.guide, user.phase) == (True, "distal", 2)


def test_the_phase_question_explains_the_guides_phases(chat: Chat) -> None:
    chat.say("/start")
    chat.tap("Ja, det må du")
    chat.tap("Bag knæet (distal)")
    text = chat.text()
    assert "Fase 1: Symptomkontrol (Uge 1-2)" in text
    assert "Få smerten under kontrol uden at stoppe helt med at være aktiv." in text
    assert "Fase 4: Vedligeholdelse (Løbende)" in text


def test_fase_shows_the_four_phases_and_changes_the_phase(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.onboard("proximal", phase=1)
    chat.say("/fase")
    for title in ("Uge 1-3", "Uge 3-8", "Uge 8-16", "Løbende"):
        assert title in chat.text()
    chat.tap("Fase 3")
    assert chat.text() == engine.kb.text("phase_set", phase=3)
    assert _phase(database) == 3


def test_fase_with_a_number_sets_it_at_once(chat: Chat, database: Database) -> None:
    chat.onboard(phase=1)
    chat.say("/fase 4")
    assert _phase(database) == 4


def test_asking_to_change_phase_in_words_asks_which(chat: Chat, database: Database) -> None:
    chat.onboard(phase=1)
    chat.say("jeg vil skifte fase")
    assert "Fase 2" in chat.labels()
    assert _phase(database) == 1
    chat.say("2")
    assert _phase(database) == 2


def test_fase_without_consent_explains_and_asks_for_consent(chat: Chat, engine: Engine) -> None:
    chat.say("/start")
    chat.tap("Nej tak")
    chat.tap("Hoften")
    chat.say("/fase")
    assert chat.labels() == ["Ja, det må du", "Nej tak"]


@pytest.mark.parametrize("typed", ["fase tre", "den tredje", "3", "jeg er i fase 3"])
def test_a_typed_phase_is_read_in_words(chat: Chat, database: Database, typed: str) -> None:
    chat.say("/start")
    chat.say("ja")
    chat.say("balle")
    chat.say(typed)
    assert _phase(database) == 3


def test_dont_know_at_the_phase_prompt_starts_from_the_beginning(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.say("/start")
    chat.say("ja tak")
    chat.say("knæ")
    chat.say("ved ikke")
    assert engine.kb.text("phase_skipped") in chat.text()
    assert _phase(database) is None


@pytest.mark.parametrize("guide", ["proximal", "distal", "hip"])
def test_onboarding_suggests_questions_the_users_own_guide_answers(
    chat: Chat, engine: Engine, guide: str
) -> None:
    """The first thing a new user tries is what onboarding suggests: each guide's two questions
    are answered from that guide (the hip guide says nothing about how long it takes, so its
    users are offered another question)."""
    chat.onboard(guide, phase=1)
    kb = engine.kb
    first, second = kb.guides[guide].try_asking
    assert f"”{first}”" in chat.text() and f"”{second}”" in chat.text()
    own_sources = [
        kb.text("answer_source", source=kb.guides[guide].source, section=e.source)
        for e in kb.entries_of(guide)
    ]
    for question in (first, second):
        chat.say(question)
        assert any(line in chat.text() for line in own_sources)
        assert kb.text("fallback") not in chat.text()
