"""The real bot process in polling mode: onboarding, answers, check-ins, a crash mid check-in.

`python -m bot run` runs as a subprocess against the fake Bot API on 127.0.0.1 with its
own SQLite file; the test presses the buttons the bot sent and reads the rows it stored.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.dialogs.onboarding import done_text
from bot.engine import MENU_COMMANDS
from bot.knowledge import Knowledge
from bot.storage import Checkin, Database, OutboxMessage, Question, User

from .botproc import Chat, button_data, contains, has_button, wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.e2e

USER = 4711
GROUP = -100_200_300
QUESTIONS = (
    "kan jeg løbe med ondt under ballen",
    "hvor lang tid tager det",
    "hjælper massage",
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
FIRST_START_TIMEOUT = 120.0  # the first process of a session builds the lemma cache


def _summary_line(kb: Knowledge, zone_id: str, pain: int) -> str:
    zone = kb.traffic_light.zone(zone_id)
    return kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=pain)


def _outbox_rows(db: Database) -> int:
    with db.session() as s:
        return len(list(s.scalars(select(OutboxMessage.id))))


def _checkins(db: Database, user_id: int) -> list[Checkin]:
    with db.session() as s:
        return list(
            s.scalars(select(Checkin).where(Checkin.user_id == user_id).order_by(Checkin.id))
        )


def test_onboarding_questions_checkins_and_a_crash_mid_checkin(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=FIRST_START_TIMEOUT)
    db = Database(bot_db_url)
    chat = Chat(fake, USER, first_name="Mette")
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()

    # The command menu was registered with the Danish descriptions from the YAML.
    assert fake.bot_commands is not None
    assert [c["command"] for c in fake.bot_commands] == list(MENU_COMMANDS)
    for command in fake.bot_commands:
        assert command["description"] == kb.text(f"cmd_{command['command']}")
    descriptions = " ".join(c["description"] for c in fake.bot_commands).lower()
    assert any(letter in descriptions for letter in "æøå"), descriptions  # Danish, not English

    # Onboarding by buttons: /start -> consent -> guide -> phase.
    since = chat.mark()
    consent = chat.command("start", has_button("ob:c:1"))
    assert "Mette" in chat.messages(since)[0].text
    guides = chat.press(consent, "ob:c:1", has_button("ob:g:proximal"))
    phases = chat.press(guides, "ob:g:proximal", has_button("ob:p:3"))
    chat.press(phases, "ob:p:3", contains(done_text(kb, "proximal")))
    # A pressed button is removed from its message, so it cannot be pressed twice.
    assert any(c.method == "editMessageReplyMarkup" for c in fake.sent[since:])
    with db.session() as s:
        user = s.get(User, USER)
        assert user is not None
        assert (user.consent, user.guide, user.phase) == (True, "proximal", 3)
        assert user.consent_at is not None and user.chat_id == USER

    # Three real questions, answered from the guide with their source named.
    answers = []
    for question in QUESTIONS:
        answer = chat.say(question, lambda c: True)
        assert "Kilde" in answer.text, answer.describe()
        assert any(d.startswith("fb:1:") for d in answer.button_data), answer.describe()
        answers.append(answer)
    assert len({a.text for a in answers}) == 3
    feedback = next(d for d in answers[0].button_data if d.startswith("fb:1:"))
    chat.press(answers[0], feedback, contains(kb.text("feedback_thanks")))
    with db.session() as s:
        stmt = select(Question).where(Question.user_id == USER).order_by(Question.id)
        asked = list(s.scalars(stmt))
    assert [q.text for q in asked] == list(QUESTIONS)
    assert all(q.kind == "answer" and q.entry_id for q in asked)
    assert len({q.entry_id for q in asked}) == 3
    assert [q.helpful for q in asked] == [True, None, None]
    assert feedback == f"fb:1:{asked[0].id}"

    # A whole check-in by buttons.
    pain_q = chat.command("checkin", has_button("ci:p:2"))
    morning_q = chat.press(pain_q, "ci:p:2", has_button("ci:m:same"))
    activity_q = chat.press(morning_q, "ci:m:same", has_button("ci:a:run"))
    note_q = chat.press(activity_q, "ci:a:run", has_button("ci:n:skip"))
    chat.press(note_q, "ci:n:skip", contains(_summary_line(kb, "green", 2)))
    [first] = _checkins(db, USER)
    assert (first.status, first.step, first.local_date) == ("done", None, today)
    assert (first.pain, first.morning, first.activity, first.zone) == (2, "same", "run", "green")
    assert first.completed_at is not None

    # A second check-in today replaces the first after asking.
    confirm = chat.command("checkin", has_button("cr:1"))
    pain_q = chat.press(confirm, "cr:1", has_button("ci:p:4"))
    morning_q = chat.press(pain_q, "ci:p:4", has_button("ci:m:worse"))
    # The morning question arrived, so the pain answer is committed; once its outbox row
    # is gone the bot has recorded the send too (outside the one window of bot/outbox.py
    # where a message can go twice): crash now.
    wait_until(lambda: _outbox_rows(db) == 0)
    bot.kill()
    rows = _checkins(db, USER)
    assert [(r.status, r.pain, r.step) for r in rows] == [
        ("done", 2, None),
        ("open", 4, "morning"),
    ]

    # The user presses the next button while the bot is down. By the time the new
    # process sees it, Telegram no longer accepts an answer to the callback query
    # (they expire within seconds); the press must count all the same.
    since = chat.mark()
    fake.press_button(USER, morning_q, button_data(morning_q, "ci:m:worse") or "")
    fake.fail_next("answerCallbackQuery", status=400, description=QUERY_TOO_OLD)
    bot.start_and_wait()  # same database, new process
    activity_q = chat.wait(has_button("ci:a:strength"), since)
    note_q = chat.press(activity_q, "ci:a:strength", has_button("ci:n:skip"))
    summary = chat.press(note_q, "ci:n:skip", contains(_summary_line(kb, "red", 4)))
    assert kb.text("error") not in [c.text for c in chat.messages()]
    rows = _checkins(db, USER)
    assert [(r.id, r.status) for r in rows] == [(first.id, "replaced"), (rows[1].id, "done")]
    second = rows[1]
    assert (second.pain, second.morning, second.activity, second.zone) == (
        4,
        "worse",
        "strength",
        "red",
    )
    assert second.local_date == today and second.step is None
    # Each check-in question was asked exactly once per check-in: nothing replayed.
    questions_asked = [c for c in chat.messages() if has_button("ci:m:worse")(c)]
    assert len(questions_asked) == 2  # the first and the second check-in
    assert summary.text.count(_summary_line(kb, "red", 4)) == 1

    # Privacy: the log names neither the token nor anything the user typed.
    bot.stop()
    log = bot.log()
    assert "Application started" in log
    assert fake.token not in log and fake.token.split(":", 1)[1] not in log
    for question in QUESTIONS:
        assert question not in log
    assert " ERROR " not in log
    db.dispose()


def test_media_and_group_messages(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=FIRST_START_TIMEOUT)
    chat = Chat(fake, USER)

    for send, key in (
        (fake.send_sticker, "unsupported_sticker"),
        (fake.send_photo, "unsupported_photo"),
        (fake.send_voice, "unsupported_voice"),
    ):
        since = chat.mark()
        send(USER)
        reply = chat.wait(lambda c: True, since)
        assert reply.text == kb.text(key)

    # In a group only a mention (or a command) is for the bot.
    group = Chat(fake, USER, chat_id=GROUP)
    since = group.mark()
    fake.send_text(USER, "hvor lang tid tager det", chat_id=GROUP)
    answer = group.say(f"{fake.mention()} hvor lang tid tager det", lambda c: True)
    assert [c.text for c in group.messages(since)] == [answer.text]
    assert fake.mention() not in answer.text
    assert answer.text != kb.text("unknown_command")

    # Answering in a group must not move the user's private chat (reminders go there).
    db = Database(bot_db_url)
    with db.session() as s:
        user = s.get(User, USER)
        assert user is not None and user.chat_id == USER
    db.dispose()
    bot.stop()
    assert "hvor lang tid tager det" not in bot.log()
