"""The fake Bot API server, driven by the real python-telegram-bot client and Application.

If PTB can talk to the fake exactly as to api.telegram.org, the bot's end-to-end tests
and benchmarks built on it test the bot, not a mock of it.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import socket
import struct
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    CallbackContext,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from .fake_telegram import Call, FakeTelegram, parse_multipart, post_update_to_webhook

USER = 4242


def _png(width: int, height: int) -> bytes:
    """A minimal valid PNG, so the fake's reported photo size can be checked."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _loopback_request(pool_size: int = 1) -> HTTPXRequest:
    """A plain-HTTP client for the loopback fake.

    ``verify=False`` only skips loading the CA bundle (~0.4 s per client); no TLS is used.
    """
    return HTTPXRequest(connection_pool_size=pool_size, httpx_kwargs={"verify": False})


def _bot(fake: FakeTelegram, token: str | None = None, pool_size: int = 1) -> Bot:
    return Bot(
        token or fake.token,
        base_url=fake.base_url,
        request=_loopback_request(pool_size),
        get_updates_request=_loopback_request(),
    )


def _app(fake: FakeTelegram) -> Application:  # type: ignore[type-arg]
    return (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .request(_loopback_request(8))
        .get_updates_request(_loopback_request())
        .build()
    )


@pytest.fixture
async def bot(fake_telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with _bot(fake_telegram) as client:
        yield client


async def test_get_me_identifies_the_bot(bot: Bot, fake_telegram: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.username == "fake_runner_bot"
    assert me.id == int(fake_telegram.token.split(":")[0])
    assert fake_telegram.base_url.startswith("http://127.0.0.1:")


async def test_send_message_records_inline_keyboard(bot: Bot, fake_telegram: FakeTelegram) -> None:
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Grøn", callback_data="tl:grøn")],
            [InlineKeyboardButton("Rød", callback_data="tl:rød")],
        ]
    )
    message = await bot.send_message(USER, "Hvordan gik løbeturen?", reply_markup=markup)

    assert message.text == "Hvordan gik løbeturen?"
    assert message.chat.id == USER
    assert message.from_user is not None
    assert message.from_user.is_bot
    assert message.reply_markup == markup  # echoed back in the Message

    record = fake_telegram.sent[-1]
    assert record.method == "sendMessage"
    assert record.chat_id == USER  # decoded to int
    assert record.params["reply_markup"] == markup.to_dict()  # JSON field parsed
    assert record.button_data == ["tl:grøn", "tl:rød"]
    assert record.result["message_id"] == message.message_id
    assert fake_telegram.messages_to(USER) == [record]


async def test_message_ids_grow_per_chat(bot: Bot) -> None:
    first = await bot.send_message(1, "a")
    second = await bot.send_message(1, "b")
    other = await bot.send_message(2, "c")
    assert second.message_id == first.message_id + 1
    assert other.message_id == 1


async def test_html_parse_mode_is_stripped_like_telegram(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    message = await bot.send_message(USER, "<b>Grøn</b> &amp; godt", parse_mode="HTML")
    assert message.text == "Grøn & godt"
    assert fake_telegram.sent[-1].params["text"] == "<b>Grøn</b> &amp; godt"


async def test_send_photo_and_document_record_exact_bytes(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    png = _png(7, 3)
    photo_message = await bot.send_photo(USER, png, caption="Din uge")
    csv = "dato;smerte\n2024-05-01;2\næøå\r\n".encode()
    doc_message = await bot.send_document(USER, csv, filename="målinger.csv")

    assert photo_message.caption == "Din uge"
    assert (photo_message.photo[-1].width, photo_message.photo[-1].height) == (7, 3)
    assert photo_message.photo[-1].file_size == len(png)
    assert doc_message.document is not None
    assert doc_message.document.file_name == "målinger.csv"
    assert doc_message.document.file_size == len(csv)

    photo_call, doc_call = fake_telegram.sent[-2:]
    assert photo_call.method == "sendPhoto"
    assert photo_call.files["photo"].content == png
    assert photo_call.chat_id == USER
    assert photo_call.text == "Din uge"
    assert doc_call.files["document"].content == csv
    assert doc_call.files["document"].filename == "målinger.csv"

    # A photo can be re-sent by the file_id Telegram returned; unknown ids are refused.
    again = await bot.send_photo(USER, photo_message.photo[-1].file_id)
    assert again.photo[-1].file_id == photo_message.photo[-1].file_id
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_photo(USER, "no-such-file-id")


async def test_get_updates_parses_texts_and_button_presses(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="consent:yes")]])
    question = await bot.send_message(USER, "Må jeg gemme dine svar?", reply_markup=markup)
    fake_telegram.send_text(USER, "hej med dig", first_name="Mette")
    fake_telegram.press_button(USER, fake_telegram.sent[-1], "consent:yes")

    updates = await bot.get_updates()
    assert len(updates) == 2
    text, press = updates
    assert isinstance(text, Update)
    assert text.message is not None
    assert text.message.text == "hej med dig"
    assert text.effective_user is not None
    assert text.effective_user.first_name == "Mette"
    assert text.effective_chat is not None
    assert text.effective_chat.type == "private"
    assert press.callback_query is not None
    assert press.callback_query.data == "consent:yes"
    assert press.callback_query.message is not None
    assert press.callback_query.message.message_id == question.message_id
    assert await press.callback_query.answer()
    with pytest.raises(BadRequest, match=r"(?i)query id is invalid"):
        await press.callback_query.answer()  # each query is answered once

    # offset confirms: the same updates are not delivered again
    assert await bot.get_updates(offset=press.update_id + 1) == ()
    assert fake_telegram.pending_updates == 0


