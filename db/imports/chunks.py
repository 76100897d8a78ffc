"""Reading an opened order file into chunks of valid rows, in a background thread.

Parsing is Python (mostly C-level calls) and holds the GIL; the database writes of the
previous chunk run in C (SQLite, libpq) without it. Reading in a thread lets the two
overlap on two cores. So that the writing thread has almost no Python work left, the reader
also builds each chunk's payloads for the database (see :mod:`db.imports.writers`): the
rows as one JSON array, and the customers seen for the first time in this file.

The reader owns its counters and its list of bad rows; the consumer reads them after the
last chunk (:meth:`ChunkReader.__iter__` has finished).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from db.imports.batches import OrderColumns
from db.imports.rows import OrderRow
from db.imports.sources import OpenedFile
from db.imports.writers import Payload, build_payload

_QUEUE_SIZE = 2
_PUT_TIMEOUT = 0.2
# Customer ids the reader remembers, to send each new customer to the database once
# (about 100 MB at the limit); later ones are sent with every chunk they occur in.
_SEEN_LIMIT = 2_000_000
# Customers with orders in more than one chunk whose first and last seen are corrected
# one by one at the end; beyond this many, all new customers are.
_SPANNING_LIMIT = 100_000


@dataclass(frozen=True)
class BadRow:
    """A row that was not imported, with its line in the file and the reason."""

    line: int
    reason: str


@dataclass
class Chunk:
    """Valid rows with distinct order ids, their database payload, and how far the file
    was read."""

    columns: OrderColumns
    rows_read: int
    bytes_read: int
    payload: Payload


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

    def __init__(self, opened: OpenedFile, *, chunk_size: int, keep_bad_rows: int) -> None:
        self.opened = opened
        self.chunk_size = chunk_size
        self.keep_bad_rows = keep_bad_rows
        self.stats = ReadStats()
        self._seen: set[str] = set()
        # Customers of more than one chunk (first and last seen need the whole file), or
        # None when they are too many to list (or not all are known).
        self.spanning: set[str] | None = set()
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
        for batch in self.opened.batches(self.chunk_size):
            columns, bad, count = self.opened.parse_batch(batch)
            for line, reason in bad:
                self._bad(line, reason)
            read += count
            self.stats.rows_read = read
            yield self._chunk(columns, read)

    def _chunk(self, columns: OrderColumns, read: int) -> Chunk:
        if len(set(columns.orders)) != len(columns):
            columns = OrderColumns.from_rows(self._without_repeats(columns.rows()))
        payload = build_payload(columns, new_customers=self._new_customers(columns.customers))
        return Chunk(columns, read, self.opened.bytes_read(), payload)

    def _new_customers(self, customers: list[str]) -> list[str]:
        """The distinct customers of a chunk not seen in earlier chunks, in file order."""
        seen = self._seen
        distinct = dict.fromkeys(customers)
        new = [name for name in distinct if name not in seen]
        if self.spanning is not None and len(new) < len(distinct):
            self.spanning.update(name for name in distinct if name in seen)
            if len(self.spanning) > _SPANNING_LIMIT:
                self.spanning = None
        if len(seen) < _SEEN_LIMIT:
            seen.update(new)
        elif new:  # not remembered: their later chunks would not count as spanning
            self.spanning = None
        return new

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
