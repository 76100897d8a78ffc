"""Turning one record of an order file into an :class:`OrderRow`, or a reason it is bad.

Two layouts: a CSV whose columns were mapped by :mod:`db.imports.sources`, and CDNOW's
whitespace-separated purchase logs.

CDNOW identifiers. CDNOW rows have no order id, so one is derived from the row:
``cdnow-<customer>-<YYYYMMDD>-<n>``, with ``<customer>`` the CDNOW customer id as written
(zero-padded, e.g. ``00004``) and ``<n>`` counting that customer's purchases on that date
in file order (1, 2, …). The customer's ``external_id`` is ``cdnow-<customer>``: the prefix
keeps CDNOW's small numbers from colliding with a shop's own customer ids. The 1/10 sample
file carries the master file's customer id in its first column, so the sample and the
master file give the same ids and importing both creates no duplicates.
Each CDNOW row also becomes one order line: product ``cdnow-cd``, quantity
``number_of_cds``, unit price ``dollar_value / number_of_cds`` rounded to cents (the
order total stays the exact ``dollar_value``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from db.imports.fields import (
    CENT,
    DEFAULT_STATUS,
    MAX_ID_LENGTH,
    DateParser,
    FieldError,
    Item,
    amount_text,
    canonical_timestamp,
    check_id,
    parse_compact_date,
    parse_currency,
    parse_items,
    parse_status,
)

CDNOW_PREFIX = "cdnow-"
CDNOW_SKU = "cdnow-cd"

Record = list[str] | str  # the fields of a record, or why the record could not be read


class OrderRow(NamedTuple):
    """One valid order of the file.

    ``ordered_at`` is a canonical UTC timestamp text (see ``canonical_timestamp``) and
    ``total`` a plain decimal text (see ``amount_text``): both go to the database as they
    are, and compare with :func:`db.imports.chunks.differences`.
    """

    line: int
    external_id: str
    customer: str
    ordered_at: str
    total: str
    currency: str
    status: str
    items: tuple[Item, ...]

    def content(self) -> tuple[object, ...]:
        """Everything but the line number: two rows with equal content are the same order."""
        return self[1:]


@dataclass(frozen=True)
class ColumnMap:
    """Positions (0-based) of the fields in a CSV record; None: the file has no such column."""

    customer: int
    order: int
    date: int
    amount: int
    items: int | None = None
    status: int | None = None
    currency: int | None = None

    @property
    def width(self) -> int:
        """The smallest number of fields a record needs to hold every mapped column."""
        used = (self.customer, self.order, self.date, self.amount)
        optional = (self.items, self.status, self.currency)
        return 1 + max(*used, *(i for i in optional if i is not None))


RowParser = Callable[[int, Record], OrderRow]


def make_csv_parser(
    columns: ColumnMap, *, width: int, dates: DateParser, currency: str
) -> RowParser:
    """A function parsing one CSV record (of ``width`` fields) into an :class:`OrderRow`.

    It runs once per row, so it is a closure over plain local values.
    """
    order_at, customer_at, date_at, amount_at = (
        columns.order, columns.customer, columns.date, columns.amount
    )  # fmt: skip
    status_at, currency_at, items_at = columns.status, columns.currency, columns.items
    new_row = tuple.__new__  # skips the NamedTuple's Python-level __new__

    def parse(line: int, fields: Record) -> OrderRow:
        if isinstance(fields, str):
            raise FieldError(fields)
        if len(fields) != width:
            raise FieldError(f"expected {width} fields, found {len(fields)}")
        order = fields[order_at].strip()
        customer = fields[customer_at].strip()
        if not 0 < len(order) <= MAX_ID_LENGTH or "\x00" in order:
            check_id(order, what="order id")
        if not 0 < len(customer) <= MAX_ID_LENGTH or "\x00" in customer:
            check_id(customer, what="customer")
        return new_row(
            OrderRow,
            (
                line,
                order,
                customer,
                dates(fields[date_at].strip()),
                amount_text(fields[amount_at].strip()),
                currency if currency_at is None else parse_currency(fields[currency_at]),
                DEFAULT_STATUS if status_at is None else parse_status(fields[status_at]),
                () if items_at is None else parse_items(fields[items_at]),
            ),
        )

    return parse


class CdnowRowParser:
    """Parses CDNOW records: ``customer date cds dollars`` (master) or with a sample id."""

    def __init__(self, *, width: int, currency: str = "USD", tz: tzinfo = UTC) -> None:
        if width not in (4, 5):
            raise ValueError("a CDNOW record has 4 (master) or 5 (sample) fields")
        self.width = width
        self.currency = currency
        self.tz = tz
        self._seen: dict[tuple[str, str], int] = {}
        self._dates: dict[str, str] = {}

    def __call__(self, line: int, fields: Record) -> OrderRow:
        if isinstance(fields, str):
            raise FieldError(fields)
        if len(fields) != self.width:
            raise FieldError(f"expected {self.width} fields, found {len(fields)}")
        customer, date_text, cds, dollars = fields if self.width == 4 else (fields[0], *fields[2:])
        customer = check_id(customer, what="customer")
        ordered_at = self._timestamp(date_text)
        total = amount_text(dollars, what="dollar_value")
        items = self._items(cds, total)
        key = (customer, date_text)
        n = self._seen[key] = self._seen.get(key, 0) + 1
        return OrderRow(
            line,
            f"{CDNOW_PREFIX}{customer}-{date_text}-{n}",
            f"{CDNOW_PREFIX}{customer}",
            ordered_at,
            total,
            self.currency,
            DEFAULT_STATUS,
            items,
        )

    def _timestamp(self, text: str) -> str:
        try:
            return self._dates[text]
        except KeyError:
            moment = parse_compact_date(text).replace(tzinfo=self.tz)
            value = self._dates[text] = canonical_timestamp(moment)
            return value

    @staticmethod
    def _items(cds: str, total: str) -> tuple[Item, ...]:
        if not cds.isdigit():
            raise FieldError(f"bad number_of_cds {cds!r}")
        quantity = int(cds)
        if quantity == 0:
            return ()
        unit = (Decimal(total) / quantity).quantize(CENT, rounding=ROUND_HALF_UP)
        return (Item(CDNOW_SKU, quantity, unit),)
