"""/historik: the last 30 days as a chart and a short summary."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.dialogs import checkin, onboarding
from bot.dialogs.turn import Turn
from bot.replies import Reply
from bot.storage import Checkin

HISTORY_DAYS = 30


def history(turn: Turn, _args: str = "") -> list[Reply]:
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    from bot.charts import history_png, history_summary  # matplotlib: loaded when first asked

    days = checkin.recent_days(turn, HISTORY_DAYS)
    summary = history_summary(turn.kb, days, turn.today, span_days=HISTORY_DAYS)
    flagged = _red_flag_days(turn)
    if flagged:
        dates = ", ".join(d.strftime("%d.%m.") for d in flagged)
        summary = f"{summary}\n\n{turn.t('history_red_flag_notes', dates=dates)}"
    png = history_png(turn.kb, days, turn.today, span_days=HISTORY_DAYS)
    return [Reply(summary, image=png)]


def _red_flag_days(turn: Turn) -> list[date]:
    """Days of the span whose check-in note held a red flag (the user was sent to a doctor)."""
    since = turn.today - timedelta(days=HISTORY_DAYS - 1)
    return list(
        turn.s.scalars(
            select(Checkin.local_date)
            .where(
                Checkin.user_id == turn.user.id,
                Checkin.status == "done",
                Checkin.note_red_flag.is_(True),
                Checkin.local_date >= since,
            )
            .order_by(Checkin.local_date)
        )
    )
