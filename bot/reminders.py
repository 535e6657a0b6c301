"""Daily reminders as database rows: when each is due, and what the user can do with it.

A reminder row carries its next due instant (UTC), computed from the user's local
wall time and time zone (so 07:30 stays 07:30 across daylight-saving changes); the
user's commands (set, pause, resume, stop, snooze) and a finished check-in move it.
Sending is bot/dispatch.py. The reminder itself greets by the user's time of day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import protocol
from bot.knowledge import Knowledge
from bot.replies import Button, Reply
from bot.schedule import local_date, next_due
from bot.storage import DEFAULT_TIMEZONE, Checkin, Reminder, ReminderDelivery, User

SNOOZE = timedelta(hours=1)


def zone(name: str | None) -> ZoneInfo:
    """A broken zone name in a row must not stop everyone else's reminders."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


# ---------------------------------------------------------------- scheduling


def _checked_in_on(s: Session, user_id: int, day: date) -> bool:
    return (
        s.scalars(
            select(Checkin.id).where(
                Checkin.user_id == user_id, Checkin.status == "done", Checkin.local_date == day
            )
        ).first()
        is not None
    )


def _daily_sent_on(s: Session, user_id: int, day: date) -> bool:
    return (
        s.scalars(
            select(ReminderDelivery.id).where(
                ReminderDelivery.user_id == user_id,
                ReminderDelivery.local_date == day,
                ReminderDelivery.kind == "daily",
                ReminderDelivery.status == "sent",
            )
        ).first()
        is not None
    )


def reschedule(reminder: Reminder, now: datetime, skip: date | None) -> None:
    """Move to the next daily time (never inside a pause) and drop any lease and snooze."""
    tz = zone(reminder.timezone)
    after = now
    if reminder.paused_until is not None and reminder.paused_until > now:
        after = reminder.paused_until - timedelta(microseconds=1)
    reminder.next_due_at = next_due(reminder.local_time, tz, after, skip_date=skip)
    reminder.snoozed = False
    reminder.claimed_by = None
    reminder.claimed_until = None


def schedule(s: Session, reminder: Reminder, now: datetime) -> None:
    """Next daily time; today is left out once the user checked in or got today's reminder."""
    today = local_date(now, zone(reminder.timezone))
    done_today = _checked_in_on(s, reminder.user_id, today) or _daily_sent_on(
        s, reminder.user_id, today
    )
    reschedule(reminder, now, today if done_today else None)


# ---------------------------------------------------------------- user commands


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
    schedule(s, reminder, now)
    s.flush()
    return reminder


def pause(s: Session, user: User, days: int | None, now: datetime) -> Reminder | None:
    """Pause for N days (back on the morning of day N+1), or (days None) until /genoptag."""
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        return None
    if days is None:
        reminder.enabled = False
        reminder.paused_until = None
        reminder.snoozed = False
    else:
        tz = zone(reminder.timezone)
        first_day_back = local_date(now, tz) + timedelta(days=days)
        start = datetime.combine(first_day_back, time(0, 0), tzinfo=tz)
        reminder.enabled = True  # "/pause 3" after "/pause" means: back in three days
        reminder.paused_until = start.astimezone(ZoneInfo("UTC"))
        reschedule(reminder, now, None)
    s.flush()
    return reminder


def resume(s: Session, user: User, now: datetime) -> Reminder | None:
    reminder = s.get(Reminder, user.id)
    if reminder is None:
        return None
    reminder.enabled = True
    reminder.paused_until = None
    schedule(s, reminder, now)
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
    """ "Udskyd 1 time": due again in an hour (None when reminders are off or paused)."""
    reminder = s.get(Reminder, user.id)
    if reminder is None or not reminder.enabled:
        return None
    if reminder.paused_until is not None and reminder.paused_until > now:
        return None
    reminder.next_due_at = now + SNOOZE
    reminder.snoozed = True
    reminder.claimed_by = None
    reminder.claimed_until = None
    s.flush()
    return reminder


def checked_in(s: Session, user: User, now: datetime) -> None:
    """After a check-in, today's reminder (if still to come, or snoozed) is not needed."""
    reminder = s.get(Reminder, user.id)
    if reminder is not None and reminder.enabled:
        schedule(s, reminder, now)
        s.flush()


# The reminder's buttons, as the second field of a `rem:` press.
BUTTON_CHECKIN = "ci"
BUTTON_SNOOZE = "snooze"
# (first hour, greeting) by the user's wall clock: the reminder greets by the time of day.
GREETINGS = ((0, "night"), (5, "morning"), (10, "day"), (17, "evening"), (22, "night"))


def greeting_key(hour: int) -> str:
    """The text key of the greeting for a local hour (0-23)."""
    part = next(name for start, name in reversed(GREETINGS) if hour >= start)
    return f"reminder_greeting_{part}"


def reminder_reply(kb: Knowledge, local_hour: int, day: date | None = None) -> Reply:
    """The reminder as the user sees it at `local_hour` on their own clock.

    Its snooze button carries the reminder's `day`: pressed on a later day it moves
    nothing (it would otherwise pull tomorrow's reminder forward to today).
    """
    checkin = protocol.encode(protocol.REMINDER, BUTTON_CHECKIN)
    days = () if day is None else (protocol.day(day),)
    snooze = protocol.encode(protocol.REMINDER, BUTTON_SNOOZE, *days)
    text = kb.text("reminder_message", greeting=kb.text(greeting_key(local_hour)))
    return Reply(
        text,
        (
            (
                Button(kb.text("reminder_checkin_button"), checkin),
                Button(kb.text("reminder_snooze_button"), snooze),
            ),
        ),
    )
