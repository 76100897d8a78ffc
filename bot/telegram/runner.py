"""Run the Telegram bot: long polling, or a webhook served by python-telegram-bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from telegram import Update

from bot.services.context import Services
from bot.settings import Settings, SettingsError
from bot.telegram.app import build_application

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookOptions:
    url: str
    listen: str = "127.0.0.1"
    port: int = 8443
    secret_token: str | None = None

    def validate(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"--webhook-url must be an http(s) URL, got {self.url!r}")
        if self.secret_token is not None and not _valid_secret(self.secret_token):
            raise SettingsError(
                "--secret-token must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
                "(Telegram's rule)"
            )


def _valid_secret(secret: str) -> bool:
    return 0 < len(secret) <= 256 and all(ch.isalnum() or ch in "_-" for ch in secret)


def run_bot(settings: Settings, services: Services, *, webhook: WebhookOptions | None) -> None:
    """Run until interrupted. Polling deletes any webhook first; webhook mode sets it."""
    application = build_application(settings, services)
    if webhook is None:
        log.info("starting long polling")
        application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=-1)
        return
    webhook.validate()
    path = urlsplit(webhook.url).path.lstrip("/")
    log.info("starting webhook on %s:%s/%s", webhook.listen, webhook.port, path)
    application.run_webhook(
        listen=webhook.listen,
        port=webhook.port,
        url_path=path,
        webhook_url=webhook.url,
        secret_token=webhook.secret_token,
        allowed_updates=Update.ALL_TYPES,
        bootstrap_retries=-1,
    )
