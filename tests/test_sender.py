"""The one sender on virtual time: priorities, pace, order per chat, and each fault's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.outbox import Outgoing
from bot.sender import Blocked, GaveUp, Rejected, RetryLater, Sender, backoff


class VirtualTime:
    """clock() and sleep() for the sender: sleeping moves the clock, not the wall."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class FakeTransport:
    """Records (virtual time, chat, text); `faults[text]` is raised once per entry."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.sent: list[tuple[float, int, str]] = []
        self.faults: dict[str, list[Exception]] = {}
        self.in_flight: dict[int, int] = {}
        self.max_per_chat = 0
        self.latency = 0.0

    async def __call__(self, item: Outgoing, reminder: bool) -> int | None:
        self.in_flight[item.chat_id] = self.in_flight.get(item.chat_id, 0) + 1
        self.max_per_chat = max(self.max_per_chat, self.in_flight[item.chat_id])
        try:
            if self.latency:
                await self.time.sleep(self.latency)
            else:
                await asyncio.sleep(0)
            faults = self.faults.get(item.text)
            if faults:
                raise faults.pop(0)
            self.sent.append((self.time.now, item.chat_id, item.text))
            return len(self.sent)
        finally:
            self.in_flight[item.chat_id] -= 1


def _item(chat: int, text: str, row: int | None = None) -> Outgoing:
    return Outgoing(chat_id=chat, kind="text", text=text, row_id=row, user_id=chat)


async def _steps(until: Callable[[], bool], steps: int = 20000) -> None:
    """Let the event loop run (virtual time moves only when the sender sleeps)."""
    for _ in range(steps):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the sender did not get there")


async def _run(sender: Sender, until: Callable[[], bool]) -> None:
    task = asyncio.create_task(sender.run())
    try:
        await _steps(until)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def transport(vt: VirtualTime) -> FakeTransport:
    return FakeTransport(vt)


def _sender(vt: VirtualTime, transport: FakeTransport, **kw: object) -> Sender:
    return Sender(transport, clock=vt.clock, sleep=vt.sleep, **kw)  # type: ignore[arg-type]


async def test_a_reply_overtakes_a_burst_of_reminders(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    sender = _sender(vt, transport, rate=30.0, max_in_flight=4)
    outcomes: list[asyncio.Task[int | None]] = [
        asyncio.create_task(sender.send_reminder(_item(10_000 + i, f"reminder {i}")))
        for i in range(300)
    ]
    run = asyncio.create_task(sender.run())
    await _steps(lambda: len(transport.sent) >= 30)  # a second of the burst has gone out
    asked = vt.now
    sender.submit([_item(1, "answer", row=1)])
    await _steps(lambda: any(text == "answer" for _, _, text in transport.sent))
    [(sent_at, _, _)] = [s for s in transport.sent if s[2] == "answer"]
    assert sent_at - asked <= 2 / 30  # at most the slot in progress, then the reply
    run.cancel()
    await asyncio.gather(run, *outcomes, return_exceptions=True)


async def test_the_overall_pace_and_one_message_in_flight_per_chat(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    transport.latency = 0.3
    sender = _sender(vt, transport, rate=10.0, chat_burst=3)
    sender.submit(
        [_item(chat, f"{chat}-{n}", row=chat * 10 + n) for chat in (1, 2, 3) for n in range(4)]
    )
    await _run(sender, lambda: len(transport.sent) == 12)
    times = [t for t, _, _ in transport.sent]
    assert times[-1] - times[0] >= 11 / 10 - 1e-9  # 10 per second, evenly spaced
    assert transport.max_per_chat == 1
    for chat in (1, 2, 3):
        assert [text for _, c, text in transport.sent if c == chat] == [
            f"{chat}-{n}" for n in range(4)
        ]
        # the fourth of a chat waits for its bucket (3 at once, then one a second)
        chat_times = [t for t, c, _ in transport.sent if c == chat]
        assert chat_times[3] - chat_times[0] >= 1.0 - 1e-9


async def test_429_pauses_everything_for_retry_after_and_sends_once(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    transport.faults["a"] = [RetryLater("429", after=3.0)]
    sender = _sender(vt, transport, rate=100.0)
    sender.submit([_item(1, "a", row=1), _item(1, "b", row=2)])
    started = vt.now
    await _run(sender, lambda: len(transport.sent) == 2)
    assert [text for _, _, text in transport.sent] == ["a", "b"]
    assert transport.sent[0][0] - started >= 3.0
    assert sender.retried == 1


@pytest.mark.parametrize(
    "fault", ["500 Internal Server Error", "502 Bad Gateway", "timed out", "connection dropped"]
)
async def test_passing_faults_are_retried_with_backoff_in_order(
    vt: VirtualTime, transport: FakeTransport, fault: str
) -> None:
    transport.faults["summary"] = [RetryLater(fault), RetryLater(fault)]
    done: list[int | None] = []

    async def on_done(item: Outgoing) -> None:
        done.append(item.row_id)

    sender = _sender(vt, transport, on_done=on_done)
    sender.submit([_item(1, "summary", row=1), _item(1, "chart", row=2), _item(2, "other", row=3)])
    started = vt.now
    await _run(sender, lambda: len(done) == 3)
    mine = [text for _, c, text in transport.sent if c == 1]
    assert mine == ["summary", "chart"]  # exactly once each, still in order
    summary_at = next(t for t, _, text in transport.sent if text == "summary")
    assert summary_at - started >= backoff(1) + backoff(2)
    other_at = next(t for t, _, text in transport.sent if text == "other")
    assert other_at < summary_at  # another chat does not wait for this one's retries
    assert sorted(done) == [1, 2, 3]


async def test_403_drops_the_chat_and_reports_it_once(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    transport.faults["a"] = [Blocked("Forbidden: bot was blocked by the user")]
    blocked: list[int] = []
    done: list[int | None] = []

    async def on_blocked(item: Outgoing) -> None:
        blocked.append(item.chat_id)

    async def on_done(item: Outgoing) -> None:
        done.append(item.row_id)

    sender = _sender(vt, transport, on_blocked=on_blocked, on_done=on_done)
    sender.submit([_item(1, "a", row=1), _item(1, "b", row=2), _item(2, "c", row=3)])
    await _run(sender, lambda: bool(blocked) and done == [3])
    assert [text for _, _, text in transport.sent] == ["c"]
    assert blocked == [1]
    assert sender.pending() == 0


async def test_400_is_logged_and_dropped_and_the_next_goes(
    vt: VirtualTime, transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    transport.faults["bad"] = [Rejected("Bad Request: message is too long")]
    done: list[int | None] = []

    async def on_done(item: Outgoing) -> None:
        done.append(item.row_id)

    sender = _sender(vt, transport, on_done=on_done)
    sender.submit([_item(1, "bad", row=1), _item(1, "good", row=2)])
    await _run(sender, lambda: done == [1, 2])
    assert [text for _, _, text in transport.sent] == ["good"]
    assert "message is too long" in caplog.text
    assert "bad" not in [r.getMessage() for r in caplog.records]


async def test_a_reminder_gives_up_after_its_attempts_and_reports_403(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    transport.faults["r1"] = [RetryLater("500")] * 3
    transport.faults["r2"] = [Blocked("Forbidden")]
    sender = _sender(vt, transport, reminder_attempts=3)
    run = asyncio.create_task(sender.run())
    with pytest.raises(GaveUp):
        await sender.send_reminder(_item(1, "r1"))
    with pytest.raises(Blocked):
        await sender.send_reminder(_item(2, "r2"))
    assert await sender.send_reminder(_item(3, "r3")) == 1
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def test_a_taken_over_older_row_goes_before_newer_ones_and_none_twice(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    sender = _sender(vt, transport)
    sender.submit([_item(1, "new", row=9)])
    sender.submit([_item(1, "old", row=4), _item(1, "new", row=9)])  # the takeover scan
    await _run(sender, lambda: len(transport.sent) == 2)
    assert [text for _, _, text in transport.sent] == ["old", "new"]


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff(50) == 30.0


async def test_pending_counts_queued_messages_through_retries_and_a_block(
    vt: VirtualTime, transport: FakeTransport
) -> None:
    transport.faults["retried"] = [RetryLater("502")]
    transport.faults["blocked"] = [Blocked("Forbidden")]
    sender = _sender(vt, transport, rate=1000.0)
    sender.submit([_item(1, "retried", row=1), _item(1, "a", row=2)])
    sender.submit([_item(2, "blocked", row=3), _item(2, "dropped", row=4)])
    sender.submit([_item(3, "b", row=5)])
    assert sender.pending() == 5
    await _run(sender, lambda: len(transport.sent) == 3)
    assert sorted(text for _, _, text in transport.sent) == ["a", "b", "retried"]
    assert sender.pending() == 0  # "dropped" went with its blocked chat
    assert await sender.drain(0.1)
    # A chat long idle with a full bucket is forgotten; a new message to it still goes.
    vt.now += 60
    sender.submit([_item(1, "later", row=6)])
    await _run(sender, lambda: len(transport.sent) == 4)
    assert list(sender._chats) == [1]


async def test_on_real_time_the_paced_waits_end_and_a_new_reply_wakes_the_sender() -> None:
    """The default clock and sleep (a timer on the loop, not the tests' virtual time):
    paced sends go out, a chat's fourth message waits for its bucket, and a reply
    submitted while the sender waits is sent."""
    sent: list[str] = []

    async def transport(item: Outgoing, reminder: bool) -> int | None:
        sent.append(item.text)
        return len(sent)

    sender = Sender(transport, rate=200.0, chat_interval=0.05, chat_burst=3)
    task = asyncio.create_task(sender.run())
    try:
        sender.submit([_item(1, f"m{i}", row=i) for i in range(5)])
        assert await sender.drain(10.0)
        assert sent == ["m0", "m1", "m2", "m3", "m4"]
        await asyncio.sleep(0.01)  # the sender waits for work now
        sender.submit([_item(2, "later", row=9)])
        assert await sender.drain(10.0)
        assert sent[-1] == "later"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
