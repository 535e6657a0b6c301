"""The daily check-in, database side: start, each step's answer, replace today's, cancel.

The questions, the reading of answers and the summary are the pure machine in
bot/checkin.py; this module stores the draft in the open Checkin row after every step,
so an answer is committed before the user sees the next question.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from sqlalchemy import inspect, select

from bot import checkin as ci
from bot import protocol, reminders
from bot.dialogs import onboarding, states
from bot.dialogs.turn import Answer, Turn
from bot.records import DayRecord, Morning, ZoneId
from bot.replies import Button, Reply
from bot.storage import Checkin

# dialog_data key of the replace question: the id of the check-in it asked about.
REPLACES = "replaces"
# The start time in a button key, in milliseconds modulo this (8 hex digits, ~50 days).
KEY_MODULUS = 16**8


def open_checkin(turn: Turn) -> Checkin | None:
    """The user's open check-in, looked up once per turn.

    The row seen earlier in the turn is trusted while it is still open and loaded (not
    deleted, not expired by an erasure); "none open" is trusted until `begin` opens one.
    Anything else asks the database again.
    """
    if turn.checkin_known:
        seen = turn.checkin_seen
        if seen is None:
            return None
        state = inspect(seen)
        loaded = not (state.deleted or state.detached or state.expired_attributes)
        if loaded and seen.status == "open":
            return seen
    row = turn.s.scalars(
        select(Checkin).where(Checkin.user_id == turn.user.id, Checkin.status == "open")
    ).first()
    _seen(turn, row)
    return row


def _seen(turn: Turn, row: Checkin | None) -> None:
    turn.checkin_known, turn.checkin_seen = True, row


def prompt_id(row: Checkin) -> str:
    """Names the open step, so "asked again once" is counted per step."""
    return f"checkin:{row.id}:{row.step}"


def expire_stale(turn: Turn) -> list[Reply]:
    row = open_checkin(turn)
    timeout = timedelta(minutes=turn.settings.checkin_timeout_minutes)
    if row is None or row.updated_at >= turn.now - timeout:
        return []
    row.status = "expired"
    turn.s.flush()
    return [turn.say("flow_checkin_expired")]


def _draft(row: Checkin) -> ci.Draft:
    return ci.Draft(
        step=ci.Step(row.step or ci.Step.PAIN.value),
        pain=row.pain,
        morning=cast(Morning | None, row.morning),
        activity=row.activity,
        note=row.note,
        key=button_key(row),
    )


def button_key(row: Checkin) -> str:
    """What the check-in's buttons carry: its id and the millisecond it started.

    The id alone is not enough: a cancelled check-in's row is deleted and SQLite hands
    its id to the next one, whose questions an old button must not answer.
    """
    started = int(row.started_at.timestamp() * 1000) % KEY_MODULUS
    return f"{row.id}.{started:x}"


def done_today(turn: Turn) -> Checkin | None:
    return turn.s.scalars(
        select(Checkin).where(
            Checkin.user_id == turn.user.id,
            Checkin.status == "done",
            Checkin.local_date == turn.today,
        )
    ).first()


def begin(turn: Turn, _args: str = "", *, replace: bool = False) -> list[Reply]:
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    row = open_checkin(turn)
    if row is not None:
        return [turn.say("flow_checkin_resume"), ci.prompt(turn.kb, _draft(row))]
    done = done_today(turn)
    if done is not None and not replace:
        zone = turn.kb.traffic_light.zone(done.zone or "green")
        turn.open_prompt(states.CONFIRM_REPLACE)
        turn.user.dialog_data = {**turn.user.dialog_data, REPLACES: done.id}
        # The buttons name the check-in they would replace: pressed after another
        # check-in was done (or the prompt asked again), they replace nothing.
        yes = Button(
            turn.t("flow_replace_yes_button"), protocol.encode(protocol.REPLACE, 1, done.id)
        )
        no = Button(turn.t("flow_replace_no_button"), protocol.encode(protocol.REPLACE, 0, done.id))
        text = turn.t("flow_already_today", symbol=zone.symbol, pain=done.pain)
        return [Reply(text, ((yes, no),))]
    draft = ci.new_draft()
    row = Checkin(
        user_id=turn.user.id,
        local_date=turn.today,
        status="open",
        step=draft.step.value,
        started_at=turn.now,
        updated_at=turn.now,
    )
    turn.s.add(row)
    turn.s.flush()
    _seen(turn, row)
    return [ci.prompt(turn.kb, _draft(row))]


def ask_replace(turn: Turn) -> list[Reply]:
    return begin(turn)


def confirm_replace(turn: Turn, answer: Answer) -> list[Reply] | None:
    yes = turn.yes_no(answer)
    if yes is None:
        return None
    if answer.pressed:
        asked_about = (turn.user.dialog_data or {}).get(REPLACES)
        pressed_for = protocol.parse_id(answer.fields[1] if len(answer.fields) > 1 else "")
        done = done_today(turn)
        if (
            pressed_for is None
            or pressed_for != asked_about
            or done is None
            or done.id != pressed_for
        ):
            return None  # a button of another question: it replaces nothing
    turn.close_prompt()
    return begin(turn, replace=True) if yes else [turn.say("flow_checkin_kept")]


def ask_step(turn: Turn) -> list[Reply]:
    row = open_checkin(turn)
    return [] if row is None else [ci.prompt(turn.kb, _draft(row))]


def hint_step(turn: Turn) -> list[Reply]:
    row = open_checkin(turn)
    if row is None:
        return []
    result = ci.answer(turn.kb, _draft(row), text="")
    return [result.reply] if result.reply else ask_step(turn)


def _is_exact_cancel(turn: Turn, text: str) -> bool:
    """At the free-text note step only a cancel intent's own phrase cancels."""
    said = " ".join(turn.words(text))
    return any(
        said == " ".join(turn.words(example))
        for intent in turn.kb.intents
        if intent.action == "cancel"
        for example in intent.examples
    )


