"""Delivery you can trust, against the real process: kill -9 and network faults at the
Bot API's edge lose no update and no reply, and tell nobody "ikke gemt" falsely.

Faults are injected in the fake Bot API (tests/e2e/fake_telegram.py): 429 with
retry_after, 500, 502, a dropped connection, slow then dropped, slow but delivered.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bot.dialogs.onboarding import done_text
from bot.knowledge import Knowledge
from bot.storage import Checkin, Database, InboxUpdate, OutboxMessage, Question

from .botproc import Chat, button_data, contains, has_button, wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.e2e

FIRST_START_TIMEOUT = 120.0
QUESTIONS = (
    "kan jeg løbe med ondt under ballen",
    "hvor lang tid tager det",
    "hjælper massage",
)


def _summary_line(kb: Knowledge, zone_id: str, pain: int) -> str:
    zone = kb.traffic_light.zone(zone_id)
    return kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=pain)


def _count(db: Database, stmt: object) -> int:
    with db.session() as s:
        return int(s.scalar(stmt) or 0)  # type: ignore[call-overload]


def _outbox(db: Database) -> int:
    return _count(db, select(func.count()).select_from(OutboxMessage))


def _unprocessed(db: Database) -> int:
    return _count(
        db, select(func.count()).select_from(InboxUpdate).where(InboxUpdate.processed_at.is_(None))
    )


def _done_checkins(db: Database, user_id: int) -> list[tuple[str, int | None, str | None]]:
    with db.session() as s:
        rows = s.scalars(select(Checkin).where(Checkin.user_id == user_id).order_by(Checkin.id))
        return [(r.status, r.pain, r.morning) for r in rows]


def test_a_kill_right_after_a_burst_is_confirmed_loses_nothing(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake = fake_telegram
    bot = bot_process().start_and_wait(timeout=FIRST_START_TIMEOUT)
    db = Database(bot_db_url)
    users = list(range(7001, 7011))
    # Sends hang at the edge and are never carried out, so nothing is answered before
    # the kill: what the restarted process answers is all there is.
    fake.drop_next("sendMessage", delay=30.0, count=10_000)
    for question in QUESTIONS:
        for user in users:
            fake.send_text(user, question)
    # The bot's next getUpdates confirmed all 30: Telegram would never send them again.
    wait_until(lambda: fake.pending_updates == 0, timeout=20)
    bot.kill()
    assert _count(db, select(func.count()).select_from(InboxUpdate)) == 30

    fake.clear_faults()
    bot.start_and_wait()
    for user in users:
        chat = Chat(fake, user, timeout=60)
        chat.wait_count(3, lambda c: True, since=0)
    wait_until(lambda: _outbox(db) == 0 and _unprocessed(db) == 0, timeout=30)
    for user in users:
        # A guest without a guide gets the first answer and a "which guide?" for the
        # others: three different messages, each exactly once.
        replies = [(c.text, tuple(c.button_data)) for c in fake.messages_to(user)]
        assert len(replies) == 3 and len(set(replies)) == 3, replies
        assert "Kilde" in replies[0][0]
    db.dispose()


Inject = Callable[[FakeTelegram], None]
FAULTS: dict[str, Inject] = {
    "429": lambda f: f.fail_next_429("sendMessage", retry_after=1),
    "500": lambda f: f.fail_next("sendMessage", status=500),
    "502": lambda f: f.fail_next("sendMessage", status=502),
    "dropped connection": lambda f: f.drop_next("sendMessage"),
    "slow then dropped": lambda f: f.drop_next("sendMessage", delay=2.0),
    "slow but delivered": lambda f: f.slow_next("sendMessage", delay=2.0),
}


def test_one_fault_of_each_kind_on_a_prompt_and_on_the_summary(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=FIRST_START_TIMEOUT)
    db = Database(bot_db_url)
    summary_line = _summary_line(kb, "yellow", 3)
    user = 8000
    for fault, inject in FAULTS.items():
        for stage in ("prompt", "summary"):
            user += 1
            case = f"{fault} on the {stage} (user {user})"
            chat = Chat(fake, user, timeout=30)
            chat.onboard(done_text(kb, "proximal"))
            pain_q = chat.command("checkin", has_button("ci:p:3"))
            if stage == "prompt":
                inject(fake)
            morning_q = chat.press(pain_q, "ci:p:3", has_button("ci:m:same"))
            activity_q = chat.press(morning_q, "ci:m:same", has_button("ci:a:run"))
            note_q = chat.press(activity_q, "ci:a:run", has_button("ci:n:skip"))
            if stage == "summary":
                inject(fake)
            chat.press(note_q, "ci:n:skip", contains(summary_line))
            wait_until(lambda: _outbox(db) == 0, timeout=30)
            texts = [c.text for c in chat.messages()]
            prompts = [c for c in chat.messages() if button_data(c, "ci:m:same")]
            assert len(prompts) == 1, case  # the prompt arrived exactly once
            assert sum(summary_line in t for t in texts) == 1, case  # and the summary
            assert kb.text("error") not in texts, case  # no false "not saved"
            assert len(texts) == len(set(texts)) or _dupes_are_prompts_only(texts), case
            assert _done_checkins(db, user) == [("done", 3, "same")], case
    assert _unprocessed(db) == 0
    bot.stop()
    assert " ERROR " not in bot.log()
    db.dispose()


def _dupes_are_prompts_only(texts: list[str]) -> bool:
    """Onboarding and check-in repeat some texts on purpose (e.g. the same hint twice)."""
    return all(n == 1 for n in Counter(texts).values())


def test_repeated_kills_during_concurrent_checkins_lose_and_double_no_answer(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot = bot_process().start_and_wait(timeout=FIRST_START_TIMEOUT)
    db = Database(bot_db_url)
    users = list(range(9001, 9009))
    chats = {u: Chat(fake, u, timeout=90) for u in users}
    for chat in chats.values():
        chat.onboard(done_text(kb, "proximal"))
    pains = {u: i % 11 for i, u in enumerate(users, start=2)}
    errors: list[BaseException] = []

    def checkin(user: int) -> None:
        chat = chats[user]
        try:
            pain_q = chat.command("checkin", has_button("ci:p:3"))
            morning_q = chat.press(pain_q, f"ci:p:{pains[user]}", has_button("ci:m:worse"))
            activity_q = chat.press(morning_q, "ci:m:worse", has_button("ci:a:rest"))
            note_q = chat.press(activity_q, "ci:a:rest", has_button("ci:n:skip"))
            chat.press(note_q, "ci:n:skip", contains(_summary_line(kb, "red", pains[user])))
            for question in QUESTIONS:
                chat.say(question, contains("Kilde"))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=checkin, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    kills = 0
    while kills < 10 and any(t.is_alive() for t in threads):
        wait_until(lambda: len(fake.sent) > 0, timeout=5)  # the new process is answering
        threading.Event().wait(0.3)
        bot.kill()
        kills += 1
        bot.start_and_wait()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        for user in users:
            print(user, [c.describe() for c in chats[user].messages()])
    assert not errors, errors
    assert kills >= 6  # the kills did land in the middle of the check-ins
    wait_until(lambda: _outbox(db) == 0 and _unprocessed(db) == 0, timeout=30)
    sent_twice = 0
    for user in users:
        # Every answer stored exactly once: one finished check-in with what was pressed.
        assert _done_checkins(db, user) == [("done", pains[user], "worse")]
        asked = _count(
            db, select(func.count()).select_from(Question).where(Question.user_id == user)
        )
        assert asked == len(QUESTIONS)
        texts = [c.text for c in chats[user].messages()]
        assert kb.text("error") not in texts
        sent_twice += sum(n - 1 for n in Counter(texts).values() if n > 1)
    # Only the documented window (Telegram accepted it, the process died before recording
    # that) sends a message twice: at most one per chat in flight per kill.
    assert sent_twice <= kills * len(users)
    print(f"kills={kills} messages sent twice={sent_twice}")
    db.dispose()
