"""Delivery figures of the real bot process (issue 10), each beside PTB's own echo bot.

Everything is driven from outside, as Telegram would: `python -m bot run` as a
subprocess against the fake Bot API (tests/e2e/fake_telegram.py), configured only by
environment variables, and users' updates queued in the fake. So the script measures
whatever delivery the bot has unchanged.

1. Capacity: N consenting users × M questions queued at once (a fake that does not
   rate-limit); updates/s from the queueing to the last reply, and the bot process's
   CPU (user+sys from /proc/<pid>/stat) per update.
2. Reply latency during a reminder burst: R users with reminders due now are written to
   the database before the start; while the bot sends them (a fake limiting to 30
   sends/s, as Telegram does), a few users ask one question after another. Latency is
   from the update being queued in the fake to the reply's arrival there; p50/p99 over
   the questions asked while reminders were still going out.

The anchor, measured in the same run against the same fake: a minimal PTB Application
with one MessageHandler echoing text (no rate limiter), for capacity and CPU and for
latency (without a burst: it has no reminders). SQLite, then PostgreSQL when it is
available (TEST_POSTGRES_URL, from `eval "$(scripts/postgres)"`); no assertions.

Run: .venv/bin/python bench/delivery.py [--users 1000] [--questions 1] [--reminders 3000]
     [--chatters 4] [--backend all|sqlite|postgres]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.knowledge import load_knowledge  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage import Database, Reminder, User  # noqa: E402
from tests.e2e.botproc import MESSAGE_METHODS, BotProcess, bot_env  # noqa: E402
from tests.e2e.fake_telegram import Call, FakeTelegram  # noqa: E402

TARGET_P99_S = 2.0
TARGET_RATE = {"sqlite": 250.0, "postgresql": 200.0}
TARGET_CPU_MS = 4.0
TELEGRAM_LIMIT = 30  # sends per second, overall
USER_BASE = 8_000_000  # the capacity users; chatters and reminder users follow
REMINDER_BASE = 9_000_000
TICKS = os.sysconf("SC_CLK_TCK")

ECHO_BOT = """
import os
from telegram import Update
from telegram.ext import Application, MessageHandler, filters

async def echo(update, context):
    await update.effective_message.reply_text(update.effective_message.text)

app = (
    Application.builder()
    .token(os.environ["TELEGRAM_BOT_TOKEN"])
    .base_url(os.environ["TELEGRAM_BASE_URL"])
    .build()
)
app.add_handler(MessageHandler(filters.TEXT, echo))
app.run_polling(allowed_updates=Update.ALL_TYPES)
"""


class EchoProcess(BotProcess):
    """PTB's echo bot as a subprocess, driven like the real bot."""

    argv = (sys.executable, "-c", ECHO_BOT)


def cpu_seconds(pid: int) -> float:
    """user+sys CPU of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pid_of(proc: BotProcess) -> int:
    assert proc.proc is not None
    return proc.proc.pid


@contextmanager
def database(backend: str) -> Iterator[str]:
    """The URL of an empty, migrated database, thrown away afterwards."""
    if backend == "postgres":
        server = os.environ["TEST_POSTGRES_URL"]
        name = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            Database(url).upgrade()
            yield url
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        db = Database(url)
        db.upgrade()
        db.dispose()
        yield url


def seed(url: str, users: Sequence[int], reminder_users: Sequence[int]) -> None:
    """Consenting users on the proximal guide; `reminder_users` with a reminder due now."""
    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    rng = random.Random(7)
    db = Database(url)
    with db.session() as s:
        rows = [
            {"id": uid, "chat_id": uid, "consent": True, "consent_at": now, "guide": "proximal",
             "phase": 2}
            for uid in [*users, *reminder_users]
        ]  # fmt: skip
        if rows:
            s.execute(insert(User), rows)
        if reminder_users:
            s.execute(
                insert(Reminder),
                [
                    {
                        "user_id": uid,
                        "local_time": minute.time(),
                        "next_due_at": min(now, minute + timedelta(seconds=rng.uniform(0, 59))),
                    }
                    for uid in reminder_users
                ],
            )
        s.commit()
    db.dispose()


def questions(count: int) -> list[str]:
    """Questions as runners ask them: the first example of the proximal guide's entries."""
    settings = Settings(_env_file=None)
    kb = load_knowledge(settings.knowledge_dir, settings.intents_dir)
    found = [e.examples[0] for eid, e in kb.entries.items() if kb.entry_guide[eid] == "proximal"]
    return found[:count]


