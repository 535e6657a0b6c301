"""Helpers shared by the engine, handler and end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.engine import Engine
from bot.knowledge import Knowledge, load_knowledge
from bot.matching import Matcher
from bot.replies import Incoming, Reply
from bot.settings import PROJECT_ROOT, Settings
from bot.storage import Database

KNOWLEDGE = PROJECT_ROOT / "knowledge"
INTENTS = PROJECT_ROOT / "intents"


@dataclass
class Clock:
    """A controllable clock; tests move it instead of sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2026, 6, 10, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


_loaded: tuple[Knowledge, Matcher] | None = None


def knowledge_and_matcher(cache_dir: Path) -> tuple[Knowledge, Matcher]:
    """The real knowledge and matcher, loaded once per test session."""
    global _loaded
    if _loaded is None:
        kb = load_knowledge(KNOWLEDGE, INTENTS)
        _loaded = (kb, Matcher.build(kb, cache_dir))
    return _loaded


def make_engine(db: Database, cache_dir: Path, clock: Clock, **settings: object) -> Engine:
    kb, matcher = knowledge_and_matcher(cache_dir)
    values: dict[str, object] = {
        "database_url": str(db.url),
        "telegram_bot_token": None,
        "cache_dir": cache_dir,
        **settings,
    }
    return Engine(Settings(**values), db, kb=kb, matcher=matcher, clock=clock)  # type: ignore[arg-type]


class Chat:
    """One user talking to an engine, with short helpers for typing and pressing."""

    def __init__(self, engine: Engine, user_id: int = 1001, first_name: str = "Mette") -> None:
        self.engine = engine
        self.user_id = user_id
        self.first_name = first_name
        self.last: list[Reply] = []
        self._update_id = 0

    def _handle(self, incoming: Incoming) -> list[Reply]:
        self.last = self.engine.handle(incoming)
        return self.last

    def say(self, text: str) -> list[Reply]:
        return self._handle(
            Incoming.parse_text(self.user_id, self.user_id, text, first_name=self.first_name)
        )

    def press(self, data: str) -> list[Reply]:
        """Press the last replies' button `data` names (else send `data` as it is)."""
        return self._handle(
            Incoming(self.user_id, self.user_id, "callback", callback=self.resolve(data))
        )

    def resolve(self, data: str) -> str:
        """The full data of the one button among the last replies that `data` begins.

        The bot appends the id of a button's object (the check-in, the day); a test names
        the button by what it answers ("ci:p:4") and presses the one the bot really sent.
        """
        sent = self.buttons()
        longer = [d for d in sent if d.startswith(data + ":")]
        return longer[0] if data not in sent and len(longer) == 1 else data

    def tap(self, label: str) -> list[Reply]:
        """Press the button labelled `label` among the last replies, as a user would."""
        labels = [b.label for r in self.last for row in r.buttons for b in row]
        button = next(
            (b for r in self.last for row in r.buttons for b in row if b.label == label), None
        )
        assert button is not None, f"no button {label!r} among {labels}"
        return self.press(button.data)

    def labels(self) -> list[str]:
        return [b.label for r in self.last for row in r.buttons for b in row]

    def send(self, incoming: Incoming) -> list[Reply]:
        return self._handle(incoming)

    def text(self) -> str:
        return "\n".join(r.text for r in self.last)

    def buttons(self) -> list[str]:
        return [b.data for r in self.last for row in r.buttons for b in row]

    def onboard(self, guide: str = "proximal", phase: int = 1) -> None:
        """/start, consent, guide and phase, by tapping the buttons' labels."""
        kb = self.engine.kb
        self.say("/start")
        self.tap(kb.text("consent_yes_button"))
        self.tap(kb.guides[guide].short)
        self.tap(kb.text("phase_button", phase=phase))
