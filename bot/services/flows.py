"""Flows: intents whose answer needs the customer's data or changes something, and the
answers to the questions the bot asked back.

A flow is a function ``(FlowInput) -> list[Reply]`` registered in :data:`FLOWS` under the
name that ``answers.yml`` uses. Intents without a flow get their templated text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from bot.services import order_flows
from bot.services.chat import Chat, FlowInput
from bot.services.messages import Reply
from bot.services.pending import Asked, Pending, clear
from bot.services.privacy import record_consent
from db.models import Customer
from nlp import OUT_OF_SCOPE, Analysis

log = logging.getLogger(__name__)

Flow = Callable[[FlowInput], list[Reply]]


def run_action(chat: Chat, analysis: Analysis, *, message_text: str = "") -> list[Reply]:
    """Answer an analysed message with its intent's action from answers.yml."""
    action = chat.services.answers.action(analysis.intent)
    flow_input = chat.flow(analysis, action, message_text=message_text)
    if action.flow:
        flow = FLOWS.get(action.flow)
        if flow is None:
            log.error("answers.yml names unknown flow %r for %s", action.flow, action.intent)
        else:
            return flow(flow_input)
    return [flow_input.reply(flow_input.text(action.text))]


# --- the answer to a question the bot asked ----------------------------------------------

# "ok", "sure", "one sec": the customer acknowledges or asks for a moment. Not a question
# the bot failed to understand, and not the answer to its own open question either.
ACKNOWLEDGEMENT = re.compile(
    r"^(?=\s*\S)\s*(?:(?:ok(?:ay)?|k+|sure|alright|all right|fine|got it|noted|np|"
    r"no problem|cool|yes|yeah|yep|yup|understood|i see)[\s,.!]*)*"
    r"(?:(?:one|a|1) (?:sec(?:ond)?|moment|min(?:ute)?)|"
    r"just a (?:sec|moment)|wait|hold on|hang on|let me (?:check|look|see))?[\s.!]*$",
    re.IGNORECASE,
)
# Questions that wait for something the customer has to look up: "one sec" keeps them open.
WAITS_FOR_INFO = frozenset({Asked.ORDER_NUMBER, Asked.PAYMENT_DETAILS, Asked.CHANGE_DETAILS})
# "I don't remember it", "can't find the email", "no idea": the customer has no order number
# to give (said while the bot waits for one).
NO_NUMBER = re.compile(
    r"\b(?:forg[eo]t(?:ten)?|no idea|not sure|no clue|dunno|idk)\b"
    r"|\b(?:lost|deleted|threw away)\s+(?:it|the\s+(?:number|e-?mail|mail|receipt|confirmation))\b"
    r"|\b(?:do\s*n'?o?t|dont|can'?t|cant|cannot|could\s*n'?t|couldnt|did\s*n'?t|didnt|"
    r"have\s*n'?t|havent)\s+(?:\w+\s+)?(?:remember|know|recall|find|have|got|see|keep)\b"
    r"|\bwhere\b.*\b(?:find|see|look)\b",
    re.IGNORECASE,
)
YES = re.compile(r"^\s*(yes|yeah|yep|yup|sure|ok|okay|y|please do|do it|confirm)\b", re.I)
# Taking up the offer of a person: a plain "ok" is not enough (it often only acknowledges).
PERSON_YES = re.compile(
    r"^\s*(?:yes|yeah|yep|yup|sure|please|go ahead|do it|ok(?:ay)?,? please|"
    r"ok(?:ay)?,? (?:a )?(?:person|human|colleague|agent))\b",
    re.I,
)
PERSON_YES_MAX_WORDS = 6
NO = re.compile(r"^\s*(no|nope|nah|n|don'?t|do not|keep it|never ?mind|stop)\b", re.I)


