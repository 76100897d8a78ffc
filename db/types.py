"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

_ESC = "\uffff"  # a Unicode noncharacter: never part of real text


def as_utc(moment: datetime) -> datetime:
    """Convert to aware UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp column that accepts only aware datetimes and returns them in UTC.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time, which is read back
    as UTC. Naive datetimes are rejected, so local times never slip in unnoticed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime given; use db.clock.utcnow() or an aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


def escape_nul(text: str) -> str:
    """Reversibly remove NUL characters, which PostgreSQL text cannot hold."""
    if "\x00" not in text and _ESC not in text:
        return text
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def unescape_nul(text: str) -> str:
    if _ESC not in text:
        return text
    out, chars = [], iter(text)
    for ch in chars:
        if ch == _ESC:
            nxt = next(chars, "")
            out.append("\x00" if nxt == "0" else nxt)
        else:
            out.append(ch)
    return "".join(out)


class ExactText(sa.TypeDecorator[str]):
    """Text stored exactly as sent, NUL characters included, on every database.

    PostgreSQL rejects NUL in text, so there (only) NUL is written as an escape pair and
    read back as NUL; any other text is stored unchanged.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return escape_nul(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or dialect.name != "postgresql":
            return value
        return unescape_nul(value)
