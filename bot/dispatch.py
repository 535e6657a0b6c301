"""Sending due reminders: rows claimed in batches by a periodic job, each sent once.

The due times are bot/reminders.py. The dispatcher works in batches:

1. prepare (one transaction): claim due rows with a lease (`FOR UPDATE SKIP LOCKED`
   on PostgreSQL, so several bot processes share the work without waiting), decide
   for each whether it is still wanted (user active and consenting, not checked in
   that day, not long overdue, not already sent) and record a delivery row in state
   'claimed'. The delivery row is unique per (user, local date, kind), so a day's
   reminder can never be recorded twice;
2. send (bounded concurrency, the rate limiter paces the requests), and after each
   accepted message commit 'sent' plus the row's next due time in its own small
   transaction. The next batch is claimed while the last few of this one are still
   in flight, so the rate limiter, not the database, sets the pace.

Database work runs in worker threads so the bot's event loop keeps answering users.

Crash safety, point by point (a "crash" is the process dying, or a second worker
taking over once the lease has run out):

* before the prepare transaction commits: nothing is claimed; the next run sends it;
* after it commits, before the message reaches Telegram: the delivery row stays
  'claimed' and the reminder stays due; when the lease runs out another worker
  re-uses that delivery row and sends it, once;
* after 'sent' is committed: the row is already due tomorrow and the delivery is
  'sent'; nothing is sent again.
* The one remaining window: Telegram accepted the message but the process died
  before the 'sent' commit (or the request timed out after Telegram accepted it).
  Telegram has no idempotency key for sendMessage, so the next worker cannot tell
  and sends that reminder again: at-least-once, never lost. At most `concurrency`
  messages are in that window at any moment.

The lease is short (LEASE, 45 s) so another process takes over a dead worker's
reminders within a minute; while a batch is being sent the worker renews it every
RENEW_EVERY. A live worker never sends after its lease may have run out: it starts no
send later than SEND_WINDOW after its last successful claim or renewal (measured on the
monotonic clock) and releases the rest. The sends themselves go through the process's
one sender (bot/sender.py) at low priority, so users' replies go first.
"""

from __future__ import annotations

import asyncio
import logging
import time as monotonic_time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.knowledge import Knowledge
from bot.reminders import SNOOZE, reminder_reply, reschedule, schedule, zone
from bot.replies import Reply
from bot.schedule import local_date
from bot.storage import (
    Checkin,
    Database,
    Reminder,
    ReminderDelivery,
    User,
    claim_due_reminders,
)

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=45)
# A worker starts no send later than this after its claim (or last renewal), so even a
# send that waits out long 429s finishes before the lease lets another worker take it.
SEND_WINDOW = LEASE / 2
RENEW_EVERY = LEASE / 4
# Overdue by more than this (the bot was down): skip to the next daily time, no catch-up.
STALE = timedelta(hours=12)
# A send that failed for a passing reason is tried again after this delay.
RETRY_DELAY = timedelta(minutes=2)
BATCH_SIZE = 500
CONCURRENCY = 16
MAX_BATCHES = 20


class RecipientBlocked(Exception):
    """The user blocked the bot (Telegram 403): stop reminding them."""


class TemporarySendError(Exception):
    """Sending failed for a reason that may pass: try again on a later run."""


Sender = Callable[[int, Reply], Awaitable[int | None]]


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    blocked: int = 0
    failed: int = 0
    deferred: int = 0  # claimed but released unsent: the batch ran out of lease time
    batches: int = 0


@dataclass(frozen=True)
class _Job:
    user_id: int
    chat_id: int
    delivery_id: int
    day: date
    local_hour: int  # the user's wall-clock hour at the claim: the greeting


