"""Storage behaviour on SQLite and PostgreSQL: UTC datetimes, the check-in and delivery
constraints, cascading deletes, GDPR export/delete and claiming due reminders."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot.storage import (
    Base,
    Checkin,
    Database,
    InboxUpdate,
    OutboxMessage,
    Question,
    Reminder,
    ReminderDelivery,
    User,
    claim_due_reminders,
    normalize_url,
    utcnow,
)
from bot.userdata import NOT_EXPORTED, delete_user_data, export_user_data

CPH = ZoneInfo("Europe/Copenhagen")
T0 = datetime(2025, 3, 30, 6, 30, 15, 123456, tzinfo=UTC)  # the morning clocks go forward


def _populate(session: Session, user_id: int, *, checkins: int = 2, questions: int = 3) -> None:
    """One user with rows in every table."""
    session.add(User(id=user_id, chat_id=user_id * 10, consent=True, consent_at=T0))
    session.flush()
    for day in range(checkins):
        session.add(
            Checkin(
                user_id=user_id,
                local_date=date(2025, 3, 1 + day),
                status="done",
                pain=day,
                zone="green",
                completed_at=T0,
            )
        )
    for n in range(questions):
        session.add(Question(user_id=user_id, text=f"spørgsmål {n}", kind="answer", score=0.5))
    session.add(
        Reminder(
            user_id=user_id, local_time=time(8, 0), timezone="Europe/Copenhagen", next_due_at=T0
        )
    )
    session.add(
        ReminderDelivery(user_id=user_id, local_date=date(2025, 3, 1), kind="daily", claimed_by="w")
    )
    session.add(
        ReminderDelivery(
            user_id=user_id, local_date=date(2025, 3, 1), kind="snooze", claimed_by="w"
        )
    )
    # An update not yet handled and a reply not yet sent (bot/inbox.py, bot/outbox.py).
    session.add(InboxUpdate(update_id=user_id, user_id=user_id, payload='{"update_id": 1}'))
    session.add(OutboxMessage(chat_id=user_id * 10, user_id=user_id, text="svar"))
    session.flush()


def _rows_of(session: Session, user_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        column = table.c["id"] if table.name == "users" else table.c["user_id"]
        counts[table.name] = (
            session.scalar(select(func.count()).select_from(table).where(column == user_id)) or 0
        )
    return counts


def test_populate_covers_every_table(database: Database) -> None:
    # Guards the tests below: a new table must get rows here, or they prove nothing for it.
    with database.session() as session:
        _populate(session, 1)
        assert all(n > 0 for n in _rows_of(session, 1).values()), _rows_of(session, 1)


# --- datetimes -----------------------------------------------------------------------------


def test_aware_datetimes_round_trip_as_utc(database: Database) -> None:
    local = T0.astimezone(CPH)
    with database.session() as session:
        session.add(User(id=1, consent=True, consent_at=local))
        session.commit()
    with database.session() as session:
        user = session.get(User, 1)
        assert user is not None
        assert user.consent_at == T0
        assert user.consent_at is not None
        assert user.consent_at.utcoffset() == timedelta(0)
        assert user.consent_at.microsecond == 123456
        assert user.created_at.tzinfo is not None
        assert abs(user.created_at - utcnow()) < timedelta(hours=1)


def test_server_default_timestamps_are_aware_utc(database: Database) -> None:
    # Rows written without the ORM get the database's clock, still read back as aware UTC.
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO users (id) VALUES (7)"))
    with database.session() as session:
        user = session.get(User, 7)
        assert user is not None
        assert user.created_at.utcoffset() == timedelta(0)
        assert abs(user.created_at - utcnow()) < timedelta(hours=1)
        assert user.consent is False
        assert user.active is True
        assert user.timezone == "Europe/Copenhagen"
        assert user.dialog_data == {}


def test_naive_datetime_is_refused(database: Database) -> None:
    with database.session() as session:
        session.add(User(id=1, consent_at=datetime(2025, 1, 1, 12, 0)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


def test_queries_compare_instants_not_wall_clocks(database: Database) -> None:
    with database.session() as session:
        session.add(User(id=1))
        session.add(Reminder(user_id=1, local_time=time(8), next_due_at=T0))
        session.commit()
        just_before = (T0 - timedelta(seconds=1)).astimezone(CPH)
        assert session.scalar(select(Reminder).where(Reminder.next_due_at <= just_before)) is None
        found = session.scalar(select(Reminder).where(Reminder.next_due_at <= T0.astimezone(CPH)))
        assert found is not None
        assert found.user_id == 1


def test_dialog_data_changes_in_place_are_saved(database: Database) -> None:
    with database.session() as session:
        session.add(User(id=1))
        session.commit()
        user = session.get(User, 1)
        assert user is not None
        user.dialog_data["step"] = "guide"
        user.dialog_data["svar"] = ["knæ", 3]
        session.commit()
    with database.session() as session:
        user = session.get(User, 1)
        assert user is not None
        assert user.dialog_data == {"step": "guide", "svar": ["knæ", 3]}


# --- constraints ---------------------------------------------------------------------------


def test_at_most_one_open_checkin_per_user(database: Database) -> None:
    day = date(2025, 3, 1)
    with database.session() as session:
        session.add_all([User(id=1), User(id=2)])
        session.add_all([Checkin(user_id=1, local_date=day), Checkin(user_id=2, local_date=day)])
        session.commit()
        session.add(Checkin(user_id=1, local_date=date(2025, 3, 2), status="open"))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        # Closing the open one makes room for a new one; closed ones may pile up.
        session.execute(update(Checkin).where(Checkin.user_id == 1).values(status="cancelled"))
        session.add(Checkin(user_id=1, local_date=day, status="cancelled"))
        session.add(Checkin(user_id=1, local_date=day, status="open"))
        session.commit()
        statuses = session.scalars(
            select(Checkin.status).where(Checkin.user_id == 1).order_by(Checkin.id)
        ).all()
        assert statuses == ["cancelled", "cancelled", "open"]


def test_at_most_one_done_checkin_per_user_and_day(database: Database) -> None:
    day = date(2025, 3, 1)
    with database.session() as session:
        session.add_all([User(id=1), User(id=2)])
        session.add_all(
            [
                Checkin(user_id=1, local_date=day, status="done", pain=2),
                Checkin(user_id=1, local_date=day + timedelta(days=1), status="done", pain=3),
                Checkin(user_id=1, local_date=day, status="replaced", pain=5),
                Checkin(user_id=1, local_date=day, status="open"),
                Checkin(user_id=2, local_date=day, status="done", pain=1),
            ]
        )
        session.commit()
        session.add(Checkin(user_id=1, local_date=day, status="done", pain=4))
        with pytest.raises(IntegrityError):
            session.commit()


@pytest.mark.parametrize(("pain", "status"), [(11, "done"), (-1, "done"), (3, "finished")], ids=str)
def test_checkin_values_are_checked(database: Database, pain: int, status: str) -> None:
    with database.session() as session:
        session.add(User(id=1))
        session.commit()
        session.add(Checkin(user_id=1, local_date=date(2025, 3, 1), status=status, pain=pain))
        with pytest.raises(IntegrityError):
            session.commit()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with database.session() as session:
        session.add(Checkin(user_id=404, local_date=date(2025, 3, 1)))
        with pytest.raises(IntegrityError):
            session.commit()


def test_second_delivery_for_the_same_day_and_kind_is_rejected(database: Database) -> None:
    day = date(2025, 3, 1)
    with database.session() as session:
        session.add_all([User(id=1), User(id=2)])
        session.add_all(
            [
                ReminderDelivery(user_id=1, local_date=day, kind="daily", claimed_by="a"),
                ReminderDelivery(user_id=1, local_date=day, kind="snooze", claimed_by="a"),
                ReminderDelivery(user_id=1, local_date=day + timedelta(1), claimed_by="a"),
                ReminderDelivery(user_id=2, local_date=day, kind="daily", claimed_by="a"),
            ]
        )
        session.commit()
    # Another worker (another session) trying to send the same reminder again loses.
    with database.session() as other:
        other.add(ReminderDelivery(user_id=1, local_date=day, kind="daily", claimed_by="b"))
        with pytest.raises(IntegrityError):
            other.commit()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ReminderDelivery)) == 4


# --- deleting and exporting a user's data --------------------------------------------------


def test_deleting_a_user_cascades_to_every_table_and_spares_others(database: Database) -> None:
    with database.session() as session:
        _populate(session, 1)
        _populate(session, 2, checkins=1, questions=1)
        session.add(Question(user_id=None, text="anonym", kind="fallback", score=0.1))
        session.commit()
        before = _rows_of(session, 2)
    with database.engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE id = 1"))
    with database.session() as session:
        # Delivery rows have no foreign key (an update is stored before its user exists,
        # the reply to /slet after the user is gone): delete_user_data deletes them.
        left = {t: n for t, n in _rows_of(session, 1).items() if t not in NOT_EXPORTED}
        assert set(left.values()) == {0}
        assert _rows_of(session, 2) == before
        assert session.scalar(select(func.count()).where(Question.user_id.is_(None))) == 1


def test_delete_user_data_counts_rows_per_table(database: Database) -> None:
    with database.session() as session:
        _populate(session, 1, checkins=2, questions=3)
        _populate(session, 2, checkins=1, questions=1)
        session.add(Question(user_id=None, text="anonym", kind="fallback", score=0.1))
        session.commit()
        others = _rows_of(session, 2)

        counts = delete_user_data(session, 1)
        session.commit()

        assert counts == {
            "users": 1,
            "checkins": 2,
            "questions": 3,
            "reminders": 1,
            "reminder_deliveries": 2,
        }
        assert set(_rows_of(session, 1).values()) == {0}
        assert _rows_of(session, 2) == others
        assert session.scalar(select(func.count()).where(Question.user_id.is_(None))) == 1
        assert session.get(User, 1) is None
        assert set(delete_user_data(session, 1).values()) == {0}


def test_export_user_data_is_json_and_only_that_users_rows(database: Database) -> None:
    with database.session() as session:
        _populate(session, 1, checkins=2, questions=3)
        _populate(session, 2, checkins=1, questions=1)
        session.add(Question(user_id=None, text="anonym", kind="fallback", score=0.1))
        user = session.get(User, 1)
        assert user is not None
        user.dialog_data = {"step": "pain", "valg": "æøå"}
        session.commit()

        export = export_user_data(session, 1)

    decoded = json.loads(json.dumps(export, ensure_ascii=False))
    # Delivery rows are transport, not the user's data: erased with it but not exported.
    assert set(decoded) == {t.name for t in Base.metadata.sorted_tables} - NOT_EXPORTED
    assert {name: len(rows) for name, rows in decoded.items()} == {
        "users": 1,
        "checkins": 2,
        "questions": 3,
        "reminders": 1,
        "reminder_deliveries": 2,
    }
    assert decoded["users"][0]["id"] == 1
    assert decoded["users"][0]["dialog_data"] == {"step": "pain", "valg": "æøå"}
    for name, rows in decoded.items():
        key = "id" if name == "users" else "user_id"
        assert {row[key] for row in rows} == {1}
    assert [row["text"] for row in decoded["questions"]] == [
        "spørgsmål 0",
        "spørgsmål 1",
        "spørgsmål 2",
    ]
    assert datetime.fromisoformat(decoded["users"][0]["consent_at"]) == T0
    assert decoded["checkins"][0]["local_date"] == "2025-03-01"
    assert decoded["reminders"][0]["local_time"] == "08:00:00"


def test_export_of_unknown_user_is_empty(database: Database) -> None:
    with database.session() as session:
        export = export_user_data(session, 999)
    assert export
    assert all(rows == [] for rows in export.values())


# --- claiming due reminders ----------------------------------------------------------------


def _reminders(session: Session, due: int, now: datetime) -> set[int]:
    """`due` reminders due at staggered times before `now`, plus four that are not due."""
    ids = set()
    for n in range(due):
        uid = 100 + n
        session.add(User(id=uid))
        session.flush()
        session.add(
            Reminder(user_id=uid, local_time=time(8), next_due_at=now - timedelta(minutes=n + 1))
        )
        ids.add(uid)
    not_due: dict[int, dict[str, Any]] = {
        1: {"next_due_at": now + timedelta(minutes=1)},
        2: {"next_due_at": now - timedelta(hours=1), "enabled": False},
        3: {"next_due_at": now - timedelta(hours=1), "paused_until": now + timedelta(days=1)},
        4: {
            "next_due_at": now - timedelta(hours=1),
            "claimed_by": "elsewhere",
            "claimed_until": now + timedelta(seconds=30),
        },
    }
    for uid, values in not_due.items():
        session.add(User(id=uid))
        session.flush()
        session.add(Reminder(user_id=uid, local_time=time(8), **values))
    session.commit()
    return ids


def test_claim_due_reminders_takes_due_rows_once_until_the_lease_ends(database: Database) -> None:
    now = T0
    lease = timedelta(minutes=2)
    with database.session() as session:
        due = _reminders(session, 5, now)

    with database.session() as a:
        first = claim_due_reminders(a, now, "worker-a", 3, lease)
        a.commit()
    # Oldest first: the three that have waited longest.
    assert [r.user_id for r in first] == [104, 103, 102]
    assert all(r.claimed_by == "worker-a" and r.claimed_until == now + lease for r in first)

    with database.session() as b:
        second = claim_due_reminders(b, now, "worker-b", 10, lease)
        b.commit()
        assert {r.user_id for r in second} == due - {r.user_id for r in first}
        assert claim_due_reminders(b, now, "worker-b", 10, lease) == []
        assert claim_due_reminders(b, now, "worker-b", 0, lease) == []

    with database.session() as session:
        owners = {
            uid: owner
            for uid, owner in session.execute(select(Reminder.user_id, Reminder.claimed_by))
        }
    assert {uid for uid, owner in owners.items() if owner == "worker-a"} == {102, 103, 104}
    assert {uid for uid, owner in owners.items() if owner == "worker-b"} == {100, 101}

    # After the lease ends (the worker died) the rows are due again, as are user 4's
    # (its lease ran out too) and user 1's (due a minute after `now`).
    later = now + lease
    with database.session() as c:
        again = claim_due_reminders(c, later, "worker-c", 10, lease)
        c.commit()
    assert {r.user_id for r in again} == due | {1, 4}


def test_concurrent_workers_claim_disjoint_reminders(database: Database) -> None:
    now = T0
    with database.session() as session:
        due = _reminders(session, 20, now)

    workers = 4
    barrier = threading.Barrier(workers)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with database.session() as session:
                barrier.wait()
                rows = claim_due_reminders(session, now, name, 5, timedelta(minutes=5))
                claimed[name] = [r.user_id for r in rows]
                session.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    everything = [uid for ids in claimed.values() for uid in ids]
    assert len(everything) == len(set(everything)) == 20
    assert set(everything) == due


@pytest.mark.postgres
def test_skip_locked_lets_an_open_transaction_and_another_worker_share(
    pg_database: Database,
) -> None:
    """While worker A's claim is still uncommitted (rows locked), worker B neither waits
    nor takes A's rows: it gets the next due ones (FOR UPDATE SKIP LOCKED)."""
    now = T0
    with pg_database.session() as session:
        due = _reminders(session, 6, now)

    with pg_database.session() as a, pg_database.session() as b:
        first = {r.user_id for r in claim_due_reminders(a, now, "a", 3, timedelta(minutes=5))}
        # Without SKIP LOCKED, B would block on A's locks: fail instead of hanging.
        b.execute(text("SET LOCAL lock_timeout = '10s'"))
        second = {r.user_id for r in claim_due_reminders(b, now, "b", 10, timedelta(minutes=5))}
        assert first == {105, 104, 103}
        assert second == due - first
        b.commit()
        a.commit()


