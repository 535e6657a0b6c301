"""bot/webhook.py against raw ASGI calls: what is refused before the body is read, what
is refused after, and that 200 comes only after `accept` returned."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bot.webhook import SECRET_HEADER, ListenError, build_webhook_app, serve, update_id_of

SECRET = "unit-Secret_42"
PATH = "/telegram"
LIMIT = 10_000
PRIVATE_TEXT = "jeg har ondt i knaeet efter loebet"


def update(update_id: int = 7, text: str = PRIVATE_TEXT) -> bytes:
    message = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "A"},
        "text": text,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


@dataclass
class Accepted:
    """The `accept` under test: records bodies, optionally raises."""

    bodies: list[bytes] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, body: bytes) -> None:
        if self.fail:
            raise RuntimeError(f"cannot store {body!r}")  # its message quotes the content
        self.bodies.append(body)


@dataclass
class Result:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    accepted_before_response: int


async def post(
    accepted: Accepted,
    chunks: Sequence[bytes],
    *,
    secret: str | None = SECRET,
    content_length: int | str | None = "auto",
    path: str = PATH,
    method: str = "POST",
) -> Result:
    """One request straight into the ASGI app; counts how many body chunks it pulled."""
    app = build_webhook_app(PATH, SECRET, accepted, max_body=LIMIT)
    headers = [(b"content-type", b"application/json")]
    if secret is not None:
        headers.append((SECRET_HEADER.encode(), secret.encode()))
    if content_length == "auto":
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    elif content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8443),
    }
    pending = list(chunks) or [b""]
    read = 0
    messages: list[dict[str, Any]] = []
    accepted_at_start: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(pending):
            read += 1
            return {
                "type": "http.request",
                "body": pending[read - 1],
                "more_body": read < len(pending),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            accepted_at_start.append(len(accepted.bodies))
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return Result(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        body,
        read,
        accepted_at_start[0],
    )


async def test_a_good_update_is_accepted_before_the_200() -> None:
    accepted = Accepted()
    result = await post(accepted, [update(41)])
    assert result.status == 200
    assert accepted.bodies == [update(41)]
    assert result.accepted_before_response == 1


async def test_a_body_in_many_chunks_is_joined() -> None:
    body = update(42)
    accepted = Accepted()
    result = await post(accepted, [body[i : i + 10] for i in range(0, len(body), 10)])
    assert result.status == 200 and accepted.bodies == [body]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
async def test_no_or_wrong_secret_is_403_and_the_body_is_never_read(secret: str | None) -> None:
    accepted = Accepted()
    result = await post(accepted, [update(), update()], secret=secret)
    assert result.status == 403
    assert result.chunks_read == 0
    assert result.headers.get("connection") == "close"
    assert accepted.bodies == []


async def test_a_declared_length_over_the_limit_is_413_unread() -> None:
    accepted = Accepted()
    result = await post(accepted, [b"x" * 100], content_length=LIMIT + 1)
    assert result.status == 413 and result.chunks_read == 0 and accepted.bodies == []


async def test_a_declared_length_at_the_limit_is_read() -> None:
    body = update(text="a" * (LIMIT - len(update(text=""))))
    assert len(body) == LIMIT
    accepted = Accepted()
    assert (await post(accepted, [body])).status == 200 and accepted.bodies == [body]


async def test_a_streamed_body_over_the_limit_is_413_and_reading_stops() -> None:
    accepted = Accepted()
    chunks = [b"x" * 1000] * 50  # 50 kB without a Content-Length, limit 10 kB
    result = await post(accepted, chunks, content_length=None)
    assert result.status == 413
    assert result.chunks_read == LIMIT // 1000 + 1  # stopped at the first chunk past it
    assert accepted.bodies == []


async def test_a_bad_content_length_is_400() -> None:
    accepted = Accepted()
    result = await post(accepted, [update()], content_length="12abc")
    assert result.status == 400 and result.chunks_read == 0 and accepted.bodies == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe{}",
        '{"update_id": 1, "text": "h\u00e6"}'.encode("latin-1"),
        b'{"update_id": 1, ',
        b"not json",
        b"[1, 2]",
        b'"update"',
        b"{}",
        b'{"update_id": "7"}',
        b'{"update_id": 7.0}',
        b'{"update_id": true}',
        b'{"update_id": -1}',
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=[
        "empty", "bom-non-utf8", "latin1", "truncated", "not-json", "list", "string",
        "no-update-id", "str-id", "float-id", "bool-id", "negative-id", "deeply-nested",
    ],
)  # fmt: skip
async def test_no_update_is_400_and_not_accepted(body: bytes) -> None:
    accepted = Accepted()
    result = await post(accepted, [body])
    assert result.status == 400
    assert accepted.bodies == []


async def test_accept_raising_is_500_so_telegram_retries() -> None:
    accepted = Accepted(fail=True)
    assert (await post(accepted, [update()])).status == 500


async def test_only_post_on_the_path_reaches_accept() -> None:
    accepted = Accepted()
    assert (await post(accepted, [update()], method="GET")).status == 405
    assert (await post(accepted, [update()], path="/other")).status == 404
    assert accepted.bodies == []


async def test_the_log_holds_ids_and_sizes_never_content(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.webhook")
    await post(Accepted(), [update(901)])
    await post(Accepted(fail=True), [update(902)])
    await post(Accepted(), [update(903)], secret="wrong")
    await post(Accepted(), [update(904)[:-3]])
    await post(Accepted(), [update(905)], content_length=LIMIT + 5)
    log = caplog.text
    assert "901" in log and "902" in log and "RuntimeError" in log
    assert str(len(update(902))) in log
    assert PRIVATE_TEXT not in log and "cannot store" not in log and "knaeet" not in log
    assert SECRET not in log
    assert len(caplog.records) == 5


def test_update_id_of() -> None:
    assert update_id_of(update(12)) == 12
    assert update_id_of(b'{"update_id": 0}') == 0
    assert update_id_of(b"{") is None


async def test_over_http_semantics_with_an_httpx_client() -> None:
    """The same app behind httpx's ASGI transport: headers as a real client sends them."""
    accepted = Accepted()
    app = build_webhook_app(PATH, SECRET, accepted, max_body=LIMIT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        assert (await client.get("/healthz")).status_code == 200
        ok = await client.post(PATH, content=update(3), headers={SECRET_HEADER: SECRET})
        assert ok.status_code == 200
        assert (await client.post(PATH, content=update(4))).status_code == 403
        big = await client.post(PATH, content=b"x" * (LIMIT + 1), headers={SECRET_HEADER: SECRET})
        assert big.status_code == 413
    assert accepted.bodies == [update(3)]


def test_a_webhook_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        build_webhook_app(PATH, "", Accepted())


async def test_serving_on_a_busy_port_is_one_clear_error() -> None:
    app = build_webhook_app(PATH, SECRET, Accepted())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}"):
            await serve(app, "127.0.0.1", port)


def test_webhook_max_body_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import SettingsError, load_settings

    monkeypatch.delenv("WEBHOOK_MAX_BODY", raising=False)
    assert load_settings(_env_file=None).webhook_max_body == 1_000_000
    monkeypatch.setenv("WEBHOOK_MAX_BODY", "2000000")
    assert load_settings(_env_file=None).webhook_max_body == 2_000_000
    monkeypatch.setenv("WEBHOOK_MAX_BODY", "10")
    with pytest.raises(SettingsError, match="WEBHOOK_MAX_BODY"):
        load_settings(_env_file=None)
