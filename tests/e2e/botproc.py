"""Run the real bot (`python -m bot run`) as a subprocess against a FakeTelegram.

End-to-end tests drive the bot exactly as production does: its own process, its own
event loop, real HTTP to the fake on 127.0.0.1 and a real SQLite file. The process's
stderr (the log) goes to a file so a failing test can show it and a test can check
what was logged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from .fake_telegram import Call, FakeTelegram

REPO_ROOT = Path(__file__).resolve().parents[2]
# Settings the developer's shell or .env could set; the bot must see only ours.
_SCRUBBED = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BASE_URL",
    "TELEGRAM_BASE_FILE_URL",
    "DATABASE_URL",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_LISTEN",
    "WEBHOOK_PORT",
    "WEBHOOK_MAX_BODY",
    "ADMIN_IDS",
    "TIMEZONE",
    "KNOWLEDGE_DIR",
    "INTENTS_DIR",
    "CHECKIN_TIMEOUT_MINUTES",
)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (for the bot's webhook server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def bot_env(
    fake: FakeTelegram,
    database_url: str,
    cache_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for one bot process talking to `fake`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_BASE_URL": fake.base_url,
            "DATABASE_URL": database_url,
            "CACHE_DIR": str(cache_dir),
            "REMINDER_POLL_SECONDS": "0.3",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


class BotProcess:
    """One `python -m bot run` subprocess; its stderr is appended to `log_path`.

    `start()` may be called again after `kill()`/`stop()`: the same log file keeps
    growing, so the whole history of restarts stays readable.
    """

    # What runs; a subclass runs another program the same way (bench/delivery.py's echo bot).
    argv: tuple[str, ...] = (sys.executable, "-m", "bot", "run")

    def __init__(self, fake: FakeTelegram, env: Mapping[str, str], log_path: Path) -> None:
        self.fake = fake
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Self:
        if self.running:
            raise RuntimeError("the bot process is already running")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        return self

    def start_and_wait(self, ready_method: str = "deleteWebhook", timeout: float = 20.0) -> Self:
        """Start and block until the bot made `ready_method` (its last start-up call).

        In polling mode PTB calls deleteWebhook right before its first getUpdates, in
        webhook mode setWebhook once its server listens. Counting only calls made after
        this start keeps a killed predecessor's calls from looking like readiness.
        """
        since = len(self.fake.sent)
        self.start()
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the bot did not call {ready_method} in time:\n{self.log()}")
            try:
                self.fake.wait_for(
                    lambda c: c.method == ready_method, timeout=min(0.5, remaining), since=since
                )
                return self
            except AssertionError:
                continue

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Fail with the log when the process has exited on its own."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"the bot process exited with code {self.proc.returncode}:\n{self.log()}"
            )

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush or acknowledge anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (PTB shuts down cleanly), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll `predicate()` until it is truthy; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(interval)


# --- driving a conversation ---------------------------------------------------------

MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
Expect = Callable[[Call], bool]


def has_button(data: str) -> Expect:
    """A message offering the inline button with this callback data (or `data:<key>`,
    as buttons bound to an object carry its key: "ci:p:4" matches "ci:p:4:17.5f3a")."""
    return lambda c: button_data(c, data) is not None


def button_data(call: Call, data: str) -> str | None:
    """The callback data of the message's one button named by `data` (see has_button)."""
    if data in call.button_data:
        return data
    keyed = [d for d in call.button_data if d.startswith(data + ":")]
    return keyed[0] if len(keyed) == 1 else None


def contains(text: str) -> Expect:
    """A message whose text (or caption) contains `text`."""
    return lambda c: text in c.text


class Chat:
    """One user (in a private chat, or in a group when `chat_id` differs) talking to the bot.

    Every action waits for the reply it expects, so the next action never races the
    bot: updates are handled one at a time, in order.
    """

    def __init__(
        self,
        fake: FakeTelegram,
        user_id: int,
        chat_id: int | None = None,
        first_name: str = "Test",
        timeout: float = 15.0,
    ) -> None:
        self.fake = fake
        self.user_id = user_id
        self.chat_id = user_id if chat_id is None else chat_id
        self.first_name = first_name
        self.timeout = timeout

    def mark(self) -> int:
        """The index of the next call the bot makes (for `since=`)."""
        return len(self.fake.sent)

    def messages(self, since: int = 0) -> list[Call]:
        """Messages the bot sent to this chat from index `since` of fake.sent."""
        return [
            c
            for c in self.fake.sent[since:]
            if c.chat_id == self.chat_id and c.method in MESSAGE_METHODS
        ]

    def wait(self, expect: Expect, since: int) -> Call:
        return self.fake.wait_for(
            lambda c: c.chat_id == self.chat_id and c.method in MESSAGE_METHODS and expect(c),
            timeout=self.timeout,
            since=since,
        )

    def wait_count(self, n: int, expect: Expect, since: int) -> list[Call]:
        return self.fake.wait_for_count(
            n,
            lambda c: c.chat_id == self.chat_id and c.method in MESSAGE_METHODS and expect(c),
            timeout=self.timeout,
            since=since,
        )

    def say(self, text: str, expect: Expect) -> Call:
        since = self.mark()
        self.fake.send_text(self.user_id, text, self._group_id(), self.first_name)
        return self.wait(expect, since)

    def command(self, command: str, expect: Expect, args: str = "") -> Call:
        since = self.mark()
        self.fake.send_command(self.user_id, command, args, self._group_id(), self.first_name)
        return self.wait(expect, since)

    def press(self, message: Call, data: str, expect: Expect) -> Call:
        since = self.mark()
        data = button_data(message, data) or data
        self.fake.press_button(self.user_id, message, data, self.first_name)
        return self.wait(expect, since)

    def _group_id(self) -> int | None:
        return None if self.chat_id == self.user_id else self.chat_id

    def onboard(self, done_text: str, guide: str = "proximal", phase: int = 2) -> None:
        """/start, consent, guide and phase by pressing the bot's buttons, until `done_text`."""
        consent = self.command("start", has_button("ob:c:1"))
        guides = self.press(consent, "ob:c:1", has_button(f"ob:g:{guide}"))
        phases = self.press(guides, f"ob:g:{guide}", has_button(f"ob:p:{phase}"))
        self.press(phases, f"ob:p:{phase}", contains(done_text))

    def checkin(
        self, pain_question: Call, pain: int, morning: str, activity: str, done: Expect
    ) -> Call:
        """Answer a check-in from its pain question by buttons, skipping the note."""
        morning_q = self.press(pain_question, f"ci:p:{pain}", has_button(f"ci:m:{morning}"))
        activity_q = self.press(morning_q, f"ci:m:{morning}", has_button(f"ci:a:{activity}"))
        note_q = self.press(activity_q, f"ci:a:{activity}", has_button("ci:n:skip"))
        return self.press(note_q, "ci:n:skip", done)
