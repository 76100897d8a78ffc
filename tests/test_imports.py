"""Order import (`crmbot import orders`) and customer linking, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from db import migrate
from db.engine import make_engine, make_session_factory, session_scope
from db.imports import (
    ColumnNames,
    ImportFileError,
    ImportOptions,
    ImportProgress,
    LinkError,
    import_orders,
    link_customer,
)
from db.imports.batches import (
    LineBatch,
    ParsedBatch,
    RecordBatch,
    _columnwise,
    make_csv_batch_parser,
    parse_each,
)
from db.imports.fields import (
    DateParser,
    FieldError,
    all_plain_amounts,
    parse_amount,
    parse_items,
    plain_amount,
)
from db.imports.rows import ColumnMap, make_csv_parser
from db.imports.writers import first_and_last
from db.models import (
    Conversation,
    Customer,
    CustomerSnapshot,
    Interaction,
    Order,
    OrderLine,
    Product,
    Survey,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CRMBOT_SHARED_DATA", ROOT.parent / "shared" / "data"))
CDNOW_SAMPLE = SHARED_DATA / "cdnow" / "CDNOW_sample.txt"

GOOD_CSV = """\
Order Number,Client,created_at,Value,Status
A-1,c1,2024-01-02,10.50,paid
A-2,c2,2024-01-03T10:00:00+02:00,5,shipped
A-3,c1,2024-02-01T08:30:15Z,"1,234.5",
A-4,c3,2024-02-03T23:59,0.00,Completed
"""


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


def write(tmp_path: Path, text: str, name: str = "orders.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(factory, path: Path, **options):
    return import_orders(session_factory=factory, path=path, options=ImportOptions(**options))


def orders(factory) -> dict[str, Order]:
    with session_scope(factory) as session:
        return {o.external_id: o for o in session.exec(select(Order)).all()}


def customers(factory) -> dict[str | None, Customer]:
    with session_scope(factory) as session:
        return {c.external_id: c for c in session.exec(select(Customer)).all()}


def count(factory, model) -> int:
    with session_scope(factory) as session:
        return len(session.exec(select(model)).all())


def reasons(report) -> dict[int, str]:
    return {bad.line: bad.reason for bad in report.bad_rows}


# --- good files --------------------------------------------------------------------------


def test_good_file_imports_orders_and_creates_customers(factory, tmp_path):
    report = run(factory, write(tmp_path, GOOD_CSV))
    assert report.committed and report.bad_row_count == 0
    assert (report.rows_read, report.orders_imported, report.customers_created) == (4, 4, 3)
    stored = orders(factory)
    assert stored["A-1"].ordered_at == datetime(2024, 1, 2, tzinfo=UTC)
    assert stored["A-2"].ordered_at == datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
    assert stored["A-3"].ordered_at == datetime(2024, 2, 1, 8, 30, 15, tzinfo=UTC)
    assert stored["A-4"].ordered_at == datetime(2024, 2, 3, 23, 59, tzinfo=UTC)
    assert [stored[k].total for k in ("A-1", "A-2", "A-3", "A-4")] == [
        Decimal("10.50"),
        Decimal("5.00"),
        Decimal("1234.50"),
        Decimal("0.00"),
    ]
    assert [stored[k].status for k in ("A-1", "A-2", "A-3", "A-4")] == [
        "paid",
        "shipped",
        "placed",
        "delivered",
    ]
    assert {o.currency for o in stored.values()} == {"USD"}
    people = customers(factory)
    assert stored["A-3"].customer_id == stored["A-1"].customer_id == people["c1"].id
    assert people["c1"].telegram_user_id is None
    assert people["c1"].first_seen_at == datetime(2024, 1, 2, tzinfo=UTC)
    assert people["c1"].last_seen_at == datetime(2024, 2, 1, 8, 30, 15, tzinfo=UTC)


def test_bulk_written_timestamps_are_what_the_orm_writes_and_reads(factory, engine, tmp_path):
    """The fast path bypasses SQLAlchemy's types; the ORM must read its rows back right."""
    run(factory, write(tmp_path, GOOD_CSV))
    with session_scope(factory) as session:
        orm_customer = Customer(external_id="orm")
        session.add(orm_customer)
        session.flush()
        session.add(
            Order(
                external_id="ORM-1",
                customer_id=orm_customer.id,
                ordered_at=datetime(2024, 1, 3, 8, 0, tzinfo=UTC),
                total=Decimal("5.00"),
            )
        )
    with engine.connect() as conn:
        raw = dict(conn.execute(sa.text("SELECT external_id, ordered_at FROM orders")).all())
        kinds = dict(
            conn.execute(
                sa.text("SELECT external_id, typeof(ordered_at) || typeof(total) FROM orders")
            ).all()
            if engine.dialect.name == "sqlite"
            else []
        )
    if engine.dialect.name == "sqlite":
        assert raw["A-2"] == raw["ORM-1"] == "2024-01-03 08:00:00.000000"
        assert kinds["A-2"] == kinds["ORM-1"], "bulk and ORM rows are stored the same way"
    else:
        assert raw["A-2"] == raw["ORM-1"]
    stored = orders(factory)
    assert stored["A-2"].ordered_at == stored["ORM-1"].ordered_at
    assert stored["A-2"].ordered_at.tzinfo is not None
    assert stored["A-2"].ordered_at.utcoffset().total_seconds() == 0
    assert stored["A-2"].total == stored["ORM-1"].total == Decimal("5.00")


