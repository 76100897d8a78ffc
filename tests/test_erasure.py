"""The customer's data: `/mydata` exports everything stored about them (and nothing about
anyone else); `/forget` erases the person and keeps the numbers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, func, select

from analytics.satisfaction import csat
from bot.services.assistant import handle_message
from bot.services.context import Services
from bot.services.erasure import (
    FORGOTTEN,
    HANDLING,
    UnknownCustomer,
    customer_data_json,
    export_customer_data,
    export_filename,
    forget_customer,
)
from bot.services.messages import IncomingMessage, Sender
from bot.services.privacy import record_consent
from bot.services.refresh import run_refresh
from db import analytics_queries as aq
from db import report_queries as rq
from db.engine import session_scope
from db.models import (
    AuditAction,
    AuditEntry,
    ConsentRecord,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerSnapshot,
    InboundUpdate,
    Interaction,
    Offer,
    OfferDelivery,
    Order,
    OrderLine,
    Product,
    Survey,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ZELDA = 777_123_456
OTTO = 888_654_321
# What must not be anywhere in the database once Zelda is forgotten.
SECRETS = (
    "Zelda",
    "Quimby",
    "zquimby77",
    "zelda@example.org",
    "Rue Secrete",
    "AgADzeldaPhoto",
    str(ZELDA),
)

_ids = iter(range(50_000, 60_000))


def write(
    services: Services,
    text: str,
    *,
    user_id: int = ZELDA,
    now: datetime = NOW,
    kind: str = "text",
    attachment: dict[str, Any] | None = None,
) -> int:
    """A message as the Telegram adapter hands it over; returns its update id."""
    first, last = ("Zelda", "Quimby") if user_id == ZELDA else ("Otto", "Normal")
    sender = Sender(user_id, user_id, first, last, first.lower()[0] + last.lower() + "77", "en")
    update_id = next(_ids)
    message = IncomingMessage(
        sender=sender,
        text=text,
        kind=kind,
        attachment=attachment,
        update_id=update_id,
        message_id=next(_ids),
    )
    handle_message(services, message, now=now)
    return update_id


def raw_update(update_id: int, user_id: int, first: str, text: str) -> InboundUpdate:
    """A stored raw update as the Telegram adapter stores it (``Update.to_dict()``)."""
    user = {"id": user_id, "is_bot": False, "first_name": first, "username": f"{first}77"}
    return InboundUpdate(
        update_id=update_id,
        kind="message",
        payload={
            "update_id": update_id,
            "message": {
                "message_id": 1,
                "from": user,
                "chat": {**user, "type": "private"},
                "date": 0,
                "text": text,
            },
        },
        received_at=NOW,
    )


def zelda_and_otto(services: Services) -> tuple[int, int]:
    """Two customers with a bit of everything: messages, a photo, consents, an order with a
    line, a survey with a comment, an offer, a snapshot and raw updates."""
    first = write(
        services, "my parcel to 12 Rue Secrete never arrived, write to zelda@example.org"
    )
    write(services, "here it is", kind="photo", attachment={"file_id": "AgADzeldaPhoto"})
    write(services, "/privacy analytics off")
    write(services, "where is my order 44021?", user_id=OTTO)
    with session_scope(services.session_factory) as session:
        zelda = session.exec(select(Customer).where(Customer.telegram_user_id == ZELDA)).one()
        otto = session.exec(select(Customer).where(Customer.telegram_user_id == OTTO)).one()
        assert zelda.id is not None and otto.id is not None
        zelda.email = "zelda@example.org"
        record_consent(
            session, zelda, purpose="marketing", granted=True, source="telegram:ask", now=NOW
        )
        mug = Product(sku="SKU-MUG", name="Zebra Mug", price=Decimal("12.50"))
        offer = Offer(code="SPRING10", title="Spring", text="10 % off in spring")
        session.add_all([mug, offer])
        session.flush()
        for customer, number, total in ((zelda, "Z-55501", "25.00"), (otto, "O-66602", "9.99")):
            order = Order(
                external_id=number,
                customer_id=customer.id,
                status="delivered",
                ordered_at=NOW - timedelta(days=20),
                total=Decimal(total),
            )
            session.add(order)
            session.flush()
            session.add(
                OrderLine(
                    order_id=order.id, product_id=mug.id, quantity=2, unit_price=Decimal("12.50")
                )
            )
            session.add(
                Survey(
                    customer_id=customer.id,
                    kind="csat",
                    sent_at=NOW - timedelta(days=3),
                    answered_at=NOW - timedelta(days=3),
                    score=2 if customer is zelda else 5,
                    comment=f"the courier was rude to {customer.first_name} {customer.last_name}",
                )
            )
            session.add(
                OfferDelivery(
                    offer_id=offer.id,
                    customer_id=customer.id,
                    sent_at=NOW,
                    redeemed_at=NOW if customer is zelda else None,
                )
            )
            session.add(
                CustomerSnapshot(
                    customer_id=customer.id,
                    as_of=date(2026, 11, 28),
                    frequency=1,
                    monetary=Decimal(total),
                    segment="Promising",
                    clv=Decimal("80.00"),
                )
            )
        session.add(raw_update(first, ZELDA, "Zelda", "my parcel to 12 Rue Secrete"))
        session.add(raw_update(next(_ids), ZELDA, "Zelda", "a message never stored as such"))
        session.add(raw_update(next(_ids), OTTO, "Otto", "where is my order 44021?"))
        return zelda.id, otto.id


def every_value(session: Session) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null value of every table."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for row in session.execute(sa.select(table)).mappings():
            for column, value in row.items():
                if value is None:
                    continue
                text = json.dumps(value) if isinstance(value, dict | list) else str(value)
                found.append((table.name, column, text))
    return found


def leaks(session: Session) -> list[tuple[str, str, str]]:
    return [
        (table, column, text)
        for table, column, text in every_value(session)
        if any(secret.lower() in text.lower() for secret in SECRETS)
    ]


# --- export ------------------------------------------------------------------------------


def test_export_holds_everything_about_the_customer_and_nothing_of_another(services):
    zelda_id, _ = zelda_and_otto(services)
    with session_scope(services.session_factory) as session:
        data = export_customer_data(session, zelda_id, now=NOW)
    document = customer_data_json(data)
    assert json.loads(document.decode("utf-8")) == data, "plain JSON, UTF-8"
    assert data["customer"]["first_name"] == "Zelda"
    assert data["customer"]["email"] == "zelda@example.org"
    assert data["customer"]["telegram_user_id"] == ZELDA
    texts = [m["text"] for m in data["messages"]]
    assert texts[0].startswith("my parcel to 12 Rue Secrete") and "here it is" in texts
    inbound = [m for m in data["messages"] if m["direction"] == "in"]
    assert len(inbound) == 3 and all(m["intent"] for m in inbound if m["kind"] == "text")
    assert any(m["direction"] == "out" for m in data["messages"]), "the bot's answers too"
    assert any(m["attachment"] == {"file_id": "AgADzeldaPhoto"} for m in data["messages"])
    assert any(e["label"] == "EMAIL" for m in inbound for e in (m["entities"] or []))
    assert {(c["purpose"], c["granted"]) for c in data["consents"]} == {
        ("analytics", False),
        ("marketing", True),
    }
    (order,) = data["orders"]
    assert (order["external_id"], order["total"]) == ("Z-55501", "25.00")
    assert order["lines"] == [
        {"product_sku": "SKU-MUG", "product": "Zebra Mug", "quantity": 2, "unit_price": "12.50"}
    ]
    assert order["ordered_at"] == (NOW - timedelta(days=20)).isoformat()
    (survey,) = data["surveys"]
    assert (survey["score"], survey["comment"]) == (2, "the courier was rude to Zelda Quimby")
    (offer,) = data["offers"]
    assert offer["offer"] == "SPRING10" and offer["redeemed_at"] == NOW.isoformat()
    (score,) = data["scores"]
    assert score["segment"] == "Promising" and score["as_of"] == "2026-11-28"
    assert len(data["conversations"]) == 1 and "assigned_staff_id" not in data["conversations"][0]
    assert [u["payload"]["message"]["from"]["id"] for u in data["telegram_updates"]] == [
        ZELDA,
        ZELDA,
    ]
    raw = document.decode("utf-8")
    for other in ("Otto", "44021", "O-66602", str(OTTO), "9.99"):
        assert other not in raw, f"{other!r} belongs to another customer"
    assert export_filename(NOW) == "my-data-2026-11-29.json"
    with session_scope(services.session_factory) as session:
        (entry,) = session.exec(
            select(AuditEntry).where(AuditEntry.action == AuditAction.EXPORTED)
        ).all()
    assert (entry.actor, entry.customer_id, entry.actor_telegram_id) == (
        "customer",
        zelda_id,
        None,
    )
    assert entry.detail["messages"] == len(data["messages"]) and entry.detail["orders"] == 1


def test_export_of_an_unknown_customer_fails_and_writes_nothing(services):
    with session_scope(services.session_factory) as session:
        with pytest.raises(UnknownCustomer):
            export_customer_data(session, 12345, now=NOW)
        assert session.exec(select(AuditEntry)).all() == []


# --- erasure -----------------------------------------------------------------------------


def test_forget_leaves_no_personal_data_anywhere_in_the_database(services):
    zelda_id, _ = zelda_and_otto(services)
    with session_scope(services.session_factory) as session:
        assert len(leaks(session)) > 10, "the check finds the data before erasure"
        before = {
            (i.id, i.direction, i.kind, i.intent, i.sentiment, i.sentiment_score, i.created_at)
            for i in session.exec(select(Interaction).where(Interaction.customer_id == zelda_id))
        }
        otto_before = [
            (table, column, text)
            for table, column, text in every_value(session)
            if "otto" in text.lower() or "44021" in text
        ]
    with session_scope(services.session_factory) as session:
        report = forget_customer(session, zelda_id, now=NOW)
    with session_scope(services.session_factory) as session:
        assert leaks(session) == []
        rows = session.exec(select(Interaction).where(Interaction.customer_id == zelda_id)).all()
        assert {
            (i.id, i.direction, i.kind, i.intent, i.sentiment, i.sentiment_score, i.created_at)
            for i in rows
        } == before, "the rows stay, with intent, sentiment and times"
        assert all(i.text == FORGOTTEN and i.telegram_chat_id is None for i in rows)
        assert (
            session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == zelda_id)).all()
            == []
        )
        (conversation,) = session.exec(
            select(Conversation).where(Conversation.customer_id == zelda_id)
        ).all()
        assert conversation.status == ConversationStatus.RESOLVED
        survey = session.exec(select(Survey).where(Survey.customer_id == zelda_id)).one()
        assert (survey.score, survey.comment) == (2, FORGOTTEN)
        customer = session.get(Customer, zelda_id)
        assert customer is not None and customer.display_name == f"customer {zelda_id}"
        assert customer.marketing_consent is None and customer.telegram_user_id is None
        assert customer.external_id is None  # a chat customer has none; see the next tests
        otto_after = [
            (table, column, text)
            for table, column, text in every_value(session)
            if "otto" in text.lower() or "44021" in text
        ]
        assert otto_after == otto_before, "the other customer is untouched"
        (entry,) = session.exec(
            select(AuditEntry).where(AuditEntry.action == AuditAction.DELETED)
        ).all()
    assert (entry.customer_id, entry.actor) == (zelda_id, "customer")
    assert entry.detail == {**report.counts(), "shop_ids_dropped": False}
    assert report.messages == len(before) and report.consent_records == 2
    assert report.raw_updates == 2 and report.survey_comments == 1
    assert report.conversations_closed == 1 and not report.already_forgotten


def test_forget_is_idempotent(services):
    zelda_id, _ = zelda_and_otto(services)
    with session_scope(services.session_factory) as session:
        forget_customer(session, zelda_id, now=NOW)
    with session_scope(services.session_factory) as session:
        snapshot = every_value(session)
        again = forget_customer(session, zelda_id, now=NOW + timedelta(hours=1))
    assert again.already_forgotten and not again.changed
    with session_scope(services.session_factory) as session:
        assert every_value(session) == snapshot, "the second run changes nothing"
        deleted = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == AuditAction.DELETED)
        ).one()
    assert deleted == 1


def test_the_same_telegram_user_writing_again_is_a_new_blank_customer(services):
    zelda_id, _ = zelda_and_otto(services)
    with session_scope(services.session_factory) as session:
        forget_customer(session, zelda_id, now=NOW)
    write(services, "hello again", now=NOW + timedelta(minutes=5))
    with session_scope(services.session_factory) as session:
        new = session.exec(select(Customer).where(Customer.telegram_user_id == ZELDA)).one()
        assert new.id != zelda_id and new.first_name == "Zelda"
        assert session.exec(select(Order).where(Order.customer_id == new.id)).all() == []
        assert [
            i.text
            for i in session.exec(
                select(Interaction).where(
                    Interaction.customer_id == new.id, Interaction.direction == "in"
                )
            )
        ] == ["hello again"]
        assert (
            session.exec(select(ConsentRecord).where(ConsentRecord.customer_id == new.id)).all()
            == []
        )
        old = session.get(Customer, zelda_id)
        assert old is not None and old.telegram_user_id is None


def test_shop_ids_stay_by_default_and_go_when_asked(services):
    zelda_id, otto_id = zelda_and_otto(services)
    with session_scope(services.session_factory) as session:
        for customer_id, external in ((zelda_id, "shop-zelda"), (otto_id, "shop-otto")):
            customer = session.get(Customer, customer_id)
            assert customer is not None
            customer.external_id = external
            session.add(customer)
    with session_scope(services.session_factory) as session:
        report = forget_customer(session, otto_id, now=NOW)
        assert report.order_numbers == 0
        assert session.get(Customer, otto_id).external_id == "shop-otto"  # type: ignore[union-attr]
        assert (
            session.exec(select(Order.external_id).where(Order.customer_id == otto_id)).one()
            == "O-66602"
        )
    with session_scope(services.session_factory) as session:
        report = forget_customer(
            session, zelda_id, now=NOW, drop_shop_ids=True, actor="staff", actor_telegram_id=4242
        )
        assert report.order_numbers == 1
        assert session.get(Customer, zelda_id).external_id is None  # type: ignore[union-attr]
        (number,) = session.exec(select(Order.external_id).where(Order.customer_id == zelda_id))
        assert "Z-55501" not in number and number.startswith("erased-")
        entry = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == AuditAction.DELETED, AuditEntry.customer_id == zelda_id
            )
        ).one()
    assert (entry.actor, entry.actor_telegram_id) == ("staff", 4242)
    assert entry.detail is not None and entry.detail["shop_ids_dropped"] is True


def test_forget_of_an_unknown_customer_fails(services):
    with session_scope(services.session_factory) as session, pytest.raises(UnknownCustomer):
        forget_customer(session, 12345, now=NOW)


def aggregates(services: Services, as_of: datetime) -> dict[str, Any]:
    """The numbers staff and the analytics see: they must not move when a person goes."""
    with session_scope(services.session_factory) as session:
        orders = aq.order_aggregates(session=session, as_of=as_of)
        talk = aq.interaction_aggregates(session=session, as_of=as_of)
        surveys = aq.survey_answers(session=session, as_of=as_of)
        handoffs = aq.conversation_aggregates(session=session, as_of=as_of)
        scores = [row.score for row in session.exec(select(Survey))]
        return {
            "orders": [
                a.tolist()
                for a in (
                    orders.customer_ids,
                    orders.frequency,
                    orders.monetary,
                    orders.recency_days,
                    orders.tenure_days,
                )
            ],
            "talk": [
                a.tolist()
                for a in (
                    talk.customer_ids,
                    talk.messages,
                    talk.complaints,
                    talk.sentiment_sum,
                    talk.sentiment_count,
                )
            ],
            "surveys": [a.tolist() for a in surveys[:3]],
            "handoffs": [a.tolist() for a in handoffs[:2]],
            "csat": csat(scores),
            "revenue": session.exec(select(func.sum(Order.total))).one(),
            "line_items": session.exec(select(func.sum(OrderLine.quantity))).one(),
            "messages": len(
                rq.inbound_rows(session=session, start=as_of - timedelta(days=9999), end=as_of)
            ),
            "offers": rq.offer_results(
                session=session, start=as_of - timedelta(days=30), end=as_of + timedelta(days=1)
            ),
            "customers": session.exec(select(func.count()).select_from(Customer)).one(),
            "interactions": session.exec(select(func.count()).select_from(Interaction)).one(),
            "snapshots": rq.segment_counts(session=session, as_of=as_of.date()),
        }


@pytest.mark.slow
def test_forget_keeps_every_aggregate(shop):
    """Revenue, RFM segments, clusters, CSAT, message counts and offer results are the same
    before and after a customer with orders, messages and a survey is forgotten."""
    now = datetime.now(UTC).replace(microsecond=0)
    with session_scope(shop.session_factory) as session:
        buyer = session.exec(
            select(Customer)
            .join(Order, Order.customer_id == Customer.id)  # type: ignore[arg-type]
            .group_by(Customer.id)  # type: ignore[arg-type]
            .having(func.count() >= 3)
            .order_by(Customer.id)  # type: ignore[arg-type]
        ).first()
        assert buyer is not None and buyer.id is not None
        buyer.telegram_user_id = ZELDA
        session.add(buyer)
        buyer_id = buyer.id
    earlier = now - timedelta(hours=2)
    write(shop, "my parcel to 12 Rue Secrete never arrived, I'm furious", now=earlier)
    write(shop, "talk to a human please", now=earlier)
    write(shop, "where is my order?", user_id=OTTO, now=earlier)
    with session_scope(shop.session_factory) as session:
        offer = Offer(code="SPRING10", title="Spring", text="10 % off")
        session.add(offer)
        session.flush()
        for customer_id, score in ((buyer_id, 2), (buyer_id, 4), (buyer_id + 1, 5)):
            session.add(
                Survey(
                    customer_id=customer_id,
                    kind="csat",
                    sent_at=earlier,
                    answered_at=earlier,
                    score=score,
                    comment="Zelda says hi",
                )
            )
        session.add(
            OfferDelivery(
                offer_id=offer.id, customer_id=buyer_id, sent_at=earlier, redeemed_at=earlier
            )
        )
    refreshed = run_refresh(shop, as_of=now)
    before = aggregates(shop, now)
    with session_scope(shop.session_factory) as session:
        messages = session.exec(
            select(func.count()).where(Interaction.customer_id == buyer_id)
        ).one()
        report = forget_customer(session, buyer_id, now=now)
        assert report.messages == messages >= 3 and report.survey_comments == 2
    assert aggregates(shop, now) == before
    again = run_refresh(shop, as_of=now)
    assert (again.segments, again.clusters, again.scored) == (
        refreshed.segments,
        refreshed.clusters,
        refreshed.scored,
    )
    assert aggregates(shop, now) == before


# --- the guard against new tables -------------------------------------------------------


def test_every_table_about_customers_has_an_erasure_rule():
    """A table added later with a customer_id column must be added to HANDLING (and to the
    export) deliberately: this test fails until it is."""
    about_customers = {
        table.name
        for table in SQLModel.metadata.sorted_tables
        if "customer_id" in table.columns
        or any(fk.column.table.name == "customers" for fk in table.foreign_keys)
    }
    assert about_customers | {"customers", "inbound_updates"} <= set(HANDLING)
