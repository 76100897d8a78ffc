"""Fast bulk inserts of plain tuples, inside the caller's transaction.

SQLite gets the driver's ``executemany`` (one prepared statement, rows bound in C);
PostgreSQL gets ``COPY … FROM STDIN``. Values must already be in database form: numbers,
strings, None, ``date`` objects, and timestamps as aware datetimes (converted here).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"  # what SQLAlchemy's SQLite DateTime writes


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(SQLITE_TIMESTAMP)
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()  # dates
    return value


def insert_rows(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``."""
    if not rows:
        return
    connection = session.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" for _ in columns)
        dates = [i for i, v in enumerate(rows[0]) if hasattr(v, "isoformat")]
        prepared = [tuple(_sqlite_value(v) for v in row) for row in rows] if dates else list(rows)
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", prepared)
        return
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(f":{c}" for c in columns)
    connection.exec_driver_sql(
        f"INSERT INTO {table} ({names}) VALUES ({marks})",
        [dict(zip(columns, row, strict=True)) for row in rows],
    )
