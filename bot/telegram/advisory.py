"""PostgreSQL advisory locks for `crmbot serve` workers: one per chat, one for the scheduler,
one for start-up.

Locks use PostgreSQL's two-key form ``pg_advisory_lock(space, key)``. ``space`` is derived from
the database name, the schema and the purpose, so two deployments (or two test schemas)
sharing a database never share a lock, and nothing here meets another application's
single-key locks. A chat id is folded into 32 bits: two chats that fold to the same key merely
wait for each other.

Every lock lives on a dedicated connection (psycopg 3, asynchronous, autocommit), never on a
connection of the application's pool, so a worker waiting for a lock ties up neither a thread
nor a pooled connection. A connection whose state is in doubt (an error, a cancellation while
waiting) is closed, never reused: closing it is what makes PostgreSQL release its locks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

# Second keys in the "scheduler" and "startup" spaces.
SCHEDULER_KEY = 1
STARTUP_KEY = 1

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


def is_postgresql(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (``postgresql+psycopg://`` → ``postgresql://``)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def fold(value: int) -> int:
    """A 64-bit id as a signed 32-bit key."""
    return ((value + 2**31) % 2**32) - 2**31


@dataclass(frozen=True)
class LockSpaces:
    """The first keys of this deployment's locks, from its database and schema names."""

    database: str
    schema: str

    def space(self, purpose: str) -> int:
        text = f"crmbot:{self.database}:{self.schema}:{purpose}"
        return zlib.crc32(text.encode()) & 0x7FFFFFFF

    @property
    def chat(self) -> int:
        return self.space("chat")

    @property
    def scheduler(self) -> int:
        return self.space("scheduler")

    @property
    def startup(self) -> int:
        return self.space("startup")


async def connect(database_url: str, purpose: str) -> Connection:
    """A dedicated autocommit connection, named for ``pg_stat_activity``."""
    return await psycopg.AsyncConnection.connect(
        libpq_url(database_url),
        autocommit=True,
        application_name=f"crmbot worker {os.getpid()} {purpose}",
    )


def lock_spaces(conn: psycopg.Connection[tuple[Any, ...]]) -> LockSpaces:
    row = conn.execute("SELECT current_database(), current_schema()").fetchone()
    assert row is not None
    return LockSpaces(str(row[0]), str(row[1]))


class ChatAdvisoryLocks:
    """Session-level advisory locks on chat ids, on a small pool of dedicated connections.

    ``size`` bounds the connections (and so the chats this worker holds at once); further
    callers wait without blocking the event loop.
    """

    def __init__(self, database_url: str, space: int, *, size: int = 16) -> None:
        self.database_url = database_url
        self.space = space
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []

    @asynccontextmanager
    async def hold(self, chat_id: int) -> AsyncIterator[None]:
        key = fold(chat_id)
        async with self._slots:
            conn = await self._lock(key)
            released = False
            try:
                yield
                released = await self._unlock(conn, key)
            finally:
                if released:
                    self._idle.append(conn)
                else:
                    await _close(conn)

    async def _lock(self, key: int) -> Connection:
        """A connection holding the lock; a stale pooled connection is replaced once."""
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await connect(self.database_url, "chat locks")
            try:
                await conn.execute("SELECT pg_advisory_lock(%s, %s)", (self.space, key))
                return conn
            except psycopg.OperationalError:
                await _close(conn)
                if not reused:
                    raise
            except BaseException:  # cancelled while waiting: the lock may still be granted
                await _close(conn)
                raise

    async def _unlock(self, conn: Connection, key: int) -> bool:
        try:
            cursor = await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self.space, key))
            row = await cursor.fetchone()
        except psycopg.Error as exc:
            log.warning("chat lock not released (%s); its connection is closed instead", exc)
            return False
        return bool(row and row[0])

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)


async def _close(conn: Connection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # already broken: the server has dropped it (and its locks)
        log.debug("closing a lock connection failed: %s", exc)
