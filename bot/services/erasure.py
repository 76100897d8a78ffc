"""A customer's rights over their data: a copy of everything stored (``/mydata``) and
erasure (``/forget``). No Telegram types here; the confirmation and the file upload are the
channel's job.

Erasure keeps the numbers and drops the person. What goes:

- the profile: names, username, e-mail, language, Telegram user and chat ids, the marketing
  flag and any other per-customer state (every nullable column of ``customers`` that is not
  in :data:`CUSTOMER_KEPT` is cleared, so a column added later is cleared too);
- what they wrote and what was written to them: interaction texts become :data:`FORGOTTEN`,
  entities and attachment metadata go, and so do the Telegram chat, message and update ids;
- survey comments (the scores stay), consent records (deleted);
- the raw Telegram updates they sent (``inbound_updates``): the payload is replaced, the row
  stays so that Telegram redelivering that update is still recognised as a duplicate.

What stays, anonymised under the same customer id: interactions as rows (direction, kind,
intent, sentiment, times), conversations (open ones are closed: nobody can answer them
any more), orders and their lines, survey scores, offer deliveries and the analytics
snapshots. Message counts, intent and sentiment mixes, CSAT, NPS, revenue and RFM segment
counts are therefore the same before and after.

The shop's own ids (the customer's ``external_id``, the order numbers) stay by default:
they only point into the shop's own systems, where the shop erases the person too, and
the nightly order import relies on them to recognise orders it already has (without them a
re-import would bring the orders back under a new customer and count the revenue twice).
``drop_shop_ids=True`` removes them as well, for shops that do not re-import.

With the Telegram user id cleared, the same person writing again becomes a new, blank
customer. The audit log keeps its entries (it is append-only and holds ids and counts, no
personal data); erasure adds one with the counts only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from bot.services import audit
from bot.services.retention import mask_interactions, mask_survey_comments
from db.models import (
    AuditAction,
    AuditEntry,
    ConsentRecord,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerSnapshot,
    InboundUpdate,
    Interaction,
    Offer,
    OfferDelivery,
    Order,
    OrderLine,
    OutboxMessage,
    Product,
    Survey,
)

FORGOTTEN = "[deleted at the customer's request]"
EXPORT_FORMAT = "crmbot.customer-data/1"

# Customer columns erasure keeps: the id others point to and when the row was active.
CUSTOMER_KEPT = frozenset({"id", "first_seen_at", "last_seen_at", "created_at"})
SHOP_IDS = frozenset({"external_id"})

# What erasure does with each table that holds data about a customer. A test checks that
# every table with a customer_id column is listed, so a new table cannot be forgotten here.
HANDLING: dict[str, str] = {
    "customers": "profile cleared; the row stays as an anonymous id",
    "interactions": "text replaced, entities, attachment and Telegram ids removed; "
    "direction, kind, intent, sentiment and times stay",
    "conversations": "kept; open ones are closed",
    "surveys": "comment replaced; kind, score and times stay",
    "consent_records": "deleted",
    "orders": "kept (order numbers stay unless drop_shop_ids)",
    "order_lines": "kept",
    "customer_snapshots": "kept",
    "offer_deliveries": "kept; the planned message text is cleared",
    "outbox": "the replies queued or sent to their chat are deleted",
    "inbound_updates": "payload of the customer's raw Telegram updates replaced",
    "audit_log": "kept (append-only: ids and counts, no personal data)",
}


class UnknownCustomer(LookupError):
    """There is no customer with this id."""


# --- export ------------------------------------------------------------------------------


def export_customer_data(session: Session, customer_id: int, *, now: datetime) -> dict[str, Any]:
    """Everything stored about one customer, JSON-serialisable (times as ISO 8601 strings,
    money as decimal strings). The export is recorded in the audit log (actor "customer").

    Staff identities are not part of it: conversations and messages only say whether a
    member of staff was involved, the access log only which kind of actor read the data.
    """
    customer = _customer(session, customer_id)
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": now,
        "customer": _plain(customer),
        "consents": [_plain(r) for r in _of(session, ConsentRecord, customer_id)],
        "conversations": [
            {**_plain(r, drop="assigned_staff_id"), "staff_assigned": bool(r.assigned_staff_id)}
            for r in _of(session, Conversation, customer_id)
        ],
        "messages": [
            {**_plain(r, drop="staff_member_id"), "from_staff": bool(r.staff_member_id)}
            for r in _of(session, Interaction, customer_id)
        ],
        "orders": [
            {**_plain(r), "lines": _order_lines(session, r)}
            for r in _of(session, Order, customer_id)
        ],
        "surveys": [_plain(r) for r in _of(session, Survey, customer_id)],
        "offers": _offers(session, customer_id),
        "scores": [_plain(r) for r in _of(session, CustomerSnapshot, customer_id)],
        "access_log": [
            {"at": r.at, "action": r.action, "by": r.actor}
            for r in _of(session, AuditEntry, customer_id)
        ],
        "telegram_updates": [
            {
                "update_id": u.update_id,
                "kind": u.kind,
                "received_at": u.received_at,
                "payload": u.payload,
            }
            for u in _raw_updates(session, customer)
        ],
    }
    sizes = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    audit.record(
        session,
        action=AuditAction.EXPORTED,
        now=now,
        actor="customer",
        customer_id=customer_id,
        detail={"what": "customer data", **sizes},
    )
    return _jsonable(data)


def customer_data_json(data: dict[str, Any]) -> bytes:
    """The export as an indented UTF-8 JSON document."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def export_filename(now: datetime) -> str:
    """A file name for the export, e.g. ``my-data-2026-11-29.json`` (no name or id in it)."""
    return f"my-data-{now:%Y-%m-%d}.json"


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UnknownCustomer(f"no customer #{customer_id}")
    return customer


