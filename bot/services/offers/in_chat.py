"""Offers in the conversation: what the bot answers to the ``ask_offers`` intent.

The customer asked, so the frequency cap and the "negative today" rule of proactive offers
do not apply; consent does (without it the answer says how to opt in), and so does the
holdout: a customer held out of the best offer that fits them gets the generic answer
without a code, or the uplift measurement would leak. Showing an offer records its
delivery as sent (``via: conversation`` in the audit entry), so ``/redeem`` accepts it and
``/offers`` counts it; a customer already sent an offer just sees it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from sqlmodel import Session

from bot.services.answers import render
from bot.services.offers.campaign import (
    Products,
    mark_sent,
    match_offer,
    priority_key,
    render_offer,
)
from bot.services.offers.catalogue import DEFAULT_TEXTS, OfferTexts
from bot.services.offers.targeting import Profile, is_holdout
from db import customer_queries as cq
from db import offer_queries as oq
from db.models import Customer, OfferDelivery


def customer_profile(session: Session, customer_id: int, *, with_products: bool) -> Profile:
    as_of = cq.latest_snapshot_date(session=session)
    snap = oq.snapshot_of(session=session, customer_id=customer_id, as_of=as_of)
    bought: set[int] = set()
    if with_products:
        bought = oq.bought_products(session=session, customer_id=customer_id).get(
            customer_id, set()
        )
    if snap is None:
        return Profile(customer_id, bought=frozenset(bought))
    return Profile(
        customer_id,
        snap.segment,
        snap.p_alive,
        snap.frequency,
        float(snap.clv) if snap.clv is not None else None,
        frozenset(bought),
    )


def offers_in_conversation(
    session: Session,
    customer: Customer,
    now: datetime,
    *,
    texts: OfferTexts = DEFAULT_TEXTS,
    shop_name: str = "shop",
    tz: tzinfo = UTC,
) -> str:
    """The best live offer for this customer, as the answer text (in the caller's
    transaction: commit it with the answer)."""
    name = customer.first_name or "there"
    if customer.marketing_consent is False:
        return render(texts.opted_out, name=name, shop=shop_name)
    if customer.marketing_consent is not True:
        return render(texts.no_consent, name=name, shop=shop_name)
    assert customer.id is not None
    offers = sorted(oq.live_offers(session=session, now=now), key=priority_key)
    needs_products = any("affinity" in (o.targeting or {}) for o in offers)
    profile = customer_profile(session, customer.id, with_products=needs_products)
    products = Products(session)
    for offer in offers:
        assert offer.id is not None
        delivery = oq.delivery_of(session=session, offer_id=offer.id, customer_id=customer.id)
        if delivery is not None and delivery.redeemed_at is not None:
            continue
        match = match_offer(offer, profile, products)
        if match is None and (delivery is None or "affinity" in (offer.targeting or {})):
            continue  # not for them (an affinity text needs a product to show)
        if delivery is None:
            holdout = is_holdout(offer.code, customer.id, offer.holdout_share)
            delivery = OfferDelivery(
                offer_id=offer.id, customer_id=customer.id, is_holdout=holdout, created_at=now
            )
            session.add(delivery)
            session.flush()
        if delivery.is_holdout:
            return render(texts.generic, name=name, shop=shop_name)
        assert delivery.id is not None
        if delivery.sent_at is None:
            mark_sent(session, delivery.id, now, via="conversation")
        text = render_offer(
            offer,
            first_name=customer.first_name,
            match=match,
            products=products,
            shop_name=shop_name,
            tz=tz,
        )
        if delivery.message is None:  # kept, to answer "what does the code give me?" later
            delivery.message = text
            session.add(delivery)
        return text
    return render(texts.none, name=name, shop=shop_name)
