"""Flows about the customer's own orders: status and refunds, cancel and change, and
requests a person carries out (an invoice, a new address for a sent order).

The order comes from the number in the message; without one, status questions use the
latest order, and cancel/change offer the recent orders as buttons. Without any order the
bot asks for the number and remembers the question (:mod:`bot.services.pending`), so the
next message can be just "10234". Cancel and change act only after a yes on a button.

A customer only ever sees their own orders: a number that belongs to someone else is
reported as not found, exactly like a number that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from bot.services.chat import Chat, FlowInput
from bot.services.messages import Button, Reply
from bot.services.pending import Asked
from db import queries
from db.models import Order, OrderStatus
from nlp import Entity

STATUS_WORDS = {
    OrderStatus.PLACED: "received, being prepared",
    OrderStatus.PAID: "paid, being prepared for shipping",
    OrderStatus.SHIPPED: "shipped",
    OrderStatus.DELIVERED: "delivered",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REFUNDED: "refunded",
}
# Orders that have not left the warehouse: they can still be cancelled or changed.
OPEN_STATUSES = {OrderStatus.PLACED, OrderStatus.PAID}
CHANGE_ACTIONS = ("cancel_order", "change_order")
# After this many numbers that match no order of the customer, offer a person instead.
MAX_ATTEMPTS = 2
# Cancel or change: the customer's latest orders looked at, and at most this many offered.
RECENT_ORDERS = 10
CHOICES = 3
# A reply that is nothing but an order number, when the bot asked for one.
BARE_ORDER_ID = re.compile(r"^\s*(?:#|no\.?\s*)?([A-Za-z]{0,5}-?[0-9]{3,12})\s*[.!]?\s*$")
# An order number inside a short answer to the bot's question ("found it: 10234", "it's
# A-20931"): one such token, not part of an amount, a date, a phone number or an email.
ID_IN_ANSWER = re.compile(
    r"(?<![\w@$€£¥₹&./,+:-])#?\s?([A-Za-z]{0,5}-?[0-9]{3,12})(?![\w/-]|[.,:]\d)"
)
ANSWER_MAX_WORDS = 8
# A year the customer mentions ("I ordered it in 2024", "a customer since 2019") is not the
# order number, though it has the digits of one.
YEAR_MENTION = re.compile(
    r"\b(?:in|since|from|during|of|for|until|till|before|after)\s+((?:19|20)[0-9]{2})\b", re.I
)
OTHER_NUMBERS = frozenset({"MONEY", "DATE", "PHONE", "EMAIL"})
# A number that is a place: "to 10115", "zip 94103", "postcode 1011".
POSTCODE = re.compile(r"\b(?:to|zip|zip ?code|post ?code|postal code|area)\s+\d", re.I)


def status_words(order: Order) -> str:
    try:
        return STATUS_WORDS[OrderStatus(order.status)]
    except ValueError:
        return order.status


def order_values(chat: Chat, order: Order) -> dict[str, str]:
    def day(moment: datetime | None) -> str:
        return moment.astimezone(chat.services.tz).strftime("%d %b %Y") if moment else ""

    detail = ""
    if order.status == OrderStatus.DELIVERED and order.delivered_at:
        detail = f" on {day(order.delivered_at)}"
    elif order.status == OrderStatus.SHIPPED and order.shipped_at:
        detail = f" on {day(order.shipped_at)}"
    return {
        "order_id": order.external_id,
        "order_date": day(order.ordered_at),
        "status": status_words(order),
        "status_detail": detail,
    }


def order_number(flow: FlowInput, *, bare: bool = False) -> str | None:
    """The order number in the message; with ``bare`` (the message answers the bot's
    question for one), also a message that is only a number, or a short one with a number."""
    entity = flow.analysis.entity("ORDER_ID")
    if entity is not None:
        return str(entity.value or entity.text)
    if not bare:
        return None
    found = BARE_ORDER_ID.match(flow.message_text)
    if found:
        return found.group(1).upper()
    if len(flow.message_text.split()) > ANSWER_MAX_WORDS:
        return None
    years = set(YEAR_MENTION.findall(flow.message_text))
    tokens = [t for t in ID_IN_ANSWER.findall(flow.message_text) if t not in years]
    others = [e.text for e in flow.analysis.entities if e.label in OTHER_NUMBERS]
    if len(tokens) == 1 and not any(tokens[0] in other for other in others):
        return str(tokens[0]).upper()
    return None


def own_order(chat: Chat, external_id: str) -> Order | None:
    order = queries.find_order(session=chat.session, external_id=external_id)
    if order is None or order.customer_id != chat.customer.id:
        return None
    return order


def _ask_number(chat: Chat, intent: str, *, attempts: int, text: str) -> list[Reply]:
    """Ask for the order number; ``attempts``: numbers the customer tried in vain so far."""
    if attempts >= MAX_ATTEMPTS:
        return [
            chat.reply(
                f"{text} {chat.say('order_number_give_up')}",
                chat.offer_person(),
            )
        ]
    chat.ask(Asked.ORDER_NUMBER, attempts=attempts, intent=intent)
    return [chat.reply(text)]


def no_number(chat: Chat, intent: str, *, attempts: int) -> list[Reply]:
    """The customer has no order number to give: where to find it, or a person who can look
    the order up (the question stays open, so the number can still come)."""
    chat.ask(Asked.ORDER_NUMBER, attempts=attempts, intent=intent)
    return [chat.reply(chat.say("no_order_number"), chat.offer_person())]


def _not_found(chat: Chat, intent: str, order_id: str, attempts: int) -> list[Reply]:
    templates = chat.services.answers.order_status
    return _ask_number(
        chat,
        intent,
        attempts=attempts + 1,
        text=chat.text(templates["not_found"], order_id=order_id),
    )


# --- status and refunds ------------------------------------------------------------------


def order_status(flow: FlowInput, *, attempts: int = 0, answer: bool = False) -> list[Reply]:
    """``track_order``, ``get_refund``, ``track_refund``: the order's status and date, then
    the intent's own text (the refund rules, for instance). ``answer``: the message answers
    the bot's question for the number (so a bare number counts); ``attempts``: numbers the
    customer tried in vain before."""
    intent = flow.action.intent
    templates = flow.services.answers.order_status
    number = order_number(flow, bare=answer)
    if number is not None:
        order = own_order(flow, number)
        if order is None:
            return _not_found(flow, intent, number, attempts)
        template = templates["found"]
    else:
        latest = queries.latest_orders(session=flow.session, customer_id=flow.customer.id or 0)
        if not latest:
            return _ask_number(flow, intent, attempts=attempts, text=flow.text(templates["none"]))
        order, template = latest[0], templates["latest"]
    status = flow.text(template, **order_values(flow, order))
    extra = flow.text(flow.action.text) if flow.action.text else ""
    return [flow.reply(f"{status} {extra}".strip())]


# "what about my other order?", "and the previous one?": the orders before the latest.
OTHER_ORDERS = re.compile(
    r"\b(?:other|previous|older|earlier|second|last few|all(?: of)? my)\s+"
    r"(?:orders?|ones?|parcels?|packages?|purchases?)\b",
    re.IGNORECASE,
)
OTHER_ORDERS_SHOWN = 3


def other_orders(chat: Chat, text: str) -> list[Reply] | None:
    """The status of the customer's orders before the latest, for "what about my other
    order?"; None if the message does not ask that or there is only one order."""
    if not OTHER_ORDERS.search(text) or len(text.split()) > ANSWER_MAX_WORDS:
        return None
    recent = queries.latest_orders(
        session=chat.session, customer_id=chat.customer.id or 0, limit=OTHER_ORDERS_SHOWN + 1
    )
    if len(recent) < 2:
        return None
    found = chat.services.answers.order_status["found"]
    lines = [chat.text(found, **order_values(chat, order)) for order in recent[1:]]
    return [chat.reply("\n".join(lines))]


