"""The conversation core, through the same entry point every channel uses."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services.assistant import UNKNOWN_COMMAND, handle_message
from bot.services.messages import IncomingMessage, split_text
from db.clock import utcnow
from db.engine import session_scope
from db.models import Conversation, ConversationStatus, Customer, InboundUpdate, Offer
from tests.conftest import STAFF_ID
from tests.helpers import add_order, interactions, say, sender, texts_to


def test_text_message_is_analysed_stored_and_answered(services):
    replies = say(services, "hello there!", update_id=77)
    assert texts_to(replies, 501), "the customer gets an answer"
    with session_scope(services.session_factory) as session:
        rows = interactions(session)
        customer = session.exec(select(Customer)).one()
    inbound, outbound = rows
    assert (inbound.direction, inbound.text, inbound.telegram_update_id) == (
        "in",
        "hello there!",
        77,
    )
    assert inbound.intent == "greet" and 0 < inbound.intent_confidence <= 1
    assert inbound.sentiment in {"negative", "neutral", "positive"}
    assert -1 <= inbound.sentiment_score <= 1
    assert outbound.direction == "out" and outbound.text == replies[0].text
    assert replies[0].interaction_id == outbound.id
    assert customer.first_name == "Ada" and customer.username == "user501"


def test_redelivered_update_is_stored_once_and_not_answered_twice(services):
    assert say(services, "where is my order?", update_id=900)
    assert say(services, "where is my order?", update_id=900) == []
    with session_scope(services.session_factory) as session:
        assert [i.direction for i in interactions(session)] == ["in", "out"]


def test_an_answer_loads_its_customer_once_and_its_replies_are_leased(services):
    """The hot path: the customer and conversation read to store the message serve the
    answer too (not loaded again after the message's commit), and the replies stored with
    the answer are leased to the sender, so they go out without being read back."""
    say(services, "hi", update_id=30)  # the customer and the conversation exist
    statements: list[str] = []
    engine = services.session_factory.kw["bind"]

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        message = IncomingMessage(sender(501), "what is your return policy", update_id=31)
        replies = handle_message(services, message, enqueue=True)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum("FROM customers" in s for s in selects) == 1
    assert sum("FROM conversations" in s for s in selects) == 1
    assert replies and all(r.leased and r.outbox_id for r in replies)


def test_track_order_reports_the_customers_latest_order(services):
    add_order(services, user_id=501, external_id="20931", status="shipped")
    (answer,) = texts_to(say(services, "where is my package??"), 501)
    assert "20931" in answer and "shipped" in answer


def test_track_order_by_number(services):
    add_order(services, user_id=501, external_id="20931", days_ago=20, status="delivered")
    add_order(services, user_id=501, external_id="20990", days_ago=1)
    (answer,) = texts_to(say(services, "has order #20931 arrived yet?"), 501)
    assert "20931" in answer and "delivered" in answer


def test_another_customers_order_is_not_found(services):
    """A customer only ever sees their own data."""
    add_order(services, user_id=777, external_id="55821", status="shipped")
    (answer,) = texts_to(say(services, "where is my order 55821", user_id=501), 501)
    assert "couldn't find" in answer and "shipped" not in answer


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "😀🔥🙏",
        "\x00\x07\x1b[31m",
        "a" * 10_000,
        "‮مرحبا‎ where is my order",
        "zero\u200bwidth\u200djoin",
    ],
)
def test_odd_text_is_stored_exactly_and_answered(services, text):
    replies = say(services, text)
    assert texts_to(replies, 501)
    with session_scope(services.session_factory) as session:
        assert interactions(session)[0].text == text


def test_long_reply_is_split_under_telegram_limit():
    parts = split_text(("word " * 2000).strip())
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == ("word " * 2000).strip()


def test_sticker_is_stored_and_gets_a_text_hint(services):
    (answer,) = texts_to(say(services, "", kind="sticker", attachment={"emoji": "😀"}), 501)
    assert "text" in answer
    with session_scope(services.session_factory) as session:
        (row, _) = interactions(session)
    assert row.kind == "sticker" and row.attachment == {"emoji": "😀"} and row.intent is None


def test_an_edit_that_only_fixes_a_typo_is_stored_without_a_second_answer(services):
    say(services, "where is my oder", message_id=9001)
    assert say(services, "where is my order", kind="edited", message_id=9001) == []
    with session_scope(services.session_factory) as session:
        rows = interactions(session)
    assert [r.kind for r in rows] == ["text", "text", "edited"]
    assert rows[-1].text == "where is my order"


def test_an_edit_that_changes_the_question_is_answered_again(services):
    add_order(services, user_id=501, external_id="1234", status="shipped")
    add_order(services, user_id=501, external_id="1243", status="delivered")
    (first,) = texts_to(say(services, "where is my order 1243", message_id=9002), 501)
    assert "1243" in first
    (fixed,) = texts_to(
        say(services, "where is my order 1234", kind="edited", message_id=9002), 501
    )
    assert "1234" in fixed and "shipped" in fixed
    with session_scope(services.session_factory) as session:
        assert [r.kind for r in interactions(session)] == ["text", "text", "edited", "text"]


def test_an_edit_of_an_older_or_old_message_is_not_answered(services):
    add_order(services, user_id=501, external_id="1234", status="shipped")
    say(services, "where is my order 1243", message_id=9003)
    say(services, "thanks", message_id=9004)
    assert say(services, "where is my order 1234", kind="edited", message_id=9003) == []
    later = utcnow() + timedelta(hours=1)
    say(services, "where is my order 1243", message_id=9005, now=later - timedelta(minutes=30))
    edit = say(services, "where is my order 1234", kind="edited", message_id=9005, now=later)
    assert edit == []


def test_an_edit_while_a_human_has_the_chat_goes_to_staff(services):
    say(services, "I want to talk to a real person")
    say(services, "my order is 1243", message_id=9006)
    replies = say(services, "my order is 1234", kind="edited", message_id=9006)
    assert texts_to(replies, 501) == []
    (note,) = texts_to(replies, STAFF_ID)
    assert "(edited a message)" in note and "my order is 1234" in note


def test_handoff_goes_quiet_forwards_and_staff_can_reply_and_resolve(services):
    replies = say(services, "I want to talk to a real person")
    assert texts_to(replies, 501), "the customer is told a colleague takes over"
    (card,) = texts_to(replies, STAFF_ID)
    assert "Handoff #" in card and "Ada" in card
    conversation_id = int(card.split("#")[1].split(":")[0])

    forwarded = say(services, "hello?? anyone")
    assert texts_to(forwarded, 501) == [], "the bot never answers while a human has the chat"
    assert "hello?? anyone" in texts_to(forwarded, STAFF_ID)[0]

    listing = say(services, "/handoffs", user_id=STAFF_ID)
    assert f"#{conversation_id}" in listing[0].text

    taken = say(services, f"/take {conversation_id}", user_id=STAFF_ID)
    assert texts_to(taken, 501) == ["Ada from our team has joined the chat."]  # staff: Ada too
    assert f"#{conversation_id} is yours" in texts_to(taken, STAFF_ID)[0]
    (again,) = say(services, f"/take {conversation_id}", user_id=STAFF_ID)
    assert "yours already" in again.text

    sent = say(services, f"/reply {conversation_id} Hi Ada, on it!", user_id=STAFF_ID)
    assert texts_to(sent, 501) == ["Hi Ada, on it!"]
    say(services, f"/resolve {conversation_id}", user_id=STAFF_ID)
    with session_scope(services.session_factory) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == ConversationStatus.RESOLVED
        staff_reply = [i for i in interactions(session) if i.text == "Hi Ada, on it!"]
        assert staff_reply and staff_reply[0].staff_member_id is not None
    assert texts_to(say(services, "thanks!"), 501), "the bot answers again after resolution"


def test_a_conversation_without_a_chat_can_be_taken_and_resolved(services):
    """An imported (or erased) customer has no chat: staff can still take and close the
    conversation; only a reply, which needs a chat, is refused."""
    with session_scope(services.session_factory) as session:
        customer = Customer(first_name="Imported")
        session.add(customer)
        session.flush()
        conversation = Conversation(
            customer_id=customer.id, status=ConversationStatus.WAITING_HUMAN
        )
        session.add(conversation)
        session.flush()
        conversation_id = conversation.id
    (taken,) = say(services, f"/take {conversation_id}", user_id=STAFF_ID)
    assert taken.text.startswith(f"✋ #{conversation_id} is yours")
    (refused,) = say(services, f"/reply {conversation_id} hello", user_id=STAFF_ID)
    assert refused.text == f"Conversation #{conversation_id} has no chat to write to."
    (resolved,) = say(services, f"/resolve {conversation_id}", user_id=STAFF_ID)
    assert resolved.text == f"✅ #{conversation_id} resolved."
    with session_scope(services.session_factory) as session:
        closed = session.get(Conversation, conversation_id)
        assert closed is not None and closed.status == ConversationStatus.RESOLVED


def test_an_offer_code_in_a_message_gets_its_status(services):
    """ "My code doesn't work": the bot knows the shop's codes (bot/data/offers.yml)."""
    (answer,) = texts_to(say(services, "my code SPRING15 doesn't work at checkout"), 501)
    assert answer.startswith("The code SPRING15 wasn't offered to you")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("I'd like to return the lamp, it flickers", "Start a return under Orders"),
        ("do I have to pay for the return shipping?", "return shipping is free for faulty"),
        ("hey so my order never showed up", "order"),
        ("it says delivered but I never got it", "passed it to a colleague"),
        ("parcel turned up, thanks anyway", "You're welcome"),  # not a complaint handed over
        ("cheers for nothing", "passed it to a colleague"),  # not "you're welcome"
    ],
)
def test_everyday_phrasings_get_the_answer_they_ask_for(services, text, answer):
    (reply,) = texts_to(say(services, text), 501)
    assert answer in reply and not reply.startswith("Hi Ada")
    assert "didn't quite get that" not in reply