async def test_press_button_refuses_data_that_is_not_on_the_message(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    await bot.send_message(
        USER,
        "Vælg",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
    )
    with pytest.raises(AssertionError, match="buttons: \\['a'\\]"):
        fake_telegram.press_button(USER, fake_telegram.sent[-1], "b")


async def test_commands_groups_and_other_message_kinds_parse(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    fake_telegram.send_command(USER, "start")
    fake_telegram.send_command(USER, "tjek", args="nu", chat_id=-100, mention_bot=True)
    fake_telegram.send_text(USER, f"{fake_telegram.mention()} hvad med knæet?", chat_id=-100)
    fake_telegram.send_text(USER, "bare snak", chat_id=-100)
    fake_telegram.send_sticker(USER)
    fake_telegram.send_photo(USER)
    fake_telegram.send_voice(USER)
    fake_telegram.send_location(USER)
    original = fake_telegram.send_text(USER, "smerte 3")
    fake_telegram.edit_text(USER, original, "smerte 4")

    ups = await bot.get_updates()
    assert len(ups) == 10
    start, group_cmd, mention, chatter, sticker, photo, voice, location, _, edited = ups
    assert start.message is not None
    assert start.message.parse_entities([MessageEntity.BOT_COMMAND]) != {}
    assert group_cmd.message is not None
    assert group_cmd.message.chat.type == "group"
    assert group_cmd.message.text == "/tjek@fake_runner_bot nu"
    assert mention.message is not None
    assert list(mention.message.parse_entities([MessageEntity.MENTION]).values()) == [
        "@fake_runner_bot"
    ]
    assert chatter.message is not None
    assert chatter.message.entities == ()
    assert sticker.message is not None
    assert sticker.message.sticker is not None
    assert photo.message is not None
    assert len(photo.message.photo) == 2
    assert voice.message is not None
    assert voice.message.voice is not None
    assert location.message is not None
    assert location.message.location is not None
    assert edited.edited_message is not None
    assert edited.edited_message.text == "smerte 4"
    assert edited.edited_message.message_id == original["message"]["message_id"]


async def test_replies_carry_the_bot_message(bot: Bot, fake_telegram: FakeTelegram) -> None:
    question = await bot.send_message(-100, "Hvordan har knæet det?")
    fake_telegram.send_text(USER, "bedre", chat_id=-100, reply_to=fake_telegram.sent[-1])
    (update,) = await bot.get_updates()
    assert update.message is not None
    assert update.message.chat.type == "group"
    assert update.message.reply_to_message is not None
    assert update.message.reply_to_message.message_id == question.message_id
    assert update.message.reply_to_message.from_user == await bot.get_me()


def test_bad_requests_get_api_errors_not_crashes(fake_telegram: FakeTelegram) -> None:
    method_url = f"{fake_telegram.base_url}{fake_telegram.token}/sendMessage"
    cases = [
        (b"chat_id=1&text=", "application/x-www-form-urlencoded", 400, "text is empty"),
        (b"chat_id=1&text=a&reply_markup={", "application/x-www-form-urlencoded", 400, "parse"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400, "UTF-8"),
        (b"--B\r\nbroken", "multipart/form-data", 400, "boundary"),
    ]
    for body, content_type, status, description in cases:
        request = urllib.request.Request(
            method_url, data=body, headers={"Content-Type": content_type}, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        answer = json.loads(caught.value.read())
        caught.value.close()
        assert caught.value.code == status
        assert answer["ok"] is False
        assert answer["error_code"] == status
        assert description in answer["description"]
    # a JSON body works like a form (the Bot API accepts both)
    request = urllib.request.Request(
        method_url,
        data=json.dumps({"chat_id": 5, "text": "hej"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["result"]["chat"]["id"] == 5


async def test_long_poll_returns_as_soon_as_an_update_is_queued(
    bot: Bot, fake_telegram: FakeTelegram
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=60, read_timeout=90))
    await asyncio.to_thread(fake_telegram.wait_until_polling)
    fake_telegram.send_text(USER, "er du der?")
    # Far below the poll's own 60 s: the fake answered because of the update, not the timeout.
    updates = await asyncio.wait_for(poll, 30)
    assert [u.message.text for u in updates if u.message] == ["er du der?"]


async def test_long_poll_waits_for_timeout_when_idle(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert time.monotonic() - started >= 1.0  # a lower bound the fake guarantees
    assert await bot.get_updates(timeout=0) == ()


async def test_get_updates_honours_limit(bot: Bot, fake_telegram: FakeTelegram) -> None:
    for i in range(5):
        fake_telegram.send_text(USER, f"besked {i}")
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["besked 0", "besked 1"]
    rest = await bot.get_updates(offset=first[-1].update_id + 1, limit=100)
    assert [u.message.text for u in rest if u.message] == ["besked 2", "besked 3", "besked 4"]


# PTB 22 warns that RetryAfter.retry_after will become a timedelta; both forms are handled.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_rate_limit_surfaces_as_retry_after() -> None:
    with FakeTelegram(
        rate_limit_per_second=2, rate_limit_retry_after=7, rate_limit_window=60
    ) as fake:
        async with _bot(fake) as bot:
            await bot.send_message(1, "a")
            await bot.send_message(2, "b")
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(3, "c")
            assert _retry_seconds(caught.value) == 7
            assert await bot.get_me()  # non-sending methods are not limited
            fake.rate_limit_per_second = None
            await bot.send_message(3, "c")
    assert fake.rate_limited_count == 1
    assert [c.chat_id for c in fake.sent if c.method == "sendMessage"] == [1, 2, 3]
    assert [c.status for c in fake.calls if c.method == "sendMessage"] == [200, 200, 429, 200]


async def test_blocked_user_surfaces_as_forbidden(bot: Bot, fake_telegram: FakeTelegram) -> None:
    fake_telegram.blocked_users.add(USER)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(USER, "Husk dit tjek")
    with pytest.raises(Forbidden):
        await bot.send_document(USER, b"x", filename="a.csv")
    await bot.send_message(USER + 1, "andre får stadig besked")
    assert [c.chat_id for c in fake_telegram.sent] == [USER + 1]


async def test_wrong_token_is_unauthorized(fake_telegram: FakeTelegram) -> None:
    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with _bot(fake_telegram, token="111:wrong-token") as bad:
            await bad.get_me()
    assert fake_telegram.calls == []


async def test_unknown_method_is_404(bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendFlyingPig", api_kwargs={"chat_id": USER})


async def test_fail_next_injects_server_errors(bot: Bot, fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next("sendMessage", count=2, status=502)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(USER, "prøv igen")
    assert (await bot.send_message(USER, "prøv igen")).text == "prøv igen"
    assert [c.status for c in fake_telegram.calls if c.method == "sendMessage"] == [502, 502, 200]


async def test_telegram_limits_are_enforced(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(USER, "x" * 4097)
    await bot.send_message(USER, "x" * 4096)
    too_long_data = "æ" * 33  # 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            USER,
            "ok",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("a", callback_data=too_long_data)]]
            ),
        )


async def test_edit_and_delete_messages(bot: Bot, fake_telegram: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("1", callback_data="1")]])
    message = await bot.send_message(USER, "Smerte?", reply_markup=keyboard)
    edited = await bot.edit_message_text("Tak!", chat_id=USER, message_id=message.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "Tak!"
    assert edited.reply_markup is None
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("Tak!", chat_id=USER, message_id=message.message_id)
    marked = await bot.edit_message_reply_markup(USER, message.message_id, reply_markup=keyboard)
    assert not isinstance(marked, bool)
    assert marked.reply_markup == keyboard
    # a button press carries the message as it is now
    fake_telegram.press_button(USER, fake_telegram.sent[0], "1")
    (press,) = await bot.get_updates()
    assert press.callback_query is not None
    assert press.callback_query.message is not None
    assert getattr(press.callback_query.message, "text", None) == "Tak!"

    assert await bot.send_chat_action(USER, "typing")
    assert await bot.delete_message(USER, message.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.delete_message(USER, message.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=999)


async def test_commands_are_stored(bot: Bot, fake_telegram: FakeTelegram) -> None:
    commands = [BotCommand("start", "Kom i gang"), BotCommand("tjek", "Dagens lyskryds")]
    assert await bot.set_my_commands(commands)
    assert fake_telegram.bot_commands == [c.to_dict() for c in commands]
    assert await bot.get_my_commands() == tuple(commands)
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Ugyldig kommando", "x")])


async def test_wait_for_timeout_lists_what_was_sent(bot: Bot, fake_telegram: FakeTelegram) -> None:
    await bot.send_message(USER, "Godmorgen")
    with pytest.raises(AssertionError, match="Godmorgen"):
        fake_telegram.wait_for(lambda c: "aften" in c.text, timeout=0.05)
    found = fake_telegram.wait_for(lambda c: "morgen" in c.text, timeout=0.05)
    assert found.chat_id == USER
    # `since` skips what was sent before
    with pytest.raises(AssertionError, match="got 0"):
        fake_telegram.wait_for(lambda c: True, timeout=0.05, since=len(fake_telegram.sent))


async def test_concurrent_requests_over_many_connections(fake_telegram: FakeTelegram) -> None:
    users = range(1, 31)
    async with _bot(fake_telegram, pool_size=8) as bot:
        messages = await asyncio.gather(
            *(bot.send_message(user, f"påmindelse {n}") for user in users for n in (1, 2))
        )
    assert len(messages) == 60
    # per-chat message ids stay consistent under concurrent requests
    ids: dict[int, set[int]] = {}
    for message in messages:
        ids.setdefault(message.chat.id, set()).add(message.message_id)
    assert ids == {user: {1, 2} for user in users}
    records = fake_telegram.wait_for_count(60, lambda c: c.method == "sendMessage", timeout=1)
    assert sorted(int(c.chat_id or 0) for c in records) == sorted([*users, *users])
    assert len(fake_telegram.messages_to(7)) == 2


def test_multipart_parser_keeps_binary_content_exact() -> None:
    blob = b"\r\n--not-the-boundary\r\n\x00\xff\r\n"
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="chat_id"\r\n\r\n'
        b"42\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="document"; filename="b.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + blob + b"\r\n--XyZ--\r\n"
    )
    fields, files = parse_multipart(body, "multipart/form-data; boundary=XyZ")
    assert fields == {"chat_id": "42"}
    assert files["document"].content == blob
    assert files["document"].filename == "b.bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _reply_upper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    await update.message.reply_text(update.message.text.upper())


async def test_application_polling_round_trip(fake_telegram: FakeTelegram) -> None:
    app = _app(fake_telegram)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _reply_upper))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=dtm.timedelta(seconds=1))
        fake_telegram.send_text(USER, "hej bot")
        reply = await fake_telegram.wait_for_async(lambda c: c.method == "sendMessage")
        await app.updater.stop()
        await app.stop()
    assert reply.chat_id == USER
    assert reply.text == "HEJ BOT"
    assert "deleteWebhook" in [c.method for c in fake_telegram.calls]  # PTB's polling bootstrap
    assert fake_telegram.pending_updates == 0  # PTB confirmed the update on shutdown


async def test_application_webhook_round_trip(fake_telegram: FakeTelegram) -> None:
    seen: list[str] = []

    async def on_start(update: Update, context: CallbackContext) -> None:  # type: ignore[type-arg]
        seen.append("start")
        assert update.message is not None
        await update.message.reply_text("velkommen")

    app = _app(fake_telegram)
    app.add_handler(CommandHandler("start", on_start))
    port = _free_port()
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret",
        )
        info = await app.bot.get_webhook_info()
        assert info.url == f"http://127.0.0.1:{port}/hook"
        with pytest.raises(Conflict):
            await app.bot.get_updates()

        update = fake_telegram.send_command(USER, "start")
        wrong = await asyncio.to_thread(
            post_update_to_webhook, fake_telegram.webhook["url"], update, "forkert"
        )
        status = await asyncio.to_thread(fake_telegram.deliver_to_webhook, update)
        reply = await fake_telegram.wait_for_async(lambda c: c.method == "sendMessage")
        await app.updater.stop()
        await app.stop()
    assert wrong == 403
    assert status == 200
    assert seen == ["start"]
    assert reply.text == "velkommen"


def test_webhook_helper_refuses_non_loopback_urls() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        post_update_to_webhook("https://example.com/hook", {"update_id": 1})


def test_call_describe_is_readable() -> None:
    call = Call("sendMessage", {"chat_id": 1, "text": "a\nb"}, {}, 200, {"ok": True})
    assert call.describe() == "sendMessage[200] chat=1 'a b'"
