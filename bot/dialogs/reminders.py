"""Daily reminders from the user's side: set, show, pause, resume, stop, snooze.

The rows and their due times are bot/reminders.py; the words of a time are
bot/timewords.py ("mind mig 7:30", "halv otte", "påmindelse kl. 6").
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import protocol, reminders, timewords
from bot.dialogs import checkin, onboarding
from bot.dialogs.turn import Answer, Turn
from bot.replies import Reply
from bot.storage import Reminder

CLOCK = "%H:%M"


def _when(turn: Turn, due: datetime) -> str:
    """ "i dag kl. 07:30", "i morgen kl. 07:30" or "12.06. kl. 07:30"."""
    local = due.astimezone(turn.tz)
    clock = local.strftime(CLOCK)
    if local.date() == turn.today:
        return turn.t("day_today", time=clock)
    if local.date() == turn.today + timedelta(days=1):
        return turn.t("day_tomorrow", time=clock)
    return turn.t("day_other", date=local.strftime("%d.%m."), time=clock)


def set_reminder(turn: Turn, args: str = "") -> list[Reply]:
    """/paamindelse 07:30 (or any words with a time); without a time: the current setting."""
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    when = timewords.find_reminder_time(turn.kb.vocab, args) if args.strip() else None
    if when is None:
        return show(turn)
    reminder = reminders.set_time(turn.s, turn.user, when, turn.now)
    return [
        turn.say("reminder_set", time=when.strftime(CLOCK), next=_when(turn, reminder.next_due_at))
    ]


def show(turn: Turn, _args: str = "") -> list[Reply]:
    """ "hvornår minder du mig?": the time, whether it is paused, and how to change it."""
    reminder = turn.s.get(Reminder, turn.user.id)
    if reminder is None:
        return [turn.say("reminder_how")]
    clock = reminder.local_time.strftime(CLOCK)
    if not reminder.enabled:
        return [turn.say("reminder_show_paused", time=clock)]
    if reminder.paused_until is not None and reminder.paused_until > turn.now:
        until = reminder.paused_until.astimezone(turn.tz).strftime("%d.%m.")
        return [turn.say("reminder_show_paused_until", time=clock, until=until)]
    return [turn.say("reminder_show", time=clock, next=_when(turn, reminder.next_due_at))]


def from_words(turn: Turn, text: str) -> list[Reply] | None:
    """A message about reminders the intents did not catch: set the time it names, or show."""
    if not timewords.mentions_reminder(turn.kb.vocab, text):
        return None
    return set_reminder(turn, text)


def pause(turn: Turn, args: str = "") -> list[Reply]:
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    days = timewords.find_pause(turn.kb.vocab, args) if args.strip() else None
    reminder = reminders.pause(turn.s, turn.user, days, turn.now)
    if reminder is None:
        return [turn.say("reminder_none")]
    if days is None:
        return [turn.say("reminder_paused")]
    until = (turn.today + timedelta(days=days)).strftime("%d.%m.")
    return [turn.say("reminder_paused_days", days=days, until=until)]


def resume(turn: Turn, _args: str = "") -> list[Reply]:
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    reminder = reminders.resume(turn.s, turn.user, turn.now)
    if reminder is None:
        return [turn.say("reminder_none")]
    clock = reminder.local_time.strftime(CLOCK)
    return [turn.say("reminder_resumed", time=clock, next=_when(turn, reminder.next_due_at))]


def stop(turn: Turn, _args: str = "") -> list[Reply]:
    stopped = reminders.stop(turn.s, turn.user)
    return [turn.say("reminder_stopped" if stopped else "reminder_none")]


def pressed(turn: Turn, answer: Answer) -> list[Reply] | None:
    """The reminder's own buttons: start the check-in, or remind again in an hour."""
    if answer.value == reminders.BUTTON_CHECKIN:
        return checkin.begin(turn)
    if answer.value == reminders.BUTTON_SNOOZE:
        day = protocol.parse_day(answer.fields[1] if len(answer.fields) > 1 else "")
        if day != turn.today or checkin.done_today(turn) is not None:
            return None  # an old reminder's button, or today's check-in is done: no snooze
        reminder = reminders.snooze(turn.s, turn.user, turn.now)
        if reminder is None:
            return None
        local = reminder.next_due_at.astimezone(turn.tz)
        return [turn.say("reminder_snoozed", time=local.strftime(CLOCK))]
    return None
