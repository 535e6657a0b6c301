"""Settings: typed, from the environment, and one clear line when they are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, SettingsError, load_settings

ENV_KEYS = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BASE_URL",
    "DATABASE_URL",
    "TIMEZONE",
    "ADMIN_IDS",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_PORT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout


def test_defaults() -> None:
    s = load_settings()
    assert s.telegram_bot_token is None
    assert s.timezone == "Europe/Copenhagen"
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("bot.sqlite3")
    assert s.telegram_base_url == "https://api.telegram.org/bot"
    assert s.webhook_url is None and s.admin_ids == frozenset()


def test_values_from_environment_and_secret_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token")
    monkeypatch.setenv("ADMIN_IDS", "42, 7;9")
    monkeypatch.setenv("TIMEZONE", "America/New_York")
    s = load_settings()
    assert s.telegram_bot_token is not None
    assert s.telegram_bot_token.get_secret_value() == "123:secret-token"
    assert "secret-token" not in repr(s) and "secret-token" not in str(s.telegram_bot_token)
    assert s.admin_ids == frozenset({42, 7, 9})
    assert s.tz.key == "America/New_York"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TIMEZONE=Asia/Tokyo\nADMIN_IDS=5\n", encoding="utf-8")
    s = load_settings()
    assert s.timezone == "Asia/Tokyo" and s.admin_ids == frozenset({5})


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("ADMIN_IDS", "abc", "ADMIN_IDS"),
        ("WEBHOOK_PORT", "99999", "WEBHOOK_PORT"),
        ("WEBHOOK_URL", "https://bot.example.org/hook", "WEBHOOK_SECRET is missing"),
    ],
)
def test_malformed_settings_give_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message and fragment in message


def test_bad_webhook_secret_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET may only contain"):
        load_settings()


def test_run_stops_at_start_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["TIMEZONE"] = "Nowhere/City"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "TIMEZONE" in lines[0] and "unknown time zone" in lines[0]
