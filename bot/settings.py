"""Typed settings, read once from the environment and `.env`.

Everything configurable lives here so no other module reads the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# "123456789:AAE..." as @BotFather hands them out: the bot's id, a colon, a secret.
TOKEN_SHAPE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]+")


class Settings(BaseSettings):
    """The bot's configuration; see `.env.example` for what each setting means."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str | None = None
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'data' / 'bot.sqlite3'}"
    timezone: str = "Europe/Copenhagen"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_max_body: int = Field(default=1_000_000, ge=1024, le=100_000_000)
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    intents_dir: Path = PROJECT_ROOT / "intents"
    cache_dir: Path = PROJECT_ROOT / "data" / "cache"
    checkin_timeout_minutes: int = Field(default=180, ge=1)
    prompt_timeout_minutes: int = Field(default=60, ge=1)
    guest_retention_days: int = Field(default=30, ge=1, le=36500)
    reminder_poll_seconds: float = Field(default=20.0, gt=0)
    telegram_connect_attempts: int = Field(default=5, ge=1, le=20)
    # The one sender's overall pace; Telegram allows about 30 messages/s per bot.
    messages_per_second: float = Field(default=29.0, gt=0, le=1000)
    # With Telegram's paid broadcasts (Stars) reminders may go faster; 0 = off.
    paid_broadcast_per_second: float = Field(default=0.0, ge=0, le=1000)
    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            return frozenset(int(p) for p in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TOKEN_SHAPE.fullmatch(value.get_secret_value()):
            # never echo the token: it is a password
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_bot_token", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_url", "telegram_base_file_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_URL is set but WEBHOOK_SECRET is missing")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if secret and not all(c.isalnum() or c in "_-" for c in secret):
            raise ValueError("WEBHOOK_SECRET may only contain A-Z, a-z, 0-9, _ and -")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SettingsError(Exception):
    """Raised with one readable line when the configuration is unusable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's report into one clear line per problem."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            problems.append(f"{field}: {err['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
