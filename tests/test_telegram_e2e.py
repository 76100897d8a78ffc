"""End to end: the real bot (`crmbot run` in a subprocess, python-telegram-bot over HTTP)
against the fake Telegram Bot API server, in polling and in webhook mode."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.demo.shop import generate_shop
from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import TOKEN, free_port, run_bot
from bot.services.assistant import UNKNOWN_COMMAND
from bot.services.refresh import run_refresh
from bot.settings import Settings
from bot.wiring import build_services
from db import migrate
from db.engine import make_engine, make_session_factory, session_scope
from nlp import NLU

pytestmark = pytest.mark.slow

STAFF = 7001
CUSTOMER = 111111


@pytest.fixture(scope="module")
def fake():
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def polling_bot(fake, model_dir, tmp_path_factory):
    """One bot on SQLite, shared by the polling tests of this module."""
    tmp = tmp_path_factory.mktemp("bot")
    with run_bot(
        fake,
        database_url=f"sqlite:///{tmp / 'bot.sqlite3'}",
        model_dir=model_dir,
        tmp_path=tmp,
        staff_ids=str(STAFF),
    ) as bot:
        yield bot


def replies_to(fake, chat_id):
    return [m["text"] for m in fake.sent_messages(chat_id) if "text" in m]


def test_text_message_is_answered_and_stored_once(fake, polling_bot):
    chat = 2001
    update = fake.inject_message("where is my order?", user_id=chat, first_name="Ann")
    fake.wait_for(1, chat_id=chat, timeout=10)
    (answer,) = replies_to(fake, chat)
    assert "order" in answer.lower()
    sql = (
        "SELECT count(*) FROM interactions i JOIN customers c ON c.id = i.customer_id "
        f"WHERE c.telegram_user_id = {chat}"
    )
    polling_bot.wait_until(sql, 2)
    inbound = polling_bot.rows(
        "SELECT text, intent, sentiment, telegram_update_id FROM interactions "
        "WHERE direction = 'in' AND telegram_chat_id = :chat",
        chat=chat,
    )
    assert inbound == [("where is my order?", "track_order", inbound[0][2], update["update_id"])]
    polling_bot.wait_until(
        "SELECT count(*) FROM interactions WHERE direction = 'out' AND telegram_chat_id = "
        f"{chat} AND telegram_message_id IS NOT NULL",
        1,
    )

    fake.redeliver(update["update_id"])
    fake.inject_message("thanks", user_id=chat, first_name="Ann")  # a marker after it
    fake.wait_for(2, chat_id=chat, timeout=10)
    polling_bot.wait_until(sql, 4)
    assert (
        polling_bot.scalar(
            "SELECT count(*) FROM interactions WHERE telegram_update_id = :u",
            u=update["update_id"],
        )
        == 1
    )
    assert len(replies_to(fake, chat)) == 2, "the redelivered update got no second answer"


def test_stats_for_staff_and_refusal_for_customers(fake, polling_bot):
    fake.inject_command("/stats", user_id=STAFF, first_name="Sam")
    fake.wait_for(1, chat_id=STAFF, timeout=10)
    (report,) = replies_to(fake, STAFF)
    assert "Customers:" in report and "Customer messages:" in report
    assert any(ch.isdigit() for ch in report)

    fake.inject_command("/stats", user_id=2002)
    fake.wait_for(1, chat_id=2002, timeout=10)
    assert replies_to(fake, 2002) == [UNKNOWN_COMMAND]


def test_command_menus_are_registered(fake, polling_bot):
    customer_menu = [c["command"] for c in fake.commands()]
    assert customer_menu[:2] == ["start", "help"] and "stats" not in customer_menu
    staff_menu = [c["command"] for c in fake.commands(scope={"type": "chat", "chat_id": STAFF})]
    assert "stats" in staff_menu


def test_other_updates_cause_no_error(fake, polling_bot):
    chat = 2003
    first = fake.inject_message("hello", user_id=chat)
    fake.wait_for(1, chat_id=chat, timeout=10)
    kinds = [
        fake.inject_sticker(emoji="😀", user_id=chat),
        fake.inject_edited_message(
            first["message"]["message_id"], "hello again", chat_id=chat, user_id=chat
        ),
        fake.inject_photo(caption="my parcel arrived like this", user_id=chat),
        fake.inject_voice(user_id=chat),
        fake.inject_document(user_id=chat),
        fake.inject_location(52.52, 13.40, user_id=chat),
        fake.inject_contact("+4915112345678", user_id=chat),
        fake.inject_group_message("hi all", user_id=chat, chat_id=-100500),
        fake.inject_command("/start", user_id=chat, chat_id=-100500, chat_type="supergroup"),
        fake.inject_channel_post("news"),
        fake.inject_callback_query("old:button", user_id=chat),
        fake.inject_message("x" * 4096, user_id=chat),
        fake.inject_command("/nosuchcommand", user_id=chat),
    ]
    last = kinds[-1]["update_id"]
    polling_bot.wait_until(
        f"SELECT count(*) FROM inbound_updates WHERE update_id = {last} "
        "AND processed_at IS NOT NULL",
        1,
    )
    for update in kinds:
        row = polling_bot.rows(
            "SELECT processed_at, error FROM inbound_updates WHERE update_id = :u",
            u=update["update_id"],
        )
        assert row and row[0][0] is not None and row[0][1] is None, update
    # sticker, photo, voice, document, location, contact, long text, unknown command;
    # the edit gets no new answer
    fake.wait_for(9, chat_id=chat, timeout=10)
    assert replies_to(fake, -100500)[-1].startswith("I help customers in private chats")
    assert fake.callback_answer(kinds[10]["callback_query"]["id"]) is not None
    logs = polling_bot.logs()
    assert "ERROR" not in logs and "Traceback" not in logs
    edits = polling_bot.rows("SELECT text FROM interactions WHERE kind = 'edited'")
    assert ("hello again",) in edits


def test_token_never_appears_in_the_logs(polling_bot):
    logs = polling_bot.logs()
    assert "getUpdates" in logs or "polling" in logs
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs


@pytest.fixture
def own_fake():
    """A fake server of the test's own, so no other bot is talking to it."""
    with FakeTelegramServer() as server:
        yield server


