"""The audit trail: who read or changed which customer's data, and when.

Entries are only ever appended (:func:`record`); nothing in crmbot edits or deletes them,
and the database refuses to (triggers from migration 0003). ``/audit`` shows them to
admins only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from db.models import AuditEntry, StaffMember

SYSTEM = "system"
PAGE = 20


def record(
    session: Session,
    *,
    action: str,
    now: datetime,
    actor_telegram_id: int | None = None,
    customer_id: int | None = None,
    detail: dict[str, Any] | None = None,
    actor: str = "staff",
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the action itself)."""
    member_id = None
    if actor_telegram_id is not None:
        member_id = session.exec(
            select(StaffMember.id).where(StaffMember.telegram_user_id == actor_telegram_id)
        ).first()
    entry = AuditEntry(
        at=now,
        actor=actor,
        actor_telegram_id=actor_telegram_id,
        staff_member_id=member_id,
        action=action,
        customer_id=customer_id,
        detail=detail,
    )
    session.add(entry)
    return entry


def entries(
    session: Session,
    *,
    customer_id: int | None = None,
    actor_telegram_id: int | None = None,
    limit: int = PAGE,
) -> Sequence[AuditEntry]:
    """The newest entries about a customer or by a staff member, newest first."""
    query = select(AuditEntry)
    if customer_id is not None:
        query = query.where(AuditEntry.customer_id == customer_id)
    if actor_telegram_id is not None:
        query = query.where(AuditEntry.actor_telegram_id == actor_telegram_id)
    return session.exec(
        query.order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()).limit(limit)
    ).all()


AUDIT_USAGE = "Usage: /audit customer ID or /audit staff TELEGRAM_ID"


def parse_audit_args(args: str) -> tuple[str, int] | None:
    """``customer 12`` / ``staff 4242`` (a bare number means a customer id)."""
    parts = args.replace("#", " ").split()
    if len(parts) == 1 and parts[0].isdigit():
        return "customer", int(parts[0])
    if len(parts) == 2 and parts[0].lower() in {"customer", "staff"} and parts[1].isdigit():
        return parts[0].lower(), int(parts[1])
    return None


def render(rows: Sequence[AuditEntry], *, title: str) -> str:
    if not rows:
        return f"{title}: no entries."
    lines = [f"🔎 {title} (newest {len(rows)}):"]
    for row in rows:
        who = row.actor if row.actor_telegram_id is None else f"staff {row.actor_telegram_id}"
        whom = f" customer #{row.customer_id}" if row.customer_id is not None else ""
        extra = ""
        if row.detail:
            extra = " " + ", ".join(f"{k}={v}" for k, v in sorted(row.detail.items()))
        lines.append(f"{row.at:%Y-%m-%d %H:%M} UTC · {who} · {row.action}{whom}{extra}")
    return "\n".join(lines)
