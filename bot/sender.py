"""One sender for every message the bot sends: replies first, reminders in what is left.

Telegram allows about 30 messages/s in total and about one per second per chat; a
429 pauses the bot. So every message goes through one queue per process:

* a global pace of `rate` messages/s, evenly spaced (no bursts, which draw 429s);
* per chat, one message in flight at a time, in order, and a bucket of `chat_burst`
  messages refilled one per `chat_interval` seconds (a turn's 2-3 replies go at once);
* a waiting reply always goes before a waiting reminder, so a burst of reminders
  delays a reply by at most one pace slot plus the messages already in flight;
* 429 pauses everything for its retry_after; 5xx, timeouts and dropped connections
  are retried with backoff (a reply until it goes through, a reminder
  `reminder_attempts` times, then bot/dispatch.py retries it later); 403 drops the
  chat's queue and reports the user (`on_blocked`); a 400 is logged with Telegram's
  reason and dropped.

The transport (bot/telegram_app.py) turns Bot API errors into the exceptions below;
`clock` and `sleep` are injectable so the unit tests run on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.outbox import Outgoing

log = logging.getLogger(__name__)

Transport = Callable[[Outgoing, bool], Awaitable[int | None]]  # (message, is_reminder)
Hook = Callable[[Outgoing], Awaitable[None]]

MAX_BACKOFF = 30.0
FIRST_BACKOFF = 0.5
SWEEP_SECONDS = 1.0


class SendError(Exception):
    """Base of the outcomes a transport reports instead of a message id."""


class RetryLater(SendError):
    """429 (with `after` seconds) or a passing failure: 5xx, timeout, dropped connection."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Blocked(SendError):
    """403: the user blocked the bot (or the chat is gone)."""


class Rejected(SendError):
    """400: Telegram refuses this message for good; its reason is logged."""


class GaveUp(SendError):
    """A reminder that kept failing for passing reasons: its dispatcher retries later."""


@dataclass
class _Job:
    item: Outgoing
    reminder: bool
    future: asyncio.Future[int | None] | None = None
    attempts: int = 0


@dataclass
class _Chat:
    replies: deque[_Job] = field(default_factory=deque)
    busy: bool = False
    allowance: float = 0.0
    refilled: float = 0.0
    not_before: float = 0.0


