"""Linking a Telegram user to a customer known by an external (shop) id.

Imported customers have an ``external_id`` and no Telegram identity; a customer who chats
first gets a row with a ``telegram_user_id`` and no ``external_id``. :func:`link_customer`
joins the two:

- If the Telegram user has no customer row yet, the imported row simply gets the
  ``telegram_user_id``.
- If the Telegram user already has its own row (created by chatting), that row is merged
  into the imported one, which survives (its id is the one orders point to). Every row of
  every table that refers to ``customers.id`` (interactions, conversations, orders,
  surveys, offer deliveries, snapshots, and any table added later) is moved to the
  surviving customer. Where a unique constraint would break (e.g. both customers have a
  snapshot for the same date, or a delivery of the same offer), the surviving customer's
  row is kept and the chat row's one is dropped. Profile fields from Telegram (ids, names,
  username, language) and the marketing consent come from the chat row, since the person
  gave them in the chat; fields the chat row does not have are kept. First seen / created
  take the earlier, last seen the later value. The chat row is then deleted.
- Linking an external id that is linked to another Telegram user, or a Telegram user
  linked to another external id, is refused (:class:`LinkError`).

It all happens in the caller's transaction: nothing is half-merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from db.models import Customer

_TELEGRAM_FIELDS = (
    "telegram_chat_id",
    "first_name",
    "last_name",
    "username",
    "language_code",
    "email",
)


class LinkError(ValueError):
    """The link is not possible; the message says why."""


@dataclass
class LinkResult:
    """What :func:`link_customer` did."""

    customer_id: int
    merged_customer_id: int | None = None
    moved: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    already_linked: bool = False


def link_customer(*, session: Session, external_id: str, telegram_user_id: int) -> LinkResult:
    """Give the customer with ``external_id`` the Telegram identity ``telegram_user_id``,
    merging the customer row created by chatting into it (see the module docstring)."""
    imported = _by_external_id(session, external_id)
    if imported.telegram_user_id == telegram_user_id:
        return LinkResult(customer_id=_id(imported), already_linked=True)
    if imported.telegram_user_id is not None:
        raise LinkError(
            f"customer {external_id!r} is already linked to Telegram user "
            f"{imported.telegram_user_id}"
        )
    chat = session.exec(
        select(Customer).where(Customer.telegram_user_id == telegram_user_id)
    ).first()
    if chat is None:
        imported.telegram_user_id = telegram_user_id
        session.add(imported)
        session.flush()
        return LinkResult(customer_id=_id(imported))
    if chat.external_id is not None:
        raise LinkError(
            f"Telegram user {telegram_user_id} is already linked to customer {chat.external_id!r}"
        )
    return _merge(session, keep=imported, gone=chat)


def _by_external_id(session: Session, external_id: str) -> Customer:
    customer = session.exec(select(Customer).where(Customer.external_id == external_id)).first()
    if customer is None:
        raise LinkError(f"no customer with external id {external_id!r}")
    return customer


def _id(customer: Customer) -> int:
    assert customer.id is not None
    return customer.id


def _merge(session: Session, *, keep: Customer, gone: Customer) -> LinkResult:
    result = LinkResult(customer_id=_id(keep), merged_customer_id=_id(gone))
    for table, column in _customer_references():
        dropped = _drop_colliding(session, table, column, keep=_id(keep), gone=_id(gone))
        moved = _rowcount(
            session, sa.update(table).where(column == _id(gone)).values({column.name: _id(keep)})
        )
        if dropped:
            result.dropped[table.name] = dropped
        if moved:
            result.moved[table.name] = moved
    session.execute(sa.delete(Customer).where(col(Customer.id) == _id(gone)))
    session.expunge(gone)  # its loaded attributes stay readable below
    _take_profile(keep, gone)
    session.add(keep)
    session.flush()
    return result


def _customer_references() -> list[tuple[sa.Table, sa.Column]]:
    """Every (table, column) with a foreign key to ``customers.id``."""
    customers = Customer.__table__  # type: ignore[attr-defined]
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is customers and table is not customers:
                found.append((table, fk.parent))
    return found


def _drop_colliding(
    session: Session, table: sa.Table, column: sa.Column, *, keep: int, gone: int
) -> int:
    """Delete ``gone``'s rows that would break a unique constraint once moved to ``keep``."""
    dropped = 0
    for columns in _unique_column_sets(table):
        if column.name not in columns:
            continue
        twin = table.alias("twin")
        same = [twin.c[name] == table.c[name] for name in columns if name != column.name]
        clash = sa.exists().where(twin.c[column.name] == keep, *same)
        dropped += _rowcount(session, sa.delete(table).where(column == gone, clash))
    return dropped


def _unique_column_sets(table: sa.Table) -> list[set[str]]:
    """The column names of each unique constraint and unique index of ``table``."""
    found = [
        {c.name for c in constraint.columns}
        for constraint in table.constraints
        if isinstance(constraint, sa.UniqueConstraint)
    ]
    found += [{c.name for c in index.columns} for index in table.indexes if index.unique]
    return found


def _rowcount(session: Session, statement: sa.Executable) -> int:
    """Run a DML statement in the session's transaction; the number of rows it touched."""
    return int(session.connection().execute(statement).rowcount)


def _take_profile(keep: Customer, chat: Customer) -> None:
    """Copy the chat row's Telegram profile and consent onto the surviving customer."""
    keep.telegram_user_id = chat.telegram_user_id
    for name in _TELEGRAM_FIELDS:
        if getattr(chat, name) is not None:
            setattr(keep, name, getattr(chat, name))
    if chat.marketing_consent is not None:
        keep.marketing_consent = chat.marketing_consent
        keep.marketing_consent_at = chat.marketing_consent_at
    keep.first_seen_at = min(keep.first_seen_at, chat.first_seen_at)
    keep.last_seen_at = max(keep.last_seen_at, chat.last_seen_at)
    keep.created_at = min(keep.created_at, chat.created_at)
