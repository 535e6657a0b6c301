"""The operator's start: every misconfiguration is one clear line and exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

TOKEN = "123456789:AAFakeTokenForStartupTests_0123456"


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input="/quit\n",
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**base, **env},
        timeout=timeout,
        check=False,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_bad_database_url_is_one_line(tmp_path: Path) -> None:
    line = _one_clear_line(_run({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": "nonsense"}, "run"))
    assert "DATABASE_URL" in line


def test_a_database_that_cannot_be_opened_is_one_line_without_the_password() -> None:
    url = "postgresql+psycopg://bot:hemmelig@127.0.0.1:9/bot"
    line = _one_clear_line(_run({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": url}, "run"))
    assert "cannot open the database" in line and "hemmelig" not in line


def test_an_unknown_log_level_is_one_line() -> None:
    line = _one_clear_line(_run({"TELEGRAM_BOT_TOKEN": TOKEN, "LOG_LEVEL": "LOUD"}, "run"))
    assert "LOG_LEVEL" in line


def test_a_token_of_the_wrong_shape_is_refused_without_echoing_it() -> None:
    line = _one_clear_line(_run({"TELEGRAM_BOT_TOKEN": "not-a-token-xyz"}, "run"))
    assert "TELEGRAM_BOT_TOKEN" in line and "not-a-token-xyz" not in line


def test_unreachable_telegram_is_retried_and_then_one_line(tmp_path: Path) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",  # nothing listens on port 9
        "TELEGRAM_CONNECT_ATTEMPTS": "2",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    result = _run(env, "run")
    line = _one_clear_line(result)
    assert "unreachable after 2 attempts" in line
    assert "attempt 1 of 2" in result.stderr
    assert len(result.stderr.splitlines()) <= 3, result.stderr


def test_the_console_chat_starts_with_its_welcome_and_nothing_else(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
        "CACHE_DIR": str(tmp_path / "cache"),
    }
    result = _run(env, "chat")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first = result.stdout.splitlines()[0]
    assert first.startswith("Du skriver med botten i terminalen")


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads_the_console_and_the_chat_goes_on(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env = {
        **base,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
        "CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        while "Du skriver med botten" not in proc.stdout.readline():
            pass
        time.sleep(0.5)
        proc.send_signal(signal.SIGHUP)
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Viden genindlæst" in line:
                break
        assert any("Viden genindlæst" in line for line in lines), lines
        assert proc.poll() is None
        proc.stdin.write("/quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
