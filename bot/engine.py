"""The dialogue engine: the whole bot without Telegram.

`Engine.handle(incoming) -> replies` is what the Telegram adapter, the console
chat and the tests all call. Each call runs in one database transaction that is
committed before the replies are returned, so every answer a user gives is
stored before they see the next question and survives a crash. What the bot says
is decided in bot/dialogs/ (router.py reads the ROUTES table of routes.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, select, true, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased

from bot import inbox, outbox
from bot.dialogs import commands, router
from bot.dialogs.turn import Guests, Turn
from bot.knowledge import Knowledge, KnowledgeError
from bot.matching import Matcher
from bot.references import load_checked
from bot.replies import Incoming, Reply
from bot.settings import Settings
from bot.storage import Checkin, Database, InboxUpdate, OutboxMessage, User, utcnow
from bot.userdata import ERASED, forget_guests

log = logging.getLogger(__name__)

# The commands of Telegram's menu, in order (from the registry in bot/dialogs/commands.py).
MENU_COMMANDS = tuple(c.name for c in commands.menu())
# How many of a refused reload's problems the admin is shown in the chat (all are logged).
PROBLEMS_IN_CHAT = 20
# A turn that meets a locked database (SQLite: another process holds the write lock past
# busy_timeout; PostgreSQL: a dropped connection) is tried this often before it fails.
BUSY_ATTEMPTS = 4
BUSY_PAUSE = 0.2


@dataclass(frozen=True)
class _Loaded:
    kb: Knowledge
    matcher: Matcher


class Engine:
    """One dialogue engine per process; thread-safe because each call has its own session."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        kb: Knowledge | None = None,
        matcher: Matcher | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        if kb is None:
            kb = load_checked(settings.knowledge_dir, settings.intents_dir)
        if matcher is None:
            matcher = Matcher.build(kb, settings.cache_dir)
        self._loaded = _Loaded(kb, matcher)
        self._lock = threading.Lock()
        # Without consent nothing personal is stored: the chosen guide and the ids of
        # anonymously logged questions live only in memory.
        self.guests = Guests()
        # The bot's Telegram username, set by the adapter at start: a group gets a
        # t.me/<username>?start=... link to the private chat. None in the console.
        self.bot_username: str | None = None

    @property
    def kb(self) -> Knowledge:
        return self._loaded.kb

    @property
    def matcher(self) -> Matcher:
        return self._loaded.matcher

    def reload(self) -> tuple[bool, str]:
        """Load the YAML again; keep the old knowledge when the new one has any problem.

        Every problem goes to the log; the returned text (for the admin) lists them too.
        """
        try:
            kb = load_checked(self.settings.knowledge_dir, self.settings.intents_dir)
        except KnowledgeError as exc:
            log.warning(
                "reload refused: %d problem(s); the old knowledge is kept", len(exc.problems)
            )
            for problem in exc.problems:
                log.warning("reload problem: %s", problem)
            shown = exc.problems[:PROBLEMS_IN_CHAT]
            problems = "\n".join(str(p) for p in shown)
            if len(exc.problems) > len(shown):
                problems += "\n" + self.kb.text("reload_more", count=len(exc.problems) - len(shown))
            return False, self.kb.text("reload_failed", problems=problems)
        matcher = Matcher.build(kb, self.settings.cache_dir)
        with self._lock:
            self._loaded = _Loaded(kb, matcher)
        log.info("knowledge reloaded: %d entries", len(kb.entries))
        return True, kb.text("reload_ok", entries=len(kb.entries), intents=len(kb.intents))

    def handle(self, msg: Incoming) -> list[Reply]:
        """Handle one user action; state is committed before the replies are returned.

        The console and the tests call this; Telegram updates go through handle_update.
        """
        loaded = self._loaded
        try:
            with self.db.session() as s:
                replies = self._turn(s, msg, loaded)
                s.commit()
                self._after_commit(s)
                return replies
        except Exception:
            log.exception("failed to handle an update from user %s", msg.user_id)
            return [Reply(loaded.kb.text("error"))]

    def handle_update(
        self, update_id: int, msg: Incoming | None, worker_id: str
    ) -> list[OutboxMessage] | None:
        """Handle one stored update: the turn, its replies as outbox rows and the inbox
        row's processed mark in one transaction. Returns the rows to send, or None when
        the update was already processed (by an earlier run or a peer).

        A busy database is retried (BUSY_ATTEMPTS); a turn that fails otherwise is
        rolled back and only then is the user told so (the `error` text), in a
        transaction of its own that also marks the update processed, so a poison
        update is answered once instead of failing at every start.
        """
        loaded = self._loaded
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                with self.db.write_lock(), self.db.session() as s:
                    # First the inbox row's mark: on PostgreSQL it holds the row, so a
                    # peer with the same update waits here and then skips it. There a
                    # message's mark goes in the user's touch UPDATE (_CLAIM_AND_TOUCH).
                    claim = msg is not None and self.db.dialect == "postgresql"
                    if not claim and not inbox.claim(s, update_id, self.clock()):
                        s.rollback()
                        return None
                    try:
                        replies = (
                            self._turn(s, msg, loaded, update_id if claim else None)
                            if msg is not None
                            else []
                        )
                    except _Processed:
                        s.rollback()
                        return None
                    rows = (
                        outbox.add(s, msg.chat_id, msg.user_id, replies, worker_id, self.clock())
                        if msg is not None
                        else []
                    )
                    s.commit()
                    self._after_commit(s)
                    return rows
            except OperationalError as exc:
                if attempt == BUSY_ATTEMPTS:
                    log.error("database busy; update %s failed: %s", update_id, exc.orig)
                    break
                log.warning("database busy (attempt %d); retrying the turn", attempt)
                time.sleep(BUSY_PAUSE * attempt)
            except Exception:
                log.exception("failed to handle update %s", update_id)
                break
        return self._rolled_back(update_id, msg, worker_id, loaded)

    def _rolled_back(
        self, update_id: int, msg: Incoming | None, worker_id: str, loaded: _Loaded
    ) -> list[OutboxMessage] | None:
        """The turn was rolled back: say so (truthfully) and do not try it again."""
        with self.db.write_lock(), self.db.session() as s:
            now = self.clock()
            if not inbox.claim(s, update_id, now):
                return None
            rows = []
            if msg is not None:
                error = [Reply(loaded.kb.text("error"))]
                rows = outbox.add(s, msg.chat_id, msg.user_id, error, worker_id, now)
            s.commit()
            return rows

    def _turn(
        self, s: Session, msg: Incoming, loaded: _Loaded, claim: int | None = None
    ) -> list[Reply]:
        user, checkin_open = self._user(s, msg, claim)
        turn = Turn(
            kb=loaded.kb,
            matcher=loaded.matcher,
            settings=self.settings,
            guests=self.guests,
            s=s,
            user=user,
            msg=msg,
            now=self.clock(),
            reload_knowledge=self.reload,
            bot_username=self.bot_username,
            # No check-in open: nothing to look up in this turn (else the row is loaded).
            checkin_known=not checkin_open,
        )
        return router.run(turn)

    def _after_commit(self, s: Session) -> None:
        if s.info.pop(ERASED, False):
            # Crash window: killed between the commit and this checkpoint, the
            # erased pages stay in the WAL until the checkpoint at the next start.
            self.db.scrub()

    def menu_commands(self) -> list[tuple[str, str]]:
        """(command, Danish description) pairs for Telegram's command menu."""
        return [(c.name, self.kb.text(c.text_key)) for c in commands.menu()]

    def mark_blocked(self, user_id: int) -> None:
        """Telegram said 403: stop reminding this user until they write again."""
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is not None and user.active:
                user.active = False
                s.commit()
                log.info("user %s blocked the bot; marked inactive", user_id)

    def forget_guests(self) -> int:
        """Delete users who never consented and were silent for GUEST_RETENTION_DAYS."""
        retention = timedelta(days=self.settings.guest_retention_days)
        with self.db.session() as s:
            forgotten = forget_guests(s, self.clock(), retention)
            s.commit()
        if forgotten:
            self.db.scrub()
            for user_id in forgotten:
                self.guests.forget(user_id)
            log.info("guest cleanup: %d user row(s) without consent deleted", len(forgotten))
        return len(forgotten)

    def _user(self, s: Session, msg: Incoming, claim: int | None = None) -> tuple[User, bool]:
        """The user (created at the first message) and whether a check-in of theirs is open.

        With `claim` (an update id, PostgreSQL) the same statement marks that inbox row
        processed first (inbox.claim's mark); raises _Processed when a peer already did.
        """
        # Only a private chat (chat id == user id on Telegram) is where reminders may go;
        # a mention in a group must not send the user's health prompts to that group.
        private = msg.chat_id == msg.user_id
        # The last time the user wrote (a guest is forgotten that long after,
        # forget_guests), and writing again makes a blocked user active: an UPDATE
        # before the row is loaded, so the loaded user is clean and the turn's first
        # autoflush has nothing of the user's to write (an ORM flush costs more). One
        # round-trip: the UPDATE returns the row, which the ORM loads as the user, and
        # the id of an open check-in, so a turn without one never asks for it.
        now = self.clock()
        found: Any = None
        if claim is not None:
            found = s.execute(
                _CLAIM_AND_TOUCH, {"upd": claim, "uid": msg.user_id, "now": now}
            ).first()
            if found is None:  # not claimed: done by a peer, or the row is gone
                if not inbox.claim(s, claim, now):
                    raise _Processed
                claim = None  # gone (counts as claimed): touch the user alone
            else:
                found = found[1:]
        if claim is None:
            found = s.execute(
                _TOUCH_USER,
                {"uid": msg.user_id, "now": now},
                execution_options=_TOUCH_OPTIONS,
            ).first()
        if found is not None:
            user, open_checkin = found
        else:
            user, open_checkin = None, None
        if user is None:
            user = User(
                id=msg.user_id,
                chat_id=msg.chat_id if private else None,
                timezone=self.settings.timezone,
                updated_at=now,
            )
            s.add(user)
            s.flush()
        if private and user.chat_id != msg.chat_id:
            user.chat_id = msg.chat_id
        return user, open_checkin is not None


