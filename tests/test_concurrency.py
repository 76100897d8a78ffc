"""Concurrent updates: chats in parallel but each in order, writes committed together,
SQLite written one session at a time, no lock-order deadlock."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from telegram import Update

from bot.services.context import Services
from bot.services.staff_directory import StaffDirectory
from bot.telegram.chat_order import ChatOrderProcessor
from db.engine import make_engine, make_session_factory, session_scope
from db.group_commit import GroupCommit
from db.models import InboundUpdate
from tests.helpers import message_update


def _update(update_id: int, chat: int) -> Update:
    return Update.de_json(message_update(update_id, chat), None)


def test_chats_run_side_by_side_and_each_chat_keeps_its_order():
    done: list[int] = []

    async def handle(update_id: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        done.append(update_id)

    async def main() -> None:
        processor = ChatOrderProcessor(16)
        # chat 1: a slow update, then a quick one; chat 2: a quick one, arriving last
        work = [(1, 1, 0.2), (2, 1, 0.0), (3, 2, 0.0)]
        await asyncio.gather(
            *(
                processor.process_update(_update(uid, chat), handle(uid, seconds))
                for uid, chat, seconds in work
            )
        )

    asyncio.run(main())
    assert done == [3, 1, 2]  # chat 2 did not wait for chat 1; chat 1 kept its order


def test_concurrent_writes_share_transactions_and_all_land(services: Services):
    group = GroupCommit(services.session_factory)

    def store(update_id: int):
        def write(session: Session) -> int:
            session.add(InboundUpdate(update_id=update_id, kind="message", payload={}))
            return update_id

        return write

    async def main() -> list[int]:
        return await asyncio.gather(*(group.run(store(n)) for n in range(100, 160)))

    assert asyncio.run(main()) == list(range(100, 160))
    assert group.writes == 60
    assert group.batches < 60  # the writes that queued up behind the first went together
    with session_scope(services.session_factory) as session:
        stored = session.exec(select(InboundUpdate.update_id)).all()
    assert sorted(stored) == list(range(100, 160))


def test_a_failing_write_fails_only_its_own_caller(services: Services):
    group = GroupCommit(services.session_factory)

    def store(update_id: int):
        def write(session: Session) -> int:
            if update_id == 7:
                raise ValueError("bad write")
            session.add(InboundUpdate(update_id=update_id, kind="message", payload={}))
            return update_id

        return write

    async def main() -> list[object]:
        return await asyncio.gather(
            *(group.run(store(n)) for n in range(1, 11)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert [type(r).__name__ for r in results].count("ValueError") == 1
    assert results[6].args == ("bad write",)  # type: ignore[union-attr]
    with session_scope(services.session_factory) as session:
        stored = session.exec(select(InboundUpdate.update_id)).all()
    assert sorted(stored) == [1, 2, 3, 4, 5, 6, 8, 9, 10]


def test_sqlite_sessions_of_many_threads_take_turns(tmp_path):
    """Read-then-write transactions from many threads: without turns SQLite answers some
    with "database is locked" (a read snapshot cannot become a write) or loses increments."""
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    factory = make_session_factory(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(sa.text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(40):
                with session_scope(factory) as session:
                    n = session.execute(sa.text("SELECT n FROM counter")).scalar_one()
                    session.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM counter")).scalar_one() == 8 * 40
    engine.dispose()


@pytest.mark.parametrize("rounds", [50])
def test_staff_lookups_inside_sessions_never_deadlock(tmp_path, rounds):
    """One thread asks who is staff while in a session; another refreshes the staff list."""
    engine = make_engine(f"sqlite:///{tmp_path / 'staff.sqlite3'}")
    from db import migrate

    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    directory = StaffDirectory(factory, ttl=0.0)  # every lookup reads the table

    def inside_session() -> None:
        for _ in range(rounds):
            with session_scope(factory):
                directory.added()

    def outside() -> None:
        for _ in range(rounds):
            directory.added()
            directory.invalidate()

    threads = [
        threading.Thread(target=inside_session, daemon=True),
        threading.Thread(target=outside, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "deadlocked"
    engine.dispose()
