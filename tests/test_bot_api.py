"""The sender's own Bot API client against a scripted HTTP server on 127.0.0.1: what it
sends, how it reads answers (lengths, chunks, closes), and how the Transport sorts
Telegram's answers and network failures into the sender's outcomes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from telegram import Bot

from bot.bot_api import ApiError, ApiUnreachable, BotApi
from bot.outbox import Outgoing
from bot.sender import Blocked, Rejected, RetryLater
from bot.telegram_app import Transport

TOKEN = "123:ABC"
Answer = Callable[[dict[str, Any]], bytes | None]  # None: drop the connection unanswered


def _http(status: int, body: dict[str, Any], *, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode() + data


def _ok(result: Any) -> bytes:
    return _http(200, {"ok": True, "result": result})


def _refused(status: int, description: str, **parameters: Any) -> bytes:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return _http(status, body)


class Server:
    """Answers each request with the next scripted answer; records requests and connections."""

    def __init__(self) -> None:
        self.answers: list[Answer | float] = []  # a float: wait that long, then answer ok
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/bot"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers["content-length"]))
                params = json.loads(body)
                self.requests.append((lines[0], headers, params))
                answer = self.answers.pop(0) if self.answers else (lambda p: _ok({"message_id": 1}))
                if isinstance(answer, float):
                    await asyncio.sleep(answer)
                    answer = lambda p: _ok({"message_id": 2})  # noqa: E731
                data = answer(params)
                if data is None:
                    return
                writer.write(data)
                await writer.drain()
                if b"Connection: close" in data:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    srv.server = await asyncio.start_server(srv._serve, "127.0.0.1", 0)
    yield srv
    srv.server.close()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[BotApi]:
    client = BotApi(server.base_url, TOKEN, timeout=1.0)
    yield client
    await client.close()


async def test_a_call_posts_json_to_the_method_and_reuses_the_connection(
    server: Server, api: BotApi
) -> None:
    server.answers = [lambda p: _ok({"message_id": 7, "text": p["text"]})] * 2
    first = await api.call("sendMessage", {"chat_id": 5, "text": "Hej æøå"})
    second = await api.call("sendMessage", {"chat_id": 5, "text": "igen"})
    assert first == {"message_id": 7, "text": "Hej æøå"} and second["text"] == "igen"
    line, headers, params = server.requests[0]
    assert line == f"POST /bot{TOKEN}/sendMessage HTTP/1.1"
    assert headers["content-type"] == "application/json"
    assert params == {"chat_id": 5, "text": "Hej æøå"}
    assert server.connections == 1  # kept alive


async def test_a_chunked_answer_is_read_and_a_closing_one_is_not_reused(
    server: Server, api: BotApi
) -> None:
    data = json.dumps({"ok": True, "result": {"message_id": 9}}).encode()
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{5:x}\r\n".encode() + data[:5] + b"\r\n"
        + f"{len(data) - 5:x}\r\n".encode() + data[5:] + b"\r\n0\r\n\r\n"
    )  # fmt: skip
    closing = _http(200, {"ok": True, "result": 1}, close=True)
    server.answers = [lambda p: chunked, lambda p: closing]
    assert await api.call("sendMessage", {"chat_id": 1, "text": "a"}) == {"message_id": 9}
    assert await api.call("sendMessage", {"chat_id": 1, "text": "b"}) == 1
    assert await api.call("sendMessage", {"chat_id": 1, "text": "c"}) == {"message_id": 1}
    assert server.connections == 2  # the close was honoured: a new connection for "c"


async def test_refusals_carry_code_description_and_retry_after(
    server: Server, api: BotApi
) -> None:
    server.answers = [lambda p: _refused(429, "Too Many Requests: retry after 3", retry_after=3)]
    with pytest.raises(ApiError) as caught:
        await api.call("sendMessage", {"chat_id": 1, "text": "a"})
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)
    assert "Too Many Requests" in caught.value.description


async def test_a_dropped_connection_and_a_timeout_are_unreachable_then_it_recovers(
    server: Server, api: BotApi
) -> None:
    server.answers = [lambda p: None, 2.0]
    with pytest.raises(ApiUnreachable):
        await api.call("sendMessage", {"chat_id": 1, "text": "dropped"})
    with pytest.raises(ApiUnreachable, match="no answer"):
        await api.call("sendMessage", {"chat_id": 1, "text": "slow"})
    assert await api.call("sendMessage", {"chat_id": 1, "text": "ok"}) == {"message_id": 1}


async def test_send_reads_the_message_id_without_decoding_the_echoed_message(
    server: Server, api: BotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    compact = json.dumps(
        {"ok": True, "result": {"message_id": 41, "text": "æøå " * 500}}, separators=(",", ":")
    ).encode()
    server.answers = [
        lambda p: _ok({"message_id": 40, "text": p["text"], "chat": {"id": 5}}),
        lambda p: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(compact) + compact,
        lambda p: _ok({"text": "id not first", "message_id": 42}),
        lambda p: _refused(429, "Too Many Requests", retry_after=2),
    ]
    def undecodable(status: int, data: bytes) -> None:
        raise AssertionError("the answer was decoded")

    with monkeypatch.context() as m:
        m.setattr(BotApi, "_result", staticmethod(undecodable))
        assert await api.send("sendMessage", {"chat_id": 5, "text": "a"}) == 40
        assert await api.send("sendMessage", {"chat_id": 5, "text": "b"}) == 41
    assert await api.send("sendMessage", {"chat_id": 5, "text": "c"}) == 42  # decoded
    with pytest.raises(ApiError) as caught:
        await api.send("sendMessage", {"chat_id": 5, "text": "d"})
    assert (caught.value.status, caught.value.retry_after) == (429, 2.0)


async def test_nothing_listening_is_unreachable() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    api = BotApi(f"http://127.0.0.1:{port}/bot", TOKEN, timeout=1.0)
    with pytest.raises(ApiUnreachable):
        await api.call("sendMessage", {"chat_id": 1, "text": "a"})


def _text(buttons: tuple[tuple[tuple[str, str, str], ...], ...] = ()) -> Outgoing:
    return Outgoing(chat_id=42, kind="text", text="Hvordan går det?", buttons=buttons, row_id=1)


async def test_the_transport_sends_text_with_its_buttons_through_the_api(
    server: Server, api: BotApi
) -> None:
    server.answers = [lambda p: _ok({"message_id": 31})] * 2
    transport = Transport(Bot(TOKEN), paid_broadcast=True, api=api)
    buttons = ((("Ja", "fb:y", ""), ("Læs mere", "", "https://example.org")),)
    assert await transport(_text(buttons), False) == 31
    assert await transport(_text(), True) == 31
    reply, reminder = (params for _, _, params in server.requests)
    assert reply["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Ja", "callback_data": "fb:y"},
             {"text": "Læs mere", "url": "https://example.org"}]
        ]
    }  # fmt: skip
    assert "allow_paid_broadcast" not in reply  # paid broadcasts are for reminders only
    assert reminder["allow_paid_broadcast"] is True and "reply_markup" not in reminder


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (lambda p: _refused(429, "Too Many Requests", retry_after=4), RetryLater),
        (lambda p: _refused(403, "Forbidden: bot was blocked by the user"), Blocked),
        (lambda p: _refused(400, "Bad Request: chat not found"), Blocked),
        (lambda p: _refused(400, "Bad Request: message text is empty"), Rejected),
        (lambda p: _refused(502, "Bad Gateway"), RetryLater),
        (lambda p: _http(500, {"unexpected": True}), RetryLater),
        (lambda p: b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\noops", RetryLater),
        (lambda p: None, RetryLater),
    ],
)
async def test_the_transport_sorts_answers_into_the_senders_outcomes(
    server: Server, api: BotApi, answer: Answer, outcome: type[Exception]
) -> None:
    server.answers = [answer]
    transport = Transport(Bot(TOKEN), api=api)
    with pytest.raises(outcome) as caught:
        await transport(_text(), False)
    if isinstance(caught.value, RetryLater):
        is_429 = "429" in str(caught.value)
        assert caught.value.after == (4.0 if is_429 else None)
    if isinstance(caught.value, Rejected):
        assert "message text is empty" in str(caught.value)  # the reason is logged


def test_behind_a_proxy_the_sender_stays_with_ptb(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings
    from bot.telegram_app import direct_api

    settings = Settings(_env_file=None, telegram_bot_token=TOKEN)  # type: ignore[call-arg]
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
                 "ALL_PROXY", "no_proxy", "NO_PROXY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert isinstance(direct_api(settings), BotApi)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert direct_api(settings) is None


def _update(update_id: int, text: str, chat_type: str = "private") -> dict[str, Any]:
    chat_id = 42 if chat_type == "private" else -100
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "date": 0, "text": text,
                    "chat": {"id": chat_id, "type": chat_type},
                    "from": {"id": 42, "is_bot": False, "first_name": "Mette"}},
    }  # fmt: skip


async def test_polling_through_the_api_stores_the_json_then_confirms_by_offset(
    server: Server, api: BotApi, database: Any
) -> None:
    from bot import inbox, polling

    batch = [_update(7, "hej"), {"no": "update"}, _update(8, "/start")]
    fed: list[list[int]] = []
    done = asyncio.Event()

    def feed(items: Any) -> None:
        fed.append([stored.update_id for stored, _ in items])
        done.set()

    def second(params: dict[str, Any]) -> bytes:
        asyncio.get_running_loop().call_soon(task.cancel)
        return _ok([])

    server.answers = [lambda p: _ok(batch), second]
    task = asyncio.create_task(polling.poll(Bot(TOKEN), database, feed, long_poll=1, api=api))
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.gather(task, return_exceptions=True)
    assert fed == [[7, 8]]
    assert [s.data for s in inbox.pending(database)] == [batch[0], batch[2]]  # as sent
    first, confirm = (params for _, _, params in server.requests[:2])
    assert "offset" not in first and first["timeout"] == 1
    assert confirm["offset"] == 9  # asked only after the batch was stored


async def test_polling_ends_on_a_refused_token(server: Server, api: BotApi) -> None:
    from telegram.error import InvalidToken

    from bot import polling

    server.answers = [lambda p: _refused(401, "Unauthorized")]
    with pytest.raises(InvalidToken):
        await polling.poll(Bot(TOKEN), None, lambda items: None, api=api)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        _update(1, "hvornår kan jeg løbe igen?"),
        _update(2, "/start@fake_runner_bot hej"),
        _update(3, "hej @fake_runner_bot", chat_type="group"),
        {**_update(4, "x"), "edited_message": _update(4, "y")["message"]},
        {"update_id": 5, "message": {**_update(5, "z")["message"], "text": None}},
    ],
)
def test_the_json_fast_path_reads_an_update_as_ptb_does(data: dict[str, Any]) -> None:
    from telegram import Update

    from bot.inbox import Stored, sender_of
    from bot.telegram_app import adapt

    bot = Bot(TOKEN)
    stored = Stored(int(data["update_id"]), sender_of(data), data)
    fast = adapt(bot, stored, None)
    slow = adapt(bot, stored, Update.de_json(data, bot))
    assert fast.incoming == slow.incoming
