"""Application settings, read once from the environment and an optional ``.env`` file.

Every variable is prefixed with ``CRMBOT_``. Nothing below reads the environment at import
time: :func:`load_settings` builds the one :class:`Settings` object where the app is wired,
and lower layers get plain values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")
TELEGRAM_API_URL = "https://api.telegram.org/bot"
TELEGRAM_FILE_URL = "https://api.telegram.org/file/bot"


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """crmbot configuration. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="CRMBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Folder for the SQLite file and models.")
    database_url: str = Field(
        "", repr=False, description="SQLAlchemy URL; default: SQLite in data_dir."
    )
    telegram_token: SecretStr | None = Field(None, description="Bot token from @BotFather.")
    telegram_api_url: str = Field(TELEGRAM_API_URL, description="Bot API base URL.")
    telegram_file_url: str = Field(TELEGRAM_FILE_URL, description="Bot API file base URL.")
    staff_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="Comma-separated Telegram user ids of staff."
    )
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="Comma-separated Telegram user ids of staff admins."
    )
    staff_chat_id: int | None = Field(None, description="Chat for handoffs and digests.")
    shop_name: str = Field("shop", description="The business's name, used in answers.")
    timezone: str = Field("UTC", description="IANA time zone for schedules and reports.")
    log_level: str = Field("INFO", description="Logging level.")
    refresh_time: str = Field("02:00", description="Local time of the nightly analytics refresh.")
    daily_digest_time: str = Field("08:00", description="Local time of the daily digest.")
    weekly_digest_day: str = Field("mon", description="Weekday of the weekly digest.")
    weekly_digest_time: str = Field("08:30", description="Local time of the weekly digest.")
    misfire_grace_hours: float = Field(
        6.0, ge=0, description="A run missed by at most this much is caught up once at start."
    )
    model_path: Path | None = Field(None, description="Trained NLU pipeline folder.")
    nlu_embeddings: str | None = Field(
        None, description="Sentence-transformers model (name or folder): the embeddings engine."
    )
    log_pii: bool = Field(
        False, description="Debug only: allow message texts and contact data in the logs."
    )
    backup_dir: Path | None = Field(
        None, description="Folder for nightly backups; default: data_dir/backups."
    )
    backup_keep: int = Field(7, ge=1, description="How many nightly backups to keep.")
    backup_time: str = Field("03:00", description="Local time of the nightly backup.")
    retention_months: int = Field(
        24, ge=1, description="Months after which message texts are masked (aggregates stay)."
    )
    retention_time: str = Field("03:30", description="Local time of the nightly retention job.")
    question_timeout_minutes: float = Field(
        30, gt=0, description="How long the bot waits for the answer to its own question."
    )
    csat_reminder_minutes: float = Field(
        120, gt=0, description="One reminder if a CSAT question is unanswered this long."
    )
    nps_interval_days: int = Field(90, ge=1, description="At most one NPS question per period.")
    flood_messages: int = Field(
        12,
        ge=1,
        description="Per-user throttling: more messages than this within the window "
        "are stored but not answered (one notice).",
    )
    flood_seconds: float = Field(30, gt=0, description="The throttling window in seconds.")
    offers_file: Path | None = Field(
        None, description="Offer catalogue (YAML); default: the one shipped in bot/data."
    )
    offer_campaign_time: str = Field("11:00", description="Local time of the daily offer run.")
    offer_cap_days: int = Field(
        7, ge=1, description="Frequency cap: at most one proactive offer per customer per N days."
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="Secret key for pseudonymized exports (HMAC-SHA256)."
    )

    @field_validator("staff_ids", "admin_ids", mode="before")
    @classmethod
    def _parse_staff_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",")]
            try:
                return frozenset(int(p) for p in parts if p)
            except ValueError:
                raise ValueError(
                    "must be comma-separated numeric Telegram user ids, e.g. 12345,67890"
                ) from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("telegram_api_url", "telegram_file_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        head, sep, tail = value.get_secret_value().strip().partition(":")
        if not (sep and head.isdigit() and tail):
            raise ValueError("does not look like a bot token (expected <digits>:<secret>)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator(
        "refresh_time", "daily_digest_time", "weekly_digest_time", "backup_time", "retention_time"
    )
    @classmethod
    def _check_time(cls, value: str) -> str:
        from bot.services.schedule import parse_time

        parse_time(value)
        return value.strip()

    @field_validator("weekly_digest_day")
    @classmethod
    def _check_weekday(cls, value: str) -> str:
        from bot.services.schedule import WEEKDAYS, parse_weekday

        return WEEKDAYS[parse_weekday(value)]

    @field_validator("nlu_embeddings")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'crmbot.sqlite3').as_posix()}"

    @property
    def resolved_backup_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    def token(self) -> str:
        """The bot token; raises :class:`SettingsError` naming the variable if unset."""
        if self.telegram_token is None:
            raise SettingsError(
                "CRMBOT_TELEGRAM_TOKEN is not set. Get a token from @BotFather, or run "
                "`crmbot demo` / `crmbot chat`, which need none."
            )
        return self.telegram_token.get_secret_value()

    def is_staff(self, user_id: int | None) -> bool:
        return user_id is not None and (user_id in self.staff_ids or user_id in self.admin_ids)

    def masked(self) -> dict[str, str]:
        """All settings as strings, with secrets masked, for `crmbot config show`."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = "********"
            elif value is None:
                text = ""
            elif isinstance(value, frozenset):
                text = ",".join(str(v) for v in sorted(value))
            else:
                text = str(value)
            if name == "database_url":
                text = mask_url_password(self.resolved_database_url)
            shown[f"CRMBOT_{name.upper()}"] = text
        return shown


def mask_url_password(url: str) -> str:
    """Hide the password part of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


DEFAULT_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """Where secret files live (Docker/Kubernetes secrets): ``CRMBOT_SECRETS_DIR``, else
    ``/run/secrets`` if it exists. A file there named like the variable, e.g.
    ``crmbot_telegram_token``, provides its value; the environment wins over files."""
    configured = os.environ.get("CRMBOT_SECRETS_DIR")
    folder = Path(configured) if configured else DEFAULT_SECRETS_DIR
    return folder if folder.is_dir() else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, ``.env`` and secret files; errors name the
    variable."""
    folder = secrets_dir()
    if folder is not None and "_secrets_dir" not in overrides:
        overrides["_secrets_dir"] = folder
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"CRMBOT_{field.upper()}: {message}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
