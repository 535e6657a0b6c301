"""The inbox: every update from Telegram is a row before Telegram is told it arrived.

Polling confirms a batch only by asking with the next offset, and the next
getUpdates is sent only after `store()` committed the batch (bot/polling.py); in
webhook mode `accept_raw()` is what the HTTP handler awaits before it answers 200.
Updates are processed from these rows, and processing is idempotent by update_id:
`claim()` in the engine's transaction marks the row processed and clears its
payload (message text is health data) in the same commit as the turn's work.

Crash windows:

* killed before `store()` commits: Telegram was not told, it hands the batch over
  again (polling: the offset was not advanced; webhook: no 200 was sent);
* after the commit, before the next getUpdates / the 200: Telegram sends the same
  updates again; `store()` ignores ids it already holds;
* after the commit, before the turn's commit: the row is unprocessed, and the next
  start (or a peer's scan, `stale()`) processes it;
* the turn's commit holds the processed mark: an update is never handled twice.

Processed rows are kept `KEEP` (without payload) so a late redelivery is still
recognised, then `purge()` deletes them. /slet deletes a user's rows
(bot/userdata.py finds the table by its user_id column).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from bot.storage import Database, InboxUpdate, utcnow

log = logging.getLogger(__name__)

KEEP = timedelta(days=1)
# The kinds of update whose sender is a user (the key for one user's queue).
_SENDER_FIELDS = (
    "message",
    "edited_message",
    "callback_query",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
)


_TABLE = cast(Table, InboxUpdate.__table__)


@dataclass(frozen=True)
class Stored:
    """An update as the inbox holds it: its id, its user and its decoded JSON."""

    update_id: int
    user_id: int | None
    data: dict[str, Any]


def sender_of(data: Mapping[str, Any]) -> int | None:
    """The id of the user an update comes from (None for updates without one)."""
    for name in _SENDER_FIELDS:
        part = data.get(name)
        if isinstance(part, Mapping):
            sender = part.get("from")
            if isinstance(sender, Mapping) and isinstance(sender.get("id"), int):
                return int(sender["id"])
            chat = part.get("chat")
            if isinstance(chat, Mapping) and isinstance(chat.get("id"), int):
                return int(chat["id"])
    return None


def store(
    db: Database, updates: Iterable[Mapping[str, Any]], now: datetime | None = None
) -> list[Stored]:
    """Store a batch in one transaction; returns the updates that were new (in id order).

    An update id already present (a redelivery after a crash in the window above) is
    left alone, processed or not.
    """
    batch = {int(u["update_id"]): dict(u) for u in updates}
    if not batch:
        return []
    when = now or utcnow()
    with db.write_lock(), db.session() as s:
        known = set(
            s.scalars(select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(batch)))
        )
        new = [
            Stored(uid, sender_of(data), data)
            for uid, data in sorted(batch.items())
            if uid not in known
        ]
        if new:
            rows = [
                {
                    "update_id": item.update_id,
                    "user_id": item.user_id,
                    "payload": json.dumps(item.data, ensure_ascii=False, separators=(",", ":")),
                    "received_at": when,
                }
                for item in new
            ]
            s.connection().execute(insert(_TABLE), rows)
        s.commit()
    return new


class BadUpdate(ValueError):
    """A webhook body that is no Telegram update (the HTTP handler answers 400)."""


def accept_raw(db: Database, body: bytes) -> Stored | None:
    """Store one webhook body (the JSON of one update); None when it was already stored.

    The webhook's `accept` callable: it returns only after the commit, so its 200 means
    stored. Raises BadUpdate for a body that is not an update's JSON.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUpdate("the body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise BadUpdate("the body has no integer update_id")
    new = store(db, [data])
    return new[0] if new else None


def pending(
    db: Database, received_before: datetime | None = None, limit: int = 1000
) -> list[Stored]:
    """Unprocessed rows in update order (at start: all; later: those a dead peer left)."""
    with db.session() as s:
        stmt = select(InboxUpdate).where(
            InboxUpdate.processed_at.is_(None), InboxUpdate.payload.is_not(None)
        )
        if received_before is not None:
            stmt = stmt.where(InboxUpdate.received_at < received_before)
        rows = list(s.scalars(stmt.order_by(InboxUpdate.update_id).limit(limit)))
    found: list[Stored] = []
    for row in rows:
        try:
            data = json.loads(row.payload or "")
        except ValueError:
            data = {}
        found.append(Stored(row.update_id, row.user_id, data if isinstance(data, dict) else {}))
    return found


def is_processed(s: Session, update_id: int) -> bool:
    """True when a committed turn already handled this update (a cheap early skip)."""
    done = s.scalar(select(InboxUpdate.processed_at).where(InboxUpdate.update_id == update_id))
    return done is not None


_CLAIM = (
    update(_TABLE)
    .where(_TABLE.c.update_id == bindparam("uid"), _TABLE.c.processed_at.is_(None))
    .values(processed_at=bindparam("now"), payload=None)
)
_EXISTS = select(_TABLE.c.update_id).where(_TABLE.c.update_id == bindparam("uid"))


def claim(s: Session, update_id: int, now: datetime) -> bool:
    """Mark the update processed in the caller's transaction; False if a peer already did.

    The turn's first statement (Engine.handle_update): the mark commits with the turn or
    not at all, and on PostgreSQL the UPDATE holds the row, so a peer's claim of the same
    update waits for this transaction and then sees its mark (the peer does not run the
    turn). A row that is gone (a /slet erased it, or it was never stored) counts as
    claimed. Core statements: this runs once per update.
    """
    connection = s.connection()
    result = connection.execute(_CLAIM, {"uid": update_id, "now": now})
    if int(result.rowcount or 0) == 1:
        return True
    return connection.execute(_EXISTS, {"uid": update_id}).first() is None


def purge(db: Database, now: datetime, keep: timedelta = KEEP) -> int:
    """Delete processed rows older than `keep` (their payload is already gone)."""
    with db.session() as s:
        result = s.execute(delete(InboxUpdate).where(InboxUpdate.processed_at < now - keep))
        s.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


__all__ = [
    "KEEP",
    "BadUpdate",
    "Stored",
    "accept_raw",
    "claim",
    "is_processed",
    "pending",
    "purge",
    "sender_of",
    "store",
]
