"""Queries behind the staff views of customers and segments (latest snapshot)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlmodel import Session, col, func, or_, select

from db.models import Customer, CustomerSnapshot, Order


def latest_snapshot_date(*, session: Session) -> date | None:
    return session.exec(select(func.max(CustomerSnapshot.as_of))).one()


def segment_members(
    *, session: Session, as_of: date, segment: str, offset: int, limit: int
) -> tuple[int, Sequence[tuple[Customer, CustomerSnapshot]]]:
    """Customers of a segment, most valuable first (CLV, then total spend), and the total."""
    total = session.exec(
        select(func.count())
        .select_from(CustomerSnapshot)
        .where(CustomerSnapshot.as_of == as_of, CustomerSnapshot.segment == segment)
    ).one()
    rows = session.exec(
        select(Customer, CustomerSnapshot)
        .join(CustomerSnapshot, col(CustomerSnapshot.customer_id) == Customer.id)
        .where(CustomerSnapshot.as_of == as_of, CustomerSnapshot.segment == segment)
        .order_by(
            col(CustomerSnapshot.clv).desc().nulls_last(),
            col(CustomerSnapshot.monetary).desc().nulls_last(),
            col(Customer.id),
        )
        .offset(offset)
        .limit(limit)
    ).all()
    return int(total), rows


def find_customer(*, session: Session, ident: str) -> Customer | None:
    """By internal id (``42`` or ``#42``), external id, ``@username`` or Telegram user id."""
    text = ident.strip()
    if text.startswith("@") and len(text) > 1:
        return session.exec(
            select(Customer).where(func.lower(Customer.username) == text[1:].lower())
        ).first()
    bare = text.lstrip("#")
    if bare.isdigit():
        by_id = session.get(Customer, int(bare)) if len(bare) < 10 else None
        if by_id is not None:
            return by_id
        found = session.exec(
            select(Customer).where(
                or_(Customer.telegram_user_id == int(bare), Customer.external_id == bare)
            )
        ).first()
        if found is not None:
            return found
    return session.exec(select(Customer).where(Customer.external_id == text)).first()


def customers_named(*, session: Session, name: str, limit: int = 10) -> Sequence[Customer]:
    """Customers whose first name, last name or username starts with each word of ``name``
    (case-insensitive: "isla oka" finds Isla Okafor), most recently seen first."""
    words = [w for w in name.lower().replace("@", " ").split() if w][:4]
    if not words:
        return []
    conditions = []
    for word in words:
        prefix = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                *(
                    func.lower(column).like(prefix, escape="\\")
                    for column in (Customer.first_name, Customer.last_name, Customer.username)
                )
            )
        )
    return session.exec(
        select(Customer)
        .where(*conditions)
        .order_by(col(Customer.last_seen_at).desc(), col(Customer.id))
        .limit(limit)
    ).all()


def customer_snapshot(*, session: Session, customer_id: int) -> CustomerSnapshot | None:
    return session.exec(
        select(CustomerSnapshot)
        .where(CustomerSnapshot.customer_id == customer_id)
        .order_by(col(CustomerSnapshot.as_of).desc())
    ).first()


def customer_orders(*, session: Session, customer_id: int, limit: int = 5) -> Sequence[Order]:
    return session.exec(
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(col(Order.ordered_at).desc())
        .limit(limit)
    ).all()


def customer_order_totals(*, session: Session, customer_id: int) -> tuple[int, float]:
    count, total = session.exec(
        select(func.count(), func.coalesce(func.sum(Order.total), 0)).where(
            Order.customer_id == customer_id
        )
    ).one()
    return int(count), float(total)


def at_risk_customers(
    *, session: Session, as_of: date, segments: Sequence[str], limit: int
) -> Sequence[tuple[Customer, CustomerSnapshot]]:
    """Valuable customers who are drifting away: given segments, biggest past spend first
    (their predicted value is low by definition, so past value says what is at stake)."""
    return session.exec(
        select(Customer, CustomerSnapshot)
        .join(CustomerSnapshot, col(CustomerSnapshot.customer_id) == Customer.id)
        .where(CustomerSnapshot.as_of == as_of, col(CustomerSnapshot.segment).in_(segments))
        .order_by(
            col(CustomerSnapshot.monetary).desc().nulls_last(),
            col(CustomerSnapshot.clv).desc().nulls_last(),
        )
        .limit(limit)
    ).all()
