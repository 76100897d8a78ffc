"""Redemptions from orders that carry the offer code: a coupon report imported with
`crmbot import offer-codes` puts codes on orders and records the redemptions."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from db.clock import utcnow
from db.engine import session_scope
from db.models import Customer, Offer, OfferDelivery, Order
from tests.helpers import add_order, crmbot, say


def test_coupon_report_redeems_the_offer_sent_to_that_customer(
    services, settings, cli_env, tmp_path
):
    say(services, "hello")  # customer 501, who got the offer
    sent = utcnow() - timedelta(days=3)
    with session_scope(services.session_factory) as session:
        customer = session.exec(select(Customer).where(Customer.telegram_user_id == 501)).one()
        offer = session.exec(select(Offer).where(Offer.code == "SPRING15")).one()  # catalogue
        session.add(OfferDelivery(offer_id=offer.id, customer_id=customer.id, sent_at=sent))
    add_order(services, user_id=501, external_id="7001", days_ago=1)
    add_order(services, user_id=777, external_id="7002", days_ago=1)  # not offered to them
    report = tmp_path / "coupons.csv"
    report.write_text("order,code\n7001,spring15\n7002,SPRING15\n9999,SPRING15\n,X\n")
    env = {**cli_env, "CRMBOT_DATABASE_URL": settings.resolved_database_url}
    result = crmbot("import", "offer-codes", str(report), env=env)
    assert result.returncode == 1, "bad rows make the exit code non-zero"
    assert "2 orders got their offer code; 1 offer redemptions recorded; 2 bad rows" in (
        " ".join(result.stdout.split())
    )
    assert "line 4: no order '9999'" in result.stderr and "line 5:" in result.stderr
    with session_scope(services.session_factory) as session:
        codes = dict(session.exec(select(Order.external_id, Order.offer_code)).all())
        delivery = session.exec(select(OfferDelivery)).one()
    assert codes == {"7001": "SPRING15", "7002": "SPRING15"}
    assert delivery.redeemed_at is not None and delivery.redeemed_at > sent
    again = crmbot("import", "offer-codes", str(report), env=env)
    assert "0 orders got their offer code; 0 offer redemptions" in " ".join(again.stdout.split())


def test_a_file_without_the_columns_is_refused(cli_env, tmp_path):
    report = tmp_path / "coupons.csv"
    report.write_text("id,coupon\n1,A\n")
    result = crmbot("import", "offer-codes", str(report), env=cli_env)
    assert result.returncode == 2 and "order and code" in result.stderr
