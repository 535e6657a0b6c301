"""Reminders, history, export and erasure through the real bot process (issue 4).

The reminder clock is simulated by moving a reminder row's `next_due_at` to now in
the database, exactly what the passing of time does; the bot's periodic job (every
0.3 s here) then finds it due.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import matplotlib.image
import pytest
from sqlalchemy import func, select, update

from bot.dialogs.onboarding import done_text
from bot.knowledge import Knowledge
from bot.storage import (
    Base,
    Checkin,
    Database,
    Question,
    Reminder,
    ReminderDelivery,
    User,
    utcnow,
)

from .botproc import Chat, Expect, contains, has_button, wait_until
from .conftest import BotFactory
from .fake_telegram import Call, FakeTelegram

pytestmark = pytest.mark.e2e

ALICE = 5001  # sets a reminder, checks in, exports and deletes everything
BOB = 5002  # blocks the bot, comes back, and keeps his data
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _summary_line(kb: Knowledge, zone_id: str, pain: int) -> str:
    zone = kb.traffic_light.zone(zone_id)
    return kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=pain)


def _make_due(db: Database, *user_ids: int) -> None:
    """The clock reaches the reminders: due now, the first user's a moment before the next."""
    now = utcnow()
    with db.session() as s:
        for i, user_id in enumerate(user_ids):
            s.execute(
                update(Reminder)
                .where(Reminder.user_id == user_id)
                .values(next_due_at=now - timedelta(seconds=len(user_ids) - i))
            )
        s.commit()


def _is_reminder(kb: Knowledge) -> Expect:
    # The reminder greets by the user's time of day, so any of its greetings will do.
    texts = {
        kb.text("reminder_message", greeting=kb.text(key))
        for key in kb.texts
        if key.startswith("reminder_greeting_")
    }

    def check(call: Call) -> bool:
        today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()
        return call.text in texts and call.button_data == [
            "rem:ci",
            f"rem:snooze:{today:%Y%m%d}",  # snooze is bound to the reminder's day
        ]

    return check


def _rows_per_table(db: Database, user_id: int) -> dict[str, int]:
    """How many rows of one user each table holds (users by id, the rest by user_id)."""
    counts: dict[str, int] = {}
    with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            column = table.c.id if table.name == "users" else table.c.get("user_id")
            if column is None:
                continue
            counts[table.name] = connection.execute(
                select(func.count()).select_from(table).where(column == user_id)
            ).scalar_one()
    return counts