def replies_per_question(fake: FakeTelegram, user: int, texts: Sequence[str]) -> dict[str, int]:
    """How many messages the bot sends for each text (it is asked once; a second of quiet
    after the first reply ends the count). Also warms the process up."""
    counts: dict[str, int] = {}
    for question in texts:
        since = len(fake.sent)
        fake.send_text(user, question)
        fake.wait_for(lambda c: c.chat_id == user and c.method in MESSAGE_METHODS, 60, since=since)
        seen = -1
        while True:
            now = sum(
                1 for c in fake.sent[since:] if c.chat_id == user and c.method in MESSAGE_METHODS
            )
            if now == seen:
                break
            seen = now
            time.sleep(1.0)
        counts[question] = seen
    return counts


@dataclass
class Capacity:
    updates: int
    seconds: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.updates


def capacity(
    fake: FakeTelegram, proc: BotProcess, users: Sequence[int], texts: Sequence[str], rounds: int,
    per_question: dict[str, int],
) -> Capacity:  # fmt: skip
    """Queue len(users) × rounds questions at once; time until every reply arrived."""
    pid = pid_of(proc)
    expected = 0
    since = len(fake.sent)
    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    for r in range(rounds):
        for i, user in enumerate(users):
            question = texts[(i + r) % len(texts)]
            fake.send_text(user, question)
            expected += per_question[question]
    chats = set(users)
    calls = fake.wait_for_count(
        expected,
        lambda c: c.method in MESSAGE_METHODS and c.chat_id in chats,
        timeout=600,
        since=since,
    )
    elapsed = max(c.at for c in calls) - t0
    return Capacity(len(users) * rounds, elapsed, cpu_seconds(pid) - cpu0)


