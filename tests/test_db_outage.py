"""An unreachable database holds an incoming update instead of losing it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from telegram import Update

from bot.telegram import app
from db import queries
from db.engine import session_scope
from db.models import InboundUpdate

UPDATE = {
    "update_id": 777001,
    "message": {
        "message_id": 1,
        "date": 1_700_000_000,
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "Ann"},
        "text": "hi",
    },
}


def test_update_waits_for_the_database_and_is_stored_once_it_is_back(services, monkeypatch):
    real = queries.record_inbound_update
    failures = iter([True, True, True])

    def flaky(**kwargs):
        if next(failures, False):
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(**kwargs)

    monkeypatch.setattr(queries, "record_inbound_update", flaky)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(app.asyncio, "sleep", no_wait)
    assert asyncio.run(app.record_update(services, Update.de_json(UPDATE, None))) is True
    assert waits == [0.25, 0.5, 1.0]  # it waited and tried again, backing off
    with session_scope(services.session_factory) as session:
        assert session.exec(select(InboundUpdate.update_id)).all() == [777001]


def test_a_database_down_for_too_long_raises(services, monkeypatch):
    def down(**kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(queries, "record_inbound_update", down)

    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(app.asyncio, "sleep", no_wait)
    monkeypatch.setattr(app.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(OperationalError):
        asyncio.run(app.record_update(services, Update.de_json(UPDATE, None)))
