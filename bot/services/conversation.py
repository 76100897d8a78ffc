"""The customer side: a message arrives, is analysed, stored, answered; the answer is stored.

The inbound message is committed before any answer is worked out (the answer continues in
the same session, in a new transaction), so a failure while answering never loses what the
customer wrote.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.services import handoff, offers, outbox, pending
from bot.services.chat import Chat
from bot.services.clarify import ask_back
from bot.services.context import Services
from bot.services.flows import (
    ACKNOWLEDGEMENT,
    USING_A_CODE,
    WAITS_FOR_INFO,
    continue_pending,
    order_number_alone,
    run_action,
)
from bot.services.messages import IncomingMessage, Reply
from bot.services.order_flows import other_orders
from db import queries
from db.clock import utcnow
from db.engine import session_scope
from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Interaction,
    InteractionKind,
)
from db.types import as_utc
from nlp import OUT_OF_SCOPE, Analysis
from nlp.language import other_language

log = logging.getLogger(__name__)

# Intents that may come twice in a row without meaning the answer did not help.
SMALL_TALK = frozenset({"greet", "goodbye", "thanks"})
# Kinds whose text (or caption) the NLU reads and the bot answers.
ANALYSED_KINDS = {
    InteractionKind.TEXT,
    InteractionKind.PHOTO,
    InteractionKind.DOCUMENT,
    InteractionKind.VIDEO,
}


@dataclass
class Stored:
    """The result of storing an inbound message: ids, safe to use after commit.

    ``rows`` keeps the customer and conversation just loaded referenced while the message
    is answered: a session's identity map holds its rows weakly, and without a reference the
    answer's ``session.get`` would load them again.
    """

    customer_id: int
    conversation_id: int
    interaction_id: int
    conversation_status: str
    first_name: str | None
    rows: tuple[Customer, Conversation] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, customer: Customer, conversation: Conversation, message: Interaction) -> Stored:
        """The ids of a stored message, its customer and its conversation."""
        assert customer.id is not None and conversation.id is not None
        assert message.id is not None
        return cls(
            customer_id=customer.id,
            conversation_id=conversation.id,
            interaction_id=message.id,
            conversation_status=conversation.status,
            first_name=customer.first_name,
            rows=(customer, conversation),
        )


Responder = Callable[[Session, "Stored"], list[Reply]]


def handle_customer_message(
    services: Services,
    message: IncomingMessage,
    *,
    now: datetime | None = None,
    respond: Responder | None = None,
    enqueue: bool = False,
) -> list[Reply]:
    """Store a customer's message and return the bot's replies (already stored too).

    ``respond`` answers a command instead of the NLU. Returns no replies for an edit;
    while a human has the conversation, ordinary messages are forwarded to staff and the bot
    says nothing itself. A message whose update was stored before gets no replies, unless
    ``enqueue`` is set: then the replies go into the outbox in the answer's own transaction
    (each learns its ``outbox_id``), and an update handled before is treated as a retry
    (the database went away mid-way, or a worker died): if its answer was committed, its
    replies still in the outbox come back; if not, it is answered now.
    """
    now = now or utcnow()
    flooding = _flooding(services, message, now)
    analysis = None if respond or flooding else _analyse(services, message, now)
    with session_scope(services.session_factory) as session:
        try:
            stored = store_inbound(session, message, analysis, now=now)
            session.commit()  # kept whatever happens while answering (same session, fewer loads)
        except IntegrityError:
            session.rollback()
            earlier = _stored_before(session, message) if enqueue else None
            if earlier is None:
                log.info("duplicate update %s ignored", message.update_id)
                return []
            if isinstance(earlier, list):
                log.info("update %s was answered before; its replies resume", message.update_id)
                return earlier
            log.info("update %s was stored but not answered; answering now", message.update_id)
            stored = earlier
        replies = _respond(services, session, stored, message, analysis, flooding, respond, now)
        if enqueue and replies:
            outbox.enqueue(session, replies, now=now, update_id=message.update_id)
        return replies


def _respond(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    analysis: Analysis | None,
    flooding: bool,
    respond: Responder | None,
    now: datetime,
) -> list[Reply]:
    if flooding:  # stored; one notice, unless a human has the chat (the bot stays quiet)
        if stored.conversation_status == ConversationStatus.WAITING_HUMAN:
            return []
        return _flood_notice(services, session, stored, message, now=now)
    if message.kind == InteractionKind.EDITED:
        replies = _edited(services, session, stored, message, analysis, now=now)
    elif respond is not None:
        replies = respond(session, stored)
    elif stored.conversation_status == ConversationStatus.WAITING_HUMAN:
        own = _own_question_answered(services, session, stored, message, analysis, now=now)
        replies = own if own is not None else forward_to_staff(services, session, stored, message)
        if own is None:
            replies += _still_waiting(services, session, stored, message, now=now)
    else:
        replies = answer(services, session, stored, message, analysis, now=now)
    for reply in replies:
        if reply.chat_id == message.sender.chat_id:
            store_outbound(session, stored, reply, channel=message.channel, now=now)
    return replies


# An edit is answered only this soon after the message it changes (a typo fixed at once).
EDIT_ANSWER_WINDOW = timedelta(minutes=10)


def _edited(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    analysis: Analysis | None,
    *,
    now: datetime,
) -> list[Reply]:
    """A customer edited a message (it is stored as an edit). While a human has the chat,
    staff get the new text. Otherwise the bot answers the new text only if it reads
    differently (another intent, another order number: "where is my order 1243" fixed to
    "1234"), the message is the customer's latest, and the edit came soon after it; an edit
    that only fixes a typo in a question already answered gets no second answer."""
    if stored.conversation_status == ConversationStatus.WAITING_HUMAN:
        return forward_to_staff(services, session, stored, message, edited=True)
    if analysis is None or message.message_id is None:
        return []
    found = queries.edited_original(
        session=session, chat_id=message.sender.chat_id, message_id=message.message_id
    )
    if found is None or not found[1]:
        return []
    original = found[0]
    if as_utc(original.created_at) < now - EDIT_ANSWER_WINDOW or _reads_alike(original, analysis):
        return []
    return answer(services, session, stored, message, analysis, now=now)


def _reads_alike(original: Interaction, analysis: Analysis) -> bool:
    """Whether the NLU reads the edited text as it read the original: same intent, same
    order numbers."""
    numbers = sorted(str(e.get("value") or e.get("text")) for e in original.entities or []
                     if e.get("label") == "ORDER_ID")  # fmt: skip
    edited = sorted(str(e.value or e.text) for e in analysis.entities if e.label == "ORDER_ID")
    return original.intent == analysis.intent and numbers == edited


def _stored_before(session: Session, message: IncomingMessage) -> Stored | list[Reply] | None:
    """For an update whose message is stored already: its replies still waiting in the
    outbox if its answer was committed, else the stored message to answer; None if there
    is no such message (the conflict was something else)."""
    if message.update_id is None:
        return None
    replies = outbox.replies_to_update(session, message.update_id)
    if replies is not None:
        return replies
    inbound = queries.interaction_for_update(session=session, update_id=message.update_id)
    if inbound is None:
        return None
    customer = session.get(Customer, inbound.customer_id)
    conversation = session.get(Conversation, inbound.conversation_id)
    if customer is None or conversation is None:
        return None
    return Stored.of(customer, conversation, inbound)


FLOOD_TEXT = (
    "You're sending messages faster than I can answer. I've saved them all; please give "
    "me a moment, then send your question again in one message."
)


def _flooding(services: Services, message: IncomingMessage, now: datetime) -> bool:
    """Whether this sender wrote ``flood_messages`` messages within ``flood_window`` already
    (counted in this process: cheap, and with several workers each counts its own share)."""
    return services.flood_guard.hit(message.sender.user_id, now)


def _flood_notice(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    *,
    now: datetime,
) -> list[Reply]:
    """One polite notice per flood; the messages themselves are stored, unanswered."""
    already = queries.outbound_text_since(
        session=session,
        customer_id=stored.customer_id,
        text=FLOOD_TEXT,
        since=now - services.flood_window,
    )
    if already:
        return []
    log.info("user %s is flooding; messages stored, one notice sent", message.sender.user_id)
    reply = Reply(message.sender.chat_id, FLOOD_TEXT)
    store_outbound(session, stored, reply, channel=message.channel, now=now)
    return [reply]


def _analyse(services: Services, message: IncomingMessage, now: datetime) -> Analysis | None:
    if message.kind not in ANALYSED_KINDS | {InteractionKind.EDITED} or not message.text:
        return None
    try:
        return services.nlu.analyze(message.text, today=now.astimezone(services.tz).date())
    except Exception as exc:  # the message is stored and answered even if the NLU fails
        # The exception's message may quote the text: log its type and stack only.
        log.error(
            "NLU failed on interaction from user %s: %s\n%s",
            message.sender.user_id,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return None


def store_inbound(
    session: Session, message: IncomingMessage, analysis: Analysis | None, *, now: datetime
) -> Stored:
    sender = message.sender
    customer = queries.upsert_telegram_customer(
        session=session,
        telegram_user_id=sender.user_id,
        chat_id=sender.chat_id,
        first_name=sender.first_name,
        last_name=sender.last_name,
        username=sender.username,
        language_code=sender.language_code,
        now=now,
    )
    assert customer.id is not None
    conversation = None
    if message.kind == InteractionKind.CALLBACK:  # a button (a late CSAT rating) reopens nothing
        conversation = queries.latest_conversation(session=session, customer_id=customer.id)
    if conversation is None:
        conversation = queries.open_conversation(
            session=session, customer_id=customer.id, channel=message.channel, now=now
        )
    assert conversation.id is not None
    interaction = queries.add_interaction(
        session=session,
        interaction=Interaction(
            customer_id=customer.id,
            conversation_id=conversation.id,
            direction=Direction.INBOUND,
            channel=message.channel,
            kind=message.kind,
            text=message.text,
            attachment=message.attachment,
            intent=analysis.intent if analysis else None,
            intent_confidence=analysis.confidence if analysis else None,
            sentiment=analysis.sentiment if analysis else None,
            sentiment_score=analysis.sentiment_score if analysis else None,
            entities=analysis.entities_as_dicts() if analysis else None,
            telegram_update_id=message.update_id,
            telegram_chat_id=sender.chat_id,
            telegram_message_id=message.message_id,
            created_at=now,
        ),
    )
    return Stored.of(customer, conversation, interaction)


def stored_chat(
    services: Services, session: Session, stored: Stored, *, chat_id: int, now: datetime
) -> Chat:
    """The chat step for a stored inbound message: its customer and conversation loaded."""
    customer = session.get(Customer, stored.customer_id)
    conversation = session.get(Conversation, stored.conversation_id)
    assert customer is not None and conversation is not None
    return Chat(services, session, customer, conversation, chat_id, now)


# Questions the bot keeps answering while a human has the chat: a customer command asked
# them (/forget works during a handoff), so the yes or no is for the bot, not for staff.
OWN_QUESTIONS = frozenset({pending.Asked.FORGET})


def _own_question_answered(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    analysis: Analysis | None,
    *,
    now: datetime,
) -> list[Reply] | None:
    """During a handoff: the bot's answer if the message answers one of :data:`OWN_QUESTIONS`,
    else None (the message goes to staff)."""
    chat = stored_chat(services, session, stored, chat_id=message.sender.chat_id, now=now)
    waiting = pending.current(chat.customer, now=now)
    if waiting is None or waiting.kind not in OWN_QUESTIONS:
        return None
    return _continue(chat, stored, waiting, analysis, message.text)


def _continue(
    chat: Chat, stored: Stored, waiting: pending.Pending, analysis: Analysis | None, text: str
) -> list[Reply] | None:
    """:func:`continue_pending`; a message it takes as the answer closes the question
    (unless the answer asks a new one: "I couldn't find 5551, please check the number") and
    is marked so (``answered_question``), so that "found it: 5551" is not later counted as a
    message the bot could not place."""
    asked = chat.customer.pending
    replies = continue_pending(chat, waiting, analysis, text)
    if replies is None:
        return None
    if chat.customer.pending is asked:  # answered, and nothing new asked
        pending.clear(chat.customer)
        chat.session.add(chat.customer)
    queries.set_answered_question(
        session=chat.session, interaction_id=stored.interaction_id, question=waiting.kind
    )
    return replies


def answer(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    analysis: Analysis | None,
    *,
    now: datetime,
) -> list[Reply]:
    """The bot's answer: to its own open question if the message answers it, else a
    handoff if one is due, a question back if the NLU is unsure, or the intent's action."""
    chat = stored_chat(services, session, stored, chat_id=message.sender.chat_id, now=now)
    customer, conversation = chat.customer, chat.conversation
    waiting = pending.current(customer, now=now)
    if waiting is not None:
        replies = _continue(chat, stored, waiting, analysis, message.text)
        if replies is not None:
            return replies
    acknowledged = analysis is not None and bool(ACKNOWLEDGEMENT.match(message.text))
    # "one sec" while the bot waits for a number: the question stays open ("ok" to "send me
    # the number if you need it", an optional one, is only acknowledged)
    if (
        acknowledged
        and waiting is not None
        and waiting.kind in WAITS_FOR_INFO
        and not waiting.data.get("optional")
    ):
        return [chat.reply(chat.say("take_your_time"))]
    if customer.pending is not None:
        pending.clear(customer)
        session.add(customer)
    if acknowledged:
        return [chat.reply(chat.say("acknowledged"))]
    if analysis is None:
        return [chat.reply(services.answers.media_text(message.kind))]
    status = order_number_alone(chat, analysis, message.text) or other_orders(chat, message.text)
    if status is not None:
        return status
    code = offers.code_in_message(
        session,
        customer,
        message.text,
        now,
        texts=services.offer_texts,
        tz=services.tz,
    )
    if code is not None:  # "my code SPRING15 doesn't work": whether and how they can use it
        return [chat.reply(code)]
    unplaced = analysis.intent == OUT_OF_SCOPE or services.nlu.needs_clarification(analysis)
    follow_up = _offer_follow_up(
        services, session, customer, analysis, message.text, now=now, unplaced=unplaced
    )
    if follow_up is not None:  # "how do I use it?" right after an offer: that offer's code
        return [chat.reply(follow_up)]
    previous = handoff.previous_message(
        services, session, conversation, before_id=stored.interaction_id
    )
    reason = handoff.trigger(services, analysis, previous)
    if reason is not None:
        return chat.hand_over(reason=reason, text=chat.say("handoff_auto"))
    if unplaced and other_language(message.text) is not None:  # "¿Dónde está mi pedido?"
        buttons = chat.offer_person() if services.staff_destinations() else None
        return [chat.reply(chat.say("other_language"), buttons)]
    if services.nlu.needs_clarification(analysis):
        return ask_back(chat, analysis, interaction_id=stored.interaction_id)
    replies = run_action(chat, analysis, message_text=message.text)
    if (
        analysis.intent == OUT_OF_SCOPE
        and services.staff_destinations()
        and replies
        and not replies[-1].buttons
    ):  # not understood: rephrasing is one way, a person the other
        if analysis.sentiment == "negative":  # "ugh", "😡😡": upset, not a question
            replies[-1].text = chat.say("not_understood_upset")
        replies[-1].buttons = chat.offer_person()
        return replies
    if (
        analysis.intent not in SMALL_TALK
        and services.answers.action(analysis.intent).flow is None
        and handoff.asked_again(services, analysis, previous)
        and replies
        and not replies[-1].buttons
    ):  # the same answer again may not help: a person is offered with it
        replies[-1].text += f"\n\n{chat.say('asked_again')}"
        replies[-1].buttons = chat.offer_person()
    return replies


