"""/historik: the last 30 days as a chart and a short summary."""

from __future__ import annotations

from bot.dialogs import checkin, onboarding
from bot.dialogs.turn import Turn
from bot.replies import Reply

HISTORY_DAYS = 30


def history(turn: Turn, _args: str = "") -> list[Reply]:
    if not turn.user.consent:
        return onboarding.require_consent(turn)
    from bot.charts import history_png, history_summary  # matplotlib: loaded when first asked

    days = checkin.recent_days(turn, HISTORY_DAYS)
    summary = history_summary(turn.kb, days, turn.today, span_days=HISTORY_DAYS)
    png = history_png(turn.kb, days, turn.today, span_days=HISTORY_DAYS)
    return [Reply(summary, image=png)]
