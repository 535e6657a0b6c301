"""A fake Telegram Bot API server for end-to-end tests and benchmarks.

No maintained package fakes the Bot API for python-telegram-bot v22, so this module
provides one on the standard library only: a ``ThreadingHTTPServer`` on 127.0.0.1 with an
ephemeral port, run in a background thread. Point the bot at :attr:`FakeTelegram.base_url`
(``TELEGRAM_BASE_URL``) and it talks to the fake exactly as it would to api.telegram.org.

The server speaks the Bot API's wire format as PTB uses it: ``POST {base_url}{token}/{method}``
with ``application/x-www-form-urlencoded`` bodies (JSON-valued parameters such as
``reply_markup`` are JSON strings inside the form), ``multipart/form-data`` for uploads,
``application/json`` bodies and GET query strings. Answers have the API's shape:
``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ..., "description": ...}``.

The test side queues user updates (:meth:`FakeTelegram.send_text`, :meth:`press_button`, ...),
inspects what the bot sent (:attr:`FakeTelegram.sent`, :meth:`FakeTelegram.wait_for`) and
injects failures at the network edge (rate limit, blocked users, 5xx for the next N calls).

Everything is guarded by one lock, so the fake can be driven from any thread while the bot
hammers it from another process or event loop.

Typical end-to-end test (the bot as a subprocess with TELEGRAM_BASE_URL=fake.base_url)::

    fake.wait_until_polling()                    # the bot is up and long-polling
    fake.send_command(42, "start")
    welcome = fake.wait_for(lambda c: c.chat_id == 42 and c.method == "sendMessage")
    fake.press_button(42, welcome, welcome.button_data[0])
    fake.wait_for(lambda c: "grøn" in c.text.lower(), since=len(fake.sent))

In async tests whose Application runs in the test's own event loop, use
``await fake.wait_for_async(...)`` (the blocking wait runs in a worker thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

JSONDict = dict[str, Any]

DEFAULT_TOKEN = "123456789:AAFakeTokenForEndToEndTests_0123456"
BOT_USERNAME = "fake_runner_bot"

# Parameters whose form value is a JSON document (PTB json.dumps them inside the form).
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "scope",
        "media",
        "menu_button",
    }
)
# Parameters that are integers on the wire; chat_id may also be "@channelname".
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "user_id",
        "message_thread_id",
        "max_connections",
        "cache_time",
        "reply_to_message_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "has_spoiler",
        "disable_content_type_detection",
        "allow_sending_without_reply",
        "disable_web_page_preview",
    }
)

# Methods that deliver something to a chat: subject to the rate limit.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
# Read-only methods, left out of FakeTelegram.sent (they are still in FakeTelegram.calls).
READ_METHODS = frozenset({"getMe", "getUpdates", "getWebhookInfo", "getMyCommands"})
# Methods that fail with 403 when the target user has blocked the bot.
_BLOCKABLE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendChatAction"})

_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA_BYTES = 64


class ApiError(Exception):
    """An error answer of the Bot API; the handler turns it into the JSON error shape."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request, kept byte-exact for assertions."""

    field: str
    filename: str
    content_type: str
    content: bytes


@dataclass
class Call:
    """One request the bot made, as the fake received and answered it."""

    method: str
    params: JSONDict
    files: dict[str, UploadedFile]
    status: int
    response: JSONDict
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        """The ``result`` of a successful call (e.g. the Message dict); None for errors."""
        return self.response.get("result")

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def text(self) -> str:
        """The visible text: ``text`` for messages, ``caption`` for uploads, else empty."""
        value = self.params.get("text", self.params.get("caption", ""))
        return value if isinstance(value, str) else str(value)

    @property
    def reply_markup(self) -> JSONDict | None:
        value = self.params.get("reply_markup")
        return value if isinstance(value, dict) else None

    @property
    def button_data(self) -> list[str]:
        """All callback_data values of the inline keyboard, row by row."""
        return [
            b["callback_data"] for b in _inline_buttons(self.reply_markup) if "callback_data" in b
        ]

    @property
    def button_texts(self) -> list[str]:
        """All button labels (inline or reply keyboard), row by row."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [b if isinstance(b, str) else str(b.get("text", "")) for row in rows for b in row]

    def describe(self) -> str:
        """One line for assertion messages."""
        text = self.text.replace("\n", " ")
        if len(text) > 80:
            text = text[:77] + "..."
        extra = f" buttons={self.button_data}" if self.button_data else ""
        files = f" files={sorted(self.files)}" if self.files else ""
        return f"{self.method}[{self.status}] chat={self.chat_id} {text!r}{extra}{files}"


def _inline_buttons(markup: Mapping[str, Any] | None) -> list[JSONDict]:
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or []
    return [b for row in rows for b in row if isinstance(b, dict)]


def _utf16_len(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units by Telegram."""
    return len(text.encode("utf-16-le")) // 2


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header (charts are PNG); (0, 0) for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 0, 0