# --- cancel and change -------------------------------------------------------------------


def cancel_order(flow: FlowInput, *, attempts: int = 0, answer: bool = False) -> list[Reply]:
    return _pick_then_confirm(flow, attempts=attempts, answer=answer)


def change_order(flow: FlowInput, *, attempts: int = 0, answer: bool = False) -> list[Reply]:
    return _pick_then_confirm(flow, attempts=attempts, answer=answer)


def _pick_then_confirm(flow: FlowInput, *, attempts: int, answer: bool) -> list[Reply]:
    intent = flow.action.intent
    number = order_number(flow, bare=answer)
    if number is not None:
        order = own_order(flow, number)
        if order is None:
            return _not_found(flow, intent, number, attempts)
        return confirm(flow, intent, order)
    recent = queries.latest_orders(
        session=flow.session, customer_id=flow.customer.id or 0, limit=RECENT_ORDERS
    )
    if not recent:
        return _ask_number(flow, intent, attempts=attempts, text=flow.say("ask_order_number"))
    # Only orders that can still be cancelled or changed are worth a choice: one of them is
    # the one meant; with none, the latest order's answer says why (it has shipped).
    still_open = [o for o in recent if o.status in OPEN_STATUSES]
    if len(still_open) <= 1:
        return confirm(flow, intent, still_open[0] if still_open else recent[0])
    flow.ask(Asked.ORDER_NUMBER, attempts=attempts, intent=intent)
    buttons = [[Button(_order_label(flow, o), f"ord|{o.id}")] for o in still_open[:CHOICES]]
    return [flow.reply(flow.say("which_order"), buttons)]


def _order_label(chat: Chat, order: Order) -> str:
    return (
        f"{order.external_id} · {order_values(chat, order)['order_date']} · {status_words(order)}"
    )


