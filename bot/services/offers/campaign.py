"""Proactive offers: who gets which offer now, recorded before anything is sent.

Planning (:func:`plan_campaign`) goes through the customers who allowed offers
(``marketing_consent`` is True) and pressed Start (``telegram_chat_id`` set) and skips,
in this order, customers who

1. already have a delivery of this offer (never the same offer twice),
2. do not fit the offer's targeting,
3. have a conversation waiting for a human (an open complaint or handoff),
4. wrote a message with negative sentiment today (local day in ``tz``),
5. reached the frequency cap (default: 1 offer per 7 days). The cap counts held-out
   deliveries too, so treated and holdout customers see the same offer pressure.

The rest get an ``OfferDelivery``: held out (``is_holdout``, never sent) or to send. The
caller sends each :class:`OfferSend` (paced, see :mod:`.pacing`), checks
:func:`still_sendable` right before (consent may be withdrawn meanwhile), and calls
:func:`mark_sent` once Telegram accepted it; that sets ``sent_at`` and appends the
``offer.sent`` audit entry, so the audit trail only holds offers that really went out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from sqlmodel import Session

from analytics.affinity import Metric, ProductAffinity, co_purchase
from bot.services import audit
from bot.services.answers import render
from bot.services.messages import Reply
from bot.services.offers.catalogue import DEFAULT_TEXTS, OfferTexts
from bot.services.offers.targeting import Match, Profile, is_holdout, matches
from db import customer_queries as cq
from db import offer_queries as oq
from db.models import (
    AuditAction,
    Customer,
    Direction,
    Interaction,
    InteractionKind,
    Offer,
    OfferDelivery,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_offers`` proactive offers per customer within ``days``."""

    max_offers: int = 1
    days: int = 7


DEFAULT_CAP = FrequencyCap()


@dataclass(frozen=True)
class OfferSend:
    """One offer to send: its delivery row and the message."""

    delivery_id: int
    customer_id: int
    code: str
    reply: Reply


@dataclass
class CampaignPlan:
    code: str
    sends: list[OfferSend] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def start_of_day(now: datetime, tz: tzinfo) -> datetime:
    """The first moment of ``now``'s local day in ``tz``, as UTC."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)


class Products:
    """The co-purchase model and product names, built once per planning run and only when
    an offer needs them."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._models: dict[tuple[Metric, int], ProductAffinity] = {}
        self._names: dict[int, str] | None = None
        self._keys: dict[str, int] | None = None
        self._resolved: dict[tuple[str, ...], set[int]] = {}

    def affinity(self, rules: dict[str, Any]) -> ProductAffinity:
        metric: Metric = "cosine" if rules.get("metric") == "cosine" else "lift"
        key: tuple[Metric, int] = (metric, int(rules.get("min_together", 2)))
        if key not in self._models:
            orders, products = oq.basket_lines(session=self._session)
            self._models[key] = co_purchase(orders, products, metric=metric, min_together=key[1])
        return self._models[key]

    def _load(self) -> None:
        rows = oq.products(session=self._session)
        self._names = {int(p.id or 0): p.name for p in rows}
        self._keys = {}
        for p in rows:
            self._keys[p.sku.lower()] = int(p.id or 0)
            self._keys.setdefault(p.name.lower(), int(p.id or 0))

    def name(self, product_id: int) -> str:
        if self._names is None:
            self._load()
        assert self._names is not None
        return self._names.get(product_id, f"product {product_id}")

    def resolve(self, names: Sequence[str] | None) -> set[int] | None:
        """Product ids for names or SKUs from the catalogue; unknown ones are logged."""
        if names is None:
            return None
        key = tuple(names)
        if key in self._resolved:
            return self._resolved[key]
        if self._keys is None:
            self._load()
        assert self._keys is not None
        found = set()
        for name in names:
            pid = self._keys.get(name.lower())
            if pid is None:
                log.warning("offers: no product named %r (affinity.products)", name)
            else:
                found.add(pid)
        self._resolved[key] = found
        return found


