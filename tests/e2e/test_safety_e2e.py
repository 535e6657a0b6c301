"""Safety in every state through the real bot process over the fake Bot API (issue 8).

Groups get one line and a deep link instead of anything personal, and the link works in
the private chat; a red flag at every check-in step and in the note is answered with the
doctor's advice first while the check-in still completes; old buttons change no row and
get a polite line; an oversized callback id gets a reply and logs no error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.dialogs.onboarding import done_text
from bot.knowledge import Knowledge
from bot.storage import Checkin, Database, Reminder, User, utcnow

from .botproc import Chat, contains, has_button, wait_until
from .conftest import BotFactory
from .fake_telegram import BOT_USERNAME, Call, FakeTelegram

pytestmark = pytest.mark.e2e

ALICE = 7001  # has health data, writes in a group, follows the deep links
BOB = 7002  # red flags at every step of a check-in
CAROL = 7003  # presses old buttons
GROUP = -7100
NOTE = "QZXV stiv efter bakkerne"  # distinctive: found in a group message only if it leaked
RED_FLAG = "jeg har fået nummenhed i foden"
RED_FLAG_NOTE = "jeg har fået nummenhed og prikken i foden i dag"
# At any instant these two zones are on different dates (UTC+14 and UTC-11): one of them
# is not on Copenhagen's date, so the user's "today" can be moved past a reminder's day.
FAR_ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago")


def _summary_line(kb: Knowledge, zone_id: str, pain: int) -> str:
    zone = kb.traffic_light.zone(zone_id)
    return kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=pain)


def _urls(call: Call) -> list[str]:
    markup = call.reply_markup or {}
    rows: list[list[dict[str, Any]]] = markup.get("inline_keyboard", [])
    return [b["url"] for row in rows for b in row if "url" in b]


def _rows(db: Database) -> list[tuple[object, ...]]:
    """Every check-in, reminder and profile: what a stale press must not change."""
    with db.session() as s:
        checkins = [
            (c.id, c.status, c.step, c.pain, c.morning, c.activity, c.note, c.zone)
            for c in s.scalars(select(Checkin).order_by(Checkin.id))
        ]
        reminders = [
            (r.user_id, r.next_due_at, r.enabled, r.snoozed) for r in s.scalars(select(Reminder))
        ]
        users = [
            (u.id, u.consent, u.consent_at, u.guide, u.phase)
            for u in s.scalars(select(User).order_by(User.id))
        ]
    return [*checkins, *reminders, *users]


def _checkin_by_buttons(chat: Chat, pain_q: Call, pain: int, note: str | None, done: str) -> None:
    morning_q = chat.press(pain_q, f"ci:p:{pain}", has_button("ci:m:same"))
    activity_q = chat.press(morning_q, "ci:m:same", has_button("ci:a:run"))
    note_q = chat.press(activity_q, "ci:a:run", has_button("ci:n:skip"))
    if note is None:
        chat.press(note_q, "ci:n:skip", contains(done))
    else:
        chat.say(note, contains(done))


def test_a_group_gets_no_health_data_and_the_deep_link_works_in_private(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=120.0)
    db = Database(bot_db_url)
    alice = Chat(fake, ALICE, first_name="Alice")
    in_group = Chat(fake, ALICE, chat_id=GROUP, first_name="Alice")
    alice.onboard(done_text(kb, "proximal"))
    pain_q = alice.command("checkin", has_button("ci:p:3"))
    _checkin_by_buttons(alice, pain_q, 3, NOTE, _summary_line(kb, "yellow", 3))

    pain_line = _summary_line(kb, "yellow", 3)
    group_start = in_group.mark()
    links = {}
    for command in ("mine_data", "historik", "checkin", "slet"):
        since = in_group.mark()
        fake.send_command(ALICE, command, chat_id=GROUP, first_name="Alice", mention_bot=True)
        reply = in_group.wait(contains(kb.text("private_only")), since)
        [links[command]] = _urls(reply)
    since = in_group.mark()
    in_group.command("mine_data", contains(kb.text("private_only")))  # without @botname too
    # The link's payload starts the check-in in private (today's is done: replace it?).
    confirm = alice.command("start", has_button("cr:1"), args="checkin")
    alice.press(confirm, "cr:1", has_button("ci:p:4"))
    # The open check-in does not take a mention in the group, nor ask its question there.
    before = _rows(db)
    in_group.say(f"{fake.mention()} hvor lang tid tager det", lambda c: True)
    in_group.say(f"{fake.mention()} 4", lambda c: True)
    assert _rows(db) == before

    group_calls = [c for c in fake.sent[group_start:] if c.chat_id == GROUP]
    assert group_calls and {c.method for c in group_calls} == {"sendMessage"}  # no document/photo
    for call in group_calls:
        assert NOTE not in call.text and pain_line not in call.text, call.describe()
        assert not [d for d in call.button_data if d.startswith("ci:")], call.describe()
    assert next(c.text for c in in_group.messages(since)) == kb.text("private_only")

    # Each link opens the private chat at the right place (Telegram sends /start <payload>).
    for command, url in links.items():
        parsed = urlparse(url)
        assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", "t.me", f"/{BOT_USERNAME}")
        [payload] = parse_qs(parsed.query)["start"]
        assert payload == command
    since = alice.mark()
    alice.command("start", contains(kb.text("export_csv")), args="mine_data")
    documents = [c for c in alice.messages(since) if c.method == "sendDocument"]
    assert len(documents) == 2
    alice.command("start", lambda c: c.method == "sendPhoto", args="historik")
    alice.command("start", has_button("del:1"), args="slet")
    bot.stop()
    assert "ERROR" not in bot.log()
    db.dispose()


def test_red_flags_at_every_checkin_step_and_in_the_note(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=120.0)
    db = Database(bot_db_url)
    bob = Chat(fake, BOB, first_name="Bob")
    bob.onboard(done_text(kb, "proximal"))
    question = bob.command("checkin", has_button("ci:p:4"))
    for step, press in (("ci:p", "ci:p:4"), ("ci:m", "ci:m:same"), ("ci:a", "ci:a:run")):
        since = bob.mark()
        fake.send_text(BOB, RED_FLAG, first_name="Bob")
        advice = bob.wait(contains("læge"), since)
        question = bob.wait(has_button(press), since)  # the same step, asked again
        assert advice.result["message_id"] < question.result["message_id"]
        assert question.text.startswith(kb.text("prompt_again"))
        question = bob.press(question, press, lambda c: c.button_data != [])
        assert not [d for d in question.button_data if d.startswith(f"{step}:")]  # moved on
    since = bob.mark()
    fake.send_text(BOB, RED_FLAG_NOTE, first_name="Bob")
    advice = bob.wait(contains("læge"), since)
    summary = bob.wait(contains(_summary_line(kb, "yellow", 4)), since)
    assert advice.result["message_id"] < summary.result["message_id"]
    with db.session() as s:
        [row] = s.scalars(select(Checkin).where(Checkin.user_id == BOB))
        assert (row.status, row.pain, row.morning, row.activity, row.zone) == (
            "done",
            4,
            "same",
            "run",
            "yellow",
        )
        assert (row.note, row.note_red_flag) == (RED_FLAG_NOTE, True)
    since = bob.mark()
    bob.command("historik", lambda c: c.method == "sendPhoto")
    day = row.local_date.strftime("%d.%m.")
    shown = " ".join(c.text for c in bob.messages(since))
    assert kb.text("history_red_flag_notes", dates=day) in shown
    bot.stop()
    assert "ERROR" not in bot.log()
    db.dispose()


def _forge_press(fake: FakeTelegram, user_id: int, message: Call, data: str) -> None:
    """A callback query a hostile client sends: data no button of the message carries.

    Its query id is unknown to the fake, so answering it fails as an expired one does;
    the bot must reply all the same.
    """
    query = {
        "id": f"forged-{len(fake.sent)}",
        "from": {"id": user_id, "is_bot": False, "first_name": "Carol"},
        "chat_instance": f"ci{user_id}",
        "message": message.result,
        "data": data,
    }
    fake.enqueue("callback_query", query)


def test_stale_buttons_change_nothing_and_an_oversized_id_gets_a_reply(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=120.0)
    db = Database(bot_db_url)
    carol = Chat(fake, CAROL, first_name="Carol")
    expired = contains(kb.text("button_expired"))

    # An old consent question, never pressed; consent is given at a second /start.
    old_consent = carol.command("start", has_button("ob:c:0"))
    carol.onboard(done_text(kb, "proximal"))

    # Today's reminder, pressed after the user's day moved on: it snoozes nothing.
    carol.command("paamindelse", contains("07:30"), args="07:30")
    with db.session() as s:
        s.execute(update(Reminder).where(Reminder.user_id == CAROL).values(next_due_at=utcnow()))
        s.commit()
    reminder = carol.wait(has_button("rem:snooze"), 0)

    def rescheduled() -> bool:
        with db.session() as s:
            row = s.get(Reminder, CAROL)
            return row is not None and row.next_due_at > utcnow()

    wait_until(rescheduled)  # the dispatcher moved it to tomorrow after sending
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    later = next(z for z in FAR_ZONES if datetime.now(ZoneInfo(z)).date() != today)
    with db.session() as s:
        s.execute(update(User).where(User.id == CAROL).values(timezone=later))
        s.commit()
    before = _rows(db)
    carol.press(reminder, "rem:snooze", expired)
    assert _rows(db) == before
    with db.session() as s:
        s.execute(update(User).where(User.id == CAROL).values(timezone="Europe/Copenhagen"))
        s.commit()

    # An old, unpressed pain button does not answer the check-in open now.
    old_pain_q = carol.command("checkin", has_button("ci:p:7"))
    carol.command("annuller", contains(kb.text("flow_checkin_cancelled")))
    pain_q = carol.command("checkin", has_button("ci:p:1"))
    before = _rows(db)
    carol.press(old_pain_q, "ci:p:7", expired)
    assert _rows(db) == before

    # The check-in is done; an old "replace?" button starts no replacement.
    _checkin_by_buttons(carol, pain_q, 1, None, _summary_line(kb, "green", 1))
    confirm = carol.command("checkin", has_button("cr:1"))
    carol.command("annuller", contains(kb.text("cancelled")))
    before = _rows(db)
    carol.press(confirm, "cr:1", expired)
    assert _rows(db) == before

    # The old consent question's "Nej tak", long after consenting: nothing withdrawn.
    before = _rows(db)
    carol.press(old_consent, "ob:c:0", expired)
    assert _rows(db) == before

    # A forged feedback id too large for any database gets a reply, not "Ups".
    answer = carol.say("kan jeg løbe med ondt under ballen", has_button("fb:1"))
    since = carol.mark()
    _forge_press(fake, CAROL, answer, "fb:1:99999999999999999999999999")
    carol.wait(expired, since)
    assert kb.text("error") not in [c.text for c in carol.messages()]
    bot.stop()
    log = bot.log()
    assert "ERROR" not in log and "Traceback" not in log
    db.dispose()