def test_columns_named_by_flags_or_numbers_and_a_file_without_header(factory, tmp_path):
    text = "x;who;when;how much;extra\nB-1;k1;2024-03-01;7.25;z\n"
    report = run(
        factory,
        write(tmp_path, text),
        columns=ColumnNames(order="1", customer="who", date="When", amount="how_much"),
    )
    assert report.committed and report.orders_imported == 1
    assert orders(factory)["B-1"].total == Decimal("7.25")
    headless = write(tmp_path, "B-2\tk2\t01.04.2024\t3\n", name="plain.tsv")
    report = run(
        factory,
        headless,
        has_header=False,
        columns=ColumnNames(order="1", customer="2", date="3", amount="4"),
        date_format="%d.%m.%Y",
        timezone="Europe/Berlin",
        currency="eur",
    )
    assert report.committed, report.bad_rows
    stored = orders(factory)["B-2"]
    assert stored.ordered_at == datetime(2024, 3, 31, 22, 0, tzinfo=UTC)
    assert stored.currency == "EUR"


def test_items_create_products_and_order_lines(factory, tmp_path):
    with session_scope(factory) as session:
        session.add(Product(sku="OLD", name="Old product", price=Decimal("4.00")))
    text = (
        "order_id,customer_id,order_date,total,items\n"
        "I-1,c1,2024-01-01,25.00,NEW-1:2:9.99;OLD\n"
        "I-2,c1,2024-01-02,8.00,OLD:2 | NEW-2\n"
        "I-3,c2,2024-01-03,1.00,\n"
    )
    report = run(factory, write(tmp_path, text))
    assert report.committed, report.bad_rows
    assert (report.order_lines, report.products_created) == (4, 2)
    with session_scope(factory) as session:
        products = {p.id: p for p in session.exec(select(Product)).all()}
        lines = session.exec(select(OrderLine).order_by(OrderLine.id)).all()
        got = [(products[line.product_id].sku, line.quantity, line.unit_price) for line in lines]
    assert got == [
        ("NEW-1", 2, Decimal("9.99")),
        ("OLD", 1, Decimal("4.00")),  # no price given: the catalogue price
        ("OLD", 2, Decimal("4.00")),
        ("NEW-2", 1, Decimal("0.00")),  # a new product without price costs 0
    ]
    new = next(p for p in products.values() if p.sku == "NEW-1")
    assert (new.name, new.price, new.active) == ("NEW-1", Decimal("9.99"), True)


def test_progress_is_reported_through_the_callback(factory, tmp_path):
    rows = "".join(f"P-{i},c{i % 7},2024-01-01,{i}\n" for i in range(25))
    path = write(tmp_path, "order,customer,date,amount\n" + rows)
    seen: list[ImportProgress] = []
    import_orders(
        session_factory=factory,
        path=path,
        options=ImportOptions(chunk_size=10),
        on_progress=seen.append,
    )
    assert [p.rows_read for p in seen] == [10, 20, 25, 25]
    assert seen[-1].bytes_read == seen[-1].bytes_total == path.stat().st_size
    assert seen[-1].orders_imported == 25


# --- bad rows and all-or-nothing ---------------------------------------------------------

BAD_CSV = """\
order_id,customer_id,date,amount
G-1,c1,2024-01-01,10
G-2,,2024-01-01,10
G-3,c1,31/12/2024,10
G-4,c1,2024-01-01,-5
G-5,c1,2024-01-01,ten
G-6,c1,2024-01-01
G-7,c1,2024-01-01,1,extra
G-1,c1,2024-01-01,11
,c1,2024-01-01,1
G-8,c2,2024-13-01,1
G-9,c2,2024-01-02,12,5
G-10,c2,2024-01-02,3.999
"""


def test_every_bad_row_is_reported_with_line_and_reason_and_nothing_written(factory, tmp_path):
    report = run(factory, write(tmp_path, BAD_CSV))
    assert not report.committed
    assert report.bad_row_count == 10
    got = reasons(report)
    assert got[3] == "missing customer"
    assert got[4].startswith("unparseable date '31/12/2024'")
    assert got[5] == "negative amount '-5'"
    assert got[6] == "unparseable amount 'ten'"
    assert got[7] == "expected 4 fields, found 3"
    assert got[8] == "expected 4 fields, found 5"
    assert got[9] == "order id 'G-1' is also on line 2 with other content (total 10.00 → 11.00)"
    assert got[10] == "missing order id"
    assert got[11].startswith("unparseable date '2024-13-01'")
    assert got[12] == "expected 4 fields, found 5"
    assert count(factory, Order) == 0 and count(factory, Customer) == 0
    assert report.orders_imported == 2  # what a --skip-bad run would import (G-1, G-10)


