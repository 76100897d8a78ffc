"""The RFM inputs aggregated in the database (``order_aggregates``), against a small case
worked by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from db import migrate
from db.analytics_queries import order_aggregates
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Customer, Order, OrderStatus

# (customer, order id, moment, total, status)
ORDERS = [
    ("ann", "A-1", datetime(2024, 1, 10, 12, 0, tzinfo=UTC), "10.25", OrderStatus.PAID),
    ("ann", "A-2", datetime(2024, 2, 20, 12, 0, tzinfo=UTC), "5.50", OrderStatus.DELIVERED),
    ("ann", "A-3", datetime(2024, 2, 25, 0, 0, tzinfo=UTC), "99.00", OrderStatus.CANCELLED),
    ("ann", "A-4", datetime(2024, 3, 5, 6, 0, tzinfo=UTC), "7.00", OrderStatus.PLACED),
    ("bob", "B-1", datetime(2024, 2, 29, 18, 0, tzinfo=UTC), "20.00", OrderStatus.SHIPPED),
    ("cid", "C-1", datetime(2024, 1, 1, 0, 0, tzinfo=UTC), "3.00", OrderStatus.CANCELLED),
]


@pytest.fixture
def factory(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def shop(factory) -> dict[str, int]:
    """The orders above; returns the customer ids by name."""
    with session_scope(factory) as session:
        people = {name: Customer(external_id=name) for name in ("ann", "bob", "cid", "dan")}
        session.add_all(people.values())
        session.flush()
        for name, external_id, moment, total, status in ORDERS:
            session.add(
                Order(
                    external_id=external_id,
                    customer_id=people[name].id,
                    ordered_at=moment,
                    total=Decimal(total),
                    status=status,
                )
            )
        return {name: customer.id for name, customer in people.items() if customer.id}


def aggregates(factory, as_of: datetime) -> dict[int, tuple[float, float, int, float]]:
    with session_scope(factory) as session:
        found = order_aggregates(session=session, as_of=as_of)
    assert found.customer_ids.tolist() == sorted(found.customer_ids.tolist())
    columns = (found.recency_days, found.tenure_days, found.frequency, found.monetary)
    return {
        int(customer): tuple(column[i].item() for column in columns)
        for i, customer in enumerate(found.customer_ids)
    }


def test_orders_before_as_of_and_not_cancelled_count(factory, shop):
    """As of 2024-03-01: Ann's order of 5 March is later and her 25 February one cancelled;
    Cid has only a cancelled order, Dan none: both are absent."""
    got = aggregates(factory, datetime(2024, 3, 1, tzinfo=UTC))
    assert got == {
        shop["ann"]: (9.5, 50.5, 2, 15.75),  # last 20 Feb 12:00, first 10 Jan 12:00
        shop["bob"]: (0.25, 0.25, 1, 20.0),
    }


def test_without_later_orders_every_order_before_as_of_counts(factory, shop):
    """As of a moment after every order (the date condition is then left out)."""
    got = aggregates(factory, datetime(2024, 3, 6, tzinfo=UTC))
    assert got == {
        shop["ann"]: (0.75, 55.5, 3, 22.75),  # 56 days minus 12 hours
        shop["bob"]: (5.25, 5.25, 1, 20.0),
    }


def test_an_order_exactly_at_as_of_does_not_count(factory, shop):
    got = aggregates(factory, datetime(2024, 2, 29, 18, 0, tzinfo=UTC))
    assert shop["bob"] not in got
    assert got[shop["ann"]] == (9.25, 50.25, 2, 15.75)


def test_no_orders_give_empty_columns(factory):
    with session_scope(factory) as session:
        found = order_aggregates(session=session, as_of=datetime(2024, 1, 1, tzinfo=UTC))
    assert len(found) == 0 and found.monetary.shape == (0,)
