"""The outbox: the replies of a turn are rows written in the turn's own transaction.

`add()` turns the engine's replies into rows (a long text split at Telegram's limit,
a picture's long caption sent after it) leased to the worker that handled the turn;
bot/sender.py delivers them, in order per chat, and `done()` deletes each row once
Telegram accepted it. A worker renews its lease (`renew()`) while it lives; rows of
a dead worker are taken over by another (`take_over()`), on the same host at once
(its process is gone), elsewhere when the lease has run out.

Crash windows:

* killed before the turn's commit: no rows, and the update is unprocessed (bot/inbox.py);
* after the commit, before Telegram accepted a row: the row stays, and the next
  owner sends it;
* the one window where a message is sent twice: Telegram accepted it and the process
  died (or the request timed out after Telegram had accepted it) before the deletion of
  its row committed. Telegram's sendMessage has no idempotency key, so the next owner
  cannot tell and sends it again. The deletions are group-committed (`done_many()`: the
  rows of the messages accepted within a few milliseconds, or while the last deletion
  was committing, go in one transaction, bot/runtime.py), so the window holds the
  sender's in-flight messages (at most one per chat and `max_in_flight` in all) plus
  those accepted in the last few milliseconds; it never holds a message twice, and
  never one of a chat whose later message was recorded.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.replies import Reply
from bot.storage import Database, OutboxMessage

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class Outgoing:
    """One Bot API message: what the sender hands to its transport."""

    chat_id: int
    kind: str  # text / photo / document
    text: str
    buttons: tuple[tuple[tuple[str, str, str], ...], ...] = ()  # (label, callback data, url)
    content: bytes | None = None
    filename: str | None = None
    row_id: int | None = None  # the outbox row (None for reminders: their rows are elsewhere)
    user_id: int | None = None


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split a long reply at paragraph, line, sentence or word boundaries, in that order."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", ". ", " "):
            cut = window.rfind(sep)
            if cut > limit // 3:
                cut += len(sep)
                break
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def _buttons(reply: Reply) -> list[list[list[str]]] | None:
    if not reply.buttons:
        return None
    return [[[b.label, b.data, *([b.url] if b.url else [])] for b in row] for row in reply.buttons]


def messages_of(chat_id: int, user_id: int | None, replies: Sequence[Reply]) -> list[OutboxMessage]:
    """The rows for a turn's replies, in the order the user must see them."""
    rows: list[OutboxMessage] = []

    def row(**kw: object) -> None:
        rows.append(OutboxMessage(chat_id=chat_id, user_id=user_id, **kw))

    for reply in replies:
        markup = _buttons(reply)
        if reply.image is not None or reply.document is not None:
            caption = reply.text if len(reply.text) <= CAPTION_LIMIT else ""
            if reply.image is not None:
                row(kind="photo", text=caption, buttons=markup, content=reply.image,
                    filename="historik.png")  # fmt: skip
            else:
                assert reply.document is not None
                row(kind="document", text=caption, buttons=markup,
                    content=reply.document.content, filename=reply.document.filename)  # fmt: skip
            if not caption and reply.text:
                for chunk in split_text(reply.text):
                    row(kind="text", text=chunk)
            continue
        chunks = split_text(reply.text)
        for i, chunk in enumerate(chunks):
            row(kind="text", text=chunk, buttons=markup if i == len(chunks) - 1 else None)
    return rows


def add(
    s: Session,
    chat_id: int,
    user_id: int | None,
    replies: Sequence[Reply],
    worker_id: str,
    now: datetime,
) -> list[OutboxMessage]:
    """Write a turn's replies as rows leased to `worker_id`, in the caller's transaction.

    One Core INSERT ... RETURNING for all of them (this runs once per turn); the returned
    objects are not in the session, they carry the new ids for the sender. The usual
    single reply takes the plain statement (no executemany ordering machinery).
    """
    rows = messages_of(chat_id, user_id, replies)
    if not rows:
        return rows
    until = now + LEASE
    for r in rows:
        r.claimed_by = worker_id
        r.claimed_until = until
        r.created_at = now
    values = [{name: getattr(r, name) for name in _COLUMNS} for r in rows]
    connection = s.connection()
    if len(values) == 1:
        rows[0].id = connection.execute(_INSERT_ONE, values[0]).scalar_one()
        return rows
    ids = list(connection.execute(_INSERT_MANY, values).scalars())
    for r, row_id in zip(rows, ids, strict=True):
        r.id = row_id
    return rows


