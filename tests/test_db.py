"""The database layer, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select

from db import migrate, queries
from db.clock import utcnow
from db.engine import make_engine, make_session_factory, read_scope, session_scope
from db.models import Customer, InboundUpdate, Interaction, Order


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


def test_migrations_create_every_table_and_match_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    tables = set(sa.inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], "a model changed without a migration"
    assert migrate.is_up_to_date(engine)


def test_downgrade_and_upgrade_again(engine):
    migrate.downgrade(engine, revision="base")
    assert "customers" not in sa.inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert "customers" in sa.inspect(engine).get_table_names()


def test_indexes_for_staff_queries_exist(engine):
    inspector = sa.inspect(engine)
    names = {
        i["name"]
        for t in ("interactions", "orders", "conversations")
        for i in inspector.get_indexes(t)
    }
    assert {
        "ix_interactions_customer_created",
        "ix_interactions_created_intent",
        "ix_orders_customer_ordered_status_total",
        "ix_conversations_customer_status",
    } <= names


def test_inbound_update_is_recorded_once(factory):
    with session_scope(factory) as session:
        assert queries.record_inbound_update(
            session=session, update_id=1, kind="message", payload={"text": "hi\u0000"}
        )
        assert not queries.record_inbound_update(
            session=session, update_id=1, kind="message", payload={"update_id": 1}
        )
    with session_scope(factory) as session:
        assert not queries.record_inbound_update(
            session=session, update_id=1, kind="message", payload={}
        )
    with session_scope(factory) as session:  # the first one stays, exactly as it came
        row = session.get(InboundUpdate, 1)
        assert row is not None and row.payload == {"text": "hi\u0000"}
        assert row.received_at is not None and row.processed_at is None


def test_interaction_update_id_is_unique(factory):
    with session_scope(factory) as session:
        customer = Customer(telegram_user_id=1)
        session.add(customer)
        session.flush()
        session.add(
            Interaction(customer_id=customer.id, direction="in", text="a", telegram_update_id=5)
        )
    with pytest.raises(IntegrityError), session_scope(factory) as session:
        session.add(Interaction(customer_id=1, direction="in", text="b", telegram_update_id=5))


def test_timestamps_round_trip_as_aware_utc(factory):
    berlin = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    with session_scope(factory) as session:
        session.add(Customer(telegram_user_id=9, first_seen_at=berlin))
    with session_scope(factory) as session:
        customer = session.exec(select(Customer)).one()
    assert customer.first_seen_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    with pytest.raises(Exception, match="naive"), session_scope(factory) as session:
        session.add(Customer(telegram_user_id=10, first_seen_at=datetime(2026, 1, 1)))


def test_upsert_customer_creates_then_updates(factory):
    now = utcnow()
    with session_scope(factory) as session:
        first = queries.upsert_telegram_customer(
            session=session,
            telegram_user_id=7,
            chat_id=7,
            first_name="Ann",
            last_name=None,
            username="ann",
            language_code="de",
            now=now,
        )
    with session_scope(factory) as session:
        again = queries.upsert_telegram_customer(
            session=session,
            telegram_user_id=7,
            chat_id=7,
            first_name="Anne",
            last_name="B",
            username=None,
            language_code=None,
            now=now + timedelta(minutes=5),
        )
    assert again.id == first.id
    assert (again.first_name, again.last_name, again.username, again.language_code) == (
        "Anne",
        "B",
        "ann",
        "de",
    )


def test_money_is_exact_and_unicode_text_round_trips(factory):
    from decimal import Decimal

    text = "Ünïcödé 😀 ‮rtl‬ \x00 nul \uffff"
    with session_scope(factory) as session:
        customer = Customer(telegram_user_id=3)
        session.add(customer)
        session.flush()
        session.add(
            Order(
                external_id="A-1",
                customer_id=customer.id,
                ordered_at=utcnow(),
                total=Decimal("1299.99"),
            )
        )
        session.add(Interaction(customer_id=customer.id, direction="in", text=text))
    with session_scope(factory) as session:
        assert session.exec(select(Order)).one().total == Decimal("1299.99")
        assert session.exec(select(Interaction)).one().text == text
        assert queries.find_order(session=session, external_id="a-1") is not None


def test_a_read_scope_refuses_writes_and_leaves_its_connection_writable(factory):
    """Long reads (the refresh, reports) run beside the writers; a write slipping into one
    fails at once instead of taking the database's write lock unseen."""
    with session_scope(factory) as session:
        queries.record_inbound_update(session=session, update_id=1, kind="message", payload={})
    with read_scope(factory) as session:
        assert session.get(InboundUpdate, 1) is not None
        with pytest.raises(sa.exc.DBAPIError):
            queries.record_inbound_update(session=session, update_id=2, kind="message", payload={})
    for update_id in (3, 4, 5):  # whichever pooled connection comes next takes writes
        with session_scope(factory) as session:
            queries.record_inbound_update(
                session=session, update_id=update_id, kind="message", payload={}
            )
    with session_scope(factory) as session:
        assert session.exec(select(InboundUpdate.update_id)).all() == [1, 3, 4, 5]


def test_a_read_scope_works_on_an_in_memory_database():
    factory = make_session_factory(make_engine("sqlite://"))
    with session_scope(factory) as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    with read_scope(factory) as session:
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    with session_scope(factory) as session:
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