_TOUCH_USER = (
    update(User)
    .where(User.id == bindparam("uid"))
    .values(updated_at=bindparam("now"), active=True)
    .returning(
        User,
        # The user's id as a parameter, not correlated: SQLite's RETURNING names no tables.
        select(Checkin.id)
        .where(Checkin.user_id == bindparam("uid"), Checkin.status == "open")
        .limit(1)
        .scalar_subquery(),
    )
)
# The session holds no user yet (a turn's first statement): nothing to synchronize.
_TOUCH_OPTIONS = {"synchronize_session": False}


class _Processed(Exception):
    """The update's inbox row was already marked processed (by a peer): no turn."""


# PostgreSQL: inbox.claim's mark and the user's touch in one statement (one round-trip
# fewer per turn). The mark's UPDATE runs whether or not the user exists; the touch only
# when the mark was made. No row: not marked (a peer did, or the row is gone: inbox.claim
# tells which); a row without the user: marked, and the user is new.
_INBOX = cast(Table, InboxUpdate.__table__)
_USERS = cast(Table, User.__table__)
_CLAIMED = (
    update(_INBOX)
    .where(_INBOX.c.update_id == bindparam("upd"), _INBOX.c.processed_at.is_(None))
    .values(processed_at=bindparam("now"), payload=None)
    .returning(_INBOX.c.update_id)
    .cte("claimed")
)
_TOUCHED = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("uid"), exists(select(_CLAIMED.c.update_id)))
    .values(updated_at=bindparam("now"), active=True)
    .returning(*_USERS.c)
    .cte("touched")
)
_CLAIM_AND_TOUCH = select(
    _CLAIMED.c.update_id,
    aliased(User, _TOUCHED),
    select(Checkin.id)
    .where(Checkin.user_id == bindparam("uid"), Checkin.status == "open")
    .limit(1)
    .scalar_subquery(),
).select_from(_CLAIMED.outerjoin(_TOUCHED, true()))


def build_engine(settings: Settings, db: Database | None = None) -> Engine:
    """The engine with its database, knowledge and matcher: what every adapter starts with."""
    if db is None:
        db = Database(settings.database_url)
    return Engine(settings, db)


__all__ = ["MENU_COMMANDS", "Engine", "build_engine"]
