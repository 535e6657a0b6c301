"""Groups get a pointer, not personal things: one line and a link to the private chat.

In a group or channel the bot never sends or asks anything personal (check-ins, history,
export, erasure, reminders, consent, onboarding). It answers with `private_only` and,
when the adapter told the engine the bot's username, a `t.me/<bot>?start=<payload>`
button; Telegram then sends "/start <payload>" in the private chat, and the router runs
the command the payload names there.
"""

from __future__ import annotations

import re

from bot import protocol
from bot.dialogs.turn import Turn
from bot.replies import Button, Reply

# Telegram allows A-Z, a-z, 0-9, _ and - in a start payload, up to 64 characters.
PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What a personal button pressed in a group opens in the private chat.
BUTTON_PAYLOADS = {
    protocol.CONSENT: "start",
    protocol.GUIDE: "guide",
    protocol.PHASE: "fase",
    protocol.CHECKIN: "checkin",
    protocol.REPLACE: "checkin",
    protocol.REMINDER: "checkin",
    protocol.DELETE: "slet",
    protocol.WITHDRAW: "samtykke",
}


def link(username: str, payload: str) -> str:
    """The deep link that opens the private chat with the bot at `payload`."""
    if not PAYLOAD.fullmatch(payload):
        raise ValueError(f"not a start payload: {payload!r}")
    return f"https://t.me/{username}?start={payload}"


def private_only(turn: Turn, payload: str) -> list[Reply]:
    """The one line a group gets instead of something personal, with the link if known."""
    text = turn.t("private_only")
    if not turn.bot_username:
        return [Reply(text)]
    button = Button(turn.t("private_chat_button"), url=link(turn.bot_username, payload))
    return [Reply(text, ((button,),))]


def payload_of(args: str) -> str | None:
    """The payload of "/start <payload>", None when there is none or it is malformed."""
    payload = args.strip()
    return payload if PAYLOAD.fullmatch(payload) else None
