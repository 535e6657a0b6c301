"""Database: typed SQLAlchemy models, engine setup, Alembic upgrades and the few helpers
that carry real logic (claiming due reminders across processes; a user's export and
erasure are bot/userdata.py).

The dialogue engine uses `Database.session()` and the models directly; there is no
repository layer. Every datetime is timezone-aware UTC, on SQLite as on PostgreSQL.
Helpers flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from time import monotonic
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from bot.sqlite_files import (
    make_private_folder,
    sqlite_connect_listener,
    sqlite_file,
)

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_TIMEZONE = "Europe/Copenhagen"

# Stable constraint names on every backend, so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CHECKIN_STATUSES = ("open", "done", "cancelled", "expired", "replaced")
DELIVERY_KINDS = ("daily", "snooze")
DELIVERY_STATUSES = ("claimed", "sent", "failed")


def utcnow() -> datetime:
    """The current time, aware and in UTC (the only kind of datetime stored)."""
    return datetime.now(UTC)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; naive datetimes are refused on write.

    SQLite has no time zone type, so values are stored as naive UTC there and made
    aware again on read; PostgreSQL uses `timestamptz` and is normalised to UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: store aware UTC datetimes (use utcnow())")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        str: String(),
        int: Integer(),
    }


class User(Base):
    """A Telegram user; `id` is the Telegram user id."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("phase BETWEEN 1 AND 4", name="phase_range"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    consent_at: Mapped[datetime | None]
    guide: Mapped[str | None]  # proximal / distal / hip
    phase: Mapped[int | None]  # 1-4
    timezone: Mapped[str] = mapped_column(default=DEFAULT_TIMEZONE, server_default=DEFAULT_TIMEZONE)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())  # False after 403
    dialog_state: Mapped[str | None]
    # No longer written: the inbox (bot/inbox.py) is the idempotency key of an update.
    last_update_id: Mapped[int | None] = mapped_column(BigInteger)
    dialog_data: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(JSON().with_variant(JSONB(), "postgresql")),
        default=dict,
        server_default=sql_text("'{}'"),
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    # The rows below belong to the user: they go with it (the database's ON DELETE
    # CASCADE does the deleting), and the relationships order inserts in a flush.
    checkins: Mapped[list[Checkin]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    questions: Mapped[list[Question]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    reminder: Mapped[Reminder | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    deliveries: Mapped[list[ReminderDelivery]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


class Checkin(Base):
    """One traffic-light check-in; `local_date` is the user's own calendar day."""

    __tablename__ = "checkins"
    __table_args__ = (
        CheckConstraint("pain BETWEEN 0 AND 10", name="pain_range"),
        CheckConstraint(_in_list("status", CHECKIN_STATUSES), name="status_known"),
        # At most one open check-in per user, and one completed check-in per user per day.
        Index(
            "uq_checkins_one_open",
            "user_id",
            unique=True,
            sqlite_where=sql_text("status = 'open'"),
            postgresql_where=sql_text("status = 'open'"),
        ),
        Index(
            "uq_checkins_one_done_per_day",
            "user_id",
            "local_date",
            unique=True,
            sqlite_where=sql_text("status = 'done'"),
            postgresql_where=sql_text("status = 'done'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    local_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(default="open", server_default="open")
    step: Mapped[str | None]
    pain: Mapped[int | None]
    morning: Mapped[str | None]  # better / same / worse
    activity: Mapped[str | None]
    note: Mapped[str | None] = mapped_column(Text)
    # The note held a red flag (the user was told to see a doctor): shown in /historik
    # and exported with the row.
    note_red_flag: Mapped[bool] = mapped_column(default=False, server_default=false())
    zone: Mapped[str | None]  # green / yellow / red
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Set by the engine with its own clock at every answer: it decides when an open
    # check-in expires, so it must not be bumped behind the engine's back.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    completed_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="checkins")


class Question(Base):
    """A question the bot answered or could not answer, for the maintainers' gap report.

    `user_id` is NULL when the user has not consented: the question is kept anonymously.
    """

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str]  # answer / clarify / fallback / red_flag / intent
    guide: Mapped[str | None]
    entry_id: Mapped[str | None]
    score: Mapped[float] = mapped_column(Float, default=0.0, server_default=sql_text("0"))
    helpful: Mapped[bool | None]
    feedback_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    user: Mapped[User | None] = relationship(back_populates="questions")


class Reminder(Base):
    """A user's daily reminder: a row, not an in-process timer, so it survives restarts.

    `claimed_by`/`claimed_until` are a lease: a worker owns the reminder until then.
    """

    __tablename__ = "reminders"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    local_time: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(default=DEFAULT_TIMEZONE, server_default=DEFAULT_TIMEZONE)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    paused_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    last_sent_on: Mapped[date | None] = mapped_column(Date)
    snoozed: Mapped[bool] = mapped_column(default=False, server_default=false())

    user: Mapped[User] = relationship(back_populates="reminder")


class ReminderDelivery(Base):
    """One reminder message; the unique key lets a reminder go out at most once a day per kind."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (
        UniqueConstraint("user_id", "local_date", "kind"),
        CheckConstraint(_in_list("kind", DELIVERY_KINDS), name="kind_known"),
        CheckConstraint(_in_list("status", DELIVERY_STATUSES), name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    local_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(default="daily", server_default="daily")
    status: Mapped[str] = mapped_column(default="claimed", server_default="claimed")
    claimed_by: Mapped[str]
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)

    user: Mapped[User] = relationship(back_populates="deliveries")


class InboxUpdate(Base):
    """One update from Telegram, stored before Telegram is told it arrived (bot/inbox.py).

    `payload` is the update's raw JSON (it may hold health data): cleared in the
    transaction that processes it. The row itself stays a while as the idempotency key.
    `user_id` is no foreign key: the update is stored before its user may exist.
    """

    __tablename__ = "inbox_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    payload: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(index=True)


class OutboxMessage(Base):
    """One message to send, written in the transaction of the turn that said it (bot/outbox.py).

    `kind` is text, photo or document; `buttons` the inline keyboard as [[label, data]];
    `content` the image or file bytes. `claimed_by`/`claimed_until` are the sending
    worker's lease; the row is deleted once Telegram accepted the message.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(default="text", server_default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[list[Any] | None] = mapped_column(JSON)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    filename: Mapped[str | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


def normalize_url(url: str | URL) -> URL:
    """Accept `postgres://` and `postgresql://` as psycopg 3 (psycopg2 is not installed)."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# Connections kept open: the turn threads, the threads of asyncio.to_thread (the
# sender's bookkeeping, polling's inbox, reminders) and the reminder loop use the
# database at once. With SQLAlchemy's default of 5 the others were opened and closed
# again for every transaction (a new SQLite connection runs the pragmas, a PostgreSQL
# one a TCP connect and login).
_POOL: dict[str, Any] = {"pool_size": 16, "max_overflow": 16}
# A PostgreSQL connection is pinged at checkout only when it lay unused this long
# (SQLAlchemy's pool_pre_ping pings at every checkout: a round-trip per transaction,
# about 0.05 ms of CPU). A connection in steady use is not pinged; one that broke within
# this time fails its statement instead, and that is retried (a turn by
# Engine.handle_update, a batch of sent rows by outbox.done_many, a polled batch by
# polling). The pool is LIFO, so the connections in use stay the recently used ones.
PING_IDLE_SECONDS = 2.0
_LAST_USED = "runner_bot_last_used"


def _ping_when_idle(engine: Engine, idle: float = PING_IDLE_SECONDS) -> None:
    """Listeners on `engine`'s pool: a checkout pings a connection unused for `idle` s."""
    dialect = engine.dialect

    def used(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info[_LAST_USED] = monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is not None and monotonic() - last < idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"ping failed: {exc!r}") from exc

    event.listen(engine, "connect", used)  # a new connection needs no ping
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", used)


class Database:
    """One engine and session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        if self.url.get_backend_name() == "sqlite":
            path = sqlite_file(self.url)
            if path is not None:
                make_private_folder(path)
            # hide_parameters: an error's message must not carry a note's text to the log
            pool = _POOL if path is not None else {}  # in memory: one connection per thread
            self.engine: Engine = create_engine(self.url, hide_parameters=True, **pool)
            event.listen(self.engine, "connect", sqlite_connect_listener(path))
            self._write_lock: threading.RLock | None = threading.RLock()
        else:
            self.engine = create_engine(
                self.url, hide_parameters=True, pool_use_lifo=True, **_POOL
            )
            _ping_when_idle(self.engine)
            self._write_lock = None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file (None for PostgreSQL or an in-memory database)."""
        return sqlite_file(self.url) if self.dialect == "sqlite" else None

    def session(self) -> Session:
        return self._sessions()

    def write_lock(self) -> AbstractContextManager[object]:
        """Held around this process's busy write transactions (a turn, storing updates,
        recording sent messages).

        SQLite has one writer at a time, and a connection waiting for the write lock
        (busy_timeout) polls with sleeps of up to 100 ms, so threads of one process that
        write side by side stall each other far longer than their transactions last. On
        SQLite they queue on this lock instead, and a released lock wakes the next at
        once; another process still meets busy_timeout. PostgreSQL locks rows: no-op.
        """
        return self._write_lock if self._write_lock is not None else nullcontext()

    def alembic_config(self) -> Any:
        """Alembic config for the packaged migrations; env.py takes our connection from it."""
        from alembic.config import Config

        config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to `revision` on this database."""
        from alembic import command

        self._migrate(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Undo migrations down to `revision` ("base" empties the database)."""
        from alembic import command

        self._migrate(command.downgrade, revision)

    def _migrate(self, step: Callable[[Any, str], None], revision: str) -> None:
        config = self.alembic_config()
        sqlite = self.dialect == "sqlite"
        with self.engine.connect() as connection:
            if sqlite:
                # Batch migrations copy and drop tables; with foreign keys on, dropping
                # the old table would cascade-delete the children's rows.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            try:
                with connection.begin():
                    config.attributes["connection"] = connection
                    step(config, revision)
            finally:
                if sqlite:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    connection.commit()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def scrub(self) -> None:
        """After an erasure: copy the WAL into the database and truncate it to 0 bytes.

        With secure_delete the erased rows are zeroed in the database file, but their old
        pages stay in bot.sqlite3-wal until a checkpoint; TRUNCATE empties the file now.
        Nothing to do on PostgreSQL (its files are the server operator's).
        """
        if self.dialect != "sqlite":
            return
        with self.engine.connect() as connection:
            busy, _frames, _copied = connection.exec_driver_sql(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).one()
            connection.commit()
        if busy:  # a reader held the WAL past busy_timeout: the next scrub or start does it
            log.warning("the WAL checkpoint after an erasure was blocked by a reader")

    def dispose(self) -> None:
        self.engine.dispose()


def claim_due_reminders(
    session: Session, now: datetime, worker_id: str, limit: int, lease: timedelta
) -> list[Reminder]:
    """Claim up to `limit` due reminders for `worker_id` until `now + lease`.

    On PostgreSQL a SELECT of the due ids FOR UPDATE SKIP LOCKED (concurrent workers get
    disjoint rows without waiting), then a guarded UPDATE ... RETURNING; on SQLite one
    UPDATE ... RETURNING, which holds the database's write lock. The lease
    keeps a reminder claimed after commit, so another worker takes it only once the
    lease has run out (e.g. its worker died).
    The caller commits (promptly, to publish the lease).
    """
    if limit <= 0:
        return []
    free = (
        Reminder.enabled,
        Reminder.next_due_at <= now,
        (Reminder.paused_until.is_(None)) | (Reminder.paused_until <= now),
        (Reminder.claimed_until.is_(None)) | (Reminder.claimed_until <= now),
    )
    due = (
        select(Reminder.user_id)
        .where(*free)
        .order_by(Reminder.next_due_at, Reminder.user_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two statements, not UPDATE ... WHERE IN (subquery): PostgreSQL may re-run a
        # LIMITed subquery per row and claim far more than `limit`.
        ids = list(session.scalars(due.with_for_update(skip_locked=True)))
        if not ids:
            return []
        chosen: Any = ids
    else:
        # SQLite: one statement, so taking the write lock and choosing rows are atomic.
        chosen = due.scalar_subquery()
    statement = (
        update(Reminder)
        .where(Reminder.user_id.in_(chosen), *free)
        .values(claimed_by=worker_id, claimed_until=now + lease)
        .returning(Reminder)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    claimed = list(session.scalars(statement))
    claimed.sort(key=lambda r: (r.next_due_at, r.user_id))
    return claimed


def db_main(argv: list[str]) -> int:
    """`python -m bot db upgrade|current` on the configured DATABASE_URL."""
    from bot.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="python -m bot db", description=db_main.__doc__)
    parser.add_argument("action", choices=["upgrade", "current"])
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    database = Database(settings.database_url)
    shown = database.url.render_as_string(hide_password=True)
    try:
        if args.action == "upgrade":
            database.upgrade()
            print(f"{shown}: upgraded to {database.current_revision()}")
            return 0
        current, head = database.current_revision(), database.head_revision()
        state = "up to date" if current == head else f"behind head {head}: run `db upgrade`"
        print(f"{shown}: revision {current or 'none (empty database)'} ({state})")
        return 0 if current == head else 1
    except Exception as exc:  # an unreachable or broken database: one clear line
        print(f"{shown}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
