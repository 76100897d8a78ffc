"""Queries behind personalized offers: the catalogue, who can be reached, what blocks an
offer, co-purchases, redemptions and results. Keyword-only, no commits (the caller owns
the transaction), like :mod:`db.queries`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, func, or_, select

from db.analytics_queries import EXCLUDED_STATUSES
from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    CustomerSnapshot,
    Direction,
    Interaction,
    Offer,
    OfferDelivery,
    Order,
    OrderLine,
    Product,
)

# Orders that never happened for the customer (EXCLUDED_STATUSES, as in RFM and /stats):
# they neither show affinity nor convert.
NOT_PURCHASES = [str(s) for s in EXCLUDED_STATUSES]


# --- the catalogue -----------------------------------------------------------------------


def all_offers(*, session: Session) -> Sequence[Offer]:
    return session.exec(select(Offer).order_by(col(Offer.id))).all()


def offer_by_code(*, session: Session, code: str) -> Offer | None:
    return session.exec(select(Offer).where(Offer.code == code)).first()


def live_offers(*, session: Session, now: datetime) -> Sequence[Offer]:
    """Active offers whose dates include ``now``."""
    return session.exec(
        select(Offer)
        .where(
            col(Offer.active).is_(True),
            or_(col(Offer.starts_at).is_(None), col(Offer.starts_at) <= now),
            or_(col(Offer.ends_at).is_(None), col(Offer.ends_at) > now),
        )
        .order_by(col(Offer.id))
    ).all()


# --- customers and what blocks an offer --------------------------------------------------


@dataclass(frozen=True)
class ReachableCustomer:
    """A customer who allowed offers and pressed Start, with the latest snapshot's scores."""

    customer_id: int
    chat_id: int
    first_name: str | None
    segment: str | None
    p_alive: float | None
    orders: int | None
    clv: float | None


def _snapshot_join(as_of: date | None) -> sa.ColumnElement[bool]:
    on = col(CustomerSnapshot.customer_id) == col(Customer.id)
    return sa.and_(on, col(CustomerSnapshot.as_of) == as_of) if as_of else sa.false()


def reachable_customers(*, session: Session, as_of: date | None) -> list[ReachableCustomer]:
    """Customers with marketing consent and a private chat, scores from snapshot ``as_of``."""
    rows = session.execute(
        sa.select(
            col(Customer.id),
            col(Customer.telegram_chat_id),
            col(Customer.first_name),
            col(CustomerSnapshot.segment),
            col(CustomerSnapshot.p_alive),
            col(CustomerSnapshot.frequency),
            col(CustomerSnapshot.clv),
        )
        .outerjoin(CustomerSnapshot, _snapshot_join(as_of))
        .where(
            col(Customer.marketing_consent).is_(True),
            col(Customer.telegram_chat_id).is_not(None),
        )
        .order_by(col(Customer.id))
    ).all()
    return [
        ReachableCustomer(
            int(cid or 0),
            int(chat or 0),
            name,
            segment,
            p_alive,
            frequency,
            float(clv) if clv is not None else None,
        )
        for cid, chat, name, segment, p_alive, frequency, clv in rows
    ]


def snapshot_of(
    *, session: Session, customer_id: int, as_of: date | None
) -> CustomerSnapshot | None:
    if as_of is None:
        return None
    return session.exec(
        select(CustomerSnapshot).where(
            CustomerSnapshot.customer_id == customer_id, CustomerSnapshot.as_of == as_of
        )
    ).first()


def waiting_for_human(*, session: Session, customer_id: int | None = None) -> set[int]:
    """Customers with a conversation handed to a human and not resolved yet."""
    query = select(Conversation.customer_id).where(
        Conversation.status == ConversationStatus.WAITING_HUMAN
    )
    if customer_id is not None:
        query = query.where(Conversation.customer_id == customer_id)
    return set(session.exec(query.distinct()).all())


def negative_since(
    *, session: Session, since: datetime, customer_id: int | None = None
) -> set[int]:
    """Customers who wrote a message with negative sentiment at or after ``since``."""
    query = select(Interaction.customer_id).where(
        Interaction.direction == Direction.INBOUND,
        Interaction.sentiment == "negative",
        Interaction.created_at >= since,
    )
    if customer_id is not None:
        query = query.where(Interaction.customer_id == customer_id)
    return set(session.exec(query.distinct()).all())


def offers_since(*, session: Session, since: datetime) -> dict[int, int]:
    """Per customer, offer deliveries created at or after ``since`` (held out or not)."""
    rows = session.exec(
        select(OfferDelivery.customer_id, func.count())
        .where(OfferDelivery.created_at >= since)
        .group_by(col(OfferDelivery.customer_id))
    ).all()
    return {int(cid): int(n) for cid, n in rows}


def offered_customers(*, session: Session, offer_id: int) -> set[int]:
    return set(
        session.exec(
            select(OfferDelivery.customer_id).where(OfferDelivery.offer_id == offer_id)
        ).all()
    )


def delivery_of(*, session: Session, offer_id: int, customer_id: int) -> OfferDelivery | None:
    return session.exec(
        select(OfferDelivery).where(
            OfferDelivery.offer_id == offer_id, OfferDelivery.customer_id == customer_id
        )
    ).first()


