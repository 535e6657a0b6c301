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
