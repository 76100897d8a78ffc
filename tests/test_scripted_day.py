"""A scripted day through the fake Telegram server, the real bot running against it:
orders tracked, a complaint handed over and resolved, a CSAT answer recorded, an offer
sent to consenting customers but not to the holdout or to one who opted out, a staff
question answered, and /mydata and /forget working."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.demo.script import link_demo_customers
from bot.demo.shop import generate_shop
from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import run_bot
from bot.services.offers import is_holdout
from bot.services.refresh import run_refresh
from bot.settings import Settings
from bot.wiring import build_services
from db.engine import session_scope
from db.models import Customer
from nlp import NLU
from tests.helpers import crmbot, wait_text

pytestmark = pytest.mark.slow

STAFF = 7001
STAFF_CHAT = -100900
CODE = "DAYTEST"
OFFERS = f"""
version: 1
offers:
  - code: {CODE}
    title: Scripted day offer
    text: "Hi {{name}}, 10% off your next order with code {{code}}."
    holdout_share: 0.5
"""
GROUP = {"chat_id": STAFF_CHAT, "chat_type": "supergroup", "chat_title": "Support"}


def test_a_scripted_day(model_dir, tmp_path):
    offers_file = tmp_path / "offers.yml"
    offers_file.write_text(OFFERS, encoding="utf-8")
    database_url = f"sqlite:///{tmp_path / 'day.sqlite3'}"
    env = {
        "CRMBOT_STAFF_CHAT_ID": str(STAFF_CHAT),
        "CRMBOT_OFFERS_FILE": str(offers_file),
        "CRMBOT_TIMEZONE": "UTC",
    }
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        data_dir=tmp_path,
        offers_file=offers_file,
        staff_ids=frozenset({STAFF}),
    )
    services = build_services(settings, nlu=NLU.load(model_dir))
    with session_scope(services.session_factory) as session:
        generate_shop(session, seed=11, customers=300, as_of=datetime.now(UTC))
        senders = link_demo_customers(session, count=10)
        ids = {
            s.user_id: cid for s, cid in zip(senders, _customer_ids(session, senders), strict=True)
        }
        for customer_id in ids.values():  # never asked about offers yet
            customer = session.get(Customer, customer_id)
            customer.marketing_consent = None
            session.add(customer)
    run_refresh(services, as_of=datetime.now(UTC))
    buyer, complainer, leaver = senders[0], senders[1], senders[2]
    offer_group = senders[3:10]
    held = {s.user_id for s in offer_group if is_holdout(CODE, ids[s.user_id], 0.5)}
    assert 0 < len(held) < len(offer_group), "the fixed seed gives both groups"

    with (
        FakeTelegramServer() as fake,
        run_bot(
            fake,
            database_url=database_url,
            model_dir=model_dir,
            tmp_path=tmp_path,
            staff_ids=str(STAFF),
            extra_env=env,
        ) as bot,
    ):
        # Morning: consent to offers (one asked at /start), one customer opts out.
        for sender in [*offer_group, leaver]:
            fake.inject_command("/start", user_id=sender.user_id, first_name=sender.first_name)
            question = wait_text(fake, sender.user_id, "personal offers")
            fake.click_button(
                "Yes, please", message_id=question["message_id"], user_id=sender.user_id
            )
            wait_text(fake, sender.user_id, "now and then")
        fake.inject_command("/stop", user_id=leaver.user_id, first_name=leaver.first_name)
        wait_text(fake, leaver.user_id, "won't get offers")

        # An order is tracked.
        fake.inject_message("hi, where is my latest order?", user_id=buyer.user_id)
        wait_text(fake, buyer.user_id, "Your latest order is")

        # A complaint is handed over, taken, answered from the card and resolved; CSAT.
        fake.inject_message(
            "I want to file a complaint, the blender arrived broken", user_id=complainer.user_id
        )
        card = wait_text(fake, STAFF_CHAT, "Handoff #")
        fake.click_button("✋ Take", message_id=card["message_id"], user_id=STAFF, **GROUP)
        fake.inject_message(
            "So sorry! A replacement ships today.",
            user_id=STAFF,
            reply_to_message_id=card["message_id"],
            **GROUP,
        )
        wait_text(fake, complainer.user_id, "A replacement ships today")
        fake.click_button("✅ Resolve", message_id=card["message_id"], user_id=STAFF, **GROUP)
        csat = wait_text(fake, complainer.user_id, "How happy are you")
        fake.click_button("5 😍", message_id=csat["message_id"], user_id=complainer.user_id)
        bot.wait_until("SELECT score FROM surveys WHERE kind = 'csat'", 5)

        # The offer campaign is planned (as the daily job does) and the bot sends it.
        planned = crmbot(
            "jobs",
            "run",
            "offer_campaigns",
            env={
                **env,
                "CRMBOT_DATABASE_URL": database_url,
                "CRMBOT_DATA_DIR": str(tmp_path),
                "CRMBOT_MODEL_PATH": str(model_dir),
                "CRMBOT_STAFF_IDS": str(STAFF),
            },
        )
        assert planned.returncode == 0, planned.stderr
        treated = [s for s in offer_group if s.user_id not in held]
        for sender in treated:
            wait_text(fake, sender.user_id, CODE, timeout=60)
        bot.wait_until(
            "SELECT count(*) FROM audit_log WHERE action = 'offer.sent'", len(treated), timeout=30
        )
        time.sleep(1)
        for sender in [*offer_group, leaver]:
            got = [m for m in fake.sent_messages(sender.user_id) if CODE in m.get("text", "")]
            expected = 0 if sender.user_id in held or sender is leaver else 1
            assert len(got) == expected, sender.user_id

        # A staff question in plain words.
        fake.inject_message("how many champions do we have?", user_id=STAFF)
        wait_text(fake, STAFF, "Champions")

        # The buyer asks for their data, then has it deleted.
        fake.inject_command("/mydata", user_id=buyer.user_id)
        fake.wait_for_call("sendDocument")
        fake.inject_command("/forget", user_id=buyer.user_id)
        question = wait_text(fake, buyer.user_id, "Delete your data?")
        fake.click_button(
            "Yes, delete my data", message_id=question["message_id"], user_id=buyer.user_id
        )
        wait_text(fake, buyer.user_id, "personal data is deleted")
        bot.wait_until(
            f"SELECT count(*) FROM customers WHERE telegram_user_id = {buyer.user_id}", 0
        )
        assert "Traceback" not in bot.logs()


def _customer_ids(session, senders) -> list[int]:
    rows = session.exec(
        select(Customer.telegram_user_id, Customer.id).where(
            Customer.telegram_user_id.in_([s.user_id for s in senders])
        )
    ).all()
    by_user = dict(rows)
    return [by_user[s.user_id] for s in senders]
