"""The dialogue engine end to end without Telegram, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from bot import inbox
from bot.dialogs.checkin import button_key
from bot.dialogs.onboarding import done_text
from bot.engine import Engine
from bot.replies import Incoming
from bot.storage import (
    Base,
    Checkin,
    Database,
    InboxUpdate,
    OutboxMessage,
    Question,
    Reminder,
    User,
    utcnow,
)
from tests.engine_helpers import Chat, Clock, make_engine


@pytest.fixture
def engine(database: Database, tmp_path: Path, clock: Clock) -> Engine:
    return make_engine(database, tmp_path / "cache", clock, admin_ids="42")


def _user(db: Database, user_id: int = 1001) -> User | None:
    with db.session() as s:
        return s.get(User, user_id)


def _checkins(db: Database, user_id: int = 1001) -> list[Checkin]:
    with db.session() as s:
        return list(
            s.scalars(select(Checkin).where(Checkin.user_id == user_id).order_by(Checkin.id))
        )


def _count_rows(db: Database, user_id: int) -> int:
    total = 0
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            column = table.c.get("user_id") if table.name != "users" else table.c.id
            if column is not None:
                total += (
                    s.scalar(select(func.count()).select_from(table).where(column == user_id)) or 0
                )
    return total


# ---------------------------------------------------------------- onboarding


def test_onboarding_with_buttons_stores_consent_guide_and_phase(
    chat: Chat, database: Database
) -> None:
    replies = chat.say("/start")
    assert "Mette" in replies[0].text
    assert "diagnose" in replies[0].text  # says what it is not
    assert chat.buttons() == ["ob:c:1", "ob:c:0"]
    chat.press("ob:c:1")
    assert {"ob:g:proximal", "ob:g:distal", "ob:g:hip"} <= set(chat.buttons())
    chat.press("ob:g:distal")
    assert "ob:p:3" in chat.buttons()
    chat.press("ob:p:3")
    user = _user(database)
    assert user is not None
    assert (user.consent, user.guide, user.phase, user.dialog_state) == (True, "distal", 3, None)
    assert user.consent_at is not None and user.consent_at.tzinfo is not None


def test_onboarding_by_typing(chat: Chat, database: Database) -> None:
    chat.say("/start")
    chat.say("ja")
    chat.say("det sidder i balLen")
    chat.say("fase 2")
    user = _user(database)
    assert user is not None
    assert (user.consent, user.guide, user.phase) == (True, "proximal", 2)


def test_onboarding_nonsense_reasks_with_hint(chat: Chat, database: Database) -> None:
    chat.say("/start")
    replies = chat.say("blåbær")
    assert chat.buttons() == ["ob:c:1", "ob:c:0"]
    assert len(replies) == 2
    user = _user(database)
    assert user is not None and not user.consent


def test_without_consent_nothing_personal_is_stored(chat: Chat, database: Database) -> None:
    chat.say("/start")
    chat.tap("Nej tak")
    chat.tap("Bag knæet (distal)")
    user = _user(database)
    assert user is not None and (user.consent, user.guide) == (False, None)
    chat.say("kan man løbe med det")
    # The guide chosen in memory still steers answers to the distal guide.
    assert "distal" in chat.text().lower() or "knæ" in chat.text().lower()
    with database.session() as s:
        questions = list(s.scalars(select(Question)))
    assert questions and all(q.user_id is None for q in questions)
    chat.say("/checkin")
    assert chat.buttons() == ["ob:c:1", "ob:c:0"]
    assert _checkins(database) == []


# ---------------------------------------------------------------- answers


def test_answer_names_its_source_and_offers_feedback(chat: Chat, database: Database) -> None:
    chat.onboard("proximal")
    replies = chat.say("hvor lang tid tager det at komme sig over hasetendinopati")
    assert "Kilde" in replies[-1].text
    data = chat.buttons()
    fb = [d for d in data if d.startswith("fb:1:")]
    assert fb, data
    chat.press(fb[0])
    with database.session() as s:
        q = s.scalars(select(Question)).one()
    assert q.user_id == 1001 and q.helpful is True and q.feedback_at is not None


def test_a_guests_feedback_counts_on_their_anonymous_question(
    chat: Chat, database: Database
) -> None:
    """The row is inserted with its id at once (the feedback buttons carry it) and the
    guest's own anonymous question is known in memory."""
    chat.say("/start")
    chat.tap("Nej tak")
    chat.tap("Bag knæet (distal)")
    chat.say("kan man løbe med det")
    with database.session() as s:
        [q] = list(s.scalars(select(Question)))
    assert q.user_id is None and q.created_at is not None
    fb = [d for d in chat.buttons() if d.startswith("fb:1:")]
    assert fb == [f"fb:1:{q.id}"]
    chat.press(fb[0])
    with database.session() as s:
        q = s.scalars(select(Question)).one()
    assert q.helpful is True and q.feedback_at is not None


