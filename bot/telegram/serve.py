"""`crmbot serve`: the webhook with N worker processes under uvicorn.

The command checks the options, applies migrations, sets the webhook once (with the secret
token and every update type, retrying while Telegram is unreachable, like `crmbot run
--webhook-url`), and then runs uvicorn with ``bot.telegram.asgi:create_app`` in ``workers``
processes. Like `crmbot run`, it leaves the webhook set when it stops, so Telegram keeps the
updates until the bot is back; `crmbot run` without ``--webhook-url`` deletes it.

Several workers need PostgreSQL: their per-chat order and the single scheduler rest on its
advisory locks (:mod:`bot.telegram.ordering`, :mod:`bot.telegram.leader`), and SQLite
allows one writer at a time anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

import uvicorn
from telegram import Bot, Update
from telegram.error import BadRequest, NetworkError

from bot.settings import Settings, SettingsError
from bot.telegram.advisory import is_postgresql
from bot.telegram.asgi import OPTIONS_ENV, ServeOptions
from bot.telegram.leader import RETRY_SECONDS
from bot.telegram.runner import WebhookOptions
from db import migrate
from db.engine import make_engine

log = logging.getLogger(__name__)

APP_FACTORY = "bot.telegram.asgi:create_app"
# In-flight updates get this long to finish when the server stops; the rest are sent again.
GRACEFUL_SHUTDOWN_SECONDS = 30
MAX_RETRY_DELAY_SECONDS = 30.0


def serve_options(
    settings: Settings,
    webhook: WebhookOptions,
    *,
    workers: int,
    leader_retry_seconds: float = RETRY_SECONDS,
) -> ServeOptions:
    """Check the options; :class:`SettingsError` names what is wrong."""
    settings.token()
    webhook.validate()
    if workers < 1:
        raise SettingsError("--workers must be 1 or more")
    if workers > 1 and not is_postgresql(settings.resolved_database_url):
        raise SettingsError(
            f"--workers {workers} needs PostgreSQL (CRMBOT_DATABASE_URL=postgresql://...): the "
            "workers keep each chat's order and a single scheduler with PostgreSQL advisory "
            "locks, and SQLite allows one writer at a time. On SQLite use --workers 1."
        )
    path = urlsplit(webhook.url).path or "/"
    return ServeOptions(
        path=path,
        secret_token=webhook.secret_token,
        workers=workers,
        leader_retry_seconds=leader_retry_seconds,
    )


def prepare_database(settings: Settings) -> None:
    """Apply migrations once, before any worker starts (and fail early if unreachable)."""
    engine = make_engine(settings.resolved_database_url)
    try:
        if not migrate.is_up_to_date(engine):
            migrate.upgrade(engine)
            log.info("database migrated to %s", migrate.current_revision(engine))
    finally:
        engine.dispose()


async def set_webhook(settings: Settings, *, url: str, secret_token: str | None) -> None:
    """setWebhook with every update type; network errors and 5xx are retried until it
    works, a refusal (bad URL, bad token) is raised."""
    bot = Bot(
        settings.token(),
        base_url=settings.telegram_api_url,
        base_file_url=settings.telegram_file_url,
    )
    delay = 1.0
    while True:
        try:
            async with bot:
                await bot.set_webhook(
                    url, secret_token=secret_token, allowed_updates=Update.ALL_TYPES
                )
            return
        except BadRequest:
            raise
        except NetworkError as exc:
            log.warning("setWebhook failed (%s); trying again in %g s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)


def serve(settings: Settings, webhook: WebhookOptions, options: ServeOptions) -> None:
    """Run until interrupted (SIGINT/SIGTERM stop the workers gracefully)."""
    prepare_database(settings)
    asyncio.run(set_webhook(settings, url=webhook.url, secret_token=webhook.secret_token))
    log.info(
        "webhook set to %s; starting %s worker(s) on %s:%s",
        webhook.url,
        options.workers,
        webhook.listen,
        webhook.port,
    )
    os.environ[OPTIONS_ENV] = options.to_env()  # the workers read it (spawned processes)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=webhook.listen,
        port=webhook.port,
        workers=options.workers,
        log_config=None,  # the workers set up crmbot's logging (token and PII filters)
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
