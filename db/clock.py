"""Time helpers. Every timestamp in crmbot is an aware datetime in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from db.types import as_utc

__all__ = ["as_utc", "utcnow"]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
