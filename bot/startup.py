"""Starting the bot as an operator expects: one clear line and exit code 2 for a bad setting.

Settings are checked by bot/settings.py; here the database is opened and migrated, and
logging is set up without periodic noise (apscheduler's job lines, alembic's steps).
"""

from __future__ import annotations

import logging
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.settings import Settings
from bot.storage import Database

EXIT_CONFIG = 2
# Libraries that log routine steps at INFO: every 20 s for the reminder job, ten lines
# for each migration check. Their warnings and errors still show.
QUIET_LOGGERS = ("apscheduler", "alembic", "httpx", "httpcore")


class StartupError(Exception):
    """Why the bot cannot start, in one line for the operator."""


def configure_logging(level: str, *, console_chat: bool = False) -> None:
    """INFO for the bot's own lines; the console chat shows only warnings (it is a chat)."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.WARNING if console_chat else level.upper(),
        force=True,
    )
    # httpx also logs every request URL at INFO, and the URL carries the bot token.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def open_database(settings: Settings) -> Database:
    """The migrated database of DATABASE_URL, or StartupError saying what is wrong."""
    where = _safe_url(settings.database_url)
    try:
        db = Database(settings.database_url)
    except ArgumentError as exc:
        raise StartupError(f"DATABASE_URL is not a database URL: {where} ({exc})") from None
    except (ImportError, SQLAlchemyError) as exc:
        raise StartupError(f"DATABASE_URL names an unusable database {where}: {exc}") from None
    try:
        db.upgrade()
    except (OSError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StartupError(f"cannot open the database {where}: {reason}") from None
    return db


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG
