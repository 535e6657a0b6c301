"""The running bot: updates from the inbox handled side by side, replies through one sender.

Polling (bot/polling.py) or the webhook stores each update (bot/inbox.py) and hands
it to `Runtime.feed`. Each user has a queue of their own, worked by one task at a
time, so one user's updates are handled in order while other users' go on at the
same time (at most CONCURRENCY turns at once); a turn runs in a worker thread
(matching, chart rendering and database work stay off the event loop), and a busy
SQLite is waited for (busy_timeout) and retried (Engine.handle_update). Its replies
are outbox rows committed with the turn (Engine.handle_update) and handed to the
sender (bot/sender.py), which also sends the reminders (bot/dispatch.py) at low
priority.

Periodic upkeep (MAINTENANCE_SECONDS): renew this process's lease on its outbox rows,
take over rows and unprocessed updates of a worker that died, forget old inbox rows.

Crash windows are those of bot/inbox.py and bot/outbox.py; on a clean stop (SIGTERM)
queued turns are finished and the sender gets STOP_GRACE to empty its queue, and what
is left stays in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from telegram import Bot, Update

from bot import dispatch, inbox, outbox
from bot.engine import Engine
from bot.inbox import Stored
from bot.replies import Incoming, Reply
from bot.sender import Blocked, Sender

log = logging.getLogger(__name__)

# Turns at once, each in a thread of its own pool (so the small database calls of the
# sender and the reminders never queue behind turns in asyncio's default pool). On 2
# cores more threads buy nothing: matching is CPU work under the GIL.
CONCURRENCY = 4
MAINTENANCE_SECONDS = 10.0
# An unprocessed update older than this and not in this process's queues was left by a
# worker that died (or failed on a dead database): it is handled here.
STALE_UPDATE = timedelta(seconds=60)
GUEST_CLEANUP_SECONDS = 3600.0
# A sent message's row is deleted at most this much later than it could be, so that
# the deletions of messages sent at about the same time share one transaction.
DONE_LINGER = 0.005
STOP_GRACE = 5.0

# (the parsed update, Incoming or None, and what to do after the turn) from a Stored.
Adapter = Callable[[Stored, Update | None], "Work"]


class Work:
    """What an adapter makes of one update: the engine's input and Telegram side effects."""

    def __init__(
        self,
        incoming: Incoming | None,
        before: Callable[[], Awaitable[None]] | None = None,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.incoming = incoming
        self.before = before  # e.g. answering a callback query (best effort)
        self.after = after  # e.g. removing an answered prompt's buttons (best effort)


class Runtime:
    """One per process: the user queues, the sender and the periodic jobs."""

    def __init__(
        self,
        engine: Engine,
        bot: Bot,
        adapt: Callable[[Stored, Update | None], Work],
        transport: Callable[[outbox.Outgoing, bool], Awaitable[int | None]],
        *,
        rate: float,
        worker_id: str | None = None,
        reminders: bool = True,
    ) -> None:
        self.engine = engine
        self.bot = bot
        self.adapt = adapt
        self.worker_id = worker_id or outbox.worker_name()
        self.sender = Sender(
            transport, rate=rate, on_done=self._row_done, on_blocked=self._row_blocked
        )
        self.reminders = reminders
        self._queues: dict[int, deque[tuple[Stored, Update | None]]] = {}
        self._known: set[int] = set()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._turns = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="turn")
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self._done_rows: list[tuple[int, asyncio.Future[None]]] = []
        self._deleting = False

    # ------------------------------------------------------------ updates in

    def feed(self, items: Sequence[tuple[Stored, Update | None]]) -> None:
        """Queue stored updates (in update order) on their users' queues."""
        for stored, update in items:
            if stored.update_id in self._known:
                continue
            self._known.add(stored.update_id)
            key = stored.user_id if stored.user_id is not None else -stored.update_id
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                self._spawn(self._work_user(key, queue))
            queue.append((stored, update))
            self._idle.clear()

    async def accept_raw(self, body: bytes) -> None:
        """The webhook's `accept`: store the update (then the 200 means stored) and queue it.

        Raises inbox.BadUpdate for a body that is not an update (the handler answers 400).
        """
        stored = await asyncio.to_thread(inbox.accept_raw, self.engine.db, body)
        if stored is not None:
            self.feed([(stored, None)])

    async def _work_user(self, key: int, queue: deque[tuple[Stored, Update | None]]) -> None:
        try:
            while queue:
                stored, update = queue[0]
                async with self._slots:
                    await self._process(stored, update)
                queue.popleft()
                self._known.discard(stored.update_id)
        finally:
            del self._queues[key]
            if not self._queues:
                self._idle.set()

    async def _process(self, stored: Stored, update: Update | None) -> None:
        try:
            work = self.adapt(stored, update)
        except Exception:
            log.exception("update %s could not be read; it is skipped", stored.update_id)
            work = Work(None)
        if work.before is not None:
            self._spawn(_best_effort(work.before, "before the turn"))
        try:
            rows = await asyncio.get_running_loop().run_in_executor(
                self._turns,
                self.engine.handle_update,
                stored.update_id,
                work.incoming,
                self.worker_id,
            )
        except Exception:
            # Only when even the error reply could not be stored (a dead database): the
            # update stays unprocessed and is tried again after STALE_UPDATE.
            log.exception("update %s failed and stays in the inbox", stored.update_id)
            return
        if rows:
            self.sender.submit([outbox.outgoing(r) for r in rows])
        if rows is not None and work.after is not None:
            self._spawn(_best_effort(work.after, "after the turn"))

    async def idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        """Wait until every queued update is handled and every message sent (tests, stop)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return await self.sender.drain(timeout)

    # ------------------------------------------------------------ outbox hooks

    async def _row_done(self, item: outbox.Outgoing) -> None:
        """The sender's on_done: returns once the row's deletion has committed.

        Group commit: the rows of messages accepted within DONE_LINGER of each other, or
        while a deletion is committing, go together in one transaction.
        """
        if item.row_id is None:
            return
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done_rows.append((item.row_id, recorded))
        if not self._deleting:
            self._deleting = True
            self._spawn(self._delete_done())
        await recorded

    async def _delete_done(self) -> None:
        batch: list[tuple[int, asyncio.Future[None]]] = []
        try:
            while self._done_rows:
                await asyncio.sleep(DONE_LINGER)  # let the messages in flight join
                batch, self._done_rows = self._done_rows, []
                try:
                    await asyncio.to_thread(
                        outbox.done_many, self.engine.db, [row_id for row_id, _ in batch]
                    )
                except Exception as exc:
                    for _, recorded in batch:
                        if not recorded.done():  # its sender task may have been cancelled
                            recorded.set_exception(exc)
                else:
                    for _, recorded in batch:
                        if not recorded.done():
                            recorded.set_result(None)
                batch = []
        finally:
            self._deleting = False
            for _, recorded in [*batch, *self._done_rows]:  # cancelled (stop): not recorded
                if not recorded.done():
                    recorded.cancel()
            self._done_rows = []

    async def _row_blocked(self, item: outbox.Outgoing) -> None:
        await asyncio.to_thread(outbox.drop_chat, self.engine.db, item.chat_id)
        if item.user_id is not None:
            await asyncio.to_thread(self.engine.mark_blocked, item.user_id)

    # ------------------------------------------------------------ reminders

    async def send_reminder(self, chat_id: int, reply: Reply) -> int | None:
        """dispatch.Sender: one reminder through the shared sender, at low priority."""
        [item] = [outbox.outgoing(r) for r in outbox.messages_of(chat_id, None, [reply])]
        try:
            return await self.sender.send_reminder(item)
        except Blocked as exc:
            raise dispatch.RecipientBlocked(str(exc)) from exc

    async def _reminder_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                stats = await dispatch.dispatch_due(
                    self.engine.db, self.engine.kb, self.send_reminder,
                    self.engine.clock(), self.worker_id,
                )  # fmt: skip
            except Exception:
                log.exception("reminder dispatch failed; next run in %.1f s", every)
                continue
            if stats.claimed:
                log.info("reminders: %s", stats)

    # ------------------------------------------------------------ upkeep

    async def recover(self) -> None:
        """At start: messages a dead predecessor left, then updates it had not handled."""
        taken = await asyncio.to_thread(
            outbox.take_over, self.engine.db, self.worker_id, self.engine.clock()
        )
        self.sender.submit(taken)
        left = await asyncio.to_thread(inbox.pending, self.engine.db)
        if left:
            log.info("inbox: %d update(s) left unprocessed; handling them first", len(left))
        self.feed([(s, None) for s in left])

    async def _maintain(self) -> None:
        db = self.engine.db
        await asyncio.to_thread(outbox.renew, db, self.worker_id, self.engine.clock())
        taken = await asyncio.to_thread(outbox.take_over, db, self.worker_id, self.engine.clock())
        self.sender.submit(taken)
        stale = await asyncio.to_thread(inbox.pending, db, self.engine.clock() - STALE_UPDATE)
        self.feed([(s, None) for s in stale if s.update_id not in self._known])

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(MAINTENANCE_SECONDS)
            try:
                await self._maintain()
            except Exception:
                log.exception("outbox/inbox upkeep failed; trying again later")

    async def _cleanup_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.engine.forget_guests)
                await asyncio.to_thread(inbox.purge, self.engine.db, self.engine.clock())
            except Exception:
                log.exception("cleanup failed; trying again later")
            await asyncio.sleep(GUEST_CLEANUP_SECONDS)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loops.append(asyncio.create_task(self.sender.run()))
        self._loops.append(asyncio.create_task(self._maintenance_loop()))
        self._loops.append(asyncio.create_task(self._cleanup_loop()))
        if self.reminders:
            every = self.engine.settings.reminder_poll_seconds
            self._loops.append(asyncio.create_task(self._reminder_loop(every)))

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Finish what is queued (up to `grace`), then stop every task."""
        if not await self.idle(grace):
            log.info("stopping with %d message(s) unsent; they stay in the outbox",
                     self.sender.pending())  # fmt: skip
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        self._turns.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _best_effort(step: Callable[[], Awaitable[None]], what: str) -> None:
    try:
        await step()
    except Exception as exc:
        log.debug("a best-effort Telegram call %s failed: %r", what, exc)


__all__ = ["CONCURRENCY", "Runtime", "Work"]
