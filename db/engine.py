"""Engine and session factory. Nothing here runs at import time."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine for ``url``, with sane defaults for SQLite and PostgreSQL.

    SQLite gets WAL journaling, enforced foreign keys and a busy timeout so that the bot
    and a CLI command can share the file. A ``postgresql://`` URL uses psycopg 3.
    """
    parsed = make_url(url)
    # SQL parameters hold message texts and contact data: keep them out of errors and logs.
    kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if not database or database == ":memory:":
            kwargs["poolclass"] = sa.pool.StaticPool
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        _SQLITE_LOCKS[engine] = threading.RLock()
    return engine


# SQLite has one writer at a time. Threads of one process that write at once would wait in
# SQLite's busy handler (sleeps of up to 100 ms, first come not first served) or fail with
# "database is locked" when a read turns into a write; so this process's sessions on a SQLite
# file take turns here instead. Other processes (a CLI command) still meet the busy timeout.
_SQLITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, class_=Session, expire_on_commit=False)


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reading only, for long reads (the nightly refresh, big reports).

    It does not take this process's SQLite turn (:func:`session_scope`), so customers'
    messages are stored and answered while it reads: in WAL mode a reader neither waits for
    the writer nor holds it up. The database refuses writes in it (SQLite ``query_only``,
    a PostgreSQL read-only transaction), and it ends with a rollback.
    """
    engine: Engine = factory.kw["bind"]
    if isinstance(engine.pool, sa.pool.StaticPool):  # in-memory SQLite: one shared connection
        with session_scope(factory) as session:
            yield session
        return
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "PRAGMA query_only = ON" if sqlite else "SET TRANSACTION READ ONLY"
        )
        session = factory(bind=connection)
        try:
            yield session
        finally:
            session.close()
            connection.rollback()
            if sqlite:  # the connection goes back to the pool: writable again
                connection.exec_driver_sql("PRAGMA query_only = OFF")
                connection.commit()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (on SQLite, one such
    session at a time in this process: keep them short; long reads go in :func:`read_scope`)."""
    lock = _SQLITE_LOCKS.get(factory.kw.get("bind"))  # type: ignore[arg-type]
    with lock if lock is not None else nullcontext():
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