def match_offer(offer: Offer, profile: Profile, products: Products) -> Match | None:
    """Whether the customer fits the offer's targeting (with the affinity model if needed)."""
    rules = offer.targeting or {}
    if "affinity" not in rules:
        return matches(rules, profile)
    affinity_rules = rules["affinity"]
    return matches(
        rules,
        profile,
        affinity=products.affinity(affinity_rules),
        among=products.resolve(affinity_rules.get("products")),
    )


def offer_ends_text(offer: Offer, tz: tzinfo) -> str:
    """The last day of the offer, e.g. ``30 Apr``; "soon" is never promised without a date."""
    if offer.ends_at is None:
        return "further notice"
    last = (offer.ends_at - timedelta(microseconds=1)).astimezone(tz)
    return f"{last.day} {last:%b %Y}"


def render_offer(
    offer: Offer,
    *,
    first_name: str | None,
    match: Match | None,
    products: Products,
    shop_name: str,
    tz: tzinfo,
) -> str:
    values: dict[str, Any] = {
        "name": first_name or "there",
        "code": offer.code,
        "shop": shop_name,
        "title": offer.title,
        "ends": offer_ends_text(offer, tz),
    }
    if match is not None and match.recommendation is not None:
        values["product"] = products.name(match.recommendation.product_id)
        values["because"] = products.name(match.recommendation.because_of)
    return render(offer.text, **values)


def is_live(offer: Offer, now: datetime) -> bool:
    return (
        offer.active
        and (offer.starts_at is None or offer.starts_at <= now)
        and (offer.ends_at is None or now < offer.ends_at)
    )


def plan_campaign(
    session: Session,
    offer: Offer,
    now: datetime,
    *,
    cap: FrequencyCap = DEFAULT_CAP,
    tz: tzinfo = UTC,
    shop_name: str = "shop",
    texts: OfferTexts = DEFAULT_TEXTS,
    products: Products | None = None,
) -> CampaignPlan:
    """Record who gets ``offer`` now (deliveries, held out or to send) and return the
    messages to send. Runs in the caller's transaction; commit before sending."""
    plan = CampaignPlan(offer.code)
    if offer.id is None or not is_live(offer, now):
        plan.counts["not_live"] = 1
        return plan
    products = products or Products(session)
    as_of = cq.latest_snapshot_date(session=session)
    reachable = oq.reachable_customers(session=session, as_of=as_of)
    already = oq.offered_customers(session=session, offer_id=offer.id)
    waiting = oq.waiting_for_human(session=session)
    upset = oq.negative_since(session=session, since=start_of_day(now, tz))
    recent = oq.offers_since(session=session, since=now - timedelta(days=cap.days))
    needs_bought = "affinity" in (offer.targeting or {})
    bought = oq.bought_products(session=session, reachable_only=True) if needs_bought else {}
    plan.counts["reachable"] = len(reachable)
    to_send: list[tuple[OfferDelivery, oq.ReachableCustomer, Match]] = []
    for row in reachable:
        if row.customer_id in already:
            plan.count("already_offered")
            continue
        profile = Profile(
            row.customer_id,
            row.segment,
            row.p_alive,
            row.orders,
            row.clv,
            frozenset(bought.get(row.customer_id, ())),
        )
        match = match_offer(offer, profile, products)
        if match is None:
            plan.count("not_targeted")
            continue
        if row.customer_id in waiting:
            plan.count("waiting_for_human")
            continue
        if row.customer_id in upset:
            plan.count("negative_today")
            continue
        if recent.get(row.customer_id, 0) >= cap.max_offers:
            plan.count("frequency_cap")
            continue
        holdout = is_holdout(offer.code, row.customer_id, offer.holdout_share)
        delivery = OfferDelivery(
            offer_id=offer.id, customer_id=row.customer_id, is_holdout=holdout, created_at=now
        )
        session.add(delivery)
        if holdout:
            plan.count("held_out")
        else:
            to_send.append((delivery, row, match))
    session.flush()  # one batch of inserts; the deliveries get their ids
    footer = f"\n\n{texts.footer}" if texts.footer else ""
    for delivery, row, match in to_send:
        assert delivery.id is not None
        text = render_offer(
            offer,
            first_name=row.first_name,
            match=match,
            products=products,
            shop_name=shop_name,
            tz=tz,
        )
        delivery.message = text + footer
        session.add(delivery)
        plan.sends.append(
            OfferSend(delivery.id, row.customer_id, offer.code, Reply(row.chat_id, text + footer))
        )
    if to_send:
        plan.counts["to_send"] = len(to_send)
    return plan


