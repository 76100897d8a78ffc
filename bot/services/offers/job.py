"""The campaign job in two halves, so the scheduler stays a few lines of wiring:

1. :func:`run_campaigns` ``(session, now)``: sync the catalogue, record redemptions from
   coded orders, and plan every live offer. Commit, then
2. :func:`send_planned`: send the planned offers paced to Telegram's limits, each checked
   with :func:`~.campaign.still_sendable` right before and marked with
   :func:`~.campaign.mark_sent` right after, each in its own short transaction.

A crash between the halves leaves planned deliveries with no ``sent_at``; they are never
planned again (one delivery per offer and customer), so nothing is sent twice, and they
count as treated-but-not-sent in ``/offers``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot.services.messages import Reply
from bot.services.offers.campaign import (
    DEFAULT_CAP,
    CampaignPlan,
    FrequencyCap,
    OfferSend,
    mark_sent,
    plan_campaigns,
    still_sendable,
)
from bot.services.offers.catalogue import DEFAULT_TEXTS, Catalogue, SyncResult, sync_offers
from bot.services.offers.pacing import TELEGRAM, Limits, send_paced
from bot.services.offers.redemption import record_redemptions_from_orders
from db.clock import utcnow
from db.engine import session_scope


@dataclass
class CampaignRun:
    synced: SyncResult | None
    redeemed: int
    plans: list[CampaignPlan] = field(default_factory=list)

    @property
    def sends(self) -> list[OfferSend]:
        return [send for plan in self.plans for send in plan.sends]

    def counts(self) -> dict[str, int]:
        """Flat counts for ``job_runs`` (``COMEBACK20.to_send``: 207, ...)."""
        out = {"redeemed_from_orders": self.redeemed}
        if self.synced is not None:
            out.update({f"offers_{k}": v for k, v in self.synced.counts().items()})
        for plan in self.plans:
            out.update({f"{plan.code}.{k}": v for k, v in plan.counts.items()})
        return out


def run_campaigns(
    session: Session,
    now: datetime,
    *,
    catalogue: Catalogue | None = None,
    cap: FrequencyCap = DEFAULT_CAP,
    tz: tzinfo = UTC,
    shop_name: str = "shop",
) -> CampaignRun:
    """Sync (if a catalogue is given), record redemptions, plan every live offer."""
    synced = sync_offers(session, catalogue, now=now) if catalogue is not None else None
    redeemed = record_redemptions_from_orders(session, now)
    plans = plan_campaigns(
        session,
        now,
        cap=cap,
        tz=tz,
        shop_name=shop_name,
        texts=catalogue.texts if catalogue is not None else DEFAULT_TEXTS,
    )
    return CampaignRun(synced, redeemed, plans)


async def send_planned(
    factory: sessionmaker[Session],
    sends: Sequence[OfferSend],
    send_message: Callable[[Reply], Awaitable[bool]],
    *,
    limits: Limits = TELEGRAM,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    now: Callable[[], datetime] = utcnow,
) -> int:
    """Send planned offers, paced; ``send_message`` returns whether Telegram accepted the
    message (False for a blocked bot, say). Returns how many were sent."""

    async def one(item: OfferSend) -> bool:
        with session_scope(factory) as session:
            if not still_sendable(session, item.delivery_id):
                return False
        if not await send_message(item.reply):
            return False
        with session_scope(factory) as session:
            mark_sent(session, item.delivery_id, now())
        return True

    def chat_of(item: OfferSend) -> int:
        return item.reply.chat_id

    return await send_paced(sends, one, chat_of=chat_of, limits=limits, clock=clock, sleep=sleep)