def test_feedback_on_another_users_question_is_refused(engine: Engine, database: Database) -> None:
    alice, bob = Chat(engine, 1), Chat(engine, 2)
    alice.onboard()
    alice.say("hjælper massage på hasetendinopati")
    fb = next(d for d in alice.buttons() if d.startswith("fb:0:"))
    bob.onboard()
    bob.press(fb)
    with database.session() as s:
        q = s.scalars(select(Question).where(Question.user_id == 1)).one()
    assert q.helpful is None


def test_red_flag_message_advises_a_doctor(chat: Chat) -> None:
    chat.onboard()
    chat.say("smerten under ballen vækker mig hver nat")
    assert "læge" in chat.text()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "😀😀😀",
        "\x00\x07\x1b[31m",
        "x" * 5000,
        "Привет как дела",
        "'; DROP TABLE users; --",
    ],
)
def test_bad_input_gets_a_friendly_reply(chat: Chat, text: str) -> None:
    replies = chat.say(text)
    assert replies and all(r.text.strip() for r in replies)
    assert all(len(r.text) <= 4096 for r in replies)


def test_unsupported_media_gets_a_friendly_reply(chat: Chat, engine: Engine) -> None:
    replies = chat.send(Incoming(1001, 1001, "unsupported", media="sticker"))
    assert replies[0].text == engine.kb.text("unsupported_sticker")
    replies = chat.send(Incoming(1001, 1001, "unsupported", media="hologram"))
    assert replies[0].text == engine.kb.text("unsupported_message")


def test_unknown_command(chat: Chat, engine: Engine) -> None:
    assert chat.say("/foobar")[0].text == engine.kb.text("unknown_command")


# ---------------------------------------------------------------- check-in


def _full_checkin(chat: Chat, pain: int = 2, morning: str = "same", activity: str = "run") -> None:
    kb = chat.engine.kb
    chat.say("/checkin")
    chat.tap(str(pain))
    chat.tap(kb.text(f"checkin_btn_morning_{morning}"))
    chat.tap(kb.text(f"checkin_btn_activity_{activity}"))
    chat.tap(kb.text("checkin_btn_note_skip"))


