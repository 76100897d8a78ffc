"""Opening an order file: encoding, delimiter, header → column mapping, streaming records.

Everything that makes a whole file unusable raises :class:`ImportFileError` before any row
is read; problems of single records are reported per row by the row parsers.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, tzinfo
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO

from db.imports.batches import (
    Batch,
    BatchParser,
    LineBatch,
    RecordBatch,
    make_csv_batch_parser,
    row_by_row,
)
from db.imports.fields import DateParser
from db.imports.rows import CdnowRowParser, ColumnMap, Record

_SNIFF_BYTES = 64 * 1024
_SCAN_BLOCK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")

# Header names each column is recognised by, best first; compared after normalising
# (lower case, letters and digits only), so "Customer ID" matches "customer_id".
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer": (
        "customer_id", "customer", "client_id", "client", "customer_no", "customer_number",
        "cust_id", "customer_ref", "client_no", "client_number", "buyer_id", "buyer",
        "user_id", "member_id", "account_id", "customer_email", "email",
    ),
    "order": (
        "order_id", "order", "order_number", "order_no", "order_nr", "order_ref",
        "order_reference", "invoice_id", "invoice_no", "invoice_number", "invoice",
        "transaction_id", "txn_id", "receipt_id",
    ),
    "date": (
        "date", "order_date", "created_at", "ordered_at", "order_time", "order_datetime",
        "datetime", "timestamp", "purchase_date", "purchased_at", "invoice_date",
        "transaction_date", "placed_at", "created", "time",
    ),
    "amount": (
        "amount", "total", "value", "order_total", "total_amount", "grand_total",
        "order_value", "total_price", "amount_paid", "revenue", "dollar_value", "sales",
        "price", "sum",
    ),
    "items": ("items", "order_items", "line_items", "lines", "order_lines", "products", "skus"),
    "status": ("status", "order_status", "state"),
    "currency": ("currency", "currency_code", "ccy"),
}  # fmt: skip
REQUIRED = ("customer", "order", "date", "amount")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, empty, undecodable, no columns…)."""


@dataclass(frozen=True)
class ColumnNames:
    """Columns named by the user (a header name, or a 1-based position); None: auto."""

    customer: str | None = None
    order: str | None = None
    date: str | None = None
    amount: str | None = None
    items: str | None = None
    status: str | None = None
    currency: str | None = None


@dataclass
class OpenedFile:
    """An order file ready to stream: batches of records, their parser, progress in bytes.

    ``batches(n)`` yields batches of up to ``n`` records (see :mod:`db.imports.batches`).
    """

    batches: Callable[[int], Iterator[Batch]]
    parse_batch: BatchParser
    bytes_read: Callable[[], int]
    bytes_total: int
    encoding: str
    has_status: bool = False
    notes: list[str] = field(default_factory=list)


# --- encoding ----------------------------------------------------------------------------


