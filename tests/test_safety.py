"""Safety in every state (issue 8), through the engine: red flags are heard at every
prompt, buttons act only on what they were made for, and groups get nothing personal."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot import protocol
from bot.engine import Engine
from bot.replies import Button, Incoming, Reply
from bot.storage import Checkin, Database, Question, Reminder, User
from tests.engine_helpers import Chat, Clock, make_engine

RED_FLAG = "jeg har fået nummenhed i foden"
RED_FLAG_NOTE = "jeg har fået nummenhed og prikken i foden i dag"
GROUP = -100500
BOT = "fake_runner_bot"


def _rows(database: Database) -> list[tuple[object, ...]]:
    """Every check-in, reminder and the user's profile: what a stale press must not change."""
    with database.session() as s:
        checkins = [
            (c.id, c.status, c.step, c.pain, c.morning, c.activity, c.note, c.zone)
            for c in s.scalars(select(Checkin).order_by(Checkin.id))
        ]
        reminders = [
            (r.user_id, r.next_due_at, r.enabled, r.snoozed) for r in s.scalars(select(Reminder))
        ]
        users = [(u.id, u.consent, u.guide, u.phase) for u in s.scalars(select(User))]
    return [*checkins, *reminders, *users]


def _checkins(database: Database) -> list[Checkin]:
    with database.session() as s:
        return list(s.scalars(select(Checkin).order_by(Checkin.id)))


# ------------------------------------------------------------------ red flags everywhere


@pytest.mark.parametrize(
    "answers", [[], ["4"], ["4", "bedre"]], ids=["pain", "morning", "activity"]
)
def test_a_red_flag_at_a_checkin_step_advises_a_doctor_first_and_asks_the_step_again(
    chat: Chat, database: Database, answers: list[str]
) -> None:
    chat.onboard()
    chat.say("/checkin")
    for typed in answers:
        chat.say(typed)
    [before] = _checkins(database)
    for _ in range(2):  # the second time too: a red flag never drops the step
        replies = chat.say(RED_FLAG)
        assert "læge" in replies[0].text
        question = replies[-1]
        assert question.text.endswith(chat.engine.kb.text(f"checkin_q_{before.step}"))
        assert question.buttons  # the step's own buttons, pressable
    [after] = _checkins(database)
    assert (after.step, after.pain, after.morning) == (before.step, before.pain, before.morning)


