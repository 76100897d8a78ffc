"""``/offers`` for staff: per offer, how many were sent and redeemed, and whether it made
customers buy more than the holdout.

Definitions (per offer):

- **treated**: customers assigned to get the offer (deliveries not held out), whether the
  message went out or not (intention to treat: dropping the ones that could not be sent,
  e.g. after a ``/stop``, would compare a filtered group with an unfiltered holdout);
  **sent**: of those, the ones Telegram accepted (``sent_at``);
- **holdout**: customers drawn into the holdout (``is_holdout``). They never get the code,
  so they cannot redeem it;
- **redeemed**: treated deliveries redeemed (an order with the code, or ``/redeem``);
- **conversion**: the share of customers who placed any order that was not cancelled within
  the window (default 14 days) after their delivery was created (the moment both groups
  were drawn), counted up to now: treated and holdout alike, code or no code;
- **uplift**: treated conversion − holdout conversion, in percentage points, with a 95 %
  confidence interval by **Newcombe's hybrid score method** (method 10 of Newcombe 1998,
  built from the two Wilson score intervals). Unlike the Wald interval it stays inside
  [−1, 1] and keeps its coverage for small groups and rates near 0, as offer conversions are.

Windows that have not closed yet count the orders so far; both groups were drawn at the
same moments, so the comparison stays fair while the numbers still grow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sqlmodel import Session

from bot.services.offers.campaign import is_live, offer_ends_text, priority_key
from bot.services.offers.catalogue import normalize_code
from db import offer_queries as oq
from db.models import Offer

Z95 = 1.959963984540054  # the 97.5 % quantile of the standard normal
CONVERSION_WINDOW = timedelta(days=14)
QUERY_FILLER = {
    "a",
    "an",
    "the",
    "our",
    "of",
    "for",
    "how",
    "did",
    "do",
    "does",
    "go",
    "went",
    "is",
    "doing",
    "offer",
    "offers",
    "campaign",
    "code",
    "promo",
}


# --- statistics --------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (n > 0)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Difference:
    """p1 − p2 and its confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, *, z: float = Z95) -> Difference:
    """Newcombe's hybrid score interval (method 10) for p1 − p2 = x1/n1 − x2/n2."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z=z)
    l2, u2 = wilson_interval(x2, n2, z=z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(d, low, high)


# --- results per offer -------------------------------------------------------------------


@dataclass(frozen=True)
class OfferResult:
    code: str
    title: str
    treated: int
    sent: int
    redeemed: int
    holdout: int
    treated_converted: int
    holdout_converted: int

    @property
    def uplift(self) -> Difference | None:
        if not self.treated or not self.holdout:
            return None
        return newcombe_difference(
            self.treated_converted, self.treated, self.holdout_converted, self.holdout
        )


def offer_result(
    session: Session, offer: Offer, *, now: datetime, window: timedelta = CONVERSION_WINDOW
) -> OfferResult:
    assert offer.id is not None
    outcomes = oq.delivery_outcomes(session=session, offer_id=offer.id)
    counts = {"treated": 0, "sent": 0, "redeemed": 0, "holdout": 0, "t_conv": 0, "h_conv": 0}
    for row in outcomes:
        converted = (
            row.first_order_at is not None
            and row.first_order_at < row.created_at + window
            and row.first_order_at <= now
        )
        if row.is_holdout:
            counts["holdout"] += 1
            counts["h_conv"] += converted
        else:
            counts["treated"] += 1
            counts["sent"] += row.sent_at is not None
            counts["redeemed"] += row.redeemed_at is not None
            counts["t_conv"] += converted
    return OfferResult(
        offer.code,
        offer.title,
        counts["treated"],
        counts["sent"],
        counts["redeemed"],
        counts["holdout"],
        counts["t_conv"],
        counts["h_conv"],
    )


def find_offers(offers: Sequence[Offer], query: str | None) -> list[Offer]:
    """Offers matching a code ("SPRING15") or words of the title ("spring", "win back");
    every word must start a word of the title or code. Filler such as "offer" is ignored."""
    if not query or not query.strip():
        return list(offers)
    code = normalize_code(query)
    exact = [o for o in offers if o.code == code]
    if exact:
        return exact
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in QUERY_FILLER]
    if not words:
        return list(offers)

    def fits(offer: Offer) -> bool:
        haystack = re.findall(r"\w+", f"{offer.title} {offer.code}".lower())
        return all(any(h.startswith(w) for h in haystack) for w in words)

    return [o for o in offers if fits(o)]


def _percent(x: int, n: int) -> str:
    return f"{100 * x / n:.1f}% ({x:,}/{n:,})" if n else "–"


def _status(offer: Offer, now: datetime, tz: tzinfo) -> str:
    if not offer.active:
        return "paused"
    if offer.starts_at is not None and now < offer.starts_at:
        return f"starts {offer.starts_at.astimezone(tz):%d %b %Y}"
    if offer.ends_at is not None and now >= offer.ends_at:
        return f"ended {offer_ends_text(offer, tz)}"
    if is_live(offer, now):
        return "live" + (f" until {offer_ends_text(offer, tz)}" if offer.ends_at else "")
    return "not live"


def render_result(result: OfferResult, *, status: str, window: timedelta) -> list[str]:
    lines = [f"{result.code} · {result.title} · {status}"]
    if not result.treated and not result.holdout:
        return [*lines, "• not sent to anyone yet"]
    redeemed_share = (
        f" ({100 * result.redeemed / result.sent:.1f}% of sent)" if result.sent else ""
    )
    lines.append(
        f"• sent {result.sent:,} of {result.treated:,} treated · held out {result.holdout:,} · "
        f"redeemed {result.redeemed:,}{redeemed_share}"
    )
    treated = _percent(result.treated_converted, result.treated)
    holdout = _percent(result.holdout_converted, result.holdout)
    lines.append(f"• ordered within {window.days} days: treated {treated}, holdout {holdout}")
    uplift = result.uplift
    if uplift is None:
        lines.append("• uplift: needs treated and held-out customers")
    else:
        verdict = (
            "a real difference"
            if uplift.excludes_zero
            else "not distinguishable from no offer yet"
        )
        lines.append(
            f"• uplift {100 * uplift.estimate:+.1f} pp (95% CI {100 * uplift.low:+.1f} to "
            f"{100 * uplift.high:+.1f} pp): {verdict}"
        )
    return lines


def offer_report(
    session: Session,
    query: str | None = None,
    *,
    now: datetime,
    window: timedelta = CONVERSION_WINDOW,
    tz: tzinfo = UTC,
) -> str:
    """The ``/offers [code or words]`` text for staff."""
    offers = sorted(oq.all_offers(session=session), key=priority_key)
    if not offers:
        return "No offers yet: add them to bot/data/offers.yml."
    chosen = find_offers(offers, query)
    if not chosen:
        known = ", ".join(f"{o.code} ({o.title})" for o in offers)
        return f"No offer matches {query!r}. Offers: {known}"
    header = "🎁 Offers" + (f" matching {query.strip()!r}" if query and query.strip() else "")
    lines = [header]
    for offer in chosen:
        result = offer_result(session, offer, now=now, window=window)
        lines += ["", *render_result(result, status=_status(offer, now, tz), window=window)]
    lines += [
        "",
        f"Conversion: customers who placed any order within {window.days} days after the offer "
        "was assigned (treated: everyone meant to get it; holdout: drawn at random not to). "
        "Uplift = treated − holdout, 95% CI by Newcombe's score method.",
    ]
    return "\n".join(lines)
