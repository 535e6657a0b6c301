"""Transport-neutral messages between the dialogue engine and its adapters.

The engine never sees Telegram objects; the Telegram and console adapters
translate to and from these small value types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.protocol import CALLBACK_DATA_LIMIT


@dataclass(frozen=True)
class Button:
    """An inline button; `data` comes back to the engine as `Incoming.callback`.

    With a `url` it is a link instead (no data comes back): the deep link from a group
    to the private chat.
    """

    label: str
    data: str = ""
    url: str | None = None

    def __post_init__(self) -> None:
        if self.url is not None:
            if self.data or not self.url.startswith("https://"):
                raise ValueError(f"a link button has an https url and no data: {self!r}")
            return
        size = len(self.data.encode("utf-8"))
        if not 1 <= size <= CALLBACK_DATA_LIMIT:
            raise ValueError(f"callback data must be 1-64 bytes, got {size}: {self.data!r}")


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Reply:
    """One message to the user: text, optional button rows, optional picture or file."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    image: bytes | None = None
    document: Document | None = None


IncomingKind = Literal["text", "command", "callback", "unsupported"]


@dataclass(frozen=True)
class Incoming:
    """One thing the user did: typed text, a /command, a button press, or an unsupported message.

    For commands `text` holds the whole text ("/paamindelse 07:30"); `command` the
    bare name ("paamindelse") and `args` the rest. `unsupported` carries what it was
    in `media` ("sticker", "photo", "voice", "location", ...).
    """

    user_id: int
    chat_id: int
    kind: IncomingKind = "text"
    text: str = ""
    command: str | None = None
    args: str = ""
    callback: str | None = None
    media: str | None = None
    first_name: str | None = None
    is_admin: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse_text(cls, user_id: int, chat_id: int, text: str, **kw: object) -> Incoming:
        """Split a typed line into a command or plain text, as both adapters need."""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            head, _, rest = stripped[1:].partition(" ")
            name = head.split("@", 1)[0].lower()
            return cls(user_id, chat_id, "command", stripped, name, rest.strip(), **kw)  # type: ignore[arg-type]
        return cls(user_id, chat_id, "text", text, **kw)  # type: ignore[arg-type]
