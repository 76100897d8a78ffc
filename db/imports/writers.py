"""Bulk writes of an import, inside the caller's transaction.

Each statement gets a whole chunk as one JSON array parameter and inserts it with
``INSERT … SELECT … FROM`` the array (``ON CONFLICT (external_id) DO NOTHING`` for orders).
The database then does the per-row work in C, and the GIL is free meanwhile (SQLite's
step releases it; PostgreSQL works in its own process), so the file is parsed in parallel
(see :mod:`db.imports.chunks`). ``executemany`` would take the GIL back for every row.

SQLite reads the array with ``json_each``; timestamps are written exactly as SQLAlchemy's
SQLite ``DateTime`` writes them (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) and totals as numeric
text, which the NUMERIC column stores as the same INTEGER/REAL values SQLAlchemy's float
binding gives. PostgreSQL reads it with ``jsonb_array_elements`` and casts.

No method commits: the SQLAlchemy session that owns the connection decides.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa

from db.imports.fields import CENT, canonical_timestamp
from db.imports.rows import OrderRow


class ExistingOrder(NamedTuple):
    """An order already in the database, in the canonical form of :class:`OrderRow`."""

    id: int
    customer: str | None
    ordered_at: str
    total: Decimal
    currency: str
    status: str


class ChunkResult(NamedTuple):
    """What writing one chunk did: customers created, orders that were there before."""

    customers_created: int
    existing: dict[str, ExistingOrder]


class LineRecord(NamedTuple):
    order_id: int
    product_id: int
    quantity: int
    unit_price: Decimal


class BulkWriter(ABC):
    """The database operations of an import; one instance per transaction."""

    # The parts of a statement that differ between the databases.
    rows_from: str  # a FROM item yielding one row ``r`` per array element, column ``v``
    param: str  # the parameter placeholder
    _true = "true"

    def __init__(self, connection: sa.Connection, *, now: datetime) -> None:
        self.connection = connection
        self.dbapi: Any = connection.connection.driver_connection
        self.now = canonical_timestamp(now)

    @staticmethod
    def for_connection(connection: sa.Connection, *, now: datetime) -> BulkWriter:
        """The writer for the connection's database."""
        name = connection.dialect.name
        if name == "sqlite":
            return SqliteWriter(connection, now=now)
        if name == "postgresql":
            return PostgresWriter(connection, now=now)
        raise NotImplementedError(f"bulk import is not implemented for {name}")

    def prepare(self) -> None:  # noqa: B027  (an optional hook)
        """Tune the connection for a bulk load; :meth:`restore` undoes it."""

    def restore(self) -> None:  # noqa: B027
        """Undo :meth:`prepare` (called after commit or rollback)."""

    def defer_indexes(self) -> None:  # noqa: B027
        """Drop secondary order indexes until :meth:`finish` (only where that is safe)."""

    def finish(self) -> None:  # noqa: B027
        """Recreate what :meth:`defer_indexes` dropped."""

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.dbapi.cursor()
        cursor.execute(sql, params)
        return cursor

    def max_id(self, table: str) -> int:
        """The highest id in ``table`` (0 if empty): rows above it are new in this import."""
        return int(self._run(f"SELECT max(id) FROM {table}").fetchone()[0] or 0)

    @abstractmethod
    def _texts(self, values: Sequence[str]) -> tuple[str, Any]:
        """SQL for "the set of these texts" after ``IN``, and its parameter."""

    @abstractmethod
    def _timestamp(self, expression: str) -> str:
        """SQL turning a canonical timestamp text into the column's value."""

    # --- orders --------------------------------------------------------------------------

    def write_chunk(self, rows: Sequence[OrderRow], *, known: str, named: str) -> ChunkResult:
        """Create the chunk's unknown customers, then insert its new orders.

        ``known`` and ``named`` hold the chunk's rows as JSON (see
        :class:`db.imports.chunks.Chunk`): ``[order id, customer, status, ordered_at,
        total, currency]``, the customer a database id in ``known``, an external id in
        ``named``. Customers of ``named`` not in the database are created, first and last
        seen being their first and last order in the chunk. Orders whose id is taken keep
        the stored version; they are returned.
        """
        ts = self._timestamp
        before = self.max_id("orders")
        insert = (
            "INSERT INTO orders (external_id, customer_id, status, ordered_at, total, "
            "currency, updated_at) SELECT v->>0, {customer}, v->>2, "
            f"{ts('v->>3')}, {self._total('v->>4')}, v->>5, {ts(self.param)} "
            f"FROM {self.rows_from} WHERE true ON CONFLICT (external_id) DO NOTHING"
        )
        created = inserted = 0
        if named != "[]":
            created = self._run(
                "INSERT INTO customers (external_id, first_seen_at, last_seen_at, created_at) "
                f"SELECT v->>1, {ts('min(v->>3)')}, {ts('max(v->>3)')}, {ts(self.param)} "
                f"FROM {self.rows_from} WHERE true GROUP BY v->>1 "
                "ON CONFLICT (external_id) DO NOTHING",
                (self.now, named),
            ).rowcount
            by_name = "(SELECT id FROM customers WHERE external_id = v->>1)"
            inserted += self._run(insert.format(customer=by_name), (self.now, named)).rowcount
        if known != "[]":
            by_id = self._int("v->>1")
            inserted += self._run(insert.format(customer=by_id), (self.now, known)).rowcount
        existing = {} if inserted == len(rows) else self.existing_orders(rows, at_most=before)
        return ChunkResult(max(created, 0), existing)

    def _total(self, expression: str) -> str:
        return expression

    def existing_orders(
        self, rows: Sequence[OrderRow], *, at_most: int
    ) -> dict[str, ExistingOrder]:
        """The stored orders with the ids of ``rows`` and an id of at most ``at_most``."""
        texts, param = self._texts([r.external_id for r in rows])
        found = self._run(
            "SELECT o.external_id, o.id, c.external_id, o.ordered_at, o.total, o.currency, "
            "o.status FROM orders o JOIN customers c ON c.id = o.customer_id "
            f"WHERE o.external_id IN {texts} AND o.id <= {self.param}",
            (param, at_most),
        ).fetchall()
        return dict(_existing(row) for row in found)

    # --- products and lines --------------------------------------------------------------

    def find_ids(self, table: str, key: str, values: Sequence[str]) -> dict[str, int]:
        """``{value: id}`` for the rows of ``table`` whose ``key`` column is in ``values``."""
        if not values:
            return {}
        texts, param = self._texts(values)
        return dict(self._run(f"SELECT {key}, id FROM {table} WHERE {key} IN {texts}", (param,)))

    def order_ids(self, external_ids: Sequence[str]) -> dict[str, int]:
        return self.find_ids("orders", "external_id", external_ids)

    def product_prices(self, ids: Iterable[int]) -> dict[int, Decimal]:
        """The catalogue price of existing products."""
        id_list = list(ids)
        if not id_list:
            return {}
        rows = self.connection.execute(
            sa.text("SELECT id, price FROM products WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": id_list},
        )
        return {int(i): _money(p) for i, p in rows}

    def create_products(self, prices: dict[str, Decimal]) -> dict[str, int]:
        """Create products named after their SKU with these prices; returns their ids."""
        self._run(
            f"INSERT INTO products (sku, name, price, active) SELECT v->>0, v->>0, "
            f"{self._total('v->>1')}, {self._true} FROM {self.rows_from}",
            (json.dumps([(sku, str(price)) for sku, price in prices.items()]),),
        )
        return self.find_ids("products", "sku", list(prices))

    def insert_lines(self, lines: Sequence[LineRecord]) -> None:
        """Insert order lines."""
        self._run(
            "INSERT INTO order_lines (order_id, product_id, quantity, unit_price) "
            f"SELECT {self._int('v->>0')}, {self._int('v->>1')}, {self._int('v->>2')}, "
            f"{self._total('v->>3')} FROM {self.rows_from}",
            (json.dumps(lines, default=str),),
        )

    def _int(self, expression: str) -> str:
        return expression

    # --- at the end ----------------------------------------------------------------------

    def delete_orderless_customers(self, *, above_id: int) -> int:
        """Delete customers created by this import (id > ``above_id``) that got no order."""
        return int(
            self._run(
                f"DELETE FROM customers WHERE id > {self.param} AND NOT EXISTS "
                "(SELECT 1 FROM orders WHERE orders.customer_id = customers.id)",
                (above_id,),
            ).rowcount
        )

    def set_seen_from_orders(self, *, above_id: int) -> None:
        """Set first/last seen of customers with id > ``above_id`` to their order range."""
        self._run(
            "UPDATE customers SET first_seen_at = s.lo, last_seen_at = s.hi "
            "FROM (SELECT customer_id, min(ordered_at) AS lo, max(ordered_at) AS hi "
            f"      FROM orders WHERE customer_id > {self.param} GROUP BY customer_id) AS s "
            "WHERE customers.id = s.customer_id "
            "AND (customers.first_seen_at <> s.lo OR customers.last_seen_at <> s.hi)",
            (above_id,),
        )


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _existing(row: Sequence[Any]) -> tuple[str, ExistingOrder]:
    """(external id, order) from ``external_id, id, customer, ordered_at, total, currency,
    status`` as the driver returned them."""
    external_id, id_, customer, ordered_at, total, currency, status = row
    if isinstance(ordered_at, str):
        ordered_at = datetime.fromisoformat(ordered_at)
    return external_id, ExistingOrder(
        int(id_), customer, canonical_timestamp(ordered_at), _money(total), currency, status
    )


