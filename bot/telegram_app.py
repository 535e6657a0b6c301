"""The Telegram adapter: a thin shell that turns Updates into engine input and
outbox messages into Bot API calls.

`adapt()` reads one update (the handlers of the old Application: text, button press,
unsupported media, groups) and `Transport` sends one message and sorts Telegram's
answer into the sender's outcomes; `serve()` wires both into bot/runtime.py with
polling (bot/polling.py) or the webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
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
from telegram.request import BaseRequest, HTTPXRequest

from bot import polling, protocol
from bot.bot_api import ApiError, ApiUnreachable, BotApi
from bot.engine import Engine, build_engine
from bot.inbox import Stored
from bot.knowledge import KnowledgeError
from bot.outbox import Outgoing, split_text
from bot.replies import Incoming
from bot.runtime import Runtime, Work
from bot.sender import Blocked, Rejected, RetryLater
from bot.settings import Settings, SettingsError, load_settings
from bot.startup import StartupError, configure_logging, fail, open_database
from bot.webhook import ListenError, build_webhook_app
from bot.webhook import serve as serve_webhook

log = logging.getLogger(__name__)


def _mentions_bot(message: Message, username: str | None) -> bool:
    if not username:
        return False
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if entity.type == MessageEntity.MENTION and value.lstrip("@").lower() == username.lower():
            return True
    return False


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


def _text_incoming(update: Update, username: str | None) -> Incoming | None:
    message, user, chat = update.message, update.effective_user, update.effective_chat
    if message is None or user is None or chat is None or message.text is None:
        return None
    text = message.text
    if chat.type != ChatType.PRIVATE:
        if not text.startswith("/") and not _mentions_bot(message, username):
            return None  # in groups only commands and mentions are for us
        addressee = text.split(maxsplit=1)[0].partition("@")[2] if text.startswith("/") else ""
        if addressee and username and addressee.lower() != username.lower():
            return None  # "/start@other_bot" is for another bot in the group
        text = text.replace(f"@{username}", "").strip() if username else text
    return Incoming.parse_text(user.id, chat.id, text, first_name=user.first_name)


def _unsupported_incoming(update: Update) -> Incoming | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or chat.type != ChatType.PRIVATE:
        return None
    if update.edited_message is not None:
        media = "edited"
    elif update.message is not None:
        media = _media_kind(update.message)
    else:
        return None
    return Incoming(user.id, chat.id, "unsupported", media=media)


def _private_text(data: dict[str, Any]) -> Incoming | None:
    """A text message in a private chat, read straight from the update's JSON (most
    updates are these; building PTB's objects for them cost more than the rest of the
    adapter). None for anything else, which goes the PTB way."""
    if len(data) != 2:  # update_id and message, nothing else
        return None
    message = data.get("message")
    if not isinstance(message, dict):
        return None
    text, chat, sender = message.get("text"), message.get("chat"), message.get("from")
    if not (isinstance(text, str) and isinstance(chat, dict) and isinstance(sender, dict)):
        return None
    chat_id, user_id, first_name = chat.get("id"), sender.get("id"), sender.get("first_name")
    if chat.get("type") != ChatType.PRIVATE or not isinstance(chat_id, int):
        return None
    if not isinstance(user_id, int) or not isinstance(first_name, str):
        return None
    return Incoming.parse_text(user_id, chat_id, text, first_name=first_name)


def adapt(bot: Bot, stored: Stored, update: Update | None) -> Work:
    """What one update means for the engine, plus its best-effort Telegram side effects."""
    if update is None:
        incoming = _private_text(stored.data)
        if incoming is not None:
            return Work(incoming)
        update = Update.de_json(stored.data, bot)
    try:
        username: str | None = bot.username
    except RuntimeError:  # not initialized (no getMe yet): groups cannot name us
        username = None
    query = update.callback_query
    if query is not None:
        user = update.effective_user
        if user is None:
            return Work(None)
        data = query.data or ""
        message = query.message
        chat_id = message.chat.id if message is not None else user.id
        incoming = Incoming(user.id, chat_id, "callback", callback=data, first_name=user.first_name)

        async def answer() -> None:
            # A press queued while the bot was down outlives its query (Telegram expires
            # them within seconds); the press itself counts all the same.
            await query.answer()

        after: Callable[[], Awaitable[None]] | None = None
        if protocol.is_one_shot(data) and isinstance(message, Message):
            one_shot = message

            async def remove_buttons() -> None:
                # Buttons of an answered prompt are removed, so they cannot be pressed twice.
                await one_shot.edit_reply_markup(reply_markup=None)

            after = remove_buttons
        return Work(incoming, before=answer, after=after)
    if update.edited_message is not None:
        return Work(_unsupported_incoming(update))
    if update.message is not None and update.message.text is not None:
        return Work(_text_incoming(update, username))
    return Work(_unsupported_incoming(update))


def _markup(item: Outgoing) -> InlineKeyboardMarkup | None:
    if not item.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label, url=url)
                if url
                else InlineKeyboardButton(label, callback_data=data)
                for label, data, url in row
            ]
            for row in item.buttons
        ]
    )


def _seconds(delay: object) -> float:
    """RetryAfter.retry_after is an int or a timedelta depending on PTB's settings."""
    total = getattr(delay, "total_seconds", None)
    return float(total()) if callable(total) else float(delay)  # type: ignore[arg-type]


