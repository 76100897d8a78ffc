"""An unreachable database holds an incoming update instead of losing it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select
from telegram import Update

from bot.services import conversation
from bot.services.assistant import handle_message
from bot.services.messages import IncomingCallback, IncomingMessage, Sender
from bot.telegram import app
from db import group_commit, queries
from db.engine import session_scope
from db.models import Direction, InboundUpdate, OutboxMessage
from tests.helpers import interactions, message_update

UPDATE = message_update(777001, 5, first_name="Ann")


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

    monkeypatch.setattr(group_commit.asyncio, "sleep", no_wait)
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

    monkeypatch.setattr(group_commit.asyncio, "sleep", no_wait)
    monkeypatch.setattr(group_commit.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(OperationalError):
        asyncio.run(app.record_update(services, Update.de_json(UPDATE, None)))


# --- an update handled again after the database went away mid-way ----------------------


def _message(text: str, update_id: int) -> IncomingMessage:
    return IncomingMessage(
        sender=Sender(user_id=6101, chat_id=6101, first_name="Cy"),
        text=text,
        update_id=update_id,
        message_id=update_id,
    )


def _outbox_rows(services) -> list[OutboxMessage]:
    with session_scope(services.session_factory) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def test_replies_go_into_the_outbox_with_the_answer_and_a_retry_gets_them_back(services):
    replies = handle_message(services, _message("how long does shipping take", 9001), enqueue=True)
    assert replies and all(r.outbox_id for r in replies)
    rows = _outbox_rows(services)
    assert [row.id for row in rows] == [r.outbox_id for r in replies]
    assert {row.update_id for row in rows} == {9001}

    again = handle_message(services, _message("how long does shipping take", 9001), enqueue=True)
    assert [r.outbox_id for r in again] == [r.outbox_id for r in replies]  # the same, resumed
    assert [r.text for r in again] == [r.text for r in replies]
    assert len(_outbox_rows(services)) == len(rows)  # nothing stored twice
    with session_scope(services.session_factory) as session:
        assert len(interactions(session)) == 1 + len(replies)


def test_a_message_stored_before_the_database_went_away_is_answered_on_the_retry(
    services, monkeypatch
):
    real = conversation.answer
    calls = iter([True])

    def answer_then_lose_the_database(*args, **kwargs):
        if next(calls, False):
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(conversation, "answer", answer_then_lose_the_database)
    message = _message("what payment methods do you take", 9002)
    with pytest.raises(OperationalError):
        handle_message(services, message, enqueue=True)
    with session_scope(services.session_factory) as session:  # kept: the message itself
        assert [i.text for i in interactions(session)] == [message.text]
    replies = handle_message(services, message, enqueue=True)
    assert replies and all(r.outbox_id for r in replies)
    with session_scope(services.session_factory) as session:
        stored = interactions(session)
    assert [i.direction for i in stored].count(Direction.INBOUND) == 1
    assert len(stored) == 1 + len(replies)


def test_without_the_outbox_a_stored_update_is_not_answered_again(services):
    first = handle_message(services, _message("hello", 9003))
    assert first and first[0].outbox_id is None
    assert handle_message(services, _message("hello", 9003)) == []
    assert _outbox_rows(services) == []


def test_a_button_press_caught_by_the_outage_is_answered_once_on_the_retry(services, monkeypatch):
    from bot.services import buttons

    calls = iter([True])

    def pressed(press, chat):
        if next(calls, False):
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return [chat.reply("Noted, thanks!")]

    monkeypatch.setitem(buttons.CUSTOMER_BUTTONS, "tst", pressed)
    callback = IncomingCallback(
        sender=Sender(user_id=6102, chat_id=6102, first_name="Di"), data="tst|1", update_id=9004
    )
    with pytest.raises(OperationalError):
        buttons.handle_callback(services, callback, enqueue=True)
    notice, replies = buttons.handle_callback(services, callback, enqueue=True)
    assert notice is None and [r.text for r in replies] == ["Noted, thanks!"]
    assert replies[0].outbox_id is not None
    notice, again = buttons.handle_callback(services, callback, enqueue=True)  # once more
    assert notice is None and [r.outbox_id for r in again] == [replies[0].outbox_id]
    assert len(_outbox_rows(services)) == 1


def test_a_staff_command_in_a_group_waits_out_the_outage(services, settings, monkeypatch):
    """In the staff group too, an update caught by an outage waits and is answered after it,
    rather than being marked failed (the real bot, in process, against the fake server)."""
    from pydantic import SecretStr

    from bot.fake_telegram import FakeTelegramServer
    from bot.fake_telegram.bot_process import TOKEN
    from tests.conftest import STAFF_ID

    real, calls = app.handle_message, []

    def flaky(*args, **kwargs):
        calls.append(args[1].text)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "handle_message", flaky)
    group = -100500
    with FakeTelegramServer() as fake:
        configured = settings.model_copy(
            update={
                "telegram_token": SecretStr(TOKEN),
                "telegram_api_url": fake.base_url,
                "telegram_file_url": fake.base_file_url,
            }
        )
        application = app.build_application(configured, services)
        raw = fake.inject_command("/help", user_id=STAFF_ID, chat_id=group, chat_type="supergroup")

        async def handle() -> None:
            async with application:
                await application.process_update(Update.de_json(raw, application.bot))

        asyncio.run(handle())
        sent = [m["text"] for m in fake.sent_messages(group)]
    assert calls == ["/help", "/help"]  # tried again once the database answered
    assert len(sent) == 1 and "/customer" in sent[0]
    with session_scope(services.session_factory) as session:
        row = session.get(InboundUpdate, raw["update_id"])
        assert row is not None and row.processed_at is not None and row.error is None
