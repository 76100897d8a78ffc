"""No personal data in the logs: message texts, names, phone numbers and e-mails never
appear, only ids and intents, unless CRMBOT_LOG_PII is switched on for debugging."""

from __future__ import annotations

import logging

import pytest

from bot.fake_telegram import FakeTelegramServer
from bot.fake_telegram.bot_process import run_bot
from bot.logs import setup_logging
from tests.conftest import STAFF_ID
from tests.helpers import say, texts_to

PHONE = "+49 151 2345 6789"
EMAIL = "ada.lovelace@example.org"
SECRET_WORDS = "zebracorn"  # a word that only occurs in the customer's text
PII = (PHONE, "2345 6789", EMAIL, "Lovelace", SECRET_WORDS)


class BrokenNLU:
    def analyze(self, text: str, **_: object) -> None:
        raise ValueError(f"cannot parse {text!r}")


def assert_no_pii(text: str) -> None:
    leaked = [p for p in PII if p in text]
    assert not leaked, f"personal data in the logs: {leaked}"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_scripted_conversation_logs_no_personal_data(services, caplog):
    """Every log call, at DEBUG, before any filter: the log calls themselves are clean."""
    caplog.set_level(logging.DEBUG)
    say(services, f"hi, my phone is {PHONE} and my email is {EMAIL}", update_id=99)
    say(services, f"hi, my phone is {PHONE} and my email is {EMAIL}", update_id=99)
    real_nlu, services.nlu = services.nlu, BrokenNLU()
    say(services, f"{SECRET_WORDS} {EMAIL}")  # the NLU fails, quoting the text
    services.nlu = real_nlu
    say(services, f"where is my order 20931? {SECRET_WORDS}")
    replies = say(services, "I want to talk to a real person")
    (card,) = texts_to(replies, STAFF_ID)
    conversation_id = int(card.split("#")[1].split(":")[0])
    say(services, f"call me at {PHONE} {SECRET_WORDS}")
    say(services, f"/reply {conversation_id} Will do, {EMAIL}", user_id=STAFF_ID)
    say(services, f"/customer {EMAIL}", user_id=STAFF_ID)
    say(services, f"/resolve {conversation_id}", user_id=STAFF_ID)
    messages = [r.getMessage() for r in caplog.records]
    assert any("duplicate update 99" in m for m in messages)
    assert any("NLU failed" in m and "ValueError" in m for m in messages)
    for record in caplog.records:
        assert_no_pii(record.getMessage())
        assert_no_pii(record.exc_text or "")


def test_the_log_filter_masks_contact_data_unless_debug_pii_is_on(capsys, restore_logging):
    log = logging.getLogger("crmbot.test")
    setup_logging("INFO")
    log.info("user wrote %s and %s, update 123456789 on 2026-11-29", PHONE, EMAIL)
    try:
        raise ValueError(f"bad value {EMAIL}")
    except ValueError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert PHONE not in err and EMAIL not in err
    assert "<phone>" in err and "<email>" in err and "123456789" in err and "2026-11-29" in err
    setup_logging("INFO", log_pii=True)
    log.info("user wrote %s", PHONE)
    assert PHONE in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("log_pii", [False, True])
def test_the_running_bot_logs_no_personal_data(model_dir, tmp_path, log_pii):
    """End to end: `crmbot run` at DEBUG against the fake Telegram server. With the
    debug switch CRMBOT_LOG_PII on, the same run does log personal data (so the test can
    fail)."""
    with (
        FakeTelegramServer() as fake,
        run_bot(
            fake,
            database_url=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            model_dir=model_dir,
            tmp_path=tmp_path,
            staff_ids=str(STAFF_ID),
            extra_env={"CRMBOT_LOG_LEVEL": "DEBUG", "CRMBOT_LOG_PII": str(log_pii).lower()},
        ) as bot,
    ):
        chat = 3001
        fake.inject_message(
            f"my phone is {PHONE}, mail {EMAIL} {SECRET_WORDS}",
            user_id=chat,
            first_name="Ada",
            last_name="Lovelace",
        )
        fake.wait_for(1, chat_id=chat, timeout=15)
        fake.inject_message("I want to talk to a real person", user_id=chat, last_name="Lovelace")
        fake.wait_for(2, chat_id=chat, timeout=15)
        bot.wait_until("SELECT count(*) FROM interactions WHERE direction = 'in'", 2)
        logs = bot.logs()
    assert "DEBUG" in logs, "the bot logged at DEBUG, so the test sees everything"
    if log_pii:
        assert EMAIL in logs and SECRET_WORDS in logs
    else:
        assert_no_pii(logs)
