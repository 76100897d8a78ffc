"""Consent records and the customer's view of their own data (`/privacy`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from db.models import ConsentPurpose, ConsentRecord, Customer, Interaction, Order, Survey

WHY = {
    "profile": "your Telegram name, username and language, to talk to you",
    "messages": "what you wrote and our answers, to help you and to improve the service",
    "orders": "your orders, to answer questions about them",
    "surveys": "your ratings, to measure how well we help",
}


def record_consent(
    session: Session,
    customer: Customer,
    *,
    purpose: str,
    granted: bool,
    source: str,
    now: datetime,
) -> ConsentRecord:
    """Store a consent given or withdrawn, with when and where; marketing also updates the
    customer's current flag (``marketing_consent``), which offers check."""
    assert customer.id is not None
    if purpose == ConsentPurpose.MARKETING:
        customer.marketing_consent = granted
        customer.marketing_consent_at = now
        session.add(customer)
    entry = ConsentRecord(
        customer_id=customer.id, purpose=purpose, granted=granted, source=source, at=now
    )
    session.add(entry)
    return entry


def current_consents(session: Session, customer_id: int) -> dict[str, ConsentRecord]:
    """The latest record per purpose."""
    rows = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.customer_id == customer_id)
        .order_by(col(ConsentRecord.at), col(ConsentRecord.id))
    ).all()
    return {row.purpose: row for row in rows}


CONSENT_USAGE = "Usage: /privacy, or /privacy marketing on|off, or /privacy analytics on|off"


def change_consent(session: Session, customer: Customer, args: str, *, now: datetime) -> str:
    """``/privacy analytics off`` and the like: record the change and confirm it."""
    parts = args.lower().split()
    purposes = {p.value for p in ConsentPurpose}
    if len(parts) != 2 or parts[0] not in purposes or parts[1] not in {"on", "off"}:
        return CONSENT_USAGE
    purpose, granted = parts[0], parts[1] == "on"
    record_consent(
        session, customer, purpose=purpose, granted=granted, source="telegram:/privacy", now=now
    )
    what = {
        "marketing": "offers and promotions",
        "analytics": "use of your messages in analyses and exports for our analysts",
    }[purpose]
    return f"Saved: {what} {'allowed' if granted else 'turned off'}."


def analytics_opt_outs(session: Session) -> set[int]:
    """Customers whose latest analytics consent is a withdrawal."""
    rows = session.exec(
        select(ConsentRecord.customer_id, ConsentRecord.granted)
        .where(ConsentRecord.purpose == ConsentPurpose.ANALYTICS)
        .order_by(col(ConsentRecord.at), col(ConsentRecord.id))
    ).all()
    latest = dict(rows)
    return {customer_id for customer_id, granted in latest.items() if not granted}


def _count(session: Session, model: type, customer_id: int) -> int:
    column = model.customer_id  # type: ignore[attr-defined]
    return int(session.exec(select(func.count()).where(column == customer_id)).one())


def privacy_notice(
    session: Session, customer: Customer, *, shop_name: str, retention_months: int
) -> str:
    """What is stored about this customer and why, consents, and how to get it or delete it."""
    assert customer.id is not None
    consents = current_consents(session, customer.id)
    lines = [
        f"🔒 What {shop_name} stores about you",
        f"• Profile: {WHY['profile']}.",
        f"• {_count(session, Interaction, customer.id):,} messages: {WHY['messages']}. "
        f"Message texts are masked after {retention_months} months; only the topic and "
        "mood of each message are kept for statistics.",
        f"• {_count(session, Order, customer.id):,} orders: {WHY['orders']}.",
        f"• {_count(session, Survey, customer.id):,} survey answers: {WHY['surveys']}.",
        "",
        "Your consents:",
    ]
    for purpose in ConsentPurpose:
        record = consents.get(purpose)
        legacy = purpose == ConsentPurpose.MARKETING and customer.marketing_consent_at
        if record is None and legacy:
            state = "yes" if customer.marketing_consent else "no"
            lines.append(f"• {purpose}: {state} (since {customer.marketing_consent_at:%d %b %Y})")
        elif record is None:
            lines.append(f"• {purpose}: not given")
        else:
            state = "yes" if record.granted else "no"
            lines.append(f"• {purpose}: {state} (since {record.at:%d %b %Y}, via {record.source})")
    lines += [
        "",
        "/stop turns off offers and promotions; /privacy analytics off keeps your messages "
        "out of analyses and exports. /mydata sends you a copy of your data; /forget "
        "deletes it (after you confirm). "
        "Only our staff can see your data, and every time they look it is logged.",
    ]
    return "\n".join(lines)
