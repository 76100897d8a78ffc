"""Parsing of single import fields: dates, amounts, statuses, currencies and item lists.

Every parser raises :class:`FieldError` with a reason a person can act on; the row parsers
turn it into a bad-row report with the line number.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

import numpy as np

from db.models import OrderStatus

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # Numeric(12, 2)
MAX_ID_LENGTH = 64
MAX_QUANTITY = 1_000_000
DEFAULT_STATUS = OrderStatus.PLACED.value

_CURRENCY_SYMBOLS = "$€£¥₽₹"
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
_ITEM_SEPARATORS = re.compile(r"[;|]")
_DATE_CACHE_LIMIT = 200_000
fromisoformat = datetime.fromisoformat
_seconds_shape = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}[Zz]?"
).fullmatch
_date_shape = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch

STATUS_SYNONYMS: dict[str, str] = {
    **{s.value: s.value for s in OrderStatus},
    "": DEFAULT_STATUS,
    "new": OrderStatus.PLACED,
    "open": OrderStatus.PLACED,
    "pending": OrderStatus.PLACED,
    "created": OrderStatus.PLACED,
    "processing": OrderStatus.PAID,
    "dispatched": OrderStatus.SHIPPED,
    "sent": OrderStatus.SHIPPED,
    "in_transit": OrderStatus.SHIPPED,
    "completed": OrderStatus.DELIVERED,
    "complete": OrderStatus.DELIVERED,
    "fulfilled": OrderStatus.DELIVERED,
    "canceled": OrderStatus.CANCELLED,
    "refund": OrderStatus.REFUNDED,
}


class FieldError(ValueError):
    """A field's value cannot be used; the message says why."""


class Item(NamedTuple):
    """One entry of an order's item list: a product SKU, a quantity and a unit price."""

    sku: str
    quantity: int
    unit_price: Decimal | None  # None: take the product's catalogue price


# --- dates -------------------------------------------------------------------------------


