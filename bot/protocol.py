"""Button data on the wire: every prefix, its encoder and decoder, and the one-shot presses.

A button's `callback_data` is `<route>:<field>:<field>...`, at most 64 bytes (Telegram's
limit; æ/ø/å take two bytes each). The route names the dialogue handler it reaches
(see bot/dialogs/routes.py); the fields are its answer. Nothing else in the package
builds or splits button data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

CALLBACK_DATA_LIMIT = 64
SEPARATOR = ":"

# route -> what a button of that route answers
CONSENT = "ob:c"  # the consent prompt: 1 yes, 0 no
GUIDE = "ob:g"  # the guide prompt: a guide id
PHASE = "ob:p"  # the phase prompt: 1-4, 0 for "don't know"
CHECKIN = "ci"  # a check-in step: step code, value, check-in key ("ci:p:4:17.5f3a9c2e")
PICK = "pick"  # show an entry (clarify and fallback suggestions): entry id
FEEDBACK = "fb"  # helped or not: 1/0 and the question id
REPLACE = "cr"  # replace today's check-in: 1 yes, 0 no, and the id of the one it replaces
DELETE = "del"  # delete everything: 1 yes, 0 no
REMINDER = "rem"  # the reminder's buttons: "ci" (start check-in), "snooze" and its day
WITHDRAW = "ob:w"  # withdraw consent: 1 yes, 0 no

ROUTES = (CONSENT, GUIDE, PHASE, CHECKIN, PICK, FEEDBACK, REPLACE, DELETE, REMINDER, WITHDRAW)
# Routes anyone may press in a group: they show guide text, never anything personal.
PUBLIC_ROUTES = frozenset({PICK, FEEDBACK})

# Buttons of a prompt that has been answered are removed after a press, so they cannot
# be pressed twice. Answers, suggestions and feedback stay pressable.
ONE_SHOT = frozenset({CONSENT, GUIDE, PHASE, CHECKIN, REPLACE, DELETE, REMINDER, WITHDRAW})
# An id field: digits only, and no larger than the row ids it names (the INTEGER primary keys
# of check-ins, questions and reminders): a client may send "2147483648" or
# "99999999999999999999999999"; that names no row, and on PostgreSQL overflowed the lookup.
_ID = re.compile(r"[0-9]{1,10}")
MAX_ROW_ID = 2**31 - 1
# A day field: YYYYMMDD.
DAY_FORMAT = "%Y%m%d"


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

    def id_field(self, index: int) -> int | None:
        """The field at `index` as a row id, or None when it cannot be one of ours."""
        return parse_id(self.field(index))

    def day_field(self, index: int) -> date | None:
        """The field at `index` as a day (YYYYMMDD), or None."""
        return parse_day(self.field(index))


def parse_id(raw: str) -> int | None:
    """A row id written by `encode`, or None for anything else (signs, huge numbers, "²")."""
    if not _ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


def day(value: date) -> str:
    """A day as a button field."""
    return value.strftime(DAY_FORMAT)


def parse_day(raw: str) -> date | None:
    if not re.fullmatch(r"[0-9]{8}", raw):
        return None
    try:
        return datetime.strptime(raw, DAY_FORMAT).date()
    except ValueError:
        return None


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
    if len(data.encode("utf-8", "surrogatepass")) > CALLBACK_DATA_LIMIT:
        return None  # Telegram carries at most 64 bytes: no button of ours wrote this
    for route in sorted(ROUTES, key=len, reverse=True):
        if data == route or data.startswith(route + SEPARATOR):
            rest = data[len(route) + 1 :]
            return Press(route, tuple(rest.split(SEPARATOR)) if rest else ())
    return None


def is_one_shot(data: str) -> bool:
    """Should the buttons of the message be removed once this one is pressed?"""
    press = decode(data)
    return press is not None and press.route in ONE_SHOT
