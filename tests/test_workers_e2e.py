"""`crmbot serve`: webhook workers under uvicorn, sharing PostgreSQL, run as real processes
against the fake Telegram Bot API server.

Telegram sends a chat's next update only after the previous one was answered; these tests
also post updates themselves, each on its own connection (so the kernel spreads them over
the workers), and post a chat's next update as soon as the previous one is *stored* — before
its answer — so that a later update can reach the other worker while an earlier one is
still pending. Replies must still come once each, in each chat's order.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import TOKEN, BotProcess, free_port, run_bot
from bot.telegram.advisory import SCHEDULER_KEY, LockSpaces
from tests.conftest import fresh_postgres_schema
from tests.helpers import crmbot

pytestmark = pytest.mark.slow

SECRET = "s3cret-Token_for-workers"
CHATS = 10
MESSAGES = 5
READY = re.compile(r"worker (\d+) ready")
LEADS = re.compile(r"worker (\d+) leads the scheduler")
FOLLOWS = re.compile(r"worker (\d+): another worker leads the scheduler")
STOPPED = re.compile(r"worker (\d+) stopped; it processed (\d+) updates")
CODE = re.compile(r"the code (\S+)\.")


@pytest.fixture(scope="module")
def pg_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this module's servers."""
    with fresh_postgres_schema() as url:
        yield url


class Served:
    """A running `crmbot serve` and its webhook URL."""

    def __init__(self, bot: BotProcess, url: str) -> None:
        self.bot = bot
        self.url = url

    def wait_for_log(self, pattern: re.Pattern[str], count: int, timeout: float = 90) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.findall(self.bot.logs())
            if len(found) >= count:
                return found
            assert self.bot.process.poll() is None, self.bot.logs()
            time.sleep(0.1)
        raise AssertionError(f"{pattern.pattern!r} not logged {count}×:\n{self.bot.logs()}")

    def scheduler_lock_holders(self) -> list[str]:
        """application_name of each session holding this deployment's scheduler lock."""
        database, schema = self.bot.rows("SELECT current_database(), current_schema()")[0]
        space = LockSpaces(database, schema).scheduler
        rows = self.bot.rows(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid::bigint = :space AND l.objid::bigint = :key",
            space=space,
            key=SCHEDULER_KEY,
        )
        return [str(row[0]) for row in rows]


def serve(
    fake: FakeTelegramServer,
    *,
    database_url: str,
    model_dir: Path,
    tmp_path: Path,
    workers: int,
    extra: tuple[str, ...] = (),
):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    args = ("--webhook-url", url, "--port", str(port), "--secret-token", SECRET)
    return url, run_bot(
        fake,
        database_url=database_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        command=("serve",),
        ready_method="setWebhook",
        args=(*args, "--workers", str(workers), *extra),
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture
def own_fake() -> Iterator[FakeTelegramServer]:
    """A fake Telegram for a test that runs its own server (the webhook URL is per fake)."""
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def served(fake, pg_schema_url, model_dir, tmp_path_factory) -> Iterator[Served]:
    """Two workers on PostgreSQL, shared by the tests that do not stop a worker."""
    url, running = serve(
        fake,
        database_url=pg_schema_url,
        model_dir=model_dir,
        tmp_path=tmp_path_factory.mktemp("serve"),
        workers=2,
    )
    with running as bot:
        server = Served(bot, url)
        server.wait_for_log(READY, 2)
        yield server


def codes(fake: FakeTelegramServer, chat: int) -> list[str]:
    texts = [m.get("text", "") for m in fake.sent_messages(chat)]
    return [match.group(1) for text in texts for match in [CODE.search(text)] if match]


def message_update(update_id: int, chat: int, message_id: int, text: str) -> dict:
    user = {"id": chat, "is_bot": False, "first_name": f"Customer{chat}"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": f"Customer{chat}"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
        },
    }


