"""The offer catalogue: ``bot/data/offers.yml``, validated, and synced into ``offers``.

A malformed file stops with :class:`OfferCatalogueError`, whose message names the file and
the entry (``offers[2] (SPRING15): ...``). Syncing is by code and idempotent: a second sync
of the same file changes nothing; an offer that left the file is deactivated, never
deleted (its deliveries and results stay).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from analytics.affinity import METRICS
from bot.services.customers import resolve_segment
from db import offer_queries as oq
from db.models import Offer

DEFAULT_OFFERS = Path(__file__).resolve().parent.parent.parent / "data" / "offers.yml"
DEFAULT_HOLDOUT_SHARE = 0.10
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,63}$")
OFFER_KEYS = {
    "code",
    "title",
    "text",
    "starts",
    "ends",
    "holdout_share",
    "priority",
    "active",
    "targeting",
}
TARGETING_KEYS = {"segments", "min_churn_risk", "max_churn_risk", "min_clv", "affinity"}
AFFINITY_KEYS = {"products", "min_score", "metric", "min_together"}
FIELDS = {"name", "code", "shop", "ends", "title"}
AFFINITY_FIELDS = {"product", "because"}


class OfferCatalogueError(ValueError):
    """The offers file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class OfferTexts:
    """What the bot says around offers; each can be overridden in the file's ``messages``."""

    footer: str = "(/stop: no more offers)"
    no_consent: str = (
        "I can send you personal offers if you'd like that: send /privacy marketing on. "
        "You can turn them off any time with /stop."
    )
    opted_out: str = (
        "You turned offers off, so I don't send you any. To get them again, send "
        "/privacy marketing on."
    )
    none: str = "I have no special offer for you right now, {name}."
    generic: str = "Current deals are on our website under Offers, {name}."
    redeem_usage: str = "Usage: /redeem CODE"
    redeem_unknown: str = "I don't know the code {code}. Please check the spelling."
    redeem_not_offered: str = "The code {code} wasn't offered to you, sorry."
    redeem_already: str = "You already redeemed {code} on {date}."
    redeem_expired: str = "Sorry, the offer {code} ended on {date}."
    redeem_ok: str = "Done: {code} ({title}) is redeemed for you."
    code_how: str = (
        "Enter the code in the discount code field at checkout, before you pay. If it "
        "doesn't work, send me the code and I'll check it for you."
    )
    code_usable: str = (
        "{code} ({title}) is yours to use{until}: enter it in the discount code field at "
        "checkout. If the shop still refuses it, tell me and I'll pass it to a colleague."
    )


MESSAGE_KEYS = {f.name for f in fields(OfferTexts)}
DEFAULT_TEXTS = OfferTexts()


@dataclass(frozen=True)
class OfferSpec:
    """One offer as written in the file (dates already turned into UTC moments)."""

    code: str
    title: str
    text: str
    targeting: dict[str, Any] = field(default_factory=dict)
    holdout_share: float = DEFAULT_HOLDOUT_SHARE
    priority: int = 0
    active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # exclusive: the moment after the last day

    def stored_targeting(self) -> dict[str, Any]:
        """What goes into ``offers.targeting``: the conditions, plus the priority."""
        return {**self.targeting, "priority": self.priority}


@dataclass(frozen=True)
class Catalogue:
    offers: tuple[OfferSpec, ...]
    texts: OfferTexts
    source: Path


def normalize_code(text: str) -> str:
    """Codes are case-insensitive: stored and compared in upper case, without spaces.
    Order imports should store ``orders.offer_code`` through this too."""
    return text.strip().upper()


