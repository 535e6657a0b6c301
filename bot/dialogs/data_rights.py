"""The user's data rights: what is stored and why, export everything, delete everything."""

from __future__ import annotations

import json

from bot import protocol, reminders
from bot.dialogs import states
from bot.dialogs.turn import Answer, Turn
from bot.replies import Button, Document, Reply
from bot.userdata import delete_user_data, export_user_data, to_csv


def privacy(turn: Turn, _args: str = "") -> list[Reply]:
    return [turn.say("privacy")]


def export(turn: Turn, _args: str = "") -> list[Reply]:
    """/mine_data: everything stored about the user, as JSON and as CSV."""
    data = export_user_data(turn.s, turn.user.id)
    payload = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    name = turn.t("export_filename", date=turn.today.isoformat())
    return [
        Reply(
            turn.t("export_intro"),
            document=Document(f"{name}.json", payload, "application/json"),
        ),
        Reply(
            turn.t("export_csv"),
            document=Document(f"{name}.csv", to_csv(data), "text/csv"),
        ),
    ]


def ask_delete(turn: Turn, _args: str = "") -> list[Reply]:
    """/slet: asks first; nothing is deleted without a yes."""
    turn.open_prompt(states.CONFIRM_DELETE)
    yes = Button(turn.t("delete_yes_button"), protocol.encode(protocol.DELETE, 1))
    no = Button(turn.t("delete_no_button"), protocol.encode(protocol.DELETE, 0))
    return [Reply(turn.t("delete_question"), ((yes, no),))]


def confirm_delete(turn: Turn, answer: Answer) -> list[Reply] | None:
    yes = turn.yes_no(answer)
    if yes is None:
        return None
    turn.close_prompt()
    if not yes:
        return [turn.say("delete_kept")]
    user_id = turn.msg.user_id  # the User row is gone after this; don't touch it again
    counts = delete_user_data(turn.s, user_id)
    turn.guests.forget(user_id)
    lines = [
        turn.t("delete_count_line", what=turn.t(f"table_{table}"), count=n)
        for table, n in counts.items()
        if n
    ]
    return [turn.say("delete_done", details="\n".join(lines) or turn.t("delete_nothing"))]


def ask_withdraw(turn: Turn, _args: str = "") -> list[Reply]:
    """/samtykke: withdraw consent, after saying what happens to what is stored."""
    if not turn.user.consent:
        return [turn.say("withdraw_no_consent")]
    turn.open_prompt(states.CONFIRM_WITHDRAW)
    yes = Button(turn.t("withdraw_yes_button"), protocol.encode(protocol.WITHDRAW, 1))
    no = Button(turn.t("withdraw_no_button"), protocol.encode(protocol.WITHDRAW, 0))
    return [Reply(turn.t("withdraw_question"), ((yes, no),))]


def confirm_withdraw(turn: Turn, answer: Answer) -> list[Reply] | None:
    """Yes: no new health data is stored and reminders stop; what is stored stays (/slet)."""
    yes = turn.yes_no(answer)
    if yes is None:
        return None
    turn.close_prompt()
    if not yes:
        return [turn.say("withdraw_kept")]
    turn.user.consent = False
    # consent_at stays (when consent was last given): the guest cleanup forgets only users
    # who never consented, so what is stored stays until /slet, as the reply says.
    reminders.stop(turn.s, turn.user)
    return [turn.say("withdraw_done")]
