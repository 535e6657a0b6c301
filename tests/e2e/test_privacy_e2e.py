"""Nothing left behind, through the real bot process at LOG_LEVEL=DEBUG (issue 8).

One session: the cleanup at start forgets a guest silent for 31 days (and keeps one of 29),
a consenting user checks in with a note and deletes everything, a guest asks a question
and deletes their row. The database folder and files are private while
the bot runs, the note is in none of the database files after /slet, and the whole
DEBUG log holds neither the token nor any text a user typed or the bot sent.
"""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.dialogs.onboarding import done_text
from bot.knowledge import Knowledge
from bot.storage import Checkin, Database, User, utcnow

from .botproc import Chat, contains, has_button, sqlite_url, wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.e2e

ALICE = 6001  # consents, checks in with a note, deletes everything
GUEST = 6002  # never consents, asks a question, deletes their row
OLD_GUEST, RECENT_GUEST = 6003, 6004  # wrote 31 and 29 days ago, never consented
NOTE = "QZXV stiv efter intervaller paa bakken"  # distinctive: found only if it survived
QUESTION = "hvor lang tid tager det"
GUEST_QUESTION = "kan jeg løbe med ondt under ballen"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_no_bytes_after_slet_and_a_debug_log_without_secrets(
    fake_telegram: FakeTelegram, bot_process: BotFactory, tmp_path: Path, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    path = tmp_path / "data" / "bot.sqlite3"  # the bot creates the folder
    url = sqlite_url(path)
    # A guest silent for longer than GUEST_RETENTION_DAYS (default 30) and a recent one.
    db = Database(url)  # creates the folder as the bot would
    db.upgrade()
    with db.session() as s:
        s.add(User(id=OLD_GUEST, updated_at=utcnow() - timedelta(days=31)))
        s.add(User(id=RECENT_GUEST, updated_at=utcnow() - timedelta(days=29)))
        s.commit()
    bot = bot_process({"DATABASE_URL": url, "LOG_LEVEL": "DEBUG"}).start_and_wait(timeout=120.0)

    def user_ids() -> set[int]:
        with db.session() as s:
            return set(s.scalars(select(User.id)))

    wait_until(lambda: OLD_GUEST not in user_ids())  # the cleanup job runs at start
    assert RECENT_GUEST in user_ids()
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert _mode(path.parent) == 0o700
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}

    alice, guest = Chat(fake, ALICE, first_name="Alice"), Chat(fake, GUEST, first_name="Gæst")
    alice.onboard(done_text(kb, "proximal"))
    alice.say(QUESTION, contains("Kilde"))
    pain_q = alice.command("checkin", has_button("ci:p:3"))
    morning_q = alice.press(pain_q, "ci:p:3", has_button("ci:m:same"))
    activity_q = alice.press(morning_q, "ci:m:same", has_button("ci:a:run"))
    alice.press(activity_q, "ci:a:run", has_button("ci:n:skip"))
    zone = kb.traffic_light.zone("yellow")
    summary = kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=3)
    alice.say(NOTE, contains(summary))
    with db.session() as s:
        assert [c.note for c in s.scalars(select(Checkin))] == [NOTE]

    confirm = alice.command("slet", has_button("del:1"))
    alice.press(confirm, "del:1", contains(kb.text("table_checkins")))
    for f in files:
        assert NOTE.encode() not in f.read_bytes(), f.name

    guest.say(GUEST_QUESTION, contains("Kilde"))
    with db.session() as s:
        guest_row = s.get(User, GUEST)
        assert guest_row is not None and not guest_row.consent
    confirm = guest.command("slet", has_button("del:1"))
    guest.press(confirm, "del:1", contains(kb.text("table_users")))
    with db.session() as s:
        assert s.get(User, GUEST) is None and s.get(User, ALICE) is None
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    db.dispose()

    bot.stop()
    log = bot.log()
    assert " DEBUG " in log  # the level really was DEBUG
    assert fake.token not in log
    assert fake.token.split(":", 1)[1] not in log
    sent = {c.text for c in fake.sent if c.text and len(c.text) > 12}
    for text in [NOTE, QUESTION, GUEST_QUESTION, *sent]:
        assert text not in log, text
