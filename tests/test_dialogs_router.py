"""The order of decisions: a prompt never swallows a question, and prompts expire."""

from __future__ import annotations

from bot.engine import Engine
from bot.storage import Checkin, Database, User
from tests.engine_helpers import Chat, Clock


def _user(db: Database) -> User:
    with db.session() as s:
        user = s.get(User, 1001)
        assert user is not None
        return user


def _at_phase_prompt(chat: Chat) -> None:
    chat.say("/start")
    chat.tap("Ja, det må du")
    chat.tap("Under ballen (proksimal)")


def test_asking_about_the_phases_at_the_phase_prompt_explains_them(
    chat: Chat, database: Database
) -> None:
    _at_phase_prompt(chat)
    chat.say("hvad er forskellen på faserne?")
    assert "Fase 2: Progressiv belastning (Uge 3-8)" in chat.text()
    assert "Fase 1" in chat.labels()
    assert _user(database).phase is None


def test_a_question_at_the_phase_prompt_is_answered_and_the_prompt_asked_again(
    chat: Chat, engine: Engine, database: Database
) -> None:
    _at_phase_prompt(chat)
    replies = chat.say("hvor lang tid tager det at komme sig over hasetendinopati")
    assert "Kilde" in replies[0].text
    assert replies[-1].text.startswith(engine.kb.text("prompt_again"))
    assert "Fase 1" in chat.labels()
    assert _user(database).phase is None


def test_a_second_message_that_is_no_answer_closes_the_prompt(
    chat: Chat, engine: Engine, database: Database
) -> None:
    _at_phase_prompt(chat)
    chat.say("hvor lang tid tager det at komme sig over hasetendinopati")
    chat.say("kan man løbe med hasetendinopati")
    assert engine.kb.text("prompt_again") not in chat.text()
    chat.say("hvad med i fase 3?")
    assert engine.kb.text("phase_set", phase=3) not in chat.text()
    user = _user(database)
    assert (user.phase, user.dialog_state) == (None, None)


def test_after_declining_consent_a_question_gets_an_answer(chat: Chat, engine: Engine) -> None:
    chat.say("/start")
    chat.tap("Nej tak")
    chat.say("kan man løbe med hasetendinopati")
    assert engine.kb.text("guide_hint") not in chat.text()
    assert "løb" in chat.last[0].text.lower()


def test_nonsense_at_a_prompt_gets_the_hint_and_the_question(chat: Chat, engine: Engine) -> None:
    chat.say("/start")
    replies = chat.say("blåbær")
    assert replies[0].text == engine.kb.text("consent_hint")
    assert chat.labels() == ["Ja, det må du", "Nej tak"]


def test_a_question_the_bot_cannot_answer_gets_the_fallback_and_the_prompt_again(
    chat: Chat, engine: Engine
) -> None:
    chat.say("/start")
    replies = chat.say("hvad koster en ny cykel i dag")
    assert replies[0].text.startswith(engine.kb.text("fallback"))
    assert replies[-1].text.startswith(engine.kb.text("prompt_again"))


def test_a_red_flag_at_a_prompt_advises_a_doctor_and_asks_again(chat: Chat) -> None:
    chat.say("/start")
    chat.say("smerten under ballen vækker mig hver nat")
    assert "læge" in chat.text()
    assert chat.labels()[-2:] == ["Ja, det må du", "Nej tak"]


def test_a_red_flag_with_an_answer_gives_the_advice_and_takes_the_answer(
    chat: Chat, database: Database
) -> None:
    chat.onboard()
    chat.say("/checkin")
    chat.say("smerten er 4 og den vækker mig om natten")
    assert "læge" in chat.text()
    with database.session() as s:
        row = s.query(Checkin).one()
        assert (row.pain, row.step) == (4, "morning")


def test_a_command_at_a_prompt_runs_and_the_prompt_is_asked_again(
    chat: Chat, engine: Engine
) -> None:
    chat.say("/start")
    replies = chat.say("/privatliv")
    assert replies[0].text == engine.kb.text("privacy")
    assert replies[-1].text.startswith(engine.kb.text("prompt_again"))
    chat.say("ja")
    assert engine.kb.text("consent_given") in chat.text()


def test_an_unanswered_prompt_expires(
    chat: Chat, engine: Engine, database: Database, clock: Clock
) -> None:
    chat.say("/start")
    clock.advance(minutes=engine.settings.prompt_timeout_minutes + 1)
    chat.say("ja")
    assert not _user(database).consent
    assert engine.kb.text("consent_given") not in chat.text()


def test_the_phase_is_set_only_at_the_phase_prompt(chat: Chat, database: Database) -> None:
    chat.onboard(phase=1)
    chat.say("fase 3")
    assert _user(database).phase == 1
    chat.say("/guide")
    chat.tap("Hoften")
    chat.tap("Fase 2")
    assert _user(database).phase == 2
    chat.press("ob:p:4")  # an old phase button, pressed with no phase question open
    assert _user(database).phase == 2


def test_cancel_at_a_prompt_closes_it(chat: Chat, engine: Engine, database: Database) -> None:
    chat.say("/start")
    chat.say("annuller")
    assert chat.text() == engine.kb.text("cancelled")
    assert _user(database).dialog_state is None


def test_a_question_during_a_checkin_is_answered_and_the_step_asked_again(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.onboard()
    chat.say("/checkin")
    chat.say("hvor lang tid tager det at komme sig over hasetendinopati")
    assert "Kilde" in chat.text()
    assert "0" in chat.labels() and "10" in chat.labels()
    chat.tap("3")
    with database.session() as s:
        assert s.query(Checkin).one().pain == 3
