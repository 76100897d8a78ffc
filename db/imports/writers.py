"""Bulk writes of an import, inside the caller's transaction.

Each statement gets a whole chunk as one JSON array parameter and inserts it with
``INSERT … SELECT … FROM`` the array (``ON CONFLICT (external_id) DO NOTHING`` for orders
and customers). The database then does the per-row work in C, and the GIL is free
meanwhile (SQLite's step releases it; PostgreSQL works in its own process), so the file is
parsed in parallel (see :mod:`db.imports.chunks`). ``executemany`` would take the GIL back
for every row.

The payloads are built by the reading thread (:func:`build_payload`): the rows as
``[order id, customer, ordered_at, total(, currency, status)]`` arrays, the customer as its
external id (the database looks up its id through the unique index), and the chunk's new
customers as ``[external id, first order, last order]`` arrays (of their orders in the
chunk; :meth:`BulkWriter.set_seen_from_orders` corrects those with orders in other
chunks). Timestamps are written exactly as SQLAlchemy's SQLite ``DateTime`` writes them
(``YYYY-MM-DD HH:MM:SS.ffffff``, UTC) and totals as numeric text, which the NUMERIC
column stores as the same INTEGER/REAL values SQLAlchemy's float binding gives. SQLite
reads the arrays with ``json_each``; PostgreSQL with ``jsonb_array_elements`` and casts.

No method commits: the SQLAlchemy session that owns the connection decides.
"""

from __future__ import annotations

import json
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import sqlalchemy as sa

from db.imports.fields import CENT, canonical_timestamp

if TYPE_CHECKING:
    from db.imports.batches import OrderColumns

_WORD = re.compile(r"[A-Za-z_]+").fullmatch


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


class Payload(NamedTuple):
    """A chunk as the database statements take it (see the module docstring).

    ``currency`` and ``status`` are the one value of every row, or None when the rows
    carry their own (then each row array has six fields instead of four).
    """

    rows: str
    customers: str
    size: int
    currency: str | None
    status: str | None


def build_payload(columns: OrderColumns, *, new_customers: list[str]) -> Payload:
    """The JSON payloads of ``columns``; ``new_customers`` are those to create if unknown.

    Ids without quotes, backslashes or control characters (the usual case) are joined into
    the JSON text directly; timestamps, totals, currencies and statuses are canonical
    texts already. Anything else goes through :func:`json.dumps`.
    """
    currency: str | None
    status: str | None
    if isinstance(columns.currency, str) and isinstance(columns.status, str):
        currency, status = columns.currency, columns.status
        fields: Iterable[tuple[str, ...]] = zip(
            columns.orders, columns.customers, columns.stamps, columns.totals, strict=True
        )
    else:
        currency = status = None
        per_row = [
            [value] * len(columns) if isinstance(value, str) else value
            for value in (columns.currency, columns.status)
        ]
        fields = zip(
            columns.orders, columns.customers, columns.stamps, columns.totals, *per_row,
            strict=True,
        )  # fmt: skip
    if not len(columns):
        rows = "[]"
    elif _plain_texts(columns.orders) and _plain_texts(columns.customers):
        rows = '[["' + '"],["'.join(map('","'.join, fields)) + '"]]'
    else:
        rows = json.dumps(list(fields), ensure_ascii=False)
    first, last = first_and_last(columns.customers, columns.stamps, new_customers)
    spans = zip(new_customers, first, last, strict=True)
    customers = json.dumps(list(spans), ensure_ascii=False)
    return Payload(rows, customers, len(columns), currency, status)


# Where the digits of a canonical timestamp are, and how they make its day (YYYYMMDD),
# second of the day and microsecond.
_STAMP_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25]
_STAMP_WEIGHTS = np.zeros((20, 3), dtype=np.int64)
_STAMP_WEIGHTS[:8, 0] = [10_000_000, 1_000_000, 100_000, 10_000, 1000, 100, 10, 1]
_STAMP_WEIGHTS[8:14, 1] = [36_000, 3600, 600, 60, 10, 1]
_STAMP_WEIGHTS[14:, 2] = [100_000, 10_000, 1000, 100, 10, 1]


