"""A whole session through the real bot process at LOG_LEVEL=DEBUG, in polling and in
webhook mode (issue 8): onboarding, a question, a check-in with a note, /mine_data.
The log holds neither the token, nor the webhook secret, nor any text the user typed or
the bot sent (the export's content included)."""

from __future__ import annotations

import pytest

from bot.dialogs.onboarding import done_text
from bot.knowledge import Knowledge

from .botproc import Chat, contains, free_port, has_button
from .conftest import BotFactory
from .fake_telegram import FakeTelegram

pytestmark = pytest.mark.e2e

USER = 6101
SECRET = "logs-Webhook_secret-7"
# Distinctive, so that finding one in the log can only mean it was logged.
QUESTION = "hvor lang tid tager det før jeg kan løbe igen QWRTZ"
NOTE = "stiv efter bakkeintervaller XKCDQ"


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_a_debug_log_of_a_whole_session_holds_no_token_and_no_text(
    mode: str, fake_telegram: FakeTelegram, bot_process: BotFactory, knowledge: Knowledge
) -> None:
    fake, kb = fake_telegram, knowledge
    env = {"LOG_LEVEL": "DEBUG"}
    ready = "deleteWebhook"
    if mode == "webhook":
        port = free_port()
        env |= {
            "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_LISTEN": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
        }
        ready = "setWebhook"
        fake.push_to_webhook()  # Telegram's side: queued updates are POSTed to the bot
    bot = bot_process(env).start_and_wait(ready, timeout=120.0)
    chat = Chat(fake, USER, first_name="Ditte")

    chat.onboard(done_text(kb, "proximal"))
    chat.say(QUESTION, lambda c: True)
    pain_q = chat.command("checkin", has_button("ci:p:4"))
    morning_q = chat.press(pain_q, "ci:p:4", has_button("ci:m:same"))
    activity_q = chat.press(morning_q, "ci:m:same", has_button("ci:a:run"))
    chat.press(activity_q, "ci:a:run", has_button("ci:n:skip"))
    zone = kb.traffic_light.zone("yellow")
    summary = kb.text("checkin_summary_zone", symbol=zone.symbol, label=zone.label, pain=4)
    chat.say(NOTE, contains(summary))
    since = chat.mark()
    chat.command("mine_data", lambda c: c.method == "sendDocument")
    export = b"".join(
        f.content for c in fake.sent[since:] if c.method == "sendDocument" for f in c.files.values()
    )
    assert NOTE.encode() in export  # the export really holds the note
    if mode == "webhook":
        assert fake.webhook_posts[200] > 0 and not any(c.method == "getUpdates" for c in fake.calls)

    bot.stop()
    log = bot.log()
    assert " DEBUG " in log  # the level really was DEBUG
    assert fake.token not in log and fake.token.split(":", 1)[1] not in log
    assert SECRET not in log
    typed = [QUESTION, NOTE, "QWRTZ", "XKCDQ", "Ditte"]
    sent = {c.text for c in fake.sent if c.text and len(c.text) > 12}
    for text in [*typed, *sent]:
        assert text not in log, text
    assert "Traceback" not in log
