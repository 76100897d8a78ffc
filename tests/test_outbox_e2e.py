"""Nothing lost, nothing doubled: replies go through the outbox, survive 429s, 5xx answers
and a restart, and are sent exactly once. End to end against the fake Telegram server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import run_bot
from db import migrate
from db.engine import make_engine

pytestmark = pytest.mark.slow


@pytest.fixture
def fake():
    with FakeTelegramServer() as server:
        yield server


def replies(fake, chat_id):
    return [m["text"] for m in fake.sent_messages(chat_id) if "text" in m]


def test_replies_survive_flood_limits_and_bad_gateways_exactly_once(fake, model_dir, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    with run_bot(fake, database_url=database_url, model_dir=model_dir, tmp_path=tmp_path) as bot:
        fake.inject_fault("sendMessage", status=429, retry_after=1, times=2)
        fake.inject_fault("sendMessage", status=502, times=2)
        fake.inject_fault("getUpdates", status=502, times=2)
        for n in range(5):
            fake.inject_message(f"hello, question number {n}", user_id=4100 + n)
        for n in range(5):
            fake.wait_for(1, chat_id=4100 + n, timeout=60)
        bot.wait_until("SELECT count(*) FROM outbox WHERE status = 'sent'", 5, timeout=30)
        time.sleep(2)  # a late duplicate would show up here
        for n in range(5):
            assert len(replies(fake, 4100 + n)) == 1, n
        assert bot.scalar("SELECT count(*) FROM outbox WHERE status != 'sent'") == 0
        assert "Traceback" not in bot.logs()


def test_pending_replies_are_sent_after_a_restart(fake, model_dir, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:  # left behind by a bot that died while sending
        conn.execute(
            sa.text(
                "INSERT INTO outbox (chat_id, reply, status, steps_done, attempts,"
                " next_attempt_at, created_at) VALUES (4200, :reply, 'pending', 0, 0, :t, :t)"
            ),
            {"reply": json.dumps({"text": "sorry for the wait", "buttons": []}), "t": long_ago},
        )
    engine.dispose()
    with run_bot(fake, database_url=database_url, model_dir=model_dir, tmp_path=tmp_path) as bot:
        fake.wait_for(1, chat_id=4200, timeout=30)
        bot.wait_until("SELECT status FROM outbox", "sent", timeout=10)
    assert replies(fake, 4200) == ["sorry for the wait"]


def test_a_blocked_chat_is_marked_failed_not_retried(fake, model_dir, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'blocked.sqlite3'}"
    with run_bot(fake, database_url=database_url, model_dir=model_dir, tmp_path=tmp_path) as bot:
        fake.set_blocked(4300)
        fake.inject_message("hi", user_id=4300)
        bot.wait_until("SELECT status FROM outbox", "failed", timeout=30)
        bot.wait_until("SELECT count(*) FROM interactions WHERE direction = 'in'", 1)