def test_skip_bad_imports_the_good_rows_and_reports_the_bad(factory, tmp_path):
    report = run(factory, write(tmp_path, BAD_CSV), skip_bad=True)
    assert report.committed and report.bad_row_count == 10
    stored = orders(factory)
    assert set(stored) == {"G-1", "G-10"}
    assert stored["G-1"].total == Decimal("10.00")
    assert stored["G-10"].total == Decimal("4.00")  # rounded to cents, half up


def test_dry_run_checks_everything_and_writes_nothing(factory, tmp_path):
    report = run(factory, write(tmp_path, GOOD_CSV), dry_run=True)
    assert report.dry_run and not report.committed and report.orders_imported == 4
    assert count(factory, Order) == 0 and count(factory, Customer) == 0


def test_bad_rows_list_is_capped_but_all_are_counted(factory, tmp_path):
    rows = "".join(f"X-{i},c,not a date,1\n" for i in range(300))
    report = run(factory, write(tmp_path, "order,customer,date,amount\n" + rows), keep_bad_rows=20)
    assert report.bad_row_count == 300 and len(report.bad_rows) == 20
    assert [b.line for b in report.bad_rows[:3]] == [2, 3, 4]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_count_physical_lines_of_quoted_multiline_fields(factory, tmp_path, newline):
    lines = [
        "order,customer,date,amount,items",
        'M-1,c1,2024-01-01,1,"A;',
        "B;",
        'C"',
        "",
        "M-2,c1,nope,1,",
        "M-3,c1,2024-01-01,1,",
        "M-4,c1,2024-01-01,x,",
    ]
    report = run(factory, write(tmp_path, newline.join(lines) + newline))
    assert list(reasons(report)) == [6, 8], report.bad_rows
    assert report.rows_read == 4


def test_an_unreadable_csv_record_is_a_bad_row_and_reading_goes_on(factory, tmp_path):
    huge = "x" * 200_000
    text = f"order,customer,date,amount\nH-1,c1,2024-01-01,1{huge}\nH-2,c1,2024-01-01,2\n"
    report = run(factory, write(tmp_path, text), skip_bad=True)
    assert reasons(report)[2].startswith("unreadable CSV record: field larger than field limit")
    assert set(orders(factory)) == {"H-2"}


def test_ids_with_nul_or_too_long_are_bad_rows(factory, tmp_path):
    text = f"order,customer,date,amount\nN\x001,c1,2024-01-01,1\nN-2,{'c' * 65},2024-01-01,1\n"
    report = run(factory, write(tmp_path, text))
    assert reasons(report) == {
        2: "order id contains a NUL character",
        3: "customer longer than 64 characters",
    }


def test_big_imports_build_the_order_indexes_at_the_end(factory, engine, tmp_path, monkeypatch):
    """Index deferral (SQLite) must leave the same indexes, after a commit or a rollback."""
    monkeypatch.setattr("db.imports.orders.DEFER_INDEXES_FROM", 10)

    def indexes() -> dict[str, set[str]]:
        inspector = sa.inspect(engine)
        return {t: {i["name"] for i in inspector.get_indexes(t)} for t in ("orders", "customers")}

    before = indexes()
    assert "ix_customers_last_seen_at" in before["customers"]
    rows = "".join(f"D-{i},c{i % 13},2024-01-{1 + i % 28:02d},{i}\n" for i in range(300))
    path = write(tmp_path, "order,customer,date,amount\n" + rows + "D-x,c1,bad,1\n")
    failed = run(factory, path, chunk_size=50)
    assert not failed.committed
    assert indexes() == before
    done = run(factory, path, chunk_size=50, skip_bad=True)
    assert done.committed and done.orders_imported == 300
    assert indexes() == before
    if engine.dialect.name == "sqlite":
        wal = Path(f"{engine.url.database}-wal")
        assert not wal.exists() or wal.stat().st_size == 0, "a big import empties the WAL"
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        by_customer = conn.execute(
            sa.text("SELECT count(*) FROM orders WHERE customer_id = :c"),
            {"c": customers(factory)["c3"].id},
        ).scalar()
    assert by_customer == len([i for i in range(300) if i % 13 == 3])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_quote_later_in_the_file_switches_to_the_csv_reader_with_right_line_numbers(
    factory, tmp_path, newline
):
    """Lines are split a batch at a time until a quote character appears; from there the
    csv module reads. Blank lines, bad rows and multi-line fields keep their line numbers
    on both sides of the switch."""
    lines = [
        "order,customer,date,amount,items",
        "Q-1,c1,2024-01-01,1,",
        "",
        "Q-2,c1,nope,1,",
        "Q-3,c2,2024-01-02T10:00:00Z,2.5,",
        "Q-4,c2,2024-01-02,1,too,many",
        'Q-5,c3,2024-01-03,3,"A;',
        'B"',
        "Q-6,c3,2024-01-03,x,",
        "Q-7,c3,2024-01-04,4,",
    ]
    report = run(factory, write(tmp_path, newline.join(lines) + newline), chunk_size=2)
    assert reasons(report) == {
        4: "unparseable date 'nope' (expected ISO 8601 such as 2024-12-31 or "
        "2024-12-31T14:30:00Z; give --date-format for other layouts)",
        6: "expected 5 fields, found 6",
        9: "unparseable amount 'x'",
    }
    assert report.rows_read == 7 and report.orders_imported == 4
    report = run(factory, write(tmp_path, newline.join(lines) + newline), skip_bad=True)
    stored = orders(factory)
    assert set(stored) == {"Q-1", "Q-3", "Q-5", "Q-7"}
    assert stored["Q-3"].ordered_at == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert stored["Q-3"].total == Decimal("2.50")