def _decode_value(name: str, value: str) -> Any:
    """Turn a form string back into the typed value the bot meant to send."""
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from exc
    if name in _INT_PARAMS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if name == "timeout":
        try:
            return float(value)
        except ValueError as exc:
            raise ApiError(400, "Bad Request: wrong timeout specified") from exc
    if name in _BOOL_PARAMS:
        return value.lower() in ("true", "1")
    return value


_DISPOSITION_PARAM = re.compile(r';\s*(name|filename)="((?:[^"\\]|\\.)*)"')


def parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """Split a multipart/form-data body into plain fields and files (byte-exact)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ApiError(400, "Bad Request: multipart boundary is missing")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(_DISPOSITION_PARAM.findall(headers.get("content-disposition", "")))
        name = params.get("name")
        if name is None:
            continue
        if "filename" in params:
            files[name] = UploadedFile(
                field=name,
                filename=params["filename"],
                content_type=headers.get("content-type", "application/octet-stream"),
                content=content,
            )
        else:
            try:
                fields[name] = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, "Bad Request: strings must be encoded in UTF-8") from exc
    return fields, files


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def post_update_to_webhook(
    url: str, update: Mapping[str, Any], secret: str | None = None, timeout: float = 10.0
) -> int:
    """POST one Update to a bot's webhook as Telegram would; return the HTTP status.

    Only loopback URLs are allowed: tests never touch the network.
    """
    if not _is_loopback(url):
        raise ValueError(f"refusing to post to non-loopback webhook {url!r}")
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(
        url, data=json.dumps(update).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its FakeTelegram and open connections."""

    daemon_threads = True
    fake: FakeTelegram

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (a cancelled long poll, close()); report bugs."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Decodes one Bot API request and hands it to FakeTelegram.dispatch."""

    protocol_version = "HTTP/1.1"  # keep-alive: PTB's httpx pool reuses connections
    wbufsize = -1  # buffer headers and body into one write, flushed per request
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle plus delayed ACKs cost ~40 ms per keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; tests inspect FakeTelegram.calls instead."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        try:
            length = max(int(self.headers.get("Content-Length") or 0), 0)
        except ValueError:
            length = 0
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        fault = self.server.fake.net_fault(url.path)
        if fault is not None and fault[0] == "drop":
            time.sleep(fault[1])
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, payload = self.server.fake.dispatch(url.path, url.query, content_type, body)
        if fault is not None:  # "slow": done, but the answer comes late
            time.sleep(fault[1])
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeTelegram:
    """A fake Bot API server plus the test-side controls around it.

    Use as a context manager (``with FakeTelegram() as fake:``) or via the ``fake_telegram``
    pytest fixture. Failure injection knobs may be changed at any time:

    * ``rate_limit_per_second``: when set, sending methods beyond that many calls in any
      ``rate_limit_window`` seconds (default 1; tests widen it to be deterministic) get
      HTTP 429 with ``retry_after`` = ``rate_limit_retry_after``; ``rate_limited_count``
      counts the 429s sent.
    * ``blocked_users``: chat ids for which sends answer 403 ``bot was blocked by the user``.
    * :meth:`fail_next`: the next N calls of a method answer with a 5xx error;
      :meth:`fail_next_429` with 429 and a retry_after; :meth:`drop_next` closes the
      connection unanswered (after a delay), :meth:`slow_next` answers late.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = BOT_USERNAME,
        first_name: str = "Runner Guide Test Bot",
        rate_limit_per_second: int | None = None,
        rate_limit_retry_after: int = 1,
        rate_limit_window: float = 1.0,
        blocked_users: Iterable[int] = (),
    ) -> None:
        self.token = token
        self.bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.rate_limit_per_second = rate_limit_per_second
        self.rate_limit_retry_after = rate_limit_retry_after
        self.rate_limit_window = rate_limit_window
        self.rate_limited_count = 0
        self.blocked_users: set[int] = set(blocked_users)

        self._lock = threading.Condition()
        self._retry_after: dict[str, int] = {}
        self._closing = False
        self._update_ids = itertools.count(100_000)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._updates: deque[JSONDict] = deque()
        self._pollers = 0
        self._calls: list[Call] = []
        self._sent: list[Call] = []  # the successful non-read subset of _calls
        self._send_times: deque[float] = deque()
        self._failures: dict[str, list[tuple[int, str]]] = {}
        # Network-level faults per method: ("drop", delay) closes the connection without an
        # answer after `delay` s (the request is not carried out); ("slow", delay) carries it
        # out and answers after `delay` s.
        self._net_faults: dict[str, list[tuple[str, float]]] = {}
        self._chats: dict[int, JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._callback_queries: set[str] = set()
        self._files: dict[str, JSONDict] = {}
        self._commands: dict[str, list[JSONDict]] = {}
        self.bot_commands: list[JSONDict] | None = None
        self.webhook: JSONDict = {"url": "", "secret_token": None, "allowed_updates": None}

        self._table = self._handlers()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how fast close() stops the accept loop
            name="fake-telegram",
            daemon=True,
        )
        self._started = False
        self._pusher: threading.Thread | None = None
        self.webhook_posts: Counter[int] = Counter()  # HTTP status -> count, by the pusher

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The value for TELEGRAM_BASE_URL / ``Bot(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> Self:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def close(self) -> None:
        """Stop serving, wake long pollers and cut keep-alive connections."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._started = False
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------- failure injection

    def fail_next(
        self, method: str, count: int = 1, status: int = 500, description: str | None = None
    ) -> None:
        """Make the next ``count`` calls of ``method`` answer with an HTTP ``status`` error."""
        text = description or {
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout",
        }.get(status, "Internal Server Error")
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, text)] * count)

    def fail_next_429(self, method: str, retry_after: int = 1, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` answer 429 with ``retry_after``."""
        with self._lock:
            self._failures.setdefault(method, []).extend(
                [(429, f"Too Many Requests: retry after {retry_after}")] * count
            )
            self._retry_after[method] = retry_after

    def drop_next(self, method: str, delay: float = 0.0, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` are not carried out: after ``delay`` s the
        connection is closed without an answer (a dropped connection; with a delay longer
        than the client's timeout, a timeout)."""
        with self._lock:
            self._net_faults.setdefault(method, []).extend([("drop", delay)] * count)

    def slow_next(self, method: str, delay: float, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` are carried out but answered ``delay`` s late."""
        with self._lock:
            self._net_faults.setdefault(method, []).extend([("slow", delay)] * count)

    def clear_faults(self) -> None:
        """Forget every injected failure that has not happened yet."""
        with self._lock:
            self._net_faults.clear()
            self._failures.clear()

    def net_fault(self, path: str) -> tuple[str, float] | None:
        """The network fault (if any) for the next request to ``path`` (the handler's side)."""
        match = re.fullmatch(r"/bot[^/]+/([A-Za-z]+)", path)
        if not match:
            return None
        with self._lock:
            faults = self._net_faults.get(match.group(1))
            return faults.pop(0) if faults else None

    # ----------------------------------------------------------- what the bot sent

    @property
    def calls(self) -> list[Call]:
        """Every request received, including getUpdates and failed ones (a snapshot)."""
        with self._lock:
            return list(self._calls)

    @property
    def sent(self) -> list[Call]:
        """Successful calls that act (not the reads getMe/getUpdates/...), in order."""
        with self._lock:
            return self._sent_locked()

    def _sent_locked(self) -> list[Call]:
        return list(self._sent)

    def messages_to(self, chat_id: int) -> list[Call]:
        """Successful sendMessage/sendPhoto/sendDocument calls to one chat."""
        with self._lock:
            return [
                c
                for c in self._sent
                if c.chat_id == chat_id and c.method in ("sendMessage", "sendPhoto", "sendDocument")
            ]

    def wait_for(
        self, predicate: Callable[[Call], bool], timeout: float = 10.0, *, since: int = 0
    ) -> Call:
        """Block until a successful call at index >= ``since`` of :attr:`sent` matches."""
        return self.wait_for_count(1, predicate, timeout=timeout, since=since)[0]

    def wait_for_count(
        self,
        n: int,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> list[Call]:
        """Block until ``n`` successful calls (from index ``since``) match; return them.

        On timeout raise AssertionError listing everything that was sent.
        """
        deadline = time.monotonic() + timeout
        matches: list[Call] = []
        scanned = since  # scan each new call once: cheap even for thousands of sends
        with self._lock:
            while True:
                for call in self._sent[scanned:]:
                    if predicate is None or predicate(call):
                        matches.append(call)
                scanned = max(scanned, len(self._sent))
                if len(matches) >= n:
                    return matches[:n]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing:
                    sent = self._sent[since:]
                    listing = "\n".join(f"  {c.describe()}" for c in sent) or "  (nothing)"
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {n} matching call(s), "
                        f"got {len(matches)}; the bot sent (from index {since}):\n{listing}"
                    )
                self._lock.wait(remaining)

    async def wait_for_async(
        self,
        predicate: Callable[[Call], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - wait_for's signature; it runs in a thread
        *,
        since: int = 0,
    ) -> Call:
        """:meth:`wait_for` for async tests whose bot runs in the same event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout, since=since)

    def wait_until_polling(self, timeout: float = 10.0) -> None:
        """Block until a getUpdates long poll is waiting: the bot is up and listening."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pollers == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no getUpdates long poll within {timeout}s")
                self._lock.wait(remaining)

    @property
    def pending_updates(self) -> int:
        with self._lock:
            return len(self._updates)

    # ----------------------------------------------------------- what users do

    def _user(self, user_id: int, first_name: str) -> JSONDict:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "da"}

    def _chat(self, user_id: int, chat_id: int | None, first_name: str) -> JSONDict:
        if chat_id is None or chat_id == user_id:
            chat: JSONDict = {"id": user_id, "type": "private", "first_name": first_name}
        else:
            chat = {"id": chat_id, "type": "group", "title": "Test group"}
        self._chats[chat["id"]] = chat
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        return message_id

    def _user_message(
        self, user_id: int, chat_id: int | None, first_name: str, content: JSONDict
    ) -> JSONDict:
        chat = self._chat(user_id, chat_id, first_name)
        return {
            "message_id": self._new_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self._user(user_id, first_name),
            **content,
        }

    def enqueue(self, kind: str, payload: JSONDict) -> JSONDict:
        """Queue an Update of ``kind`` (message, callback_query, ...) and return it."""
        with self._lock:
            update = {"update_id": next(self._update_ids), kind: payload}
            self._updates.append(update)
            self._lock.notify_all()
            return update

    def _text_entities(self, text: str) -> list[JSONDict]:
        """Mark a leading /command and @mentions as Telegram clients do."""
        entities: list[JSONDict] = []
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            entities.append({"type": "bot_command", "offset": 0, "length": len(command.group())})
        for mention in re.finditer(r"(?<![\w/])@[A-Za-z0-9_]{5,32}", text):
            entities.append(
                {
                    "type": "mention",
                    "offset": _utf16_len(text[: mention.start()]),
                    "length": len(mention.group()),
                }
            )
        return entities

    def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        first_name: str = "Test",
        *,
        reply_to: Mapping[str, Any] | Call | None = None,
    ) -> JSONDict:
        """Queue a text message from a user; a ``chat_id`` other than ``user_id`` is a group."""
        content: JSONDict = {"text": text}
        entities = self._text_entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            content["reply_to_message"] = self._bot_message(reply_to)
        with self._lock:
            message = self._user_message(user_id, chat_id, first_name, content)
        return self.enqueue("message", message)

    def send_command(
        self,
        user_id: int,
        command: str,
        args: str = "",
        chat_id: int | None = None,
        first_name: str = "Test",
        *,
        mention_bot: bool = False,
    ) -> JSONDict:
        """Queue ``/command [args]``; ``mention_bot`` appends ``@botname`` as in groups."""
        text = "/" + command.lstrip("/")
        if mention_bot:
            text += "@" + str(self.bot_user["username"])
        if args:
            text += " " + args
        return self.send_text(user_id, text, chat_id=chat_id, first_name=first_name)

    def mention(self) -> str:
        return "@" + str(self.bot_user["username"])

    def _file_ref(self, prefix: str) -> JSONDict:
        n = next(self._file_ids)
        return {"file_id": f"{prefix}-{n}", "file_unique_id": f"u{prefix}{n}"}

    def send_sticker(self, user_id: int, chat_id: int | None = None) -> JSONDict:
        sticker = {
            **self._file_ref("sticker"),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        with self._lock:
            message = self._user_message(user_id, chat_id, "Test", {"sticker": sticker})
        return self.enqueue("message", message)

    def send_photo(
        self, user_id: int, chat_id: int | None = None, caption: str | None = None
    ) -> JSONDict:
        ref = self._file_ref("userphoto")
        content: JSONDict = {
            "photo": [
                {**ref, "width": 90, "height": 90, "file_size": 1200},
                {
                    **ref,
                    "file_id": ref["file_id"] + "-big",
                    "width": 800,
                    "height": 800,
                    "file_size": 48000,
                },
            ]
        }
        if caption is not None:
            content["caption"] = caption
        with self._lock:
            message = self._user_message(user_id, chat_id, "Test", content)
        return self.enqueue("message", message)

    def send_voice(self, user_id: int, chat_id: int | None = None) -> JSONDict:
        voice = {
            **self._file_ref("voice"),
            "duration": 3,
            "mime_type": "audio/ogg",
            "file_size": 9000,
        }
        with self._lock:
            message = self._user_message(user_id, chat_id, "Test", {"voice": voice})
        return self.enqueue("message", message)

    def send_location(
        self,
        user_id: int,
        chat_id: int | None = None,
        latitude: float = 55.6761,
        longitude: float = 12.5683,
    ) -> JSONDict:
        location = {"latitude": latitude, "longitude": longitude}
        with self._lock:
            message = self._user_message(user_id, chat_id, "Test", {"location": location})
        return self.enqueue("message", message)

    def edit_text(self, user_id: int, message: Mapping[str, Any], new_text: str) -> JSONDict:
        """Queue an ``edited_message`` for a message the user sent (an update or message)."""
        original = message.get("message", message)
        edited = {**original, "text": new_text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        entities = self._text_entities(new_text)
        if entities:
            edited["entities"] = entities
        if edited.get("from", {}).get("id") != user_id:
            raise AssertionError(f"user {user_id} can only edit their own message: {original}")
        return self.enqueue("edited_message", edited)

    def _bot_message(self, message: Mapping[str, Any] | Call) -> JSONDict:
        """The current state of a message the bot sent (after edits), from a Call or dict."""
        msg = message.result if isinstance(message, Call) else message
        if not isinstance(msg, Mapping) or "message_id" not in msg or "chat" not in msg:
            raise AssertionError(f"not a message the bot sent: {message!r}")
        key = (int(msg["chat"]["id"]), int(msg["message_id"]))
        with self._lock:
            current = self._messages.get(key)
        if current is None:
            raise AssertionError(f"the bot never sent (or deleted) message {key}")
        return current

    def press_button(
        self,
        user_id: int,
        message: Mapping[str, Any] | Call,
        data: str,
        first_name: str = "Test",
    ) -> JSONDict:
        """Queue a callback_query for an inline button of a message the bot sent."""
        current = self._bot_message(message)
        available = [
            b["callback_data"]
            for b in _inline_buttons(current.get("reply_markup"))
            if "callback_data" in b
        ]
        if data not in available:
            raise AssertionError(f"no button with callback_data {data!r}; buttons: {available}")
        with self._lock:
            query_id = str(next(self._callback_ids))
            self._callback_queries.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(user_id, first_name),
            "chat_instance": f"ci{current['chat']['id']}",
            "message": current,
            "data": data,
        }
        return self.enqueue("callback_query", query)

    # ----------------------------------------------------------- the server side

    def dispatch(
        self, path: str, query: str, content_type: str, body: bytes
    ) -> tuple[int, JSONDict]:
        """Answer one HTTP request: ``(status, JSON payload)``. Never raises."""
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if not match:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = match.groups()
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        params: JSONDict = {}
        files: dict[str, UploadedFile] = {}
        try:
            params, files = self._decode(query, content_type, body)
            result = self._call(method, params, files)
            status, payload = 200, {"ok": True, "result": result}
        except ApiError as err:
            status = err.status
            payload = {"ok": False, "error_code": err.status, "description": err.description}
            if err.parameters:
                payload["parameters"] = err.parameters
        except Exception as exc:  # a bug in the fake must not hang the bot
            status = 500
            payload = {"ok": False, "error_code": 500, "description": f"Fake server error: {exc!r}"}
        call = Call(method, params, files, status, payload)
        with self._lock:
            self._calls.append(call)
            if call.ok and method not in READ_METHODS:
                self._sent.append(call)
            self._lock.notify_all()
        return status, payload

    def _decode(
        self, query: str, content_type: str, body: bytes
    ) -> tuple[JSONDict, dict[str, UploadedFile]]:
        raw: dict[str, str] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        files: dict[str, UploadedFile] = {}
        params: JSONDict = {}
        if content_type.startswith("multipart/form-data"):
            fields, files = parse_multipart(body, content_type)
            raw.update(fields)
        elif content_type.startswith("application/json") and body:
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse JSON") from exc
            if not isinstance(decoded, dict):
                raise ApiError(400, "Bad Request: parameters must be a JSON object")
            params.update(decoded)
        elif body:
            try:
                form = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(400, "Bad Request: strings must be encoded in UTF-8") from exc
            raw.update(urllib.parse.parse_qsl(form, keep_blank_values=True))
        for name, value in raw.items():
            params[name] = _decode_value(name, value)
        return params, files

    def _call(self, method: str, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        handler = self._table.get(method)
        if handler is None:
            raise ApiError(404, "Not Found")
        with self._lock:
            failures = self._failures.get(method)
            if failures:
                status, description = failures.pop(0)
                if status == 429:
                    retry = self._retry_after.get(method, 1)
                    raise ApiError(status, description, {"retry_after": retry})
                raise ApiError(status, description)
            if method in SENDING_METHODS:
                self._check_rate_limit()
        if method in _BLOCKABLE_METHODS and params.get("chat_id") in self.blocked_users:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return handler(params, files)

    def _check_rate_limit(self) -> None:
        """Sliding window (one second by default) over sending methods; caller holds the lock."""
        limit = self.rate_limit_per_second
        if limit is None:
            return
        now = time.monotonic()
        while self._send_times and now - self._send_times[0] >= self.rate_limit_window:
            self._send_times.popleft()
        if len(self._send_times) >= limit:
            self.rate_limited_count += 1
            retry = self.rate_limit_retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        self._send_times.append(now)

    def _handlers(self) -> dict[str, Callable[[JSONDict, dict[str, UploadedFile]], Any]]:
        return {
            "getMe": lambda p, f: self.bot_user,
            "getUpdates": lambda p, f: self._get_updates(p),
            "deleteWebhook": lambda p, f: self._delete_webhook(p),
            "setWebhook": lambda p, f: self._set_webhook(p),
            "getWebhookInfo": lambda p, f: self._webhook_info(),
            "setMyCommands": lambda p, f: self._set_commands(p),
            "getMyCommands": lambda p, f: self._get_commands(p),
            "sendMessage": lambda p, f: self._send_message(p),
            "editMessageText": lambda p, f: self._edit_text(p),
            "editMessageReplyMarkup": lambda p, f: self._edit_markup(p),
            "answerCallbackQuery": lambda p, f: self._answer_callback(p),
            "sendPhoto": lambda p, f: self._send_upload("photo", p, f),
            "sendDocument": lambda p, f: self._send_upload("document", p, f),
            "sendChatAction": lambda p, f: self._chat_action(p),
            "deleteMessage": lambda p, f: self._delete_message(p),
        }

    # --- updates and webhook

    def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        offset = params.get("offset")
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates") or None
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.webhook["url"]:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(offset, int):
                if offset < 0:  # the last -offset updates; older ones are forgotten
                    while len(self._updates) > -offset:
                        self._updates.popleft()
                else:  # updates below offset are confirmed
                    while self._updates and self._updates[0]["update_id"] < offset:
                        self._updates.popleft()
            self._pollers += 1
            self._lock.notify_all()
            try:
                while True:
                    if allowed:
                        kept = [u for u in self._updates if _update_kind(u) in allowed]
                        self._updates = deque(kept)
                    if self._updates or self._closing:
                        return list(itertools.islice(self._updates, limit))
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    self._lock.wait(remaining)
            finally:
                self._pollers -= 1

    def _delete_webhook(self, params: JSONDict) -> bool:
        with self._lock:
            self.webhook = {"url": "", "secret_token": None, "allowed_updates": None}
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _set_webhook(self, params: JSONDict) -> bool:
        url = params.get("url", "")
        if not isinstance(url, str):
            raise ApiError(400, "Bad Request: bad webhook: invalid URL")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self.webhook = {
                "url": url,
                "secret_token": secret,
                "allowed_updates": params.get("allowed_updates"),
            }
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _webhook_info(self) -> JSONDict:
        with self._lock:
            info: JSONDict = {
                "url": self.webhook["url"],
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self.webhook["allowed_updates"]:
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def deliver_to_webhook(self, update: Mapping[str, Any], timeout: float = 10.0) -> int:
        """POST an update to the webhook the bot registered (URL and secret from setWebhook)."""
        with self._lock:
            url, secret = self.webhook["url"], self.webhook["secret_token"]
        if not url:
            raise AssertionError("the bot has not set a webhook")
        return post_update_to_webhook(url, update, secret, timeout)

    def push_to_webhook(self, retry_pause: float = 0.1) -> None:
        """Deliver queued updates to the registered webhook from now on, as Telegram does.

        A daemon thread POSTs the oldest queued update (with the registered secret) and
        drops it from the queue only on a 2xx answer; any other answer or a refused
        connection is retried after `retry_pause`. One update at a time, in order.
        Stops with close(). `webhook_posts` counts the answers by HTTP status.
        """
        if self._pusher is not None:
            return
        self._pusher = threading.Thread(
            target=self._push_loop, args=(retry_pause,), name="fake-telegram-push", daemon=True
        )
        self._pusher.start()

    def _push_loop(self, retry_pause: float) -> None:
        while True:
            with self._lock:
                while not self._closing and not (self.webhook["url"] and self._updates):
                    self._lock.wait(0.5)
                if self._closing:
                    return
                update = self._updates[0]
                url, secret = self.webhook["url"], self.webhook["secret_token"]
            try:
                status = post_update_to_webhook(url, update, secret)
            except OSError:
                status = 0
            with self._lock:
                self.webhook_posts[status] += 1
                delivered = 200 <= status < 300
                if delivered and self._updates and self._updates[0] is update:
                    self._updates.popleft()
                self._lock.notify_all()
            if not delivered:
                time.sleep(retry_pause)

    # --- commands

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code", "")], sort_keys=True)

    def _set_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 items")
        for cmd in commands:
            name = cmd.get("command", "") if isinstance(cmd, dict) else ""
            desc = cmd.get("description", "") if isinstance(cmd, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(name)) or not 1 <= len(str(desc)) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        with self._lock:
            self._commands[self._commands_key(params)] = commands
            self.bot_commands = commands
        return True

    def _get_commands(self, params: JSONDict) -> list[JSONDict]:
        with self._lock:
            return self._commands.get(self._commands_key(params), [])

    # --- messages

    def _target_chat(self, params: JSONDict) -> JSONDict:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        with self._lock:
            known = self._chats.get(chat_id)
        if known is not None:
            return known
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Test"}
        return {"id": chat_id, "type": "group", "title": "Test group"}

    @staticmethod
    def _check_markup(params: JSONDict) -> JSONDict | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for button in _inline_buttons(markup):
            data = button.get("callback_data")
            if (
                data is not None
                and not 1 <= len(str(data).encode("utf-8")) <= _MAX_CALLBACK_DATA_BYTES
            ):
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if not button.get("text"):
                raise ApiError(
                    400, "Bad Request: text buttons are unallowed in the inline keyboard"
                )
        return markup

    @staticmethod
    def _visible_text(text: str, parse_mode: Any) -> str:
        """What the user sees: HTML tags stripped for parse_mode=HTML, else as sent."""
        if str(parse_mode).upper() == "HTML":
            return html.unescape(re.sub(r"<[^>]+>", "", text))
        return text

    def _store_bot_message(self, params: JSONDict, content: JSONDict) -> JSONDict:
        chat = self._target_chat(params)
        markup = self._check_markup(params)
        with self._lock:
            message: JSONDict = {
                "message_id": self._new_message_id(chat["id"]),
                "date": int(time.time()),
                "chat": chat,
                "from": self.bot_user,
                **content,
            }
            if markup and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _send_message(self, params: JSONDict) -> JSONDict:
        text = str(params.get("text", ""))
        visible = self._visible_text(text, params.get("parse_mode"))
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(visible) > _MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return self._store_bot_message(params, {"text": visible})

    def _existing_message(self, params: JSONDict) -> tuple[tuple[int, int], JSONDict]:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        if not isinstance(chat_id, int) or not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        key = (chat_id, message_id)
        with self._lock:
            message = self._messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return key, message

    def _save_edit(self, key: tuple[int, int], old: JSONDict, new: JSONDict) -> JSONDict:
        if new == old:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        new["edit_date"] = int(time.time())
        with self._lock:
            self._messages[key] = new
        return new

    def _edit_text(self, params: JSONDict) -> JSONDict:
        key, old = self._existing_message(params)
        if "text" not in old:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        visible = self._visible_text(str(params.get("text", "")), params.get("parse_mode"))
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(visible) > _MAX_TEXT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        new = {k: v for k, v in old.items() if k not in ("reply_markup", "edit_date")}
        new["text"] = visible
        markup = self._check_markup(params)
        if markup:
            new["reply_markup"] = markup
        return self._save_edit(key, {k: v for k, v in old.items() if k != "edit_date"}, new)

    def _edit_markup(self, params: JSONDict) -> JSONDict:
        key, old = self._existing_message(params)
        new = {k: v for k, v in old.items() if k not in ("reply_markup", "edit_date")}
        markup = self._check_markup(params)
        if markup:
            new["reply_markup"] = markup
        return self._save_edit(key, {k: v for k, v in old.items() if k != "edit_date"}, new)

    def _answer_callback(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        with self._lock:
            if query_id not in self._callback_queries:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                )
            self._callback_queries.discard(query_id)
        return True

    def _send_upload(self, kind: str, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > _MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        upload = files.get(kind)
        if upload is not None:
            ref = self._file_ref(kind)
            if kind == "photo":
                width, height = _png_size(upload.content)
                media: Any = [
                    {**ref, "width": width, "height": height, "file_size": len(upload.content)}
                ]
            else:
                media = {
                    **ref,
                    "file_name": upload.filename,
                    "mime_type": upload.content_type,
                    "file_size": len(upload.content),
                }
            with self._lock:
                self._files[ref["file_id"]] = media
        else:
            file_id = params.get(kind)
            with self._lock:
                media = self._files.get(str(file_id))
            if media is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        content: JSONDict = {kind: media}
        if caption is not None:
            content["caption"] = self._visible_text(str(caption), params.get("parse_mode"))
        return self._store_bot_message(params, content)

    def _chat_action(self, params: JSONDict) -> bool:
        self._target_chat(params)
        if not params.get("action"):
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _delete_message(self, params: JSONDict) -> bool:
        chat_id, message_id = params.get("chat_id"), params.get("message_id")
        with self._lock:
            if self._messages.pop((chat_id, message_id), None) is None:  # type: ignore[arg-type]
                raise ApiError(400, "Bad Request: message to delete not found")
        return True


def _update_kind(update: Mapping[str, Any]) -> str:
    return next((k for k in update if k != "update_id"), "")
