"""Offline adapter tests: the real runtime (inbox, engine, outbox, sender) with a real
PTB Bot, updates stored and handled as polling would, replies sent before each step
returns.

The only fake is at the edge of the network: a request object that answers the
Bot API methods the bot uses from memory and fails any other call, so nothing
can reach the internet.
"""

from __future__ import annotations

import itertools
import json
import time as _time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from telegram import Bot, Update
from telegram.request import BaseRequest, RequestData

from bot import inbox
from bot.engine import Engine
from bot.runtime import Runtime
from bot.storage import Checkin, Database, User
from bot.telegram_app import build_runtime, make_bot, split_text
from tests.engine_helpers import Clock, make_engine

BOT_ID = 999
USER_ID = 4242


class RecordingRequest(BaseRequest):
    """Answers the Bot API from memory and records every call; no network at all."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(100)
        self.forbidden_chats: set[int] = set()

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", USER_ID))
        msg: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(_time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": "runner_bot"},
        }
        if "text" in params:
            msg["text"] = params["text"]
        if "reply_markup" in params:
            markup = params["reply_markup"]
            msg["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        return msg

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        self.calls.append((api_method, params))
        result: Any
        if api_method == "getMe":
            result = {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Bot",
                "username": "runner_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        elif api_method in {"sendMessage", "sendPhoto", "sendDocument"}:
            if int(params.get("chat_id", 0)) in self.forbidden_chats:
                body = {
                    "ok": False,
                    "error_code": 403,
                    "description": "Forbidden: bot was blocked by the user",
                }
                return 403, json.dumps(body).encode()
            result = self._message(params)
        elif api_method in {"answerCallbackQuery", "setMyCommands", "deleteWebhook"}:
            result = True
        elif api_method == "editMessageReplyMarkup":
            result = self._message(params)
        else:
            raise AssertionError(
                f"unexpected Bot API call {api_method}: the test would hit the network"
            )
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]

    def texts(self) -> list[str]:
        return [str(p["text"]) for p in self.sent()]

    def last_buttons(self) -> list[str]:
        for params in reversed(self.sent()):
            if "reply_markup" in params:
                markup = params["reply_markup"]
                markup = json.loads(markup) if isinstance(markup, str) else markup
                return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
        return []


@pytest.fixture
def request_fake() -> RecordingRequest:
    return RecordingRequest()


class App:
    """The runtime as `serve()` wires it, minus polling: updates are handed in directly."""

    def __init__(self, engine: Engine, bot: Bot, runtime: Runtime) -> None:
        self.engine, self.bot, self.runtime = engine, bot, runtime

    async def process_update(self, update: Update) -> None:
        """Store the update as polling does, then wait until it is handled and sent."""
        new = inbox.store(self.engine.db, [update.to_dict()])
        self.runtime.feed([(s, update) for s in new])
        assert await self.runtime.idle(30.0)


@pytest.fixture
async def app(
    database: Database, tmp_path: Path, request_fake: RecordingRequest
) -> AsyncIterator[App]:
    engine = make_engine(database, tmp_path / "cache", Clock(), telegram_bot_token="123:ABC")
    bot = make_bot(engine.settings, request=request_fake)
    async with bot:
        runtime = build_runtime(engine, bot)
        runtime.start()
        yield App(engine, bot, runtime)
        await runtime.stop(grace=1.0)


_update_ids = itertools.count(1)


def _text_update(app: App, text: str, chat_type: str = "private", user_id: int = USER_ID) -> Update:
    chat_id = user_id if chat_type == "private" else -100
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    if "@runner_bot" in text:
        entities.append(
            {"type": "mention", "offset": text.index("@runner_bot"), "length": len("@runner_bot")}
        )
    data = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "date": int(_time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user_id, "is_bot": False, "first_name": "Mette"},
            "text": text,
            "entities": entities,
        },
    }
    return Update.de_json(data, app.bot)


def _callback_update(app: App, data: str, user_id: int = USER_ID) -> Update:
    payload = {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "chat_instance": "ci",
            "from": {"id": user_id, "is_bot": False, "first_name": "Mette"},
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(_time.time()),
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
                "text": "spørgsmål",
            },
        },
    }
    return Update.de_json(payload, app.bot)


def _media_update(app: App, kind: str) -> Update:
    media: dict[str, Any] = {
        "sticker": {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            }
        },
        "voice": {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 2}},
        "location": {"location": {"latitude": 55.6, "longitude": 12.5}},
        "photo": {"photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]},
    }[kind]
    data = {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "date": int(_time.time()),
            "chat": {"id": USER_ID, "type": "private"},
            "from": {"id": USER_ID, "is_bot": False, "first_name": "Mette"},
            **media,
        },
    }
    return Update.de_json(data, app.bot)


async def test_onboarding_and_checkin_through_handlers(
    app: App,
    request_fake: RecordingRequest,
    database: Database,
) -> None:
    await app.process_update(_text_update(app, "/start"))
    assert request_fake.last_buttons() == ["ob:c:1", "ob:c:0"]
    for data in ("ob:c:1", "ob:g:proximal", "ob:p:1"):
        await app.process_update(_callback_update(app, data))
    assert request_fake.sent("answerCallbackQuery")  # every press is acknowledged
    assert request_fake.sent("editMessageReplyMarkup")  # one-shot buttons are removed
    await app.process_update(_text_update(app, "/checkin"))
    for data in ("ci:p:3", "ci:m:same", "ci:a:run", "ci:n:skip"):
        # each step's button, as sent (its data ends with the check-in's key)
        [sent] = [d for d in request_fake.last_buttons() if d.startswith(f"{data}:")]
        await app.process_update(_callback_update(app, sent))
    with database.session() as s:
        user = s.get(User, USER_ID)
        row = s.scalars(select(Checkin)).one()
    assert user is not None and (user.consent, user.guide, user.phase) == (True, "proximal", 1)
    assert (row.status, row.pain, row.zone) == ("done", 3, "yellow")


async def test_question_is_answered_with_source(app: App, request_fake: RecordingRequest) -> None:
    await app.process_update(
        _text_update(app, "skal man strække baglåret når man har ondt under ballen")
    )
    assert "Kilde" in request_fake.texts()[-1]
    assert any(d.startswith("fb:") for d in request_fake.last_buttons())


@pytest.mark.parametrize("kind", ["sticker", "voice", "location", "photo"])
async def test_media_gets_a_friendly_danish_reply(
    app: App,
    request_fake: RecordingRequest,
    kind: str,
) -> None:
    await app.process_update(_media_update(app, kind))
    engine = app.engine
    assert request_fake.texts() == [engine.kb.text(f"unsupported_{kind}")]


async def test_edited_message_gets_a_reply(app: App, request_fake: RecordingRequest) -> None:
    update = _text_update(app, "hej")
    data = update.to_dict()
    data["edited_message"] = data.pop("message")
    data["edited_message"]["edit_date"] = int(_time.time())
    await app.process_update(Update.de_json(data, app.bot))
    engine = app.engine
    assert request_fake.texts() == [engine.kb.text("unsupported_edited")]


async def test_groups_only_commands_and_mentions(app: App, request_fake: RecordingRequest) -> None:
    await app.process_update(
        _text_update(app, "kan man løbe med hasetendinopati", chat_type="group")
    )
    assert request_fake.texts() == []
    await app.process_update(
        _text_update(app, "@runner_bot kan man løbe med hasetendinopati", chat_type="group")
    )
    assert len(request_fake.texts()) == 1
    await app.process_update(_text_update(app, "/hjaelp@runner_bot", chat_type="group"))
    assert len(request_fake.texts()) == 2
    await app.process_update(_text_update(app, "/hjaelp@other_bot", chat_type="group"))
    assert len(request_fake.texts()) == 2


async def test_blocked_user_is_marked_inactive(
    app: App,
    request_fake: RecordingRequest,
    database: Database,
) -> None:
    await app.process_update(_text_update(app, "/start"))
    request_fake.forbidden_chats.add(USER_ID)
    await app.process_update(_text_update(app, "hej"))
    with database.session() as s:
        user = s.get(User, USER_ID)
    assert user is not None and not user.active


async def test_history_is_sent_as_photo(app: App, request_fake: RecordingRequest) -> None:
    for text in ("/start",):
        await app.process_update(_text_update(app, text))
    for data in ("ob:c:1", "ob:g:distal", "ob:p:2"):
        await app.process_update(_callback_update(app, data))
    await app.process_update(_text_update(app, "/historik"))
    assert len(request_fake.sent("sendPhoto")) == 1


async def test_export_is_sent_as_documents(app: App, request_fake: RecordingRequest) -> None:
    await app.process_update(_text_update(app, "/start"))
    await app.process_update(_callback_update(app, "ob:c:1"))
    await app.process_update(_text_update(app, "/mine_data"))
    assert len(request_fake.sent("sendDocument")) == 2


def test_split_text_keeps_every_character_and_the_limit() -> None:
    paragraph = "Løb roligt. " * 50
    text = "\n\n".join([paragraph] * 12)
    chunks = split_text(text, 4096)
    assert all(0 < len(c) <= 4096 for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )
    assert all(not c.startswith(" ") for c in chunks)
    assert split_text("kort") == ["kort"]
    assert all(len(c) <= 10 for c in split_text("x" * 35, 10))


async def test_a_refused_sighup_reload_is_told_to_every_admin_and_logged(
    database: Database,
    tmp_path: Path,
    request_fake: RecordingRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import shutil

    from bot.settings import PROJECT_ROOT
    from bot.telegram_app import _on_sighup

    kdir, idir = tmp_path / "knowledge", tmp_path / "intents"
    shutil.copytree(PROJECT_ROOT / "knowledge", kdir)
    shutil.copytree(PROJECT_ROOT / "intents", idir)
    (kdir / "synonyms.yaml").write_text("synonyms: [ikke lukket\n", encoding="utf-8")
    (idir / "tak.yaml").write_text("id: tak\naction: dance\nexamples: [tak, mange tak]\n", "utf-8")
    engine = make_engine(
        database,
        tmp_path / "cache",
        Clock(),
        telegram_bot_token="123:ABC",
        admin_ids="7,8",
        knowledge_dir=kdir,
        intents_dir=idir,
    )
    async with make_bot(engine.settings, request=request_fake) as bot:
        before = engine.kb
        await _on_sighup(engine, bot)
    assert engine.kb is before
    told = {int(p["chat_id"]): str(p["text"]) for p in request_fake.sent()}
    assert set(told) == {7, 8}
    for text in told.values():
        assert "synonyms.yaml:" in text  # every problem, each with its place
        assert "intents/tak.yaml:" in text and "dance" in text
    logged = [r.getMessage() for r in caplog.records if "reload problem" in r.getMessage()]
    assert any("synonyms.yaml:" in m for m in logged) and any("tak.yaml:" in m for m in logged)