def test_ids_are_stored_exactly_whatever_characters_they_hold(factory, tmp_path):
    """Ids that cannot go into the JSON payload as they are (quotes, backslashes, control
    characters) take the escaping path; spaces around fields are stripped."""
    text = (
        "order,customer,date,amount\n"
        '"O""1",c\\1,2024-01-01,1\n'
        "O\x012, c\u00e9 ,2024-01-01,2\n"
        "O-3,c\u00a0x,2024-01-01,3\n"
    )
    report = run(factory, write(tmp_path, text))
    assert report.committed, report.bad_rows
    assert set(orders(factory)) == {'O"1', "O\x012", "O-3"}
    assert {"c\\1", "c\u00e9", "c\u00a0x"} <= set(customers(factory))


def test_a_big_import_alone_uses_a_rollback_journal_and_leaves_the_wal_mode(
    factory, engine, tmp_path, monkeypatch
):
    """With no other connection to the file, a big SQLite import writes its pages once
    (rollback journal); the database is in WAL mode again afterwards, also after a
    rollback. With another connection open it keeps the WAL and still works."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    from db.imports.writers import SqliteWriter

    monkeypatch.setattr("db.imports.orders.DEFER_INDEXES_FROM", 10)
    switched: list[str | None] = []
    original = SqliteWriter._rollback_journal

    def spy(self):
        switched.append(original(self))
        return switched[-1]

    monkeypatch.setattr(SqliteWriter, "_rollback_journal", spy)
    rows = "".join(f"J-{i},c{i % 7},2024-02-{1 + i % 28:02d},{i}\n" for i in range(200))
    path = write(tmp_path, "order,customer,date,amount\n" + rows + "J-x,c1,bad,1\n")
    engine.dispose()  # no idle connection of the pool keeps the file open
    assert not run(factory, path, chunk_size=40).committed
    assert run(factory, path, chunk_size=40, skip_bad=True).committed
    assert switched == ["wal", "wal"]
    database = engine.url.database
    with sqlite3.connect(database) as other:  # a reader that stays open
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("SELECT count(*) FROM orders").fetchone() == (200,)
        more = "".join(f"K-{i},c{i % 5},2024-03-01,{i}\n" for i in range(300))
        report = run(factory, write(tmp_path, "order,customer,date,amount\n" + more, "more.csv"))
        assert report.committed and report.orders_imported == 300
        assert switched == ["wal", "wal", None], "not switched while another reader is open"
        assert other.execute("SELECT count(*) FROM orders").fetchone() == (500,)
        assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not Path(f"{database}-journal").exists()


FIELD_VALUES = {
    "order": ["A-1", "A-2", " A-3 ", "", "x" * 65, "N\x00"],
    "customer": ["c1", "c2", "", " c3"],
    "date": [
        "2024-01-02",
        "2024-01-02T10:00:00Z",
        "2024-01-01T10:00+01",
        "nope",
        "",
        "2024-02-29T23:59:59Z",
        "2023-02-29T10:00:00Z",
        "2024-01-02 10:00:00",
        "2024-01-02T10:00:00z",
    ],
    "amount": ["1", "2.50", "1,000.25", "-1", "x", "3.999", ""],
    "status": ["", "paid", "Shipped", "lost"],
}


@settings(max_examples=300, deadline=None)
@given(
    records=st.lists(
        st.one_of(
            st.fixed_dictionaries({k: st.sampled_from(v) for k, v in FIELD_VALUES.items()}).map(
                lambda f: [f["order"], f["customer"], f["date"], f["amount"], f["status"]]
            ),
            st.just([]),
            st.just(["too", "few"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_column_wise_and_row_by_row_parsing_agree(records):
    """The fast paths (records split by the csv module, or plain lines split for the whole
    batch at once) give exactly what the row parser gives, or step aside for it."""
    columns = ColumnMap(order=0, customer=1, date=2, amount=3, status=4)
    starts = list(range(2, 2 + len(records)))
    fast = make_csv_batch_parser(
        columns, width=5, dates=DateParser(), currency="USD", delimiter=";"
    )
    slow = make_csv_parser(columns, width=5, dates=DateParser(), currency="USD")
    expected = as_rows(parse_each(slow, starts, records))
    assert as_rows(fast(RecordBatch(starts, records))) == expected
    lines = [";".join(record) + "\n" for record in records]
    assert as_rows(fast(LineBatch(2, lines, "".join(lines)))) == expected


def as_rows(parsed: ParsedBatch) -> tuple[object, ...]:
    return parsed.columns.rows(), parsed.bad, parsed.records


def test_a_clean_batch_takes_the_column_wise_path():
    columns = ColumnMap(order=0, customer=1, date=2, amount=3, status=4)
    records = [
        ["A-1", "c1", "2024-01-01T10:00+01", "2.50", "paid"],
        ["A-2", "c2", "2024-01-02", "1", ""],
    ]
    found = _columnwise([2, 3], records, columns, width=5, dates=DateParser(), currency="USD")
    slow = make_csv_parser(columns, width=5, dates=DateParser(), currency="USD")
    assert found is not None and found.rows() == parse_each(slow, [2, 3], records).columns.rows()
    assert found.stamps[0] == "2024-01-01 09:00:00.000000"


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(0, 13),
            st.integers(0, 32),
            st.integers(0, 25),
            st.integers(0, 60),
            st.integers(0, 61),
            st.sampled_from(["T", " ", "x"]),
            st.sampled_from(["Z", "", "z", "+"]),
        ).map(
            lambda t: (
                f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}{t[6]}{t[3]:02d}:{t[4]:02d}:{t[5]:02d}{t[7]}"
            )
        ),
        min_size=1,
        max_size=6,
    )
)
def test_whole_date_columns_convert_like_each_date(texts):
    """The numpy check of a date column accepts exactly the real moments, like
    ``datetime.fromisoformat`` one by one, and gives the same timestamps."""
    parse = DateParser()
    try:
        expected: list[str] | None = [parse(text) for text in texts]
    except FieldError:
        expected = None
    assert parse.convert_all(texts) == expected


@settings(max_examples=500, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.text(alphabet="0123456789.", max_size=15),
            st.text(alphabet="019., \n-e\u0661x", max_size=6),
            st.from_regex(r"[0-9]{1,10}(\.[0-9]{1,2})?", fullmatch=True),
        ),
        max_size=6,
    )
)
def test_a_whole_amount_column_is_checked_like_each_amount(texts):
    assert all_plain_amounts(texts) == all(map(plain_amount, texts))


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_iso_dates_become_the_same_instant_in_utc(moment):
    text = moment.isoformat()
    parsed = datetime.fromisoformat(DateParser()(text)).replace(tzinfo=UTC)
    assert parsed == moment.astimezone(UTC)  # (== across zones is False inside a fold)


# --- duplicates and conflicts ------------------------------------------------------------


def test_importing_the_same_file_again_creates_no_duplicates(factory, tmp_path):
    path = write(tmp_path, GOOD_CSV)
    run(factory, path)
    again = run(factory, path)
    assert again.committed and again.bad_row_count == 0
    assert (again.orders_imported, again.already_present, again.customers_created) == (0, 4, 0)
    assert count(factory, Order) == 4 and count(factory, Customer) == 3


def test_conflicting_content_is_reported_and_the_stored_order_kept(factory, tmp_path):
    run(factory, write(tmp_path, GOOD_CSV))
    changed = GOOD_CSV.replace("A-2,c2,", "A-2,c9,").replace("10.50,paid", "10.50,cancelled")
    changed += "A-5,c4,2024-03-01,9,\n"
    report = run(factory, write(tmp_path, changed, name="changed.csv"))
    assert not report.committed and report.conflicts == 2
    got = reasons(report)
    assert got[2] == (
        "conflict: order 'A-1' already exists with other content "
        "(status paid → cancelled); the stored order is kept"
    )
    assert got[3].startswith("conflict: order 'A-2'") and "customer c2 → c9" in got[3]
    skipped = run(factory, write(tmp_path, changed, name="changed.csv"), skip_bad=True)
    assert skipped.committed and skipped.orders_imported == 1 and skipped.already_present == 2
    assert orders(factory)["A-1"].status == "paid"
    assert "c9" not in customers(factory), "no customer is left without orders by a conflict"
    assert skipped.customers_created == 1


def test_repeated_order_ids_across_chunks(factory, tmp_path):
    text = (
        "order,customer,date,amount\n"
        "R-1,c1,2024-01-01,1\nR-2,c1,2024-01-01,2\n"
        "R-1,c1,2024-01-01,1\nR-2,c1,2024-01-01,3\n"
    )
    report = run(factory, write(tmp_path, text), chunk_size=2, skip_bad=True)
    assert report.duplicates_in_file == 1 and report.bad_row_count == 1
    assert reasons(report)[5] == (
        "order id 'R-2' is also earlier in the file with other content (total 2.00 → 3.00)"
    )
    assert orders(factory)["R-2"].total == Decimal("2.00")


@pytest.mark.parametrize("spanning_limit", [100_000, 0])
def test_first_and_last_seen_span_all_chunks(factory, tmp_path, monkeypatch, spanning_limit):
    """Customers of one chunk get first and last seen from it; those of several chunks are
    corrected at the end, one by one or (beyond the limit) all new customers at once."""
    monkeypatch.setattr("db.imports.chunks._SPANNING_LIMIT", spanning_limit)
    text = "order,customer,date,amount\nS-1,c1,2024-05-01,1\nS-2,c2,2024-01-01,1\n"
    text += "S-3,c1,2023-01-01,1\nS-4,c1,2025-01-01,1\nS-5,c3,2024-02-02,1\n"
    text += "S-6,c3,2024-02-01T10:00:00.5Z,1\nS-7,c2,2023-06-01,1\n"
    run(factory, write(tmp_path, text), chunk_size=2)
    seen = {
        name: (c.first_seen_at, c.last_seen_at)
        for name, c in customers(factory).items()
        if name is not None
    }
    assert seen == {
        "c1": (datetime(2023, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        "c2": (datetime(2023, 6, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)),
        "c3": (
            datetime(2024, 2, 1, 10, 0, 0, 500_000, tzinfo=UTC),
            datetime(2024, 2, 2, tzinfo=UTC),
        ),
    }


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_first_and_last_of_each_customer_in_a_chunk(rows):
    customers_ = [name for name, _ in rows]
    stamps = [moment.isoformat(" ", "microseconds") for _, moment in rows]
    names = list(dict.fromkeys(customers_))[::-1]
    first, last = first_and_last(customers_, stamps, names)
    for name, low, high in zip(names, first, last, strict=True):
        mine = [t for c, t in zip(customers_, stamps, strict=True) if c == name]
        assert (low, high) == (min(mine), max(mine))


# --- whole-file problems -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\n \n", "is empty"),
        (b"name,city\nAnn,Oslo\n", "the header has no customer column"),
        (b"PK\x03\x04rest-of-a-zip", "Excel"),
        (b"\x00\x01\x02binary", "binary"),
    ],
)
def test_unusable_files_raise_a_clear_error(factory, tmp_path, content, message):
    path = tmp_path / "f.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        run(factory, path)


def test_missing_columns_are_named_with_their_flag(factory, tmp_path):
    with pytest.raises(ImportFileError) as info:
        run(factory, write(tmp_path, "customer,when,amount\nc,2024-01-01,1\n"))
    assert "no order column" in str(info.value) and "--order-col" in str(info.value)
    assert "no date column" in str(info.value)
    with pytest.raises(ImportFileError, match="--amount-col is not in the header"):
        run(factory, write(tmp_path, GOOD_CSV), columns=ColumnNames(amount="price"))


def test_encodings_bom_windows_1252_and_utf16(factory, tmp_path):
    text = "order,customer,date,amount\nE-1,Müller,2024-01-01,1\n"
    report = run(factory, write(tmp_path, "\ufeff" + text, name="bom.csv"))
    assert report.committed and report.encoding == "utf-8-sig"
    report = run(factory, write(tmp_path, text.replace("E-1", "E-2"), "w.csv", "cp1252"))
    assert report.committed and report.encoding == "cp1252"
    assert any("not valid UTF-8" in note for note in report.notes)
    report = run(factory, write(tmp_path, text.replace("E-1", "E-3"), "u.csv", "utf-16"))
    assert report.committed and report.encoding == "utf-16"
    assert {o.customer_id for o in orders(factory).values()} == {customers(factory)["Müller"].id}
    with pytest.raises(ImportFileError, match="cannot decode the file as utf-8"):
        run(
            factory,
            write(tmp_path, text.replace("E-1", "E-4"), "x.csv", "cp1252"),
            encoding="utf-8",
        )
    assert count(factory, Order) == 3


def test_bad_options_are_refused():
    for bad in (
        {"format": "xml"},
        {"currency": "dollars"},
        {"timezone": "Mars/Base"},
        {"date_format": "dd/mm/yyyy"},
        {"delimiter": ";;"},
    ):
        with pytest.raises(ValueError):
            ImportOptions(**bad)


# --- field formats -----------------------------------------------------------------------


def test_items_format():
    assert parse_items("A-1:2:9.99; B:1 |C") == (
        ("A-1", 2, Decimal("9.99")),
        ("B", 1, None),
        ("C", 1, None),
    )
    assert parse_items("") == ()
    for bad in ("A:0", "A:x", "A:1:-2", "A:1:2:3", ":1"):
        with pytest.raises(FieldError):
            parse_items(bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", "12"), ("12.5", "12.5"), ("0.005", "0.01"), ("$1,000.25", "1000.25"), ("7 €", "7")],
)
def test_amounts(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "-1", "NaN", "12,50", "1e12", "abc"])
def test_bad_amounts(text):
    with pytest.raises(FieldError):
        parse_amount(text)


# --- CDNOW -------------------------------------------------------------------------------

# Made-up rows in the CDNOW layouts (the real files are only read from the shared folder).
CDNOW_MASTER = """\
 customer_id  date number_of_cds  dollar_value
 00101 20010301  1   10.00
 00102 20010315  1   15.50
 00102 20010315  5   60.00
 00102 20010315  5   60.00
 00103 20010302  2   21.00