def plan_campaigns(
    session: Session,
    now: datetime,
    *,
    cap: FrequencyCap = DEFAULT_CAP,
    tz: tzinfo = UTC,
    shop_name: str = "shop",
    texts: OfferTexts = DEFAULT_TEXTS,
) -> list[CampaignPlan]:
    """Plan every live offer, highest priority first, so that with the cap a customer
    gets the most important offer that fits them."""
    products = Products(session)
    plans = []
    for offer in sorted(oq.live_offers(session=session, now=now), key=priority_key):
        plans.append(
            plan_campaign(
                session,
                offer,
                now,
                cap=cap,
                tz=tz,
                shop_name=shop_name,
                texts=texts,
                products=products,
            )
        )
    return plans


def priority_key(offer: Offer) -> tuple[int, int]:
    """Highest ``priority`` first, then the older offer."""
    return (-int((offer.targeting or {}).get("priority", 0)), int(offer.id or 0))


def queued_sends(session: Session, now: datetime, *, max_age: timedelta) -> list[OfferSend]:
    """Planned offers not sent yet (the outbox), oldest first; older than ``max_age`` they
    are stale and left alone (they count as treated but not sent in ``/offers``)."""
    rows = oq.unsent_deliveries(session=session, since=now - max_age)
    return [
        OfferSend(
            delivery.id or 0, delivery.customer_id, code, Reply(chat_id, delivery.message or "")
        )
        for delivery, code, chat_id in rows
    ]


def still_sendable(session: Session, delivery_id: int) -> bool:
    """Right before sending: not sent yet, not held out, and the customer still allows
    offers, has a chat, and is not waiting for a human."""
    delivery = session.get(OfferDelivery, delivery_id)
    if delivery is None or delivery.is_holdout or delivery.sent_at is not None:
        return False
    customer = session.get(Customer, delivery.customer_id)
    if customer is None or customer.marketing_consent is not True:
        return False
    if customer.telegram_chat_id is None:
        return False
    return not oq.waiting_for_human(session=session, customer_id=delivery.customer_id)


def mark_sent(session: Session, delivery_id: int, now: datetime, *, via: str = "campaign") -> bool:
    """Record that Telegram accepted the offer: ``sent_at`` and an ``offer.sent`` audit
    entry (actor "system"). False, and nothing written, if it was sent before or is a
    holdout or unknown delivery."""
    delivery = session.get(OfferDelivery, delivery_id)
    if delivery is None or delivery.is_holdout or delivery.sent_at is not None:
        return False
    offer = session.get(Offer, delivery.offer_id)
    delivery.sent_at = now
    session.add(delivery)
    if delivery.message:  # the customer's history shows the offer like any message
        session.add(
            Interaction(
                customer_id=delivery.customer_id,
                direction=Direction.OUTBOUND,
                kind=InteractionKind.TEXT,
                text=delivery.message,
                created_at=now,
            )
        )
    audit.record(
        session,
        action=AuditAction.OFFER_SENT,
        now=now,
        customer_id=delivery.customer_id,
        actor=audit.SYSTEM,
        detail={"offer": offer.code if offer else delivery.offer_id, "via": via},
    )
    session.flush()
    return True