_COLUMNS = ("chat_id", "user_id", "kind", "text", "buttons", "content", "filename",
            "claimed_by", "claimed_until", "created_at")  # fmt: skip


def outgoing(row: OutboxMessage) -> Outgoing:
    buttons = tuple(
        tuple((str(b[0]), str(b[1]), str(b[2]) if len(b) > 2 else "") for b in line)
        for line in row.buttons or ()
    )
    return Outgoing(
        chat_id=row.chat_id,
        kind=row.kind,
        text=row.text,
        buttons=buttons,
        content=row.content,
        filename=row.filename,
        row_id=row.id,
        user_id=row.user_id,
    )


_TABLE = cast(Table, OutboxMessage.__table__)
_INSERT_ONE = insert(_TABLE).returning(_TABLE.c.id)
_INSERT_MANY = insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True)
_DONE = delete(_TABLE).where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))


def done(db: Database, row_id: int) -> None:
    """Telegram accepted the message (or refused it for good): the row goes."""
    done_many(db, [row_id])


def done_many(db: Database, row_ids: Sequence[int]) -> None:
    """The rows of several such messages go in one transaction (the sender's group commit)."""
    if not row_ids:
        return
    ids = list(row_ids)
    for last in (False, True):
        try:
            with db.write_lock(), db.engine.begin() as connection:
                connection.execute(_DONE, {"ids": ids})
            return
        except DBAPIError as exc:
            # A connection that broke while it lay in the pool (it is pinged only after a
            # while unused, bot/storage.py): once more on a new one, so that a database
            # restart does not leave sent messages' rows to be sent again.
            if last or not exc.connection_invalidated:
                raise


def drop_chat(db: Database, chat_id: int) -> int:
    """The user blocked the bot (403): nothing more can reach this chat."""
    with db.session() as s:
        result = s.execute(delete(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        s.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def renew(db: Database, worker_id: str, now: datetime) -> int:
    """Extend this worker's lease on all its rows (called well within LEASE)."""
    with db.session() as s:
        result = s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.claimed_by == worker_id)
            .values(claimed_until=now + LEASE)
        )
        s.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def worker_name() -> str:
    """host:pid — lets a restarted process on the same host see its predecessor is dead."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str, me: str) -> bool:
    """An owner on this host whose process no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != me.rpartition(":")[0] or owner == me or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take_over(db: Database, worker_id: str, now: datetime, limit: int = 1000) -> list[Outgoing]:
    """Claim rows whose owner is gone (lease run out, or a dead process on this host).

    Returns them in id order, so each chat's messages keep their order.
    """
    with db.session() as s:
        owners = set(
            s.scalars(
                select(OutboxMessage.claimed_by)
                .where(OutboxMessage.claimed_until > now, OutboxMessage.claimed_by != worker_id)
                .distinct()
            )
        )
        dead = [o for o in owners if o is not None and _dead_here(o, worker_id)]
        free = (
            OutboxMessage.claimed_until.is_(None)
            | (OutboxMessage.claimed_until <= now)
            | OutboxMessage.claimed_by.in_(dead)
        )
        ids_stmt = select(OutboxMessage.id).where(free).order_by(OutboxMessage.id).limit(limit)
        if s.get_bind().dialect.name == "postgresql":
            ids_stmt = ids_stmt.with_for_update(skip_locked=True)
        ids = list(s.scalars(ids_stmt))
        if not ids:
            s.commit()
            return []
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), free)
            .values(claimed_by=worker_id, claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        rows = list(
            s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == worker_id)
                .order_by(OutboxMessage.id)
            )
        )
        taken = [outgoing(r) for r in rows]
        s.commit()
    if taken:
        log.info("outbox: took over %d message(s) of a gone worker", len(taken))
    return taken


__all__ = [
    "CAPTION_LIMIT",
    "LEASE",
    "TEXT_LIMIT",
    "Outgoing",
    "add",
    "done",
    "done_many",
    "drop_chat",
    "messages_of",
    "outgoing",
    "renew",
    "split_text",
    "take_over",
    "worker_name",
]