def _markup_json(item: Outgoing) -> dict[str, Any] | None:
    """The inline keyboard as the Bot API's JSON (what `_markup` is in PTB's objects)."""
    if not item.buttons:
        return None
    return {
        "inline_keyboard": [
            [
                {"text": label, "url": url} if url else {"text": label, "callback_data": data}
                for label, data, url in row
            ]
            for row in item.buttons
        ]
    }


class Transport:
    """Sends one outbox message; Telegram's errors become the sender's outcomes.

    With `api` (bot/bot_api.py) text messages go straight to the Bot API; pictures,
    files and every message without `api` go through PTB's Bot. Both ways sort
    Telegram's answers the same: 429 waits, 403 and "chat not found" block, another
    400 is refused, everything else (5xx, timeouts, dropped connections) is retried.
    """

    def __init__(self, bot: Bot, paid_broadcast: bool = False, api: BotApi | None = None) -> None:
        self.bot = bot
        self.paid_broadcast = paid_broadcast
        self.api = api

    async def __call__(self, item: Outgoing, reminder: bool) -> int | None:
        if self.api is not None and item.kind == "text":
            return await self._send_api(self.api, item, reminder)
        try:
            return await self._send(item, reminder)
        except RetryAfter as exc:
            raise RetryLater("429", after=_seconds(exc.retry_after)) from exc
        except Forbidden as exc:
            raise Blocked(exc.message) from exc
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise Blocked(exc.message) from exc
            raise Rejected(exc.message) from exc
        except (TimedOut, NetworkError) as exc:  # 5xx, timeouts, dropped connections
            raise RetryLater(f"{type(exc).__name__}: {exc.message}") from exc
        except TelegramError as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc.message}") from exc

    async def _send_api(self, api: BotApi, item: Outgoing, reminder: bool) -> int | None:
        params: dict[str, Any] = {"chat_id": item.chat_id, "text": item.text}
        markup = _markup_json(item)
        if markup is not None:
            params["reply_markup"] = markup
        if reminder and self.paid_broadcast:
            params["allow_paid_broadcast"] = True
        try:
            message_id = await api.send("sendMessage", params)
        except ApiError as exc:
            if exc.status == 429:
                raise RetryLater("429", after=exc.retry_after or 1.0) from exc
            if exc.status == 403:
                raise Blocked(exc.description) from exc
            if exc.status == 400:
                if "chat not found" in exc.description.lower():
                    raise Blocked(exc.description) from exc
                raise Rejected(exc.description) from exc
            raise RetryLater(f"HTTP {exc.status}: {exc.description}") from exc
        except ApiUnreachable as exc:
            raise RetryLater(f"unreachable: {exc}") from exc
        return message_id

    async def _send(self, item: Outgoing, reminder: bool) -> int | None:
        markup = _markup(item)
        paid = bool(reminder and self.paid_broadcast)
        if item.kind == "photo":
            message = await self.bot.send_photo(
                item.chat_id,
                photo=InputFile(item.content or b"", filename=item.filename or "historik.png"),
                caption=item.text or None,
                reply_markup=markup,
            )
        elif item.kind == "document":
            message = await self.bot.send_document(
                item.chat_id,
                document=InputFile(item.content or b"", filename=item.filename or "data"),
                caption=item.text or None,
                reply_markup=markup,
            )
        else:
            message = await self.bot.send_message(
                item.chat_id, item.text, reply_markup=markup, allow_paid_broadcast=paid
            )
        return message.message_id


def build_runtime(
    engine: Engine, bot: Bot, worker_id: str | None = None, api: BotApi | None = None
) -> Runtime:
    """The one place where the Telegram adapter is wired to the runtime (tests reuse it).

    `api` sends text messages past PTB (serve() passes one; tests that fake PTB's
    request layer leave it out).
    """
    settings = engine.settings
    paid = settings.paid_broadcast_per_second > 0
    rate = max(settings.messages_per_second, settings.paid_broadcast_per_second)
    return Runtime(
        engine,
        bot,
        lambda stored, update: adapt(bot, stored, update),
        Transport(bot, paid, api),
        rate=rate,
        worker_id=worker_id,
    )


