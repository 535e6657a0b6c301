"""The real bot process in webhook mode: it registers its webhook with the secret token,
processes updates that carry the secret and refuses (403) those that don't; malformed
bodies get 400, oversized ones 413, and unauthenticated 5 MB posts do not grow it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from bot.knowledge import Knowledge
from bot.storage import Database, InboxUpdate, User

from .botproc import BotProcess, Chat, contains, free_port, has_button, wait_until
from .conftest import BotFactory
from .fake_telegram import FakeTelegram, post_update_to_webhook

pytestmark = pytest.mark.e2e

USER = 6001
SECRET = "e2e-Webhook_secret-42"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_webhook_with_secret_token(
    fake_telegram: FakeTelegram, bot_process: BotFactory, bot_db_url: str, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    bot = bot_process(
        {
            "WEBHOOK_URL": url,
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_LISTEN": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
        }
    ).start_and_wait("setWebhook", timeout=120.0)
    assert fake.webhook["url"] == url
    assert fake.webhook["secret_token"] == SECRET
    assert not any(c.method == "getUpdates" for c in fake.calls)
    # PTB registers the webhook first and then starts listening.
    wait_until(lambda: _listening(port))
    chat = Chat(fake, USER)

    # Without the right secret: 403, and the update is never handled.
    refused = fake.send_command(USER, "privatliv")
    assert post_update_to_webhook(url, refused, "wrong-secret") == 403
    assert post_update_to_webhook(url, refused, None) == 403

    # With the secret (as Telegram sends it): processed, the reply goes out by sendMessage.
    since = chat.mark()
    start = fake.send_command(USER, "start")
    assert fake.deliver_to_webhook(start) == 200
    consent = chat.wait(has_button("ob:c:1"), since)
    assert consent.method == "sendMessage" and consent.text == kb.text("consent_question")
    press = fake.press_button(USER, consent, "ob:c:1")
    assert fake.deliver_to_webhook(press) == 200
    chat.wait(has_button("ob:g:proximal"), since)

    texts = [c.text for c in chat.messages()]
    assert kb.text("privacy") not in texts
    assert texts.count(kb.text("consent_question")) == 1
    db = Database(bot_db_url)
    with db.session() as s:
        user = s.get(User, USER)
        assert user is not None and user.consent
        # Both updates went through the inbox: processed, their payload cleared.
        for update in (start, press):
            row = s.get(InboxUpdate, update["update_id"])
            assert row is not None and row.processed_at is not None and row.payload is None
    db.dispose()
    bot.stop()
    assert SECRET not in bot.log() and fake.token not in bot.log()


LIMIT = 1_000_000  # WEBHOOK_MAX_BODY's default
BIG = 5_000_000


def _status(sock: socket.socket) -> int:
    """The status code of the HTTP response read from `sock` (0 when none came)."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def raw_post(
    port: int,
    body: bytes,
    secret: str | None,
    *,
    chunked: bool = False,
    path: str = "/telegram",
) -> int:
    """POST `body` over a plain socket as a client that writes everything at once (in a
    thread) while it reads the answer, as an attacker's client would; returns the status."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if secret is not None:
        head.append(f"X-Telegram-Bot-Api-Secret-Token: {secret}")
    if chunked:
        head.append("Transfer-Encoding: chunked")
        step = 64 * 1024
        payload = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
            for i in range(0, len(body), step)
        )
        payload += b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:

        def write() -> None:
            with contextlib.suppress(OSError):  # the server hung up on the unread body
                sock.sendall(request)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        status = _status(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        writer.join(timeout=10)
    return status


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _start_webhook_bot(
    bot_process: BotFactory, extra: dict[str, str] | None = None
) -> tuple[BotProcess, int, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    env = {
        "WEBHOOK_URL": url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        **(extra or {}),
    }
    bot = bot_process(env).start_and_wait("setWebhook", timeout=120.0)
    wait_until(lambda: _listening(port))
    return bot, port, url


def test_webhook_refuses_before_reading_and_stays_flat(
    fake_telegram: FakeTelegram, bot_process: BotFactory, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    bot, port, url = _start_webhook_bot(bot_process)
    chat = Chat(fake, USER)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
        assert health.status == 200
    question = "hvor lang tid tager det at blive rask"

    # Refused before anything is handled: no reply, no row.
    good = fake.send_text(USER, question)
    body = json.dumps(good).encode()
    assert raw_post(port, body, None) == 403
    assert raw_post(port, body, "wrong-" + SECRET) == 403
    for bad in [b"", b"\xff\xfe\x00{", b'{"update_id": 1, "message": ', b"[1]", b'{"x": 1}']:
        assert raw_post(port, bad, SECRET) == 400, bad
    assert raw_post(port, b"x" * (LIMIT + 1), SECRET) == 413
    assert raw_post(port, b" " * (2 * LIMIT), SECRET, chunked=True) == 413

    # The same update with the secret: 200 and answered; the refused copies were not.
    since = chat.mark()
    assert post_update_to_webhook(url, good, SECRET) == 200
    chat.wait(lambda c: True, since)
    assert fake.deliver_to_webhook(fake.send_command(USER, "privatliv")) == 200
    chat.wait(contains(kb.text("privacy")), since)
    answered = len(chat.messages())

    pid = bot.proc.pid if bot.proc is not None else 0
    before = rss_mb(pid)
    statuses = [raw_post(port, b"A" * BIG, None) for _ in range(10)]
    statuses += [raw_post(port, b"A" * BIG, "wrong", chunked=True) for _ in range(10)]
    after = rss_mb(pid)
    assert statuses == [403] * 20
    assert after - before < 30, f"RSS {before:.0f} -> {after:.0f} MB"

    # Still serving, and nothing refused reached the engine.
    since = chat.mark()
    assert post_update_to_webhook(url, fake.send_command(USER, "hjaelp"), SECRET) == 200
    chat.wait(lambda c: True, since)
    assert len(chat.messages()) >= answered + 1
    assert sum(question in c.text for c in fake.sent) == 0  # the bot never echoes it
    bot.stop()
    # SIGTERM ended the server and then the Application cleanly (not killed by the signal).
    assert bot.proc is not None and bot.proc.returncode == 0
    log = bot.log()
    assert question not in log and SECRET not in log and fake.token not in log
    assert "Traceback" not in log and " ERROR " not in log