def first_and_last(
    customers: list[str], stamps: list[str], names: list[str]
) -> tuple[list[str], list[str]]:
    """The earliest and the latest of ``stamps`` of each of ``names`` (which must occur in
    ``customers``, aligned with ``stamps``), without a Python loop over the rows.

    Canonical timestamps (``YYYY-MM-DD HH:MM:SS.ffffff``) become integers in the same
    order; numpy finds each customer's smallest and largest, and the row holding it.
    """
    if not names:
        return [], []
    n, width = len(stamps), 26
    joined = "".join(stamps)
    if len(joined) != n * width or not joined.isascii():  # never for canonical stamps
        spans = {name: (min(t), max(t)) for name, t in _stamps_by_name(customers, stamps)}
        return [spans[name][0] for name in names], [spans[name][1] for name in names]
    index = {name: i for i, name in enumerate(names)}
    codes = np.fromiter(map(index.get, customers, repeat(-1)), np.int64, count=n)
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(n, width)
    digits = chars[:, _STAMP_DIGITS] - ord("0")
    day, second, micro = (digits @ _STAMP_WEIGHTS).T  # YYYYMMDD, seconds of day, µs
    key = (day * 86_400 + second) * 1_000_000 + micro  # < 9.2e18 up to the year 9999
    rows = np.flatnonzero(codes >= 0)
    code, key = codes[rows], key[rows]
    low = np.full(len(names), np.iinfo(np.int64).max)
    high = np.full(len(names), -1, dtype=np.int64)
    np.minimum.at(low, code, key)
    np.maximum.at(high, code, key)
    first_row = np.empty(len(names), dtype=np.int64)
    last_row = np.empty(len(names), dtype=np.int64)
    at_low, at_high = key == low[code], key == high[code]
    first_row[code[at_low]] = rows[at_low]
    last_row[code[at_high]] = rows[at_high]
    return [stamps[i] for i in first_row.tolist()], [stamps[i] for i in last_row.tolist()]


def _stamps_by_name(customers: list[str], stamps: list[str]) -> Iterable[tuple[str, list[str]]]:
    grouped: dict[str, list[str]] = {}
    for name, stamp in zip(customers, stamps, strict=True):
        grouped.setdefault(name, []).append(stamp)
    return grouped.items()


