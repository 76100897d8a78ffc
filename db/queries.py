"""Database queries. Every function takes the session as a keyword argument and commits
nothing: the caller owns the transaction (see ``db.engine.session_scope``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from db.analytics_queries import EXCLUDED_STATUSES
from db.clock import utcnow
from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    InboundUpdate,
    Interaction,
    InteractionKind,
    JobRun,
    JobStatus,
    Order,
    Product,
    StaffMember,
    StaffRole,
)

# --- inbound updates ---------------------------------------------------------------------

# Databases with INSERT … ON CONFLICT DO NOTHING RETURNING (SQLite has RETURNING from 3.35).
INSERT_IGNORING: dict[str, Any] = {"postgresql": postgresql.insert}
if sqlite3.sqlite_version_info >= (3, 35):
    INSERT_IGNORING["sqlite"] = sqlite.insert


def record_inbound_update(
    *, session: Session, update_id: int, kind: str, payload: dict[str, Any]
) -> bool:
    """Store a raw update; False if this update_id was stored before (a redelivery, or a
    concurrent worker that stored it first). One ``INSERT … ON CONFLICT DO NOTHING
    RETURNING``."""
    dialect = session.get_bind().dialect.name
    if dialect not in INSERT_IGNORING:  # other databases: look first, then insert
        if session.get(InboundUpdate, update_id) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(InboundUpdate(update_id=update_id, kind=kind, payload=payload))
        except IntegrityError:
            return False
        return True
    statement = (
        INSERT_IGNORING[dialect](InboundUpdate)
        .values(update_id=update_id, kind=kind, payload=payload, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(InboundUpdate.update_id)  # a row only when it was inserted
    )
    return session.execute(statement).first() is not None


def mark_update_processed(
    *, session: Session, update_id: int, error: str | None = None, now: datetime | None = None
) -> None:
    """Set processed_at; ``error`` (if given) is recorded and never cleared by a later call."""
    values: dict[str, Any] = {"processed_at": now or utcnow()}
    if error is not None:
        values["error"] = error
    session.execute(
        sa.update(InboundUpdate).where(col(InboundUpdate.update_id) == update_id).values(values)
    )


# --- customers ---------------------------------------------------------------------------


def get_customer_by_telegram_id(*, session: Session, telegram_user_id: int) -> Customer | None:
    return session.exec(
        select(Customer).where(Customer.telegram_user_id == telegram_user_id)
    ).first()


def upsert_telegram_customer(
    *,
    session: Session,
    telegram_user_id: int,
    chat_id: int | None,
    first_name: str | None,
    last_name: str | None,
    username: str | None,
    language_code: str | None,
    now: datetime,
) -> Customer:
    """Find the customer for this Telegram user, creating it, and refresh profile fields."""
    customer = get_customer_by_telegram_id(session=session, telegram_user_id=telegram_user_id)
    if customer is None:
        customer = Customer(telegram_user_id=telegram_user_id, first_seen_at=now, created_at=now)
        try:
            with session.begin_nested():
                session.add(customer)
                session.flush()
        except IntegrityError:  # created concurrently by another worker
            customer = get_customer_by_telegram_id(
                session=session, telegram_user_id=telegram_user_id
            )
            assert customer is not None
    fields = {
        "telegram_chat_id": chat_id,
        "first_name": first_name,
        "last_name": last_name,
        "username": username,
        "language_code": language_code,
    }
    for name, value in fields.items():
        if value is not None:
            setattr(customer, name, value)
    customer.last_seen_at = now
    session.add(customer)  # flushed with the next statement (the session autoflushes)
    return customer


# --- conversations and interactions ------------------------------------------------------


def current_conversation(*, session: Session, customer_id: int) -> Conversation | None:
    """The customer's newest conversation that is not resolved."""
    return session.exec(
        select(Conversation)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.status != ConversationStatus.RESOLVED,
        )
        .order_by(col(Conversation.opened_at).desc(), col(Conversation.id).desc())
    ).first()


def latest_conversation(*, session: Session, customer_id: int) -> Conversation | None:
    """The customer's newest conversation, resolved or not."""
    return session.exec(
        select(Conversation)
        .where(Conversation.customer_id == customer_id)
        .order_by(col(Conversation.opened_at).desc(), col(Conversation.id).desc())
    ).first()