def load_catalogue(path: Path = DEFAULT_OFFERS, *, tz: tzinfo = UTC) -> Catalogue:
    """Read and validate the catalogue; dates are days in ``tz``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OfferCatalogueError(f"{path}: offers file not found") from None
    except yaml.YAMLError as exc:
        raise OfferCatalogueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("offers"), list):
        raise OfferCatalogueError(f"{path}: expected a mapping with an 'offers' list")
    unknown = set(raw) - {"version", "offers", "messages"}
    if unknown:
        raise OfferCatalogueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    offers: list[OfferSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw["offers"]):
        spec = _offer(entry, where=f"{path}: offers[{index}]", tz=tz)
        if spec.code in seen:
            raise OfferCatalogueError(
                f"{path}: offers[{index}] ({spec.code}): the code is used twice "
                f"(also offers[{seen[spec.code]}])"
            )
        seen[spec.code] = index
        offers.append(spec)
    return Catalogue(tuple(offers), _texts(raw.get("messages"), path), path)


def _texts(raw: object, path: Path) -> OfferTexts:
    if raw is None:
        return OfferTexts()
    if not isinstance(raw, dict):
        raise OfferCatalogueError(f"{path}: messages must be a mapping of texts")
    unknown = set(raw) - MESSAGE_KEYS
    if unknown:
        raise OfferCatalogueError(
            f"{path}: messages: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(MESSAGE_KEYS))}"
        )
    for key, value in raw.items():
        if not isinstance(value, str) or not value.strip():
            raise OfferCatalogueError(f"{path}: messages.{key} must be a non-empty text")
    return replace(OfferTexts(), **raw)


def _offer(entry: object, *, where: str, tz: tzinfo) -> OfferSpec:
    if not isinstance(entry, dict):
        raise OfferCatalogueError(f"{where}: each offer must be a mapping with code, title, text")
    code_raw = entry.get("code")
    if not isinstance(code_raw, str | int) or not str(code_raw).strip():
        raise OfferCatalogueError(f"{where}: 'code' is required")
    code = normalize_code(str(code_raw))
    where = f"{where} ({code})"

    def fail(message: str) -> OfferCatalogueError:
        return OfferCatalogueError(f"{where}: {message}")

    unknown = set(entry) - OFFER_KEYS
    if unknown:
        raise fail(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(OFFER_KEYS))}"
        )
    if not CODE_PATTERN.match(code):
        raise fail("a code has 2-64 characters: letters, digits, '-' and '_'")
    title, text = entry.get("title"), entry.get("text")
    if not isinstance(title, str) or not title.strip():
        raise fail("'title' is required")
    if not isinstance(text, str) or not text.strip():
        raise fail("'text' is required")
    targeting = _targeting(entry.get("targeting"), fail)
    _check_fields(text, affinity="affinity" in targeting, fail=fail)
    share = entry.get("holdout_share", DEFAULT_HOLDOUT_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        raise fail("holdout_share must be a number from 0 to below 1, e.g. 0.1")
    priority = entry.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise fail("priority must be a whole number")
    active = entry.get("active", True)
    if not isinstance(active, bool):
        raise fail("active must be true or false")
    starts = _moment(entry.get("starts"), tz=tz, end=False, fail=fail, key="starts")
    ends = _moment(entry.get("ends"), tz=tz, end=True, fail=fail, key="ends")
    if starts is not None and ends is not None and ends <= starts:
        raise fail("'ends' must not be before 'starts'")
    return OfferSpec(
        code=code,
        title=title.strip(),
        text=text.strip(),
        targeting=targeting,
        holdout_share=float(share),
        priority=priority,
        active=active,
        starts_at=starts,
        ends_at=ends,
    )


def _moment(value: object, *, tz: tzinfo, end: bool, fail: Any, key: str) -> datetime | None:
    """A day becomes its first moment (``starts``) or the first moment after it (``ends``);
    a date-time is taken as is (local time in ``tz`` unless it has an offset)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                datetime.fromisoformat(text)
                if "T" in text or " " in text
                else date.fromisoformat(text)
            )
        except ValueError:
            raise fail(f"{key} must be a date like 2027-03-31") from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
        return moment.astimezone(UTC)
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    raise fail(f"{key} must be a date like 2027-03-31")