def choose_encoding(path: Path, requested: str | None = None) -> tuple[str, str | None]:
    """The encoding to read ``path`` with, and a note for the user if it was a fallback.

    Without ``requested``: a BOM decides (UTF-8 or UTF-16); otherwise the whole file is
    checked to be UTF-8, and if it is not, it is read as Windows-1252 (or Latin-1).
    """
    head = _read_head(path)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise ImportFileError(f"{path} is empty")
    if requested:
        try:
            return codecs.lookup(requested).name, None
        except LookupError:
            raise ImportFileError(f"unknown encoding {requested!r}") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None
    if head.startswith(b"PK\x03\x04"):
        raise ImportFileError(f"{path} is a ZIP or Excel (.xlsx) file; save it as CSV first")
    if head.count(b"\x00") > len(head) // 100:
        raise ImportFileError(
            f"{path} looks like a binary file, not text (if it is UTF-16 without a byte "
            "order mark, pass --encoding utf-16)"
        )
    bad_line = _first_bad_line(path, "utf-8")
    if bad_line is None:
        return "utf-8-sig", None
    fallback = "cp1252" if _first_bad_line(path, "cp1252") is None else "latin-1"
    return fallback, (
        f"not valid UTF-8 (first bad byte on line {bad_line}); read as {fallback}. "
        "Pass --encoding to choose another."
    )


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise ImportFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _first_bad_line(path: Path, encoding: str) -> int | None:
    """The line of the first byte that does not decode, or None if the file decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = 1
    with path.open("rb") as file:
        while block := file.read(_SCAN_BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                return lines + block.count(b"\n", 0, max(exc.start, 0))
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return lines
    return None


# --- CSV ---------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """A header name reduced to lower-case letters and digits."""
    return re.sub(r"[\W_]+", "", name.lower())


def sniff_delimiter(first_line: str) -> str:
    """The most frequent of , ; tab | in the first line (a comma if none occurs)."""
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def map_columns(header: list[str], names: ColumnNames) -> ColumnMap:
    """Find each column in the header: by the name the user gave, else by synonyms."""
    normalised = [normalise_name(h) for h in header]
    positions: dict[str, int] = {}
    for role in (f.name for f in fields(ColumnNames)):
        given = getattr(names, role)
        if given is not None:
            positions[role] = _given_column(given, role, header, normalised)
    taken = set(positions.values())
    for role, synonyms in SYNONYMS.items():
        if role in positions:
            continue
        for synonym in synonyms:
            key = normalise_name(synonym)
            if key in normalised and normalised.index(key) not in taken:
                positions[role] = normalised.index(key)
                taken.add(positions[role])
                break
    missing = [role for role in REQUIRED if role not in positions]
    if missing:
        raise ImportFileError(_missing_columns_message(missing, header))
    return ColumnMap(**positions)


def _given_column(given: str, role: str, header: list[str], normalised: list[str]) -> int:
    key = normalise_name(given)
    if key and key in normalised:
        return normalised.index(key)
    if given.isdigit() and 1 <= int(given) <= len(header):
        return int(given) - 1
    shown = ", ".join(header) or "(none)"
    raise ImportFileError(
        f"column {given!r} given with --{role}-col is not in the header: {shown}"
    )


def _missing_columns_message(missing: list[str], header: list[str]) -> str:
    parts = [
        f"no {role} column (looked for {', '.join(SYNONYMS[role][:6])}, …; "
        f"name it with --{role}-col)"
        for role in missing
    ]
    return "the header has " + "; ".join(parts) + f". Header: {', '.join(header)}"


def _positional_columns(names: ColumnNames) -> ColumnMap:
    """Columns of a file without header: every needed column must be given as a position."""
    positions: dict[str, int] = {}
    for role in (f.name for f in fields(ColumnNames)):
        given = getattr(names, role)
        if given is None:
            continue
        if not given.isdigit() or int(given) < 1:
            raise ImportFileError(
                f"without a header, --{role}-col must be a column number (1 = first), "
                f"not {given!r}"
            )
        positions[role] = int(given) - 1
    missing = [role for role in REQUIRED if role not in positions]
    if missing:
        flags = ", ".join(f"--{role}-col" for role in missing)
        raise ImportFileError(f"without a header, give the column numbers with {flags}")
    return ColumnMap(**positions)


class _CountingText:
    """A text stream over a binary file that knows how many bytes were consumed."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.raw: BinaryIO = path.open("rb")
        self.text = io.TextIOWrapper(self.raw, encoding=encoding, newline="")
        self.encoding = encoding

    def bytes_read(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.text.close()


def open_csv(
    path: Path,
    *,
    columns: ColumnNames,
    encoding: str,
    delimiter: str | None,
    has_header: bool,
    dates: DateParser,
    currency: str,
) -> tuple[OpenedFile, Callable[[], None]]:
    """Open a CSV order file; returns the opened file and a function that closes it."""
    sep = delimiter or sniff_delimiter(_first_text_line(path, encoding))
    stream = _CountingText(path, encoding)
    try:
        reader = csv.reader(stream.text, delimiter=sep)
        with _decoding(stream, lambda: reader.line_num):
            first = next((r for r in reader if r and r != [""]), [])
        first_line = reader.line_num
        if not first:
            raise ImportFileError(f"{path} has no rows")
        if has_header:
            mapping = map_columns([h.strip() for h in first], columns)
            batches = partial(_csv_batches, stream, sep, first_line)
        else:
            mapping = _positional_columns(columns)
            batches = partial(_csv_batches, stream, sep, first_line, first=first)
        if len(first) < mapping.width:
            raise ImportFileError(
                f"the first row has {len(first)} fields but column {mapping.width} is needed"
            )
    except BaseException:
        stream.close()
        raise
    parser = make_csv_batch_parser(
        mapping, width=len(first), dates=dates, currency=currency, delimiter=sep
    )
    notes = [] if delimiter or sep == "," else [f"delimiter detected: {sep!r}"]
    opened = OpenedFile(
        batches, parser, stream.bytes_read, path.stat().st_size, encoding,
        has_status=mapping.status is not None, notes=notes,
    )  # fmt: skip
    return opened, stream.close


def _first_text_line(path: Path, encoding: str) -> str:
    """The first non-blank line of the file, for sniffing the delimiter."""
    text = _read_head(path).decode(encoding, errors="replace")
    return next((line for line in text.splitlines() if line.strip()), "")


@contextmanager
def _decoding(stream: _CountingText, line: Callable[[], int]) -> Iterator[None]:
    """Turn a decoding error into an :class:`ImportFileError` that names the line."""
    try:
        yield
    except UnicodeDecodeError:
        raise ImportFileError(
            f"cannot decode the file as {stream.encoding} after line {line()}; "
            "pass --encoding (e.g. cp1252 or latin-1)"
        ) from None


def _csv_batches(
    stream: _CountingText,
    delimiter: str,
    start: int,
    size: int,
    *,
    first: list[str] | None = None,
) -> Iterator[Batch]:
    """Batches of up to ``size`` records after line ``start`` (``first``: a record read
    already, the first batch on its own).

    As long as the file has no quote character, every line is one record and the batches
    are plain lines (:class:`LineBatch`), split later for a whole batch at once. From the
    first batch with a quote character (a field may then span lines), or with a line longer
    than the csv module's field limit, the csv module reads the rest of the file.
    """
    if first:
        yield RecordBatch([start], [first])
    line = start  # the last line read
    limit = csv.field_size_limit()
    with _decoding(stream, lambda: line):
        while lines := list(islice(stream.text, size)):
            text = "".join(lines)
            if '"' in text or max(map(len, lines)) > limit:
                reader = csv.reader(chain(lines, stream.text), delimiter=delimiter)
                yield from _record_batches(stream, reader, line, size)
                return
            yield LineBatch(line + 1, lines, text)
            line += len(lines)


def _record_batches(stream: _CountingText, reader: Any, start: int, size: int) -> Iterator[Batch]:
    """Batches of up to ``size`` records from the csv ``reader``, whose first line is line
    ``start + 1`` of the file, with their start lines.

    A record the CSV reader rejects comes as its error message and ends its batch; the
    reader goes on after it. Blank lines come as empty records.
    """
    previous = start
    with _decoding(stream, lambda: start + reader.line_num):
        while True:
            records: list[Record] = []
            error = None
            try:
                records.extend(islice(reader, size))
            except csv.Error as exc:
                error = f"unreadable CSV record: {exc}"
            if not records and error is None:
                return
            last = start + reader.line_num
            if error is None and last - previous == len(records):
                starts: Sequence[int] = range(previous + 1, last + 1)
            else:  # some record spans lines (a quoted line break), or an error came
                starts = _starts(records, previous)
                if error is not None:
                    starts.append(starts[-1] + _span(records[-1]) if records else previous + 1)
                    records.append(error)
            previous = last
            yield RecordBatch(starts, records)


def _starts(records: list[Record], previous: int) -> list[int]:
    """The line each record starts on, counting the line breaks inside quoted fields."""
    starts, line = [], previous + 1
    for record in records:
        starts.append(line)
        line += _span(record)
    return starts


def _span(record: Record) -> int:
    """How many lines a parsed record took: one plus the line breaks in its fields."""
    if isinstance(record, str):
        return 1
    return 1 + sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in record)