def open_conversation(
    *, session: Session, customer_id: int, channel: str, now: datetime
) -> Conversation:
    """The customer's unresolved conversation, or a new open one."""
    conversation = current_conversation(session=session, customer_id=customer_id)
    if conversation is None:
        conversation = Conversation(
            customer_id=customer_id, channel=channel, opened_at=now, updated_at=now
        )
        session.add(conversation)
        session.flush()  # its id
    conversation.updated_at = now  # flushed with the next statement
    return conversation


def outbound_text_since(*, session: Session, customer_id: int, text: str, since: datetime) -> bool:
    """Whether the bot sent this customer exactly ``text`` since ``since``."""
    return (
        session.exec(
            select(Interaction.id).where(
                Interaction.customer_id == customer_id,
                Interaction.direction == Direction.OUTBOUND,
                col(Interaction.created_at) >= since,
                Interaction.text == text,
            )
        ).first()
        is not None
    )


def add_interaction(*, session: Session, interaction: Interaction) -> Interaction:
    session.add(interaction)
    session.flush()
    return interaction


def interaction_for_update(*, session: Session, update_id: int) -> Interaction | None:
    """The message stored from this Telegram update, if any."""
    statement = select(Interaction).where(Interaction.telegram_update_id == update_id)
    return session.exec(statement).first()


def set_interaction_message_id(
    *, session: Session, interaction_id: int, telegram_message_id: int
) -> None:
    session.execute(
        sa.update(Interaction)
        .where(col(Interaction.id) == interaction_id)
        .values(telegram_message_id=telegram_message_id)
    )


def edited_original(
    *, session: Session, chat_id: int, message_id: int
) -> tuple[Interaction, bool] | None:
    """The stored message an edit changes (Telegram's chat and message id), and whether it
    is still the customer's latest message in that chat (nothing written after it)."""
    original = session.exec(
        select(Interaction)
        .where(
            Interaction.telegram_chat_id == chat_id,
            Interaction.telegram_message_id == message_id,
            Interaction.direction == Direction.INBOUND,
            Interaction.kind != InteractionKind.EDITED,
        )
        .order_by(col(Interaction.id))
    ).first()
    if original is None or original.id is None:
        return None
    later = session.exec(
        select(Interaction.id).where(
            Interaction.customer_id == original.customer_id,
            Interaction.direction == Direction.INBOUND,
            Interaction.kind != InteractionKind.EDITED,
            col(Interaction.id) > original.id,
        )
    ).first()
    return original, later is None


def set_answered_question(*, session: Session, interaction_id: int, question: str) -> None:
    """Note on an inbound message which of the bot's open questions it answered."""
    session.execute(
        sa.update(Interaction)
        .where(col(Interaction.id) == interaction_id)
        .values(answered_question=question)
    )


