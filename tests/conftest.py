"""Shared pytest fixtures.

Database fixtures: `database` (a migrated, empty database) and `empty_database_url`
(nothing in it, for migration tests) run each test on SQLite and on PostgreSQL. The
PostgreSQL server comes from TEST_POSTGRES_URL (start one with `eval "$(scripts/postgres)"`);
without it those tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.engine import Engine
from bot.storage import Base, Database
from tests.engine_helpers import Chat, Clock, make_engine

# ---------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of the test PostgreSQL server; a missing server is a failure in CI."""
    url = os.environ.get("TEST_POSTGRES_URL", "").strip()
    if not url:
        message = "PostgreSQL not available: run scripts/postgres"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (TEST_POSTGRES_URL must be set in CI)")
        pytest.skip(message)
    return url


def _create_pg_database(server_url: str) -> str:
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_database_url(postgres_server_url: str) -> Iterator[str]:
    """A freshly created, empty PostgreSQL database, dropped after the test."""
    url = _create_pg_database(postgres_server_url)
    yield url
    _drop_pg_database(postgres_server_url, url)


@pytest.fixture
def pg_database(pg_database_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database of its own, for tests of PostgreSQL-only behaviour."""
    database = Database(pg_database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database (no tables at all) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, migrated once and copied for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


@pytest.fixture(scope="module")
def _postgres_module_database(postgres_server_url: str) -> Iterator[Database]:
    """One migrated PostgreSQL database per test module; `database` empties it per test."""
    url = _create_pg_database(postgres_server_url)
    database = Database(url)
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        _drop_pg_database(postgres_server_url, url)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database with no rows, on SQLite (a temp file) and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "bot.sqlite3"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
        return
    database = request.getfixturevalue("_postgres_module_database")
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with database.engine.begin() as connection:
        # A previous test's leaked transaction would block TRUNCATE: end it, and fail
        # rather than hang if that misses. Idle connections hold no locks: they stay (the
        # pool pings a connection only after a while unused, bot/storage.py, so a killed
        # one just used would fail the next test's first statement).
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state <> 'idle'"
            )
        ).scalar_one()
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    if ended:
        database.engine.dispose()  # no connection of the pool may be a killed one
    yield database


# ---------------------------------------------------------------------------
# Matching caches
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's matching caches, built once per session: a bot process given
    it starts warm (a cold start trains the matcher, which tests of other things should not
    wait for; bench/coldstart.py measures that)."""
    from bot.ask import shared
    from bot.fork import wait_for_background
    from bot.settings import load_settings

    shared()
    wait_for_background()  # a cold start writes the cache in a forked child
    target = tmp_path_factory.mktemp("warm-cache")
    shutil.copytree(load_settings().cache_dir, target, dirs_exist_ok=True)
    return target


# The engine with the real knowledge on `database`, a controllable clock, and one user
# talking to it: what the engine and dialogue tests share (a module overrides what it needs).
@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(database: Database, tmp_path: Path, clock: Clock) -> Engine:
    return make_engine(database, tmp_path / "cache", clock)


@pytest.fixture
def chat(engine: Engine) -> Chat:
    return Chat(engine)
