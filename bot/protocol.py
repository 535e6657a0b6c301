"""Button data on the wire: every prefix, its encoder and decoder, and the one-shot presses.

A button's `callback_data` is `<route>:<field>:<field>...`, at most 64 bytes (Telegram's
limit; æ/ø/å take two bytes each). The route names the dialogue handler it reaches
(see bot/dialogs/routes.py); the fields are its answer. Nothing else in the package
builds or splits button data.
"""

from __future__ import annotations

from dataclasses import dataclass

CALLBACK_DATA_LIMIT = 64
SEPARATOR = ":"

# route -> what a button of that route answers
CONSENT = "ob:c"  # the consent prompt: 1 yes, 0 no
GUIDE = "ob:g"  # the guide prompt: a guide id
PHASE = "ob:p"  # the phase prompt: 1-4, 0 for "don't know"
CHECKIN = "ci"  # a check-in step: step code and value ("ci:p:4", "ci:m:same")
PICK = "pick"  # show an entry (clarify and fallback suggestions): entry id
FEEDBACK = "fb"  # helped or not: 1/0 and the question id
REPLACE = "cr"  # replace today's check-in: 1 yes, 0 no
DELETE = "del"  # delete everything: 1 yes, 0 no
REMINDER = "rem"  # the reminder's buttons: "ci" (start check-in), "snooze"

ROUTES = (CONSENT, GUIDE, PHASE, CHECKIN, PICK, FEEDBACK, REPLACE, DELETE, REMINDER)

# Buttons of a prompt that has been answered are removed after a press, so they cannot
# be pressed twice. Answers, suggestions and feedback stay pressable.
ONE_SHOT = frozenset({CONSENT, GUIDE, PHASE, CHECKIN, REPLACE, DELETE, REMINDER})


class ProtocolError(ValueError):
    """Button data that this package cannot have written."""


@dataclass(frozen=True)
class Press:
    """A decoded button press: which route it reaches and the fields it carries."""

    route: str
    fields: tuple[str, ...]

    def field(self, index: int) -> str:
        """The field at `index`, or "" when the press carries fewer."""
        return self.fields[index] if index < len(self.fields) else ""


def encode(route: str, *fields: object) -> str:
    """The callback data for a button of `route` carrying `fields`."""
    if route not in ROUTES:
        raise ProtocolError(f"unknown button route {route!r}")
    parts = [str(f) for f in fields]
    if any(SEPARATOR in p or not p for p in parts):
        raise ProtocolError(f"button fields must be non-empty and hold no {SEPARATOR!r}: {parts}")
    data = SEPARATOR.join([route, *parts])
    size = len(data.encode("utf-8"))
    if size > CALLBACK_DATA_LIMIT:
        raise ProtocolError(f"callback data is {size} bytes, over {CALLBACK_DATA_LIMIT}: {data!r}")
    return data


def decode(data: str) -> Press | None:
    """The press that `data` encodes, or None for data no route of ours wrote."""
    for route in sorted(ROUTES, key=len, reverse=True):
        if data == route or data.startswith(route + SEPARATOR):
            rest = data[len(route) + 1 :]
            return Press(route, tuple(rest.split(SEPARATOR)) if rest else ())
    return None


def is_one_shot(data: str) -> bool:
    """Should the buttons of the message be removed once this one is pressed?"""
    press = decode(data)
    return press is not None and press.route in ONE_SHOT
