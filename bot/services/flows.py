"""Flows: intents whose answer needs the customer's data or changes something.

A flow is a function ``(FlowInput) -> list[Reply]`` registered in :data:`FLOWS` under the
name that ``answers.yml`` uses. Intents without a flow get their templated text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.services.answers import Action, render
from bot.services.context import Services
from bot.services.messages import Reply
from bot.services.privacy import record_consent
from db import queries
from db.models import Conversation, ConversationStatus, Customer, Interaction, Order, OrderStatus
from nlp import Analysis

log = logging.getLogger(__name__)


@dataclass
class FlowInput:
    services: Services
    session: Session
    customer: Customer
    conversation: Conversation
    analysis: Analysis
    action: Action
    chat_id: int
    now: datetime

    def text(self, template: str | None) -> str:
        return render(
            template or "",
            name=self.customer.first_name or "there",
            shop=self.services.shop_name,
        )


def run_action(
    services: Services,
    session: Session,
    customer: Customer,
    conversation: Conversation,
    analysis: Analysis,
    *,
    chat_id: int,
    now: datetime,
) -> list[Reply]:
    action = services.answers.action(analysis.intent)
    flow_input = FlowInput(
        services, session, customer, conversation, analysis, action, chat_id, now
    )
    if action.flow:
        flow = FLOWS.get(action.flow)
        if flow is None:
            log.error("answers.yml names unknown flow %r for %s", action.flow, action.intent)
        else:
            return flow(flow_input)
    return [Reply(chat_id, flow_input.text(action.text))]


# --- order status ------------------------------------------------------------------------

STATUS_WORDS = {
    OrderStatus.PLACED: "received, being prepared",
    OrderStatus.PAID: "paid, being prepared for shipping",
    OrderStatus.SHIPPED: "shipped",
    OrderStatus.DELIVERED: "delivered",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REFUNDED: "refunded",
}


def _status_detail(order: Order, services: Services) -> str:
    def day(moment: datetime | None) -> str:
        return moment.astimezone(services.tz).strftime("%d %b %Y") if moment else ""

    if order.status == OrderStatus.DELIVERED and order.delivered_at:
        return f" on {day(order.delivered_at)}"
    if order.status == OrderStatus.SHIPPED and order.shipped_at:
        return f" on {day(order.shipped_at)}"
    return ""


def order_status(flow: FlowInput) -> list[Reply]:
    """Find the order named in the message, or the customer's latest, and report it.

    A customer only ever sees their own orders: a number that belongs to someone else is
    reported as not found, exactly like a number that does not exist.
    """
    templates = flow.services.answers.order_status
    entity = flow.analysis.entity("ORDER_ID")
    assert flow.customer.id is not None
    if entity is not None:
        order_id = str(entity.value or entity.text)
        order = queries.find_order(session=flow.session, external_id=order_id)
        if order is None or order.customer_id != flow.customer.id:
            return [Reply(flow.chat_id, render(templates["not_found"], order_id=order_id))]
        template = templates["found"]
    else:
        latest = queries.latest_orders(session=flow.session, customer_id=flow.customer.id)
        if not latest:
            return [Reply(flow.chat_id, render(templates["none"]))]
        order, template = latest[0], templates["latest"]
    status = render(
        template,
        order_id=order.external_id,
        order_date=order.ordered_at.astimezone(flow.services.tz).strftime("%d %b %Y"),
        status=STATUS_WORDS.get(OrderStatus(order.status), order.status),
        status_detail=_status_detail(order, flow.services),
    )
    extra = flow.text(flow.action.text) if flow.action.text else ""
    return [Reply(flow.chat_id, f"{status} {extra}".strip())]


# --- handoff -----------------------------------------------------------------------------


def handoff(flow: FlowInput) -> list[Reply]:
    """Hand the conversation to a human: staff get the customer's card, the bot goes quiet."""
    conversation = flow.conversation
    conversation.status = ConversationStatus.WAITING_HUMAN
    conversation.handoff_at = flow.now
    flow.session.add(conversation)
    flow.session.flush()
    card = handoff_card(
        flow.session,
        flow.customer,
        conversation,
        reason=flow.analysis.intent,
        services=flow.services,
    )
    replies = [Reply(dest, card) for dest in flow.services.staff_destinations()]
    return [Reply(flow.chat_id, flow.text(flow.action.text)), *replies]


def handoff_card(
    session: Session,
    customer: Customer,
    conversation: Conversation,
    *,
    reason: str,
    services: Services,
) -> str:
    assert customer.id is not None
    lines = [
        f"🙋 Handoff #{conversation.id}: {customer.display_name}"
        + (f" (@{customer.username})" if customer.username else ""),
        f"Reason: {reason}",
    ]
    orders = queries.latest_orders(session=session, customer_id=customer.id, limit=3)
    if orders:
        lines.append(
            "Last orders: "
            + ", ".join(f"{o.external_id} {o.total} {o.currency} {o.status}" for o in orders)
        )
    recent: list[Interaction] = list(
        queries.recent_interactions(session=session, customer_id=customer.id, limit=5)
    )
    if recent:
        lines.append("Last messages:")
        for item in recent:
            who = "👤" if item.direction == "in" else "🤖"
            lines.append(f"{who} {_clip(item.text or f'[{item.kind}]')}")
    lines.append(
        f"\nAnswer with /reply {conversation.id} <text>, close with /resolve {conversation.id}"
    )
    return "\n".join(lines)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- marketing opt-out -------------------------------------------------------------------


def opt_out(flow: FlowInput) -> list[Reply]:
    """Withdraw marketing consent at once, with a timestamp."""
    set_marketing_consent(
        flow.session, flow.customer, consent=False, now=flow.now, source="telegram:message"
    )
    return [Reply(flow.chat_id, flow.text(flow.action.text))]


def set_marketing_consent(
    session: Session, customer: Customer, *, consent: bool, now: datetime, source: str = "chat"
) -> None:
    """Set the current marketing consent and keep a record of when and where it changed."""
    record_consent(session, customer, purpose="marketing", granted=consent, source=source, now=now)
    session.flush()


FLOWS: dict[str, Callable[[FlowInput], list[Reply]]] = {
    "order_status": order_status,
    "handoff": handoff,
    "opt_out": opt_out,
}
