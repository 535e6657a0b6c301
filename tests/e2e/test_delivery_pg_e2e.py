"""Two bot processes on one PostgreSQL database: the one sending reminders is killed in
the middle of its batch, and the other sends the rest within 90 s, none of them twice but
one Telegram accepted in the instant before the kill (the documented window; seen once in
a loaded CI run)."""

from __future__ import annotations

import time
from datetime import time as wall_time
from datetime import timedelta

import pytest

from bot import reminders
from bot.storage import Database, Reminder, User, utcnow

from .botproc import wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

USERS = list(range(5001, 5041))
TAKEOVER_LIMIT = 90.0
# Sends that can be accepted by Telegram and not yet recorded when a process dies: the
# sender's messages in flight (one per chat, a few chats at a time).
WINDOW = 4


def _due_now(db: Database) -> None:
    now = utcnow()
    with db.session() as s:
        users = [User(id=u, chat_id=u, consent=True, consent_at=now) for u in USERS]
        s.add_all(users)
        s.flush()
        for user in users:
            reminders.set_time(s, user, wall_time(7, 30), now)
        s.flush()
        for reminder in s.query(Reminder):
            reminder.next_due_at = now - timedelta(minutes=1)
        s.commit()


def test_the_other_process_sends_a_killed_senders_reminders_once(
    fake_telegram: FakeTelegram, bot_process: BotFactory, pg_database_url: str
) -> None:
    fake = fake_telegram
    db = Database(pg_database_url)
    db.upgrade()
    _due_now(db)
    slow = {"MESSAGES_PER_SECOND": "4", "DATABASE_URL": pg_database_url}
    first = bot_process(slow, name="first").start_and_wait(timeout=120)
    second = bot_process(slow, name="second").start_and_wait(timeout=120)

    def reminded() -> int:
        return len({c.chat_id for c in fake.sent if c.method == "sendMessage"})

    wait_until(lambda: reminded() >= 8, timeout=30)
    # Hold the sends in flight at the edge (never carried out), then kill the sender: the
    # rest of its batch is leased to a dead process.
    fake.drop_next("sendMessage", delay=30.0, count=10_000)
    first.kill()
    # The last sends Telegram accepted before the kill may not have been recorded yet: the
    # one window in which a message can go twice (bot/dispatch.py, bot/outbox.py).
    accepted = [c.chat_id for c in fake.sent if c.method == "sendMessage"]
    in_window = set(accepted[-WINDOW:])
    fake.clear_faults()
    killed_at = time.monotonic()
    before = reminded()
    assert before < len(USERS)  # the kill did land mid-batch

    wait_until(lambda: reminded() == len(USERS), timeout=TAKEOVER_LIMIT)
    took = time.monotonic() - killed_at
    print(f"the second process sent the remaining {len(USERS) - before} in {took:.0f} s")
    second.check_alive()
    per_chat: dict[int, int] = {}
    for call in fake.sent:
        if call.method == "sendMessage" and isinstance(call.chat_id, int):
            per_chat[call.chat_id] = per_chat.get(call.chat_id, 0) + 1
    assert set(per_chat) == set(USERS)  # every reminder arrived
    twice = {u for u, n in per_chat.items() if n > 1}
    assert max(per_chat.values()) <= 2 and twice <= in_window, (twice, in_window)
    db.dispose()