def chat_latencies(
    fake: FakeTelegram, chatters: Sequence[int], texts: Sequence[str], per_question: dict[str, int],
    until: threading.Event, deadline: float,
) -> list[tuple[float, float]]:  # fmt: skip
    """Each chatter asks, waits for the whole reply, pauses 0.2-1 s, asks again, until
    `until` is set; returns (queued at, latency to the first reply message) pairs."""
    samples: list[tuple[float, float]] = []
    lock = threading.Lock()

    def chatter(user: int, seed: int) -> None:
        rng = random.Random(seed)
        for n in itertools.count():
            if until.is_set() or time.monotonic() > deadline:
                return
            question = texts[(seed + n) % len(texts)]
            since = len(fake.sent)
            queued = time.monotonic()
            fake.send_text(user, question)
            try:
                got: list[Call] = fake.wait_for_count(
                    per_question[question],
                    lambda c, u=user: c.chat_id == u and c.method in MESSAGE_METHODS,
                    timeout=max(deadline - time.monotonic(), 1.0),
                    since=since,
                )
            except AssertionError:
                with lock:
                    samples.append((queued, float("inf")))
                return
            with lock:
                samples.append((queued, got[0].at - queued))
            time.sleep(rng.uniform(0.2, 1.0))

    threads = [
        threading.Thread(target=chatter, args=(user, i), daemon=True)
        for i, user in enumerate(chatters)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start(proc: BotProcess) -> BotProcess:
    return proc.start_and_wait(timeout=180.0)


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> None:
    cache = Settings(_env_file=None).cache_dir
    texts = questions(args.texts)
    users = [USER_BASE + i for i in range(args.users)]
    probe = USER_BASE + args.users
    chatters = [probe + 1 + i for i in range(args.chatters)]
    label = "PostgreSQL" if backend == "postgres" else "SQLite"
    target_rate = TARGET_RATE["postgresql" if backend == "postgres" else "sqlite"]
    # The production defaults (bot_env's are the tests' quick ones).
    env = {"LOG_LEVEL": "WARNING", "REMINDER_POLL_SECONDS": "20"}

    # 1. capacity, the bot: its own send pace raised to what paid broadcasts allow, so the
    # figure is what the bot can process, not Telegram's free ~30 messages/s.
    with database(backend) as url, FakeTelegram() as fake:
        seed(url, [*users, probe], [])
        pace = {**env, "MESSAGES_PER_SECOND": str(args.capacity_pace)}
        bot = BotProcess(fake, bot_env(fake, url, cache, pace), tmp / f"{backend}-cap.log")
        try:
            start(bot)
            per_q = replies_per_question(fake, probe, texts)
            cap = capacity(fake, bot, users, texts, args.questions, per_q)
        finally:
            bot.stop()
    # 1. capacity, the anchor
    with FakeTelegram() as fake:
        echo = EchoProcess(fake, bot_env(fake, "sqlite://", cache), tmp / f"{backend}-echo.log")
        try:
            start(echo)
            echo_q = replies_per_question(fake, probe, texts[:1])
            echo_per_q = dict.fromkeys(texts, echo_q[texts[0]])
            echo_cap = capacity(fake, echo, users, texts, args.questions, echo_per_q)
            until = threading.Event()
            timer = threading.Timer(args.echo_seconds, until.set)
            timer.start()
            echo_lat = chat_latencies(
                fake, chatters, texts, echo_per_q, until, time.monotonic() + 60
            )
        finally:
            echo.stop()

    # 2. latency during a reminder burst
    reminder_users = [REMINDER_BASE + i for i in range(args.reminders)]
    with (
        database(backend) as url,
        FakeTelegram(rate_limit_per_second=TELEGRAM_LIMIT) as fake,
    ):
        seed(url, [probe, *chatters], reminder_users)
        bot = BotProcess(fake, bot_env(fake, url, cache, env), tmp / f"{backend}-burst.log")
        reminder_chats = set(reminder_users)
        done = threading.Event()

        def watch() -> None:
            fake.wait_for_count(
                args.reminders,
                lambda c: c.method == "sendMessage" and c.chat_id in reminder_chats,
                timeout=args.reminders / 10 + 120,
            )
            done.set()

        try:
            start(bot)
            t0 = time.monotonic()
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            lat = chat_latencies(fake, chatters, texts, per_q, done, t0 + args.reminders / 10 + 120)
            watcher.join()
            reminders = [
                c for c in fake.sent if c.method == "sendMessage" and c.chat_id in reminder_chats
            ]
            burst_end = max(c.at for c in reminders) if reminders else t0
            burst_s = burst_end - t0
            limited = fake.rate_limited_count
        finally:
            bot.stop()
    during = [latency for queued, latency in lat if queued <= burst_end]

    def ms(values: Sequence[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.0f} ms"

    print(f"== {label}")
    print(
        f"capacity: {cap.updates} updates ({args.users} users × {args.questions} questions, "
        f"send pace {args.capacity_pace:.0f}/s) "
        f"in {cap.seconds:.1f} s = {cap.rate:.0f} updates/s (target ≥ {target_rate:.0f}); "
        f"anchor echo bot {echo_cap.rate:.0f} updates/s"
    )
    print(
        f"CPU per update: {cap.cpu_ms:.1f} ms (target ≤ {TARGET_CPU_MS:.0f} ms); "
        f"anchor echo bot {echo_cap.cpu_ms:.2f} ms"
    )
    print(
        f"reply latency during {len(reminders)} reminders ({burst_s:.0f} s, "
        f"{len(reminders) / max(burst_s, 1e-9):.1f} sends/s, {limited} × 429): "
        f"p50 {ms(during, 0.5)}, p99 {ms(during, 0.99)}, max {ms(during, 1.0)} over "
        f"{len(during)} questions of {len(chatters)} users (target p99 ≤ {TARGET_P99_S:.0f} s); "
        f"anchor echo bot without a burst p50 {ms([x for _, x in echo_lat], 0.5)}, "
        f"p99 {ms([x for _, x in echo_lat], 0.99)} over {len(echo_lat)}"
    )
    if during:
        print(f"  mean {statistics.mean(during) * 1000:.0f} ms; replies per question {per_q}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # One question each from many users: the sender keeps Telegram's per-chat limit (3
    # at once, then one a second), so 10 questions from each of 100 users take >= 7 s
    # whatever the processing, and the figure would be that limit (about 130/s).
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=1, help="questions per user")
    parser.add_argument("--texts", type=int, default=6, help="distinct questions")
    parser.add_argument("--reminders", type=int, default=3000)
    parser.add_argument(
        "--capacity-pace",
        type=float,
        default=1000.0,
        help="MESSAGES_PER_SECOND of the bot in the capacity run (Telegram's paid maximum)",
    )
    parser.add_argument("--chatters", type=int, default=4)
    parser.add_argument("--echo-seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=["all", "sqlite", "postgres"], default="all")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            if backend == "postgres" and not os.environ.get("TEST_POSTGRES_URL"):
                print('== PostgreSQL: skipped (no TEST_POSTGRES_URL; eval "$(scripts/postgres)")')
                continue
            run_backend(backend, args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