def test_a_question_right_after_an_offer_is_about_that_offer(services):
    with session_scope(services.session_factory) as session:
        session.add(
            Offer(
                code="TRYME10",
                title="Welcome",
                text="{name}, 10% off your next order with {code}.",
                targeting={"priority": 100},
                holdout_share=0.0,
            )
        )
    say(services, "/privacy marketing on")
    (offer,) = texts_to(say(services, "any discounts for me?"), 501)
    assert offer == "Ada, 10% off your next order with TRYME10."
    for question in ["what does the code give me?", "how do I use it"]:
        (answer,) = texts_to(say(services, question), 501)
        assert answer.startswith(offer) and "discount code field at checkout" in answer


def test_how_to_use_a_code_is_answered_not_offered(services):
    (answer,) = texts_to(say(services, "how do I use my discount code"), 501)
    assert "discount code field at checkout" in answer


def test_a_long_wait_for_a_human_is_acknowledged_once_an_hour(services):
    replies = say(services, "I want to talk to a real person")
    conversation_id = int(texts_to(replies, STAFF_ID)[0].split("#")[1].split(":")[0])
    assert texts_to(say(services, "hello?"), 501) == [], "just handed over: nothing to add"
    later = utcnow() + timedelta(hours=2)
    (note,) = texts_to(say(services, "anyone there?", now=later), 501)
    assert "reach our team" in note
    soon = later + timedelta(minutes=10)
    assert texts_to(say(services, "hello??", now=soon), 501) == [], "not on every message"
    forwarded = say(services, "still waiting", now=soon + timedelta(hours=1))
    assert "reach our team" in texts_to(forwarded, 501)[0]
    assert "still waiting" in texts_to(forwarded, STAFF_ID)[0], "staff still get it"
    say(services, f"/take {conversation_id}", user_id=STAFF_ID, now=soon + timedelta(hours=1))
    taken = say(services, "thanks", now=soon + timedelta(hours=3))
    assert texts_to(taken, 501) == [], "a colleague has it: they answer"


