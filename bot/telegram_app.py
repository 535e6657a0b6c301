"""The Telegram adapter: a thin shell that turns Updates into engine calls and back.

`build_application(settings)` is the one place that wires handlers; the tests
and `python -m bot run` both use it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import dispatch, protocol
from bot.engine import Engine, build_engine
from bot.knowledge import KnowledgeError
from bot.replies import Incoming, Reply
from bot.settings import Settings, SettingsError, load_settings
from bot.startup import StartupError, configure_logging, fail, open_database
from bot.webhook import ListenError, build_webhook_app
from bot.webhook import serve as serve_webhook

log = logging.getLogger(__name__)

AnyApp: TypeAlias = "Application[Any, Any, Any, Any, Any, Any]"

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split a long reply at paragraph, line, sentence or word boundaries, in that order."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", ". ", " "):
            cut = window.rfind(sep)
            if cut > limit // 3:
                cut += len(sep)
                break
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.label, url=b.url)
                if b.url is not None
                else InlineKeyboardButton(b.label, callback_data=b.data)
                for b in row
            ]
            for row in reply.buttons
        ]
    )


async def send_replies(
    app: AnyApp, chat_id: int, user_id: int, replies: Sequence[Reply]
) -> list[Message]:
    """Send replies in order; a 403 marks the user inactive instead of raising."""
    bot = app.bot
    sent: list[Message] = []
    try:
        for reply in replies:
            markup = _markup(reply)
            if reply.image is not None or reply.document is not None:
                caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
                if reply.image is not None:
                    sent.append(
                        await bot.send_photo(
                            chat_id,
                            photo=InputFile(reply.image, filename="historik.png"),
                            caption=caption,
                            reply_markup=markup,
                        )
                    )
                else:
                    assert reply.document is not None
                    doc = reply.document
                    sent.append(
                        await bot.send_document(
                            chat_id,
                            document=InputFile(doc.content, filename=doc.filename),
                            caption=caption,
                            reply_markup=markup,
                        )
                    )
                if caption is None and reply.text:
                    for chunk in split_text(reply.text):
                        sent.append(await bot.send_message(chat_id, chunk))
                continue
            chunks = split_text(reply.text)
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                sent.append(
                    await bot.send_message(chat_id, chunk, reply_markup=markup if last else None)
                )
    except Forbidden:
        engine: Engine = app.bot_data["engine"]
        await asyncio.to_thread(engine.mark_blocked, user_id)
    return sent


async def _run_engine(context: ContextTypes.DEFAULT_TYPE, incoming: Incoming) -> list[Reply]:
    engine: Engine = context.application.bot_data["engine"]
    return await asyncio.to_thread(engine.handle, incoming)


def _mentions_bot(message: Message, username: str | None) -> bool:
    if not username:
        return False
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if entity.type == MessageEntity.MENTION and value.lstrip("@").lower() == username.lower():
            return True
    return False


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    user = update.effective_user
    chat = update.effective_chat
    if message is None or user is None or chat is None or message.text is None:
        return
    text = message.text
    if chat.type != ChatType.PRIVATE:
        username = context.bot.username
        if not text.startswith("/") and not _mentions_bot(message, username):
            return  # in groups only commands and mentions are for us
        addressee = text.split(maxsplit=1)[0].partition("@")[2] if text.startswith("/") else ""
        if addressee and username and addressee.lower() != username.lower():
            return  # "/start@other_bot" is for another bot in the group
        text = text.replace(f"@{username}", "").strip() if username else text
    incoming = Incoming.parse_text(
        user.id,
        chat.id,
        text,
        first_name=user.first_name,
        extra={"update_id": str(update.update_id)},
    )
    replies = await _run_engine(context, incoming)
    await send_replies(context.application, chat.id, user.id, replies)


async def on_callback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    try:
        await query.answer()
    except TelegramError:
        # A press queued while the bot was down outlives its query (Telegram expires
        # them within seconds); the press itself must still count.
        log.debug("could not answer the callback query", exc_info=True)
    data = query.data or ""
    message = query.message
    chat_id = message.chat.id if message is not None else user.id
    incoming = Incoming(
        user.id,
        chat_id,
        "callback",
        callback=data,
        first_name=user.first_name,
        extra={"update_id": str(update.update_id)},
    )
    replies = await _run_engine(context, incoming)
    # Buttons of an answered prompt are removed, so they cannot be pressed twice.
    if protocol.is_one_shot(data) and isinstance(message, Message):
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramError:
            log.debug("could not remove buttons", exc_info=True)
    await send_replies(context.application, chat_id, user.id, replies)


def _media_kind(message: Message) -> str:
    for kind in (
        "sticker",
        "photo",
        "voice",
        "location",
        "video",
        "document",
        "audio",
        "contact",
        "animation",
    ):
        if getattr(message, kind, None):
            return kind
    return "message"


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    if chat.type != ChatType.PRIVATE:
        return
    if update.edited_message is not None:
        media = "edited"
    elif update.effective_message is not None:
        media = _media_kind(update.effective_message)
    else:
        return
    incoming = Incoming(
        user.id, chat.id, "unsupported", media=media, extra={"update_id": str(update.update_id)}
    )
    replies = await _run_engine(context, incoming)
    await send_replies(context.application, chat.id, user.id, replies)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        engine: Engine = context.application.bot_data["engine"]
        try:
            await context.bot.send_message(update.effective_chat.id, engine.kb.text("error"))
        except TelegramError:
            log.debug("could not send the error reply", exc_info=True)


def _seconds(delay: object) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB's settings."""
    total = getattr(delay, "total_seconds", None)
    return float(total()) if callable(total) else float(delay)  # type: ignore[arg-type]


