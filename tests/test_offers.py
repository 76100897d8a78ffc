"""Personalized offers (bot.services.offers): catalogue, targeting, consent, frequency cap,
blocks, holdout, redemptions, the staff report, offers in the chat and pacing.

Database tests run on SQLite, and on PostgreSQL when CRMBOT_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import asyncio
import itertools
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, select

from bot.services import offers
from bot.services.messages import Reply
from bot.services.offers import (
    FrequencyCap,
    Limits,
    OfferCatalogueError,
    code_in_message,
    load_catalogue,
    mark_sent,
    newcombe_difference,
    offer_follow_up,
    offer_report,
    offers_in_conversation,
    pace,
    plan_campaign,
    plan_campaigns,
    record_redemptions_from_orders,
    redeem,
    send_paced,
    still_sendable,
    sync_offers,
    wilson_interval,
)
from bot.services.offers.report import find_offers, offer_result
from bot.services.privacy import record_consent
from db import migrate
from db.engine import make_engine, make_session_factory, session_scope
from db.models import (
    AuditAction,
    AuditEntry,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerSnapshot,
    Direction,
    Interaction,
    Offer,
    OfferDelivery,
    Order,
    OrderLine,
    OrderStatus,
    Product,
)

NOW = datetime(2027, 4, 1, 10, 0, tzinfo=UTC)
AS_OF = date(2027, 4, 1)
_ids = iter(range(1, 10_000_000))


# --- fixtures and builders ---------------------------------------------------------------


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_scope(factory) as session:
        yield session


def customer(
    session: Session,
    *,
    consent: bool | None = True,
    chat: bool = True,
    segment: str | None = "Champions",
    p_alive: float | None = 0.9,
    orders: int | None = 5,
    clv: float | None = 100.0,
    name: str = "Ada",
) -> Customer:
    """A customer (with a snapshot on AS_OF unless segment is None)."""
    n = next(_ids)
    person = Customer(
        telegram_user_id=n if chat else None,
        telegram_chat_id=n if chat else None,
        external_id=f"C{n}",
        first_name=name,
        marketing_consent=consent,
    )
    session.add(person)
    session.flush()
    assert person.id is not None
    if segment is not None:
        session.add(
            CustomerSnapshot(
                customer_id=person.id,
                as_of=AS_OF,
                segment=segment,
                p_alive=p_alive,
                frequency=orders,
                clv=Decimal(str(clv)) if clv is not None else None,
            )
        )
        session.flush()
    return person


def offer(
    session: Session,
    code: str = "SPRING15",
    *,
    title: str = "Spring sale",
    text: str = "Hi {name}, 15% off with {code} until {ends}.",
    holdout_share: float = 0.0,
    **targeting: object,
) -> Offer:
    item = Offer(
        code=code,
        title=title,
        text=text,
        targeting=dict(targeting),
        holdout_share=holdout_share,
        created_at=NOW - timedelta(days=30),
    )
    session.add(item)
    session.flush()
    return item


def order(
    session: Session,
    person: Customer,
    at: datetime,
    *,
    code: str | None = None,
    status: str = OrderStatus.DELIVERED,
    products: tuple[int, ...] = (),
) -> Order:
    item = Order(
        external_id=f"O{next(_ids)}",
        customer_id=person.id,
        ordered_at=at,
        total=Decimal("20.00"),
        status=status,
        offer_code=code,
    )
    session.add(item)
    session.flush()
    for product_id in products:
        session.add(OrderLine(order_id=item.id, product_id=product_id, unit_price=Decimal("10")))
    session.flush()
    return item


def planned_ids(plan: offers.CampaignPlan) -> set[int]:
    return {send.customer_id for send in plan.sends}


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "offers.yml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


# --- the catalogue -----------------------------------------------------------------------


def test_the_shipped_catalogue_is_valid_and_syncs_idempotently(session):
    catalogue = load_catalogue()
    codes = [spec.code for spec in catalogue.offers]
    assert {"SPRING15", "COMEBACK20", "PAIRUP10"} <= set(codes)
    comeback = next(s for s in catalogue.offers if s.code == "COMEBACK20")
    assert comeback.targeting["segments"] == ["At Risk", "Can't Lose Them"]
    assert comeback.holdout_share == pytest.approx(0.10)  # the default
    spring = next(s for s in catalogue.offers if s.code == "SPRING15")
    assert spring.starts_at == datetime(2027, 3, 20, tzinfo=UTC)
    assert spring.ends_at == datetime(2027, 5, 1, tzinfo=UTC)  # the day after the last day

    first = sync_offers(session, catalogue, now=NOW)
    assert sorted(first.created) == sorted(codes)
    again = sync_offers(session, catalogue, now=NOW)
    assert again.counts() == {
        "created": 0,
        "updated": 0,
        "unchanged": len(codes),
        "deactivated": 0,
    }
    assert len(session.exec(select(Offer)).all()) == len(codes)


def test_sync_updates_changed_offers_and_deactivates_removed_ones(session, tmp_path):
    path = write(
        tmp_path,
        """
        offers:
          - {code: one, title: One, text: "Use {code}"}
          - {code: TWO, title: Two, text: "Use {code}"}
        """,
    )
    sync_offers(session, load_catalogue(path), now=NOW)
    path = write(
        tmp_path,
        """
        offers:
          - {code: ONE, title: One again, text: "Use {code}", priority: 3}
        """,
    )
    result = sync_offers(session, load_catalogue(path), now=NOW)
    assert (result.updated, result.deactivated) == (["ONE"], ["TWO"])
    stored = {o.code: o for o in session.exec(select(Offer)).all()}
    assert stored["ONE"].title == "One again" and stored["ONE"].targeting == {"priority": 3}
    assert stored["TWO"].active is False


def test_dates_are_days_in_the_configured_time_zone(tmp_path):
    path = write(
        tmp_path,
        """
        offers:
          - {code: X1, title: X, text: "{code}", starts: 2027-03-01, ends: "2027-03-31"}
        """,
    )
    (spec,) = load_catalogue(path, tz=ZoneInfo("Europe/Berlin")).offers
    assert spec.starts_at == datetime(2027, 2, 28, 23, 0, tzinfo=UTC)
    assert spec.ends_at == datetime(2027, 3, 31, 22, 0, tzinfo=UTC)  # summer time by then


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("offers: [", "not valid YAML"),
        ("offers: {}", "expected a mapping with an 'offers' list"),
        ("offers: []\nextra: 1", "unknown section(s) extra"),
        ("offers:\n  - {title: T, text: '{code}'}", "offers[0]: 'code' is required"),
        ("offers:\n  - {code: 'A B', title: T, text: '{code}'}", "offers[0] (A B): a code has"),
        ("offers:\n  - {code: A1, text: '{code}'}", "offers[0] (A1): 'title' is required"),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', colour: red}",
            "offers[0] (A1): unknown key(s) colour",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}'}\n"
            "  - {code: a1, title: U, text: '{code}'}",
            "offers[1] (A1): the code is used twice (also offers[0])",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', targeting: {segments: [Heroes]}}",
            "offers[0] (A1): targeting.segments: unknown segment 'Heroes'",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', targeting: {age: 3}}",
            "offers[0] (A1): unknown targeting key(s) age",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}',"
            " targeting: {min_churn_risk: 0.8, max_churn_risk: 0.2}}",
            "min_churn_risk is above max_churn_risk",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', targeting: {min_churn_risk: 2}}",
            "targeting.min_churn_risk must be from 0 to 1",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', targeting: {min_clv: lots}}",
            "targeting.min_clv must be a number",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}',"
            " targeting: {affinity: {metric: jaccard}}}",
            "affinity.metric must be one of lift, cosine",
        ),
        ("offers:\n  - {code: A1, title: T, text: 'no code here'}", "put {code} in it"),
        ("offers:\n  - {code: A1, title: T, text: '{code} {price}'}", "unknown field(s) {price}"),
        (
            "offers:\n  - {code: A1, title: T, text: '{code} {product}'}",
            "{product} and {because} need targeting.affinity",
        ),
        ("offers:\n  - {code: A1, title: T, text: '{code'}", "text is not a valid template"),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', holdout_share: 1.5}",
            "holdout_share must be a number from 0 to below 1",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', starts: someday}",
            "starts must be a date like 2027-03-31",
        ),
        (
            "offers:\n  - {code: A1, title: T, text: '{code}', starts: 2027-05-01,"
            " ends: 2027-04-01}",
            "'ends' must not be before 'starts'",
        ),
        ("offers: []\nmessages: {greeting: hi}", "messages: unknown key(s) greeting"),
        ("offers: []\nmessages: {footer: ''}", "messages.footer must be a non-empty text"),
    ],
)
def test_a_malformed_catalogue_names_the_file_and_the_entry(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(OfferCatalogueError) as error:
        load_catalogue(path)
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_a_missing_catalogue_file_is_named(tmp_path):
    with pytest.raises(OfferCatalogueError, match="offers file not found"):
        load_catalogue(tmp_path / "nope.yml")


def test_messages_override_the_built_in_texts(tmp_path):
    path = write(tmp_path, "offers: []\nmessages: {footer: 'Reply /stop to opt out'}")
    texts = load_catalogue(path).texts
    assert texts.footer == "Reply /stop to opt out"
    assert texts.redeem_usage == offers.OfferTexts().redeem_usage


# --- targeting and consent ---------------------------------------------------------------


def test_targeting_by_segment_churn_risk_and_clv(session):
    at_risk = customer(session, segment="At Risk", p_alive=0.4, orders=4, clv=50)
    at_risk_rich = customer(session, segment="At Risk", p_alive=0.4, orders=4, clv=500)
    at_risk_safe = customer(session, segment="At Risk", p_alive=0.95, orders=4, clv=500)
    one_timer = customer(session, segment="At Risk", p_alive=1.0, orders=1, clv=500)
    champion = customer(session, segment="Champions", p_alive=0.2, orders=9, clv=900)
    customer(session, segment=None)  # no snapshot: matches no condition on scores

    by_segment = plan_campaign(session, offer(session, "SEG", segments=["At Risk"]), NOW)
    assert planned_ids(by_segment) == {at_risk.id, at_risk_rich.id, at_risk_safe.id, one_timer.id}

    risky = offer(session, "RISK", segments=["At Risk"], min_churn_risk=0.5)
    # churn risk = 1 - p_alive; one-time buyers have no known risk and do not match
    assert planned_ids(plan_campaign(session, risky, NOW, cap=FrequencyCap(9))) == {
        at_risk.id,
        at_risk_rich.id,
    }
    valuable = offer(session, "VALUE", min_clv=400, max_churn_risk=0.5)
    assert planned_ids(plan_campaign(session, valuable, NOW, cap=FrequencyCap(9))) == {
        at_risk_safe.id
    }
    everyone = plan_campaign(session, offer(session, "ALL"), NOW, cap=FrequencyCap(9))
    assert champion.id in planned_ids(everyone)
    assert len(everyone.sends) == 6


def test_only_consenting_customers_who_pressed_start_are_planned(session):
    yes = customer(session, consent=True)
    customer(session, consent=None)  # never asked
    customer(session, consent=False)  # opted out
    customer(session, consent=True, chat=False)  # imported, never pressed Start
    plan = plan_campaign(session, offer(session), NOW)
    assert planned_ids(plan) == {yes.id}
    assert plan.counts["reachable"] == 1
    (send,) = plan.sends
    assert send.reply.chat_id == yes.telegram_chat_id
    assert send.reply.text.startswith("Hi Ada, 15% off with SPRING15 until further notice.")
    assert send.reply.text.endswith("(/stop: no more offers)")


def test_an_offer_outside_its_dates_or_paused_is_not_planned(session):
    customer(session)
    early = offer(session, "EARLY")
    early.starts_at = NOW + timedelta(days=1)
    late = offer(session, "LATE")
    late.ends_at = NOW
    paused = offer(session, "PAUSED")
    paused.active = False
    for item in (early, late, paused):
        plan = plan_campaign(session, item, NOW)
        assert plan.sends == [] and plan.counts == {"not_live": 1}


def test_the_same_offer_is_never_planned_twice(session):
    person = customer(session)
    item = offer(session)
    assert planned_ids(plan_campaign(session, item, NOW)) == {person.id}
    later = NOW + timedelta(days=30)
    again = plan_campaign(session, item, later)
    assert again.sends == [] and again.counts["already_offered"] == 1
    assert len(session.exec(select(OfferDelivery)).all()) == 1


# --- frequency cap and blocks ------------------------------------------------------------


def test_frequency_cap_counts_recent_offers_held_out_or_not(session):
    recent = customer(session)
    long_ago = customer(session)
    held_out_recently = customer(session)
    earlier = offer(session, "EARLIER")
    for person, days in ((recent, 3), (long_ago, 8), (held_out_recently, 2)):
        session.add(
            OfferDelivery(
                offer_id=earlier.id,
                customer_id=person.id,
                is_holdout=person is held_out_recently,
                created_at=NOW - timedelta(days=days),
            )
        )
    session.flush()
    plan = plan_campaign(session, offer(session), NOW)
    assert planned_ids(plan) == {long_ago.id}
    assert plan.counts["frequency_cap"] == 2
    loose = plan_campaign(session, offer(session, "LOOSE"), NOW, cap=FrequencyCap(max_offers=2))
    # long_ago has one offer this week now (SPRING15): still below a cap of two
    assert planned_ids(loose) == {recent.id, long_ago.id, held_out_recently.id}


def test_plan_campaigns_gives_each_customer_the_highest_priority_offer_only(session):
    person = customer(session)
    offer(session, "LOW", priority=1)
    offer(session, "HIGH", priority=9)
    plans = plan_campaigns(session, NOW)
    assert [(p.code, len(p.sends)) for p in plans] == [("HIGH", 1), ("LOW", 0)]
    assert plans[1].counts["frequency_cap"] == 1
    assert planned_ids(plans[0]) == {person.id}


def test_no_offer_while_waiting_for_a_human_or_after_negative_sentiment_today(session):
    waiting = customer(session)
    resolved = customer(session)
    upset_today = customer(session)
    upset_yesterday = customer(session)
    calm = customer(session)
    session.add(Conversation(customer_id=waiting.id, status=ConversationStatus.WAITING_HUMAN))
    session.add(Conversation(customer_id=resolved.id, status=ConversationStatus.RESOLVED))
    for person, at in (
        (upset_today, NOW.replace(hour=0, minute=5)),
        (upset_yesterday, NOW - timedelta(days=1)),
    ):
        session.add(
            Interaction(
                customer_id=person.id,
                direction=Direction.INBOUND,
                text="this is terrible",
                sentiment="negative",
                created_at=at,
            )
        )
    # a negative word in the bot's own message does not count
    session.add(
        Interaction(
            customer_id=calm.id,
            direction=Direction.OUTBOUND,
            text="sorry",
            sentiment="negative",
            created_at=NOW,
        )
    )
    session.flush()
    plan = plan_campaign(session, offer(session), NOW)
    assert planned_ids(plan) == {resolved.id, upset_yesterday.id, calm.id}
    assert plan.counts["waiting_for_human"] == 1
    assert plan.counts["negative_today"] == 1


def test_today_is_the_local_day(session):
    person = customer(session)
    # 23:30 UTC on 31 March is already 1 April in Berlin, where "now" (10:00 UTC) also is.
    session.add(
        Interaction(
            customer_id=person.id,
            direction=Direction.INBOUND,
            text="awful",
            sentiment="negative",
            created_at=datetime(2027, 3, 31, 23, 30, tzinfo=UTC),
        )
    )
    session.flush()
    assert plan_campaign(session, offer(session, "UTC"), NOW).sends
    berlin = plan_campaign(session, offer(session, "BERLIN"), NOW, tz=ZoneInfo("Europe/Berlin"))
    assert berlin.sends == [] and berlin.counts["negative_today"] == 1


# --- holdout -----------------------------------------------------------------------------


def test_holdout_is_about_ten_percent_deterministic_and_never_sent(session):
    people = [
        Customer(
            telegram_user_id=900_000 + i, telegram_chat_id=900_000 + i, marketing_consent=True
        )
        for i in range(2000)
    ]
    session.add_all(people)
    session.flush()
    item = offer(session, holdout_share=0.10)
    plan = plan_campaign(session, item, NOW)
    deliveries = session.exec(select(OfferDelivery)).all()
    held = {d.customer_id for d in deliveries if d.is_holdout}
    assert len(deliveries) == 2000
    assert 0.085 <= len(held) / 2000 <= 0.115
    assert plan.counts["held_out"] == len(held)
    assert held.isdisjoint(planned_ids(plan))
    assert len(plan.sends) == 2000 - len(held)
    # the same draw every time, whatever the path
    assert all(offers.is_holdout(item.code, cid, 0.10) for cid in held)
    holdout_delivery = next(d for d in deliveries if d.is_holdout)
    assert holdout_delivery.id is not None
    assert not still_sendable(session, holdout_delivery.id)
    assert not mark_sent(session, holdout_delivery.id, NOW)
    assert session.get(OfferDelivery, holdout_delivery.id).sent_at is None  # type: ignore[union-attr]


def test_different_offers_hold_out_different_customers():
    ids = range(1, 5001)
    a = {cid for cid in ids if offers.is_holdout("A", cid, 0.1)}
    b = {cid for cid in ids if offers.is_holdout("B", cid, 0.1)}
    # independent draws: about 10 % of A's holdout is also in B's, not all of it
    assert 0.05 * len(a) < len(a & b) < 0.15 * len(a)
    assert not any(offers.is_holdout("A", cid, 0.0) for cid in ids)


# --- sending -----------------------------------------------------------------------------


def test_mark_sent_records_the_time_and_one_audit_entry(session):
    customer(session)
    (send,) = plan_campaign(session, offer(session), NOW).sends
    assert session.exec(select(AuditEntry)).all() == []  # planned is not sent
    assert still_sendable(session, send.delivery_id)
    assert mark_sent(session, send.delivery_id, NOW + timedelta(seconds=5))
    assert not mark_sent(session, send.delivery_id, NOW + timedelta(seconds=9))
    delivery = session.get(OfferDelivery, send.delivery_id)
    assert delivery is not None and delivery.sent_at == NOW + timedelta(seconds=5)
    (entry,) = session.exec(select(AuditEntry)).all()
    assert (entry.action, entry.actor, entry.customer_id) == (
        AuditAction.OFFER_SENT,
        "system",
        send.customer_id,
    )
    assert entry.detail == {"offer": "SPRING15", "via": "campaign"}
    assert not still_sendable(session, send.delivery_id)


def test_stop_between_planning_and_sending_takes_effect_at_once(session):
    person = customer(session)
    (send,) = plan_campaign(session, offer(session), NOW).sends
    record_consent(
        session, person, purpose="marketing", granted=False, source="telegram:/stop", now=NOW
    )
    session.flush()
    assert not still_sendable(session, send.delivery_id)


# --- affinity ----------------------------------------------------------------------------


def test_an_affinity_offer_suggests_a_product_bought_with_what_they_bought(session):
    grinder, press, candle = (
        Product(sku=f"SKU-{n}", name=name, price=Decimal("10"))
        for n, name in enumerate(("Coffee Grinder", "French Press", "Scented Candle"))
    )
    session.add_all([grinder, press, candle])
    session.flush()
    shopper = customer(session, name="Bea")
    for _ in range(3):  # other customers buy grinder and press together
        other = customer(session, consent=False)
        order(session, other, NOW - timedelta(days=40), products=(grinder.id, press.id))
    order(
        session, customer(session, consent=False), NOW - timedelta(days=40), products=(candle.id,)
    )
    order(session, shopper, NOW - timedelta(days=10), products=(grinder.id,))
    candle_buyer = customer(session)
    order(session, candle_buyer, NOW - timedelta(days=10), products=(candle.id,))
    cancelled_buyer = customer(session)
    order(
        session,
        cancelled_buyer,
        NOW - timedelta(days=10),
        products=(grinder.id,),
        status=OrderStatus.CANCELLED,
    )
    item = offer(
        session,
        "PAIR",
        text="{name}, with your {because} try the {product}: {code}",
        affinity={"min_score": 1.0, "metric": "lift", "min_together": 2},
    )
    plan = plan_campaign(session, item, NOW)
    (send,) = plan.sends
    assert send.customer_id == shopper.id
    assert send.reply.text.startswith("Bea, with your Coffee Grinder try the French Press: PAIR")
    assert plan.counts["not_targeted"] == 2  # nothing related to a candle; cancelled = not bought

    only_candles = offer(
        session,
        "PAIR2",
        text="{product} {code}",
        affinity={"products": ["scented candle"], "min_score": 0.0, "min_together": 2},
    )
    assert plan_campaign(session, only_candles, NOW, cap=FrequencyCap(9)).sends == []


# --- redemptions -------------------------------------------------------------------------


def _sent(session: Session, item: Offer, person: Customer, at: datetime) -> OfferDelivery:
    delivery = OfferDelivery(offer_id=item.id, customer_id=person.id, created_at=at, sent_at=at)
    session.add(delivery)
    session.flush()
    return delivery


def test_orders_with_the_code_redeem_the_delivery_after_it_was_sent(session):
    item = offer(session)
    buyer, early, stranger, held = (customer(session) for _ in range(4))
    sent_at = NOW - timedelta(days=5)
    delivered = _sent(session, item, buyer, sent_at)
    too_early = _sent(session, item, early, sent_at)
    holdout = OfferDelivery(
        offer_id=item.id, customer_id=held.id, is_holdout=True, created_at=sent_at
    )
    session.add(holdout)
    order(session, buyer, NOW - timedelta(days=4), code="OTHER")
    order(session, buyer, NOW - timedelta(days=2), code="SPRING15")
    order(session, buyer, NOW - timedelta(days=1), code="SPRING15")
    order(session, early, sent_at - timedelta(hours=1), code="SPRING15")
    order(session, stranger, NOW - timedelta(days=1), code="SPRING15")  # never offered
    order(session, held, NOW - timedelta(days=1), code="SPRING15")  # a leaked code
    assert record_redemptions_from_orders(session, NOW) == 1
    assert delivered.redeemed_at == NOW - timedelta(days=2)  # the first coded order
    assert too_early.redeemed_at is None and holdout.redeemed_at is None
    assert record_redemptions_from_orders(session, NOW) == 0  # idempotent


def test_a_cancelled_coded_order_does_not_redeem(session):
    item = offer(session)
    person = customer(session)
    delivery = _sent(session, item, person, NOW - timedelta(days=3))
    order(session, person, NOW - timedelta(days=1), code="SPRING15", status=OrderStatus.CANCELLED)
    assert record_redemptions_from_orders(session, NOW) == 0
    assert delivery.redeemed_at is None


def test_redeem_command_answers(session):
    item = offer(session)
    item.ends_at = NOW + timedelta(days=10)
    person = customer(session, name="Cy")
    held = customer(session)
    session.add(
        OfferDelivery(offer_id=item.id, customer_id=held.id, is_holdout=True, created_at=NOW)
    )
    assert redeem(session, person, "  ", NOW) == "Usage: /redeem CODE"
    assert (
        redeem(session, person, "nope", NOW)
        == "I don't know the code NOPE. Please check the spelling."
    )
    not_offered = "The code SPRING15 wasn't offered to you, sorry."
    assert redeem(session, person, "spring15", NOW) == not_offered
    assert redeem(session, held, "SPRING15", NOW) == not_offered  # held out: never offered
    delivery = _sent(session, item, person, NOW - timedelta(days=1))
    assert (
        redeem(session, person, "spring15", NOW)
        == "Done: SPRING15 (Spring sale) is redeemed for you."
    )
    assert delivery.redeemed_at == NOW
    assert redeem(session, person, "SPRING15", NOW + timedelta(days=1)) == (
        "You already redeemed SPRING15 on 01 Apr 2027."
    )


def test_redeem_after_the_offer_ended(session):
    item = offer(session)
    item.ends_at = datetime(2027, 4, 1, tzinfo=UTC)  # last day: 31 March
    person = customer(session)
    _sent(session, item, person, NOW - timedelta(days=5))
    assert (
        redeem(session, person, "SPRING15", NOW)
        == "Sorry, the offer SPRING15 ended on 31 Mar 2027."
    )


def test_a_code_named_in_a_message_is_explained_without_redeeming_it(session):
    item = offer(session)
    item.ends_at = datetime(2027, 4, 11, tzinfo=UTC)
    person, other = customer(session, name="Cy"), customer(session)
    text = "my code spring15 doesn't work at checkout"  # written in lower case, with a digit
    assert code_in_message(session, person, text, NOW) == (
        "The code SPRING15 wasn't offered to you, sorry."
    )
    delivery = _sent(session, item, person, NOW - timedelta(days=1))
    usable = code_in_message(session, person, text, NOW)
    assert usable is not None and usable.startswith(
        "SPRING15 (Spring sale) is yours to use until 10 Apr 2027: enter it"
    )
    assert delivery.redeemed_at is None, "asking about a code redeems nothing"
    later = datetime(2027, 4, 12, tzinfo=UTC)
    assert code_in_message(session, person, "SPRING15??", later) == (
        "Sorry, the offer SPRING15 ended on 10 Apr 2027."
    )
    for unrelated in ["where is order 5551", "I WANT A REFUND", "spring sale", ""]:
        assert code_in_message(session, other, unrelated, NOW) is None


def test_a_question_about_the_offer_sent_lately_gets_that_offer(session):
    item = offer(session)
    person, stranger = customer(session, name="Cy"), customer(session)
    delivery = _sent(session, item, person, NOW - timedelta(minutes=5))
    usable = offer_follow_up(session, person, "how do I use it?", NOW)
    assert usable is not None and usable.startswith("SPRING15 (Spring sale) is yours to use")
    delivery.message = "Cy, 15% off everything with SPRING15!"
    assert offer_follow_up(session, person, "what does the code give me", NOW) == (
        "Cy, 15% off everything with SPRING15!\n\nEnter the code in the discount code field at "
        "checkout, before you pay. If it doesn't work, send me the code and I'll check it for you."
    )
    assert delivery.redeemed_at is None, "asking about an offer redeems nothing"
    later = NOW + timedelta(hours=2)  # "it" no longer points at the offer; "the code" does
    assert offer_follow_up(session, person, "how do I use it?", later) is None
    assert offer_follow_up(session, person, "is the discount valid on sale items?", later)
    assert offer_follow_up(session, person, "where is my parcel", NOW) is None
    assert offer_follow_up(session, stranger, "how do I use the code?", NOW) is None
    delivery.redeemed_at = NOW
    assert offer_follow_up(session, person, "how do I use it?", NOW) == (
        "You already redeemed SPRING15 on 01 Apr 2027."
    )


# --- the staff report --------------------------------------------------------------------


def test_newcombe_interval_matches_the_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
    d = newcombe_difference(56, 70, 48, 80)
    assert (d.estimate, d.low, d.high) == (
        pytest.approx(0.2),
        pytest.approx(0.0524, abs=5e-5),
        pytest.approx(0.3339, abs=5e-5),
    )
    d = newcombe_difference(9, 10, 3, 10)
    assert (d.low, d.high) == (pytest.approx(0.1705, abs=5e-5), pytest.approx(0.8090, abs=5e-5))
    assert d.excludes_zero
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=5e-5))
    assert wilson_interval(81, 263) == (
        pytest.approx(0.2553, abs=5e-5),
        pytest.approx(0.3662, abs=5e-5),
    )


def _experiment(session: Session, item: Offer) -> None:
    """100 treated (90 sent, 30 redeemed, 20 ordered in 14 days) and 50 held out (5 ordered)."""
    start = NOW - timedelta(days=20)
    for i in range(150):
        holdout = i >= 100
        person = customer(session, consent=True)
        delivery = OfferDelivery(
            offer_id=item.id,
            customer_id=person.id,
            is_holdout=holdout,
            created_at=start,
            sent_at=start if not holdout and i < 90 else None,
            redeemed_at=start + timedelta(days=1) if i < 30 else None,
        )
        session.add(delivery)
        if i < 20 or 100 <= i < 105:
            order(session, person, start + timedelta(days=3))
        elif i < 25 or 105 <= i < 110:
            order(session, person, start + timedelta(days=15))  # outside the 14-day window
        elif i < 30 or 110 <= i < 115:
            order(session, person, start - timedelta(days=1))  # before the offer
        elif i < 35:
            order(session, person, start + timedelta(days=2), status=OrderStatus.CANCELLED)
    session.flush()


def test_offer_report_numbers_and_confidence_interval(session):
    spring = offer(session, "SPRING15", title="Spring sale", holdout_share=0.1)
    offer(session, "COMEBACK20", title="Win-back discount")
    _experiment(session, spring)
    result = offer_result(session, spring, now=NOW)
    assert (result.treated, result.sent, result.redeemed, result.holdout) == (100, 90, 30, 50)
    assert (result.treated_converted, result.holdout_converted) == (20, 5)
    expected = newcombe_difference(20, 100, 5, 50)
    assert result.uplift == expected

    text = offer_report(session, "how did the spring offer do", now=NOW)
    assert "COMEBACK20" not in text
    assert "SPRING15 · Spring sale · live" in text
    assert "sent 90 of 100 treated · held out 50 · redeemed 30 (33.3% of sent)" in text
    assert "ordered within 14 days: treated 20.0% (20/100), holdout 10.0% (5/50)" in text
    assert (
        f"uplift +10.0 pp (95% CI {100 * expected.low:+.1f} to {100 * expected.high:+.1f} pp)"
        in text
    )
    assert "Newcombe" in text


def test_offer_report_filters_by_code_or_title_words(session):
    offer(session, "SPRING15", title="Spring sale")
    offer(session, "COMEBACK20", title="Win-back discount")
    everything = offer_report(session, None, now=NOW)
    assert "SPRING15" in everything and "COMEBACK20" in everything
    assert "not sent to anyone yet" in everything
    assert "SPRING15" not in offer_report(session, "comeback20", now=NOW)
    assert "COMEBACK20" in offer_report(session, "win back", now=NOW)
    missing = offer_report(session, "summer", now=NOW)
    assert missing.startswith("No offer matches 'summer'. Offers: ")
    stored = list(session.exec(select(Offer)).all())
    assert [o.code for o in find_offers(stored, "the spring campaign")] == ["SPRING15"]


def test_offer_report_without_offers(session):
    assert offer_report(session, None, now=NOW).startswith("No offers yet")


# --- offers in the conversation ----------------------------------------------------------


def test_ask_offers_without_consent_explains_how_to_opt_in(session):
    never = customer(session, consent=None)
    stopped = customer(session, consent=False)
    offer(session)
    assert "/privacy marketing on" in offers_in_conversation(session, never, NOW)
    assert "You turned offers off" in offers_in_conversation(session, stopped, NOW)
    assert session.exec(select(OfferDelivery)).all() == []


def test_ask_offers_shows_the_best_fitting_offer_despite_the_cap(session):
    person = customer(session, segment="At Risk", p_alive=0.3, orders=4, name="Di")
    offer(session, "GENERAL", text="{code} for all", priority=1)
    offer(session, "WINBACK", text="Come back, {name}: {code}", priority=5, segments=["At Risk"])
    offer(session, "VIP", text="{code}", priority=9, segments=["Champions"])
    yesterday = offer(session, "YESTERDAY")
    session.add(
        OfferDelivery(
            offer_id=yesterday.id, customer_id=person.id, created_at=NOW - timedelta(days=1)
        )
    )
    session.flush()
    assert offers_in_conversation(session, person, NOW) == "Come back, Di: WINBACK"
    delivery = session.exec(
        select(OfferDelivery).where(
            OfferDelivery.customer_id == person.id, OfferDelivery.sent_at.is_not(None)
        )  # type: ignore[union-attr]
    ).one()
    assert delivery.sent_at == NOW
    (entry,) = session.exec(select(AuditEntry)).all()
    assert entry.detail == {"offer": "WINBACK", "via": "conversation"}
    # asked again: the same offer, no second delivery or audit entry
    assert (
        offers_in_conversation(session, person, NOW + timedelta(hours=1))
        == "Come back, Di: WINBACK"
    )
    assert len(session.exec(select(AuditEntry)).all()) == 1
    # once redeemed, the next best one
    redeem(session, person, "WINBACK", NOW)
    assert offers_in_conversation(session, person, NOW) == "GENERAL for all"


def test_ask_offers_for_a_held_out_customer_gives_no_code(session):
    person = customer(session, name="Eve")
    assert person.id is not None
    assert offers.is_holdout("MOSTLY", person.id, 0.99)
    offer(session, "MOSTLY", holdout_share=0.99)
    answer = offers_in_conversation(session, person, NOW)
    assert answer == "Current deals are on our website under Offers, Eve."
    assert "MOSTLY" not in answer
    (delivery,) = session.exec(select(OfferDelivery)).all()
    assert delivery.is_holdout and delivery.sent_at is None


def test_ask_offers_when_nothing_fits(session):
    person = customer(session, segment="Lost", name="Flo")
    offer(session, segments=["Champions"])
    assert offers_in_conversation(session, person, NOW) == (
        "I have no special offer for you right now, Flo."
    )


# --- pacing ------------------------------------------------------------------------------


def _replies(chats: list[int]) -> list[Reply]:
    return [Reply(chat, f"offer {i}") for i, chat in enumerate(chats)]


def _assert_within_limits(schedule: list[offers.Paced[Reply]], limits: Limits) -> None:
    slots = [p.slot for p in schedule]
    assert len(set(slots)) == len(slots)  # one message per slot of 1/25 s
    offsets = sorted(p.offset for p in schedule)
    for i, start in enumerate(offsets):  # no window of one second holds more than 25
        inside = [t for t in offsets[i:] if t < start + 1 - 1e-9]
        assert len(inside) <= limits.per_second
    by_chat: dict[int, list[int]] = {}
    for paced in schedule:
        by_chat.setdefault(paced.chat_id, []).append(paced.slot)
    for chat_slots in by_chat.values():
        gaps = [b - a for a, b in itertools.pairwise(chat_slots)]
        assert all(gap >= limits.per_second for gap in gaps)  # a second apart or more


def test_pacing_keeps_to_25_per_second_overall_and_1_per_second_per_chat():
    replies = _replies([1, 1, 1, *range(100, 200)])
    schedule = pace(replies, chat_of=lambda r: r.chat_id)
    assert len(schedule) == len(replies)
    _assert_within_limits(schedule, offers.TELEGRAM)
    # a chat's messages keep their order
    assert [p.item.text for p in schedule if p.chat_id == 1] == ["offer 0", "offer 1", "offer 2"]
    # 103 messages at 25/s fill slots 0..102: chat 1 does not hold up the rest
    assert sorted(p.slot for p in schedule) == list(range(103))
    assert [p.offset for p in schedule if p.chat_id == 1] == [0.0, 1.0, 2.0]


def test_pacing_with_other_limits():
    limits = Limits(per_second=5, per_chat_seconds=2.0)
    schedule = pace(
        _replies([7] * 3 + list(range(10, 20))), chat_of=lambda r: r.chat_id, limits=limits
    )
    _assert_within_limits(schedule, limits)
    assert [p.offset for p in schedule if p.chat_id == 7] == [0.0, 2.0, 4.0]


def test_send_paced_waits_on_the_clock_it_is_given():
    now = [100.0]
    sleeps: list[float] = []
    sent_at: list[tuple[float, int]] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def send(reply: Reply) -> bool:
        sent_at.append((now[0], reply.chat_id))
        now[0] += 0.01  # each send takes 10 ms
        return reply.chat_id != 13  # chat 13 blocked the bot

    replies = _replies([1, 1, *range(10, 60)])
    sent = asyncio.run(
        send_paced(
            replies, send, chat_of=lambda r: r.chat_id, clock=lambda: now[0], sleep=fake_sleep
        )
    )
    assert sent == len(replies) - 1
    times = [t for t, _ in sent_at]
    assert times == sorted(times)
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t < start + 1 - 1e-9]) <= 25
    chat_one = [t for t, chat in sent_at if chat == 1]
    assert chat_one[1] - chat_one[0] >= 1 - 1e-9
    assert all(s > 0 for s in sleeps)


# --- the whole loop on the demo shop -----------------------------------------------------


@pytest.mark.slow
def test_campaigns_on_the_demo_shop(shop):
    """Sync the shipped catalogue, refresh analytics and plan every live offer over the
    generated shop: targeted offers go out, a few are held out, affinity texts name products."""
    from bot.services.refresh import run_refresh

    now = datetime.now(UTC)
    with session_scope(shop.session_factory) as session:
        for person in session.exec(select(Customer)).all():
            person.telegram_chat_id = 10_000 + (person.id or 0)
            session.add(person)
    run_refresh(shop, as_of=now)
    with session_scope(shop.session_factory) as session:
        sync_offers(session, load_catalogue(), now=now)
        plans = plan_campaigns(session, now)
    by_code = {plan.code: plan for plan in plans}
    assert "SPRING15" not in by_code or not by_code["SPRING15"].sends  # not live yet
    assert by_code["PAIRUP10"].sends, by_code["PAIRUP10"].counts
    assert "{" not in by_code["PAIRUP10"].sends[0].reply.text
    assert sum(p.counts.get("held_out", 0) for p in plans) > 0
    customers = Counter(send.customer_id for plan in plans for send in plan.sends)
    assert max(customers.values()) == 1  # the cap: one offer per customer this week


def test_the_campaign_job_plans_then_sends_paced_and_skips_who_stopped_meanwhile(
    factory, tmp_path
):
    path = write(
        tmp_path,
        """
        offers:
          - {code: JOB10, title: Job offer, text: "Hi {name}: {code}", holdout_share: 0}
        messages: {footer: "Reply /stop to opt out"}
        """,
    )
    with session_scope(factory) as session:
        people = [customer(session, name=f"P{i}") for i in range(30)]
        stopper_id = people[3].id
        run = offers.run_campaigns(session, NOW, catalogue=load_catalogue(path))
    assert run.counts()["offers_created"] == 1 and run.counts()["JOB10.to_send"] == 30
    assert run.sends[0].reply.text == "Hi P0: JOB10\n\nReply /stop to opt out"
    with session_scope(factory) as session:  # /stop after planning, before sending
        person = session.get(Customer, stopper_id)
        assert person is not None
        record_consent(
            session, person, purpose="marketing", granted=False, source="telegram:/stop", now=NOW
        )

    clock = [0.0]
    delivered: list[tuple[float, int]] = []

    async def fake_sleep(seconds: float) -> None:
        clock[0] += seconds

    async def send_message(reply: Reply) -> bool:
        delivered.append((clock[0], reply.chat_id))
        return True

    sent = asyncio.run(
        offers.send_planned(
            factory,
            run.sends,
            send_message,
            clock=lambda: clock[0],
            sleep=fake_sleep,
            now=lambda: NOW + timedelta(seconds=clock[0]),
        )
    )
    assert sent == len(delivered) == 29
    assert clock[0] == pytest.approx(29 / 25)  # 30 slots of 1/25 s, the last one unused
    with session_scope(factory) as session:
        deliveries = session.exec(select(OfferDelivery)).all()
        assert sum(d.sent_at is not None for d in deliveries) == 29
        assert next(d for d in deliveries if d.customer_id == stopper_id).sent_at is None
        assert len(session.exec(select(AuditEntry)).all()) == 29
        again = offers.run_campaigns(session, NOW + timedelta(days=30))
    assert again.sends == []  # never the same offer twice, even after the cap