# --- engine setup --------------------------------------------------------------------------


def test_sqlite_database_creates_its_folder_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "bot.sqlite3"
    database = Database(f"sqlite:///{path}")
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert path.parent.is_dir()
    finally:
        database.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@db:5432/bot",
        "postgresql://u:p@db:5432/bot",
        "postgresql+psycopg://u:p@db/bot",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_every_table_is_in_the_export_and_delete_helpers() -> None:
    # A new table without a user column would silently escape GDPR export and deletion.
    for table in Base.metadata.sorted_tables:
        assert isinstance(table, Table)
        assert table.name == "users" or "user_id" in table.c, table.name


def test_core_inserts_store_utc_too(database: Database) -> None:
    # Core inserts (as a bulk importer would use) go through the same UTC handling.
    with database.engine.begin() as connection:
        connection.execute(insert(User).values(id=5, consent_at=T0.astimezone(CPH)))
    with database.session() as session:
        user = session.get(User, 5)
        assert user is not None
        assert user.consent_at == T0


def test_a_claim_never_takes_more_than_its_limit(database: Database) -> None:
    """Every batch holds at most `limit` rows, so several workers really share the work."""
    now = T0
    with database.session() as session:
        due = _reminders(session, 300, now)
        session.commit()
    seen: list[int] = []
    for n in range(13):
        with database.session() as session:
            rows = claim_due_reminders(session, now, f"w{n}", 25, timedelta(minutes=5))
            session.commit()
        assert len(rows) <= 25
        seen += [r.user_id for r in rows]
    assert len(seen) == len(set(seen)) == 300
    assert set(seen) == due