def _number(value: object, *, key: str, fail: Any, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"targeting.{key} must be a number")
    if value < low or (high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise fail(f"targeting.{key} must be {bounds}")
    return float(value)


def _targeting(raw: object, fail: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail("targeting must be a mapping")
    unknown = set(raw) - TARGETING_KEYS
    if unknown:
        raise fail(
            f"unknown targeting key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(TARGETING_KEYS))}"
        )
    out: dict[str, Any] = {}
    if raw.get("segments") is not None:
        names = raw["segments"]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise fail("targeting.segments must be a list of segment names")
        segments = []
        for name in names:
            found = resolve_segment(str(name))
            if found is None:
                raise fail(f"targeting.segments: unknown segment {name!r}")
            segments.append(found)
        out["segments"] = segments
    for key in ("min_churn_risk", "max_churn_risk"):
        if raw.get(key) is not None:
            out[key] = _number(raw[key], key=key, fail=fail, low=0.0, high=1.0)
    if out.get("min_churn_risk", 0.0) > out.get("max_churn_risk", 1.0):
        raise fail("targeting.min_churn_risk is above max_churn_risk")
    if raw.get("min_clv") is not None:
        out["min_clv"] = _number(raw["min_clv"], key="min_clv", fail=fail, low=0.0, high=None)
    if "affinity" in raw:
        out["affinity"] = _affinity(raw["affinity"], fail)
    return out


def _affinity(raw: object, fail: Any) -> dict[str, Any]:
    raw = {} if raw is None or raw is True else raw
    if not isinstance(raw, dict):
        raise fail("targeting.affinity must be a mapping (or empty)")
    unknown = set(raw) - AFFINITY_KEYS
    if unknown:
        raise fail(
            f"unknown affinity key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(AFFINITY_KEYS))}"
        )
    out: dict[str, Any] = {
        "min_score": 1.0,
        "metric": "lift",
        "min_together": 2,
    }
    if raw.get("products") is not None:
        products = raw["products"]
        if isinstance(products, str):
            products = [products]
        if not isinstance(products, list) or not all(
            isinstance(p, str) and p.strip() for p in products
        ):
            raise fail("targeting.affinity.products must be a list of product names or SKUs")
        out["products"] = [p.strip() for p in products]
    if raw.get("min_score") is not None:
        out["min_score"] = _number(
            raw["min_score"], key="affinity.min_score", fail=fail, low=0.0, high=None
        )
    if raw.get("metric") is not None:
        if raw["metric"] not in METRICS:
            raise fail(f"targeting.affinity.metric must be one of {', '.join(METRICS)}")
        out["metric"] = raw["metric"]
    if raw.get("min_together") is not None:
        value = raw["min_together"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail("targeting.affinity.min_together must be a whole number, at least 1")
        out["min_together"] = value
    return out


def _check_fields(text: str, *, affinity: bool, fail: Any) -> None:
    allowed = FIELDS | (AFFINITY_FIELDS if affinity else set())
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise fail(
            f"text is not a valid template ({exc}); write {{{{ for a literal brace"
        ) from None
    bad = names - allowed
    if bad:
        hint = (
            " ({product} and {because} need targeting.affinity)" if bad & AFFINITY_FIELDS else ""
        )
        raise fail(
            f"text uses unknown field(s) {', '.join('{' + b + '}' for b in sorted(bad))}; "
            f"allowed: {', '.join('{' + a + '}' for a in sorted(allowed))}{hint}"
        )
    if "code" not in names:
        raise fail("text must show the code: put {code} in it")


# --- sync --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deactivated: list[str]

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deactivated": len(self.deactivated),
        }


def _values(spec: OfferSpec) -> dict[str, Any]:
    return {
        "title": spec.title,
        "text": spec.text,
        "targeting": spec.stored_targeting(),
        "holdout_share": spec.holdout_share,
        "active": spec.active,
        "starts_at": spec.starts_at,
        "ends_at": spec.ends_at,
    }


def sync_offers(
    session: Session,
    catalogue: Catalogue,
    *,
    now: datetime,
    deactivate_missing: bool = True,
) -> SyncResult:
    """Make the ``offers`` table match the catalogue, by code, in the caller's transaction."""
    existing = {offer.code: offer for offer in oq.all_offers(session=session)}
    created, updated, unchanged, deactivated = [], [], [], []
    for spec in catalogue.offers:
        values = _values(spec)
        offer = existing.get(spec.code)
        if offer is None:
            session.add(Offer(code=spec.code, created_at=now, **values))
            created.append(spec.code)
            continue
        changed = {k: v for k, v in values.items() if getattr(offer, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(offer, key, value)
            session.add(offer)
            updated.append(spec.code)
        else:
            unchanged.append(spec.code)
    if deactivate_missing:
        listed = {spec.code for spec in catalogue.offers}
        for code, offer in existing.items():
            if code not in listed and offer.active:
                offer.active = False
                session.add(offer)
                deactivated.append(code)
    session.flush()
    return SyncResult(created, updated, unchanged, deactivated)
