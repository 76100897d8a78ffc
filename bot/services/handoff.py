"""Handing a conversation to a human: when to do it, and the card staff get.

Triggers: the customer asks for a person (``contact_human_agent``) or complains
(``complaint``), both through the ``handoff`` flow in answers.yml; and, checked by
:func:`trigger` before any answer, two negative messages in a row or two messages in a row
the bot did not understand. Those two apply only when someone is there to take over (staff
or a staff chat is configured).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.services.context import Services
from bot.services.customers import transcript_line
from bot.services.messages import Button, Reply
from db import customer_queries as cq
from db import queries
from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Interaction,
    InteractionKind,
)
from nlp import OUT_OF_SCOPE, Analysis

REASONS = {
    "contact_human_agent": "asked for a person",
    "complaint": "complaint",
    "negative": "two negative messages in a row",
    "not_understood": "the bot did not understand twice",
    "payment_check": "payment to check (date and amount in the messages)",
}


def previous_message(
    services: Services, session: Session, conversation: Conversation, *, before_id: int
) -> Interaction | None:
    """The customer's message before this one in the conversation, if the NLU read it; None
    also when no staff are configured (nothing to hand over to, so nothing to compare)."""
    if not services.staff_destinations():
        return None
    return _previous_analysed(session, conversation, before_id=before_id)


def trigger(services: Services, analysis: Analysis, previous: Interaction | None) -> str | None:
    """The reason to hand over now (a key of :data:`REASONS`), or None; ``previous`` is
    :func:`previous_message`."""
    if previous is None:
        return None
    if analysis.sentiment == "negative" and previous.sentiment == "negative":
        return "negative"
    if not _unsure_message(services, previous):
        return None
    if analysis.intent == OUT_OF_SCOPE:  # not placed, after an unclear message
        return "not_understood"
    # Half understood: after a question back, a second unclear message goes to a person;
    # after a message the bot could not place at all, it asks back first.
    unsure = _unsure(services, analysis.intent, analysis.confidence)
    if unsure and previous.intent != OUT_OF_SCOPE:
        return "not_understood"
    return None


def asked_again(services: Services, analysis: Analysis, previous: Interaction | None) -> bool:
    """The customer asks, sure enough, what they asked right before: the bot's answer did
    not help, and saying it again would not either."""
    return (
        previous is not None
        and previous.intent == analysis.intent != OUT_OF_SCOPE
        and not _unsure(services, analysis.intent, analysis.confidence)
        and not _unsure_message(services, previous)
        and previous.answered_question is None
    )


def _unsure(services: Services, intent: str | None, confidence: float | None) -> bool:
    if intent is None or confidence is None:
        return False
    return intent == OUT_OF_SCOPE or confidence < services.nlu.confident_threshold


def _unsure_message(services: Services, message: Interaction) -> bool:
    """A stored message the bot could not place; one that answered the bot's own question
    ("found it: 5551", a written review) was understood, whatever its intent reads."""
    if message.answered_question is not None:
        return False
    return _unsure(services, message.intent, message.intent_confidence)


def _previous_analysed(
    session: Session, conversation: Conversation, *, before_id: int
) -> Interaction | None:
    """The customer's message before this one in the conversation, if the NLU read it."""
    return session.exec(
        select(Interaction)
        .where(
            Interaction.conversation_id == conversation.id,
            Interaction.direction == Direction.INBOUND,
            col(Interaction.id) < before_id,
            col(Interaction.kind).in_([InteractionKind.TEXT, InteractionKind.PHOTO]),
        )
        .order_by(col(Interaction.id).desc())
    ).first()


def hand_over(
    services: Services,
    session: Session,
    customer: Customer,
    conversation: Conversation,
    *,
    reason: str,
    chat_id: int,
    text: str,
    now: datetime,
) -> list[Reply]:
    """Mark the conversation as waiting for a human; the customer is told, staff get the
    card. Handing over twice sends no second card."""
    replies = [Reply(chat_id, text)] if text else []
    if conversation.status == ConversationStatus.WAITING_HUMAN:
        return replies
    conversation.status = ConversationStatus.WAITING_HUMAN
    conversation.handoff_at = now
    conversation.updated_at = now
    session.add(conversation)
    session.flush()
    card, buttons = handoff_card(session, customer, conversation, reason=reason)
    return replies + [Reply(dest, card, buttons=buttons) for dest in services.staff_destinations()]


def card_buttons(conversation_id: int, *, taken: bool = False) -> list[list[Button]]:
    row = [] if taken else [Button("✋ Take", f"take|{conversation_id}")]
    return [[*row, Button("✅ Resolve", f"res|{conversation_id}")]]


def handoff_card(
    session: Session, customer: Customer, conversation: Conversation, *, reason: str
) -> tuple[str, list[list[Button]]]:
    """The customer's card for staff: who, why, segment and scores, last orders and
    messages, and the buttons to take and resolve the conversation."""
    assert customer.id is not None and conversation.id is not None
    lines = [
        f"🙋 Handoff #{conversation.id}: {customer.display_name}"
        + (f" (@{customer.username})" if customer.username else ""),
        f"Reason: {REASONS.get(reason, reason)}",
    ]
    snapshot = cq.customer_snapshot(session=session, customer_id=customer.id)
    if snapshot is not None:
        facts = [f"segment {snapshot.segment or 'unclassified'}"]
        if snapshot.satisfaction is not None:
            facts.append(f"satisfaction {snapshot.satisfaction:.0f}/100")
        if snapshot.clv is not None:
            facts.append(f"CLV {snapshot.clv}")
        if snapshot.p_alive is not None:
            facts.append(f"churn risk {1 - snapshot.p_alive:.0%}")
        lines.append("Customer: " + ", ".join(facts))
    orders = queries.latest_orders(session=session, customer_id=customer.id, limit=3)
    if orders:
        lines.append(
            "Last orders: "
            + ", ".join(f"{o.external_id} {o.total} {o.currency} {o.status}" for o in orders)
        )
    recent = list(queries.recent_interactions(session=session, customer_id=customer.id, limit=5))
    if recent:
        lines.append("Last messages:")
        lines += [transcript_line(item, limit=300) for item in recent]
    lines.append(
        f"\nReply to this message to answer, or /reply {conversation.id} <text>; "
        f"close with /resolve {conversation.id}."
    )
    return "\n".join(lines), card_buttons(conversation.id)