def _offer_follow_up(
    services: Services,
    session: Session,
    customer: Customer,
    analysis: Analysis,
    text: str,
    *,
    now: datetime,
    unplaced: bool,
) -> str | None:
    """The answer about the offer sent lately, for a message the NLU could not place
    (``unplaced``) or one about using a code; None otherwise (see
    :func:`offers.offer_follow_up`)."""
    using_a_code = analysis.intent == "ask_offers" and bool(USING_A_CODE.search(text))
    if not (unplaced or using_a_code):
        return None
    return offers.offer_follow_up(
        session, customer, text, now, texts=services.offer_texts, tz=services.tz
    )


def store_outbound(
    session: Session,
    stored: Stored,
    reply: Reply,
    *,
    channel: str,
    now: datetime,
    staff_member_id: int | None = None,
) -> None:
    interaction = queries.add_interaction(
        session=session,
        interaction=Interaction(
            customer_id=stored.customer_id,
            conversation_id=stored.conversation_id,
            direction=Direction.OUTBOUND,
            channel=channel,
            kind=InteractionKind.TEXT,
            text=reply.text,
            telegram_chat_id=reply.chat_id,
            staff_member_id=staff_member_id,
            created_at=now,
        ),
    )
    reply.interaction_id = interaction.id


# While nobody has taken a handed-over chat, a customer who writes again this long after the
# handoff is told, at most this often, that their messages reach the team: hours of silence
# read as a broken bot.
STILL_WAITING_AFTER = timedelta(hours=1)


