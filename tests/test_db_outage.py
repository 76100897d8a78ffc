"""An unreachable database holds an incoming update instead of losing it."""

from __future__ import annotations

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
    monkeypatch.setattr(app.time, "sleep", lambda seconds: None)
    assert app.record_update(services, Update.de_json(UPDATE, None)) is True
    with session_scope(services.session_factory) as session:
        assert session.exec(select(InboundUpdate.update_id)).all() == [777001]


def test_a_database_down_for_too_long_raises(services, monkeypatch):
    def down(**kwargs):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    clock = iter(range(0, 1000, 5))
    monkeypatch.setattr(queries, "record_inbound_update", down)
    monkeypatch.setattr(app.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(app.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(OperationalError):
        app.record_update(services, Update.de_json(UPDATE, None))