def latest_sent_offer(
    *, session: Session, customer_id: int, since: datetime
) -> tuple[Offer, OfferDelivery] | None:
    """The offer last sent to this customer (not held out) since ``since``, and its delivery."""
    row = session.exec(
        select(Offer, OfferDelivery)
        .join(OfferDelivery, col(OfferDelivery.offer_id) == Offer.id)
        .where(
            OfferDelivery.customer_id == customer_id,
            col(OfferDelivery.is_holdout).is_(False),
            col(OfferDelivery.sent_at) >= since,
        )
        .order_by(col(OfferDelivery.sent_at).desc(), col(OfferDelivery.id).desc())
    ).first()
    return None if row is None else (row[0], row[1])


def unsent_deliveries(
    *, session: Session, since: datetime
) -> list[tuple[OfferDelivery, str, int]]:
    """Planned deliveries with a message, not held out and not sent, created since
    ``since``, with the offer code and the customer's chat; oldest first."""
    rows = session.exec(
        select(OfferDelivery, Offer.code, Customer.telegram_chat_id)
        .join(Offer, col(Offer.id) == OfferDelivery.offer_id)
        .join(Customer, col(Customer.id) == OfferDelivery.customer_id)
        .where(
            col(OfferDelivery.sent_at).is_(None),
            col(OfferDelivery.is_holdout).is_(False),
            col(OfferDelivery.message).is_not(None),
            col(OfferDelivery.created_at) >= since,
            col(Customer.telegram_chat_id).is_not(None),
        )
        .order_by(col(OfferDelivery.id))
    ).all()
    return [(delivery, code, int(chat_id or 0)) for delivery, code, chat_id in rows]


# --- purchases ---------------------------------------------------------------------------


def bought_products(
    *, session: Session, customer_id: int | None = None, reachable_only: bool = False
) -> dict[int, set[int]]:
    """The products each customer bought (not cancelled): of one customer, of the
    reachable ones (consent and chat), or of everyone."""
    query = (
        select(Order.customer_id, OrderLine.product_id)
        .join(OrderLine, col(OrderLine.order_id) == col(Order.id))
        .where(col(OrderLine.product_id).is_not(None), col(Order.status).not_in(NOT_PURCHASES))
    )
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if reachable_only:
        query = query.join(Customer, col(Customer.id) == col(Order.customer_id)).where(
            col(Customer.marketing_consent).is_(True),
            col(Customer.telegram_chat_id).is_not(None),
        )
    out: dict[int, set[int]] = {}
    for cid, pid in session.exec(query.distinct()).all():
        if pid is not None:
            out.setdefault(int(cid), set()).add(int(pid))
    return out


def basket_lines(*, session: Session) -> tuple[np.ndarray, np.ndarray]:
    """All (order id, product id) pairs of orders that were not cancelled, as two arrays."""
    rows = session.execute(
        sa.select(col(OrderLine.order_id), col(OrderLine.product_id))
        .join(Order, col(Order.id) == col(OrderLine.order_id))
        .where(col(OrderLine.product_id).is_not(None), col(Order.status).not_in(NOT_PURCHASES))
    ).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = np.asarray([tuple(row) for row in rows], dtype=np.int64)
    return pairs[:, 0], pairs[:, 1]


def products(*, session: Session) -> Sequence[Product]:
    return session.exec(select(Product).order_by(col(Product.id))).all()


# --- redemptions and results -------------------------------------------------------------


def coded_order_redemptions(*, session: Session) -> list[tuple[int, datetime]]:
    """Unredeemed sent deliveries whose customer later placed an order with the offer's
    code: (delivery id, first such order's time). Codes match exactly (upper case)."""
    rows = session.exec(
        select(OfferDelivery.id, func.min(Order.ordered_at))
        .join(Offer, col(Offer.id) == col(OfferDelivery.offer_id))
        .join(
            Order,
            sa.and_(
                col(Order.customer_id) == col(OfferDelivery.customer_id),
                col(Order.offer_code) == col(Offer.code),
                col(Order.ordered_at) >= col(OfferDelivery.sent_at),
            ),
        )
        .where(
            col(OfferDelivery.is_holdout).is_(False),
            col(OfferDelivery.sent_at).is_not(None),
            col(OfferDelivery.redeemed_at).is_(None),
            col(Order.offer_code).is_not(None),
            col(Order.status).not_in(NOT_PURCHASES),
        )
        .group_by(col(OfferDelivery.id))
    ).all()
    return [(int(did or 0), at) for did, at in rows]


@dataclass(frozen=True)
class DeliveryOutcome:
    """One delivery of an offer and the customer's first order after it was created."""

    is_holdout: bool
    created_at: datetime
    sent_at: datetime | None
    redeemed_at: datetime | None
    first_order_at: datetime | None


def delivery_outcomes(*, session: Session, offer_id: int) -> list[DeliveryOutcome]:
    rows = session.execute(
        sa.select(
            col(OfferDelivery.is_holdout),
            col(OfferDelivery.created_at),
            col(OfferDelivery.sent_at),
            col(OfferDelivery.redeemed_at),
            func.min(Order.ordered_at),
        )
        .outerjoin(
            Order,
            sa.and_(
                col(Order.customer_id) == col(OfferDelivery.customer_id),
                col(Order.ordered_at) >= col(OfferDelivery.created_at),
                col(Order.status).not_in(NOT_PURCHASES),
            ),
        )
        .where(col(OfferDelivery.offer_id) == offer_id)
        .group_by(
            col(OfferDelivery.id),
            col(OfferDelivery.is_holdout),
            col(OfferDelivery.created_at),
            col(OfferDelivery.sent_at),
            col(OfferDelivery.redeemed_at),
        )
    ).all()
    return [DeliveryOutcome(bool(h), c, s, r, first) for h, c, s, r, first in rows]
