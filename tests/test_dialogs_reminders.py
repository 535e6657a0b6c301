"""Reminders in words: set in every usual phrasing, shown on request, greeting by the hour."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest

from bot import dispatch, reminders
from bot.engine import Engine
from bot.replies import Reply
from bot.storage import Database, Reminder
from tests.engine_helpers import Chat, Clock


@pytest.fixture
def chat(engine: Engine) -> Chat:
    c = Chat(engine)
    c.onboard()
    return c


def _time(db: Database) -> time | None:
    with db.session() as s:
        reminder = s.get(Reminder, 1001)
        return None if reminder is None else reminder.local_time


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("mind mig 7:30", time(7, 30)),
        ("mind mig 7.30", time(7, 30)),
        ("mind mig halv otte", time(7, 30)),
        ("mind mig kvart over syv", time(7, 15)),
        ("påmindelse kl. 6", time(6, 0)),
        ("hver morgen kl 7", time(7, 0)),
        ("paamindelse kl 19", time(19, 0)),
    ],
)
def test_a_reminder_is_set_in_every_usual_phrasing(
    chat: Chat, database: Database, typed: str, expected: time
) -> None:
    chat.say(typed)
    assert _time(database) == expected, chat.text()


def test_when_do_you_remind_me_shows_the_setting(chat: Chat, engine: Engine) -> None:
    chat.say("hvornår minder du mig?")
    assert chat.text() == engine.kb.text("reminder_how")
    chat.say("/paamindelse 07:30")
    chat.say("hvornår minder du mig?")
    assert "07:30" in chat.text()
    assert chat.text().startswith(engine.kb.text("reminder_show", time="07:30", next="")[:20])


def test_a_paused_reminder_is_shown_as_paused(chat: Chat, engine: Engine) -> None:
    chat.say("/paamindelse 07:30")
    chat.say("/pause")
    chat.say("/paamindelse")
    assert chat.text() == engine.kb.text("reminder_show_paused", time="07:30")


@pytest.mark.parametrize(
    ("hour", "part"),
    [(3, "night"), (7, "morning"), (12, "day"), (18, "evening"), (23, "night")],
)
def test_the_greeting_follows_the_hour(hour: int, part: str) -> None:
    assert reminders.greeting_key(hour) == f"reminder_greeting_{part}"


def test_a_reminder_at_half_past_six_in_the_evening_says_good_evening(
    database: Database, engine: Engine, clock: Clock
) -> None:
    chat = Chat(engine)
    chat.onboard()
    chat.say("/paamindelse 18:32")
    sent: list[Reply] = []

    async def send(_chat_id: int, reply: Reply) -> int:
        sent.append(reply)
        return 1

    due = datetime(2026, 6, 10, 16, 32, tzinfo=UTC)  # 18:32 in Copenhagen (CEST)
    asyncio.run(dispatch.dispatch_due(database, engine.kb, send, due, "w"))
    [reply] = sent
    assert reply.text.startswith(engine.kb.text("reminder_greeting_evening"))
    assert "God dag" not in reply.text
