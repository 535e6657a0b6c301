"""Reminder dispatch with a controlled clock, on SQLite and PostgreSQL.

The network edge is a fake `send` that records (chat_id, reply); a process dying is
`Crash`, a BaseException the dispatcher does not catch, so nothing after it runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bot import dispatch, reminders
from bot.engine import Engine
from bot.knowledge import Knowledge
from bot.replies import Reply
from bot.storage import (
    Checkin,
    Database,
    Reminder,
    ReminderDelivery,
    User,
    claim_due_reminders,
)
from tests.engine_helpers import Chat, Clock, knowledge_and_matcher, make_engine

CPH = ZoneInfo("Europe/Copenhagen")
MORNING = time(7, 30)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def chat_of(user_id: int) -> int:
    """Chat ids differ from user ids, so the tests see which one the dispatcher uses."""
    return user_id + 1_000_000


class Crash(BaseException):
    """The bot process dies at this point."""


@dataclass
class FakeSend:
    """The Telegram edge: records what would have been sent, fails on request."""

    sent: list[tuple[int, Reply]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    failures: Counter[int] = field(default_factory=Counter)
    crash_before: int | None = None  # crash on this call (0-based), before it is sent
    crash_after: int | None = None  # crash on this call, after Telegram accepted it
    calls: int = 0

    async def __call__(self, chat_id: int, reply: Reply) -> int:
        call = self.calls
        self.calls += 1
        await asyncio.sleep(0)  # a real request yields to the event loop
        if call == self.crash_before:
            raise Crash
        if chat_id in self.blocked:
            raise dispatch.RecipientBlocked("Forbidden: bot was blocked by the user")
        if self.failures[chat_id] > 0:
            self.failures[chat_id] -= 1
            raise dispatch.TemporarySendError("Bad Gateway")
        self.sent.append((chat_id, reply))
        if call == self.crash_after:
            raise Crash
        return len(self.sent)

    def per_chat(self) -> Counter[int]:
        return Counter(chat_id for chat_id, _ in self.sent)


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    return knowledge_and_matcher(tmp_path_factory.mktemp("cache"))[0]


def add_users(
    db: Database,
    ids: Iterable[int],
    *,
    at: time | None = MORNING,
    now: datetime,
    active: bool = True,
    consent: bool = True,
) -> None:
    """Consenting users with a daily reminder set at `now` (none when `at` is None)."""
    with db.session() as s:
        users = [
            User(id=uid, chat_id=chat_of(uid), consent=consent, active=active, timezone=str(CPH))
            for uid in ids
        ]
        s.add_all(users)
        s.flush()
        if at is not None:
            for user in users:
                reminders.set_time(s, user, at, now)
        s.commit()


def run(
    db: Database, kb: Knowledge, send: FakeSend, now: datetime, worker: str = "w1", **kw: Any
) -> dispatch.DispatchStats:
    return asyncio.run(dispatch.dispatch_due(db, kb, send, now, worker, **kw))


def reminder_of(db: Database, user_id: int) -> Reminder | None:
    with db.session() as s:
        return s.get(Reminder, user_id)


def due_at(db: Database, user_id: int) -> datetime:
    reminder = reminder_of(db, user_id)
    assert reminder is not None
    return reminder.next_due_at


def deliveries(db: Database) -> list[ReminderDelivery]:
    with db.session() as s:
        return list(
            s.scalars(
                select(ReminderDelivery).order_by(ReminderDelivery.user_id, ReminderDelivery.id)
            )
        )


def user_of(db: Database, user_id: int) -> User:
    with db.session() as s:
        user = s.get(User, user_id)
        assert user is not None
        return user


def add_done_checkin(db: Database, user_id: int, day: date, at: datetime) -> None:
    with db.session() as s:
        s.add(
            Checkin(
                user_id=user_id,
                local_date=day,
                status="done",
                pain=2,
                zone="green",
                started_at=at,
                updated_at=at,
                completed_at=at,
            )
        )
        s.commit()


# ---------------------------------------------------------------- the daily time and DST


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # Clocks go forward on 29 March 2026: 07:30 is 06:30 UTC before, 05:30 UTC after.
        (
            utc(2026, 3, 26, 12),
            [
                utc(2026, 3, 27, 6, 30),
                utc(2026, 3, 28, 6, 30),
                utc(2026, 3, 29, 5, 30),
                utc(2026, 3, 30, 5, 30),
            ],
        ),
        # Clocks go back on 25 October 2026: 05:30 UTC before, 06:30 UTC from that day on.
        (
            utc(2026, 10, 22, 12),
            [
                utc(2026, 10, 23, 5, 30),
                utc(2026, 10, 24, 5, 30),
                utc(2026, 10, 25, 6, 30),
                utc(2026, 10, 26, 6, 30),
            ],
        ),
    ],
    ids=["march", "october"],
)
def test_daily_reminder_fires_once_at_local_time_across_dst(
    database: Database, kb: Knowledge, start: datetime, expected: list[datetime]
) -> None:
    add_users(database, [1], now=start)
    send = FakeSend()
    for instant in expected:
        assert run(database, kb, send, instant - timedelta(minutes=1)).sent == 0
        assert run(database, kb, send, instant).sent == 1
        assert run(database, kb, send, instant + timedelta(hours=1)).sent == 0
        assert instant.astimezone(CPH).time() == MORNING
    assert len(send.sent) == len(expected)
    assert {d.local_date for d in deliveries(database)} == {i.date() for i in expected}
    assert all(d.status == "sent" for d in deliveries(database))


@pytest.mark.parametrize(
    ("start", "end", "fires"),
    [
        # 02:30 does not exist on 29 March: it fires when the clocks jump (03:00 CEST).
        (utc(2026, 3, 28, 22), utc(2026, 3, 29, 4), utc(2026, 3, 29, 1, 0)),
        # 02:30 happens twice on 25 October: only the first time (00:30 UTC).
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 4), utc(2026, 10, 25, 0, 30)),
    ],
    ids=["missing-hour", "repeated-hour"],
)
def test_wall_time_inside_a_dst_change_fires_exactly_once(
    database: Database, kb: Knowledge, start: datetime, end: datetime, fires: datetime
) -> None:
    add_users(database, [1], at=time(2, 30), now=start - timedelta(hours=12))
    send = FakeSend()
    fired_at = []
    instant = start
    while instant <= end:  # poll every 10 minutes through the night
        if run(database, kb, send, instant).sent:
            fired_at.append(instant)
        instant += timedelta(minutes=10)
    assert fired_at == [fires]


def test_reminder_has_checkin_and_snooze_buttons_and_goes_to_the_chat(
    database: Database, kb: Knowledge
) -> None:
    add_users(database, [1], now=utc(2026, 6, 10, 4))
    send = FakeSend()
    run(database, kb, send, utc(2026, 6, 10, 5, 30))
    [(chat_id, reply)] = send.sent
    assert chat_id == chat_of(1)
    # 05:30 UTC is 07:30 in Copenhagen: a morning greeting
    greeting = kb.text("reminder_greeting_morning")
    assert reply.text == kb.text("reminder_message", greeting=greeting)
    [row] = reply.buttons
    assert [(b.label, b.data) for b in row] == [
        (kb.text("reminder_checkin_button"), "rem:ci"),
        (kb.text("reminder_snooze_button"), "rem:snooze:20260610"),  # the reminder's day
    ]
    assert [b.label for b in row] == ["Start check-in", "Udskyd 1 time"]


# ---------------------------------------------------------------- check-in, pause, stop


def test_no_reminder_after_checking_in_that_day(database: Database, kb: Knowledge) -> None:
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    day = date(2026, 6, 10)
    # User 1 checks in through the engine's path (reminders.checked_in reschedules);
    # user 2's check-in row appears without it: the dispatcher itself must notice.
    add_done_checkin(database, 1, day, utc(2026, 6, 10, 5))
    with database.session() as s:
        user = s.get(User, 1)
        assert user is not None
        reminders.checked_in(s, user, utc(2026, 6, 10, 5))
        s.commit()
    assert due_at(database, 1) == utc(2026, 6, 11, 5, 30)
    add_done_checkin(database, 2, day, utc(2026, 6, 10, 5))
    send = FakeSend()
    stats = run(database, kb, send, utc(2026, 6, 10, 5, 30))
    assert send.sent == [] and stats.skipped == 1
    assert due_at(database, 2) == utc(2026, 6, 11, 5, 30)
    run(database, kb, send, utc(2026, 6, 11, 5, 30))
    assert send.per_chat() == {chat_of(1): 1, chat_of(2): 1}


def test_setting_a_later_time_after_todays_reminder_waits_until_tomorrow(
    database: Database, kb: Knowledge
) -> None:
    add_users(database, [1], now=utc(2026, 6, 10, 4))
    send = FakeSend()
    run(database, kb, send, utc(2026, 6, 10, 5, 30))
    with database.session() as s:
        user = s.get(User, 1)
        assert user is not None
        reminder = reminders.set_time(s, user, time(19, 0), utc(2026, 6, 10, 6))
        s.commit()
        assert reminder.next_due_at == utc(2026, 6, 11, 17, 0)  # one daily reminder a day


@pytest.fixture
def clock() -> Clock:
    return Clock(utc(2026, 6, 10, 4, 0))  # 06:00 in Copenhagen


@pytest.fixture
def engine(database: Database, tmp_path: Path, clock: Clock, kb: Knowledge) -> Engine:
    return make_engine(database, tmp_path / "cache", clock)


def test_pause_for_days_then_back_on_the_daily_time(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    user.say("/pause 3")
    assert "3" in user.text()
    send = FakeSend()
    for day in (10, 11, 12):
        assert run(database, kb, send, utc(2026, 6, day, 5, 30)).sent == 0
        assert run(database, kb, send, utc(2026, 6, day, 18, 0)).sent == 0
    assert run(database, kb, send, utc(2026, 6, 13, 5, 29)).sent == 0
    assert run(database, kb, send, utc(2026, 6, 13, 5, 30)).sent == 1
    assert run(database, kb, send, utc(2026, 6, 14, 5, 30)).sent == 1


def test_pause_until_resumed_and_stop(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    user.say("/pause")
    send = FakeSend()
    for day in range(10, 20):
        assert run(database, kb, send, utc(2026, 6, day, 5, 30)).sent == 0
    clock.now = utc(2026, 6, 20, 4, 0)
    user.say("/genoptag")
    assert run(database, kb, send, utc(2026, 6, 20, 5, 30)).sent == 1
    user.say("/stop")
    assert reminder_of(database, user.user_id) is None
    assert run(database, kb, send, utc(2026, 6, 21, 5, 30)).sent == 0
    assert len(send.sent) == 1


def test_engine_checkin_skips_todays_reminder(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    user.say("/checkin")
    user.press("ci:p:2")
    user.press("ci:m:same")
    user.press("ci:a:run")
    user.press("ci:n:skip")
    send = FakeSend()
    assert run(database, kb, send, utc(2026, 6, 10, 5, 30)).sent == 0
    assert run(database, kb, send, utc(2026, 6, 11, 5, 30)).sent == 1


def test_snooze_sends_once_more_an_hour_later_then_back_to_daily(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    send = FakeSend()
    assert run(database, kb, send, utc(2026, 6, 10, 5, 30)).sent == 1
    clock.now = utc(2026, 6, 10, 5, 40)
    user.press("rem:snooze:20260610")
    assert "08:40" in user.text()  # local time of the next one
    assert run(database, kb, send, utc(2026, 6, 10, 6, 39)).sent == 0
    assert run(database, kb, send, utc(2026, 6, 10, 6, 40)).sent == 1
    assert run(database, kb, send, utc(2026, 6, 10, 7, 40)).sent == 0
    # The snoozed message has the button too: a second snooze is honoured as well.
    clock.now = utc(2026, 6, 10, 6, 45)
    user.press("rem:snooze:20260610")
    assert run(database, kb, send, utc(2026, 6, 10, 7, 45)).sent == 1
    assert run(database, kb, send, utc(2026, 6, 10, 12, 0)).sent == 0
    assert due_at(database, user.user_id) == utc(2026, 6, 11, 5, 30)
    assert run(database, kb, send, utc(2026, 6, 11, 5, 30)).sent == 1
    assert len(send.sent) == 4
    kinds = Counter((d.local_date, d.kind) for d in deliveries(database))
    assert kinds == {
        (date(2026, 6, 10), "daily"): 1,
        (date(2026, 6, 10), "snooze"): 1,
        (date(2026, 6, 11), "daily"): 1,
    }


def test_snooze_while_paused_is_refused(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    user.say("/pause 2")
    user.press("rem:snooze:20260610")  # a button on an older message
    assert user.text() == kb.text("button_expired")
    assert run(database, kb, FakeSend(), utc(2026, 6, 10, 6, 0)).sent == 0


@pytest.mark.parametrize("data", ["rem:snooze:20260609", "rem:snooze", "rem:snooze:2026061x"])
def test_an_old_reminders_snooze_moves_nothing(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock, data: str
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    before = due_at(database, user.user_id)
    clock.now = utc(2026, 6, 10, 9, 0)  # yesterday's reminder pressed today
    user.press(data)
    assert user.text() == kb.text("button_expired")
    assert due_at(database, user.user_id) == before


def test_no_snooze_once_todays_checkin_is_done(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    user = Chat(engine)
    user.onboard()
    user.say("/paamindelse 07:30")
    assert run(database, kb, FakeSend(), utc(2026, 6, 10, 5, 30)).sent == 1
    user.say("/checkin")
    for data in ("ci:p:2", "ci:m:same", "ci:a:run", "ci:n:skip"):
        user.press(data)
    before = due_at(database, user.user_id)
    user.press("rem:snooze:20260610")
    assert user.text() == kb.text("button_expired")
    assert due_at(database, user.user_id) == before == utc(2026, 6, 11, 5, 30)


# ---------------------------------------------------------------- crashes and restarts


@pytest.fixture
def second_process(database: Database) -> Iterator[Database]:
    """Another bot process: its own engine and connections on the same database."""
    other = Database(database.url.render_as_string(hide_password=False))
    yield other
    other.dispose()


NOW = utc(2026, 6, 10, 5, 30)
AFTER_LEASE = NOW + dispatch.LEASE + timedelta(seconds=1)


def crash_run(db: Database, kb: Knowledge, send: FakeSend, **kw: Any) -> None:
    with pytest.raises(Crash):
        run(db, kb, send, NOW, "dies", concurrency=1, **kw)


def test_crash_before_the_claim_commits_loses_nothing(
    database: Database, second_process: Database, kb: Knowledge
) -> None:
    add_users(database, [1, 2, 3], now=utc(2026, 6, 10, 4))

    def die(_session: Session) -> None:
        raise Crash

    event.listen(Session, "before_commit", die)  # the first commit is the claim's
    send = FakeSend()
    try:
        crash_run(database, kb, send)
    finally:
        event.remove(Session, "before_commit", die)
    assert send.sent == [] and deliveries(database) == []
    assert reminder_of(database, 1) is not None
    assert reminder_of(database, 1).claimed_by is None  # type: ignore[union-attr]
    stats = run(second_process, kb, send, NOW, "w2")  # no lease to wait for
    assert stats.sent == 3 and send.per_chat() == {chat_of(u): 1 for u in (1, 2, 3)}


def test_crash_after_claiming_before_sending_is_sent_once_after_the_lease(
    database: Database, second_process: Database, kb: Knowledge
) -> None:
    add_users(database, [1, 2, 3], now=utc(2026, 6, 10, 4))
    send = FakeSend(crash_before=0)
    crash_run(database, kb, send)
    assert send.sent == []
    assert sorted(d.status for d in deliveries(database)) == ["claimed"] * 3
    # While the dead worker's lease lasts, nobody sends; then exactly once.
    assert run(second_process, kb, send, NOW + dispatch.LEASE / 2, "w2").sent == 0
    assert run(second_process, kb, send, AFTER_LEASE, "w2").sent == 3
    assert run(second_process, kb, send, AFTER_LEASE + timedelta(hours=1), "w2").sent == 0
    assert send.per_chat() == {chat_of(u): 1 for u in (1, 2, 3)}
    rows = deliveries(database)
    assert len(rows) == 3 and all(d.status == "sent" and d.claimed_by == "w2" for d in rows)


def test_crash_mid_batch_neither_loses_nor_repeats(
    database: Database, second_process: Database, kb: Knowledge
) -> None:
    add_users(database, range(1, 6), now=utc(2026, 6, 10, 4))
    send = FakeSend(crash_before=2)  # two sent and recorded, the third never leaves
    crash_run(database, kb, send)
    assert send.per_chat() == {chat_of(1): 1, chat_of(2): 1}
    assert run(second_process, kb, send, AFTER_LEASE, "w2").sent == 3
    assert send.per_chat() == {chat_of(u): 1 for u in range(1, 6)}
    assert run(second_process, kb, send, utc(2026, 6, 10, 12), "w2").sent == 0
    assert due_at(database, 1) == due_at(database, 5) == utc(2026, 6, 11, 5, 30)


def test_crash_between_telegram_and_commit_resends_rather_than_loses(
    database: Database, second_process: Database, kb: Knowledge
) -> None:
    """The one documented window: Telegram accepted it, our commit never happened."""
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    send = FakeSend(crash_after=0)
    crash_run(database, kb, send)
    [(first, _)] = send.sent
    assert run(second_process, kb, send, AFTER_LEASE, "w2").sent == 2
    assert send.per_chat() == {first: 2, ({chat_of(1), chat_of(2)} - {first}).pop(): 1}
    assert len(deliveries(database)) == 2  # still one delivery row per user and day


# ---------------------------------------------------------------- several workers


def two_workers(db_a: Database, db_b: Database, kb: Knowledge, now: datetime) -> FakeSend:
    """Two dispatchers side by side: B starts once A holds a batch, and A sends nothing
    until B has sent, so both really share the work (and the rows A holds)."""
    send = FakeSend()
    a_holds, b_sent = asyncio.Event(), asyncio.Event()

    async def send_a(chat_id: int, reply: Reply) -> int | None:
        a_holds.set()
        await asyncio.wait_for(b_sent.wait(), timeout=30)
        return await send(chat_id, reply)

    async def send_b(chat_id: int, reply: Reply) -> int | None:
        b_sent.set()
        return await send(chat_id, reply)

    async def start_b() -> dispatch.DispatchStats:
        await asyncio.wait_for(a_holds.wait(), timeout=30)
        return await dispatch.dispatch_due(db_b, kb, send_b, now, "w2", 25, concurrency=4)

    async def both() -> tuple[dispatch.DispatchStats, dispatch.DispatchStats]:
        return await asyncio.gather(
            dispatch.dispatch_due(db_a, kb, send_a, now, "w1", 25, concurrency=4), start_b()
        )

    stats = asyncio.run(both())
    assert all(s.sent > 0 for s in stats), stats  # both really worked
    assert sum(s.sent for s in stats) == len(send.sent)
    return send


def test_two_workers_send_each_reminder_exactly_once(
    database: Database, second_process: Database, kb: Knowledge
) -> None:
    ids = range(1, 201)
    add_users(database, ids, now=utc(2026, 6, 10, 4))
    send = two_workers(database, second_process, kb, NOW)
    assert send.per_chat() == {chat_of(u): 1 for u in ids}
    rows = deliveries(database)
    assert len(rows) == 200 and all(d.status == "sent" for d in rows)
    assert {d.claimed_by for d in rows} == {"w1", "w2"}
    with database.session() as s:
        assert s.scalars(select(Reminder).where(Reminder.claimed_by.is_not(None))).all() == []


# ---------------------------------------------------------------- failures


def test_blocked_user_is_marked_inactive_and_not_reminded_until_they_write(
    engine: Engine, database: Database, kb: Knowledge, clock: Clock
) -> None:
    blocked, other = Chat(engine, 1), Chat(engine, 2)
    for user in (blocked, other):
        user.onboard()
        user.say("/paamindelse 07:30")
    send = FakeSend(blocked={1})  # the engine's users chat where they are (chat id = user id)
    stats = run(database, kb, send, utc(2026, 6, 10, 5, 30))
    assert (stats.sent, stats.blocked) == (1, 1)
    assert not user_of(database, 1).active and user_of(database, 2).active
    assert [d.status for d in deliveries(database)] == ["failed", "sent"]
    for day in (11, 12):
        stats = run(database, kb, send, utc(2026, 6, day, 5, 30))
        assert (stats.sent, stats.blocked) == (1, 0)  # not even tried
    assert send.calls == 4
    send.blocked.clear()
    clock.now = utc(2026, 6, 12, 12)
    blocked.say("hej igen")  # they unblocked and wrote: reminded again
    assert user_of(database, 1).active
    assert run(database, kb, send, utc(2026, 6, 13, 5, 30)).sent == 2


def test_temporary_failure_is_retried_on_a_later_run_without_duplicates(
    database: Database, kb: Knowledge
) -> None:
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    send = FakeSend()
    send.failures[chat_of(1)] = 1
    stats = run(database, kb, send, NOW)
    assert (stats.sent, stats.failed) == (1, 1)
    assert run(database, kb, send, NOW + timedelta(seconds=20)).claimed == 0  # back-off
    stats = run(database, kb, send, NOW + dispatch.RETRY_DELAY + timedelta(seconds=1))
    assert (stats.sent, stats.failed) == (1, 0)
    assert run(database, kb, send, NOW + timedelta(hours=2)).sent == 0
    assert send.per_chat() == {chat_of(1): 1, chat_of(2): 1}
    assert [d.status for d in deliveries(database)] == ["sent", "sent"]


def test_blocked_and_stale_rows_do_not_starve_due_reminders(
    database: Database, kb: Knowledge
) -> None:
    """Rows that are claimed but not sent move on, so a small batch reaches everyone."""
    add_users(database, range(1, 26), at=time(6, 0), now=utc(2026, 6, 10, 3), active=False)
    add_users(database, [99], now=utc(2026, 6, 10, 3))
    send = FakeSend()
    for _ in range(3):
        run(database, kb, send, NOW, limit=10, max_batches=1)
    assert send.per_chat() == {chat_of(99): 1}
    assert due_at(database, 1) == utc(2026, 6, 11, 4, 0)


def test_long_outage_sends_at_most_one_then_daily(database: Database, kb: Knowledge) -> None:
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    send = FakeSend()
    # Down for three days: nothing from the missed days, not even one late message...
    back = utc(2026, 6, 13, 10)
    for minute in range(0, 60, 10):
        assert run(database, kb, send, back + timedelta(minutes=minute)).sent == 0
    assert due_at(database, 1) == utc(2026, 6, 14, 5, 30)
    assert run(database, kb, send, utc(2026, 6, 14, 5, 30)).sent == 2
    # ...and down for a couple of hours: the day's reminder comes late, once.
    assert run(database, kb, send, utc(2026, 6, 15, 7, 45)).sent == 2
    assert run(database, kb, send, utc(2026, 6, 15, 8, 0)).sent == 0
    assert run(database, kb, send, utc(2026, 6, 16, 5, 30)).sent == 2
    assert send.per_chat() == {chat_of(1): 3, chat_of(2): 3}


def test_batch_out_of_lease_time_releases_unsent_reminders(
    database: Database, kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    monkeypatch.setattr(dispatch, "SEND_WINDOW", timedelta(seconds=-1))
    send = FakeSend()
    stats = run(database, kb, send, NOW, max_batches=1)
    assert (stats.sent, stats.deferred) == (0, 2)
    assert send.calls == 0
    with database.session() as s:
        assert s.scalars(select(Reminder.claimed_until)).all() == [None, None]
    monkeypatch.undo()
    assert run(database, kb, send, NOW).sent == 2
    assert send.per_chat() == {chat_of(1): 1, chat_of(2): 1}


def test_a_claim_over_the_limit_is_trimmed_and_the_rest_released(
    database: Database, kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """storage.claim_due_reminders can over-claim on PostgreSQL; the batch stays bounded."""
    add_users(database, range(1, 11), now=utc(2026, 6, 10, 4))

    def claim_everything(
        s: Session, now: datetime, worker: str, _limit: int, lease: timedelta
    ) -> list[Reminder]:
        return claim_due_reminders(s, now, worker, 1000, lease)

    monkeypatch.setattr(dispatch, "claim_due_reminders", claim_everything)
    send = FakeSend()
    stats = run(database, kb, send, NOW, limit=4, max_batches=1)
    assert (stats.claimed, stats.sent) == (4, 4)
    with database.session() as s:
        held = s.scalars(select(Reminder.user_id).where(Reminder.claimed_by.is_not(None))).all()
        due = s.scalars(select(Reminder.user_id).where(Reminder.next_due_at <= NOW)).all()
    assert held == [] and sorted(due) == list(range(5, 11))  # free for any worker
    assert run(database, kb, send, NOW, limit=4).sent == 6


def test_a_broken_zone_name_does_not_stop_other_reminders(
    database: Database, kb: Knowledge
) -> None:
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    with database.session() as s:
        reminder = s.get(Reminder, 1)
        assert reminder is not None
        reminder.timezone = "Mars/Olympus_Mons"
        s.commit()
    send = FakeSend()
    assert run(database, kb, send, NOW).sent == 2  # the broken one falls back to Copenhagen


def test_the_lease_is_renewed_while_a_slow_batch_is_sent(
    database: Database, kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While a batch is being sent the worker keeps extending its lease, so another
    # process takes its reminders only once it stops renewing (it died).
    add_users(database, [1, 2], now=utc(2026, 6, 10, 4))
    monkeypatch.setattr(dispatch, "RENEW_EVERY", timedelta(seconds=0.05))
    seen: list[datetime | None] = []

    async def slow_send(chat_id: int, reply: Reply) -> int | None:
        await asyncio.sleep(0.3)
        seen.append(reminder_of(database, 2).claimed_until)  # type: ignore[union-attr]
        return 1

    stats = run(database, kb, slow_send, NOW, "w1", concurrency=1)  # type: ignore[arg-type]
    assert stats.sent == 2
    first_lease = NOW + dispatch.LEASE
    assert seen[0] is not None and seen[0] > first_lease  # renewed while sending the first