def test_staff_reply_to_unknown_conversation_is_explained(services):
    (answer,) = say(services, "/reply 999 hello", user_id=STAFF_ID)
    assert "no conversation #999" in answer.text
    (usage,) = say(services, "/reply abc", user_id=STAFF_ID)
    assert usage.text.startswith("Usage")


def test_stats_for_staff(services):
    say(services, "hi")
    say(services, "where is my order", user_id=502)
    (report,) = say(services, "/stats", user_id=STAFF_ID)
    assert "Customers: 2" in report.text
    assert "Customer messages: 2 today, 2 in 7 days" in report.text
    assert "Sentiment (7 days)" in report.text
    assert "Orders (30 days): none" in report.text


def test_stats_show_orders_revenue_and_the_change(services):
    add_order(services, user_id=501, external_id="A1", total="100.00", days_ago=3)
    add_order(services, user_id=501, external_id="A2", total="50.50", days_ago=10)
    add_order(
        services, user_id=502, external_id="A3", total="999", status="cancelled"
    )  # not a purchase
    add_order(services, user_id=502, external_id="B1", total="75.25", days_ago=45)
    (report,) = say(services, "/stats", user_id=STAFF_ID)
    assert (
        "Orders (30 days): 2, revenue 150.50 USD (▲ +100% vs the 30 days before), "
        "average order 75.25 USD"
    ) in report.text