class SqliteWriter(BulkWriter):
    """sqlite3, with ``json_each``; a bigger cache and the write lock for the whole import."""

    rows_from = "(SELECT value AS v FROM json_each(?)) AS r"
    param = "?"
    _true = "1"
    _CACHE_KIB = 256 * 1024

    def prepare(self) -> None:
        """A bigger page cache, no foreign-key checks, and the write lock from the start.

        Foreign keys are not checked during the import (``PRAGMA foreign_keys`` only
        changes outside a transaction, hence before ``BEGIN IMMEDIATE``): every id the
        import writes was read or created in this same transaction, under the write lock,
        so the references hold by construction. :meth:`restore` turns the checks back on.
        """
        self._saved = {
            name: self.dbapi.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("cache_size", "foreign_keys", "threads")
        }
        self.dbapi.execute(f"PRAGMA cache_size = -{self._CACHE_KIB}")
        self.dbapi.execute("PRAGMA threads = 2")  # CREATE INDEX sorts with a helper thread
        self._deferred: list[str] = []
        self._big = False
        if not self.dbapi.in_transaction:
            self.dbapi.execute("PRAGMA foreign_keys = OFF")
            self.dbapi.execute("BEGIN IMMEDIATE")

    def restore(self) -> None:
        """Put the pragmas back; after a big import, shrink the write-ahead log again.

        A big import passes through the WAL file, which SQLite keeps at its largest size
        (gigabytes for millions of orders); a TRUNCATE checkpoint empties it (it does less,
        harmlessly, while other connections are reading).
        """
        for name, value in self._saved.items():
            self.dbapi.execute(f"PRAGMA {name} = {int(value)}")
        if self._big:
            self.dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def defer_indexes(self) -> None:
        """Drop the orders table's secondary indexes; :meth:`finish` creates them again.

        Building an index once at the end is much faster than growing it row by row. It is
        safe on SQLite: DDL is part of the transaction (a rollback or a crash restores the
        indexes), and other connections keep reading the committed state with its indexes.
        """
        found = self.dbapi.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'orders' AND sql IS NOT NULL AND sql NOT LIKE '%UNIQUE%'"
        ).fetchall()
        self._big = True
        for name, sql in found:
            self.dbapi.execute(f'DROP INDEX "{name}"')
            self._deferred.append(sql)

    def finish(self) -> None:
        while self._deferred:
            self.dbapi.execute(self._deferred.pop())

    def _texts(self, values: Sequence[str]) -> tuple[str, Any]:
        return "(SELECT value FROM json_each(?))", json.dumps(list(values))

    def _timestamp(self, expression: str) -> str:
        return expression


class PostgresWriter(BulkWriter):
    """psycopg 3, with ``jsonb_array_elements``; timestamps cast from UTC wall time."""

    rows_from = "jsonb_array_elements(%s::jsonb) AS r(v)"
    param = "%s"

    def _texts(self, values: Sequence[str]) -> tuple[str, Any]:
        return "(SELECT unnest(%s::text[]))", list(values)

    def _timestamp(self, expression: str) -> str:
        return f"(({expression})::timestamp AT TIME ZONE 'UTC')"

    def _total(self, expression: str) -> str:
        return f"({expression})::numeric"

    def _int(self, expression: str) -> str:
        return f"({expression})::bigint"