def test_webhook_mode_with_secret_token(own_fake, model_dir, tmp_path):
    fake = own_fake
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    with run_bot(
        fake,
        database_url=f"sqlite:///{tmp_path / 'hook.sqlite3'}",
        model_dir=model_dir,
        tmp_path=tmp_path,
        ready_method="setWebhook",
        args=(
            "--webhook-url",
            url,
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--secret-token",
            "s3cret-Token",
        ),
    ) as bot:
        assert fake.webhook_info()["url"] == url
        fake.inject_message("hi there", user_id=3001)
        fake.wait_for(1, chat_id=3001, timeout=15)
        bot.wait_until("SELECT count(*) FROM interactions WHERE telegram_chat_id = 3001", 2)
        forged = {
            "update_id": 999999,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "text": "forged",
            },
        }
        wrong = httpx.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        missing = httpx.post(url, json=forged)
        assert (wrong.status_code, missing.status_code) == (403, 403)
        assert bot.scalar("SELECT count(*) FROM inbound_updates WHERE update_id = 999999") == 0
        assert "Traceback" not in bot.logs()


@pytest.mark.postgres
def test_polling_bot_on_postgresql(own_fake, model_dir, postgres_url, tmp_path):
    fake = own_fake
    with run_bot(
        fake,
        database_url=postgres_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        staff_ids=str(STAFF),
    ) as bot:
        update = fake.inject_message("I want to talk to a real person", user_id=4001)
        fake.wait_for(1, chat_id=4001, timeout=10)
        bot.wait_until("SELECT count(*) FROM conversations WHERE status = 'waiting_human'", 1)
        fake.wait_for(1, chat_id=STAFF, timeout=10)
        assert "Handoff #" in replies_to(fake, STAFF)[0]
        fake.redeliver(update["update_id"])
        fake.inject_command("/handoffs", user_id=STAFF)
        fake.wait_for(2, chat_id=STAFF, timeout=10)
        assert (
            bot.scalar(
                "SELECT count(*) FROM interactions WHERE telegram_update_id = :u",
                u=update["update_id"],
            )
            == 1
        )
        assert "ERROR" not in bot.logs()


def test_a_refused_reply_is_recorded_and_the_bot_keeps_running(own_fake, model_dir, tmp_path):
    fake = own_fake
    with run_bot(
        fake,
        database_url=f"sqlite:///{tmp_path / 'err.sqlite3'}",
        model_dir=model_dir,
        tmp_path=tmp_path,
    ) as bot:
        fake.inject_fault("sendMessage", status=400, description="Bad Request: injected", times=1)
        fake.inject_message("hello", user_id=5001)
        bot.wait_until("SELECT count(*) FROM outbox WHERE status = 'failed'", 1)
        assert "injected" in str(bot.scalar("SELECT last_error FROM outbox")).lower()
        fake.inject_message("where is my order", user_id=5001)
        fake.wait_for(1, chat_id=5001, timeout=10)
        assert "refused" in bot.logs()
        assert bot.scalar("SELECT count(*) FROM interactions WHERE direction = 'in'") == 2, (
            "the customer's message is kept even though the reply failed"
        )
        assert bot.process.poll() is None


