"""Long polling that confirms only what is stored.

getUpdates confirms every update below the offset it is called with. PTB's Updater
asks again as soon as it has queued a batch in memory, so a crash loses what it had
confirmed. This loop stores each batch in the inbox (one transaction) and only then
asks with the next offset; a batch it could not store is asked for again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from telegram import Bot, Update
from telegram.error import Conflict, InvalidToken, NetworkError, TimedOut

from bot import inbox
from bot.inbox import Stored
from bot.storage import Database

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10  # seconds Telegram holds a long poll open
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
BATCH = 100

Feed = Callable[[Sequence[tuple[Stored, Update | None]]], None]


async def poll(bot: Bot, db: Database, feed: Feed, long_poll: int = POLL_TIMEOUT) -> None:
    """Fetch, store, feed, repeat (until cancelled). InvalidToken ends it."""
    delay = FIRST_DELAY
    offset: int | None = None
    while True:
        try:
            updates = await bot.get_updates(
                offset=offset, limit=BATCH, timeout=long_poll, allowed_updates=Update.ALL_TYPES
            )
        except InvalidToken:
            raise
        except TimedOut:
            continue
        except (Conflict, NetworkError) as exc:
            log.warning("getUpdates failed (%s); again in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
            continue
        delay = FIRST_DELAY
        if not updates:
            continue
        try:
            new = await asyncio.to_thread(inbox.store, db, [u.to_dict() for u in updates])
        except Exception:
            # Not stored, so not confirmed: the same batch comes again.
            log.exception("could not store %d update(s); asking for them again", len(updates))
            await asyncio.sleep(delay)
            delay = min(MAX_DELAY, delay * 2)
            continue
        offset = updates[-1].update_id + 1
        by_id = {u.update_id: u for u in updates}
        feed([(s, by_id.get(s.update_id)) for s in new])


__all__ = ["POLL_TIMEOUT", "poll"]