def step(turn: Turn, answer: Answer) -> list[Reply] | None:
    """The answer to the open step, typed or pressed; None when typed text is no answer."""
    row = open_checkin(turn)
    if row is None:
        return None
    draft = _draft(row)
    if answer.pressed:
        if answer.fields[2:] != (button_key(row),):
            return None  # a button of another check-in: it answers nothing of this one
        result = ci.answer(turn.kb, draft, callback=turn.msg.callback or "")
    else:
        if draft.step is ci.Step.NOTE and _is_exact_cancel(turn, answer.text):
            return cancel(turn)
        result = ci.answer(turn.kb, draft, text=answer.text)
        if not result.understood:
            return None
    if not result.understood:
        return [result.reply] if result.reply else [ci.prompt(turn.kb, draft)]
    new = result.draft
    row.step, row.pain, row.morning = new.step.value, new.pain, new.morning
    row.activity, row.note, row.updated_at = new.activity, new.note, turn.now
    if draft.step is ci.Step.NOTE:
        # The router has already advised a doctor; the stored note says it was needed.
        typed = answer.text if new.note else ""
        row.note_red_flag = bool(typed and turn.matcher.red_flags(typed, turn.today))
    if new.step is not ci.Step.DONE:
        turn.s.flush()
        return [result.reply] if result.reply else [ci.prompt(turn.kb, new)]
    return _complete(turn, row, new)


def _complete(turn: Turn, row: Checkin, draft: ci.Draft) -> list[Reply]:
    zone = ci.zone_of(turn.kb, draft)
    for old in turn.s.scalars(
        select(Checkin).where(
            Checkin.user_id == turn.user.id,
            Checkin.status == "done",
            Checkin.local_date == row.local_date,
            Checkin.id != row.id,
        )
    ):
        old.status = "replaced"
    turn.s.flush()
    row.status, row.step, row.zone, row.completed_at = "done", None, zone.id, turn.now
    turn.s.flush()
    reminders.checked_in(turn.s, turn.user, turn.now)
    days = recent_days(turn, turn.kb.traffic_light.trend.no_improvement_weeks * 7 + 7)
    return [ci.summary(turn.kb, draft, turn.guide, turn.user.phase, days, turn.today)]


def recent_days(turn: Turn, days: int) -> list[DayRecord]:
    """The user's completed check-ins of the last `days` days, oldest first."""
    since = turn.today - timedelta(days=days - 1)
    rows = turn.s.scalars(
        select(Checkin)
        .where(
            Checkin.user_id == turn.user.id,
            Checkin.status == "done",
            Checkin.local_date >= since,
        )
        .order_by(Checkin.local_date)
    )
    return [
        DayRecord(
            day=r.local_date,
            pain=r.pain or 0,
            zone=cast(ZoneId, r.zone or "green"),
            morning=cast(Morning | None, r.morning),
            activity=r.activity,
        )
        for r in rows
    ]


def cancel(turn: Turn, _args: str = "") -> list[Reply]:
    """/annuller: the open check-in (nothing of it kept), else the open prompt."""
    row = open_checkin(turn)
    if row is not None:
        turn.s.delete(row)
        turn.s.flush()
        return [turn.say("flow_checkin_cancelled")]
    if turn.prompt is not None:
        turn.close_prompt()
        return [turn.say("cancelled")]
    return [turn.say("nothing_to_cancel")]