def canonical_timestamp(moment: datetime) -> str:
    """``moment`` (aware, or naive meaning UTC) as UTC wall time ``YYYY-MM-DD HH:MM:SS.ffffff``.

    This is exactly the text SQLAlchemy's SQLite ``DateTime`` stores, and PostgreSQL reads
    it (with ``+00`` appended) as the same instant.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="microseconds")


class DateParser:
    """Turns date texts into canonical UTC timestamps (see :func:`canonical_timestamp`).

    Without a format, ISO 8601 is accepted: ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]``
    with an optional ``Z`` or ``±hh:mm`` (a space instead of ``T`` works too). With a
    format, :meth:`datetime.strptime` is used. Times without an offset are in ``tz``.
    Texts parsed with a format or in a time zone other than UTC are cached, since order
    files repeat the same dates many times.
    """

    def __init__(self, *, date_format: str | None = None, tz: tzinfo = UTC) -> None:
        self.date_format = date_format
        self.tz = tz
        utc = tz is UTC or getattr(tz, "key", None) in ("UTC", "Etc/UTC")
        self._iso_utc = utc and date_format is None
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if self._iso_utc:
            if not text:
                raise FieldError("missing date")
            try:
                moment = fromisoformat(text)
            except ValueError:
                raise FieldError(self._unparseable(text)) from None
            if moment.tzinfo is None:
                return moment.isoformat(" ", "microseconds")
            if moment.tzinfo is UTC:
                return moment.isoformat(" ", "microseconds")[:26]
            return canonical_timestamp(moment)
        try:
            return self._cache[text]
        except KeyError:
            pass
        value = canonical_timestamp(self.parse(text))
        if len(self._cache) >= _DATE_CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = value
        return value

    def convert_all(self, texts: list[str]) -> list[str] | None:
        """Every text converted, or None if any of them is not a valid date.

        The fast path of a whole column: when every text has the same plain shape
        (``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM:SS[Z]``) and the time zone is UTC, the
        texts are checked with C-level ``map`` and rearranged, not parsed one by one.
        """
        try:
            if self._iso_utc:
                fixed = _fixed_width_utc(texts)
                if fixed is not None:
                    return fixed
                if all(map(_seconds_shape, texts)):
                    all(map(fromisoformat, texts))  # raises on an impossible date or time
                    return [f"{t[:10]} {t[11:19]}.000000" for t in texts]
                if all(map(_date_shape, texts)):
                    all(map(fromisoformat, texts))
                    return [f"{t} 00:00:00.000000" for t in texts]
            return list(map(self, texts))
        except (ValueError, TypeError):  # FieldError is a ValueError
            return None

    def parse(self, text: str) -> datetime:
        """The aware datetime ``text`` stands for."""
        if not text:
            raise FieldError("missing date")
        try:
            if self.date_format is None:
                moment = fromisoformat(text)
            else:
                moment = datetime.strptime(text, self.date_format)
        except ValueError:
            raise FieldError(self._unparseable(text)) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return moment

    def _unparseable(self, text: str) -> str:
        if self.date_format is None:
            return (
                f"unparseable date {text!r} (expected ISO 8601 such as 2024-12-31 or "
                "2024-12-31T14:30:00Z; give --date-format for other layouts)"
            )
        return f"unparseable date {text!r} (does not match --date-format {self.date_format!r})"


_DIGITS_19 = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_CANONICAL_END = np.frombuffer(b".000000\n", dtype=np.uint8)


def _fixed_width_utc(texts: list[str]) -> list[str] | None:
    """Canonical timestamps of ``YYYY-MM-DD[T ]HH:MM:SS[Z]`` texts, checked with numpy.

    Only a column where every text has the same one of these two shapes and is a real
    moment (what ``datetime.fromisoformat`` accepts) is converted; for anything else the
    answer is None and the caller parses text by text.
    """
    if not texts:
        return None
    lengths = set(map(len, texts))
    if lengths != {19} and lengths != {20}:
        return None
    joined = "".join(texts)
    if not joined.isascii():
        return None
    size = 20 if lengths == {20} else 19
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(texts), size)
    if size == 20 and not np.all(chars[:, 19] == ord("Z")):
        return None
    digits = chars[:, _DIGITS_19] - ord("0")  # wraps around for characters below "0"
    shape_ok = (
        np.all(digits <= 9)
        and np.all(chars[:, [4, 7]] == ord("-"))
        and np.all(chars[:, [13, 16]] == ord(":"))
        and np.all((chars[:, 10] == ord("T")) | (chars[:, 10] == ord(" ")))
    )
    if not shape_ok:
        return None
    d = digits.astype(np.int32)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
    hour, minute = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11]
    second = d[:, 12] * 10 + d[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = (
        (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
        & (hour <= 23) & (minute <= 59) & (second <= 59)
    )  # fmt: skip
    if not np.all(real):
        return None
    out = np.empty((len(texts), 27), dtype=np.uint8)  # "YYYY-MM-DD HH:MM:SS.000000\n"
    out[:, :10] = chars[:, :10]
    out[:, 10] = ord(" ")
    out[:, 11:19] = chars[:, 11:19]
    out[:, 19:] = _CANONICAL_END
    return out.tobytes().decode("ascii").split("\n")[:-1]


def parse_compact_date(text: str) -> datetime:
    """A ``YYYYMMDD`` date (CDNOW) as a naive midnight."""
    if len(text) != 8 or not text.isdigit():
        raise FieldError(f"unparseable date {text!r} (expected YYYYMMDD)")
    try:
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise FieldError(f"impossible date {text!r}") from None


# --- amounts -----------------------------------------------------------------------------

plain_amount = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,2})?").fullmatch


def all_plain_amounts(texts: list[str]) -> bool:
    """Whether every text is a plain amount (:data:`plain_amount`), checked with numpy: the
    same answer as ``all(map(plain_amount, texts))`` without a regex call per text."""
    if not texts:
        return True
    joined = "\n".join(texts)
    if not joined.isascii():
        return False  # only ASCII digits and "." can match
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(chars == ord("\n"))
    if len(ends) != len(texts) - 1:
        return False  # a text holds a line break
    dot = chars == ord(".")
    if not np.all(((chars - ord("0")) <= 9) | dot | (chars == ord("\n"))):
        return False
    starts = np.concatenate(([0], ends + 1))
    ends = np.append(ends, len(chars))
    if np.any(ends == starts):
        return False
    dots = np.add.reduceat(dot.astype(np.int32), starts)
    if np.any(dots > 1):
        return False
    whole = ends - starts
    dotted = dots == 1
    where = np.flatnonzero(dot)  # one per dotted text, in order
    whole[dotted] = where - starts[dotted]
    decimals = ends[dotted] - where - 1
    return bool(np.all((whole >= 1) & (whole <= 10)) and np.all((decimals >= 1) & (decimals <= 2)))


def amount_text(text: str, *, what: str = "amount") -> str:
    """A valid amount as plain decimal text (``12``, ``12.5``, ``1234.50``) for storage.

    Plain texts are kept as they are (the fast path); anything else goes through
    :func:`parse_amount` and comes back rounded to cents.
    """
    if plain_amount(text):
        return text
    return f"{parse_amount(text, what=what):f}"


def parse_amount(text: str, *, what: str = "amount") -> Decimal:
    """A non-negative money amount, rounded to cents (half up) if it has more decimals.

    Accepted: ``12``, ``12.5``, ``12.50``, ``1,234.50`` (comma thousands groups), an optional
    currency symbol before or after (``$12.50``, ``12.50 €``). A decimal comma is not.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = _parse_loose_amount(text, what=what)
    dot = text.find(".")
    if (
        (dot == -1 or len(text) - dot <= 3)
        and "e" not in text
        and "E" not in text
        and value.is_finite()
        and 0 <= value <= MAX_AMOUNT
    ):
        return value  # the common case: at most two decimals, in range
    return _checked_amount(value, text, what=what)


