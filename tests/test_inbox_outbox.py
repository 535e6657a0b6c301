"""Inbox and outbox rows: stored once, processed once, taken over from a dead worker,
and gone with the user on /slet."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import inbox, outbox
from bot.replies import Button, Document, Reply
from bot.storage import Database, InboxUpdate, OutboxMessage, User, utcnow
from bot.userdata import delete_user_data, export_user_data


def _message(update_id: int, user: int, text: str) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {"message_id": 1, "date": 0, "chat": {"id": user, "type": "private"},
                    "from": {"id": user, "is_bot": False, "first_name": "A"}, "text": text},
    }  # fmt: skip


def test_a_batch_is_stored_once_and_a_redelivery_is_not_new(database: Database) -> None:
    first = inbox.store(database, [_message(3, 7, "hej"), _message(2, 8, "ondt")])
    assert [(s.update_id, s.user_id) for s in first] == [(2, 8), (3, 7)]
    again = inbox.store(database, [_message(3, 7, "hej"), _message(4, 7, "igen")])
    assert [s.update_id for s in again] == [4]
    assert [s.update_id for s in inbox.pending(database)] == [2, 3, 4]
    assert inbox.pending(database)[0].data["message"]["text"] == "ondt"


def test_accept_raw_stores_a_webhook_body_and_refuses_what_is_no_update(
    database: Database,
) -> None:
    body = json.dumps(_message(11, 7, "hej")).encode()
    stored = inbox.accept_raw(database, body)
    assert stored is not None and stored.update_id == 11 and stored.user_id == 7
    assert inbox.accept_raw(database, body) is None  # Telegram re-posted it: already here
    for bad in (b"not json", b"[1, 2]", b'{"update_id": "x"}', b"\xff\xfe"):
        with pytest.raises(inbox.BadUpdate):
            inbox.accept_raw(database, bad)


def test_claim_marks_processed_clears_the_payload_and_is_once(database: Database) -> None:
    inbox.store(database, [_message(5, 7, "min smerte er 6")])
    with database.session() as s:
        assert not inbox.is_processed(s, 5)
        assert inbox.claim(s, 5, utcnow())
        s.commit()
    with database.session() as s:
        assert inbox.is_processed(s, 5)
        assert not inbox.claim(s, 5, utcnow())  # a peer's second try
        row = s.get(InboxUpdate, 5)
        assert row is not None and row.payload is None
    assert inbox.pending(database) == []
    assert inbox.purge(database, utcnow() + inbox.KEEP + timedelta(seconds=1)) == 1


def test_erasure_deletes_the_users_inbox_and_outbox_rows_and_export_skips_them(
    database: Database,
) -> None:
    inbox.store(database, [_message(1, 7, "mit knæ"), _message(2, 8, "andet")])
    with database.session() as s:
        s.add(User(id=7, chat_id=7))
        outbox.add(s, 7, 7, [Reply("svar")], "w", utcnow())
        outbox.add(s, 8, 8, [Reply("andet svar")], "w", utcnow())
        s.commit()
    with database.session() as s:
        exported = export_user_data(s, 7)
        assert "inbox_updates" not in exported and "outbox_messages" not in exported
        counts = delete_user_data(s, 7)
        s.commit()
    assert "inbox_updates" not in counts and "outbox_messages" not in counts  # not reported
    with database.session() as s:
        assert [r.update_id for r in s.scalars(select(InboxUpdate))] == [2]  # but deleted
        assert [r.chat_id for r in s.scalars(select(OutboxMessage))] == [8]


def test_replies_become_rows_in_order_with_long_text_split() -> None:
    long = ("Ord " * 1500).strip()
    chart = Reply("Din uge", image=b"\x89PNG...")
    export = Reply("x" * 2000, document=Document("data.json", b"{}"))
    button = Button("Ja", "ob:c:1")
    rows = outbox.messages_of(7, 7, [Reply(long, ((button,),)), chart, export])
    kinds = [(r.kind, len(r.text) <= outbox.TEXT_LIMIT) for r in rows]
    assert kinds == [
        ("text", True),
        ("text", True),
        ("photo", True),
        ("document", True),
        ("text", True),
    ]
    assert rows[0].buttons is None and rows[1].buttons == [[["Ja", "ob:c:1"]]]
    assert rows[3].text == ""  # a caption over 1024 characters goes as a message after it
    assert rows[4].text == "x" * 2000


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_rows_of_a_dead_process_on_this_host_are_taken_over_at_once(database: Database) -> None:
    me = outbox.worker_name()
    host = me.rpartition(":")[0]
    dead = f"{host}:{_dead_pid()}"
    alive = f"{host}:1"  # init never dies
    far = "elsewhere:42"
    now = utcnow()
    with database.session() as s:
        for owner, text in ((dead, "a"), (alive, "b"), (far, "c"), (dead, "d")):
            outbox.add(s, 7, 7, [Reply(text)], owner, now)
        s.commit()
    taken = outbox.take_over(database, me, now)
    assert [t.text for t in taken] == ["a", "d"]
    assert outbox.take_over(database, me, now) == []  # now leased to me
    # Once a lease has run out, any worker takes the rows, in id order.
    later = now + outbox.LEASE + timedelta(seconds=1)
    assert [t.text for t in outbox.take_over(database, "other:1", later)] == ["a", "b", "c", "d"]


def test_a_live_worker_renews_its_lease_so_nobody_takes_its_rows(database: Database) -> None:
    now = utcnow()
    with database.session() as s:
        [row] = outbox.add(s, 7, 7, [Reply("a")], "w1", now)
        s.commit()
    almost = now + outbox.LEASE - timedelta(seconds=5)
    assert outbox.renew(database, "w1", almost) == 1
    assert outbox.take_over(database, "w2", now + outbox.LEASE + timedelta(seconds=1)) == []
    outbox.done(database, row.id)
    assert outbox.take_over(database, "w2", now + 10 * outbox.LEASE) == []


def test_a_blocked_chat_loses_all_its_rows(database: Database) -> None:
    with database.session() as s:
        outbox.add(s, 7, 7, [Reply("a"), Reply("b")], "w", utcnow())
        outbox.add(s, 8, 8, [Reply("c")], "w", utcnow())
        s.commit()
    assert outbox.drop_chat(database, 7) == 2
    with database.session() as s:
        assert [r.text for r in s.scalars(select(OutboxMessage))] == ["c"]


def test_done_many_deletes_exactly_the_given_rows(database: Database) -> None:
    with database.session() as s:
        rows = outbox.add(s, 7, 7, [Reply("a"), Reply("b"), Reply("c")], "w", utcnow())
        s.commit()
    assert [r.id for r in rows] == sorted(r.id for r in rows)  # ids in the replies' order
    outbox.done_many(database, [rows[0].id, rows[2].id])
    outbox.done_many(database, [])
    with database.session() as s:
        assert [r.text for r in s.scalars(select(OutboxMessage))] == ["b"]


def test_done_many_survives_a_connection_that_broke_in_the_pool(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled PostgreSQL connection used a moment ago is not pinged (bot/storage.py):
    when the server dropped it meanwhile, the deletion is tried once more on a new one."""
    if database.dialect != "postgresql":
        pytest.skip("server-side connections: PostgreSQL")
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from bot import storage

    monkeypatch.setattr(storage, "monotonic", lambda: 0.0)  # no connection counts as idle
    with database.session() as s:
        rows = outbox.add(s, 7, 7, [Reply("a"), Reply("b")], "w", utcnow())
        s.commit()
    killer = create_engine(database.url, poolclass=NullPool)
    with killer.connect() as c:
        killed = c.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    killer.dispose()
    assert killed >= 1
    outbox.done_many(database, [r.id for r in rows])
    with database.session() as s:
        assert list(s.scalars(select(OutboxMessage))) == []


