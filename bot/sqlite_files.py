"""The SQLite files hold health data: private to the bot's OS user (0600 in a 0700 folder),
deleted rows overwritten (secure_delete), and the connection settings every file gets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL


def sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


# The database holds health data: only the bot's own OS user may read it.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private_folder(path: Path) -> None:
    """The database's folder, created 0700 (mkdir's mode is subject to the umask)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
        path.parent.chmod(PRIVATE_DIR_MODE)


def sqlite_connect_listener(path: Path | None) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Foreign keys are off by default in SQLite; WAL lets readers and a writer overlap;
        secure_delete overwrites deleted rows (/slet) instead of only unlinking them."""
        # SQLite has just created the file (umask mode, still empty) or opened an older
        # install's; it gives -wal and -shm the main file's mode when it creates them, so
        # a private main file, tightened before the first write, makes them private too.
        if path is not None:
            for file in (path, *(Path(f"{path}{side}") for side in SQLITE_SIDE_FILES)):
                if file.exists() and file.stat().st_mode & 0o077:
                    file.chmod(PRIVATE_FILE_MODE)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    return on_connect
