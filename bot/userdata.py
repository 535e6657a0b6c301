"""One user's rows: all of them exported (GDPR access) or deleted (GDPR erasure).

Tables are found through their `user_id` column, so a new table is exported and
deleted without changing this module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, Table, delete, exists, select
from sqlalchemy.orm import Session

from bot.storage import Base, Checkin, InboxUpdate, OutboxMessage, User

# session.info key: rows were erased in this transaction, so the caller scrubs the
# database files after the commit (Database.scrub).
ERASED = "erased_user_data"
# Guests forgotten per statement: keeps each transaction short with many of them.
GUEST_BATCH = 500
# Delivery rows (bot/inbox.py, bot/outbox.py): erased with the user, neither exported nor
# counted in the erasure's report. They
# hold nothing once handled and sent; in the middle of the export's own turn they hold
# only the /mine_data update itself and replies not yet sent.
NOT_EXPORTED = frozenset({InboxUpdate.__tablename__, OutboxMessage.__tablename__})


def _user_tables() -> list[tuple[Table, str]]:
    """Every table holding a user's rows and the column naming the user, children first."""
    found: list[tuple[Table, str]] = []
    for table in reversed(Base.metadata.sorted_tables):
        if table.name == User.__tablename__:
            found.append((table, "id"))
        elif "user_id" in table.c:
            found.append((table, "user_id"))
    return found


def delete_user_data(session: Session, user_id: int) -> dict[str, int]:
    """Delete every row of one user (GDPR erasure); returns deleted rows per table.

    Deletes explicitly rather than relying on ON DELETE CASCADE so the counts are
    exact and nothing survives even where foreign keys are not enforced. Marks the
    session (ERASED) so whoever commits it scrubs the files afterwards.
    """
    return _delete_users(session, [user_id])


def _delete_users(session: Session, chosen: Sequence[int] | Select[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table, column in _user_tables():
        result = session.execute(delete(table).where(table.c[column].in_(chosen)))
        if table.name not in NOT_EXPORTED:  # delivery rows are deleted, not reported
            counts[table.name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.expire_all()
    session.info[ERASED] = True
    return counts


def forget_guests(session: Session, now: datetime, retention: timedelta) -> list[int]:
    """Delete the rows of users who never consented and have not written for `retention`.

    A guest's row holds only ids, the dialog state and timestamps; `updated_at` is set
    by every message (Engine). Users with a check-in keep their rows even without
    consent (withdrawing consent is not erasure; /slet is). Every DELETE repeats the
    conditions, so a guest who writes or consents meanwhile is kept. A guest whose message
    is being handled in the very moment their row goes gets the error reply once; their
    next message starts afresh. Returns the deleted ids.
    """
    conditions = (
        User.consent.is_(False),
        User.consent_at.is_(None),
        User.updated_at < now - retention,
        ~exists().where(Checkin.user_id == User.id),
    )
    stale = select(User.id).where(*conditions).order_by(User.id).limit(GUEST_BATCH)
    forgotten: list[int] = []
    while ids := list(session.scalars(stale)):
        _delete_users(session, select(User.id).where(User.id.in_(ids), *conditions))
        kept = set(session.scalars(select(User.id).where(User.id.in_(ids))))
        forgotten.extend(i for i in ids if i not in kept)
    return forgotten


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def export_user_data(session: Session, user_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of one user from every table (GDPR access), as JSON-ready values.

    Keys are table names, each with a list of rows (column -> value); dates and times
    are ISO 8601 strings. Tables are read through their columns, so a new table with a
    `user_id` column is exported without changing this function.
    """
    export: dict[str, list[dict[str, Any]]] = {}
    for table, column in reversed(_user_tables()):
        if table.name in NOT_EXPORTED:
            continue
        key_columns = list(table.primary_key.columns)
        rows = session.execute(
            select(table).where(table.c[column] == user_id).order_by(*key_columns)
        ).mappings()
        export[table.name] = [
            {name: _jsonable(value) for name, value in row.items()} for row in rows
        ]
    return export


def to_csv(data: Mapping[str, Sequence[Mapping[str, object]]]) -> bytes:
    """An export in one long CSV: one line per (table, row, field, value)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["table", "row", "field", "value"])
    for table, rows in data.items():
        for index, row in enumerate(rows):
            for key, value in row.items():
                writer.writerow([table, index, key, "" if value is None else value])
    return buf.getvalue().encode("utf-8")
