"""Conversation flows end to end: the real bot (python-telegram-bot over HTTP) against the
fake Telegram server, with real button presses (callback queries)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import run_bot
from db import migrate
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Customer, Order, OrderStatus
from tests.helpers import wait_text

pytestmark = pytest.mark.slow

STAFF = 7001
STAFF_CHAT = -100555
BUYER = 3001
GROUP = {"chat_id": STAFF_CHAT, "chat_type": "supergroup", "chat_title": "Support"}


@pytest.fixture(scope="module")
def fake():
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture(scope="module")
def bot(fake, model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flows")
    database_url = f"sqlite:///{tmp / 'flows.sqlite3'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        customer = Customer(telegram_user_id=BUYER, telegram_chat_id=BUYER, first_name="Bo")
        session.add(customer)
        session.flush()
        for number, status, days in (("8801", OrderStatus.PAID, 1), ("8700", "delivered", 40)):
            session.add(
                Order(
                    external_id=number,
                    customer_id=customer.id,
                    status=status,
                    ordered_at=datetime.now(UTC) - timedelta(days=days),
                    total=Decimal("42.00"),
                )
            )
    engine.dispose()
    with run_bot(
        fake,
        database_url=database_url,
        model_dir=model_dir,
        tmp_path=tmp,
        staff_ids=str(STAFF),
        extra_env={"CRMBOT_STAFF_CHAT_ID": str(STAFF_CHAT)},
    ) as process:
        yield process


def texts(fake, chat_id):
    return [m.get("text", "") for m in fake.sent_messages(chat_id)]


def test_cancel_order_with_confirmation_buttons(fake, bot):
    fake.inject_message("please cancel order 8801", user_id=BUYER, first_name="Bo")
    question = wait_text(fake, BUYER, "Cancel order 8801")
    assert bot.scalar("SELECT status FROM orders WHERE external_id = '8801'") == "paid"
    fake.click_button("Yes, cancel it", message_id=question["message_id"], user_id=BUYER)
    wait_text(fake, BUYER, "is cancelled")
    bot.wait_until("SELECT status FROM orders WHERE external_id = '8801'", "cancelled")
    wait_text(fake, STAFF_CHAT, "cancelled order 8801")


def test_handoff_take_reply_to_card_resolve_and_csat(fake, bot):
    user = 3002
    fake.inject_message("I want to talk to a human please", user_id=user, first_name="Cy")
    card = wait_text(fake, STAFF_CHAT, "Handoff #")
    conversation_id = int(card["text"].split("#")[1].split(":")[0])

    fake.click_button("✋ Take", message_id=card["message_id"], user_id=STAFF, **GROUP)
    wait_text(fake, user, "joined the chat")

    fake.inject_message(
        "Hi Cy, I'm on it", user_id=STAFF, reply_to_message_id=card["message_id"], **GROUP
    )
    wait_text(fake, user, "Hi Cy, I'm on it")

    before = len(texts(fake, user))
    fake.inject_message("thanks, waiting", user_id=user, first_name="Cy")
    wait_text(fake, STAFF_CHAT, "thanks, waiting")
    assert len(texts(fake, user)) == before, "the bot says nothing while a human has the chat"

    fake.click_button("✅ Resolve", message_id=card["message_id"], user_id=STAFF, **GROUP)
    question = wait_text(fake, user, "How happy are you")
    fake.click_button("4", message_id=question["message_id"], user_id=user)
    bot.wait_until("SELECT score FROM surveys WHERE kind = 'csat'", 4)
    edits = fake.wait_for_call("editMessageText")
    assert any("4/5" in str(c.params) for c in edits)
    status = bot.scalar(f"SELECT status FROM conversations WHERE id = {conversation_id}")
    assert status == "resolved"


def test_forged_staff_callback_from_a_customer_does_nothing(fake, bot):
    user = 3003
    fake.inject_message("I want to talk to a human please", user_id=user, first_name="Di")
    card = wait_text(fake, STAFF_CHAT, "Di")
    conversation_id = int(card["text"].split("#")[1].split(":")[0])
    wait_text(fake, user, "colleague")
    resolved = "SELECT count(*) FROM audit_log WHERE action = 'conversation.resolved'"
    before = bot.scalar(resolved)
    update = fake.inject_callback_query(f"res|{conversation_id}", user_id=user)
    query_id = update["callback_query"]["id"]
    deadline = time.monotonic() + 10
    while fake.callback_answer(query_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "no longer active" in str(fake.callback_answer(query_id))
    status = bot.scalar(f"SELECT status FROM conversations WHERE id = {conversation_id}")
    assert status == "waiting_human"
    assert bot.scalar(resolved) == before


def test_a_missing_order_number_is_asked_for_and_the_answer_understood(fake, bot):
    user = 3004
    fake.inject_message("where's my parcel?", user_id=user, first_name="Ed")
    wait_text(fake, user, "order number")
    customer_id = bot.scalar(f"SELECT id FROM customers WHERE telegram_user_id = {user}")
    with bot.engine.begin() as conn:  # the order arrives from the shop meanwhile
        conn.execute(
            sa.text(
                "INSERT INTO orders (external_id, customer_id, status, ordered_at, total,"
                " currency, updated_at) VALUES ('9901', :c, 'shipped', :t, 10, 'USD', :t)"
            ),
            {"c": customer_id, "t": datetime.now(UTC)},
        )
    fake.inject_message("9901", user_id=user, first_name="Ed")
    answer = wait_text(fake, user, "Order 9901")
    assert "shipped" in answer["text"]


def test_unsure_bot_asks_back_with_buttons_and_stores_the_choice(model_dir, tmp_path):
    """A model whose confident threshold no answer reaches: every in-scope message is in
    the clarify band, so the bot asks back; the pressed choice is acted on and stored.
    (Its own fake server: the module's bot polls the shared one.)"""
    unsure_model = tmp_path / "unsure-model"
    shutil.copytree(model_dir, unsure_model)
    meta_path = unsure_model / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["crmbot"]["confident_threshold"] = 1.01
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    user = 3005
    with (
        FakeTelegramServer() as fake,
        run_bot(
            fake,
            database_url=f"sqlite:///{tmp_path / 'unsure.sqlite3'}",
            model_dir=unsure_model,
            tmp_path=tmp_path,
        ) as unsure_bot,
    ):
        fake.inject_message("where is my parcel?", user_id=user, first_name="Fay")
        question = wait_text(fake, user, "Is it about one of these?")
        labels = [b["text"] for row in question["reply_markup"]["inline_keyboard"] for b in row]
        assert "Where is my order?" in labels and labels[-1] == "Something else"
        fake.click_button("Where is my order?", message_id=question["message_id"], user_id=user)
        wait_text(fake, user, "order number")
        unsure_bot.wait_until(
            "SELECT chosen_intent FROM interactions WHERE text = 'where is my parcel?'",
            "track_order",
        )