"""


def test_cdnow_ids_are_derived_and_stable(factory, tmp_path):
    path = write(tmp_path, CDNOW_MASTER.replace("\n", "\r\n"), name="master.txt")
    report = run(factory, path, format="cdnow")
    assert report.committed and (report.orders_imported, report.customers_created) == (5, 3)
    stored = orders(factory)
    assert set(stored) == {
        "cdnow-00101-20010301-1",
        "cdnow-00102-20010315-1",
        "cdnow-00102-20010315-2",
        "cdnow-00102-20010315-3",
        "cdnow-00103-20010302-1",
    }
    assert stored["cdnow-00102-20010315-2"].total == Decimal("60.00")
    assert stored["cdnow-00103-20010302-1"].ordered_at == datetime(2001, 3, 2, tzinfo=UTC)
    assert set(customers(factory)) == {"cdnow-00101", "cdnow-00102", "cdnow-00103"}
    assert report.order_lines == 5 and count(factory, Product) == 1
    sample = " 00102 0001 20010315  1   15.50\n 00103 0002 20010302  2   21.00\n"
    again = run(factory, write(tmp_path, sample, name="sample.txt"), format="cdnow")
    assert again.committed and again.already_present == 2 and again.orders_imported == 0


def test_cdnow_bad_rows_and_wrong_layout(factory, tmp_path):
    text = (
        " 00101 20010301 1 10.00\n 00102 2001031 1 15.50\n 00103 20010301 x 1\n 00104 20010301\n"
    )
    report = run(factory, write(tmp_path, text, name="c.txt"), format="cdnow")
    assert reasons(report) == {
        2: "unparseable date '2001031' (expected YYYYMMDD)",
        3: "bad number_of_cds 'x'",
        4: "expected 4 fields, found 2",
    }
    with pytest.raises(ImportFileError, match="a CDNOW file has 4"):
        run(factory, write(tmp_path, "1 2 3\n", name="d.txt"), format="cdnow")


needs_cdnow = pytest.mark.skipif(
    not CDNOW_SAMPLE.exists(), reason=f"CDNOW sample not found at {CDNOW_SAMPLE}"
)


@needs_cdnow
def test_cdnow_sample_subset_from_the_shared_data(factory, tmp_path):
    with CDNOW_SAMPLE.open("rb") as source:
        head = b"".join(source.readline() for _ in range(200))
    path = tmp_path / "head.txt"
    path.write_bytes(head)
    report = run(factory, path, format="cdnow")
    expected_customers = len({line.split()[0] for line in head.decode().splitlines()})
    assert report.committed and report.orders_imported == 200
    assert report.customers_created == expected_customers
    total = sum(Decimal(line.split()[4]) for line in head.decode().splitlines())
    assert sum(o.total for o in orders(factory).values()) == total


@needs_cdnow
def test_the_whole_cdnow_sample_imports(factory):
    report = run(factory, CDNOW_SAMPLE, format="cdnow")
    assert report.committed and report.bad_row_count == 0
    assert (report.rows_read, report.orders_imported) == (6919, 6919)
    assert report.customers_created == 2357 == count(factory, Customer)
    again = run(factory, CDNOW_SAMPLE, format="cdnow")
    assert again.already_present == 6919 and count(factory, Order) == 6919


# --- linking Telegram users --------------------------------------------------------------


def _chat_customer(factory, telegram_user_id: int) -> int:
    """A customer created by chatting, with a conversation, messages, an order and more."""
    with session_scope(factory) as session:
        customer = Customer(
            telegram_user_id=telegram_user_id,
            telegram_chat_id=telegram_user_id,
            first_name="Ada",
            username="ada",
            marketing_consent=True,
            first_seen_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        session.add(customer)
        session.flush()
        conversation = Conversation(customer_id=customer.id)
        session.add(conversation)
        session.flush()
        for text in ("hi", "where is my order?"):
            session.add(
                Interaction(
                    customer_id=customer.id,
                    conversation_id=conversation.id,
                    direction="in",
                    text=text,
                )
            )
        session.add(Survey(customer_id=customer.id, kind="csat", score=5))
        session.add(
            Order(
                external_id="CHAT-1",
                customer_id=customer.id,
                ordered_at=datetime(2024, 1, 1, tzinfo=UTC),
                total=Decimal("1"),
            )
        )
        session.add(CustomerSnapshot(customer_id=customer.id, as_of=date(2024, 1, 1)))
        assert customer.id is not None
        return customer.id


def test_link_without_a_chat_row_sets_the_telegram_id(factory, tmp_path):
    run(factory, write(tmp_path, GOOD_CSV))
    with session_scope(factory) as session:
        result = link_customer(session=session, external_id="c1", telegram_user_id=77)
    assert result.merged_customer_id is None
    assert customers(factory)["c1"].telegram_user_id == 77
    with session_scope(factory) as session:
        assert link_customer(session=session, external_id="c1", telegram_user_id=77).already_linked


def test_link_merges_the_chat_customer_into_the_imported_one(factory, tmp_path):
    run(factory, write(tmp_path, GOOD_CSV))
    chat_id = _chat_customer(factory, 501)
    imported_id = customers(factory)["c1"].id
    with session_scope(factory) as session:
        session.add(CustomerSnapshot(customer_id=imported_id, as_of=date(2024, 1, 1)))
    with session_scope(factory) as session:
        result = link_customer(session=session, external_id="c1", telegram_user_id=501)
    assert (result.customer_id, result.merged_customer_id) == (imported_id, chat_id)
    assert result.moved == {"conversations": 1, "interactions": 2, "orders": 1, "surveys": 1}
    assert result.dropped == {"customer_snapshots": 1}
    with session_scope(factory) as session:
        assert session.get(Customer, chat_id) is None
        merged = session.get(Customer, imported_id)
        assert merged is not None
        assert (merged.telegram_user_id, merged.first_name, merged.username) == (501, "Ada", "ada")
        assert merged.external_id == "c1" and merged.marketing_consent is True
        assert merged.first_seen_at == datetime(2020, 1, 1, tzinfo=UTC)
        for model in (Conversation, Interaction, Survey, CustomerSnapshot):
            assert {row.customer_id for row in session.exec(select(model)).all()} == {imported_id}
        mine = session.exec(select(Order).where(Order.customer_id == imported_id)).all()
        assert {o.external_id for o in mine} == {"A-1", "A-3", "CHAT-1"}


def test_link_refuses_what_would_lose_an_identity(factory, tmp_path):
    run(factory, write(tmp_path, GOOD_CSV))
    with session_scope(factory) as session:
        link_customer(session=session, external_id="c1", telegram_user_id=1)
    cases = [
        ("nobody", 2, "no customer with external id 'nobody'"),
        ("c1", 2, "already linked to Telegram user 1"),
        ("c2", 1, "Telegram user 1 is already linked to customer 'c1'"),
    ]
    for external_id, user_id, message in cases:
        with pytest.raises(LinkError, match=message), session_scope(factory) as session:
            link_customer(session=session, external_id=external_id, telegram_user_id=user_id)


# --- the command line --------------------------------------------------------------------


def crmbot(*args: str, database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        env={
            **os.environ,
            "COLUMNS": "200",
            "CRMBOT_DATA_DIR": str(tmp_path / "data"),
            "CRMBOT_DATABASE_URL": database_url,
            "CRMBOT_TELEGRAM_TOKEN": "",
        },
    )


@pytest.mark.slow
def test_cli_imports_with_progress_and_summary_and_exit_codes(database_url, tmp_path):
    good = write(tmp_path, GOOD_CSV)
    ok = crmbot("import", "orders", str(good), database_url=database_url, tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "Importing orders.csv" in ok.stderr and "100%" in ok.stderr
    for label, value in [("rows read", "4"), ("imported orders", "4"), ("new customers", "3")]:
        assert any(
            label in line and line.rstrip(" │").endswith(value) for line in ok.stdout.splitlines()
        )
    assert "rows/s" in ok.stdout and "Imported 4 orders." in ok.stdout

    bad = write(tmp_path, BAD_CSV, name="bad.csv")
    failed = crmbot("import", "orders", str(bad), database_url=database_url, tmp_path=tmp_path)
    assert failed.returncode == 1
    assert "Nothing was written: 10 bad rows" in failed.stdout
    assert "negative amount '-5'" in failed.stdout
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 4
    engine.dispose()

    missing = crmbot(
        "import",
        "orders",
        str(tmp_path / "nope.csv"),
        database_url=database_url,
        tmp_path=tmp_path,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    option = crmbot(
        "import", "orders", str(good), "--currency", "dollars",
        database_url=database_url, tmp_path=tmp_path,
    )  # fmt: skip
    assert option.returncode == 2 and "three-letter code" in option.stderr

    linked = crmbot("import", "link", "c1", "4242", database_url=database_url, tmp_path=tmp_path)
    assert linked.returncode == 0 and "Linked customer c1 to Telegram user 4242" in linked.stdout
    refused = crmbot("import", "link", "zz", "1", database_url=database_url, tmp_path=tmp_path)
    assert refused.returncode == 1 and "no customer with external id 'zz'" in refused.stderr


@pytest.mark.slow
def test_cli_cdnow_dry_run_and_skip_bad(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    path = write(tmp_path, CDNOW_MASTER + " 00109 20010301 1 -1\n", name="c.txt")
    dry = crmbot("import", "orders", str(path), "--format", "cdnow", "--dry-run",
                 database_url=url, tmp_path=tmp_path)  # fmt: skip
    assert dry.returncode == 1 and "Dry run: nothing was written (found 1 bad row)" in dry.stdout
    skip = crmbot("import", "orders", str(path), "--format", "cdnow", "--skip-bad",
                  database_url=url, tmp_path=tmp_path)  # fmt: skip
    assert skip.returncode == 0, skip.stderr
    assert "Imported 5 orders; skipped 1 bad row." in skip.stdout
    assert "CDNOW master" in skip.stderr