async def dispatch_due(
    db: Database,
    kb: Knowledge,
    send: Sender,
    now: datetime,
    worker_id: str,
    limit: int = BATCH_SIZE,
    *,
    concurrency: int = CONCURRENCY,
    max_batches: int = MAX_BATCHES,
) -> DispatchStats:
    """Claim and send due reminders in batches until none are due (or `max_batches`).

    `now` is the clock at the start; later batches add the real time elapsed since,
    so leases stay honest during a long run while tests keep a controlled clock.
    """
    stats = DispatchStats()
    started = monotonic_time.monotonic()
    queue: asyncio.Queue[tuple[_Job, float] | None] = asyncio.Queue()
    low = asyncio.Event()
    renewed = [started]  # the monotonic time of the last successful renewal

    def clock() -> datetime:
        return now + timedelta(seconds=monotonic_time.monotonic() - started)

    def deadline(claimed_at: float) -> float:
        return max(claimed_at, renewed[0]) + SEND_WINDOW.total_seconds()

    async def renew() -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            at = monotonic_time.monotonic()
            try:
                await asyncio.to_thread(_renew, db, worker_id, clock())
            except Exception:
                log.warning("could not renew the reminder lease", exc_info=True)
                continue
            renewed[0] = at

    async def produce() -> None:
        try:
            for _ in range(max_batches):
                claimed_at = monotonic_time.monotonic()
                jobs, claimed, skipped = await asyncio.to_thread(
                    _prepare, db, clock(), worker_id, limit
                )
                stats.batches += 1
                stats.claimed += claimed
                stats.skipped += skipped
                for job in jobs:
                    queue.put_nowait((job, claimed_at))
                if claimed < limit:
                    break
                # Claim the next batch while the senders finish this one, so the
                # rate limiter never waits for the database.
                while queue.qsize() > concurrency:
                    low.clear()
                    await low.wait()
        finally:
            for _ in range(concurrency):
                queue.put_nowait(None)

    async def consume() -> None:
        while (item := await queue.get()) is not None:
            if queue.qsize() <= concurrency:
                low.set()
            await _deliver(db, kb, send, clock, worker_id, item[0], deadline(item[1]), stats)

    renewing = asyncio.create_task(renew())
    try:
        await _run_all([produce(), *(consume() for _ in range(max(1, concurrency)))])
    finally:
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
    return stats


def _renew(db: Database, worker_id: str, now: datetime) -> None:
    """Extend this worker's lease on the reminders it still holds."""
    with db.session() as s:
        s.execute(
            update(Reminder)
            .where(Reminder.claimed_by == worker_id, Reminder.claimed_until > now)
            .values(claimed_until=now + LEASE)
        )
        s.commit()


