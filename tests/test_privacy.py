"""Nothing left behind (issue 8): private database files, /slet leaving no bytes on disk,
users who never consented forgotten, and no token in any log record."""

from __future__ import annotations

import logging
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.startup import REDACTED, Redact, configure_logging
from bot.storage import Checkin, Database, Question, User
from bot.userdata import delete_user_data, forget_guests
from tests.engine_helpers import Chat as EngineChat
from tests.engine_helpers import Clock, make_engine

NOTE = "QZXV-morgenstivhed-efter-intervaller"  # distinctive: found only if it survived
TOKEN = "123456:AAE-secret_token-Value"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _side_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def test_a_new_sqlite_database_is_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
        with db.session() as s:
            s.add(User(id=1))
            s.commit()
            # an open read keeps the WAL and the shared-memory file on disk
            s.execute(select(User)).all()
            files = _side_files(path)
            assert all(f.exists() for f in files)
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(path.parent) == 0o700
    finally:
        db.dispose()


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    old = Database(f"sqlite:///{path}")
    old.upgrade()
    old.dispose()
    path.chmod(0o644)
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
        assert _mode(path) == 0o600
        assert all(_mode(f) == 0o600 for f in _side_files(path) if f.exists())
    finally:
        db.dispose()


def test_erasure_leaves_no_byte_of_the_note_in_the_database_files(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = Database(f"sqlite:///{path}")
    try:
        db.upgrade()
        with db.session() as s:
            s.add(User(id=7, consent=True))
            s.flush()
            s.add(Checkin(user_id=7, local_date=date(2026, 6, 1), status="done", note=NOTE))
            s.commit()
        assert any(NOTE.encode() in f.read_bytes() for f in _side_files(path))
        with db.session() as s:
            delete_user_data(s, 7)
            s.commit()
        db.scrub()
        for f in _side_files(path):
            assert NOTE.encode() not in f.read_bytes(), f.name
    finally:
        db.dispose()


def test_guests_silent_longer_than_the_retention_are_forgotten(database: Database) -> None:
    clock = Clock()
    now, days = clock.now, timedelta(days=30)
    with database.session() as s:
        s.add_all(
            [
                User(id=1, updated_at=now - timedelta(days=31)),  # old guest: forgotten
                User(id=2, updated_at=now - timedelta(days=29)),  # recent guest: kept
                User(id=3, consent=True, consent_at=now - days * 2, updated_at=now - days * 2),
            ]
        )
        s.flush()
        s.add(Question(user_id=1, text="x", kind="answer", score=0.5))
        s.commit()
    with database.session() as s:
        assert forget_guests(s, now, days) == [1]
        s.commit()
    with database.session() as s:
        assert sorted(s.scalars(select(User.id))) == [2, 3]
        assert s.scalars(select(Question)).all() == []


def test_a_guest_with_check_ins_is_kept(database: Database) -> None:
    """Withdrawn consent is not erasure: rows with health data go only by /slet."""
    now = Clock().now
    with database.session() as s:
        s.add(User(id=4, updated_at=now - timedelta(days=90)))
        s.flush()
        s.add(Checkin(user_id=4, local_date=date(2026, 1, 1), status="done", pain=2))
        s.commit()
    with database.session() as s:
        assert forget_guests(s, now, timedelta(days=30)) == []


def test_the_engine_forgets_quiet_guests_and_slet_deletes_a_guest(
    tmp_path: Path, warm_cache: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    db.upgrade()
    clock = Clock()
    engine = make_engine(db, warm_cache, clock, guest_retention_days=30)
    old, recent, deleter = EngineChat(engine, 11), EngineChat(engine, 12), EngineChat(engine, 13)
    old.say("hej")
    clock.advance(days=20)
    recent.say("hej")
    deleter.say("hej")
    clock.advance(days=11)
    assert engine.forget_guests() == 1
    with db.session() as s:
        assert sorted(s.scalars(select(User.id))) == [12, 13]

    deleter.say("/slet")
    deleter.press("del:1")
    with db.session() as s:
        assert s.get(User, 13) is None
    db.dispose()


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.DEBUG, __file__, 1, msg, args, None)


def test_the_token_is_redacted_from_messages_args_and_tracebacks() -> None:
    redact = Redact([TOKEN])
    url = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
    record = _record('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
    assert redact.filter(record)
    assert TOKEN not in record.getMessage() and REDACTED in record.getMessage()
    try:
        raise ConnectionError(f"failed: {url}")
    except ConnectionError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    redact.filter(failed)
    assert failed.exc_text and TOKEN not in failed.exc_text and REDACTED in failed.exc_text


def test_configure_logging_redacts_at_debug_and_quiets_text_loggers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    names = ("telegram", "httpx", "httpcore", "apscheduler", "alembic")
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in names}
    configure_logging("DEBUG", secrets=[TOKEN])
    try:
        logging.getLogger("bot.test").debug("calling %s", f"/bot{TOKEN}/sendMessage")
        logging.getLogger("telegram.Bot").debug("parameters {'text': %r}", NOTE)
        err = capsys.readouterr().err
        assert "calling" in err and TOKEN not in err and NOTE not in err
        assert not logging.getLogger("telegram.ext.Application").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)


def test_data_folder_is_made_private_and_another_folder_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot import startup
    from bot.settings import Settings

    ours, theirs = tmp_path / "data", tmp_path / "shared"
    for folder in (ours, theirs):
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
    monkeypatch.setattr(startup, "DEFAULT_DATA_DIR", ours)
    for folder in (ours, theirs):
        settings = Settings(_env_file=None, database_url=f"sqlite:///{folder / 'bot.sqlite3'}")  # type: ignore[call-arg]
        startup.open_database(settings).dispose()
    assert _mode(ours) == 0o700 and _mode(theirs) == 0o755
    assert [r.getMessage() for r in caplog.records if "chmod 700" in r.getMessage()] == [
        f"the database folder {theirs} is open to other users (mode 755): chmod 700 it"
    ]


def test_an_unparseable_update_is_logged_without_its_content() -> None:
    """PTB logs an update it cannot parse at CRITICAL with the whole update."""
    from telegram import Update

    data = {"update_id": 1, "message": {"text": NOTE}}
    redact = Redact([])
    for args in [(data,), ([data],), (Update(1),)]:
        record = logging.LogRecord(
            "telegram.ext.Updater",
            logging.CRITICAL,
            __file__,
            1,
            "Received data was: %r",
            args,
            None,
        )
        redact.filter(record)
        assert NOTE not in record.getMessage() and "withheld" in record.getMessage()
    error = ValueError("bad gateway")
    record = logging.LogRecord(
        "telegram.ext.Application", logging.CRITICAL, __file__, 1, "aborted: %r", (error,), None
    )
    redact.filter(record)
    assert "bad gateway" in record.getMessage()
    own = logging.LogRecord("bot.engine", logging.INFO, __file__, 1, "%s", ([1, 2],), None)
    redact.filter(own)
    assert own.getMessage() == "[1, 2]"
