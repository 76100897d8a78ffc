"""Redemptions: from orders that carry the offer code, or from the customer's ``/redeem``.

Either way only a delivery that was sent to this customer can be redeemed, once. A held-out
customer who uses a code (passed on by a friend, say) does not redeem: they were never
offered it, and counting them would blur the comparison with the holdout.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from sqlmodel import Session, select

from bot.services.answers import render
from bot.services.offers.campaign import offer_ends_text
from bot.services.offers.catalogue import DEFAULT_TEXTS, OfferTexts, normalize_code
from db import offer_queries as oq
from db.models import Customer, Offer, OfferDelivery, Order


@dataclass
class CodeImport:
    """What :func:`attach_offer_codes` did: orders updated, and rows it could not use."""

    updated: int = 0
    redeemed: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)


def attach_offer_codes(
    session: Session, rows: Iterable[tuple[int, str, str]], *, now: datetime
) -> CodeImport:
    """Put offer codes on imported orders, from ``(line, order id, code)`` rows (a coupon
    report of the shop), then record the redemptions they make. Unknown orders and empty
    codes are reported with their line; a code that is not an offer is stored all the same
    (it may be a discount the shop ran elsewhere) but redeems nothing."""
    result = CodeImport()
    for line, order_id, raw_code in rows:
        code = normalize_code(raw_code)
        if not order_id.strip() or not code:
            result.bad.append((line, "an order id and a code are both needed"))
            continue
        order = session.exec(select(Order).where(Order.external_id == order_id.strip())).first()
        if order is None:
            result.bad.append((line, f"no order {order_id.strip()!r}"))
            continue
        if order.offer_code != code:
            order.offer_code = code
            session.add(order)
            result.updated += 1
    session.flush()
    result.redeemed = record_redemptions_from_orders(session, now)
    return result


def record_redemptions_from_orders(session: Session, now: datetime) -> int:
    """Mark sent, unredeemed deliveries as redeemed when the same customer placed an order
    (not cancelled) with the offer's code at or after ``sent_at`` and not after ``now``;
    ``redeemed_at`` is that order's time. Returns how many were marked. Idempotent."""
    marked = 0
    for delivery_id, ordered_at in oq.coded_order_redemptions(session=session):
        if ordered_at is None or ordered_at > now:
            continue
        delivery = session.get(OfferDelivery, delivery_id)
        if delivery is None or delivery.redeemed_at is not None:
            continue
        delivery.redeemed_at = ordered_at
        session.add(delivery)
        marked += 1
    session.flush()
    return marked


def redeem(
    session: Session,
    customer: Customer,
    code: str,
    now: datetime,
    *,
    texts: OfferTexts = DEFAULT_TEXTS,
    tz: tzinfo = UTC,
) -> str:
    """``/redeem CODE`` from a customer: redeem an offer they were sent; the answer."""
    name = customer.first_name or "there"
    code = normalize_code(code)
    if not code:
        return render(texts.redeem_usage, name=name)
    offer = oq.offer_by_code(session=session, code=code)
    if offer is None or offer.id is None:
        return render(texts.redeem_unknown, code=code, name=name)
    delivery, problem = _usable(session, customer, offer, now, texts=texts, tz=tz)
    if problem is not None or delivery is None:
        return problem or ""
    delivery.redeemed_at = now
    session.add(delivery)
    session.flush()
    return render(texts.redeem_ok, code=code, name=name, title=offer.title)


def _usable(
    session: Session,
    customer: Customer,
    offer: Offer,
    now: datetime,
    *,
    texts: OfferTexts,
    tz: tzinfo,
) -> tuple[OfferDelivery | None, str | None]:
    """The customer's delivery of ``offer`` and, if they cannot use it now, why (the text)."""
    assert customer.id is not None and offer.id is not None
    name, code = customer.first_name or "there", offer.code
    delivery = oq.delivery_of(session=session, offer_id=offer.id, customer_id=customer.id)
    if delivery is None or delivery.is_holdout or delivery.sent_at is None:
        return None, render(texts.redeem_not_offered, code=code, name=name, title=offer.title)
    if delivery.redeemed_at is not None:
        day = delivery.redeemed_at.astimezone(tz)
        text = render(
            texts.redeem_already, code=code, name=name, title=offer.title, date=f"{day:%d %b %Y}"
        )
        return delivery, text
    if offer.ends_at is not None and now >= offer.ends_at:
        date = offer_ends_text(offer, tz)
        text = render(texts.redeem_expired, code=code, name=name, title=offer.title, date=date)
        return delivery, text
    return delivery, None


