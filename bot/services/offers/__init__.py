"""Personalized offers: catalogue, targeting, campaigns with a holdout, paced sending,
redemptions, the staff report and offers in the conversation.

No Telegram types here: functions take a session, plain values and ``now``, and return
dataclasses, :class:`~bot.services.messages.Reply` objects or texts.

=============================  ==========================================================
module                         what it does
=============================  ==========================================================
:mod:`.catalogue`              ``bot/data/offers.yml``: load, validate, sync by code
:mod:`.targeting`              segment, churn risk, CLV, affinity; the holdout draw
:mod:`.campaign`               plan deliveries for live offers; ``mark_sent``
:mod:`.pacing`                 1 message/s per chat, 25/s overall, testable without sleeping
:mod:`.redemption`             codes on orders, ``/redeem``, codes named in a message
:mod:`.report`                 ``/offers``: sent, redeemed, conversion vs holdout, uplift CI
:mod:`.in_chat`                the answer to ``ask_offers``
:mod:`.job`                    the campaign job: plan (in a transaction), then send paced
=============================  ==========================================================
"""

from bot.services.offers.campaign import (
    CampaignPlan,
    FrequencyCap,
    OfferSend,
    mark_sent,
    plan_campaign,
    plan_campaigns,
    still_sendable,
)
from bot.services.offers.catalogue import (
    DEFAULT_OFFERS,
    Catalogue,
    OfferCatalogueError,
    OfferSpec,
    OfferTexts,
    SyncResult,
    load_catalogue,
    normalize_code,
    sync_offers,
)
from bot.services.offers.in_chat import offers_in_conversation
from bot.services.offers.job import CampaignRun, run_campaigns, send_planned
from bot.services.offers.pacing import TELEGRAM, Limits, Paced, pace, send_paced
from bot.services.offers.redemption import (
    code_in_message,
    offer_follow_up,
    record_redemptions_from_orders,
    redeem,
)
from bot.services.offers.report import newcombe_difference, offer_report, wilson_interval
from bot.services.offers.targeting import Profile, is_holdout, matches

__all__ = [
    "DEFAULT_OFFERS",
    "TELEGRAM",
    "CampaignPlan",
    "CampaignRun",
    "Catalogue",
    "FrequencyCap",
    "Limits",
    "OfferCatalogueError",
    "OfferSend",
    "OfferSpec",
    "OfferTexts",
    "Paced",
    "Profile",
    "SyncResult",
    "code_in_message",
    "is_holdout",
    "load_catalogue",
    "mark_sent",
    "matches",
    "newcombe_difference",
    "normalize_code",
    "offer_follow_up",
    "offer_report",
    "offers_in_conversation",
    "pace",
    "plan_campaign",
    "plan_campaigns",
    "record_redemptions_from_orders",
    "redeem",
    "run_campaigns",
    "send_paced",
    "send_planned",
    "still_sendable",
    "sync_offers",
    "wilson_interval",
]