def test_missed_digest_is_sent_once_across_restarts(own_fake, model_dir, tmp_path):
    """A digest due a few minutes ago is caught up at start, once; a restart sends nothing."""
    fake = own_fake
    staff_chat = -100777
    due = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%H:%M")
    # the weekly digest on another day: on a Monday morning it would be caught up too
    other_day = (datetime.now(UTC) + timedelta(days=3)).strftime("%a").lower()
    env = {
        "CRMBOT_STAFF_CHAT_ID": str(staff_chat),
        "CRMBOT_WEEKLY_DIGEST_DAY": other_day,
        "CRMBOT_DAILY_DIGEST_TIME": due,
        "CRMBOT_REFRESH_TIME": due,
        "CRMBOT_MISFIRE_GRACE_HOURS": "0.5",
        "CRMBOT_TIMEZONE": "UTC",
    }
    database_url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    with run_bot(
        fake,
        database_url=database_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        staff_ids=str(STAFF),
        extra_env=env,
    ) as bot:
        fake.wait_for(1, chat_id=staff_chat, timeout=30)
        bot.wait_until(
            "SELECT count(*) FROM job_runs WHERE job = 'daily_digest' AND status = 'succeeded'",
            1,
            timeout=15,
        )
        first_logs = bot.logs()
    photos = [c for c in fake.calls("sendPhoto") if c.ok]
    assert len(photos) == 1
    (text,) = [m["text"] for m in fake.sent_messages(staff_chat) if "text" in m]
    assert text.startswith("📈 Daily digest")
    with run_bot(
        fake,
        database_url=database_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        staff_ids=str(STAFF),
        extra_env=env,
    ) as bot:
        time.sleep(8)  # past the catch-up at start
        assert "ran before; skipped" in bot.logs() or "catching up" not in bot.logs()
    assert len([c for c in fake.calls("sendPhoto") if c.ok]) == 1, "no second digest"
    assert "Traceback" not in first_logs


def test_segment_paging_buttons_end_to_end(own_fake, model_dir, tmp_path):
    fake = own_fake
    database_url = f"sqlite:///{tmp_path / 'seg.sqlite3'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        generate_shop(session, seed=3, customers=300, as_of=datetime.now(UTC))
    services = build_services(
        Settings(_env_file=None, database_url=database_url), nlu=NLU.load(model_dir)
    )
    run_refresh(services, as_of=datetime.now(UTC))
    with run_bot(
        fake,
        database_url=database_url,
        model_dir=model_dir,
        tmp_path=tmp_path,
        staff_ids=str(STAFF),
    ):
        fake.inject_command("/segment", "Loyal Customers", user_id=STAFF)
        (first,) = fake.wait_for(1, chat_id=STAFF, timeout=10)
        assert "page 1/" in first["text"]
        fake.click_button("next ▶", message_id=first["message_id"], user_id=STAFF)

        def page_text() -> str:
            (message,) = [
                m for m in fake.chat_history(STAFF) if m["message_id"] == first["message_id"]
            ]
            return message["text"]

        deadline = time.monotonic() + 10
        while "page 2/" not in page_text():
            assert time.monotonic() < deadline, page_text()
            time.sleep(0.05)
        stranger = fake.inject_callback_query(
            "seg|Loyal Customers|3", user_id=2099, chat_id=STAFF, message_id=first["message_id"]
        )
        deadline = time.monotonic() + 10
        while fake.callback_answer(stranger["callback_query"]["id"]) is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "page 2/" in page_text(), "a customer can't page staff lists"


HARD_TEXTS = [
    "שלום, where is my order?",
    "zero\u200bwidth\u200djoin\u202eRTL override",
    "👨‍👩‍👧‍👦 🇩🇪 *bold* _it_ <b>html</b> &amp;",
    "ctrl \x07 bell \x1b[31m colour",
    "x" * 4096,
]


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_hard_texts_through_telegram_are_stored_exactly_and_answered(fake, polling_bot, text):
    user = 6000 + HARD_TEXTS.index(text)
    update = fake.inject_message(text, user_id=user)
    fake.wait_for(1, chat_id=user, timeout=15)
    polling_bot.wait_until(
        f"SELECT count(*) FROM interactions WHERE telegram_update_id = {update['update_id']}", 1
    )
    stored = polling_bot.scalar(
        f"SELECT text FROM interactions WHERE telegram_update_id = {update['update_id']}"
    )
    assert stored == update["message"]["text"]