def test_a_postgres_connection_is_pinged_only_after_lying_idle(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at every checkout (a round-trip per transaction), but after PING_IDLE_SECONDS
    unused; a connection whose ping fails is replaced before anyone uses it."""
    if database.dialect != "postgresql":
        pytest.skip("the ping is PostgreSQL's")
    from bot import storage

    now = [1_000_000.0]
    monkeypatch.setattr(storage, "monotonic", lambda: now[0])
    pings: list[object] = []
    failing: list[bool] = []
    real = database.engine.dialect.do_ping

    def ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        if failing:
            failing.pop()
            raise OSError("the server went away")
        return real(dbapi_connection)

    monkeypatch.setattr(database.engine.dialect, "do_ping", ping)

    def use() -> Any:
        with database.engine.connect() as c:
            assert c.execute(text("SELECT 1")).scalar_one() == 1
            return c.connection.dbapi_connection

    first = use()  # (pinged or not: it was last used on the real clock)
    pings.clear()
    assert use() is first  # LIFO: the connection just used
    use()
    assert pings == []
    now[0] += storage.PING_IDLE_SECONDS + 1
    assert use() is first
    assert pings == [first]
    now[0] += storage.PING_IDLE_SECONDS + 1
    failing.append(True)
    replaced = use()
    assert pings[-1] is first and replaced is not first
    assert first.closed
