"""Daily reminders as database rows, claimed and sent by a periodic job.

A reminder row carries its next due instant (UTC). The dispatcher claims due
rows with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several bot
processes can share the work), records a delivery row that is unique per user,
local day and kind (so a day's reminder is sent at most once, even across a
restart), sends it, and moves the row to its next due time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.knowledge import Knowledge
from bot.replies import Button, Reply
from bot.schedule import local_date, next_due
from bot.storage import Checkin, Database, Reminder, ReminderDelivery, User, claim_due_reminders

log = logging.getLogger(__name__)

SNOOZE = timedelta(hours=1)
LEASE = timedelta(minutes=5)
STALE = timedelta(hours=12)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=ZoneInfo("UTC"))


class RecipientBlocked(Exception):
    """The user blocked the bot (Telegram 403): stop reminding them."""


class TemporarySendError(Exception):
    """Sending failed for a reason that may pass: try again on a later run."""


Sender = Callable[[int, Reply], Awaitable[int | None]]


# ---------------------------------------------------------------- user commands


def _checked_in_on(s: Session, user_id: int, day: object) -> bool:
    return (
        s.scalars(
            select(Checkin.id).where(
                Checkin.user_id == user_id, Checkin.status == "done", Checkin.local_date == day
            )
        ).first()
        is not None
    )


def _schedule(s: Session, reminder: Reminder, now: datetime) -> None:
    """Next due instant: skip today when the user has already checked in today."""
    tz = ZoneInfo(reminder.timezone)
    today = local_date(now, tz)
    skip = today if _checked_in_on(s, reminder.user_id, today) else None
    reminder.next_due_at = next_due(reminder.local_time, tz, now, skip_date=skip)
    reminder.snoozed = False
    reminder.claimed_by = None
    reminder.claimed_until = None


def set_time(s: Session, user: User, when: time, now: datetime) -> Reminder:
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        reminder = Reminder(
            user_id=user.id, local_time=when, timezone=user.timezone, enabled=True, next_due_at=now
        )
        s.add(reminder)
    reminder.local_time = when
    reminder.timezone = user.timezone
    reminder.enabled = True
    reminder.paused_until = None
    _schedule(s, reminder, now)
    s.flush()
    return reminder


def pause(s: Session, user: User, days: int | None, now: datetime) -> Reminder | None:
    """Pause for N days, or (days None) until /genoptag."""
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        return None
    if days is None:
        reminder.enabled = False
        reminder.paused_until = None
    else:
        tz = ZoneInfo(reminder.timezone)
        first_day_back = local_date(now, tz) + timedelta(days=days)
        start = datetime.combine(first_day_back, time(0, 0), tzinfo=tz)
        reminder.paused_until = start.astimezone(ZoneInfo("UTC"))
        reminder.next_due_at = next_due(reminder.local_time, tz, start - timedelta(seconds=1))
    s.flush()
    return reminder


def resume(s: Session, user: User, now: datetime) -> Reminder | None:
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        return None
    reminder.enabled = True
    reminder.paused_until = None
    _schedule(s, reminder, now)
    s.flush()
    return reminder


def stop(s: Session, user: User) -> bool:
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        return False
    s.delete(reminder)
    s.flush()
    return True


def snooze(s: Session, user: User, now: datetime) -> Reminder | None:
    reminder = s.get(Reminder, user.id)
    if reminder is None or not reminder.enabled:
        return None
    reminder.next_due_at = now + SNOOZE
    reminder.snoozed = True
    reminder.claimed_by = None
    reminder.claimed_until = None
    s.flush()
    return reminder


def checked_in(s: Session, user: User, now: datetime) -> None:
    """After a check-in, today's reminder (if still to come) is not needed."""
    reminder = s.get(Reminder, user.id)
    if reminder is not None and reminder.enabled:
        _schedule(s, reminder, now)
        s.flush()


# ---------------------------------------------------------------- dispatcher


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    blocked: int = 0
    failed: int = 0


def reminder_reply(kb: Knowledge) -> Reply:
    return Reply(
        kb.text("reminder_message"),
        (
            (
                Button(kb.text("reminder_checkin_button"), "rem:ci"),
                Button(kb.text("reminder_snooze_button"), "rem:snooze"),
            ),
        ),
    )


