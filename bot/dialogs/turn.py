"""The context of one turn: who is talking, when, and what the bot may say.

Every dialogue handler takes a `Turn` and returns the replies; the next state is
what it leaves in `turn.prompt` (one open prompt per user, stored on the user row,
so it survives a restart). Nothing here knows a feature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.checkin import fold as fold_text
from bot.knowledge import Knowledge
from bot.replies import Incoming, Reply
from bot.settings import Settings
from bot.storage import Checkin, User

if TYPE_CHECKING:
    from bot.matching import Matcher


@dataclass
class Guests:
    """What is remembered about users without consent: in memory only, never stored."""

    guides: dict[int, str] = field(default_factory=dict)
    questions: dict[int, set[int]] = field(default_factory=dict)

    def forget(self, user_id: int) -> None:
        self.guides.pop(user_id, None)
        self.questions.pop(user_id, None)


@dataclass(frozen=True)
class Answer:
    """What the user gave to an open prompt: typed text, or the fields of a pressed button."""

    text: str = ""
    fields: tuple[str, ...] = ()
    pressed: bool = False

    @property
    def value(self) -> str:
        """The pressed button's first field ("" when typed)."""
        return self.fields[0] if self.fields else ""


@dataclass
class Turn:
    """One incoming message and everything a handler needs to answer it."""

    kb: Knowledge
    matcher: Matcher
    settings: Settings
    guests: Guests
    s: Session
    user: User
    msg: Incoming
    now: datetime
    # /reload: load the YAML again; (applied, what to tell the admin)
    reload_knowledge: Callable[[], tuple[bool, str]]
    # The bot's Telegram username (None in the console): for deep links from groups.
    bot_username: str | None = None
    # Set when a handler opens a prompt in this turn (the router then asks nothing again).
    opened: bool = False
    # The open check-in as looked up in this turn (bot/dialogs/checkin.open_checkin, which
    # keeps it current), so a turn asks the database once instead of at every decision.
    checkin_known: bool = field(default=False, repr=False)
    checkin_seen: Checkin | None = field(default=None, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone or self.settings.timezone)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    @property
    def private(self) -> bool:
        """A private chat (chat id == user id on Telegram), where personal things may go."""
        return self.msg.chat_id == self.msg.user_id

    def t(self, key: str, **values: object) -> str:
        return self.kb.text(key, **values)

    def say(self, key: str, **values: object) -> Reply:
        return Reply(self.kb.text(key, **values))

    def words(self, text: str) -> list[str]:
        """The typed text as folded words, punctuation dropped ("Ja tak!" -> ["ja", "tak"])."""
        return fold_text(text).split()

    def yes_no(self, answer: Answer) -> bool | None:
        """True/False for a yes/no answer, typed or pressed ("1"/"0"); None for anything else."""
        if answer.pressed:
            return {"1": True, "0": False}.get(answer.value)
        said = " ".join(self.words(answer.text))
        if said in self.kb.vocab.folded("yes_words"):
            return True
        if said in self.kb.vocab.folded("no_words"):
            return False
        return None

    # ------------------------------------------------------------------ the guide

    @property
    def guide(self) -> str | None:
        """The user's guide: stored with consent, else remembered in memory."""
        if self.user.consent and self.user.guide:
            return self.user.guide
        return self.guests.guides.get(self.user.id) or self.user.guide

    def remember_guide(self, guide_id: str) -> None:
        if self.user.consent:
            self.user.guide = guide_id
        else:
            self.guests.guides[self.user.id] = guide_id

    # ------------------------------------------------------------------ the open prompt

    @property
    def prompt(self) -> str | None:
        """The prompt waiting for an answer (a state name of bot/dialogs/routes.py), if any."""
        return self.user.dialog_state

    def open_prompt(self, state: str) -> None:
        self.opened = True
        self.user.dialog_state = state
        self.user.dialog_data = {"asked_at": self.now.isoformat()}

    def close_prompt(self) -> None:
        self.user.dialog_state = None
        self.user.dialog_data = {}

    def prompt_expired(self) -> bool:
        asked = self.user.dialog_data.get("asked_at") if self.user.dialog_data else None
        if self.prompt is None or not isinstance(asked, str):
            return False
        timeout = timedelta(minutes=self.settings.prompt_timeout_minutes)
        return datetime.fromisoformat(asked) < self.now - timeout

    def asked_again(self, prompt_id: str) -> bool:
        """Has this prompt already been asked again after a message that was no answer?"""
        return bool(self.user.dialog_data) and self.user.dialog_data.get("again") == prompt_id

    def mark_asked_again(self, prompt_id: str) -> None:
        self.user.dialog_data = {**(self.user.dialog_data or {}), "again": prompt_id}