def direct_api(settings: Settings) -> BotApi | None:
    """The sender's own Bot API client, or None behind an HTTP proxy: PTB's httpx honours
    the *_PROXY environment variables, BotApi only connects directly."""
    if settings.telegram_bot_token is None:
        return None
    proxies = urllib.request.getproxies()
    host = urlsplit(settings.telegram_base_url).hostname or ""
    scheme = urlsplit(settings.telegram_base_url).scheme
    if (scheme in proxies or "all" in proxies) and not urllib.request.proxy_bypass(host):
        log.info("an HTTP proxy is configured: messages go through PTB's client")
        return None
    return BotApi(settings.telegram_base_url, settings.telegram_bot_token.get_secret_value())


def make_bot(settings: Settings, request: BaseRequest | None = None) -> Bot:
    """The Bot with a connection pool for concurrent sends and its own long-poll client."""
    if settings.telegram_bot_token is None:
        raise SettingsError("TELEGRAM_BOT_TOKEN is not set")
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url or "https://api.telegram.org/file/bot",
        request=request or HTTPXRequest(connection_pool_size=32),
        get_updates_request=request or HTTPXRequest(connection_pool_size=2),
    )


async def _on_sighup(engine: Engine, bot: Bot) -> None:
    """Reload in a worker thread (rebuilding the matcher must not stall the event loop);
    a refused reload is told to every admin, as /reload tells the one who asked."""
    ok, report = await asyncio.to_thread(engine.reload)
    log.info("SIGHUP reload %s", "applied" if ok else "refused (old knowledge kept)")
    if ok:
        return
    for admin in sorted(engine.settings.admin_ids):
        try:
            await bot.send_message(admin, report)
        except TelegramError as exc:
            log.warning("could not tell admin %s about the refused reload: %s", admin, exc)


async def serve(settings: Settings, engine: Engine, bot: Bot) -> None:
    """Run until SIGTERM/SIGINT: polling or webhook, the runtime, the reminder job."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(
            signal.SIGHUP, lambda: asyncio.ensure_future(_on_sighup(engine, bot))
        )
    async with bot:
        # The deep links from a group to the private chat name the bot.
        engine.bot_username = bot.username
        commands = [BotCommand(name, text) for name, text in engine.menu_commands()]
        try:
            await bot.set_my_commands(commands)
        except TelegramError as exc:
            log.warning("could not set the command menu: %s", exc)
        api = direct_api(settings)
        runtime = build_runtime(engine, bot, api=api)
        runtime.start()
        await runtime.recover()
        if settings.webhook_url:
            fetch = asyncio.create_task(_webhook(settings, bot, runtime))
        else:
            await bot.delete_webhook()
            fetch = asyncio.create_task(polling.poll(bot, engine.db, runtime.feed, api=api))
        log.info("Application started")
        waiter = asyncio.create_task(stopping.wait())
        await asyncio.wait({fetch, waiter}, return_when=asyncio.FIRST_COMPLETED)
        fetch.cancel()
        waiter.cancel()
        try:
            await fetch
        except asyncio.CancelledError:
            pass
        finally:
            await runtime.stop()
            if api is not None:
                await api.close()
        log.info("Application stopped")


async def _webhook(settings: Settings, bot: Bot, runtime: Runtime) -> None:
    """Webhook mode: bot/webhook.py's ASGI app checks secret, size and shape, and its
    `accept` stores the update in the inbox, so Telegram's 200 means stored."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    asgi = build_webhook_app(
        urlsplit(settings.webhook_url).path,
        secret,
        runtime.accept_raw,
        max_body=settings.webhook_max_body,
    )
    await bot.set_webhook(
        settings.webhook_url, secret_token=secret, allowed_updates=Update.ALL_TYPES
    )
    await serve_webhook(asgi, settings.webhook_listen, settings.webhook_port)


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
    try:
        asyncio.run(wait_for_telegram(make_bot(settings), settings.telegram_connect_attempts))
        asyncio.run(serve(settings, engine, make_bot(settings)))
    except InvalidToken:
        return fail("TELEGRAM_BOT_TOKEN was rejected by Telegram (invalid token)")
    except StartupError as exc:
        return fail(str(exc))
    except NetworkError as exc:
        return fail(f"lost Telegram while starting: {exc}")
    except ListenError as exc:
        return fail(str(exc))
    return 0


__all__ = ["Transport", "adapt", "build_runtime", "make_bot", "run_main", "serve", "split_text"]
