"""Conversation flows: order numbers asked for and remembered, cancel and change behind a
confirmation, asking back when unsure, automatic handoff, the staff card's buttons, and a
staff reply to the card."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.services.buttons import STALE_BUTTON
from db.clock import utcnow
from db.engine import session_scope
from db.models import (
    AuditAction,
    AuditEntry,
    Conversation,
    ConversationStatus,
    Customer,
    Interaction,
    Order,
    OrderStatus,
)
from nlp import NLU
from tests.conftest import STAFF_ID
from tests.helpers import add_order, button_data, press, say, texts_to

CUSTOMER = 501


def order_status(services, external_id: str) -> str:
    with session_scope(services.session_factory) as session:
        return session.exec(select(Order).where(Order.external_id == external_id)).one().status


def conversation_of(services, user_id: int = CUSTOMER) -> Conversation:
    with session_scope(services.session_factory) as session:
        rows = session.exec(select(Conversation).order_by(Conversation.id)).all()
        return [c for c in rows if c.customer_id == _customer_id(session, user_id)][-1]


def _customer_id(session, user_id: int) -> int:
    return session.exec(select(Customer).where(Customer.telegram_user_id == user_id)).one().id


# --- cancel and change -------------------------------------------------------------------


def test_cancel_asks_which_order_then_confirms_before_acting(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PLACED)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.PAID, days_ago=1)
    replies = say(services, "I want to cancel my order")
    choices = button_data(replies, CUSTOMER)
    assert len(choices) == 2 and all(c.startswith("ord|") for c in choices)
    assert order_status(services, "5551") == OrderStatus.PLACED

    with session_scope(services.session_factory) as session:
        pk = session.exec(select(Order.id).where(Order.external_id == "5551")).one()
    _, replies = press(services, f"ord|{pk}")
    (question,) = texts_to(replies, CUSTOMER)
    assert "5551" in question and button_data(replies, CUSTOMER) == ["cfm|yes", "cfm|no"]
    assert order_status(services, "5551") == OrderStatus.PLACED, "nothing happens before yes"

    _, replies = press(services, "cfm|yes")
    assert "cancelled" in texts_to(replies, CUSTOMER)[0]
    assert "5551" in texts_to(replies, STAFF_ID)[0], "staff learn of the cancellation"
    assert order_status(services, "5551") == OrderStatus.CANCELLED
    assert order_status(services, "5552") == OrderStatus.PAID
    assert press(services, "cfm|yes") == (STALE_BUTTON, []), "the question is answered"


def test_cancel_by_number_and_a_typed_no_keeps_the_order(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PLACED)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.PLACED)
    replies = say(services, "please cancel order 5552")
    assert button_data(replies, CUSTOMER) == ["cfm|yes", "cfm|no"]
    (kept,) = texts_to(say(services, "no, keep it"), CUSTOMER)
    assert "nothing changed" in kept.lower()
    assert order_status(services, "5552") == OrderStatus.PLACED
    say(services, "cancel order 5552")
    say(services, "yes")
    assert order_status(services, "5552") == OrderStatus.CANCELLED


def test_a_shipped_order_cannot_be_cancelled(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    replies = say(services, "cancel order 5551")
    assert "can't be cancelled" in texts_to(replies, CUSTOMER)[0]
    assert button_data(replies, CUSTOMER) == []
    assert order_status(services, "5551") == OrderStatus.SHIPPED


def test_another_customers_order_cannot_be_cancelled(services):
    add_order(services, user_id=999, external_id="7771", status=OrderStatus.PLACED)
    replies = say(services, "cancel order 7771")
    assert "couldn't find" in texts_to(replies, CUSTOMER)[0]
    assert button_data(replies, CUSTOMER) == []
    assert order_status(services, "7771") == OrderStatus.PLACED


def test_change_confirms_asks_what_and_hands_over_with_the_request(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PAID)
    replies = say(services, "I need to change my order")
    assert button_data(replies, CUSTOMER) == ["cfm|yes", "cfm|no"]
    _, replies = press(services, "cfm|yes")
    assert "what would you like to change" in texts_to(replies, CUSTOMER)[0].lower()
    replies = say(services, "size M instead of L please")
    assert "change request" in texts_to(replies, CUSTOMER)[0]
    (card,) = texts_to(replies, STAFF_ID)
    assert "change request for order 5551" in card and "size M instead of L" in card
    assert conversation_of(services).status == ConversationStatus.WAITING_HUMAN


def test_a_payment_problem_asks_for_date_and_amount_then_a_person_checks_it(services):
    (advice,) = texts_to(say(services, "I was charged twice for my order"), CUSTOMER)
    assert "date and amount of the charge" in advice
    assert "3-D Secure" not in advice  # money taken: advice on paying would not help
    replies = say(services, "it was on 12 November, 49.99 EUR")
    assert "passed the payment details" in texts_to(replies, CUSTOMER)[0]
    (card,) = texts_to(replies, STAFF_ID)
    assert "payment to check" in card and "49.99 EUR" in card
    assert conversation_of(services).status == ConversationStatus.WAITING_HUMAN


def test_a_payment_problem_with_the_details_goes_to_a_person_at_once(services):
    replies = say(services, "you charged me 49.99 twice yesterday")
    assert "passed the payment details" in texts_to(replies, CUSTOMER)[0]
    assert "payment to check" in texts_to(replies, STAFF_ID)[0]


def test_a_payment_advice_followed_by_something_else_is_not_handed_over(services):
    (advice,) = texts_to(say(services, "my card payment keeps failing"), CUSTOMER)
    assert "3-D Secure" in advice
    replies = say(services, "thanks, I'll try again")
    assert texts_to(replies, STAFF_ID) == []
    assert texts_to(replies, CUSTOMER)[0].startswith("You're welcome")
    assert conversation_of(services).status == ConversationStatus.OPEN


# --- requests a person carries out, and delivery estimates -------------------------------


def test_an_invoice_request_with_its_order_number_goes_to_a_person(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.DELIVERED)
    replies = say(services, "can you email me the invoice for order 5551?")
    assert texts_to(replies, CUSTOMER) == [
        "Thanks! I've passed your request for order 5551 to a colleague, who will reply here."
    ]
    assert "Get an invoice (order 5551)" in texts_to(replies, STAFF_ID)[0]
    assert conversation_of(services).status == ConversationStatus.WAITING_HUMAN


def test_an_address_change_without_a_number_is_explained_and_the_number_brings_a_person(
    services,
):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    (how,) = texts_to(say(services, "I need to change the delivery address"), CUSTOMER)
    assert "under Addresses" in how
    replies = say(services, "5551")
    assert "passed your request for order 5551" in texts_to(replies, CUSTOMER)[0]
    assert "Change the delivery address (order 5551)" in texts_to(replies, STAFF_ID)[0]


def test_ok_after_a_self_service_answer_is_only_acknowledged(services):
    say(services, "how do I get an invoice")
    assert texts_to(say(services, "ok"), CUSTOMER) == ["👍"]  # not "take your time"
    with session_scope(services.session_factory) as session:
        assert all(c.pending is None for c in session.exec(select(Customer)).all())


def test_when_an_order_arrives_gets_that_orders_status(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.DELIVERED)
    (status,) = texts_to(say(services, "when will 5551 arrive?"), CUSTOMER)
    assert status.startswith("Order 5551") and "shipped" in status
    (times,) = texts_to(say(services, "how long does delivery take?"), CUSTOMER)
    assert "3-5 business days" in times
    (later,) = texts_to(say(services, "5551"), CUSTOMER)
    assert later.startswith("Order 5551")
    (place,) = texts_to(say(services, "how long does shipping take to 10115?"), CUSTOMER)
    assert "3-5 business days" in place  # a postcode, not an order


# --- slot filling ------------------------------------------------------------------------


def test_missing_order_number_is_asked_for_and_remembered(services):
    (question,) = texts_to(say(services, "where is my order?"), CUSTOMER)
    assert "order number" in question
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    (answer,) = texts_to(say(services, "5551"), CUSTOMER)
    assert "5551" in answer and "shipped" in answer


def test_an_order_number_alone_gets_that_orders_status(services):
    """Answers such as the delivery times say "send me your order number": the number,
    sent on its own, is understood without a question open."""
    add_order(services, user_id=CUSTOMER, external_id="20931", status=OrderStatus.SHIPPED)
    (times,) = texts_to(say(services, "how long does delivery take?"), CUSTOMER)
    assert "order number" in times
    (status,) = texts_to(say(services, "20931"), CUSTOMER)
    assert "20931" in status and "shipped" in status
    (unknown,) = texts_to(say(services, "#55555"), CUSTOMER)
    assert "couldn't find an order 55555" in unknown


def test_ok_or_one_sec_keeps_the_question_open(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PAID)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.PAID)
    say(services, "I want to cancel an order")  # two orders: which one?
    (wait,) = texts_to(say(services, "ok one sec"), CUSTOMER)
    assert "take your time" in wait
    replies = say(services, "5552")  # still the answer to the question: cancel, not status
    assert button_data(replies, CUSTOMER) == ["cfm|yes", "cfm|no"]
    assert "Cancel order 5552" in texts_to(replies, CUSTOMER)[0]


def test_cancel_offers_only_orders_that_can_still_be_cancelled(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.DELIVERED)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.PAID, days_ago=3)
    add_order(services, user_id=CUSTOMER, external_id="5553", status=OrderStatus.DELIVERED)
    replies = say(services, "I want to cancel my order")
    (question,) = texts_to(replies, CUSTOMER)
    assert question.startswith("Cancel order 5552")  # the one open order: no choice to make
    assert button_data(replies, CUSTOMER) == ["cfm|yes", "cfm|no"]


def test_cancel_with_every_order_shipped_says_so_without_a_choice(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.DELIVERED)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.SHIPPED)
    replies = say(services, "I want to cancel my order")
    (answer,) = texts_to(replies, CUSTOMER)
    assert "can't be cancelled" in answer
    assert button_data(replies, CUSTOMER) == []


def test_one_sec_is_not_taken_for_the_change_request(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PAID)
    say(services, "I need to change my order")
    press(services, "cfm|yes")  # "what would you like to change?"
    (wait,) = texts_to(say(services, "hold on"), CUSTOMER)
    assert "take your time" in wait
    replies = say(services, "size M instead of L please")
    assert "size M instead of L" in texts_to(replies, STAFF_ID)[0]


@pytest.mark.parametrize("text", ["ok", "yes", "yeah, I see"])
def test_ok_alone_is_acknowledged_not_misunderstood(services, text):
    for _ in range(2):  # twice: not "did not understand twice", so no handoff
        replies = say(services, text)
        assert texts_to(replies, CUSTOMER) == ["👍"] and texts_to(replies, STAFF_ID) == []


def test_unknown_numbers_are_asked_again_then_a_person_is_offered(services):
    say(services, "where is my order?")
    replies = say(services, "7777")
    (again,) = texts_to(replies, CUSTOMER)
    assert "couldn't find" in again and "check the number" in again
    assert button_data(replies, CUSTOMER) == []  # one wrong number: asked again
    replies = say(services, "8888")  # still read as the answer to the question
    assert "couldn't find an order 8888" in texts_to(replies, CUSTOMER)[0]
    assert "colleague can look the order up" in texts_to(replies, CUSTOMER)[0]
    assert button_data(replies, CUSTOMER) == ["hum"]


@pytest.mark.parametrize(
    "text",
    [
        "i dont remember the number",
        "I don't have it",
        "can't find the email",
        "no idea, sorry",
        "I forgot it",
        "where do I find that?",
    ],
)
def test_no_order_number_to_give_gets_where_to_find_it_and_a_person(services, text):
    say(services, "where is my order?")
    replies = say(services, text)
    (help_text,) = texts_to(replies, CUSTOMER)
    assert "confirmation email" in help_text and "colleague" in help_text
    assert button_data(replies, CUSTOMER) == ["hum"]
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    (answer,) = texts_to(say(services, "found it: 5551"), CUSTOMER)  # still the answer
    assert "5551" in answer and "shipped" in answer


def test_an_unsure_order_question_with_its_number_is_not_handed_over(services):
    """A long question with an order number, after a message the bot did not get: asked
    back (or answered), not handed over as "did not understand twice"."""
    add_order(services, user_id=CUSTOMER, external_id="101630", status=OrderStatus.SHIPPED)
    say(services, "???")
    text = (
        "can you tell me whether the blue jacket I ordered last week (order 101630) has "
        "shipped yet and if not when it will"
    )
    replies = say(services, text)
    assert texts_to(replies, STAFF_ID) == []
    choices = button_data(replies, CUSTOMER)
    answered = any("101630" in r and "shipped" in r for r in texts_to(replies, CUSTOMER))
    assert answered or "clar|track_order" in choices
    assert conversation_of(services).status == ConversationStatus.OPEN


def test_a_complaint_while_asked_for_the_number_is_not_taken_for_no_number(services):
    say(services, "where is my order?")
    replies = texts_to(say(services, "my parcel got lost and I didnt receive it"), CUSTOMER)
    assert not any("No problem" in reply for reply in replies)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("found it: 5551", True),
        ("it's #5551 I think", True),
        ("the number is 5551, thanks", True),
        ("I paid 5551 dollars for it", False),  # an amount
        ("call me at +1 555 123 4567", False),  # a phone number
        ("it is 5551 or 5552", False),  # which one?
        ("5551, ordered in 2024", True),
    ],
)
def test_a_number_in_a_short_answer_is_read_as_the_order_number(services, text, found):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.PAID)
    add_order(services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.PAID)
    say(services, "I want to cancel my order")  # two orders: which one?
    replies = texts_to(say(services, text), CUSTOMER)
    assert any(reply.startswith("Cancel order 5551") for reply in replies) == found


@pytest.mark.parametrize("text", ["I ordered it in 2024", "I've been a customer since 2019"])
def test_a_year_in_the_answer_is_not_taken_for_the_order_number(services, text):
    say(services, "where is my order?")
    replies = texts_to(say(services, text), CUSTOMER)
    assert not any("couldn't find an order" in reply for reply in replies)


def test_other_orders_after_the_latest_one(services):
    add_order(
        services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.DELIVERED, days_ago=9
    )
    add_order(
        services, user_id=CUSTOMER, external_id="5552", status=OrderStatus.SHIPPED, days_ago=5
    )
    add_order(services, user_id=CUSTOMER, external_id="5553", status=OrderStatus.PAID, days_ago=1)
    (latest,) = texts_to(say(services, "where is my order?"), CUSTOMER)
    assert "5553" in latest
    (others,) = texts_to(say(services, "what about my other orders?"), CUSTOMER)
    assert others.splitlines()[0].startswith("Order 5552") and "shipped" in others
    assert others.splitlines()[1].startswith("Order 5551")


def test_an_answered_question_is_closed(services):
    say(services, "where is my order?")  # no orders yet: which one?
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    (status,) = texts_to(say(services, "5551"), CUSTOMER)
    assert status.startswith("Order 5551")
    with session_scope(services.session_factory) as session:
        assert all(c.pending is None for c in session.exec(select(Customer)).all())
    (answer,) = texts_to(say(services, "I paid 120 for 3 items"), CUSTOMER)
    assert "couldn't find an order" not in answer  # no longer read as the order number


def test_the_question_lapses_after_the_timeout(services):
    say(services, "where is my order?")
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    later = utcnow() + services.question_ttl + timedelta(minutes=1)
    (answer,) = texts_to(say(services, "hello", now=later), CUSTOMER)
    assert "5551" not in answer
    with session_scope(services.session_factory) as session:
        assert all(c.pending is None for c in session.exec(select(Customer)).all())


def test_a_new_question_while_waiting_is_answered_as_such(services):
    say(services, "where is my order?")
    (answer,) = texts_to(say(services, "what payment methods do you accept?"), CUSTOMER)
    assert "PayPal" in answer


# --- asking back when unsure -------------------------------------------------------------


@pytest.fixture
def unsure(services):
    """Services whose NLU is never confident: every in-scope message is in the clarify band."""
    services.nlu = NLU(services.nlu.nlp, oos_threshold=0.0, confident_threshold=1.01)
    return services


def test_unsure_intent_is_asked_back_with_buttons_and_the_choice_is_stored(unsure):
    replies = say(unsure, "where is my order 5551")
    choices = button_data(replies, CUSTOMER)
    assert 2 <= len(choices) - 1 <= 3 and choices[-1] == "clar|none"
    assert "clar|track_order" in choices
    add_order(unsure, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    _, replies = press(unsure, "clar|track_order")
    assert "5551" in texts_to(replies, CUSTOMER)[0], "the entities of the message are kept"
    with session_scope(unsure.session_factory) as session:
        message = session.exec(
            select(Interaction).where(Interaction.text == "where is my order 5551")
        ).one()
        assert message.chosen_intent == "track_order"
    from bot.services.clarify import labelled_messages

    with session_scope(unsure.session_factory) as session:
        assert labelled_messages(session) == [("where is my order 5551", "track_order")]


def test_a_choice_that_was_not_offered_does_nothing(unsure):
    say(unsure, "where is my order")
    _, replies = press(unsure, "clar|delete_account")
    assert "other words" in texts_to(replies, CUSTOMER)[0]
    with session_scope(unsure.session_factory) as session:
        assert not session.exec(
            select(Interaction).where(Interaction.chosen_intent.is_not(None))
        ).all()


def test_something_else_offers_a_person_and_the_button_hands_over(unsure):
    say(unsure, "where is my order")
    _, replies = press(unsure, "clar|none")
    assert button_data(replies, CUSTOMER) == ["hum"]
    _, replies = press(unsure, "hum")
    assert texts_to(replies, STAFF_ID), "staff get the card"
    assert conversation_of(unsure).status == ConversationStatus.WAITING_HUMAN


def test_two_unclear_messages_in_a_row_hand_over(unsure):
    say(unsure, "where is my order")
    replies = say(unsure, "the thing with the stuff")
    assert texts_to(replies, STAFF_ID), "the second unclear message goes to a human"
    assert conversation_of(unsure).status == ConversationStatus.WAITING_HUMAN


def test_a_half_understood_message_after_one_not_understood_is_asked_back(services):
    """After a message the bot could not place, one it half understands gets the question
    back with buttons, not a handoff; two it cannot place hand over."""
    say(services, "2")
    services.nlu = NLU(services.nlu.nlp, oos_threshold=0.0, confident_threshold=1.01)
    replies = say(services, "I want to return the jacket, it's too small")
    assert texts_to(replies, STAFF_ID) == [] and "clar|none" in button_data(replies, CUSTOMER)
    assert conversation_of(services).status == ConversationStatus.OPEN


def test_a_message_not_understood_offers_a_person(services):
    replies = say(services, "play some jazz music")
    (fallback,) = texts_to(replies, CUSTOMER)
    assert "didn't quite get that" in fallback
    assert button_data(replies, CUSTOMER) == ["hum"]
    assert conversation_of(services).status == ConversationStatus.OPEN


@pytest.mark.parametrize(
    ("answer", "handed_over"),
    [("yes please", True), ("yeah", True), ("sure, a person", True), ("ok", False),
     ("no thanks", False)],
)  # fmt: skip
def test_a_typed_yes_takes_up_the_offer_of_a_person(services, answer, handed_over):
    replies = say(services, "play some jazz music")
    assert button_data(replies, CUSTOMER) == ["hum"]  # "Talk to a person"
    replies = say(services, answer)
    cards = texts_to(replies, STAFF_ID)
    assert bool(cards) == handed_over
    assert all("asked for a person" in card for card in cards)  # not "did not understand"
    status = ConversationStatus.WAITING_HUMAN if handed_over else ConversationStatus.OPEN
    assert conversation_of(services).status == status
    if not handed_over:
        assert texts_to(replies, CUSTOMER) == ["👍"]


@pytest.mark.parametrize("text", ["¿Dónde está mi pedido?", "Wo ist meine Bestellung?"])
def test_a_message_in_another_language_is_told_the_bot_reads_english(services, text):
    replies = say(services, text)
    (answer,) = texts_to(replies, CUSTOMER)
    assert "I can only read English" in answer
    assert button_data(replies, CUSTOMER) == ["hum"]


def test_an_upset_message_not_understood_gets_sympathy_not_confusion(services):
    replies = say(services, "😡😡😡")
    (answer,) = texts_to(replies, CUSTOMER)
    assert answer.startswith("I'm sorry something's wrong, Ada.")
    assert button_data(replies, CUSTOMER) == ["hum"]


@pytest.mark.parametrize(
    "text", ["great shop, fast delivery!", "the delivery was quick and the jacket fits perfectly"]
)
def test_praise_is_thanked_for_and_passed_to_staff(services, text):
    replies = say(services, text)
    (answer,) = texts_to(replies, CUSTOMER)
    assert "Thank you for the feedback" in answer
    (note,) = texts_to(replies, STAFF_ID)
    assert note.startswith("⭐ Review from Ada") and text in note
    assert conversation_of(services).status == ConversationStatus.OPEN


def test_a_review_request_is_invited_and_the_next_message_is_the_review(services):
    (invite,) = texts_to(say(services, "I'd like to leave a review"), CUSTOMER)
    assert "Write your review here" in invite
    review = "the jacket is lovely but the sleeves are a bit long"
    replies = say(services, review)
    assert "Thank you for the feedback" in texts_to(replies, CUSTOMER)[0]
    assert review in texts_to(replies, STAFF_ID)[0]
    with session_scope(services.session_factory) as session:  # the question is closed
        assert all(c.pending is None for c in session.exec(select(Customer)).all())


def test_a_question_instead_of_the_review_is_answered_as_such(services):
    say(services, "I'd like to leave a review")
    (answer,) = texts_to(say(services, "what payment methods do you accept?"), CUSTOMER)
    assert "PayPal" in answer


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("where is my order?", "found it: 5551"),
        ("I'd like to leave a review", "the jacket is lovely but the sleeves are a bit long"),
    ],
)
def test_an_answer_to_the_bots_question_is_not_a_message_not_understood(
    services, question, answer
):
    """The answer reads as out of scope to the NLU, but the bot understood it: a message it
    cannot place next is the first one, answered, not "did not understand twice"."""
    say(services, question)  # no orders yet: which one?
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    say(services, answer)
    with session_scope(services.session_factory) as session:
        stored = session.exec(select(Interaction).where(Interaction.text == answer)).one()
        assert stored.answered_question in {"order_number", "review"}
    replies = say(services, "play some jazz music")
    assert "didn't quite get that" in texts_to(replies, CUSTOMER)[0]
    assert texts_to(replies, STAFF_ID) == []
    assert conversation_of(services).status == ConversationStatus.OPEN


def test_two_messages_not_understood_hand_over(services):
    say(services, "2")
    replies = say(services, "3")
    assert "did not understand twice" in texts_to(replies, STAFF_ID)[0]


# --- automatic handoff and staff -----------------------------------------------------------


def test_two_negative_messages_in_a_row_hand_over(services):
    first = say(services, "ugh, the payment failed again, so annoying")
    assert texts_to(first, STAFF_ID) == [], "one negative message is answered by the bot"
    replies = say(services, "I hate waiting this long for my refund")
    (card,) = texts_to(replies, STAFF_ID)
    assert "two negative messages" in card
    assert conversation_of(services).status == ConversationStatus.WAITING_HUMAN


def test_the_same_question_twice_gets_the_answer_and_a_person_offered(services):
    (answer,) = texts_to(say(services, "how do I sign up"), CUSTOMER)
    replies = say(services, "how do I register an account")
    (again,) = texts_to(replies, CUSTOMER)
    assert again.startswith(answer) and "pass you to a colleague" in again
    assert button_data(replies, CUSTOMER) == ["hum"]
    assert texts_to(replies, STAFF_ID) == [], "offered, not handed over"


def test_thanks_twice_or_two_order_questions_are_answered_as_usual(services):
    add_order(services, user_id=CUSTOMER, external_id="5551", status=OrderStatus.SHIPPED)
    say(services, "thanks!")
    assert texts_to(say(services, "thank you so much"), CUSTOMER)[0].startswith("You're welcome")
    say(services, "where is my order 5551?")
    assert "5551" in texts_to(say(services, "where is order 5551 now?"), CUSTOMER)[0]


def test_a_complaint_hands_over(services):
    replies = say(services, "I want to make a formal complaint about your courier")
    (card,) = texts_to(replies, STAFF_ID)
    assert "Handoff #" in card and "complaint" in card
    assert [b.split("|")[0] for b in button_data(replies, STAFF_ID)] == ["take", "res"]


def test_no_automatic_handoff_without_staff(services):
    services.staff_ids = frozenset()
    services.admin_ids = frozenset()
    say(services, "ugh, the payment failed again, so annoying")
    replies = say(services, "I hate waiting this long for my refund")
    assert conversation_of(services).status == ConversationStatus.OPEN
    assert texts_to(replies, CUSTOMER)


def _handed_over(services) -> int:
    replies = say(services, "I want to talk to a real person")
    take = [d for d in button_data(replies, STAFF_ID) if d.startswith("take|")]
    return int(take[0].split("|")[1])


def test_take_button_assigns_tells_the_customer_and_is_audited(services):
    conversation_id = _handed_over(services)
    notice, replies = press(services, f"take|{conversation_id}", user_id=STAFF_ID)
    assert "yours" in notice
    assert "joined the chat" in texts_to(replies, CUSTOMER)[0]
    assert button_data(replies, STAFF_ID) == [f"res|{conversation_id}"]
    with session_scope(services.session_factory) as session:
        actions = session.exec(select(AuditEntry.action)).all()
        assert AuditAction.HANDOFF_TAKEN in actions
    notice, replies = press(services, f"take|{conversation_id}", user_id=STAFF_ID)
    assert replies == [], "taking twice tells the customer nothing new"


def test_forged_staff_button_from_a_customer_does_nothing(services):
    conversation_id = _handed_over(services)
    for data in (f"take|{conversation_id}", f"res|{conversation_id}", "seg|Champions|0"):
        assert press(services, data) == (STALE_BUTTON, [])
    conversation = conversation_of(services)
    assert conversation.status == ConversationStatus.WAITING_HUMAN
    assert conversation.assigned_staff_id is None


def test_staff_reply_to_the_card_reaches_the_customer(services):
    replies = say(services, "I want to talk to a real person")
    (card,) = texts_to(replies, STAFF_ID)
    from bot.services.assistant import handle_message
    from bot.services.messages import IncomingMessage
    from tests.helpers import sender

    message = IncomingMessage(sender=sender(STAFF_ID), text="Hello Ada!", reply_to_text=card)
    sent = handle_message(services, message)
    assert texts_to(sent, CUSTOMER) == ["Hello Ada!"]
    assert "Sent to" in texts_to(sent, STAFF_ID)[0]
    other = IncomingMessage(sender=sender(STAFF_ID), text="just chatting", reply_to_text="hi")
    assert "/help" in handle_message(services, other)[0].text


def test_the_bot_says_nothing_on_its_own_while_a_human_has_the_chat(services):
    _handed_over(services)
    for text in ("hello??", "cancel my order", "this is awful, awful, awful", "where is 5551"):
        assert texts_to(say(services, text), CUSTOMER) == []
    for n in range(services.flood_messages + 3):  # not even a flood notice
        assert texts_to(say(services, f"hello? {n}"), CUSTOMER) == []


def test_chosen_intents_are_exported_for_retraining(unsure, settings, cli_env, tmp_path):
    from tests.helpers import crmbot

    say(unsure, "hm my parcel never came")
    press(unsure, "clar|" + _first_choice(unsure))
    out = tmp_path / "feedback.csv"
    env = {**cli_env, "CRMBOT_DATABASE_URL": settings.resolved_database_url}
    result = crmbot("nlu", "feedback", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text,intent" and lines[1].startswith("hm my parcel never came,")
    assert "1 labelled message" in result.stdout


def _first_choice(services) -> str:
    with session_scope(services.session_factory) as session:
        customer = session.exec(select(Customer).where(Customer.telegram_user_id == 501)).one()
        return customer.pending["data"]["options"][0]