def test_a_red_flag_in_the_note_is_stored_marked_and_the_checkin_completes(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.onboard()
    chat.say("/checkin")
    for typed in ("4", "bedre", "løb"):
        chat.say(typed)
    replies = chat.say(RED_FLAG_NOTE)
    assert "læge" in replies[0].text
    yellow = engine.kb.traffic_light.zone("yellow")
    assert replies[-1].text.startswith(
        engine.kb.text("checkin_summary_zone", symbol=yellow.symbol, label=yellow.label, pain=4)
    )
    [row] = _checkins(database)
    assert (row.status, row.zone, row.note, row.note_red_flag) == (
        "done",
        "yellow",
        RED_FLAG_NOTE,
        True,
    )

    history = chat.say("/historik")[0].text
    day = row.local_date.strftime("%d.%m.")
    assert engine.kb.text("history_red_flag_notes", dates=day) in history

    json_reply, csv_reply = chat.say("/mine_data")
    assert json_reply.document is not None and csv_reply.document is not None
    exported = json.loads(json_reply.document.content)
    assert [c["note_red_flag"] for c in exported["checkins"]] == [True]
    lines = list(csv.reader(io.StringIO(csv_reply.document.content.decode("utf-8"))))
    assert ["checkins", "0", "note_red_flag", "True"] in lines


def test_an_ordinary_note_is_not_marked_and_history_says_nothing_of_red_flags(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.onboard()
    chat.say("/checkin")
    for typed in ("2", "bedre", "løb", "stiv efter bakkerne"):
        chat.say(typed)
    [row] = _checkins(database)
    assert (row.status, row.note_red_flag) == ("done", False)
    marker = engine.kb.text("history_red_flag_notes", dates="").split("(")[0]
    assert marker not in chat.say("/historik")[0].text


@pytest.mark.parametrize("at", ["consent", "guide", "phase"])
def test_a_red_flag_at_an_onboarding_prompt_advises_first_then_asks_again(
    chat: Chat, engine: Engine, at: str
) -> None:
    kb = engine.kb
    chat.say("/start")
    if at in ("guide", "phase"):
        chat.tap(kb.text("consent_yes_button"))
    if at == "phase":
        chat.tap(kb.guides["proximal"].short)
    asked = chat.last[-1]
    for _ in range(2):
        replies = chat.say(RED_FLAG)
        assert "læge" in replies[0].text
        assert replies[-1].text.endswith(asked.text) and replies[-1].buttons == asked.buttons


# ------------------------------------------------------------------ stale buttons


def test_an_old_pain_button_does_not_answer_the_checkin_open_now(
    chat: Chat, database: Database, engine: Engine, clock: Clock
) -> None:
    chat.onboard()
    chat.say("/checkin")
    old = chat.resolve("ci:p:7")
    chat.say("/annuller")  # the row is deleted; SQLite gives its id to the next check-in
    clock.advance(minutes=1)
    chat.say("/checkin")
    assert old != chat.resolve("ci:p:7")
    before = _rows(database)
    assert chat.press(old)[0].text == engine.kb.text("button_expired")
    assert _rows(database) == before


def test_an_old_replace_button_starts_no_replacement(
    chat: Chat, database: Database, engine: Engine, clock: Clock
) -> None:
    chat.onboard()
    chat.say("/checkin")
    for data in ("ci:p:1", "ci:m:same", "ci:a:run", "ci:n:skip"):
        chat.press(data)
    chat.say("/checkin")
    old_yes = chat.resolve("cr:1")
    chat.tap(engine.kb.text("flow_replace_no_button"))
    before = _rows(database)
    assert chat.press(old_yes)[0].text == engine.kb.text("button_expired")  # no prompt open
    # Asked again the next day about that day's check-in: yesterday's button is still void.
    clock.advance(days=1)
    chat.say("/checkin")
    for data in ("ci:p:2", "ci:m:same", "ci:a:run", "ci:n:skip"):
        chat.press(data)
    chat.say("/checkin")
    before = _rows(database)
    assert chat.press(old_yes)[0].text == engine.kb.text("button_expired")
    assert _rows(database) == before
    forged = protocol.encode(protocol.REPLACE, 1, "99999999999999999999999")
    assert chat.press(forged)[0].text == engine.kb.text("button_expired")
    assert _rows(database) == before


def test_an_old_consent_no_after_consenting_changes_nothing(
    chat: Chat, database: Database, engine: Engine
) -> None:
    chat.onboard()
    chat.say("/checkin")
    for data in ("ci:p:1", "ci:m:same", "ci:a:run", "ci:n:skip"):
        chat.press(data)
    before = _rows(database)
    assert chat.press("ob:c:0")[0].text == engine.kb.text("button_expired")
    assert _rows(database) == before
    # At a new /start the consent prompt is open: "Nej tak" keeps consent and says how
    # to withdraw it (never "I store nothing about you").
    chat.say("/start")
    replies = chat.press("ob:c:0")
    assert [r.text for r in replies] == [engine.kb.text("consent_kept")]
    assert _rows(database) == before


def test_withdrawing_consent_is_confirmed_and_says_what_stays(
    chat: Chat, database: Database, engine: Engine, clock: Clock
) -> None:
    kb = engine.kb
    chat.onboard()
    chat.say("/paamindelse 07:30")
    chat.say("/checkin")
    for data in ("ci:p:1", "ci:m:same", "ci:a:run", "ci:n:skip"):
        chat.press(data)
    question = chat.say("/samtykke")[0]
    assert "/slet" in question.text
    assert chat.buttons() == ["ob:w:1", "ob:w:0"]
    assert chat.tap(kb.text("withdraw_no_button"))[0].text == kb.text("withdraw_kept")
    chat.say("/samtykke")
    done = chat.tap(kb.text("withdraw_yes_button"))[0].text
    assert done == kb.text("withdraw_done") and "/slet" in done
    with database.session() as s:
        user = s.get(User, chat.user_id)
        assert user is not None and (user.consent, user.guide) == (False, "proximal")
        assert s.get(Reminder, chat.user_id) is None  # reminders stop
        assert len(list(s.scalars(select(Checkin)))) == 1  # the check-in stays until /slet
    # Declining consent later does not claim that nothing is stored.
    chat.say("/start")
    assert chat.tap(kb.text("consent_no_button"))[0].text == kb.text("consent_declined_stored")
    assert chat.say("/samtykke")[0].text == kb.text("withdraw_no_consent")
    # An old withdraw button changes nothing now.
    assert chat.press("ob:w:1")[0].text == kb.text("button_expired")


def test_the_guest_cleanup_leaves_a_withdrawn_users_rows_to_slet(
    engine: Engine, database: Database, clock: Clock
) -> None:
    kb = engine.kb
    chat = Chat(engine, 1002)
    chat.onboard("distal", phase=2)  # a profile, but no check-in
    chat.say("/samtykke")
    chat.tap(kb.text("withdraw_yes_button"))
    clock.advance(days=engine.settings.guest_retention_days + 1)
    assert engine.forget_guests() == 0  # the reply said: stored until /slet
    with database.session() as s:
        user = s.get(User, 1002)
        assert user is not None and (user.consent, user.guide, user.phase) == (False, "distal", 2)
    guest = Chat(engine, 1003)
    guest.say("hej")
    clock.advance(days=engine.settings.guest_retention_days + 1)
    assert engine.forget_guests() == 1  # a user who never consented is still forgotten


@pytest.mark.parametrize("qid", ["99999999999999999999999999", "2147483648"])
def test_the_oversized_feedback_id_gets_a_reply_and_logs_no_error(
    chat: Chat, engine: Engine, caplog: pytest.LogCaptureFixture, qid: str
) -> None:
    """2147483648: one past the INTEGER row ids; on PostgreSQL the lookup overflowed."""
    chat.say("hvor lang tid tager det")
    with caplog.at_level(logging.WARNING):
        replies = chat.press(f"fb:1:{qid}")
    assert [r.text for r in replies] == [engine.kb.text("button_expired")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ------------------------------------------------------------------ groups


def _in_group(engine: Engine, text: str, user_id: int = 1001) -> list[Reply]:
    return engine.handle(Incoming.parse_text(user_id, GROUP, text))


def _press_in_group(engine: Engine, data: str, user_id: int = 1001) -> list[Reply]:
    return engine.handle(Incoming(user_id, GROUP, "callback", callback=data))


def _link_of(replies: list[Reply]) -> str | None:
    urls = [b.url for r in replies for row in r.buttons for b in row if b.url]
    return urls[0] if len(urls) == 1 else None


@pytest.mark.parametrize(
    "command", ["checkin", "historik", "mine_data", "slet", "paamindelse", "start", "samtykke"]
)
def test_a_personal_command_in_a_group_gets_one_line_and_a_deep_link(
    chat: Chat, engine: Engine, command: str
) -> None:
    chat.onboard()
    engine.bot_username = BOT
    replies = _in_group(engine, f"/{command}")
    assert [r.text for r in replies] == [engine.kb.text("private_only")]
    assert replies[0].image is None and replies[0].document is None
    assert _link_of(replies) == f"https://t.me/{BOT}?start={command}"


def test_without_a_username_the_group_gets_just_the_line(engine: Engine) -> None:
    replies = _in_group(engine, "/checkin")
    assert [(r.text, r.buttons) for r in replies] == [(engine.kb.text("private_only"), ())]


def test_the_deep_link_payload_runs_the_command_in_the_private_chat(
    chat: Chat, engine: Engine, database: Database
) -> None:
    kb = engine.kb
    chat.onboard()
    assert chat.say("/start checkin")[0].text == kb.text("checkin_q_pain")
    assert len(_checkins(database)) == 1
    chat.say("/annuller")
    assert chat.say("/start slet")[0].text == kb.text("delete_question")
    chat.say("/annuller")
    assert chat.say("/start historik")[0].image is not None
    # Nonsense payloads are plain /start.
    for payload in ("reload", "x" * 80, "nope", "start"):
        assert chat.say(f"/start {payload}")[0].text.startswith(
            kb.text("welcome", name=" Mette")[:10]
        )
        chat.say("/annuller")


def test_in_a_group_an_open_checkin_takes_nothing_and_is_not_asked(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.onboard()
    chat.say("/checkin")
    before = _rows(database)
    for text in ("4", f"@{BOT} 4", "hvor lang tid tager det"):
        replies = _in_group(engine, text)
        assert all(not r.text.endswith(engine.kb.text("checkin_q_pain")) for r in replies)
        assert all(
            not any(b.data.startswith("ci:") for row in r.buttons for b in row) for r in replies
        )
    assert _rows(database) == before
    # A guide question stays answerable in the group.
    answer = _in_group(engine, "hvor lang tid tager det")
    assert "Kilde" in answer[0].text


def test_reminder_words_in_a_group_get_the_link(
    chat: Chat, engine: Engine, database: Database
) -> None:
    chat.onboard()
    engine.bot_username = BOT
    replies = _in_group(engine, "mind mig om check-in kl 7:30")
    assert [r.text for r in replies] == [engine.kb.text("private_only")]
    assert _link_of(replies) == f"https://t.me/{BOT}?start=paamindelse"
    with database.session() as s:
        assert s.get(Reminder, chat.user_id) is None


@pytest.mark.parametrize(
    ("data", "payload"),
    [
        ("ci:p:4:1", "checkin"),
        ("ob:c:1", "start"),
        ("del:1", "slet"),
        ("rem:snooze:20260610", "checkin"),
    ],
)
def test_a_personal_button_pressed_in_a_group_opens_the_private_chat(
    chat: Chat, engine: Engine, database: Database, data: str, payload: str
) -> None:
    chat.onboard()
    chat.say("/checkin")
    engine.bot_username = BOT
    before = _rows(database)
    replies = _press_in_group(engine, data)
    assert [r.text for r in replies] == [engine.kb.text("private_only")]
    assert _link_of(replies) == f"https://t.me/{BOT}?start={payload}"
    assert _rows(database) == before


def test_feedback_on_a_guide_answer_works_in_a_group(engine: Engine, database: Database) -> None:
    replies = _in_group(engine, "kan jeg løbe med ondt under ballen", user_id=2002)
    data = next(
        b.data for r in replies for row in r.buttons for b in row if b.data.startswith("fb:1:")
    )
    assert _press_in_group(engine, data, user_id=2002)[0].text == engine.kb.text("feedback_thanks")
    assert _press_in_group(engine, data, user_id=2003)[0].text == engine.kb.text("button_expired")
    with database.session() as s:
        assert [q.helpful for q in s.scalars(select(Question))] == [True]


# ------------------------------------------------------------------ fuzzing the buttons

_FIELDS = st.one_of(
    st.text(max_size=20),
    st.integers().map(str),
    st.sampled_from(
        [
            "0",
            "1",
            "p",
            "m",
            "a",
            "n",
            "skip",
            "ci",
            "snooze",
            "²",
            "-1",
            "99999999999999999999999999",
        ]
    ),
)
_DATA = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda route, fields: ":".join([route, *fields]),
        st.sampled_from(protocol.ROUTES),
        st.lists(_FIELDS, max_size=4),
    ),
)


@pytest.mark.parametrize("state", ["new", "checkin", "consent", "delete"])
def test_any_callback_data_gets_a_reply_and_never_an_exception(
    database: Database, tmp_path: Path, state: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database, tmp_path / "cache", Clock())
    chat = Chat(engine)
    if state != "new":
        chat.onboard()
    if state == "checkin":
        chat.say("/checkin")
    elif state == "consent":
        chat.say("/start")
    elif state == "delete":
        chat.say("/slet")
    error = engine.kb.text("error")

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=_DATA, in_group=st.booleans())
    def press(data: str, in_group: bool) -> None:
        chat_id = GROUP if in_group else chat.user_id
        replies = engine.handle(Incoming(chat.user_id, chat_id, "callback", callback=data))
        assert replies and all(r.text for r in replies)
        assert error not in [r.text for r in replies]

    with caplog.at_level(logging.ERROR):
        press()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ------------------------------------------------------------------ link buttons


def test_a_link_button_reaches_telegram_as_a_url_button() -> None:
    """Through the outbox row (its JSON) to the Bot API's markup."""
    from bot.outbox import messages_of, outgoing
    from bot.telegram_app import _markup

    url = f"https://t.me/{BOT}?start=checkin"
    reply = Reply("x", ((Button("Åbn", url=url), Button("Ja", "ob:c:1")),))
    [row] = messages_of(1001, 1001, [reply])
    markup = _markup(outgoing(row))
    assert markup is not None
    [[link, press]] = markup.inline_keyboard
    assert (link.url, link.callback_data) == (url, None)
    assert (press.url, press.callback_data) == (None, "ob:c:1")


@pytest.mark.parametrize(
    "kwargs", [{"data": "ob:c:1", "url": "https://t.me/x"}, {"url": "http://t.me/x"}, {"data": ""}]
)
def test_a_button_is_either_a_press_or_an_https_link(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"link button|callback data"):
        Button("x", **kwargs)


def test_every_personal_button_route_opens_a_command_of_the_registry() -> None:
    from bot.dialogs import commands, deeplinks

    assert set(deeplinks.BUTTON_PAYLOADS) | protocol.PUBLIC_ROUTES == set(protocol.ROUTES)
    assert not set(deeplinks.BUTTON_PAYLOADS) & protocol.PUBLIC_ROUTES
    for payload in deeplinks.BUTTON_PAYLOADS.values():
        command = commands.find(payload)
        assert command is not None and command.personal, payload