def recent_interactions(
    *, session: Session, customer_id: int, limit: int = 10
) -> Sequence[Interaction]:
    rows = session.exec(
        select(Interaction)
        .where(Interaction.customer_id == customer_id)
        .order_by(col(Interaction.created_at).desc(), col(Interaction.id).desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


# --- orders ------------------------------------------------------------------------------


def find_order(*, session: Session, external_id: str) -> Order | None:
    return session.exec(
        select(Order).where(func.upper(Order.external_id) == external_id.upper())
    ).first()


def latest_orders(*, session: Session, customer_id: int, limit: int = 1) -> Sequence[Order]:
    return session.exec(
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(col(Order.ordered_at).desc(), col(Order.id).desc())
        .limit(limit)
    ).all()


def product_names(*, session: Session) -> list[str]:
    return list(session.exec(select(Product.name).where(col(Product.active).is_(True))).all())


# --- staff -------------------------------------------------------------------------------


def sync_staff(*, session: Session, staff_ids: frozenset[int], admin_ids: frozenset[int]) -> None:
    """Make the configured staff match the allowlist (configured ids no longer listed become
    inactive); members admins added in the chat are left alone."""
    existing = {s.telegram_user_id: s for s in session.exec(select(StaffMember)).all()}
    for user_id in staff_ids | admin_ids:
        member = existing.get(user_id) or StaffMember(telegram_user_id=user_id)
        member.active = True
        member.source = STAFF_FROM_CONFIG
        member.role = StaffRole.ADMIN if user_id in admin_ids else StaffRole.AGENT
        session.add(member)
    for user_id, member in existing.items():
        configured = member.source == STAFF_FROM_CONFIG
        if configured and user_id not in staff_ids | admin_ids and member.active:
            member.active = False
            session.add(member)
    session.flush()


STAFF_FROM_CONFIG = "config"
STAFF_FROM_CHAT = "chat"


def staff_members(*, session: Session, active_only: bool = True) -> Sequence[StaffMember]:
    query = select(StaffMember).order_by(col(StaffMember.role), col(StaffMember.telegram_user_id))
    if active_only:
        query = query.where(col(StaffMember.active).is_(True))
    return session.exec(query).all()


# --- staff statistics --------------------------------------------------------------------


def count_rows(*, session: Session, model: type, since: datetime | None = None) -> int:
    query = select(func.count()).select_from(model)
    if since is not None:
        query = query.where(model.created_at >= since)  # type: ignore[attr-defined]
    return int(session.exec(query).one())


def conversation_status_counts(*, session: Session) -> dict[str, int]:
    rows = session.exec(
        select(Conversation.status, func.count()).group_by(Conversation.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def inbound_count(*, session: Session, since: datetime) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(Interaction)
            .where(Interaction.direction == Direction.INBOUND, Interaction.created_at >= since)
        ).one()
    )


def order_totals(
    *, session: Session, since: datetime, until: datetime
) -> dict[str, tuple[int, Decimal]]:
    """Per currency, the number and sum of the purchases ordered in [since, until)
    (cancelled orders are not purchases, as in the RFM figures)."""
    rows = session.exec(
        select(Order.currency, func.count(), func.sum(Order.total))
        .where(
            Order.ordered_at >= since,
            Order.ordered_at < until,
            col(Order.status).not_in([str(s) for s in EXCLUDED_STATUSES]),
        )
        .group_by(Order.currency)
    ).all()
    return {str(currency): (int(n), Decimal(total or 0)) for currency, n, total in rows}


def inbound_label_counts(
    *, session: Session, column: str, since: datetime, until: datetime | None = None
) -> dict[str, int]:
    """Counts of inbound messages since ``since`` (and before ``until``) by ``intent`` or
    ``sentiment``."""
    field = {"intent": Interaction.intent, "sentiment": Interaction.sentiment}[column]
    statement = select(field, func.count()).where(
        Interaction.direction == Direction.INBOUND,
        Interaction.created_at >= since,
        col(field).is_not(None),
    )
    if until is not None:
        statement = statement.where(Interaction.created_at < until)
    rows = session.exec(statement.group_by(field)).all()
    return {str(label): int(n) for label, n in rows}


# --- job runs ----------------------------------------------------------------------------


def claim_job_run(
    *,
    session: Session,
    job: str,
    scheduled_for: datetime,
    now: datetime,
    stale_after: timedelta = timedelta(minutes=15),
) -> JobRun | None:
    """Claim the run of ``job`` for ``scheduled_for``; None if it ran or is running.

    The unique (job, scheduled_for) constraint makes the claim atomic across processes. A
    failed run, or one still marked running long after it started (the process died), is
    claimed again so it is retried once more.
    """
    existing = session.exec(
        select(JobRun).where(JobRun.job == job, JobRun.scheduled_for == scheduled_for)
    ).first()
    if existing is None:
        run = JobRun(job=job, scheduled_for=scheduled_for, started_at=now)
        try:
            with session.begin_nested():
                session.add(run)
                session.flush()
        except IntegrityError:
            return None
        return run
    retryable = existing.status == JobStatus.FAILED or (
        existing.status == JobStatus.RUNNING and existing.started_at < now - stale_after
    )
    if not retryable:
        return None
    claimed = session.execute(
        sa.update(JobRun)
        .where(
            col(JobRun.id) == existing.id,
            col(JobRun.status) == existing.status,
            col(JobRun.started_at) == existing.started_at,
        )
        .values(status=JobStatus.RUNNING, started_at=now, finished_at=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.refresh(existing)
    return existing


def finish_job_run(
    *, session: Session, run_id: int, status: str, detail: str, now: datetime
) -> None:
    session.execute(
        sa.update(JobRun)
        .where(col(JobRun.id) == run_id)
        .values(status=status, detail=detail, finished_at=now)
    )


def recent_job_runs(*, session: Session, limit: int = 20) -> Sequence[JobRun]:
    return session.exec(
        select(JobRun).order_by(col(JobRun.started_at).desc(), col(JobRun.id).desc()).limit(limit)
    ).all()


def job_run_done(*, session: Session, job: str, scheduled_for: datetime) -> bool:
    """True if the run succeeded (a failed or stale one may be retried)."""
    status = session.exec(
        select(JobRun.status).where(JobRun.job == job, JobRun.scheduled_for == scheduled_for)
    ).first()
    return status == JobStatus.SUCCEEDED
