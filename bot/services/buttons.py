"""Inline button presses: the data says what was pressed, the database says whether the
presser may press it.

Callback data is short text, ``kind|arg|arg`` (Telegram allows 64 bytes). Anyone can send
any data, so every handler checks the presser: staff buttons check the staff list on every
press; customer buttons act only on the presser's own open question, survey or order.
Data that fails a check gets the same answer as an expired button and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from analytics.segments import ALL_SEGMENTS
from bot.services import clarify, order_flows, pending, staff, surveys
from bot.services.chat import Chat
from bot.services.commands import audited_segment_page
from bot.services.context import Services
from bot.services.conversation import Stored, handle_customer_message, stored_chat
from bot.services.flows import set_marketing_consent
from bot.services.handoff import card_buttons
from bot.services.messages import IncomingCallback, IncomingMessage, Reply
from bot.services.privacy_flows import forget_pressed
from db.clock import utcnow
from db.engine import session_scope
from db.models import InteractionKind, Order, SurveyKind
from nlp import Analysis

STALE_BUTTON = "This button is no longer active."


@dataclass(frozen=True)
class Press:
    services: Services
    callback: IncomingCallback
    args: list[str]
    now: datetime
    enqueue: bool = False  # a customer's press: replies into the outbox with its answer

    @property
    def user_id(self) -> int:
        return self.callback.sender.user_id


Outcome = tuple[str | None, list[Reply]]
STALE: Outcome = (STALE_BUTTON, [])


def handle_callback(
    services: Services,
    callback: IncomingCallback,
    *,
    now: datetime | None = None,
    enqueue: bool = False,
) -> Outcome:
    """A button press: a short notice for the button, and replies (or edits) for chats.
    ``enqueue``: a customer's press is answered with its replies put in the outbox in the
    same transaction, and a press handled before (a retry) gets its stored replies back (see
    :func:`bot.services.conversation.handle_customer_message`)."""
    kind, *args = callback.data.split("|")
    press = Press(services, callback, args, now or utcnow(), enqueue)
    if kind in STAFF_BUTTONS:
        if not services.is_staff(press.user_id):
            return STALE
        return STAFF_BUTTONS[kind](press)
    if services.is_staff(press.user_id):
        return STALE
    if kind == "fgt" and args in (["yes"], ["no"]):  # not stored: it erases the presser
        return forget_pressed(services, callback.sender, yes=args == ["yes"], now=press.now)
    if kind in CUSTOMER_BUTTONS:
        return _customer_press(press, CUSTOMER_BUTTONS[kind])
    return STALE


# --- staff -------------------------------------------------------------------------------


def segment_page(press: Press) -> Outcome:
    if len(press.args) != 2 or press.args[0] not in ALL_SEGMENTS or not press.args[1].isdigit():
        return STALE
    with session_scope(press.services.session_factory) as session:
        text, buttons = audited_segment_page(
            session, press.args[0], int(press.args[1]), staff_user_id=press.user_id, now=press.now
        )
    chat_id = press.callback.sender.chat_id
    return None, [Reply(chat_id, text, buttons=buttons, edit_message_id=press.callback.message_id)]


def _conversation_arg(press: Press) -> int | None:
    return int(press.args[0]) if len(press.args) == 1 and press.args[0].isdigit() else None


def _staff_action(
    press: Press,
    act: Callable[[Session, int], list[Reply]],
    done: Callable[[int, list[Reply]], Outcome],
) -> Outcome:
    """Run a staff action on the conversation the button names, then ``done`` with its
    replies; a stale button or an action that cannot be done is answered on the button."""
    conversation_id = _conversation_arg(press)
    if conversation_id is None:
        return STALE
    try:
        with session_scope(press.services.session_factory) as session:
            replies = act(session, conversation_id)
    except staff.StaffActionError as exc:
        return str(exc), []
    return done(conversation_id, replies)


def take(press: Press) -> Outcome:
    def act(session: Session, conversation_id: int) -> list[Reply]:
        return staff.take_conversation(
            press.services,
            session,
            conversation_id=conversation_id,
            staff_user_id=press.user_id,
            staff_name=press.callback.sender.first_name,
            now=press.now,
        )

    def done(conversation_id: int, replies: list[Reply]) -> Outcome:
        who = press.callback.sender.first_name or "you"
        note = _card_note(press, f"✋ Taken by {who}.", card_buttons(conversation_id, taken=True))
        return f"#{conversation_id} is yours.", [*replies, *note]

    return _staff_action(press, act, done)


def resolve(press: Press) -> Outcome:
    def act(session: Session, conversation_id: int) -> list[Reply]:
        return staff.resolve_conversation(
            press.services,
            session,
            conversation_id=conversation_id,
            staff_user_id=press.user_id,
            now=press.now,
        )

    def done(conversation_id: int, replies: list[Reply]) -> Outcome:
        who = press.callback.sender.first_name or "staff"
        return f"#{conversation_id} resolved.", [
            *replies,
            *_card_note(press, f"✅ Resolved by {who}."),
        ]

    return _staff_action(press, act, done)


def _card_note(press: Press, note: str, buttons: list | None = None) -> list[Reply]:
    """A short note under the card in the staff chat (the card itself stays as it was)."""
    chat_id = press.callback.sender.chat_id
    return [Reply(chat_id, note, buttons=buttons or [])]


STAFF_BUTTONS: dict[str, Callable[[Press], Outcome]] = {
    "seg": segment_page,
    "take": take,
    "res": resolve,
}


# --- customers ---------------------------------------------------------------------------

CustomerButton = Callable[[Press, Chat], list[Reply] | None]


def _customer_press(press: Press, handler: CustomerButton) -> Outcome:
    """Store the press as the customer's interaction, then let the handler answer it; a
    handler that returns None found nothing to act on (a stale or forged button)."""
    outcome: list[Reply] | None = None
    called = False

    def respond(session: Session, stored: Stored) -> list[Reply]:
        nonlocal outcome, called
        called = True
        chat_id = press.callback.sender.chat_id
        chat = stored_chat(press.services, session, stored, chat_id=chat_id, now=press.now)
        outcome = handler(press, chat)
        return outcome or []

    message = IncomingMessage(
        sender=press.callback.sender,
        text=press.callback.data,
        channel=press.callback.channel,
        kind=InteractionKind.CALLBACK,
        update_id=press.callback.update_id,
    )
    replies = handle_customer_message(
        press.services, message, now=press.now, respond=respond, enqueue=press.enqueue
    )
    if not called and press.enqueue:  # handled before: its stored replies, if any are left
        return None, replies
    return (None, replies) if outcome is not None else STALE


def _waiting(chat: Chat, kind: pending.Asked) -> pending.Pending | None:
    waiting = pending.current(chat.customer, now=chat.now)
    return waiting if waiting is not None and waiting.kind == kind else None


def _done(chat: Chat) -> None:
    pending.clear(chat.customer)
    chat.session.add(chat.customer)


def clarify_choice(press: Press, chat: Chat) -> list[Reply] | None:
    waiting = _waiting(chat, pending.Asked.CLARIFY)
    if waiting is None or len(press.args) != 1:
        return None
    _done(chat)
    return clarify.chosen(chat, waiting, press.args[0])


def person(press: Press, chat: Chat) -> list[Reply] | None:
    _done(chat)
    return clarify.talk_to_person(chat)


def confirmation(press: Press, chat: Chat) -> list[Reply] | None:
    waiting = _waiting(chat, pending.Asked.CONFIRM)
    if waiting is None or press.args not in (["yes"], ["no"]):
        return None
    _done(chat)
    return order_flows.confirmed(chat, waiting.data, yes=press.args == ["yes"])


def order_choice(press: Press, chat: Chat) -> list[Reply] | None:
    waiting = _waiting(chat, pending.Asked.ORDER_NUMBER)
    if waiting is None or len(press.args) != 1 or not press.args[0].isdigit():
        return None
    order = chat.session.get(Order, int(press.args[0]))
    if order is None or order.customer_id != chat.customer.id:
        return None
    _done(chat)
    intent = str(waiting.data.get("intent") or "track_order")
    action = chat.services.answers.action(intent)
    flow = order_flows.ORDER_FLOWS.get(action.flow or "")
    if flow is None:
        return None
    analysis = Analysis(
        intent=intent,
        confidence=1.0,
        sentiment="neutral",
        sentiment_score=0.0,
        entities=(order_flows.entity_for(order),),
    )
    return flow(chat.flow(analysis, action))


def survey_answer(kind: str) -> CustomerButton:
    def press_survey(press: Press, chat: Chat) -> list[Reply] | None:
        if len(press.args) != 2 or not all(a.isdigit() for a in press.args):
            return None
        replies = surveys.answer(
            chat,
            kind,
            int(press.args[0]),
            int(press.args[1]),
            message_id=press.callback.message_id,
        )
        return replies or None

    return press_survey


def skip(press: Press, chat: Chat) -> list[Reply] | None:
    if _waiting(chat, pending.Asked.SURVEY_COMMENT) is None or len(press.args) != 1:
        return None
    if not press.args[0].isdigit():
        return None
    return (
        surveys.skip_comment(chat, int(press.args[0]), message_id=press.callback.message_id)
        or None
    )


def consent(press: Press, chat: Chat) -> list[Reply] | None:
    """The answer to the one-time question about offers (asked at /start)."""
    if press.args not in (["yes"], ["no"]):
        return None
    granted = press.args == ["yes"]
    set_marketing_consent(
        chat.session, chat.customer, consent=granted, now=chat.now, source="telegram:button"
    )
    text = (
        "Great, I'll send you an offer now and then. /stop turns them off any time."
        if granted
        else "OK, no offers. If you change your mind: /privacy marketing on."
    )
    reply = chat.reply(text)
    reply.edit_message_id = press.callback.message_id
    return [reply]


CUSTOMER_BUTTONS: dict[str, CustomerButton] = {
    "clar": clarify_choice,
    "hum": person,
    "cfm": confirmation,
    "ord": order_choice,
    "csat": survey_answer(SurveyKind.CSAT),
    "nps": survey_answer(SurveyKind.NPS),
    "skip": skip,
    "cons": consent,
}