def _of(session: Session, model: Any, customer_id: int) -> Sequence[Any]:
    """The rows of ``model`` about this customer, in the order they were stored."""
    return session.exec(
        select(model).where(model.customer_id == customer_id).order_by(col(model.id))
    ).all()


def _order_lines(session: Session, order: Order) -> list[dict[str, Any]]:
    rows = session.exec(
        select(OrderLine, Product)
        .join(Product, col(Product.id) == OrderLine.product_id, isouter=True)
        .where(OrderLine.order_id == order.id)
        .order_by(col(OrderLine.id))
    ).all()
    return [
        {
            "product_sku": product.sku if product else None,
            "product": product.name if product else None,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for line, product in rows
    ]


def _offers(session: Session, customer_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(OfferDelivery, Offer)
        .join(Offer, col(Offer.id) == OfferDelivery.offer_id)
        .where(OfferDelivery.customer_id == customer_id)
        .order_by(col(OfferDelivery.id))
    ).all()
    return [
        {
            "offer": offer.code,
            "title": offer.title,
            "text": offer.text,
            "held_out": delivery.is_holdout,
            "created_at": delivery.created_at,
            "sent_at": delivery.sent_at,
            "redeemed_at": delivery.redeemed_at,
        }
        for delivery, offer in rows
    ]


def _plain(row: SQLModel, *, drop: str = "") -> dict[str, Any]:
    """A row's columns as a dict (without the column ``drop``)."""
    return {k: v for k, v in row.model_dump().items() if k != drop}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


# --- raw Telegram updates ----------------------------------------------------------------


def _raw_updates(session: Session, customer: Customer) -> list[InboundUpdate]:
    """The stored raw updates sent by this customer's Telegram account (by its user id
    anywhere in the update as a user or chat id), and those behind their interactions."""
    update_ids = session.exec(
        select(Interaction.telegram_update_id).where(
            Interaction.customer_id == customer.id,
            col(Interaction.telegram_update_id).is_not(None),
        )
    ).all()
    found = {u.update_id: u for u in _by_update_id(session, sorted({i for i in update_ids if i}))}
    user_id = customer.telegram_user_id
    if user_id is not None:
        # The text of the JSON contains the id's digits: a cheap filter in the database,
        # confirmed on the parsed payload.
        candidates = session.exec(
            select(InboundUpdate)
            .where(sa.cast(col(InboundUpdate.payload), sa.Text).like(f"%{user_id}%"))
            .order_by(col(InboundUpdate.update_id))
        ).all()
        found.update((u.update_id, u) for u in candidates if _mentions_user(u.payload, user_id))
    return [found[k] for k in sorted(found)]


def _by_update_id(session: Session, ids: list[int]) -> Sequence[InboundUpdate]:
    rows: list[InboundUpdate] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += session.exec(select(InboundUpdate).where(col(InboundUpdate.update_id).in_(chunk)))
    return rows


def _mentions_user(payload: Any, user_id: int) -> bool:
    """Whether a Telegram update holds this user: a user or chat object with this ``id``,
    or a shared contact with this ``user_id``."""
    if isinstance(payload, dict):
        if payload.get("id") == user_id or payload.get("user_id") == user_id:
            return True
        return any(_mentions_user(v, user_id) for v in payload.values())
    if isinstance(payload, list):
        return any(_mentions_user(v, user_id) for v in payload)
    return False


# --- erasure -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetReport:
    """What erasure changed; all zero (and ``already_forgotten``) when run a second time."""

    customer_id: int
    messages: int
    survey_comments: int
    consent_records: int
    raw_updates: int
    conversations_closed: int
    profile_fields: int
    order_numbers: int = 0
    queued_messages: int = 0
    already_forgotten: bool = False

    def counts(self) -> dict[str, int]:
        return {
            k: v for k, v in asdict(self).items() if k not in {"customer_id", "already_forgotten"}
        }

    @property
    def changed(self) -> bool:
        return any(self.counts().values())


def forget_customer(
    session: Session,
    customer_id: int,
    *,
    now: datetime,
    actor: str = "customer",
    actor_telegram_id: int | None = None,
    drop_shop_ids: bool = False,
) -> ForgetReport:
    """Erase a customer's personal data in the caller's transaction, keeping the numbers
    (see the module docstring), and record it in the audit log.

    ``actor`` is "customer" when they asked for it in the chat; staff erasing on request
    pass ``actor="staff"`` and their ``actor_telegram_id``. Running it again changes nothing
    and adds no second audit entry.
    """
    customer = _customer(session, customer_id)
    already = (
        session.exec(
            select(AuditEntry.id).where(
                AuditEntry.customer_id == customer_id, AuditEntry.action == AuditAction.DELETED
            )
        ).first()
        is not None
    )
    # Found before the Telegram ids are cleared, which is how they are found.
    raw_updates = _raw_updates(session, customer)
    queued = _drop_queued_messages(session, customer)
    for update in raw_updates:
        update.payload = {"removed": FORGOTTEN}
        update.error = None
        session.add(update)
    messages = mask_interactions(
        session,
        col(Interaction.customer_id) == customer_id,
        marker=FORGOTTEN,
        telegram_update_id=None,
        telegram_chat_id=None,
        telegram_message_id=None,
    )
    comments = mask_survey_comments(
        session, col(Survey.customer_id) == customer_id, marker=FORGOTTEN
    )
    consents = _delete_consents(session, customer_id)
    closed = _close_conversations(session, customer_id, now=now)
    fields = _clear_profile(customer, drop_shop_ids=drop_shop_ids)
    orders = _drop_order_numbers(session, customer_id) if drop_shop_ids else 0
    session.add(customer)
    session.flush()
    report = ForgetReport(
        customer_id=customer_id,
        messages=messages,
        survey_comments=comments,
        consent_records=consents,
        raw_updates=len(raw_updates),
        conversations_closed=closed,
        profile_fields=fields,
        order_numbers=orders,
        queued_messages=queued,
        already_forgotten=already,
    )
    if report.changed or not already:
        audit.record(
            session,
            action=AuditAction.DELETED,
            now=now,
            actor=actor,
            actor_telegram_id=actor_telegram_id,
            customer_id=customer_id,
            detail={**report.counts(), "shop_ids_dropped": drop_shop_ids},
        )
    return report


def _drop_queued_messages(session: Session, customer: Customer) -> int:
    """Replies in the outbox for their chat go (sent ones keep no text, pending ones would
    greet an erased customer), and planned offer texts are cleared."""
    assert customer.id is not None
    session.execute(
        sa.update(OfferDelivery)
        .where(col(OfferDelivery.customer_id) == customer.id)
        .values(message=None)
        .execution_options(synchronize_session=False)
    )
    if customer.telegram_chat_id is None:
        return 0
    result = session.execute(
        sa.delete(OutboxMessage)
        .where(col(OutboxMessage.chat_id) == customer.telegram_chat_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _delete_consents(session: Session, customer_id: int) -> int:
    rows = session.exec(
        select(ConsentRecord).where(ConsentRecord.customer_id == customer_id)
    ).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def _close_conversations(session: Session, customer_id: int, *, now: datetime) -> int:
    """Open conversations are closed: with the chat id gone, nobody can answer them."""
    rows = session.exec(
        select(Conversation).where(
            Conversation.customer_id == customer_id,
            Conversation.status != ConversationStatus.RESOLVED,
        )
    ).all()
    for conversation in rows:
        conversation.status = ConversationStatus.RESOLVED
        conversation.resolved_at = now
        conversation.updated_at = now
        session.add(conversation)
    return len(rows)


def _clear_profile(customer: Customer, *, drop_shop_ids: bool) -> int:
    """Set every clearable profile column to None; returns how many held something."""
    kept = CUSTOMER_KEPT if drop_shop_ids else CUSTOMER_KEPT | SHOP_IDS
    cleared = 0
    for column in Customer.__table__.columns:  # type: ignore[attr-defined]
        if column.name in kept or not column.nullable:
            continue
        if getattr(customer, column.name) is not None:
            setattr(customer, column.name, None)
            cleared += 1
    return cleared


def _drop_order_numbers(session: Session, customer_id: int) -> int:
    orders = session.exec(
        select(Order).where(
            Order.customer_id == customer_id, ~col(Order.external_id).startswith("erased-")
        )
    ).all()
    for order in orders:
        order.external_id = f"erased-{order.id}"
        session.add(order)
    return len(orders)
