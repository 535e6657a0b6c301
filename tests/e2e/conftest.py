"""Fixtures for end-to-end tests: a fresh fake Telegram Bot API server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fake_telegram import FakeTelegram


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A running FakeTelegram on 127.0.0.1; closed (long polls woken) after the test."""
    with FakeTelegram() as fake:
        yield fake


# --- the real bot as a subprocess (tests/e2e/botproc.py) ---------------------------

from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402

from bot.knowledge import Knowledge, load_knowledge  # noqa: E402

from .botproc import BotProcess, bot_env, sqlite_url  # noqa: E402

BotFactory = Callable[..., BotProcess]


@pytest.fixture(scope="session")
def bot_cache_dir(warm_cache: Path) -> Path:
    """One CACHE_DIR for every bot process of the session, with the matcher already trained."""
    return warm_cache


@pytest.fixture
def bot_db_url(tmp_path: Path) -> str:
    """A SQLite file of this test's own; the bot migrates it on start."""
    return sqlite_url(tmp_path / "bot.sqlite3")


@pytest.fixture
def bot_process(
    fake_telegram: FakeTelegram, bot_db_url: str, bot_cache_dir: Path, tmp_path: Path
) -> Iterator[BotFactory]:
    """Make (not start) `python -m bot run` processes aimed at the fake and this test's DB.

    Every process is killed after the test; its log is printed then, which pytest shows
    only when the test failed.
    """
    made: list[BotProcess] = []

    def make(extra_env: Mapping[str, str] | None = None, name: str = "bot") -> BotProcess:
        env = bot_env(fake_telegram, bot_db_url, bot_cache_dir, extra_env)
        proc = BotProcess(fake_telegram, env, tmp_path / f"{name}.log")
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()
        print(f"----- {proc.log_path.name} (started {proc.starts}x) -----\n{proc.log()}")


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    """The bot's own YAML texts, so tests compare replies with what maintainers wrote."""
    from bot.settings import Settings

    settings = Settings(_env_file=None)
    return load_knowledge(settings.knowledge_dir, settings.intents_dir)
