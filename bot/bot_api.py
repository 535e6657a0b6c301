"""A small Bot API client for the sender's hot path: JSON POSTs over kept-alive HTTP/1.1.

Each sendMessage through PTB's request layer (httpx, httpcore, anyio) costs 1-3 ms of
CPU on this machine, as much as the turn that produced it; asyncio's own streams do the
same exchange for about 0.1 ms. So the sender's text messages and polling's getUpdates
(whose updates are stored as Telegram sent them, not parsed into PTB objects and back)
go through `BotApi`; uploads, callback answers and start-up calls stay with PTB.

One request is one `call()`: the parameters as a JSON body, the answer's `result` back.
Telegram's refusals become `ApiError` (its error_code, description and retry_after); a
refused connection, a dropped one, a malformed answer or a `timeout` become
`ApiUnreachable`. A connection is reused only after a complete answer that did not ask
to close it; any failure closes it. No call is retried here: that is the sender's job
(bot/sender.py), which alone knows whether a retry may send a message twice.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

POOL = 32  # connections kept open (the sender has at most 16 messages in flight, plus polling)
TIMEOUT = 10.0  # seconds for one whole request: connect, send, Telegram's answer
# A kept-alive connection idle this long is closed instead of reused: servers drop idle
# connections after a while, and a request written into a dropped one fails.
IDLE = 30.0
MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
# The start of Telegram's answer to a message sent: {"ok":true,"result":{"message_id":N,
_SENT = re.compile(
    rb'\{\s*"ok"\s*:\s*true\s*,\s*"result"\s*:\s*\{\s*"message_id"\s*:\s*(\d+)\s*[,}]'
)


class ApiError(Exception):
    """Telegram answered and refused: `status` is its error_code."""

    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description
        self.retry_after = retry_after


class ApiUnreachable(Exception):
    """No usable answer: connection refused or dropped, a timeout, a malformed answer."""


class ApiTimeout(ApiUnreachable):
    """No answer within the call's timeout (Telegram may still have acted on it)."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class BotApi:
    """POSTs to `{base_url}{token}/{method}`; base_url as in Settings.telegram_base_url."""

    def __init__(
        self, base_url: str, token: str, pool: int = POOL, timeout: float = TIMEOUT
    ) -> None:
        parts = urlsplit(f"{base_url}{token}/")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) Bot API address: {base_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default = 443 if self._tls else 80
        host_header = self._host if self._port == default else f"{self._host}:{self._port}"
        self._path = parts.path
        self._head = (
            "POST {path} HTTP/1.1\r\n"
            f"Host: {host_header}\r\n"
            "User-Agent: runner-bot\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: {length}\r\n"
            "Connection: keep-alive\r\n\r\n"
        )
        self._ssl = ssl.create_default_context() if self._tls else None
        self._pool = pool
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._closed = False

    async def call(self, method: str, params: dict[str, Any], within: float | None = None) -> Any:
        """One Bot API call; returns its `result`. Raises ApiError or ApiUnreachable
        (ApiTimeout after `within` seconds, by default the client's timeout)."""
        status, data = await self._post(method, params, within)
        return self._result(status, data)

    async def send(self, method: str, params: dict[str, Any]) -> int | None:
        """A call whose result is a Message (sendMessage): its message_id, the only part
        the sender keeps. Telegram's answer starts with it, so the rest (the whole message
        echoed back, often kilobytes) is not decoded; any other answer goes as in call()."""
        status, data = await self._post(method, params, None)
        sent = _SENT.match(data) if status == 200 else None
        if sent is not None:
            return int(sent.group(1))
        result = self._result(status, data)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id if isinstance(message_id, int) else None

    async def _post(
        self, method: str, params: dict[str, Any], within: float | None
    ) -> tuple[int, bytes]:
        body = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        head = self._head.format(path=self._path + method, length=len(body)).encode("latin-1")
        limit = self._timeout if within is None else within
        try:
            async with asyncio.timeout(limit):
                return await self._exchange(head + body)
        except TimeoutError as exc:
            raise ApiTimeout(f"no answer within {limit:.0f} s") from exc

    @staticmethod
    def _result(status: int, data: bytes) -> Any:
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise ApiUnreachable(f"HTTP {status} with a body that is not JSON") from exc
        if not isinstance(answer, dict):
            raise ApiUnreachable(f"HTTP {status} with a body that is no Bot API answer")
        if answer.get("ok") is True:
            return answer.get("result")
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        code = answer.get("error_code")
        raise ApiError(
            code if isinstance(code, int) else status,
            str(answer.get("description") or f"HTTP {status}"),
            float(retry_after) if isinstance(retry_after, int | float) else None,
        )

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        connection = await self._connection()
        try:
            connection.writer.write(request)
            status, data, keep = await self._response(connection.reader)
        except BaseException as exc:
            connection.close()
            if isinstance(exc, OSError | asyncio.IncompleteReadError | asyncio.LimitOverrunError):
                raise ApiUnreachable(f"{type(exc).__name__}: {exc}") from exc
            raise
        if keep and not self._closed and len(self._idle) < self._pool:
            connection.used = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()
        return status, data

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.used < IDLE and not connection.reader.at_eof():
                return connection
            connection.close()
        try:
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._ssl, limit=MAX_HEADER
            )
        except OSError as exc:
            raise ApiUnreachable(f"cannot connect: {exc}") from exc
        return _Connection(reader, writer)

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        """(status, body, whether the connection may be reused) of one HTTP/1.1 answer."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
            raise ApiUnreachable(f"not an HTTP answer: {lines[0][:80]!r}")
        status = int(status_line[1]) if status_line[1].isdigit() else 0
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close" and status_line[0] != "HTTP/1.0"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, await _chunked(reader), keep
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            return status, await reader.read(MAX_BODY), False  # the body ends with the connection
        if int(length) > MAX_BODY:
            raise ApiUnreachable(f"an answer of {length} bytes")
        return status, await reader.readexactly(int(length)), keep

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as exc:
            raise ApiUnreachable("a malformed chunked answer") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise ApiUnreachable("an answer too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


__all__ = ["ApiError", "ApiTimeout", "ApiUnreachable", "BotApi"]
