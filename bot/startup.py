"""Starting the bot as an operator expects: one clear line and exit code 2 for a bad setting.

Settings are checked by bot/settings.py; here the database is opened and migrated, and
logging is set up without periodic noise (apscheduler's job lines, alembic's steps).
"""

from __future__ import annotations

import logging
import stat
import sys
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.settings import PROJECT_ROOT, Settings
from bot.sqlite_files import PRIVATE_DIR_MODE
from bot.storage import Database

EXIT_CONFIG = 2
# Libraries that log routine steps at INFO: every 20 s for the reminder job, ten lines
# for each migration check. Their warnings and errors still show.
QUIET_LOGGERS = ("apscheduler", "alembic", "httpx", "httpcore")


# The default database folder (data/, shared with the caches) is the bot's own: made 0700
# even when a cache or an older version created it first.
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
log = logging.getLogger(__name__)


class StartupError(Exception):
    """Why the bot cannot start, in one line for the operator."""


# Loggers that write message texts below INFO: PTB logs every Bot API call's parameters
# (the text sent), every update (the text received) and webhook bodies at DEBUG.
TEXT_LOGGERS = ("telegram",)
REDACTED = "[redacted]"


# What python-telegram-bot passes as a log argument when it is an update's content (e.g.
# "Received data was: %r" at CRITICAL for an update it cannot parse): never shown.
# (Telegram's own objects are known by their module: importing telegram here would slow
# the console chat's start.)
CONTENT_TYPES: tuple[type, ...] = (Mapping, list, tuple, bytes, bytearray)


def _withheld(value: object) -> object:
    telegram = type(value).__module__.startswith("telegram")
    content = isinstance(value, CONTENT_TYPES) or (telegram and not isinstance(value, Exception))
    return f"<{type(value).__name__} withheld>" if content else value


class Redact(logging.Filter):
    """Replaces secrets (the bot token, the webhook secret) wherever a record shows them,
    and withholds the updates and request data python-telegram-bot's records carry.

    A handler filter, so it sees every record that reaches the root's handlers, whatever
    logger made it; the message is formatted here with its args, and an exception's text
    is rendered here too, because a failed request's URL in a traceback holds the token.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        found = {s for s in secrets if s}
        found |= {quote(s, safe="") for s in found}
        self.secrets = sorted(found, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in TEXT_LOGGERS and record.args:
            args = record.args
            record.args = (
                (_withheld(args),) if isinstance(args, Mapping) else tuple(map(_withheld, args))
            )
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: show it unformatted, still redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self._clean(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


def configure_logging(
    level: str, *, console_chat: bool = False, secrets: Iterable[str] = ()
) -> None:
    """INFO for the bot's own lines; the console chat shows only warnings (it is a chat).

    At any level no token and no message text is logged: `secrets` are redacted from
    every record, and the libraries that log texts or request URLs are held above DEBUG.
    """
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.WARNING if console_chat else level.upper(),
        force=True,
    )
    redact = Redact(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    # httpx also logs every request URL at INFO, and the URL carries the bot token.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in TEXT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))


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
    except OSError as exc:  # the private file or folder could not be created
        raise StartupError(f"cannot open the database {where}: {exc}") from None
    try:
        db.upgrade()
        db.scrub()  # an erasure a crash interrupted before its checkpoint (Engine.handle)
    except (OSError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StartupError(f"cannot open the database {where}: {reason}") from None
    _check_folder(db)
    return db


def _check_folder(db: Database) -> None:
    """Make data/ private; a folder the operator chose is only warned about (it may be
    shared, e.g. /var/lib, and is not ours to change)."""
    path = db.sqlite_path
    if path is None:
        return
    folder = path.resolve().parent
    mode = stat.S_IMODE(folder.stat().st_mode)
    if not mode & 0o077:
        return
    if folder == DEFAULT_DATA_DIR.resolve():
        folder.chmod(PRIVATE_DIR_MODE)
    else:
        log.warning(
            "the database folder %s is open to other users (mode %o): chmod 700 it", folder, mode
        )


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG
