"""Settings from the environment or `.env`: the only place that reads os.environ."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///var/mfi-ar.db"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and never shows its value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = DEFAULT_SQLITE_URL
    port: int = Field(default=3000, ge=1, le=65535)
    host: str = "0.0.0.0"
    mfi_timezone: str = "Europe/London"
    mfi_scheduler: bool = True  # run the scheduler (leader election decides which instance does the work)
    mfi_leader_poll_seconds: float = Field(default=5.0, gt=0)  # followers try for leadership this often
    mfi_scheduler_sync_seconds: float = Field(default=30.0, gt=0)  # re-read schedules, catch up, retry
    mfi_delivery_grace_hours: float = Field(
        default=6.0, ge=0
    )  # later than this a prompt is "missed", not sent
    mfi_delivery_stale_seconds: float = Field(
        default=120.0, gt=0
    )  # a claim older than this, unsent, is retried
    mfi_delivery_workers: int = Field(default=8, ge=1, le=64)  # parallel posts in a fan-out
    # A fan-out post's HTTP timeout (connect, and send): it bounds how soon a new leader may retry the old one's
    # claims (bot/services/delivery explains the bound).
    mfi_delivery_post_timeout_seconds: int = Field(default=10, ge=1, le=60)
    # PostgreSQL connections per instance: kept open, and extra ones under load (storage/db.py explains the sizing).
    mfi_db_pool_size: int = Field(default=10, ge=1, le=200)
    mfi_db_max_overflow: int = Field(default=20, ge=0, le=200)
    mfi_public_url: str | None = None  # for the OAuth redirect URL behind a proxy
    # The largest file `/measure import` downloads: a few years of a trust's births, one row each, is a few MB.
    mfi_import_max_mb: float = Field(default=50.0, gt=0, le=1024)
    # Read back the bot's own recent messages before re-sending a delivery a crash interrupted, so it is never posted
    # twice. Needs the three history scopes; off, such a delivery may be posted twice (manifest.minimal.yml).
    mfi_crash_readback: bool = True
    # The analysis and chart cache (bot/services/chart_cache.py), in this process's memory only, never on disk:
    # /equity's charts and analyses, the summary grid, shared by everyone asking at once. 0 MB turns it off.
    mfi_chart_cache_mb: float = Field(default=64.0, ge=0, le=4096)
    mfi_chart_cache_entries: int = Field(default=2048, ge=0, le=1_000_000)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line, for a log collector

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str) -> str:
        # slack_sdk joins method names with urljoin, so ".../api" would silently drop the "api" segment.
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith(("sqlite:", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:/// path or a postgresql:// URL")
        return value

    @field_validator("mfi_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Europe/London") from exc
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("xoxb-", "xoxe.xoxb-")):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @model_validator(mode="after")
    def _oauth_pair(self) -> Settings:
        if bool(self.slack_client_id) != bool(self.slack_client_secret):
            raise ValueError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET must be set together")
        return self

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def has_slack_credentials(self) -> bool:
        return self.slack_bot_token is not None or self.oauth_enabled

    @property
    def import_max_bytes(self) -> int:
        return int(self.mfi_import_max_mb * 1024 * 1024)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def require_for_serving(self) -> None:
        """Fail fast, naming the setting, when `serve` cannot run with what is configured."""
        if self.slack_signing_secret is None and self.slack_app_token is None:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is required for HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)"
            )
        if not self.has_slack_credentials:
            raise ConfigError(
                "SLACK_BOT_TOKEN is required (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install in many workspaces)"
            )
        if self.slack_app_token is not None and self.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is required with SLACK_APP_TOKEN (Socket Mode)")
        if self.slack_bot_token is not None and self.slack_bot_token.get_secret_value().startswith("xoxe."):
            raise ConfigError(
                "SLACK_BOT_TOKEN is a rotating token (xoxe.xoxb-): it expires after 12 hours and one token alone cannot "
                "be refreshed, so scheduled prompts would stop. Turn token rotation off for the app and reinstall it, "
                "or install through OAuth (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET), where the bot refreshes tokens"
            )

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1]
        return None if path in ("", ":memory:") else Path(path)


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's error into one readable line per bad setting (no values shown)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper() or "configuration"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("Invalid setting " + "; ".join(problems)) from None
