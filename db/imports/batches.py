"""Parsing records a batch at a time, column by column, with a row-by-row fallback.

A batch comes in one of two shapes (see :mod:`db.imports.sources`):

- :class:`LineBatch`: consecutive lines of a CSV stretch without quote characters, so that
  every line is one record and splitting at the delimiter is exactly what the csv module
  would do. A clean batch (every line with the right number of fields, every id, amount and
  date valid) is split for the whole batch at once and checked column by column with
  C-level ``map`` calls and numpy: no Python code runs per row.
- :class:`RecordBatch`: records the csv module (or the CDNOW reader) split already.

At the first doubt the whole batch goes through the row parser instead, which finds and
explains every bad row; both give the same rows.

The valid rows come back as :class:`OrderColumns`, one list per field, which is what the
database payloads are built from; :meth:`OrderColumns.rows` makes :class:`OrderRow` objects
when a row needs a closer look (duplicates, conflicts, order lines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from db.imports.fields import (
    DEFAULT_STATUS,
    MAX_ID_LENGTH,
    DateParser,
    FieldError,
    Item,
    all_plain_amounts,
    parse_currency,
    parse_items,
    parse_status,
)
from db.imports.rows import ColumnMap, OrderRow, Record, RowParser, make_csv_parser

_new_row = partial(tuple.__new__, OrderRow)
# Characters str.strip() removes that can occur in ASCII text (line ends are handled apart).
_ASCII_SPACES = (" ", "\t", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


class LineBatch(NamedTuple):
    """Lines without quote characters, each one record, the first on line ``first``.

    ``text`` is the lines joined, line ends included.
    """

    first: int
    lines: list[str]
    text: str

    def records(self, delimiter: str) -> tuple[range, list[Record]]:
        """The lines split as the csv module splits them (a blank line is ``[]``)."""
        ends = "\r\n"
        fields = [line.rstrip(ends).split(delimiter) for line in self.lines]
        records: list[Record] = [[] if f == [""] else f for f in fields]
        return range(self.first, self.first + len(self.lines)), records


class RecordBatch(NamedTuple):
    """Records already split into fields, with the line each starts on.

    A record may also be a text: why it could not be read (it becomes a bad row).
    """

    starts: Sequence[int]
    records: list[Record]


Batch = LineBatch | RecordBatch


@dataclass(eq=False)
class OrderColumns:
    """The valid rows of a batch, one list per field, aligned by position.

    ``currency`` and ``status`` are one value for every row when the file has no such
    column, else a list; ``items`` is None when the file has no items column.
    """

    lines: Sequence[int]
    orders: list[str]
    customers: list[str]
    stamps: list[str]
    totals: list[str]
    currency: str | list[str]
    status: str | list[str]
    items: list[tuple[Item, ...]] | None = None

    def __len__(self) -> int:
        return len(self.orders)

    def rows(self) -> list[OrderRow]:
        """The same rows as :class:`OrderRow` objects."""
        currency = repeat(self.currency) if isinstance(self.currency, str) else self.currency
        status = repeat(self.status) if isinstance(self.status, str) else self.status
        items = repeat(()) if self.items is None else self.items
        columns = (self.lines, self.orders, self.customers, self.stamps, self.totals)
        return list(map(_new_row, zip(*columns, currency, status, items, strict=False)))

    @staticmethod
    def from_rows(rows: Sequence[OrderRow]) -> OrderColumns:
        """Rows turned into columns (every field a list; no items column if none has any)."""
        if not rows:
            return OrderColumns([], [], [], [], [], [], [], None)
        lines, orders, customers, stamps, totals, currency, status, items = map(
            list, zip(*rows, strict=True)
        )
        with_items = items if any(items) else None
        return OrderColumns(lines, orders, customers, stamps, totals, currency, status, with_items)


class ParsedBatch(NamedTuple):
    """The valid rows of a batch, its bad rows as (line, reason), and its record count."""

    columns: OrderColumns
    bad: list[tuple[int, str]]
    records: int


BatchParser = Callable[[Batch], ParsedBatch]


def parse_each(parse: RowParser, starts: Sequence[int], records: list[Record]) -> ParsedBatch:
    """Parse record by record; blank records (``[]``) are skipped and not counted."""
    rows: list[OrderRow] = []
    bad: list[tuple[int, str]] = []
    count = 0
    for line, record in zip(starts, records, strict=True):
        if not record:
            continue
        count += 1
        try:
            rows.append(parse(line, record))
        except FieldError as exc:
            bad.append((line, str(exc)))
    return ParsedBatch(OrderColumns.from_rows(rows), bad, count)


def row_by_row(parse: RowParser) -> BatchParser:
    """A batch parser for record batches that parses record by record."""

    def parse_batch(batch: Batch) -> ParsedBatch:
        if isinstance(batch, LineBatch):
            raise TypeError("a row-by-row parser takes records, not lines")
        return parse_each(parse, batch.starts, batch.records)

    return parse_batch


def make_csv_batch_parser(
    columns: ColumnMap, *, width: int, dates: DateParser, currency: str, delimiter: str = ","
) -> BatchParser:
    """A batch parser for CSV batches: column-wise when the batch is clean."""
    parse = make_csv_parser(columns, width=width, dates=dates, currency=currency)
    check = partial(_checked_columns, c=columns, dates=dates, currency=currency)

    def parse_batch(batch: Batch) -> ParsedBatch:
        if isinstance(batch, LineBatch):
            found = _from_lines(batch, width=width, delimiter=delimiter, check=check)
            if found is not None:
                return ParsedBatch(found, [], len(found))
            starts: Sequence[int]
            starts, records = batch.records(delimiter)
        else:
            starts, records = batch
        found = _columnwise(starts, records, columns, width=width, dates=dates, currency=currency)
        if found is None:
            return parse_each(parse, starts, records)
        return ParsedBatch(found, [], len(found))

    return parse_batch


Fields = Callable[[int | None], list[str] | None]  # a column's raw texts, None if absent


def _from_lines(
    batch: LineBatch,
    *,
    width: int,
    delimiter: str,
    check: Callable[..., OrderColumns | None],
) -> OrderColumns | None:
    """The batch's rows if every line is a valid record of ``width`` fields, else None.

    The whole batch is split at once: line ends become delimiters, so field ``k`` of line
    ``i`` is item ``i * width + k`` of one list.
    """
    text, lines = batch.text, batch.lines
    if not lines or set(map(str.count, lines, repeat(delimiter))) != {width - 1}:
        return None  # a blank line, or a line with too few or too many fields
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    flat = text.replace("\n", delimiter).split(delimiter)
    if len(flat) != len(lines) * width:
        return None
    strip = not text.isascii() or any(space in text for space in _ASCII_SPACES)

    def fields(at: int | None) -> list[str] | None:
        if at is None:
            return None
        values = flat[at::width]
        return list(map(str.strip, values)) if strip else values

    starts = range(batch.first, batch.first + len(lines))
    return check(starts, fields, nul="\x00" in text)


def _columnwise(
    starts: Sequence[int],
    records: list[Any],
    c: ColumnMap,
    *,
    width: int,
    dates: DateParser,
    currency: str,
) -> OrderColumns | None:
    """The records' rows if every record is valid, else None."""
    if not records or set(map(type, records)) != {list} or set(map(len, records)) != {width}:
        return None
    strip = partial(map, str.strip)

    def fields(at: int | None) -> list[str] | None:
        return None if at is None else list(strip([r[at] for r in records]))

    return _checked_columns(starts, fields, c=c, dates=dates, currency=currency)


