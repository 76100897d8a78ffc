"""The ASGI app of `crmbot serve`: one per uvicorn worker process.

`crmbot serve` (:mod:`bot.telegram.serve`) sets the webhook once, passes its options to the
workers in the environment (``CRMBOT_SERVE_OPTIONS``) and starts uvicorn with
``bot.telegram.asgi:create_app`` as the app factory. Each worker then builds its own:

- settings and services (:func:`bot.wiring.build_services`: migrations, the NLU, the staff and
  offer sync). On PostgreSQL this runs under a start-up advisory lock, one worker at a time,
  so that workers starting together never race on migrations or the sync;
- a python-telegram-bot ``Application`` without an updater
  (``build_application(..., worker=True)``), initialized and started in the ASGI lifespan;
- its bid for the scheduler (:mod:`bot.telegram.leader`).

It answers:

- ``POST <webhook path>``: 403 on a wrong or missing ``X-Telegram-Bot-Api-Secret-Token`` when
  a secret is set; 400 when the body is not an update; otherwise the update is stored, then
  processed in chat order (:mod:`bot.telegram.ordering`), and the answer is 200 — or 503 if
  the database could not record it, so that Telegram sends it again;
- ``GET /healthz``: 200 while the worker serves (for a load balancer or an orchestrator).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import Application, Job

from bot.logs import setup_logging
from bot.services.context import Services
from bot.settings import Settings, load_settings
from bot.telegram.advisory import (
    STARTUP_KEY,
    ChatAdvisoryLocks,
    LockSpaces,
    is_postgresql,
    libpq_url,
    lock_spaces,
)
from bot.telegram.app import add_jobs, build_application, register_commands
from bot.telegram.leader import RETRY_SECONDS, SchedulerLeader, SingleWorkerScheduler
from bot.telegram.ordering import ChatLocks, OrderedUpdates
from bot.wiring import build_services

log = logging.getLogger(__name__)

OPTIONS_ENV = "CRMBOT_SERVE_OPTIONS"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_PATH = "/healthz"
# Errors that mean "the database could not be reached": Telegram should try again.
DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError)


@dataclass(frozen=True)
class ServeOptions:
    """What `crmbot serve` tells its workers."""

    path: str
    secret_token: str | None = None
    workers: int = 1
    leader_retry_seconds: float = RETRY_SECONDS

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServeOptions:
        raw = environ.get(OPTIONS_ENV)
        if not raw:
            raise RuntimeError(f"{OPTIONS_ENV} is not set: start the workers with `crmbot serve`")
        return cls(**json.loads(raw))


class Worker:
    """One worker process: its services, Application, chat locks and scheduler bid."""

    def __init__(
        self,
        options: ServeOptions,
        services: Services,
        application: Application,  # type: ignore[type-arg]
        ordered: OrderedUpdates,
        scheduler: SchedulerLeader | SingleWorkerScheduler,
    ) -> None:
        self.options = options
        self.services = services
        self.application = application
        self.ordered = ordered
        self.scheduler = scheduler

    @classmethod
    def start_up(cls, settings: Settings, options: ServeOptions) -> Worker:
        url = settings.resolved_database_url
        spaces: LockSpaces | None = None
        if is_postgresql(url):
            name = f"crmbot worker {os.getpid()} start-up"
            with psycopg.connect(libpq_url(url), autocommit=True, application_name=name) as conn:
                spaces = lock_spaces(conn)
                conn.execute("SELECT pg_advisory_lock(%s, %s)", (spaces.startup, STARTUP_KEY))
                services = build_services(settings)
            # the connection is closed: the start-up lock is released
        else:
            services = build_services(settings)
        application = build_application(settings, services, worker=True)

        async def start_jobs() -> list[Job[Any]]:
            jobs = add_jobs(application, settings, services)
            try:
                await register_commands(application)
            except Exception as exc:  # the menus are a convenience: never worth the lead
                log.warning("command menus not published: %s", exc)
            return jobs

        scheduler: SchedulerLeader | SingleWorkerScheduler
        if spaces is None:
            locks = ChatLocks(None)
            scheduler = SingleWorkerScheduler(start_jobs=start_jobs)
        else:
            locks = ChatLocks(ChatAdvisoryLocks(url, spaces.chat))
            scheduler = SchedulerLeader(
                database_url=url,
                space=spaces.scheduler,
                start_jobs=start_jobs,
                retry_seconds=options.leader_retry_seconds,
            )
        ordered = OrderedUpdates(application, services, locks)
        return cls(options, services, application, ordered, scheduler)

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        pid = os.getpid()
        await self._initialize()
        await self.application.start()
        bid = asyncio.create_task(self.scheduler.run(), name="scheduler bid")
        log.info("worker %s ready: webhook at %s", pid, self.options.path)
        try:
            yield
        finally:
            bid.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await bid
            await self.scheduler.stop()
            await self.application.stop()
            await self.application.shutdown()
            await self.ordered.locks.close()
            log.info("worker %s stopped; it processed %s updates", pid, self.ordered.processed)

    async def _initialize(self) -> None:
        """Initialize the Application (it asks Telegram getMe), retrying while Telegram is
        unreachable: a worker replaced during an outage must not stop the others."""
        delay = 1.0
        while True:
            try:
                await self.application.initialize()
                return
            except NetworkError as exc:  # a refused token (InvalidToken) is no NetworkError
                if isinstance(exc, BadRequest):
                    raise
                log.warning("worker %s: Telegram not reachable (%s); retrying", os.getpid(), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def receive(self, request: Request) -> Response:
        """One update from Telegram: checked, stored, processed in chat order."""
        secret = self.options.secret_token
        if secret is not None:
            given = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                log.info("webhook request refused: wrong or missing secret token")
                return Response(status_code=403)
        try:
            data = json.loads(await request.body())
            update = Update.de_json(data, self.application.bot) if isinstance(data, dict) else None
        except Exception:
            update = None
        if update is None:
            return Response(status_code=400)
        try:
            await self.ordered.handle(update)
        except DATABASE_ERRORS as exc:
            log.warning(
                "update %s not recorded (%s); Telegram will send it again",
                update.update_id,
                type(exc).__name__,
            )
            return Response(status_code=503)
        except Exception:
            log.exception("update %s failed; Telegram will send it again", update.update_id)
            return Response(status_code=500)
        return Response(status_code=200)


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    """The uvicorn app factory (``bot.telegram.asgi:create_app``, ``factory=True``)."""
    options = ServeOptions.from_env(os.environ)
    settings = load_settings()
    setup_logging(
        settings.log_level,
        secrets=(settings.token(), options.secret_token or ""),
        log_pii=settings.log_pii,
    )
    worker = Worker.start_up(settings, options)
    routes = [
        Route(options.path, worker.receive, methods=["POST"]),
        Route(HEALTH_PATH, health, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=worker.lifespan)
