"""Reading an opened order file into chunks of valid rows, in a background thread.

Parsing is pure Python and holds the GIL; the database writes of the previous chunk run
in C (SQLite, libpq) without it. Reading in a thread lets the two overlap on two cores.
So that the writing thread has almost no Python work left, the reader also builds each
chunk's JSON payloads for the database (see :mod:`db.imports.writers`): the rows whose
customer id the shared ``customer_ids`` cache knows, with that id, and the others, with
the customer's external id (the database creates or looks up those customers).

The reader owns its counters and its list of bad rows; the consumer reads them after the
last chunk (:meth:`ChunkReader.__iter__` has finished).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from db.imports.rows import OrderRow
from db.imports.sources import OpenedFile

_QUEUE_SIZE = 2
_PUT_TIMEOUT = 0.2


@dataclass(frozen=True)
class BadRow:
    """A row that was not imported, with its line in the file and the reason."""

    line: int
    reason: str


@dataclass
class Chunk:
    """Valid rows with distinct order ids, their payload, and how far the file was read.

    ``known`` and ``named`` are JSON arrays of ``[order id, customer, status, ordered_at,
    total, currency]``: in ``known`` the customer is a database id from the cache, in
    ``named`` the external id of a customer the cache did not know (``unknown`` lists them).
    """

    rows: list[OrderRow]
    rows_read: int
    bytes_read: int
    known: str = "[]"
    named: str = "[]"
    unknown: list[str] = field(default_factory=list)


@dataclass
class ReadStats:
    """What the reader counted; final once the iteration has ended."""

    rows_read: int = 0
    duplicates_in_file: int = 0
    bad_row_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)


class ChunkReader:
    """Iterate over :class:`Chunk` objects parsed from ``opened`` by a background thread.

    A chunk is handed over after ``chunk_size`` records (good or bad), so progress moves
    even through a file of bad rows. An order id repeated inside one chunk is dropped here:
    counted as a duplicate if the content is the same, a bad row otherwise. (Repeats across
    chunks are found by the database writer.)
    """

    def __init__(
        self,
        opened: OpenedFile,
        *,
        chunk_size: int,
        keep_bad_rows: int,
        customer_ids: dict[str, int] | None = None,
    ) -> None:
        self.opened = opened
        self.customer_ids = customer_ids if customer_ids is not None else {}
        self.chunk_size = chunk_size
        self.keep_bad_rows = keep_bad_rows
        self.stats = ReadStats()
        self._queue: queue.Queue[Chunk | BaseException | None] = queue.Queue(_QUEUE_SIZE)
        self._stop = threading.Event()

    def __iter__(self) -> Iterator[Chunk]:
        thread = threading.Thread(target=self._produce, name="order-file-reader", daemon=True)
        thread.start()
        try:
            while (item := self._queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            thread.join()

    def _produce(self) -> None:
        try:
            for chunk in self._chunks():
                if not self._put(chunk):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            self._put(exc)

    def _put(self, item: Chunk | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_TIMEOUT)
                return True
            except queue.Full:
                continue
        return False

    def _bad(self, line: int, reason: str) -> None:
        self.stats.bad_row_count += 1
        if len(self.stats.bad_rows) < self.keep_bad_rows:
            self.stats.bad_rows.append(BadRow(line, reason))

    def _chunks(self) -> Iterator[Chunk]:
        read = 0
        for starts, records in self.opened.batches(self.chunk_size):
            rows, bad, count = self.opened.parse_batch(starts, records)
            for line, reason in bad:
                self._bad(line, reason)
            read += count
            self.stats.rows_read = read
            yield self._chunk(rows, read)

    def _chunk(self, rows: list[OrderRow], read: int) -> Chunk:
        if len({row[1] for row in rows}) != len(rows):
            rows = self._without_repeats(rows)
        known, named = self._split(rows)
        return Chunk(
            rows,
            read,
            self.opened.bytes_read(),
            known=json.dumps(known, ensure_ascii=False),
            named=json.dumps(named, ensure_ascii=False),
            unknown=list({row[1] for row in named}),
        )

    def _split(self, rows: list[OrderRow]) -> tuple[list[tuple], list[tuple]]:
        """The payload tuples of rows whose customer id is cached, and of the others."""
        if not rows:
            return [], []
        columns = list(zip(*rows, strict=True))
        ids = list(map(self.customer_ids.get, columns[2]))
        if None not in ids:  # the common case once the customers are known: no Python loop
            order, status, ordered_at, total, currency = (columns[i] for i in (1, 6, 3, 4, 5))
            return list(zip(order, ids, status, ordered_at, total, currency, strict=True)), []
        known, named = [], []
        for row, customer_id in zip(rows, ids, strict=True):
            if customer_id is None:
                named.append((row[1], row[2], row[6], row[3], row[4], row[5]))
            else:
                known.append((row[1], customer_id, row[6], row[3], row[4], row[5]))
        return known, named

    def _without_repeats(self, rows: list[OrderRow]) -> list[OrderRow]:
        """The rows with the first occurrence of each order id; repeats are reported."""
        first: dict[str, OrderRow] = {}
        for row in rows:
            earlier = first.setdefault(row.external_id, row)
            if earlier is not row:
                self._repeat(row, earlier)
        return list(first.values())

    def _repeat(self, row: OrderRow, first: OrderRow) -> None:
        changes = "" if row.content() == first.content() else differences(first, row, items=True)
        if not changes:
            self.stats.duplicates_in_file += 1
        else:
            self._bad(
                row.line,
                f"order id {row.external_id!r} is also on line {first.line} with other "
                f"content ({changes})",
            )


def differences(old: object, new: OrderRow, *, status: bool = True, items: bool = False) -> str:
    """What differs between a stored or earlier order and a row: ``total 5.00 → 6.00; …``.

    Totals compare as numbers (``5`` equals ``5.00``); an empty text means no difference.
    """
    names = ["customer", "ordered_at", "total", "currency"] + (["status"] if status else [])
    changes = []
    for name in names:
        before, after = getattr(old, name), getattr(new, name)
        if name == "total":
            before, after = Decimal(str(before)), Decimal(str(after))
        if before != after:
            changes.append(f"{name} {_shown(before)} → {_shown(after)}")
    if items and getattr(old, "items", ()) != new.items:
        changes.append("items differ")
    return "; ".join(changes)


def _shown(value: object) -> str:
    """A value as the user reads it: money with two decimals, timestamps without zeros."""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, str) and value.endswith(".000000"):
        return value[: -len(".000000")]
    return str(value)
