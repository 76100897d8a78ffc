"""The question the bot is waiting on in a customer's chat, kept across turns until it lapses.

When the bot asks something back (which order? did you mean...? are you sure?), it stores
what it asked in ``customers.pending`` with a deadline in ``pending_until``. The next
message or button press of the customer is read in that light; an answer that does not
fit, or an answer after the deadline, is treated as a new message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from db.models import Customer


class Asked(StrEnum):
    ORDER_NUMBER = "order_number"  # data: intent waiting for the order
    CLARIFY = "clarify"  # data: options (intents offered), interaction_id (the message)
    CONFIRM = "confirm"  # data: action ("cancel_order" / "change_order"), order_id
    CHANGE_DETAILS = "change_details"  # data: order_id
    PAYMENT_DETAILS = "payment_details"  # no data: the date and amount of a payment
    SURVEY_COMMENT = "survey_comment"  # data: survey_id
    REVIEW = "review"  # no data: the customer was invited to write a review
    FORGET = "forget"  # no data: the customer asked to erase their data
    PERSON = "person"  # no data: the bot offered a person (a typed "yes please" takes it up)


@dataclass(frozen=True)
class Pending:
    kind: Asked
    data: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


def ask(
    customer: Customer,
    kind: Asked,
    *,
    now: datetime,
    ttl: timedelta,
    attempts: int = 0,
    **data: Any,
) -> None:
    """Remember that the bot asked ``kind``; the answer is expected before ``now + ttl``."""
    customer.pending = {"kind": str(kind), "data": data, "attempts": attempts}
    customer.pending_until = now + ttl


def current(customer: Customer, *, now: datetime) -> Pending | None:
    """The open question, or None if there is none or it has lapsed."""
    raw = customer.pending
    if not raw or customer.pending_until is None or customer.pending_until <= now:
        return None
    try:
        kind = Asked(str(raw.get("kind")))
    except ValueError:  # written by a newer version, or damaged: ignore it
        return None
    return Pending(kind, dict(raw.get("data") or {}), int(raw.get("attempts") or 0))


def clear(customer: Customer) -> None:
    customer.pending = None
    customer.pending_until = None