def continue_pending(
    chat: Chat, waiting: Pending, analysis: Analysis | None, text: str
) -> list[Reply] | None:
    """Read a typed message as the answer to the open question; None if it is not one
    (the caller then treats it as a new message)."""
    if waiting.kind == Asked.ORDER_NUMBER and analysis is not None:
        intent = str(waiting.data.get("intent") or "track_order")
        probe = chat.flow(analysis, chat.services.answers.action(intent), message_text=text)
        if order_flows.order_number(probe, bare=True) is None:
            if NO_NUMBER.search(text):
                return order_flows.no_number(chat, intent, attempts=waiting.attempts)
            return None
        order_flow = order_flows.ORDER_FLOWS.get(probe.action.flow or "")
        if order_flow is None:
            return None
        return order_flow(probe, attempts=waiting.attempts, answer=True)
    if waiting.kind == Asked.PAYMENT_DETAILS and analysis is not None:
        if not _payment_details(analysis):
            return None  # something else ("ok, thanks"): answered as a new message
        return _payment_check(chat)
    if waiting.kind == Asked.FORGET and (YES.match(text) or NO.match(text)):
        from bot.services.privacy_flows import typed_answer

        return typed_answer(chat)
    if waiting.kind == Asked.CONFIRM:
        if YES.match(text) or NO.match(text):
            return order_flows.confirmed(chat, waiting.data, yes=bool(YES.match(text)))
        return None
    if waiting.kind == Asked.CHANGE_DETAILS and text.strip() and not ACKNOWLEDGEMENT.match(text):
        return order_flows.change_details(chat, waiting.data)
    if waiting.kind == Asked.REVIEW and text.strip() and not ACKNOWLEDGEMENT.match(text):
        if analysis is not None and analysis.intent not in REVIEW_LIKE:
            return None  # a question of its own ("where is my order?")
        return _review_received(chat, text)
    if waiting.kind == Asked.PERSON and len(text.split()) <= PERSON_YES_MAX_WORDS:
        if PERSON_YES.match(text):  # "yes please" to "I can pass you to a colleague"
            from bot.services.clarify import talk_to_person

            return talk_to_person(chat)
        if NO.match(text):
            return [chat.reply(chat.say("acknowledged"))]
        return None
    if waiting.kind == Asked.SURVEY_COMMENT and text.strip():
        from bot.services.surveys import record_comment

        return record_comment(chat, waiting.data, text)
    return None


def order_number_alone(chat: Chat, analysis: Analysis, text: str) -> list[Reply] | None:
    """A message that is nothing but an order number, which the NLU cannot place, gets that
    order's status (answers such as the delivery times invite the number without a question
    open); None for any other message."""
    if analysis.intent != OUT_OF_SCOPE or not order_flows.BARE_ORDER_ID.match(text):
        return None
    # As if the bot had asked for the number of an order to track.
    asked = Pending(Asked.ORDER_NUMBER, {"intent": "track_order"})
    return continue_pending(chat, asked, analysis, text)


# --- handoff -----------------------------------------------------------------------------


def handoff(flow: FlowInput) -> list[Reply]:
    """Hand the conversation to a human: staff get the customer's card, the bot goes quiet."""
    return flow.hand_over(reason=flow.analysis.intent, text=flow.text(flow.action.text))


# --- reviews -----------------------------------------------------------------------------


def review(flow: FlowInput) -> list[Reply]:
    """``review``: feedback given ("great shop, fast delivery!") is thanked for and passed
    to staff; a message that only says the customer wants to give some ("I'd like to leave a
    review"), with no tone of its own, is invited to write it, and the next message is it."""
    if flow.analysis.sentiment == "neutral":
        flow.ask(Asked.REVIEW)
        return [flow.reply(flow.say("review_invite"))]
    return _review_received(flow, flow.message_text)


# Intents that do not make a message something other than the review the bot asked for.
REVIEW_LIKE = frozenset({OUT_OF_SCOPE, "review", "complaint", "thanks"})


