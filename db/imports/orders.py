"""Importing an order file: stream, validate, deduplicate and bulk-insert in one transaction.

The whole import is one database transaction. It is committed when every row was good,
or when ``skip_bad`` is set (then the good rows are kept and the bad ones reported); it is
rolled back when any row was bad without ``skip_bad``, and always on a dry run. Rows are
written as they are read (in chunks), so a dry run and a failing import find exactly the
problems a real import would.

Duplicates. An order id already in the database before the import is skipped and counted
as "already present" when its content is the same (customer, date, total, currency, and
status if the file has a status column); with different content it is a bad row
("conflict"), and the database keeps its version. An order id that occurs twice in the file
is imported once; the repeat is counted as a duplicate when identical, else it is a bad row.
"""

from __future__ import annotations

import gc
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from db.clock import utcnow
from db.imports.chunks import BadRow, Chunk, ChunkReader, differences
from db.imports.fields import DateParser, FieldError, parse_currency
from db.imports.rows import OrderRow
from db.imports.sources import (
    ColumnNames,
    OpenedFile,
    choose_encoding,
    open_cdnow,
    open_csv,
)
from db.imports.writers import BulkWriter, ExistingOrder, LineRecord

FORMATS = ("csv", "cdnow")
# Imports expected to add at least this many orders (and more than the table holds) are
# "big": they build the secondary order indexes at the end instead of row by row, and get
# a bigger cache and, where possible, a rollback journal (see db.imports.writers).
DEFER_INDEXES_FROM = 500_000


@dataclass(frozen=True)
class ImportOptions:
    """How to read an order file and what to do with bad rows (see the module docstring)."""

    format: str = "csv"
    columns: ColumnNames = field(default_factory=ColumnNames)
    delimiter: str | None = None
    has_header: bool = True
    encoding: str | None = None
    currency: str = "USD"
    date_format: str | None = None
    timezone: str = "UTC"
    skip_bad: bool = False
    dry_run: bool = False
    chunk_size: int = 50_000
    keep_bad_rows: int = 1000

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; use one of {', '.join(FORMATS)}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"the delimiter must be one character, not {self.delimiter!r}")
        if self.date_format is not None and "%" not in self.date_format:
            raise ValueError(f"--date-format {self.date_format!r} has no %-directive")
        if self.chunk_size < 1:
            raise ValueError("the chunk size must be at least 1")
        try:
            parse_currency(self.currency)
            self.tz  # noqa: B018
        except FieldError as exc:
            raise ValueError(str(exc)) from None

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None


class ImportDatabaseError(Exception):
    """The database failed during an import; the transaction was rolled back."""


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is; reported after each chunk."""

    rows_read: int
    bytes_read: int
    bytes_total: int
    orders_imported: int
    bad_rows: int


@dataclass
class ImportReport:
    """What an import did (or, if not committed, would have done)."""

    path: Path
    format: str
    encoding: str = ""
    rows_read: int = 0
    orders_imported: int = 0
    customers_created: int = 0
    products_created: int = 0
    order_lines: int = 0
    already_present: int = 0
    duplicates_in_file: int = 0
    bad_row_count: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    conflicts: int = 0
    seconds: float = 0.0
    committed: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def skipped_duplicates(self) -> int:
        return self.already_present + self.duplicates_in_file

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[ImportProgress], None]


def import_orders(
    *,
    session_factory: sessionmaker[Session],
    path: Path,
    options: ImportOptions | None = None,
    on_progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import the order file at ``path`` in one transaction and report what happened.

    Raises :class:`ImportFileError` when the file as a whole is unusable (nothing is
    written then). Bad rows do not raise: they are in the report, and unless
    ``options.skip_bad`` is set they make the import write nothing.
    """
    options = options or ImportOptions()
    started = time.perf_counter()
    report = ImportReport(path=path, format=options.format, dry_run=options.dry_run)
    report.encoding, note = choose_encoding(path, options.encoding)
    report.notes += [note] if note else []
    opened, close = _open(path, options, report.encoding)
    report.notes += opened.notes
    try:
        with _gc_paused(), session_factory() as session:
            _run(session, opened, options, report, now=now or utcnow(), on_progress=on_progress)
    except (SQLAlchemyError, sqlite3.Error, psycopg.Error) as exc:
        raise ImportDatabaseError(f"database error, nothing was written: {exc}") from exc
    finally:
        close()
    if not report.rows_read:
        report.notes.append("the file has no data rows")
    report.seconds = time.perf_counter() - started
    return report


