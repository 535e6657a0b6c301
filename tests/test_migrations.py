"""Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL, and
`python -m bot db` drives them."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.storage import (
    MIGRATIONS_DIR,
    Base,
    Checkin,
    Database,
    Reminder,
    User,
    db_main,
    utcnow,
)


def _schema_differences(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    try:
        assert database.current_revision() is None
        assert _schema_differences(database) != []  # the comparison does see a missing schema

        database.upgrade()

        assert _schema_differences(database) == []
        assert database.current_revision() == database.head_revision() is not None
        tables = set(inspect(database.engine).get_table_names())
        assert tables == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    finally:
        database.dispose()


def test_partial_unique_indexes_exist_with_their_conditions(empty_database_url: str) -> None:
    # Alembic's comparison ignores index conditions, so check them directly.
    database = Database(empty_database_url)
    try:
        database.upgrade()
        indexes = {i["name"]: i for i in inspect(database.engine).get_indexes("checkins")}
        dialect = "postgresql" if database.dialect == "postgresql" else "sqlite"
        for name, status in [
            ("uq_checkins_one_open", "open"),
            ("uq_checkins_one_done_per_day", "done"),
        ]:
            index = indexes[name]
            assert index["unique"]
            assert f"'{status}'" in str(index["dialect_options"][f"{dialect}_where"])
    finally:
        database.dispose()


def test_upgrade_is_idempotent_and_downgrade_reverses_it(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        database.upgrade()
        with database.session() as session:
            session.add(User(id=1, dialog_data={"a": 1}))
            session.commit()
        database.upgrade()  # nothing to do: the data stays
        with database.session() as session:
            assert session.get(User, 1) is not None

        database.downgrade("base")
        assert database.current_revision() is None
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}

        database.upgrade()
        assert _schema_differences(database) == []
    finally:
        database.dispose()


def test_sqlite_foreign_keys_are_back_on_after_a_migration(tmp_path: Path) -> None:
    # Migrations switch SQLite's foreign keys off; pooled connections must not keep that.
    database = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    try:
        database.upgrade()
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with database.session() as session:
            session.add(User(id=1))
            session.add(Reminder(user_id=1, local_time=time(7), next_due_at=utcnow()))
            session.add(Checkin(user_id=1, local_date=date(2025, 1, 1)))
            session.commit()
        with database.engine.begin() as connection:
            connection.execute(text("DELETE FROM users WHERE id = 1"))
            assert connection.execute(text("SELECT count(*) FROM checkins")).scalar() == 0
            assert connection.execute(text("SELECT count(*) FROM reminders")).scalar() == 0
    finally:
        database.dispose()


def test_revisions_ship_inside_the_package() -> None:
    # The installed package must be able to migrate without the source tree.
    assert (MIGRATIONS_DIR / "alembic.ini").is_file()
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("*.py"))


def test_db_command_upgrades_a_fresh_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new" / "folder" / "bot.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")

    assert db_main(["current"]) == 1  # an empty database is behind head
    assert "none (empty database)" in capsys.readouterr().out

    assert db_main(["upgrade"]) == 0
    assert path.is_file()
    head = Database(f"sqlite:///{path}").head_revision()
    assert head is not None
    assert head in capsys.readouterr().out

    assert db_main(["current"]) == 0
    assert "up to date" in capsys.readouterr().out

    database = Database(f"sqlite:///{path}")
    try:
        assert database.current_revision() == head
        assert _schema_differences(database) == []
    finally:
        database.dispose()


def test_db_command_reports_an_unreachable_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 on 127.0.0.1 is not a PostgreSQL server: one line, no traceback.
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:hemmelig@127.0.0.1:9/bot")
    assert db_main(["current"]) == 1
    err = capsys.readouterr().err
    assert "OperationalError" in err
    assert "hemmelig" not in err
    assert "Traceback" not in err


def test_db_command_rejects_unknown_actions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        db_main(["sideways"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