def _plain_texts(values: list[str]) -> bool:
    """Whether every text can stand in a JSON string as it is."""
    joined = "".join(values)
    return joined.isprintable() and '"' not in joined and "\\" not in joined


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

    def begin(self, *, big: bool) -> None:  # noqa: B027  (an optional hook)
        """Tune the connection for a (``big``) bulk load; :meth:`restore` undoes it."""

    def restore(self) -> None:  # noqa: B027
        """Undo :meth:`begin` (called after commit or rollback)."""

    def defer_indexes(self) -> None:  # noqa: B027
        """Drop the secondary indexes of orders and customers until :meth:`finish` (only
        where that is safe)."""

    def finish(self, table: str) -> None:  # noqa: B027
        """Recreate the indexes of ``table`` that :meth:`defer_indexes` dropped."""

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.dbapi.cursor()
        cursor.execute(sql, params)
        return cursor

    def max_id(self, table: str) -> int:
        """The highest id in ``table`` (0 if empty): rows above it are new in this import."""
        return int(self._run(f"SELECT max(id) FROM {table}").fetchall()[0][0] or 0)

    @abstractmethod
    def _texts(self, values: Sequence[str]) -> tuple[str, Any]:
        """SQL for "the set of these texts" after ``IN``, and its parameter."""

    @abstractmethod
    def _timestamp(self, expression: str) -> str:
        """SQL turning a canonical timestamp text into the column's value."""

    # --- orders --------------------------------------------------------------------------

    def write_chunk(self, payload: Payload, order_ids: Sequence[str]) -> ChunkResult:
        """Create the chunk's new customers, then insert its new orders.

        Customers of ``payload.customers`` not in the database are created, first and last
        seen being their first and last order in the chunk. Orders whose id is taken keep
        the stored version; they are returned (``order_ids`` are the chunk's).
        """
        ts = self._timestamp
        before = self.max_id("orders")
        created = 0
        if payload.customers != "[]":
            created = self._run(
                "INSERT INTO customers (external_id, first_seen_at, last_seen_at, created_at) "
                f"SELECT v->>0, {ts('v->>1')}, {ts('v->>2')}, {ts(self.param)} "
                f"FROM {self.rows_from} WHERE true ON CONFLICT (external_id) DO NOTHING",
                (self.now, payload.customers),
            ).rowcount
        inserted = 0
        if payload.size:
            currency = _literal(payload.currency) if payload.currency else "v->>4"
            status = _literal(payload.status) if payload.status else "v->>5"
            inserted = self._run(
                "INSERT INTO orders (external_id, customer_id, status, ordered_at, total, "
                "currency, updated_at) SELECT v->>0, "
                "(SELECT id FROM customers WHERE external_id = v->>1), "
                f"{status}, {ts('v->>2')}, {self._total('v->>3')}, {currency}, "
                f"{ts(self.param)} FROM {self.rows_from} "
                "WHERE true ON CONFLICT (external_id) DO NOTHING",
                (self.now, payload.rows),
            ).rowcount
        existing = {}
        if inserted != payload.size:
            existing = self.existing_orders(order_ids, at_most=before)
        return ChunkResult(max(created, 0), existing)

    def _total(self, expression: str) -> str:
        return expression

    def existing_orders(
        self, order_ids: Sequence[str], *, at_most: int
    ) -> dict[str, ExistingOrder]:
        """The stored orders with these ids and an id of at most ``at_most``."""
        texts, param = self._texts(order_ids)
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

    def set_seen_from_orders(self, *, above_id: int, only: Sequence[str] | None = None) -> None:
        """Set first/last seen of customers with id > ``above_id`` to their order range;
        with ``only``, of those of these customers (external ids) only."""
        params: list[Any] = [above_id]
        which = f"customer_id > {self.param}"
        if only is not None:
            if not only:
                return
            texts, param = self._texts(only)
            which = (
                f"customer_id IN (SELECT id FROM customers WHERE id > {self.param} "
                f"AND external_id IN {texts})"
            )
            params.append(param)
        self._run(
            "UPDATE customers SET first_seen_at = s.lo, last_seen_at = s.hi "
            "FROM (SELECT customer_id, min(ordered_at) AS lo, max(ordered_at) AS hi "
            f"      FROM orders WHERE {which} GROUP BY customer_id) AS s "
            "WHERE customers.id = s.customer_id "
            "AND (customers.first_seen_at <> s.lo OR customers.last_seen_at <> s.hi)",
            params,
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


# The columns an import writes, by table: an index on none of them stays during an import.
_WRITTEN = {
    "orders": {
        "external_id", "customer_id", "status", "ordered_at", "total", "currency", "updated_at"
    },
    "customers": {"external_id", "first_seen_at", "last_seen_at", "created_at"},
}  # fmt: skip


def _literal(word: str) -> str:
    """A currency code or status value as an SQL string literal (letters and _ only)."""
    if not _WORD(word):
        raise ValueError(f"not a plain word: {word!r}")
    return f"'{word}'"


class SqliteWriter(BulkWriter):
    """sqlite3, with ``json_each``; a bigger cache and the write lock for the whole import."""

    rows_from = "(SELECT value AS v FROM json_each(?)) AS r"
    param = "?"
    _true = "1"
    _CACHE_KIB = 256 * 1024
    _BIG_CACHE_KIB = 1024 * 1024  # SQLite takes the pages only as it needs them

    def __init__(self, connection: sa.Connection, *, now: datetime) -> None:
        super().__init__(connection, now=now)
        self._saved: dict[str, Any] = {}
        self._deferred: dict[str, list[str]] = {}
        self._big = False
        self._journal: str | None = None

    def begin(self, *, big: bool) -> None:
        """A bigger page cache, no foreign-key checks, and the write lock from the start.

        Foreign keys are not checked during the import (``PRAGMA foreign_keys`` only
        changes outside a transaction, hence before ``BEGIN IMMEDIATE``): every id the
        import writes was read or created in this same transaction, under the write lock,
        so the references hold by construction. :meth:`restore` turns the checks back on.

        A big import also runs with a rollback journal instead of the write-ahead log
        when no other connection has the database open (see :meth:`_rollback_journal`).
        """
        self._saved = {
            name: self.dbapi.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("cache_size", "foreign_keys", "threads")
        }
        cache = self._BIG_CACHE_KIB if big else self._CACHE_KIB
        self.dbapi.execute(f"PRAGMA cache_size = -{cache}")
        # CREATE INDEX sorts with a helper thread. (Its sort runs spill to temporary files,
        # which the OS caches: temp_store = MEMORY measured slower for 10M rows.)
        self.dbapi.execute("PRAGMA threads = 2")
        self._big = big
        if not self.dbapi.in_transaction:
            self.dbapi.execute("PRAGMA foreign_keys = OFF")
            if big:
                self._journal = self._rollback_journal()
            self.dbapi.execute("BEGIN IMMEDIATE")

    def _rollback_journal(self) -> str | None:
        """Switch from the write-ahead log to a rollback journal; the mode to go back to.

        With the WAL, every page of the import is written twice: into the log at commit,
        then into the database by the checkpoint. With a rollback journal, pages new to
        the file are written once, and only pages that held data before are saved to the
        journal first. The transaction stays all or nothing: a rollback, or the next
        connection after a crash, restores those pages from the journal.

        SQLite changes out of WAL mode only when no other connection has the database
        open, so a running bot keeps the WAL (and its readers are never blocked); the
        attempt does not wait. A connection opened during the import waits for it to end.
        Returns None when the mode was not changed.
        """
        (mode,) = self.dbapi.execute("PRAGMA journal_mode").fetchone()
        if mode != "wal":
            return None
        (timeout,) = self.dbapi.execute("PRAGMA busy_timeout").fetchone()
        self.dbapi.execute("PRAGMA busy_timeout = 0")
        try:
            (changed,) = self.dbapi.execute("PRAGMA journal_mode = DELETE").fetchone()
        except sqlite3.OperationalError:  # "database is locked": others have it open
            changed = mode
        finally:
            self.dbapi.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        return mode if changed != mode else None

    def restore(self) -> None:
        """Put the pragmas and the journal mode back; after a big import that passed
        through the write-ahead log, shrink the log again.

        SQLite keeps the WAL file at its largest size (gigabytes for millions of orders);
        a TRUNCATE checkpoint empties it (it does less, harmlessly, while other
        connections are reading).
        """
        for name, value in self._saved.items():
            self.dbapi.execute(f"PRAGMA {name} = {int(value)}")
        if self._journal:
            # If busy, the mode stays: the engine sets WAL on every new connection anyway.
            with suppress(sqlite3.OperationalError):
                self.dbapi.execute(f"PRAGMA journal_mode = {self._journal}").fetchall()
        elif self._big:
            self.dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def defer_indexes(self) -> None:
        """Drop the secondary indexes of orders and customers; :meth:`finish` creates them
        again.

        Building an index once at the end is much faster than growing it row by row (for
        customers: than moving every new customer's entry when first and last seen are set
        at the end). It is safe on SQLite: DDL is part of the transaction (a rollback or a
        crash restores the indexes), and other connections keep reading the committed
        state with its indexes. Unique indexes stay: they find the duplicates. So do indexes
        on columns the import leaves empty: their new entries are appended at the end.
        """
        for table, written in _WRITTEN.items():
            found = self.dbapi.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL AND sql NOT LIKE '%UNIQUE%'",
                (table,),
            ).fetchall()
            for name, sql in found:
                columns = {r[2] for r in self.dbapi.execute(f'PRAGMA index_info("{name}")')}
                if not columns & written:  # new entries all NULL: appended at the end
                    continue
                self.dbapi.execute(f'DROP INDEX "{name}"')
                self._deferred.setdefault(table, []).append(sql)

    def finish(self, table: str) -> None:
        for sql in self._deferred.pop(table, []):
            self.dbapi.execute(sql)

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