@pytest.mark.parametrize(
    "command", ["/stats", "/handoffs", "/take 1", "/reply 1 hi", "/resolve 1"]
)
def test_staff_command_from_customer_reveals_nothing(services, command):
    (answer,) = say(services, command)
    assert answer.text == UNKNOWN_COMMAND
    assert say(services, "/nosuchcommand")[0].text == UNKNOWN_COMMAND


def test_stop_withdraws_marketing_consent_with_timestamp(services):
    say(services, "/stop")
    with session_scope(services.session_factory) as session:
        customer = session.exec(select(Customer)).one()
    assert customer.marketing_consent is False and customer.marketing_consent_at is not None


def test_staff_plain_text_is_not_a_customer_message(services):
    (answer,) = say(services, "where is my order", user_id=STAFF_ID)
    assert "/help" in answer.text
    with session_scope(services.session_factory) as session:
        assert interactions(session) == []
        assert session.exec(select(InboundUpdate)).all() == []


def test_a_flooding_user_gets_one_notice_and_every_message_is_stored(services):
    from datetime import timedelta

    from bot.services.conversation import FLOOD_TEXT
    from db.clock import utcnow

    start = utcnow()
    answers = []
    for n in range(services.flood_messages + 8):
        now = start + timedelta(seconds=n * 0.5)
        answers.append(texts_to(say(services, f"where is my order {n}?", now=now), 501))
    assert all(a for a in answers[: services.flood_messages]), "normal pace is answered"
    flood = answers[services.flood_messages :]
    assert flood[0] == [FLOOD_TEXT] and all(a == [] for a in flood[1:])
    with session_scope(services.session_factory) as session:
        inbound = [i for i in interactions(session) if i.direction == "in"]
    assert len(inbound) == services.flood_messages + 8, "nothing is lost"
    later = start + services.flood_window * 3
    assert texts_to(say(services, "where is my order?", now=later), 501) != [FLOOD_TEXT]


@pytest.mark.parametrize(
    ("text", "intent", "sentiment"),
    [("👍", "thanks", "positive"), ("🙏", "thanks", "positive"), ("😡", None, "negative")],
)
def test_an_emoji_alone_is_read_like_words(services, text, intent, sentiment):
    """Telegram users answer with an emoji: it gets an intent and a mood like the word it
    stands for, instead of counting as an empty message."""
    replies = say(services, text, update_id=61)
    with session_scope(services.session_factory) as session:
        inbound = interactions(session)[0]
    assert inbound.text == text and inbound.sentiment == sentiment
    if intent is not None:
        assert inbound.intent == intent
        assert texts_to(replies, 501)[0].startswith("You're welcome")