async def send_reminder(bot: Bot, chat_id: int, reply: Reply) -> int | None:
    """Send one reminder for the dispatcher: the Telegram edge of `dispatch.Sender`.

    The rate limiter already retries 429s; a 429 that outlasts it is waited out here
    too. 403 (blocked) and "chat not found" become `RecipientBlocked`; anything else
    propagates and the dispatcher retries the reminder later.
    """
    markup = _markup(reply)
    try:
        for attempt in range(3):
            try:
                msg = await bot.send_message(chat_id, reply.text, reply_markup=markup)
                return msg.message_id
            except RetryAfter as exc:
                if attempt == 2:
                    raise
                await asyncio.sleep(_seconds(exc.retry_after))
    except Forbidden as exc:
        raise dispatch.RecipientBlocked(str(exc)) from exc
    except BadRequest as exc:
        if "chat not found" in exc.message.lower():
            raise dispatch.RecipientBlocked(str(exc)) from exc
        raise
    return None


async def reminder_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Periodic job: claim and send due reminders (rows in the database, not timers)."""
    app = context.application
    engine: Engine = app.bot_data["engine"]
    worker = app.bot_data.setdefault("worker_id", f"{socket.gethostname()}:{os.getpid()}")
    stats = await dispatch.dispatch_due(
        engine.db, engine.kb, functools.partial(send_reminder, app.bot), engine.clock(), worker
    )
    if stats.claimed:
        log.info("reminders: %s", stats)


# How often users who never consented are looked for (they are kept GUEST_RETENTION_DAYS).
GUEST_CLEANUP_SECONDS = 3600.0


async def guest_cleanup_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Periodic job (and once at start): forget users who never consented and went quiet."""
    engine: Engine = context.application.bot_data["engine"]
    await asyncio.to_thread(engine.forget_guests)


async def _post_init(app: AnyApp) -> None:
    engine: Engine = app.bot_data["engine"]
    engine.bot_username = app.bot.username  # for the deep links from groups (get_me ran)
    commands = [BotCommand(name, description) for name, description in engine.menu_commands()]
    await app.bot.set_my_commands(commands)
    if hasattr(signal, "SIGHUP"):
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_on_sighup(app)))
        except (NotImplementedError, RuntimeError):
            log.debug("no SIGHUP handler on this platform")


async def _on_sighup(app: AnyApp) -> None:
    """Reload in a worker thread (rebuilding the matcher must not stall the event loop);
    a refused reload is told to every admin, as /reload tells the one who asked."""
    engine: Engine = app.bot_data["engine"]
    ok, report = await asyncio.to_thread(engine.reload)
    log.info("SIGHUP reload %s", "applied" if ok else "refused (old knowledge kept)")
    if ok:
        return
    for admin in sorted(engine.settings.admin_ids):
        try:
            await app.bot.send_message(admin, report)
        except TelegramError as exc:
            log.warning("could not tell admin %s about the refused reload: %s", admin, exc)


# Requests are spaced evenly at just under Telegram's ~30 messages/s. The default bucket
# (30 per second) lets 30 go at once and 30 more within the same second as it drains,
# so bulk sends (the reminder batch) hit 429s, and every 429 pauses all requests.
MESSAGES_PER_SECOND = 29


def rate_limiter() -> AIORateLimiter:
    """The overall send pace (no bursts); 429s are still waited out and retried."""
    return AIORateLimiter(
        overall_max_rate=1, overall_time_period=1 / MESSAGES_PER_SECOND, max_retries=3
    )


