"""Who an offer is for: targeting conditions, a customer's profile, and the holdout draw.

Conditions (all that are given must hold), read from ``offers.targeting``:

- ``segments``: the customer's RFM segment in the latest snapshot is one of them;
- ``min_churn_risk`` / ``max_churn_risk``: churn risk = 1 − P(alive) from the latest
  snapshot. BG/NBD learns dropout from repeat purchases only, so for customers with one
  order (or none) the risk is unknown and a churn condition does not match them, as in
  ``/customer`` (:func:`bot.services.customers.churn_risk`);
- ``min_clv``: predicted value over the next 90 days (snapshot ``clv``) at least this;
- ``affinity``: some product the customer has not bought is related (co-purchase score
  at least ``min_score``) to one they bought; with ``products``, only those are suggested.
  The best suggestion is what ``{product}`` shows.

The holdout is a deterministic draw per offer code and customer (SHA-256 of both), so a
customer is held out of an offer on every run and in every path (campaign or chat), and
the share of held-out customers converges to ``holdout_share``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.affinity import ProductAffinity, Recommendation


@dataclass(frozen=True)
class Profile:
    """What targeting looks at for one customer (from the latest snapshot and orders)."""

    customer_id: int
    segment: str | None = None
    p_alive: float | None = None
    orders: int | None = None
    clv: float | None = None
    bought: frozenset[int] = field(default_factory=frozenset)

    @property
    def churn_risk(self) -> float | None:
        if self.p_alive is None or (self.orders or 0) <= 1:
            return None
        return 1.0 - self.p_alive


@dataclass(frozen=True)
class Match:
    """A customer fits an offer; for affinity offers, with the product to suggest."""

    recommendation: Recommendation | None = None


def matches(
    targeting: Mapping[str, Any] | None,
    profile: Profile,
    *,
    affinity: ProductAffinity | None = None,
    among: Collection[int] | None = None,
) -> Match | None:
    """The match if ``profile`` fits every condition, else None.

    ``affinity`` is the co-purchase model (needed when the offer has an affinity
    condition); ``among`` is the resolved ``affinity.products`` (product ids), if given.
    """
    rules = targeting or {}
    segments = rules.get("segments")
    if segments is not None and profile.segment not in segments:
        return None
    risk = profile.churn_risk
    if "min_churn_risk" in rules and (risk is None or risk < rules["min_churn_risk"]):
        return None
    if "max_churn_risk" in rules and (risk is None or risk > rules["max_churn_risk"]):
        return None
    if "min_clv" in rules and (profile.clv is None or profile.clv < rules["min_clv"]):
        return None
    if "affinity" not in rules:
        return Match()
    if affinity is None or not profile.bought:
        return None
    found = affinity.recommend(
        profile.bought, min_score=float(rules["affinity"].get("min_score", 0.0)), among=among
    )
    return Match(found) if found is not None else None


def is_holdout(code: str, customer_id: int, share: float) -> bool:
    """Whether this customer is held out of this offer: the same answer every time."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"offer-holdout:{code}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
