"""Long polling that confirms only what is stored.

getUpdates confirms every update below the offset it is called with. PTB's Updater
asks again as soon as it has queued a batch in memory, so a crash loses what it had
confirmed. This loop stores each batch in the inbox (one transaction) and only then
asks with the next offset; a batch it could not store is asked for again. An update
whose id is below the offset is never asked for again: the offset is one past the
highest id of a stored batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TimedOut

from bot import inbox
from bot.bot_api import ApiError, ApiTimeout, ApiUnreachable, BotApi
from bot.inbox import Stored
from bot.storage import Database

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10  # seconds Telegram holds a long poll open
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
BATCH = 100
LONG_POLL_SLACK = 10.0  # seconds past the long poll before BotApi gives up on an answer

Feed = Callable[[Sequence[tuple[Stored, Update | None]]], None]


async def poll(
    bot: Bot, db: Database, feed: Feed, long_poll: int = POLL_TIMEOUT, api: BotApi | None = None
) -> None:
    """Fetch, store, feed, repeat (until cancelled). InvalidToken ends it.

    With `api` (bot/bot_api.py) the updates are fetched and stored as Telegram's JSON and
    parsed once, when handled; without it PTB's Bot fetches and parses them.
    """
    delay = FIRST_DELAY
    offset: int | None = None
    while True:
        try:
            if api is not None:
                updates = await _fetch(api, offset, long_poll)
            else:
                fetched = await bot.get_updates(
                    offset=offset, limit=BATCH, timeout=long_poll, allowed_updates=Update.ALL_TYPES
                )
                updates = [(u.to_dict(), u) for u in fetched]
        except InvalidToken:
            raise
        except (TimedOut, ApiTimeout):
            continue
        except (Conflict, NetworkError, ApiError, ApiUnreachable) as exc:
            after = exc.retry_after if isinstance(exc, ApiError) else None
            wait = max(delay, after or 0.0)
            log.warning("getUpdates failed (%s); again in %.0f s", exc, wait)
            await asyncio.sleep(wait)
            delay = min(MAX_DELAY, delay * 2)
            continue
        delay = FIRST_DELAY
        if not updates:
            continue
        try:
            new = await asyncio.to_thread(inbox.store, db, [data for data, _ in updates])
        except Exception:
            # Not stored, so not confirmed: the same batch comes again.
            log.exception("could not store %d update(s); asking for them again", len(updates))
            await asyncio.sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
            continue
        offset = max(int(data["update_id"]) for data, _ in updates) + 1
        by_id = {int(data["update_id"]): parsed for data, parsed in updates}
        feed([(s, by_id.get(s.update_id)) for s in new])


async def _fetch(
    api: BotApi, offset: int | None, long_poll: int
) -> list[tuple[dict[str, Any], Update | None]]:
    """One getUpdates through BotApi: the updates as JSON (those without an integer
    update_id are no updates and are left out)."""
    params: dict[str, Any] = {"limit": BATCH, "timeout": long_poll,
                              "allowed_updates": Update.ALL_TYPES}  # fmt: skip
    if offset is not None:
        params["offset"] = offset
    try:
        result = await api.call("getUpdates", params, within=long_poll + LONG_POLL_SLACK)
    except ApiError as exc:
        if exc.status in (401, 404):  # as PTB: the token was refused
            raise InvalidToken(exc.description) from exc
        raise
    if not isinstance(result, list):
        raise ApiUnreachable("getUpdates answered without a list")
    return [
        (u, None) for u in result if isinstance(u, dict) and isinstance(u.get("update_id"), int)
    ]


__all__ = ["POLL_TIMEOUT", "poll"]