def build_application(
    settings: Settings, engine: Engine | None = None, request: BaseRequest | None = None
) -> AnyApp:
    """Wire the engine to Telegram: the single place handlers are registered.

    `request` replaces PTB's HTTP client (offline tests pass one that never touches
    the network).
    """
    if settings.telegram_bot_token is None:
        raise SettingsError("TELEGRAM_BOT_TOKEN is not set")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_base_url)
        .rate_limiter(rate_limiter())
        .post_init(_post_init)
    )
    if settings.telegram_base_file_url:
        builder = builder.base_file_url(settings.telegram_base_file_url)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    app = builder.build()
    app.bot_data["engine"] = engine if engine is not None else build_engine(settings)
    app.add_handler(CallbackQueryHandler(on_callback))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, on_unsupported))
    app.add_handler(MessageHandler(filters.TEXT, on_text))
    app.add_handler(MessageHandler(~filters.TEXT, on_unsupported))
    app.add_error_handler(on_error)
    if app.job_queue is not None:
        app.job_queue.run_repeating(
            reminder_job, interval=settings.reminder_poll_seconds, first=1.0
        )
        app.job_queue.run_repeating(guest_cleanup_job, interval=GUEST_CLEANUP_SECONDS, first=0.5)
    return app


# Telegram unreachable at start: TELEGRAM_CONNECT_ATTEMPTS tries, waiting 1, 2, 4, ... s.
FIRST_RETRY_SECONDS = 1.0


async def wait_for_telegram(
    bot: Bot,
    attempts: int,
    first_delay: float = FIRST_RETRY_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ask Telegram who we are, retrying with backoff; one log line per failed attempt.

    Raises StartupError when Telegram stays unreachable and InvalidToken when it refuses
    the token.
    """
    delay = first_delay
    where = urlsplit(bot.base_url).netloc or bot.base_url
    for attempt in range(1, attempts + 1):
        try:
            async with bot:
                await bot.get_me()
            return
        except InvalidToken:
            raise
        except (NetworkError, TimedOut) as exc:
            if attempt == attempts:
                raise StartupError(
                    f"Telegram ({where}) is unreachable after {attempts} attempts: {exc}"
                ) from None
            log.warning(
                "Telegram (%s) unreachable (attempt %d of %d): %s; retrying in %.0f s",
                where, attempt, attempts, exc, delay,
            )  # fmt: skip
            await sleep(delay)
            delay *= 2


async def run_webhook(app: AnyApp, settings: Settings) -> None:
    """Webhook mode: bot/webhook.py's ASGI app feeds the Application, which runs without
    polling. `accept` decides what the webhook's 200 means: here, that the update is in
    the Application's in-memory queue (a crash before it is handled loses it)."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()

    async def accept(body: bytes) -> None:
        update = Update.de_json(json.loads(body), app.bot)
        await app.update_queue.put(update)

    asgi = build_webhook_app(
        urlsplit(settings.webhook_url).path, secret, accept, max_body=settings.webhook_max_body
    )
    async with app:
        await _post_init(app)
        await app.bot.set_webhook(
            settings.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
        )
        await app.start()
        try:
            await serve_webhook(asgi, settings.webhook_listen, settings.webhook_port)
        finally:
            await app.stop()


def run_main(argv: list[str]) -> int:
    """`python -m bot run`: Telegram when a token is configured, else the console chat."""
    parser = argparse.ArgumentParser(prog="python -m bot run", description=run_main.__doc__)
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc))
    if settings.telegram_bot_token is None:
        from bot.console import chat_main

        return chat_main([], note="TELEGRAM_BOT_TOKEN is not set: this is the console chat.")
    secrets = (settings.telegram_bot_token, settings.webhook_secret)
    configure_logging(
        settings.log_level, secrets=[x.get_secret_value() for x in secrets if x is not None]
    )
    try:
        db = open_database(settings)
        engine = build_engine(settings, db)
    except (StartupError, KnowledgeError) as exc:
        return fail(str(exc).replace("\n", "; "))
    app = build_application(settings, engine)
    try:
        asyncio.run(wait_for_telegram(app.bot, settings.telegram_connect_attempts))
    except InvalidToken:
        return fail("TELEGRAM_BOT_TOKEN was rejected by Telegram (invalid token)")
    except StartupError as exc:
        return fail(str(exc))
    try:
        if settings.webhook_url:
            asyncio.run(run_webhook(app, settings))
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        return fail("TELEGRAM_BOT_TOKEN was rejected by Telegram (invalid token)")
    except NetworkError as exc:
        return fail(f"lost Telegram while starting: {exc}")
    except ListenError as exc:
        return fail(str(exc))
    return 0