# --- CDNOW -------------------------------------------------------------------------------


def open_cdnow(
    path: Path, *, encoding: str, currency: str, tz: tzinfo = UTC
) -> tuple[OpenedFile, Callable[[], None]]:
    """Open a CDNOW purchase log (master: 4 columns, sample: 5), skipping a header line."""
    stream = _CountingText(path, encoding)
    try:
        lines = enumerate(stream.text, 1)
        with _decoding(stream, lambda: 1):
            first_number, first = _first_fields(lines)
            if first and not first[0].isdigit():  # a header such as "customer_id date …"
                first_number, first = _first_fields(lines)
        if not first:
            raise ImportFileError(f"{path} has no data rows")
        if len(first) not in (4, 5):
            raise ImportFileError(
                f"line {first_number} has {len(first)} columns; a CDNOW file has 4 "
                "(customer_id date number_of_cds dollar_value) or 5 (with sample_id)"
            )
    except BaseException:
        stream.close()
        raise
    variant = "master (4 columns)" if len(first) == 4 else "sample (5 columns)"
    parser = row_by_row(CdnowRowParser(width=len(first), currency=currency, tz=tz))
    records = _cdnow_records(stream, first_number, first, lines)
    batches = partial(_batched, records)
    opened = OpenedFile(
        batches, parser, stream.bytes_read, path.stat().st_size, encoding,
        notes=[f"CDNOW {variant}"],
    )  # fmt: skip
    return opened, stream.close


def _first_fields(lines: Iterator[tuple[int, str]]) -> tuple[int, list[str]]:
    """The number and fields of the next non-blank line, or (0, []) at the end."""
    return next(((n, text.split()) for n, text in lines if text.strip()), (0, []))


def _cdnow_records(
    stream: _CountingText, first_number: int, first: list[str], lines: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, Record]]:
    yield first_number, first
    number = first_number
    with _decoding(stream, lambda: number):
        for number, line in lines:
            fields_ = line.split()
            if fields_:
                yield number, fields_


def _batched(records: Iterator[tuple[int, Record]], size: int) -> Iterator[Batch]:
    """(line, record) pairs in batches of up to ``size``."""
    while pairs := list(islice(records, size)):
        yield RecordBatch([line for line, _ in pairs], [record for _, record in pairs])