# A word in a message that may be an offer code: letters and digits (a dash or underscore
# inside), with letters and a digit or written in capitals ("SPRING15", "THANKYOU"; not
# "thankyou", nor an order number).
_CODE_WORD = re.compile(r"(?<![\w-])[A-Za-z0-9][A-Za-z0-9_-]{3,30}(?![\w-])")
_MAX_CODE_WORDS = 5


def code_in_message(
    session: Session,
    customer: Customer,
    text: str,
    now: datetime,
    *,
    texts: OfferTexts = DEFAULT_TEXTS,
    tz: tzinfo = UTC,
) -> str | None:
    """A customer writes about one of our offer codes ("my code SPRING15 doesn't work at
    checkout"): whether they can use it, and how, without redeeming anything. None when the
    message names no offer code."""
    words = [
        w
        for w in _CODE_WORD.findall(text)
        if any(c.isalpha() for c in w) and (any(c.isdigit() for c in w) or w.isupper())
    ]
    for word in words[:_MAX_CODE_WORDS]:
        offer = oq.offer_by_code(session=session, code=normalize_code(word))
        if offer is None or offer.id is None or customer.id is None:
            continue
        return _code_status(session, customer, offer, now, texts=texts, tz=tz)
    return None


def _code_status(
    session: Session,
    customer: Customer,
    offer: Offer,
    now: datetime,
    *,
    texts: OfferTexts,
    tz: tzinfo,
) -> str:
    """Whether the customer can use ``offer``'s code now and how, as the answer text."""
    _, problem = _usable(session, customer, offer, now, texts=texts, tz=tz)
    return problem if problem is not None else _code_usable(customer, offer, texts=texts, tz=tz)


def _code_usable(customer: Customer, offer: Offer, *, texts: OfferTexts, tz: tzinfo) -> str:
    until = f" until {offer_ends_text(offer, tz)}" if offer.ends_at is not None else ""
    return render(
        texts.code_usable,
        code=offer.code,
        title=offer.title,
        name=customer.first_name or "there",
        until=until,
    )


# Questions about an offer the bot sent: "what does the code give me", "is the discount
# valid on sale items" name it; "how do I use it", "when does it expire" only point at it,
# so they count only shortly after the offer (the bot's last word, most likely).
_NAMES_OFFER = re.compile(r"\b(?:codes?|coupons?|vouchers?|discounts?|promo|offers?)\b", re.I)
_POINTS_AT_IT = re.compile(
    r"^\W*(?:(?:so|and|ok|okay|thanks|great|nice|cool)\W+)*"
    r"(?:how|where|when|what|which|can|could|does|do|is|will|until)\b.*\b(?:it|this|that)\b",
    re.I,
)
NAMED_OFFER_DAYS = 14
POINTED_OFFER_MINUTES = 30
_FOLLOW_UP_MAX_WORDS = 14


def offer_follow_up(
    session: Session,
    customer: Customer,
    text: str,
    now: datetime,
    *,
    texts: OfferTexts = DEFAULT_TEXTS,
    tz: tzinfo = UTC,
) -> str | None:
    """A question about the offer the bot sent this customer lately ("how do I use it?",
    "what does the code give me"): that offer's code, what it is, until when and how to
    use it (or why it can't be used any more). None if the message is not such a question
    or no offer was sent lately."""
    if customer.id is None or len(text.split()) > _FOLLOW_UP_MAX_WORDS:
        return None
    if _NAMES_OFFER.search(text):
        since = now - timedelta(days=NAMED_OFFER_DAYS)
    elif _POINTS_AT_IT.search(text):
        since = now - timedelta(minutes=POINTED_OFFER_MINUTES)
    else:
        return None
    latest = oq.latest_sent_offer(session=session, customer_id=customer.id, since=since)
    if latest is None:
        return None
    offer, delivery = latest
    _, problem = _usable(session, customer, offer, now, texts=texts, tz=tz)
    if problem is not None:  # redeemed already, or ended
        return problem
    if delivery.message:  # the offer as sent says what it gives; then how to use it
        return f"{delivery.message}\n\n{render(texts.code_how)}"
    return _code_usable(customer, offer, texts=texts, tz=tz)