def _run(
    session: Session,
    opened: OpenedFile,
    options: ImportOptions,
    report: ImportReport,
    *,
    now: datetime,
    on_progress: ProgressCallback | None,
) -> None:
    """Import in the session's transaction, then commit or roll back (see the module doc)."""
    importer = _Importer(session, opened, options, report, now=now)
    try:
        importer.run(on_progress)
        report.committed = not options.dry_run and (options.skip_bad or not report.bad_row_count)
        if report.committed:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        importer.writer.restore()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: millions of row tuples that live for a chunk
    would make it scan again and again (a quarter of the parse time). The rows hold no
    cycles; reference counting frees them. The previous state is restored afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _open(path: Path, options: ImportOptions, encoding: str) -> tuple[OpenedFile, Callable]:
    if options.format == "cdnow":
        return open_cdnow(path, encoding=encoding, currency=options.currency, tz=options.tz)
    return open_csv(
        path,
        columns=options.columns,
        encoding=encoding,
        delimiter=options.delimiter,
        has_header=options.has_header,
        dates=DateParser(date_format=options.date_format, tz=options.tz),
        currency=parse_currency(options.currency),
    )


class _Importer:
    """One run of an import inside one session; fills in the report."""

    def __init__(
        self,
        session: Session,
        opened: OpenedFile,
        options: ImportOptions,
        report: ImportReport,
        *,
        now: datetime,
    ) -> None:
        self.opened = opened
        self.options = options
        self.report = report
        self.writer = BulkWriter.for_connection(session.connection(), now=now)
        self.products: dict[str, tuple[int, Decimal]] = {}
        self.first_new_order = self.first_new_customer = 0
        self.rejected_rows = 0

    def run(self, on_progress: ProgressCallback | None) -> None:
        writer, report = self.writer, self.report
        reader = ChunkReader(
            self.opened,
            chunk_size=self.options.chunk_size,
            keep_bad_rows=self.options.keep_bad_rows,
        )
        started = False
        for chunk in reader:
            if not started:  # the transaction starts once the first chunk shows the size
                self._begin(big=self._is_big(chunk))
                started = True
            if chunk.columns:
                self._write(chunk)
            if on_progress:
                on_progress(self._progress(chunk, reader))
        if not started:
            self._begin(big=False)
        self._merge_read_stats(reader)
        writer.finish("orders")
        if self.rejected_rows:  # their new customers may have no order now
            report.customers_created -= writer.delete_orderless_customers(
                above_id=self.first_new_customer
            )
        if report.customers_created:  # first/last seen so far from one chunk each
            # Rejected rows may have counted: then every new customer is corrected.
            spanning = None if self.rejected_rows else reader.spanning
            writer.set_seen_from_orders(
                above_id=self.first_new_customer,
                only=None if spanning is None else sorted(spanning),
            )
        writer.finish("customers")
        if on_progress:
            total = self.opened.bytes_total
            on_progress(
                ImportProgress(
                    report.rows_read, total, total, report.orders_imported, report.bad_row_count
                )
            )

    def _begin(self, *, big: bool) -> None:
        """Start the import's transaction; note where this import's rows will start."""
        self.writer.begin(big=big)
        self.first_new_order = self.writer.max_id("orders")
        self.first_new_customer = self.writer.max_id("customers")
        if big:
            self.writer.defer_indexes()

    def _is_big(self, chunk: Chunk) -> bool:
        """Whether the whole file, extrapolated from its first chunk, is a big import
        (the orders already stored are counted outside the transaction: an estimate)."""
        share = chunk.bytes_read / max(self.opened.bytes_total, 1)
        expected = chunk.rows_read / max(share, 1e-9)
        return expected >= max(DEFER_INDEXES_FROM, self.writer.max_id("orders"))

    def _progress(self, chunk: Chunk, reader: ChunkReader) -> ImportProgress:
        return ImportProgress(
            rows_read=chunk.rows_read,
            bytes_read=min(chunk.bytes_read, self.opened.bytes_total),
            bytes_total=self.opened.bytes_total,
            orders_imported=self.report.orders_imported,
            bad_rows=self.report.bad_row_count + reader.stats.bad_row_count,
        )

    def _merge_read_stats(self, reader: ChunkReader) -> None:
        """Add what the reader counted; bad rows from both sides in line order."""
        stats, report = reader.stats, self.report
        report.rows_read = stats.rows_read
        report.duplicates_in_file += stats.duplicates_in_file
        report.bad_row_count += stats.bad_row_count
        merged = sorted([*report.bad_rows, *stats.bad_rows], key=lambda bad: bad.line)
        report.bad_rows = merged[: self.options.keep_bad_rows]

    def _bad(self, line: int, reason: str) -> None:
        self.report.bad_row_count += 1
        if len(self.report.bad_rows) < self.options.keep_bad_rows:
            self.report.bad_rows.append(BadRow(line, reason))

    # --- writing -------------------------------------------------------------------------

    def _write(self, chunk: Chunk) -> None:
        columns = chunk.columns
        result = self.writer.write_chunk(chunk.payload, columns.orders)
        self.report.customers_created += result.customers_created
        if not result.existing and columns.items is None:  # the usual case: no row objects
            self.report.orders_imported += len(columns)
            return
        inserted = rows = columns.rows()
        if result.existing:
            inserted = [r for r in rows if r.external_id not in result.existing]
            for row in rows:
                if row.external_id in result.existing:
                    self._skipped(row, result.existing[row.external_id])
        self.report.orders_imported += len(inserted)
        with_items = [r for r in inserted if r.items]
        if with_items:
            self._write_lines(with_items)

    def _skipped(self, row: OrderRow, existing: ExistingOrder) -> None:
        """Classify a row whose order id was in the database already."""
        from_this_file = existing.id > self.first_new_order
        changes = differences(existing, row, status=self.opened.has_status)
        if not changes:
            if from_this_file:
                self.report.duplicates_in_file += 1
            else:
                self.report.already_present += 1
        elif from_this_file:
            self.rejected_rows += 1
            self._bad(
                row.line,
                f"order id {row.external_id!r} is also earlier in the file with other "
                f"content ({changes})",
            )
        else:
            self.report.conflicts += 1
            self.rejected_rows += 1
            self._bad(
                row.line,
                f"conflict: order {row.external_id!r} already exists with other content "
                f"({changes}); the stored order is kept",
            )

    def _write_lines(self, rows: list[OrderRow]) -> None:
        order_ids = self.writer.order_ids([r.external_id for r in rows])
        products = self._products(rows)
        lines = [
            LineRecord(order_ids[r.external_id], products[item.sku][0], item.quantity,
                       products[item.sku][1] if item.unit_price is None else item.unit_price)
            for r in rows
            for item in r.items
        ]  # fmt: skip
        self.writer.insert_lines(lines)
        self.report.order_lines += len(lines)

    def _products(self, rows: list[OrderRow]) -> dict[str, tuple[int, Decimal]]:
        """Id and catalogue price of every SKU in ``rows``; unknown SKUs become products."""
        cache = self.products
        prices: dict[str, Decimal] = {}
        for row in rows:
            for item in row.items:
                if item.sku not in cache and (item.sku not in prices or not prices[item.sku]):
                    prices[item.sku] = item.unit_price or Decimal("0.00")
        if not prices:
            return cache
        found = self.writer.find_ids("products", "sku", list(prices))
        catalogue = self.writer.product_prices(found.values())
        cache.update({sku: (i, catalogue[i]) for sku, i in found.items()})
        missing = {sku: p for sku, p in prices.items() if sku not in found}
        if missing:
            created = self.writer.create_products(missing)
            self.report.products_created += len(created)
            cache.update({sku: (i, missing[sku]) for sku, i in created.items()})
        return cache