def _statements(database: Database, act: Callable[[], object]) -> list[str]:
    """The SQL statements `act` sends, whitespace folded."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(" ".join(str(args[2]).split()))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        act()
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    return seen


def test_a_turn_loads_the_user_and_the_open_checkin_with_its_touch_update(
    chat: Chat, database: Database
) -> None:
    """The user's touch UPDATE returns the row and the open check-in's id: a question
    without a check-in open reads neither table apart; with one open it is still found."""
    chat.onboard("proximal", phase=1)
    seen = _statements(database, lambda: chat.say("hvornår kan jeg genoptage løb"))
    assert any(s.startswith("UPDATE users") for s in seen)
    reads = [s for s in seen if s.startswith("SELECT") and ("FROM users" in s or "checkins" in s)]
    assert reads == []
    chat.say("/checkin")
    seen = _statements(database, lambda: chat.say("4"))  # the pain step, typed
    [row] = _checkins(database)
    assert (row.status, row.step, row.pain) == ("open", "morning", 4)
    assert len([s for s in seen if s.startswith("SELECT") and "FROM checkins" in s]) == 1


def test_checkin_with_buttons_stores_every_answer(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.onboard("proximal", phase=1)
    chat.say("/checkin")
    [row] = _checkins(database)  # the buttons carry the check-in's id
    assert (
        f"ci:p:0:{button_key(row)}" in chat.buttons()
        and f"ci:p:10:{button_key(row)}" in chat.buttons()
    )
    chat.tap("4")
    [row] = _checkins(database)
    assert (row.status, row.step, row.pain) == ("open", "morning", 4)  # committed before the reply
    chat.tap("Bedre")
    chat.tap("🏋️ Styrketræning")
    chat.say("lidt øm efter broen")
    [row] = _checkins(database)
    assert (row.status, row.pain, row.morning, row.activity, row.note, row.zone) == (
        "done",
        4,
        "better",
        "strength",
        "lidt øm efter broen",
        "yellow",
    )
    yellow = engine.kb.traffic_light.zone("yellow")
    assert yellow.symbol in chat.text()


def test_checkin_by_typing_and_morning_worse_is_red(chat: Chat, database: Database) -> None:
    chat.onboard()
    chat.say("tjek ind")
    chat.say("to")
    chat.say("vaerre")
    chat.say("løb")
    chat.say("spring over")
    [row] = _checkins(database)
    assert (row.pain, row.morning, row.activity, row.zone, row.status) == (
        2,
        "worse",
        "run",
        "red",
        "done",
    )


def test_nonsense_at_a_step_reasks_and_keeps_state(chat: Chat, database: Database) -> None:
    chat.onboard()
    chat.say("/checkin")
    replies = chat.say("banan")
    [row] = _checkins(database)
    assert f"ci:p:5:{button_key(row)}" in chat.buttons() and replies
    assert (row.step, row.pain) == ("pain", None)


def test_cancel_midway_removes_the_draft(chat: Chat, database: Database) -> None:
    chat.onboard()
    chat.say("/checkin")
    chat.tap("3")
    chat.say("annuller")
    assert _checkins(database) == []
    chat.press("ci:m:same")  # stale button after cancelling
    assert _checkins(database) == []


def test_state_survives_a_new_engine(database: Database, tmp_path: Path, clock: Clock) -> None:
    first = Chat(make_engine(database, tmp_path / "cache", clock))
    first.onboard()
    first.say("/checkin")
    first.tap("6")
    # A crash: a brand new engine (and database handle) continues where the user was.
    second = Chat(make_engine(Database(str(database.url)), tmp_path / "cache", clock))
    [row] = _checkins(database)
    second.press(f"ci:m:same:{button_key(row)}")
    second.press(f"ci:a:run:{button_key(row)}")
    second.press(f"ci:n:skip:{button_key(row)}")
    [row] = _checkins(database)
    assert (row.status, row.pain, row.morning, row.zone) == ("done", 6, "same", "red")


def test_second_checkin_same_day_replaces_after_asking(chat: Chat, database: Database) -> None:
    chat.onboard()
    _full_checkin(chat, pain=1)
    chat.say("/checkin")
    [done] = _checkins(database)
    assert chat.buttons() == [f"cr:1:{done.id}", f"cr:0:{done.id}"]
    chat.tap("Nej, behold")
    assert [c.status for c in _checkins(database)] == ["done"]
    chat.say("/checkin")
    chat.tap("Ja, erstat")
    chat.tap("7")
    chat.tap("Som normalt")
    chat.tap("🏃 Løb")
    chat.tap("Spring over")
    rows = _checkins(database)
    assert [(c.status, c.pain) for c in rows] == [("replaced", 1), ("done", 7)]


def test_open_checkin_expires(chat: Chat, database: Database, clock: Clock, engine: Engine) -> None:
    chat.onboard()
    chat.say("/checkin")
    chat.tap("2")
    clock.advance(minutes=engine.settings.checkin_timeout_minutes + 1)
    replies = chat.say("hej")
    assert replies[0].text == engine.kb.text("flow_checkin_expired")
    assert [c.status for c in _checkins(database)] == ["expired"]


def test_trend_after_several_days(chat: Chat, clock: Clock, engine: Engine) -> None:
    chat.onboard("distal", phase=1)
    for _ in range(3):
        _full_checkin(chat, pain=1)
        clock.advance(days=1)
    green = engine.kb.traffic_light.zone("green").symbol
    assert chat.text().count(green) >= 3


def test_redelivered_update_is_ignored(chat: Chat, engine: Engine, database: Database) -> None:
    chat.onboard()
    chat.say("/checkin")
    [row] = _checkins(database)
    inbox.store(database, [{"update_id": 77}])
    press = Incoming(1001, 1001, "callback", callback=f"ci:p:4:{button_key(row)}")
    rows = engine.handle_update(77, press, "w")
    assert rows and "ci:m:same" in json.dumps(rows[-1].buttons)
    typed = Incoming(1001, 1001, "text", text="5")
    assert engine.handle_update(77, typed, "w") is None  # the same update id: not again
    [row] = _checkins(database)
    assert (row.pain, row.step) == (4, "morning")
    with database.session() as s:
        assert len(list(s.scalars(select(OutboxMessage)))) == len(rows)


def test_updates_are_handled_in_any_order_of_ids(
    chat: Chat, engine: Engine, database: Database
) -> None:
    # Users' updates are handled side by side: a later id may commit first, and the
    # earlier one (another user's, or a retry) must still count.
    chat.onboard()
    inbox.store(database, [{"update_id": 10}, {"update_id": 11}])
    assert engine.handle_update(11, Incoming(1001, 1001, "command", "/checkin", "checkin"), "w")
    assert engine.handle_update(10, Incoming(1002, 1002, "command", "/start", "start"), "w")
    assert _user(database, 1002) is not None


def test_a_processed_update_neither_touches_the_user_nor_writes(
    chat: Chat, engine: Engine, database: Database, clock: Clock
) -> None:
    chat.onboard()
    inbox.store(database, [{"update_id": 60}])
    assert engine.handle_update(60, Incoming(1001, 1001, "text", text="hej"), "w")
    user = _user(database)
    assert user is not None
    seen = user.updated_at
    with database.session() as s:
        rows = len(list(s.scalars(select(OutboxMessage))))
    clock.advance(minutes=5)
    assert engine.handle_update(60, Incoming(1001, 1001, "text", text="hej"), "w") is None
    user = _user(database)
    assert user is not None and user.updated_at == seen  # the touch was rolled back too
    with database.session() as s:
        assert len(list(s.scalars(select(OutboxMessage)))) == rows


def test_an_update_whose_inbox_row_is_gone_is_still_handled(
    chat: Chat, engine: Engine, database: Database, clock: Clock
) -> None:
    """A row that is gone (erased, or never stored) counts as claimed: the turn runs, for
    a known user (touched) as for a new one."""
    chat.onboard()
    clock.advance(minutes=5)
    rows = engine.handle_update(61, Incoming(1001, 1001, "text", text="hej"), "w")
    assert rows
    user = _user(database)
    assert user is not None and user.updated_at == clock.now
    start = Incoming(1003, 1003, "command", "/start", "start")
    assert engine.handle_update(62, start, "w")
    assert _user(database, 1003) is not None


def test_on_postgresql_the_inbox_mark_goes_in_the_users_touch_update(
    chat: Chat, engine: Engine, database: Database
) -> None:
    """One statement fewer per turn on PostgreSQL (fails on a separate claim UPDATE); on
    SQLite, which has no UPDATE in a WITH, the mark stays a statement of its own."""
    chat.onboard()
    inbox.store(database, [{"update_id": 63}])
    seen = _statements(
        database, lambda: engine.handle_update(63, Incoming(1001, 1001, "text", text="hej"), "w")
    )
    separate = [s for s in seen if s.startswith("UPDATE inbox_updates")]
    merged = [s for s in seen if s.startswith("WITH claimed AS")]
    if database.dialect == "postgresql":
        assert (len(separate), len(merged)) == (0, 1)
        assert "UPDATE users" in merged[0]
    else:
        assert (len(separate), len(merged)) == (1, 0)
    with database.session() as s:
        stored = s.get(InboxUpdate, 63)
        assert stored is not None and stored.processed_at is not None and stored.payload is None


def test_a_peer_holding_the_mark_makes_the_turn_wait_then_skip(
    chat: Chat, engine: Engine, database: Database
) -> None:
    """A peer's uncommitted mark holds the row (PostgreSQL): the turn waits for it and,
    once it commits, does nothing; SQLite serialises the writers anyway."""
    if database.dialect != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    chat.onboard()
    inbox.store(database, [{"update_id": 64}])
    user = _user(database)
    assert user is not None
    before = user.updated_at
    result: list[object] = []
    with database.session() as peer:
        assert inbox.claim(peer, 64, utcnow())
        worker = threading.Thread(
            target=lambda: result.append(
                engine.handle_update(64, Incoming(1001, 1001, "text", text="hej"), "w")
            )
        )
        worker.start()
        worker.join(0.5)  # still waiting for the peer's row lock (not asserted: no timing)
        peer.commit()
    worker.join(30)
    assert result == [None]
    user = _user(database)
    assert user is not None and user.updated_at == before


def test_a_failing_stored_update_is_rolled_back_then_told_once(
    chat: Chat, engine: Engine, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat.onboard()
    chat.say("/checkin")
    from bot import checkin

    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("disk on fire")

    chat.tap("4")
    chat.tap("Som normalt")
    chat.tap("🏃 Løb")
    monkeypatch.setattr(checkin, "summary", boom)
    inbox.store(database, [{"update_id": 5, "callback_query": {"from": {"id": 1001}}}])
    [row] = _checkins(database)
    skip = Incoming(1001, 1001, "callback", callback=f"ci:n:skip:{button_key(row)}")
    rows = engine.handle_update(5, skip, "w")
    assert rows is not None and [r.text for r in rows] == [engine.kb.text("error")]
    [row] = _checkins(database)
    assert (row.status, row.step) == ("open", "note")  # nothing half-done was committed
    with database.session() as s:
        stored = s.get(InboxUpdate, 5)
        assert stored is not None and stored.processed_at is not None and stored.payload is None
    assert engine.handle_update(5, None, "w") is None  # answered once, not at every start


def test_a_busy_database_is_retried_not_reported(
    chat: Chat, engine: Engine, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from bot import engine as engine_module

    chat.onboard()
    calls = {"n": 0}
    real = engine_module.router.run

    def locked_once(turn: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return real(turn)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module.router, "run", locked_once)
    monkeypatch.setattr(engine_module, "BUSY_PAUSE", 0.0)
    inbox.store(database, [{"update_id": 9}])
    rows = engine.handle_update(9, Incoming(1001, 1001, "command", "/checkin", "checkin"), "w")
    assert calls["n"] == 2
    assert rows and engine.kb.text("error") not in [r.text for r in rows]
    [row] = _checkins(database)
    assert row.status == "open"


# ---------------------------------------------------------------- data rights


def test_export_holds_only_this_users_data(engine: Engine) -> None:
    alice, bob = Chat(engine, 1), Chat(engine, 2)
    alice.onboard()
    _full_checkin(alice, pain=3)
    bob.onboard()
    _full_checkin(bob, pain=9)
    replies = alice.say("/mine_data")
    docs = [r.document for r in replies if r.document]
    assert {d.filename.rsplit(".", 1)[1] for d in docs} == {"json", "csv"}
    data = json.loads(next(d for d in docs if d.filename.endswith(".json")).content)
    assert [c["pain"] for c in data["checkins"]] == [3]
    assert all(row.get("user_id", 1) == 1 for rows in data.values() for row in rows)
    csv_text = next(d for d in docs if d.filename.endswith(".csv")).content.decode()
    assert "checkins" in csv_text and ",pain,3" in csv_text


def test_delete_removes_every_row_after_confirmation(engine: Engine, database: Database) -> None:
    alice, bob = Chat(engine, 1), Chat(engine, 2)
    for c in (alice, bob):
        c.onboard()
        _full_checkin(c)
        c.say("/paamindelse 07:30")
        c.say("hvor lang tid tager det")
    alice.say("/slet")
    assert alice.buttons() == ["del:1", "del:0"]
    assert _count_rows(database, 1) > 0
    alice.tap("Ja, slet alt")
    assert _count_rows(database, 1) == 0
    assert _count_rows(database, 2) > 0
    assert "check-ins" in alice.text()


def test_delete_button_without_confirmation_step_does_nothing(
    engine: Engine, database: Database
) -> None:
    alice = Chat(engine, 1)
    alice.onboard()
    alice.press("del:1")
    assert _user(database, 1) is not None


# ---------------------------------------------------------------- reminders and admin


def test_reminder_commands(chat: Chat, database: Database) -> None:
    chat.onboard()
    chat.say("/paamindelse 07:30")
    with database.session() as s:
        reminder = s.get(Reminder, 1001)
        assert reminder is not None and reminder.local_time == time(7, 30) and reminder.enabled
    chat.say("mind mig kl 19.15")
    with database.session() as s:
        reminder = s.get(Reminder, 1001)
        assert reminder is not None and reminder.local_time == time(19, 15)
    chat.say("/pause")
    with database.session() as s:
        reminder = s.get(Reminder, 1001)
        assert reminder is not None and not reminder.enabled
    chat.say("/genoptag")
    chat.say("/stop")
    with database.session() as s:
        assert s.get(Reminder, 1001) is None


def test_reload_is_for_admins_and_keeps_old_knowledge_on_error(
    database: Database, tmp_path: Path, clock: Clock
) -> None:
    import shutil

    from tests.engine_helpers import INTENTS, KNOWLEDGE

    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(KNOWLEDGE, kdir)
    shutil.copytree(INTENTS, idir)
    engine = make_engine(
        database, tmp_path / "cache", clock, admin_ids="42", knowledge_dir=kdir, intents_dir=idir
    )
    user, admin = Chat(engine, 7), Chat(engine, 42)
    user.say("/reload")
    assert user.text() == engine.kb.text("not_admin")
    before = engine.kb
    (kdir / "texts" / "dialogue.yaml").write_text("help: [unclosed\n", encoding="utf-8")
    admin.say("/reload")
    assert engine.kb is before
    assert "texts/dialogue.yaml:" in admin.text() and "YAML" in admin.text()
    shutil.copy(KNOWLEDGE / "texts" / "dialogue.yaml", kdir / "texts" / "dialogue.yaml")
    with (kdir / "texts" / "dialogue.yaml").open("a", encoding="utf-8") as fh:
        fh.write('\nreload_probe: "ny tekst"\n')
    admin.say("/reload")
    assert engine.kb is not before and engine.kb.text("reload_probe") == "ny tekst"


def test_blocked_user_is_reactivated_when_writing_again(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.onboard()
    engine.mark_blocked(1001)
    user = _user(database)
    assert user is not None and not user.active
    chat.say("hej")
    user = _user(database)
    assert user is not None and user.active


def test_history_sends_a_png(chat: Chat, clock: Clock) -> None:
    chat.onboard()
    for pain in (1, 4, 7):
        _full_checkin(chat, pain=pain)
        clock.advance(days=1)
    clock.advance(days=-1)
    replies = chat.say("/historik")
    image = next(r.image for r in replies if r.image)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    _ = timedelta


# ---------------------------------------------------------------- isolation between users


def _snapshot(db: Database, user_id: int) -> dict[str, list[tuple[object, ...]]]:
    snap: dict[str, list[tuple[object, ...]]] = {}
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            column = table.c.id if table.name == "users" else table.c.get("user_id")
            if column is None:
                continue
            rows = s.execute(
                select(table).where(column == user_id).order_by(*table.primary_key.columns)
            )
            snap[table.name] = [tuple(r) for r in rows]
    return snap


def test_no_callback_data_reaches_another_users_rows(engine: Engine, database: Database) -> None:
    """Whatever a user sends, another user's stored rows stay exactly as they were."""
    victim, attacker = Chat(engine, 1), Chat(engine, 2)
    victim.onboard()
    _full_checkin(victim, pain=5)
    victim.say("/paamindelse 08:00")
    victim.say("hvor lang tid tager det at blive rask")
    victim.say("/slet")  # the victim is now in the confirm-delete state
    victim_ids = [d.split(":")[-1] for d in victim.buttons()]
    with database.session() as s:
        qids = [q.id for q in s.scalars(select(Question).where(Question.user_id == 1))]
        cids = [c.id for c in s.scalars(select(Checkin).where(Checkin.user_id == 1))]
    before = _snapshot(database, 1)
    attacker.onboard()
    payloads = [
        *(f"fb:{v}:{q}" for v in (0, 1) for q in qids),
        *(f"ci:p:{n}" for n in (0, 10)),
        "ci:m:worse",
        "ci:a:run",
        "ci:n:skip",
        "del:1",
        "del:0",
        "cr:1",
        "rem:ci",
        "rem:snooze",
        *(f"pick:{c}" for c in cids),
        "pick:../../etc",
        "ob:c:0",
        "ob:p:4",
        "ob:g:hip",
        *(f"del:{i}" for i in victim_ids),
        "fb:1:-1",
        "fb:1:1 OR 1=1",
        "x" * 64,
        ":",
        "fb::",
    ]
    for data in payloads:
        attacker.press(data)
    attacker.say("/slet")
    attacker.press("del:1")
    assert _snapshot(database, 1) == before
    assert _count_rows(database, 2) == 0


