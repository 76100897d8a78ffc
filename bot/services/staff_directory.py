"""Who is staff: the configured allowlist, plus the members admins add in the chat.

``CRMBOT_STAFF_IDS`` / ``CRMBOT_ADMIN_IDS`` are the base and can only be changed in the
configuration. Admins add and remove further agents or admins with ``/staff``; those are
read from ``staff_members`` at most every ``ttl`` seconds, so that every worker process
agrees within that time without a database query per message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from db import queries
from db.engine import session_scope
from db.models import StaffMember, StaffRole


class StaffDirectory:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._agents: frozenset[int] = frozenset()
        self._admins: frozenset[int] = frozenset()
        self._generation = 0

    def added(self) -> tuple[frozenset[int], frozenset[int]]:
        """(agents, admins) added in the chat, as of at most ``ttl`` seconds ago.

        The lock guards the cached sets only, never the query: a caller inside a database
        session (holding SQLite's turn, :func:`db.engine.session_scope`) must not wait for a
        caller that holds this lock and waits for that turn."""
        with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._ttl:
                return self._agents, self._admins
            generation = self._generation
        with session_scope(self._factory) as session:
            rows = queries.staff_members(session=session)
        chat = [r for r in rows if r.source == queries.STAFF_FROM_CHAT]
        agents = frozenset(r.telegram_user_id for r in chat)
        admins = frozenset(r.telegram_user_id for r in chat if r.role == StaffRole.ADMIN)
        with self._lock:
            if generation == self._generation:  # not invalidated while we read
                self._agents, self._admins, self._loaded_at = agents, admins, now
        return agents, admins

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = None
            self._generation += 1


STAFF_USAGE = "Usage: /staff, /staff add TELEGRAM_ID [agent|admin], /staff remove TELEGRAM_ID"


class StaffChangeError(ValueError):
    """The change cannot be made; the message says why, for the admin."""


def list_staff(session: Session) -> str:
    rows = queries.staff_members(session=session)
    if not rows:
        return "No staff yet."
    lines = ["👥 Staff"]
    for row in rows:
        name = f" {row.name}" if row.name else ""
        where = "configured" if row.source == queries.STAFF_FROM_CONFIG else "added in chat"
        lines.append(f"• {row.telegram_user_id}{name}: {row.role} ({where})")
    lines.append(STAFF_USAGE)
    return "\n".join(lines)


def change_staff(session: Session, args: str, *, now: datetime) -> tuple[str, int, str]:
    """``add ID [role]`` or ``remove ID``: returns (the answer, the user id, the change)."""
    parts = args.split()
    if len(parts) not in (2, 3) or parts[0] not in ("add", "remove") or not parts[1].isdigit():
        raise StaffChangeError(STAFF_USAGE)
    verb, user_id = parts[0], int(parts[1])
    role = parts[2].lower() if len(parts) == 3 else StaffRole.AGENT
    if (verb == "remove" and len(parts) == 3) or role not in (StaffRole.AGENT, StaffRole.ADMIN):
        raise StaffChangeError(STAFF_USAGE)
    member = session.exec(
        select(StaffMember).where(StaffMember.telegram_user_id == user_id)
    ).first()
    configured = member is not None and member.source == queries.STAFF_FROM_CONFIG
    if configured and member is not None and member.active:
        raise StaffChangeError(
            f"{user_id} is configured in CRMBOT_STAFF_IDS / CRMBOT_ADMIN_IDS: change it there."
        )
    if verb == "remove":
        if member is None or not member.active:
            raise StaffChangeError(f"{user_id} is not on the staff list.")
        member.active = False
        session.add(member)
        return f"✅ {user_id} is no longer staff.", user_id, "removed"
    member = member or StaffMember(telegram_user_id=user_id, created_at=now)
    member.active = True
    member.role = role
    member.source = queries.STAFF_FROM_CHAT
    session.add(member)
    return f"✅ {user_id} is now staff ({role}).", user_id, f"added as {role}"
