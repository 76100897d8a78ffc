"""Consent records and `/privacy`: what is stored, why, and how to get it or delete it."""

from __future__ import annotations

from sqlmodel import select

from db.engine import session_scope
from db.models import ConsentRecord, Customer
from tests.helpers import say, texts_to


def test_stop_records_marketing_consent_with_time_and_source(services):
    say(services, "/stop")
    with session_scope(services.session_factory) as session:
        customer = session.exec(select(Customer)).one()
        (record,) = session.exec(select(ConsentRecord)).all()
    assert customer.marketing_consent is False
    assert (record.purpose, record.granted, record.source) == (
        "marketing",
        False,
        "telegram:/stop",
    )
    assert record.at == customer.marketing_consent_at and record.at.tzinfo is not None


def test_privacy_shows_what_is_stored_why_and_the_consents(services):
    say(services, "where is my order?")
    say(services, "/stop")
    (notice,) = texts_to(say(services, "/privacy"), 501)
    assert "What Test Shop stores about you" in notice
    assert "messages" in notice and "masked after 24 months" in notice
    assert "marketing: no" in notice and "via telegram:/stop" in notice
    assert "analytics: not given" in notice
    assert "/mydata" in notice and "/forget" in notice


def test_privacy_is_a_customer_command_listed_in_help(services):
    assert "/privacy" in texts_to(say(services, "/help"), 501)[0]


def test_customer_changes_consents_with_privacy_and_each_change_is_recorded(services):
    say(services, "hello")
    assert "Saved" in texts_to(say(services, "/privacy analytics off"), 501)[0]
    assert "Saved" in texts_to(say(services, "/privacy marketing on"), 501)[0]
    assert texts_to(say(services, "/privacy analytics maybe"), 501)[0].startswith("Usage")
    with session_scope(services.session_factory) as session:
        records = session.exec(select(ConsentRecord).order_by(ConsentRecord.id)).all()
        customer = session.exec(select(Customer)).one()
    assert [(r.purpose, r.granted, r.source) for r in records] == [
        ("analytics", False, "telegram:/privacy"),
        ("marketing", True, "telegram:/privacy"),
    ]
    assert customer.marketing_consent is True
    (notice,) = texts_to(say(services, "/privacy"), 501)
    assert "analytics: no" in notice and "marketing: yes" in notice


def test_opting_out_by_message_is_recorded_with_its_source(services):
    say(services, "stop sending me promotions and offers")
    with session_scope(services.session_factory) as session:
        records = session.exec(select(ConsentRecord)).all()
    assert [(r.purpose, r.granted, r.source) for r in records] == [
        ("marketing", False, "telegram:message")
    ]
