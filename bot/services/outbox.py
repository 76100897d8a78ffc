"""The outbox: replies are stored before they are sent and marked once Telegram took them.

A channel adapter calls :func:`enqueue` with the replies a use case returned, sends each
(lease held), and reports back with :func:`progress`, :func:`sent`, :func:`retry_later` or
:func:`failed`. Rows whose lease ran out without a report (the process died, or sending
failed for a while) come back from :func:`due`, oldest first, so pending work resumes
after a restart. Each row is marked sent exactly once; a reply is sent twice only if the
process dies between Telegram accepting it and the mark, a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.services.messages import Button, Reply
from db import queries
from db.models import OutboxMessage, OutboxStatus

# While one sender works on a row, no other picks it up.
LEASE = timedelta(seconds=60)
# After this many failed rounds a reply is given up (marked failed, kept for inspection).
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class Outgoing:
    """A stored reply: its outbox id, the reply, and how many of its steps are done."""

    outbox_id: int
    reply: Reply
    steps_done: int = 0


def _to_row(reply: Reply, now: datetime) -> OutboxMessage:
    payload: dict[str, Any] = {
        "text": reply.text,
        "buttons": [[[b.label, b.data] for b in row] for row in reply.buttons],
        "interaction_id": reply.interaction_id,
        "caption": reply.caption,
        "edit_message_id": reply.edit_message_id,
        "filename": reply.filename,
        "has_photo": reply.photo is not None,
    }
    return OutboxMessage(
        chat_id=reply.chat_id,
        reply=payload,
        attachment=reply.photo if reply.photo is not None else reply.document,
        next_attempt_at=now + LEASE,
        created_at=now,
    )


def _to_reply(row: OutboxMessage) -> Reply:
    """The stored reply, with its ``outbox_id``."""
    payload = row.reply
    photo = row.attachment if payload.get("has_photo") else None
    document = row.attachment if not payload.get("has_photo") else None
    return Reply(
        row.chat_id,
        str(payload.get("text") or ""),
        buttons=[[Button(label, data) for label, data in r] for r in payload.get("buttons") or []],
        interaction_id=payload.get("interaction_id"),
        photo=photo,
        caption=payload.get("caption"),
        edit_message_id=payload.get("edit_message_id"),
        document=document,
        filename=payload.get("filename"),
        outbox_id=row.id,
    )


def enqueue(
    session: Session, replies: list[Reply], *, now: datetime, update_id: int | None = None
) -> list[Outgoing]:
    """Store replies (leased to the caller, who sends them now); ``update_id`` is the
    update they answer. Each reply learns its ``outbox_id``."""
    rows = [_to_row(reply, now) for reply in replies]
    for row in rows:
        row.update_id = update_id
    session.add_all(rows)
    session.flush()
    for row, reply in zip(rows, replies, strict=True):
        reply.outbox_id, reply.leased = row.id, True
    return [Outgoing(row.id or 0, reply) for row, reply in zip(rows, replies, strict=True)]


def replies_to_update(session: Session, update_id: int) -> list[Reply] | None:
    """None if no replies to this update were stored (its answer was not committed); else
    those not sent yet, in order, each with its ``outbox_id``."""
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.update_id == update_id)
        .order_by(col(OutboxMessage.id))
    ).all()
    if not rows:
        return None
    return [_to_reply(row) for row in rows if row.status == OutboxStatus.PENDING]


def take(session: Session, outbox_ids: list[int], *, now: datetime) -> list[Outgoing]:
    """These stored replies, still pending, leased to the caller (who sends them now), with
    the steps already done; in the order of ``outbox_ids``."""
    if not outbox_ids:
        return []
    rows = {
        row.id: row
        for row in session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.id).in_(outbox_ids),
                OutboxMessage.status == OutboxStatus.PENDING,
            )
        ).all()
    }
    return _lease(session, [rows[i] for i in outbox_ids if i in rows], now=now)


def due(session: Session, *, now: datetime, limit: int = 100) -> list[Outgoing]:
    """Pending replies whose lease ran out, oldest first; they are leased again."""
    rows = session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            col(OutboxMessage.next_attempt_at) <= now,
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    ).all()
    return _lease(session, list(rows), now=now)


def _lease(session: Session, rows: list[OutboxMessage], *, now: datetime) -> list[Outgoing]:
    """Lease ``rows`` to the caller, who sends them now; as Outgoing, steps done included."""
    for row in rows:
        row.next_attempt_at = now + LEASE
        session.add(row)
    session.flush()
    return [Outgoing(row.id or 0, _to_reply(row), row.steps_done) for row in rows]


def _update(session: Session, outbox_id: int, **values: Any) -> None:
    session.execute(
        sa.update(OutboxMessage).where(col(OutboxMessage.id) == outbox_id).values(**values)
    )


def progress(session: Session, outbox_id: int, *, steps_done: int) -> None:
    _update(session, outbox_id, steps_done=steps_done)


def sent(
    session: Session,
    outbox_id: int,
    *,
    now: datetime,
    interaction_id: int | None = None,
    message_id: int | None = None,
) -> None:
    """Mark sent; the text and file are dropped (the interaction keeps what was said, and
    learns the Telegram message id of its first part)."""
    _update(session, outbox_id, status=OutboxStatus.SENT, sent_at=now, attachment=None, reply={})
    if interaction_id is not None and message_id is not None:
        queries.set_interaction_message_id(
            session=session, interaction_id=interaction_id, telegram_message_id=message_id
        )


def failed(session: Session, outbox_id: int, *, error: str) -> None:
    _update(session, outbox_id, status=OutboxStatus.FAILED, last_error=error[:500])


def retry_later(session: Session, outbox_id: int, *, error: str, now: datetime) -> bool:
    """Count a failed round and schedule the next (backing off); False once given up."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        return False
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = OutboxStatus.FAILED
    else:
        row.next_attempt_at = now + timedelta(seconds=min(300, 2**row.attempts))
    session.add(row)
    return row.status == OutboxStatus.PENDING
