"""Reminder dispatch throughput against the fake Telegram server's 30 messages/s limit.

N consenting users whose reminders all fell due in the same minute; the real
runtime from `build_runtime` (its one sender, HTTP client and bot) and the production
dispatcher `dispatch.dispatch_due` send them to the fake Bot API server, which answers
429 (retry_after 1 s) beyond 30 sendMessage calls in any second. Prints the time,
the rate as a share of 30/s, the 429s, the longest event-loop stall, and lost and
duplicated reminders (the fake's recorded sendMessage calls per chat vs the
database's delivery rows).

SQLite in a temp dir, or PostgreSQL (a throwaway database) when TEST_POSTGRES_URL is set.
Run: .venv/bin/python bench/reminder_dispatch.py [--users 3000] [--backend auto|sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot import dispatch  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.matching import Matcher  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage import Database, Reminder, ReminderDelivery, User  # noqa: E402
from bot.telegram_app import build_runtime, make_bot  # noqa: E402
from tests.e2e.fake_telegram import FakeTelegram  # noqa: E402

LIMIT = 30  # Telegram's overall messages per second
CHAT_OFFSET = 7_000_000


@contextmanager
def database(backend: str) -> Iterator[Database]:
    """A migrated, empty database that is thrown away afterwards."""
    server = os.environ.get("TEST_POSTGRES_URL", "").strip()
    if backend == "postgres" or (backend == "auto" and server):
        if not server:
            raise SystemExit("--backend postgres needs TEST_POSTGRES_URL (scripts/postgres)")
        name = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        db = Database(url)
        try:
            db.upgrade()
            yield db
        finally:
            db.dispose()
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        try:
            db.upgrade()
            yield db
        finally:
            db.dispose()


def seed(db: Database, users: int, now: datetime) -> None:
    """`users` consenting users, each with a 07:30 reminder due within the last minute."""
    rng = random.Random(7)
    minute = now.replace(second=0, microsecond=0)
    with db.session() as s:
        s.execute(
            insert(User),
            [
                {"id": uid, "chat_id": CHAT_OFFSET + uid, "consent": True, "consent_at": now}
                for uid in range(1, users + 1)
            ],
        )
        s.execute(
            insert(Reminder),
            [
                {
                    "user_id": uid,
                    "local_time": minute.time(),
                    "next_due_at": min(now, minute + timedelta(seconds=rng.uniform(0, 59))),
                }
                for uid in range(1, users + 1)
            ],
        )
        s.commit()


async def loop_stalls(stop: asyncio.Event, worst: list[float]) -> None:
    """How late a 10 ms timer fires: blocking work on the event loop shows up here."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], loop.time() - start - 0.01)


def due_count(db: Database, now: datetime) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).where(Reminder.next_due_at <= now)) or 0


async def run(args: argparse.Namespace, fake: FakeTelegram, db: Database, tmp: Path) -> int:
    start_wall = datetime.now(UTC)
    seed(db, args.users, start_wall)
    settings = Settings(
        telegram_bot_token=fake.token,
        telegram_base_url=fake.base_url,
        database_url=db.url.render_as_string(hide_password=False),
        cache_dir=tmp / "cache",
    )
    kb = load_knowledge(settings.knowledge_dir, settings.intents_dir)
    engine = Engine(settings, db, kb=kb, matcher=Matcher.build(kb, settings.cache_dir))
    bot = make_bot(settings)
    await bot.initialize()
    runtime = build_runtime(engine, bot, worker_id="bench")
    sender = asyncio.create_task(runtime.sender.run())
    stop, worst = asyncio.Event(), [0.0]
    ticker = asyncio.create_task(loop_stalls(stop, worst))
    started = time.perf_counter()
    runs = 0
    try:
        # What the reminder loop does every REMINDER_POLL_SECONDS, until nothing is due.
        while runs < args.max_runs:
            runs += 1
            await dispatch.dispatch_due(
                db, kb, runtime.send_reminder, datetime.now(UTC), runtime.worker_id
            )
            if due_count(db, datetime.now(UTC)) == 0:
                break
            await asyncio.sleep(settings.reminder_poll_seconds)
    finally:
        elapsed = time.perf_counter() - started
        stop.set()
        await ticker
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await bot.shutdown()

    per_chat = Counter(
        c.chat_id for c in fake.sent if c.method == "sendMessage" and isinstance(c.chat_id, int)
    )
    with db.session() as s:
        sent_rows = Counter(
            uid
            for (uid,) in s.execute(
                select(ReminderDelivery.user_id).where(ReminderDelivery.status == "sent")
            )
        )
    expected = {CHAT_OFFSET + uid for uid in range(1, args.users + 1)}
    lost = len(expected - set(per_chat))
    duplicated = sum(n - 1 for n in per_chat.values() if n > 1)
    stray = len(set(per_chat) - expected)
    db_mismatch = sum(1 for uid in range(1, args.users + 1) if sent_rows[uid] != 1)
    delivered = sum(per_chat.values())
    rate = delivered / elapsed
    print(f"backend {db.dialect}, users {args.users}, dispatcher runs {runs}")
    print(f"total time {elapsed:.1f} s for {delivered} messages")
    ideal = args.users / LIMIT
    print(f"rate {rate:.1f} msg/s = {rate / LIMIT:.0%} of {LIMIT}/s (ideal time {ideal:.0f} s)")
    print(f"429 answers from the fake: {fake.rate_limited_count}")
    print(f"longest event-loop stall: {worst[0] * 1000:.0f} ms")
    print(f"lost {lost}, duplicated {duplicated}, to unknown chats {stray}")
    print(f"users whose 'sent' delivery rows != 1: {db_mismatch}")
    return 0 if lost == duplicated == stray == db_mismatch == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--backend", choices=["auto", "sqlite", "postgres"], default="auto")
    parser.add_argument("--max-runs", type=int, default=20, help="dispatcher runs at most")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("bot").setLevel(logging.WARNING)
    with (
        FakeTelegram(rate_limit_per_second=LIMIT) as fake,
        database(args.backend) as db,
        tempfile.TemporaryDirectory() as tmp,
    ):
        return asyncio.run(run(args, fake, db, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