async def dispatch_due(
    db: Database,
    kb: Knowledge,
    send: Sender,
    now: datetime,
    worker_id: str,
    limit: int = 500,
) -> DispatchStats:
    """Claim due reminders, send each at most once per local day and kind, reschedule."""
    stats = DispatchStats()
    with db.session() as s:
        claimed = claim_due_reminders(s, now, worker_id, limit, LEASE)
        s.commit()
        ids = [r.user_id for r in claimed]
    stats.claimed = len(ids)
    for user_id in ids:
        await _dispatch_one(db, kb, send, now, worker_id, user_id, stats)
    return stats


async def _dispatch_one(
    db: Database,
    kb: Knowledge,
    send: Sender,
    now: datetime,
    worker_id: str,
    user_id: int,
    stats: DispatchStats,
) -> None:
    with db.session() as s:
        reminder = s.get(Reminder, user_id)
        user = s.get(User, user_id)
        if reminder is None or reminder.claimed_by != worker_id:
            return  # stopped or taken over meanwhile
        if user is None or not user.active or not user.consent or not reminder.enabled:
            reminder.claimed_by = None
            reminder.claimed_until = None
            if user is None or not user.active or not user.consent:
                reminder.next_due_at = (
                    FAR_FUTURE if user is None or not user.consent else reminder.next_due_at
                )
            stats.skipped += 1
            s.commit()
            return
        tz = ZoneInfo(reminder.timezone)
        day = local_date(reminder.next_due_at, tz)
        kind = "snooze" if reminder.snoozed else "daily"
        if now - reminder.next_due_at > STALE or _checked_in_on(s, user_id, day):
            # Long overdue (the bot was down) or already checked in: no catch-up flood.
            _schedule(s, reminder, now)
            stats.skipped += 1
            s.commit()
            return
        delivery = s.scalars(
            select(ReminderDelivery).where(
                ReminderDelivery.user_id == user_id,
                ReminderDelivery.local_date == day,
                ReminderDelivery.kind == kind,
            )
        ).first()
        if delivery is not None and delivery.status == "sent":
            _schedule(s, reminder, now)  # sent before a crash; never twice
            stats.skipped += 1
            s.commit()
            return
        if delivery is None:
            delivery = ReminderDelivery(
                user_id=user_id, local_date=day, kind=kind, status="claimed"
            )
            s.add(delivery)
        delivery.claimed_by = worker_id
        delivery.claimed_at = now
        try:
            s.commit()
        except IntegrityError:
            s.rollback()  # another worker recorded this delivery first
            stats.skipped += 1
            return
        chat_id = user.chat_id or user.id
        delivery_id = delivery.id
    try:
        message_id = await send(chat_id, reminder_reply(kb))
    except RecipientBlocked:
        with db.session() as s:
            user = s.get(User, user_id)
            reminder = s.get(Reminder, user_id)
            delivery = s.get(ReminderDelivery, delivery_id)
            if user is not None:
                user.active = False
            if reminder is not None:
                reminder.claimed_by = None
                reminder.claimed_until = None
                _schedule(s, reminder, now)
            if delivery is not None:
                delivery.status = "failed"
            s.commit()
        stats.blocked += 1
        return
    except Exception:
        log.warning("reminder to user %s failed; will retry", user_id, exc_info=True)
        with db.session() as s:
            reminder = s.get(Reminder, user_id)
            delivery = s.get(ReminderDelivery, delivery_id)
            if delivery is not None:
                s.delete(delivery)
            if reminder is not None:
                reminder.claimed_by = None
                reminder.claimed_until = None
            s.commit()
        stats.failed += 1
        return
    with db.session() as s:
        reminder = s.get(Reminder, user_id)
        delivery = s.get(ReminderDelivery, delivery_id)
        if delivery is not None:
            delivery.status = "sent"
            delivery.sent_at = now
            delivery.telegram_message_id = message_id
        if reminder is not None:
            reminder.last_sent_on = day
            _schedule(s, reminder, now)
        s.commit()
    stats.sent += 1