def backoff(attempts: int) -> float:
    """0.5, 1, 2, 4, ... seconds, at most MAX_BACKOFF."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** max(0, attempts - 1)))


class Sender:
    """The process's one sending queue; `run()` is its task."""

    def __init__(
        self,
        transport: Transport,
        *,
        rate: float = 29.0,
        chat_interval: float = 1.0,
        chat_burst: int = 3,
        max_in_flight: int = 16,
        reminder_attempts: int = 3,
        on_done: Hook | None = None,
        on_blocked: Hook | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.transport = transport
        self.interval = 1.0 / rate
        self.chat_interval = chat_interval
        self.chat_burst = chat_burst
        self.max_in_flight = max_in_flight
        self.reminder_attempts = reminder_attempts
        self.on_done = on_done
        self.on_blocked = on_blocked
        self.clock = clock
        self.sleep = sleep
        self._chats: dict[int, _Chat] = {}
        # The chats with queued replies (a pick looks at these only) and how many replies
        # are queued in all: a pick and `pending()` cost O(waiting chats), not O(chats).
        self._waiting: dict[int, _Chat] = {}
        self._replies = 0
        self._swept = 0.0
        self._reminders: deque[_Job] = deque()
        self._queued_rows: set[int] = set()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.sent = 0
        self.retried = 0

    # ------------------------------------------------------------------ input

    def submit(self, items: list[Outgoing]) -> None:
        """Queue replies (outbox rows) behind what their chat already has, in row order."""
        for item in items:
            if item.row_id is not None:
                if item.row_id in self._queued_rows:
                    continue  # a taken-over row this process already holds
                self._queued_rows.add(item.row_id)
            chat = self._chat(item.chat_id)
            queue = chat.replies
            self._waiting[item.chat_id] = chat
            self._replies += 1
            job = _Job(item, reminder=False)
            if item.row_id is not None and queue and (queue[-1].item.row_id or 0) > item.row_id:
                # A row taken over from a dead worker is older than what is queued.
                ordered = sorted([*queue, job], key=lambda j: j.item.row_id or 0)
                queue.clear()
                queue.extend(ordered)
            else:
                queue.append(job)
        self._changed()

    async def send_reminder(self, item: Outgoing) -> int | None:
        """Queue one reminder at low priority and wait for its outcome (message id).

        Raises Blocked (403 / chat gone), Rejected (400) or GaveUp.
        """
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._reminders.append(_Job(item, reminder=True, future=future))
        self._changed()
        return await future

    def pending(self) -> int:
        return self._replies + len(self._reminders)

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded shutdown wait
        """Wait until nothing is queued or in flight (True), or `timeout` passes (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Send until cancelled."""
        try:
            while True:
                now = self.clock()
                wait = max(self._next_slot, self._paused_until) - now
                if len(self._in_flight) >= self.max_in_flight:
                    await self._wait(None)
                    continue
                if wait > 0:
                    await self._wait(wait)
                    continue
                job, later = self._pick(now)
                if job is None:
                    if not self._in_flight and not self.pending():
                        self._idle.set()
                    await self._wait(later)
                    continue
                self._next_slot = now + self.interval
                task = asyncio.create_task(self._send(job))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
        finally:
            for task in list(self._in_flight):
                task.cancel()
            for job in self._reminders:  # their dispatcher releases them (lease)
                if job.future is not None:
                    job.future.cancel()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._changed()

    def _changed(self) -> None:
        if self.pending() or self._in_flight:
            self._idle.clear()
        else:
            self._idle.set()
        self._wake.set()

    async def _wait(self, seconds: float | None) -> None:
        self._wake.clear()
        if seconds is None:
            await self._wake.wait()
            return
        if self.sleep is asyncio.sleep:
            # Real time: one timer that sets the wake-up event, instead of a task, a
            # sleep and asyncio.wait (the loop waits about once per message sent).
            timer = asyncio.get_running_loop().call_later(seconds, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            return
        waiter = asyncio.create_task(self._wake.wait())
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(allowance=float(self.chat_burst))
            chat.refilled = self.clock()
        return chat

    def _allowance(self, chat: _Chat, now: float) -> float:
        chat.allowance = min(
            float(self.chat_burst), chat.allowance + (now - chat.refilled) / self.chat_interval
        )
        chat.refilled = now
        return chat.allowance

    def _ready_in(self, chat: _Chat, now: float) -> float:
        """0 when the chat may get a message now, else seconds until it may (inf: busy)."""
        if chat.busy:
            return float("inf")
        wait = chat.not_before - now
        allowance = self._allowance(chat, now)
        if allowance < 1.0:
            wait = max(wait, (1.0 - allowance) * self.chat_interval)
        return max(0.0, wait)

    def _pick(self, now: float) -> tuple[_Job | None, float | None]:
        """The next job to send (a reply before any reminder), or how long to wait."""
        soonest: float | None = None
        if now - self._swept >= SWEEP_SECONDS:
            self._sweep(now)
        for chat_id, chat in list(self._waiting.items()):
            if not chat.replies:
                del self._waiting[chat_id]
                continue
            wait = self._ready_in(chat, now)
            if wait == 0:
                self._replies -= 1
                return self._take(chat, chat.replies.popleft(), now), None
            if wait != float("inf"):
                soonest = wait if soonest is None else min(soonest, wait)
        for job in list(self._reminders):
            chat = self._chat(job.item.chat_id)
            if chat.replies:
                continue  # that chat's replies go first
            wait = self._ready_in(chat, now)
            if wait == 0:
                self._reminders.remove(job)
                return self._take(chat, job, now), None
            if wait != float("inf"):
                soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    def _sweep(self, now: float) -> None:
        """Forget the chats that are idle with a full bucket (at most once a SWEEP_SECONDS)."""
        self._swept = now
        for chat_id, chat in list(self._chats.items()):
            if not chat.replies and not chat.busy and self._allowance(chat, now) >= self.chat_burst:
                del self._chats[chat_id]
                self._waiting.pop(chat_id, None)

    def _take(self, chat: _Chat, job: _Job, now: float) -> _Job:
        chat.busy = True
        chat.allowance -= 1.0
        return job

    async def _send(self, job: _Job) -> None:
        chat = self._chat(job.item.chat_id)
        try:
            message_id = await self.transport(job.item, job.reminder)
        except RetryLater as exc:
            self._retry(job, chat, exc)
            return
        except Blocked as exc:
            await self._blocked(job, exc)
            return
        except Rejected as exc:
            log.warning("Telegram refused a message to chat %s: %s", job.item.chat_id, exc)
            self._settle(job, exc=exc)
            await self._done(job)
            return
        except Exception as exc:  # a bug or an unknown error: retried like a passing one
            log.warning("sending to chat %s failed: %r", job.item.chat_id, exc)
            self._retry(job, chat, RetryLater(repr(exc)))
            return
        finally:
            chat.busy = False
        self.sent += 1
        self._settle(job, result=message_id)
        await self._done(job)

    def _retry(self, job: _Job, chat: _Chat, exc: RetryLater) -> None:
        now = self.clock()
        self.retried += 1
        if exc.after is not None:  # 429: everyone waits, the attempt does not count
            self._paused_until = max(self._paused_until, now + exc.after)
            log.info("Telegram asked to wait %.1f s (429)", exc.after)
        else:
            job.attempts += 1
            chat.not_before = now + backoff(job.attempts)
            log.info(
                "send to chat %s failed (%s); attempt %d, retrying",
                job.item.chat_id, exc, job.attempts,
            )  # fmt: skip
        if job.reminder:
            if job.attempts >= self.reminder_attempts:
                self._settle(job, exc=GaveUp(str(exc)))
                return
            self._reminders.appendleft(job)
        else:
            chat.replies.appendleft(job)
            self._waiting[job.item.chat_id] = chat
            self._replies += 1
        self._changed()

    async def _blocked(self, job: _Job, exc: Blocked) -> None:
        log.info("chat %s is unreachable (%s); its queue is dropped", job.item.chat_id, exc)
        self._settle(job, exc=exc)
        if job.reminder:
            return
        chat = self._chats.get(job.item.chat_id)
        if chat is not None:
            for dropped in chat.replies:
                if dropped.item.row_id is not None:
                    self._queued_rows.discard(dropped.item.row_id)
            self._replies -= len(chat.replies)
            chat.replies.clear()
        self._forget(job)
        if self.on_blocked is not None:
            await self._hook(self.on_blocked, job.item)

    async def _done(self, job: _Job) -> None:
        self._forget(job)
        if not job.reminder and self.on_done is not None:
            await self._hook(self.on_done, job.item)

    def _forget(self, job: _Job) -> None:
        if job.item.row_id is not None:
            self._queued_rows.discard(job.item.row_id)

    @staticmethod
    async def _hook(hook: Hook, item: Outgoing) -> None:
        try:
            await hook(item)
        except Exception:
            # The row stays in the outbox: its next owner sends it again (the window).
            log.exception("could not record the outcome of a message to chat %s", item.chat_id)

    @staticmethod
    def _settle(job: _Job, result: int | None = None, exc: BaseException | None = None) -> None:
        if job.future is None or job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)


__all__ = ["Blocked", "GaveUp", "Rejected", "RetryLater", "SendError", "Sender", "backoff"]
