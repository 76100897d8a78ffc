"""A reproducible demo shop: products, customers and realistic order histories.

Customers follow a simple buy-till-you-die process, like real shops see: each has a
purchase rate (gamma-distributed across customers) and drops out after any purchase with a
customer-specific probability (beta-distributed), so there are one-time buyers, loyal
regulars and lapsed customers. Everything comes from one seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from rich.progress import Progress
from sqlmodel import Session

from db.models import Customer, Order, OrderLine, OrderStatus, Product

CATALOGUE: dict[str, list[tuple[str, str]]] = {
    "audio": [
        ("Wireless Earbuds", "59.90"),
        ("Noise-Cancelling Headphones", "189.00"),
        ("Bluetooth Speaker", "79.50"),
        ("Soundbar", "229.00"),
    ],
    "computing": [
        ("Mechanical Keyboard", "99.00"),
        ("Wireless Mouse", "29.90"),
        ("USB-C Hub", "39.90"),
        ("27-inch Monitor", "279.00"),
        ("Laptop Stand", "45.00"),
    ],
    "home": [
        ("Coffee Grinder", "69.00"),
        ("French Press", "34.50"),
        ("Desk Lamp", "42.00"),
        ("Scented Candle Set", "24.90"),
        ("Linen Bedding Set", "129.00"),
        ("Cast Iron Pan", "54.00"),
    ],
    "sports": [
        ("Yoga Mat", "32.00"),
        ("Running Shoes", "119.00"),
        ("Water Bottle", "19.90"),
        ("Resistance Bands", "22.50"),
        ("Fitness Tracker", "89.00"),
    ],
    "clothing": [
        ("Rain Jacket", "149.00"),
        ("Merino Sweater", "95.00"),
        ("Organic Cotton T-Shirt", "25.00"),
        ("Wool Socks 3-Pack", "18.00"),
        ("Canvas Backpack", "79.00"),
    ],
    "kids": [
        ("Wooden Building Blocks", "39.00"),
        ("Picture Book Set", "29.00"),
        ("Kids Raincoat", "49.00"),
    ],
}
FIRST_NAMES = [
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Isla",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xenia",
    "Yusuf",
    "Zoe",
    "Leah",
    "Omar",
    "Nina",
    "Tom",
]
LAST_NAMES = [
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Kowalski",
    "Novak",
    "Dubois",
    "Jensen",
    "Silva",
    "Brown",
    "Nguyen",
    "Okafor",
    "Schmidt",
    "Larsen",
    "Costa",
    "Weber",
]
DEMO_START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ShopSummary:
    products: int
    customers: int
    orders: int
    order_lines: int


def _customer_rows(rng: random.Random, count: int, as_of: datetime) -> list[dict]:
    span = (as_of - DEMO_START).days
    rows = []
    for i in range(1, count + 1):
        first = rng.choice(FIRST_NAMES)
        joined = DEMO_START + timedelta(days=rng.randrange(max(1, span - 7)))
        rows.append(
            {
                "id": i,
                "external_id": f"C{i:05d}",
                "first_name": first,
                "last_name": rng.choice(LAST_NAMES),
                "email": f"{first.lower()}.{i}@example.com",
                "language_code": "en",
                "first_seen_at": joined,
                "last_seen_at": joined,
                "created_at": joined,
                "marketing_consent": rng.random() < 0.6 or None,
            }
        )
    return rows


def _order_times(rng: random.Random, joined: datetime, as_of: datetime) -> list[datetime]:
    """Purchase times of one customer: first at joining, then Poisson with dropout."""
    rate_per_day = rng.gammavariate(0.8, 1 / 25)  # mean ~ one order a month, heavy spread
    dropout = rng.betavariate(1.2, 3.0)
    times, moment = [joined], joined
    while rng.random() > dropout and rate_per_day > 0:
        moment += timedelta(days=rng.expovariate(rate_per_day))
        if moment >= as_of:
            break
        times.append(moment)
    return times


def _status(rng: random.Random, ordered: datetime, as_of: datetime) -> tuple[str, dict]:
    age = (as_of - ordered).days
    if rng.random() < 0.03:
        return OrderStatus.CANCELLED, {}
    if age < 1:
        return OrderStatus.PAID, {}
    shipped = ordered + timedelta(days=1, hours=rng.randrange(24))
    if age < 4:
        return OrderStatus.SHIPPED, {"shipped_at": shipped}
    delivered = shipped + timedelta(days=rng.randrange(1, 5))
    if rng.random() < 0.04:
        return OrderStatus.REFUNDED, {"shipped_at": shipped, "delivered_at": delivered}
    return OrderStatus.DELIVERED, {"shipped_at": shipped, "delivered_at": delivered}


def generate_shop(
    session: Session,
    *,
    seed: int = 42,
    customers: int = 2000,
    as_of: datetime,
    progress: Progress | None = None,
) -> ShopSummary:
    """Fill an empty database with the demo shop, with bulk inserts."""
    rng = random.Random(seed)
    products: list[dict[str, Any]] = [
        {
            "id": n,
            "sku": f"SKU-{n:04d}",
            "name": name,
            "category": category,
            "price": Decimal(price),
            "active": True,
        }
        for n, (category, name, price) in enumerate(
            ((c, name, p) for c, items in CATALOGUE.items() for name, p in items), start=1
        )
    ]
    by_category = {c: [p for p in products if p["category"] == c] for c in CATALOGUE}
    session.execute(sa.insert(Product), products)
    customer_rows = _customer_rows(rng, customers, as_of)
    task = progress.add_task("orders", total=customers) if progress else None
    orders: list[dict] = []
    lines: list[dict] = []
    for customer in customer_rows:
        favourites = by_category[rng.choice(list(CATALOGUE))]
        times = _order_times(rng, customer["first_seen_at"], as_of)
        for ordered in times:
            order_id = len(orders) + 1
            status, dates = _status(rng, ordered, as_of)
            total = Decimal("0")
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                product = rng.choice(favourites if rng.random() < 0.6 else products)
                quantity = 1 if rng.random() < 0.85 else 2
                price: Decimal = product["price"]
                total += price * quantity
                lines.append(
                    {
                        "order_id": order_id,
                        "product_id": product["id"],
                        "quantity": quantity,
                        "unit_price": product["price"],
                    }
                )
            orders.append(
                {
                    "id": order_id,
                    "external_id": str(100000 + order_id),
                    "customer_id": customer["id"],
                    "status": status,
                    "ordered_at": ordered,
                    "total": total,
                    "currency": "USD",
                    "updated_at": ordered,
                    **dates,
                }
            )
        customer["last_seen_at"] = times[-1]
        if progress is not None and task is not None:
            progress.advance(task)
    for model, rows in ((Customer, customer_rows), (Order, orders), (OrderLine, lines)):
        for start in range(0, len(rows), 5000):
            session.execute(sa.insert(model), rows[start : start + 5000])
    _advance_sequences(session)
    return ShopSummary(len(products), len(customer_rows), len(orders), len(lines))


def _advance_sequences(session: Session) -> None:
    """After inserting explicit ids, move PostgreSQL's id sequences past them."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("products", "customers", "orders", "order_lines"):
        session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
            )
        )