def test_a_failing_turn_is_rolled_back_and_says_so(
    chat: Chat, engine: Engine, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat.onboard()
    chat.say("/checkin")
    from bot import checkin

    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(checkin, "summary", boom)
    chat.tap("4")
    chat.tap("Som normalt")
    chat.tap("🏃 Løb")
    replies = chat.tap("Spring over")  # completing fails while building the summary
    assert [r.text for r in replies] == [engine.kb.text("error")]
    [row] = _checkins(database)
    assert (row.status, row.step) == ("open", "note")  # nothing half-done was committed
    monkeypatch.undo()
    chat.press(f"ci:n:skip:{button_key(row)}")
    [row] = _checkins(database)
    assert (row.status, row.pain) == ("done", 4)


def test_guide_command_changes_guide_and_phase(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.onboard("proximal", phase=1)
    chat.say("/guide")
    chat.tap("Hoften")
    assert "ob:p:3" in chat.buttons()
    replies = chat.tap("Fase 3")
    assert done_text(engine.kb, "hip") not in [r.text for r in replies]
    user = _user(database)
    assert user is not None and (user.guide, user.phase, user.dialog_state) == ("hip", 3, None)
    chat.say("skift guide")
    chat.say("knæ")
    chat.say("fase 2")
    user = _user(database)
    assert user is not None and (user.guide, user.phase) == ("distal", 2)


def test_answering_which_guide_is_remembered(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.say("/start")
    chat.tap("Ja, det må du")
    chat.say("/annuller")  # skipped choosing a guide
    distal_entry = engine.kb.entries_of("distal")[0].id
    chat.press(f"pick:{distal_entry}")  # e.g. the "which guide?" button of a clarify
    user = _user(database)
    assert user is not None and user.guide == "distal"
    chat.press(f"pick:{engine.kb.entries_of('hip')[0].id}")  # a later pick doesn't overwrite
    user = _user(database)
    assert user is not None and user.guide == "distal"
