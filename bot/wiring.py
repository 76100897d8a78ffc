"""Builds the application's services from :class:`Settings`: the one place that wires."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.services.answers import load_answers
from bot.services.context import Services
from bot.services.offers import (
    DEFAULT_OFFERS,
    FrequencyCap,
    load_catalogue,
    sync_offers,
)
from bot.services.schedule import Schedule, parse_time, parse_weekday
from bot.services.staff_directory import StaffDirectory
from bot.settings import Settings
from db import migrate, queries
from db.clock import utcnow
from db.engine import make_engine, make_session_factory, session_scope
from nlp import NLU, load_or_train, set_default_nlu

log = logging.getLogger(__name__)


def build_services(
    settings: Settings, *, nlu: NLU | None = None, migrate_db: bool = True
) -> Services:
    """Open the database (migrating it to the newest schema), load the NLU, sync staff."""
    engine = make_engine(settings.resolved_database_url)
    if migrate_db and not migrate.is_up_to_date(engine):
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        log.info(
            "database migrated from %s to %s", before or "empty", migrate.current_revision(engine)
        )
    factory = make_session_factory(engine)
    if nlu is None:
        nlu = load_or_train(model_path=settings.model_path, embeddings=settings.nlu_embeddings)
    set_default_nlu(nlu)
    catalogue = load_catalogue(settings.offers_file or DEFAULT_OFFERS, tz=settings.tz)
    with session_scope(factory) as session:
        queries.sync_staff(
            session=session, staff_ids=settings.staff_ids, admin_ids=settings.admin_ids
        )
        sync_offers(session, catalogue, now=utcnow())
        products = queries.product_names(session=session)
    if products:
        nlu.set_products(products)
    return Services(
        session_factory=factory,
        nlu=nlu,
        answers=load_answers(),
        shop_name=settings.shop_name,
        staff_ids=settings.staff_ids,
        admin_ids=settings.admin_ids,
        staff_chat_id=settings.staff_chat_id,
        tz=settings.tz,
        schedules=schedules_from(settings),
        retention_months=settings.retention_months,
        backup_dir=settings.resolved_backup_dir,
        backup_keep=settings.backup_keep,
        database_url=settings.resolved_database_url,
        question_ttl=timedelta(minutes=settings.question_timeout_minutes),
        csat_reminder_after=timedelta(minutes=settings.csat_reminder_minutes),
        nps_interval=timedelta(days=settings.nps_interval_days),
        offer_catalogue=catalogue,
        offer_cap=FrequencyCap(max_offers=1, days=settings.offer_cap_days),
        directory=StaffDirectory(factory),
        flood_messages=settings.flood_messages,
        flood_window=timedelta(seconds=settings.flood_seconds),
    )


def schedules_from(settings: Settings) -> dict[str, Schedule]:
    """When each scheduled job runs, from the settings (local times)."""
    return {
        "analytics_refresh": Schedule(parse_time(settings.refresh_time)),
        "daily_digest": Schedule(parse_time(settings.daily_digest_time)),
        "weekly_digest": Schedule(
            parse_time(settings.weekly_digest_time),
            weekday=parse_weekday(settings.weekly_digest_day),
        ),
        "nightly_backup": Schedule(parse_time(settings.backup_time)),
        "retention": Schedule(parse_time(settings.retention_time)),
        "offer_campaigns": Schedule(parse_time(settings.offer_campaign_time)),
    }