def _checked_amount(value: Decimal, text: str, *, what: str) -> Decimal:
    if not value.is_finite():
        raise FieldError(f"unparseable {what} {text!r}")
    if value < 0:
        raise FieldError(f"negative {what} {text!r}")
    try:
        value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise FieldError(f"{what} {text!r} is too large") from None
    if value > MAX_AMOUNT:
        raise FieldError(f"{what} {text!r} is too large (at most {MAX_AMOUNT})")
    return value


def _parse_loose_amount(text: str, *, what: str) -> Decimal:
    if not text:
        raise FieldError(f"missing {what}")
    cleaned = text.strip().strip(_CURRENCY_SYMBOLS).strip()
    negative = cleaned.startswith("-")
    if negative:
        cleaned = cleaned[1:].strip().lstrip(_CURRENCY_SYMBOLS).strip()
    if _GROUPED.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        hint = " (use '.' as the decimal point)" if re.fullmatch(r"\d+,\d{1,2}", cleaned) else ""
        raise FieldError(f"unparseable {what} {text!r}{hint}") from None
    return -value if negative else value


# --- other fields ------------------------------------------------------------------------


def parse_status(text: str) -> str:
    """An :class:`OrderStatus` value from a status text (case-insensitive, some synonyms)."""
    key = text.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return str(STATUS_SYNONYMS[key])
    except KeyError:
        known = ", ".join(s.value for s in OrderStatus)
        raise FieldError(f"unknown status {text!r} (expected one of {known})") from None


def parse_currency(text: str) -> str:
    """A three-letter ISO 4217 code, upper-cased."""
    code = text.strip().upper()
    if not _CURRENCY_CODE.match(code):
        raise FieldError(f"bad currency {text!r} (expected a three-letter code such as USD)")
    return code


def check_id(text: str, *, what: str) -> str:
    """A non-empty identifier of at most 64 characters, without NUL."""
    if not text:
        raise FieldError(f"missing {what}")
    if len(text) > MAX_ID_LENGTH:
        raise FieldError(f"{what} longer than {MAX_ID_LENGTH} characters")
    if "\x00" in text:
        raise FieldError(f"{what} contains a NUL character")
    return text


def parse_items(text: str) -> tuple[Item, ...]:
    """An item list: ``SKU[:quantity[:unit_price]]`` entries separated by ``;`` or ``|``.

    Examples: ``A-100:2:9.99;B-7:1:25``, ``A-100`` (one unit at the catalogue price),
    ``A-100:3`` (three units at the catalogue price). Empty entries are ignored.
    """
    items = []
    for entry in _ITEM_SEPARATORS.split(text):
        entry = entry.strip()
        if entry:
            items.append(_parse_item(entry))
    return tuple(items)


def _parse_item(entry: str) -> Item:
    parts = [p.strip() for p in entry.split(":")]
    if len(parts) > 3:
        raise FieldError(f"item {entry!r} has more than SKU:quantity:unit_price")
    sku = check_id(parts[0], what=f"SKU in item {entry!r}")
    quantity = 1
    if len(parts) > 1 and parts[1]:
        if not parts[1].isdigit() or not 0 < int(parts[1]) <= MAX_QUANTITY:
            raise FieldError(f"bad quantity {parts[1]!r} in item {entry!r}")
        quantity = int(parts[1])
    price = None
    if len(parts) > 2 and parts[2]:
        price = parse_amount(parts[2], what=f"unit price in item {entry!r}")
    return Item(sku, quantity, price)
