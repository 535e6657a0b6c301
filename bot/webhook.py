"""The webhook: a small ASGI app (starlette, served by uvicorn) in front of `accept`.

Why not python-telegram-bot's own webhook server: it reads the whole body before it
checks the secret (unauthenticated 5 MB posts grow the process), answers 500 to a
malformed body and logs an unparseable update's content. Here every request goes
through the same short order, and each step refuses before the next costs anything:

1. the secret (`X-Telegram-Bot-Api-Secret-Token`, compared in constant time): 403,
   the body is never read;
2. the size: a Content-Length over the limit gets 413 at once; without one (chunked)
   the body is counted while it streams in and reading stops at the limit (413);
3. the body must be UTF-8 JSON, an object with an int `update_id`: else 400;
4. `accept(body)` is awaited, and only when it returns is 200 sent. `accept` stores the
   update (bot/inbox.py), so 200 means stored; a ValueError from it (no update after
   all) gives 400, any other exception 500, and Telegram delivers the update again.

Crash window: a crash after `accept` returned and before the 200 reached Telegram
makes Telegram deliver the update again; `accept` (and the engine's update-id check)
must treat that redelivery as a duplicate.

Nothing of an update's content is logged, at any level: only its update_id and sizes,
and for a failing `accept` the exception's type and where it was raised (an exception's
message can quote its input, e.g. a database error's parameters).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

Accept = Callable[[bytes], Awaitable[None]]

SECRET_HEADER = "x-telegram-bot-api-secret-token"
# Telegram's updates are a few kB; a body of 1 MB is no update.
DEFAULT_MAX_BODY = 1_000_000
# A client that trickles its body is cut off (slow-loris) instead of holding a slot.
DEFAULT_READ_TIMEOUT = 30.0
HEALTH_PATH = "/healthz"


def _answer(status: int, reason: str, *, close: bool = False) -> Response:
    """A short plain-text answer; `close` ends the connection when the body is unread,
    so the server drops whatever the client still sends instead of parsing it."""
    headers = {"Connection": "close"} if close else None
    return PlainTextResponse(reason, status_code=status, headers=headers)


def _where(exc: BaseException) -> str:
    """`file:line in function` of the innermost frame: a location, never a value."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"


def update_id_of(body: bytes) -> int | None:
    """The update_id of a body that is UTF-8 JSON for an update object, else None."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[...
        return None
    update_id = data.get("update_id") if isinstance(data, dict) else None
    # bool is an int subclass: `"update_id": true` is no update.
    if type(update_id) is not int or update_id < 0:
        return None
    return update_id


def build_webhook_app(
    path: str,
    secret: str,
    accept: Accept,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
) -> Starlette:
    """The ASGI app: POST `path` for Telegram (see the module docstring), GET /healthz
    for the operator (200 while the process serves; it tells nothing about updates)."""
    if not secret:
        raise ValueError("a webhook needs a secret")
    expected = secret.encode("utf-8")
    route = "/" + path.strip("/")

    async def webhook(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1")
        if not hmac.compare_digest(given, expected):
            log.info("webhook: refused a request without the right secret (403)")
            return _answer(403, "forbidden", close=True)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return _answer(400, "bad content-length", close=True)
            if int(declared) > max_body:
                log.info("webhook: refused a body of %s bytes (limit %d, 413)", declared, max_body)
                return _answer(413, "too large", close=True)
        body = bytearray()
        too_large = False
        try:
            async with asyncio.timeout(read_timeout):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > max_body:
                        too_large = True
                        break
        except TimeoutError:
            log.info("webhook: body not complete within %.0f s (408)", read_timeout)
            return _answer(408, "timeout", close=True)
        except ClientDisconnect:
            return _answer(400, "disconnected", close=True)
        if too_large:
            log.info("webhook: refused a streamed body over %d bytes (413)", max_body)
            return _answer(413, "too large", close=True)
        update_id = update_id_of(bytes(body))
        if update_id is None:
            log.info("webhook: refused a body of %d bytes that is no update (400)", len(body))
            return _answer(400, "not an update")
        try:
            await accept(bytes(body))
        except ValueError:
            # `accept` refuses it as no update (inbox.BadUpdate): resending would not help.
            log.info("webhook: update %d refused by accept (400)", update_id)
            return _answer(400, "not an update")
        except Exception as exc:
            log.error(
                "webhook: update %d (%d bytes) not accepted: %s at %s; answered 500, "
                "Telegram will deliver it again",
                update_id, len(body), type(exc).__name__, _where(exc),
            )  # fmt: skip
            return _answer(500, "not accepted")
        log.debug("webhook: update %d accepted (%d bytes)", update_id, len(body))
        return _answer(200, "ok")

    async def health(request: Request) -> Response:
        return _answer(200, "ok")

    return Starlette(
        routes=[
            Route(route, webhook, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ]
    )


class ListenError(Exception):
    """The webhook server could not listen (address in use, no permission)."""


@contextlib.contextmanager
def _signals_end_serving() -> Iterator[None]:
    """SIGTERM/SIGINT end `serve` and then nothing else.

    uvicorn handles both signals while it serves and afterwards raises the caught signal
    again under the previous handler; by default that kills the process (SIGTERM) or
    cancels the main task (SIGINT) before the Application is stopped. Here the previous
    handler is a no-op, so the caller's cleanup after `serve` runs.
    """

    def ignore(signum: int, frame: FrameType | None) -> None:
        return None

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (uvicorn then sets none either)
        return
    previous = {sig: signal.signal(sig, ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def serve(app: Starlette, host: str, port: int) -> None:
    """Serve `app` until SIGTERM/SIGINT; ListenError when the port cannot be bound.

    uvicorn's own logging setup is off (its lines reach the root handlers and so the
    bot's redaction), and so is its access log: a request line is no business of the log.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    with _signals_end_serving():
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind
            raise ListenError(f"the webhook server cannot listen on {host}:{port}") from None
    if not server.started:
        raise ListenError(f"the webhook server cannot listen on {host}:{port}")
