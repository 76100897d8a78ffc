"""The customer's privacy requests in the chat: /mydata sends the export as a file, /forget
erases after a button press, the privacy intents lead to the same; and staff questions in
plain words run the command they mean."""

from __future__ import annotations

import json

from sqlmodel import select

from bot.services.buttons import STALE_BUTTON
from bot.services.staff_questions import HELP_TEXT
from db.engine import session_scope
from db.models import AuditAction, AuditEntry, Customer, Interaction
from tests.conftest import STAFF_ID
from tests.helpers import button_data, press, say, texts_to

CUSTOMER = 501


def customer_row(services, user_id: int = CUSTOMER) -> Customer | None:
    with session_scope(services.session_factory) as session:
        return session.exec(select(Customer).where(Customer.telegram_user_id == user_id)).first()


def audit_actions(services) -> list[str]:
    with session_scope(services.session_factory) as session:
        return list(session.exec(select(AuditEntry.action)).all())


def test_mydata_sends_everything_as_a_json_file(services):
    say(services, "where is my order 5551? my email is ada@example.com")
    (reply,) = say(services, "/mydata")
    assert reply.document is not None and reply.filename.endswith(".json")
    data = json.loads(reply.document)
    texts = json.dumps(data)
    assert "ada@example.com" in texts and "Lovelace" in texts
    assert AuditAction.EXPORTED in audit_actions(services)


def test_privacy_export_intent_leads_to_the_same_file(services):
    replies = say(services, "please send me a copy of all the data you have about me")
    assert any(r.document for r in replies)


def test_forget_asks_then_erases_only_on_the_button(services):
    say(services, "hi, I'm Ada and my phone is +44 7700 900123")
    replies = say(services, "/forget")
    assert button_data(replies, CUSTOMER) == ["fgt|yes", "fgt|no"]
    (typed,) = texts_to(say(services, "yes"), CUSTOMER)
    assert "tap" in typed and customer_row(services) is not None, "typing yes erases nothing"

    notice, (done,) = press(services, "fgt|yes")
    assert notice is None and "deleted" in done.text
    assert customer_row(services) is None, "the Telegram identity is unlinked"
    with session_scope(services.session_factory) as session:
        stored = " ".join(i.text for i in session.exec(select(Interaction)).all())
        assert "7700 900123" not in stored and "Ada" not in stored
        assert session.exec(select(Customer)).all(), "the anonymous row stays for aggregates"
    assert AuditAction.DELETED in audit_actions(services)

    say(services, "hello again")
    fresh = customer_row(services)
    assert fresh is not None and fresh.first_name == "Ada", "a new, blank customer"


def test_forget_is_answered_by_the_bot_while_a_human_has_the_chat(services):
    """/forget works during a handoff, so the typed answer to its question is the bot's to
    answer, not forwarded to staff; other messages still go to staff."""
    say(services, "I want to talk to a real person")
    say(services, "/forget")
    replies = say(services, "no")
    (typed,) = texts_to(replies, CUSTOMER)
    assert "tap" in typed and texts_to(replies, STAFF_ID) == []
    assert button_data(replies, CUSTOMER) == ["fgt|yes", "fgt|no"]
    forwarded = say(services, "still there?")
    assert (
        texts_to(forwarded, CUSTOMER) == [] and "still there?" in texts_to(forwarded, STAFF_ID)[0]
    )


def test_forget_no_keeps_everything(services):
    say(services, "hello")
    say(services, "/forget")
    _, (kept,) = press(services, "fgt|no")
    assert "nothing was deleted" in kept.text.lower()
    assert customer_row(services) is not None


def test_forget_button_without_the_question_or_from_someone_else_does_nothing(services):
    say(services, "hello")
    assert press(services, "fgt|yes") == (STALE_BUTTON, [])
    say(services, "/forget")
    say(services, "hi", user_id=777)
    assert press(services, "fgt|yes", user_id=777) == (STALE_BUTTON, [])
    assert customer_row(services) is not None and customer_row(services, 777) is not None
    assert press(services, "fgt|yes", user_id=STAFF_ID) == (STALE_BUTTON, [])


def test_privacy_delete_intent_asks_the_same_question(services):
    replies = say(services, "please delete all my personal data")
    assert button_data(replies, CUSTOMER) == ["fgt|yes", "fgt|no"]


def test_staff_question_in_plain_words_runs_the_command(shop):
    from bot.services.refresh import run_refresh
    from db.clock import utcnow

    run_refresh(shop, as_of=utcnow())
    (answer,) = say(shop, "how many champions do we have?", user_id=STAFF_ID)
    assert "Champions" in answer.text
    (risk,) = say(shop, "who is at risk", user_id=STAFF_ID)
    assert risk.text == say(shop, "/atrisk", user_id=STAFF_ID)[0].text
    (unknown,) = say(shop, "what's for lunch", user_id=STAFF_ID)
    assert unknown.text == HELP_TEXT
    assert AuditAction.LIST_VIEWED in audit_actions(shop), "audited like the command"


def test_forget_also_drops_queued_replies_to_their_chat(services):
    from bot.services import outbox
    from bot.services.messages import Reply
    from db.clock import utcnow
    from db.models import OutboxMessage

    say(services, "hello")
    with session_scope(services.session_factory) as session:
        outbox.enqueue(
            session, [Reply(CUSTOMER, "Hi Ada, your order..."), Reply(9, "x")], now=utcnow()
        )
    say(services, "/forget")
    press(services, "fgt|yes")
    with session_scope(services.session_factory) as session:
        left = session.exec(select(OutboxMessage.chat_id)).all()
    assert left == [9]