async def _run_all(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run together; the first error (a dead database, a dying process) stops them all."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


def _prepare(
    db: Database, now: datetime, worker_id: str, limit: int
) -> tuple[list[_Job], int, int]:
    """Claim a batch and record a 'claimed' delivery for each reminder still wanted.

    One transaction; the few lookups are batched so a big batch costs a handful of
    queries, not several per reminder. Returns (jobs to send, claimed, skipped).
    """
    with db.session() as s:
        claimed = claim_due_reminders(s, now, worker_id, limit, LEASE)
        for extra in claimed[limit:]:
            # On PostgreSQL the one-statement claim can take more rows than `limit`
            # (its subquery is re-run per row under some plans); hand them back.
            extra.claimed_by = None
            extra.claimed_until = None
        claimed = claimed[:limit]
        if not claimed:
            s.commit()
            return [], 0, 0
        ids = [r.user_id for r in claimed]
        users = {u.id: u for u in s.scalars(select(User).where(User.id.in_(ids)))}
        due_day: dict[int, date] = {}
        today: dict[int, date] = {}
        for r in claimed:
            tz = zone(r.timezone)
            due_day[r.user_id] = local_date(r.next_due_at, tz)
            today[r.user_id] = local_date(now, tz)
        days = set(due_day.values()) | set(today.values())
        done = {
            (uid, day)
            for uid, day in s.execute(
                select(Checkin.user_id, Checkin.local_date).where(
                    Checkin.user_id.in_(ids),
                    Checkin.status == "done",
                    Checkin.local_date.in_(days),
                )
            )
        }
        deliveries = {
            (d.user_id, d.local_date, d.kind): d
            for d in s.scalars(
                select(ReminderDelivery).where(
                    ReminderDelivery.user_id.in_(ids), ReminderDelivery.local_date.in_(days)
                )
            )
        }
        pending: list[tuple[Reminder, int, ReminderDelivery]] = []
        skipped = 0
        for r in claimed:
            uid = r.user_id
            sent_today = deliveries.get((uid, today[uid], "daily"))
            skip_today = (uid, today[uid]) in done or (
                sent_today is not None and sent_today.status == "sent"
            )
            user = users.get(uid)
            day = due_day[uid]
            kind = "snooze" if r.snoozed else "daily"
            delivery = deliveries.get((uid, day, kind))
            wanted = (
                user is not None
                and user.active  # False after a 403; True again when they write
                and user.consent
                and r.enabled
                and now - r.next_due_at <= STALE  # long overdue: no catch-up
                and (uid, day) not in done
                and (uid, today[uid]) not in done
                and (delivery is None or delivery.status != "sent" or _new_snooze(r, delivery))
            )
            if not wanted or user is None:
                reschedule(r, now, today[uid] if skip_today else None)
                skipped += 1
                continue
            if delivery is None:
                delivery = ReminderDelivery(user_id=uid, local_date=day, kind=kind)
                s.add(delivery)
            # A 'claimed' or 'failed' row is a send that did not happen (or a crash in
            # the documented window): re-use it, the unique key stays the guard.
            delivery.status = "claimed"
            delivery.claimed_by = worker_id
            delivery.claimed_at = now
            delivery.sent_at = None
            delivery.telegram_message_id = None
            pending.append((r, user.chat_id or uid, delivery))
        try:
            s.flush()
            jobs = [
                _Job(
                    r.user_id,
                    chat,
                    d.id,
                    due_day[r.user_id],
                    now.astimezone(zone(r.timezone)).hour,
                )
                for r, chat, d in pending
            ]
            s.commit()
        except IntegrityError:
            # Another worker recorded one of these deliveries first (only possible if
            # leases overlapped): claim nothing now; the next run sees its row.
            s.rollback()
            log.warning("reminder batch conflicted with another worker; retrying next run")
            return [], 0, 0
        return jobs, len(claimed), skipped


def _new_snooze(reminder: Reminder, delivery: ReminderDelivery) -> bool:
    """A sent snooze row from before the latest "Udskyd" press is an earlier snooze."""
    if not reminder.snoozed or delivery.kind != "snooze" or delivery.sent_at is None:
        return False
    return delivery.sent_at < reminder.next_due_at - SNOOZE


async def _deliver(
    db: Database,
    kb: Knowledge,
    send: Sender,
    clock: Callable[[], datetime],
    worker_id: str,
    job: _Job,
    deadline: float,
    stats: DispatchStats,
) -> None:
    if monotonic_time.monotonic() > deadline:
        await asyncio.to_thread(_release, db, worker_id, job)
        stats.deferred += 1
        return
    try:
        message_id = await send(job.chat_id, reminder_reply(kb, job.local_hour, job.day))
    except RecipientBlocked:
        await asyncio.to_thread(_mark_blocked, db, worker_id, job, clock())
        stats.blocked += 1
        return
    except Exception:
        log.warning("reminder to user %s failed; will retry", job.user_id, exc_info=True)
        await asyncio.to_thread(_mark_failed, db, worker_id, job, clock())
        stats.failed += 1
        return
    await asyncio.to_thread(_mark_sent, db, worker_id, job, message_id, clock())
    stats.sent += 1


def _owned(s: Session, worker_id: str, user_id: int) -> Reminder | None:
    """The reminder if this worker still holds it (a user command may have moved it)."""
    reminder = s.get(Reminder, user_id)
    return reminder if reminder is not None and reminder.claimed_by == worker_id else None


def _mark_sent(
    db: Database, worker_id: str, job: _Job, message_id: int | None, now: datetime
) -> None:
    with db.session() as s:
        delivery = s.get(ReminderDelivery, job.delivery_id)
        if delivery is not None:
            delivery.status = "sent"
            delivery.sent_at = now
            delivery.telegram_message_id = message_id
        reminder = _owned(s, worker_id, job.user_id)
        if reminder is not None:
            reminder.last_sent_on = job.day
            schedule(s, reminder, now)
        s.commit()


def _mark_blocked(db: Database, worker_id: str, job: _Job, now: datetime) -> None:
    """403: the user is inactive until they write again; the row just moves on daily."""
    with db.session() as s:
        user = s.get(User, job.user_id)
        if user is not None:
            user.active = False
        delivery = s.get(ReminderDelivery, job.delivery_id)
        if delivery is not None:
            delivery.status = "failed"
        reminder = _owned(s, worker_id, job.user_id)
        if reminder is not None:
            schedule(s, reminder, now)
        s.commit()
    log.info("user %s blocked the bot; no more reminders until they write", job.user_id)


def _mark_failed(db: Database, worker_id: str, job: _Job, now: datetime) -> None:
    """A passing failure: keep it due, but let nobody retry before RETRY_DELAY."""
    with db.session() as s:
        delivery = s.get(ReminderDelivery, job.delivery_id)
        if delivery is not None:
            delivery.status = "failed"
        reminder = _owned(s, worker_id, job.user_id)
        if reminder is not None:
            reminder.claimed_by = None
            reminder.claimed_until = now + RETRY_DELAY
        s.commit()


def _release(db: Database, worker_id: str, job: _Job) -> None:
    """Unsent because the batch ran out of lease time: free it for the next batch."""
    with db.session() as s:
        reminder = _owned(s, worker_id, job.user_id)
        if reminder is not None:
            reminder.claimed_by = None
            reminder.claimed_until = None
        s.commit()
