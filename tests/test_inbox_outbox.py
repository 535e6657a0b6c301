"""Inbox and outbox rows: stored once, processed once, taken over from a dead worker,
and gone with the user on /slet."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

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