async def test_the_runtime_group_commits_the_deletions_of_sent_rows(
    database: Database, warm_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 rows accepted at about the same time: every row is deleted once it is sent, in
    # fewer transactions than rows (those accepted while one commits go in the next).
    from telegram import Bot

    from bot import runtime as runtime_module
    from bot.runtime import Runtime, Work
    from tests.engine_helpers import Clock, make_engine

    engine = make_engine(database, warm_cache, Clock())
    with database.session() as s:
        now = utcnow()
        rows = [r for c in range(1, 41) for r in outbox.add(s, c, c, [Reply("x")], "w", now)]
        s.commit()
    sent: list[int] = []

    async def transport(item: outbox.Outgoing, reminder: bool) -> int:
        sent.append(item.chat_id)
        return len(sent)

    batches: list[int] = []
    real = outbox.done_many

    def counting(db: Database, ids: list[int]) -> None:
        batches.append(len(ids))
        if len(batches) == 1:  # the first deletion commits slowly: the sender fills up
            deadline = time.monotonic() + 10
            while len(sent) < runtime.sender.max_in_flight and time.monotonic() < deadline:
                time.sleep(0.01)
        real(db, ids)

    monkeypatch.setattr(outbox, "done_many", counting)
    monkeypatch.setattr(runtime_module, "DONE_LINGER", 0.0)  # only what commits meanwhile
    runtime = Runtime(engine, Bot("123:ABC"), lambda s, u: Work(None), transport, rate=1000.0,
                      worker_id="w", reminders=False)  # fmt: skip
    runtime.start()
    try:
        runtime.sender.submit([outbox.outgoing(r) for r in rows])
        assert await runtime.idle(30.0)
    finally:
        await runtime.stop(grace=1.0)
    assert sorted(sent) == list(range(1, 41))
    # The messages accepted while the first deletion committed went in one transaction:
    # the senders wait for their rows' deletion, so the first two hold max_in_flight.
    # (The first holds 1, or 2 when the pace's next slot came before the deletion task
    # ran: scheduling, not behaviour.)
    assert sum(batches) == 40 and batches[0] <= 2
    assert batches[0] + batches[1] == runtime.sender.max_in_flight
    with database.session() as s:
        assert list(s.scalars(select(OutboxMessage))) == []


async def test_a_cancelled_waiter_does_not_stop_the_deletions_of_the_others(
    database: Database, warm_cache: Path
) -> None:
    import asyncio

    from telegram import Bot

    from bot.runtime import Runtime, Work
    from tests.engine_helpers import Clock, make_engine

    engine = make_engine(database, warm_cache, Clock())
    with database.session() as s:
        first, second = outbox.add(s, 7, 7, [Reply("a"), Reply("b")], "w", utcnow())
        s.commit()

    async def transport(item: outbox.Outgoing, reminder: bool) -> int:
        return 1

    runtime = Runtime(engine, Bot("123:ABC"), lambda s, u: Work(None), transport, rate=10.0,
                      worker_id="w", reminders=False)  # fmt: skip
    cancelled = asyncio.create_task(runtime._row_done(outbox.outgoing(first)))
    kept = asyncio.create_task(runtime._row_done(outbox.outgoing(second)))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.wait_for(kept, 10)
    await asyncio.gather(cancelled, return_exceptions=True)
    await asyncio.sleep(0.05)
    with database.session() as s:
        assert list(s.scalars(select(OutboxMessage))) == []  # both deleted all the same
    runtime._turns.shutdown()