def test_reminder_history_export_delete_and_blocked_user(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=120.0)
    db = Database(bot_db_url)
    alice, bob = Chat(fake, ALICE, first_name="Alice"), Chat(fake, BOB, first_name="Bob")
    alice.onboard(done_text(kb, "proximal"), guide="proximal", phase=2)
    bob.onboard(done_text(kb, "distal"), guide="distal", phase=1)
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()

    # Both set a daily reminder; Bob also asks a question (a row in `questions`).
    alice.command("paamindelse", contains("07:30"), args="07:30")
    bob.command("paamindelse", contains("08:00"), args="08:00")
    bob.say("hvor lang tid tager det", contains("Kilde"))
    with db.session() as s:
        reminder = s.get(Reminder, ALICE)
        assert reminder is not None and reminder.enabled
        assert reminder.local_time == time(7, 30) and reminder.next_due_at > utcnow()

    # Bob blocks the bot: the reminder gets 403 and Bob is marked inactive.
    fake.blocked_users.add(BOB)
    _make_due(db, BOB)
    wait_until(lambda: any(c.chat_id == BOB and c.status == 403 for c in fake.calls))

    def bob_active() -> bool:
        with db.session() as s:
            user = s.get(User, BOB)
            assert user is not None
            return user.active

    wait_until(lambda: not bob_active())
    with db.session() as s:
        [delivery] = s.scalars(select(ReminderDelivery).where(ReminderDelivery.user_id == BOB))
        assert delivery.status == "failed"

    # Alice's reminder arrives with its two buttons. Bob's was due a moment earlier in
    # the same run, and he could be reached again, but an inactive user gets nothing.
    fake.blocked_users.discard(BOB)
    since = alice.mark()
    _make_due(db, BOB, ALICE)
    reminder_msg = alice.wait(_is_reminder(kb), since)
    assert reminder_msg.button_texts == [
        kb.text("reminder_checkin_button"),
        kb.text("reminder_snooze_button"),
    ]
    assert bob.messages(since) == []

    def alice_delivery() -> ReminderDelivery | None:
        """Alice's delivery row once the bot recorded the send (it commits after sending)."""
        with db.session() as s:
            stmt = select(ReminderDelivery).where(
                ReminderDelivery.user_id == ALICE, ReminderDelivery.status != "claimed"
            )
            return s.scalars(stmt).first()

    wait_until(alice_delivery)
    with db.session() as s:
        [delivery] = s.scalars(select(ReminderDelivery).where(ReminderDelivery.user_id == ALICE))
        assert (delivery.status, delivery.kind, delivery.local_date) == ("sent", "daily", today)
        assert delivery.telegram_message_id == reminder_msg.result["message_id"]

    # "Start check-in" on the reminder starts the check-in; Alice completes it.
    pain_q = alice.press(reminder_msg, "rem:ci", has_button("ci:p:3"))
    assert pain_q.text == kb.text("checkin_q_pain")
    alice.checkin(pain_q, 3, "better", "run", contains(_summary_line(kb, "yellow", 3)))
    with db.session() as s:
        [row] = s.scalars(select(Checkin).where(Checkin.user_id == ALICE))
        assert (row.status, row.pain, row.morning, row.activity, row.zone) == (
            "done",
            3,
            "better",
            "run",
            "yellow",
        )
        reminder = s.get(Reminder, ALICE)
        assert reminder is not None and reminder.next_due_at > utcnow()  # today's is done

    # /historik: a chart as a real PNG.
    since = alice.mark()
    photo = alice.command("historik", lambda c: c.method == "sendPhoto")
    png = photo.files["photo"].content
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert "3/10" in " ".join(c.text for c in alice.messages(since))

    # /mine_data: JSON and CSV documents holding Alice's check-ins.
    since = alice.mark()
    alice.command("mine_data", contains(kb.text("export_csv")))
    documents = [c for c in alice.messages(since) if c.method == "sendDocument"]
    assert len(documents) == 2
    by_type = {c.files["document"].filename.rsplit(".", 1)[1]: c for c in documents}
    assert set(by_type) == {"json", "csv"}
    exported = json.loads(by_type["json"].files["document"].content.decode("utf-8"))
    assert [u["id"] for u in exported["users"]] == [ALICE]
    assert [(c["pain"], c["zone"], c["status"]) for c in exported["checkins"]] == [
        (3, "yellow", "done")
    ]
    assert [r["local_time"] for r in exported["reminders"]] == ["07:30:00"]
    assert all(r["user_id"] == ALICE for rows in exported.values() for r in rows if "user_id" in r)
    csv_text = by_type["csv"].files["document"].content.decode("utf-8")
    assert csv_text.splitlines()[0] == "table,row,field,value"
    assert "checkins,0,pain,3" in csv_text

    # Bob writes again: active again, and his reminders come back.
    bob.say("hej", lambda c: True)
    assert bob_active()
    since = bob.mark()
    _make_due(db, BOB)
    bob_reminder = bob.wait(_is_reminder(kb), since)
    pain_q = bob.press(bob_reminder, "rem:ci", has_button("ci:p:1"))
    bob.checkin(pain_q, 1, "same", "rest", contains(_summary_line(kb, "green", 1)))
    # Every reply has left the outbox, so Bob's rows stay put while Alice is erased.
    wait_until(lambda: sum(_rows_per_table(db, u)["outbox_messages"] for u in (ALICE, BOB)) == 0)
    bob_before = _rows_per_table(db, BOB)
    # Every table holding user data has Bob's rows (the outbox is empty once all is sent).
    assert all(n >= 1 for t, n in bob_before.items() if t != "outbox_messages"), bob_before
    assert _rows_per_table(db, ALICE)["checkins"] == 1

    # /slet + confirm: nothing of Alice is left in any table; Bob's rows are untouched.
    confirm = alice.command("slet", has_button("del:1"))
    assert confirm.text == kb.text("delete_question")
    alice.press(confirm, "del:1", contains(kb.text("table_checkins")))
    # The confirmation itself is an outbox row until Telegram has accepted it.
    wait_until(lambda: _rows_per_table(db, ALICE)["outbox_messages"] == 0)
    assert set(_rows_per_table(db, ALICE).values()) == {0}
    assert _rows_per_table(db, BOB) == bob_before
    with db.session() as s:
        assert s.scalars(select(Question).where(Question.user_id == ALICE)).first() is None

    bot.stop()
    log = bot.log()
    assert "hvor lang tid tager det" not in log and fake.token not in log
    db.dispose()