def confirm(chat: Chat, action: str, order: Order) -> list[Reply]:
    """Ask yes/no before cancelling or changing; orders that have shipped are explained."""
    values = order_values(chat, order)
    if order.status not in OPEN_STATUSES:
        key = "cannot_cancel" if action == "cancel_order" else "cannot_change"
        return [chat.reply(chat.say(key, **values))]
    chat.ask(Asked.CONFIRM, action=action, order_id=order.id)
    yes = "Yes, cancel it" if action == "cancel_order" else "Yes, change it"
    no = "No, keep it" if action == "cancel_order" else "No"
    key = "confirm_cancel" if action == "cancel_order" else "confirm_change"
    return [chat.reply(chat.say(key, **values), [[Button(yes, "cfm|yes"), Button(no, "cfm|no")]])]


def confirmed(chat: Chat, data: dict[str, object], *, yes: bool) -> list[Reply]:
    """The customer's yes or no to :func:`confirm`."""
    order = chat.session.get(Order, data.get("order_id"))
    if not yes or order is None or order.customer_id != chat.customer.id:
        return [chat.reply(chat.say("kept"))]
    values = order_values(chat, order)
    if order.status not in OPEN_STATUSES:  # it shipped while the question was open
        key = "cannot_cancel" if data.get("action") == "cancel_order" else "cannot_change"
        return [chat.reply(chat.say(key, **values))]
    if data.get("action") == "cancel_order":
        order.status = OrderStatus.CANCELLED
        order.updated_at = chat.now
        chat.session.add(order)
        notice = (
            f"🛑 {chat.customer.display_name} cancelled order {order.external_id} in the chat "
            f"(conversation #{chat.conversation.id}). Please stop it and refund any payment."
        )
        return [chat.reply(chat.say("cancelled", **values)), *chat.to_staff(notice)]
    chat.ask(Asked.CHANGE_DETAILS, order_id=order.id)
    return [chat.reply(chat.say("ask_change_details", **values))]


def change_details(chat: Chat, data: dict[str, object]) -> list[Reply]:
    """What the customer wants changed: a person takes it from here."""
    order = chat.session.get(Order, data.get("order_id"))
    order_id = order.external_id if order is not None else "?"
    return chat.hand_over(
        reason=f"change request for order {order_id}",
        text=chat.say("change_handed_over", order_id=order_id),
    )


# --- requests a person carries out: an invoice sent, an address changed ------------------


def order_request(flow: FlowInput, *, attempts: int = 0, answer: bool = False) -> list[Reply]:
    """``get_invoice``, ``check_invoice``, ``change_shipping_address``: without an order
    number, the intent's text (how customers do it themselves, and that the number brings
    in a person); with the number of one of their orders, in the message or as the answer,
    a person takes the request over."""
    intent = flow.action.intent
    number = order_number(flow, bare=True)  # "the invoice for 10234 please" names it
    if number is None:
        flow.ask(Asked.ORDER_NUMBER, attempts=attempts, intent=intent, optional=True)
        return [flow.reply(flow.text(flow.action.text))]
    order = own_order(flow, number)
    if order is None:
        return _not_found(flow, intent, number, attempts)
    label = flow.action.button_label
    return flow.hand_over(
        reason=f"{label} (order {order.external_id})",
        text=flow.say("request_handed_over", order_id=order.external_id),
    )


def delivery_estimate(flow: FlowInput, *, attempts: int = 0, answer: bool = False) -> list[Reply]:
    """``delivery_period``: "when will 10234 arrive" gets that order's status; without a
    number, the delivery times, and a number sent next gets its order's status."""
    track = flow.services.answers.action("track_order")
    bare = not POSTCODE.search(flow.message_text)  # "how long to 10115 Berlin?" is a place
    if order_number(flow, bare=bare) is not None:  # "when will 10234 arrive?"
        return order_status(replace(flow, action=track), attempts=attempts, answer=True)
    flow.ask(Asked.ORDER_NUMBER, attempts=attempts, intent=track.intent, optional=True)
    return [flow.reply(flow.text(flow.action.text))]


class OrderFlow(Protocol):
    def __call__(
        self, flow: FlowInput, *, attempts: int = 0, answer: bool = False
    ) -> list[Reply]: ...


# answers.yml flow names; ``attempts`` counts order numbers already not found, ``answer``
# says the message answers the bot's question for one.
ORDER_FLOWS: dict[str, OrderFlow] = {
    "order_status": order_status,
    "cancel_order": cancel_order,
    "change_order": change_order,
    "order_request": order_request,
    "delivery_estimate": delivery_estimate,
}


def entity_for(order: Order) -> Entity:
    """The order as if the customer had written its number (a button press)."""
    return Entity("ORDER_ID", order.external_id, 0, len(order.external_id), order.external_id)
