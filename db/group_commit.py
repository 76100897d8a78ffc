"""Group commit: small writes of concurrent asyncio tasks share one transaction.

A task hands :meth:`GroupCommit.run` a function of a session (store this raw update, mark
that reply sent) and awaits its result. Writes that arrive while a batch is being written
wait for the next batch, which then takes all of them: one thread hop and one commit for
many writes under load, none of the waiting when there is no load (a lone write goes at
once). Each write sees the batch's session; a write that raises fails the batch, which is
then written again one write at a time, so a bad write fails only its own caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from db.engine import session_scope

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean the database cannot be reached now (PostgreSQL restarting, say).
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)
# How long work waits for an unreachable database before it gives up.
DB_WAIT_SECONDS = 60.0

Write = Callable[[Session], Any]

# Writes per transaction at most (a batch stays short, so no caller waits long).
MAX_BATCH = 200


class GroupCommit:
    """Batches writes from the tasks of one event loop (see the module docstring)."""

    def __init__(self, factory: sessionmaker[Session], *, max_batch: int = MAX_BATCH) -> None:
        self.factory = factory
        self.max_batch = max_batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.writes = 0

    async def run(self, write: Callable[[Session], T]) -> T:
        """Run ``write`` in a transaction shared with other pending writes; its result."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run several): start afresh
            self._loop, self._pending, self._writer = loop, [], None
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((write, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_pending())
        return await future

    async def run_waiting(self, write: Callable[[Session], T], *, what: str) -> T:
        """:meth:`run`, waiting while the database is unreachable (:func:`while_unavailable`);
        ``what`` names the work in the log."""
        return await while_unavailable(lambda: self.run(write), what=what)

    async def _write_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            writes = [write for write, _ in batch]
            try:
                results = await asyncio.to_thread(self._write, writes)
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                    continue
                for write, future in batch:  # one by one: each caller gets its own outcome
                    try:
                        result = await asyncio.to_thread(self._write, [write])
                    except Exception as own:
                        _settle(future, exc=own)
                    else:
                        _settle(future, result=result[0])
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result=result)

    def _write(self, writes: list[Write]) -> list[Any]:
        with session_scope(self.factory) as session:
            results = [write(session) for write in writes]
        self.batches += 1
        self.writes += len(writes)
        return results


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None
) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


async def while_unavailable(
    call: Callable[[], Awaitable[T]], *, what: str, patience: float = DB_WAIT_SECONDS
) -> T:
    """``call()``, tried again while the database is unreachable (pauses from 0.25 s to 4 s)
    for up to ``patience`` seconds; after that its error is raised. ``what`` names the work
    in the log ("update 12")."""
    deadline = time.monotonic() + patience
    pause = 0.25
    while True:
        try:
            return await call()
        except UNAVAILABLE as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database unavailable (%s); %s waits", type(exc).__name__, what)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)