def _still_waiting(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    *,
    now: datetime,
) -> list[Reply]:
    conversation = session.get(Conversation, stored.conversation_id)
    if conversation is None or conversation.assigned_staff_id is not None:
        return []
    since = now - STILL_WAITING_AFTER
    if conversation.handoff_at is None or as_utc(conversation.handoff_at) > since:
        return []
    text = services.answers.say("still_waiting")
    if queries.outbound_text_since(
        session=session, customer_id=stored.customer_id, text=text, since=since
    ):
        return []
    return [Reply(message.sender.chat_id, text)]


def forward_to_staff(
    services: Services,
    session: Session,
    stored: Stored,
    message: IncomingMessage,
    *,
    edited: bool = False,
) -> list[Reply]:
    """While a human has the chat, the bot stays quiet and passes the message to staff (an
    edit as such: staff see the corrected text)."""
    customer = session.get(Customer, stored.customer_id)
    name = customer.display_name if customer else f"customer {stored.customer_id}"
    body = message.text or f"[{message.kind}]"
    what = " (edited a message)" if edited else ""
    text = (
        f"💬 #{stored.conversation_id} {name}{what}:\n{body}\n\n"
        f"Answer with /reply {stored.conversation_id} <text>"
    )
    return [Reply(dest, text) for dest in services.staff_destinations()]