def post_chat_eagerly(
    served: Served, pool: ThreadPoolExecutor, chat: int, update_ids: list[int]
) -> list[int]:
    """Post a chat's updates in order, each on a new connection, the next one as soon as
    the previous one is stored (not answered); returns the HTTP statuses."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    answers = []
    for index, update_id in enumerate(update_ids):
        update = message_update(update_id, chat, index + 1, f"/redeem C{chat}M{index}")
        answers.append(pool.submit(httpx.post, served.url, json=update, headers=headers))
        served.bot.wait_until(
            f"SELECT count(*) FROM inbound_updates WHERE update_id = {update_id}", 1, timeout=30
        )
    return [answer.result(timeout=60).status_code for answer in answers]


def test_every_message_is_answered_once_and_in_chat_order(fake, served):
    """10 chats × 5 messages through Telegram's (the fake's) webhook delivery, and 10 more
    chats × 5 posted eagerly over many connections: one reply per message, each chat's
    replies in the order of its messages, every update processed once."""
    fake_chats = [71_000 + c for c in range(CHATS)]
    for index in range(MESSAGES):
        for chat in fake_chats:
            fake.inject_message(f"/redeem C{chat}M{index}", user_id=chat)

    eager_chats = [72_000 + c for c in range(CHATS)]
    first_id = 5_000_000
    with ThreadPoolExecutor(max_workers=CHATS * MESSAGES) as pool:
        ids = {
            chat: [first_id + index * CHATS + c for index in range(MESSAGES)]
            for c, chat in enumerate(eager_chats)
        }
        statuses: dict[int, list[int]] = {}
        threads = [
            threading.Thread(
                target=lambda chat=chat: statuses.__setitem__(
                    chat, post_chat_eagerly(served, pool, chat, ids[chat])
                )
            )
            for chat in eager_chats
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert statuses == {chat: [200] * MESSAGES for chat in eager_chats}

    total = 2 * CHATS * MESSAGES
    fake.wait_for(total, timeout=60)
    time.sleep(0.5)  # a duplicate would come right after
    for chat in fake_chats + eager_chats:
        assert codes(fake, chat) == [f"C{chat}M{index}" for index in range(MESSAGES)], chat
    bot = served.bot
    assert bot.scalar("SELECT count(*) FROM inbound_updates") == total
    assert bot.scalar("SELECT count(*) FROM inbound_updates WHERE processed_at IS NULL") == 0
    assert bot.scalar("SELECT count(*) FROM inbound_updates WHERE error IS NOT NULL") == 0
    assert (
        bot.scalar("SELECT count(DISTINCT telegram_update_id) FROM interactions")
        == bot.scalar("SELECT count(*) FROM interactions WHERE telegram_update_id IS NOT NULL")
        == total
    )
    assert bot.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == total
    assert "Traceback" not in bot.logs() and " ERROR " not in bot.logs()


def test_a_wrong_or_missing_secret_gets_403_and_nothing_is_stored(served):
    forged = message_update(9_999_999, 5, 1, "/redeem FORGED")
    wrong = httpx.post(
        served.url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
    )
    missing = httpx.post(served.url, json=forged)
    assert (wrong.status_code, missing.status_code) == (403, 403)
    not_json = httpx.post(
        served.url, content=b"{", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert not_json.status_code == 400
    assert served.bot.scalar("SELECT count(*) FROM inbound_updates WHERE update_id = 9999999") == 0


def test_a_redelivered_update_gets_200_and_is_not_processed_again(fake, served):
    chat = 72_500
    update = message_update(5_900_000, chat, 1, "/redeem TWICE")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert httpx.post(served.url, json=update, headers=headers).status_code == 200
    assert httpx.post(served.url, json=update, headers=headers).status_code == 200
    time.sleep(0.5)
    assert codes(fake, chat) == ["TWICE"]
    assert (
        served.bot.scalar("SELECT count(*) FROM interactions WHERE telegram_update_id = 5900000")
        == 1
    )
    assert httpx.get(served.url.replace("/telegram", "/healthz")).text == "ok"


def test_exactly_one_worker_leads_the_scheduler(served):
    (leader,) = served.wait_for_log(LEADS, 1)
    (follower,) = served.wait_for_log(FOLLOWS, 1)
    ready = served.wait_for_log(READY, 2)
    assert sorted([leader, follower]) == sorted(ready)
    time.sleep(1)
    logs = served.bot.logs()
    assert len(LEADS.findall(logs)) == 1
    assert logs.count("scheduled daily_digest") == 1  # the jobs exist in one process only
    assert served.scheduler_lock_holders() == [f"crmbot worker {leader} scheduler lock"]


def test_a_follower_takes_the_lead_when_the_leader_dies(
    own_fake, postgres_url, model_dir, tmp_path
):
    fake = own_fake
    url, running = serve(
        fake,
        database_url=postgres_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        workers=2,
        extra=("--leader-retry-seconds", "1"),
    )
    with running as bot:
        server = Served(bot, url)
        server.wait_for_log(READY, 2)
        (leader,) = server.wait_for_log(LEADS, 1)
        os.kill(int(leader), signal.SIGKILL)
        leaders = server.wait_for_log(LEADS, 2, timeout=30)
        assert leaders[1] != leader
        assert server.scheduler_lock_holders() == [f"crmbot worker {leaders[1]} scheduler lock"]
        fake.inject_message("/redeem AFTER", user_id=73_001)
        fake.wait_for(1, chat_id=73_001, timeout=60)
        assert codes(fake, 73_001) == ["AFTER"]


def test_one_worker_on_sqlite_serves_the_webhook(own_fake, model_dir, tmp_path):
    fake = own_fake
    url, running = serve(
        fake,
        database_url=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        model_dir=model_dir,
        tmp_path=tmp_path,
        workers=1,
    )
    with running as bot:
        server = Served(bot, url)
        server.wait_for_log(READY, 1)
        server.wait_for_log(LEADS, 1)
        for index in range(3):
            fake.inject_message(f"/redeem S{index}", user_id=74_001)
        fake.wait_for(3, chat_id=74_001, timeout=30)
        assert codes(fake, 74_001) == ["S0", "S1", "S2"]
        forged = message_update(9_999_998, 5, 1, "/redeem FORGED")
        assert httpx.post(url, json=forged).status_code == 403


def test_several_workers_on_sqlite_are_refused(cli_env):
    env = {**cli_env, "CRMBOT_TELEGRAM_TOKEN": TOKEN}
    result = crmbot(
        "serve", "--webhook-url", "https://bot.example.com/telegram", "--workers", "2", env=env
    )
    assert result.returncode == 2
    assert "--workers 2 needs PostgreSQL" in " ".join(result.stderr.split())
