"""The console adapter: the same dialogue in a terminal, numbers press buttons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from bot.console import ConsoleChat
from bot.settings import PROJECT_ROOT
from bot.storage import Checkin, Database, User
from tests.engine_helpers import Clock, make_engine


def test_numbers_press_the_shown_buttons(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    db.upgrade()
    engine = make_engine(db, tmp_path / "cache", Clock())
    out: list[str] = []
    chat = ConsoleChat(engine, 5, tmp_path / "out", out.append)
    chat.send("/start")
    assert any(line.strip().startswith("[1]") for line in out)
    chat.send("1")  # consent: yes
    chat.send("2")  # second guide button: distal
    chat.send("1")  # phase 1
    with db.session() as s:
        user = s.get(User, 5)
    assert user is not None and (user.consent, user.guide, user.phase) == (True, "distal", 1)
    chat.send("/historik")
    png = tmp_path / "out" / "historik.png"
    assert png.read_bytes().startswith(b"\x89PNG")
    assert any(str(png) in line for line in out)


def test_number_buttons_are_shown_as_the_number_you_type(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    db.upgrade()
    engine = make_engine(db, tmp_path / "cache", Clock())
    out: list[str] = []
    chat = ConsoleChat(engine, 5, tmp_path / "out", out.append)
    for line in ("/start", "1", "1", "1"):
        chat.send(line)
    out.clear()
    chat.send("/checkin")
    shown = " ".join(out)
    assert "[4]" in shown and "[0]" in shown and "[10]" in shown
    assert "[5] 4" not in shown
    chat.send("4")
    with db.session() as s:
        assert [r.pain for r in s.scalars(select(Checkin))] == [4]


def _console(
    command: str, script: str, db_file: Path, cache: Path
) -> subprocess.CompletedProcess[str]:
    """`python -m bot <command>` with no token, fed `script` on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(DATABASE_URL=f"sqlite:///{db_file}", CACHE_DIR=str(cache))
    result = subprocess.run(
        [sys.executable, "-m", "bot", command],
        input=script,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_run_without_token_opens_the_console_on_sqlite(tmp_path: Path, warm_cache: Path) -> None:
    db_file = tmp_path / "console.sqlite3"
    result = _console("run", "1\n1\n1\n/checkin\n3\n/quit\n", db_file, warm_cache)
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr
    assert "[1]" in result.stdout
    db = Database(f"sqlite:///{db_file}")
    with db.session() as s:
        user = s.get(User, 1)
        rows = list(s.scalars(select(Checkin)))
    assert user is not None and user.consent and user.guide == "proximal"
    # "3" pressed the button labelled 3 (a typed label wins over the button's number).
    assert [(r.status, r.pain) for r in rows] == [("open", 3)]


def test_a_returning_console_user_is_not_onboarded_again(tmp_path: Path, warm_cache: Path) -> None:
    db_file, cache = tmp_path / "c.sqlite3", warm_cache
    assert "[1]" in _console("chat", "1\n1\n1\n/quit\n", db_file, cache).stdout
    assert "[1]" not in _console("chat", "/quit\n", db_file, cache).stdout  # no consent again
