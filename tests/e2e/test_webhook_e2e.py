"""The real bot process in webhook mode: it registers its webhook with the secret token,
processes updates that carry the secret and refuses (403) those that don't."""

from __future__ import annotations

import socket

import pytest

from bot.knowledge import Knowledge
from bot.storage import Database, InboxUpdate, User

from .botproc import Chat, free_port, has_button, wait_until
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