def _checked_columns(
    starts: Sequence[int],
    fields: Fields,
    *,
    c: ColumnMap,
    dates: DateParser,
    currency: str,
    nul: bool = True,
) -> OrderColumns | None:
    """The rows made of stripped ``fields``, if all of them are valid, else None.

    ``fields(at)`` gives the stripped texts of column ``at`` (None for a missing column);
    currency, status and items texts are stripped by their own parsers. ``nul`` False: the
    batch is known to hold no NUL character.
    """
    orders, customers = fields(c.order), fields(c.customer)
    assert orders is not None and customers is not None
    if not (_ids_ok(orders, nul=nul) and _ids_ok(customers, nul=nul)):
        return None
    amounts = fields(c.amount)
    assert amounts is not None
    if not all_plain_amounts(amounts):
        return None
    date_texts = fields(c.date)
    assert date_texts is not None
    stamps = dates.convert_all(date_texts)
    if stamps is None:
        return None
    try:
        currencies = _column(fields(c.currency), parse_currency, currency)
        statuses = _column(fields(c.status), parse_status, DEFAULT_STATUS)
        items = _column(fields(c.items), parse_items, None)
    except FieldError:
        return None
    return OrderColumns(starts, orders, customers, stamps, amounts, currencies, statuses, items)


def _ids_ok(ids: list[str], *, nul: bool = True) -> bool:
    """Whether every id is non-empty, short enough and (if ``nul``) without NUL."""
    if not ids or "" in ids or max(map(len, ids)) > MAX_ID_LENGTH:
        return False
    return not nul or "\x00" not in "".join(ids)


def _column(texts: list[str] | None, convert: Callable[[str], Any], default: Any) -> Any:
    """The converted texts, or ``default`` if the file has no such column."""
    if texts is None:
        return default
    return list(map(convert, texts))
