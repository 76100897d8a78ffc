"""SQLModel tables of crmbot.

Conventions:
- Every timestamp is an aware UTC datetime (``db.clock.utcnow()``), stored through
  ``db.types.UTCDateTime`` so SQLite and PostgreSQL behave the same.
- Status and kind columns are short strings backed by ``StrEnum`` classes, not database
  enums, so that adding a value needs no migration.
- Money is ``Numeric(12, 2)`` and comes back as ``Decimal``.
- Message texts use ``db.types.ExactText``: stored exactly as sent, NUL included.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from db.clock import utcnow
from db.types import ExactText, UTCDateTime

MONEY = sa.Numeric(12, 2)


class ConversationStatus(StrEnum):
    OPEN = "open"
    WAITING_HUMAN = "waiting_human"
    RESOLVED = "resolved"


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class InteractionKind(StrEnum):
    TEXT = "text"
    COMMAND = "command"
    EDITED = "edited"
    CALLBACK = "callback"
    STICKER = "sticker"
    PHOTO = "photo"
    VOICE = "voice"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class StaffRole(StrEnum):
    AGENT = "agent"
    ADMIN = "admin"


class SurveyKind(StrEnum):
    CSAT = "csat"
    NPS = "nps"


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# --- customers ---------------------------------------------------------------------------


class CustomerBase(SQLModel):
    telegram_user_id: int | None = Field(default=None, sa_type=sa.BigInteger, unique=True)
    telegram_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    external_id: str | None = Field(default=None, max_length=64, unique=True)
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    username: str | None = Field(default=None, max_length=64)
    language_code: str | None = Field(default=None, max_length=16)
    email: str | None = Field(default=None, max_length=254)


class Customer(CustomerBase, table=True):
    """A person the business knows: from a chat, from imported orders, or both."""

    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    marketing_consent: bool | None = Field(default=None)
    marketing_consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The question the bot is waiting on in this customer's chat (bot/services/pending.py).
    pending: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    pending_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or (f"@{self.username}" if self.username else f"customer {self.id}")


class CustomerPublic(CustomerBase):
    id: int
    marketing_consent: bool | None
    first_seen_at: datetime
    last_seen_at: datetime


# --- conversations and interactions -----------------------------------------------------


class Conversation(SQLModel, table=True):
    """A support thread with one customer: open, waiting for a human, or resolved."""

    __tablename__ = "conversations"
    __table_args__ = (sa.Index("ix_conversations_customer_status", "customer_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    channel: str = Field(default="telegram", max_length=16)
    status: str = Field(default=ConversationStatus.OPEN, max_length=16, index=True)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    handoff_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assigned_staff_id: int | None = Field(default=None, foreign_key="staff_members.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Interaction(SQLModel, table=True):
    """One message in or out, with its text exactly as sent and what the NLU made of it."""

    __tablename__ = "interactions"
    __table_args__ = (
        sa.Index("ix_interactions_customer_created", "customer_id", "created_at"),
        sa.Index("ix_interactions_created_intent", "created_at", "intent"),
        sa.Index("ix_interactions_chat_message", "telegram_chat_id", "telegram_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    conversation_id: int | None = Field(
        default=None, foreign_key="conversations.id", ondelete="CASCADE", index=True
    )
    direction: str = Field(max_length=3)
    channel: str = Field(default="telegram", max_length=16)
    kind: str = Field(default=InteractionKind.TEXT, max_length=16)
    text: str = Field(default="", sa_type=ExactText)
    attachment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    intent: str | None = Field(default=None, max_length=64)
    intent_confidence: float | None = None
    sentiment: str | None = Field(default=None, max_length=16)
    sentiment_score: float | None = None
    entities: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    telegram_update_id: int | None = Field(default=None, sa_type=sa.BigInteger, unique=True)
    telegram_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    telegram_message_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    staff_member_id: int | None = Field(default=None, foreign_key="staff_members.id")
    # The intent the customer picked when the bot asked back: a label for retraining.
    chosen_intent: str | None = Field(default=None, max_length=64)
    # The bot's open question this message answered (an order number, a review, a yes or
    # no: a kind of bot.services.pending.Asked), whatever its intent reads: not an
    # unplaced message, so it never counts towards "did not understand twice".
    answered_question: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InboundUpdate(SQLModel, table=True):
    """Every update received from Telegram, raw, stored before it is processed."""

    __tablename__ = "inbound_updates"

    update_id: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    error: str | None = Field(default=None, sa_type=sa.Text)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(SQLModel, table=True):
    """A reply on its way to Telegram, stored before it is sent and marked once sent.

    ``reply`` is the neutral reply (text, buttons, caption, edit, file name); ``attachment``
    holds a photo's or a document's bytes. ``steps_done`` counts the Bot API calls already
    made for it (a long text is several messages), so a retry resumes where it failed.
    ``update_id`` is the Telegram update the reply answers, when it was stored together with
    the answer (a retried update then finds its replies instead of answering twice).
    """

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger)
    reply: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    attachment: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    steps_done: int = 0
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    update_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)


# --- shop data ---------------------------------------------------------------------------


class Product(SQLModel, table=True):
    __tablename__ = "products"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    category: str | None = Field(default=None, max_length=100, index=True)
    price: Decimal = Field(default=Decimal("0"), sa_type=MONEY)
    active: bool = True


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    # Covers the RFM and CLV aggregations (customer, time, status, amount) as well as
    # "latest orders of a customer", so those scans never touch the table.
    __table_args__ = (
        sa.Index(
            "ix_orders_customer_ordered_status_total",
            "customer_id",
            "ordered_at",
            "status",
            "total",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=64, unique=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    status: str = Field(default=OrderStatus.PLACED, max_length=16)
    ordered_at: datetime = Field(sa_type=UTCDateTime, index=True)
    total: Decimal = Field(sa_type=MONEY)
    currency: str = Field(default="USD", max_length=3)
    # The offer code used at checkout, if any (upper case); see bot.services.offers.
    offer_code: str | None = Field(default=None, max_length=64, index=True)
    shipped_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", ondelete="CASCADE", index=True)
    product_id: int | None = Field(default=None, foreign_key="products.id", index=True)
    quantity: int = 1
    unit_price: Decimal = Field(sa_type=MONEY)


# --- analytics results -------------------------------------------------------------------


class CustomerSnapshot(SQLModel, table=True):
    """A customer's scores and segment as of one date; one row per customer and date."""

    __tablename__ = "customer_snapshots"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "as_of", name="uq_customer_snapshots_customer_as_of"),
        sa.Index("ix_customer_snapshots_as_of_segment", "as_of", "segment"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    as_of: date
    recency_days: int | None = None
    frequency: int | None = None
    monetary: Decimal | None = Field(default=None, sa_type=MONEY)
    tenure_days: int | None = None
    r_score: int | None = None
    f_score: int | None = None
    m_score: int | None = None
    segment: str | None = Field(default=None, max_length=32)
    cluster: str | None = Field(default=None, max_length=64)
    satisfaction: float | None = None
    p_alive: float | None = None
    expected_purchases_90d: float | None = None
    clv: Decimal | None = Field(default=None, sa_type=MONEY)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- offers and surveys ------------------------------------------------------------------


class Offer(SQLModel, table=True):
    __tablename__ = "offers"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=200)
    text: str = Field(sa_type=sa.Text)
    targeting: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    holdout_share: float = 0.1
    active: bool = True
    starts_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OfferDelivery(SQLModel, table=True):
    """One offer for one customer: sent, or held out to measure uplift."""

    __tablename__ = "offer_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("offer_id", "customer_id", name="uq_offer_deliveries_offer_customer"),
        sa.Index("ix_offer_deliveries_customer_created", "customer_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    offer_id: int = Field(foreign_key="offers.id", ondelete="CASCADE")
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    is_holdout: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    redeemed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The message as planned; the bot's sender sends planned, unsent ones (an outbox).
    message: str | None = Field(default=None, sa_type=sa.Text)


class Survey(SQLModel, table=True):
    """A CSAT or NPS question sent to a customer, and the answer once given."""

    __tablename__ = "surveys"
    __table_args__ = (sa.Index("ix_surveys_kind_sent", "kind", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE", index=True)
    conversation_id: int | None = Field(
        default=None, foreign_key="conversations.id", ondelete="SET NULL"
    )
    kind: str = Field(max_length=8)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    score: int | None = None
    comment: str | None = Field(default=None, sa_type=ExactText)


# --- staff and jobs ----------------------------------------------------------------------


class StaffMember(SQLModel, table=True):
    __tablename__ = "staff_members"

    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_type=sa.BigInteger, unique=True)
    name: str | None = Field(default=None, max_length=128)
    role: str = Field(default=StaffRole.AGENT, max_length=16)
    active: bool = True
    # "config" (CRMBOT_STAFF_IDS / CRMBOT_ADMIN_IDS, synced at start) or "chat" (/staff add).
    source: str = Field(
        default="config", max_length=16, sa_column_kwargs={"server_default": "config"}
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    """One run of a scheduled job; (job, scheduled_for) is unique so no run happens twice."""

    __tablename__ = "job_runs"
    __table_args__ = (
        sa.UniqueConstraint("job", "scheduled_for", name="uq_job_runs_job_scheduled_for"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    scheduled_for: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default=JobStatus.RUNNING, max_length=16)
    detail: str | None = Field(default=None, sa_type=sa.Text)


# --- data protection ---------------------------------------------------------------------


class AuditAction(StrEnum):
    CUSTOMER_VIEWED = "customer.viewed"
    SEGMENT_VIEWED = "segment.viewed"
    LIST_VIEWED = "list.viewed"
    REPLY_SENT = "conversation.reply"
    HANDOFF_TAKEN = "conversation.taken"
    CONVERSATION_RESOLVED = "conversation.resolved"
    AUDIT_VIEWED = "audit.viewed"
    EXPORTED = "data.exported"
    OFFER_SENT = "offer.sent"
    DELETED = "customer.deleted"
    STAFF_CHANGED = "staff.changed"
    RETENTION_MASKED = "retention.masked"


class AuditEntry(SQLModel, table=True):
    """One staff (or system) action that read or changed customer data. Append-only:
    no code path updates or deletes a row, and on PostgreSQL a trigger refuses both."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_customer_at", "customer_id", "at"),
        sa.Index("ix_audit_log_actor_at", "actor_telegram_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor_telegram_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    staff_member_id: int | None = Field(default=None)
    actor: str = Field(default="staff", max_length=32)
    action: str = Field(max_length=32)
    customer_id: int | None = Field(default=None)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class ConsentPurpose(StrEnum):
    MARKETING = "marketing"
    ANALYTICS = "analytics"


class ConsentRecord(SQLModel, table=True):
    """A consent given or withdrawn: what for, when, and where it came from."""

    __tablename__ = "consent_records"
    __table_args__ = (sa.Index("ix_consent_records_customer_purpose", "customer_id", "purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    purpose: str = Field(max_length=16)
    granted: bool
    source: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