def _review_received(chat: Chat, text: str) -> list[Reply]:
    """Thanks, and the review to staff; an invitation to write one is answered."""
    clear(chat.customer)
    chat.session.add(chat.customer)
    notice = f"⭐ Review from {chat.customer.display_name} (conversation #{chat.conversation.id}):"
    thanks = chat.text(chat.services.answers.action("review").text or "")
    return [chat.reply(thanks), *chat.to_staff(f"{notice}\n{text}")]


# --- payment problems --------------------------------------------------------------------


def payment_issue(flow: FlowInput) -> list[Reply]:
    """``payment_issue``: the advice of answers.yml, which asks for the date and amount of a
    payment that went wrong; once the customer gives them (now or in the next message), a
    person checks the payment."""
    if _payment_details(flow.analysis):
        return _payment_check(flow)
    flow.ask(Asked.PAYMENT_DETAILS)
    if CHARGED.search(flow.message_text):  # money taken: no advice on paying, just the details
        return [flow.reply(flow.say("payment_charged"))]
    return [flow.reply(flow.text(flow.action.text))]


# "charged twice", "double payment", "the money was taken but no order": a charge to check,
# not a payment that failed at checkout.
CHARGED = re.compile(
    r"\b(?:charged|debited|deducted|billed|twice|double|duplicate|two times)\b"
    r"|\bmoney (?:was |got |has been )?(?:taken|gone|withdrawn)\b",
    re.I,
)


def _payment_details(analysis: Analysis) -> bool:
    return any(e.label in ("DATE", "MONEY") for e in analysis.entities)


def _payment_check(chat: Chat) -> list[Reply]:
    return chat.hand_over(reason="payment_check", text=chat.say("payment_handed_over"))


# --- marketing opt-out -------------------------------------------------------------------


def opt_out(flow: FlowInput) -> list[Reply]:
    """Withdraw marketing consent at once, with a timestamp."""
    set_marketing_consent(
        flow.session, flow.customer, consent=False, now=flow.now, source="telegram:message"
    )
    return [flow.reply(flow.text(flow.action.text))]


def set_marketing_consent(
    session: Session, customer: Customer, *, consent: bool, now: datetime, source: str = "chat"
) -> None:
    """Set the current marketing consent and keep a record of when and where it changed."""
    record_consent(session, customer, purpose="marketing", granted=consent, source=source, now=now)
    session.flush()


# --- offers ------------------------------------------------------------------------------


# "how do I use my discount code", "where do I enter the voucher": using a code, not asking
# for an offer (a message that names one of the shop's codes is answered before this).
USING_A_CODE = re.compile(
    r"\b(?:use|using|apply|applying|enter|entering|redeem|add|put|type|where)\b.*"
    r"\b(?:codes?|coupons?|vouchers?|promo ?codes?)\b"
    r"|\b(?:codes?|coupons?|vouchers?)\b.*\b(?:work|working|valid|accepted|apply|applied)\b",
    re.IGNORECASE,
)


def offers_flow(flow: FlowInput) -> list[Reply]:
    """``ask_offers``: the best offer for this customer, if they allow offers; how to use a
    code, if that is the question."""
    from bot.services.offers import offers_in_conversation

    if USING_A_CODE.search(flow.message_text):
        return [flow.reply(flow.text(flow.services.offer_texts.code_how))]
    text = offers_in_conversation(
        flow.session,
        flow.customer,
        flow.now,
        texts=flow.services.offer_texts,
        shop_name=flow.services.shop_name,
        tz=flow.services.tz,
    )
    return [flow.reply(text)]


def mydata_flow(flow: FlowInput) -> list[Reply]:
    from bot.services.privacy_flows import my_data

    return my_data(flow)


def forget_flow(flow: FlowInput) -> list[Reply]:
    from bot.services.privacy_flows import ask_forget

    return ask_forget(flow)


FLOWS: dict[str, Flow] = {
    **order_flows.ORDER_FLOWS,
    "handoff": handoff,
    "payment_issue": payment_issue,
    "review": review,
    "opt_out": opt_out,
    "offers": offers_flow,
    "mydata": mydata_flow,
    "forget": forget_flow,
}
