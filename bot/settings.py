"""Process settings: one typed object from the environment (and an optional ``.env``).

Read once in ``bot/`` (the CLI builds it and passes it down). Secrets are
``SecretStr`` so that printing or logging the settings never shows them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///complaint_desk.db"


class Settings(BaseSettings):
    """Everything the process needs from its environment."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # None: migrate the embedded SQLite automatically, only check PostgreSQL.
    database_auto_migrate: bool | None = None
    desk_config: Path | None = Field(
        default=None, description="TOML file; the packaged default when unset"
    )
    # A model file from `complaint-desk train`; unset: the config's keyword engine.
    classifier_model: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    public_base_url: AnyHttpUrl | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_webhook_url: AnyHttpUrl | None = None
    telegram_api_base_url: AnyHttpUrl | None = None

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    # Throughput the sender allows, counted in segments: about 1 for a long
    # code, more for a short code or a Messaging Service with several numbers.
    sms_segments_per_second: float = Field(default=1.0, gt=0)
    # Longer bodies go out as several numbered messages (nlp.sms_segments).
    sms_max_segments: int = Field(default=4, ge=1, le=10)
    # How long an inbound webhook waits to carry the resident's answer in its
    # TwiML response (Twilio gives up after 15 s); after that, or when more
    # than sms_inline_backlog messages are queued, the answer goes by the outbox.
    sms_reply_wait_seconds: float = Field(default=5.0, ge=0, le=12)
    sms_inline_backlog: int = Field(default=4, ge=0, le=1000)

    # Requests an Open311 client (one API key) may make: this many a minute on
    # average, up to open311_burst at once after a quiet spell. Counted per
    # serve process (bot.rate_limit).
    open311_requests_per_minute: int = Field(default=30, ge=1, le=60_000)
    open311_burst: int = Field(default=10, ge=1, le=10_000)

    # Off for a process that only takes requests while another one sends.
    outbox_dispatch: bool = True
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=20, ge=1, le=500)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_lease_seconds: float = Field(default=60.0, ge=1)
    outbox_base_backoff_seconds: float = Field(default=2.0, gt=0)
    outbox_max_backoff_seconds: float = Field(default=3600.0, gt=0)

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Settings:
        if self.outbox_base_backoff_seconds > self.outbox_max_backoff_seconds:
            raise ValueError(
                "OUTBOX_BASE_BACKOFF_SECONDS must not exceed OUTBOX_MAX_BACKOFF_SECONDS"
            )
        return self
