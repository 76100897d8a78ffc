"""Exactly one `crmbot serve` worker runs the scheduler.

The scheduler is everything :func:`bot.telegram.app.add_jobs` puts on python-telegram-bot's
JobQueue: the scheduled jobs with their catch-up at start, CSAT reminders, queued offers and
the outbox resend loop. Every worker has a JobQueue; only the leader's has jobs.

**PostgreSQL.** Each worker opens a dedicated connection and keeps it for its whole life. On
it, it asks ``pg_try_advisory_lock(<scheduler space>, 1)`` (see :mod:`bot.telegram.advisory`)
at start and then every ``retry_seconds`` (15 by default). The worker that gets the lock
adds the jobs, publishes the command menus and logs ``worker <pid> leads the scheduler``; the
others log once that another worker leads. The lock is session-level: PostgreSQL holds it
as long as that connection lives and releases it when the connection ends — the worker
stopped, crashed or was killed, or the connection was cut. A follower gets it at its next
try, so a new leader starts within ``retry_seconds`` (uvicorn also replaces a dead worker).

The leader checks its connection at the same interval (``SELECT 1``, 5 s timeout). If the
check fails it can no longer know whether it holds the lock, so it removes its jobs at once,
logs it, and from then on competes like any other worker.

What is *not* guaranteed: if the leader's connection is cut while the leader keeps running,
a follower may take the lock before the leader notices (at most ``retry_seconds`` + 5 s),
and both schedule for that moment. Scheduled runs are still claimed once each (``job_runs``)
and outbox rows are leased, but a CSAT reminder or a queued offer due in exactly that window
could go out twice.

**SQLite** allows a single worker (``crmbot serve`` refuses more), which simply runs the
scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from apscheduler.jobstores.base import JobLookupError
from telegram.ext import Job

from bot.telegram.advisory import SCHEDULER_KEY, Connection, connect

log = logging.getLogger(__name__)

RETRY_SECONDS = 15.0
CHECK_TIMEOUT_SECONDS = 5.0

StartJobs = Callable[[], Awaitable[list[Job[Any]]]]


def stop_jobs(jobs: list[Job[Any]]) -> None:
    for job in jobs:
        with contextlib.suppress(JobLookupError):  # a run_once job that already ran
            job.schedule_removal()


class SchedulerLeader:
    """Competes for the scheduler lock for the worker's life; see the module docstring."""

    def __init__(
        self,
        *,
        database_url: str,
        space: int,
        start_jobs: StartJobs,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.database_url = database_url
        self.space = space
        self.start_jobs = start_jobs
        self.retry_seconds = retry_seconds
        self.leading = False
        self._conn: Connection | None = None
        self._jobs: list[Job[Any]] = []
        self._said_follower = False

    async def run(self) -> None:
        """Try (or check) every ``retry_seconds`` until cancelled."""
        while True:
            try:
                await self.round()
            except Exception:  # a bug must not end the bid for good
                log.exception("worker %s: scheduler bid failed", os.getpid())
            await asyncio.sleep(self.retry_seconds)

    async def round(self) -> None:
        pid = os.getpid()
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await connect(self.database_url, "scheduler lock")
            if self.leading:
                await asyncio.wait_for(self._conn.execute("SELECT 1"), CHECK_TIMEOUT_SECONDS)
                return
            cursor = await self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (self.space, SCHEDULER_KEY)
            )
            row = await cursor.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            was_leading = self.leading
            await self._give_up()
            if was_leading:
                log.warning("worker %s lost the scheduler lock (%s); jobs stopped", pid, exc)
            else:
                log.warning("worker %s: scheduler lock not reachable: %s", pid, exc)
            return
        if not (row and row[0]):
            if not self._said_follower:
                log.info(
                    "worker %s: another worker leads the scheduler; trying every %g s",
                    pid,
                    self.retry_seconds,
                )
                self._said_follower = True
            return
        self.leading = True
        try:
            self._jobs = await self.start_jobs()
        except Exception:
            log.exception("worker %s could not start the scheduler; lock released", pid)
            await self._give_up()
            return
        log.info("worker %s leads the scheduler (%d jobs)", pid, len(self._jobs))

    async def _give_up(self) -> None:
        stop_jobs(self._jobs)
        self._jobs = []
        self.leading = False
        self._said_follower = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()  # ends the session: PostgreSQL releases the lock

    async def stop(self) -> None:
        """At shutdown: remove the jobs and release the lock."""
        if self.leading:
            log.info("worker %s stops leading the scheduler", os.getpid())
        await self._give_up()


class SingleWorkerScheduler:
    """SQLite (one worker): this worker runs the scheduler."""

    def __init__(self, *, start_jobs: StartJobs) -> None:
        self.start_jobs = start_jobs
        self.leading = False
        self._jobs: list[Job[Any]] = []

    async def run(self) -> None:
        try:
            self._jobs = await self.start_jobs()
        except Exception:
            log.exception("worker %s could not start the scheduler", os.getpid())
            return
        self.leading = True
        log.info(
            "worker %s leads the scheduler (%d jobs, a single worker)",
            os.getpid(),
            len(self._jobs),
        )

    async def stop(self) -> None:
        stop_jobs(self._jobs)
        self._jobs = []
        self.leading = False
