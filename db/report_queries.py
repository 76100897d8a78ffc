"""Queries behind staff reports and digests: surveys, messages, segments, attention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    CustomerSnapshot,
    Direction,
    Interaction,
    OfferDelivery,
    Survey,
)


@dataclass(frozen=True)
class SurveyRow:
    kind: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None


def survey_rows(*, session: Session, start: datetime, end: datetime) -> list[SurveyRow]:
    """Surveys sent in [start, end), with their answers if any."""
    rows = session.exec(
        select(Survey.kind, Survey.sent_at, Survey.answered_at, Survey.score).where(
            Survey.sent_at >= start, Survey.sent_at < end
        )
    ).all()
    return [SurveyRow(*row) for row in rows]


@dataclass(frozen=True)
class MessageRow:
    created_at: datetime
    intent: str | None
    sentiment_score: float | None


def inbound_rows(*, session: Session, start: datetime, end: datetime) -> list[MessageRow]:
    """Customer messages in [start, end) with their intent and sentiment."""
    rows = session.exec(
        select(Interaction.created_at, Interaction.intent, Interaction.sentiment_score).where(
            Interaction.direction == Direction.INBOUND,
            Interaction.created_at >= start,
            Interaction.created_at < end,
        )
    ).all()
    return [MessageRow(*row) for row in rows]


def snapshot_dates(*, session: Session, until: date, limit: int = 2) -> list[date]:
    """The newest snapshot dates on or before ``until``, newest first."""
    return list(
        session.exec(
            select(col(CustomerSnapshot.as_of))
            .where(CustomerSnapshot.as_of <= until)
            .group_by(col(CustomerSnapshot.as_of))
            .order_by(col(CustomerSnapshot.as_of).desc())
            .limit(limit)
        ).all()
    )


def segment_counts(*, session: Session, as_of: date) -> dict[str, int]:
    rows = session.exec(
        select(col(CustomerSnapshot.segment), func.count())
        .where(CustomerSnapshot.as_of == as_of)
        .group_by(col(CustomerSnapshot.segment))
    ).all()
    return {str(segment): int(n) for segment, n in rows}


def segment_moves(*, session: Session, before: date, after: date) -> dict[tuple[str, str], int]:
    """How many customers moved from one segment to another between two snapshots."""
    old = sa.orm.aliased(CustomerSnapshot)
    new = sa.orm.aliased(CustomerSnapshot)
    rows = session.execute(
        sa.select(col(old.segment), col(new.segment), func.count())
        .join(new, col(new.customer_id) == col(old.customer_id))
        .where(
            col(old.as_of) == before, col(new.as_of) == after, col(old.segment) != col(new.segment)
        )
        .group_by(col(old.segment), col(new.segment))
    ).all()
    return {(str(a), str(b)): int(n) for a, b, n in rows}


@dataclass(frozen=True)
class AttentionRow:
    customer_id: int
    name: str
    segment: str | None
    clv: float | None
    mean_sentiment: float


def unhappy_valuable_customers(
    *, session: Session, as_of: date, since: datetime, segments: Sequence[str], limit: int = 10
) -> list[AttentionRow]:
    """Customers in ``segments`` (e.g. At Risk) whose messages since ``since`` were negative
    on average, most valuable first."""
    mean_sentiment = func.avg(Interaction.sentiment_score)
    rows = session.exec(
        select(Customer, col(CustomerSnapshot.segment), col(CustomerSnapshot.clv), mean_sentiment)
        .join(CustomerSnapshot, col(CustomerSnapshot.customer_id) == Customer.id)
        .join(Interaction, col(Interaction.customer_id) == Customer.id)
        .where(
            CustomerSnapshot.as_of == as_of,
            col(CustomerSnapshot.segment).in_(list(segments)),
            Interaction.direction == Direction.INBOUND,
            Interaction.created_at >= since,
        )
        .group_by(col(Customer.id), col(CustomerSnapshot.segment), col(CustomerSnapshot.clv))
        .having(mean_sentiment < 0)
        .order_by(col(CustomerSnapshot.clv).desc())
        .limit(limit)
    ).all()
    return [
        AttentionRow(
            int(c.id or 0), c.display_name, seg, float(clv) if clv is not None else None, float(s)
        )
        for c, seg, clv, s in rows
    ]


def open_handoffs(*, session: Session) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.status == ConversationStatus.WAITING_HUMAN)
        ).one()
    )


def offer_results(*, session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Offers sent, held out and redeemed in [start, end) (empty before offers exist)."""
    row = session.exec(
        select(
            func.count(),
            func.sum(sa.case((col(OfferDelivery.is_holdout), 1), else_=0)),
            func.sum(sa.case((col(OfferDelivery.redeemed_at).is_not(None), 1), else_=0)),
        ).where(OfferDelivery.created_at >= start, OfferDelivery.created_at < end)
    ).one()
    total, holdout, redeemed = (int(v or 0) for v in row)
    return {"deliveries": total, "holdout": holdout, "redeemed": redeemed} if total else {}


@dataclass(frozen=True)
class ComplaintRow:
    customer_id: int
    name: str
    created_at: datetime
    text: str
    entities: list[dict[str, object]]
    status: str | None


def complaint_rows(
    *, session: Session, start: datetime, end: datetime, intent: str = "complaint"
) -> list[ComplaintRow]:
    """Customer messages read as complaints in [start, end), newest first, with who wrote
    them and where their conversation stands."""
    rows = session.exec(
        select(Customer, Interaction, Conversation.status)
        .join(Customer, col(Customer.id) == Interaction.customer_id)
        .outerjoin(Conversation, col(Conversation.id) == Interaction.conversation_id)
        .where(
            Interaction.direction == Direction.INBOUND,
            Interaction.intent == intent,
            Interaction.created_at >= start,
            Interaction.created_at < end,
        )
        .order_by(col(Interaction.created_at).desc(), col(Interaction.id).desc())
    ).all()
    return [
        ComplaintRow(
            customer_id=int(customer.id or 0),
            name=customer.display_name,
            created_at=message.created_at,
            text=message.text or "",
            entities=list(message.entities or []),
            status=status,
        )
        for customer, message, status in rows
    ]
